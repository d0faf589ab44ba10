//! The sending policy as this process applies it: the installation-wide
//! rate, per-domain rules, and its share of connection limits among the
//! sender processes alive.

use std::collections::HashMap;
use std::time::Duration;

use postino_db::{DbError, PgPool, policy};
use postino_domain::DomainLimit;
use uuid::Uuid;

use crate::domains::DomainRule;
use crate::rates::Rate;
use crate::settings::SenderSettings;

/// What one reread of the policy found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Policy {
    /// Messages per second across every process, if limited.
    pub(crate) global: Option<f64>,
    /// Sender processes alive, this one included (at least 1).
    pub(crate) processes: u32,
    /// This process's place among them.
    pub(crate) rank: u32,
}

impl Policy {
    /// This process's share of a limit all processes split (connections):
    /// an even split, the remainder to the oldest processes. It may be 0
    /// when more processes run than the limit allows connections.
    pub(crate) fn share(&self, total: u32) -> u32 {
        let n = self.processes.max(1);
        total / n + u32::from(self.rank < total % n)
    }
}

/// The rate limit for a domain's messages per minute, spread evenly over
/// the minute: a receiver that asked for 600 a minute means 10 a second,
/// not 600 in the first one.
pub(crate) fn domain_rate(domain: &str, per_minute: u32) -> Rate {
    Rate::per_second(&format!("domain:{domain}"), f64::from(per_minute) / 60.0)
}

/// Says this process is alive and rereads the policy and domain rules.
///
/// # Errors
///
/// [`DbError`] if the database cannot be read.
pub(crate) async fn load(
    pool: &PgPool,
    me: Uuid,
    settings: &SenderSettings,
) -> Result<(Policy, HashMap<String, DomainRule>), DbError> {
    let mut conn = pool.acquire().await?;
    // Alive for three rereads: one missed beat does not reshuffle shares.
    let ttl = settings.reload_servers * 3 + Duration::from_secs(1);
    let alive = policy::heartbeat(&mut conn, me, ttl).await?;
    let rank = alive.iter().position(|p| *p == me).unwrap_or(0);
    let stored_global = policy::global_rate(&mut conn).await?;
    let mut limits: HashMap<String, DomainLimit> = settings
        .domain_limits
        .iter()
        .filter_map(|l| l.clone().normalised().ok())
        .map(|l| (l.domain.clone(), l))
        .collect();
    for l in policy::domain_limits(&mut conn).await? {
        limits.insert(l.domain.clone(), l);
    }
    policy::raise_throttles(&mut conn, settings.throttle_calm).await?;
    let throttles = policy::throttles(&mut conn).await?;
    let found = Policy {
        global: stored_global.or(settings.messages_per_second),
        processes: u32::try_from(alive.len().max(1)).unwrap_or(1),
        rank: u32::try_from(rank).unwrap_or(0),
    };
    let mut rules = HashMap::new();
    for (domain, l) in &limits {
        rules.insert(
            domain.clone(),
            DomainRule {
                in_flight: l.max_connections.map(|c| found.share(c)),
                rate: l.messages_per_minute.map(|m| domain_rate(domain, m)),
            },
        );
    }
    for t in throttles {
        let rule = rules.entry(t.domain.clone()).or_insert(DomainRule {
            in_flight: None,
            rate: None,
        });
        let configured = rule.rate.as_ref().map_or(u32::MAX, |r| r.max);
        rule.rate = Some(domain_rate(
            &t.domain,
            t.messages_per_minute.min(configured),
        ));
    }
    Ok((found, rules))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_to_the_limit() {
        for total in [1, 2, 3, 7, 16] {
            for processes in 1..5 {
                let sum: u32 = (0..processes)
                    .map(|rank| {
                        Policy {
                            global: None,
                            processes,
                            rank,
                        }
                        .share(total)
                    })
                    .sum();
                assert_eq!(sum, total, "{total} over {processes}");
            }
        }
    }
}
