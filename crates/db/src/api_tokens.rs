//! API tokens: generated here, shown once, stored as SHA-256 hashes.

use chrono::{DateTime, Utc};
use postino_domain::TokenName;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::DbError;

/// Every token starts with this, so secret scanners and people can spot one.
pub const TOKEN_PREFIX: &str = "pst_";
/// How many characters of a token are kept in clear to identify it.
const VISIBLE_CHARS: usize = TOKEN_PREFIX.len() + 8;

/// A token's record. The secret itself is never stored.
#[derive(Debug, Clone)]
pub struct ApiToken {
    /// Internal key.
    pub id: i64,
    /// Public id, used to revoke it.
    pub uuid: Uuid,
    /// What it is for.
    pub name: TokenName,
    /// The first characters of the secret, to recognise it.
    pub prefix: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last authenticated a request (to the minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A secret token as handed to its owner. `Debug` hides it.
pub struct TokenSecret(String);

impl TokenSecret {
    /// The secret, to show to its owner once.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSecret(<redacted>)")
    }
}

fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Creates a token and returns its record and its secret, which exists only
/// in this return value.
///
/// # Errors
///
/// [`DbError::Database`] if the insert fails.
pub async fn create(
    conn: &mut PgConnection,
    name: &TokenName,
    created_by: Option<i64>,
) -> Result<(ApiToken, TokenSecret), DbError> {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!("{TOKEN_PREFIX}{}", hex::encode(bytes));
    let prefix = secret[..VISIBLE_CHARS].to_owned();
    let row = sqlx::query!(
        r#"INSERT INTO api_tokens (uuid, name, token_hash, prefix, created_by)
           VALUES ($1, $2, $3, $4, $5)
           RETURNING id, uuid, name, prefix, created_at, last_used_at, revoked_at"#,
        Uuid::now_v7(),
        name.as_str(),
        hash(&secret),
        prefix,
        created_by,
    )
    .fetch_one(conn)
    .await?;
    let token = ApiToken {
        id: row.id,
        uuid: row.uuid,
        name: TokenName::parse(&row.name)?,
        prefix: row.prefix,
        created_at: row.created_at,
        last_used_at: row.last_used_at,
        revoked_at: row.revoked_at,
    };
    Ok((token, TokenSecret(secret)))
}

/// Every token, newest first, revoked ones included.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn all(conn: &mut PgConnection) -> Result<Vec<ApiToken>, DbError> {
    let rows = sqlx::query!(
        r#"SELECT id, uuid, name, prefix, created_at, last_used_at, revoked_at
           FROM api_tokens ORDER BY id DESC"#
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(ApiToken {
                id: row.id,
                uuid: row.uuid,
                name: TokenName::parse(&row.name)?,
                prefix: row.prefix,
                created_at: row.created_at,
                last_used_at: row.last_used_at,
                revoked_at: row.revoked_at,
            })
        })
        .collect()
}

/// Revokes a token; revoking twice is harmless.
///
/// # Errors
///
/// [`DbError::NotFound`] if there is no such token.
pub async fn revoke(conn: &mut PgConnection, uuid: Uuid) -> Result<(), DbError> {
    let result = sqlx::query!(
        "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, now()) WHERE uuid = $1",
        uuid
    )
    .execute(conn)
    .await?;
    if result.rows_affected() == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

/// The live token whose secret is `presented`, if any.
///
/// Looks up by hash, so the comparison happens inside a B-tree on a value
/// an attacker cannot steer (no timing oracle on the secret itself).
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn authenticate(
    conn: &mut PgConnection,
    presented: &str,
) -> Result<Option<i64>, DbError> {
    if !presented.starts_with(TOKEN_PREFIX) || presented.len() > 200 {
        return Ok(None);
    }
    // Touch last_used_at at most once a minute: a write per request would make
    // every API call a row update.
    let row = sqlx::query_scalar!(
        r#"WITH live AS (
               SELECT id, last_used_at FROM api_tokens
               WHERE token_hash = $1 AND revoked_at IS NULL
           ), touched AS (
               UPDATE api_tokens SET last_used_at = now()
               WHERE id IN (SELECT id FROM live
                            WHERE last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
           )
           SELECT id AS "id!" FROM live"#,
        hash(presented),
    )
    .fetch_optional(conn)
    .await?;
    Ok(row)
}
