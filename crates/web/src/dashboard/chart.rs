//! Bar charts drawn on the server as SVG: no chart library to ship, and the
//! numbers are in the page for screen readers and tests.

use chrono::NaiveDate;

/// Height of the plot area, in SVG units.
pub(crate) const HEIGHT: i64 = 120;
/// Width of one day's slot, in SVG units.
pub(crate) const SLOT: i64 = 10;

/// One bar, positioned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bar {
    /// Left edge.
    pub(crate) x: i64,
    /// Top edge.
    pub(crate) y: i64,
    /// Height (at least 1, so days without mail still show a baseline).
    pub(crate) height: i64,
    /// The value.
    pub(crate) value: i64,
    /// The day, as shown in its tooltip.
    pub(crate) label: String,
}

/// Bars for `(day, value)` pairs, scaled so the largest fills the height.
pub(crate) fn bars(points: &[(NaiveDate, i64)]) -> Vec<Bar> {
    let max = points.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    points
        .iter()
        .zip(0i64..)
        .map(|((day, value), i)| {
            let height = (value * HEIGHT / max).max(1);
            Bar {
                x: i * SLOT + 1,
                y: HEIGHT - height,
                height,
                value: *value,
                label: day.format("%-d %b").to_string(),
            }
        })
        .collect()
}

/// One stacked bar: delivered at the bottom, failed on top.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stack {
    pub(crate) x: i64,
    /// Top edge and height of the delivered part.
    pub(crate) sent_y: i64,
    pub(crate) sent_height: i64,
    /// Top edge and height of the failed part (0 when none failed).
    pub(crate) failed_y: i64,
    pub(crate) failed_height: i64,
    pub(crate) sent: i64,
    pub(crate) failed: i64,
    /// The slot, as shown in its tooltip.
    pub(crate) label: String,
}

impl Stack {
    pub(crate) fn is_empty(&self) -> bool {
        self.sent == 0 && self.failed == 0
    }
}

/// Stacked bars for `(label, sent, failed)`, scaled so the tallest stack
/// fills the height. A part that is not zero is at least one unit tall, so
/// a handful of failures among thousands still shows.
pub(crate) fn stacks(points: &[(String, i64, i64)]) -> Vec<Stack> {
    let max = points
        .iter()
        .map(|(_, s, f)| s + f)
        .max()
        .unwrap_or(0)
        .max(1);
    let scaled = |v: i64| if v == 0 { 0 } else { (v * HEIGHT / max).max(1) };
    points
        .iter()
        .zip(0i64..)
        .map(|((label, sent, failed), i)| {
            let failed_height = scaled(*failed);
            // The empty slot keeps a baseline, like the daily chart.
            let sent_height = scaled(*sent).min(HEIGHT - failed_height).max(1);
            Stack {
                x: i * SLOT + 1,
                sent_y: HEIGHT - sent_height,
                sent_height,
                failed_y: HEIGHT - sent_height - failed_height,
                failed_height,
                sent: *sent,
                failed: *failed,
                label: label.clone(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_value_fills_the_height_and_zero_keeps_a_baseline() {
        let day = |d| NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
        let bars = bars(&[(day(1), 0), (day(2), 50), (day(3), 100)]);
        assert_eq!(bars[0].height, 1);
        assert_eq!(bars[1].height, HEIGHT / 2);
        assert_eq!(bars[2].height, HEIGHT);
        assert_eq!(bars[2].y, 0);
        assert_eq!(bars[1].x, SLOT + 1);
        assert_eq!(bars[2].label, "3 Nov");
    }

    #[test]
    fn stacks_put_failures_on_top_and_keep_small_parts_visible() {
        let stacks = stacks(&[
            ("a".to_owned(), 999, 1),
            ("b".to_owned(), 0, 0),
            ("c".to_owned(), 500, 500),
        ]);
        assert_eq!(stacks[0].failed_height, 1);
        assert_eq!(stacks[0].sent_height + stacks[0].failed_height, HEIGHT);
        assert_eq!(
            stacks[0].failed_y + stacks[0].failed_height,
            stacks[0].sent_y
        );
        assert!(stacks[1].is_empty());
        assert_eq!(stacks[1].sent_height, 1);
        assert_eq!(stacks[2].sent_height, HEIGHT / 2);
        assert_eq!(stacks[2].failed_y, 0);
        assert_eq!(stacks[2].x, 2 * SLOT + 1);
    }
}
