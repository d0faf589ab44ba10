//! [`DbError`]: what a repository function can fail with.

use postino_domain::DomainError;

/// PostgreSQL's code for a unique-constraint violation.
const UNIQUE_VIOLATION: &str = "23505";
/// PostgreSQL's code for a foreign-key violation.
const FOREIGN_KEY_VIOLATION: &str = "23503";

/// A repository function failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The row asked for does not exist.
    #[error("not found")]
    NotFound,
    /// The change would break a unique constraint, named here.
    #[error("conflicts with existing data ({constraint})")]
    Conflict {
        /// The violated constraint or index, e.g. `subscribers_email_key`.
        constraint: String,
    },
    /// A row refers to another that does not exist.
    #[error("refers to something that does not exist ({constraint})")]
    MissingReference {
        /// The violated foreign key.
        constraint: String,
    },
    /// A stored value no longer passes the domain's rules.
    #[error("stored data is invalid")]
    Corrupt(#[from] DomainError),
    /// Anything else: the database is unreachable, a query failed.
    #[error(transparent)]
    Database(sqlx::Error),
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::RowNotFound = e {
            return DbError::NotFound;
        }
        if let sqlx::Error::Database(db) = &e {
            let constraint = db.constraint().unwrap_or_default().to_owned();
            match db.code().as_deref() {
                Some(UNIQUE_VIOLATION) => return DbError::Conflict { constraint },
                Some(FOREIGN_KEY_VIOLATION) => return DbError::MissingReference { constraint },
                _ => {}
            }
        }
        DbError::Database(e)
    }
}
