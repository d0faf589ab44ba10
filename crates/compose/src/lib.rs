//! Turns a campaign and one subscriber into a ready-to-send message, and
//! signs the links in it.
//!
//! Pure: no database, no network. The sender uses it per recipient, the web
//! crate for previews, test sends and the public unsubscribe page.
//!
//! # Layout
//!
//! - [`template`] — compiles a campaign's subject, body, layout and text
//!   alternative once (minijinja, sandboxed, fuel-limited) and renders them
//!   per recipient.
//! - [`links`] — signed, unguessable per-recipient tokens (unsubscribe).
//! - [`message`] — builds the MIME message with the headers every campaign
//!   message carries (Message-ID, List-Unsubscribe, List-Unsubscribe-Post, …).
//! - [`outgoing`] — addresses one campaign message to one recipient: signed
//!   unsubscribe link and mailto, `List-Id`, VERP return path.
//! - [`dkim`] — DKIM keys (generate, import, seal for storage), their DNS
//!   records, and signing a built message with its From domain's key.
//! - [`relay_passwords`] — SMTP relay passwords sealed for storage, under
//!   the DKIM vault's secret.
//!
//! Dependency rule: depends only on `postino-domain` among workspace crates.
#![warn(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod dkim;
pub mod links;
pub mod message;
pub mod outgoing;
pub mod relay_passwords;
pub mod template;

pub use links::LinkSigner;
pub use message::{MessageParams, OutgoingMessage, build_message};
pub use outgoing::{Addressee, Addressing, CampaignIdentity, ComposeError};
pub use relay_passwords::{PasswordVault, PasswordVaultError};
pub use template::{CampaignSource, CompiledCampaign, Recipient, Rendered, TemplateError};
