//! Signing built messages with the key of their From domain.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};
use postino_domain::dkim::signing_domains;
use postino_domain::{DkimAlgorithm, DkimDomain, DkimSelector, EmailAddress};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use secrecy::ExposeSecret;

use super::{DkimKeyError, KeyPair, KeyVault};
use crate::OutgoingMessage;

/// The headers every signature covers, where present. A listed header that
/// is absent is signed as absent, so a relay cannot add it (a second
/// `Reply-To`, say) without breaking the signature. `From` is listed twice
/// ("oversigned"): a second `From` added above ours also breaks it, which is
/// what stops a forwarder from showing another sender beside our signature.
const SIGNED_HEADERS: [&str; 14] = [
    "From",
    "Reply-To",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Sender",
    "From",
];

/// A stored key as the database holds it: names and the sealed private key.
#[derive(Debug, Clone, Copy)]
pub struct SealedKey<'a> {
    /// `d=`.
    pub domain: &'a DkimDomain,
    /// `s=`.
    pub selector: &'a DkimSelector,
    /// How it signs.
    pub algorithm: DkimAlgorithm,
    /// What [`KeyVault::seal`] made of its PKCS#8 form.
    pub sealed: &'a [u8],
}

/// A stored key that could not be used, and why (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unusable {
    /// `d=` of the key.
    pub domain: String,
    /// `s=` of the key.
    pub selector: String,
    /// Why it was left out.
    pub reason: String,
}

/// Which key signed (or would sign) a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedBy {
    /// `d=`: the From domain or a parent of it.
    pub domain: DkimDomain,
    /// `s=`.
    pub selector: DkimSelector,
    /// `a=`.
    pub algorithm: DkimAlgorithm,
}

/// Signing failed although a key was there.
#[derive(Debug, thiserror::Error)]
#[error("cannot DKIM-sign with {selector}._domainkey.{domain}: {reason}")]
pub struct SignError {
    domain: String,
    selector: String,
    reason: String,
}

enum Key {
    Rsa(DkimSigner<RsaKey<Sha256>, Done>),
    Ed25519(DkimSigner<Ed25519Key, Done>),
}

struct Signer {
    by: SignedBy,
    key: Key,
}

/// The keys in use, one per signing domain. Built once per key change and
/// shared by every worker: signing needs only `&self`.
#[derive(Default)]
pub struct DkimSigners {
    by_domain: HashMap<String, Signer>,
}

impl fmt::Debug for DkimSigners {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.by_domain.values().map(|s| {
                format!(
                    "{}._domainkey.{} ({})",
                    s.by.selector.as_str(),
                    s.by.domain.as_str(),
                    s.by.algorithm
                )
            }))
            .finish()
    }
}

impl DkimSigners {
    /// Opens stored keys. A domain's first usable key wins, so pass them
    /// newest first; keys that cannot be opened or parsed are returned with
    /// the reason instead, so one bad row does not stop the others.
    pub fn open<'a>(
        vault: &KeyVault,
        keys: impl IntoIterator<Item = SealedKey<'a>>,
    ) -> (Self, Vec<Unusable>) {
        let mut signers = Self::default();
        let mut unusable = Vec::new();
        for k in keys {
            if signers.by_domain.contains_key(k.domain.as_str()) {
                continue;
            }
            let added = vault
                .open(k.domain.as_str(), k.selector.as_str(), k.sealed)
                .map_err(|e| e.to_string())
                .and_then(|der| {
                    KeyPair::from_pkcs8(k.algorithm, der.expose_secret()).map_err(|e| e.to_string())
                })
                .and_then(|pair| {
                    signers
                        .insert(k.domain, k.selector, &pair)
                        .map_err(|e| e.to_string())
                });
            if let Err(reason) = added {
                unusable.push(Unusable {
                    domain: k.domain.as_str().to_owned(),
                    selector: k.selector.as_str().to_owned(),
                    reason,
                });
            }
        }
        (signers, unusable)
    }

    /// Adds a key for `domain`, unless the domain has one already; returns
    /// whether it was added.
    ///
    /// # Errors
    ///
    /// [`DkimKeyError::Pem`] if ring refuses the key.
    pub fn insert(
        &mut self,
        domain: &DkimDomain,
        selector: &DkimSelector,
        pair: &KeyPair,
    ) -> Result<bool, DkimKeyError> {
        if self.by_domain.contains_key(domain.as_str()) {
            return Ok(false);
        }
        let refused = |e: mail_auth::Error| DkimKeyError::Pem(format!("cannot sign with it: {e}"));
        let der = || PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pair.expose_pkcs8()));
        let key = match pair.algorithm() {
            DkimAlgorithm::RsaSha256 => Key::Rsa(configure(
                RsaKey::<Sha256>::from_key_der(der()).map_err(refused)?,
                domain,
                selector,
            )),
            DkimAlgorithm::Ed25519Sha256 => Key::Ed25519(configure(
                Ed25519Key::from_pkcs8_maybe_unchecked_der(pair.expose_pkcs8()).map_err(refused)?,
                domain,
                selector,
            )),
        };
        self.by_domain.insert(
            domain.as_str().to_owned(),
            Signer {
                by: SignedBy {
                    domain: domain.clone(),
                    selector: selector.clone(),
                    algorithm: pair.algorithm(),
                },
                key,
            },
        );
        Ok(true)
    }

    /// Whether there is no key at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_domain.is_empty()
    }

    fn signer_for(&self, from_domain: &str) -> Option<&Signer> {
        signing_domains(from_domain).find_map(|d| self.by_domain.get(d))
    }

    /// The key that signs messages from `from_domain`: its own, else the
    /// closest parent domain's.
    #[must_use]
    pub fn key_for(&self, from_domain: &str) -> Option<&SignedBy> {
        self.signer_for(from_domain).map(|s| &s.by)
    }

    /// Signs `message` (whose `From:` header is `header_from`) with the key
    /// of its domain, prepending the `DKIM-Signature` header to its bytes.
    /// A message from a domain without a key is left as it is (`None`).
    ///
    /// # Errors
    ///
    /// [`SignError`] if the key fails to sign (it should not).
    pub fn sign(
        &self,
        header_from: &EmailAddress,
        message: &mut OutgoingMessage,
    ) -> Result<Option<SignedBy>, SignError> {
        let Some(signer) = self.signer_for(header_from.domain()) else {
            return Ok(None);
        };
        let signature = match &signer.key {
            Key::Rsa(s) => s.sign(&message.bytes),
            Key::Ed25519(s) => s.sign(&message.bytes),
        }
        .map_err(|e| SignError {
            domain: signer.by.domain.as_str().to_owned(),
            selector: signer.by.selector.as_str().to_owned(),
            reason: e.to_string(),
        })?;
        let header = signature.to_header();
        let mut signed = Vec::with_capacity(header.len() + message.bytes.len());
        signed.extend_from_slice(header.as_bytes());
        signed.extend_from_slice(&message.bytes);
        message.bytes = signed;
        Ok(Some(signer.by.clone()))
    }
}

fn configure<K: mail_auth::common::crypto::SigningKey>(
    key: K,
    domain: &DkimDomain,
    selector: &DkimSelector,
) -> DkimSigner<K, Done> {
    DkimSigner::from_key(key)
        .domain(domain.as_str())
        .selector(selector.as_str())
        .headers(SIGNED_HEADERS)
        // Relaxed/relaxed survives what relays do to whitespace: refolded
        // headers, trailing spaces, re-wrapped header values.
        .header_canonicalization(Canonicalization::Relaxed)
        .body_canonicalization(Canonicalization::Relaxed)
}

/// The signers a long-running sender uses, swapped whole when the stored
/// keys change. A std lock: it is held only to clone or replace an `Arc`.
#[derive(Debug, Default)]
pub struct DkimKeyring {
    current: RwLock<Arc<DkimSigners>>,
}

impl DkimKeyring {
    /// The signers in use now.
    #[must_use]
    pub fn current(&self) -> Arc<DkimSigners> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Puts `signers` in use for every later message.
    pub fn replace(&self, signers: DkimSigners) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(signers);
    }

    /// Signs with the signers in use; see [`DkimSigners::sign`].
    ///
    /// # Errors
    ///
    /// [`SignError`] if the key fails to sign.
    pub fn sign(
        &self,
        header_from: &EmailAddress,
        message: &mut OutgoingMessage,
    ) -> Result<Option<SignedBy>, SignError> {
        self.current().sign(header_from, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(from: &str) -> OutgoingMessage {
        let bytes = format!(
            "From: News <{from}>\r\nTo: jane@example.org\r\nSubject: Hello\r\n\
             Date: Mon, 30 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@x>\r\n\
             List-Unsubscribe: <https://n.example/u/T>\r\n\
             List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\nHi\r\n"
        );
        OutgoingMessage {
            from: EmailAddress::parse(from).unwrap(),
            to: EmailAddress::parse("jane@example.org").unwrap(),
            message_id: "<1@x>".to_owned(),
            bytes: bytes.into_bytes(),
        }
    }

    fn signers(keys: &[(&str, &str)]) -> DkimSigners {
        let mut s = DkimSigners::default();
        for (domain, selector) in keys {
            let pair = KeyPair::generate(DkimAlgorithm::Ed25519Sha256).unwrap();
            s.insert(
                &DkimDomain::parse(domain).unwrap(),
                &DkimSelector::parse(selector).unwrap(),
                &pair,
            )
            .unwrap();
        }
        s
    }

    #[test]
    fn the_closest_domain_with_a_key_signs() {
        let s = signers(&[("example.com", "top"), ("news.example.com", "news")]);
        let by = |d: &str| s.key_for(d).map(|b| b.selector.as_str().to_owned());
        assert_eq!(by("news.example.com").as_deref(), Some("news"));
        assert_eq!(by("a.news.example.com").as_deref(), Some("news"));
        assert_eq!(by("shop.example.com").as_deref(), Some("top"));
        assert_eq!(by("example.org"), None);
    }

    #[test]
    fn a_signature_is_prepended_once_with_the_listed_headers() {
        let s = signers(&[("example.com", "s1")]);
        let mut m = message("news@example.com");
        let by = s
            .sign(&EmailAddress::parse("news@example.com").unwrap(), &mut m)
            .unwrap()
            .unwrap();
        assert_eq!(by.selector.as_str(), "s1");
        let text = String::from_utf8(m.bytes).unwrap();
        assert!(
            text.starts_with(
                "DKIM-Signature: v=1; a=ed25519-sha256; s=s1; d=example.com; c=relaxed/relaxed"
            ),
            "{text}"
        );
        assert_eq!(text.matches("DKIM-Signature").count(), 1);
        let h = text.split("h=").nth(1).unwrap().split(';').next().unwrap();
        let h: String = h.split_whitespace().collect();
        for name in [
            "From",
            "To",
            "Subject",
            "Date",
            "Message-ID",
            "List-Unsubscribe",
            "List-Unsubscribe-Post",
        ] {
            assert!(
                h.split(':').any(|n| n.eq_ignore_ascii_case(name)),
                "{name} not in {h}"
            );
        }
        assert_eq!(
            h.split(':')
                .filter(|n| n.eq_ignore_ascii_case("from"))
                .count(),
            2,
            "From oversigned: {h}"
        );
    }

    #[test]
    fn a_message_from_a_domain_without_a_key_is_left_alone() {
        let s = signers(&[("example.com", "s1")]);
        let mut m = message("news@example.org");
        let before = m.bytes.clone();
        assert!(
            s.sign(&EmailAddress::parse("news@example.org").unwrap(), &mut m)
                .unwrap()
                .is_none()
        );
        assert_eq!(m.bytes, before);
    }

    #[test]
    fn stored_keys_open_newest_first_and_bad_ones_are_reported() {
        let vault = KeyVault::new(b"secret").unwrap();
        let domain = DkimDomain::parse("example.com").unwrap();
        let (new, old, bad) = (
            DkimSelector::parse("new").unwrap(),
            DkimSelector::parse("old").unwrap(),
            DkimSelector::parse("bad").unwrap(),
        );
        let other = DkimDomain::parse("example.org").unwrap();
        let pair = KeyPair::generate(DkimAlgorithm::Ed25519Sha256).unwrap();
        let sealed_new = vault
            .seal("example.com", "new", pair.expose_pkcs8())
            .unwrap();
        let sealed_old = vault
            .seal("example.com", "old", pair.expose_pkcs8())
            .unwrap();
        let keys = [
            SealedKey {
                domain: &domain,
                selector: &new,
                algorithm: DkimAlgorithm::Ed25519Sha256,
                sealed: &sealed_new,
            },
            SealedKey {
                domain: &domain,
                selector: &old,
                algorithm: DkimAlgorithm::Ed25519Sha256,
                sealed: &sealed_old,
            },
            SealedKey {
                domain: &other,
                selector: &bad,
                algorithm: DkimAlgorithm::Ed25519Sha256,
                sealed: &sealed_old,
            },
        ];
        let (signers, unusable) = DkimSigners::open(&vault, keys);
        assert_eq!(signers.key_for("example.com").unwrap().selector, new);
        assert_eq!(unusable.len(), 1);
        assert_eq!(unusable[0].domain, "example.org");
        assert!(
            unusable[0].reason.contains("cannot decrypt"),
            "{}",
            unusable[0].reason
        );
    }
}
