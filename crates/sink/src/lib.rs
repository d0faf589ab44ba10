//! `postino sink`: a local SMTP server for the demo, tests and benchmarks.
//!
//! It speaks real SMTP over TCP (EHLO, PIPELINING, 8BITMIME, SMTPUTF8, SIZE,
//! AUTH PLAIN/LOGIN, checked only when credentials are configured), records each accepted
//! message in memory and optionally as an `.eml` file, and can inject faults:
//! a share of temporary (451) and permanent (550) refusals, a share of
//! connections dropped after DATA without a reply, a delay before
//! each reply to DATA, and recipients whose local part starts with `tempfail`
//! or `permfail` always fail that way (`policyfail`: a `554 5.7.1` policy
//! refusal). It can also play a receiver that rate
//! limits one domain (`421 4.7.0` beyond so many a second), and it counts
//! the most sessions it had open at once. It is never a relay: it delivers
//! nothing anywhere.
//!
//! # Layout
//!
//! - [`SinkConfig`] — what to listen on and which faults to inject.
//! - [`Sink`] — a running server: its address, what it received, stop and shutdown.
//! - `session` — one SMTP conversation.
//!
//! Dependency rule: depends on no workspace crate.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod session;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How the sink behaves.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Share (0.0–1.0) of recipients refused with 451 (try again later).
    pub temp_fail: f64,
    /// Share (0.0–1.0) of recipients refused with 550 (permanent).
    pub perm_fail: f64,
    /// Share (0.0–1.0) of messages after whose DATA the sink hangs up
    /// without a reply: the message is not accepted, and the client cannot
    /// know that.
    pub drop: f64,
    /// Delay before answering each message's DATA.
    pub delay: Duration,
    /// Write each accepted message here as `<n>.eml`, exactly as received.
    pub store: Option<PathBuf>,
    /// Keep accepted messages in memory for [`Sink::messages`]; off for
    /// benchmarks, where only counts matter.
    pub keep: bool,
    /// Offer PIPELINING in the EHLO reply (off to play an older server).
    pub pipelining: bool,
    /// Play a receiver with a rate limit: recipients at this domain beyond
    /// `per_second` in any second are refused with `421 4.7.0` and the
    /// connection is closed, as large mailbox providers do.
    pub throttle: Option<Throttle>,
    /// Require AUTH with these credentials (user, password); others get
    /// `535 5.7.8`. Without it, any credentials are accepted.
    pub credentials: Option<(String, String)>,
}

/// A receiving domain's rate limit (see [`SinkConfig::throttle`]).
#[derive(Debug, Clone)]
pub struct Throttle {
    /// The recipient domain it applies to, lower case.
    pub domain: String,
    /// Recipients accepted per second at most.
    pub per_second: u32,
}

impl Default for SinkConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            temp_fail: 0.0,
            perm_fail: 0.0,
            drop: 0.0,
            delay: Duration::ZERO,
            store: None,
            keep: true,
            pipelining: true,
            throttle: None,
            credentials: None,
        }
    }
}

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Received {
    /// The envelope sender (MAIL FROM), without brackets.
    pub mail_from: String,
    /// The accepted envelope recipients (RCPT TO), without brackets.
    pub rcpt_to: Vec<String>,
    /// The message as received, dot-unstuffed, CRLF line endings.
    pub data: Vec<u8>,
    /// When the final reply to DATA was sent.
    pub at: SystemTime,
    /// The SMTP session it came in (connections are numbered from 1).
    pub connection: u64,
}

impl Received {
    /// The message as text (lossy), for assertions.
    #[must_use]
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// Counters and captured mail, shared by every session.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) messages: Mutex<Vec<Received>>,
    pub(crate) per_recipient: Mutex<HashMap<String, u64>>,
    pub(crate) accepted: AtomicU64,
    pub(crate) refused_temp: AtomicU64,
    pub(crate) refused_perm: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) connections: AtomicU64,
    pub(crate) open_sessions: AtomicU64,
    pub(crate) peak_sessions: AtomicU64,
    pub(crate) refused_throttled: AtomicU64,
    /// When recipients at the throttled domain were accepted, for its limit.
    pub(crate) throttle_window: Mutex<std::collections::VecDeque<std::time::Instant>>,
}

/// Counts of what the sink saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Messages accepted (one per DATA, whatever the recipient count).
    pub accepted: u64,
    /// Recipients refused with a 4xx.
    pub refused_temp: u64,
    /// Recipients refused with a 5xx.
    pub refused_perm: u64,
    /// Messages whose connection the sink dropped instead of replying.
    pub dropped: u64,
    /// SMTP connections opened.
    pub connections: u64,
    /// Most SMTP sessions open at the same time.
    pub peak_sessions: u64,
    /// Recipients refused with 421 by the throttle.
    pub refused_throttled: u64,
}

/// A running sink. Dropping it stops accepting new connections.
#[derive(Debug)]
pub struct Sink {
    addr: SocketAddr,
    state: Arc<State>,
    stop: CancellationToken,
    accepting: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Sink {
    /// Binds and starts serving in the background.
    ///
    /// # Errors
    ///
    /// If the address cannot be bound or the store directory created.
    pub async fn start(config: SinkConfig) -> std::io::Result<Self> {
        if let Some(dir) = &config.store {
            std::fs::create_dir_all(dir)?;
        }
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::default());
        let stop = CancellationToken::new();
        let config = Arc::new(config);
        let (st, cancel) = (state.clone(), stop.clone());
        let accepting = tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = cancel.cancelled() => break,
                    accepted = listener.accept() => accepted,
                };
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let id = st.connections.fetch_add(1, Ordering::Relaxed) + 1;
                let (st, config, cancel) = (st.clone(), config.clone(), cancel.clone());
                let open = st.open_sessions.fetch_add(1, Ordering::Relaxed) + 1;
                st.peak_sessions.fetch_max(open, Ordering::Relaxed);
                tokio::spawn(async move {
                    tokio::select! {
                        () = cancel.cancelled() => {}
                        result = session::serve(stream, id, &config, &st) => {
                            if let Err(e) = result {
                                tracing::debug!(error = %e, connection = id, "sink session ended with an error");
                            }
                        }
                    }
                    st.open_sessions.fetch_sub(1, Ordering::Relaxed);
                });
            }
        });
        Ok(Self {
            addr,
            state,
            stop,
            accepting: Mutex::new(Some(accepting)),
        })
    }

    /// The address it listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every accepted message so far (empty when `keep` is off).
    #[must_use]
    pub fn messages(&self) -> Vec<Received> {
        self.state
            .messages
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
    }

    /// How many messages each recipient got.
    #[must_use]
    pub fn per_recipient(&self) -> HashMap<String, u64> {
        self.state
            .per_recipient
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
    }

    /// Counters.
    #[must_use]
    pub fn counts(&self) -> Counts {
        Counts {
            accepted: self.state.accepted.load(Ordering::Relaxed),
            refused_temp: self.state.refused_temp.load(Ordering::Relaxed),
            refused_perm: self.state.refused_perm.load(Ordering::Relaxed),
            dropped: self.state.dropped.load(Ordering::Relaxed),
            connections: self.state.connections.load(Ordering::Relaxed),
            peak_sessions: self.state.peak_sessions.load(Ordering::Relaxed),
            refused_throttled: self.state.refused_throttled.load(Ordering::Relaxed),
        }
    }

    /// Stops accepting connections and ends open sessions.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Stops, and returns once the listening socket is closed, so another
    /// sink can listen on the same address at once (an outage, then a
    /// recovery, in tests).
    pub async fn shutdown(&self) {
        self.stop.cancel();
        let accepting = self.accepting.lock().ok().and_then(|mut a| a.take());
        if let Some(task) = accepting {
            let _ = task.await;
        }
    }
}
