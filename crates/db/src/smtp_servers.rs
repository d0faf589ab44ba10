//! The SMTP relays the sender delivers through.
//!
//! Passwords are stored sealed (`password_sealed`); this crate never sees
//! them in the clear, except the plain ones of rows from before sealing,
//! which [`plain_passwords`] hands to start-up to be sealed once.

use std::fmt;

use chrono::{DateTime, Utc};
use postino_domain::{SendWindow, ServerGroup, ServerPolicy, SmtpSettings};
use secrecy::SecretString;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::DbError;

/// A relay's password as stored: sealed by `compose::PasswordVault`. Only
/// the sender and the connection test open it.
#[derive(Clone)]
pub struct SealedPassword(pub Vec<u8>);

impl fmt::Debug for SealedPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealedPassword([REDACTED])")
    }
}

/// A relay as stored. `settings.password` is always empty here: the
/// password is in `sealed_password`, opened only by whoever connects.
#[derive(Debug, Clone)]
pub struct SmtpServer {
    /// Internal key.
    pub id: i64,
    /// Public id.
    pub uuid: Uuid,
    /// Unique display name.
    pub name: String,
    /// Whether the sender uses it.
    pub enabled: bool,
    /// How to reach it.
    pub settings: SmtpSettings,
    /// Its weight, group and rate limits.
    pub policy: ServerPolicy,
    /// Whether a password is stored (the API says so, never what it is).
    pub has_password: bool,
    /// The password, sealed; `None` for none.
    pub sealed_password: Option<SealedPassword>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

struct Row {
    id: i64,
    uuid: Uuid,
    name: String,
    host: String,
    port: i32,
    tls: String,
    username: String,
    #[allow(
        dead_code,
        reason = "the pre-sealing column, read only by plain_passwords"
    )]
    password: String,
    hello_name: String,
    max_connections: i32,
    messages_per_connection: i32,
    timeout_secs: i32,
    enabled: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    weight: i32,
    server_group: String,
    messages_per_second: Option<f64>,
    window_messages: Option<i32>,
    window_secs: Option<i32>,
    password_sealed: Option<Vec<u8>>,
}

impl TryFrom<Row> for SmtpServer {
    type Error = DbError;

    fn try_from(r: Row) -> Result<Self, DbError> {
        let number = |v: i32| u32::try_from(v).unwrap_or(1);
        Ok(Self {
            id: r.id,
            uuid: r.uuid,
            name: r.name,
            enabled: r.enabled,
            // `password` is the pre-sealing column, emptied at start-up.
            has_password: r.password_sealed.is_some(),
            sealed_password: r.password_sealed.map(SealedPassword),
            settings: SmtpSettings {
                host: r.host,
                port: u16::try_from(r.port).unwrap_or(25),
                tls: r.tls.parse()?,
                username: r.username,
                password: SecretString::from(String::new()),
                hello_name: r.hello_name,
                max_connections: number(r.max_connections),
                messages_per_connection: number(r.messages_per_connection),
                timeout_secs: u64::from(number(r.timeout_secs)),
            },
            policy: ServerPolicy {
                weight: number(r.weight),
                group: ServerGroup::parse(&r.server_group)?,
                messages_per_second: r.messages_per_second,
                window: match (r.window_messages, r.window_secs) {
                    (Some(messages), Some(secs)) => Some(SendWindow {
                        messages: number(messages),
                        secs: number(secs),
                    }),
                    _ => None,
                },
            },
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// What a user sets on a relay, validated by the caller. The password in
/// `settings` is ignored: only `sealed_password` is stored.
#[derive(Debug, Clone)]
pub struct NewSmtpServer<'a> {
    /// Unique display name.
    pub name: &'a str,
    /// Whether the sender uses it.
    pub enabled: bool,
    /// How to reach it.
    pub settings: &'a SmtpSettings,
    /// Its weight, group and rate limits.
    pub policy: &'a ServerPolicy,
    /// The password as `compose::PasswordVault` sealed it; `None` for none.
    pub sealed_password: Option<&'a [u8]>,
}

fn int(v: impl TryInto<i32>) -> i32 {
    v.try_into().unwrap_or(i32::MAX)
}

/// Every relay, by name.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn all(conn: &mut PgConnection) -> Result<Vec<SmtpServer>, DbError> {
    let rows = sqlx::query_as!(Row, "SELECT * FROM smtp_servers ORDER BY name")
        .fetch_all(conn)
        .await?;
    rows.into_iter().map(SmtpServer::try_from).collect()
}

/// The relays the sender uses, oldest first.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn enabled(conn: &mut PgConnection) -> Result<Vec<SmtpServer>, DbError> {
    let rows = sqlx::query_as!(Row, "SELECT * FROM smtp_servers WHERE enabled ORDER BY id")
        .fetch_all(conn)
        .await?;
    rows.into_iter().map(SmtpServer::try_from).collect()
}

/// One relay by public id.
///
/// # Errors
///
/// [`DbError::NotFound`] if there is none.
pub async fn get(conn: &mut PgConnection, uuid: Uuid) -> Result<SmtpServer, DbError> {
    let row = sqlx::query_as!(Row, "SELECT * FROM smtp_servers WHERE uuid = $1", uuid)
        .fetch_one(conn)
        .await?;
    row.try_into()
}

/// Stores a new relay.
///
/// # Errors
///
/// [`DbError::Conflict`] if the name is taken.
pub async fn create(
    conn: &mut PgConnection,
    new: &NewSmtpServer<'_>,
) -> Result<SmtpServer, DbError> {
    let f = new.settings;
    let p = new.policy;
    let row = sqlx::query_as!(
        Row,
        r#"INSERT INTO smtp_servers (uuid, name, host, port, tls, username, password, hello_name,
                                     max_connections, messages_per_connection, timeout_secs, enabled,
                                     weight, server_group, messages_per_second, window_messages, window_secs,
                                     password_sealed)
           VALUES ($1, $2, $3, $4, $5, $6, '', $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
           RETURNING *"#,
        Uuid::new_v4(),
        new.name,
        f.host,
        i32::from(f.port),
        f.tls.as_str(),
        f.username,
        f.hello_name,
        int(f.max_connections),
        int(f.messages_per_connection),
        int(f.timeout_secs),
        new.enabled,
        int(p.weight),
        p.group.as_str(),
        p.messages_per_second,
        p.window.map(|w| int(w.messages)),
        p.window.map(|w| int(w.secs)),
        new.sealed_password,
    )
    .fetch_one(conn)
    .await?;
    row.try_into()
}

/// Replaces a relay's fields. With `keep_password`, the stored password
/// stays and `new.sealed_password` is ignored (the caller decides when that
/// is safe: the password must not follow the relay to another server).
///
/// # Errors
///
/// [`DbError::NotFound`] if there is none, [`DbError::Conflict`] if the name is taken.
pub async fn update(
    conn: &mut PgConnection,
    id: i64,
    new: &NewSmtpServer<'_>,
    keep_password: bool,
) -> Result<SmtpServer, DbError> {
    let f = new.settings;
    let p = new.policy;
    let row = sqlx::query_as!(
        Row,
        r#"UPDATE smtp_servers SET name = $2, host = $3, port = $4, tls = $5, username = $6,
                  password = '',
                  password_sealed = CASE WHEN $7 THEN password_sealed ELSE $8 END,
                  hello_name = $9, max_connections = $10,
                  messages_per_connection = $11, timeout_secs = $12, enabled = $13,
                  weight = $14, server_group = $15, messages_per_second = $16,
                  window_messages = $17, window_secs = $18, updated_at = now()
           WHERE id = $1
           RETURNING *"#,
        id,
        new.name,
        f.host,
        i32::from(f.port),
        f.tls.as_str(),
        f.username,
        keep_password,
        new.sealed_password,
        f.hello_name,
        int(f.max_connections),
        int(f.messages_per_connection),
        int(f.timeout_secs),
        new.enabled,
        int(p.weight),
        p.group.as_str(),
        p.messages_per_second,
        p.window.map(|w| int(w.messages)),
        p.window.map(|w| int(w.secs)),
    )
    .fetch_one(conn)
    .await?;
    row.try_into()
}

/// Relays whose password is still stored in plain text (from before
/// passwords were sealed), locked until the caller's transaction ends so
/// that processes starting together convert each row once.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn plain_passwords(conn: &mut PgConnection) -> Result<Vec<(i64, SecretString)>, DbError> {
    let rows = sqlx::query!(
        "SELECT id, password FROM smtp_servers WHERE password <> '' ORDER BY id FOR UPDATE"
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.id, SecretString::from(r.password)))
        .collect())
}

/// Stores relay `id`'s password sealed and empties the plain column.
///
/// # Errors
///
/// [`DbError::Database`] if the statement fails.
pub async fn store_sealed_password(
    conn: &mut PgConnection,
    id: i64,
    sealed: &[u8],
) -> Result<(), DbError> {
    sqlx::query!(
        "UPDATE smtp_servers SET password_sealed = $2, password = '' WHERE id = $1",
        id,
        sealed
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes a relay.
///
/// # Errors
///
/// [`DbError::NotFound`] if there is none.
pub async fn delete(conn: &mut PgConnection, id: i64) -> Result<(), DbError> {
    let done = sqlx::query!("DELETE FROM smtp_servers WHERE id = $1", id)
        .execute(conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

/// Stores `new` when no relay is configured yet, so a fresh installation
/// sends through the relay named in its configuration file. Returns whether
/// it did; a relay set up through the API is never overwritten.
///
/// # Errors
///
/// [`DbError::Database`] if the statement fails.
pub async fn seed_if_empty(
    conn: &mut PgConnection,
    new: &NewSmtpServer<'_>,
) -> Result<bool, DbError> {
    let any: bool = sqlx::query_scalar!(r#"SELECT EXISTS (SELECT 1 FROM smtp_servers) AS "any!""#)
        .fetch_one(&mut *conn)
        .await?;
    if any {
        return Ok(false);
    }
    // Two processes starting at once may both find the table empty; the
    // unique name lets only one of them store the relay.
    match create(conn, new).await {
        Ok(_) => Ok(true),
        Err(DbError::Conflict { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}
