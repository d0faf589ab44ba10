//! Subscribers: creating and changing them, their list memberships,
//! search conditions, bulk actions and erasure.

use chrono::{DateTime, Utc};
use postino_db::subscribers::{
    self, Existing, MembershipChange, NewSubscriber, Selection, Subscriber, SubscriberChanges,
    SubscriberFilter,
};
use postino_db::{PgConnection, lists};
use postino_domain::{MembershipStatus, OptIn, SubscriberStatus};
use serde_json::Value;
use uuid::Uuid;

use crate::{Error, FieldError, Result};

/// Most ids one bulk request may name; larger sets go by filter.
pub const MAX_BULK_IDS: usize = 10_000;
/// Most lists one request may add a subscriber to.
pub const MAX_LISTS_PER_REQUEST: usize = 100;

/// Search conditions, as typed; all must hold.
#[derive(Debug, Clone, Default)]
pub struct Conditions {
    /// Member of this list.
    pub list: Option<Uuid>,
    /// With this status on `list`.
    pub list_status: Option<MembershipStatus>,
    /// With this status.
    pub status: Option<SubscriberStatus>,
    /// Address contains this text (case-insensitive).
    pub email: Option<String>,
    /// Attributes with these keys and values (a JSON object).
    pub attributes: Option<Value>,
    /// Created at or after.
    pub created_after: Option<DateTime<Utc>>,
    /// Created before.
    pub created_before: Option<DateTime<Utc>>,
}

/// Reads the attributes condition as a query string carries it.
///
/// # Errors
///
/// [`Error::Invalid`] on `attributes` when it is not JSON.
pub fn parse_attributes(raw: Option<&str>) -> Result<Option<Value>> {
    raw.map(serde_json::from_str::<Value>)
        .transpose()
        .map_err(|_| {
            Error::invalid(
                "attributes",
                "must be a JSON object, e.g. {\"city\":\"Rome\"}",
            )
        })
}

/// What a bulk action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkKind {
    /// Blocklist them (which unsubscribes them from every list).
    Blocklist,
    /// Delete them.
    Delete,
    /// Add them to `list`.
    AddToList,
    /// Take them off `list`.
    RemoveFromList,
}

/// One action on many subscribers, named by `ids` or by `filter` (exactly one).
#[derive(Debug, Clone)]
pub struct BulkAction {
    /// What to do.
    pub action: BulkKind,
    /// Up to [`MAX_BULK_IDS`] subscriber ids; unknown ids are ignored.
    pub ids: Option<Vec<Uuid>>,
    /// Everyone matching; must have at least one condition.
    pub filter: Option<Conditions>,
    /// The list, for adding and removing.
    pub list: Option<Uuid>,
    /// For adding: the membership status (default: the list's default).
    pub status: Option<MembershipStatus>,
}

/// Resolves list ids to memberships to write, reporting unknown ids under `field`.
async fn membership_changes(
    conn: &mut PgConnection,
    field: &str,
    uuids: &[Uuid],
    status: Option<MembershipStatus>,
) -> Result<Vec<MembershipChange>> {
    if uuids.len() > MAX_LISTS_PER_REQUEST {
        return Err(Error::invalid(
            field,
            format!("at most {MAX_LISTS_PER_REQUEST} lists per request"),
        ));
    }
    let found = lists::resolve(conn, uuids).await?;
    let mut changes = Vec::with_capacity(uuids.len());
    let mut errors = Vec::new();
    for (i, uuid) in uuids.iter().enumerate() {
        match found.iter().find(|(u, _, _)| u == uuid) {
            Some(&(_, list_id, opt_in)) => changes.push(MembershipChange {
                list_id,
                status: status.unwrap_or(default_status(opt_in)),
            }),
            None => errors.push(FieldError::new(
                format!("{field}[{i}]"),
                format!("no list has id {uuid}"),
            )),
        }
    }
    if errors.is_empty() {
        Ok(changes)
    } else {
        Err(Error::Invalid(errors))
    }
}

fn default_status(opt_in: OptIn) -> MembershipStatus {
    match opt_in {
        OptIn::Single => MembershipStatus::Confirmed,
        OptIn::Double => MembershipStatus::Unconfirmed,
    }
}

async fn list_id(conn: &mut PgConnection, field: &str, uuid: Uuid) -> Result<(i64, OptIn)> {
    lists::resolve(conn, &[uuid])
        .await?
        .first()
        .map(|&(_, id, opt_in)| (id, opt_in))
        .ok_or_else(|| Error::invalid(field, format!("no list has id {uuid}")))
}

/// Validates the free-form filter fields and resolves the list.
pub async fn filter(
    conn: &mut PgConnection,
    prefix: &str,
    body: Conditions,
) -> Result<SubscriberFilter> {
    let field = |name: &str| format!("{prefix}{name}");
    let list_id = match body.list {
        Some(uuid) => Some(list_id(conn, &field("list"), uuid).await?.0),
        None => None,
    };
    if body.list_status.is_some() && list_id.is_none() {
        return Err(Error::invalid(field("list_status"), "needs list as well"));
    }
    if let Some(email) = &body.email {
        let len = email.chars().count();
        if len == 0 || len > 254 {
            return Err(Error::invalid(
                field("email"),
                "must be 1 to 254 characters",
            ));
        }
    }
    if body.attributes.as_ref().is_some_and(|a| !a.is_object()) {
        return Err(Error::invalid(field("attributes"), "must be a JSON object"));
    }
    Ok(SubscriberFilter {
        list_id,
        list_status: body.list_status,
        status: body.status,
        email_contains: body.email,
        attributes: body.attributes,
        created_after: body.created_after,
        created_before: body.created_before,
    })
}

/// Creates subscriber `new` on `lists` (with `list_status`, or each list's
/// default); an address already taken is a conflict naming `email`.
pub async fn create(
    conn: &mut PgConnection,
    new: &NewSubscriber,
    lists: &[Uuid],
    list_status: Option<MembershipStatus>,
) -> Result<Subscriber> {
    let memberships = membership_changes(conn, "lists", lists, list_status).await?;
    Ok(subscribers::create(conn, new, &memberships).await?)
}

/// Subscriber `id` with their memberships.
pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Subscriber> {
    subscribers::get(conn, id)
        .await
        .map_err(Error::not_found("subscriber"))
}

/// Applies `changes` to subscriber `id`; blocklisting also unsubscribes them
/// from every list, so run it in a transaction.
pub async fn update(
    conn: &mut PgConnection,
    id: Uuid,
    changes: &SubscriberChanges,
) -> Result<Subscriber> {
    subscribers::update(conn, id, changes)
        .await
        .map_err(Error::not_found("subscriber"))
}

/// Deletes subscriber `id` with everything Postino holds on them.
pub async fn erase(conn: &mut PgConnection, id: Uuid) -> Result<()> {
    // Every table holding personal data references subscribers with ON DELETE
    // CASCADE, so deleting the row erases all of it in one statement.
    subscribers::delete(conn, id)
        .await
        .map_err(Error::not_found("subscriber"))
}

/// Adds subscriber `id` to `lists`. With a status, existing memberships take
/// it too (this is how someone is unsubscribed from one list); without one,
/// new memberships get each list's default and existing ones are left alone.
pub async fn add_to_lists(
    conn: &mut PgConnection,
    id: Uuid,
    lists: &[Uuid],
    status: Option<MembershipStatus>,
) -> Result<Subscriber> {
    if lists.is_empty() {
        return Err(Error::invalid("lists", "must name at least one list"));
    }
    let subscriber_id = subscribers::id_of(conn, id)
        .await
        .map_err(Error::not_found("subscriber"))?;
    let changes = membership_changes(conn, "lists", lists, status).await?;
    let existing = if status.is_some() {
        Existing::Overwrite
    } else {
        Existing::Keep
    };
    subscribers::set_memberships(conn, subscriber_id, &changes, existing).await?;
    Ok(subscribers::get(conn, id).await?)
}

/// Takes subscriber `id` off `list` altogether (no unsubscribed trace kept).
pub async fn remove_from_list(conn: &mut PgConnection, id: Uuid, list: Uuid) -> Result<()> {
    let subscriber_id = subscribers::id_of(conn, id)
        .await
        .map_err(Error::not_found("subscriber"))?;
    let Some(&(_, list_id, _)) = lists::resolve(conn, &[list]).await?.first() else {
        return Err(Error::NotFound("list"));
    };
    let removed = subscribers::remove_memberships(conn, subscriber_id, &[list_id]).await?;
    if removed == 0 {
        return Err(Error::NotFound("membership"));
    }
    Ok(())
}

/// Checks and applies one bulk action; returns how many subscribers it
/// changed. Several statements: run it in a transaction.
pub async fn bulk(conn: &mut PgConnection, body: BulkAction) -> Result<u64> {
    let selection = match (body.ids, body.filter) {
        (Some(ids), None) => {
            if ids.is_empty() || ids.len() > MAX_BULK_IDS {
                return Err(Error::invalid(
                    "ids",
                    format!("must hold 1 to {MAX_BULK_IDS} ids"),
                ));
            }
            Selection::Ids(ids)
        }
        (None, Some(conditions)) => {
            let filter = filter(conn, "filter.", conditions).await?;
            if filter.is_empty() {
                return Err(Error::invalid(
                    "filter",
                    "must have at least one condition; an empty filter would select everyone",
                ));
            }
            Selection::Filter(filter)
        }
        _ => {
            return Err(Error::invalid(
                "ids",
                "give either ids or filter, not both or neither",
            ));
        }
    };
    let needs_list = matches!(body.action, BulkKind::AddToList | BulkKind::RemoveFromList);
    let list = match (needs_list, body.list) {
        (true, Some(uuid)) => Some(list_id(conn, "list", uuid).await?),
        (true, None) => return Err(Error::invalid("list", "is required for this action")),
        (false, Some(_)) => {
            return Err(Error::invalid(
                "list",
                "is only used by add_to_list and remove_from_list",
            ));
        }
        (false, None) => None,
    };
    if body.status.is_some() && !matches!(body.action, BulkKind::AddToList) {
        return Err(Error::invalid("status", "is only used by add_to_list"));
    }
    let affected = match (body.action, list) {
        (BulkKind::Blocklist, _) => subscribers::blocklist_many(conn, &selection).await?,
        (BulkKind::Delete, _) => subscribers::delete_many(conn, &selection).await?,
        (BulkKind::AddToList, Some((list_id, opt_in))) => {
            let existing = if body.status.is_some() {
                Existing::Overwrite
            } else {
                Existing::Keep
            };
            let status = body.status.unwrap_or(default_status(opt_in));
            subscribers::add_many_to_list(conn, &selection, list_id, status, existing).await?
        }
        (BulkKind::RemoveFromList, Some((list_id, _))) => {
            subscribers::remove_many_from_list(conn, &selection, list_id).await?
        }
        (BulkKind::AddToList | BulkKind::RemoveFromList, None) => {
            return Err(Error::invalid("list", "is required for this action"));
        }
    };
    Ok(affected)
}
