//! Sending policy in the database: the limits users set, the throttles the
//! sender sets itself, the sender processes alive, and the rate counters
//! that make a limit hold across all of them.

use std::time::Duration;

use chrono::{DateTime, Utc};
use postino_domain::DomainLimit;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::DbError;

/// The installation-wide messages-per-second limit set through the API;
/// `None` when unset (the configuration's applies).
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn global_rate(conn: &mut PgConnection) -> Result<Option<f64>, DbError> {
    let rate = sqlx::query_scalar!("SELECT messages_per_second FROM sending_limits")
        .fetch_optional(conn)
        .await?;
    Ok(rate.flatten())
}

/// Sets (or with `None` clears) the installation-wide limit.
///
/// # Errors
///
/// [`DbError::Database`] if the statement fails.
pub async fn set_global_rate(conn: &mut PgConnection, rate: Option<f64>) -> Result<(), DbError> {
    sqlx::query!(
        "INSERT INTO sending_limits (id, messages_per_second) VALUES (true, $1)
         ON CONFLICT (id) DO UPDATE SET messages_per_second = $1, updated_at = now()",
        rate
    )
    .execute(conn)
    .await?;
    Ok(())
}

fn to_limit(domain: String, max_connections: Option<i32>, per_minute: Option<i32>) -> DomainLimit {
    let number = |v: i32| u32::try_from(v).unwrap_or(1);
    DomainLimit {
        domain,
        max_connections: max_connections.map(number),
        messages_per_minute: per_minute.map(number),
    }
}

fn int(v: Option<u32>) -> Option<i32> {
    v.map(|v| i32::try_from(v).unwrap_or(i32::MAX))
}

/// Every per-domain limit, by domain.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn domain_limits(conn: &mut PgConnection) -> Result<Vec<DomainLimit>, DbError> {
    let rows = sqlx::query!(
        "SELECT domain, max_connections, messages_per_minute FROM domain_limits ORDER BY domain"
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| to_limit(r.domain, r.max_connections, r.messages_per_minute))
        .collect())
}

/// One domain's limit.
///
/// # Errors
///
/// [`DbError::NotFound`] if the domain has none.
pub async fn domain_limit(conn: &mut PgConnection, domain: &str) -> Result<DomainLimit, DbError> {
    let r = sqlx::query!(
        "SELECT domain, max_connections, messages_per_minute FROM domain_limits WHERE domain = $1",
        domain
    )
    .fetch_one(conn)
    .await?;
    Ok(to_limit(r.domain, r.max_connections, r.messages_per_minute))
}

/// Creates or replaces a domain's limit (already normalised); says whether
/// it was new.
///
/// # Errors
///
/// [`DbError::Database`] if the statement fails.
pub async fn put_domain_limit(
    conn: &mut PgConnection,
    limit: &DomainLimit,
) -> Result<bool, DbError> {
    let created = sqlx::query_scalar!(
        r#"INSERT INTO domain_limits (domain, max_connections, messages_per_minute) VALUES ($1, $2, $3)
           ON CONFLICT (domain) DO UPDATE SET max_connections = $2, messages_per_minute = $3, updated_at = now()
           RETURNING (xmax = 0) AS "created!""#,
        limit.domain,
        int(limit.max_connections),
        int(limit.messages_per_minute),
    )
    .fetch_one(conn)
    .await?;
    Ok(created)
}

/// Removes a domain's limit.
///
/// # Errors
///
/// [`DbError::NotFound`] if the domain has none.
pub async fn delete_domain_limit(conn: &mut PgConnection, domain: &str) -> Result<(), DbError> {
    let done = sqlx::query!("DELETE FROM domain_limits WHERE domain = $1", domain)
        .execute(conn)
        .await?;
    if done.rows_affected() == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

/// A limit the sender set itself after a domain asked it to slow down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainThrottle {
    /// The recipient domain.
    pub domain: String,
    /// Messages per minute allowed now.
    pub messages_per_minute: u32,
    /// The rate it was slowed from; reaching it again lifts the throttle.
    pub ceiling: u32,
    /// Last slow-down.
    pub slowed_at: DateTime<Utc>,
}

/// Every throttle in force.
///
/// # Errors
///
/// [`DbError::Database`] if the query fails.
pub async fn throttles(conn: &mut PgConnection) -> Result<Vec<DomainThrottle>, DbError> {
    let rows = sqlx::query!(
        "SELECT domain, messages_per_minute, ceiling, slowed_at FROM domain_throttles ORDER BY domain"
    )
    .fetch_all(conn)
    .await?;
    let number = |v: i32| u32::try_from(v).unwrap_or(1);
    Ok(rows
        .into_iter()
        .map(|r| DomainThrottle {
            domain: r.domain,
            messages_per_minute: number(r.messages_per_minute),
            ceiling: number(r.ceiling),
            slowed_at: r.slowed_at,
        })
        .collect())
}

/// Halves a domain's rate after a slow-down reply: from `observed` (the
/// rate just seen, per minute) when it has no throttle yet, from its
/// current throttle otherwise. Replies to messages already in flight arrive
/// together, so a domain is slowed at most once per `calm`. Returns the
/// domain's messages per minute now.
///
/// # Errors
///
/// [`DbError::Database`] if the statement fails.
pub async fn slow_down(
    conn: &mut PgConnection,
    domain: &str,
    observed: u32,
    floor: u32,
    calm: Duration,
) -> Result<u32, DbError> {
    let observed = i32::try_from(observed.max(1)).unwrap_or(i32::MAX);
    let floor = i32::try_from(floor.max(1)).unwrap_or(1);
    sqlx::query!(
        r#"INSERT INTO domain_throttles AS t (domain, messages_per_minute, ceiling)
           VALUES ($1, GREATEST($3, $2 / 2), $2)
           ON CONFLICT (domain) DO UPDATE
               SET messages_per_minute = GREATEST($3, LEAST(t.messages_per_minute, $2) / 2),
                   slowed_at = now(), raised_at = now()
               WHERE t.slowed_at < now() - make_interval(secs => $4)"#,
        domain,
        observed,
        floor,
        calm.as_secs_f64(),
    )
    .execute(&mut *conn)
    .await?;
    let now = sqlx::query_scalar!(
        "SELECT messages_per_minute FROM domain_throttles WHERE domain = $1",
        domain
    )
    .fetch_one(conn)
    .await?;
    Ok(u32::try_from(now).unwrap_or(1))
}

/// Raises by half every throttle whose domain has been quiet for `calm`
/// since its last change, and lifts those back at their ceiling.
///
/// # Errors
///
/// [`DbError::Database`] if a statement fails.
pub async fn raise_throttles(conn: &mut PgConnection, calm: Duration) -> Result<(), DbError> {
    let calm = calm.as_secs_f64();
    sqlx::query!(
        "DELETE FROM domain_throttles
         WHERE messages_per_minute >= ceiling AND raised_at < now() - make_interval(secs => $1)",
        calm
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE domain_throttles
         SET messages_per_minute = LEAST(ceiling, messages_per_minute + GREATEST(1, messages_per_minute / 2)),
             raised_at = now()
         WHERE raised_at < now() - make_interval(secs => $1)",
        calm
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Says this sender process is alive until `ttl` from now, and returns
/// every live process in a stable order (oldest first), this one included.
///
/// # Errors
///
/// [`DbError::Database`] if a statement fails.
pub async fn heartbeat(
    conn: &mut PgConnection,
    me: Uuid,
    ttl: Duration,
) -> Result<Vec<Uuid>, DbError> {
    let ttl = ttl.as_secs_f64();
    sqlx::query!(
        "INSERT INTO sender_processes (id, alive_until) VALUES ($1, now() + make_interval(secs => $2))
         ON CONFLICT (id) DO UPDATE SET alive_until = excluded.alive_until",
        me,
        ttl
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!("DELETE FROM sender_processes WHERE alive_until < now() - interval '1 hour'")
        .execute(&mut *conn)
        .await?;
    // Each grant clears its own limit's old slots; this clears those of
    // limits no longer used (a deleted relay, a domain throttled once).
    // Two weeks is twice the longest window a limit may have.
    sqlx::query!(
        "DELETE FROM rate_counters
         WHERE slot_ms < (extract(epoch FROM now()) * 1000)::bigint - 14 * 86400 * 1000"
    )
    .execute(&mut *conn)
    .await?;
    Ok(sqlx::query_scalar!(
        "SELECT id FROM sender_processes WHERE alive_until >= now() ORDER BY started_at, id"
    )
    .fetch_all(conn)
    .await?)
}

/// Removes this process from the live ones (a clean shutdown), so the
/// others take over its share at once.
///
/// # Errors
///
/// [`DbError::Database`] if the statement fails.
pub async fn leave(conn: &mut PgConnection, me: Uuid) -> Result<(), DbError> {
    sqlx::query!("DELETE FROM sender_processes WHERE id = $1", me)
        .execute(conn)
        .await?;
    Ok(())
}

/// Takes up to `want` messages from the rate limit `key`, which allows
/// `max_messages` per `window`; returns how many may go now.
///
/// # Errors
///
/// [`DbError::Database`] if the call fails.
pub async fn take_rate(
    conn: &mut PgConnection,
    key: &str,
    max_messages: u32,
    window: Duration,
    want: u32,
) -> Result<u32, DbError> {
    let max = i32::try_from(max_messages).unwrap_or(i32::MAX);
    let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX).max(1);
    let want = i32::try_from(want).unwrap_or(i32::MAX);
    let given = sqlx::query_scalar!(
        r#"SELECT take_rate($1, $2, $3, $4) AS "given!""#,
        key,
        max,
        window_ms,
        want
    )
    .fetch_one(conn)
    .await?;
    Ok(u32::try_from(given).unwrap_or(0))
}
