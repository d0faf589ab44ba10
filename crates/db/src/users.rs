//! Dashboard users.

use chrono::{DateTime, Utc};
use postino_domain::{EmailAddress, Role};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::DbError;

/// A dashboard user. The password hash is not part of it: only
/// [`password_hash_for`] reads it, at login.
#[derive(Debug, Clone)]
pub struct User {
    /// Internal key.
    pub id: i64,
    /// Public id.
    pub uuid: Uuid,
    /// Login address.
    pub email: EmailAddress,
    /// Display name.
    pub name: String,
    /// What they may do.
    pub role: Role,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
}

/// Creates a user with an already-hashed password (a PHC string).
///
/// # Errors
///
/// [`DbError::Conflict`] on `users_email_key` if the address is taken.
pub async fn create(
    conn: &mut PgConnection,
    email: &EmailAddress,
    name: &str,
    password_hash: &str,
    role: Role,
) -> Result<User, DbError> {
    let row = sqlx::query!(
        r#"INSERT INTO users (uuid, email, name, password_hash, role)
           VALUES ($1, $2, $3, $4, $5)
           RETURNING id, uuid, email, name, role, created_at"#,
        Uuid::now_v7(),
        email.as_str(),
        name,
        password_hash,
        role.as_str(),
    )
    .fetch_one(conn)
    .await?;
    Ok(User {
        id: row.id,
        uuid: row.uuid,
        email: EmailAddress::parse(&row.email)?,
        name: row.name,
        role: row.role.parse()?,
        created_at: row.created_at,
    })
}

/// The user with this login address and their password hash, for login.
///
/// # Errors
///
/// [`DbError::NotFound`] if no user has this address.
pub async fn password_hash_for(
    conn: &mut PgConnection,
    email: &EmailAddress,
) -> Result<(User, String), DbError> {
    let row = sqlx::query!(
        r#"SELECT id, uuid, email, name, role, created_at, password_hash
           FROM users WHERE lower(email) = lower($1)"#,
        email.as_str(),
    )
    .fetch_one(conn)
    .await?;
    let user = User {
        id: row.id,
        uuid: row.uuid,
        email: EmailAddress::parse(&row.email)?,
        name: row.name,
        role: row.role.parse()?,
        created_at: row.created_at,
    };
    Ok((user, row.password_hash))
}

/// Replaces a user's password hash (a PHC string).
///
/// # Errors
///
/// [`DbError::NotFound`] if there is no such user.
pub async fn set_password_hash(
    conn: &mut PgConnection,
    id: i64,
    password_hash: &str,
) -> Result<(), DbError> {
    let result = sqlx::query!(
        "UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1",
        id,
        password_hash
    )
    .execute(conn)
    .await?;
    if result.rows_affected() == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}
