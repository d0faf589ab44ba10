//! Layered configuration: built-in defaults, then a TOML file, then
//! `DATABASE_URL`, then `POSTINO__SECTION__KEY` environment variables.

use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use postino_db::DbSettings;
use postino_sandbox::{Limits, Sandbox};
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
    /// `[templates]`: the processes campaign templates render in.
    pub templates: TemplateSettings,
}

/// Campaign templates render in child processes with a memory limit and a
/// deadline, so a hostile template can stop only its own render.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TemplateSettings {
    /// The binary started for rendering (with `template-sandbox`): this
    /// one when unset. Set only where this binary is not `postino`.
    pub sandbox_program: Option<PathBuf>,
    /// Address space of each rendering process, in MiB.
    pub memory_mib: u64,
    /// Rendering processes at once in each Postino process; 0: one a core.
    pub processes: usize,
    /// Longest compile or render of one message, in seconds.
    pub timeout_secs: u64,
}

impl Default for TemplateSettings {
    fn default() -> Self {
        Self {
            sandbox_program: None,
            memory_mib: 512,
            processes: 0,
            timeout_secs: 10,
        }
    }
}

impl TemplateSettings {
    /// The pool of rendering processes these settings describe.
    ///
    /// # Errors
    ///
    /// If no program is set and this binary's path is unknown.
    pub fn sandbox(&self) -> anyhow::Result<Sandbox> {
        let mut limits = Limits {
            memory_bytes: self.memory_mib.saturating_mul(1024 * 1024),
            timeout: Duration::from_secs(self.timeout_secs),
            ..Limits::default()
        };
        if self.processes > 0 {
            limits.processes = self.processes;
        }
        Ok(match &self.sandbox_program {
            Some(program) => Sandbox::new(program.clone(), limits),
            None => Sandbox::of_this_binary(limits)?,
        })
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.memory_mib < 64 {
            anyhow::bail!("invalid configuration: templates.memory_mib: must be at least 64");
        }
        if self.timeout_secs == 0 {
            anyhow::bail!("invalid configuration: templates.timeout_secs: must be at least 1");
        }
        Ok(())
    }
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
        self.templates.validate()?;
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
