//! The error every domain parser returns.

use std::fmt;

/// A value was refused by a domain parser.
///
/// It names *what* was wrong with the value but not where it came from: the
/// caller (an API handler, the CSV importer) knows the field or the line and
/// attaches it when it reports the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct DomainError {
    /// What kind of value was refused, for example "e-mail address".
    pub what: &'static str,
    /// Why, in words a user can act on.
    pub reason: String,
}

impl DomainError {
    pub(crate) fn new(what: &'static str, reason: impl Into<String>) -> Self {
        Self {
            what,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for DomainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.what, self.reason)
    }
}
