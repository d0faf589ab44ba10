//! Test sends: a campaign's real message to a few addresses, with each
//! server's reply.

use postino_compose::Recipient;
use postino_db::{PgPool, subscribers};
use postino_domain::EmailAddress;
use postino_smtp::{Connection, SendOutcome};
use uuid::Uuid;

use crate::campaigns;
use crate::dkim::{Signing, signers_for};
use crate::{Context, Error, Result};

/// Most addresses one test send may go to.
pub const MAX_TEST_RECIPIENTS: usize = 10;

/// What the server said for one test address.
#[derive(Debug, Clone)]
pub struct TestOutcome {
    /// The address.
    pub email: String,
    /// Whether the server took it.
    pub accepted: bool,
    /// SMTP reply code, when the server answered.
    pub code: Option<u16>,
    /// SMTP reply text, or the connection error.
    pub reply: String,
}

/// The outcome of a test send.
#[derive(Debug, Clone)]
pub struct TestReport {
    /// One per address, in the order given.
    pub results: Vec<TestOutcome>,
    /// Whether the messages were DKIM-signed, and with which key.
    pub dkim: Signing,
}

/// Sends campaign `id` to the test addresses `emails` and reports each
/// server's reply. Merge fields use the subscriber with that address if
/// there is one, else a sample subscriber.
///
/// # Errors
///
/// [`Error::Invalid`] for no or too many addresses, [`Error::NotFound`],
/// [`Error::Conflict`] when no relay can be used.
pub async fn send(
    ctx: &Context,
    db: &PgPool,
    id: Uuid,
    emails: &[EmailAddress],
) -> Result<TestReport> {
    let mut conn = db.acquire().await?;
    let conn = &mut *conn;
    if emails.is_empty() || emails.len() > MAX_TEST_RECIPIENTS {
        return Err(Error::invalid(
            "emails",
            format!("give 1 to {MAX_TEST_RECIPIENTS} addresses"),
        ));
    }
    let campaign = campaigns::get(conn, id).await?;
    let (compiled, _) = campaigns::compile_stored(&mut *conn, &ctx.templates, &campaign).await?;
    let server = postino_db::smtp_servers::enabled(&mut *conn)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| {
            Error::conflict(
                "",
                "no SMTP server is enabled: add one under /api/v1/smtp-servers",
            )
        })?;
    let mut settings = server.settings;
    settings.password = ctx
        .addressing
        .relay_passwords
        .open(server.sealed_password.as_ref().map(|s| s.0.as_slice()))
        .map_err(|e| Error::conflict("", format!("SMTP server {}: {e}", server.name)))?;
    let from = &campaign.fields.from_email;
    let (signers, unusable) = signers_for(conn, &ctx.addressing, from).await?;
    let mut signed_by = None;
    let mut session: Option<Connection> = None;
    let mut results = Vec::with_capacity(emails.len());
    for email in emails {
        let recipient = match subscribers::find_by_email(&mut *conn, email).await? {
            Some(s) => campaigns::recipient_of(&s),
            None => Recipient {
                email: email.to_string(),
                ..Recipient::sample()
            },
        };
        let (_, message, signed) =
            campaigns::render_message(ctx, &campaign, &compiled, &signers, &recipient, email)
                .await?;
        signed_by = signed;
        if session.as_ref().is_some_and(|s| !s.is_reusable()) {
            session = None;
        }
        let outcome = match session.as_mut() {
            Some(s) => s.send(&message.from, email, &message.bytes).await,
            None => match Connection::open(&settings).await {
                Ok(mut opened) => {
                    let outcome = opened.send(&message.from, email, &message.bytes).await;
                    session = Some(opened);
                    outcome
                }
                Err(failed) => failed,
            },
        };
        let (accepted, code, reply) = match outcome {
            SendOutcome::Sent { code, reply } => (true, Some(code), reply),
            SendOutcome::TempFail { code, reply } | SendOutcome::PermFail { code, reply } => {
                (false, code, reply)
            }
        };
        results.push(TestOutcome {
            email: email.to_string(),
            accepted,
            code,
            reply,
        });
    }
    if let Some(s) = session {
        s.close().await;
    }
    Ok(TestReport {
        results,
        dkim: Signing::outcome(signed_by.as_ref(), &unusable, from),
    })
}
