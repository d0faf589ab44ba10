//! Mailing lists: names, opt-in and visibility, tags.

use serde::{Deserialize, Serialize};

use crate::DomainError;
use crate::text::short_text;

/// A list's name, 1 to 200 characters of one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ListName(String);

impl ListName {
    /// # Errors
    ///
    /// Refuses an empty or overlong name, or one with line breaks.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        short_text(raw, "list name", 1, 200).map(Self)
    }

    /// The name as stored.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ListName {
    type Error = DomainError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<ListName> for String {
    fn from(name: ListName) -> Self {
        name.0
    }
}

/// A list's description: free text up to 2,000 characters, line breaks allowed.
///
/// # Errors
///
/// Refuses overlong text and control characters other than line breaks and tabs.
pub fn parse_description(raw: &str) -> Result<String, DomainError> {
    let trimmed = raw.trim();
    if trimmed.chars().count() > 2000 {
        return Err(DomainError::new(
            "description",
            "must be at most 2000 characters",
        ));
    }
    if trimmed
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(DomainError::new(
            "description",
            "must not contain control characters",
        ));
    }
    Ok(trimmed.to_owned())
}

/// How a new membership becomes confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OptIn {
    /// Members are confirmed when added.
    #[default]
    Single,
    /// Members arrive unconfirmed and are mailed only once they confirm.
    Double,
}

/// Whether a list is offered on public sign-up pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ListVisibility {
    /// Only the team can add people.
    #[default]
    Private,
    /// Anyone may subscribe through a public form.
    Public,
}

macro_rules! text_enum {
    ($ty:ty, $what:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            /// The value as stored in the database and shown in the API.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }

        impl std::str::FromStr for $ty {
            type Err = DomainError;
            fn from_str(raw: &str) -> Result<Self, Self::Err> {
                match raw {
                    $($text => Ok(Self::$variant),)+
                    other => Err(DomainError::new(
                        $what,
                        format!(
                            "{} is not one of: {}",
                            $crate::text::excerpt(other),
                            [$($text),+].join(", ")
                        ),
                    )),
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use text_enum;

text_enum!(OptIn, "opt-in", { Single => "single", Double => "double" });
text_enum!(ListVisibility, "visibility", { Private => "private", Public => "public" });

/// Up to 20 distinct tags of 1 to 50 characters, kept in the order given.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct Tags(Vec<String>);

impl Tags {
    /// # Errors
    ///
    /// Refuses more than 20 tags, or a tag that is empty, too long or multi-line.
    pub fn parse<S: AsRef<str>>(raw: &[S]) -> Result<Self, DomainError> {
        if raw.len() > 20 {
            return Err(DomainError::new("tags", "at most 20 tags are allowed"));
        }
        let mut tags: Vec<String> = Vec::with_capacity(raw.len());
        for tag in raw {
            let tag = short_text(tag.as_ref(), "tag", 1, 50)?;
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
        Ok(Self(tags))
    }

    /// The tags in order.
    #[must_use]
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

impl TryFrom<Vec<String>> for Tags {
    type Error = DomainError;
    fn try_from(raw: Vec<String>) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<Tags> for Vec<String> {
    fn from(tags: Tags) -> Self {
        tags.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_names_are_trimmed_and_must_be_one_line() {
        assert_eq!(ListName::parse("  News ").unwrap().as_str(), "News");
        assert!(ListName::parse("   ").is_err());
        assert!(ListName::parse("a\nb").is_err());
        assert!(ListName::parse(&"x".repeat(201)).is_err());
    }

    #[test]
    fn duplicate_tags_are_collapsed_and_bad_ones_refused() {
        assert_eq!(
            Tags::parse(&["a", "b", "a"]).unwrap().as_slice(),
            ["a", "b"]
        );
        assert!(Tags::parse(&[""]).is_err());
        assert!(Tags::parse(&vec!["t"; 21]).is_err());
    }

    #[test]
    fn enums_round_trip_through_their_text() {
        for opt in [OptIn::Single, OptIn::Double] {
            assert_eq!(opt.as_str().parse::<OptIn>().unwrap(), opt);
        }
        let err = "triple".parse::<OptIn>().unwrap_err();
        assert!(err.reason.contains("single, double"));
    }

    #[test]
    fn descriptions_keep_line_breaks_but_not_other_controls() {
        assert_eq!(parse_description(" a\nb ").unwrap(), "a\nb");
        assert!(parse_description("a\u{7}b").is_err());
    }
}
