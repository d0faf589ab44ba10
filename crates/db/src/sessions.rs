//! Dashboard sessions: generated here, handed out once as a cookie, stored
//! as SHA-256 hashes with an expiry and the session's CSRF token.

use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;

use crate::DbError;
use crate::users::{User, UserRow};

/// A session's secret as put in its cookie. `Debug` hides it.
pub struct SessionSecret(String);

impl SessionSecret {
    /// The secret, for the `Set-Cookie` header only.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SessionSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionSecret(<redacted>)")
    }
}

/// A live session: whose it is and the token its requests must echo.
#[derive(Debug, Clone)]
pub struct Session {
    /// The signed-in user, as the database has them now (a role changed by
    /// an admin applies on the next request).
    pub user: User,
    /// The CSRF token of this session.
    pub csrf_token: String,
    /// When the session ends.
    pub expires_at: DateTime<Utc>,
}

/// 32 random bytes, hex-encoded: unguessable, and safe in a cookie or a form.
#[must_use]
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Starts a session for `user_id` lasting `ttl`; returns its secret, which
/// exists only in this return value, and the session as stored.
///
/// # Errors
///
/// [`DbError::Database`] if the insert fails.
pub async fn create(
    conn: &mut PgConnection,
    user_id: i64,
    ttl: Duration,
) -> Result<(SessionSecret, DateTime<Utc>), DbError> {
    let secret = random_token();
    let expires_at = Utc::now() + ttl;
    sqlx::query!(
        "INSERT INTO sessions (id_hash, user_id, csrf_token, expires_at) VALUES ($1, $2, $3, $4)",
        hash(&secret),
        user_id,
        random_token(),
        expires_at,
    )
    .execute(conn)
    .await?;
    Ok((SessionSecret(secret), expires_at))
}

/// The live session whose cookie holds `secret`, if there is one.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn find(conn: &mut PgConnection, secret: &str) -> Result<Option<Session>, DbError> {
    let row = sqlx::query!(
        r#"SELECT u.id, u.uuid, u.email, u.name, u.role, u.created_at,
                  s.csrf_token, s.expires_at
           FROM sessions s JOIN users u ON u.id = s.user_id
           WHERE s.id_hash = $1 AND s.expires_at > now()"#,
        hash(secret),
    )
    .fetch_optional(conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let user = UserRow {
        id: row.id,
        uuid: row.uuid,
        email: row.email,
        name: row.name,
        role: row.role,
        created_at: row.created_at,
    }
    .try_into()?;
    Ok(Some(Session {
        user,
        csrf_token: row.csrf_token,
        expires_at: row.expires_at,
    }))
}

/// Ends the session whose cookie holds `secret`; ending one that does not
/// exist is not an error (logging out twice is fine).
///
/// # Errors
///
/// [`DbError::Database`] if the delete fails.
pub async fn delete(conn: &mut PgConnection, secret: &str) -> Result<(), DbError> {
    sqlx::query!("DELETE FROM sessions WHERE id_hash = $1", hash(secret))
        .execute(conn)
        .await?;
    Ok(())
}

/// Removes sessions that have ended, so the table holds only live ones.
///
/// # Errors
///
/// [`DbError::Database`] if the delete fails.
pub async fn delete_expired(conn: &mut PgConnection) -> Result<u64, DbError> {
    // sessions_expires_at keeps this a short index range scan.
    let result = sqlx::query!("DELETE FROM sessions WHERE expires_at <= now()")
        .execute(conn)
        .await?;
    Ok(result.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_never_shown_in_debug_output() {
        let a = random_token();
        assert_eq!(a.len(), 64);
        assert_ne!(a, random_token());
        assert!(!format!("{:?}", SessionSecret(a.clone())).contains(&a));
    }
}
