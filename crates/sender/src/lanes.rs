//! One lane per relay: its workers, the jobs waiting for them, its limits
//! and its circuit breaker. The claimer spreads jobs over the lanes by
//! weight (smooth weighted round robin) among the relays of the campaign's
//! group that are in rotation and have room.
//!
//! Each lane has two queues: bulk, sized to keep its workers busy, and
//! priority, small and taken first, so a test send waits for at most the
//! message in hand (and the relay's limits), not for hundreds of bulk
//! messages claimed before it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use postino_db::sending::Recorded;
use postino_db::smtp_servers::SmtpServer;
use postino_domain::ServerGroup;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::breaker::{Breaker, BreakerSettings};
use crate::job::Job;
use crate::policy::Policy;
use crate::rates::Rate;
use crate::relay::Relay;
use crate::shared::Shared;
use crate::worker::{self, Queues};

/// Priority jobs a lane holds: a few, since they are taken first and
/// claimed only as room allows.
const PRIORITY_CAPACITY: usize = 32;

#[derive(Debug)]
struct Lane {
    relay: Arc<Relay>,
    group: ServerGroup,
    weight: i64,
    jobs: async_channel::Sender<Job>,
    priority: async_channel::Sender<Job>,
    /// The workers' ends, to take back what is left when the lane goes.
    waiting: Queues,
    capacity: usize,
    workers: u32,
    current: i64,
}

impl Lane {
    fn usable(&self) -> bool {
        self.workers > 0 && self.relay.breaker.is_closed()
    }

    fn has_room(&self, priority: bool) -> bool {
        if priority {
            self.priority.len() < PRIORITY_CAPACITY
        } else {
            self.jobs.len() < self.capacity
        }
    }

    fn close(&self) {
        self.jobs.close();
        self.priority.close();
    }

    fn take_waiting(&self) -> Vec<Job> {
        let mut left = Vec::new();
        while let Ok(job) = self.waiting.priority.try_recv() {
            left.push(job);
        }
        while let Ok(job) = self.waiting.bulk.try_recv() {
            left.push(job);
        }
        left
    }

    fn serves(&self, group: Option<&ServerGroup>) -> bool {
        group.is_none_or(|g| *g == self.group)
    }
}

/// What the lanes were built from; a change rebuilds them.
type Key = (Vec<(i64, DateTime<Utc>, u32)>, Option<u64>);

/// Every relay's lane.
#[derive(Debug, Default)]
pub(crate) struct Lanes {
    key: Option<Key>,
    lanes: Vec<Lane>,
    /// Breakers outlive a rebuild: editing a relay does not forget it failed.
    breakers: HashMap<i64, Arc<Breaker>>,
    stop: CancellationToken,
    handles: Vec<JoinHandle<()>>,
}

/// Everything a rebuild needs besides the relays.
#[derive(Debug)]
pub(crate) struct Wiring<'a> {
    pub(crate) results: &'a mpsc::Sender<Recorded>,
    pub(crate) shared: &'a Arc<Shared>,
    pub(crate) shutdown: &'a CancellationToken,
    pub(crate) breaker: BreakerSettings,
    /// Jobs held ready across all lanes.
    pub(crate) capacity: usize,
}

impl Lanes {
    /// Rebuilds the lanes if the relays, this process's share of their
    /// connections or the global rate changed. Workers of the old lanes
    /// finish the message in hand; jobs still waiting go back to the queue.
    pub(crate) async fn update(
        &mut self,
        servers: &[SmtpServer],
        policy: &Policy,
        wiring: &Wiring<'_>,
    ) {
        let key: Key = (
            servers
                .iter()
                .map(|s| {
                    (
                        s.id,
                        s.updated_at,
                        policy.share(s.settings.max_connections.max(1)),
                    )
                })
                .collect(),
            policy.global.map(f64::to_bits),
        );
        if self.key.as_ref() == Some(&key) {
            return;
        }
        self.stop.cancel();
        for lane in self.lanes.drain(..) {
            lane.close();
            for job in lane.take_waiting() {
                let _ = wiring.results.send(job.released()).await;
            }
        }
        self.handles.retain(|h| !h.is_finished());
        self.stop = wiring.shutdown.child_token();
        self.breakers
            .retain(|id, _| servers.iter().any(|s| s.id == *id));
        let total_weight: u64 = servers.iter().map(|s| u64::from(s.policy.weight)).sum();
        let mut workers_started = 0;
        for server in servers {
            let mut rates = Vec::new();
            if let Some(w) = server.policy.window {
                rates.push(Rate::new(
                    &format!("server:{}:window", server.id),
                    w.messages,
                    Duration::from_secs(u64::from(w.secs)),
                ));
            }
            if let Some(r) = server.policy.messages_per_second {
                rates.push(Rate::per_second(&format!("server:{}", server.id), r));
            }
            if let Some(r) = policy.global {
                rates.push(Rate::per_second("global", r));
            }
            rates.sort_by_key(|r| std::cmp::Reverse(r.window));
            let breaker = self
                .breakers
                .entry(server.id)
                .or_insert_with(|| Arc::new(Breaker::new(wiring.breaker)))
                .clone();
            let relay = Arc::new(Relay {
                name: server.name.clone(),
                settings: server.settings.clone(),
                rates,
                breaker,
                gate: tokio::sync::Mutex::new(()),
            });
            let workers = policy.share(server.settings.max_connections.max(1));
            let by_weight = u64::try_from(wiring.capacity).unwrap_or(u64::MAX)
                * u64::from(server.policy.weight)
                / total_weight.max(1);
            let capacity = usize::try_from(by_weight)
                .unwrap_or(usize::MAX)
                .max(2 * workers as usize)
                .max(1);
            let (tx, rx) = async_channel::bounded(capacity);
            let (priority_tx, priority_rx) = async_channel::bounded(PRIORITY_CAPACITY);
            let queues = Queues {
                priority: priority_rx,
                bulk: rx,
            };
            for _ in 0..workers {
                self.handles.push(tokio::spawn(worker::run(
                    relay.clone(),
                    queues.clone(),
                    wiring.results.clone(),
                    wiring.shared.clone(),
                    self.stop.clone(),
                )));
            }
            workers_started += workers;
            self.lanes.push(Lane {
                relay,
                group: server.policy.group.clone(),
                weight: i64::from(server.policy.weight),
                jobs: tx,
                priority: priority_tx,
                waiting: queues,
                capacity,
                workers,
                current: 0,
            });
        }
        self.key = Some(key);
        tracing::info!(
            relays = servers.len(),
            workers = workers_started,
            processes = policy.processes,
            "sender workers started"
        );
    }

    /// Publishes which relays are in rotation, as metrics.
    pub(crate) fn report(&self) {
        for l in &self.lanes {
            metrics::gauge!("postino_relay_in_rotation", "relay" => l.relay.name.clone()).set(
                if l.relay.breaker.is_closed() {
                    1.0
                } else {
                    0.0
                },
            );
            metrics::gauge!("postino_relay_connections", "relay" => l.relay.name.clone())
                .set(f64::from(l.workers));
        }
    }

    /// Whether any relay has workers in this process.
    pub(crate) fn has_workers(&self) -> bool {
        self.lanes.iter().any(|l| l.workers > 0)
    }

    /// Jobs the usable lanes can hold, and how many more they can take now.
    pub(crate) fn room(&self) -> (usize, usize) {
        self.lanes
            .iter()
            .filter(|l| l.usable())
            .fold((0, 0), |(cap, room), l| {
                (
                    cap + l.capacity,
                    room + l.capacity.saturating_sub(l.jobs.len()),
                )
            })
    }

    /// Priority jobs the lanes with workers can take now. Lanes out of
    /// rotation count: a test send for one is answered with why, rather
    /// than left waiting.
    pub(crate) fn priority_room(&self) -> usize {
        self.lanes
            .iter()
            .filter(|l| l.workers > 0)
            .map(|l| PRIORITY_CAPACITY.saturating_sub(l.priority.len()))
            .sum()
    }

    /// Whether a relay serving `group` has workers in this process, in
    /// rotation or not.
    pub(crate) fn has_workers_for(&self, group: Option<&ServerGroup>) -> bool {
        self.lanes.iter().any(|l| l.workers > 0 && l.serves(group))
    }

    /// Whether a campaign pinned to `group` (or to none) has a relay to go to.
    pub(crate) fn can_route(&self, group: Option<&ServerGroup>) -> bool {
        self.lanes.iter().any(|l| l.usable() && l.serves(group))
    }

    /// Whether waiting will not give a campaign pinned to `group` a relay:
    /// none serves the group, or every one refused our credentials the last
    /// time it was tried.
    pub(crate) fn is_hopeless(&self, group: Option<&ServerGroup>) -> bool {
        self.lanes
            .iter()
            .filter(|l| l.serves(group))
            .all(|l| l.relay.breaker.is_misconfigured())
    }

    /// Why a campaign pinned to `group` has nowhere to go, in words.
    pub(crate) fn why_unroutable(&self, group: Option<&ServerGroup>) -> String {
        let serving: Vec<&Lane> = self.lanes.iter().filter(|l| l.serves(group)).collect();
        if serving.is_empty() {
            return match group {
                Some(g) => format!("no enabled SMTP server is in the group \"{}\"", g.as_str()),
                None => "no SMTP server is enabled".to_owned(),
            };
        }
        let failing: Vec<String> = serving
            .iter()
            .map(|l| match l.relay.breaker.last_error() {
                Some(e) => format!("\"{}\": {e}", l.relay.name),
                None => format!("\"{}\": no connection slot in this sender", l.relay.name),
            })
            .collect();
        format!("no SMTP server can take its mail: {}", failing.join("; "))
    }

    /// Hands a job to a lane of its campaign's group, by weight among those
    /// in rotation with room in the job's queue (bulk or priority, by its
    /// kind). Gives the job back when none can take it.
    pub(crate) fn dispatch(&mut self, job: Job) -> Option<Job> {
        let group = job.campaign.smtp_group.clone();
        let priority = job.claimed.kind.is_priority();
        let mut job = job;
        let mut tried = vec![false; self.lanes.len()];
        loop {
            let candidates: Vec<usize> = (0..self.lanes.len())
                .filter(|&i| {
                    let l = &self.lanes[i];
                    !tried[i] && l.usable() && l.serves(group.as_ref()) && l.has_room(priority)
                })
                .collect();
            let total: i64 = candidates.iter().map(|&i| self.lanes[i].weight).sum();
            let mut best: Option<usize> = None;
            for &i in &candidates {
                self.lanes[i].current += self.lanes[i].weight;
                if best.is_none_or(|b| self.lanes[i].current > self.lanes[b].current) {
                    best = Some(i);
                }
            }
            let Some(chosen) = best else {
                return Some(job);
            };
            self.lanes[chosen].current -= total;
            let lane = &self.lanes[chosen];
            let queue = if priority { &lane.priority } else { &lane.jobs };
            match queue.try_send(job) {
                Ok(()) => return None,
                Err(e) => {
                    tried[chosen] = true;
                    job = e.into_inner();
                }
            }
        }
    }

    /// Stops every worker after the message in hand and returns the jobs
    /// still waiting, to be released.
    pub(crate) async fn stop(self) -> Vec<Job> {
        self.stop.cancel();
        for h in self.handles {
            let _ = h.await;
        }
        let mut left = Vec::new();
        for lane in self.lanes {
            lane.close();
            left.extend(lane.take_waiting());
        }
        left
    }
}
