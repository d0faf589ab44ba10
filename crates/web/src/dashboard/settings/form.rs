//! What the settings forms share: problems named per field, and numbers
//! read from text boxes with a message a person understands.

use std::str::FromStr;

use crate::dashboard::page::PageError;
use crate::error::WebError;

/// What is wrong with a form, field by field.
#[derive(Debug, Clone, Default)]
pub(crate) struct Errors(Vec<(String, String)>);

impl Errors {
    /// What is wrong with `field`, if anything.
    pub(crate) fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }

    /// Notes a problem with `field`; the first one per field is kept.
    pub(crate) fn add(&mut self, field: &str, message: impl Into<String>) {
        if self.get(field).is_none() {
            self.0.push((field.to_owned(), message.into()));
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The field problems in an API error, with the API's field names
    /// turned into the form's by `rename`; any other error is passed on.
    pub(crate) fn from_web(e: WebError, rename: impl Fn(&str) -> &str) -> Result<Self, PageError> {
        let mut errors = Self::default();
        match e {
            WebError::Invalid(fields) => {
                for f in fields {
                    errors.add(rename(&f.field), f.message);
                }
            }
            WebError::Conflict { field, message } if !field.is_empty() => {
                errors.add(rename(&field), message);
            }
            other => return Err(other.into()),
        }
        Ok(errors)
    }
}

/// A whole number typed into `field`; blank or not a number is noted.
pub(crate) fn whole<T: FromStr>(errors: &mut Errors, field: &str, raw: &str) -> Option<T> {
    match raw.trim().parse() {
        Ok(n) => Some(n),
        Err(_) => {
            errors.add(field, "enter a whole number");
            None
        }
    }
}

/// An optional whole number: blank means none.
pub(crate) fn optional_whole<T: FromStr>(
    errors: &mut Errors,
    field: &str,
    raw: &str,
) -> Option<Option<T>> {
    if raw.trim().is_empty() {
        Some(None)
    } else {
        whole(errors, field, raw).map(Some)
    }
}

/// An optional rate such as `12.5`: blank means none.
pub(crate) fn optional_rate(errors: &mut Errors, field: &str, raw: &str) -> Option<Option<f64>> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Some(None);
    }
    match raw.parse::<f64>() {
        Ok(n) if n.is_finite() => Some(Some(n)),
        _ => {
            errors.add(field, "enter a number, such as 10 or 2.5");
            None
        }
    }
}

/// A rate as people read it: `10`, `2.5`.
pub(crate) fn rate_text(rate: f64) -> String {
    let text = format!("{rate:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_without_trailing_zeros() {
        assert_eq!(rate_text(10.0), "10");
        assert_eq!(rate_text(2.5), "2.5");
    }

    #[test]
    fn only_the_first_problem_per_field_is_kept() {
        let mut errors = Errors::default();
        errors.add("port", "first");
        errors.add("port", "second");
        assert_eq!(errors.get("port"), Some("first"));
        assert_eq!(errors.get("host"), None);
    }
}
