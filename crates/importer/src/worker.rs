//! The background import worker inside `postino serve`.
//!
//! Jobs are claimed from the `imports` table with a lease (see
//! `postino_db::imports::claim_next`), never handed over in memory, so any
//! number of processes can run workers against one database, and a job
//! whose process died is taken over once its lease expires: it resumes after
//! its last committed batch. On shutdown a worker finishes the batch in hand
//! and puts its job back in the queue.

use std::time::Duration;

use postino_db::PgPool;
use postino_db::imports;
use tokio_util::sync::CancellationToken;

use crate::ImportSettings;
use crate::engine::{self, Ended};

/// Runs `settings.workers` workers until `shutdown` is cancelled.
pub async fn run(pool: PgPool, settings: ImportSettings, shutdown: CancellationToken) {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..settings.workers {
        tasks.spawn(work(pool.clone(), settings.clone(), shutdown.clone()));
    }
    while tasks.join_next().await.is_some() {}
}

async fn work(pool: PgPool, settings: ImportSettings, shutdown: CancellationToken) {
    let idle = Duration::from_millis(settings.poll_ms.max(10));
    while !shutdown.is_cancelled() {
        match run_next(&pool, &settings, &shutdown).await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "import worker: cannot claim a job"),
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(idle) => {}
        }
    }
}

/// Claims and runs one job if there is one; returns whether there was.
///
/// # Errors
///
/// If the claim itself fails (the database is unreachable).
pub async fn run_next(
    pool: &PgPool,
    settings: &ImportSettings,
    stop: &CancellationToken,
) -> Result<bool, crate::ImportError> {
    let mut conn = pool.acquire().await?;
    #[allow(clippy::cast_precision_loss, reason = "seconds, far below 2^52")]
    let lease = settings.lease_secs.max(1) as f64;
    let Some(job) = imports::claim_next(&mut conn, lease).await? else {
        return Ok(false);
    };
    drop(conn);
    tracing::info!(import.id = %job.uuid, resumed_at_row = job.rows_read, "import started");
    // A panic in the job is a bug; catch it so the worker survives, and let
    // the lease hand the job to the next claim.
    let outcome = tokio::spawn({
        let pool = pool.clone();
        let settings = settings.clone();
        let stop = stop.clone();
        async move { engine::run_job(&pool, &job, &settings, &stop, &mut |_| {}).await }
    })
    .await;
    match outcome {
        Ok(Ok(Ended::Finished)) => tracing::info!("import ended"),
        Ok(Ok(Ended::Released)) => tracing::info!("import released for shutdown"),
        Ok(Err(e)) => tracing::warn!(error = %e, "import stopped"),
        Err(e) => tracing::error!(error = %e, "import job panicked"),
    }
    Ok(true)
}
