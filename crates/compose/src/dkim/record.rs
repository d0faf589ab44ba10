//! The DNS TXT record that publishes a DKIM public key.

use postino_domain::{DkimAlgorithm, DkimDomain, DkimSelector};

/// DNS character-strings hold at most 255 octets; a longer TXT value is
/// published as several strings that receivers join.
const MAX_STRING: usize = 255;

/// What to publish so receivers can verify signatures made with a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecord {
    /// The record's name: `<selector>._domainkey.<domain>`.
    pub name: String,
    /// Always `TXT`.
    pub kind: String,
    /// The whole value, e.g. `v=DKIM1; k=rsa; p=MIIBIjAN…`.
    pub value: String,
    /// The value cut into strings of at most 255 characters, as most DNS
    /// providers and zone files want an RSA key's long value.
    pub strings: Vec<String>,
    /// The record as a line of a zone file (BIND syntax).
    pub zone_file_line: String,
}

impl DnsRecord {
    /// The record for a public key, given in base64.
    #[must_use]
    pub fn new(
        domain: &DkimDomain,
        selector: &DkimSelector,
        algorithm: DkimAlgorithm,
        public_key_base64: &str,
    ) -> Self {
        let name = format!("{}._domainkey.{}", selector.as_str(), domain.as_str());
        let value = format!("v=DKIM1; k={}; p={public_key_base64}", algorithm.key_type());
        // The value is ASCII, so cutting at any byte is at a character.
        let strings: Vec<String> = value
            .as_bytes()
            .chunks(MAX_STRING)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        let quoted: Vec<String> = strings.iter().map(|s| format!("\"{s}\"")).collect();
        let zone_file_line = format!("{name}. IN TXT ( {} )", quoted.join(" "));
        Self {
            name,
            kind: "TXT".to_owned(),
            value,
            strings,
            zone_file_line,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_value_is_cut_into_strings_of_at_most_255_characters() {
        let domain = DkimDomain::parse("example.com").unwrap();
        let selector = DkimSelector::parse("s1").unwrap();
        let key = "A".repeat(392);
        let r = DnsRecord::new(&domain, &selector, DkimAlgorithm::RsaSha256, &key);
        assert_eq!(r.name, "s1._domainkey.example.com");
        assert!(r.value.starts_with("v=DKIM1; k=rsa; p=AAA"));
        assert_eq!(r.strings.len(), 2);
        assert!(r.strings.iter().all(|s| s.len() <= 255));
        assert_eq!(r.strings.concat(), r.value);
        assert!(
            r.zone_file_line
                .starts_with("s1._domainkey.example.com. IN TXT ( \"v=DKIM1")
        );
        let ed = DnsRecord::new(&domain, &selector, DkimAlgorithm::Ed25519Sha256, "abc=");
        assert_eq!(ed.value, "v=DKIM1; k=ed25519; p=abc=");
        assert_eq!(ed.strings, std::slice::from_ref(&ed.value));
    }
}
