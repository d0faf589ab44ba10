//! Sending policy: how fast and through which relays mail may go.
//!
//! Relays and mailbox providers punish senders who ignore their limits. The
//! limits here are the ones users set; the sender enforces them across every
//! sender process and adds its own per-domain throttles when a receiver asks
//! it to slow down.

use serde::{Deserialize, Serialize};

use crate::DomainError;
use crate::EmailAddress;

/// The group a relay belongs to and campaigns can be pinned to: 1 to 64
/// letters, digits, dots, dashes or underscores.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ServerGroup(String);

impl ServerGroup {
    /// # Errors
    ///
    /// Refuses an empty or overlong name, or one with other characters.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(DomainError::new(
                "server group",
                "must be 1 to 64 letters, digits, dots, dashes or underscores",
            ))
        }
    }

    /// The group every relay is in unless told otherwise.
    #[must_use]
    pub fn default_group() -> Self {
        Self("default".to_owned())
    }

    /// The name as stored.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for ServerGroup {
    fn default() -> Self {
        Self::default_group()
    }
}

impl TryFrom<String> for ServerGroup {
    type Error = DomainError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<ServerGroup> for String {
    fn from(group: ServerGroup) -> Self {
        group.0
    }
}

/// A cap over a sliding window, such as 50,000 messages per hour: in no
/// window of `secs` seconds do more than `messages` go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SendWindow {
    /// Most messages in any one window.
    pub messages: u32,
    /// The window's length in seconds (1 to 604800, a week).
    pub secs: u32,
}

/// How a relay shares the traffic and how fast it may be fed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerPolicy {
    /// Its share of the traffic against the other relays of its group
    /// (1 to 1000): weight 3 beside weight 1 takes three messages in four.
    pub weight: u32,
    /// The group it belongs to.
    pub group: ServerGroup,
    /// Most messages per second through it, across every sender process.
    pub messages_per_second: Option<f64>,
    /// A sliding-window cap, as relays impose.
    pub window: Option<SendWindow>,
}

impl Default for ServerPolicy {
    fn default() -> Self {
        Self {
            weight: 1,
            group: ServerGroup::default_group(),
            messages_per_second: None,
            window: None,
        }
    }
}

/// Most messages per second any limit may be set to; beyond it a limit
/// means nothing on one machine and is likely a typo.
pub const MAX_MESSAGES_PER_SECOND: f64 = 1_000_000.0;

/// Checks a messages-per-second limit; `what` names the field.
///
/// # Errors
///
/// A limit that is not a positive number of sane size.
pub fn check_rate(what: &'static str, rate: Option<f64>) -> Result<(), DomainError> {
    match rate {
        Some(r) if !(r.is_finite() && r > 0.0 && r <= MAX_MESSAGES_PER_SECOND) => Err(
            DomainError::new(what, "must be a number above 0 and at most 1000000"),
        ),
        _ => Ok(()),
    }
}

impl ServerPolicy {
    /// Checks every field; the error names the one at fault.
    ///
    /// # Errors
    ///
    /// The field at fault and why.
    pub fn validate(&self) -> Result<(), DomainError> {
        if !(1..=1000).contains(&self.weight) {
            return Err(DomainError::new("weight", "must be 1 to 1000"));
        }
        check_rate("messages_per_second", self.messages_per_second)?;
        if let Some(w) = self.window {
            if w.messages == 0 || w.messages > i32::MAX as u32 {
                return Err(DomainError::new("window.messages", "must be at least 1"));
            }
            if !(1..=604_800).contains(&w.secs) {
                return Err(DomainError::new(
                    "window.secs",
                    "must be 1 to 604800 seconds (a week)",
                ));
            }
        }
        Ok(())
    }
}

/// Limits for one recipient domain, across every sender process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainLimit {
    /// The recipient domain (`gmail.com`), lower case, in ASCII form.
    pub domain: String,
    /// Most messages to it in flight at once.
    #[serde(default)]
    pub max_connections: Option<u32>,
    /// Most messages to it per minute.
    #[serde(default)]
    pub messages_per_minute: Option<u32>,
}

impl DomainLimit {
    /// Normalises the domain the way addresses are stored and checks the
    /// limits; the error names the field at fault.
    ///
    /// # Errors
    ///
    /// The field at fault and why.
    pub fn normalised(mut self) -> Result<Self, DomainError> {
        let address = EmailAddress::parse(&format!("postmaster@{}", self.domain.trim()))
            .map_err(|e| DomainError::new("domain", format!("is not a domain: {}", e.reason)))?;
        self.domain = address.domain().to_owned();
        if let Some(c) = self.max_connections
            && !(1..=1000).contains(&c)
        {
            return Err(DomainError::new("max_connections", "must be 1 to 1000"));
        }
        if self.messages_per_minute == Some(0)
            || self
                .messages_per_minute
                .is_some_and(|m| m > i32::MAX as u32)
        {
            return Err(DomainError::new(
                "messages_per_minute",
                "must be at least 1",
            ));
        }
        if self.max_connections.is_none() && self.messages_per_minute.is_none() {
            return Err(DomainError::new(
                "max_connections",
                "set max_connections, messages_per_minute or both",
            ));
        }
        Ok(self)
    }
}

/// Whether a temporary refusal is the receiver asking us to slow down
/// rather than a problem with one message: `421` (service closing, often
/// for too many connections) or an enhanced status `4.7.x` (policy: rate
/// limited, too many messages).
#[must_use]
pub fn is_slow_down(code: Option<u16>, reply: &str) -> bool {
    if code == Some(421) {
        return true;
    }
    code.is_some_and(|c| (400..500).contains(&c))
        && reply
            .split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ':' || c == ',')
            .any(|word| word.starts_with("4.7.") && word.len() > 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_short_plain_names() {
        assert_eq!(
            ServerGroup::parse("bulk-eu_1.a").unwrap().as_str(),
            "bulk-eu_1.a"
        );
        assert!(ServerGroup::parse("").is_err());
        assert!(ServerGroup::parse("a b").is_err());
        assert!(ServerGroup::parse(&"x".repeat(65)).is_err());
    }

    #[test]
    fn each_bad_policy_field_is_named() {
        assert!(ServerPolicy::default().validate().is_ok());
        let cases = [
            (
                ServerPolicy {
                    weight: 0,
                    ..ServerPolicy::default()
                },
                "weight",
            ),
            (
                ServerPolicy {
                    messages_per_second: Some(0.0),
                    ..ServerPolicy::default()
                },
                "messages_per_second",
            ),
            (
                ServerPolicy {
                    messages_per_second: Some(f64::NAN),
                    ..ServerPolicy::default()
                },
                "messages_per_second",
            ),
            (
                ServerPolicy {
                    window: Some(SendWindow {
                        messages: 0,
                        secs: 60,
                    }),
                    ..ServerPolicy::default()
                },
                "window.messages",
            ),
            (
                ServerPolicy {
                    window: Some(SendWindow {
                        messages: 10,
                        secs: 0,
                    }),
                    ..ServerPolicy::default()
                },
                "window.secs",
            ),
        ];
        for (policy, field) in cases {
            assert_eq!(policy.validate().unwrap_err().what, field);
        }
    }

    #[test]
    fn domain_limits_are_normalised_and_need_a_limit() {
        let limit = DomainLimit {
            domain: " GMail.COM ".into(),
            max_connections: Some(5),
            messages_per_minute: None,
        }
        .normalised()
        .unwrap();
        assert_eq!(limit.domain, "gmail.com");
        let none = DomainLimit {
            domain: "a.example".into(),
            max_connections: None,
            messages_per_minute: None,
        };
        assert_eq!(none.normalised().unwrap_err().what, "max_connections");
        let bad = DomainLimit {
            domain: "not a domain".into(),
            max_connections: Some(1),
            messages_per_minute: None,
        };
        assert_eq!(bad.normalised().unwrap_err().what, "domain");
    }

    #[test]
    fn slow_down_replies_are_recognised() {
        assert!(is_slow_down(Some(421), "Service not available"));
        assert!(is_slow_down(Some(450), "4.7.0 rate limited, try later"));
        assert!(is_slow_down(
            Some(451),
            "transient error (451): 4.7.1 Too many messages"
        ));
        assert!(!is_slow_down(Some(451), "4.3.0 local error"));
        assert!(!is_slow_down(Some(550), "5.7.1 policy"));
        assert!(!is_slow_down(None, "4.7.0 connection reset"));
    }
}
