//! The subscriber search form: its fields as typed, turned into the API's
//! filter (so the table, the CSV export and `/api/v1/subscribers` select the
//! same people), and the query strings its links carry.

use chrono::{Days, NaiveDate, NaiveTime};
use postino_db::PgConnection;
use postino_db::subscribers::SubscriberFilter;
use postino_domain::{Cursor, MembershipStatus, SubscriberStatus};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use postino_service::Error;
use postino_service::subscribers::{Conditions, filter};

/// The search form's fields as typed; every one may be empty.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct SearchForm {
    /// Text the address contains.
    #[serde(default)]
    pub(crate) email: String,
    /// A list's id.
    #[serde(default)]
    pub(crate) list: String,
    #[serde(default)]
    pub(crate) list_status: String,
    #[serde(default)]
    pub(crate) status: String,
    /// A JSON object the attributes must contain.
    #[serde(default)]
    pub(crate) attributes: String,
    /// `YYYY-MM-DD`, from a date input.
    #[serde(default)]
    pub(crate) created_from: String,
    /// `YYYY-MM-DD`, inclusive.
    #[serde(default)]
    pub(crate) created_to: String,
    /// The cursor of the page to show after.
    #[serde(default)]
    pub(crate) after: String,
    /// The cursor of the page to show before.
    #[serde(default)]
    pub(crate) before: String,
    #[serde(skip)]
    errors: Vec<(&'static str, String)>,
}

/// Where a page of results starts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Start {
    First,
    After(Cursor),
    Before(Cursor),
}

impl SearchForm {
    /// What is wrong with `field`, if anything.
    pub(crate) fn error(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }

    pub(crate) fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// Every problem, in words that name the field.
    pub(crate) fn problems(&self) -> Vec<String> {
        self.errors
            .iter()
            .map(|(field, message)| {
                let label = match *field {
                    "email" => "E-mail address",
                    "list" => "List",
                    "list_status" => "Status on that list",
                    "status" => "Subscriber status",
                    "attributes" => "Attributes",
                    "created_from" => "Added from",
                    _ => "Added until",
                };
                format!("{label}: {message}")
            })
            .collect()
    }

    /// Whether any condition is set (the page then says "no matches"
    /// rather than "no subscribers yet").
    pub(crate) fn is_filtered(&self) -> bool {
        [
            &self.email,
            &self.list,
            &self.list_status,
            &self.status,
            &self.attributes,
            &self.created_from,
            &self.created_to,
        ]
        .iter()
        .any(|v| !v.trim().is_empty())
    }

    /// Whether a condition under "More filters" is set, so it opens.
    pub(crate) fn has_more_filters(&self) -> bool {
        [&self.attributes, &self.created_from, &self.created_to]
            .iter()
            .any(|v| !v.trim().is_empty())
    }

    /// The page asked for; a cursor that does not decode (an old or
    /// hand-edited link) starts from the top.
    pub(crate) fn start(&self) -> Start {
        if let Ok(c) = Cursor::decode(&self.before) {
            Start::Before(c)
        } else if let Ok(c) = Cursor::decode(&self.after) {
            Start::After(c)
        } else {
            Start::First
        }
    }

    /// The conditions as query parameters, without the page position and
    /// without empty fields: `email=reader&status=enabled`.
    pub(crate) fn query(&self) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (key, value) in [
            ("email", &self.email),
            ("list", &self.list),
            ("list_status", &self.list_status),
            ("status", &self.status),
            ("attributes", &self.attributes),
            ("created_from", &self.created_from),
            ("created_to", &self.created_to),
        ] {
            if !value.trim().is_empty() {
                out.append_pair(key, value.trim());
            }
        }
        out.finish()
    }

    /// `/subscribers` with these conditions and, if given, a page position.
    pub(crate) fn href(&self, position: Option<(&str, Cursor)>) -> String {
        let mut query = self.query();
        if let Some((key, cursor)) = position {
            if !query.is_empty() {
                query.push('&');
            }
            query.push_str(key);
            query.push('=');
            query.push_str(&cursor.encode());
        }
        if query.is_empty() {
            "/subscribers".to_owned()
        } else {
            format!("/subscribers?{query}")
        }
    }

    /// The same conditions for the CSV export.
    pub(crate) fn export_href(&self) -> String {
        let query = self.query();
        if query.is_empty() {
            "/subscribers/export.csv".to_owned()
        } else {
            format!("/subscribers/export.csv?{query}")
        }
    }

    /// The filter for these conditions, checked by the same use case as
    /// the API's; `Err` carries the form back with every problem named.
    pub(crate) async fn resolve(
        mut self,
        conn: &mut PgConnection,
    ) -> Result<(Self, SubscriberFilter), Box<Self>> {
        let body = match self.body() {
            Ok(body) => body,
            Err(errors) => {
                self.errors = errors;
                return Err(Box::new(self));
            }
        };
        match filter(conn, "", body).await {
            Ok(filter) => Ok((self, filter)),
            Err(Error::Invalid(errors)) => {
                self.errors = errors
                    .into_iter()
                    .map(|e| match e.field.as_str() {
                        "list" => ("list", "That list no longer exists.".to_owned()),
                        "list_status" => ("list_status", "Choose a list as well.".to_owned()),
                        "attributes" => ("attributes", attributes_hint()),
                        _ => ("email", format!("The search text {}.", e.message)),
                    })
                    .collect();
                Err(Box::new(self))
            }
            // Anything else is the database failing; the page shows the
            // form with a general message rather than losing what was typed.
            Err(_) => {
                self.errors = vec![(
                    "email",
                    "The search could not run just now. Try again in a moment.".to_owned(),
                )];
                Err(Box::new(self))
            }
        }
    }

    /// The fields as search conditions, or what is wrong with them.
    fn body(&self) -> Result<Conditions, Vec<(&'static str, String)>> {
        let mut errors = Vec::new();
        let trimmed = |v: &str| Some(v.trim().to_owned()).filter(|v| !v.is_empty());
        let list = trimmed(&self.list).and_then(|raw| match Uuid::parse_str(&raw) {
            Ok(id) => Some(id),
            Err(_) => {
                errors.push(("list", "Choose a list from the menu.".to_owned()));
                None
            }
        });
        let list_status =
            trimmed(&self.list_status).and_then(|raw| match raw.parse::<MembershipStatus>() {
                Ok(s) => Some(s),
                Err(_) => {
                    errors.push(("list_status", "Choose a status from the menu.".to_owned()));
                    None
                }
            });
        if list_status.is_some() && list.is_none() && self.list.trim().is_empty() {
            errors.push((
                "list_status",
                "Choose a list as well: this is the status on that list.".to_owned(),
            ));
        }
        let status = trimmed(&self.status).and_then(|raw| match raw.parse::<SubscriberStatus>() {
            Ok(s) => Some(s),
            Err(_) => {
                errors.push(("status", "Choose a status from the menu.".to_owned()));
                None
            }
        });
        let attributes =
            trimmed(&self.attributes).and_then(|raw| match serde_json::from_str::<Value>(&raw) {
                Ok(v) if v.is_object() => Some(v),
                _ => {
                    errors.push(("attributes", attributes_hint()));
                    None
                }
            });
        let mut day = |field: &'static str, raw: &str| {
            trimmed(raw).and_then(|raw| match NaiveDate::parse_from_str(&raw, "%Y-%m-%d") {
                Ok(d) => Some(d),
                Err(_) => {
                    errors.push((field, "Enter a date such as 2026-03-31.".to_owned()));
                    None
                }
            })
        };
        let from = day("created_from", &self.created_from);
        let to = day("created_to", &self.created_to);
        let midnight = |d: NaiveDate| d.and_time(NaiveTime::MIN).and_utc();
        let body = Conditions {
            list,
            list_status,
            status,
            email: trimmed(&self.email),
            attributes,
            created_after: from.map(midnight),
            // The "to" day is included: up to the midnight that ends it.
            created_before: to
                .and_then(|d| d.checked_add_days(Days::new(1)))
                .map(midnight),
        };
        if errors.is_empty() {
            Ok(body)
        } else {
            Err(errors)
        }
    }
}

fn attributes_hint() -> String {
    "Write a JSON object, such as {\"city\": \"Rome\"}.".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> SearchForm {
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        serde_urlencoded::from_str(&query).unwrap()
    }

    #[test]
    fn links_carry_only_the_conditions_that_are_set() {
        let f = form(&[("email", " reader "), ("list", ""), ("status", "enabled")]);
        assert_eq!(f.query(), "email=reader&status=enabled");
        assert_eq!(
            f.href(Some(("after", Cursor::after(7)))),
            format!(
                "/subscribers?email=reader&status=enabled&after={}",
                Cursor::after(7).encode()
            )
        );
        assert_eq!(form(&[]).href(None), "/subscribers");
        assert!(f.is_filtered());
        assert!(!form(&[("list", " ")]).is_filtered());
    }

    #[test]
    fn the_last_day_of_a_date_range_is_included() {
        let body = form(&[("created_from", "2026-03-01"), ("created_to", "2026-03-31")])
            .body()
            .unwrap();
        assert_eq!(
            body.created_after.unwrap().to_rfc3339(),
            "2026-03-01T00:00:00+00:00"
        );
        assert_eq!(
            body.created_before.unwrap().to_rfc3339(),
            "2026-04-01T00:00:00+00:00"
        );
    }

    #[test]
    fn each_bad_field_is_named() {
        let errors = form(&[
            ("list_status", "confirmed"),
            ("attributes", "[1]"),
            ("created_to", "31/03/2026"),
        ])
        .body()
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, ["list_status", "attributes", "created_to"]);
    }

    #[test]
    fn a_cursor_that_does_not_decode_starts_from_the_top() {
        assert!(matches!(form(&[("after", "junk")]).start(), Start::First));
        let before = Cursor::after(9).encode();
        assert!(matches!(
            form(&[("before", &before)]).start(),
            Start::Before(c) if c.key() == 9
        ));
    }
}
