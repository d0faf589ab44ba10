//! Writes results in batches: one transaction per batch, not per message.

use std::time::Duration;

use postino_db::PgPool;
use postino_db::sending::{self, Outcome, Recorded};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Batching limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Batching {
    pub(crate) max: usize,
    pub(crate) interval: Duration,
    pub(crate) blocklist_after: i64,
}

/// Runs until every sender of results is gone, then writes what is left.
/// A batch that fails to write is retried, never dropped: until it lands,
/// its deliveries stay `sending` and a lease expiry would only resend them.
pub(crate) async fn run(pool: PgPool, mut results: mpsc::Receiver<Recorded>, batching: Batching) {
    let mut batch = Vec::with_capacity(batching.max);
    while let Some(first) = results.recv().await {
        batch.push(first);
        let deadline = Instant::now() + batching.interval;
        while batch.len() < batching.max {
            tokio::select! {
                r = results.recv() => match r {
                    Some(r) => batch.push(r),
                    None => break,
                },
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        write(&pool, &batch, batching.blocklist_after).await;
        batch.clear();
    }
}

async fn write(pool: &PgPool, batch: &[Recorded], blocklist_after: i64) {
    let mut pause = Duration::from_millis(100);
    let mut tries = 0u32;
    loop {
        match try_write(pool, batch, blocklist_after).await {
            Ok(report) => {
                count(batch);
                if report.blocklisted > 0 {
                    tracing::info!(
                        subscribers = report.blocklisted,
                        "blocklisted after repeated hard bounces"
                    );
                }
                return;
            }
            Err(e) => {
                tries += 1;
                tracing::error!(error = %e, results = batch.len(), tries, "cannot record delivery results; retrying");
                // Give up only when the pool is closed (shutting down):
                // the leases then return these deliveries to the queue.
                if pool.is_closed() {
                    return;
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(10));
            }
        }
    }
}

async fn try_write(
    pool: &PgPool,
    batch: &[Recorded],
    blocklist_after: i64,
) -> Result<sending::RecordReport, postino_db::DbError> {
    let mut tx = pool.begin().await?;
    let report = sending::record(&mut tx, batch, blocklist_after).await?;
    tx.commit().await?;
    Ok(report)
}

fn count(batch: &[Recorded]) {
    let (mut sent, mut retried, mut failed, mut bounced, mut skipped, mut released, mut deferred) =
        (0u64, 0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    for r in batch {
        match &r.outcome {
            Outcome::Sent { .. } => sent += 1,
            Outcome::Retry { .. } => retried += 1,
            Outcome::Failed { bounce: true, .. } => bounced += 1,
            Outcome::Failed { .. } => failed += 1,
            Outcome::Skipped { .. } => skipped += 1,
            Outcome::Released => released += 1,
            Outcome::Deferred { .. } => deferred += 1,
        }
    }
    for (outcome, n) in [
        ("sent", sent),
        ("retried", retried),
        ("failed", failed),
        ("bounced", bounced),
        ("skipped", skipped),
        ("released", released),
        ("deferred", deferred),
    ] {
        if n > 0 {
            metrics::counter!("postino_deliveries_total", "outcome" => outcome).increment(n);
        }
    }
}
