//! Postino's PostgreSQL store.
//!
//! Owns the connection pool and the migrations (embedded from the workspace's
//! `migrations/` folder), and holds every SQL statement the product runs, each
//! beside the function that runs it. Functions take a `&mut PgConnection` or
//! an executor so the *caller* decides the transaction.
//!
//! # Layout
//!
//! - [`pool`] — connection settings, creating the database when missing, migrations.
//! - [`lists`] — mailing lists and their subscriber counts.
//! - [`subscribers`] — subscribers, list memberships, search, bulk actions, export.
//! - [`activity`] — one subscriber's deliveries, bounces and subscription events.
//! - [`templates`] — layouts that wrap campaign bodies.
//! - [`campaigns`] — campaigns, their lists and lifecycle transitions.
//! - [`deliveries`] — the per-recipient queue: enqueue, counts, lease expiry.
//! - [`sending`] — the sender's claims under a lease (bulk and priority) and
//!   its batched results.
//! - [`test_sends`] — test sends through the sender's priority lane.
//! - [`wake`] — the channels roles wake each other on.
//! - [`heartbeats`] — what each scheduler and sender has done lately, counted.
//! - [`smtp_servers`] — the relays the sender delivers through.
//! - [`policy`] — rate limits, domain throttles, live sender processes.
//! - [`dkim_keys`] — DKIM keys: public halves for the API, sealed private
//!   keys for the signers.
//! - [`secrets`] — secrets Postino generates for itself (the link-signing
//!   key, the DKIM key-encryption key).
//! - [`imports`] — CSV import jobs, their error reports, set-based batch apply.
//! - [`export`] — subscribers in keyset batches for CSV export.
//! - [`users`] — dashboard users.
//! - [`api_tokens`] — bearer tokens, stored hashed, with their owners and scopes.
//! - [`sessions`] — dashboard sessions, stored hashed, with their CSRF tokens.
//! - [`sign_in`] — the sign-in throttle per typed address, and known browsers.
//! - [`seed`] — generated subscribers for the demo and benchmarks.
//! - [`local_cluster`] — a private PostgreSQL cluster for machines with the
//!   binaries installed but no server running (tests and the demo).
//! - [`error`] — [`DbError`], what repository functions fail with.
//!
//! Dependency rule: depends only on `postino-domain` among workspace crates.
#![warn(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod activity;
pub mod api_tokens;
pub mod campaigns;
pub mod deliveries;
pub mod dkim_keys;
pub mod error;
pub mod export;
pub mod heartbeats;
pub mod imports;
pub mod lists;
pub mod local_cluster;
pub mod policy;
pub mod pool;
pub mod secrets;
pub mod seed;
pub mod sending;
pub mod sessions;
pub mod sign_in;
pub mod smtp_servers;
pub mod subscribers;
pub mod templates;
pub mod test_sends;
pub mod users;
pub mod wake;

pub use error::DbError;
pub use pool::{DbSettings, connect, ensure_database, migrate};
pub use sqlx::{PgConnection, PgPool};
