//! Dashboard users, their roles and passwords, and API token names.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::DomainError;
use crate::lists::text_enum;
use crate::text::short_text;

/// What a dashboard user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads everything, changes nothing.
    Viewer,
    /// Manages lists, subscribers and campaigns.
    Editor,
    /// Everything, including users, tokens and sending settings.
    Admin,
}

text_enum!(Role, "role", { Viewer => "viewer", Editor => "editor", Admin => "admin" });

impl Role {
    /// Whether this role includes everything `needed` allows.
    #[must_use]
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

/// A password as typed by a user, before hashing. Its `Debug` never shows it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Passwords are 10 to 1,024 characters: long enough to resist guessing,
    /// short enough that hashing cannot be used to exhaust the server.
    ///
    /// # Errors
    ///
    /// Refuses passwords outside those bounds.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let len = raw.chars().count();
        if len < 10 {
            return Err(DomainError::new(
                "password",
                "must be at least 10 characters",
            ));
        }
        if len > 1024 {
            return Err(DomainError::new(
                "password",
                "must be at most 1024 characters",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The password, for the hashing function only.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A label for an API token, so people can tell their tokens apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TokenName(String);

impl TokenName {
    /// # Errors
    ///
    /// Refuses empty, overlong or multi-line names.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        short_text(raw, "token name", 1, 100).map(Self)
    }

    /// The name as stored.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TokenName {
    type Error = DomainError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<TokenName> for String {
    fn from(name: TokenName) -> Self {
        name.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_by_power() {
        assert!(Role::Admin.allows(Role::Editor));
        assert!(Role::Editor.allows(Role::Viewer));
        assert!(!Role::Viewer.allows(Role::Editor));
    }

    #[test]
    fn passwords_never_show_in_debug_output() {
        let password = Password::parse("correct horse battery").unwrap();
        assert!(!format!("{password:?}").contains("horse"));
        assert!(Password::parse("short").is_err());
    }
}
