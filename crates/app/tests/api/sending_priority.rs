//! The sender's priority lane: test sends are deliveries of their own kind,
//! sent by the sender (never by the web role) through the campaign's relay
//! group and its limits, answered once, and never held up by bulk work.

use std::time::{Duration, SystemTime};

use postino_sink::{Sink, SinkConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::policy::{add_relay, busiest, reconfigure_default};
use crate::sending::{audience, campaign, sending_app, set_status, stats, wait_for};

/// A delivery row as a test send leaves it.
#[derive(Debug, sqlx::FromRow)]
struct TestRow {
    kind: String,
    subscriber_id: Option<i64>,
    email: String,
    status: String,
    last_code: Option<i32>,
    last_reply: Option<String>,
    attempts: i32,
}

async fn test_send(app: &TestApp, campaign: &str, emails: &[&str]) -> Vec<Value> {
    app.post(
        &format!("/api/v1/campaigns/{campaign}/test"),
        json!({ "emails": emails }),
    )
    .await
    .expect(StatusCode::OK)
    .body["results"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_test_send_is_a_test_delivery_that_the_sender_sends_once_and_reports() {
    // Arrange: a draft, and a subscriber behind one of the addresses.
    let sink = Sink::start(SinkConfig::default()).await.unwrap();
    let app = sending_app(&sink, |_| {}).await;
    let list = audience(&app, 0, &["ada@example.org"]).await;
    sqlx::query("UPDATE subscribers SET name = 'Ada' WHERE email = 'ada@example.org'")
        .execute(&app.pool)
        .await
        .unwrap();
    let id = campaign(&app, &[&list]).await;

    // Act
    let results = test_send(
        &app,
        &id,
        &[
            "ada@example.org",
            "nobody@example.net",
            "tempfail@example.net",
            "permfail@example.net",
        ],
    )
    .await;

    // Assert: the sink's own replies, in the order asked.
    let emails: Vec<&str> = results
        .iter()
        .map(|r| r["email"].as_str().unwrap())
        .collect();
    assert_eq!(
        emails,
        [
            "ada@example.org",
            "nobody@example.net",
            "tempfail@example.net",
            "permfail@example.net"
        ]
    );
    for r in &results[..2] {
        assert_eq!(r["accepted"], true, "{r}");
        assert_eq!(r["status"], "sent", "{r}");
        assert_eq!(r["code"], 250, "{r}");
        assert!(r["reply"].as_str().unwrap().contains("OK queued"), "{r}");
    }
    assert_eq!(results[2]["accepted"], false);
    assert_eq!(results[2]["status"], "failed");
    assert_eq!(results[2]["code"], 451);
    assert!(
        results[2]["reply"]
            .as_str()
            .unwrap()
            .contains("Temporary failure injected by the sink"),
        "{}",
        results[2]
    );
    assert_eq!(results[3]["code"], 550);

    // Each is a test delivery, without a subscriber, holding the reply the
    // API showed; the temporary refusal was not retried.
    let rows: Vec<TestRow> = sqlx::query_as(
        "SELECT kind, subscriber_id, email, status, last_code, last_reply, attempts
         FROM deliveries ORDER BY id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 4, "{rows:?}");
    for (row, result) in rows.iter().zip(&results) {
        assert_eq!(row.kind, "test");
        assert_eq!(row.subscriber_id, None);
        assert_eq!(row.email, result["email"].as_str().unwrap());
        assert_eq!(row.status, result["status"].as_str().unwrap());
        assert_eq!(row.last_code.map(i64::from), result["code"].as_i64());
        assert_eq!(row.last_reply.as_deref(), result["reply"].as_str());
        assert_eq!(row.attempts, 1, "tried once: {row:?}");
    }
    assert_eq!(sink.counts().refused_temp, 1, "not retried");
    assert_eq!(app.count("SELECT count(*) FROM bounces").await, 0);
    assert_eq!(
        app.count("SELECT count(*) FROM subscribers WHERE status <> 'enabled'")
            .await,
        0
    );

    // The messages: merge fields of the subscriber with that address, or
    // the sample subscriber's; the return path is the sender address.
    let received = sink.messages();
    assert_eq!(received.len(), 2);
    let to_ada = received
        .iter()
        .find(|m| m.rcpt_to == ["ada@example.org"])
        .unwrap();
    let parsed = mail_parser::MessageParser::default()
        .parse(&to_ada.data)
        .unwrap();
    assert_eq!(parsed.subject(), Some("Nouvelles pour Ada ✉"));
    let to_nobody = received
        .iter()
        .find(|m| m.rcpt_to == ["nobody@example.net"])
        .unwrap();
    let parsed = mail_parser::MessageParser::default()
        .parse(&to_nobody.data)
        .unwrap();
    assert_eq!(parsed.subject(), Some("Nouvelles pour Jane Doe ✉"));
    assert_eq!(to_nobody.mail_from, "news@acme.example");

    // None of it is the campaign's: it is still a draft with nothing sent.
    let s = stats(&app, &id).await;
    assert_eq!(
        (
            s["status"].as_str(),
            s["total"].as_i64(),
            s["sent"].as_i64()
        ),
        (Some("draft"), Some(0), Some(0)),
        "{s}"
    );
}

#[tokio::test]
async fn a_test_send_goes_through_the_campaigns_relay_group_only() {
    // Arrange: the default relay, and one in the group "bulk" the campaign
    // is pinned to.
    let general = Sink::start(SinkConfig::default()).await.unwrap();
    let bulk = Sink::start(SinkConfig::default()).await.unwrap();
    let app = sending_app(&general, |_| {}).await;
    add_relay(&app, "bulk relay", &bulk, json!({"group": "bulk"})).await;
    let list = audience(&app, 0, &[]).await;
    let id = campaign(&app, &[&list]).await;
    app.patch(
        &format!("/api/v1/campaigns/{id}"),
        json!({"smtp_group": "bulk"}),
    )
    .await
    .expect(StatusCode::OK);

    // Act
    let results = test_send(&app, &id, &["me@example.com", "you@example.com"]).await;

    // Assert
    assert!(results.iter().all(|r| r["accepted"] == true), "{results:?}");
    assert_eq!(bulk.per_recipient().len(), 2);
    assert_eq!(general.counts().accepted, 0, "the other relay took nothing");
    assert_eq!(general.counts().connections, 0, "nor was it asked");
}

#[tokio::test]
async fn a_test_send_keeps_to_the_relays_rate_limit() {
    // Arrange: a relay that takes one message every two seconds.
    let sink = Sink::start(SinkConfig::default()).await.unwrap();
    let app = sending_app(&sink, |_| {}).await;
    reconfigure_default(
        &app,
        &sink,
        json!({"max_connections": 4, "window": {"messages": 1, "secs": 2}}),
    )
    .await;
    let list = audience(&app, 0, &[]).await;
    let id = campaign(&app, &[&list]).await;

    // Act: three messages, which four connections could send at once.
    let results = test_send(
        &app,
        &id,
        &["a@example.com", "b@example.com", "c@example.com"],
    )
    .await;

    // Assert: all sent, never two within the window, as the sink saw them.
    assert!(results.iter().all(|r| r["accepted"] == true), "{results:?}");
    let times: Vec<SystemTime> = sink.messages().iter().map(|m| m.at).collect();
    assert_eq!(times.len(), 3);
    assert_eq!(
        busiest(&times, Duration::from_secs(2)),
        1,
        "two messages within 2 s through a relay allowing 1: {times:?}"
    );
}

#[tokio::test]
async fn a_test_send_goes_out_while_a_fifty_thousand_recipient_campaign_is_draining() {
    // Arrange: 50,000 recipients through a relay allowing 20 messages a
    // second, so the campaign takes forty minutes and the sender's lanes
    // are always full of its jobs.
    const RECIPIENTS: i64 = 50_000;
    let sink = Sink::start(SinkConfig {
        keep: false,
        ..SinkConfig::default()
    })
    .await
    .unwrap();
    let app = sending_app(&sink, |_| {}).await;
    reconfigure_default(
        &app,
        &sink,
        json!({"max_connections": 2, "messages_per_second": 20}),
    )
    .await;
    let list = audience(&app, RECIPIENTS, &[]).await;
    let bulk = campaign(&app, &[&list]).await;
    let draft = campaign(&app, &[&list]).await;
    set_status(&app, &bulk, "running").await;
    wait_for(&app, &bulk, "the campaign visibly sending", |s| {
        s["total"] == RECIPIENTS && s["sent"].as_i64() >= Some(40)
    })
    .await;

    // Act
    let results = test_send(&app, &draft, &["watcher@example.net"]).await;

    // Assert: sent, while the bulk campaign still has most of its queue.
    assert_eq!(results[0]["accepted"], true, "{results:?}");
    assert_eq!(results[0]["status"], "sent");
    let test_status: String =
        sqlx::query_scalar("SELECT status FROM deliveries WHERE kind = 'test'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(test_status, "sent");
    let still_queued = stats(&app, &bulk).await["queued"].as_i64().unwrap();
    assert!(
        still_queued > RECIPIENTS / 2,
        "only {still_queued} of the campaign's deliveries were still queued"
    );
    assert_eq!(sink.per_recipient().get("watcher@example.net"), Some(&1));
}
