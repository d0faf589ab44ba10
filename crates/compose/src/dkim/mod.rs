//! DKIM (RFC 6376, RFC 8463): keys, their DNS records, their encryption at
//! rest, and signing a built message.
//!
//! # Layout
//!
//! - [`key`] — a private key: generated (RSA-2048 or Ed25519) or imported
//!   from PEM, normalised to PKCS#8, with its public half.
//! - [`record`] — the DNS TXT record that publishes a public key.
//! - [`vault`] — seals private keys for storage (ChaCha20-Poly1305).
//! - [`signer`] — the keys in use, picked by a message's From domain, and
//!   the signature prepended to the message; [`DkimKeyring`] holds the set
//!   a long-running sender swaps when keys change.

pub mod key;
pub mod record;
pub mod signer;
pub mod vault;

pub use key::{DkimKeyError, KeyPair};
pub use record::DnsRecord;
pub use signer::{DkimKeyring, DkimSigners, SealedKey, SignError, SignedBy, Unusable};
pub use vault::{KeyVault, VaultError};
