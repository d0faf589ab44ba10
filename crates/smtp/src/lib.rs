//! The client side of SMTP: how to reach a relay, a pooled transport to it,
//! and what its reply means for a delivery.
//!
//! # Layout
//!
//! - [`SmtpSettings`] — host, port, TLS mode, credentials (never printed), pool size, timeouts.
//! - [`Relay`] — a pooled lettre transport; [`Relay::send`] returns a [`SendOutcome`].
//! - [`SendOutcome`] — sent, temporary failure (retry later) or permanent failure.
//!
//! Dependency rule: depends only on `postino-domain` among workspace crates.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

use std::fmt;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use postino_domain::EmailAddress;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// How the connection to the relay is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain text: only for a relay on the same host or a test sink.
    None,
    /// Upgrade with STARTTLS, required (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

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
    /// Most connections kept open to this relay.
    pub max_connections: u32,
    /// Seconds to wait for a connection or a reply.
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
            timeout_secs: 30,
        }
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
            .field("timeout_secs", &self.timeout_secs)
            .finish()
    }
}

/// What the relay made of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Accepted (2xx).
    Sent {
        /// Reply code.
        code: u16,
        /// Reply text.
        reply: String,
    },
    /// Try again later: a 4xx reply, a refused connection, a timeout.
    TempFail {
        /// Reply code, when the server answered.
        code: Option<u16>,
        /// Reply text or connection error.
        reply: String,
    },
    /// Will never be accepted as it is: a 5xx reply.
    PermFail {
        /// Reply code.
        code: u16,
        /// Reply text.
        reply: String,
    },
}

/// The relay settings are unusable.
#[derive(Debug, thiserror::Error)]
#[error("smtp: {0}")]
pub struct SettingsError(String);

/// A pooled connection to one relay.
#[derive(Clone)]
pub struct Relay {
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl fmt::Debug for Relay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Relay")
    }
}

impl Relay {
    /// Builds the transport; connections open lazily on first use.
    ///
    /// # Errors
    ///
    /// [`SettingsError`] if the TLS parameters cannot be built.
    pub fn new(settings: &SmtpSettings) -> Result<Self, SettingsError> {
        let tls = match settings.tls {
            TlsMode::None => Tls::None,
            TlsMode::Starttls | TlsMode::Tls => {
                let params = TlsParameters::new(settings.host.clone())
                    .map_err(|e| SettingsError(format!("TLS for {}: {e}", settings.host)))?;
                if settings.tls == TlsMode::Tls {
                    Tls::Wrapper(params)
                } else {
                    Tls::Required(params)
                }
            }
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            .port(settings.port)
            .tls(tls)
            .hello_name(lettre::transport::smtp::extension::ClientId::Domain(
                settings.hello_name.clone(),
            ))
            .timeout(Some(Duration::from_secs(settings.timeout_secs.max(1))))
            .pool_config(PoolConfig::new().max_size(settings.max_connections.max(1)));
        if !settings.username.is_empty() {
            builder = builder.credentials(Credentials::new(
                settings.username.clone(),
                settings.password.expose_secret().to_owned(),
            ));
        }
        Ok(Self {
            transport: builder.build(),
        })
    }

    /// Sends one message's bytes to one recipient.
    pub async fn send(&self, from: &EmailAddress, to: &EmailAddress, bytes: &[u8]) -> SendOutcome {
        let envelope = match (from.as_str().parse(), to.as_str().parse()) {
            (Ok(f), Ok(t)) => Envelope::new(Some(f), vec![t]),
            _ => Err(lettre::error::Error::MissingFrom),
        };
        let envelope = match envelope {
            Ok(e) => e,
            Err(e) => {
                return SendOutcome::PermFail {
                    code: 553,
                    reply: format!("address not usable in SMTP: {e}"),
                };
            }
        };
        match self.transport.send_raw(&envelope, bytes).await {
            Ok(response) => SendOutcome::Sent {
                code: code_number(response.code()),
                reply: response.message().collect::<Vec<_>>().join(" "),
            },
            Err(e) => classify(&e),
        }
    }

    /// Connects, greets and authenticates, and says whether that worked.
    ///
    /// # Errors
    ///
    /// The transport's error, as text.
    pub async fn check(&self) -> Result<(), String> {
        match self.transport.test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => Err("the server did not answer NOOP".to_owned()),
            Err(e) => Err(e.to_string()),
        }
    }
}

fn code_number(code: lettre::transport::smtp::response::Code) -> u16 {
    code.to_string().parse().unwrap_or(0)
}

fn classify(e: &lettre::transport::smtp::Error) -> SendOutcome {
    let reply = e.to_string();
    match e.status() {
        Some(code) if e.is_permanent() => SendOutcome::PermFail {
            code: code_number(code),
            reply,
        },
        Some(code) => SendOutcome::TempFail {
            code: Some(code_number(code)),
            reply,
        },
        // No SMTP reply: connection refused, reset, timeout, TLS failure.
        None => SendOutcome::TempFail { code: None, reply },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use postino_sink::{Sink, SinkConfig};

    fn settings_for(sink: &Sink) -> SmtpSettings {
        SmtpSettings {
            host: "127.0.0.1".to_owned(),
            port: sink.addr().port(),
            ..SmtpSettings::default()
        }
    }

    #[tokio::test]
    async fn replies_are_classified_as_sent_temporary_or_permanent() {
        let sink = Sink::start(SinkConfig::default()).await.unwrap();
        let relay = Relay::new(&settings_for(&sink)).unwrap();
        let from = EmailAddress::parse("news@example.com").unwrap();
        let body = b"Subject: hi\r\n\r\nhello\r\n";

        let ok = relay
            .send(&from, &EmailAddress::parse("a@example.org").unwrap(), body)
            .await;
        let temp = relay
            .send(
                &from,
                &EmailAddress::parse("tempfail@example.org").unwrap(),
                body,
            )
            .await;
        let perm = relay
            .send(
                &from,
                &EmailAddress::parse("permfail@example.org").unwrap(),
                body,
            )
            .await;

        assert!(matches!(ok, SendOutcome::Sent { code: 250, .. }), "{ok:?}");
        assert!(
            matches!(
                temp,
                SendOutcome::TempFail {
                    code: Some(451),
                    ..
                }
            ),
            "{temp:?}"
        );
        assert!(
            matches!(&perm, SendOutcome::PermFail { code: 550, reply } if reply.contains("permanent")),
            "{perm:?}"
        );
        assert_eq!(sink.messages().len(), 1);
        assert_eq!(sink.messages()[0].rcpt_to, ["a@example.org"]);
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_temporary_failure() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let relay = Relay::new(&SmtpSettings {
            port,
            timeout_secs: 2,
            ..SmtpSettings::default()
        })
        .unwrap();
        let from = EmailAddress::parse("news@example.com").unwrap();
        let outcome = relay.send(&from, &from, b"Subject: x\r\n\r\nx\r\n").await;
        assert!(
            matches!(outcome, SendOutcome::TempFail { code: None, .. }),
            "{outcome:?}"
        );
        assert!(relay.check().await.is_err());
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
