//! The client side of SMTP: how to reach a relay, one connection to it, and
//! what its reply means for a delivery.
//!
//! The sender keeps one [`Connection`] per worker and reuses it for up to
//! `messages_per_connection` messages, so the number of open connections to a
//! relay is exactly the number of workers given to it: a limit relays
//! enforce, and one a shared pool cannot promise.
//!
//! # Layout
//!
//! - [`SmtpSettings`] — host, port, TLS mode, credentials (never printed), limits, timeouts.
//! - [`Connection`] — an open, greeted and authenticated session; [`Connection::send`].
//! - [`SendOutcome`] — sent, temporary failure (retry later) or permanent failure.
//! - [`check`] — connect, authenticate and quit, reporting each step.
//!
//! Dependency rule: depends only on `postino-domain` among workspace crates.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod connection;
mod transaction;

pub use connection::{CheckError, Checked, Connection, SendOutcome, check};
pub use postino_domain::{SmtpSettings, TlsMode};

#[cfg(test)]
mod tests;
