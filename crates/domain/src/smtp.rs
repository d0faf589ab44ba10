//! How to reach an SMTP relay: the settings the `[smtp]` configuration
//! section, the stored relays and the sender share.

use std::fmt;
use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::DomainError;
use crate::lists::text_enum;
use crate::text::short_text;

/// A stored relay's display name, 1 to 100 characters of one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SmtpServerName(String);

impl SmtpServerName {
    /// # Errors
    ///
    /// Refuses an empty or overlong name, or one with line breaks.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        short_text(raw, "SMTP server name", 1, 100).map(Self)
    }

    /// The name as stored.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SmtpServerName {
    type Error = DomainError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<SmtpServerName> for String {
    fn from(name: SmtpServerName) -> Self {
        name.0
    }
}

/// How the connection to a relay is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    /// Plain text: only for a relay on the same host or a test sink.
    #[default]
    None,
    /// Upgrade with STARTTLS, required (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

text_enum!(TlsMode, "tls", { None => "none", Starttls => "starttls", Tls => "tls" });

/// How to reach one SMTP relay.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpSettings {
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Transport security.
    pub tls: TlsMode,
    /// AUTH user name; no AUTH when empty.
    pub username: String,
    /// AUTH password. Never logged or printed.
    pub password: SecretString,
    /// Name sent in EHLO; relays and receivers judge a sender by it.
    pub hello_name: String,
    /// Most connections kept open to this relay at once.
    pub max_connections: u32,
    /// Messages sent over one connection before it is closed and reopened.
    pub messages_per_connection: u32,
    /// Seconds to wait for a connection or for any one reply.
    pub timeout_secs: u64,
}

impl Default for SmtpSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port: 2525,
            tls: TlsMode::None,
            username: String::new(),
            password: SecretString::from(String::new()),
            hello_name: "localhost".to_owned(),
            max_connections: 8,
            messages_per_connection: 1000,
            timeout_secs: 30,
        }
    }
}

impl SmtpSettings {
    /// The per-reply timeout.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs.max(1))
    }

    /// Checks every field, returning the first problem with the field named
    /// (the `what` of the error).
    ///
    /// # Errors
    ///
    /// The field at fault and why.
    pub fn validate(&self) -> Result<(), DomainError> {
        let host = self.host.trim();
        if host.is_empty() || host.len() > 253 || host.contains(char::is_whitespace) {
            return Err(DomainError::new(
                "host",
                "must be a host name or IP address",
            ));
        }
        if self.port == 0 {
            return Err(DomainError::new("port", "must be 1 to 65535"));
        }
        let hello = &self.hello_name;
        if hello.is_empty()
            || hello.len() > 253
            || !hello
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'))
        {
            return Err(DomainError::new(
                "hello_name",
                "must be a host name (letters, digits, dots and dashes)",
            ));
        }
        if self.username.contains(['\r', '\n']) || self.username.len() > 255 {
            return Err(DomainError::new(
                "username",
                "must be one line of at most 255 characters",
            ));
        }
        if !(1..=1000).contains(&self.max_connections) {
            return Err(DomainError::new("max_connections", "must be 1 to 1000"));
        }
        if self.messages_per_connection == 0 {
            return Err(DomainError::new(
                "messages_per_connection",
                "must be at least 1",
            ));
        }
        if !(1..=3600).contains(&self.timeout_secs) {
            return Err(DomainError::new(
                "timeout_secs",
                "must be 1 to 3600 seconds",
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("hello_name", &self.hello_name)
            .field("max_connections", &self.max_connections)
            .field("messages_per_connection", &self.messages_per_connection)
            .field("timeout_secs", &self.timeout_secs)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_each_bad_field_is_named() {
        assert!(SmtpSettings::default().validate().is_ok());
        let bad = [
            (
                "host",
                SmtpSettings {
                    host: " ".into(),
                    ..SmtpSettings::default()
                },
            ),
            (
                "port",
                SmtpSettings {
                    port: 0,
                    ..SmtpSettings::default()
                },
            ),
            (
                "hello_name",
                SmtpSettings {
                    hello_name: "a b".into(),
                    ..SmtpSettings::default()
                },
            ),
            (
                "username",
                SmtpSettings {
                    username: "a\r\nRCPT".into(),
                    ..SmtpSettings::default()
                },
            ),
            (
                "max_connections",
                SmtpSettings {
                    max_connections: 0,
                    ..SmtpSettings::default()
                },
            ),
            (
                "messages_per_connection",
                SmtpSettings {
                    messages_per_connection: 0,
                    ..SmtpSettings::default()
                },
            ),
            (
                "timeout_secs",
                SmtpSettings {
                    timeout_secs: 0,
                    ..SmtpSettings::default()
                },
            ),
        ];
        for (field, settings) in bad {
            assert_eq!(settings.validate().unwrap_err().what, field);
        }
        for t in ["none", "starttls", "tls"] {
            assert_eq!(t.parse::<TlsMode>().unwrap().as_str(), t);
        }
    }

    #[test]
    fn a_server_name_is_one_trimmed_line_of_1_to_100_characters() {
        assert_eq!(SmtpServerName::parse("  Relay ").unwrap().as_str(), "Relay");
        assert!(SmtpServerName::parse(" ").is_err());
        assert!(SmtpServerName::parse("a\nb").is_err());
        assert!(SmtpServerName::parse(&"x".repeat(100)).is_ok());
        assert!(SmtpServerName::parse(&"x".repeat(101)).is_err());
    }

    #[test]
    fn settings_never_print_the_password() {
        let s = SmtpSettings {
            password: SecretString::from("hunter2hunter2".to_owned()),
            ..SmtpSettings::default()
        };
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
