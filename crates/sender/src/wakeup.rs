//! Prompt wake-ups for priority mail: a listener on
//! [`postino_db::wake::SENDER`] that tells the claimer a priority delivery
//! was queued, so it claims now rather than at its next poll. Only a
//! shortcut: the claimer polls the priority lane anyway, so a notification
//! lost with a dropped connection delays a test send, never loses it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use postino_db::wake::{self, Listener};
use postino_db::{DbError, PgPool};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How long the listener waits before listening again after an error.
const RELISTEN: Duration = Duration::from_secs(1);

/// Whether a wake-up came since the claimer last looked.
#[derive(Debug, Default)]
pub(crate) struct Wakeup {
    pending: AtomicBool,
    notify: Notify,
}

impl Wakeup {
    /// Whether a wake-up came since the last call.
    pub(crate) fn take(&self) -> bool {
        self.pending.swap(false, Ordering::AcqRel)
    }

    /// Returns once a wake-up comes (at once if one came unawaited).
    pub(crate) async fn wait(&self) {
        self.notify.notified().await;
    }

    fn ring(&self) {
        self.pending.store(true, Ordering::Release);
        self.notify.notify_one();
    }
}

/// Listens until `shutdown`, ringing the returned [`Wakeup`] on every
/// notification, and once after each reconnection (what was sent while the
/// connection was down is lost, so look at once).
pub(crate) fn listen(pool: &PgPool, shutdown: &CancellationToken) -> Arc<Wakeup> {
    let wakeup = Arc::new(Wakeup::default());
    let (pool, shutdown, ring) = (pool.clone(), shutdown.clone(), wakeup.clone());
    tokio::spawn(async move {
        while !shutdown.is_cancelled() {
            let listened = async {
                let mut listener = Listener::listen(&pool, wake::SENDER).await?;
                ring.ring();
                loop {
                    listener.recv().await?;
                    ring.ring();
                }
            };
            let failed: Result<(), DbError> = tokio::select! {
                () = shutdown.cancelled() => return,
                failed = listened => failed,
            };
            if let Err(e) = failed {
                tracing::warn!(error = %e, "sender cannot listen for priority mail; polling meanwhile");
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(RELISTEN) => {}
            }
        }
    });
    wakeup
}
