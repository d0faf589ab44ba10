//! Signed per-recipient tokens for links in messages.
//!
//! A token names a campaign and a subscriber by their public ids and carries
//! an HMAC-SHA256 tag over both, so it cannot be forged or enumerated, and
//! needs no table: the server recomputes the tag to check it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the tag kept in a token: 128 bits is far beyond guessing.
const TAG_LEN: usize = 16;
/// Domain separation: a tag for one purpose is never valid for another.
const UNSUBSCRIBE: &[u8] = b"postino:unsubscribe:v1";
const BOUNCE: &[u8] = b"postino:bounce:v1";
/// Bytes of the tag in a bounce token. A local part holds at most 64
/// characters, and a forged bounce could at worst mark one delivery bounced,
/// so 64 bits are plenty here.
const BOUNCE_TAG_LEN: usize = 8;

/// Signs and verifies link tokens with a secret key.
#[derive(Clone)]
pub struct LinkSigner {
    key: Vec<u8>,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkSigner(<key redacted>)")
    }
}

impl LinkSigner {
    /// A signer with `key`, which should be at least 32 random bytes.
    #[must_use]
    pub fn new(key: &[u8]) -> Self {
        Self { key: key.to_vec() }
    }

    fn tag(&self, purpose: &[u8], campaign: Uuid, subscriber: Uuid) -> [u8; TAG_LEN] {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = HmacSha256::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!());
        mac.update(purpose);
        mac.update(campaign.as_bytes());
        mac.update(subscriber.as_bytes());
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&full[..TAG_LEN]);
        tag
    }

    /// The unsubscribe token for one subscriber of one campaign.
    #[must_use]
    pub fn unsubscribe_token(&self, campaign: Uuid, subscriber: Uuid) -> String {
        let mut bytes = Vec::with_capacity(32 + TAG_LEN);
        bytes.extend_from_slice(campaign.as_bytes());
        bytes.extend_from_slice(subscriber.as_bytes());
        bytes.extend_from_slice(&self.tag(UNSUBSCRIBE, campaign, subscriber));
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The (campaign, subscriber) an unsubscribe token names, if it is genuine.
    #[must_use]
    pub fn verify_unsubscribe(&self, token: &str) -> Option<(Uuid, Uuid)> {
        if token.len() > 128 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        if bytes.len() != 32 + TAG_LEN {
            return None;
        }
        let campaign = Uuid::from_slice(&bytes[..16]).ok()?;
        let subscriber = Uuid::from_slice(&bytes[16..32]).ok()?;
        let mut mac = HmacSha256::new_from_slice(&self.key).ok()?;
        mac.update(UNSUBSCRIBE);
        mac.update(campaign.as_bytes());
        mac.update(subscriber.as_bytes());
        // verify_truncated_left compares in constant time.
        mac.verify_truncated_left(&bytes[32..]).ok()?;
        Some((campaign, subscriber))
    }
}

impl LinkSigner {
    fn bounce_tag(&self, delivery: i64) -> [u8; BOUNCE_TAG_LEN] {
        let mut mac = HmacSha256::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!());
        mac.update(BOUNCE);
        mac.update(&delivery.to_be_bytes());
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; BOUNCE_TAG_LEN];
        tag.copy_from_slice(&full[..BOUNCE_TAG_LEN]);
        tag
    }

    /// The token in a delivery's VERP return path (`bounces+<token>@…`):
    /// the delivery key in hex, a dash, and a tag. Lowercase hex only,
    /// because some receivers fold the case of local parts.
    #[must_use]
    pub fn bounce_token(&self, delivery: i64) -> String {
        format!("{delivery:x}-{}", hex_lower(&self.bounce_tag(delivery)))
    }

    /// The delivery a bounce token names, if it is genuine.
    #[must_use]
    pub fn verify_bounce(&self, token: &str) -> Option<i64> {
        let (id, tag) = token
            .to_ascii_lowercase()
            .split_once('-')
            .map(|(a, b)| (a.to_owned(), b.to_owned()))?;
        if id.is_empty() || id.len() > 16 {
            return None;
        }
        let delivery = i64::from_str_radix(&id, 16).ok()?;
        let expected = hex_lower(&self.bounce_tag(delivery));
        // Constant time is moot for a public, non-secret delivery key, but
        // cheap: compare every byte.
        let same = expected.len() == tag.len()
            && expected
                .bytes()
                .zip(tag.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        same.then_some(delivery)
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_verifies_and_names_its_campaign_and_subscriber() {
        let signer = LinkSigner::new(b"0123456789abcdef0123456789abcdef");
        let (c, s) = (Uuid::new_v4(), Uuid::new_v4());
        let token = signer.unsubscribe_token(c, s);
        assert_eq!(signer.verify_unsubscribe(&token), Some((c, s)));
    }

    #[test]
    fn tampered_foreign_and_malformed_tokens_are_refused() {
        let signer = LinkSigner::new(b"0123456789abcdef0123456789abcdef");
        let other = LinkSigner::new(b"another key, another installation");
        let (c, s) = (Uuid::new_v4(), Uuid::new_v4());
        let token = signer.unsubscribe_token(c, s);
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        bytes[20] ^= 1; // another subscriber, same tag
        let tampered = URL_SAFE_NO_PAD.encode(&bytes);
        assert_eq!(signer.verify_unsubscribe(&tampered), None);
        assert_eq!(other.verify_unsubscribe(&token), None);
        assert_eq!(signer.verify_unsubscribe("not a token"), None);
        assert_eq!(signer.verify_unsubscribe(&token[..40]), None);
    }

    #[test]
    fn bounce_tokens_name_their_delivery_and_fit_a_local_part() {
        let signer = LinkSigner::new(b"0123456789abcdef0123456789abcdef");
        for id in [1, 255, 1_000_000, i64::MAX] {
            let token = signer.bounce_token(id);
            assert!(format!("bounces+{token}").len() <= 64, "{token}");
            assert!(token.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'));
            assert_eq!(signer.verify_bounce(&token), Some(id));
            assert_eq!(signer.verify_bounce(&token.to_ascii_uppercase()), Some(id));
        }
        let token = signer.bounce_token(42);
        let other = LinkSigner::new(b"another key, another installation");
        assert_eq!(other.verify_bounce(&token), None);
        assert_eq!(signer.verify_bounce(&token.replacen("2a", "2b", 1)), None);
        assert_eq!(signer.verify_bounce("2a"), None);
        assert_eq!(signer.verify_bounce("-00"), None);
    }
}
