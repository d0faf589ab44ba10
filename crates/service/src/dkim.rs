//! Which key DKIM-signs a sender's mail, and how to say so.

use postino_compose::Addressing;
use postino_compose::dkim::{DkimSigners, SealedKey, SignedBy, Unusable};
use postino_db::PgConnection;
use postino_db::dkim_keys::{self, DkimKey};
use postino_domain::dkim::signing_domains;
use postino_domain::{DkimAlgorithm, EmailAddress};

use crate::Result;

/// Whether a campaign's messages are DKIM-signed, and with which key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signing {
    /// Whether messages are signed.
    pub signed: bool,
    /// The signing domain (`d=`): the From domain or a parent of it.
    pub domain: Option<String>,
    /// The key's selector.
    pub selector: Option<String>,
    /// The key's algorithm.
    pub algorithm: Option<DkimAlgorithm>,
    /// The same in words, saying what to do when messages go unsigned.
    pub note: String,
}

impl Signing {
    fn signed(by: &SignedBy) -> Self {
        Self {
            signed: true,
            domain: Some(by.domain.as_str().to_owned()),
            selector: Some(by.selector.as_str().to_owned()),
            algorithm: Some(by.algorithm),
            note: format!(
                "signed with {}._domainkey.{} ({})",
                by.selector.as_str(),
                by.domain.as_str(),
                by.algorithm
            ),
        }
    }

    fn unsigned(note: String) -> Self {
        Self {
            signed: false,
            domain: None,
            selector: None,
            algorithm: None,
            note,
        }
    }

    fn no_key(from_domain: &str) -> Self {
        Self::unsigned(format!(
            "not signed: no enabled DKIM key for {from_domain} or a parent domain; add one under /api/v1/dkim-keys"
        ))
    }

    /// What the enabled `keys` (newest first) do for mail from `from`.
    #[must_use]
    pub fn for_sender(keys: &[DkimKey], from: &EmailAddress) -> Self {
        let key = signing_domains(from.domain())
            .find_map(|d| keys.iter().find(|k| k.domain.as_str() == d));
        match key {
            Some(k) => Self::signed(&SignedBy {
                domain: k.domain.clone(),
                selector: k.selector.clone(),
                algorithm: k.algorithm,
            }),
            None => Self::no_key(from.domain()),
        }
    }

    /// What happened when a message from `from` was signed (or not).
    #[must_use]
    pub fn outcome(by: Option<&SignedBy>, unusable: &[Unusable], from: &EmailAddress) -> Self {
        match (by, unusable.first()) {
            (Some(by), _) => Self::signed(by),
            (None, Some(u)) => Self::unsigned(format!(
                "not signed: the key {}._domainkey.{} cannot be used: {}",
                u.selector, u.domain, u.reason
            )),
            (None, None) => Self::no_key(from.domain()),
        }
    }
}

/// The signers for mail from `from`: its domain's enabled keys and its
/// parents', opened, with the keys that could not be.
///
/// # Errors
///
/// A database failure.
pub async fn signers_for(
    conn: &mut PgConnection,
    addressing: &Addressing,
    from: &EmailAddress,
) -> Result<(DkimSigners, Vec<Unusable>)> {
    let domains: Vec<String> = signing_domains(from.domain()).map(str::to_owned).collect();
    let rows = dkim_keys::enabled_sealed(conn, Some(&domains)).await?;
    Ok(DkimSigners::open(
        &addressing.dkim_vault,
        rows.iter().map(|k| SealedKey {
            domain: &k.domain,
            selector: &k.selector,
            algorithm: k.algorithm,
            sealed: &k.sealed,
        }),
    ))
}
