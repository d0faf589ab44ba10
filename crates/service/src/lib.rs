//! Postino's use cases: what a marketer or an integrating system can do,
//! whichever HTTP surface they come through. The REST API and the dashboard
//! are two thin layers over this crate; neither holds a rule of its own.
//!
//! # Layout
//!
//! One module per capability:
//!
//! - [`campaigns`] — drafts and their checks, lifecycle moves, previews,
//!   test sends (through the sender's priority lane), progress.
//! - [`deliveries`] — a campaign's per-recipient outcomes, retrying failures.
//! - [`subscribers`] — subscribers, memberships, search filters, bulk
//!   actions, per-subscriber export and erasure.
//! - [`lists`] — mailing lists.
//! - [`layouts`] — layouts that wrap campaign bodies.
//! - [`imports`] — CSV import jobs: checking an upload and queueing it,
//!   cancelling, the report of bad rows.
//! - [`exports`] — one keyset CSV stream, serving the subscriber export and
//!   the import error report, so memory stays flat at any size.
//! - [`test_sends`] — a campaign's real message to a few addresses.
//! - [`unsubscribe`] — the signed link in every message.
//! - [`dkim`] — which key signs a sender's mail.
//! - [`error`] — [`Error`], what every use case fails with.
//!
//! # Rules
//!
//! - Functions take the connection (or transaction) from the caller, so a
//!   caller can put several steps in one transaction; the few that must
//!   not hold one while they wait (a test send waiting for the sender) take
//!   the pool.
//! - Inputs are plain structs; the API's request types convert into them and
//!   the dashboard's forms build them directly.
//! - Dependency rule: depends on `postino-domain`, `postino-db`,
//!   `postino-compose`, `postino-sandbox`, `postino-importer` (its upload
//!   storage) and `postino-smtp` (the relay connection check, which sends no
//!   mail); never on axum, tower, utoipa or askama.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod campaigns;
pub mod deliveries;
pub mod dkim;
pub mod error;
pub mod exports;
pub mod imports;
pub mod layouts;
pub mod lists;
pub mod subscribers;
pub mod test_sends;
pub mod unsubscribe;

pub use error::{Error, FieldError, Result};

use serde::Deserialize;

/// Rules for campaigns.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CampaignSettings {
    /// Refuse to start a campaign whose body (or layout) has no
    /// `{{ unsubscribe_url }}` link. Turn off only for transactional-style
    /// mail where the law allows it.
    pub require_unsubscribe_link: bool,
}

impl Default for CampaignSettings {
    fn default() -> Self {
        Self {
            require_unsubscribe_link: true,
        }
    }
}

/// What use cases need besides the database: the template sandbox, message
/// addressing and the operator's rules. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Context {
    /// Compiles and renders templates in processes of their own.
    pub templates: postino_sandbox::Sandbox,
    /// Addresses messages (previews) and holds the vaults that open stored
    /// DKIM keys and relay passwords.
    pub addressing: postino_compose::Addressing,
    /// Campaign rules.
    pub campaigns: CampaignSettings,
    /// Where uploads go and how large they may be.
    pub imports: postino_importer::ImportSettings,
    /// Whether SMTP relays may be on loopback or private addresses.
    pub allow_private_relay_hosts: bool,
}
