//! Delivery rules that need no I/O: delivery kinds and states, and when to try a
//! temporarily refused message again.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::DomainError;
use crate::lists::text_enum;

/// Where one delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting to be sent, now or at its retry time.
    Queued,
    /// Claimed by a sender under a lease.
    Sending,
    /// Accepted by the relay.
    Sent,
    /// Given up on: refused for good, or retried for too long.
    Failed,
    /// Not sent on purpose: unsubscribed meanwhile, or the campaign was cancelled.
    Skipped,
}

text_enum!(DeliveryStatus, "status", {
    Queued => "queued", Sending => "sending", Sent => "sent", Failed => "failed", Skipped => "skipped"
});

/// What a delivery is for. Everything but [`DeliveryKind::Campaign`] is
/// priority mail: somebody is waiting for that one message, so the sender
/// takes it ahead of bulk work, and no campaign count includes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeliveryKind {
    /// One campaign recipient's copy: the bulk queue.
    Campaign,
    /// A campaign sent to an address a user typed in, to see it arrive.
    /// Tried once: a refusal is the answer the user asked for.
    Test,
}

text_enum!(DeliveryKind, "kind", { Campaign => "campaign", Test => "test" });

impl DeliveryKind {
    /// Whether it goes in the priority lane.
    #[must_use]
    pub fn is_priority(self) -> bool {
        self != Self::Campaign
    }
}

/// How many senders may die holding one delivery (its lease expiring with
/// no result) before it is failed rather than requeued: whatever in it
/// kills a sender must not go on killing the next one. Three tells a
/// delivery that crashes senders from one that was merely in flight when
/// a host went down, since suspects are claimed alone.
pub const MAX_LOST_LEASES: i16 = 3;

/// When a temporarily refused message is tried again: exponential backoff
/// from `initial`, doubling per attempt up to `max`, with jitter so a relay
/// that refused a burst does not get the same burst back at one instant; and
/// not at all once the first attempt is older than `give_up_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay after the first failed attempt.
    pub initial: Duration,
    /// Longest delay between attempts.
    pub max: Duration,
    /// Age of the first attempt after which a temporary failure becomes final.
    pub give_up_after: Duration,
}

impl RetryPolicy {
    /// Checks the bounds make sense together.
    ///
    /// # Errors
    ///
    /// Names the setting at fault.
    pub fn new(
        initial: Duration,
        max: Duration,
        give_up_after: Duration,
    ) -> Result<Self, DomainError> {
        if initial.is_zero() {
            return Err(DomainError::new("retry_initial", "must be more than zero"));
        }
        if max < initial {
            return Err(DomainError::new(
                "retry_max",
                "must be at least retry_initial",
            ));
        }
        Ok(Self {
            initial,
            max,
            give_up_after,
        })
    }

    /// The delay before attempt `attempts + 1`, after `attempts` attempts
    /// (at least 1) failed temporarily. `jitter` is a random number in
    /// `[0, 1)`; the delay is drawn from the upper half of the backoff step,
    /// `[step / 2, step)`, so it still grows with every attempt.
    #[must_use]
    pub fn delay(&self, attempts: u32, jitter: f64) -> Duration {
        let doublings = attempts.saturating_sub(1).min(32);
        let step = self
            .initial
            .checked_mul(1u32 << doublings.min(31))
            .unwrap_or(self.max)
            .min(self.max);
        let jitter = jitter.clamp(0.0, 1.0);
        step.mul_f64(0.5 + jitter / 2.0)
    }

    /// Whether a delivery first attempted `age` ago may be tried again.
    #[must_use]
    pub fn may_retry(&self, age: Duration) -> bool {
        age < self.give_up_after
    }
}

/// The enhanced status code (RFC 3463) in a reply, as its class, subject
/// and detail: `5.1.1` in "550 5.1.1 Mailbox unavailable".
fn enhanced_status(reply: &str) -> Option<(u8, u16, u16)> {
    reply
        .split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | ':' | ',' | ';'))
        .find_map(|word| {
            let mut parts = word.split('.');
            let class = parts.next()?.parse::<u8>().ok()?;
            let subject = parts.next()?.parse::<u16>().ok()?;
            let detail = parts.next()?.parse::<u16>().ok()?;
            (parts.next().is_none() && matches!(class, 2 | 4 | 5))
                .then_some((class, subject, detail))
        })
}

/// Whether a permanent refusal is about the recipient (a hard bounce that
/// counts towards blocklisting them) rather than about the sender, the
/// message or the relay's policy. With an enhanced status code, addressing
/// (`5.1.x`) and mailbox (`5.2.x`) problems are the recipient's; policy
/// (`5.7.x`: sender not allowed, relaying denied, content refused),
/// protocol and system errors are not. Without one, the classic
/// "mailbox unavailable / not local / full / name not allowed" codes are.
#[must_use]
pub fn is_recipient_refusal(code: Option<u16>, reply: &str) -> bool {
    let Some(code) = code.filter(|c| (500..600).contains(c)) else {
        return false;
    };
    match enhanced_status(reply) {
        Some((5, subject, _)) => matches!(subject, 1 | 2),
        Some(_) => false,
        None => matches!(code, 550..=553),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy::new(
            Duration::from_secs(60),
            Duration::from_secs(3600),
            Duration::from_secs(3 * 86_400),
        )
        .unwrap()
    }

    #[test]
    fn delays_double_per_attempt_within_the_jitter_band() {
        let p = policy();
        for (attempts, step) in [(1, 60), (2, 120), (3, 240), (4, 480)] {
            let low = p.delay(attempts, 0.0);
            let high = p.delay(attempts, 0.999_999);
            assert_eq!(low, Duration::from_secs(step / 2), "attempt {attempts}");
            assert!(high < Duration::from_secs(step), "attempt {attempts}");
            assert!(high > Duration::from_secs(step) - Duration::from_millis(1));
        }
    }

    #[test]
    fn delays_stop_growing_at_the_maximum_even_after_many_attempts() {
        let p = policy();
        for attempts in [7, 8, 40, u32::MAX] {
            let d = p.delay(attempts, 0.999);
            assert!(d <= Duration::from_secs(3600), "attempt {attempts}: {d:?}");
            assert!(d >= Duration::from_secs(1800), "attempt {attempts}: {d:?}");
        }
    }

    #[test]
    fn jitter_out_of_range_is_clamped() {
        let p = policy();
        assert_eq!(p.delay(1, -5.0), Duration::from_secs(30));
        assert_eq!(p.delay(1, 7.0), Duration::from_secs(60));
    }

    #[test]
    fn retries_stop_once_the_first_attempt_is_too_old() {
        let p = policy();
        assert!(p.may_retry(Duration::from_secs(86_400)));
        assert!(!p.may_retry(Duration::from_secs(3 * 86_400)));
    }

    #[test]
    fn nonsense_bounds_are_refused_with_the_setting_named() {
        let e =
            RetryPolicy::new(Duration::ZERO, Duration::from_secs(1), Duration::ZERO).unwrap_err();
        assert_eq!(e.what, "retry_initial");
        let e = RetryPolicy::new(
            Duration::from_secs(10),
            Duration::from_secs(1),
            Duration::ZERO,
        )
        .unwrap_err();
        assert_eq!(e.what, "retry_max");
    }

    #[test]
    fn statuses_round_trip_through_their_stored_names() {
        for s in ["queued", "sending", "sent", "failed", "skipped"] {
            assert_eq!(s.parse::<DeliveryStatus>().unwrap().as_str(), s);
        }
        assert!("bounced".parse::<DeliveryStatus>().is_err());
    }

    #[test]
    fn only_refusals_about_the_recipient_are_bounces() {
        assert!(is_recipient_refusal(Some(550), "5.1.1 Mailbox unavailable"));
        assert!(is_recipient_refusal(
            Some(552),
            "permanent error (552): 5.2.2 Mailbox full"
        ));
        assert!(is_recipient_refusal(Some(550), "User unknown"));
        assert!(!is_recipient_refusal(
            Some(550),
            "5.7.1 Sender address rejected: not owned by user"
        ));
        assert!(!is_recipient_refusal(
            Some(554),
            "5.7.1 Relay access denied"
        ));
        assert!(!is_recipient_refusal(Some(554), "Transaction failed"));
        assert!(!is_recipient_refusal(Some(552), "5.3.4 Message too big"));
        assert!(!is_recipient_refusal(None, "address not usable in SMTP"));
        assert!(!is_recipient_refusal(Some(451), "4.1.1 try later"));
    }
}
