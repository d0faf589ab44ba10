//! The claimer: takes deliveries from the queue for this process's lanes.
//! Priority mail (test sends) first, of campaigns in any state, then bulk
//! work, an equal share per running campaign that has a relay to go to.

use std::collections::HashMap;
use std::time::Instant;

use chrono::{DateTime, Utc};
use postino_db::sending::{self, ClaimFrom, Outcome, PriorityClaimed, Recorded};
use postino_db::{DbError, PgPool};

use crate::job::{self, Job};
use crate::lanes::Lanes;
use crate::prepared::Cache;
use crate::settings::SenderSettings;
use crate::shared::Shared;

/// Where each campaign's next claim resumes (see [`sending::claim`]).
type Resume = HashMap<i64, (DateTime<Utc>, i64)>;

/// What the claimer keeps between passes.
#[derive(Debug, Default)]
pub(crate) struct Claimer {
    cache: Cache,
    resume: Resume,
    /// Campaigns no relay can take, and since when.
    stranded: HashMap<i64, Instant>,
    /// A campaign started since the policy was last read: reread it (relays,
    /// limits, DKIM keys) before claiming, so a limit or key set just before
    /// the start applies to its first message, not only after the next
    /// reload.
    pub(crate) policy_stale: bool,
}

/// Claims up to `room` bulk deliveries spread over the running campaigns
/// that have a relay to go to.
pub(crate) async fn claim(
    pool: &PgPool,
    claimer: &mut Claimer,
    lanes: &Lanes,
    shared: &Shared,
    room: usize,
    settings: &SenderSettings,
) -> Result<Vec<Job>, DbError> {
    let mut conn = pool.acquire().await?;
    let running = sending::running_campaigns(&mut conn).await?;
    shared.running.set(running.iter().map(|c| c.id));
    shared.alarm.retain(|id| running.iter().any(|c| c.id == id));
    let ready = claimer
        .cache
        .refresh(&mut conn, &running, &shared.templates)
        .await;
    if claimer.cache.take_fresh() {
        claimer.policy_stale = true;
        return Ok(Vec::new());
    }
    let Claimer {
        cache,
        resume,
        stranded,
        ..
    } = claimer;
    stranded.retain(|c, _| ready.contains(c));
    let mut routable = Vec::with_capacity(ready.len());
    for &campaign in &ready {
        let group = cache.get(campaign).and_then(|p| p.smtp_group.clone());
        // A relay that is down is waited for, as any MTA would; one that
        // refuses our credentials, or a group with no relay, will not heal
        // by itself.
        if lanes.is_hopeless(group.as_ref()) {
            let since = *stranded.entry(campaign).or_insert_with(Instant::now);
            if since.elapsed() >= settings.failure_window {
                let reason = format!(
                    "paused automatically: {}",
                    lanes.why_unroutable(group.as_ref())
                );
                let _ = shared.pauses.send((campaign, reason));
                stranded.remove(&campaign);
                continue;
            }
        } else {
            stranded.remove(&campaign);
        }
        if lanes.can_route(group.as_ref()) {
            routable.push(campaign);
        }
    }
    resume.retain(|campaign, _| routable.contains(campaign));
    if routable.is_empty() || room == 0 {
        return Ok(Vec::new());
    }
    let per_campaign = room.div_ceil(routable.len());
    let from: Vec<ClaimFrom> = routable
        .iter()
        .map(|&campaign| ClaimFrom {
            campaign,
            after: resume.get(&campaign).copied(),
        })
        .collect();
    let claimed_at = Instant::now();
    let take_suspect = shared.suspect.is_free();
    let claimed = sending::claim(
        &mut conn,
        &from,
        i64::try_from(per_campaign).unwrap_or(i64::MAX),
        settings.lease,
        take_suspect,
    )
    .await?;
    if let Some(suspect) = claimed.iter().find(|c| c.lost_leases > 0) {
        shared.suspect.hold(suspect.id, claimed_at + settings.lease);
    }
    for campaign in &routable {
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
    let lease_deadline = claimed_at + settings.lease / 2;
    let mut jobs: Vec<Job> = claimed
        .into_iter()
        .filter_map(|claimed| {
            let campaign = cache.get(claimed.campaign_id)?;
            Some(Job {
                claimed,
                campaign,
                lease_deadline,
                rendered: None,
            })
        })
        .collect();
    drop(conn);
    job::prerender(&mut jobs, &shared.addressing).await;
    Ok(jobs)
}

/// What a priority claim took.
#[derive(Debug, Default)]
pub(crate) struct Priority {
    /// Ready for the lanes.
    pub(crate) jobs: Vec<Job>,
    /// Settled at once: their campaign cannot be compiled, which is the
    /// answer the waiting user gets.
    pub(crate) settled: Vec<Recorded>,
    /// A campaign was compiled for them just now: reread what it sends with
    /// (relays, limits, DKIM keys) before they go, so a relay or key added
    /// just before a test send is the one it uses.
    pub(crate) fresh: bool,
}

impl Priority {
    /// Deliveries claimed.
    pub(crate) fn claimed(&self) -> usize {
        self.jobs.len() + self.settled.len()
    }
}

/// Claims up to `room` due priority deliveries, of campaigns in any state,
/// and compiles their campaigns.
pub(crate) async fn claim_priority(
    pool: &PgPool,
    claimer: &mut Claimer,
    shared: &Shared,
    room: usize,
    settings: &SenderSettings,
) -> Result<Priority, DbError> {
    let mut taken = Priority::default();
    if room == 0 {
        return Ok(taken);
    }
    let mut conn = pool.acquire().await?;
    let claimed_at = Instant::now();
    let claimed = sending::claim_priority(
        &mut conn,
        i64::try_from(room).unwrap_or(i64::MAX),
        settings.lease,
        shared.suspect.is_free(),
    )
    .await?;
    if let Some(suspect) = claimed.iter().find(|c| c.claimed.lost_leases > 0) {
        shared
            .suspect
            .hold(suspect.claimed.id, claimed_at + settings.lease);
    }
    // As for bulk jobs: half the lease to wait, half to send.
    let lease_deadline = claimed_at + settings.lease / 2;
    for PriorityClaimed { claimed, campaign } in claimed {
        match claimer
            .cache
            .for_priority(&mut conn, campaign, &shared.templates)
            .await
        {
            Ok((prepared, fresh)) => {
                taken.fresh |= fresh;
                taken.jobs.push(Job {
                    claimed,
                    campaign: prepared,
                    lease_deadline,
                    rendered: None,
                });
            }
            Err(e) => taken.settled.push(Recorded {
                id: claimed.id,
                attempt: claimed.attempt,
                outcome: Outcome::Failed {
                    code: None,
                    reply: format!("cannot prepare the campaign: {e}"),
                    bounce: false,
                },
            }),
        }
    }
    drop(conn);
    job::prerender(&mut taken.jobs, &shared.addressing).await;
    Ok(taken)
}
