//! E-mail addresses: validated and normalised here and nowhere else.
//!
//! Normalisation follows what receiving servers actually honour: the domain is
//! case-insensitive, so it is lower-cased and internationalised domains are
//! stored in their ASCII (punycode) form; the local part belongs to the
//! receiving server, which may treat case as significant, so it is kept as
//! given. Uniqueness across subscribers is enforced case-insensitively by the
//! database, which is the only place that can see every row.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::DomainError;

const WHAT: &str = "e-mail address";
/// RFC 5321 path limit (256) minus the angle brackets.
const MAX_LEN: usize = 254;
const MAX_LOCAL_LEN: usize = 64;
const MAX_DOMAIN_LEN: usize = 253;
const MAX_LABEL_LEN: usize = 63;

/// A syntactically valid, normalised e-mail address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Parses and normalises an address such as `Jane.Doe@Example.COM`
    /// (stored as `Jane.Doe@example.com`).
    ///
    /// Quoted local parts and IP-literal domains are refused: they are legal
    /// but almost only ever seen in abuse, and no mailbox provider issues them.
    ///
    /// # Errors
    ///
    /// Returns a [`DomainError`] naming the first problem found.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(DomainError::new(WHAT, "must not be empty"));
        }
        if crate::text::has_unstorable(trimmed) {
            return Err(DomainError::new(WHAT, crate::text::NUL_REASON));
        }
        if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(DomainError::new(
                WHAT,
                "must not contain spaces or control characters",
            ));
        }
        let Some((local, domain)) = trimmed.rsplit_once('@') else {
            return Err(DomainError::new(WHAT, "must contain an @"));
        };
        check_local_part(local)?;
        let domain = normalise_domain(domain)?;
        let address = format!("{local}@{domain}");
        if address.len() > MAX_LEN {
            return Err(DomainError::new(
                WHAT,
                format!("must be at most {MAX_LEN} characters"),
            ));
        }
        Ok(Self(address))
    }

    /// The address as stored and sent.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The domain part, in ASCII form.
    #[must_use]
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }
}

fn check_local_part(local: &str) -> Result<(), DomainError> {
    if local.is_empty() {
        return Err(DomainError::new(WHAT, "is missing the part before the @"));
    }
    if local.len() > MAX_LOCAL_LEN {
        return Err(DomainError::new(
            WHAT,
            format!("the part before the @ must be at most {MAX_LOCAL_LEN} bytes"),
        ));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(DomainError::new(
            WHAT,
            "the part before the @ must not start or end with a dot, or have two dots in a row",
        ));
    }
    // RFC 5322 atext, plus non-ASCII letters for internationalised mailboxes (RFC 6531).
    let allowed = |c: char| {
        c.is_ascii_alphanumeric()
            || "!#$%&'*+-/=?^_`{|}~.".contains(c)
            || (!c.is_ascii() && c.is_alphanumeric())
    };
    if let Some(bad) = local.chars().find(|&c| !allowed(c)) {
        return Err(DomainError::new(
            WHAT,
            format!("the part before the @ must not contain {bad:?}"),
        ));
    }
    Ok(())
}

fn normalise_domain(domain: &str) -> Result<String, DomainError> {
    if domain.is_empty() {
        return Err(DomainError::new(WHAT, "is missing the domain after the @"));
    }
    if domain.starts_with('[') {
        return Err(DomainError::new(
            WHAT,
            "IP-address domains are not accepted",
        ));
    }
    let ascii = idna::domain_to_ascii(domain)
        .map_err(|_| DomainError::new(WHAT, "the domain is not a valid domain name"))?;
    let ascii = ascii.strip_suffix('.').unwrap_or(&ascii).to_owned();
    if ascii.len() > MAX_DOMAIN_LEN {
        return Err(DomainError::new(
            WHAT,
            format!("the domain must be at most {MAX_DOMAIN_LEN} characters"),
        ));
    }
    let labels: Vec<&str> = ascii.split('.').collect();
    if labels.len() < 2 {
        return Err(DomainError::new(
            WHAT,
            "the domain must have a dot, as in example.com",
        ));
    }
    for label in &labels {
        let valid = !label.is_empty()
            && label.len() <= MAX_LABEL_LEN
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !valid {
            return Err(DomainError::new(
                WHAT,
                "the domain is not a valid domain name",
            ));
        }
    }
    let tld = labels.last().copied().unwrap_or_default();
    if tld.chars().all(|c| c.is_ascii_digit()) {
        return Err(DomainError::new(
            WHAT,
            "the domain must end in a top-level domain, not a number",
        ));
    }
    Ok(ascii)
}

impl TryFrom<String> for EmailAddress {
    type Error = DomainError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<EmailAddress> for String {
    fn from(email: EmailAddress) -> Self {
        email.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for EmailAddress {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_domain_is_lower_cased_and_the_local_part_kept_as_given() {
        let email = EmailAddress::parse("  Jane.Doe+News@Example.COM ").unwrap();
        assert_eq!(email.as_str(), "Jane.Doe+News@example.com");
        assert_eq!(email.domain(), "example.com");
    }

    #[test]
    fn an_internationalised_domain_is_stored_in_ascii_form() {
        let email = EmailAddress::parse("hans@bücher.de").unwrap();
        assert_eq!(email.as_str(), "hans@xn--bcher-kva.de");
    }

    #[test]
    fn a_trailing_dot_on_the_domain_is_dropped() {
        assert_eq!(
            EmailAddress::parse("a@example.com.").unwrap().as_str(),
            "a@example.com"
        );
    }

    #[test]
    fn malformed_addresses_are_refused_with_a_reason() {
        for (raw, reason_part) in [
            ("", "empty"),
            ("plainaddress", "@"),
            ("@example.com", "before the @"),
            ("jane@", "domain"),
            ("jane@localhost", "dot"),
            ("jane@@example.com", "must not contain"),
            ("ja ne@example.com", "spaces"),
            (".jane@example.com", "dot"),
            ("ja..ne@example.com", "dot"),
            ("jane@exa_mple.com", "domain"),
            ("jane@-example.com", "domain"),
            ("jane@example.123", "top-level"),
            ("jane@[127.0.0.1]", "IP"),
            ("jane\r\n@example.com", "spaces or control"),
            ("\"jane\"@example.com", "must not contain"),
        ] {
            let err = EmailAddress::parse(raw).expect_err(raw);
            assert!(
                err.reason.contains(reason_part),
                "{raw:?}: {} does not mention {reason_part:?}",
                err.reason
            );
        }
    }

    #[test]
    fn overlong_addresses_are_refused() {
        let local = "a".repeat(65);
        assert!(EmailAddress::parse(&format!("{local}@example.com")).is_err());
        let domain = format!("{}.com", "a".repeat(250));
        assert!(EmailAddress::parse(&format!("a@{domain}")).is_err());
    }

    #[test]
    fn serde_goes_through_the_parser() {
        let ok: EmailAddress = serde_json::from_str("\"A@B.CO\"").unwrap();
        assert_eq!(ok.as_str(), "A@b.co");
        assert!(serde_json::from_str::<EmailAddress>("\"nope\"").is_err());
    }

    proptest! {
        #[test]
        fn parsing_never_panics_and_is_idempotent(raw in "\\PC{0,80}") {
            if let Ok(email) = EmailAddress::parse(&raw) {
                let again = EmailAddress::parse(email.as_str()).unwrap();
                prop_assert_eq!(again, email);
            }
        }

        #[test]
        fn simple_addresses_are_accepted(local in "[a-z0-9][a-z0-9._+-]{0,20}[a-z0-9]", domain in "[a-z][a-z0-9-]{0,10}[a-z0-9]\\.[a-z]{2,6}") {
            prop_assume!(!local.contains(".."));
            // "xn--…" labels are punycode and must decode; random ones do not.
            prop_assume!(!domain.starts_with("xn--"));
            let raw = format!("{local}@{domain}");
            let parsed = EmailAddress::parse(&raw).unwrap();
            prop_assert_eq!(parsed.as_str(), raw.as_str());
        }
    }
}
