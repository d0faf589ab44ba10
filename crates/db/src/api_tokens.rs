//! API tokens: generated here, shown once, stored as SHA-256 hashes.

use chrono::{DateTime, Utc};
use postino_domain::{ApiScope, Role, TokenName};
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
    /// What it may do, at most (its owner's role may allow less).
    pub scope: ApiScope,
    /// The dashboard user it belongs to; `None` for an installation token.
    pub owner: Option<TokenOwner>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last authenticated a request (to the minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The user a token belongs to, as listings show them.
#[derive(Debug, Clone)]
pub struct TokenOwner {
    /// Internal key.
    pub id: i64,
    /// Public id.
    pub uuid: Uuid,
    /// Login address.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Their role now, which bounds what the token may do.
    pub role: Role,
}

/// Who a request's token speaks for and what it may do there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenCaller {
    /// The token's internal key.
    pub token_id: i64,
    /// Its owner's internal key; `None` for an installation token.
    pub owner_id: Option<i64>,
    /// Its scope narrowed to its owner's role right now.
    pub scope: ApiScope,
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

/// Creates a token of `scope` belonging to user `owner` (`None`: an
/// installation token) and returns its record and its secret, which exists
/// only in this return value. The caller checks that `scope` is within what
/// the one asking may grant.
///
/// # Errors
///
/// [`DbError::Database`] if the insert fails.
pub async fn create(
    conn: &mut PgConnection,
    name: &TokenName,
    owner: Option<i64>,
    scope: ApiScope,
) -> Result<(ApiToken, TokenSecret), DbError> {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!("{TOKEN_PREFIX}{}", hex::encode(bytes));
    let prefix = secret[..VISIBLE_CHARS].to_owned();
    let uuid = sqlx::query_scalar!(
        r#"INSERT INTO api_tokens (uuid, name, token_hash, prefix, created_by, scope)
           VALUES ($1, $2, $3, $4, $5, $6)
           RETURNING uuid"#,
        Uuid::now_v7(),
        name.as_str(),
        hash(&secret),
        prefix,
        owner,
        scope.as_str(),
    )
    .fetch_one(&mut *conn)
    .await?;
    let token = get(conn, uuid).await?;
    Ok((token, TokenSecret(secret)))
}

/// A token row with its owner, as the listings select it.
struct TokenRow {
    id: i64,
    uuid: Uuid,
    name: String,
    prefix: String,
    scope: String,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    owner_id: Option<i64>,
    owner_uuid: Option<Uuid>,
    owner_email: Option<String>,
    owner_name: Option<String>,
    owner_role: Option<String>,
}

impl TryFrom<TokenRow> for ApiToken {
    type Error = DbError;
    fn try_from(row: TokenRow) -> Result<Self, DbError> {
        let owner = match (
            row.owner_id,
            row.owner_uuid,
            row.owner_email,
            row.owner_role,
        ) {
            (Some(id), Some(uuid), Some(email), Some(role)) => Some(TokenOwner {
                id,
                uuid,
                email,
                name: row.owner_name.unwrap_or_default(),
                role: role.parse()?,
            }),
            _ => None,
        };
        Ok(ApiToken {
            id: row.id,
            uuid: row.uuid,
            name: TokenName::parse(&row.name)?,
            prefix: row.prefix,
            scope: row.scope.parse()?,
            owner,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            revoked_at: row.revoked_at,
        })
    }
}

/// The token with public id `uuid`.
///
/// # Errors
///
/// [`DbError::NotFound`] if there is none.
pub async fn get(conn: &mut PgConnection, uuid: Uuid) -> Result<ApiToken, DbError> {
    let row = sqlx::query_as!(
        TokenRow,
        r#"SELECT t.id, t.uuid, t.name, t.prefix, t.scope, t.created_at, t.last_used_at,
                  t.revoked_at, u.id AS "owner_id?", u.uuid AS "owner_uuid?",
                  u.email AS "owner_email?", u.name AS "owner_name?", u.role AS "owner_role?"
           FROM api_tokens t LEFT JOIN users u ON u.id = t.created_by
           WHERE t.uuid = $1"#,
        uuid
    )
    .fetch_one(conn)
    .await?;
    row.try_into()
}

/// Every token, newest first, revoked ones included, with their owners.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn all(conn: &mut PgConnection) -> Result<Vec<ApiToken>, DbError> {
    let rows = sqlx::query_as!(
        TokenRow,
        r#"SELECT t.id, t.uuid, t.name, t.prefix, t.scope, t.created_at, t.last_used_at,
                  t.revoked_at, u.id AS "owner_id?", u.uuid AS "owner_uuid?",
                  u.email AS "owner_email?", u.name AS "owner_name?", u.role AS "owner_role?"
           FROM api_tokens t LEFT JOIN users u ON u.id = t.created_by
           ORDER BY t.id DESC"#
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(ApiToken::try_from).collect()
}

/// Narrows every token of user `owner` to what `role` allows, so a demoted
/// user's tokens lose the power for good: promoting them back later does not
/// bring it back unnoticed. (Requests are checked against the owner's role
/// anyway; this keeps the stored scope, which listings show, truthful.)
///
/// # Errors
///
/// [`DbError::Database`] if the update fails.
pub async fn narrow_to_role(
    conn: &mut PgConnection,
    owner: i64,
    role: Role,
) -> Result<(), DbError> {
    let ceiling = ApiScope::ceiling(role);
    let tokens = sqlx::query!(
        "SELECT id, scope FROM api_tokens WHERE created_by = $1 FOR UPDATE",
        owner
    )
    .fetch_all(&mut *conn)
    .await?;
    for token in tokens {
        let scope: ApiScope = token.scope.parse()?;
        let narrowed = scope.within(ceiling);
        if narrowed != scope {
            sqlx::query!(
                "UPDATE api_tokens SET scope = $2 WHERE id = $1",
                token.id,
                narrowed.as_str()
            )
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
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

/// The live token whose secret is `presented`, if any, with its scope
/// narrowed to its owner's role at this moment.
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
) -> Result<Option<TokenCaller>, DbError> {
    if !presented.starts_with(TOKEN_PREFIX) || presented.len() > 200 {
        return Ok(None);
    }
    // Touch last_used_at at most once a minute: a write per request would make
    // every API call a row update.
    let row = sqlx::query!(
        r#"WITH live AS (
               SELECT t.id, t.last_used_at, t.scope, t.created_by, u.role AS owner_role
               FROM api_tokens t LEFT JOIN users u ON u.id = t.created_by
               WHERE t.token_hash = $1 AND t.revoked_at IS NULL
           ), touched AS (
               UPDATE api_tokens SET last_used_at = now()
               WHERE id IN (SELECT id FROM live
                            WHERE last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
           )
           SELECT id AS "id!", scope AS "scope!", created_by, owner_role AS "owner_role?"
           FROM live"#,
        hash(presented),
    )
    .fetch_optional(conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let stored: ApiScope = row.scope.parse()?;
    let scope = match (row.created_by, row.owner_role) {
        (None, _) => stored,
        (Some(_), Some(role)) => stored.within(ApiScope::ceiling(role.parse()?)),
        // An owner who no longer exists: deleting a user deletes their
        // tokens, so this is only a row caught mid-deletion. Refuse it.
        (Some(_), None) => return Ok(None),
    };
    Ok(Some(TokenCaller {
        token_id: row.id,
        owner_id: row.created_by,
        scope,
    }))
}
