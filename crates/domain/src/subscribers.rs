//! Subscribers: names, attributes, statuses and list memberships.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::DomainError;
use crate::lists::text_enum;
use crate::text::{NUL_REASON, excerpt, has_unstorable, short_text};

/// A subscriber's display name: up to 200 characters of one line; may be empty.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SubscriberName(String);

impl SubscriberName {
    /// # Errors
    ///
    /// Refuses overlong names and names with line breaks (they end up in headers).
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        short_text(raw, "name", 0, 200).map(Self)
    }

    /// The name as stored.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SubscriberName {
    type Error = DomainError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<SubscriberName> for String {
    fn from(name: SubscriberName) -> Self {
        name.0
    }
}

/// Free-form data about a subscriber, used in templates and searches: a JSON
/// object of at most 100 top-level keys and 16 KiB serialised.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "Value")]
pub struct Attributes(Map<String, Value>);

const MAX_ATTRIBUTE_KEYS: usize = 100;
const MAX_ATTRIBUTES_BYTES: usize = 16 * 1024;

impl Attributes {
    /// # Errors
    ///
    /// Refuses anything but a JSON object, too many keys, empty or overlong
    /// keys, and objects over the size limit.
    pub fn parse(value: Value) -> Result<Self, DomainError> {
        let Value::Object(map) = value else {
            return Err(DomainError::new("attributes", "must be a JSON object"));
        };
        if map.len() > MAX_ATTRIBUTE_KEYS {
            return Err(DomainError::new(
                "attributes",
                format!("must have at most {MAX_ATTRIBUTE_KEYS} keys"),
            ));
        }
        if let Some(key) = map
            .keys()
            .find(|k| k.trim().is_empty() || k.chars().count() > 100)
        {
            return Err(DomainError::new(
                "attributes",
                format!("key {} must be 1 to 100 characters", excerpt(key)),
            ));
        }
        let size = Value::Object(map.clone()).to_string().len();
        if size > MAX_ATTRIBUTES_BYTES {
            return Err(DomainError::new(
                "attributes",
                format!("must be at most {MAX_ATTRIBUTES_BYTES} bytes as JSON, not {size}"),
            ));
        }
        // After the size check, so a path quoted here is at most 16 KiB.
        for (key, value) in &map {
            if let Some(path) = unstorable_at(key, value) {
                return Err(DomainError::new(
                    "attributes",
                    format!("{path} {NUL_REASON}"),
                ));
            }
        }
        Ok(Self(map))
    }

    /// The attributes as a JSON object.
    #[must_use]
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    /// Merges `other` into these attributes key by key: keys in `other` win,
    /// keys only here stay.
    ///
    /// # Errors
    ///
    /// Refuses a merge whose result breaks the limits.
    pub fn merged_with(&self, other: &Self) -> Result<Self, DomainError> {
        let mut map = self.0.clone();
        for (k, v) in &other.0 {
            map.insert(k.clone(), v.clone());
        }
        Self::parse(Value::Object(map))
    }
}

/// Where under `key` a NUL sits (in a key or a string, at any depth), as a
/// path such as `"address"."lines"[1]`; `None` when there is none. Numbers,
/// booleans and null cannot hold one.
fn unstorable_at(key: &str, value: &Value) -> Option<String> {
    let here = format!("{key:?}");
    if has_unstorable(key) {
        return Some(here);
    }
    match value {
        Value::String(s) if has_unstorable(s) => Some(here),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            unstorable_at("", item).map(|inner| {
                format!(
                    "{here}[{i}]{}",
                    inner.strip_prefix("\"\"").unwrap_or(&inner)
                )
            })
        }),
        Value::Object(map) => map
            .iter()
            .find_map(|(k, v)| unstorable_at(k, v).map(|inner| format!("{here}.{inner}"))),
        _ => None,
    }
}

impl TryFrom<Value> for Attributes {
    type Error = DomainError;
    fn try_from(value: Value) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<Attributes> for Value {
    fn from(attributes: Attributes) -> Self {
        Value::Object(attributes.0)
    }
}

/// Whether a subscriber may be mailed at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SubscriberStatus {
    /// Mailed on the lists they are confirmed on.
    #[default]
    Enabled,
    /// Never mailed, whatever their memberships say; imports do not re-enable them.
    Blocklisted,
}

text_enum!(SubscriberStatus, "subscriber status", { Enabled => "enabled", Blocklisted => "blocklisted" });

/// A subscriber's standing on one list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MembershipStatus {
    /// Added to a double opt-in list and not yet confirmed: not mailed.
    Unconfirmed,
    /// Mailed with the list's campaigns.
    #[default]
    Confirmed,
    /// Left the list: never mailed again unless they re-subscribe.
    Unsubscribed,
}

text_enum!(MembershipStatus, "membership status", {
    Unconfirmed => "unconfirmed",
    Confirmed => "confirmed",
    Unsubscribed => "unsubscribed",
});

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn attributes_must_be_an_object_within_limits() {
        assert!(Attributes::parse(json!({"city": "Rome", "age": 40})).is_ok());
        assert!(Attributes::parse(json!([1, 2])).is_err());
        assert!(Attributes::parse(json!({"": 1})).is_err());
        assert!(Attributes::parse(json!({"big": "x".repeat(20_000)})).is_err());
    }

    #[test]
    fn a_nul_anywhere_in_attributes_is_refused_with_where_it_is() {
        for (value, path) in [
            (json!({"a\u{0}": 1}), r#""a\0""#),
            (json!({"a": "x\u{0}y"}), r#""a""#),
            (
                json!({"a": {"b": ["ok", {"c\u{0}": true}]}}),
                r#""a"."b"[1]."c\0""#,
            ),
            (json!({"a": [["\u{0}"]]}), r#""a"[0][0]"#),
        ] {
            let e = Attributes::parse(value.clone()).unwrap_err();
            assert_eq!(e.what, "attributes");
            assert!(e.reason.starts_with(path), "{value}: {}", e.reason);
            assert!(e.reason.contains("NUL"), "{}", e.reason);
        }
        assert!(Attributes::parse(json!({"a": {"b": [1, null, "fine"]}})).is_ok());
    }

    #[test]
    fn names_with_a_nul_are_refused() {
        let e = SubscriberName::parse("Ann\u{0}Lee").unwrap_err();
        assert!(e.reason.contains("NUL"), "{e}");
    }

    #[test]
    fn merging_attributes_overwrites_by_key_and_keeps_the_rest() {
        let old = Attributes::parse(json!({"a": 1, "b": 2})).unwrap();
        let new = Attributes::parse(json!({"b": 3, "c": 4})).unwrap();
        let merged = old.merged_with(&new).unwrap();
        assert_eq!(Value::from(merged), json!({"a": 1, "b": 3, "c": 4}));
    }

    #[test]
    fn names_may_be_empty_but_not_multi_line() {
        assert_eq!(SubscriberName::parse(" ").unwrap().as_str(), "");
        assert!(SubscriberName::parse("Jane\r\nBcc: x").is_err());
    }
}
