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

/// A `users` row as selected, before its values are checked.
pub(crate) struct UserRow {
    pub(crate) id: i64,
    pub(crate) uuid: Uuid,
    pub(crate) email: String,
    pub(crate) name: String,
    pub(crate) role: String,
    pub(crate) created_at: DateTime<Utc>,
}

impl TryFrom<UserRow> for User {
    type Error = DbError;
    fn try_from(row: UserRow) -> Result<Self, DbError> {
        Ok(User {
            id: row.id,
            uuid: row.uuid,
            email: EmailAddress::parse(&row.email)?,
            name: row.name,
            role: row.role.parse()?,
            created_at: row.created_at,
        })
    }
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
    UserRow {
        id: row.id,
        uuid: row.uuid,
        email: row.email,
        name: row.name,
        role: row.role,
        created_at: row.created_at,
    }
    .try_into()
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
    let record = login_record(conn, email).await?;
    Ok((record.user, record.password_hash))
}

/// What a login attempt needs to know about an account.
#[derive(Debug, Clone)]
pub struct LoginRecord {
    /// The account.
    pub user: User,
    /// Its password hash (a PHC string).
    pub password_hash: String,
}

/// The account with this login address, with its password hash.
///
/// # Errors
///
/// [`DbError::NotFound`] if no user has this address.
pub async fn login_record(
    conn: &mut PgConnection,
    email: &EmailAddress,
) -> Result<LoginRecord, DbError> {
    let row = sqlx::query!(
        r#"SELECT id, uuid, email, name, role, created_at, password_hash
           FROM users WHERE lower(email) = lower($1)"#,
        email.as_str(),
    )
    .fetch_one(conn)
    .await?;
    let user = UserRow {
        id: row.id,
        uuid: row.uuid,
        email: row.email,
        name: row.name,
        role: row.role,
        created_at: row.created_at,
    }
    .try_into()?;
    Ok(LoginRecord {
        user,
        password_hash: row.password_hash,
    })
}

/// Notes when user `id` signed in.
///
/// # Errors
///
/// [`DbError::Database`] if the update fails.
pub async fn record_successful_login(conn: &mut PgConnection, id: i64) -> Result<(), DbError> {
    sqlx::query!("UPDATE users SET last_login_at = now() WHERE id = $1", id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Replaces a user's password hash (a PHC string), ends their sessions and
/// forgets their known browsers: whoever knew the old password must not
/// stay signed in.
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
    .execute(&mut *conn)
    .await?;
    if result.rows_affected() == 0 {
        return Err(DbError::NotFound);
    }
    sqlx::query!("DELETE FROM sessions WHERE user_id = $1", id)
        .execute(&mut *conn)
        .await?;
    // Browsers that signed in with the old password no longer skip the
    // sign-in throttle.
    sqlx::query!("DELETE FROM login_devices WHERE user_id = $1", id)
        .execute(conn)
        .await?;
    Ok(())
}

/// A user as the admins' list shows them.
#[derive(Debug, Clone)]
pub struct UserListing {
    /// The account.
    pub user: User,
    /// When they last signed in; `None` if never.
    pub last_login_at: Option<DateTime<Utc>>,
}

/// Every user, admins first, then by name and address.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn all(conn: &mut PgConnection) -> Result<Vec<UserListing>, DbError> {
    let rows = sqlx::query!(
        r#"SELECT id, uuid, email, name, role, created_at, last_login_at FROM users
           ORDER BY role = 'admin' DESC, role = 'editor' DESC, lower(name), lower(email)"#
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|row| -> Result<UserListing, DbError> {
            Ok(UserListing {
                user: UserRow {
                    id: row.id,
                    uuid: row.uuid,
                    email: row.email,
                    name: row.name,
                    role: row.role,
                    created_at: row.created_at,
                }
                .try_into()?,
                last_login_at: row.last_login_at,
            })
        })
        .collect()
}

/// The user with public id `uuid`.
///
/// # Errors
///
/// [`DbError::NotFound`] if there is none.
pub async fn get(conn: &mut PgConnection, uuid: Uuid) -> Result<User, DbError> {
    let row = sqlx::query!(
        "SELECT id, uuid, email, name, role, created_at FROM users WHERE uuid = $1",
        uuid
    )
    .fetch_one(conn)
    .await?;
    UserRow {
        id: row.id,
        uuid: row.uuid,
        email: row.email,
        name: row.name,
        role: row.role,
        created_at: row.created_at,
    }
    .try_into()
}

/// Whether a change that could remove an admin was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminGuard {
    /// Done.
    Done,
    /// Refused: it would leave no admin, and nobody could manage users,
    /// tokens or sending settings any more.
    LastAdmin,
}

/// Locks every admin's row and says whether user `id` is the only admin.
/// Locking them all makes two admins who demote each other at the same
/// moment take turns, so the second sees the first's change.
async fn is_last_admin(conn: &mut PgConnection, id: i64) -> Result<bool, DbError> {
    let admins = sqlx::query_scalar!("SELECT id FROM users WHERE role = 'admin' FOR UPDATE")
        .fetch_all(conn)
        .await?;
    Ok(admins == [id])
}

/// Gives user `id` a new role, ends their sessions, so they sign in again
/// under it, and narrows their API tokens to what the role allows. Refuses
/// to demote the last admin.
///
/// # Errors
///
/// [`DbError::NotFound`] if there is no such user.
pub async fn set_role(conn: &mut PgConnection, id: i64, role: Role) -> Result<AdminGuard, DbError> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    if role != Role::Admin && is_last_admin(&mut tx, id).await? {
        return Ok(AdminGuard::LastAdmin);
    }
    let result = sqlx::query!(
        "UPDATE users SET role = $2, updated_at = now() WHERE id = $1 AND role <> $2",
        id,
        role.as_str()
    )
    .execute(&mut *tx)
    .await?;
    if result.rows_affected() == 0 {
        // Unchanged: sessions stay, unless there is no such user.
        let exists = sqlx::query_scalar!("SELECT count(*) FROM users WHERE id = $1", id)
            .fetch_one(&mut *tx)
            .await?;
        if exists == Some(0) {
            return Err(DbError::NotFound);
        }
        return Ok(AdminGuard::Done);
    }
    sqlx::query!("DELETE FROM sessions WHERE user_id = $1", id)
        .execute(&mut *tx)
        .await?;
    crate::api_tokens::narrow_to_role(&mut tx, id, role).await?;
    tx.commit().await?;
    Ok(AdminGuard::Done)
}

/// Deletes user `id`; their sessions and API tokens go with them. Refuses to delete the
/// last admin.
///
/// # Errors
///
/// [`DbError::NotFound`] if there is no such user.
pub async fn delete(conn: &mut PgConnection, id: i64) -> Result<AdminGuard, DbError> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    if is_last_admin(&mut tx, id).await? {
        return Ok(AdminGuard::LastAdmin);
    }
    let result = sqlx::query!("DELETE FROM users WHERE id = $1", id)
        .execute(&mut *tx)
        .await?;
    if result.rows_affected() == 0 {
        return Err(DbError::NotFound);
    }
    tx.commit().await?;
    Ok(AdminGuard::Done)
}
