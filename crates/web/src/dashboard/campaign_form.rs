//! The campaign editor's form: its fields as typed, turned into the API's
//! [`CampaignBody`] so both are checked by the same rules, and the API's
//! field errors put back beside the fields they name.

use postino_db::campaigns::Campaign;
use postino_domain::{BodyFormat, EmailAddress};
use uuid::Uuid;

use crate::api::campaigns::CampaignBody;
use crate::error::{FieldError, WebError};

/// What a new campaign starts with, so the first preview already shows
/// something and the unsubscribe link sending needs is there from the start.
const STARTER_BODY: &str = "<h1>Hello {{ subscriber.name }}</h1>\n\
<p>Write your news here.</p>\n\
<p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p>";

/// The fields that show their own errors; others go above the form.
pub(crate) const FIELDS: [&str; 7] = [
    "name",
    "subject",
    "from_name",
    "from_email",
    "lists",
    "body",
    "preview_email",
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

    /// Whether list `id` is ticked.
    pub(crate) fn has_list(&self, id: &Uuid) -> bool {
        self.lists.contains(id)
    }

    fn fail(&mut self, field: &str, message: impl Into<String>) {
        if self.error(field).is_none() {
            self.errors.push((field.to_owned(), message.into()));
        }
    }

    /// The API's request body, or `None` with the problems this form can
    /// see before the API's checks (an address or format that does not
    /// parse) recorded.
    pub(crate) fn request(&mut self) -> Option<CampaignBody> {
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
        if !self.errors.is_empty() {
            return None;
        }
        Some(CampaignBody {
            name: Some(self.name.clone()),
            subject: Some(self.subject.clone()),
            from_name: Some(self.from_name.clone()),
            from_email,
            body: Some(self.body.clone()),
            body_format,
            lists: Some(self.lists.clone()),
            ..CampaignBody::default()
        })
    }

    /// Takes the field errors out of `e`, in words; any other error is
    /// handed back.
    pub(crate) fn absorb(&mut self, e: WebError) -> Result<(), WebError> {
        match e {
            WebError::Invalid(errors) => {
                for FieldError { field, message } in errors {
                    // `lists[2]` is the lists field.
                    let field = field.split('[').next().unwrap_or_default().to_owned();
                    let field = if field == "text_body" {
                        "body".to_owned()
                    } else {
                        field
                    };
                    self.fail(&field, message);
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
        form.absorb(WebError::invalid("lists[1]", "no list has id x"))
            .unwrap();
        assert_eq!(form.error("lists"), Some("no list has id x"));
        assert!(form.other_errors().is_empty());
    }
}
