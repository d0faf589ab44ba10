//! Test sends: a campaign's real message to a few addresses, through the
//! sender's priority lane, with each server's reply.
//!
//! The sender alone speaks SMTP: a test send is one `test` delivery per
//! address, which the sender takes ahead of any bulk work, through the
//! campaign's relay group and under the same limits, signed with the same
//! key. The caller waits a bounded time for the replies; a connection is
//! held only while asking, never while waiting.

use std::time::Duration;

use postino_db::{PgPool, campaigns, smtp_servers, test_sends};
use postino_domain::{DeliveryStatus, EmailAddress};
use uuid::Uuid;

use crate::dkim::{Signing, signers_for};
use crate::{Context, Error, Result};

/// Most addresses one test send may go to.
pub const MAX_TEST_RECIPIENTS: usize = 10;
/// How long a test send waits for the sender's answers before replying
/// with what it has.
pub const WAIT: Duration = Duration::from_secs(15);
/// How often it looks for them meanwhile.
const POLL: Duration = Duration::from_millis(100);

/// What became of one test address.
#[derive(Debug, Clone)]
pub struct TestOutcome {
    /// The address.
    pub email: String,
    /// Whether the server took it.
    pub accepted: bool,
    /// SMTP reply code, when the server answered.
    pub code: Option<u16>,
    /// SMTP reply text, the connection error, or why it is not sent yet.
    pub reply: String,
    /// `sent` or `failed` once the sender tried it; `queued` or `sending`
    /// when it had not answered in time (it goes out when a sender takes it).
    pub status: DeliveryStatus,
}

impl TestOutcome {
    fn of(t: &test_sends::TestSend) -> Self {
        let reply = match t.status {
            DeliveryStatus::Queued => format!(
                "not sent yet: no sender has taken it in {} s; it stays queued and goes out when one does",
                WAIT.as_secs()
            ),
            DeliveryStatus::Sending => format!(
                "not answered yet: a sender has been sending it for up to {} s; the reply will be recorded",
                WAIT.as_secs()
            ),
            _ => t.reply.clone().unwrap_or_default(),
        };
        Self {
            email: t.email.clone(),
            accepted: t.status == DeliveryStatus::Sent,
            code: t.code.and_then(|c| u16::try_from(c).ok()),
            reply,
            status: t.status,
        }
    }
}

/// The outcome of a test send.
#[derive(Debug, Clone)]
pub struct TestReport {
    /// One per address, in the order given.
    pub results: Vec<TestOutcome>,
    /// Whether the messages are DKIM-signed, and with which key.
    pub dkim: Signing,
}

/// Queues campaign `id` for the test addresses `emails` in the sender's
/// priority lane and reports each server's reply, waiting up to [`WAIT`]
/// for them. Merge fields use the subscriber with that address if there is
/// one, else a sample subscriber.
///
/// # Errors
///
/// [`Error::Invalid`] for no or too many addresses, [`Error::NotFound`],
/// [`Error::Conflict`] when no relay is enabled.
pub async fn send(
    ctx: &Context,
    db: &PgPool,
    id: Uuid,
    emails: &[EmailAddress],
) -> Result<TestReport> {
    if emails.is_empty() || emails.len() > MAX_TEST_RECIPIENTS {
        return Err(Error::invalid(
            "emails",
            format!("give 1 to {MAX_TEST_RECIPIENTS} addresses"),
        ));
    }
    let (ids, dkim) = {
        let mut conn = db.acquire().await?;
        let campaign = campaigns::get(&mut conn, id)
            .await
            .map_err(Error::not_found("campaign"))?;
        if smtp_servers::enabled(&mut conn).await?.is_empty() {
            return Err(Error::conflict(
                "",
                "no SMTP server is enabled: add one under /api/v1/smtp-servers",
            ));
        }
        let from = &campaign.fields.from_email;
        let (signers, unusable) = signers_for(&mut conn, &ctx.addressing, from).await?;
        let dkim = Signing::outcome(signers.key_for(from.domain()), &unusable, from);
        (
            test_sends::enqueue(&mut conn, campaign.id, emails).await?,
            dkim,
        )
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    let sends = loop {
        let sends = {
            let mut conn = db.acquire().await?;
            test_sends::results(&mut conn, &ids).await?
        };
        let waiting = sends
            .iter()
            .any(|t| matches!(t.status, DeliveryStatus::Queued | DeliveryStatus::Sending));
        if !waiting || tokio::time::Instant::now() >= deadline {
            break sends;
        }
        tokio::time::sleep(POLL).await;
    };
    let results = emails
        .iter()
        .zip(&ids)
        .map(|(email, id)| match sends.iter().find(|t| t.id == *id) {
            Some(t) => TestOutcome::of(t),
            None => TestOutcome {
                email: email.to_string(),
                accepted: false,
                code: None,
                reply: "not sent: the campaign was deleted meanwhile".to_owned(),
                status: DeliveryStatus::Failed,
            },
        })
        .collect();
    Ok(TestReport { results, dkim })
}
