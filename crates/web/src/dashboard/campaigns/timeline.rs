//! A campaign's deliveries over time: a stacked bar chart of what was
//! delivered and what failed, slot by slot, from its start to its end (or
//! now). Drawn once with the page, not polled: it reads every outcome.

use chrono::{DateTime, Utc};
use postino_db::PgConnection;
use postino_db::campaigns::Campaign;
use postino_db::deliveries;

use crate::dashboard::chart::{self, SLOT, Stack};
use crate::dashboard::page::{PageError, grouped};

/// The chart is never narrower than this many bars.
const MIN_SLOTS: i64 = 30;

/// What the chart shows.
#[derive(Debug, Clone)]
pub(crate) struct TimelineChart {
    pub(crate) stacks: Vec<Stack>,
    /// Width of the SVG's view box.
    pub(crate) width: i64,
    /// "Each bar is 5 minutes".
    pub(crate) slot: String,
    pub(crate) first: String,
    pub(crate) last: String,
    /// The busiest slot's total, in words.
    pub(crate) peak: String,
}

impl TimelineChart {
    /// The chart of a campaign that has started; `None` before that.
    pub(crate) async fn of(
        conn: &mut PgConnection,
        c: &Campaign,
    ) -> Result<Option<Self>, PageError> {
        let Some(started) = c.started_at else {
            return Ok(None);
        };
        let end = c.finished_at.unwrap_or_else(Utc::now);
        let t = deliveries::timeline(conn, c.id, started, end).await?;
        let label = |at: DateTime<Utc>| {
            if t.slot_secs >= 86_400 {
                at.format("%-d %b").to_string()
            } else {
                at.format("%-d %b %H:%M").to_string()
            }
        };
        let points: Vec<(String, i64, i64)> = t
            .points
            .iter()
            .map(|p| (label(p.at), p.sent, p.failed))
            .collect();
        let peak = t
            .points
            .iter()
            .map(|p| p.sent + p.failed)
            .max()
            .unwrap_or(0);
        let stacks = chart::stacks(&points);
        Ok(Some(Self {
            // A short sending has few bars: keep them bar-wide, from the
            // left, rather than stretched across the card.
            width: i64::try_from(stacks.len()).unwrap_or(0).max(MIN_SLOTS) * SLOT,
            slot: slot_words(t.slot_secs),
            first: points.first().map(|p| p.0.clone()).unwrap_or_default(),
            last: points.last().map(|p| p.0.clone()).unwrap_or_default(),
            peak: grouped(peak),
            stacks,
        }))
    }
}

/// A slot's length as people say it.
fn slot_words(secs: i64) -> String {
    match secs {
        60 => "a minute".to_owned(),
        s if s < 3600 => format!("{} minutes", s / 60),
        3600 => "an hour".to_owned(),
        s if s < 86_400 => format!("{} hours", s / 3600),
        _ => "a day".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::slot_words;

    #[test]
    fn slots_are_said_in_words() {
        assert_eq!(slot_words(60), "a minute");
        assert_eq!(slot_words(900), "15 minutes");
        assert_eq!(slot_words(3600), "an hour");
        assert_eq!(slot_words(6 * 3600), "6 hours");
        assert_eq!(slot_words(86_400), "a day");
    }
}
