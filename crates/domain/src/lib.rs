//! Postino's domain: the values and rules every other crate shares.
//!
//! Everything here is pure Rust with no I/O, so the rules can be tested on
//! their own and no database or HTTP type leaks into them. Values that come
//! from outside (an e-mail address, a list name, a page cursor) are built only
//! through fallible parsers, so code past the edge of the system cannot hold
//! an invalid one.
//!
//! # Layout
//!
//! - [`campaigns`] — the campaign lifecycle, body formats, header values.
//! - [`delivery`] — delivery kinds and states, and the retry policy.
//! - [`smtp`] — how to reach an SMTP relay; stored relays' names.
//! - [`policy`] — rate limits, relay weights and groups, slow-down replies.
//! - [`dkim`] — DKIM signing domains, selectors and algorithms.
//! - [`email`] — the one place an e-mail address is validated and normalised.
//! - [`lists`] — list names, opt-in and visibility, tags.
//! - [`subscribers`] — subscriber names, attributes, subscriber and membership statuses.
//! - [`imports`] — CSV import modes and job statuses.
//! - [`users`] — dashboard users, their roles and passwords; API token names.
//! - [`pagination`] — keyset cursors and page sizes.
//! - [`wire`] — CRLF line endings for messages on the wire (no SMTP smuggling).
//! - [`text`] — checks shared by text values: length, control characters,
//!   what PostgreSQL cannot store, and how a refused value is echoed.
//! - [`error`] — the error type what a parser says when it refuses a value.
//!
//! Dependency rule: this crate depends on no other workspace crate, and never
//! on sqlx, axum, lettre or askama.
#![warn(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod campaigns;
pub mod delivery;
pub mod dkim;
pub mod email;
pub mod error;
pub mod imports;
pub mod lists;
pub mod pagination;
pub mod policy;
pub mod smtp;
pub mod subscribers;
pub mod text;
pub mod users;
pub mod wire;

pub use campaigns::{BodyFormat, CampaignStatus, CustomHeader};
pub use delivery::{
    DeliveryKind, DeliveryStatus, MAX_LOST_LEASES, RetryPolicy, is_recipient_refusal,
};
pub use dkim::{DkimAlgorithm, DkimDomain, DkimSelector};
pub use email::EmailAddress;
pub use error::DomainError;
pub use imports::{ImportMode, ImportStatus};
pub use lists::{ListName, ListVisibility, OptIn, Tags};
pub use pagination::{Cursor, PageSize};
pub use policy::{DomainLimit, SendWindow, ServerGroup, ServerPolicy};
pub use smtp::{SmtpServerName, SmtpSettings, TlsMode};
pub use subscribers::{Attributes, MembershipStatus, SubscriberName, SubscriberStatus};
pub use users::{ApiArea, ApiScope, Password, Role, TokenName};
