//! DKIM private keys: generated or imported, always held as PKCS#8 DER.
//!
//! ring signs (it is close to OpenSSL's speed) but cannot generate RSA keys,
//! so the `rsa` crate generates them and converts imported PKCS#1 keys; it
//! never signs.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use postino_domain::DkimAlgorithm;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use secrecy::{ExposeSecret, SecretSlice};

/// Size of generated RSA keys: what receivers expect today, and signing
/// stays cheap (a 4096-bit key signs about 7 times slower).
pub const RSA_BITS: usize = 2048;
/// Imported RSA keys must be at least this large: ring refuses to sign with
/// smaller ones, and receivers increasingly ignore 1024-bit signatures.
const RSA_MIN_BITS: usize = 2048;
/// Larger keys give long DNS records and slow signing for no practical gain.
const RSA_MAX_BITS: usize = 4096;

/// Why a key could not be generated or imported.
#[derive(Debug, thiserror::Error)]
pub enum DkimKeyError {
    /// The PEM text is not a usable private key; says why.
    #[error("{0}")]
    Pem(String),
    /// The key is of another algorithm than the one asked for.
    #[error("the key is {found}, not {given}")]
    WrongAlgorithm {
        /// What the request said.
        given: DkimAlgorithm,
        /// What the key is.
        found: DkimAlgorithm,
    },
    /// Key generation failed (no system randomness).
    #[error("cannot generate a key: {0}")]
    Generate(String),
}

/// A DKIM private key with its public half. The private part prints as
/// `[REDACTED]` and is only read to seal it or to sign.
pub struct KeyPair {
    algorithm: DkimAlgorithm,
    pkcs8: SecretSlice<u8>,
    /// What the DNS record publishes: the DER SubjectPublicKeyInfo for RSA,
    /// the raw 32 bytes for Ed25519 (RFC 8463).
    public_key: Vec<u8>,
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("algorithm", &self.algorithm)
            .field("private_key", &"[REDACTED]")
            .finish_non_exhaustive()
    }
}

impl KeyPair {
    /// A new random key: RSA-2048 or Ed25519. RSA generation takes a
    /// fraction of a second to seconds; run it off the async runtime.
    ///
    /// # Errors
    ///
    /// [`DkimKeyError::Generate`] if the system has no randomness.
    pub fn generate(algorithm: DkimAlgorithm) -> Result<Self, DkimKeyError> {
        match algorithm {
            DkimAlgorithm::RsaSha256 => {
                let key = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, RSA_BITS)
                    .map_err(|e| DkimKeyError::Generate(e.to_string()))?;
                rsa_pair(&key).map_err(|e| DkimKeyError::Generate(e.to_string()))
            }
            DkimAlgorithm::Ed25519Sha256 => {
                let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                    .map_err(|_| DkimKeyError::Generate("no system randomness".to_owned()))?;
                ed25519_pair(doc.as_ref())
            }
        }
    }

    /// Imports a PEM private key: PKCS#1 (`BEGIN RSA PRIVATE KEY`) or
    /// PKCS#8 (`BEGIN PRIVATE KEY`), RSA of 2048 to 4096 bits or Ed25519.
    /// With `expected`, the key must be of that algorithm.
    ///
    /// # Errors
    ///
    /// [`DkimKeyError::Pem`] naming what is wrong with the text,
    /// [`DkimKeyError::WrongAlgorithm`] if it is another kind of key.
    pub fn from_pem(pem: &str, expected: Option<DkimAlgorithm>) -> Result<Self, DkimKeyError> {
        let (label, der) = pem_block(pem)?;
        let pair = match label.as_str() {
            "RSA PRIVATE KEY" => {
                let key = RsaPrivateKey::from_pkcs1_der(der.expose_secret()).map_err(|e| {
                    DkimKeyError::Pem(format!("not a valid PKCS#1 RSA private key: {e}"))
                })?;
                checked_rsa(&key)?
            }
            "PRIVATE KEY" => match RsaPrivateKey::from_pkcs8_der(der.expose_secret()) {
                Ok(key) => checked_rsa(&key)?,
                Err(_) => ed25519_pair(der.expose_secret()).map_err(|_| {
                    DkimKeyError::Pem(
                        "not an RSA or Ed25519 private key (other key types cannot sign DKIM)"
                            .to_owned(),
                    )
                })?,
            },
            "ENCRYPTED PRIVATE KEY" => {
                return Err(DkimKeyError::Pem(
                    "the key is encrypted; decrypt it first (openssl pkey -in key.pem -out plain.pem)"
                        .to_owned(),
                ));
            }
            other => {
                return Err(DkimKeyError::Pem(format!(
                    "a PEM \"{other}\" block is not a private key; expected BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY"
                )));
            }
        };
        match expected {
            Some(given) if given != pair.algorithm => Err(DkimKeyError::WrongAlgorithm {
                given,
                found: pair.algorithm,
            }),
            _ => Ok(pair),
        }
    }

    /// A key as stored: PKCS#8 DER of the given algorithm.
    ///
    /// # Errors
    ///
    /// [`DkimKeyError::Pem`] if the bytes are not such a key.
    pub fn from_pkcs8(algorithm: DkimAlgorithm, der: &[u8]) -> Result<Self, DkimKeyError> {
        match algorithm {
            DkimAlgorithm::RsaSha256 => {
                let key = RsaPrivateKey::from_pkcs8_der(der)
                    .map_err(|e| DkimKeyError::Pem(format!("not an RSA PKCS#8 key: {e}")))?;
                checked_rsa(&key)
            }
            DkimAlgorithm::Ed25519Sha256 => ed25519_pair(der),
        }
    }

    /// The signing algorithm.
    #[must_use]
    pub fn algorithm(&self) -> DkimAlgorithm {
        self.algorithm
    }

    /// The public key as the DNS record publishes it (before base64).
    #[must_use]
    pub fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    /// The private key, PKCS#8 DER: only to seal it or to build a signer.
    #[must_use]
    pub fn expose_pkcs8(&self) -> &[u8] {
        self.pkcs8.expose_secret()
    }

    /// The public key in base64, the record's `p=` value.
    #[must_use]
    pub fn public_key_base64(&self) -> String {
        STANDARD.encode(&self.public_key)
    }
}

fn checked_rsa(key: &RsaPrivateKey) -> Result<KeyPair, DkimKeyError> {
    let bits = key.size() * 8;
    if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
        return Err(DkimKeyError::Pem(format!(
            "the RSA key has {bits} bits; DKIM keys here must have {RSA_MIN_BITS} to {RSA_MAX_BITS}"
        )));
    }
    key.validate()
        .map_err(|e| DkimKeyError::Pem(format!("the RSA key is inconsistent: {e}")))?;
    rsa_pair(key).map_err(|e| DkimKeyError::Pem(format!("cannot re-encode the RSA key: {e}")))
}

fn rsa_pair(key: &RsaPrivateKey) -> Result<KeyPair, rsa::pkcs8::Error> {
    let pkcs8 = key.to_pkcs8_der()?;
    let public = RsaPublicKey::from(key)
        .to_public_key_der()
        .map_err(rsa::pkcs8::Error::PublicKey)?;
    Ok(KeyPair {
        algorithm: DkimAlgorithm::RsaSha256,
        pkcs8: SecretSlice::from(pkcs8.as_bytes().to_vec()),
        public_key: public.as_bytes().to_vec(),
    })
}

fn ed25519_pair(der: &[u8]) -> Result<KeyPair, DkimKeyError> {
    // "maybe unchecked" accepts PKCS#8 v1 too (no public key inside), which
    // is what `openssl genpkey -algorithm ed25519` writes.
    let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
        .map_err(|e| DkimKeyError::Pem(format!("not a valid Ed25519 PKCS#8 key: {e}")))?;
    Ok(KeyPair {
        algorithm: DkimAlgorithm::Ed25519Sha256,
        pkcs8: SecretSlice::from(der.to_vec()),
        public_key: pair.public_key().as_ref().to_vec(),
    })
}

/// The label and decoded contents of the one PEM block in `text`.
fn pem_block(text: &str) -> Result<(String, SecretSlice<u8>), DkimKeyError> {
    let garbage = || {
        DkimKeyError::Pem(
            "is not a PEM private key (-----BEGIN PRIVATE KEY----- … -----END PRIVATE KEY-----)"
                .to_owned(),
        )
    };
    let start = text.find("-----BEGIN ").ok_or_else(garbage)?;
    let rest = &text[start + "-----BEGIN ".len()..];
    let (label, rest) = rest.split_once("-----").ok_or_else(garbage)?;
    let end_marker = format!("-----END {label}-----");
    let (body, _) = rest
        .split_once(&end_marker)
        .ok_or_else(|| DkimKeyError::Pem(format!("the PEM block has no {end_marker} line")))?;
    if body.contains("Proc-Type:") || body.contains("DEK-Info:") {
        return Err(DkimKeyError::Pem(
            "the key is encrypted; decrypt it first (openssl pkey -in key.pem -out plain.pem)"
                .to_owned(),
        ));
    }
    let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let der = STANDARD
        .decode(b64.as_bytes())
        .map_err(|_| DkimKeyError::Pem("the PEM block is not valid base64".to_owned()))?;
    Ok((label.to_owned(), SecretSlice::from(der)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `openssl genpkey -algorithm ed25519` (PKCS#8 v1, no public key).
    const OPENSSL_ED25519: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIMwbJLfhxXhwYpQcjnTfJVyNbZrnT0pnqpLMsKWhD7wh\n-----END PRIVATE KEY-----\n";

    #[test]
    fn generated_keys_have_the_expected_public_halves() {
        let ed = KeyPair::generate(DkimAlgorithm::Ed25519Sha256).unwrap();
        assert_eq!(ed.public_key().len(), 32);
        let rsa = KeyPair::generate(DkimAlgorithm::RsaSha256).unwrap();
        // SubjectPublicKeyInfo of a 2048-bit key.
        assert_eq!(rsa.public_key().len(), 294);
        assert!(!format!("{rsa:?}").contains(&format!("{:?}", &rsa.expose_pkcs8()[..8])));
    }

    #[test]
    fn pkcs1_and_pkcs8_pem_import_to_the_same_key() {
        use rsa::pkcs1::{EncodeRsaPrivateKey, LineEnding};
        let key = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        let pkcs1 = key.to_pkcs1_pem(LineEnding::CRLF).unwrap();
        let pkcs8 = key.to_pkcs8_pem(LineEnding::LF).unwrap();
        let a = KeyPair::from_pem(&pkcs1, Some(DkimAlgorithm::RsaSha256)).unwrap();
        let b = KeyPair::from_pem(&format!("  \n{}\n", pkcs8.as_str()), None).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        assert_eq!(a.expose_pkcs8(), b.expose_pkcs8());
    }

    #[test]
    fn an_openssl_ed25519_key_imports() {
        let k = KeyPair::from_pem(OPENSSL_ED25519, None).unwrap();
        assert_eq!(k.algorithm(), DkimAlgorithm::Ed25519Sha256);
        let again = KeyPair::from_pkcs8(k.algorithm(), k.expose_pkcs8()).unwrap();
        assert_eq!(again.public_key(), k.public_key());
    }

    #[test]
    fn bad_pem_says_what_is_wrong() {
        let msg = |pem: &str, expected| KeyPair::from_pem(pem, expected).unwrap_err().to_string();
        assert!(msg("hello", None).contains("not a PEM private key"));
        assert!(
            msg(
                "-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----",
                None
            )
            .contains("base64")
        );
        assert!(
            msg(
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
                None
            )
            .contains("not an RSA or Ed25519")
        );
        assert!(
            msg(
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
                None
            )
            .contains("not a private key")
        );
        assert!(
            msg(
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----",
                None
            )
            .contains("encrypted")
        );
        assert!(
            msg(OPENSSL_ED25519, Some(DkimAlgorithm::RsaSha256))
                .contains("is ed25519-sha256, not rsa-sha256")
        );
        let small = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 1024).unwrap();
        let pem = small.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap();
        assert!(msg(&pem, None).contains("1024 bits"));
    }
}
