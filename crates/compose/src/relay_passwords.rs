//! SMTP relay passwords sealed for storage, as DKIM private keys are.
//!
//! The same ChaCha20-Poly1305 format as [`crate::dkim::KeyVault`], under a
//! key derived from the same secret (`dkim.secret`, or the one generated
//! and kept in the database) for this purpose only. A relay password must
//! be sent to the relay, so it cannot be hashed; sealing keeps it out of a
//! leaked `smtp_servers` table, a dump of it, and any query that reads rows
//! whole. Only the sender and the connection test open it, right before
//! they authenticate.
//!
//! The associated data is fixed, not the relay's id: whoever could move a
//! sealed password to another row could as well change this row's host.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

use crate::dkim::KeyVault;

/// Keeps relay passwords apart from DKIM keys sealed under the same secret.
const CONTEXT: &[u8] = b"postino smtp relay passwords v1";
/// What every sealed relay password is bound to.
const AAD: &[u8] = b"smtp relay password";

/// Why a relay password could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum PasswordVaultError {
    /// The sealed bytes do not open with this vault's key.
    #[error(
        "cannot decrypt the relay's stored password: the encryption secret (dkim.secret) changed, \
         or the row was altered; enter the password again"
    )]
    Open,
    /// Sealing failed (no system randomness) or no key could be derived.
    #[error("cannot encrypt the relay's password")]
    Seal,
}

/// Seals and opens relay passwords. Prints no key material.
#[derive(Clone)]
pub struct PasswordVault {
    inner: KeyVault,
}

impl fmt::Debug for PasswordVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordVault([REDACTED])")
    }
}

impl PasswordVault {
    /// A vault whose key is derived from `secret`, the secret the DKIM
    /// vault is made from.
    ///
    /// # Errors
    ///
    /// [`PasswordVaultError::Seal`] never in practice (see [`KeyVault::new`]).
    pub fn new(secret: &[u8]) -> Result<Self, PasswordVaultError> {
        KeyVault::for_purpose(secret, CONTEXT)
            .map(|inner| Self { inner })
            .map_err(|_| PasswordVaultError::Seal)
    }

    /// Encrypts a password for storage.
    ///
    /// # Errors
    ///
    /// [`PasswordVaultError::Seal`] if the system has no randomness.
    pub fn seal(&self, password: &SecretString) -> Result<Vec<u8>, PasswordVaultError> {
        self.inner
            .seal_for(AAD, password.expose_secret().as_bytes())
            .map_err(|_| PasswordVaultError::Seal)
    }

    /// Decrypts what [`PasswordVault::seal`] made; no sealed password is an
    /// empty one.
    ///
    /// # Errors
    ///
    /// [`PasswordVaultError::Open`] if it was sealed under another secret
    /// or altered.
    pub fn open(&self, sealed: Option<&[u8]>) -> Result<SecretString, PasswordVaultError> {
        let Some(sealed) = sealed else {
            return Ok(SecretString::from(String::new()));
        };
        let plain = self
            .inner
            .open_for(AAD, sealed)
            .map_err(|_| PasswordVaultError::Open)?;
        let text =
            std::str::from_utf8(plain.expose_secret()).map_err(|_| PasswordVaultError::Open)?;
        Ok(SecretString::from(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_password_opens_only_with_the_same_secret_and_never_as_a_dkim_key() {
        let vault = PasswordVault::new(b"a secret of any length").unwrap();
        let sealed = vault
            .seal(&SecretString::from("hunter2-relay".to_owned()))
            .unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(
            vault.open(Some(&sealed)).unwrap().expose_secret(),
            "hunter2-relay"
        );
        assert_eq!(vault.open(None).unwrap().expose_secret(), "");
        assert!(
            PasswordVault::new(b"another")
                .unwrap()
                .open(Some(&sealed))
                .is_err()
        );
        // Same secret, DKIM purpose: a different key.
        let dkim = KeyVault::new(b"a secret of any length").unwrap();
        assert!(dkim.open_for(AAD, &sealed).is_err());
        assert!(!format!("{vault:?}").contains("secret"));
    }
}
