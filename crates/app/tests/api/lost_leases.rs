//! A delivery that kills its sender must not kill the next one: each death
//! (a lease that lapsed with no result) is counted, suspects are claimed
//! one at a time, and the third death fails the delivery with the reason.

use std::time::Duration;

use chrono::Utc;
use postino_db::sending::{ClaimFrom, claim};
use postino_sink::{Sink, SinkConfig};
use tokio_util::sync::CancellationToken;

use crate::helpers::spawn_app_with;
use crate::sending::{audience, campaign, finished_within, set_status};

#[tokio::test]
async fn a_delivery_that_keeps_killing_senders_fails_and_the_rest_go_out() {
    let sink = Sink::start(SinkConfig::default()).await.unwrap();
    let port = sink.addr().port();
    let app = spawn_app_with(|s| s.smtp.port = port).await;
    let list = audience(&app, 5, &[]).await;
    let id = campaign(&app, &[&list]).await;
    set_status(&app, &id, "running").await;
    postino_scheduler::tick(&app.pool, &postino_scheduler::SchedulerSettings::default())
        .await
        .unwrap();
    let campaign_key: i64 = sqlx::query_scalar("SELECT id FROM campaigns")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let from = [ClaimFrom {
        campaign: campaign_key,
        after: None,
    }];
    let mut conn = app.pool.acquire().await.unwrap();
    let lease = Duration::from_secs(300);
    // Time moves on past every lease instead of the test waiting for it.
    let later = || Utc::now() + chrono::Duration::seconds(600);

    // A sender claims the whole campaign and dies.
    let first = claim(&mut conn, &from, 100, lease, true).await.unwrap();
    assert_eq!(first.len(), 5);
    assert!(first.iter().all(|c| c.lost_leases == 0));
    assert_eq!(
        postino_db::deliveries::requeue_expired(&mut conn, later())
            .await
            .unwrap(),
        5
    );
    // Now all five are suspects: a claim gets one of them, and only with
    // room for a suspect.
    assert!(
        claim(&mut conn, &from, 100, lease, false)
            .await
            .unwrap()
            .is_empty()
    );
    let poisoned = claim(&mut conn, &from, 100, lease, true).await.unwrap();
    assert_eq!(poisoned.len(), 1, "{poisoned:?}");
    assert_eq!(poisoned[0].lost_leases, 1);
    let poisoned = poisoned[0].id;
    // It kills the second sender, is claimed alone again by a third, and
    // kills that one too.
    postino_db::deliveries::requeue_expired(&mut conn, later())
        .await
        .unwrap();
    let again = claim(&mut conn, &from, 100, lease, true).await.unwrap();
    assert_eq!(again.iter().map(|c| c.id).collect::<Vec<_>>(), [poisoned]);
    assert_eq!(again[0].lost_leases, 2);
    postino_db::deliveries::requeue_expired(&mut conn, later())
        .await
        .unwrap();
    let (status, reply): (String, String) =
        sqlx::query_as("SELECT status, last_reply FROM deliveries WHERE id = $1")
            .bind(poisoned)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    assert_eq!(status, "failed");
    assert!(reply.contains("a sender stopped 3 times"), "{reply}");
    drop(conn);

    // The next sender delivers the four innocent suspects, one at a time,
    // and the campaign finishes.
    let mut settings = crate::helpers::test_settings(&app.db);
    settings.smtp.port = port;
    settings.sender.idle_poll = Duration::from_millis(20);
    settings.sender.reload_servers = Duration::from_millis(100);
    settings.sender.record_interval = Duration::from_millis(20);
    let stop = CancellationToken::new();
    let sender = tokio::spawn({
        let stop = stop.clone();
        async move { postino_app::run_sender(&settings, stop).await }
    });
    let scheduler = postino_scheduler::SchedulerSettings {
        tick_ms: 50,
        ..postino_scheduler::SchedulerSettings::default()
    };
    let ticking = tokio::spawn({
        let pool = app.pool.clone();
        async move {
            loop {
                let _ = postino_scheduler::tick(&pool, &scheduler).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    let stats = finished_within(&app, &id, Duration::from_secs(60)).await;
    ticking.abort();
    stop.cancel();
    sender.await.unwrap().unwrap();
    assert_eq!(stats["sent"], 4, "{stats}");
    assert_eq!(stats["failed"], 1, "{stats}");
    assert_eq!(sink.messages().len(), 4);
}
