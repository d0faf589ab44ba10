//! The MIME message for one recipient.

use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use postino_domain::{CustomHeader, EmailAddress};
use uuid::Uuid;

use crate::template::Rendered;

/// Everything about a message besides its rendered content.
#[derive(Debug, Clone)]
pub struct MessageParams<'a> {
    /// Sender's display name; may be empty.
    pub from_name: &'a str,
    /// Sender's address.
    pub from_email: &'a EmailAddress,
    /// Where replies go, if not to the sender.
    pub reply_to: Option<&'a EmailAddress>,
    /// Recipient's display name; may be empty.
    pub to_name: &'a str,
    /// Recipient's address.
    pub to_email: &'a EmailAddress,
    /// The one-click unsubscribe URL (RFC 8058), also in `List-Unsubscribe`.
    pub unsubscribe_url: &'a str,
    /// A `mailto:` URI offered beside the link in `List-Unsubscribe`.
    pub unsubscribe_mailto: Option<&'a str>,
    /// `List-Id` value without brackets, e.g. `<list uuid>.news.example.com`.
    pub list_id: Option<&'a str>,
    /// Extra headers the campaign sets.
    pub headers: &'a [CustomHeader],
}

/// A message ready for SMTP.
#[derive(Debug, Clone)]
pub struct OutgoingMessage {
    /// Envelope sender (MAIL FROM).
    pub from: EmailAddress,
    /// Envelope recipient (RCPT TO).
    pub to: EmailAddress,
    /// The `Message-ID` header value, with angle brackets.
    pub message_id: String,
    /// The whole message: headers and body, CRLF line endings.
    pub bytes: Vec<u8>,
}

/// Why a message could not be built.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// An address did not fit a mail header.
    #[error("invalid address for a mail header: {0}")]
    Address(String),
    /// lettre refused the message.
    #[error("cannot build the message: {0}")]
    Build(String),
}

fn mailbox(name: &str, email: &EmailAddress) -> Result<Mailbox, MessageError> {
    let address = email
        .as_str()
        .parse()
        .map_err(|e| MessageError::Address(format!("{email}: {e}")))?;
    let name = (!name.is_empty()).then(|| name.to_owned());
    Ok(Mailbox::new(name, address))
}

/// The message with CRLF line endings throughout, before it is signed: a
/// bare CR or LF from a template would otherwise reach the wire as it is
/// (see [`postino_domain::wire`]).
fn crlf(bytes: Vec<u8>) -> Vec<u8> {
    match postino_domain::wire::crlf_line_endings(&bytes) {
        std::borrow::Cow::Borrowed(_) => bytes,
        std::borrow::Cow::Owned(fixed) => fixed,
    }
}

fn raw(name: &'static str, value: String) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
}

/// `List-Unsubscribe` (RFC 2369): the one-click link first, then mail.
fn list_unsubscribe(params: &MessageParams<'_>) -> String {
    match params.unsubscribe_mailto {
        Some(mailto) => format!("<{}>, <{mailto}>", params.unsubscribe_url),
        None => format!("<{}>", params.unsubscribe_url),
    }
}

/// Builds the message: `multipart/alternative` (text + HTML) or plain text,
/// UTF-8 headers encoded per RFC 2047 and folded by lettre, a unique
/// `Message-ID` in the sender's domain, `Date`, `List-Unsubscribe` with
/// `List-Unsubscribe-Post: List-Unsubscribe=One-Click`, and `List-Id`.
///
/// # Errors
///
/// [`MessageError`] if an address does not fit a header or lettre refuses.
pub fn build_message(
    rendered: &Rendered,
    params: &MessageParams<'_>,
) -> Result<OutgoingMessage, MessageError> {
    let message_id = format!(
        "<{}@{}>",
        Uuid::now_v7().simple(),
        params.from_email.domain()
    );
    let mut builder = Message::builder()
        .from(mailbox(params.from_name, params.from_email)?)
        .to(mailbox(params.to_name, params.to_email)?)
        .subject(rendered.subject.clone())
        .date_now()
        .message_id(Some(message_id.clone()))
        .raw_header(raw("List-Unsubscribe", list_unsubscribe(params)))
        .raw_header(raw(
            "List-Unsubscribe-Post",
            "List-Unsubscribe=One-Click".to_owned(),
        ));
    if let Some(reply_to) = params.reply_to {
        builder = builder.reply_to(mailbox("", reply_to)?);
    }
    if let Some(list_id) = params.list_id {
        builder = builder.raw_header(raw("List-Id", format!("<{list_id}>")));
    }
    for header in params.headers {
        let name = HeaderName::new_from_ascii(header.name().to_owned())
            .map_err(|_| MessageError::Build(format!("invalid header name {}", header.name())))?;
        builder = builder.raw_header(HeaderValue::new(name, header.value().to_owned()));
    }
    let message = match &rendered.html {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(
            rendered.text.clone(),
            html.clone(),
        )),
        None => builder.singlepart(SinglePart::plain(rendered.text.clone())),
    }
    .map_err(|e| MessageError::Build(e.to_string()))?;
    Ok(OutgoingMessage {
        from: params.from_email.clone(),
        to: params.to_email.clone(),
        message_id,
        bytes: crlf(message.formatted()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_cr_and_lf_from_a_template_leave_as_crlf() {
        let from = EmailAddress::parse("news@example.com").unwrap();
        let to = EmailAddress::parse("jane@example.org").unwrap();
        let rendered = Rendered {
            subject: "s".to_owned(),
            html: None,
            text: "x\r.\r\nMAIL FROM:<evil@example.net>\n.\n".to_owned(),
        };
        let msg = build_message(
            &rendered,
            &MessageParams {
                from_name: "",
                from_email: &from,
                reply_to: None,
                to_name: "",
                to_email: &to,
                unsubscribe_url: "https://x.test/u",
                unsubscribe_mailto: None,
                list_id: None,
                headers: &[],
            },
        )
        .unwrap();
        assert!(
            !postino_domain::wire::has_bare_line_ending(&msg.bytes),
            "{}",
            String::from_utf8_lossy(&msg.bytes)
        );
    }

    #[test]
    fn a_message_carries_the_campaign_headers_and_both_parts() {
        let from = EmailAddress::parse("news@example.com").unwrap();
        let to = EmailAddress::parse("jane@example.org").unwrap();
        let headers = [CustomHeader::parse("X-Campaign", "spring").unwrap()];
        let rendered = Rendered {
            subject: "Grüße aus Rom".to_owned(),
            html: Some("<p>Hallo</p>".to_owned()),
            text: "Hallo".to_owned(),
        };
        let msg = build_message(
            &rendered,
            &MessageParams {
                from_name: "Acme News",
                from_email: &from,
                reply_to: None,
                to_name: "Jane",
                to_email: &to,
                unsubscribe_url: "https://news.example.com/unsubscribe/T",
                unsubscribe_mailto: None,
                list_id: Some("abc.news.example.com"),
                headers: &headers,
            },
        )
        .unwrap();
        let text = String::from_utf8(msg.bytes).unwrap();
        assert!(
            text.contains("List-Unsubscribe: <https://news.example.com/unsubscribe/T>\r\n"),
            "{text}"
        );
        assert!(text.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
        assert!(text.contains("List-Id: <abc.news.example.com>\r\n"));
        assert!(text.contains("X-Campaign: spring\r\n"));
        assert!(text.contains(&format!("Message-ID: {}\r\n", msg.message_id)));
        assert!(msg.message_id.ends_with("@example.com>"));
        assert!(
            text.contains("Subject: =?utf-8?"),
            "non-ASCII subjects are RFC 2047 encoded: {text}"
        );
        assert!(text.contains("multipart/alternative"));
        assert!(text.contains("Date: "));
    }
}
