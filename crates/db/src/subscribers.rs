//! Subscribers and their list memberships: create, change, search, bulk
//! actions and export.

use chrono::{DateTime, Utc};
use postino_domain::{
    Attributes, Cursor, EmailAddress, MembershipStatus, PageSize, SubscriberName, SubscriberStatus,
};
use serde_json::Value;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::DbError;

/// A subscriber as stored, with their memberships.
#[derive(Debug, Clone)]
pub struct Subscriber {
    /// Internal key; never leaves the system.
    pub id: i64,
    /// Public id.
    pub uuid: Uuid,
    /// Normalised address, unique case-insensitively.
    pub email: EmailAddress,
    /// Display name; may be empty.
    pub name: SubscriberName,
    /// Free-form data for templates and segments.
    pub attributes: Attributes,
    /// Whether they may be mailed at all.
    pub status: SubscriberStatus,
    /// Their lists.
    pub memberships: Vec<Membership>,
    /// When they were created.
    pub created_at: DateTime<Utc>,
    /// When they were last changed.
    pub updated_at: DateTime<Utc>,
}

/// One list a subscriber belongs to.
#[derive(Debug, Clone)]
pub struct Membership {
    /// The list's public id.
    pub list_uuid: Uuid,
    /// The list's name, for display.
    pub list_name: String,
    /// Their standing on it.
    pub status: MembershipStatus,
    /// When they joined.
    pub created_at: DateTime<Utc>,
    /// When the status last changed.
    pub updated_at: DateTime<Utc>,
}

/// A new subscriber, already validated.
#[derive(Debug, Clone)]
pub struct NewSubscriber {
    /// Address.
    pub email: EmailAddress,
    /// Display name.
    pub name: SubscriberName,
    /// Free-form data.
    pub attributes: Attributes,
    /// Enabled or blocklisted.
    pub status: SubscriberStatus,
}

/// A partial update: `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct SubscriberChanges {
    /// New address.
    pub email: Option<EmailAddress>,
    /// New name.
    pub name: Option<SubscriberName>,
    /// New attributes, replacing the old ones.
    pub attributes: Option<Attributes>,
    /// New status; blocklisting also unsubscribes them from every list.
    pub status: Option<SubscriberStatus>,
}

/// Which memberships to write for a subscriber and how.
#[derive(Debug, Clone, Copy)]
pub struct MembershipChange {
    /// Internal list key.
    pub list_id: i64,
    /// Status to write.
    pub status: MembershipStatus,
}

/// What happens to a membership that already exists when it is written again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Leave it as it is, so adding someone to a list they left never
    /// re-subscribes them behind their back.
    Keep,
    /// Give it the new status.
    Overwrite,
}

/// Conditions a search or bulk action selects subscribers by; all must hold.
#[derive(Debug, Clone, Default)]
pub struct SubscriberFilter {
    /// Member of this list (internal key).
    pub list_id: Option<i64>,
    /// With this membership status on `list_id`.
    pub list_status: Option<MembershipStatus>,
    /// With this subscriber status.
    pub status: Option<SubscriberStatus>,
    /// Whose address contains this text, case-insensitively.
    pub email_contains: Option<String>,
    /// Whose attributes contain this JSON object (key by key equality).
    pub attributes: Option<Value>,
    /// Created at or after.
    pub created_after: Option<DateTime<Utc>>,
    /// Created before.
    pub created_before: Option<DateTime<Utc>>,
}

impl SubscriberFilter {
    /// Whether the filter has no condition, i.e. selects everyone.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.list_id.is_none()
            && self.list_status.is_none()
            && self.status.is_none()
            && self.email_contains.is_none()
            && self.attributes.is_none()
            && self.created_after.is_none()
            && self.created_before.is_none()
    }
}

/// Who a bulk action applies to.
#[derive(Debug, Clone)]
pub enum Selection {
    /// These subscribers (public ids); unknown ids are ignored.
    Ids(Vec<Uuid>),
    /// Everyone matching.
    Filter(SubscriberFilter),
}

/// One page of a search.
#[derive(Debug)]
pub struct Page {
    /// The subscribers on this page, in id order.
    pub items: Vec<Subscriber>,
    /// Where the next page starts, if there is one.
    pub next: Option<Cursor>,
    /// Where the previous page ends, if there is one: pass it to
    /// [`search_before`].
    pub previous: Option<Cursor>,
}

/// Which side of its cursor a page is read from.
#[derive(Debug, Clone, Copy)]
enum Bound {
    /// Keys above this one, ascending.
    After(i64),
    /// Keys below this one, read descending from it.
    Before(i64),
}

#[derive(sqlx::FromRow)]
struct SubscriberRow {
    id: i64,
    uuid: Uuid,
    email: String,
    name: String,
    attributes: Value,
    status: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl SubscriberRow {
    fn into_subscriber(self, memberships: Vec<Membership>) -> Result<Subscriber, DbError> {
        Ok(Subscriber {
            id: self.id,
            uuid: self.uuid,
            email: EmailAddress::parse(&self.email)?,
            name: SubscriberName::parse(&self.name)?,
            attributes: Attributes::parse(self.attributes)?,
            status: self.status.parse()?,
            memberships,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// Creates a subscriber with the given memberships.
///
/// # Errors
///
/// [`DbError::Conflict`] on `subscribers_email_key` if the address is taken.
pub async fn create(
    conn: &mut PgConnection,
    new: &NewSubscriber,
    memberships: &[MembershipChange],
) -> Result<Subscriber, DbError> {
    let id = sqlx::query_scalar!(
        r#"INSERT INTO subscribers (uuid, email, name, attributes, status)
           VALUES ($1, $2, $3, $4, $5) RETURNING id"#,
        Uuid::now_v7(),
        new.email.as_str(),
        new.name.as_str(),
        Value::from(new.attributes.clone()),
        new.status.as_str(),
    )
    .fetch_one(&mut *conn)
    .await?;
    set_memberships(conn, id, memberships, Existing::Overwrite).await?;
    get_by_id(conn, id).await
}

/// One subscriber by public id, with memberships.
///
/// # Errors
///
/// [`DbError::NotFound`] if there is no such subscriber.
pub async fn get(conn: &mut PgConnection, uuid: Uuid) -> Result<Subscriber, DbError> {
    let id = id_of(conn, uuid).await?;
    get_by_id(conn, id).await
}

/// The internal key of a subscriber.
///
/// # Errors
///
/// [`DbError::NotFound`] if there is no such subscriber.
pub async fn id_of(conn: &mut PgConnection, uuid: Uuid) -> Result<i64, DbError> {
    Ok(
        sqlx::query_scalar!("SELECT id FROM subscribers WHERE uuid = $1", uuid)
            .fetch_one(conn)
            .await?,
    )
}

async fn get_by_id(conn: &mut PgConnection, id: i64) -> Result<Subscriber, DbError> {
    let row = sqlx::query_as!(
        SubscriberRow,
        r#"SELECT id, uuid, email, name, attributes, status, created_at, updated_at
           FROM subscribers WHERE id = $1"#,
        id
    )
    .fetch_one(&mut *conn)
    .await?;
    let mut memberships = memberships_of(conn, &[id]).await?;
    row.into_subscriber(memberships.remove(&id).unwrap_or_default())
}

async fn memberships_of(
    conn: &mut PgConnection,
    ids: &[i64],
) -> Result<std::collections::HashMap<i64, Vec<Membership>>, DbError> {
    let rows = sqlx::query!(
        r#"SELECT sl.subscriber_id, l.uuid, l.name, sl.status, sl.created_at, sl.updated_at
           FROM subscriber_lists sl JOIN lists l ON l.id = sl.list_id
           WHERE sl.subscriber_id = ANY($1)
           ORDER BY sl.subscriber_id, l.id"#,
        ids
    )
    .fetch_all(conn)
    .await?;
    let mut by_subscriber: std::collections::HashMap<i64, Vec<Membership>> =
        std::collections::HashMap::new();
    for row in rows {
        by_subscriber
            .entry(row.subscriber_id)
            .or_default()
            .push(Membership {
                list_uuid: row.uuid,
                list_name: row.name,
                status: row.status.parse()?,
                created_at: row.created_at,
                updated_at: row.updated_at,
            });
    }
    Ok(by_subscriber)
}

/// Writes memberships for one subscriber; see [`Existing`].
///
/// # Errors
///
/// [`DbError::MissingReference`] if a list was deleted meanwhile.
pub async fn set_memberships(
    conn: &mut PgConnection,
    subscriber_id: i64,
    changes: &[MembershipChange],
    existing: Existing,
) -> Result<(), DbError> {
    if changes.is_empty() {
        return Ok(());
    }
    let list_ids: Vec<i64> = changes.iter().map(|c| c.list_id).collect();
    let statuses: Vec<String> = changes
        .iter()
        .map(|c| c.status.as_str().to_owned())
        .collect();
    sqlx::query!(
        r#"INSERT INTO subscriber_lists AS sl (list_id, subscriber_id, status)
           SELECT c.list_id, $1, c.status
           FROM unnest($2::bigint[], $3::text[]) AS c(list_id, status)
           ON CONFLICT (list_id, subscriber_id) DO UPDATE
               SET status = excluded.status, updated_at = now()
               WHERE $4 AND sl.status <> excluded.status"#,
        subscriber_id,
        &list_ids,
        &statuses,
        existing == Existing::Overwrite,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Removes a subscriber from lists (deletes the memberships).
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn remove_memberships(
    conn: &mut PgConnection,
    subscriber_id: i64,
    list_ids: &[i64],
) -> Result<u64, DbError> {
    let result = sqlx::query!(
        "DELETE FROM subscriber_lists WHERE subscriber_id = $1 AND list_id = ANY($2)",
        subscriber_id,
        list_ids
    )
    .execute(conn)
    .await?;
    Ok(result.rows_affected())
}

/// Applies `changes` to a subscriber.
///
/// # Errors
///
/// [`DbError::NotFound`] if there is no such subscriber;
/// [`DbError::Conflict`] if the new address is taken.
pub async fn update(
    conn: &mut PgConnection,
    uuid: Uuid,
    changes: &SubscriberChanges,
) -> Result<Subscriber, DbError> {
    let id = sqlx::query_scalar!(
        r#"UPDATE subscribers SET
               email = COALESCE($2, email),
               name = COALESCE($3, name),
               attributes = COALESCE($4, attributes),
               status = COALESCE($5, status),
               updated_at = now()
           WHERE uuid = $1 RETURNING id"#,
        uuid,
        changes.email.as_ref().map(EmailAddress::as_str),
        changes.name.as_ref().map(SubscriberName::as_str),
        changes.attributes.clone().map(Value::from),
        changes.status.map(SubscriberStatus::as_str),
    )
    .fetch_one(&mut *conn)
    .await?;
    if changes.status == Some(SubscriberStatus::Blocklisted) {
        unsubscribe_everywhere(conn, &[id]).await?;
    }
    get_by_id(conn, id).await
}

async fn unsubscribe_everywhere(conn: &mut PgConnection, ids: &[i64]) -> Result<(), DbError> {
    sqlx::query!(
        r#"UPDATE subscriber_lists SET status = 'unsubscribed', updated_at = now()
           WHERE subscriber_id = ANY($1) AND status <> 'unsubscribed'"#,
        ids
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes a subscriber and everything that refers to them.
///
/// # Errors
///
/// [`DbError::NotFound`] if there is no such subscriber.
pub async fn delete(conn: &mut PgConnection, uuid: Uuid) -> Result<(), DbError> {
    let result = sqlx::query!("DELETE FROM subscribers WHERE uuid = $1", uuid)
        .execute(conn)
        .await?;
    if result.rows_affected() == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

/// Escapes `%`, `_` and `\` so user text matches literally inside `LIKE`.
fn like_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Pushes ` AND …` conditions on `s` (subscribers) for every filter field
/// except the list, which callers join or test in their own way.
pub(crate) fn push_conditions(qb: &mut QueryBuilder<Postgres>, filter: &SubscriberFilter) {
    if let Some(status) = filter.status {
        qb.push(" AND s.status = ").push_bind(status.as_str());
    }
    if let Some(text) = &filter.email_contains {
        // lower(email) LIKE … uses the trigram index subscribers_email_trgm.
        qb.push(" AND lower(s.email) LIKE ")
            .push_bind(format!("%{}%", like_literal(&text.to_lowercase())));
    }
    if let Some(attrs) = &filter.attributes {
        // Containment uses the jsonb_path_ops index subscribers_attributes.
        qb.push(" AND s.attributes @> ").push_bind(attrs.clone());
    }
    if let Some(after) = filter.created_after {
        qb.push(" AND s.created_at >= ").push_bind(after);
    }
    if let Some(before) = filter.created_before {
        qb.push(" AND s.created_at < ").push_bind(before);
    }
}

/// One page of subscribers matching `filter`, in id order, after `cursor`.
///
/// Keyset pagination: each page is a range scan starting at the cursor's key,
/// so page 9,000 costs what page 1 does.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn search(
    conn: &mut PgConnection,
    filter: &SubscriberFilter,
    cursor: Option<Cursor>,
    limit: PageSize,
) -> Result<Page, DbError> {
    let after = cursor.map_or(0, Cursor::key);
    let (items, has_more) = read_page(conn, filter, Bound::After(after), limit).await?;
    let next = if has_more {
        items.last().map(|s| Cursor::after(s.id))
    } else {
        None
    };
    // Having come from a cursor, there were rows before this page.
    let previous = cursor.and(items.first()).map(|s| Cursor::after(s.id));
    Ok(Page {
        items,
        next,
        previous,
    })
}

/// The page of subscribers matching `filter` that ends just before `cursor`
/// (the `previous` of a [`Page`]), in id order: paging back through exactly
/// the pages [`search`] walked forward.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn search_before(
    conn: &mut PgConnection,
    filter: &SubscriberFilter,
    cursor: Cursor,
    limit: PageSize,
) -> Result<Page, DbError> {
    let (items, has_more) = read_page(conn, filter, Bound::Before(cursor.key()), limit).await?;
    let previous = if has_more {
        items.first().map(|s| Cursor::after(s.id))
    } else {
        None
    };
    // The row at the cursor (or one after it) is what the reader came from.
    let next = items.last().map(|s| Cursor::after(s.id));
    Ok(Page {
        items,
        next,
        previous,
    })
}

/// Up to `limit` matching subscribers beyond `bound`, in id order, and
/// whether more lie beyond them in the same direction.
async fn read_page(
    conn: &mut PgConnection,
    filter: &SubscriberFilter,
    bound: Bound,
    limit: PageSize,
) -> Result<(Vec<Subscriber>, bool), DbError> {
    let (op, order, key) = match bound {
        Bound::After(key) => (" > ", "", key),
        Bound::Before(key) => (" < ", " DESC", key),
    };
    let mut qb = QueryBuilder::<Postgres>::new(
        "SELECT s.id, s.uuid, s.email, s.name, s.attributes, s.status, s.created_at, s.updated_at ",
    );
    if let Some(list_id) = filter.list_id {
        // Drive the scan from the membership primary key (list_id, subscriber_id):
        // a range scan over this list's members only, in subscriber order.
        // The cursor bound is repeated on s.id on purpose: without it the
        // planner may merge-join against subscribers_pkey from its first row,
        // reading every subscriber before the cursor (measured: a page 900,000
        // rows deep cost 86 times page 1; with it, the same).
        qb.push("FROM subscriber_lists sl JOIN subscribers s ON s.id = sl.subscriber_id WHERE sl.list_id = ")
            .push_bind(list_id)
            .push(" AND sl.subscriber_id")
            .push(op)
            .push_bind(key)
            .push(" AND s.id")
            .push(op)
            .push_bind(key);
        if let Some(status) = filter.list_status {
            qb.push(" AND sl.status = ").push_bind(status.as_str());
        }
        push_conditions(&mut qb, filter);
        qb.push(" ORDER BY sl.subscriber_id").push(order);
    } else {
        qb.push("FROM subscribers s WHERE s.id")
            .push(op)
            .push_bind(key);
        push_conditions(&mut qb, filter);
        qb.push(" ORDER BY s.id").push(order);
    }
    // One extra row tells whether another page exists without a count.
    qb.push(" LIMIT ").push_bind(limit.get() + 1);
    let mut rows: Vec<SubscriberRow> = qb.build_query_as().fetch_all(&mut *conn).await?;
    let has_more = rows.len() > usize::try_from(limit.get()).unwrap_or(usize::MAX);
    rows.truncate(usize::try_from(limit.get()).unwrap_or(usize::MAX));
    if matches!(bound, Bound::Before(_)) {
        rows.reverse();
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut memberships = memberships_of(conn, &ids).await?;
    let items = rows
        .into_iter()
        .map(|row| {
            let m = memberships.remove(&row.id).unwrap_or_default();
            row.into_subscriber(m)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((items, has_more))
}

/// Pushes `SELECT s.id FROM subscribers s WHERE …` for a selection.
fn push_selected_ids(qb: &mut QueryBuilder<Postgres>, selection: &Selection) {
    qb.push("SELECT s.id FROM subscribers s WHERE ");
    match selection {
        Selection::Ids(uuids) => {
            qb.push("s.uuid = ANY(").push_bind(uuids.clone()).push(")");
        }
        Selection::Filter(filter) => {
            qb.push("true");
            if let Some(list_id) = filter.list_id {
                qb.push(" AND EXISTS (SELECT 1 FROM subscriber_lists sl WHERE sl.subscriber_id = s.id AND sl.list_id = ")
                    .push_bind(list_id);
                if let Some(status) = filter.list_status {
                    qb.push(" AND sl.status = ").push_bind(status.as_str());
                }
                qb.push(")");
            }
            push_conditions(qb, filter);
        }
    }
}

/// Blocklists the selected subscribers and unsubscribes them from every list.
/// Returns how many were newly blocklisted.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn blocklist_many(
    conn: &mut PgConnection,
    selection: &Selection,
) -> Result<u64, DbError> {
    let mut qb = QueryBuilder::<Postgres>::new("WITH selected AS (");
    push_selected_ids(&mut qb, selection);
    qb.push(
        "), unsubscribed AS (
            UPDATE subscriber_lists SET status = 'unsubscribed', updated_at = now()
            WHERE subscriber_id IN (SELECT id FROM selected) AND status <> 'unsubscribed')
         UPDATE subscribers SET status = 'blocklisted', updated_at = now()
         WHERE id IN (SELECT id FROM selected) AND status <> 'blocklisted'",
    );
    Ok(qb.build().execute(conn).await?.rows_affected())
}

/// Deletes the selected subscribers. Returns how many were deleted.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn delete_many(conn: &mut PgConnection, selection: &Selection) -> Result<u64, DbError> {
    let mut qb = QueryBuilder::<Postgres>::new("DELETE FROM subscribers WHERE id IN (");
    push_selected_ids(&mut qb, selection);
    qb.push(")");
    Ok(qb.build().execute(conn).await?.rows_affected())
}

/// Adds the selected subscribers to a list with `status`; see [`Existing`].
/// Returns how many memberships were written.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn add_many_to_list(
    conn: &mut PgConnection,
    selection: &Selection,
    list_id: i64,
    status: MembershipStatus,
    existing: Existing,
) -> Result<u64, DbError> {
    let mut qb = QueryBuilder::<Postgres>::new(
        "INSERT INTO subscriber_lists AS sl (list_id, subscriber_id, status) SELECT ",
    );
    qb.push_bind(list_id)
        .push(", sel.id, ")
        .push_bind(status.as_str())
        .push(" FROM (");
    push_selected_ids(&mut qb, selection);
    qb.push(") sel ON CONFLICT (list_id, subscriber_id) DO ");
    if existing == Existing::Overwrite {
        qb.push("UPDATE SET status = excluded.status, updated_at = now() WHERE sl.status <> excluded.status");
    } else {
        qb.push("NOTHING");
    }
    Ok(qb.build().execute(conn).await?.rows_affected())
}

/// Removes the selected subscribers from a list. Returns how many left it.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn remove_many_from_list(
    conn: &mut PgConnection,
    selection: &Selection,
    list_id: i64,
) -> Result<u64, DbError> {
    let mut qb = QueryBuilder::<Postgres>::new("DELETE FROM subscriber_lists WHERE list_id = ");
    qb.push_bind(list_id).push(" AND subscriber_id IN (");
    push_selected_ids(&mut qb, selection);
    qb.push(")");
    Ok(qb.build().execute(conn).await?.rows_affected())
}

/// Unsubscribes a subscriber from every list of a campaign, recording one
/// event per list left. Idempotent: returns how many memberships changed
/// (0 when they had left already).
///
/// # Errors
///
/// [`DbError::NotFound`] if the campaign or subscriber does not exist.
pub async fn unsubscribe_from_campaign(
    conn: &mut PgConnection,
    campaign: Uuid,
    subscriber: Uuid,
    source: &str,
) -> Result<u64, DbError> {
    let ids = sqlx::query!(
        r#"SELECT c.id AS campaign_id, s.id AS subscriber_id
           FROM campaigns c, subscribers s WHERE c.uuid = $1 AND s.uuid = $2"#,
        campaign,
        subscriber
    )
    .fetch_one(&mut *conn)
    .await?;
    let changed = sqlx::query!(
        r#"WITH left_lists AS (
               UPDATE subscriber_lists sl SET status = 'unsubscribed', updated_at = now()
               FROM campaign_lists cl
               WHERE cl.campaign_id = $1 AND sl.list_id = cl.list_id
                 AND sl.subscriber_id = $2 AND sl.status <> 'unsubscribed'
               RETURNING sl.list_id
           )
           INSERT INTO subscription_events (subscriber_id, list_id, campaign_id, kind, source)
           SELECT $2, list_id, $1, 'unsubscribed', $3 FROM left_lists"#,
        ids.campaign_id,
        ids.subscriber_id,
        source
    )
    .execute(conn)
    .await?;
    Ok(changed.rows_affected())
}

/// The subscriber with this address (case-insensitively), if any.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn find_by_email(
    conn: &mut PgConnection,
    email: &EmailAddress,
) -> Result<Option<Subscriber>, DbError> {
    let id = sqlx::query_scalar!(
        "SELECT id FROM subscribers WHERE lower(email) = lower($1)",
        email.as_str()
    )
    .fetch_optional(&mut *conn)
    .await?;
    match id {
        Some(id) => Ok(Some(get_by_id(conn, id).await?)),
        None => Ok(None),
    }
}

/// How many subscribers there are, whatever their status.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn count(conn: &mut PgConnection) -> Result<i64, DbError> {
    // Exact, one pass over the primary key: tens of milliseconds per million
    // rows, fine for a page a person loads.
    let n = sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM subscribers"#)
        .fetch_one(conn)
        .await?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_in_user_text_match_literally() {
        assert_eq!(like_literal("50%_off\\"), "50\\%\\_off\\\\");
    }
}
