//! `postino import FILE --list L …`: the same job as an upload through the
//! API, run in this process with a progress bar, ending with a summary.
//!
//! The job is recorded in the `imports` table like any other, so it shows in
//! `GET /api/v1/imports` with its error report; the file stays where it is
//! and is never deleted.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use postino_db::{PgPool, imports};
use postino_domain::{ImportMode, ImportStatus};
use postino_importer::ImportSettings;
use postino_importer::engine::{self, Ended};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// What the command was asked to do.
#[derive(Debug, Clone)]
pub struct ImportRequest<'a> {
    /// The CSV file.
    pub file: &'a Path,
    /// Lists by id or exact name.
    pub lists: &'a [String],
    /// What to do with each address.
    pub mode: ImportMode,
    /// Overwrite existing subscribers' names and merge their attributes.
    pub overwrite: bool,
    /// Double opt-in memberships arrive confirmed.
    pub confirmed: bool,
    /// Draw a progress bar (off when the output is not a terminal).
    pub progress: bool,
}

/// The job as it ended.
#[derive(Debug)]
pub struct Summary {
    /// The job.
    pub job: imports::Import,
    /// The first bad rows, for the terminal.
    pub first_errors: Vec<imports::RowError>,
}

/// Runs the import and returns its summary.
///
/// # Errors
///
/// If a list is unknown, the file unusable, or the database unreachable.
pub async fn run(
    pool: &PgPool,
    settings: &ImportSettings,
    request: &ImportRequest<'_>,
) -> anyhow::Result<Summary> {
    let list_ids = resolve_lists(pool, request.lists).await?;
    if request.mode.needs_lists() && list_ids.is_empty() {
        anyhow::bail!("a {} import needs at least one --list", request.mode);
    }
    let job = engine::create_local_job(
        pool,
        request.file,
        request.mode,
        list_ids,
        request.overwrite,
        request.confirmed,
        settings,
    )
    .await
    .with_context(|| format!("cannot import {}", request.file.display()))?;

    let bar = if request.progress {
        ProgressBar::new(u64::try_from(job.file_bytes).unwrap_or(0))
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {percent:>3}% {binary_bytes}/{binary_total_bytes} {msg} [{elapsed_precise}, eta {eta}]",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let stop = CancellationToken::new();
    let ended = engine::run_job(pool, &job, settings, &stop, &mut |p| {
        bar.set_position(p.bytes_read);
        bar.set_message(format!("{} rows", p.rows_read));
    })
    .await?;
    bar.finish_and_clear();
    if ended == Ended::Released {
        anyhow::bail!("the import was stopped");
    }
    let mut conn = pool.acquire().await?;
    let job = imports::get(&mut conn, job.uuid).await?;
    let first_errors = imports::errors_after(&mut conn, job.id, 0, 20).await?;
    tracing::debug!(elapsed = ?started.elapsed(), "import done");
    Ok(Summary { job, first_errors })
}

async fn resolve_lists(pool: &PgPool, lists: &[String]) -> anyhow::Result<Vec<i64>> {
    let mut conn = pool.acquire().await?;
    let mut ids = Vec::with_capacity(lists.len());
    for list in lists {
        let id = if let Ok(uuid) = Uuid::parse_str(list) {
            postino_db::lists::resolve(&mut conn, &[uuid])
                .await?
                .first()
                .map(|&(_, id, _)| id)
        } else {
            imports::list_id_by_name(&mut conn, list).await?
        };
        ids.push(id.with_context(|| {
            format!("--list {list}: no list has that id, or exactly one list that name")
        })?);
    }
    Ok(ids)
}

/// The summary as printed at the end.
#[must_use]
pub fn render(summary: &Summary, elapsed_secs: f64) -> String {
    let job = &summary.job;
    let mut out = String::new();
    let status = match job.status {
        ImportStatus::Finished => "finished",
        other => other.as_str(),
    };
    #[allow(clippy::cast_precision_loss, reason = "a rate for display")]
    let rate = job.rows_read as f64 / elapsed_secs.max(0.001);
    out.push_str(&format!(
        "import {} {status}: {} rows read in {elapsed_secs:.1} s ({rate:.0} rows/s)\n",
        job.uuid, job.rows_read
    ));
    out.push_str(&format!(
        "  imported {}, updated {}, skipped {}, failed {}\n",
        job.imported, job.updated, job.skipped, job.failed
    ));
    if let Some(error) = &job.error {
        out.push_str(&format!("  error: {error}\n"));
    }
    for e in &summary.first_errors {
        out.push_str(&format!(
            "  line {}: {} ({})\n",
            e.line, e.reason, e.original
        ));
    }
    if job.failed > i64::try_from(summary.first_errors.len()).unwrap_or(i64::MAX) {
        out.push_str(&format!(
            "  … all {} bad rows: GET /api/v1/imports/{}/errors\n",
            job.failed, job.uuid
        ));
    }
    out
}
