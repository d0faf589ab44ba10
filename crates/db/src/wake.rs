//! The channels roles wake each other on. A notification only makes a role
//! act sooner: each also polls, so a lost notification (a dropped listener
//! connection, a role started later) delays work but never loses it.
//!
//! The names live here, beside the one way to send them, because the roles
//! meet only in the database: the web role cannot import the scheduler, nor
//! the scheduler the sender.

use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};

use crate::DbError;

/// The scheduler listens here: a campaign started, enqueue it now rather
/// than at the next tick.
pub const SCHEDULER: &str = "postino_scheduler";

/// Senders listen here: a priority delivery (a test send) is queued, claim
/// it now rather than at the next poll.
pub const SENDER: &str = "postino_sender";

/// Notifies `channel`, delivered when the caller's transaction commits (at
/// once outside one).
///
/// # Errors
///
/// [`DbError::Database`] if the statement fails.
pub async fn notify(conn: &mut PgConnection, channel: &str) -> Result<(), DbError> {
    sqlx::query!("SELECT pg_notify($1, '')", channel)
        .execute(conn)
        .await?;
    Ok(())
}

/// A connection of its own listening on one channel.
#[derive(Debug)]
pub struct Listener(PgListener);

impl Listener {
    /// Listens on `channel` over a new connection to `pool`'s database.
    ///
    /// # Errors
    ///
    /// [`DbError::Database`] if the connection or the `LISTEN` fails.
    pub async fn listen(pool: &PgPool, channel: &str) -> Result<Self, DbError> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(channel).await?;
        Ok(Self(listener))
    }

    /// Waits for the next notification. After a dropped connection the
    /// next call reconnects; what was notified meanwhile is lost, which is
    /// why every listener also polls.
    ///
    /// # Errors
    ///
    /// [`DbError::Database`] if the connection fails.
    pub async fn recv(&mut self) -> Result<(), DbError> {
        self.0.recv().await?;
        Ok(())
    }
}
