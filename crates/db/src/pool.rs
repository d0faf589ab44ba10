//! Connecting: settings, creating the database when missing, migrations.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};

/// The default database when nothing is configured: a developer's local server.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postino";

/// How to reach PostgreSQL.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DbSettings {
    /// A `postgres://` URL. It may hold a password, so `Debug` hides it.
    pub url: String,
    /// Pool size. Each sender worker and each busy request holds one briefly.
    pub max_connections: u32,
    /// How long start-up and requests wait for a connection before failing.
    pub connect_timeout_secs: u64,
}

impl Default for DbSettings {
    fn default() -> Self {
        Self {
            url: DEFAULT_URL.to_owned(),
            max_connections: 20,
            connect_timeout_secs: 5,
        }
    }
}

impl fmt::Debug for DbSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbSettings")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("connect_timeout_secs", &self.connect_timeout_secs)
            .finish()
    }
}

/// The URL with any password replaced, for logs and error messages.
#[must_use]
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) => {
            if url.password().is_some() {
                // Only fails for URLs that cannot have a password at all.
                let _ = url.set_password(Some("redacted"));
            }
            url.to_string()
        }
        Err(_) => "<unparseable URL>".to_owned(),
    }
}

/// Why connecting failed, phrased for the operator who configured it.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL does not parse as a PostgreSQL URL.
    #[error("database.url is not a valid PostgreSQL URL: {0}")]
    BadUrl(String),
    /// The server did not answer or refused us.
    #[error("cannot reach PostgreSQL at {url}: {reason}")]
    Unreachable {
        /// The redacted URL tried.
        url: String,
        /// What the driver said.
        reason: String,
    },
    /// The migrations could not be applied.
    #[error("applying migrations failed: {0}")]
    Migrate(String),
}

impl DbSettings {
    /// Parses the URL into connection options.
    ///
    /// # Errors
    ///
    /// [`ConnectError::BadUrl`] naming what is wrong.
    pub fn connect_options(&self) -> Result<PgConnectOptions, ConnectError> {
        if !(self.url.starts_with("postgres://") || self.url.starts_with("postgresql://")) {
            return Err(ConnectError::BadUrl(
                "it must start with postgres:// or postgresql://".to_owned(),
            ));
        }
        PgConnectOptions::from_str(&self.url)
            .map(|o| o.log_statements(tracing::log::LevelFilter::Trace))
            .map_err(|e| ConnectError::BadUrl(e.to_string()))
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs.max(1))
    }
}

/// Creates the configured database if it does not exist yet, by connecting to
/// the server's `postgres` maintenance database.
///
/// # Errors
///
/// [`ConnectError`] when the URL is bad or the server cannot be reached.
pub async fn ensure_database(settings: &DbSettings) -> Result<(), ConnectError> {
    let options = settings.connect_options()?;
    let name = options.get_database().unwrap_or("postgres").to_owned();
    let unreachable = |e: sqlx::Error| ConnectError::Unreachable {
        url: redact_url(&settings.url),
        reason: e.to_string(),
    };
    // Try the database itself first: the common case, and the only one that
    // works for a role without access to the maintenance database.
    let direct =
        tokio::time::timeout(settings.timeout(), PgConnection::connect_with(&options)).await;
    if let Ok(Ok(conn)) = direct {
        let _ = conn.close().await;
        return Ok(());
    }
    let admin_options = options.clone().database("postgres");
    let mut admin = tokio::time::timeout(
        settings.timeout(),
        PgConnection::connect_with(&admin_options),
    )
    .await
    .map_err(|_| ConnectError::Unreachable {
        url: redact_url(&settings.url),
        reason: "timed out".to_owned(),
    })?
    .map_err(unreachable)?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await
            .map_err(unreachable)?;
    if !exists {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        // Another process may create it at the same moment; that is fine.
        // The name is quoted as an identifier above; CREATE DATABASE takes no parameters.
        if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {quoted}")))
            .execute(&mut admin)
            .await
        {
            let duplicate =
                matches!(&e, sqlx::Error::Database(d) if d.code().as_deref() == Some("42P04"));
            if !duplicate {
                return Err(unreachable(e));
            }
        }
        tracing::info!(database = %name, "created database");
    }
    let _ = admin.close().await;
    Ok(())
}

/// Opens the connection pool and checks that the server answers.
///
/// # Errors
///
/// [`ConnectError`] when the URL is bad or the server cannot be reached.
pub async fn connect(settings: &DbSettings) -> Result<PgPool, ConnectError> {
    let options = settings.connect_options()?;
    PgPoolOptions::new()
        .max_connections(settings.max_connections.max(1))
        .acquire_timeout(settings.timeout())
        .connect_with(options)
        .await
        .map_err(|e| ConnectError::Unreachable {
            url: redact_url(&settings.url),
            reason: e.to_string(),
        })
}

/// Applies every migration in `migrations/` that has not run yet.
///
/// # Errors
///
/// [`ConnectError::Migrate`] when a migration fails or was edited after it ran.
pub async fn migrate(pool: &PgPool) -> Result<(), ConnectError> {
    sqlx::migrate!("../../migrations")
        .run(pool)
        .await
        .map_err(|e| ConnectError::Migrate(e.to_string()))
}

/// A fingerprint of the embedded migrations, so tools can tell whether a
/// database was migrated with exactly this build's schema.
#[must_use]
pub fn migrations_fingerprint() -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for m in sqlx::migrate!("../../migrations").iter() {
        hasher.update(m.version.to_le_bytes());
        hasher.update(&*m.checksum);
    }
    hex::encode(&hasher.finalize()[..8])
}
