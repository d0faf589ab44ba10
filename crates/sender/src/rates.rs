//! Rate limits that hold across sender processes.
//!
//! Every limit is a sliding window counted in PostgreSQL (`take_rate`), so
//! any number of senders share it. A process takes a small share of the
//! window at a time (a twentieth) and must use it within one slot (a
//! twentieth of the window) or lose it; the database counts one slot more
//! than the window, so grants used late still never exceed the limit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postino_db::{PgPool, policy};

/// One limit: at most `max` messages in any `window`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rate {
    /// Names the limit in the database; equal keys share one window.
    pub(crate) key: String,
    pub(crate) max: u32,
    pub(crate) window: Duration,
}

impl Rate {
    /// A messages-per-second limit under `name`. A fraction above one is
    /// rounded down (1.5 a second allows one), so a limit is never
    /// exceeded; below one a second the window grows instead, so 0.1 a
    /// second allows one message per 10 s.
    pub(crate) fn per_second(name: &str, rate: f64) -> Self {
        let (max, window) = if rate >= 1.0 {
            (rate.floor() as u32, Duration::from_secs(1))
        } else {
            (1, Duration::from_secs_f64((1.0 / rate).min(86_400.0)))
        };
        Self::new(name, max.max(1), window)
    }

    /// `max` messages per `window` under `name`.
    pub(crate) fn new(name: &str, max: u32, window: Duration) -> Self {
        Self {
            key: format!("{name}:{}", window.as_millis()),
            max: max.max(1),
            window: window.max(Duration::from_millis(20)),
        }
    }

    /// The time slot grants are used within.
    pub(crate) fn slot(&self) -> Duration {
        self.window / 20
    }

    /// The average spacing between messages at this rate.
    pub(crate) fn spacing(&self) -> Duration {
        self.window / self.max
    }
}

#[derive(Debug, Default)]
struct Held {
    tokens: u32,
    expires: Option<Instant>,
}

/// Grants this process holds, per limit.
#[derive(Debug)]
pub(crate) struct Rates {
    pool: PgPool,
    held: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Held>>>>,
}

impl Rates {
    pub(crate) fn new(pool: PgPool) -> Self {
        Self {
            pool,
            held: Mutex::new(HashMap::new()),
        }
    }

    fn cell(&self, key: &str) -> Arc<tokio::sync::Mutex<Held>> {
        let mut held = self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        held.entry(key.to_owned()).or_default().clone()
    }

    /// Takes one message from `rate`. `Ok` carries the instant by which it
    /// must be sent; `Err` how long to wait before asking again.
    pub(crate) async fn take(&self, rate: &Rate) -> Result<Instant, Duration> {
        let cell = self.cell(&rate.key);
        let mut held = cell.lock().await;
        let now = Instant::now();
        if let Some(expires) = held.expires
            && held.tokens > 0
            && expires > now
        {
            held.tokens -= 1;
            return Ok(expires);
        }
        let want = (rate.max / 20).max(1);
        let given = match self.pool.acquire().await {
            Ok(mut conn) => policy::take_rate(&mut conn, &rate.key, rate.max, rate.window, want)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match given {
            Ok(n) if n > 0 => {
                let expires = Instant::now() + rate.slot();
                held.tokens = n - 1;
                held.expires = Some(expires);
                Ok(expires)
            }
            Ok(_) => Err(rate.slot().max(Duration::from_millis(5))),
            Err(e) => {
                // Without the database no limit can be checked: wait
                // rather than send past it.
                tracing::warn!(error = %e, limit = %rate.key, "cannot read a rate limit; waiting");
                Err(Duration::from_millis(500))
            }
        }
    }
}

/// Grants for one message across several limits, gathered one by one; a
/// grant not used in time is dropped and taken again.
#[derive(Debug, Default)]
pub(crate) struct Ticket {
    until: Vec<Option<Instant>>,
}

impl Ticket {
    /// Gathers a grant from every limit in `rates`, in order (longest
    /// window first, so a message waiting on an hourly cap holds no
    /// per-second grants meanwhile). `Err` says how long to wait before
    /// trying again.
    pub(crate) async fn gather(&mut self, limits: &Rates, rates: &[Rate]) -> Result<(), Duration> {
        self.until.resize(rates.len(), None);
        for (rate, until) in rates.iter().zip(self.until.iter_mut()) {
            if until.is_some_and(|u| u > Instant::now()) {
                continue;
            }
            *until = None;
            *until = Some(limits.take(rate).await?);
        }
        Ok(())
    }

    /// The grants were used by a message.
    pub(crate) fn spend(&mut self) {
        self.until.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractional_rates_never_allow_more_than_asked() {
        let r = Rate::per_second("x", 1.5);
        assert_eq!((r.max, r.window), (1, Duration::from_secs(1)));
        let r = Rate::per_second("x", 0.1);
        assert_eq!((r.max, r.window), (1, Duration::from_secs(10)));
        let r = Rate::per_second("x", 25.0);
        assert_eq!((r.max, r.window), (25, Duration::from_secs(1)));
        assert_eq!(r.slot(), Duration::from_millis(50));
        assert_ne!(
            Rate::per_second("x", 25.0).key,
            Rate::per_second("x", 0.5).key
        );
    }
}
