//! Campaign templates: compiled once per campaign, rendered per recipient.
//!
//! The engine is minijinja: sandboxed (no file or environment access; the
//! environment has no loader), with a fuel limit so a template cannot loop
//! forever, and HTML auto-escaping for HTML parts so a subscriber's name
//! cannot inject markup.
//!
//! Fuel also pays for the bytes a template makes (`~`, `*`, filters), checked
//! before most allocations. The filters that serialise a value (`tojson`,
//! `pprint`, `string`) are charged only after building their output, and
//! an `indent` argument multiplies it, so they are replaced here by versions
//! that write into a [`Capped`] buffer and stop at [`MAX_SERIALIZED`]. What
//! remains unbounded inside the engine (a container turned into a string by
//! `~` or printing) is why the web and the sender render in a separate,
//! memory-limited process (`postino-sandbox`), never in their own.

use chrono::{DateTime, Utc};
use minijinja::{Environment, ErrorKind, Value};
use postino_domain::BodyFormat;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Instructions one render may spend: generous for real newsletters (loops
/// over a few hundred items), fatal for runaway ones.
const FUEL: u64 = 200_000;
/// The most a serialising filter (`tojson`, `pprint`, `string`) may produce.
pub const MAX_SERIALIZED: usize = 1024 * 1024;
/// The widest `tojson` indent: JSON for people reads fine at 8.
const MAX_JSON_INDENT: usize = 8;
/// Width of the generated plain-text alternative: short enough that an ASCII
/// text part fits quoted-printable's 76-column lines untouched, so it can go
/// out as 7bit, unencoded (cheaper to send and to read).
const TEXT_WIDTH: usize = 72;

/// What a campaign is made of, as the user wrote it.
#[derive(Debug, Clone)]
pub struct CampaignSource<'a> {
    /// Public id, available to templates as `campaign.id`.
    pub uuid: Uuid,
    /// Name, available as `campaign.name`.
    pub name: &'a str,
    /// Subject template.
    pub subject: &'a str,
    /// Body template in `format`.
    pub body: &'a str,
    /// How the body is written.
    pub format: BodyFormat,
    /// Plain-text alternative template; generated from the HTML when `None`.
    pub text_body: Option<&'a str>,
    /// Layout HTML with a `{{ content }}` slot, if any.
    pub layout: Option<&'a str>,
}

/// A template that does not compile or fails to render, with where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("{field}{}: {reason}", line.map(|l| format!(", line {l}")).unwrap_or_default())]
pub struct TemplateError {
    /// Which part: `subject`, `body`, `text_body` or `template` (the layout).
    pub field: &'static str,
    /// The line in that part, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub reason: String,
}

/// Read back from JSON (a sandboxed render reports errors that way), with
/// the part's name mapped onto the names [`TemplateError::field`] holds.
impl<'de> Deserialize<'de> for TemplateError {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Wire {
            field: String,
            line: Option<usize>,
            reason: String,
        }
        let w = Wire::deserialize(d)?;
        let field = match w.field.as_str() {
            "subject" => "subject",
            "text_body" => "text_body",
            "template" => "template",
            _ => "body",
        };
        Ok(Self {
            field,
            line: w.line,
            reason: w.reason,
        })
    }
}

/// One recipient, as templates see them under `subscriber`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recipient {
    /// Public id.
    pub id: Uuid,
    /// Address.
    pub email: String,
    /// Display name; may be empty.
    pub name: String,
    /// Free-form attributes: `subscriber.attributes.<key>`.
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// When they subscribed (RFC 3339), for the `date` filter.
    pub created_at: DateTime<Utc>,
}

impl Recipient {
    /// The stand-in used to check templates when they are saved and for
    /// previews without a chosen subscriber.
    #[must_use]
    pub fn sample() -> Self {
        Self {
            id: Uuid::nil(),
            email: "jane.doe@example.com".to_owned(),
            name: "Jane Doe".to_owned(),
            attributes: serde_json::Map::new(),
            created_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }
}

/// A message's content for one recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rendered {
    /// The subject line.
    pub subject: String,
    /// The HTML part; `None` for plain-text campaigns.
    pub html: Option<String>,
    /// The plain-text part.
    pub text: String,
}

/// How the plain-text alternative is produced.
#[derive(Debug)]
enum TextPart {
    /// A template: the user's, or one generated from the HTML at compile time.
    Template,
    /// Converted from each recipient's rendered HTML (when the HTML could not
    /// be turned into a text template ahead of time).
    FromHtml,
}

/// A campaign's templates, compiled once and rendered for each recipient.
#[derive(Debug)]
pub struct CompiledCampaign {
    env: Environment<'static>,
    has_html: bool,
    text: TextPart,
    campaign_id: String,
    campaign_name: String,
}

const SUBJECT: &str = "subject.txt";
const BODY: &str = "body.html";
const TEXT: &str = "text.txt";

fn engine() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(50);
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            minijinja::AutoEscape::Html
        } else {
            minijinja::AutoEscape::None
        }
    });
    env.add_filter("date", date_filter);
    env.add_filter("tojson", tojson_filter);
    env.add_filter("pprint", pprint_filter);
    env.add_filter("string", string_filter);
    env.add_function("now", || Utc::now().to_rfc3339());
    env
}

/// `{{ value | date("%d %B %Y") }}`: formats an RFC 3339 timestamp (or a
/// `YYYY-MM-DD` date) with a strftime pattern; default `%Y-%m-%d`.
fn date_filter(value: &str, format: Option<&str>) -> Result<String, minijinja::Error> {
    use chrono::format::{Item, StrftimeItems};
    let format = format.unwrap_or("%Y-%m-%d");
    // chrono panics when displaying an invalid pattern, so check it first.
    if StrftimeItems::new(format).any(|i| matches!(i, Item::Error)) {
        return Err(minijinja::Error::new(
            ErrorKind::InvalidOperation,
            format!("{format:?} is not a valid date format"),
        ));
    }
    let parsed = DateTime::parse_from_rfc3339(value)
        .map(|d| d.with_timezone(&Utc))
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
                .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
        })
        .map_err(|_| {
            minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("{value:?} is not a date (expected RFC 3339 or YYYY-MM-DD)"),
            )
        })?;
    Ok(parsed.format(format).to_string())
}

/// A buffer that refuses to grow past [`MAX_SERIALIZED`]: serialising into it
/// stops at the limit instead of building the whole value first.
#[derive(Debug, Default)]
struct Capped(String);

impl Capped {
    fn push(&mut self, s: &str) -> bool {
        if self.0.len() + s.len() > MAX_SERIALIZED {
            return false;
        }
        self.0.push_str(s);
        true
    }
}

impl std::fmt::Write for Capped {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.push(s) {
            Ok(())
        } else {
            Err(std::fmt::Error)
        }
    }
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = std::str::from_utf8(buf).map_err(std::io::Error::other)?;
        if self.push(text) {
            Ok(buf.len())
        } else {
            Err(std::io::Error::other("too large"))
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn too_large(filter: &str) -> minijinja::Error {
    minijinja::Error::new(
        ErrorKind::InvalidOperation,
        format!(
            "{filter} would produce more than {} KiB",
            MAX_SERIALIZED / 1024
        ),
    )
}

/// JSON on one line with a space after `,` and `:`, as Jinja2's `tojson`
/// (Python's `json.dumps`) writes it.
struct Spaced;

impl Spaced {
    fn separator<W: ?Sized + std::io::Write>(writer: &mut W, first: bool) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }
}

impl serde_json::ser::Formatter for Spaced {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        Self::separator(writer, first)
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        Self::separator(writer, first)
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
    ) -> std::io::Result<()> {
        writer.write_all(b": ")
    }
}

/// `{{ value | tojson }}` or `tojson(indent=2)`: JSON safe for HTML, at most
/// [`MAX_SERIALIZED`] bytes, indented by at most [`MAX_JSON_INDENT`].
#[allow(clippy::needless_pass_by_value)] // minijinja hands filters owned arguments
fn tojson_filter(
    value: &Value,
    indent: Option<Value>,
    kwargs: minijinja::value::Kwargs,
) -> Result<Value, minijinja::Error> {
    let indent = match indent {
        Some(i) => Some(i),
        None => kwargs.get::<Option<Value>>("indent")?,
    };
    kwargs.assert_all_used()?;
    let indent = match indent {
        None => None,
        Some(v) if v.kind() == minijinja::value::ValueKind::Bool => v.is_true().then_some(2),
        Some(v) => Some(usize::try_from(v)?),
    };
    if indent.is_some_and(|i| i > MAX_JSON_INDENT) {
        return Err(minijinja::Error::new(
            ErrorKind::InvalidOperation,
            format!("tojson indents by at most {MAX_JSON_INDENT}"),
        ));
    }
    let mut out = Capped::default();
    let written = match indent {
        Some(width) => {
            let spaces = " ".repeat(width);
            let formatter = serde_json::ser::PrettyFormatter::with_indent(spaces.as_bytes());
            let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
            value.serialize(&mut ser)
        }
        None => value.serialize(&mut serde_json::Serializer::with_formatter(
            &mut out, Spaced,
        )),
    };
    if let Err(e) = written {
        return Err(if e.is_io() {
            too_large("tojson")
        } else {
            minijinja::Error::new(ErrorKind::InvalidOperation, "cannot serialize to JSON")
        });
    }
    // The same escaping as minijinja's own filter, so the JSON can sit in
    // an HTML attribute or a <script> block.
    let json = out
        .0
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\'', "\\u0027");
    Ok(Value::from_safe_string(json))
}

/// `{{ value | pprint }}`, at most [`MAX_SERIALIZED`] bytes.
fn pprint_filter(value: &Value) -> Result<String, minijinja::Error> {
    let mut out = Capped::default();
    std::fmt::Write::write_fmt(&mut out, format_args!("{value:#?}"))
        .map_err(|_| too_large("pprint"))?;
    Ok(out.0)
}

/// `{{ value | string }}`, at most [`MAX_SERIALIZED`] bytes.
fn string_filter(value: &Value) -> Result<Value, minijinja::Error> {
    if value.as_str().is_some() {
        return Ok(value.clone());
    }
    let mut out = Capped::default();
    std::fmt::Write::write_fmt(&mut out, format_args!("{value}"))
        .map_err(|_| too_large("string"))?;
    Ok(Value::from(out.0))
}

fn error_in(field: &'static str, e: &minijinja::Error) -> TemplateError {
    let reason = match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    };
    TemplateError {
        field,
        line: e.line(),
        reason,
    }
}

/// Whether `{{ … }}` holds just the layout's content slot.
fn is_content_slot(inner: &str) -> bool {
    let inner = inner
        .trim()
        .trim_start_matches('-')
        .trim_end_matches('-')
        .trim();
    inner == "content" || inner.replace(' ', "") == "content|safe"
}

/// Replaces the layout's `{{ content }}` slot with `body`, at source level.
fn splice_layout(layout: &str, body: &str) -> Option<String> {
    let mut out = String::with_capacity(layout.len() + body.len());
    let mut rest = layout;
    let mut found = false;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else {
            break;
        };
        let inner = &rest[start + 2..start + len];
        out.push_str(&rest[..start]);
        if is_content_slot(inner) {
            out.push_str(body);
            found = true;
        } else {
            out.push_str(&rest[start..start + len + 2]);
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    found.then_some(out)
}

/// Turns an HTML template into a plain-text template: every template tag is
/// swapped for an opaque marker (so the HTML converter cannot reflow or
/// escape it), the HTML is converted, and the tags are put back.
fn text_template_from_html(html: &str) -> Option<String> {
    let mut tags: Vec<&str> = Vec::new();
    let mut marked = String::with_capacity(html.len());
    let mut rest = html;
    loop {
        let next = ["{{", "{%", "{#"]
            .iter()
            .filter_map(|open| rest.find(open).map(|i| (i, *open)))
            .min_by_key(|(i, _)| *i);
        let Some((start, open)) = next else { break };
        let close = match open {
            "{{" => "}}",
            "{%" => "%}",
            _ => "#}",
        };
        let len = rest[start..].find(close)? + close.len();
        marked.push_str(&rest[..start]);
        marked.push_str(&format!("\u{E000}{}\u{E001}", tags.len()));
        tags.push(&rest[start..start + len]);
        rest = &rest[start + len..];
    }
    marked.push_str(rest);
    let text = html2text::from_read(marked.as_bytes(), TEXT_WIDTH).ok()?;
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(start) = rest.find('\u{E000}') {
        let end = rest[start..].find('\u{E001}')? + start;
        let index: usize = rest[start + '\u{E000}'.len_utf8()..end].parse().ok()?;
        out.push_str(&rest[..start]);
        out.push_str(tags.get(index)?);
        rest = &rest[end + '\u{E001}'.len_utf8()..];
    }
    out.push_str(rest);
    Some(out)
}

fn html_to_text(html: &str) -> String {
    html2text::from_read(html.as_bytes(), TEXT_WIDTH).unwrap_or_default()
}

impl CompiledCampaign {
    /// Compiles every part, then renders once for a sample subscriber so
    /// templates that parse but fail at run time are refused now, not at send.
    ///
    /// # Errors
    ///
    /// The first [`TemplateError`] found.
    pub fn compile(source: &CampaignSource<'_>) -> Result<Self, TemplateError> {
        let mut env = engine();
        env.add_template_owned(SUBJECT, source.subject.to_owned())
            .map_err(|e| error_in("subject", &e))?;

        // Check the body and the layout on their own first, so an error names
        // the part the user has to fix.
        let body_html = match source.format {
            BodyFormat::Html => Some(source.body.to_owned()),
            BodyFormat::Markdown => {
                let mut html = String::new();
                pulldown_cmark::html::push_html(
                    &mut html,
                    pulldown_cmark::Parser::new(source.body),
                );
                Some(html)
            }
            BodyFormat::Text => None,
        };
        let mut scratch = engine();
        scratch
            .add_template_owned("check.html", source.body.to_owned())
            .map_err(|e| error_in("body", &e))?;

        let has_html = body_html.is_some();
        let full_html = match (&body_html, source.layout) {
            (Some(body), Some(layout)) => {
                scratch
                    .add_template_owned("layout.html", layout.to_owned())
                    .map_err(|e| error_in("template", &e))?;
                Some(splice_layout(layout, body).ok_or_else(|| TemplateError {
                    field: "template",
                    line: None,
                    reason: "the layout has no {{ content }} slot for the campaign body".to_owned(),
                })?)
            }
            (Some(body), None) => Some(body.clone()),
            (None, _) => None,
        };

        let text = match (source.text_body, &full_html) {
            (Some(text), _) => {
                env.add_template_owned(TEXT, text.to_owned())
                    .map_err(|e| error_in("text_body", &e))?;
                TextPart::Template
            }
            (None, Some(html)) => {
                env.add_template_owned(BODY, html.clone())
                    .map_err(|e| error_in("body", &e))?;
                let generated = text_template_from_html(html)
                    .is_some_and(|t| env.add_template_owned(TEXT, t).is_ok());
                if generated {
                    TextPart::Template
                } else {
                    TextPart::FromHtml
                }
            }
            (None, None) => {
                env.add_template_owned(TEXT, source.body.to_owned())
                    .map_err(|e| error_in("body", &e))?;
                TextPart::Template
            }
        };
        if let (Some(_), Some(html)) = (source.text_body, &full_html) {
            env.add_template_owned(BODY, html.clone())
                .map_err(|e| error_in("body", &e))?;
        }

        let compiled = Self {
            env,
            has_html,
            text,
            campaign_id: source.uuid.to_string(),
            campaign_name: source.name.to_owned(),
        };
        compiled
            .render(
                &Recipient::sample(),
                "https://example.com/unsubscribe/sample",
            )
            .map_err(|e| TemplateError {
                reason: format!("fails for a sample subscriber: {}", e.reason),
                ..e
            })?;
        Ok(compiled)
    }

    /// Renders every part for one recipient.
    ///
    /// # Errors
    ///
    /// A [`TemplateError`] if a part fails for this recipient (for example it
    /// runs out of fuel or divides by zero).
    pub fn render(
        &self,
        recipient: &Recipient,
        unsubscribe_url: &str,
    ) -> Result<Rendered, TemplateError> {
        let subscriber = Value::from(minijinja::value::Serde(recipient));
        let subject_ctx = minijinja::context! {
            subscriber => subscriber.clone(),
            campaign => minijinja::context! { id => &self.campaign_id, name => &self.campaign_name },
            unsubscribe_url => unsubscribe_url,
        };
        let subject = self.render_one(SUBJECT, "subject", &subject_ctx)?;
        // A merge field holding a line break must not split the header.
        let subject = subject.replace(['\r', '\n'], " ").trim().to_owned();
        let ctx = minijinja::context! {
            subscriber => subscriber,
            campaign => minijinja::context! {
                id => &self.campaign_id, name => &self.campaign_name, subject => &subject,
            },
            unsubscribe_url => unsubscribe_url,
        };
        let html = if self.has_html {
            Some(self.render_one(BODY, "body", &ctx)?)
        } else {
            None
        };
        let text = match (&self.text, &html) {
            (TextPart::FromHtml, Some(html)) => html_to_text(html),
            _ => self.render_one(TEXT, "text_body", &ctx)?,
        };
        Ok(Rendered {
            subject,
            html,
            text,
        })
    }

    fn render_one(
        &self,
        name: &str,
        field: &'static str,
        ctx: &Value,
    ) -> Result<String, TemplateError> {
        let template = self
            .env
            .get_template(name)
            .map_err(|e| error_in(field, &e))?;
        template.render(ctx).map_err(|e| error_in(field, &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source<'a>(subject: &'a str, body: &'a str, format: BodyFormat) -> CampaignSource<'a> {
        CampaignSource {
            uuid: Uuid::nil(),
            name: "Spring",
            subject,
            body,
            format,
            text_body: None,
            layout: None,
        }
    }

    fn jane() -> Recipient {
        let mut r = Recipient::sample();
        r.attributes.insert("city".into(), "Rome".into());
        r.name = "Jane <b>".into();
        r
    }

    #[test]
    fn merge_fields_render_per_recipient_and_html_is_escaped() {
        let c = CompiledCampaign::compile(&source(
            "Hi {{ subscriber.name }}",
            "<p>Hello {{ subscriber.name }} from {{ subscriber.attributes.city }}, {{ subscriber.attributes.plan | default('free') }}</p>\
             <a href=\"{{ unsubscribe_url }}\">Unsubscribe</a>",
            BodyFormat::Html,
        ))
        .unwrap();
        let r = c.render(&jane(), "https://x.test/u/T").unwrap();
        assert_eq!(r.subject, "Hi Jane <b>");
        let html = r.html.unwrap();
        assert!(
            html.contains("Hello Jane &lt;b&gt; from Rome, free"),
            "{html}"
        );
        assert!(
            html.contains("href=\"https:&#x2f;&#x2f;x.test&#x2f;u&#x2f;T\"")
                || html.contains("href=\"https://x.test/u/T\""),
            "{html}"
        );
        assert!(
            r.text.contains("Hello Jane <b> from Rome, free"),
            "{}",
            r.text
        );
        assert!(r.text.contains("https://x.test/u/T"), "{}", r.text);
    }

    #[test]
    fn a_layout_wraps_the_body_through_its_content_slot() {
        let mut s = source(
            "S",
            "<p>Body for {{ subscriber.name }}</p>",
            BodyFormat::Html,
        );
        s.layout = Some(
            "<html><body><header>Acme</header>{{ content }}<footer><a href=\"{{ unsubscribe_url }}\">Leave</a></footer></body></html>",
        );
        let r = CompiledCampaign::compile(&s)
            .unwrap()
            .render(&jane(), "https://u")
            .unwrap();
        let html = r.html.unwrap();
        assert!(
            html.starts_with(
                "<html><body><header>Acme</header><p>Body for Jane &lt;b&gt;</p><footer>"
            ),
            "{html}"
        );
        assert!(
            r.text.contains("Acme") && r.text.contains("Body for Jane <b>"),
            "{}",
            r.text
        );
    }

    #[test]
    fn markdown_becomes_html_and_text_bodies_stay_text() {
        let md = CompiledCampaign::compile(&source(
            "S",
            "# Hello {{ subscriber.name }}\n\n*news*",
            BodyFormat::Markdown,
        ))
        .unwrap()
        .render(&jane(), "u")
        .unwrap();
        assert!(md.html.unwrap().contains("<h1>Hello Jane &lt;b&gt;</h1>"));
        let text = CompiledCampaign::compile(&source(
            "S",
            "Hello {{ subscriber.name }} & co",
            BodyFormat::Text,
        ))
        .unwrap()
        .render(&jane(), "u")
        .unwrap();
        assert_eq!(text.html, None);
        assert_eq!(text.text, "Hello Jane <b> & co");
    }

    #[test]
    fn template_errors_name_the_part_and_the_line() {
        let err = CompiledCampaign::compile(&source(
            "S",
            "<p>ok</p>\n<p>{{ subscriber.name </p>",
            BodyFormat::Html,
        ))
        .unwrap_err();
        assert_eq!(err.field, "body");
        assert_eq!(err.line, Some(2));
        let err =
            CompiledCampaign::compile(&source("Hi {% if %}", "b", BodyFormat::Html)).unwrap_err();
        assert_eq!(err.field, "subject");
        let mut s = source("S", "b", BodyFormat::Html);
        s.layout = Some("<html>no slot</html>");
        assert_eq!(CompiledCampaign::compile(&s).unwrap_err().field, "template");
    }

    #[test]
    fn templates_that_fail_at_run_time_are_refused_at_compile_time() {
        let err =
            CompiledCampaign::compile(&source("S", "{{ 1 / 0 }}", BodyFormat::Html)).unwrap_err();
        assert!(err.reason.contains("sample subscriber"), "{err}");
        let err = CompiledCampaign::compile(&source(
            "S",
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
            BodyFormat::Html,
        ))
        .unwrap_err();
        assert!(
            err.reason.to_lowercase().contains("fuel") || err.reason.contains("range"),
            "{err}"
        );
    }

    #[test]
    fn the_date_filter_formats_and_refuses_bad_patterns() {
        let c = CompiledCampaign::compile(&source(
            "S",
            "{{ subscriber.created_at | date('%d %B %Y') }} {{ '2026-03-01' | date }}",
            BodyFormat::Text,
        ))
        .unwrap();
        assert_eq!(
            c.render(&jane(), "u").unwrap().text,
            "01 January 1970 2026-03-01"
        );
        assert!(
            CompiledCampaign::compile(&source("S", "{{ now() | date('%Q') }}", BodyFormat::Text))
                .is_err()
        );
    }

    #[test]
    fn serialising_filters_cannot_be_made_to_build_huge_values() {
        // The attack that crashed the server: an indent of 100 million
        // spaces per nesting level, charged only after the JSON was built.
        let err = CompiledCampaign::compile(&source(
            "S",
            "{{ range(100)|list|tojson(indent=100000000) }}",
            BodyFormat::Html,
        ))
        .unwrap_err();
        assert!(err.reason.contains("indents by at most"), "{err}");
        // The same string a thousand times over: a cheap list, a huge JSON.
        for filter in ["tojson", "pprint", "string"] {
            let err = CompiledCampaign::compile(&source(
                "S",
                &format!("{{% set s = 'x' * 100000 %}}{{{{ ([s] * 1000)|{filter} }}}}"),
                BodyFormat::Html,
            ))
            .unwrap_err();
            assert!(err.reason.contains("more than 1024 KiB"), "{filter}: {err}");
        }
        // Ordinary use is unchanged, with Jinja2's spacing.
        let c = CompiledCampaign::compile(&source(
            "S",
            "{{ {'a': [1, 2], 'b': \"<x>\"}|tojson }}|{{ [1]|tojson(indent=2) }}|{{ [1, 'a']|string }}|{{ 3|string }}",
            BodyFormat::Text,
        ))
        .unwrap();
        assert_eq!(
            c.render(&jane(), "u").unwrap().text,
            "{\"a\": [1, 2], \"b\": \"\\u003cx\\u003e\"}|[\n  1\n]|[1, 'a']|3"
        );
    }

    #[test]
    fn a_per_subscriber_indent_is_refused_at_render_time_for_that_subscriber() {
        let c = CompiledCampaign::compile(&source(
            "S",
            "{{ range(100)|list|tojson(indent=subscriber.attributes.w|default(1)) }}",
            BodyFormat::Html,
        ))
        .unwrap();
        let mut r = jane();
        r.attributes.insert("w".into(), 100_000_000.into());
        let err = c.render(&r, "u").unwrap_err();
        assert_eq!(err.field, "body");
        assert!(err.reason.contains("indents by at most"), "{err}");
    }

    #[test]
    fn doubling_a_string_runs_out_of_fuel_not_memory() {
        let err = CompiledCampaign::compile(&source(
            "S",
            "{% set ns = namespace(s='xxxxxxxx') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
            BodyFormat::Text,
        ))
        .unwrap_err();
        assert!(err.reason.to_lowercase().contains("fuel"), "{err}");
    }

    #[test]
    fn template_errors_cross_a_process_boundary_as_json() {
        let err = TemplateError {
            field: "text_body",
            line: Some(3),
            reason: "r".to_owned(),
        };
        let back: TemplateError =
            serde_json::from_str(&serde_json::to_string(&err).unwrap()).unwrap();
        assert_eq!(back, err);
    }

    #[test]
    fn the_environment_is_sandboxed() {
        // No loader: templates cannot read files.
        let err = CompiledCampaign::compile(&source(
            "S",
            "{% include '/etc/passwd' %}",
            BodyFormat::Html,
        ))
        .unwrap_err();
        assert_eq!(err.field, "body");
    }

    #[test]
    fn subject_line_breaks_from_merge_fields_are_flattened() {
        let mut r = jane();
        r.name = "Jane\r\nBcc: x@y.z".into();
        let c =
            CompiledCampaign::compile(&source("Hi {{ subscriber.name }}", "b", BodyFormat::Html))
                .unwrap();
        assert_eq!(c.render(&r, "u").unwrap().subject, "Hi Jane  Bcc: x@y.z");
    }
}
