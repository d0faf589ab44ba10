//! A campaign's progress bar: sent of total, rate and time left while it
//! runs; once it stops, the counts of delivered, failed, skipped, bounced
//! and unsubscribed. The page polls
//! `/campaigns/{id}/progress` every two seconds while sending, from the
//! same numbers as `/api/v1/campaigns/{id}/stats`.

use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use postino_db::PgConnection;
use postino_db::campaigns::{self, Campaign, Reactions};
use postino_domain::CampaignStatus;
use uuid::Uuid;

use super::lookup::load;
use crate::AppState;
use crate::dashboard::page::PageId;
use crate::dashboard::page::{PageError, SignedIn, grouped, render};
use postino_service::campaigns::progress;

/// What the bar shows.
#[derive(Debug, Clone)]
pub(crate) struct Progress {
    pub(crate) id: Uuid,
    pub(crate) status: &'static str,
    /// Whether the page should keep asking (it is still sending).
    pub(crate) live: bool,
    /// 0 to 100, of the whole audience once it is all enqueued.
    pub(crate) percent: i64,
    pub(crate) done: String,
    pub(crate) total: String,
    pub(crate) sent: String,
    pub(crate) failed: String,
    pub(crate) failed_count: i64,
    pub(crate) skipped: String,
    /// Once it stopped sending: people who bounced or unsubscribed.
    pub(crate) bounced: String,
    pub(crate) unsubscribed: String,
    /// "1,200 a minute", when anything went out in the last minute.
    pub(crate) rate: Option<String>,
    /// "about 3 minutes left".
    pub(crate) time_left: Option<String>,
    /// Until the scheduler has enqueued everyone, the total still grows.
    pub(crate) counting: bool,
}

impl Progress {
    pub(crate) async fn of(conn: &mut PgConnection, c: &Campaign) -> Result<Self, PageError> {
        let s = progress(conn, c).await?;
        let done = s.sent + s.failed + s.skipped;
        let live = s.status == CampaignStatus::Running;
        let reactions = if live {
            Reactions::default()
        } else {
            campaigns::reactions(conn, c.id).await?
        };
        let percent = match (s.status, s.total) {
            (CampaignStatus::Finished, _) => 100,
            (_, 0) => 0,
            (_, total) => (done * 100 / total).clamp(0, 100),
        };
        Ok(Self {
            id: c.uuid,
            status: s.status.as_str(),
            live,
            percent,
            done: grouped(done),
            total: grouped(s.total),
            sent: grouped(s.sent),
            failed: grouped(s.failed),
            failed_count: s.failed,
            skipped: grouped(s.skipped),
            bounced: grouped(reactions.bounced),
            unsubscribed: grouped(reactions.unsubscribed),
            rate: (s.rate_per_minute > 0)
                .then(|| format!("{} a minute", grouped(s.rate_per_minute))),
            time_left: s.eta_seconds.map(time_left),
            counting: !s.enqueued && s.status == CampaignStatus::Running,
        })
    }

    pub(crate) fn finished(&self) -> bool {
        self.status == CampaignStatus::Finished.as_str()
    }
}

/// Seconds as people say them: "less than a minute", "about 4 minutes",
/// "about 2 hours".
fn time_left(seconds: i64) -> String {
    match seconds {
        ..60 => "less than a minute left".to_owned(),
        60..120 => "about a minute left".to_owned(),
        120..7200 => format!("about {} minutes left", seconds / 60),
        _ => format!("about {} hours left", seconds / 3600),
    }
}

#[derive(Template)]
#[template(path = "dashboard/campaigns/progress.html")]
struct ProgressPart {
    p: Progress,
}

/// The bar alone, for htmx to swap in. When the page polling it sees the
/// campaign stop (finished, paused by the sender, cancelled elsewhere), the
/// whole page is reloaded instead, so its buttons match the new status.
pub(crate) async fn show(
    State(state): State<AppState>,
    Extension(_signed_in): Extension<SignedIn>,
    PageId(id): PageId,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let c = load(&state, id).await?;
    let mut conn = state.db.acquire().await?;
    let p = Progress::of(&mut conn, &c).await?;
    let live = p.live;
    let mut response = render(StatusCode::OK, &ProgressPart { p });
    if !live
        && headers.contains_key("hx-request")
        && let Ok(to) = HeaderValue::from_str(&format!("/campaigns/{id}"))
    {
        response.headers_mut().insert("hx-redirect", to);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::time_left;

    #[test]
    fn time_left_is_said_in_words() {
        assert_eq!(time_left(5), "less than a minute left");
        assert_eq!(time_left(90), "about a minute left");
        assert_eq!(time_left(600), "about 10 minutes left");
        assert_eq!(time_left(10_800), "about 3 hours left");
    }
}
