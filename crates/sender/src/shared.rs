//! What the claimer and every worker of this process share: how messages
//! are addressed and rendered, the limits and gates they pass, the alarm,
//! the DKIM keys, and the one suspect delivery this process may hold.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postino_compose::Addressing;
use postino_db::PgPool;
use postino_domain::RetryPolicy;
use tokio::sync::mpsc;

use crate::alarm::Alarm;
use crate::dkim::Keys;
use crate::domains::{DomainRule, Domains};
use crate::policy::domain_rate;
use crate::prepared::Running;
use crate::rates::Rates;

/// What every worker shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) addressing: Addressing,
    /// Renders each message in a process of its own.
    pub(crate) templates: postino_sandbox::Sandbox,
    pub(crate) retry: RetryPolicy,
    pub(crate) running: Running,
    pub(crate) pool: PgPool,
    pub(crate) rates: Rates,
    pub(crate) domains: Arc<Domains>,
    pub(crate) alarm: Alarm,
    /// Campaigns to pause, and why; the claimer writes them.
    pub(crate) pauses: mpsc::UnboundedSender<(i64, String)>,
    pub(crate) throttle: Throttle,
    /// Sender processes alive, for the rate a domain was seeing.
    pub(crate) processes: AtomicU32,
    /// The DKIM keys messages are signed with.
    pub(crate) dkim: Keys,
    /// The suspect this process holds, if any (see [`Suspect`]).
    pub(crate) suspect: Suspect,
}

/// The one suspect delivery (one a dead sender held) this process may have
/// in flight. Claimed alone, a suspect that kills its sender takes no other
/// suspect with it, so a delivery that crashes senders reaches
/// [`postino_domain::MAX_LOST_LEASES`] and is failed while the deliveries
/// that merely shared its batch go out. The slot frees itself when the
/// claim's lease ends, whatever became of the job.
#[derive(Debug, Default)]
pub(crate) struct Suspect(std::sync::Mutex<Option<(i64, Instant)>>);

impl Suspect {
    pub(crate) fn is_free(&self) -> bool {
        self.0.lock().map_or(true, |held| {
            held.is_none_or(|(_, until)| Instant::now() >= until)
        })
    }

    pub(crate) fn hold(&self, delivery: i64, until: Instant) {
        if let Ok(mut held) = self.0.lock() {
            *held = Some((delivery, until));
        }
    }

    /// Frees the slot if `delivery` holds it.
    pub(crate) fn done(&self, delivery: i64) {
        if let Ok(mut held) = self.0.lock()
            && held.is_some_and(|(id, _)| id == delivery)
        {
            *held = None;
        }
    }
}

/// How domains that ask us to slow down are slowed.
#[derive(Debug)]
pub(crate) struct Throttle {
    pub(crate) calm: Duration,
    pub(crate) floor_per_minute: u32,
    /// When this process last slowed each domain: replies to messages
    /// already in flight arrive together and count once.
    pub(crate) slowed: Mutex<HashMap<String, Instant>>,
}

impl Shared {
    /// A domain answered "slow down": halve its rate for every sender, and
    /// apply the new rate here at once.
    pub(crate) async fn slow_down(&self, domain: &str) {
        let calm = self.throttle.calm;
        {
            let mut slowed = self
                .throttle
                .slowed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if slowed.get(domain).is_some_and(|at| at.elapsed() < calm) {
                return;
            }
            slowed.insert(domain.to_owned(), Instant::now());
        }
        let observed = self
            .domains
            .observed_per_minute(domain)
            .saturating_mul(self.processes.load(Ordering::Relaxed).max(1));
        let written = match self.pool.acquire().await {
            Ok(mut conn) => {
                postino_db::policy::slow_down(
                    &mut conn,
                    domain,
                    observed,
                    self.throttle.floor_per_minute,
                    calm,
                )
                .await
            }
            Err(e) => Err(e.into()),
        };
        match written {
            Ok(per_minute) => {
                tracing::info!(
                    domain,
                    per_minute,
                    "domain asked us to slow down; throttled"
                );
                metrics::counter!("postino_domain_slowdowns_total").increment(1);
                self.domains.set_rule(
                    domain,
                    DomainRule {
                        in_flight: self.domains.in_flight_limit(domain),
                        rate: Some(domain_rate(domain, per_minute)),
                    },
                );
            }
            Err(e) => tracing::error!(domain, error = %e, "cannot record a domain throttle"),
        }
    }
}
