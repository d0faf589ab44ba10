//! What sign-in remembers besides sessions: failed attempts per typed
//! address (the throttle) and the browsers that signed in before.
//!
//! The throttle is keyed by the address typed, whether or not an account
//! has it, so a made-up address costs the same queries and gets the same
//! answers as a real one.

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;

use crate::DbError;
use crate::sessions::random_token;

/// What [`reserve_attempt`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Check the password. `failures` counts this attempt.
    Allowed {
        /// Attempts in a row without success, this one included.
        failures: i32,
    },
    /// Too many failures: no password for this address is checked before
    /// `until`.
    Wait {
        /// When the next attempt is checked.
        until: DateTime<Utc>,
    },
}

/// The throttle's key for a typed address: the SHA-256 of it trimmed and
/// lower-cased (anything typed, valid address or not).
#[must_use]
pub fn address_key(typed: &str) -> Vec<u8> {
    Sha256::digest(typed.trim().to_lowercase().as_bytes()).to_vec()
}

/// Counts an attempt on `key` *before* its password is checked, so parallel
/// guesses cannot slip past the throttle: the row is locked, and once an
/// attempt is counted the next one waits `delay(failures)`. Failures older
/// than a day are forgotten. A refused attempt is not counted, so an
/// attacker cannot lengthen the wait by knocking during it.
///
/// # Errors
///
/// [`DbError::Database`] if a query fails.
pub async fn reserve_attempt(
    conn: &mut PgConnection,
    key: &[u8],
    delay: impl Fn(i32) -> Duration,
) -> Result<Attempt, DbError> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    sqlx::query!(
        "INSERT INTO login_throttle (email_key) VALUES ($1) ON CONFLICT (email_key) DO NOTHING",
        key
    )
    .execute(&mut *tx)
    .await?;
    let row = sqlx::query!(
        r#"SELECT failures, next_try_at, updated_at < now() - interval '1 day' AS "stale!"
           FROM login_throttle WHERE email_key = $1 FOR UPDATE"#,
        key
    )
    .fetch_one(&mut *tx)
    .await?;
    let now = Utc::now();
    if !row.stale && row.next_try_at > now {
        tx.commit().await?;
        return Ok(Attempt::Wait {
            until: row.next_try_at,
        });
    }
    let failures = if row.stale { 1 } else { row.failures + 1 };
    sqlx::query!(
        "UPDATE login_throttle SET failures = $2, next_try_at = $3, updated_at = now()
         WHERE email_key = $1",
        key,
        failures,
        now + delay(failures),
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Attempt::Allowed { failures })
}

/// Forgets the failures on `key` after a right password, and sweeps rows
/// untouched for a day.
///
/// # Errors
///
/// [`DbError::Database`] if a query fails.
pub async fn clear(conn: &mut PgConnection, key: &[u8]) -> Result<(), DbError> {
    sqlx::query!("DELETE FROM login_throttle WHERE email_key = $1", key)
        .execute(&mut *conn)
        .await?;
    sqlx::query!("DELETE FROM login_throttle WHERE updated_at < now() - interval '1 day'")
        .execute(conn)
        .await?;
    Ok(())
}

/// A known browser's secret, for its cookie. `Debug` hides it.
pub struct DeviceSecret(String);

impl DeviceSecret {
    /// The secret, for the `Set-Cookie` header only.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for DeviceSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceSecret(<redacted>)")
    }
}

fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Remembers a browser that just signed in as `user_id` for `ttl`, and
/// forgets expired ones.
///
/// # Errors
///
/// [`DbError::Database`] if a query fails.
pub async fn remember_device(
    conn: &mut PgConnection,
    user_id: i64,
    ttl: Duration,
) -> Result<DeviceSecret, DbError> {
    let secret = random_token();
    sqlx::query!(
        "INSERT INTO login_devices (id_hash, user_id, expires_at) VALUES ($1, $2, $3)",
        hash(&secret),
        user_id,
        Utc::now() + ttl,
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!("DELETE FROM login_devices WHERE expires_at <= now()")
        .execute(conn)
        .await?;
    Ok(DeviceSecret(secret))
}

/// The user whose browser holds `secret` as a live known-browser cookie.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn device_owner(conn: &mut PgConnection, secret: &str) -> Result<Option<i64>, DbError> {
    let owner = sqlx::query_scalar!(
        "SELECT user_id FROM login_devices WHERE id_hash = $1 AND expires_at > now()",
        hash(secret),
    )
    .fetch_optional(conn)
    .await?;
    Ok(owner)
}
