//! DKIM keys: their names and public halves, and the sealed private keys
//! only the signers read.

use std::fmt;

use chrono::{DateTime, Utc};
use postino_domain::{DkimAlgorithm, DkimDomain, DkimSelector};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::DbError;

/// A key as the API shows it: everything but the private key.
#[derive(Debug, Clone)]
pub struct DkimKey {
    /// Internal key.
    pub id: i64,
    /// Public id.
    pub uuid: Uuid,
    /// `d=`.
    pub domain: DkimDomain,
    /// `s=`.
    pub selector: DkimSelector,
    /// How it signs.
    pub algorithm: DkimAlgorithm,
    /// What the DNS record publishes (before base64).
    pub public_key: Vec<u8>,
    /// Whether the sender signs with it.
    pub enabled: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

/// An enabled key with its sealed private key, for the signers.
pub struct SealedDkimKey {
    /// `d=`.
    pub domain: DkimDomain,
    /// `s=`.
    pub selector: DkimSelector,
    /// How it signs.
    pub algorithm: DkimAlgorithm,
    /// The private key as `compose::dkim::KeyVault` sealed it.
    pub sealed: Vec<u8>,
}

impl fmt::Debug for SealedDkimKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedDkimKey")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// A new key, checked and sealed by the caller.
#[derive(Clone, Copy)]
pub struct NewDkimKey<'a> {
    /// `d=`.
    pub domain: &'a DkimDomain,
    /// `s=`.
    pub selector: &'a DkimSelector,
    /// How it signs.
    pub algorithm: DkimAlgorithm,
    /// The sealed private key.
    pub sealed: &'a [u8],
    /// The public key the DNS record publishes.
    pub public_key: &'a [u8],
    /// Whether the sender signs with it from now on.
    pub enabled: bool,
}

impl fmt::Debug for NewDkimKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewDkimKey")
            .field("domain", self.domain)
            .field("selector", self.selector)
            .field("algorithm", &self.algorithm)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

struct Row {
    id: i64,
    uuid: Uuid,
    domain: String,
    selector: String,
    algorithm: String,
    public_key: Vec<u8>,
    enabled: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<Row> for DkimKey {
    type Error = DbError;

    fn try_from(r: Row) -> Result<Self, DbError> {
        Ok(Self {
            id: r.id,
            uuid: r.uuid,
            domain: DkimDomain::parse(&r.domain)?,
            selector: DkimSelector::parse(&r.selector)?,
            algorithm: r.algorithm.parse()?,
            public_key: r.public_key,
            enabled: r.enabled,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// Every key, by domain and selector.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn all(conn: &mut PgConnection) -> Result<Vec<DkimKey>, DbError> {
    let rows = sqlx::query_as!(
        Row,
        "SELECT id, uuid, domain, selector, algorithm, public_key, enabled, created_at, updated_at
         FROM dkim_keys ORDER BY domain, selector"
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(DkimKey::try_from).collect()
}

/// The enabled keys, newest first, without their private keys: enough to
/// tell which key would sign a campaign.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn enabled(conn: &mut PgConnection) -> Result<Vec<DkimKey>, DbError> {
    let rows = sqlx::query_as!(
        Row,
        "SELECT id, uuid, domain, selector, algorithm, public_key, enabled, created_at, updated_at
         FROM dkim_keys WHERE enabled ORDER BY created_at DESC, id DESC"
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(DkimKey::try_from).collect()
}

/// The enabled keys with their sealed private keys, newest first (the
/// signers use a domain's newest key), optionally only those of `domains`.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails, [`DbError::Corrupt`] if a
/// stored name no longer parses.
pub async fn enabled_sealed(
    conn: &mut PgConnection,
    domains: Option<&[String]>,
) -> Result<Vec<SealedDkimKey>, DbError> {
    let rows = sqlx::query!(
        r#"SELECT domain, selector, algorithm, private_key_encrypted
           FROM dkim_keys
           WHERE enabled AND ($1::text[] IS NULL OR domain = ANY($1))
           ORDER BY created_at DESC, id DESC"#,
        domains as Option<&[String]>,
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(SealedDkimKey {
                domain: DkimDomain::parse(&r.domain)?,
                selector: DkimSelector::parse(&r.selector)?,
                algorithm: r.algorithm.parse()?,
                sealed: r.private_key_encrypted,
            })
        })
        .collect()
}

/// One key by public id.
///
/// # Errors
///
/// [`DbError::NotFound`] if there is none.
pub async fn get(conn: &mut PgConnection, uuid: Uuid) -> Result<DkimKey, DbError> {
    let row = sqlx::query_as!(
        Row,
        "SELECT id, uuid, domain, selector, algorithm, public_key, enabled, created_at, updated_at
         FROM dkim_keys WHERE uuid = $1",
        uuid
    )
    .fetch_one(conn)
    .await?;
    row.try_into()
}

/// Stores a new key.
///
/// # Errors
///
/// [`DbError::Conflict`] (`dkim_keys_domain_selector_key`) if the domain
/// already has a key with this selector.
pub async fn create(conn: &mut PgConnection, new: NewDkimKey<'_>) -> Result<DkimKey, DbError> {
    let row = sqlx::query_as!(
        Row,
        "INSERT INTO dkim_keys (uuid, domain, selector, algorithm, private_key_encrypted, public_key, enabled)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         RETURNING id, uuid, domain, selector, algorithm, public_key, enabled, created_at, updated_at",
        Uuid::new_v4(),
        new.domain.as_str(),
        new.selector.as_str(),
        new.algorithm.as_str(),
        new.sealed,
        new.public_key,
        new.enabled,
    )
    .fetch_one(conn)
    .await?;
    row.try_into()
}

/// Turns signing with a key on or off.
///
/// # Errors
///
/// [`DbError::NotFound`] if there is none.
pub async fn set_enabled(
    conn: &mut PgConnection,
    id: i64,
    enabled: bool,
) -> Result<DkimKey, DbError> {
    let row = sqlx::query_as!(
        Row,
        "UPDATE dkim_keys SET enabled = $2, updated_at = now() WHERE id = $1
         RETURNING id, uuid, domain, selector, algorithm, public_key, enabled, created_at, updated_at",
        id,
        enabled,
    )
    .fetch_one(conn)
    .await?;
    row.try_into()
}

/// Deletes a key.
///
/// # Errors
///
/// [`DbError::NotFound`] if there is none.
pub async fn delete(conn: &mut PgConnection, id: i64) -> Result<(), DbError> {
    let done = sqlx::query!("DELETE FROM dkim_keys WHERE id = $1", id)
        .execute(conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}
