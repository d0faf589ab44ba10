//! What parent and child say to each other: one JSON object a line, a
//! request on the child's stdin answered by one reply on its stdout.

use postino_compose::{CampaignSource, Recipient, Rendered, TemplateError};

use postino_domain::BodyFormat;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A campaign's templates, owned so they can be sent again to a child that
/// has not seen them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Source {
    pub(crate) uuid: Uuid,
    pub(crate) name: String,
    pub(crate) subject: String,
    pub(crate) body: String,
    pub(crate) format: BodyFormat,
    pub(crate) text_body: Option<String>,
    pub(crate) layout: Option<String>,
}

impl Source {
    pub(crate) fn from_campaign(source: &CampaignSource<'_>) -> Self {
        Self {
            uuid: source.uuid,
            name: source.name.to_owned(),
            subject: source.subject.to_owned(),
            body: source.body.to_owned(),
            format: source.format,
            text_body: source.text_body.map(str::to_owned),
            layout: source.layout.map(str::to_owned),
        }
    }

    pub(crate) fn as_campaign(&self) -> CampaignSource<'_> {
        CampaignSource {
            uuid: self.uuid,
            name: &self.name,
            subject: &self.subject,
            body: &self.body,
            format: self.format,
            text_body: self.text_body.as_deref(),
            layout: self.layout.as_deref(),
        }
    }
}

/// A request as the parent writes it, borrowing what it sends.
#[derive(Debug, Serialize)]
pub(crate) enum Outgoing<'a> {
    /// Compile (and test-render) `source`, remembering it as `id`.
    Compile { id: u64, source: &'a Source },
    /// Render template `id` for one recipient.
    Render {
        id: u64,
        recipient: &'a Recipient,
        unsubscribe_url: &'a str,
    },
    /// Render template `id` for each recipient, with its unsubscribe URL:
    /// one reply each, in order (or one [`Reply::Unknown`] for all).
    RenderMany {
        id: u64,
        recipients: &'a [(&'a Recipient, &'a str)],
    },
}

/// The same request as the child reads it. The two must keep one shape:
/// a test below writes one and reads the other.
#[derive(Debug, Deserialize)]
pub(crate) enum Incoming {
    Compile {
        id: u64,
        source: Source,
    },
    Render {
        id: u64,
        recipient: Recipient,
        unsubscribe_url: String,
    },
    RenderMany {
        id: u64,
        recipients: Vec<(Recipient, String)>,
    },
}

/// The child's answer: one line, which for a rendered message is followed
/// by its parts as they are, so neither side escapes or unescapes a
/// message's HTML as JSON.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Reply {
    /// The template compiled and rendered for the sample subscriber.
    Compiled,
    /// The message's content for the recipient: the byte lengths of the
    /// subject, the HTML part (if any) and the text part, which follow the
    /// line in that order.
    Rendered {
        subject: usize,
        html: Option<usize>,
        text: usize,
    },
    /// The template is at fault: it does not compile, or fails for this
    /// recipient.
    Refused(TemplateError),
    /// This child has not compiled template `id` (or has forgotten it):
    /// send it the source first.
    Unknown,
}

/// A reply as the parent reads it, with a rendered message's parts.
#[derive(Debug)]
pub(crate) enum Answer {
    Compiled,
    Rendered(Rendered),
    Refused(TemplateError),
    Unknown,
}

/// Writes `rendered` as its [`Reply::Rendered`] line and its parts.
pub(crate) fn write_rendered(
    out: &mut impl std::io::Write,
    rendered: &Rendered,
) -> std::io::Result<()> {
    let header = Reply::Rendered {
        subject: rendered.subject.len(),
        html: rendered.html.as_ref().map(String::len),
        text: rendered.text.len(),
    };
    serde_json::to_writer(&mut *out, &header)?;
    out.write_all(b"\n")?;
    out.write_all(rendered.subject.as_bytes())?;
    if let Some(html) = &rendered.html {
        out.write_all(html.as_bytes())?;
    }
    out.write_all(rendered.text.as_bytes())
}

/// The parts that followed a [`Reply::Rendered`] line, as read into
/// `bytes`; `None` if they are not the UTF-8 text the lengths describe.
pub(crate) fn rendered_from(
    bytes: Vec<u8>,
    subject: usize,
    html: Option<usize>,
) -> Option<Rendered> {
    let mut all = String::from_utf8(bytes).ok()?;
    let text_at = subject.checked_add(html.unwrap_or(0))?;
    if !(all.is_char_boundary(subject) && all.is_char_boundary(text_at)) {
        return None;
    }
    let text = all.split_off(text_at);
    let html = html.map(|_| all.split_off(subject));
    Some(Rendered {
        subject: all,
        html,
        text,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_rendered_message_crosses_as_a_line_and_its_parts() {
        for html in [Some("<p>Grüße \"x\"</p>\n".to_owned()), None] {
            let rendered = Rendered {
                subject: "Ünïcode ✉".to_owned(),
                html,
                text: "line\r\nnext".to_owned(),
            };
            let mut out = Vec::new();
            write_rendered(&mut out, &rendered).unwrap();
            let newline = out.iter().position(|&b| b == b'\n').unwrap();
            let Reply::Rendered {
                subject,
                html,
                text,
            } = serde_json::from_slice(&out[..newline]).unwrap()
            else {
                panic!("not a rendered reply");
            };
            let parts = out[newline + 1..].to_vec();
            assert_eq!(parts.len(), subject + html.unwrap_or(0) + text);
            assert_eq!(rendered_from(parts, subject, html).unwrap(), rendered);
        }
        // Lengths that cut a character in two are refused, not a panic.
        assert!(rendered_from("é".as_bytes().to_vec(), 1, None).is_none());
    }

    #[test]
    fn what_the_parent_writes_the_child_reads() {
        let source = Source::from_campaign(&CampaignSource {
            uuid: Uuid::nil(),
            name: "n",
            subject: "s",
            body: "b",
            format: BodyFormat::Markdown,
            text_body: Some("t"),
            layout: None,
        });
        let line = serde_json::to_string(&Outgoing::Compile {
            id: 7,
            source: &source,
        })
        .unwrap();
        match serde_json::from_str::<Incoming>(&line).unwrap() {
            Incoming::Compile { id, source } => {
                assert_eq!(id, 7);
                assert_eq!(source.text_body.as_deref(), Some("t"));
                assert_eq!(source.format, BodyFormat::Markdown);
            }
            Incoming::Render { .. } | Incoming::RenderMany { .. } => panic!("read as a render"),
        }
        let recipient = Recipient::sample();
        let line = serde_json::to_string(&Outgoing::Render {
            id: 9,
            recipient: &recipient,
            unsubscribe_url: "u",
        })
        .unwrap();
        assert!(matches!(
            serde_json::from_str::<Incoming>(&line).unwrap(),
            Incoming::Render { id: 9, ref unsubscribe_url, .. } if unsubscribe_url == "u"
        ));
    }
}
