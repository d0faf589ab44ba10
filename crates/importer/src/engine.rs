//! One import job from file to database.
//!
//! A blocking thread reads and validates rows and packs each batch into
//! `COPY` text; the async side loads each batch into the staging table and
//! applies it with a few set-based statements, in one transaction together
//! with the job's progress and the batch's bad rows. A bounded channel of
//! two batches lets parsing overlap the database work while keeping memory
//! flat: at most three batches exist at once, whatever the file's size.
//!
//! Cancelling: the job row is the signal (`DELETE /api/v1/imports/{id}`
//! changes only the row). While it waits for a batch, the async side checks
//! the row every `import.poll_ms`; once the job is no longer its own, it sets
//! the parsing thread's cancel flag, which stops the thread at its next read
//! of the file even in the middle of one huge record, and waits for it.
//!
//! Resuming: the job row says how many data rows are committed. A resumed
//! job reads those rows again without importing them (so the duplicate check
//! knows the addresses they held) and carries on from the next one.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use postino_db::PgPool;
use postino_db::imports::{
    self, ApplyPlan, BatchCounts, Import, RowError, copy_into_staging, push_copy_field,
};
use postino_domain::{ImportMode, ImportStatus, MembershipStatus, OptIn};
use serde_json::Value;
use sqlx::Connection;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::parse::{BadRow, CsvRows, Limits};
use crate::{ImportError, ImportSettings};

/// Where a running job stands, reported after every committed batch.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    /// Bytes of the file behind the committed rows (approximately).
    pub bytes_read: u64,
    /// The file's size.
    pub file_bytes: u64,
    /// Data rows committed (good and bad).
    pub rows_read: u64,
    /// Totals so far.
    pub counts: BatchCounts,
}

/// One batch, as the parsing thread hands it over.
struct Batch {
    copy: Vec<u8>,
    good: i64,
    errors: Vec<RowError>,
    rows_read: u64,
    bytes_read: u64,
}

/// How a job ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Every row read.
    Finished,
    /// Shutdown asked the worker to stop; the job went back to the queue.
    Released,
}

/// Runs a claimed job to its end and records the outcome on the job row:
/// finished, or failed with the reason (what was committed stays, and the
/// counters say how much). Returns the job as it ended.
///
/// `stop` asks for a clean stop between batches: the job is released to the
/// queue for any process to resume. `on_progress` is called after every
/// committed batch.
///
/// # Errors
///
/// Only when the outcome itself cannot be recorded (the database is gone);
/// the job is then left to its lease, and taken over when that expires.
pub async fn run_job(
    pool: &PgPool,
    job: &Import,
    settings: &ImportSettings,
    stop: &CancellationToken,
    on_progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<Ended, ImportError> {
    let Some(token) = job.lease_token else {
        return Err(ImportError::Lost);
    };
    let outcome = process(pool, job, token, settings, stop, on_progress).await;
    let mut conn = pool.acquire().await?;
    let ended = match outcome {
        Ok(Ended::Finished) => {
            imports::finish(&mut conn, job.id, token, ImportStatus::Finished, None).await?;
            Ended::Finished
        }
        Ok(Ended::Released) => {
            imports::release(&mut conn, job.id, token).await?;
            return Ok(Ended::Released);
        }
        // Cancelled or taken over: whoever did that owns the job now.
        Err(ImportError::Lost) => return Err(ImportError::Lost),
        Err(e) => {
            tracing::warn!(import.id = %job.uuid, error = %e, "import failed");
            imports::finish(
                &mut conn,
                job.id,
                token,
                ImportStatus::Failed,
                Some(&e.to_string()),
            )
            .await?;
            Ended::Finished
        }
    };
    if job.owns_file {
        crate::store::discard(std::path::Path::new(&job.file_path)).await;
    }
    Ok(ended)
}

#[tracing::instrument(name = "import", skip_all, fields(import.id = %job.uuid))]
async fn process(
    pool: &PgPool,
    job: &Import,
    token: Uuid,
    settings: &ImportSettings,
    stop: &CancellationToken,
    on_progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<Ended, ImportError> {
    let path = PathBuf::from(&job.file_path);
    if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
        return Err(ImportError::FileMissing(job.file_path.clone()));
    }
    let mut conn = pool.acquire().await?;
    let plan = plan_for(&mut conn, job).await?;
    imports::prepare_staging(&mut conn).await?;

    let (sender, mut batches) = mpsc::channel::<Result<Batch, ImportError>>(2);
    let skip = u64::try_from(job.rows_read).unwrap_or(0);
    let batch_rows = settings.batch_rows.max(1);
    let cancel = Arc::new(AtomicBool::new(false));
    let limits = Limits {
        max_record_bytes: settings.max_record_bytes.max(1),
        cancel: Arc::clone(&cancel),
    };
    let reader =
        tokio::task::spawn_blocking(move || read_batches(&path, skip, batch_rows, limits, &sender));
    // Stops the thread whichever way this function returns.
    let _stop_reader = StopOnDrop(Arc::clone(&cancel));
    let mut check =
        tokio::time::interval_at(tokio::time::Instant::now() + poll(settings), poll(settings));
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let mut progress = Progress {
        bytes_read: u64::try_from(job.bytes_read).unwrap_or(0),
        file_bytes: u64::try_from(job.file_bytes).unwrap_or(0),
        rows_read: skip,
        counts: BatchCounts {
            imported: job.imported,
            updated: job.updated,
            skipped: job.skipped,
            failed: job.failed,
        },
    };
    let lease = lease_secs(settings);
    let mut ended = Ended::Finished;
    loop {
        let batch = tokio::select! {
            batch = batches.recv() => batch,
            _ = check.tick() => {
                if stop.is_cancelled() {
                    // Shutdown: what is committed stays; the job goes back
                    // to the queue and resumes from there.
                    ended = Ended::Released;
                    break;
                }
                if !still_ours(&mut conn, job, token).await? {
                    cancel.store(true, Ordering::Relaxed);
                    drop(batches);
                    let _ = reader.await;
                    return Err(ImportError::Lost);
                }
                continue;
            }
        };
        let Some(batch) = batch else { break };
        let mut batch = batch?;
        let mut tx = conn.begin().await?;
        let mut counts = BatchCounts {
            failed: i64::try_from(batch.errors.len()).unwrap_or(i64::MAX),
            ..BatchCounts::default()
        };
        if batch.good > 0 {
            copy_into_staging(&mut tx, std::mem::take(&mut batch.copy)).await?;
            imports::prefer_index_probes(&mut tx, !plan.overwrite).await?;
            let mut good = batch.good;
            if plan.overwrite {
                for (line, email) in imports::take_oversized_merges(&mut tx).await? {
                    good -= 1;
                    batch.errors.push(RowError {
                        line,
                        original: email,
                        reason: "attributes: merged with the subscriber's current ones, they \
                                 would exceed 100 keys or 16 KiB"
                            .to_owned(),
                    });
                }
                counts.failed = i64::try_from(batch.errors.len()).unwrap_or(i64::MAX);
            }
            let applied = imports::apply_staged(&mut tx, &plan).await?;
            counts.imported = applied.imported;
            counts.updated = applied.updated;
            counts.skipped = (good - applied.imported - applied.updated).max(0);
        }
        imports::record_errors(&mut tx, job.id, &batch.errors).await?;
        let held = imports::commit_progress(
            &mut tx,
            job.id,
            token,
            i64::try_from(batch.bytes_read).unwrap_or(i64::MAX),
            i64::try_from(batch.rows_read).unwrap_or(i64::MAX),
            counts,
            lease,
        )
        .await?;
        if !held {
            tx.rollback().await?;
            return Err(ImportError::Lost);
        }
        tx.commit().await?;
        progress.bytes_read = batch.bytes_read;
        progress.rows_read = batch.rows_read;
        progress.counts.imported += counts.imported;
        progress.counts.updated += counts.updated;
        progress.counts.skipped += counts.skipped;
        progress.counts.failed += counts.failed;
        on_progress(progress);
        if stop.is_cancelled() {
            ended = Ended::Released;
            break;
        }
    }
    // Dropping the receiver stops the thread at its next send; the flag
    // stops it inside a record.
    cancel.store(true, Ordering::Relaxed);
    drop(batches);
    match reader.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) if ended == Ended::Finished => return Err(e),
        Ok(Err(_)) => {}
        Err(e) => return Err(ImportError::Thread(e.to_string())),
    }
    Ok(ended)
}

/// Sets the parsing thread's cancel flag when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn poll(settings: &ImportSettings) -> Duration {
    Duration::from_millis(settings.poll_ms.max(10))
}

/// Whether this worker still holds the job: not cancelled, not taken over.
async fn still_ours(
    conn: &mut postino_db::PgConnection,
    job: &Import,
    token: Uuid,
) -> Result<bool, ImportError> {
    let now = imports::get(conn, job.uuid).await?;
    Ok(now.status == ImportStatus::Running && now.lease_token == Some(token))
}

fn lease_secs(settings: &ImportSettings) -> f64 {
    #[allow(clippy::cast_precision_loss, reason = "seconds, far below 2^52")]
    let secs = settings.lease_secs.max(1) as f64;
    secs
}

/// The lists as they are now (a list deleted since the upload drops out)
/// and the status a new membership gets on each.
async fn plan_for(
    conn: &mut postino_db::PgConnection,
    job: &Import,
) -> Result<ApplyPlan, ImportError> {
    let found = imports::list_opt_ins(conn, &job.list_ids).await?;
    if job.mode.needs_lists() && found.is_empty() {
        return Err(ImportError::Unreadable(
            "none of the import's lists exists any more".to_owned(),
        ));
    }
    let lists = found
        .into_iter()
        .map(|(id, opt_in)| {
            let status = match (opt_in, job.confirmed) {
                (OptIn::Double, false) => MembershipStatus::Unconfirmed,
                _ => MembershipStatus::Confirmed,
            };
            (id, status)
        })
        .collect();
    Ok(ApplyPlan {
        mode: job.mode,
        overwrite: job.overwrite,
        lists,
    })
}

/// The parsing thread: skips `skip` rows already committed, then sends
/// batches of up to `batch_rows` rows until the file ends or the receiver
/// goes away.
fn read_batches(
    path: &std::path::Path,
    skip: u64,
    batch_rows: usize,
    limits: Limits,
    sender: &mpsc::Sender<Result<Batch, ImportError>>,
) -> Result<(), ImportError> {
    let mut rows = match CsvRows::open_with(path, limits) {
        Ok(rows) => rows,
        Err(e) => {
            let _ = sender.blocking_send(Err(ImportError::Unreadable(e.to_string())));
            return Ok(());
        }
    };
    let mut read: u64 = 0;
    while read < skip {
        if rows.next_row()?.is_none() {
            break;
        }
        read += 1;
    }
    loop {
        let mut batch = Batch {
            copy: Vec::with_capacity(batch_rows * 96),
            good: 0,
            errors: Vec::new(),
            rows_read: read,
            bytes_read: 0,
        };
        let mut in_batch = 0;
        let mut end = false;
        let mut failed = None;
        while in_batch < batch_rows {
            let next = match rows.next_row() {
                Ok(next) => next,
                Err(e) => {
                    // The rows before the one that cannot be read are
                    // good: commit them, then fail the job.
                    failed = Some(e);
                    break;
                }
            };
            match next {
                None => {
                    end = true;
                    break;
                }
                Some(Ok(row)) => {
                    push_row(&mut batch.copy, &row);
                    batch.good += 1;
                }
                Some(Err(bad)) => batch.errors.push(row_error(bad)),
            }
            in_batch += 1;
            read += 1;
        }
        batch.rows_read = read;
        batch.bytes_read = rows.bytes_read();
        if in_batch > 0 && sender.blocking_send(Ok(batch)).is_err() {
            return Ok(());
        }
        if let Some(e) = failed {
            return Err(e);
        }
        if end {
            return Ok(());
        }
    }
}

fn row_error(bad: BadRow) -> RowError {
    RowError {
        line: i64::try_from(bad.line).unwrap_or(i64::MAX),
        original: bad.original,
        reason: bad.reason,
    }
}

/// One staging row in `COPY` text format: line, uuid, email, name, attributes.
fn push_row(buf: &mut Vec<u8>, row: &crate::parse::Row) {
    buf.extend_from_slice(row.line.to_string().as_bytes());
    buf.push(b'\t');
    buf.extend_from_slice(Uuid::now_v7().to_string().as_bytes());
    buf.push(b'\t');
    push_copy_field(buf, Some(row.email.as_str()));
    buf.push(b'\t');
    push_copy_field(
        buf,
        row.name
            .as_ref()
            .map(postino_domain::SubscriberName::as_str),
    );
    buf.push(b'\t');
    let attributes = row
        .attributes
        .as_ref()
        .map(|a| Value::Object(a.as_map().clone()).to_string());
    push_copy_field(buf, attributes.as_deref());
    buf.push(b'\n');
}

/// Creates a job for a file named on the command line and claims it at once
/// (the file stays the user's: it is not deleted afterwards).
///
/// # Errors
///
/// If the file is unusable or the database refuses.
pub async fn create_local_job(
    pool: &PgPool,
    path: &std::path::Path,
    mode: ImportMode,
    list_ids: Vec<i64>,
    overwrite: bool,
    confirmed: bool,
    settings: &ImportSettings,
) -> Result<Import, ImportError> {
    let absolute = std::fs::canonicalize(path)?;
    let file_bytes = std::fs::metadata(&absolute)?.len();
    // Check the header before creating anything.
    let check = absolute.clone();
    tokio::task::spawn_blocking(move || CsvRows::open(&check).map(|_| ()))
        .await
        .map_err(|e| ImportError::Thread(e.to_string()))??;
    let mut conn = pool.acquire().await?;
    let job = imports::create(
        &mut conn,
        &imports::NewImport {
            uuid: Uuid::now_v7(),
            mode,
            overwrite,
            confirmed,
            list_ids,
            file_name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            file_path: absolute.to_string_lossy().into_owned(),
            owns_file: false,
            file_bytes: i64::try_from(file_bytes).unwrap_or(i64::MAX),
        },
    )
    .await?;
    Ok(imports::claim(&mut conn, job.id, lease_secs(settings)).await?)
}
