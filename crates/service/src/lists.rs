//! Mailing lists.

use postino_db::PgConnection;
use postino_db::lists;
pub use postino_db::lists::{List, ListChanges, NewList};
use uuid::Uuid;

use crate::{Error, Result};

fn description(raw: &str) -> Result<String> {
    postino_domain::lists::parse_description(raw)
        .map_err(|e| Error::invalid("description", e.reason))
}

/// Every list with its subscriber counts.
///
/// # Errors
///
/// A database failure.
pub async fn all(conn: &mut PgConnection) -> Result<Vec<List>> {
    Ok(lists::all(conn).await?)
}

/// The list `id`.
///
/// # Errors
///
/// [`Error::NotFound`] when there is none.
pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<List> {
    lists::get(conn, id).await.map_err(Error::not_found("list"))
}

/// Creates a list.
///
/// # Errors
///
/// [`Error::Invalid`] for a description that is too long.
pub async fn create(conn: &mut PgConnection, new: NewList) -> Result<List> {
    let new = NewList {
        description: description(&new.description)?,
        ..new
    };
    Ok(lists::create(conn, &new).await?)
}

/// Changes list `id`; absent fields stay as they are.
///
/// # Errors
///
/// [`Error::NotFound`], [`Error::Invalid`] for a description that is too long.
pub async fn update(conn: &mut PgConnection, id: Uuid, changes: ListChanges) -> Result<List> {
    let changes = ListChanges {
        description: changes
            .description
            .as_deref()
            .map(description)
            .transpose()?,
        ..changes
    };
    lists::update(conn, id, &changes)
        .await
        .map_err(Error::not_found("list"))
}

/// Deletes list `id` and its memberships; its subscribers stay.
///
/// # Errors
///
/// [`Error::NotFound`] when there is none.
pub async fn delete(conn: &mut PgConnection, id: Uuid) -> Result<()> {
    lists::delete(conn, id)
        .await
        .map_err(Error::not_found("list"))
}
