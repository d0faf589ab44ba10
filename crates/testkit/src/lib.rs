//! Test support: a fresh, migrated PostgreSQL database for every test.
//!
//! # Layout
//!
//! - [`TestDb`] — clones a migrated template database (fast: a file copy, no
//!   migrations per test) and drops the clone when the test ends.
//! - The server: the one `DATABASE_URL` points at, else PostgreSQL on
//!   127.0.0.1:5432, else a private cluster started once from the installed
//!   binaries (see `postino_db::local_cluster`).
//! - [`wait_until`] — waits for a condition with a deadline, failing with
//!   what it waited for; [`drain`] waits for a campaign's queue to empty;
//!   [`advance`] waits for the scheduler's or the senders' heartbeat
//!   counters to move, which proves they looked after some event. Tests
//!   wait for events with these, never sleep and then assert.
//!
//! Dev-only: a `[dev-dependency]` of other crates, never a dependency.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use postino_db::local_cluster::LocalCluster;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::OnceCell;
use uuid::Uuid;

/// The port of the private cluster, when one is needed.
const PRIVATE_CLUSTER_PORT: u16 = 54329;

/// A database of its own for one test, dropped when this value is.
#[derive(Debug)]
pub struct TestDb {
    /// URL of the test's database.
    pub url: String,
    /// Its name.
    pub name: String,
    server: String,
}

static SERVER: OnceCell<String> = OnceCell::const_new();

/// The base URL (no database) of a reachable server.
async fn server() -> anyhow::Result<String> {
    SERVER
        .get_or_try_init(|| async {
            let candidate = match std::env::var("DATABASE_URL") {
                Ok(url) => base_of(&url)?,
                Err(_) => "postgres://postgres@127.0.0.1:5432".to_owned(),
            };
            if connect(&format!("{candidate}/postgres")).await.is_ok() {
                return Ok(candidate);
            }
            let dir = std::env::temp_dir().join("postino-test-postgres");
            let cluster = tokio::task::spawn_blocking(move || {
                LocalCluster::start(&dir, PRIVATE_CLUSTER_PORT)
            })
            .await??;
            let base = format!("postgres://postgres@127.0.0.1:{}", cluster.port);
            connect(&format!("{base}/postgres"))
                .await
                .with_context(|| {
                    format!(
                        "private cluster in {} does not answer",
                        cluster.dir.display()
                    )
                })?;
            Ok(base)
        })
        .await
        .cloned()
}

fn base_of(url: &str) -> anyhow::Result<String> {
    let mut parsed = url::Url::parse(url).context("DATABASE_URL is not a URL")?;
    parsed.set_path("");
    parsed.set_query(None);
    Ok(parsed.as_str().trim_end_matches('/').to_owned())
}

async fn connect(url: &str) -> anyhow::Result<PgConnection> {
    Ok(tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(url)).await??)
}

/// Creates the migrated template for this build's migrations once per server;
/// concurrent test processes wait on an advisory lock.
async fn template(server: &str) -> anyhow::Result<String> {
    let name = format!("postino_tpl_{}", postino_db::pool::migrations_fingerprint());
    let mut admin = connect(&format!("{server}/postgres")).await?;
    sqlx::query("SELECT pg_advisory_lock(4242)")
        .execute(&mut admin)
        .await?;
    let result = async {
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(&name)
                .fetch_one(&mut admin)
                .await?;
        if !exists {
            // Build under a scratch name and rename at the end, so a crash
            // mid-migration never leaves a half-migrated template behind.
            let scratch = format!("{name}_building");
            exec(
                &mut admin,
                &format!("DROP DATABASE IF EXISTS {scratch} WITH (FORCE)"),
            )
            .await?;
            exec(&mut admin, &format!("CREATE DATABASE {scratch}")).await?;
            let pool = sqlx::PgPool::connect(&format!("{server}/{scratch}")).await?;
            postino_db::migrate(&pool).await?;
            pool.close().await;
            exec(
                &mut admin,
                &format!("ALTER DATABASE {scratch} RENAME TO {name}"),
            )
            .await?;
        }
        anyhow::Ok(())
    }
    .await;
    sqlx::query("SELECT pg_advisory_unlock(4242)")
        .execute(&mut admin)
        .await?;
    result.map(|()| name)
}

async fn exec(conn: &mut PgConnection, sql: &str) -> anyhow::Result<()> {
    // Only names this module builds from hex digits and fixed words reach here.
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(conn)
        .await?;
    Ok(())
}

impl TestDb {
    /// A fresh database with every migration applied.
    ///
    /// # Errors
    ///
    /// When no server can be reached or started.
    pub async fn new() -> anyhow::Result<Self> {
        let server = server().await?;
        let template = template(&server).await?;
        let name = format!("postino_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = connect(&format!("{server}/postgres")).await?;
        exec(
            &mut admin,
            &format!("CREATE DATABASE {name} TEMPLATE {template}"),
        )
        .await?;
        Ok(Self {
            url: format!("{server}/{name}"),
            name,
            server,
        })
    }

    /// A database that exists on the server but has never been created or
    /// migrated: for start-up tests. It is dropped with this value if created.
    ///
    /// # Errors
    ///
    /// When no server can be reached or started.
    pub async fn not_yet_created() -> anyhow::Result<Self> {
        let server = server().await?;
        let name = format!("postino_test_{}", uuid::Uuid::new_v4().simple());
        Ok(Self {
            url: format!("{server}/{name}"),
            name,
            server,
        })
    }

    /// Opens a single connection to the test's database.
    ///
    /// # Errors
    ///
    /// When the database cannot be reached.
    pub async fn connect(&self) -> anyhow::Result<PgConnection> {
        connect(&self.url).await
    }
}

impl TestDb {
    /// Opens a connection to the server's `postgres` database, for tests
    /// that change the test database itself (cut connections, rename).
    ///
    /// # Errors
    ///
    /// When the server cannot be reached.
    pub async fn connect_admin(&self) -> anyhow::Result<PgConnection> {
        connect(&format!("{}/postgres", self.server)).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot be blocked on; a
        // short-lived thread with its own runtime does the cleanup.
        let admin_url = format!("{}/postgres", self.server);
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let cleanup = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(mut admin) = connect(&admin_url).await {
                    let _ = exec(&mut admin, &sql).await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// How often the waits look.
const POLL: Duration = Duration::from_millis(20);

/// Waits until `done` says so, looking every 20 ms, for at most `within`.
///
/// # Panics
///
/// When `within` passes first, naming `what` was awaited.
pub async fn wait_until(what: &str, within: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if done().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until campaign `campaign` (its public id) has no delivery queued
/// or in flight, for at most `within`. Test sends do not count: they are
/// not the campaign's queue.
///
/// # Panics
///
/// When `within` passes first, or the database cannot be read.
pub async fn drain(pool: &PgPool, campaign: Uuid, within: Duration) {
    wait_until(
        &format!("campaign {campaign} to have nothing queued or sending"),
        within,
        async || {
            let left: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM deliveries d JOIN campaigns c ON c.id = d.campaign_id
                 WHERE c.uuid = $1 AND d.kind = 'campaign' AND d.status IN ('queued', 'sending')",
            )
            .bind(campaign)
            .fetch_one(pool)
            .await
            .unwrap_or_else(|e| panic!("cannot count the campaign's deliveries: {e}"));
            left == 0
        },
    )
    .await;
}

/// A heartbeat counter (see the `heartbeats` table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// Looks at the work: scheduler ticks, sender claims from the queue.
    Passes,
    /// Deliveries a sender claimed.
    Claimed,
    /// A sender's rereads of the relays, the policy and the DKIM keys.
    Reloads,
}

impl Counter {
    fn column(self) -> &'static str {
        match self {
            Self::Passes => "passes",
            Self::Claimed => "claimed",
            Self::Reloads => "reloads",
        }
    }
}

async fn counters(pool: &PgPool, role: &str, counter: Counter) -> HashMap<Uuid, i64> {
    // The column is one of three fixed names.
    let sql = format!(
        "SELECT process, {} FROM heartbeats WHERE role = $1",
        counter.column()
    );
    sqlx::query_as::<_, (Uuid, i64)>(sqlx::AssertSqlSafe(sql))
        .bind(role)
        .fetch_all(pool)
        .await
        .unwrap_or_else(|e| panic!("cannot read the heartbeats: {e}"))
        .into_iter()
        .collect()
}

/// Waits until every process of `role` (`"scheduler"` or `"sender"`) that
/// has a heartbeat now has moved `counter` on by `by` (or, if none has one
/// yet, until one has reached `by`), for at most `within`.
///
/// Moving on by two passes proves a whole pass ran after the call: the
/// first may have been under way already.
///
/// # Panics
///
/// When `within` passes first, or the database cannot be read.
pub async fn advance(pool: &PgPool, role: &str, counter: Counter, by: i64, within: Duration) {
    let start = counters(pool, role, counter).await;
    wait_until(
        &format!("every {role} to move {} on by {by}", counter.column()),
        within,
        async || {
            let now = counters(pool, role, counter).await;
            if start.is_empty() {
                return now.values().any(|n| *n >= by);
            }
            start
                .iter()
                .all(|(process, was)| now.get(process).is_none_or(|n| *n >= was + by))
        },
    )
    .await;
}
