//! Per-recipient-domain limits: messages in flight and messages per minute,
//! set by users or by the sender itself when a domain asks it to slow down.
//!
//! A message for a domain at its limit is not waited for, which would hold
//! up every other domain: it goes back to the queue, due when the domain
//! should have room again. Deferrals are spread at the domain's rate, so
//! each returns about once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::rates::{Rate, Rates};

/// How long a message waits when its domain has no free slot in flight.
const BUSY_DEFER: Duration = Duration::from_secs(1);

/// One domain's limits in this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DomainRule {
    /// This process's share of the domain's messages in flight.
    pub(crate) in_flight: Option<u32>,
    /// The domain's messages per minute (shared through the database).
    pub(crate) rate: Option<Rate>,
}

/// What the gate decided for one message.
#[derive(Debug)]
pub(crate) enum Admit {
    /// Send it; the guard holds its place in flight.
    Go(InFlight),
    /// Put it back until then.
    Defer(DateTime<Utc>),
}

/// A message in flight to a limited domain; dropping it frees the place.
#[derive(Debug)]
pub(crate) struct InFlight {
    domains: Option<(Arc<Domains>, String)>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some((domains, domain)) = self.domains.take()
            && let Ok(mut flying) = domains.flying.lock()
            && let Some(n) = flying.get_mut(&domain)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                flying.remove(&domain);
            }
        }
    }
}

/// Messages a domain accepted in the current and the previous second.
#[derive(Debug, Default, Clone, Copy)]
struct Recent {
    second: u64,
    this: u32,
    previous: u32,
}

/// The gate every message passes before it is sent.
#[derive(Debug, Default)]
pub(crate) struct Domains {
    rules: RwLock<Arc<HashMap<String, DomainRule>>>,
    flying: Mutex<HashMap<String, u32>>,
    /// When the next message deferred for a domain is due.
    next_due: Mutex<HashMap<String, Instant>>,
    recent: Mutex<HashMap<String, Recent>>,
    started: Option<Instant>,
}

fn secs_since(start: Instant) -> u64 {
    start.elapsed().as_secs()
}

impl Domains {
    pub(crate) fn new() -> Self {
        Self {
            started: Some(Instant::now()),
            ..Self::default()
        }
    }

    /// Replaces the rules (read from the database and configuration).
    pub(crate) fn set_rules(&self, rules: HashMap<String, DomainRule>) {
        if let Ok(mut r) = self.rules.write() {
            *r = Arc::new(rules);
        }
        if let Ok(mut next) = self.next_due.lock() {
            let now = Instant::now();
            next.retain(|_, due| *due > now);
        }
        if let (Ok(mut recent), Some(start)) = (self.recent.lock(), self.started) {
            let now = secs_since(start);
            recent.retain(|_, r| r.second + 2 >= now);
        }
    }

    /// Updates one domain's rule at once (after a slow-down), until the next
    /// full reread.
    pub(crate) fn set_rule(&self, domain: &str, rule: DomainRule) {
        if let Ok(mut r) = self.rules.write() {
            let mut rules = HashMap::clone(&r);
            rules.insert(domain.to_owned(), rule);
            *r = Arc::new(rules);
        }
    }

    /// This process's in-flight limit for `domain`, if it has one.
    pub(crate) fn in_flight_limit(&self, domain: &str) -> Option<u32> {
        self.rule(domain).and_then(|r| r.in_flight)
    }

    fn rule(&self, domain: &str) -> Option<DomainRule> {
        self.rules.read().ok()?.get(domain).cloned()
    }

    /// Decides whether a message to `domain` may go now.
    pub(crate) async fn admit(self: &Arc<Self>, domain: &str, rates: &Rates) -> Admit {
        let Some(rule) = self.rule(domain) else {
            return Admit::Go(InFlight { domains: None });
        };
        let mut guard = InFlight { domains: None };
        if let Some(limit) = rule.in_flight {
            let mut flying = self
                .flying
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let n = flying.entry(domain.to_owned()).or_insert(0);
            if *n >= limit {
                drop(flying);
                return Admit::Defer(self.defer(domain, BUSY_DEFER));
            }
            *n += 1;
            guard.domains = Some((self.clone(), domain.to_owned()));
        }
        if let Some(rate) = &rule.rate
            && rates.take(rate).await.is_err()
        {
            return Admit::Defer(self.defer(domain, rate.spacing()));
        }
        Admit::Go(guard)
    }

    /// Schedules a deferred message `spacing` after the last one deferred
    /// for the same domain.
    fn defer(&self, domain: &str, spacing: Duration) -> DateTime<Utc> {
        let now = Instant::now();
        let due = match self.next_due.lock() {
            Ok(mut next) => {
                let due = next
                    .get(domain)
                    .copied()
                    .filter(|d| *d > now)
                    .unwrap_or(now)
                    + spacing;
                next.insert(domain.to_owned(), due);
                due
            }
            Err(_) => now + spacing,
        };
        let wait = chrono::Duration::from_std(due.saturating_duration_since(now))
            .unwrap_or_else(|_| chrono::Duration::seconds(60));
        Utc::now() + wait
    }

    /// Counts a message `domain` accepted, for the rate it takes.
    pub(crate) fn accepted(&self, domain: &str) {
        let Some(start) = self.started else { return };
        let now = secs_since(start);
        if let Ok(mut recent) = self.recent.lock() {
            // Found first, so the common case allocates no key.
            if !recent.contains_key(domain) {
                recent.insert(domain.to_owned(), Recent::default());
            }
            let Some(r) = recent.get_mut(domain) else {
                return;
            };
            if r.second != now {
                r.previous = if r.second + 1 == now { r.this } else { 0 };
                r.second = now;
                r.this = 0;
            }
            r.this += 1;
        }
    }

    /// Messages per minute `domain` accepted from this process lately: the
    /// rate it was coping with when it asked us to slow down.
    pub(crate) fn observed_per_minute(&self, domain: &str) -> u32 {
        let Some(start) = self.started else { return 0 };
        let now = secs_since(start);
        let Ok(recent) = self.recent.lock() else {
            return 0;
        };
        let Some(r) = recent.get(domain) else {
            return 0;
        };
        let per_second = match now.saturating_sub(r.second) {
            0 => r.previous.max(r.this),
            1 => r.this,
            _ => 0,
        };
        per_second.saturating_mul(60)
    }
}

/// The domain of an address as stored (lower case, ASCII).
pub(crate) fn domain_of(email: &str) -> &str {
    email.rsplit_once('@').map_or("", |(_, d)| d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn in_flight_limits_defer_and_free_their_place_when_done() {
        let domains = Arc::new(Domains::new());
        let rates =
            Rates::new(postino_db::PgPool::connect_lazy("postgres://127.0.0.1:1/none").unwrap());
        domains.set_rules(HashMap::from([(
            "slow.test".to_owned(),
            DomainRule {
                in_flight: Some(1),
                rate: None,
            },
        )]));
        let first = domains.admit("slow.test", &rates).await;
        assert!(matches!(first, Admit::Go(_)));
        let Admit::Defer(a) = domains.admit("slow.test", &rates).await else {
            panic!("the second message must wait")
        };
        let Admit::Defer(b) = domains.admit("slow.test", &rates).await else {
            panic!("and the third")
        };
        assert!(b > a, "deferrals are spread out");
        assert!(matches!(
            domains.admit("other.test", &rates).await,
            Admit::Go(_)
        ));
        drop(first);
        assert!(matches!(
            domains.admit("slow.test", &rates).await,
            Admit::Go(_)
        ));
    }

    #[test]
    fn the_domain_is_the_part_after_the_last_at() {
        assert_eq!(domain_of("a@b@example.org"), "example.org");
        assert_eq!(domain_of("nobody"), "");
    }
}
