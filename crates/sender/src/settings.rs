//! `[sender]`: how deliveries are claimed, retried and bounced.

use std::time::Duration;

use postino_domain::policy::check_rate;
use postino_domain::{DomainError, DomainLimit, EmailAddress, RetryPolicy};
use serde::Deserialize;

/// Sender settings. Durations are written like `30s`, `5m`, `3d`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SenderSettings {
    /// Most deliveries claimed at once and held ready for the workers.
    pub batch_size: u32,
    /// How long a claim holds before another sender may take the delivery
    /// over (after a crash). It must cover a batch's wait in memory plus
    /// one send.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// How often an idle sender looks for due deliveries.
    #[serde(with = "humantime_serde")]
    pub idle_poll: Duration,
    /// How often the relay list is reread.
    #[serde(with = "humantime_serde")]
    pub reload_servers: Duration,
    /// Most results written in one transaction.
    pub record_batch: usize,
    /// Longest a result waits before its batch is written.
    #[serde(with = "humantime_serde")]
    pub record_interval: Duration,
    /// Delay after the first temporary failure; it doubles per attempt.
    #[serde(with = "humantime_serde")]
    pub retry_initial: Duration,
    /// Longest delay between attempts.
    #[serde(with = "humantime_serde")]
    pub retry_max: Duration,
    /// After this long since the first attempt, a temporary failure is final.
    #[serde(with = "humantime_serde")]
    pub give_up_after: Duration,
    /// Hard bounces after which a subscriber is blocklisted. Two by
    /// default: one permanent refusal can be the relay's mistake.
    pub blocklist_after_bounces: u32,
    /// Domain of the VERP return path `bounces+<token>@<domain>`; the
    /// campaign sender's domain when unset.
    pub bounce_domain: Option<String>,
    /// An address that unsubscribes whoever writes to it, offered in
    /// `List-Unsubscribe` beside the one-click link.
    pub unsubscribe_mailto: Option<EmailAddress>,
    /// Most messages per second across every sender process, unless one is
    /// set through the API (`/api/v1/sending-limits`), which wins.
    pub messages_per_second: Option<f64>,
    /// Limits per recipient domain; one set through the API for the same
    /// domain wins.
    pub domain_limits: Vec<DomainLimit>,
    /// Failed connection attempts in a row (refused, timed out, credentials
    /// refused) after which a relay is taken out of rotation.
    pub breaker_failures: u32,
    /// How long a relay stays out; doubled each time it fails again when
    /// tried, up to `breaker_cooldown_max`.
    #[serde(with = "humantime_serde")]
    pub breaker_cooldown: Duration,
    /// The longest a failing relay stays out before it is tried again.
    #[serde(with = "humantime_serde")]
    pub breaker_cooldown_max: Duration,
    /// A campaign pauses itself when at least this many of its attempts
    /// failed within `failure_window`, making up `pause_failure_ratio` of
    /// them or more; 0 turns the automatic pause off.
    pub pause_after_failures: u32,
    /// The share of failed attempts (0 to 1) that, with enough of them,
    /// pauses a campaign.
    pub pause_failure_ratio: f64,
    /// The window for `pause_after_failures`, and how long a campaign may go
    /// without any relay able to take its mail before it pauses itself.
    #[serde(with = "humantime_serde")]
    pub failure_window: Duration,
    /// A domain that asked us to slow down is slowed at most once per this
    /// long, and its throttle is raised by half after each quiet period.
    #[serde(with = "humantime_serde")]
    pub throttle_calm: Duration,
    /// The slowest a throttle goes, in messages per minute.
    pub throttle_floor_per_minute: u32,
    /// Where a standalone sender (`--role sender`) serves `/metrics` and
    /// `/healthz`; none by default, so many senders can share a host.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

impl Default for SenderSettings {
    fn default() -> Self {
        Self {
            batch_size: 500,
            lease: Duration::from_secs(300),
            idle_poll: Duration::from_millis(500),
            reload_servers: Duration::from_secs(5),
            record_batch: 1000,
            record_interval: Duration::from_millis(100),
            retry_initial: Duration::from_secs(60),
            retry_max: Duration::from_secs(3600),
            give_up_after: Duration::from_secs(3 * 86_400),
            blocklist_after_bounces: 2,
            bounce_domain: None,
            unsubscribe_mailto: None,
            messages_per_second: None,
            domain_limits: Vec::new(),
            breaker_failures: 3,
            breaker_cooldown: Duration::from_secs(30),
            breaker_cooldown_max: Duration::from_secs(600),
            pause_after_failures: 50,
            pause_failure_ratio: 0.5,
            failure_window: Duration::from_secs(120),
            throttle_calm: Duration::from_secs(10),
            throttle_floor_per_minute: 6,
            metrics_listen: None,
        }
    }
}

impl SenderSettings {
    /// The retry policy these settings describe.
    ///
    /// # Errors
    ///
    /// Names the setting at fault.
    pub fn retry_policy(&self) -> Result<RetryPolicy, DomainError> {
        RetryPolicy::new(self.retry_initial, self.retry_max, self.give_up_after)
    }

    /// Checks the settings before anything starts.
    ///
    /// # Errors
    ///
    /// A message naming the key at fault.
    pub fn validate(&self) -> Result<(), String> {
        self.retry_policy()
            .map_err(|e| format!("sender.{}: {}", e.what, e.reason))?;
        if self.batch_size == 0 {
            return Err("sender.batch_size: must be at least 1".to_owned());
        }
        if self.record_batch == 0 {
            return Err("sender.record_batch: must be at least 1".to_owned());
        }
        if self.lease < Duration::from_secs(1) {
            return Err("sender.lease: must be at least 1s".to_owned());
        }
        if self.blocklist_after_bounces == 0 {
            return Err("sender.blocklist_after_bounces: must be at least 1".to_owned());
        }
        check_rate("messages_per_second", self.messages_per_second)
            .map_err(|e| format!("sender.{}: {}", e.what, e.reason))?;
        for (i, limit) in self.domain_limits.iter().enumerate() {
            limit
                .clone()
                .normalised()
                .map_err(|e| format!("sender.domain_limits[{i}].{}: {}", e.what, e.reason))?;
        }
        if self.breaker_failures == 0 {
            return Err("sender.breaker_failures: must be at least 1".to_owned());
        }
        if self.breaker_cooldown.is_zero() || self.breaker_cooldown_max < self.breaker_cooldown {
            return Err(
                "sender.breaker_cooldown: must be above 0 and at most breaker_cooldown_max"
                    .to_owned(),
            );
        }
        if !(self.pause_failure_ratio > 0.0 && self.pause_failure_ratio <= 1.0) {
            return Err("sender.pause_failure_ratio: must be above 0 and at most 1".to_owned());
        }
        if self.failure_window.is_zero() || self.throttle_calm.is_zero() {
            return Err(
                "sender.failure_window and sender.throttle_calm: must be above 0".to_owned(),
            );
        }
        if self.throttle_floor_per_minute == 0 {
            return Err("sender.throttle_floor_per_minute: must be at least 1".to_owned());
        }
        if let Some(domain) = &self.bounce_domain {
            EmailAddress::parse(&format!("bounces@{domain}"))
                .map_err(|e| format!("sender.bounce_domain: {}", e.reason))?;
        }
        Ok(())
    }
}
