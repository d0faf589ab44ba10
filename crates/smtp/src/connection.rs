//! One SMTP session with a relay, reused for many messages.

use std::fmt;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::{ClientId, Extension};
use postino_domain::{EmailAddress, TlsMode};
use secrecy::ExposeSecret;
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::{SmtpSettings, transaction};

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
    /// Try again later: a 4xx reply, a refused or dropped connection, a timeout.
    TempFail {
        /// Reply code, when the server answered.
        code: Option<u16>,
        /// Reply text or connection error.
        reply: String,
    },
    /// Will never be accepted as it is: a 5xx reply, or a message this
    /// relay cannot take (say, a non-ASCII address without SMTPUTF8).
    PermFail {
        /// Reply code, when the server answered.
        code: Option<u16>,
        /// Reply text or the reason.
        reply: String,
    },
}

impl SendOutcome {
    fn temp(reply: impl Into<String>) -> Self {
        Self::TempFail {
            code: None,
            reply: reply.into(),
        }
    }
}

/// An open session: connected, greeted, secured and authenticated as
/// configured.
pub struct Connection {
    inner: AsyncSmtpConnection,
    /// The relay offers PIPELINING, so a message goes out in two writes.
    pipelining: bool,
    sent: u32,
    limit: u32,
    timeout: Duration,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("sent", &self.sent)
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

fn tls_parameters(settings: &SmtpSettings) -> Result<Option<TlsParameters>, String> {
    match settings.tls {
        TlsMode::None => Ok(None),
        TlsMode::Starttls | TlsMode::Tls => TlsParameters::new(settings.host.clone())
            .map(Some)
            .map_err(|e| format!("TLS for {}: {e}", settings.host)),
    }
}

/// How far [`open`] got before it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Connect,
    Auth,
}

/// Why [`open`] failed: the stage, what happened, and whether the server
/// refused for good (a 5xx to AUTH: the credentials are wrong).
type OpenError = (Stage, String, bool);

async fn open(settings: &SmtpSettings) -> Result<AsyncSmtpConnection, OpenError> {
    let params = tls_parameters(settings).map_err(|e| (Stage::Connect, e, false))?;
    let hello = ClientId::Domain(settings.hello_name.clone());
    let limit = settings.timeout();
    // lettre leaves Nagle's algorithm on and writes a message's final
    // "\r\n.\r\n" apart from the body: with the receiver's delayed ACK that
    // costs 40 ms per message. Plain and STARTTLS sessions therefore start on
    // a socket of our own with TCP_NODELAY; implicit TLS goes through
    // lettre's own connect, which owns that handshake.
    let connect = async {
        let mut conn = if settings.tls == TlsMode::Tls {
            AsyncSmtpConnection::connect_tokio1(
                (settings.host.as_str(), settings.port),
                Some(limit),
                &hello,
                params.clone(),
                None,
            )
            .await
            .map_err(|e| e.to_string())?
        } else {
            let tcp = TcpStream::connect((settings.host.as_str(), settings.port))
                .await
                .map_err(|e| e.to_string())?;
            tcp.set_nodelay(true).map_err(|e| e.to_string())?;
            AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &hello)
                .await
                .map_err(|e| e.to_string())?
        };
        if let (TlsMode::Starttls, Some(params)) = (settings.tls, params) {
            conn.starttls(params, &hello)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok::<_, String>(conn)
    };
    let mut conn = timeout(limit, connect)
        .await
        .map_err(|_| {
            (
                Stage::Connect,
                format!("no greeting within {limit:?}"),
                false,
            )
        })?
        .map_err(|e| (Stage::Connect, e, false))?;
    if !settings.username.is_empty() {
        let credentials = Credentials::new(
            settings.username.clone(),
            settings.password.expose_secret().to_owned(),
        );
        timeout(
            limit,
            conn.auth(&[Mechanism::Plain, Mechanism::Login], &credentials),
        )
        .await
        .map_err(|_| {
            (
                Stage::Auth,
                format!("no AUTH reply within {limit:?}"),
                false,
            )
        })?
        .map_err(|e| (Stage::Auth, e.to_string(), e.is_permanent()))?;
    }
    Ok(conn)
}

impl Connection {
    /// Opens a session with the relay.
    ///
    /// # Errors
    ///
    /// The failure, which is never the recipients' fault: a
    /// [`SendOutcome::TempFail`] when the relay cannot be reached or did not
    /// answer, a [`SendOutcome::PermFail`] when it refused our credentials
    /// for good (the relay is misconfigured, not down).
    pub async fn open(settings: &SmtpSettings) -> Result<Self, SendOutcome> {
        let mut inner = open(settings).await.map_err(|(stage, e, permanent)| {
            let reply = match stage {
                Stage::Connect => {
                    format!("cannot connect to {}:{}: {e}", settings.host, settings.port)
                }
                Stage::Auth => format!("{}:{} refused AUTH: {e}", settings.host, settings.port),
            };
            if permanent {
                SendOutcome::PermFail { code: None, reply }
            } else {
                SendOutcome::temp(reply)
            }
        })?;
        let hello = ClientId::Domain(settings.hello_name.clone());
        let pipelining = match timeout(
            settings.timeout(),
            transaction::offers_pipelining(&mut inner, &hello),
        )
        .await
        {
            Ok(Ok(offered)) => offered,
            Ok(Err(e)) => {
                return Err(SendOutcome::temp(format!(
                    "{}:{} refused EHLO: {e}",
                    settings.host, settings.port
                )));
            }
            Err(_) => return Err(SendOutcome::temp("no reply to EHLO in time")),
        };
        Ok(Self {
            inner,
            pipelining,
            sent: 0,
            limit: settings.messages_per_connection.max(1),
            timeout: settings.timeout(),
        })
    }

    /// Whether another message may go over this session: it is intact and
    /// has not reached its message limit.
    #[must_use]
    pub fn is_reusable(&self) -> bool {
        !self.inner.has_broken() && self.sent < self.limit
    }

    /// Sends one message to one recipient. `from` is the envelope sender
    /// (the bounce address), which need not be the `From:` header.
    pub async fn send(
        &mut self,
        from: &EmailAddress,
        to: &EmailAddress,
        bytes: &[u8],
    ) -> SendOutcome {
        // No bare CR or LF reaches the wire, on either path below.
        let bytes = &*postino_domain::wire::crlf_line_endings(bytes);
        let envelope = match (from.as_str().parse(), to.as_str().parse()) {
            (Ok(f), Ok(t)) => Envelope::new(Some(f), vec![t]),
            _ => Err(lettre::error::Error::MissingFrom),
        };
        let envelope = match envelope {
            Ok(e) => e,
            Err(e) => {
                return SendOutcome::PermFail {
                    code: None,
                    reply: format!("address not usable in SMTP: {e}"),
                };
            }
        };
        self.sent += 1;
        let info = self.inner.server_info();
        // What the relay cannot take, lettre's own send refuses with the
        // right reason; the fast path is for everything else.
        let plain = (bytes.is_ascii() || info.supports_feature(Extension::EightBitMime))
            && ((from.as_str().is_ascii() && to.as_str().is_ascii())
                || info.supports_feature(Extension::SmtpUtfEight));
        let sending = async {
            match (self.pipelining && plain, envelope.from()) {
                (true, Some(sender)) => {
                    let sender = sender.clone();
                    let recipient = envelope.to().first().cloned();
                    match recipient {
                        Some(recipient) => {
                            let sent =
                                transaction::send(&mut self.inner, sender, recipient, bytes).await;
                            if sent.is_err() {
                                // Replies may still be owed: the session is out of step.
                                self.inner.abort().await;
                            }
                            sent
                        }
                        None => self.inner.send(&envelope, bytes).await,
                    }
                }
                _ => self.inner.send(&envelope, bytes).await,
            }
        };
        match timeout(self.timeout, sending).await {
            Ok(Ok(response)) => SendOutcome::Sent {
                code: code_number(response.code()),
                reply: response.message().collect::<Vec<_>>().join(" "),
            },
            Ok(Err(e)) => classify(&e),
            Err(_) => {
                // The session is in an unknown state: never reuse it.
                self.sent = self.limit;
                self.inner.abort().await;
                SendOutcome::temp(format!("no reply within {:?}", self.timeout))
            }
        }
    }

    /// Says goodbye (QUIT), bounded by the timeout.
    pub async fn close(mut self) {
        if !self.inner.has_broken() {
            let _ = timeout(self.timeout, self.inner.quit()).await;
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
            code: Some(code_number(code)),
            reply,
        },
        Some(code) => SendOutcome::TempFail {
            code: Some(code_number(code)),
            reply,
        },
        // Refused before anything was sent: this relay cannot take this
        // message, and trying again will not change that.
        None if e.is_client() => SendOutcome::PermFail { code: None, reply },
        // No reply: connection reset or closed, TLS failure.
        None => SendOutcome::temp(reply),
    }
}

/// What [`check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The connection is encrypted (STARTTLS or implicit TLS).
    pub encrypted: bool,
    /// Credentials were configured and accepted.
    pub authenticated: bool,
    /// The server's greeting name, from its EHLO reply.
    pub server_name: String,
}

/// Why [`check`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// No SMTP session could be opened: the connection was refused or timed
    /// out, the peer is not an SMTP server, or TLS failed. The detail is for
    /// logs: shown to a user, its variety would map which ports of which
    /// hosts are open.
    #[error("connect to {address} failed: {detail}")]
    Connect {
        /// `host:port`.
        address: String,
        /// What went wrong.
        detail: String,
    },
    /// The relay refused the credentials (never includes the password).
    #[error("authentication as {username:?} failed: {detail}")]
    Auth {
        /// The user name tried.
        username: String,
        /// The relay's reply.
        detail: String,
    },
}

/// Connects, greets, secures and authenticates as a sender would, then says
/// QUIT. The error names the step that failed and what the server said;
/// it never contains the password.
///
/// # Errors
///
/// The step that failed and why.
pub async fn check(settings: &SmtpSettings) -> Result<Checked, CheckError> {
    let mut conn = open(settings)
        .await
        .map_err(|(stage, detail, _)| match stage {
            Stage::Connect => CheckError::Connect {
                address: format!("{}:{}", settings.host, settings.port),
                detail,
            },
            Stage::Auth => CheckError::Auth {
                username: settings.username.clone(),
                detail,
            },
        })?;
    let checked = Checked {
        encrypted: conn.is_encrypted(),
        authenticated: !settings.username.is_empty(),
        server_name: conn.server_info().name().to_owned(),
    };
    let _ = timeout(settings.timeout(), conn.quit()).await;
    Ok(checked)
}
