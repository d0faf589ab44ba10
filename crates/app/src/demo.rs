//! The demo's database: the configured one if it answers, else a private
//! cluster started from the installed PostgreSQL binaries.

use postino_db::local_cluster::LocalCluster;

use crate::Settings;

/// The private cluster's port, away from PostgreSQL's default.
const DEMO_CLUSTER_PORT: u16 = 54330;

/// Leaves `settings.database.url` alone when its server answers; otherwise
/// starts (or reuses) a private cluster and points the settings at it.
///
/// # Errors
///
/// When neither a server nor the binaries to start one are available.
pub async fn use_local_database(settings: &mut Settings) -> anyhow::Result<()> {
    let mut probe = settings.database.clone();
    probe.connect_timeout_secs = 2;
    if postino_db::ensure_database(&probe).await.is_ok() {
        return Ok(());
    }
    let dir = std::env::temp_dir().join("postino-demo-postgres");
    tracing::info!(dir = %dir.display(), "no PostgreSQL answers; starting a private cluster");
    let cluster =
        tokio::task::spawn_blocking(move || LocalCluster::start(&dir, DEMO_CLUSTER_PORT)).await??;
    settings.database.url = cluster.url("postino");
    Ok(())
}
