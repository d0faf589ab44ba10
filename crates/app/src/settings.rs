//! Layered configuration: built-in defaults, then a TOML file, then
//! `DATABASE_URL`, then `POSTINO__SECTION__KEY` environment variables.

use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use postino_db::DbSettings;
use postino_scheduler::SchedulerSettings;
use postino_smtp::SmtpSettings;
use postino_web::{CampaignSettings, WebSettings};
use secrecy::SecretString;
use serde::Deserialize;

/// Everything Postino can be configured with.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `[database]`: where PostgreSQL is.
    pub database: DbSettings,
    /// `[http]`: the web server.
    pub http: WebSettings,
    /// `[log]`: logging.
    pub log: LogSettings,
    /// `[smtp]`: the relay messages go out through.
    pub smtp: SmtpSettings,
    /// `[scheduler]`: campaign start and enqueue.
    pub scheduler: SchedulerSettings,
    /// `[campaigns]`: rules for campaigns.
    pub campaigns: CampaignSettings,
    /// `[links]`: signing of links in messages.
    pub links: LinkSettings,
    /// `[import]`: CSV import jobs.
    pub import: postino_importer::ImportSettings,
    /// `[sender]`: delivery workers, retries, bounces.
    pub sender: postino_sender::SenderSettings,
    /// `[dkim]`: how stored DKIM private keys are encrypted.
    pub dkim: DkimSettings,
}

/// How DKIM private keys are encrypted in the database.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DkimSettings {
    /// The secret (at least 32 characters) that encrypts stored private
    /// keys. When unset, Postino generates one and keeps it in the database:
    /// keys are then safe from the API and from a leaked copy of the
    /// `dkim_keys` table alone, but not from a copy of the whole database.
    /// Set it (from a secrets manager) to keep the keys safe in backups too;
    /// changing it makes the stored keys unusable until it is set back.
    pub secret: Option<SecretString>,
}

/// How links in messages are signed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinkSettings {
    /// The signing key (at least 32 characters). When unset, Postino
    /// generates one and keeps it in the database, so links stay valid
    /// across restarts and across processes.
    pub secret: Option<SecretString>,
}

/// How logs are written.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `human` (default) or `json` (one object per line, for log shippers).
    pub format: LogFormat,
    /// A tracing filter such as `info` or `info,postino_web=debug`;
    /// `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Human,
            level: "info,sqlx=warn,tower_http=info".to_owned(),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines for a terminal.
    Human,
    /// JSON objects, one per line.
    Json,
}

impl Settings {
    /// Checks the values that parse but make no sense together.
    ///
    /// # Errors
    ///
    /// One line naming the key at fault.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.smtp
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid configuration: smtp.{}: {}", e.what, e.reason))?;
        self.sender
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        Ok(())
    }

    /// Loads the layers. `file` is the `--config` path, if any; a file named
    /// explicitly must exist.
    ///
    /// # Errors
    ///
    /// A message naming the key and the source (file or variable) at fault.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(serde_json::json!({})));
        if let Some(path) = file {
            if !path.is_file() {
                anyhow::bail!("config file {} does not exist", path.display());
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        if let Ok(url) = std::env::var("DATABASE_URL") {
            figment = figment.merge(Serialized::default("database.url", url));
        }
        figment = figment.merge(Env::prefixed("POSTINO__").split("__"));
        figment
            .extract::<Settings>()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {}", one_line(&e)))
    }
}

fn one_line(e: &figment::Error) -> String {
    e.clone()
        .into_iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_printed_configuration_hides_every_secret() {
        let mut settings = Settings::default();
        settings.dkim.secret = Some(SecretString::from("dkim-secret-0123456789abcdef0123456789"));
        settings.links.secret = Some(SecretString::from("link-secret-0123456789abcdef0123456789"));
        let printed = format!("{settings:#?}");
        assert!(!printed.contains("dkim-secret"), "{printed}");
        assert!(!printed.contains("link-secret"), "{printed}");
        assert!(printed.contains("dkim"));
    }
}
