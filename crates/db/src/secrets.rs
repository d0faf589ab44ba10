//! Secrets Postino generates for itself when none is configured.

use rand::RngCore;
use sqlx::PgConnection;

use crate::DbError;

/// The secret called `name`, created with 32 random bytes on first use.
/// Concurrent first calls agree on one value.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn get_or_create(conn: &mut PgConnection, name: &str) -> Result<Vec<u8>, DbError> {
    let mut fresh = vec![0u8; 32];
    rand::rng().fill_bytes(&mut fresh);
    sqlx::query!(
        "INSERT INTO app_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        name,
        fresh
    )
    .execute(&mut *conn)
    .await?;
    Ok(
        sqlx::query_scalar!("SELECT value FROM app_secrets WHERE name = $1", name)
            .fetch_one(conn)
            .await?,
    )
}
