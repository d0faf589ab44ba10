//! Private keys sealed for storage with ChaCha20-Poly1305.
//!
//! A sealed key is `version (1) ‖ nonce (12) ‖ ciphertext ‖ tag (16)`. The
//! key's domain and selector are the associated data, so a sealed key
//! copied onto another row does not open there. The nonce is random: a few
//! keys per installation are sealed in its lifetime, far from the birthday
//! bound of 96-bit nonces.

use std::fmt;

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf::{HKDF_SHA256, Salt};
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::SecretSlice;

/// Format of what [`KeyVault::seal`] returns; another format later gets
/// another number, and keys of both can be told apart.
const VERSION: u8 = 1;
/// Keeps keys derived from the same secret for other purposes distinct.
const CONTEXT: &[u8] = b"postino dkim private keys v1";

/// Why a key could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The sealed bytes do not open with this vault's key: the encryption
    /// secret changed, or the row was altered.
    #[error(
        "cannot decrypt the stored private key: the DKIM encryption secret (dkim.secret) changed, or the row was altered"
    )]
    Open,
    /// The system gave no randomness for a nonce.
    #[error("cannot encrypt the private key: no system randomness")]
    Seal,
    /// No encryption key could be derived from the secret.
    #[error("cannot derive the DKIM encryption key")]
    Key,
}

/// Seals and opens private keys under one secret. Prints no key material.
#[derive(Clone)]
pub struct KeyVault {
    key: LessSafeKey,
}

impl fmt::Debug for KeyVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyVault([REDACTED])")
    }
}

impl KeyVault {
    /// A vault whose key is derived from `secret` with HKDF-SHA256, so a
    /// configured passphrase of any length gives a full-strength key.
    ///
    /// # Errors
    ///
    /// [`VaultError::Key`] never in practice: HKDF refuses only outputs
    /// longer than 255 hash lengths, and the key is one.
    pub fn new(secret: &[u8]) -> Result<Self, VaultError> {
        Self::for_purpose(secret, CONTEXT)
    }

    /// A vault for another kind of secret, whose key is derived from the
    /// same `secret` under another `context`: keys for different purposes
    /// are independent, so a value sealed for one never opens as another.
    pub(crate) fn for_purpose(secret: &[u8], context: &[u8]) -> Result<Self, VaultError> {
        let prk = Salt::new(HKDF_SHA256, context).extract(secret);
        let key = prk
            .expand(&[context], &CHACHA20_POLY1305)
            .map(UnboundKey::from)
            .map_err(|_| VaultError::Key)?;
        Ok(Self {
            key: LessSafeKey::new(key),
        })
    }

    /// Encrypts a PKCS#8 private key for the row of `domain` and `selector`.
    ///
    /// # Errors
    ///
    /// [`VaultError::Seal`] if the system has no randomness.
    pub fn seal(&self, domain: &str, selector: &str, pkcs8: &[u8]) -> Result<Vec<u8>, VaultError> {
        self.seal_for(&aad(domain, selector), pkcs8)
    }

    /// Encrypts `plain` bound to the associated data `aad`.
    pub(crate) fn seal_for(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, VaultError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| VaultError::Seal)?;
        let mut in_out = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut in_out,
            )
            .map_err(|_| VaultError::Seal)?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + in_out.len());
        sealed.push(VERSION);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&in_out);
        Ok(sealed)
    }

    /// Decrypts what [`KeyVault::seal`] made for the same domain and selector.
    ///
    /// # Errors
    ///
    /// [`VaultError::Open`] if it was sealed under another secret or for
    /// another row, or altered.
    pub fn open(
        &self,
        domain: &str,
        selector: &str,
        sealed: &[u8],
    ) -> Result<SecretSlice<u8>, VaultError> {
        self.open_for(&aad(domain, selector), sealed)
    }

    /// Decrypts what [`KeyVault::seal_for`] made with the same `aad`.
    pub(crate) fn open_for(
        &self,
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<SecretSlice<u8>, VaultError> {
        let Some((&VERSION, rest)) = sealed.split_first() else {
            return Err(VaultError::Open);
        };
        if rest.len() < NONCE_LEN {
            return Err(VaultError::Open);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| VaultError::Open)?;
        let mut in_out = ciphertext.to_vec();
        let plain_len = self
            .key
            .open_in_place(nonce, Aad::from(aad), &mut in_out)
            .map_err(|_| VaultError::Open)?
            .len();
        in_out.truncate(plain_len);
        Ok(SecretSlice::from(in_out))
    }
}

fn aad(domain: &str, selector: &str) -> Vec<u8> {
    // A NUL cannot occur in either name, so the pair is unambiguous.
    [selector.as_bytes(), b"\0", domain.as_bytes()].concat()
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn a_sealed_key_opens_only_with_the_same_secret_and_row() {
        let vault = KeyVault::new(b"a secret of any length").unwrap();
        let sealed = vault.seal("example.com", "s1", b"private bytes").unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"private"));
        let opened = vault.open("example.com", "s1", &sealed).unwrap();
        assert_eq!(opened.expose_secret(), b"private bytes");
        assert!(vault.open("example.org", "s1", &sealed).is_err());
        assert!(vault.open("example.com", "s2", &sealed).is_err());
        assert!(
            KeyVault::new(b"another")
                .unwrap()
                .open("example.com", "s1", &sealed)
                .is_err()
        );
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(vault.open("example.com", "s1", &altered).is_err());
        assert!(vault.open("example.com", "s1", &[]).is_err());
        // Two seals of one key differ (fresh nonce).
        assert_ne!(
            sealed,
            vault.seal("example.com", "s1", b"private bytes").unwrap()
        );
    }
}
