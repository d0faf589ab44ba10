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

/// What an API token may do. Every token carries one scope, and never more
/// than its owner's [`Role`] allows ([`ApiScope::ceiling`]), checked on
/// every request against the owner's role at that moment.
///
/// Reading is open to every scope except in the admin area (tokens, SMTP
/// servers, sending limits, DKIM keys), which is admin-only as the
/// dashboard's settings are. Changing needs the scope of the area:
///
/// | scope | reads | changes |
/// |---|---|---|
/// | `read` | lists, subscribers, imports, templates, campaigns | nothing |
/// | `subscribers` | the same | lists, subscribers, imports |
/// | `campaigns` | the same | templates, campaigns, their deliveries |
/// | `write` | the same | both of the above: what an editor does |
/// | `admin` | everything | everything |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ApiScope {
    /// Reads everything outside the admin area, changes nothing.
    Read,
    /// Also changes lists, subscribers and imports.
    Subscribers,
    /// Also changes templates, campaigns and their deliveries.
    Campaigns,
    /// Both `subscribers` and `campaigns`: what an editor may do.
    Write,
    /// Everything, including tokens and sending settings.
    Admin,
}

text_enum!(ApiScope, "scope", {
    Read => "read",
    Subscribers => "subscribers",
    Campaigns => "campaigns",
    Write => "write",
    Admin => "admin",
});

/// The part of the API a route belongs to, for [`ApiScope::permits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiArea {
    /// Lists, subscribers, imports and exports.
    Subscribers,
    /// Templates, campaigns and their deliveries.
    Campaigns,
    /// Tokens, SMTP servers, sending limits, DKIM keys.
    Admin,
}

impl ApiScope {
    /// Every scope, weakest first.
    pub const ALL: [ApiScope; 5] = [
        ApiScope::Read,
        ApiScope::Subscribers,
        ApiScope::Campaigns,
        ApiScope::Write,
        ApiScope::Admin,
    ];

    /// The widest scope a user with `role` may hold: a viewer's tokens only
    /// read, an editor's do what an editor does, an admin's anything.
    #[must_use]
    pub fn ceiling(role: Role) -> ApiScope {
        match role {
            Role::Viewer => ApiScope::Read,
            Role::Editor => ApiScope::Write,
            Role::Admin => ApiScope::Admin,
        }
    }

    /// Whether this scope allows everything `other` allows. Not a total
    /// order: `subscribers` and `campaigns` cover different areas.
    #[must_use]
    pub fn covers(self, other: ApiScope) -> bool {
        use ApiScope::{Admin, Campaigns, Read, Subscribers, Write};
        match (self, other) {
            (Admin, _) | (_, Read) => true,
            (Write, Subscribers | Campaigns | Write) => true,
            (a, b) => a == b,
        }
    }

    /// The widest scope both allow: what a token of scope `self` may still
    /// do when its owner's role allows only `limit`.
    #[must_use]
    pub fn within(self, limit: ApiScope) -> ApiScope {
        if limit.covers(self) {
            self
        } else if self.covers(limit) {
            limit
        } else {
            // Only `subscribers` against `campaigns`: they share reading.
            ApiScope::Read
        }
    }

    /// Whether a request to `area` may be made with this scope; `changing`
    /// is any method but GET and HEAD.
    #[must_use]
    pub fn permits(self, area: ApiArea, changing: bool) -> bool {
        match area {
            ApiArea::Admin => self == ApiScope::Admin,
            _ if !changing => true,
            ApiArea::Subscribers => self.covers(ApiScope::Subscribers),
            ApiArea::Campaigns => self.covers(ApiScope::Campaigns),
        }
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
    fn a_scope_covers_itself_and_the_scopes_below_it_only() {
        use ApiScope::{Admin, Campaigns, Read, Subscribers, Write};
        for s in ApiScope::ALL {
            assert!(s.covers(s) && s.covers(Read) && Admin.covers(s));
        }
        assert!(Write.covers(Subscribers) && Write.covers(Campaigns));
        assert!(!Subscribers.covers(Campaigns) && !Campaigns.covers(Subscribers));
        assert!(!Write.covers(Admin) && !Read.covers(Subscribers));
    }

    #[test]
    fn a_token_never_does_more_than_its_owner_role_allows() {
        for scope in ApiScope::ALL {
            for role in [Role::Viewer, Role::Editor, Role::Admin] {
                let ceiling = ApiScope::ceiling(role);
                let left = scope.within(ceiling);
                assert!(
                    ceiling.covers(left) && scope.covers(left),
                    "{scope} as {role}"
                );
            }
        }
        assert_eq!(ApiScope::Admin.within(ApiScope::Read), ApiScope::Read);
        assert_eq!(ApiScope::Admin.within(ApiScope::Write), ApiScope::Write);
        assert_eq!(
            ApiScope::Campaigns.within(ApiScope::Write),
            ApiScope::Campaigns
        );
        assert_eq!(
            ApiScope::Campaigns.within(ApiScope::Subscribers),
            ApiScope::Read
        );
    }

    #[test]
    fn only_admin_reaches_the_admin_area_and_read_changes_nothing() {
        use ApiArea::{Admin as AdminArea, Campaigns as CampaignArea, Subscribers as SubArea};
        for scope in ApiScope::ALL {
            assert_eq!(scope.permits(AdminArea, false), scope == ApiScope::Admin);
            assert!(scope.permits(SubArea, false) && scope.permits(CampaignArea, false));
        }
        assert!(!ApiScope::Read.permits(SubArea, true));
        assert!(!ApiScope::Read.permits(CampaignArea, true));
        assert!(ApiScope::Subscribers.permits(SubArea, true));
        assert!(!ApiScope::Subscribers.permits(CampaignArea, true));
        assert!(ApiScope::Campaigns.permits(CampaignArea, true));
        assert!(
            ApiScope::Write.permits(SubArea, true) && !ApiScope::Write.permits(AdminArea, true)
        );
    }

    #[test]
    fn passwords_never_show_in_debug_output() {
        let password = Password::parse("correct horse battery").unwrap();
        assert!(!format!("{password:?}").contains("horse"));
        assert!(Password::parse("short").is_err());
    }
}
