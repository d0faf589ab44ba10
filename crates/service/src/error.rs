//! [`Error`]: every way a use case can fail, in the service's own words.
//! Each HTTP surface turns it into its own kind of answer (problem JSON for
//! the API, an HTML page or a form message for the dashboard).

use postino_db::DbError;

/// A problem with one field of the input.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// Where the problem is: a path such as `email` or `lists[2]`.
    pub field: String,
    /// What is wrong, in words a person can act on.
    pub message: String,
}

impl FieldError {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A use case failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is well-formed but has invalid values; names each field.
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// The thing addressed does not exist; names what was looked for.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The change clashes with existing data or the current state.
    #[error("conflict on {field}: {message}")]
    Conflict {
        /// The field whose value clashes; empty when no one field does.
        field: String,
        /// What clashes.
        message: String,
    },
    /// The database cannot be reached right now.
    #[error("service unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// A bug or an unexpected failure; details are for the log only.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// What use cases return.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// One invalid field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError::new(field, message)])
    }

    /// A conflict with the current state, naming `field`.
    pub fn conflict(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Conflict {
            field: field.into(),
            message: message.into(),
        }
    }

    /// An unexpected failure.
    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(e))
    }

    /// Maps a lookup's [`DbError::NotFound`] to "no such `what`", and any
    /// other failure as usual: `.map_err(Error::not_found("campaign"))`.
    pub fn not_found(what: &'static str) -> impl Fn(DbError) -> Self {
        move |e| match e {
            DbError::NotFound => Self::NotFound(what),
            other => other.into(),
        }
    }
}

/// Which field a unique constraint guards, and what to say when a change
/// breaks it.
fn constraint_field(constraint: &str) -> (&'static str, &'static str) {
    match constraint {
        "subscribers_email_key" | "users_email_key" => {
            ("email", "another record already has this e-mail address")
        }
        "smtp_servers_name_key" => ("name", "another SMTP server has this name"),
        "dkim_keys_domain_selector_key" => (
            "selector",
            "this domain already has a key with this selector; pick another selector",
        ),
        _ => ("", "this conflicts with existing data"),
    }
}

impl From<DbError> for Error {
    fn from(e: DbError) -> Self {
        match e {
            DbError::NotFound => Error::NotFound("resource"),
            DbError::Conflict { constraint } => {
                let (field, message) = constraint_field(&constraint);
                Error::conflict(field, message)
            }
            DbError::Database(e) if is_unavailable(&e) => Error::Unavailable(e),
            other => Error::internal(other),
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        DbError::from(e).into()
    }
}

fn is_unavailable(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed
    )
}

/// A sandboxed compile or render that failed: the template's fault is the
/// user's to fix (invalid), a sandbox that cannot run is ours (internal).
impl From<postino_sandbox::Error> for Error {
    fn from(e: postino_sandbox::Error) -> Self {
        match e {
            postino_sandbox::Error::Template(t) => t.into(),
            e @ postino_sandbox::Error::Unavailable(_) => Error::internal(e),
        }
    }
}

impl From<postino_compose::TemplateError> for Error {
    fn from(e: postino_compose::TemplateError) -> Self {
        let postino_compose::TemplateError {
            field,
            line,
            reason,
        } = e;
        let line = line.map(|l| format!("line {l}: ")).unwrap_or_default();
        Error::invalid(field, line + &reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unique_constraint_names_its_field() {
        let e = Error::from(DbError::Conflict {
            constraint: "smtp_servers_name_key".to_owned(),
        });
        assert!(
            matches!(e, Error::Conflict { ref field, .. } if field == "name"),
            "{e:?}"
        );
    }

    #[test]
    fn not_found_names_what_was_looked_for() {
        let e = Error::not_found("campaign")(DbError::NotFound);
        assert!(matches!(e, Error::NotFound("campaign")), "{e:?}");
    }
}
