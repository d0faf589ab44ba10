//! Unsubscribing through the signed link in a message.

use postino_compose::LinkSigner;
use postino_db::{DbError, PgConnection, campaigns, subscribers};
use uuid::Uuid;

use crate::Result;

/// Who a genuine unsubscribe link is for, and from what.
#[derive(Debug, Clone)]
pub struct Unsubscribing {
    /// The campaign the message was.
    pub campaign: Uuid,
    /// The subscriber it went to.
    pub subscriber: Uuid,
    /// Their address.
    pub email: String,
    /// The names of the campaign's lists, which unsubscribing leaves.
    pub lists: Vec<String>,
}

/// What the link `token` unsubscribes, if it is genuine and its subscriber
/// and campaign still exist.
///
/// # Errors
///
/// A database failure.
pub async fn lookup(
    conn: &mut PgConnection,
    signer: &LinkSigner,
    token: &str,
) -> Result<Option<Unsubscribing>> {
    let Some((campaign, subscriber)) = signer.verify_unsubscribe(token) else {
        return Ok(None);
    };
    let email = match subscribers::get(conn, subscriber).await {
        Ok(s) => s.email.to_string(),
        Err(DbError::NotFound) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let lists = campaigns::list_names(conn, campaign).await?;
    if lists.is_empty() && campaigns::get(conn, campaign).await.is_err() {
        return Ok(None);
    }
    Ok(Some(Unsubscribing {
        campaign,
        subscriber,
        email,
        lists,
    }))
}

/// Unsubscribes from every list of the campaign, idempotently; `one_click`
/// when a mail client sent RFC 8058's POST rather than a person the page's
/// button.
///
/// # Errors
///
/// A database failure.
pub async fn confirm(conn: &mut PgConnection, who: &Unsubscribing, one_click: bool) -> Result<()> {
    let source = if one_click { "one-click" } else { "link" };
    subscribers::unsubscribe_from_campaign(conn, who.campaign, who.subscriber, source).await?;
    Ok(())
}
