//! Failed sign-ins counted per client address, beside the per-account
//! lockout: one address trying many accounts (password spraying), or
//! burning the server's CPU on password hashes with made-up addresses, is
//! refused before any account is looked up or any hash computed.
//!
//! Counted in this process's memory: a restart forgets, and each web process
//! counts its own. The account lockout, kept in PostgreSQL, is what holds
//! across processes; this is the cheap first line in front of it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long failures are remembered: a window that starts at the first one.
pub(crate) const WINDOW: Duration = Duration::from_secs(15 * 60);

/// Addresses remembered at most; past this, the oldest windows go first, so
/// an attacker rotating addresses cannot grow the map without bound.
const MAX_ADDRESSES: usize = 100_000;

/// Failures from one address within [`WINDOW`].
#[derive(Debug, Clone, Copy)]
struct Failures {
    since: Instant,
    count: u32,
}

/// The failed sign-ins of every recent client address.
#[derive(Debug)]
pub(crate) struct LoginLimiter {
    limit: u32,
    seen: Mutex<HashMap<IpAddr, Failures>>,
}

impl LoginLimiter {
    /// Refuses an address once it has failed `limit` times in a window; 0
    /// turns the limit off.
    pub(crate) fn new(limit: u32) -> Self {
        Self {
            limit,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(wait)` when `ip` has used up its failures and must wait.
    pub(crate) fn blocked(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        if self.limit == 0 {
            return None;
        }
        let seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let f = seen.get(&ip)?;
        let ends = f.since + WINDOW;
        (f.count >= self.limit && ends > now).then(|| ends - now)
    }

    /// Counts one failed sign-in from `ip`.
    pub(crate) fn failed(&self, ip: IpAddr, now: Instant) {
        if self.limit == 0 {
            return;
        }
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.len() >= MAX_ADDRESSES && !seen.contains_key(&ip) {
            seen.retain(|_, f| f.since + WINDOW > now);
            if seen.len() >= MAX_ADDRESSES
                && let Some(oldest) = seen.iter().min_by_key(|(_, f)| f.since).map(|(k, _)| *k)
            {
                seen.remove(&oldest);
            }
        }
        let entry = seen.entry(ip).or_insert(Failures {
            since: now,
            count: 0,
        });
        if entry.since + WINDOW <= now {
            *entry = Failures {
                since: now,
                count: 0,
            };
        }
        entry.count = entry.count.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn an_address_is_refused_after_its_failures_until_the_window_ends() {
        let limiter = LoginLimiter::new(3);
        let t0 = Instant::now();
        for _ in 0..2 {
            limiter.failed(ip(1), t0);
        }
        assert!(limiter.blocked(ip(1), t0).is_none());
        limiter.failed(ip(1), t0);
        assert_eq!(limiter.blocked(ip(1), t0), Some(WINDOW));
        assert!(limiter.blocked(ip(2), t0).is_none(), "others are not");
        assert!(limiter.blocked(ip(1), t0 + WINDOW).is_none());
        // A new window starts from nothing.
        limiter.failed(ip(1), t0 + WINDOW);
        assert!(limiter.blocked(ip(1), t0 + WINDOW).is_none());
    }

    #[test]
    fn zero_turns_it_off() {
        let limiter = LoginLimiter::new(0);
        let t0 = Instant::now();
        for _ in 0..10 {
            limiter.failed(ip(1), t0);
        }
        assert!(limiter.blocked(ip(1), t0).is_none());
    }
}
