//! A circuit breaker per relay: after enough failed connection attempts in
//! a row the relay is taken out of rotation for a cool-down, and its
//! traffic goes to the others. When the cool-down ends the relay is tried
//! again; one more failure takes it out for twice as long.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// When a relay counts as failing and for how long it is left alone.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BreakerSettings {
    pub(crate) failures: u32,
    pub(crate) cooldown: Duration,
    pub(crate) cooldown_max: Duration,
}

#[derive(Debug)]
struct State {
    failures: u32,
    open_until: Option<Instant>,
    cooldown: Duration,
    last_error: Option<String>,
    /// The last failure was the relay refusing us for good (credentials),
    /// which waiting will not cure.
    misconfigured: bool,
}

/// One relay's breaker, shared by its workers and the dispatcher.
#[derive(Debug)]
pub(crate) struct Breaker {
    settings: BreakerSettings,
    state: Mutex<State>,
}

impl Breaker {
    pub(crate) fn new(settings: BreakerSettings) -> Self {
        Self {
            settings,
            state: Mutex::new(State {
                failures: 0,
                open_until: None,
                cooldown: settings.cooldown,
                last_error: None,
                misconfigured: false,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Until when the relay is out of rotation, if it is.
    pub(crate) fn open_until(&self) -> Option<Instant> {
        self.state().open_until.filter(|u| *u > Instant::now())
    }

    /// Whether the relay may be given work now.
    pub(crate) fn is_closed(&self) -> bool {
        self.open_until().is_none()
    }

    /// Why the relay last failed, for a campaign paused because of it.
    pub(crate) fn last_error(&self) -> Option<String> {
        self.state().last_error.clone()
    }

    /// Whether the last failure was one waiting will not cure.
    pub(crate) fn is_misconfigured(&self) -> bool {
        self.state().misconfigured
    }

    /// A session opened: the relay is healthy again.
    pub(crate) fn success(&self) {
        let mut s = self.state();
        s.failures = 0;
        s.open_until = None;
        s.cooldown = self.settings.cooldown;
        s.misconfigured = false;
    }

    /// A connection attempt failed. Returns the cool-down when this failure
    /// took the relay out.
    pub(crate) fn failure(&self, error: &str, misconfigured: bool) -> Option<Duration> {
        let mut s = self.state();
        let now = Instant::now();
        s.last_error = Some(error.to_owned());
        s.misconfigured = misconfigured;
        if s.open_until.is_some_and(|u| u > now) {
            // Out already; a sibling worker's attempt that was under way.
            return None;
        }
        s.failures += 1;
        if s.failures < self.settings.failures {
            return None;
        }
        let cooldown = if s.open_until.is_some() {
            // Tried again after a cool-down and failed: wait longer.
            (s.cooldown * 2).min(self.settings.cooldown_max)
        } else {
            self.settings.cooldown
        };
        s.cooldown = cooldown;
        s.open_until = Some(now + cooldown);
        Some(cooldown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(BreakerSettings {
            failures: 2,
            cooldown: Duration::from_millis(30),
            cooldown_max: Duration::from_millis(100),
        })
    }

    #[test]
    fn opens_after_failures_in_a_row_and_a_success_resets() {
        let b = breaker();
        assert_eq!(b.failure("refused", false), None);
        b.success();
        assert_eq!(b.failure("refused", false), None);
        assert_eq!(b.failure("refused", false), Some(Duration::from_millis(30)));
        assert!(!b.is_closed());
        assert_eq!(b.last_error().as_deref(), Some("refused"));
    }

    #[test]
    fn a_failed_retry_doubles_the_cooldown_up_to_the_cap() {
        let b = breaker();
        b.failure("x", false);
        b.failure("x", false);
        std::thread::sleep(Duration::from_millis(35));
        assert!(b.is_closed(), "tried again after the cool-down");
        assert_eq!(b.failure("x", false), Some(Duration::from_millis(60)));
        std::thread::sleep(Duration::from_millis(65));
        assert_eq!(b.failure("x", false), Some(Duration::from_millis(100)));
        std::thread::sleep(Duration::from_millis(105));
        b.success();
        b.failure("x", false);
        assert_eq!(b.failure("x", false), Some(Duration::from_millis(30)));
    }
}
