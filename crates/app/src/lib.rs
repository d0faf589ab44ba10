//! The `postino` binary's library: configuration, wiring and shutdown, kept
//! out of `main.rs` so integration tests and benchmarks can start the real
//! application on a random port.
//!
//! # Layout
//!
//! - [`settings`] — layered configuration.
//! - [`telemetry`] — logging.
//! - [`Application`] — start-up (database, migrations, listener) and the
//!   serving loop under one cancellation token.
//! - [`commands`] — the sub-commands besides `serve`.
//! - [`import_command`] — `postino import`: a CSV file with a progress bar.
//!
//! Dependency rule: this crate may depend on every other product crate;
//! nothing depends on it except the benchmark tooling.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod commands;
pub mod demo;
pub mod import_command;
pub mod settings;
pub mod telemetry;

use std::net::SocketAddr;

use anyhow::Context;
use postino_compose::dkim::KeyVault;
use postino_compose::{Addressing, LinkSigner, PasswordVault};
use postino_db::PgPool;
use postino_web::{AppState, WebSettings};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use settings::Settings;

/// A started application: database ready, listener bound, not yet serving.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    /// `/metrics` on its own address, when `http.metrics_listen` is set.
    metrics_listener: Option<TcpListener>,
    pool: PgPool,
    settings: Settings,
}

/// Opens the database (creating it if missing) and applies migrations.
///
/// # Errors
///
/// One line naming `database.url` and what went wrong.
pub async fn open_database(settings: &Settings) -> anyhow::Result<PgPool> {
    postino_db::ensure_database(&settings.database).await?;
    let pool = postino_db::connect(&settings.database).await?;
    postino_db::migrate(&pool).await?;
    Ok(pool)
}

/// Parses and binds `http.listen`.
///
/// # Errors
///
/// One line naming `http.listen` and what went wrong.
pub async fn bind(http: &WebSettings) -> anyhow::Result<TcpListener> {
    let addr: SocketAddr = http.listen.parse().map_err(|_| {
        anyhow::anyhow!(
            "http.listen: {:?} is not an address such as 127.0.0.1:8080",
            http.listen
        )
    })?;
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("http.listen: cannot listen on {addr}"))
}

/// Parses and binds `http.metrics_listen`.
async fn bind_metrics(address: &str) -> anyhow::Result<TcpListener> {
    let addr: SocketAddr = address.parse().map_err(|_| {
        anyhow::anyhow!("http.metrics_listen: {address:?} is not an address such as 127.0.0.1:9090")
    })?;
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("http.metrics_listen: cannot listen on {addr}"))
}

/// Which parts of Postino a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything.
    All,
    /// The HTTP server only.
    Web,
    /// The scheduler only.
    Scheduler,
    /// The sender only.
    Sender,
}

/// The key that signs links in messages: configured, or generated once and
/// kept in the database.
///
/// # Errors
///
/// If the configured key is too short or the database fails.
pub async fn link_signer(settings: &Settings, pool: &PgPool) -> anyhow::Result<LinkSigner> {
    match &settings.links.secret {
        Some(secret) => {
            let key = secret.expose_secret();
            anyhow::ensure!(
                key.len() >= 32,
                "links.secret must be at least 32 characters"
            );
            Ok(LinkSigner::new(key.as_bytes()))
        }
        None => {
            let mut conn = pool.acquire().await?;
            let key = postino_db::secrets::get_or_create(&mut conn, "link_signing_key").await?;
            Ok(LinkSigner::new(&key))
        }
    }
}

/// The secret stored DKIM private keys and relay passwords are encrypted
/// under: `dkim.secret`, or a secret generated once and kept in the
/// database.
///
/// Kept in the database, the secret still keeps private keys and passwords
/// out of the API, the logs and a leaked `dkim_keys` or `smtp_servers`
/// table, but anyone with the whole database (a backup) can decrypt them;
/// `dkim.secret`, kept elsewhere, closes that gap at the cost of one more
/// secret to manage.
async fn vault_secret(settings: &Settings, pool: &PgPool) -> anyhow::Result<Vec<u8>> {
    Ok(match &settings.dkim.secret {
        Some(secret) => {
            let key = secret.expose_secret();
            anyhow::ensure!(
                key.len() >= 32,
                "dkim.secret must be at least 32 characters"
            );
            key.as_bytes().to_vec()
        }
        None => {
            let mut conn = pool.acquire().await?;
            postino_db::secrets::get_or_create(&mut conn, "dkim_encryption_key").await?
        }
    })
}

/// The key that encrypts stored DKIM private keys (see [`vault_secret`]).
///
/// # Errors
///
/// If the configured secret is too short or the database fails.
pub async fn dkim_vault(settings: &Settings, pool: &PgPool) -> anyhow::Result<KeyVault> {
    let secret = vault_secret(settings, pool).await?;
    KeyVault::new(&secret).map_err(|e| anyhow::anyhow!("dkim.secret: {e}"))
}

/// The key that encrypts stored relay passwords: derived from the DKIM
/// vault's secret for this purpose alone (see [`vault_secret`]).
///
/// # Errors
///
/// If the configured secret is too short or the database fails.
pub async fn relay_passwords(settings: &Settings, pool: &PgPool) -> anyhow::Result<PasswordVault> {
    let secret = vault_secret(settings, pool).await?;
    PasswordVault::new(&secret).map_err(|e| anyhow::anyhow!("dkim.secret: {e}"))
}

/// Seals the relay passwords still stored in plain text (rows from before
/// passwords were sealed) and empties their plain column, in one
/// transaction; returns how many. Runs at every start, before anything
/// reads relays; after the first it finds nothing to do.
///
/// # Errors
///
/// If the database fails or the system has no randomness.
pub async fn seal_relay_passwords(settings: &Settings, pool: &PgPool) -> anyhow::Result<usize> {
    let vault = relay_passwords(settings, pool).await?;
    let mut tx = pool.begin().await?;
    let plain = postino_db::smtp_servers::plain_passwords(&mut tx).await?;
    for (id, password) in &plain {
        let sealed = vault.seal(password)?;
        postino_db::smtp_servers::store_sealed_password(&mut tx, *id, &sealed).await?;
    }
    tx.commit().await?;
    if !plain.is_empty() {
        tracing::info!(relays = plain.len(), "stored SMTP passwords sealed");
    }
    Ok(plain.len())
}

/// How this installation addresses its messages: link signing, the public
/// URL, the mailto unsubscribe, the bounce domain and the DKIM key vault.
///
/// # Errors
///
/// If the link-signing key is unusable or the database fails.
pub async fn addressing(settings: &Settings, pool: &PgPool) -> anyhow::Result<Addressing> {
    Ok(Addressing {
        signer: link_signer(settings, pool).await?,
        root_url: settings.http.root_url.clone(),
        unsubscribe_mailto: settings.sender.unsubscribe_mailto.clone(),
        bounce_domain: settings.sender.bounce_domain.clone(),
        dkim_vault: dkim_vault(settings, pool).await?,
        relay_passwords: relay_passwords(settings, pool).await?,
    })
}

/// Seals any relay password still stored in plain text, then stores the
/// `[smtp]` relay as the first SMTP server when none exists, so a fresh
/// installation sends through the relay its configuration names.
///
/// # Errors
///
/// If the database fails.
pub async fn seed_smtp_server(settings: &Settings, pool: &PgPool) -> anyhow::Result<()> {
    seal_relay_passwords(settings, pool).await?;
    let sealed = if settings.smtp.password.expose_secret().is_empty() {
        None
    } else {
        Some(
            relay_passwords(settings, pool)
                .await?
                .seal(&settings.smtp.password)?,
        )
    };
    let mut conn = pool.acquire().await?;
    let seeded = postino_db::smtp_servers::seed_if_empty(
        &mut conn,
        &postino_db::smtp_servers::NewSmtpServer {
            name: "default",
            enabled: true,
            settings: &settings.smtp,
            policy: &postino_domain::ServerPolicy::default(),
            sealed_password: sealed.as_deref(),
        },
    )
    .await?;
    if seeded {
        tracing::info!(host = %settings.smtp.host, port = settings.smtp.port, "SMTP server \"default\" stored from [smtp]");
    }
    Ok(())
}

/// Runs the sender role alone, without a listener, until `shutdown`.
///
/// # Errors
///
/// If the configuration is invalid or the database unreachable at start.
pub async fn run_sender(settings: &Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    settings.validate()?;
    let pool = open_database(settings).await?;
    seed_smtp_server(settings, &pool).await?;
    let addressing = addressing(settings, &pool).await?;
    let metrics_stop = shutdown.child_token();
    let metrics = match settings.sender.metrics_listen {
        Some(addr) => {
            let handle = postino_web::prometheus().map_err(|e| anyhow::anyhow!("metrics: {e}"))?;
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("sender.metrics_listen: cannot listen on {addr}"))?;
            tracing::info!(address = %addr, "sender metrics served");
            let stop = metrics_stop.clone();
            let token = settings.http.metrics_token.clone();
            Some(tokio::spawn(async move {
                let router = postino_web::metrics_router(handle, token);
                axum::serve(listener, router)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await
            }))
        }
        None => None,
    };
    let templates = settings.templates.sandbox()?;
    let result = postino_sender::run(
        pool.clone(),
        settings.sender.clone(),
        addressing,
        templates,
        shutdown,
    )
    .await;
    pool.close().await;
    metrics_stop.cancel();
    if let Some(server) = metrics {
        let _ = server.await;
    }
    result.map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))
}

impl Application {
    /// Prepares the database and binds the listener (port 0 picks a free port).
    ///
    /// # Errors
    ///
    /// A message naming the setting at fault.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        settings.validate()?;
        let listener = bind(&settings.http).await?;
        let metrics_listener = match &settings.http.metrics_listen {
            Some(address) => Some(bind_metrics(address).await?),
            None => None,
        };
        let pool = open_database(&settings).await?;
        seed_smtp_server(&settings, &pool).await?;
        Ok(Self {
            listener,
            metrics_listener,
            pool,
            settings,
        })
    }

    /// The port actually bound.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map_or(0, |a| a.port())
    }

    /// The port `/metrics` is served on when `http.metrics_listen` is set.
    #[must_use]
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .map(|a| a.port())
    }

    /// The pool, for tests and seeding.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Serves until `shutdown` is cancelled, then lets in-flight requests
    /// finish (each is bounded by the request timeout) and closes the pool.
    ///
    /// # Errors
    ///
    /// If the server fails or metrics cannot be set up.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        self.run(Role::All, shutdown).await
    }

    /// Serves `role` until `shutdown` is cancelled; see [`Application::run_until_stopped`].
    ///
    /// # Errors
    ///
    /// If the server fails or metrics cannot be set up.
    pub async fn run(self, role: Role, shutdown: CancellationToken) -> anyhow::Result<()> {
        let metrics = postino_web::prometheus().map_err(|e| anyhow::anyhow!("metrics: {e}"))?;
        let addressing = addressing(&self.settings, &self.pool).await?;
        let templates = self.settings.templates.sandbox()?;
        let state = AppState {
            db: self.pool.clone(),
            metrics,
            settings: self.settings.http.clone(),
            service: postino_service::Context {
                templates: templates.clone(),
                addressing: addressing.clone(),
                campaigns: self.settings.campaigns.clone(),
                imports: self.settings.import.clone(),
                allow_private_relay_hosts: self.settings.http.allow_private_relay_hosts,
            },
        };
        let scheduler = matches!(role, Role::All | Role::Scheduler).then(|| {
            tokio::spawn(postino_scheduler::run(
                self.pool.clone(),
                self.settings.scheduler.clone(),
                shutdown.clone(),
            ))
        });
        let sender = matches!(role, Role::All | Role::Sender).then(|| {
            tokio::spawn(postino_sender::run(
                self.pool.clone(),
                self.settings.sender.clone(),
                addressing,
                templates,
                shutdown.clone(),
            ))
        });
        let metrics_server = self.metrics_listener.map(|listener| {
            let router = postino_web::metrics_router(
                state.metrics.clone(),
                state.settings.metrics_token.clone(),
            );
            let stop = shutdown.clone();
            tokio::spawn(async move {
                axum::serve(listener, router)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await
            })
        });
        let app = postino_web::router(state);
        // Import jobs run beside the web server; on shutdown the worker
        // finishes its batch and puts its job back in the queue.
        let importer = tokio::spawn(postino_importer::worker::run(
            self.pool.clone(),
            self.settings.import.clone(),
            shutdown.clone(),
        ));
        tracing::info!(address = %self.listener.local_addr()?, "listening");
        // The connecting address, for limits per client (failed sign-ins).
        let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown.clone().cancelled_owned())
            .await
            .context("web server failed");
        shutdown.cancel();
        if let Some(server) = metrics_server {
            match server.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "metrics server failed"),
                Err(e) => tracing::error!(error = %e, "metrics server panicked"),
            }
        }
        if let Err(e) = importer.await {
            tracing::error!(error = %e, "import worker panicked");
        }
        if let Some(scheduler) = scheduler {
            let _ = scheduler.await;
        }
        if let Some(sender) = sender {
            match sender.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "sender stopped"),
                Err(e) => tracing::error!(error = %e, "sender panicked"),
            }
        }
        served?;
        self.pool.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Cancels `token` on SIGINT (Ctrl-C) or SIGTERM.
pub fn cancel_on_signals(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot listen for SIGTERM");
                        let _ = ctrl_c.await;
                        token.cancel();
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutting down");
        token.cancel();
    });
}
