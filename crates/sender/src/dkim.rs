//! The DKIM keys the workers sign with, reread with the relay list so a key
//! added, disabled or deleted through the API is used within
//! `sender.reload_servers`.

use std::sync::{Mutex, PoisonError};

use postino_compose::OutgoingMessage;
use postino_compose::dkim::{
    DkimKeyring, DkimSigners, KeyVault, SealedKey, SignError, SignedBy, Unusable,
};
use postino_db::dkim_keys::{self, SealedDkimKey};
use postino_db::{DbError, PgPool};
use postino_domain::EmailAddress;

/// The signers in use and what they were built from.
#[derive(Default)]
pub(crate) struct Keys {
    keyring: DkimKeyring,
    /// The rows the signers were built from, to rebuild only on a change
    /// (opening an RSA key costs milliseconds), and the keys that could not
    /// be used, to log them once rather than on every reload.
    loaded: Mutex<Option<(Vec<Fingerprint>, Vec<Unusable>)>>,
}

/// A stored key as far as the signers are concerned.
type Fingerprint = (String, String, String, Vec<u8>);

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("keyring", &self.keyring)
            .finish_non_exhaustive()
    }
}

impl Keys {
    /// Signs `message` with the key of its From domain, if there is one.
    pub(crate) fn sign(
        &self,
        header_from: &EmailAddress,
        message: &mut OutgoingMessage,
    ) -> Result<Option<SignedBy>, SignError> {
        self.keyring.sign(header_from, message)
    }
}

/// Rereads the enabled keys, opened with `vault`, and swaps the signers in
/// `keys` when they changed. On a database error the signers in use stay.
pub(crate) async fn reload(pool: &PgPool, keys: &Keys, vault: &KeyVault) {
    let rows = match load(pool).await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the DKIM keys");
            return;
        }
    };
    let fingerprint: Vec<Fingerprint> = rows
        .iter()
        .map(|k| {
            (
                k.domain.as_str().to_owned(),
                k.selector.as_str().to_owned(),
                k.algorithm.as_str().to_owned(),
                k.sealed.clone(),
            )
        })
        .collect();
    let mut loaded = keys.loaded.lock().unwrap_or_else(PoisonError::into_inner);
    if loaded.as_ref().is_some_and(|(f, _)| *f == fingerprint) {
        return;
    }
    let (signers, unusable) = DkimSigners::open(
        vault,
        rows.iter().map(|k| SealedKey {
            domain: &k.domain,
            selector: &k.selector,
            algorithm: k.algorithm,
            sealed: &k.sealed,
        }),
    );
    for u in &unusable {
        // Messages from this domain go out unsigned (or with a parent
        // domain's key) until the key is fixed or removed.
        tracing::error!(domain = %u.domain, selector = %u.selector, reason = %u.reason, "DKIM key not usable");
    }
    tracing::info!(signers = ?signers, "DKIM keys loaded");
    keys.keyring.replace(signers);
    *loaded = Some((fingerprint, unusable));
}

async fn load(pool: &PgPool) -> Result<Vec<SealedDkimKey>, DbError> {
    let mut conn = pool.acquire().await?;
    dkim_keys::enabled_sealed(&mut conn, None).await
}
