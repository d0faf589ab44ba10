//! The sender: drains the delivery queue through SMTP.
//!
//! One claimer takes due deliveries of running campaigns in batches (`FOR
//! UPDATE SKIP LOCKED`, an equal share per campaign) under a lease, and hands
//! them to workers through a bounded channel. Each worker owns one SMTP
//! session to one relay, so a relay sees at most its `max_connections`
//! sessions; it renders each message from the campaign compiled once, sends
//! it, and passes the result on. A recorder writes results in batches, one
//! transaction each.
//!
//! Crash safety comes from the lease: a claim that is never recorded (the
//! process died) expires, and the scheduler puts the delivery back in the
//! queue. Duplicates are bounded by what was claimed and unrecorded at the
//! crash. Nothing coordinates senders but rows and locks, so any number of
//! sender processes can share one database.
//!
//! # Layout
//!
//! - [`SenderSettings`] — `[sender]`: batch sizes, lease, retry policy, bounces.
//! - [`run`] — the sender until shut down.
//! - `prepared` — compiled campaigns and the set of running ones.
//! - `worker` — one SMTP session, one message at a time; how replies settle.
//! - `recorder` — batched result writes.
//! - `dkim` — the DKIM keys the workers sign with, reread with the relays.
//!
//! Dependency rule: depends on `postino-db`, `postino-compose`,
//! `postino-smtp` and `postino-domain`; meets the web and scheduler roles in
//! database rows only.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod dkim;
mod prepared;
mod recorder;
mod settings;
mod worker;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use postino_compose::Addressing;
use postino_db::sending::ClaimFrom;
use postino_db::smtp_servers::SmtpServer;
use postino_db::{DbError, PgPool, sending, smtp_servers};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use settings::SenderSettings;

use prepared::{Cache, Running};
use worker::{Job, Shared};

/// How often the running set is reread even while the workers are busy,
/// which bounds how long a paused campaign keeps sending.
const RUNNING_REFRESH: Duration = Duration::from_millis(500);
/// How long the claimer waits for room in the job channel before looking again.
const ROOM_POLL: Duration = Duration::from_millis(5);

/// The workers of the current relay configuration.
#[derive(Debug, Default)]
struct Workers {
    /// The relays they were started for, with their last change.
    key: Vec<(i64, DateTime<Utc>)>,
    stop: CancellationToken,
    /// Current and retiring workers, all awaited at shutdown.
    handles: Vec<JoinHandle<()>>,
    count: usize,
}

impl Workers {
    /// Starts `max_connections` workers per relay, retiring the previous ones
    /// after their current message.
    fn replace(
        &mut self,
        servers: &[SmtpServer],
        jobs: &async_channel::Receiver<Job>,
        results: &mpsc::Sender<Recorded>,
        shared: &Arc<Shared>,
        shutdown: &CancellationToken,
    ) {
        self.stop.cancel();
        self.handles.retain(|h| !h.is_finished());
        self.stop = shutdown.child_token();
        self.key = servers.iter().map(|s| (s.id, s.updated_at)).collect();
        self.count = 0;
        for server in servers {
            let settings = Arc::new(server.settings.clone());
            for _ in 0..server.settings.max_connections.max(1) {
                self.handles.push(tokio::spawn(worker::run(
                    settings.clone(),
                    jobs.clone(),
                    results.clone(),
                    shared.clone(),
                    self.stop.clone(),
                )));
                self.count += 1;
            }
        }
        tracing::info!(
            relays = servers.len(),
            workers = self.count,
            "sender workers started"
        );
    }

    async fn stop(self) {
        self.stop.cancel();
        for h in self.handles {
            let _ = h.await;
        }
    }
}

use postino_db::sending::Recorded;

/// Where each campaign's next claim resumes (see [`sending::claim`]).
type Resume = HashMap<i64, (DateTime<Utc>, i64)>;

/// Claims up to `room` deliveries spread over the running campaigns.
async fn claim(
    pool: &PgPool,
    cache: &mut Cache,
    resume: &mut Resume,
    shared: &Shared,
    room: usize,
    lease: Duration,
) -> Result<Vec<Job>, DbError> {
    let mut conn = pool.acquire().await?;
    let running = sending::running_campaigns(&mut conn).await?;
    shared.running.set(running.iter().map(|c| c.id));
    let ready = cache.refresh(&mut conn, &running).await;
    resume.retain(|campaign, _| ready.contains(campaign));
    if ready.is_empty() || room == 0 {
        return Ok(Vec::new());
    }
    let per_campaign = room.div_ceil(ready.len());
    let from: Vec<ClaimFrom> = ready
        .iter()
        .map(|&campaign| ClaimFrom {
            campaign,
            after: resume.get(&campaign).copied(),
        })
        .collect();
    let claimed_at = Instant::now();
    let claimed = sending::claim(
        &mut conn,
        &from,
        i64::try_from(per_campaign).unwrap_or(i64::MAX),
        lease,
    )
    .await?;
    for campaign in &ready {
        let mine = claimed.iter().filter(|c| c.campaign_id == *campaign);
        let last = mine.clone().map(|c| (c.run_at, c.id)).max();
        if mine.count() < per_campaign {
            // Short: start from the head next time, for anything put back.
            resume.remove(campaign);
        } else if let Some(last) = last {
            resume.insert(*campaign, last);
        }
    }
    // Half the lease: a job still waiting by then is handed back unsent,
    // leaving the other half for a send in progress to finish.
    let lease_deadline = claimed_at + lease / 2;
    Ok(claimed
        .into_iter()
        .filter_map(|claimed| {
            let campaign = cache.get(claimed.campaign_id)?;
            Some(Job {
                claimed,
                campaign,
                lease_deadline,
            })
        })
        .collect())
}

async fn refresh_running(pool: &PgPool, shared: &Shared) -> Result<(), DbError> {
    let mut conn = pool.acquire().await?;
    let running = sending::running_campaigns(&mut conn).await?;
    shared.running.set(running.iter().map(|c| c.id));
    Ok(())
}

/// Sleeps `d`, or less if shutdown comes first; says whether to go on.
async fn pause(shutdown: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => false,
        () = tokio::time::sleep(d) => true,
    }
}

/// Runs the sender until `shutdown` is cancelled. On shutdown, workers finish
/// the message in hand, unsent claims go back to the queue, and every result
/// is written before this returns.
///
/// # Errors
///
/// A message naming the setting at fault, before anything starts.
pub async fn run(
    pool: PgPool,
    settings: SenderSettings,
    addressing: Addressing,
    shutdown: CancellationToken,
) -> Result<(), String> {
    settings.validate()?;
    let retry = settings
        .retry_policy()
        .map_err(|e| format!("sender.{}: {}", e.what, e.reason))?;
    let capacity = usize::try_from(settings.batch_size).unwrap_or(500).max(1);
    let shared = Arc::new(Shared {
        addressing,
        retry,
        running: Running::default(),
        dkim: dkim::Keys::default(),
    });
    let (jobs_tx, jobs_rx) = async_channel::bounded::<Job>(capacity);
    let (results_tx, results_rx) = mpsc::channel::<Recorded>(settings.record_batch * 4);
    let recorder = tokio::spawn(recorder::run(
        pool.clone(),
        results_rx,
        recorder::Batching {
            max: settings.record_batch,
            interval: settings.record_interval,
            blocklist_after: i64::from(settings.blocklist_after_bounces),
        },
    ));

    let mut workers = Workers::default();
    let mut cache = Cache::default();
    let mut resume = Resume::new();
    let mut servers_read: Option<Instant> = None;
    let mut running_read = Instant::now();
    let mut warned_no_relay = false;
    while !shutdown.is_cancelled() {
        if servers_read.is_none_or(|t| t.elapsed() >= settings.reload_servers) {
            servers_read = Some(Instant::now());
            dkim::reload(&pool, &shared).await;
            match load_servers(&pool).await {
                Ok(servers) => {
                    let key: Vec<_> = servers.iter().map(|s| (s.id, s.updated_at)).collect();
                    if key != workers.key || (workers.count == 0 && !servers.is_empty()) {
                        workers.replace(&servers, &jobs_rx, &results_tx, &shared, &shutdown);
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot read the SMTP servers"),
            }
        }
        if workers.count == 0 {
            if !warned_no_relay {
                tracing::warn!("no SMTP server is enabled; nothing is sent until one is");
                warned_no_relay = true;
            }
            if !pause(&shutdown, settings.idle_poll).await {
                break;
            }
            continue;
        }
        warned_no_relay = false;
        let room = capacity.saturating_sub(jobs_tx.len());
        if room < capacity.div_ceil(2) {
            if running_read.elapsed() >= RUNNING_REFRESH {
                running_read = Instant::now();
                if let Err(e) = refresh_running(&pool, &shared).await {
                    tracing::error!(error = %e, "cannot read running campaigns");
                }
            }
            if !pause(&shutdown, ROOM_POLL).await {
                break;
            }
            continue;
        }
        running_read = Instant::now();
        match claim(
            &pool,
            &mut cache,
            &mut resume,
            &shared,
            room,
            settings.lease,
        )
        .await
        {
            Ok(jobs) if jobs.is_empty() => {
                if !pause(&shutdown, settings.idle_poll).await {
                    break;
                }
            }
            Ok(jobs) => {
                for job in jobs {
                    if let Err(unsent) = jobs_tx.send(job).await {
                        let _ = results_tx.send(unsent.into_inner().released()).await;
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot claim deliveries");
                if !pause(&shutdown, settings.idle_poll).await {
                    break;
                }
            }
        }
    }
    workers.stop().await;
    jobs_tx.close();
    while let Ok(job) = jobs_rx.try_recv() {
        let _ = results_tx.send(job.released()).await;
    }
    drop(results_tx);
    let _ = recorder.await;
    Ok(())
}

async fn load_servers(pool: &PgPool) -> Result<Vec<SmtpServer>, DbError> {
    let mut conn = pool.acquire().await?;
    smtp_servers::enabled(&mut conn).await
}
