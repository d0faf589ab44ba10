//! The names a DKIM key is published under: the signing domain (`d=`), the
//! selector (`s=`), and the signing algorithm.

use serde::{Deserialize, Serialize};

use crate::lists::text_enum;
use crate::{DomainError, EmailAddress};

/// The domain a DKIM key signs for (`d=`): a host name with at least one
/// dot, stored lower-case in ASCII (IDNA) form, without a trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DkimDomain(String);

impl DkimDomain {
    /// # Errors
    ///
    /// Refuses anything that is not a domain name with a dot.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let raw = raw.trim();
        if raw.contains(['@', '[', ' ']) || raw.is_empty() {
            return Err(DomainError::new(
                "DKIM domain",
                "must be a domain name such as example.com",
            ));
        }
        // An e-mail address's domain follows the same rules, and the key
        // must match the form `EmailAddress` keeps its domain in.
        let probe = EmailAddress::parse(&format!("dkim@{raw}")).map_err(|e| {
            DomainError::new(
                "DKIM domain",
                e.reason
                    .strip_prefix("the domain ")
                    .map_or(e.reason.clone(), |r| format!("the domain {r}")),
            )
        })?;
        Ok(Self(probe.domain().to_owned()))
    }

    /// The domain as stored and signed (`d=`).
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DkimDomain {
    type Error = DomainError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<DkimDomain> for String {
    fn from(d: DkimDomain) -> Self {
        d.0
    }
}

/// Longest selector accepted; with `._domainkey.` and the domain it must
/// still fit a DNS name of 253 characters.
const MAX_SELECTOR_LEN: usize = 63;

/// A DKIM selector (`s=`): one or more DNS labels of letters, digits and
/// dashes, separated by dots, stored lower-case. The public key is
/// published at `<selector>._domainkey.<domain>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DkimSelector(String);

impl DkimSelector {
    /// # Errors
    ///
    /// Refuses an empty or overlong selector, or one that is not DNS labels.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let s = raw.trim().to_ascii_lowercase();
        if s.is_empty() || s.len() > MAX_SELECTOR_LEN {
            return Err(DomainError::new(
                "DKIM selector",
                format!("must be 1 to {MAX_SELECTOR_LEN} characters"),
            ));
        }
        let label_ok = |l: &str| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if !s.split('.').all(label_ok) {
            return Err(DomainError::new(
                "DKIM selector",
                "must be letters, digits and dashes (dots may separate labels), such as postino2026",
            ));
        }
        Ok(Self(s))
    }

    /// The selector as stored and signed (`s=`).
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DkimSelector {
    type Error = DomainError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<DkimSelector> for String {
    fn from(s: DkimSelector) -> Self {
        s.0
    }
}

/// How a DKIM key signs (`a=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DkimAlgorithm {
    /// RSA with SHA-256 (RFC 6376); every receiver verifies it.
    #[serde(rename = "rsa-sha256")]
    RsaSha256,
    /// Ed25519 with SHA-256 (RFC 8463); short keys, not yet verified by
    /// every receiver, so best published beside an RSA key.
    #[serde(rename = "ed25519-sha256")]
    Ed25519Sha256,
}

text_enum!(DkimAlgorithm, "DKIM algorithm", {
    RsaSha256 => "rsa-sha256",
    Ed25519Sha256 => "ed25519-sha256",
});

impl DkimAlgorithm {
    /// The key type in the DNS record (`k=`).
    #[must_use]
    pub fn key_type(self) -> &'static str {
        match self {
            Self::RsaSha256 => "rsa",
            Self::Ed25519Sha256 => "ed25519",
        }
    }
}

/// The domains a key may sign a message from `from_domain` with, closest
/// first: the domain itself, then each parent that still has a dot. A
/// parent's signature aligns with the From domain under DMARC's relaxed
/// alignment (the default), so one key can cover every subdomain.
pub fn signing_domains(from_domain: &str) -> impl Iterator<Item = &str> {
    let domain = from_domain.trim_end_matches('.');
    std::iter::successors(Some(domain), |d| d.split_once('.').map(|(_, rest)| rest))
        .filter(|d| d.contains('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_domain_is_lower_case_ascii_with_a_dot() {
        assert_eq!(
            DkimDomain::parse(" News.Example.COM ").unwrap().as_str(),
            "news.example.com"
        );
        assert_eq!(
            DkimDomain::parse("bücher.example").unwrap().as_str(),
            "xn--bcher-kva.example"
        );
        for bad in [
            "",
            "localhost",
            "a@b.example",
            "exa mple.com",
            "-x.example",
            "x..example",
        ] {
            assert!(DkimDomain::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_selector_is_dns_labels() {
        assert_eq!(
            DkimSelector::parse("Mail2026").unwrap().as_str(),
            "mail2026"
        );
        assert_eq!(DkimSelector::parse("a.b-c").unwrap().as_str(), "a.b-c");
        for bad in [
            "",
            "a b",
            "a_b",
            "-a",
            "a.",
            "x".repeat(64).as_str(),
            "sel;ector",
        ] {
            assert!(DkimSelector::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn algorithms_round_trip_and_unknown_ones_are_named() {
        for a in ["rsa-sha256", "ed25519-sha256"] {
            assert_eq!(a.parse::<DkimAlgorithm>().unwrap().as_str(), a);
        }
        let e = "rsa-sha1".parse::<DkimAlgorithm>().unwrap_err();
        assert!(e.reason.contains("rsa-sha256"), "{e}");
    }

    #[test]
    fn signing_domains_walk_up_to_the_last_domain_with_a_dot() {
        let all: Vec<&str> = signing_domains("a.news.example.com").collect();
        assert_eq!(
            all,
            ["a.news.example.com", "news.example.com", "example.com"]
        );
        assert_eq!(
            signing_domains("example.com").collect::<Vec<_>>(),
            ["example.com"]
        );
    }
}
