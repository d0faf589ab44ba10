//! The sender end to end: the real application (web, scheduler, sender)
//! delivering to a real SMTP server (the sink) over TCP.

use std::collections::HashSet;
use std::time::Duration;

use mail_parser::{MessageParser, MimeHeaders};
use postino_sink::{Sink, SinkConfig};
use postino_testkit::{Counter, advance, drain, wait_until};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_as};

/// A body with a non-ASCII greeting, a merge field, the unsubscribe link and
/// one line far longer than SMTP allows (1000 octets), which encoding must fold.
pub(crate) fn body() -> String {
    format!(
        "<p>Grüße, {{{{ subscriber.name }}}}!</p><p>{}</p><a href=\"{{{{ unsubscribe_url }}}}\">Unsubscribe</a>",
        "word ".repeat(600).trim_end()
    )
}

/// The application with every role, sending to `sink`, with timings short
/// enough for tests.
pub(crate) async fn sending_app(
    sink: &Sink,
    configure: impl FnOnce(&mut postino_app::Settings),
) -> TestApp {
    let port = sink.addr().port();
    spawn_app_as(postino_app::Role::All, |s| {
        s.smtp.port = port;
        s.smtp.max_connections = 4;
        s.scheduler.tick_ms = 50;
        s.sender.idle_poll = Duration::from_millis(50);
        s.sender.reload_servers = Duration::from_millis(100);
        s.sender.record_interval = Duration::from_millis(20);
        s.sender.retry_initial = Duration::from_millis(200);
        s.sender.retry_max = Duration::from_millis(400);
        s.sender.breaker_cooldown = Duration::from_millis(100);
        s.sender.breaker_cooldown_max = Duration::from_millis(400);
        s.http.root_url = "https://news.example.com".to_owned();
        configure(s);
    })
    .await
}

/// Adds `n` subscribers `user{i}@example.org` (plus `extra` addresses) to a
/// new single opt-in list; returns the list id.
pub(crate) async fn audience(app: &TestApp, n: i64, extra: &[&str]) -> String {
    let list = app.create_list("News", "single").await;
    sqlx::query(
        "INSERT INTO subscribers (uuid, email, name)
         SELECT gen_random_uuid(), 'user' || g || '@example.org', 'User ' || g FROM generate_series(1, $1) g",
    )
    .bind(n)
    .execute(&app.pool)
    .await
    .unwrap();
    for email in extra {
        sqlx::query(
            "INSERT INTO subscribers (uuid, email, name) VALUES (gen_random_uuid(), $1, 'Extra')",
        )
        .bind(email)
        .execute(&app.pool)
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO subscriber_lists (list_id, subscriber_id, status)
         SELECT l.id, s.id, 'confirmed' FROM lists l, subscribers s WHERE l.uuid = $1::uuid",
    )
    .bind(&list)
    .execute(&app.pool)
    .await
    .unwrap();
    list
}

pub(crate) async fn campaign(app: &TestApp, lists: &[&str]) -> String {
    app.post(
        "/api/v1/campaigns",
        json!({
            "name": "Spring", "subject": "Nouvelles pour {{ subscriber.name }} ✉",
            "from_name": "Acmé News", "from_email": "news@acme.example", "body": body(), "lists": lists,
        }),
    )
    .await
    .expect(StatusCode::CREATED)
    .body["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub(crate) async fn set_status(app: &TestApp, id: &str, status: &str) {
    app.request(
        reqwest::Method::PUT,
        &format!("/api/v1/campaigns/{id}/status"),
        Some(json!({"status": status})),
    )
    .await
    .expect(StatusCode::OK);
}

pub(crate) async fn stats(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/api/v1/campaigns/{id}/stats"))
        .await
        .expect(StatusCode::OK)
        .body
}

/// Waits until `done` holds for the campaign's stats, or fails after a while.
pub(crate) async fn wait_for(
    app: &TestApp,
    id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..600 {
        let s = stats(app, id).await;
        if done(&s) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}: {}", stats(app, id).await);
}

pub(crate) async fn finished(app: &TestApp, id: &str) -> Value {
    finished_within(app, id, Duration::from_secs(30)).await
}

pub(crate) async fn finished_within(app: &TestApp, id: &str, limit: Duration) -> Value {
    wait_status(app, id, "finished", limit).await;
    stats(app, id).await
}

/// Waits until the campaign reaches `status` and returns it, or fails after
/// `limit` with its stats.
pub(crate) async fn wait_status(app: &TestApp, id: &str, status: &str, limit: Duration) -> Value {
    let started = std::time::Instant::now();
    while started.elapsed() < limit {
        let c = app.get(&format!("/api/v1/campaigns/{id}")).await.body;
        if c["status"] == status {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("campaign did not become {status}: {}", stats(app, id).await);
}

pub(crate) fn assert_exactly_once(sink: &Sink, expected: &HashSet<String>) {
    let per = sink.per_recipient();
    let got: HashSet<String> = per.keys().cloned().collect();
    let missing: Vec<_> = expected.difference(&got).collect();
    let unexpected: Vec<_> = got.difference(expected).collect();
    let twice: Vec<_> = per.iter().filter(|(_, n)| **n > 1).collect();
    assert!(missing.is_empty(), "never received: {missing:?}");
    assert!(
        unexpected.is_empty(),
        "not meant to receive: {unexpected:?}"
    );
    assert!(twice.is_empty(), "received more than once: {twice:?}");
}

pub(crate) fn users(n: i64) -> HashSet<String> {
    (1..=n).map(|i| format!("user{i}@example.org")).collect()
}

#[tokio::test]
async fn every_recipient_gets_exactly_one_well_formed_message() {
    // Arrange: 150 subscribers, on two overlapping lists.
    let sink = Sink::start(SinkConfig::default()).await.unwrap();
    let app = sending_app(&sink, |_| {}).await;
    let list = audience(&app, 150, &[]).await;
    let other = app.create_list("Offers", "single").await;
    sqlx::query(
        "INSERT INTO subscriber_lists (list_id, subscriber_id, status)
         SELECT (SELECT id FROM lists WHERE uuid = $1::uuid), id, 'confirmed' FROM subscribers WHERE id % 2 = 0",
    )
    .bind(&other)
    .execute(&app.pool)
    .await
    .unwrap();
    let id = campaign(&app, &[&list, &other]).await;

    // Act
    set_status(&app, &id, "running").await;
    let stats = finished(&app, &id).await;

    // Assert: once each, and the database agrees.
    assert_exactly_once(&sink, &users(150));
    assert_eq!(stats["sent"], 150, "{stats}");
    assert_eq!(
        app.count("SELECT count(*) FROM deliveries WHERE status = 'sent' AND sent_at IS NOT NULL AND last_code = 250")
            .await,
        150
    );
    let mut message_ids = HashSet::new();
    for received in sink.messages() {
        let raw = &received.data;
        for line in raw.split(|b| *b == b'\n') {
            assert!(line.len() <= 1000, "a line of {} octets", line.len());
        }
        let text = received.text();
        let msg = MessageParser::default().parse(raw).expect("valid MIME");
        let to = msg
            .to()
            .unwrap()
            .first()
            .unwrap()
            .address()
            .unwrap()
            .to_owned();
        assert_eq!(received.rcpt_to, std::slice::from_ref(&to));
        let name = format!(
            "User {}",
            to.trim_start_matches("user").split('@').next().unwrap()
        );
        assert_eq!(
            msg.subject(),
            Some(format!("Nouvelles pour {name} ✉").as_str())
        );
        let from = msg.from().unwrap().first().unwrap();
        assert_eq!(from.name(), Some("Acmé News"));
        assert_eq!(from.address(), Some("news@acme.example"));
        assert!(msg.date().is_some(), "Date header");
        assert!(
            message_ids.insert(msg.message_id().unwrap().to_owned()),
            "unique Message-ID"
        );
        assert!(msg.content_type().unwrap().c_subtype.as_deref() == Some("alternative"));
        let html = msg.body_html(0).unwrap();
        assert!(html.contains(&format!("Grüße, {name}!")), "{html}");
        let plain = msg.body_text(0).unwrap();
        assert!(plain.contains("Grüße"), "{plain}");
        assert!(
            text.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"),
            "{text}"
        );
        assert!(text.contains("List-Unsubscribe: <https://news.example.com/unsubscribe/"));
        let list_id = msg.header_raw("List-Id").unwrap().trim().to_owned();
        assert!(list_id.ends_with(".news.example.com>"), "{list_id}");
        // The return path names this very delivery.
        let local = received.mail_from.split('@').next().unwrap().to_owned();
        assert!(
            received.mail_from.ends_with("@acme.example"),
            "{}",
            received.mail_from
        );
        let hex_id = local
            .strip_prefix("bounces+")
            .unwrap()
            .split('-')
            .next()
            .unwrap();
        let delivery = i64::from_str_radix(hex_id, 16).unwrap();
        let owner: String = sqlx::query_scalar(
            "SELECT s.email FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id WHERE d.id = $1",
        )
        .bind(delivery)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        assert_eq!(owner, to);
    }
    // A subscriber on both lists gets List-Id of the first list they are on.
    assert_eq!(message_ids.len(), 150);
}

#[tokio::test]
async fn temporary_failures_and_dropped_connections_are_retried_until_they_arrive() {
    let sink = Sink::start(SinkConfig {
        temp_fail: 0.25,
        drop: 0.1,
        ..SinkConfig::default()
    })
    .await
    .unwrap();
    let app = sending_app(&sink, |_| {}).await;
    let list = audience(&app, 120, &[]).await;
    let id = campaign(&app, &[&list]).await;

    set_status(&app, &id, "running").await;
    let stats = finished(&app, &id).await;

    assert_exactly_once(&sink, &users(120));
    assert_eq!(stats["sent"], 120);
    assert!(sink.counts().refused_temp > 0, "the sink refused some");
    assert!(sink.counts().dropped > 0, "the sink hung up on some");
    assert!(
        app.count("SELECT count(*) FROM deliveries WHERE attempts > 1")
            .await
            > 0,
        "some needed more than one attempt"
    );
    assert_eq!(app.count("SELECT count(*) FROM bounces").await, 0);
}

#[tokio::test]
async fn permanent_failures_bounce_once_and_are_never_retried() {
    let sink = Sink::start(SinkConfig::default()).await.unwrap();
    let app = sending_app(&sink, |s| s.sender.blocklist_after_bounces = 1).await;
    let list = audience(
        &app,
        20,
        &[
            "permfail1@example.org",
            "permfail2@example.org",
            "policyfail@example.org",
        ],
    )
    .await;
    let id = campaign(&app, &[&list]).await;

    set_status(&app, &id, "running").await;
    let stats = finished(&app, &id).await;

    assert_exactly_once(&sink, &users(20));
    assert_eq!(stats["sent"], 20);
    assert_eq!(stats["failed"], 3);
    assert_eq!(
        sink.counts().refused_perm,
        3,
        "each refused once, not retried"
    );
    // A policy refusal (5.7.1) fails the delivery but is not the
    // recipient's bounce: they are not blocklisted for it.
    assert_eq!(
        app.count(
            "SELECT count(*) FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
               WHERE s.email = 'policyfail@example.org' AND d.status = 'failed' AND d.last_code = 554"
        )
        .await,
        1
    );
    assert_eq!(
        app.count(
            "SELECT count(*) FROM deliveries WHERE status = 'failed' AND attempts = 1 AND last_code = 550
               AND last_reply LIKE '%Mailbox unavailable%'"
        )
        .await,
        2
    );
    assert_eq!(
        app.count(
            "SELECT count(*) FROM bounces b JOIN subscribers s ON s.id = b.subscriber_id
                   WHERE b.kind = 'hard' AND b.code = 550 AND s.email LIKE 'permfail%'"
        )
        .await,
        2
    );
    assert_eq!(
        app.count("SELECT count(*) FROM subscribers WHERE status = 'blocklisted'")
            .await,
        2
    );
    assert_eq!(
        app.count("SELECT count(*) FROM subscription_events WHERE kind = 'blocklisted' AND source = 'bounces'")
            .await,
        2
    );
}

#[tokio::test]
async fn a_relay_outage_delays_delivery_but_loses_nothing() {
    // The relay is down when the campaign starts.
    let sink = Sink::start(SinkConfig::default()).await.unwrap();
    let addr = sink.addr();
    let app = sending_app(&sink, |_| {}).await;
    sink.shutdown().await;
    let list = audience(&app, 60, &[]).await;
    let id = campaign(&app, &[&list]).await;

    set_status(&app, &id, "running").await;
    wait_for(&app, &id, "queued", |s| s["queued"].as_i64() == Some(60)).await;
    // The sender keeps trying (its breaker takes the relay out and tries it
    // again): every delivery claimed three times over, on average, is three
    // rounds of trying; an unreachable relay is nobody's fault but its own,
    // so no attempt is counted against the deliveries and none fails.
    advance(
        &app.pool,
        "sender",
        Counter::Claimed,
        3 * 60,
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        app.count("SELECT count(*) FROM deliveries WHERE status IN ('queued', 'sending')")
            .await,
        60
    );
    assert_eq!(
        app.count("SELECT count(*) FROM deliveries WHERE status = 'queued' AND attempts > 0")
            .await,
        0
    );
    assert_eq!(
        app.count("SELECT count(*) FROM campaigns WHERE status = 'running'")
            .await,
        1,
        "a relay that is down is waited for, not a reason to pause"
    );

    // The relay comes back on the same address.
    let sink = Sink::start(SinkConfig {
        listen: addr,
        ..SinkConfig::default()
    })
    .await
    .unwrap();
    let stats = finished(&app, &id).await;

    assert_exactly_once(&sink, &users(60));
    assert_eq!(stats["sent"], 60);
}

/// A campaign to `n` subscribers, running against a sink that takes 20 ms
/// a message over two sessions, once its first 20 messages are out.
async fn running_slowly(n: i64) -> (Sink, TestApp, String) {
    let sink = Sink::start(SinkConfig {
        delay: Duration::from_millis(20),
        ..SinkConfig::default()
    })
    .await
    .unwrap();
    let app = sending_app(&sink, |s| s.smtp.max_connections = 2).await;
    let list = audience(&app, n, &[]).await;
    let id = campaign(&app, &[&list]).await;
    set_status(&app, &id, "running").await;
    wait_for(&app, &id, "some sent", |s| s["sent"].as_i64() >= Some(20)).await;
    (sink, app, id)
}

#[tokio::test]
async fn pause_stops_sending_within_a_second_and_resume_finishes_the_rest() {
    let (sink, app, id) = running_slowly(300).await;
    set_status(&app, &id, "paused").await;
    // Once nothing is in a sender's hands, and the sender has looked at
    // the queue twice since, it has seen the pause and sends no more.
    wait_for(&app, &id, "claims returned", |s| s["sending"] == 0).await;
    let after_pause = sink.counts().accepted;
    advance(
        &app.pool,
        "sender",
        Counter::Passes,
        2,
        Duration::from_secs(10),
    )
    .await;

    assert_eq!(
        sink.counts().accepted,
        after_pause,
        "nothing is sent while paused"
    );
    assert!(after_pause < 300, "paused before the end");
    let paused = stats(&app, &id).await;
    assert_eq!(
        paused["sending"], 0,
        "claims went back to the queue: {paused}"
    );

    set_status(&app, &id, "running").await;
    let stats = finished(&app, &id).await;
    assert_exactly_once(&sink, &users(300));
    assert_eq!(stats["sent"], 300);
}

#[tokio::test]
async fn cancel_stops_sending_and_skips_the_rest() {
    let (sink, app, id) = running_slowly(300).await;
    set_status(&app, &id, "cancelled").await;
    drain(&app.pool, id.parse().unwrap(), Duration::from_secs(30)).await;
    let settled = stats(&app, &id).await;
    let after_cancel = sink.counts().accepted;
    advance(
        &app.pool,
        "sender",
        Counter::Passes,
        2,
        Duration::from_secs(10),
    )
    .await;

    assert_eq!(
        sink.counts().accepted,
        after_cancel,
        "nothing is sent after cancel"
    );
    let sent = settled["sent"].as_i64().unwrap();
    assert_eq!(i64::try_from(after_cancel).unwrap(), sent);
    assert_eq!(
        settled["skipped"].as_i64().unwrap(),
        300 - sent,
        "{settled}"
    );
}

#[tokio::test]
async fn an_unsubscribe_after_enqueue_is_honoured_at_send_time() {
    let sink = Sink::start(SinkConfig::default()).await.unwrap();
    let app = sending_app(&sink, |_| {}).await;
    // No relay yet: the campaign is enqueued but nothing is sent.
    sqlx::query("UPDATE smtp_servers SET enabled = false")
        .execute(&app.pool)
        .await
        .unwrap();
    let list = audience(&app, 30, &[]).await;
    let id = campaign(&app, &[&list]).await;
    set_status(&app, &id, "running").await;
    wait_for(&app, &id, "enqueue", |s| s["queued"] == 30).await;

    // Two people leave: one unsubscribes, one is blocklisted.
    sqlx::query(
        "UPDATE subscriber_lists SET status = 'unsubscribed'
         WHERE subscriber_id = (SELECT id FROM subscribers WHERE email = 'user7@example.org')",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query("UPDATE subscribers SET status = 'blocklisted' WHERE email = 'user8@example.org'")
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE smtp_servers SET enabled = true, updated_at = now()")
        .execute(&app.pool)
        .await
        .unwrap();
    let stats = finished(&app, &id).await;

    let mut expected = users(30);
    expected.remove("user7@example.org");
    expected.remove("user8@example.org");
    assert_exactly_once(&sink, &expected);
    assert_eq!(stats["sent"], 28);
    assert_eq!(stats["skipped"], 2);
}

/// Sends SIGTERM, so the sender shuts down cleanly.
pub(crate) fn terminate(child: &tokio::process::Child) {
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    }
}

#[tokio::test]
async fn a_sender_killed_again_and_again_loses_nothing_and_duplicates_only_what_was_in_flight() {
    const RECIPIENTS: i64 = 50_000;
    const KILLS: usize = 6;
    const CONNECTIONS: u32 = 8;
    const RECORD_BATCH: u32 = 200;
    // The web role and the scheduler run here; the sender is a separate
    // process, killed with SIGKILL mid-send and restarted.
    let sink = Sink::start(SinkConfig {
        keep: false,
        ..SinkConfig::default()
    })
    .await
    .unwrap();
    let port = sink.addr().port();
    let app = spawn_app_as(postino_app::Role::Scheduler, |s| {
        s.smtp.port = port;
        s.smtp.max_connections = CONNECTIONS;
        s.scheduler.tick_ms = 100;
    })
    .await;
    let list = audience(&app, RECIPIENTS, &[]).await;
    let id = campaign(&app, &[&list]).await;
    set_status(&app, &id, "running").await;

    let sender = || {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_postino"))
            .args(["serve", "--role", "sender"])
            .env("DATABASE_URL", &app.db.url)
            .env("POSTINO__HTTP__LISTEN", "127.0.0.1:0")
            .env("POSTINO__LOG__LEVEL", "warn")
            .env("POSTINO__SENDER__LEASE", "2s")
            .env("POSTINO__SENDER__IDLE_POLL", "50ms")
            .env("POSTINO__SENDER__RECORD_BATCH", RECORD_BATCH.to_string())
            .env("POSTINO__SENDER__RECORD_INTERVAL", "50ms")
            // A killed sender counts as alive (holding its share of the
            // relay's connections) until its heartbeat runs out.
            .env("POSTINO__SENDER__RELOAD_SERVERS", "200ms")
            .kill_on_drop(true)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("the postino binary starts")
    };
    let mut kills = 0;
    while kills < KILLS {
        let mut child = sender();
        let before = sink.counts().accepted;
        // Kill it once it is well into sending, at a different point each time.
        let target = before + 2_000 + 500 * kills as u64;
        while sink.counts().accepted < target {
            if sink.counts().accepted >= u64::try_from(RECIPIENTS).unwrap() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        child.start_kill().unwrap();
        child.wait().await.unwrap();
        kills += 1;
        if sink.counts().accepted >= u64::try_from(RECIPIENTS).unwrap() {
            break;
        }
    }
    let mut last = sender();
    // Generous: a debug build on a busy machine sends a few hundred a second.
    let stats = finished_within(&app, &id, Duration::from_secs(600)).await;
    terminate(&last);
    last.wait().await.unwrap();

    let per = sink.per_recipient();
    let duplicates: u64 = per.values().map(|n| n - 1).sum();
    println!(
        "crash test: {kills} kills, {} messages for {} recipients, {duplicates} duplicates",
        sink.counts().accepted,
        per.len()
    );
    assert_eq!(stats["sent"], RECIPIENTS, "{stats}");
    assert_eq!(
        per.len(),
        usize::try_from(RECIPIENTS).unwrap(),
        "everyone got it"
    );
    // In flight at a kill: sends on the open connections plus results
    // accepted by the relay but not yet written (at most one batch).
    let bound = u64::try_from(kills).unwrap() * u64::from(RECORD_BATCH + CONNECTIONS);
    assert!(
        duplicates <= bound,
        "{duplicates} duplicates over {kills} kills; at most {bound} were in flight"
    );
}

#[tokio::test]
async fn who_did_not_get_it_and_why_is_one_call_and_failures_can_be_retried() {
    let sink = Sink::start(SinkConfig::default()).await.unwrap();
    let app = sending_app(&sink, |_| {}).await;
    let list = audience(&app, 5, &["permfail@example.org"]).await;
    let id = campaign(&app, &[&list]).await;
    set_status(&app, &id, "running").await;
    finished(&app, &id).await;

    let failed = app
        .get(&format!("/api/v1/campaigns/{id}/deliveries?status=failed"))
        .await
        .expect(StatusCode::OK);
    let items = failed.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", failed.text);
    assert_eq!(items[0]["email"], "permfail@example.org");
    assert_eq!(items[0]["status"], "failed");
    assert_eq!(items[0]["last_code"], 550);
    assert!(
        items[0]["last_reply"]
            .as_str()
            .unwrap()
            .contains("Mailbox unavailable")
    );
    assert!(failed.body["next_cursor"].is_null());

    // All six, two per page, in order.
    let mut emails = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/campaigns/{id}/deliveries?limit=2&cursor={c}"),
            None => format!("/api/v1/campaigns/{id}/deliveries?limit=2"),
        };
        let page = app.get(&path).await.expect(StatusCode::OK);
        for item in page.body["items"].as_array().unwrap() {
            emails.push(item["email"].as_str().unwrap().to_owned());
        }
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(emails.len(), 6, "{emails:?}");
    app.get(&format!("/api/v1/campaigns/{id}/deliveries?status=bounced"))
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "status");
    app.get(&format!("/api/v1/campaigns/{id}/deliveries?cursor=nope"))
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "cursor");

    // Retrying reopens the finished campaign; the recipient still refuses.
    let retried = app
        .post(
            &format!("/api/v1/campaigns/{id}/deliveries/retry"),
            json!({}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(retried.body["requeued"], 1);
    finished(&app, &id).await;
    assert_eq!(sink.counts().refused_perm, 2, "tried once more");
    assert_eq!(
        app.count("SELECT count(*) FROM deliveries WHERE status = 'failed' AND attempts = 1")
            .await,
        1
    );

    let draft = campaign(&app, &[&list]).await;
    app.post(
        &format!("/api/v1/campaigns/{draft}/deliveries/retry"),
        json!({}),
    )
    .await
    .expect_problem(StatusCode::CONFLICT, "status");
    app.get(&format!(
        "/api/v1/campaigns/{}/deliveries",
        uuid::Uuid::new_v4()
    ))
    .await
    .expect_problem(StatusCode::NOT_FOUND, "");
}

#[tokio::test]
async fn the_demo_campaign_reaches_every_imported_demo_subscriber_once() {
    let sink = Sink::start(SinkConfig {
        keep: false,
        ..SinkConfig::default()
    })
    .await
    .unwrap();
    let app = sending_app(&sink, |s| s.smtp.max_connections = 8).await;
    let access =
        postino_app::commands::seed_demo(&app.pool, &postino_importer::ImportSettings::default())
            .await
            .unwrap();
    assert_eq!(access.subscribers, 5000);
    assert_eq!(
        app.count("SELECT count(*) FROM imports WHERE status = 'finished' AND imported = 5000")
            .await,
        1,
        "the demo list came through the importer"
    );
    let campaigns = app.get("/api/v1/campaigns").await.expect(StatusCode::OK);
    let id = campaigns.body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    set_status(&app, &id, "running").await;
    let stats = finished_within(&app, &id, Duration::from_secs(300)).await;

    assert_eq!(stats["sent"], 5000, "{stats}");
    let per = sink.per_recipient();
    assert_eq!(per.len(), 5000);
    assert!(per.values().all(|n| *n == 1));
    // Seeding again (a restart of the demo) adds no one.
    postino_app::commands::seed_demo(&app.pool, &postino_importer::ImportSettings::default())
        .await
        .unwrap();
    assert_eq!(app.count("SELECT count(*) FROM subscribers").await, 5000);
}

#[tokio::test]
async fn claims_of_a_dead_sender_return_to_the_queue_or_are_skipped_if_cancelled() {
    let app = crate::helpers::spawn_app().await;
    let list = audience(&app, 10, &[]).await;
    let running = campaign(&app, &[&list]).await;
    let cancelled = campaign(&app, &[&list]).await;
    set_status(&app, &running, "running").await;
    set_status(&app, &cancelled, "running").await;
    let settings = postino_scheduler::SchedulerSettings::default();
    postino_scheduler::tick(&app.pool, &settings).await.unwrap();

    // A sender claims everything, then dies: its leases lapse.
    let mut conn = app.pool.acquire().await.unwrap();
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM campaigns ORDER BY id")
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    let from: Vec<_> = ids
        .iter()
        .map(|&campaign| postino_db::sending::ClaimFrom {
            campaign,
            after: None,
        })
        .collect();
    let claimed =
        postino_db::sending::claim(&mut conn, &from, 100, Duration::from_millis(1), false)
            .await
            .unwrap();
    assert_eq!(claimed.len(), 20, "both campaigns share the claim");
    assert_eq!(
        claimed.iter().filter(|c| c.campaign_id == ids[0]).count(),
        10
    );
    drop(conn);
    set_status(&app, &cancelled, "cancelled").await;
    wait_until("the leases to lapse", Duration::from_secs(10), async || {
        app.count("SELECT count(*) FROM deliveries WHERE lease_until >= now()")
            .await
            == 0
    })
    .await;
    let report = postino_scheduler::tick(&app.pool, &settings).await.unwrap();

    assert_eq!(report.requeued, 10);
    let running_stats = stats(&app, &running).await;
    assert_eq!(running_stats["queued"], 10, "{running_stats}");
    let cancelled_stats = stats(&app, &cancelled).await;
    assert_eq!(cancelled_stats["skipped"], 10, "{cancelled_stats}");
    assert_eq!(cancelled_stats["sending"], 0);
}

#[tokio::test]
async fn a_recipient_that_keeps_refusing_for_now_fails_once_the_retry_age_is_reached() {
    let sink = Sink::start(SinkConfig::default()).await.unwrap();
    let app = sending_app(&sink, |s| s.sender.give_up_after = Duration::from_secs(1)).await;
    let list = audience(&app, 3, &["tempfail@example.org"]).await;
    let id = campaign(&app, &[&list]).await;

    set_status(&app, &id, "running").await;
    let stats = finished(&app, &id).await;

    assert_eq!(stats["sent"], 3, "{stats}");
    assert_eq!(stats["failed"], 1, "{stats}");
    let failed = app
        .get(&format!("/api/v1/campaigns/{id}/deliveries?status=failed"))
        .await
        .expect(StatusCode::OK);
    let item = &failed.body["items"][0];
    assert_eq!(item["email"], "tempfail@example.org");
    assert_eq!(item["last_code"], 451);
    assert!(item["attempts"].as_i64().unwrap() > 1, "{item}");
    assert!(
        item["last_reply"]
            .as_str()
            .unwrap()
            .starts_with("gave up after"),
        "{item}"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM bounces").await,
        0,
        "not a bounce"
    );
    assert!(sink.counts().refused_temp > 1, "retried before giving up");
}
