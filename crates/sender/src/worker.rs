//! One worker: one SMTP connection, one message at a time, priority mail
//! first; and how the relay's answer settles a delivery.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures_util::FutureExt;
use postino_compose::Addressee;
use postino_db::sending::{Claimed, Outcome, Recorded};
use postino_domain::policy::is_slow_down;
use postino_domain::{EmailAddress, is_recipient_refusal};
use postino_smtp::{Connection, SendOutcome};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::domains::{Admit, domain_of};
use crate::job::{Job, recipient_of};
use crate::rates::Ticket;
use crate::relay::Relay;
use crate::shared::Shared;

/// How long a delivery waits when no rendering process can be started.
const SANDBOX_DOWN_WAIT_SECS: i64 = 10;

/// An open connection is closed after this long without work, so an idle
/// sender holds no sessions on the relay.
const IDLE_CLOSE: Duration = Duration::from_secs(10);

/// Sleeps `d`, or less if `stop` comes first; says whether to go on.
async fn nap(stop: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        () = stop.cancelled() => false,
        () = tokio::time::sleep(d) => true,
    }
}

/// Gathers grants from every limit of the relay, waiting as long as it
/// takes; false when stopped first.
async fn grants(
    relay: &Relay,
    shared: &Shared,
    ticket: &mut Ticket,
    stop: &CancellationToken,
) -> bool {
    if relay.rates.is_empty() {
        return true;
    }
    loop {
        let gathered = {
            let _turn = relay.gate.lock().await;
            ticket.gather(&shared.rates, &relay.rates).await
        };
        match gathered {
            Ok(()) => return true,
            Err(wait) => {
                if !nap(stop, wait).await {
                    return false;
                }
            }
        }
    }
}

/// The jobs waiting for one relay's workers.
#[derive(Debug, Clone)]
pub(crate) struct Queues {
    /// Priority mail (test sends): taken first, whatever waits in bulk.
    pub(crate) priority: async_channel::Receiver<Job>,
    /// Campaign recipients' copies.
    pub(crate) bulk: async_channel::Receiver<Job>,
}

impl Queues {
    fn try_recv(&self) -> Option<Job> {
        self.priority
            .try_recv()
            .or_else(|_| self.bulk.try_recv())
            .ok()
    }
}

/// Takes jobs, priority ones first, until `stop` is cancelled or the job
/// channels close.
pub(crate) async fn run(
    relay: Arc<Relay>,
    queues: Queues,
    results: mpsc::Sender<Recorded>,
    shared: Arc<Shared>,
    stop: CancellationToken,
) {
    let mut conn: Option<Connection> = None;
    let mut ticket = Ticket::default();
    loop {
        if let Some(until) = relay.breaker.open_until() {
            // Out of rotation: what waits here goes back to the queue, for
            // the other relays, until this one is tried again.
            if let Some(c) = conn.take() {
                c.close().await;
            }
            while let Some(job) = queues.try_recv() {
                if results.send(job.released()).await.is_err() {
                    return;
                }
            }
            if !nap(&stop, until.saturating_duration_since(Instant::now())).await {
                break;
            }
            continue;
        }
        // Take a job only once this relay's limits allow a message, so a
        // relay at its limit leaves jobs to the others. Priority mail takes
        // the same grants: it jumps the queue, not the limits.
        if !grants(&relay, &shared, &mut ticket, &stop).await {
            break;
        }
        let job = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            job = queues.priority.recv() => match job {
                Ok(job) => job,
                Err(_) => break,
            },
            job = queues.bulk.recv() => match job {
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
        // The wait for a job may have outlived the grants.
        if !grants(&relay, &shared, &mut ticket, &stop).await {
            let _ = results.send(job.released()).await;
            break;
        }
        let delivered = AssertUnwindSafe(deliver(&relay, &shared, &mut conn, &job))
            .catch_unwind()
            .await;
        let step = delivered.unwrap_or_else(|_| {
            // A bug this delivery runs into: fail it with the reason rather
            // than lose the worker and hand the delivery to the next one.
            tracing::error!(
                delivery = job.claimed.id,
                "sending a delivery panicked; it is failed"
            );
            conn = None;
            Step::not_attempted(job.settled(failed(
                "not tried again: an internal error stopped it".to_owned(),
            )))
        });
        shared.suspect.done(job.claimed.id);
        if step.attempted {
            ticket.spend();
        }
        // A relay that cannot be reached is paced by its breaker, which
        // the top of the loop consults.
        if results.send(step.recorded).await.is_err() {
            break;
        }
    }
    if let Some(c) = conn {
        c.close().await;
    }
}

fn failed(reply: String) -> Outcome {
    Outcome::Failed {
        code: None,
        reply,
        bounce: false,
    }
}

/// What became of one job.
#[derive(Debug)]
struct Step {
    recorded: Recorded,
    /// The message went to the relay (whatever it answered): the grants
    /// for it are used up.
    attempted: bool,
}

impl Step {
    fn not_attempted(recorded: Recorded) -> Self {
        Self {
            recorded,
            attempted: false,
        }
    }
}

/// Sends one job. A campaign recipient's copy goes only while its campaign
/// runs and they are still in its audience; a priority one (a test send)
/// goes whatever the campaign's state, and only once.
async fn deliver(relay: &Relay, shared: &Shared, conn: &mut Option<Connection>, job: &Job) -> Step {
    let c = &job.claimed;
    let record = |outcome| job.settled(outcome);
    let priority = c.kind.is_priority();
    if (!priority && !shared.running.contains(c.campaign_id))
        || Instant::now() >= job.lease_deadline
    {
        return Step::not_attempted(job.released());
    }
    if !job.is_addressed() {
        return Step::not_attempted(record(Outcome::Skipped {
            reason: "unsubscribed or blocklisted after the campaign was queued".to_owned(),
        }));
    }
    let to = match EmailAddress::parse(&c.email) {
        Ok(to) => to,
        Err(e) => {
            return Step::not_attempted(record(failed(format!(
                "stored address is not usable: {e}"
            ))));
        }
    };
    let domain = domain_of(to.as_str());
    let _in_flight = match shared.domains.admit(domain, &shared.rates).await {
        Admit::Go(guard) => guard,
        Admit::Defer(until) => {
            metrics::counter!("postino_domain_deferrals_total").increment(1);
            return Step::not_attempted(record(Outcome::Deferred { until }));
        }
    };
    let recipient = recipient_of(c);
    let identity = &job.campaign.identity;
    let unsubscribe_url = shared
        .addressing
        .unsubscribe_url(identity.uuid, recipient.id);
    let rendered_now;
    let rendered = match &job.rendered {
        Some(r) => r,
        None => {
            rendered_now = job
                .campaign
                .template
                .render(&recipient, &unsubscribe_url)
                .await;
            &rendered_now
        }
    };
    let rendered = match rendered {
        Ok(rendered) => rendered,
        Err(postino_sandbox::Error::Template(e)) => {
            // The template fails for this recipient, and would again.
            return Step::not_attempted(record(failed(format!("cannot compose the message: {e}"))));
        }
        Err(e @ postino_sandbox::Error::Unavailable(_)) => {
            // Not the message's fault: it waits in the queue, long enough
            // not to be claimed straight back while the sandbox is down.
            tracing::error!(error = %e, "cannot render; the delivery waits in the queue");
            let until = Utc::now() + chrono::Duration::seconds(SANDBOX_DOWN_WAIT_SECS);
            return Step::not_attempted(record(Outcome::Deferred { until }));
        }
    };
    let composed = shared.addressing.build(
        rendered,
        identity,
        Addressee {
            recipient: &recipient,
            to: &to,
            list: c.list_uuid,
            // A test send's bounces go to the sender address, as a
            // preview's would: there is no recipient to bounce.
            delivery: (!priority).then_some(c.id),
        },
    );
    let mut message = match composed {
        Ok(message) => message,
        Err(e) => {
            return Step::not_attempted(record(failed(format!("cannot compose the message: {e}"))));
        }
    };
    if let Err(e) = shared
        .dkim
        .sign(&job.campaign.identity.from_email, &mut message)
    {
        return Step::not_attempted(record(failed(e.to_string())));
    }
    if conn.as_ref().is_some_and(|c| !c.is_reusable())
        && let Some(old) = conn.take()
    {
        old.close().await;
    }
    if conn.is_none() {
        match Connection::open(&relay.settings).await {
            Ok(opened) => {
                relay.breaker.success();
                *conn = Some(opened);
            }
            Err(outcome) => {
                let (code, reply, misconfigured) = match outcome {
                    SendOutcome::PermFail { code, reply } => (code, reply, true),
                    SendOutcome::TempFail { code, reply } => (code, reply, false),
                    SendOutcome::Sent { code, reply } => (Some(code), reply, false),
                };
                tracing::warn!(relay = %relay.name, reply = %reply, "cannot open an SMTP session");
                if let Some(cooldown) = relay.breaker.failure(&reply, misconfigured) {
                    tracing::warn!(relay = %relay.name, seconds = cooldown.as_secs_f64(), "relay taken out of rotation");
                    metrics::counter!("postino_relay_trips_total", "relay" => relay.name.clone())
                        .increment(1);
                }
                if priority {
                    // Somebody is waiting for this answer: it is the result.
                    return Step::not_attempted(record(Outcome::Failed {
                        code,
                        reply,
                        bounce: false,
                    }));
                }
                // Not the recipient's fault: back to the queue, for
                // another relay or a later try, with no attempt counted.
                return Step::not_attempted(job.released());
            }
        }
    }
    let Some(session) = conn.as_mut() else {
        return Step::not_attempted(job.released());
    };
    let outcome = session
        .send(&message.from, &message.to, &message.bytes)
        .await;
    if !session.is_reusable() {
        // Broken by the failure (lettre drops a session on any error reply).
        *conn = None;
    }
    if matches!(outcome, SendOutcome::Sent { .. }) {
        shared.domains.accepted(domain);
    }
    let slow_down =
        matches!(&outcome, SendOutcome::TempFail { code, reply } if is_slow_down(*code, reply));
    if slow_down {
        // The receiver pacing us, not a failure of the campaign: the
        // throttle answers it, the alarm does not count it.
        shared.slow_down(domain).await;
    } else if !priority {
        // A test send's refusal is the answer to a test, not a sign the
        // campaign is failing.
        let failure = match &outcome {
            SendOutcome::Sent { .. } => None,
            SendOutcome::TempFail { reply, .. } | SendOutcome::PermFail { reply, .. } => {
                Some(reply)
            }
        };
        if let Some(reason) = shared.alarm.note(
            c.campaign_id,
            failure.is_some(),
            failure.map_or("", String::as_str),
        ) {
            shared.running.remove(c.campaign_id);
            let _ = shared.pauses.send((c.campaign_id, reason));
        }
    }
    Step {
        recorded: record(settle(shared, c, outcome)),
        attempted: true,
    }
}

/// Turns the relay's answer into what to record: retry a temporary failure
/// with backoff until the first attempt is too old, fail a permanent one as
/// a hard bounce. A priority delivery is tried once: any refusal fails it,
/// never as a bounce.
fn settle(shared: &Shared, c: &Claimed, outcome: SendOutcome) -> Outcome {
    match outcome {
        SendOutcome::Sent { code, reply } => Outcome::Sent { code, reply },
        SendOutcome::PermFail { code, reply } | SendOutcome::TempFail { code, reply }
            if c.kind.is_priority() =>
        {
            Outcome::Failed {
                code,
                reply,
                bounce: false,
            }
        }
        SendOutcome::PermFail { code, reply } => Outcome::Failed {
            code,
            // Only a refusal of the recipient is their bounce: one of the
            // sender or the content (5.7.x policy), or one we made
            // ourselves (say, no SMTPUTF8), says nothing about them.
            bounce: is_recipient_refusal(code, &reply),
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
