//! `/`: the overview a marketer lands on.

use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use postino_db::{campaigns, deliveries, lists, subscribers};
use postino_domain::CampaignStatus;

use super::chart::{Bar, bars};
use super::page::{Layout, PageError, SignedIn, grouped, render};
use crate::AppState;

/// Days the sending chart covers.
const CHART_DAYS: i32 = 30;
/// Campaigns listed under "Recent campaigns".
const RECENT: usize = 5;

#[derive(Template)]
#[template(path = "dashboard/overview.html")]
struct OverviewPage {
    layout: Layout,
    subscribers: String,
    lists: usize,
    campaigns: usize,
    sent_total: String,
    running: Vec<Running>,
    recent: Vec<Recent>,
    bars: Vec<Bar>,
    chart_max: i64,
}

/// A campaign sending now, with how far it got.
struct Running {
    name: String,
    sent: String,
    total: String,
    percent: i64,
}

/// A campaign in the recent list.
struct Recent {
    name: String,
    status: &'static str,
    created: String,
}

pub(crate) async fn show(
    State(state): State<AppState>,
    Extension(signed_in): Extension<SignedIn>,
) -> Result<Response, PageError> {
    let mut conn = state.db.acquire().await?;
    let subscribers = subscribers::count(&mut conn).await?;
    let lists = lists::all(&mut conn).await?.len();
    let all = campaigns::all(&mut conn).await?;
    let mut running = Vec::new();
    for campaign in all.iter().filter(|c| c.status == CampaignStatus::Running) {
        let counts = deliveries::counts(&mut conn, campaign.id).await?;
        let total = counts.queued + counts.sending + counts.sent + counts.failed + counts.skipped;
        let done = counts.sent + counts.failed + counts.skipped;
        running.push(Running {
            name: campaign.fields.name.clone(),
            sent: grouped(counts.sent),
            total: grouped(total),
            percent: if total == 0 { 0 } else { done * 100 / total },
        });
    }
    let recent = all
        .iter()
        .take(RECENT)
        .map(|c| Recent {
            name: c.fields.name.clone(),
            status: c.status.as_str(),
            created: c.created_at.format("%-d %b %Y").to_string(),
        })
        .collect();
    let per_day = deliveries::sent_per_day(&mut conn, CHART_DAYS).await?;
    let sent_total = grouped(per_day.iter().map(|(_, n)| n).sum());
    let chart_max = per_day.iter().map(|(_, n)| *n).max().unwrap_or(0);
    let page = OverviewPage {
        layout: signed_in.layout("overview", "Overview"),
        subscribers: grouped(subscribers),
        lists,
        campaigns: all.len(),
        sent_total,
        running,
        recent,
        bars: bars(&per_day),
        chart_max,
    };
    Ok(render(StatusCode::OK, &page))
}
