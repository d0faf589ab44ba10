//! Subscribers for CSV export, read in keyset batches so an export of
//! millions of rows holds one batch in memory at a time.

use serde_json::Value;
use sqlx::{PgConnection, Postgres, QueryBuilder};

use crate::DbError;
use crate::subscribers::{SubscriberFilter, push_conditions};

/// One exported subscriber: the columns the importer reads back.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ExportRow {
    /// Internal key: the keyset position of the next batch.
    pub id: i64,
    /// Address.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Attributes, a JSON object.
    pub attributes: Value,
}

/// Up to `limit` subscribers matching `filter` with id above `after`, in id
/// order. The same conditions as the search (`subscribers::search`); with a
/// list, the scan runs over that list's membership key.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn batch_after(
    conn: &mut PgConnection,
    filter: &SubscriberFilter,
    after: i64,
    limit: i64,
) -> Result<Vec<ExportRow>, DbError> {
    let mut qb = QueryBuilder::<Postgres>::new("SELECT s.id, s.email, s.name, s.attributes ");
    if let Some(list_id) = filter.list_id {
        // As in the search: bound both sides of the join by the cursor so the
        // planner starts each batch at the cursor, not at the first row.
        qb.push("FROM subscriber_lists sl JOIN subscribers s ON s.id = sl.subscriber_id WHERE sl.list_id = ")
            .push_bind(list_id)
            .push(" AND sl.subscriber_id > ")
            .push_bind(after)
            .push(" AND s.id > ")
            .push_bind(after);
        if let Some(status) = filter.list_status {
            qb.push(" AND sl.status = ").push_bind(status.as_str());
        }
        push_conditions(&mut qb, filter);
        qb.push(" ORDER BY sl.subscriber_id");
    } else {
        qb.push("FROM subscribers s WHERE s.id > ").push_bind(after);
        push_conditions(&mut qb, filter);
        qb.push(" ORDER BY s.id");
    }
    qb.push(" LIMIT ").push_bind(limit);
    Ok(qb.build_query_as().fetch_all(conn).await?)
}
