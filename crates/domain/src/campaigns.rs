//! Campaigns: their lifecycle, body formats and the header values a
//! marketer may set.

use serde::{Deserialize, Serialize};

use crate::DomainError;
use crate::lists::text_enum;
use crate::text::short_text;

/// Where a campaign is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CampaignStatus {
    /// Being written; nothing is sent.
    Draft,
    /// Waiting for its send time.
    Scheduled,
    /// Recipients are being enqueued and mailed.
    Running,
    /// Sending stopped for now; may resume.
    Paused,
    /// Everyone was handled. Final.
    Finished,
    /// Stopped for good. Final.
    Cancelled,
}

text_enum!(CampaignStatus, "campaign status", {
    Draft => "draft",
    Scheduled => "scheduled",
    Running => "running",
    Paused => "paused",
    Finished => "finished",
    Cancelled => "cancelled",
});

impl CampaignStatus {
    /// Whether a user (or the scheduler) may move a campaign from `self` to `next`.
    ///
    /// `finished` is reached only by the scheduler, once nothing is left to send.
    #[must_use]
    pub fn can_transition_to(self, next: CampaignStatus) -> bool {
        use CampaignStatus::{Cancelled, Draft, Finished, Paused, Running, Scheduled};
        matches!(
            (self, next),
            (Draft, Scheduled | Running | Cancelled)
                | (Scheduled, Draft | Running | Cancelled)
                | (Running, Paused | Finished | Cancelled)
                | (Paused, Running | Cancelled)
        )
    }

    /// Whether no transition leaves this state.
    #[must_use]
    pub fn is_final(self) -> bool {
        matches!(self, CampaignStatus::Finished | CampaignStatus::Cancelled)
    }

    /// Whether the content may still be edited: not while messages go out,
    /// and not once it is over.
    #[must_use]
    pub fn is_editable(self) -> bool {
        matches!(
            self,
            CampaignStatus::Draft | CampaignStatus::Scheduled | CampaignStatus::Paused
        )
    }
}

/// How a campaign body is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BodyFormat {
    /// HTML; a text alternative is generated unless given.
    #[default]
    Html,
    /// Markdown, turned into HTML.
    Markdown,
    /// Plain text only.
    Text,
}

text_enum!(BodyFormat, "body format", { Html => "html", Markdown => "markdown", Text => "text" });

/// Checks a value bound for a mail header: one line (CR or LF would let it
/// inject headers), no other control characters, at most `max` characters.
///
/// # Errors
///
/// Names the problem.
pub fn header_text(
    raw: &str,
    what: &'static str,
    min: usize,
    max: usize,
) -> Result<String, DomainError> {
    if raw.contains(['\r', '\n']) {
        return Err(DomainError::new(
            what,
            "must be one line: line breaks are not allowed in mail headers",
        ));
    }
    short_text(raw, what, min, max)
}

/// A campaign subject: one line, 1 to 500 characters.
///
/// # Errors
///
/// Refuses empty, overlong or multi-line subjects.
pub fn parse_subject(raw: &str) -> Result<String, DomainError> {
    header_text(raw, "subject", 1, 500)
}

/// Headers Postino sets itself, which a campaign may not override.
const RESERVED_HEADERS: &[&str] = &[
    "from",
    "to",
    "cc",
    "bcc",
    "subject",
    "date",
    "message-id",
    "reply-to",
    "sender",
    "return-path",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "list-id",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "dkim-signature",
];

/// Headers that record a message's path and what receiving servers
/// concluded about it. Mail clients and filters trust them, so a campaign
/// setting one could pass a message off as authenticated or as having come
/// through another server (lower case).
const TRACE_HEADERS: &[&str] = &[
    "received",
    "received-spf",
    "x-received",
    "authentication-results",
    "delivered-to",
    "domainkey-signature",
    "x-google-dkim-signature",
    "arc-seal",
    "arc-message-signature",
    "arc-authentication-results",
];

/// Families of trace headers: `Resent-From` and the other resending fields
/// (RFC 5322 §3.6.6), every `ARC-*` field (RFC 8617), and the
/// `X-Original-To`/`X-Original-From` kind that MTAs add to say where a
/// message was first addressed.
const TRACE_HEADER_PREFIXES: &[&str] = &["resent-", "arc-", "x-original-"];

/// A custom header on every message of a campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(try_from = "RawHeader", into = "RawHeader")]
pub struct CustomHeader {
    name: String,
    value: String,
}

/// The unchecked form of [`CustomHeader`], as it arrives.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RawHeader {
    /// Header name, e.g. `X-Campaign`.
    pub name: String,
    /// Header value, one line.
    pub value: String,
}

impl CustomHeader {
    /// # Errors
    ///
    /// Refuses names that are not RFC 5322 field names, reserved names, and
    /// values with line breaks or over 900 characters.
    pub fn parse(name: &str, value: &str) -> Result<Self, DomainError> {
        let valid_name = !name.is_empty()
            && name.len() <= 76
            && name.bytes().all(|b| (33..=126).contains(&b) && b != b':');
        if !valid_name {
            return Err(DomainError::new(
                "header name",
                format!(
                    "{name:?} is not a valid header name (printable ASCII, no spaces or colons)"
                ),
            ));
        }
        let lower = name.to_ascii_lowercase();
        if RESERVED_HEADERS.contains(&lower.as_str()) {
            return Err(DomainError::new(
                "header name",
                format!("{name} is set by Postino and cannot be overridden"),
            ));
        }
        if TRACE_HEADERS.contains(&lower.as_str())
            || TRACE_HEADER_PREFIXES.iter().any(|p| lower.starts_with(p))
        {
            return Err(DomainError::new(
                "header name",
                format!(
                    "{name} is a trace or authentication header that only mail servers add; \
                     a campaign cannot set it"
                ),
            ));
        }
        let value = header_text(value, "header value", 0, 900)?;
        Ok(Self {
            name: name.to_owned(),
            value,
        })
    }

    /// The header's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The header's value.
    #[must_use]
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl TryFrom<RawHeader> for CustomHeader {
    type Error = DomainError;
    fn try_from(raw: RawHeader) -> Result<Self, Self::Error> {
        Self::parse(&raw.name, &raw.value)
    }
}

impl From<CustomHeader> for RawHeader {
    fn from(h: CustomHeader) -> Self {
        RawHeader {
            name: h.name,
            value: h.value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CampaignStatus::*;

    const ALL: [CampaignStatus; 6] = [Draft, Scheduled, Running, Paused, Finished, Cancelled];

    #[test]
    fn the_lifecycle_allows_exactly_these_transitions() {
        let allowed = [
            (Draft, Scheduled),
            (Draft, Running),
            (Draft, Cancelled),
            (Scheduled, Draft),
            (Scheduled, Running),
            (Scheduled, Cancelled),
            (Running, Paused),
            (Running, Finished),
            (Running, Cancelled),
            (Paused, Running),
            (Paused, Cancelled),
        ];
        for from in ALL {
            for to in ALL {
                assert_eq!(
                    from.can_transition_to(to),
                    allowed.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
    }

    #[test]
    fn final_states_have_no_way_out_and_every_other_state_can_be_cancelled() {
        for from in ALL {
            let exits = ALL.iter().filter(|&&to| from.can_transition_to(to)).count();
            assert_eq!(exits == 0, from.is_final(), "{from}");
            assert_eq!(
                from.can_transition_to(Cancelled),
                !from.is_final(),
                "{from}"
            );
        }
    }

    #[test]
    fn header_values_with_line_breaks_are_refused() {
        assert!(parse_subject("Hello\r\nBcc: victim@example.com").is_err());
        assert!(parse_subject("Hello\nthere").is_err());
        assert!(parse_subject("").is_err());
        assert_eq!(parse_subject(" Hi ").unwrap(), "Hi");
    }

    #[test]
    fn custom_headers_must_be_valid_and_not_reserved() {
        assert!(CustomHeader::parse("X-Campaign", "spring").is_ok());
        assert!(CustomHeader::parse("X Bad", "v").is_err());
        assert!(CustomHeader::parse("X-Colon:", "v").is_err());
        assert!(CustomHeader::parse("From", "evil@example.com").is_err());
        assert!(CustomHeader::parse("list-unsubscribe", "x").is_err());
        assert!(CustomHeader::parse("X-Ok", "a\r\nBcc: x").is_err());
    }

    #[test]
    fn trace_and_authentication_headers_are_refused_by_name() {
        for name in [
            "Authentication-Results",
            "Received",
            "received-spf",
            "Resent-From",
            "RESENT-MESSAGE-ID",
            "ARC-Seal",
            "ARC-Anything",
            "DKIM-Signature",
            "Return-Path",
            "X-Original-To",
            "Delivered-To",
        ] {
            let e = CustomHeader::parse(name, "v").unwrap_err();
            assert!(e.reason.contains(name), "{name}: {e}");
        }
        assert!(CustomHeader::parse("X-Received-By-Crm", "v").is_ok());
        assert!(CustomHeader::parse("X-Originator", "v").is_ok());
    }
}
