//! Mailing lists.

use chrono::{DateTime, Utc};
use postino_domain::{ListName, ListVisibility, OptIn, Tags};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::DbError;

/// A list as stored, with how many members it has in each membership status.
#[derive(Debug, Clone)]
pub struct List {
    /// Internal key; never leaves the system.
    pub id: i64,
    /// Public id.
    pub uuid: Uuid,
    /// Display name.
    pub name: ListName,
    /// Free text for the team.
    pub description: String,
    /// How new memberships become confirmed.
    pub opt_in: OptIn,
    /// Whether public sign-up forms offer it.
    pub visibility: ListVisibility,
    /// Labels for organising lists.
    pub tags: Tags,
    /// Member counts by membership status.
    pub counts: MemberCounts,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

/// How many members a list has in each membership status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemberCounts {
    /// Awaiting double opt-in confirmation.
    pub unconfirmed: i64,
    /// Receiving campaigns.
    pub confirmed: i64,
    /// Left the list.
    pub unsubscribed: i64,
}

/// The fields of a new list, already validated.
#[derive(Debug, Clone)]
pub struct NewList {
    /// Display name.
    pub name: ListName,
    /// Free text for the team.
    pub description: String,
    /// How new memberships become confirmed.
    pub opt_in: OptIn,
    /// Whether public sign-up forms offer it.
    pub visibility: ListVisibility,
    /// Labels.
    pub tags: Tags,
}

/// A partial update: `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ListChanges {
    /// New name.
    pub name: Option<ListName>,
    /// New description.
    pub description: Option<String>,
    /// New opt-in mode; existing memberships keep their status.
    pub opt_in: Option<OptIn>,
    /// New visibility.
    pub visibility: Option<ListVisibility>,
    /// New tags, replacing the old ones.
    pub tags: Option<Tags>,
}

struct ListRow {
    id: i64,
    uuid: Uuid,
    name: String,
    description: String,
    opt_in: String,
    visibility: String,
    tags: Vec<String>,
    unconfirmed: Option<i64>,
    confirmed: Option<i64>,
    unsubscribed: Option<i64>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<ListRow> for List {
    type Error = DbError;
    fn try_from(row: ListRow) -> Result<Self, DbError> {
        Ok(List {
            id: row.id,
            uuid: row.uuid,
            name: ListName::parse(&row.name)?,
            description: row.description,
            opt_in: row.opt_in.parse()?,
            visibility: row.visibility.parse()?,
            tags: Tags::parse(&row.tags)?,
            counts: MemberCounts {
                unconfirmed: row.unconfirmed.unwrap_or(0),
                confirmed: row.confirmed.unwrap_or(0),
                unsubscribed: row.unsubscribed.unwrap_or(0),
            },
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// Creates a list.
///
/// # Errors
///
/// [`DbError::Database`] if the insert fails.
pub async fn create(conn: &mut PgConnection, new: &NewList) -> Result<List, DbError> {
    let row = sqlx::query_as!(
        ListRow,
        r#"INSERT INTO lists (uuid, name, description, opt_in, visibility, tags)
           VALUES ($1, $2, $3, $4, $5, $6)
           RETURNING id, uuid, name, description, opt_in, visibility, tags,
                     0::bigint AS "unconfirmed", 0::bigint AS "confirmed", 0::bigint AS "unsubscribed",
                     created_at, updated_at"#,
        Uuid::now_v7(),
        new.name.as_str(),
        new.description,
        new.opt_in.as_str(),
        new.visibility.as_str(),
        new.tags.as_slice(),
    )
    .fetch_one(conn)
    .await?;
    row.try_into()
}

/// Every list with its member counts, oldest first.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn all(conn: &mut PgConnection) -> Result<Vec<List>, DbError> {
    // Counting is one pass over the membership primary key per list; fine for
    // lists up to a few million members, and always exact.
    let rows = sqlx::query_as!(
        ListRow,
        r#"SELECT l.id, l.uuid, l.name, l.description, l.opt_in, l.visibility, l.tags,
                  c.unconfirmed, c.confirmed, c.unsubscribed, l.created_at, l.updated_at
           FROM lists l
           LEFT JOIN LATERAL (
               SELECT count(*) FILTER (WHERE status = 'unconfirmed') AS unconfirmed,
                      count(*) FILTER (WHERE status = 'confirmed') AS confirmed,
                      count(*) FILTER (WHERE status = 'unsubscribed') AS unsubscribed
               FROM subscriber_lists WHERE list_id = l.id
           ) c ON true
           ORDER BY l.id"#,
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(List::try_from).collect()
}

/// Every list's public id, name and opt-in, oldest first, without counts:
/// for menus, which must not count a million memberships to draw.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails, [`DbError::Corrupt`] for an
/// unknown stored opt-in.
pub async fn choices(conn: &mut PgConnection) -> Result<Vec<(Uuid, String, OptIn)>, DbError> {
    let rows = sqlx::query!("SELECT uuid, name, opt_in FROM lists ORDER BY id")
        .fetch_all(conn)
        .await?;
    rows.into_iter()
        .map(|r| Ok((r.uuid, r.name, r.opt_in.parse()?)))
        .collect()
}

/// One list by public id.
///
/// # Errors
///
/// [`DbError::NotFound`] if there is no such list.
pub async fn get(conn: &mut PgConnection, uuid: Uuid) -> Result<List, DbError> {
    let row = sqlx::query_as!(
        ListRow,
        r#"SELECT l.id, l.uuid, l.name, l.description, l.opt_in, l.visibility, l.tags,
                  c.unconfirmed, c.confirmed, c.unsubscribed, l.created_at, l.updated_at
           FROM lists l
           LEFT JOIN LATERAL (
               SELECT count(*) FILTER (WHERE status = 'unconfirmed') AS unconfirmed,
                      count(*) FILTER (WHERE status = 'confirmed') AS confirmed,
                      count(*) FILTER (WHERE status = 'unsubscribed') AS unsubscribed
               FROM subscriber_lists WHERE list_id = l.id
           ) c ON true
           WHERE l.uuid = $1"#,
        uuid,
    )
    .fetch_one(conn)
    .await?;
    row.try_into()
}

/// Maps public list ids to internal keys, failing if any is unknown.
///
/// # Errors
///
/// [`DbError::NotFound`] naming nothing more: the caller knows which ids it asked for.
pub async fn resolve(
    conn: &mut PgConnection,
    uuids: &[Uuid],
) -> Result<Vec<(Uuid, i64, OptIn)>, DbError> {
    let rows = sqlx::query!(
        "SELECT uuid, id, opt_in FROM lists WHERE uuid = ANY($1)",
        uuids
    )
    .fetch_all(conn)
    .await?;
    let mut found = Vec::with_capacity(rows.len());
    for row in rows {
        found.push((row.uuid, row.id, row.opt_in.parse()?));
    }
    Ok(found)
}

/// Applies `changes` to a list.
///
/// # Errors
///
/// [`DbError::NotFound`] if there is no such list.
pub async fn update(
    conn: &mut PgConnection,
    uuid: Uuid,
    changes: &ListChanges,
) -> Result<List, DbError> {
    let result = sqlx::query!(
        r#"UPDATE lists SET
               name = COALESCE($2, name),
               description = COALESCE($3, description),
               opt_in = COALESCE($4, opt_in),
               visibility = COALESCE($5, visibility),
               tags = COALESCE($6, tags),
               updated_at = now()
           WHERE uuid = $1"#,
        uuid,
        changes.name.as_ref().map(ListName::as_str),
        changes.description.as_deref(),
        changes.opt_in.map(OptIn::as_str),
        changes.visibility.map(ListVisibility::as_str),
        changes.tags.as_ref().map(Tags::as_slice),
    )
    .execute(&mut *conn)
    .await?;
    if result.rows_affected() == 0 {
        return Err(DbError::NotFound);
    }
    get(conn, uuid).await
}

/// Deletes a list and its memberships; the subscribers stay.
///
/// # Errors
///
/// [`DbError::NotFound`] if there is no such list.
pub async fn delete(conn: &mut PgConnection, uuid: Uuid) -> Result<(), DbError> {
    let result = sqlx::query!("DELETE FROM lists WHERE uuid = $1", uuid)
        .execute(conn)
        .await?;
    if result.rows_affected() == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}
