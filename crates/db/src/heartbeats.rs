//! What each scheduler and sender process has done lately, counted: passes
//! (one look at the work), deliveries claimed, rereads of the relays. A
//! counter that moved proves the process looked after some event, which a
//! wait of some length never does; operators read the same rows to see
//! that a role is alive and working.
//!
//! One small row per process and role, updated in place (the columns it
//! changes are not indexed, so the update is cheap and leaves no index
//! entries behind).

use std::sync::LazyLock;
use std::time::Duration;

use sqlx::PgConnection;
use uuid::Uuid;

use crate::DbError;

/// A role that beats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Ticks: starts, enqueues and finishes campaigns.
    Scheduler,
    /// Claims and sends deliveries.
    Sender,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Self::Scheduler => "scheduler",
            Self::Sender => "sender",
        }
    }
}

static THIS_PROCESS: LazyLock<Uuid> = LazyLock::new(Uuid::new_v4);

/// An id for this process, for roles that have none of their own.
#[must_use]
pub fn this_process() -> Uuid {
    *THIS_PROCESS
}

fn pid() -> i32 {
    i32::try_from(std::process::id()).unwrap_or(i32::MAX)
}

/// Counts one pass of `role` in `process`, which claimed `claimed`
/// deliveries.
///
/// # Errors
///
/// [`DbError::Database`] if the statement fails.
pub async fn pass(
    conn: &mut PgConnection,
    process: Uuid,
    role: Role,
    claimed: i64,
) -> Result<(), DbError> {
    sqlx::query!(
        "INSERT INTO heartbeats (process, role, pid, passes, claimed) VALUES ($1, $2, $3, 1, $4)
         ON CONFLICT (process, role) DO UPDATE SET
             passes = heartbeats.passes + 1,
             claimed = heartbeats.claimed + excluded.claimed,
             seen_at = now()",
        process,
        role.as_str(),
        pid(),
        claimed,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Counts one reread of the relays and the policy by `process`.
///
/// # Errors
///
/// [`DbError::Database`] if the statement fails.
pub async fn reloaded(conn: &mut PgConnection, process: Uuid, role: Role) -> Result<(), DbError> {
    sqlx::query!(
        "INSERT INTO heartbeats (process, role, pid, reloads) VALUES ($1, $2, $3, 1)
         ON CONFLICT (process, role) DO UPDATE SET
             reloads = heartbeats.reloads + 1,
             seen_at = now()",
        process,
        role.as_str(),
        pid(),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes the rows of processes silent for longer than `age` (stopped or
/// dead). Returns how many went.
///
/// # Errors
///
/// [`DbError::Database`] if the statement fails.
pub async fn forget_silent(conn: &mut PgConnection, age: Duration) -> Result<u64, DbError> {
    let done = sqlx::query!(
        "DELETE FROM heartbeats WHERE seen_at < now() - make_interval(secs => $1)",
        age.as_secs_f64(),
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
