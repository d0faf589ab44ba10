//! The campaign editor's form: its fields as typed, turned into the API's
//! [`CampaignDraft`] so both are checked by the same rules, and the
//! field errors put back beside the fields they name.

use postino_db::campaigns::Campaign;
use postino_domain::{BodyFormat, CustomHeader, EmailAddress, Tags};
use uuid::Uuid;

use postino_service::campaigns::CampaignDraft;
use postino_service::{Error, FieldError};

/// What a new campaign starts with, so the first preview already shows
/// something and the unsubscribe link sending needs is there from the start.
const STARTER_BODY: &str = "<h1>Hello {{ subscriber.name }}</h1>\n\
<p>Write your news here.</p>\n\
<p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p>";

/// The fields that show their own errors; others go above the form.
pub(crate) const FIELDS: [&str; 13] = [
    "name",
    "subject",
    "from_name",
    "from_email",
    "lists",
    "body",
    "preview_email",
    "reply_to",
    "text_body",
    "template",
    "tags",
    "headers",
    "smtp_group",
];

/// The fields kept in the editor's "More options" section, opened when one
/// of them is set or wrong.
const MORE_OPTIONS: [&str; 6] = [
    "reply_to",
    "text_body",
    "template",
    "tags",
    "headers",
    "smtp_group",
];

/// The editor's fields as typed, and what is wrong with them.
#[derive(Debug, Clone, Default)]
pub(crate) struct CampaignForm {
    pub(crate) name: String,
    pub(crate) subject: String,
    pub(crate) from_name: String,
    pub(crate) from_email: String,
    /// The lists ticked.
    pub(crate) lists: Vec<Uuid>,
    pub(crate) body_format: String,
    pub(crate) body: String,
    /// Whose eyes the preview is rendered for; empty for a sample person.
    pub(crate) preview_email: String,
    /// Empty: replies go to the sender.
    pub(crate) reply_to: String,
    /// Empty: generated from the body.
    pub(crate) text_body: String,
    /// The layout's id; empty for none.
    pub(crate) template: String,
    /// Comma-separated.
    pub(crate) tags: String,
    /// One `Name: value` a line.
    pub(crate) headers: String,
    /// Empty: any enabled server.
    pub(crate) smtp_group: String,
    /// `(field, message)`, one per problem.
    pub(crate) errors: Vec<(String, String)>,
}

impl CampaignForm {
    /// A blank campaign with a starter body.
    pub(crate) fn starter() -> Self {
        Self {
            body_format: BodyFormat::Html.as_str().to_owned(),
            body: STARTER_BODY.to_owned(),
            ..Self::default()
        }
    }

    /// The stored campaign's fields.
    pub(crate) fn of(c: &Campaign) -> Self {
        let f = &c.fields;
        Self {
            name: f.name.clone(),
            subject: f.subject.clone(),
            from_name: f.from_name.clone(),
            from_email: f.from_email.to_string(),
            lists: c.lists.clone(),
            body_format: f.body_format.as_str().to_owned(),
            body: f.body.clone(),
            reply_to: f
                .reply_to
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            text_body: f.text_body.clone().unwrap_or_default(),
            template: c.template_uuid.map(|u| u.to_string()).unwrap_or_default(),
            tags: f.tags.as_slice().join(", "),
            headers: f
                .headers
                .iter()
                .map(|h| format!("{}: {}", h.name(), h.value()))
                .collect::<Vec<_>>()
                .join("\n"),
            smtp_group: f
                .smtp_group
                .as_ref()
                .map(|g| g.as_str().to_owned())
                .unwrap_or_default(),
            ..Self::default()
        }
    }

    /// Reads a urlencoded body. Lists repeat their field (one per ticked
    /// box), which is why this is not a serde form.
    pub(crate) fn parse(body: &[u8]) -> Self {
        let mut form = Self::default();
        for (key, value) in form_urlencoded::parse(body) {
            let value = value.into_owned();
            match key.as_ref() {
                "name" => form.name = value,
                "subject" => form.subject = value,
                "from_name" => form.from_name = value,
                "from_email" => form.from_email = value,
                "body_format" => form.body_format = value,
                "body" => form.body = value,
                "preview_email" => form.preview_email = value,
                "reply_to" => form.reply_to = value,
                "text_body" => form.text_body = value,
                "template" => form.template = value,
                "tags" => form.tags = value,
                "headers" => form.headers = value,
                "smtp_group" => form.smtp_group = value,
                "lists" => match value.parse::<Uuid>() {
                    Ok(id) => form.lists.push(id),
                    Err(_) => form.fail("lists", "one of the lists was not recognised"),
                },
                _ => {}
            }
        }
        form
    }

    /// What is wrong with `field`, if anything.
    pub(crate) fn error(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }

    /// Problems with no field of their own on the form.
    pub(crate) fn other_errors(&self) -> Vec<&str> {
        self.errors
            .iter()
            .filter(|(f, _)| !FIELDS.contains(&f.as_str()))
            .map(|(_, m)| m.as_str())
            .collect()
    }

    /// Whether the "More options" section starts open.
    pub(crate) fn more_options_open(&self) -> bool {
        let set = [
            &self.reply_to,
            &self.text_body,
            &self.template,
            &self.tags,
            &self.headers,
            &self.smtp_group,
        ]
        .iter()
        .any(|v| !v.trim().is_empty());
        set || MORE_OPTIONS.iter().any(|f| self.error(f).is_some())
    }

    /// Whether the layout with `id` is the chosen one.
    pub(crate) fn has_template(&self, id: &Uuid) -> bool {
        self.template == id.to_string()
    }

    /// Whether list `id` is ticked.
    pub(crate) fn has_list(&self, id: &Uuid) -> bool {
        self.lists.contains(id)
    }

    fn fail(&mut self, field: &str, message: impl Into<String>) {
        if self.error(field).is_none() {
            self.errors.push((field.to_owned(), message.into()));
        }
    }

    /// The draft to check, or `None` with the problems this form can
    /// see before the service's checks (an address or format that does not
    /// parse) recorded.
    pub(crate) fn request(&mut self) -> Option<CampaignDraft> {
        let from_email = match self.from_email.trim() {
            "" => None,
            raw => match EmailAddress::parse(raw) {
                Ok(e) => Some(e),
                Err(e) => {
                    self.fail("from_email", e.reason);
                    None
                }
            },
        };
        let body_format = match self.body_format.parse::<BodyFormat>() {
            Ok(f) => Some(f),
            Err(_) => {
                self.fail("body", "choose HTML, Markdown or plain text");
                None
            }
        };
        let reply_to = match self.reply_to.trim() {
            "" => Some(None),
            raw => match EmailAddress::parse(raw) {
                Ok(e) => Some(Some(e)),
                Err(e) => {
                    self.fail("reply_to", e.reason);
                    None
                }
            },
        };
        let template = match self.template.trim() {
            "" => Some(None),
            raw => match raw.parse::<Uuid>() {
                Ok(id) => Some(Some(id)),
                Err(_) => {
                    self.fail("template", "that layout was not recognised");
                    None
                }
            },
        };
        let tags = match self.parsed_tags() {
            Ok(t) => Some(t),
            Err(reason) => {
                self.fail("tags", reason);
                None
            }
        };
        let headers = match self.parsed_headers() {
            Ok(h) => Some(h),
            Err(reason) => {
                self.fail("headers", reason);
                None
            }
        };
        if !self.errors.is_empty() {
            return None;
        }
        let text_body = match self.text_body.trim() {
            "" => None,
            _ => Some(self.text_body.clone()),
        };
        Some(CampaignDraft {
            name: Some(self.name.clone()),
            subject: Some(self.subject.clone()),
            from_name: Some(self.from_name.clone()),
            from_email,
            reply_to,
            body: Some(self.body.clone()),
            body_format,
            text_body: Some(text_body),
            template,
            lists: Some(self.lists.clone()),
            tags,
            headers,
            smtp_group: Some(self.smtp_group.trim().to_owned()),
        })
    }

    fn parsed_tags(&self) -> Result<Tags, String> {
        let tags: Vec<&str> = self
            .tags
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        Tags::parse(&tags).map_err(|e| e.reason)
    }

    /// One header a line, `Name: value`; blank lines are ignored.
    fn parsed_headers(&self) -> Result<Vec<CustomHeader>, String> {
        self.headers
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(|line| {
                let (name, value) = line.split_once(':').ok_or_else(|| {
                    format!("write each header as Name: value (\"{line}\" has no colon)")
                })?;
                CustomHeader::parse(name.trim(), value.trim()).map_err(|e| e.reason)
            })
            .collect()
    }

    /// Takes the field errors out of `e`, in words; any other error is
    /// handed back.
    pub(crate) fn absorb(&mut self, e: Error) -> Result<(), Error> {
        match e {
            Error::Invalid(errors) => {
                for FieldError { field, message } in errors {
                    // `lists[2]` and `headers[0].name` are fields of the form.
                    let field = field.split(['[', '.']).next().unwrap_or_default();
                    self.fail(field, message);
                }
                Ok(())
            }
            other => Err(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticked_lists_repeat_their_field() {
        let a = Uuid::new_v4();
        let b = Uuid::new_v4();
        let body = format!("name=N&lists={a}&lists={b}&body_format=html");
        let form = CampaignForm::parse(body.as_bytes());
        assert_eq!(form.lists, vec![a, b]);
        assert!(form.has_list(&b));
        assert_eq!(form.name, "N");
    }

    #[test]
    fn an_address_that_does_not_parse_is_named() {
        let mut form = CampaignForm::parse(b"from_email=not+an+address&body_format=html");
        assert!(form.request().is_none());
        assert!(form.error("from_email").is_some());
    }

    #[test]
    fn list_errors_land_on_the_lists_field() {
        let mut form = CampaignForm::default();
        form.absorb(Error::invalid("lists[1]", "no list has id x"))
            .unwrap();
        assert_eq!(form.error("lists"), Some("no list has id x"));
        assert!(form.other_errors().is_empty());
    }

    #[test]
    fn more_options_become_the_apis_fields() {
        let mut form = CampaignForm::parse(
            b"body_format=html&reply_to=help%40example.com&tags=news%2C+spring&headers=X-Campaign%3A+spring%0D%0A%0D%0AX-Team%3A+shop&smtp_group=bulk&text_body=",
        );
        assert!(form.more_options_open());
        let body = form.request().unwrap();
        assert_eq!(body.reply_to.unwrap().unwrap().as_str(), "help@example.com");
        assert_eq!(body.tags.unwrap().as_slice(), ["news", "spring"]);
        let headers = body.headers.unwrap();
        assert_eq!(headers.len(), 2);
        assert_eq!(
            (headers[0].name(), headers[0].value()),
            ("X-Campaign", "spring")
        );
        assert_eq!(body.smtp_group.as_deref(), Some("bulk"));
        // Empty fields clear what was stored rather than keep it.
        assert_eq!(body.text_body, Some(None));
        assert_eq!(body.template, Some(None));
    }

    #[test]
    fn a_header_without_a_colon_or_a_reserved_one_is_named() {
        let mut form = CampaignForm::parse(b"body_format=html&headers=X-Campaign+spring");
        assert!(form.request().is_none());
        assert!(form.error("headers").unwrap().contains("no colon"));
        let mut form = CampaignForm::parse(b"body_format=html&headers=Subject%3A+hi");
        assert!(form.request().is_none());
        assert!(form.error("headers").unwrap().contains("set by Postino"));
        assert!(form.more_options_open());
    }
}
