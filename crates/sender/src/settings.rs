//! `[sender]`: how deliveries are claimed, retried and bounced.

use std::time::Duration;

use postino_domain::{DomainError, EmailAddress, RetryPolicy};
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
        if let Some(domain) = &self.bounce_domain {
            EmailAddress::parse(&format!("bounces@{domain}"))
                .map_err(|e| format!("sender.bounce_domain: {}", e.reason))?;
        }
        Ok(())
    }
}
