//! Generated data for the demo and the benchmarks.

use sqlx::PgConnection;

use crate::DbError;

/// Inserts `count` generated subscribers (`{prefix}{n}@{domain}`, n from 1)
/// confirmed on list `list_id`, in one set-based statement; addresses that
/// exist already are skipped. Returns how many subscribers were inserted.
///
/// `domain` must be a valid domain; the generated local parts are valid by
/// construction, which is why this bypasses the per-address parser.
///
/// # Errors
///
/// [`DbError::Database`] if the insert fails.
pub async fn generated_subscribers(
    conn: &mut PgConnection,
    list_id: i64,
    count: i64,
    prefix: &str,
    domain: &str,
) -> Result<u64, DbError> {
    // gen_random_uuid() is v4, where the API creates v7: the public id's
    // version carries no meaning, only its uniqueness does.
    let inserted = sqlx::query!(
        r#"WITH new AS (
               INSERT INTO subscribers (uuid, email, name, attributes)
               SELECT gen_random_uuid(), $2 || n || '@' || $3, 'Subscriber ' || n,
                      jsonb_build_object('n', n, 'city', (ARRAY['Rome','Oslo','Lima','Kyiv'])[1 + n % 4])
               FROM generate_series(1, $1::bigint) AS n
               ON CONFLICT DO NOTHING
               RETURNING id
           )
           INSERT INTO subscriber_lists (list_id, subscriber_id, status)
           SELECT $4, id, 'confirmed' FROM new
           ON CONFLICT DO NOTHING"#,
        count,
        prefix,
        domain,
        list_id,
    )
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected())
}
