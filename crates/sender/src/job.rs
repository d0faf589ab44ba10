//! A claimed delivery on its way to a worker, with the campaign it renders
//! from and, once rendered, its content.

use std::sync::Arc;
use std::time::Instant;

use postino_compose::{Addressing, Recipient, Rendered};
use postino_db::sending::{Claimed, Outcome, Recorded};

use crate::prepared::PreparedCampaign;

/// A claimed delivery on its way to a worker.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) claimed: Claimed,
    pub(crate) campaign: Arc<PreparedCampaign>,
    /// After this instant the claim may belong to someone else: the job is
    /// handed back unsent.
    pub(crate) lease_deadline: Instant,
    /// Its message's content, rendered with the rest of its claim (see
    /// [`prerender`]); `None` renders it when sent.
    pub(crate) rendered: Option<Result<Rendered, postino_sandbox::Error>>,
}

impl Job {
    /// The result that hands the claim back to the queue unsent.
    pub(crate) fn released(&self) -> Recorded {
        self.settled(Outcome::Released)
    }

    /// The result recording `outcome` for this claim.
    pub(crate) fn settled(&self, outcome: Outcome) -> Recorded {
        Recorded {
            id: self.claimed.id,
            attempt: self.claimed.attempt,
            outcome,
        }
    }

    /// Whether it is to be rendered and sent at all: a campaign recipient
    /// no longer in the audience is skipped, a priority delivery never is.
    pub(crate) fn is_addressed(&self) -> bool {
        self.claimed.kind.is_priority() || self.claimed.list_uuid.is_some()
    }
}

/// The recipient as templates see them: the subscriber, or for a test send
/// to an address nobody has, the sample subscriber at that address (as the
/// preview shows it).
pub(crate) fn recipient_of(c: &Claimed) -> Recipient {
    match &c.subscriber {
        Some(s) => Recipient {
            id: s.uuid,
            email: c.email.clone(),
            name: s.name.clone(),
            attributes: match &s.attributes {
                serde_json::Value::Object(map) => map.clone(),
                _ => serde_json::Map::new(),
            },
            created_at: s.created_at,
        },
        None => Recipient {
            email: c.email.clone(),
            ..Recipient::sample()
        },
    }
}

/// Renders the jobs of one claim in one sandbox request per campaign: a
/// round trip per message would cost more than building it. A recipient
/// whose render kills its child is retried alone by the sandbox, so only
/// that one fails.
pub(crate) async fn prerender(jobs: &mut [Job], addressing: &Addressing) {
    let mut campaigns: Vec<i64> = jobs.iter().map(|j| j.claimed.campaign_id).collect();
    campaigns.sort_unstable();
    campaigns.dedup();
    for campaign in campaigns {
        let mine: Vec<usize> = (0..jobs.len())
            .filter(|&i| jobs[i].claimed.campaign_id == campaign && jobs[i].is_addressed())
            .collect();
        let Some(&first) = mine.first() else {
            continue;
        };
        let template = jobs[first].campaign.template.clone();
        let identity = jobs[first].campaign.identity.uuid;
        let recipients: Vec<(Recipient, String)> = mine
            .iter()
            .map(|&i| {
                let r = recipient_of(&jobs[i].claimed);
                let url = addressing.unsubscribe_url(identity, r.id);
                (r, url)
            })
            .collect();
        let pairs: Vec<(&Recipient, &str)> =
            recipients.iter().map(|(r, u)| (r, u.as_str())).collect();
        let results = template.render_many(&pairs).await;
        for (i, result) in mine.into_iter().zip(results) {
            jobs[i].rendered = Some(result);
        }
    }
}
