//! Layout templates that wrap campaign bodies.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::DbError;

/// A layout: HTML with a `{{ content }}` slot.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Internal key.
    pub id: i64,
    /// Public id.
    pub uuid: Uuid,
    /// Display name.
    pub name: String,
    /// The HTML template.
    pub body: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

/// Creates a layout; the caller has checked that it compiles.
///
/// # Errors
///
/// [`DbError::Database`] if the insert fails.
pub async fn create(conn: &mut PgConnection, name: &str, body: &str) -> Result<Layout, DbError> {
    Ok(sqlx::query_as!(
        Layout,
        r#"INSERT INTO templates (uuid, name, body) VALUES ($1, $2, $3)
           RETURNING id, uuid, name, body, created_at, updated_at"#,
        Uuid::now_v7(),
        name,
        body
    )
    .fetch_one(conn)
    .await?)
}

/// One layout by public id.
///
/// # Errors
///
/// [`DbError::NotFound`] if there is no such layout.
pub async fn get(conn: &mut PgConnection, uuid: Uuid) -> Result<Layout, DbError> {
    Ok(sqlx::query_as!(
        Layout,
        "SELECT id, uuid, name, body, created_at, updated_at FROM templates WHERE uuid = $1",
        uuid
    )
    .fetch_one(conn)
    .await?)
}

/// One layout by internal key.
///
/// # Errors
///
/// [`DbError::NotFound`] if there is no such layout.
pub async fn get_by_id(conn: &mut PgConnection, id: i64) -> Result<Layout, DbError> {
    Ok(sqlx::query_as!(
        Layout,
        "SELECT id, uuid, name, body, created_at, updated_at FROM templates WHERE id = $1",
        id
    )
    .fetch_one(conn)
    .await?)
}

/// Every layout, oldest first.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn all(conn: &mut PgConnection) -> Result<Vec<Layout>, DbError> {
    Ok(sqlx::query_as!(
        Layout,
        "SELECT id, uuid, name, body, created_at, updated_at FROM templates ORDER BY id"
    )
    .fetch_all(conn)
    .await?)
}

/// Replaces a layout's name and body.
///
/// # Errors
///
/// [`DbError::NotFound`] if there is no such layout.
pub async fn update(
    conn: &mut PgConnection,
    uuid: Uuid,
    name: &str,
    body: &str,
) -> Result<Layout, DbError> {
    Ok(sqlx::query_as!(
        Layout,
        r#"UPDATE templates SET name = $2, body = $3, updated_at = now() WHERE uuid = $1
           RETURNING id, uuid, name, body, created_at, updated_at"#,
        uuid,
        name,
        body
    )
    .fetch_one(conn)
    .await?)
}

/// Deletes a layout no campaign uses.
///
/// # Errors
///
/// [`DbError::NotFound`] if there is no such layout;
/// [`DbError::MissingReference`] if a campaign still uses it.
pub async fn delete(conn: &mut PgConnection, uuid: Uuid) -> Result<(), DbError> {
    let result = sqlx::query!("DELETE FROM templates WHERE uuid = $1", uuid)
        .execute(conn)
        .await?;
    if result.rows_affected() == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

/// How many campaigns use each layout, as (layout key, campaigns); layouts
/// no campaign uses are left out. A sequential scan of `campaigns`, which
/// holds one row per campaign and stays small.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn usage(conn: &mut PgConnection) -> Result<Vec<(i64, i64)>, DbError> {
    let rows = sqlx::query!(
        r#"SELECT template_id AS "template_id!", count(*) AS "campaigns!"
           FROM campaigns WHERE template_id IS NOT NULL GROUP BY template_id"#
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.template_id, r.campaigns))
        .collect())
}
