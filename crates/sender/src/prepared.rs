//! Campaigns compiled once for all their recipients (and, for priority
//! mail, for campaigns in any state), and which campaigns may send right
//! now.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use postino_compose::{CampaignIdentity, CampaignSource};
use postino_db::sending::RunningCampaign;
use postino_db::{PgConnection, campaigns, templates};
use postino_domain::ServerGroup;
use postino_sandbox::{Sandbox, Template};

/// A campaign ready to render: templates compiled, addressing resolved.
#[derive(Debug)]
pub(crate) struct PreparedCampaign {
    /// Its templates, compiled in the rendering processes.
    pub(crate) template: Template,
    pub(crate) identity: CampaignIdentity,
    /// The relay group it is pinned to, if any.
    pub(crate) smtp_group: Option<ServerGroup>,
}

async fn prepare(
    conn: &mut PgConnection,
    templates: &Sandbox,
    id: i64,
) -> Result<PreparedCampaign, String> {
    let c = campaigns::get_by_id(conn, id)
        .await
        .map_err(|e| e.to_string())?;
    let layout = match c.fields.template_id {
        Some(t) => Some(
            templates::get_by_id(conn, t)
                .await
                .map_err(|e| e.to_string())?
                .body,
        ),
        None => None,
    };
    let f = c.fields;
    let smtp_group = f.smtp_group.clone();
    let template = templates
        .compile(&CampaignSource {
            uuid: c.uuid,
            name: &f.name,
            subject: &f.subject,
            body: &f.body,
            format: f.body_format,
            text_body: f.text_body.as_deref(),
            layout: layout.as_deref(),
        })
        .await
        .map_err(|e| e.to_string())?;
    Ok(PreparedCampaign {
        template,
        identity: CampaignIdentity {
            uuid: c.uuid,
            from_name: f.from_name,
            from_email: f.from_email,
            reply_to: f.reply_to,
            headers: f.headers,
        },
        smtp_group,
    })
}

/// How long a campaign that failed to prepare waits before another try.
const RETRY_BROKEN: Duration = Duration::from_secs(60);

/// How long a campaign compiled only for priority mail (a draft being
/// tested) is kept without use: long enough for a round of test sends.
const PRIORITY_KEPT: Duration = Duration::from_secs(600);

/// The claimer's cache of compiled campaigns, keyed by campaign and its
/// last change, so an edit made while paused is picked up on resume.
#[derive(Debug, Default)]
pub(crate) struct Cache {
    prepared: HashMap<RunningCampaign, Arc<PreparedCampaign>>,
    /// Campaigns that failed to prepare, and when, so the error is logged
    /// once a minute rather than on every pass.
    broken: HashMap<RunningCampaign, Instant>,
    /// A campaign was prepared since the last [`Cache::take_fresh`].
    fresh: bool,
    /// Campaigns compiled for priority deliveries while not running, by
    /// key: their last change, and when a priority delivery last used them.
    priority: HashMap<i64, (DateTime<Utc>, Arc<PreparedCampaign>, Instant)>,
}

impl Cache {
    /// Prepares every running campaign not yet cached and forgets the ones
    /// no longer running. Returns the ids that can be claimed for.
    pub(crate) async fn refresh(
        &mut self,
        conn: &mut PgConnection,
        running: &[RunningCampaign],
        templates: &Sandbox,
    ) -> Vec<i64> {
        self.prepared.retain(|k, _| running.contains(k));
        self.broken
            .retain(|k, at| running.contains(k) && at.elapsed() < RETRY_BROKEN);
        let mut ready = Vec::with_capacity(running.len());
        for campaign in running {
            if self.prepared.contains_key(campaign) {
                ready.push(campaign.id);
                continue;
            }
            if self.broken.contains_key(campaign) {
                continue;
            }
            match prepare(conn, templates, campaign.id).await {
                Ok(p) => {
                    self.prepared.insert(*campaign, Arc::new(p));
                    ready.push(campaign.id);
                    self.fresh = true;
                }
                Err(e) => {
                    // Templates are checked when saved, so this is a stored
                    // campaign gone bad or a database hiccup: hold its
                    // deliveries in the queue rather than fail them.
                    tracing::error!(campaign = campaign.id, error = %e, "cannot prepare campaign; its deliveries wait");
                    self.broken.insert(*campaign, Instant::now());
                }
            }
        }
        ready
    }

    /// Whether a campaign started (or changed) since the last call: what
    /// it sends with, such as its DKIM key, must be current.
    pub(crate) fn take_fresh(&mut self) -> bool {
        std::mem::take(&mut self.fresh)
    }

    /// The campaign `key` for a priority delivery, in whatever state: the
    /// running one if it is cached, else compiled now and kept a while.
    /// The flag says it was compiled now, so what it sends with (relays,
    /// DKIM keys) should be reread first.
    ///
    /// # Errors
    ///
    /// Why it cannot be compiled; unlike a running campaign's, that is the
    /// answer the waiting user gets.
    pub(crate) async fn for_priority(
        &mut self,
        conn: &mut PgConnection,
        key: RunningCampaign,
        templates: &Sandbox,
    ) -> Result<(Arc<PreparedCampaign>, bool), String> {
        self.priority
            .retain(|_, (_, _, used)| used.elapsed() < PRIORITY_KEPT);
        if let Some(p) = self.prepared.get(&key) {
            return Ok((p.clone(), false));
        }
        if let Some((version, p, used)) = self.priority.get_mut(&key.id)
            && *version == key.updated_at
        {
            *used = Instant::now();
            return Ok((p.clone(), false));
        }
        let p = Arc::new(prepare(conn, templates, key.id).await?);
        self.priority
            .insert(key.id, (key.updated_at, p.clone(), Instant::now()));
        Ok((p, true))
    }

    /// The prepared campaign for a claimed delivery.
    pub(crate) fn get(&self, id: i64) -> Option<Arc<PreparedCampaign>> {
        self.prepared
            .iter()
            .find(|(k, _)| k.id == id)
            .map(|(_, v)| v.clone())
    }
}

/// Which campaigns are running, as last seen by the claimer; workers check
/// it before each send so a pause or cancel stops sending within one
/// claimer pass rather than after everything already claimed.
#[derive(Debug, Default)]
pub(crate) struct Running(RwLock<HashSet<i64>>);

impl Running {
    pub(crate) fn set(&self, ids: impl IntoIterator<Item = i64>) {
        if let Ok(mut set) = self.0.write() {
            set.clear();
            set.extend(ids);
        }
    }

    /// Stops `id` at once (the campaign paused itself), ahead of the
    /// next reread.
    pub(crate) fn remove(&self, id: i64) {
        if let Ok(mut set) = self.0.write() {
            set.remove(&id);
        }
    }

    pub(crate) fn contains(&self, id: i64) -> bool {
        self.0.read().is_ok_and(|s| s.contains(&id))
    }
}
