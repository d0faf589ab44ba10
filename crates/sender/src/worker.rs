//! One worker: one SMTP connection, one message at a time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use postino_compose::{Addressee, Addressing, Recipient};
use postino_db::sending::{Claimed, Outcome, Recorded};
use postino_domain::{EmailAddress, RetryPolicy};
use postino_smtp::{Connection, SendOutcome, SmtpSettings};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::prepared::{PreparedCampaign, Running};

/// A claimed delivery on its way to a worker.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) claimed: Claimed,
    pub(crate) campaign: Arc<PreparedCampaign>,
    /// After this instant the claim may belong to someone else: the job is
    /// handed back unsent.
    pub(crate) lease_deadline: Instant,
}

impl Job {
    pub(crate) fn released(&self) -> Recorded {
        Recorded {
            id: self.claimed.id,
            attempt: self.claimed.attempt,
            outcome: Outcome::Released,
        }
    }
}

/// What every worker shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) addressing: Addressing,
    pub(crate) retry: RetryPolicy,
    pub(crate) running: Running,
    pub(crate) dkim: crate::dkim::Keys,
}

/// An open connection is closed after this long without work, so an idle
/// sender holds no sessions on the relay.
const IDLE_CLOSE: Duration = Duration::from_secs(10);
/// Pause after a failed connect, doubling up to [`MAX_CONNECT_PAUSE`], so a
/// relay that is down is not hammered (the queue waits meanwhile).
const FIRST_CONNECT_PAUSE: Duration = Duration::from_millis(250);
const MAX_CONNECT_PAUSE: Duration = Duration::from_secs(30);

/// Takes jobs until `stop` is cancelled or the job channel closes.
pub(crate) async fn run(
    server: Arc<SmtpSettings>,
    jobs: async_channel::Receiver<Job>,
    results: mpsc::Sender<Recorded>,
    shared: Arc<Shared>,
    stop: CancellationToken,
) {
    let mut conn: Option<Connection> = None;
    let mut connect_pause = FIRST_CONNECT_PAUSE;
    loop {
        let job = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            job = jobs.recv() => match job {
                Ok(job) => job,
                Err(_) => break,
            },
            () = tokio::time::sleep(IDLE_CLOSE), if conn.is_some() => {
                if let Some(c) = conn.take() {
                    c.close().await;
                }
                continue;
            }
        };
        let (recorded, connect_failed) = deliver(&server, &shared, &mut conn, &job).await;
        if results.send(recorded).await.is_err() {
            break;
        }
        if connect_failed {
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(connect_pause) => {}
            }
            connect_pause = (connect_pause * 2).min(MAX_CONNECT_PAUSE);
        } else {
            connect_pause = FIRST_CONNECT_PAUSE;
        }
    }
    if let Some(c) = conn {
        c.close().await;
    }
}

fn recipient_of(c: &Claimed) -> Recipient {
    Recipient {
        id: c.subscriber_uuid,
        email: c.email.clone(),
        name: c.name.clone(),
        attributes: match &c.attributes {
            serde_json::Value::Object(map) => map.clone(),
            _ => serde_json::Map::new(),
        },
        created_at: c.subscribed_at,
    }
}

fn failed(reply: String) -> Outcome {
    Outcome::Failed {
        code: None,
        reply,
        bounce: false,
    }
}

/// Sends one job; returns its result and whether the relay could not be
/// reached at all.
async fn deliver(
    server: &SmtpSettings,
    shared: &Shared,
    conn: &mut Option<Connection>,
    job: &Job,
) -> (Recorded, bool) {
    let c = &job.claimed;
    let record = |outcome| Recorded {
        id: c.id,
        attempt: c.attempt,
        outcome,
    };
    if !shared.running.contains(c.campaign_id) || Instant::now() >= job.lease_deadline {
        return (job.released(), false);
    }
    let Some(list) = c.list_uuid else {
        return (
            record(Outcome::Skipped {
                reason: "unsubscribed or blocklisted after the campaign was queued".to_owned(),
            }),
            false,
        );
    };
    let to = match EmailAddress::parse(&c.email) {
        Ok(to) => to,
        Err(e) => {
            return (
                record(failed(format!("stored address is not usable: {e}"))),
                false,
            );
        }
    };
    let recipient = recipient_of(c);
    let composed = shared.addressing.compose(
        &job.campaign.compiled,
        &job.campaign.identity,
        Addressee {
            recipient: &recipient,
            to: &to,
            list: Some(list),
            delivery: Some(c.id),
        },
    );
    let mut message = match composed {
        Ok((_, message)) => message,
        Err(e) => {
            return (
                record(failed(format!("cannot compose the message: {e}"))),
                false,
            );
        }
    };
    if let Err(e) = shared
        .dkim
        .sign(&job.campaign.identity.from_email, &mut message)
    {
        return (record(failed(e.to_string())), false);
    }
    if conn.as_ref().is_some_and(|c| !c.is_reusable())
        && let Some(old) = conn.take()
    {
        old.close().await;
    }
    if conn.is_none() {
        match Connection::open(server).await {
            Ok(opened) => *conn = Some(opened),
            Err(outcome) => {
                tracing::warn!(host = %server.host, port = server.port, reply = ?outcome, "cannot open an SMTP session");
                return (record(settle(shared, c, outcome)), true);
            }
        }
    }
    let Some(session) = conn.as_mut() else {
        return (job.released(), true);
    };
    let outcome = session
        .send(&message.from, &message.to, &message.bytes)
        .await;
    if !session.is_reusable() {
        // Broken by the failure (lettre drops a session on any error reply).
        *conn = None;
    }
    (record(settle(shared, c, outcome)), false)
}

/// Turns the relay's answer into what to record: retry a temporary failure
/// with backoff until the first attempt is too old, fail a permanent one as
/// a hard bounce.
fn settle(shared: &Shared, c: &Claimed, outcome: SendOutcome) -> Outcome {
    match outcome {
        SendOutcome::Sent { code, reply } => Outcome::Sent { code, reply },
        SendOutcome::PermFail { code, reply } => Outcome::Failed {
            code,
            // A 5xx from the server is the recipient refused; a refusal we
            // made ourselves (say, no SMTPUTF8) says nothing about them.
            bounce: code.is_some(),
            reply,
        },
        SendOutcome::TempFail { code, reply } => {
            let age = (Utc::now() - c.first_attempt_at)
                .to_std()
                .unwrap_or(Duration::ZERO);
            if shared.retry.may_retry(age) {
                let attempts = u32::try_from(c.attempt).unwrap_or(1).max(1);
                let delay = shared.retry.delay(attempts, rand::random::<f64>());
                // The delay is bounded by retry_max, so this cannot overflow
                // for any sane setting; should it, retry at once.
                let retry_at = chrono::Duration::from_std(delay)
                    .ok()
                    .and_then(|d| Utc::now().checked_add_signed(d))
                    .unwrap_or_else(Utc::now);
                Outcome::Retry {
                    code,
                    reply,
                    retry_at,
                }
            } else {
                Outcome::Failed {
                    code,
                    reply: format!(
                        "gave up after {} attempts over {}s; last reply: {reply}",
                        c.attempt,
                        age.as_secs()
                    ),
                    bounce: false,
                }
            }
        }
    }
}
