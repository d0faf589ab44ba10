//! Sending policy end to end: rate limits across sender processes, relay
//! weights, failover and groups, domain throttles, and campaigns that pause
//! themselves. Everything is counted at real SMTP sinks over TCP.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use postino_sink::{Sink, SinkConfig, Throttle};
use postino_testkit::{Counter, advance};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_as};
use crate::sending::{
    assert_exactly_once, audience, campaign, finished, finished_within, sending_app, set_status,
    terminate, users, wait_for, wait_status,
};

/// The stored relays' ids by name.
async fn relay_id(app: &TestApp, name: &str) -> String {
    let all = app.get("/api/v1/smtp-servers").await.expect(StatusCode::OK);
    all.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .unwrap()
}

/// Adds a relay pointing at `sink` with extra fields from `policy`.
pub(crate) async fn add_relay(app: &TestApp, name: &str, sink: &Sink, policy: Value) -> String {
    let mut body = json!({"name": name, "host": "127.0.0.1", "port": sink.addr().port(), "max_connections": 2});
    for (k, v) in policy.as_object().unwrap() {
        body[k] = v.clone();
    }
    app.post("/api/v1/smtp-servers", body)
        .await
        .expect(StatusCode::CREATED)
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Replaces the seeded "default" relay's settings.
pub(crate) async fn reconfigure_default(app: &TestApp, sink: &Sink, policy: Value) {
    let id = relay_id(app, "default").await;
    let mut body = json!({"name": "default", "host": "127.0.0.1", "port": sink.addr().port()});
    for (k, v) in policy.as_object().unwrap() {
        body[k] = v.clone();
    }
    app.put(&format!("/api/v1/smtp-servers/{id}"), body)
        .await
        .expect(StatusCode::OK);
}

/// Most messages the sink accepted within any `window`.
pub(crate) fn busiest(times: &[SystemTime], window: Duration) -> usize {
    let mut times = times.to_vec();
    times.sort();
    let mut best = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end].duration_since(times[start]).unwrap_or_default() >= window {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

fn accepted_at(sink: &Sink, domain: &str) -> Vec<SystemTime> {
    sink.messages()
        .iter()
        .filter(|m| m.rcpt_to.iter().any(|r| r.ends_with(domain)))
        .map(|m| m.at)
        .collect()
}

/// Starts two sender processes on the app's database (the first serving
/// its metrics on `metrics`, if given) and waits until both say they are
/// alive, so neither runs alone on a whole connection limit.
async fn two_senders(
    app: &TestApp,
    metrics: Option<u16>,
) -> (tokio::process::Child, tokio::process::Child) {
    let sender = |metrics: Option<u16>| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_postino"));
        command
            .args(["serve", "--role", "sender"])
            .env("DATABASE_URL", &app.db.url)
            .env("POSTINO__LOG__LEVEL", "warn")
            .env("POSTINO__SENDER__IDLE_POLL", "50ms")
            .env("POSTINO__SENDER__RELOAD_SERVERS", "100ms")
            .env("POSTINO__SENDER__RECORD_INTERVAL", "20ms")
            .kill_on_drop(true)
            .stdout(std::process::Stdio::null());
        if let Some(port) = metrics {
            command.env(
                "POSTINO__SENDER__METRICS_LISTEN",
                format!("127.0.0.1:{port}"),
            );
        }
        command.spawn().expect("the postino binary starts")
    };
    let pair = (sender(metrics), sender(None));
    for _ in 0..200 {
        if app
            .count("SELECT count(*) FROM sender_processes WHERE alive_until > now()")
            .await
            == 2
        {
            return pair;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the two senders did not start");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn limits_hold_with_two_sender_processes_against_one_database() {
    const PER_SECOND: usize = 25;
    // Each reply to DATA takes 30 ms, so a message in flight is visible in
    // the sink's timestamps.
    let sink = Sink::start(SinkConfig {
        delay: Duration::from_millis(30),
        ..SinkConfig::default()
    })
    .await
    .unwrap();
    let port = sink.addr().port();
    // The web role and the scheduler run here; the senders are two
    // separate processes.
    let app = spawn_app_as(postino_app::Role::Scheduler, |s| {
        s.smtp.port = port;
        s.scheduler.tick_ms = 50;
    })
    .await;
    reconfigure_default(&app, &sink, json!({"max_connections": 3})).await;
    app.put(
        "/api/v1/sending-limits",
        json!({"messages_per_second": PER_SECOND}),
    )
    .await
    .expect(StatusCode::OK);
    app.put(
        "/api/v1/domain-limits/One.Test",
        json!({"max_connections": 1}),
    )
    .await
    .expect(StatusCode::CREATED);
    let one: Vec<String> = (1..=10).map(|i| format!("r{i}@one.test")).collect();
    let refs: Vec<&str> = one.iter().map(String::as_str).collect();
    let list = audience(&app, 100, &refs).await;
    let id = campaign(&app, &[&list]).await;

    let (a, b) = two_senders(&app, None).await;
    let started = std::time::Instant::now();
    set_status(&app, &id, "running").await;
    finished_within(&app, &id, Duration::from_secs(60)).await;
    let took = started.elapsed();
    terminate(&a);
    terminate(&b);

    let mut expected = users(100);
    expected.extend(one.iter().cloned());
    assert_exactly_once(&sink, &expected);
    let all: Vec<SystemTime> = sink.messages().iter().map(|m| m.at).collect();
    let peak = busiest(&all, Duration::from_secs(1));
    assert!(
        peak <= PER_SECOND,
        "{peak} messages in one second; the limit is {PER_SECOND}"
    );
    assert!(
        took >= Duration::from_secs(3),
        "110 messages at 25 a second cannot take {took:?}"
    );
    let sessions = sink.counts().peak_sessions;
    assert!(
        sessions <= 3,
        "{sessions} sessions at once; the relay allows 3"
    );
    // One in flight at a time: each one.test message was answered at
    // least the sink's 30 ms after the one before.
    let mut times = accepted_at(&sink, "@one.test");
    times.sort();
    for pair in times.windows(2) {
        let gap = pair[1].duration_since(pair[0]).unwrap_or_default();
        assert!(
            gap >= Duration::from_millis(25),
            "two one.test messages in flight at once ({gap:?} apart)"
        );
    }
}

#[tokio::test]
async fn relay_and_domain_rates_hold_with_two_sender_processes() {
    let sink = Sink::start(SinkConfig::default()).await.unwrap();
    let port = sink.addr().port();
    let app = spawn_app_as(postino_app::Role::Scheduler, |s| {
        s.smtp.port = port;
        s.scheduler.tick_ms = 50;
    })
    .await;
    reconfigure_default(
        &app,
        &sink,
        json!({"max_connections": 4, "messages_per_second": 30, "window": {"messages": 40, "secs": 2}}),
    )
    .await;
    // 300 a minute is 5 a second, spread evenly.
    app.put(
        "/api/v1/domain-limits/paced.test",
        json!({"messages_per_minute": 300}),
    )
    .await
    .expect(StatusCode::CREATED);
    let paced: Vec<String> = (1..=15).map(|i| format!("p{i}@paced.test")).collect();
    let refs: Vec<&str> = paced.iter().map(String::as_str).collect();
    let list = audience(&app, 60, &refs).await;
    let id = campaign(&app, &[&list]).await;
    let metrics = free_port();
    let (a, b) = two_senders(&app, Some(metrics)).await;
    set_status(&app, &id, "running").await;
    finished_within(&app, &id, Duration::from_secs(60)).await;

    let mut expected = users(60);
    expected.extend(paced.iter().cloned());
    assert_exactly_once(&sink, &expected);
    let all: Vec<SystemTime> = sink.messages().iter().map(|m| m.at).collect();
    let per_second = busiest(&all, Duration::from_secs(1));
    assert!(
        per_second <= 30,
        "{per_second} in one second through a relay allowing 30"
    );
    let per_window = busiest(&all, Duration::from_secs(2));
    assert!(
        per_window <= 40,
        "{per_window} in 2 s through a relay allowing 40"
    );
    let paced_times = accepted_at(&sink, "@paced.test");
    let paced_peak = busiest(&paced_times, Duration::from_secs(1));
    assert!(
        paced_peak <= 5,
        "{paced_peak} paced.test messages in one second; 300 a minute allows 5"
    );

    // A standalone sender's counters can be scraped.
    let scraped = reqwest::get(format!("http://127.0.0.1:{metrics}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(scraped.contains("postino_sender_processes 2"), "{scraped}");
    assert!(scraped.contains("postino_deliveries_total"), "{scraped}");
    // Gauges this process sets itself; counters such as deferrals appear
    // only once this process (not the other) has counted one.
    assert!(
        scraped.contains(r#"postino_relay_in_rotation{relay="default"} 1"#),
        "{scraped}"
    );
    terminate(&a);
    terminate(&b);
}

#[tokio::test]
async fn a_relays_own_rate_and_window_cap_hold() {
    let sink = Sink::start(SinkConfig::default()).await.unwrap();
    let app = sending_app(&sink, |_| {}).await;
    reconfigure_default(
        &app,
        &sink,
        json!({"max_connections": 4, "messages_per_second": 40, "window": {"messages": 30, "secs": 2}}),
    )
    .await;
    let list = audience(&app, 75, &[]).await;
    let id = campaign(&app, &[&list]).await;
    let started = std::time::Instant::now();
    set_status(&app, &id, "running").await;
    finished(&app, &id).await;
    let took = started.elapsed();
    assert_exactly_once(&sink, &users(75));
    let times: Vec<SystemTime> = sink.messages().iter().map(|m| m.at).collect();
    let per_window = busiest(&times, Duration::from_secs(2));
    assert!(
        per_window <= 30,
        "{per_window} messages in 2 s; the cap is 30"
    );
    assert!(
        took >= Duration::from_secs(4),
        "75 messages at 30 per 2 s took {took:?}"
    );
}

#[tokio::test]
async fn traffic_follows_weights_and_moves_off_a_relay_that_stops() {
    let heavy = Sink::start(SinkConfig::default()).await.unwrap();
    let light = Sink::start(SinkConfig::default()).await.unwrap();
    let app = sending_app(&heavy, |_| {}).await;
    reconfigure_default(&app, &heavy, json!({"weight": 3, "max_connections": 2})).await;
    add_relay(&app, "light", &light, json!({"weight": 1})).await;
    // Both relays are in use before the campaign starts: the sender has
    // reread the relays since the second was added.
    advance(
        &app.pool,
        "sender",
        Counter::Reloads,
        2,
        Duration::from_secs(10),
    )
    .await;
    let list = audience(&app, 400, &[]).await;
    let id = campaign(&app, &[&list]).await;
    set_status(&app, &id, "running").await;
    finished(&app, &id).await;
    let (h, l) = (heavy.counts().accepted, light.counts().accepted);
    assert_eq!(h + l, 400);
    let share = h as f64 / 400.0;
    assert!(
        (0.6..=0.9).contains(&share),
        "weight 3 to 1 gave {h} to {l}"
    );

    // The heavy relay stops during a second campaign: what it did not take
    // goes to the other one, and nothing is lost or sent twice.
    let second = app.create_list("Second", "single").await;
    sqlx::query(
        "INSERT INTO subscriber_lists (list_id, subscriber_id, status)
         SELECT l.id, s.id, 'confirmed' FROM lists l, subscribers s WHERE l.uuid = $1::uuid",
    )
    .bind(&second)
    .execute(&app.pool)
    .await
    .unwrap();
    let id = campaign(&app, &[&second]).await;
    let before = (heavy.counts().accepted, light.counts().accepted);
    heavy.shutdown().await;
    set_status(&app, &id, "running").await;
    finished(&app, &id).await;
    let after = (heavy.counts().accepted, light.counts().accepted);
    assert_eq!(after.0, before.0, "the stopped relay took nothing");
    assert_eq!(after.1 - before.1, 400, "the other relay took it all");
    assert_eq!(
        app.count("SELECT count(*) FROM deliveries WHERE status <> 'sent'")
            .await,
        0
    );
}

#[tokio::test]
async fn a_campaign_pinned_to_a_group_goes_only_through_that_group() {
    let general = Sink::start(SinkConfig::default()).await.unwrap();
    let bulk = Sink::start(SinkConfig::default()).await.unwrap();
    let app = sending_app(&general, |_| {}).await;
    add_relay(&app, "bulk relay", &bulk, json!({"group": "bulk"})).await;
    let list = audience(&app, 50, &[]).await;
    let id = campaign(&app, &[&list]).await;
    let pinned = app
        .patch(
            &format!("/api/v1/campaigns/{id}"),
            json!({"smtp_group": "bulk"}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(pinned.body["smtp_group"], "bulk");
    app.patch(
        &format!("/api/v1/campaigns/{id}"),
        json!({"smtp_group": "no such group!"}),
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "smtp_group");
    set_status(&app, &id, "running").await;
    finished(&app, &id).await;
    assert_exactly_once(&bulk, &users(50));
    assert_eq!(general.counts().accepted, 0);
}

#[tokio::test]
async fn a_domain_that_says_slow_down_is_slowed_and_the_others_are_not() {
    let sink = Sink::start(SinkConfig {
        throttle: Some(Throttle {
            domain: "slow.test".to_owned(),
            per_second: 10,
        }),
        ..SinkConfig::default()
    })
    .await
    .unwrap();
    let app = sending_app(&sink, |s| {
        s.sender.throttle_calm = Duration::from_millis(500);
        s.sender.throttle_floor_per_minute = 60;
    })
    .await;
    // One subscriber in six is at slow.test, spread through the queue.
    let list = audience(&app, 0, &[]).await;
    sqlx::query(
        "WITH s AS (
             INSERT INTO subscribers (uuid, email, name)
             SELECT gen_random_uuid(),
                    CASE WHEN g % 6 = 0 THEN 's' || g || '@slow.test' ELSE 'user' || g || '@example.org' END,
                    'User ' || g
             FROM generate_series(1, 360) g RETURNING id)
         INSERT INTO subscriber_lists (list_id, subscriber_id, status)
         SELECT l.id, s.id, 'confirmed' FROM lists l, s WHERE l.uuid = $1::uuid",
    )
    .bind(&list)
    .execute(&app.pool)
    .await
    .unwrap();
    let expected: HashSet<String> = (1..=360)
        .map(|g| {
            if g % 6 == 0 {
                format!("s{g}@slow.test")
            } else {
                format!("user{g}@example.org")
            }
        })
        .collect();
    let id = campaign(&app, &[&list]).await;
    let started = SystemTime::now();
    set_status(&app, &id, "running").await;
    // The other domain goes at full speed, without waiting for slow.test.
    wait_for(&app, &id, "example.org delivered", |_| {
        sink.per_recipient()
            .keys()
            .filter(|r| r.ends_with("@example.org"))
            .count()
            == 300
    })
    .await;
    let fast_done = SystemTime::now();
    let limits = app
        .get("/api/v1/sending-limits")
        .await
        .expect(StatusCode::OK);
    let throttle = limits.body["throttles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["domain"] == "slow.test")
        .cloned()
        .expect("slow.test is throttled");
    assert!(
        throttle["messages_per_minute"].as_u64().unwrap() < throttle["ceiling"].as_u64().unwrap()
    );
    finished_within(&app, &id, Duration::from_secs(60)).await;
    assert_exactly_once(&sink, &expected);
    let slow_times = accepted_at(&sink, "@slow.test");
    let slow_done = slow_times.iter().max().copied().unwrap();
    assert!(
        fast_done.duration_since(started).unwrap() < slow_done.duration_since(started).unwrap(),
        "example.org finished before slow.test"
    );
    let refused = sink.counts().refused_throttled;
    assert!(
        refused < 60,
        "{refused} refusals for 60 messages: the sender kept pushing"
    );
    // Slowing down deferred slow.test's messages without counting attempts
    // against example.org.
    assert_eq!(
        app.count(
            "SELECT count(*) FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
                   WHERE s.email LIKE '%@example.org' AND d.attempts <> 1"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn a_burst_of_failures_pauses_the_campaign_and_says_why() {
    let sink = Sink::start(SinkConfig {
        perm_fail: 1.0,
        ..SinkConfig::default()
    })
    .await
    .unwrap();
    let app = sending_app(&sink, |s| {
        s.sender.pause_after_failures = 10;
    })
    .await;
    let list = audience(&app, 300, &[]).await;
    let id = campaign(&app, &[&list]).await;
    set_status(&app, &id, "running").await;
    let campaign = wait_status(&app, &id, "paused", Duration::from_secs(20)).await;
    let reason = campaign["status_reason"].as_str().unwrap();
    assert!(reason.contains("attempts failed"), "{reason}");
    assert!(
        reason.contains("550"),
        "the reason quotes the reply: {reason}"
    );
    // Whatever was in the senders' hands at the pause is settled, and the
    // sender has looked at the queue since.
    wait_for(&app, &id, "claims settled", |s| s["sending"] == 0).await;
    advance(
        &app.pool,
        "sender",
        Counter::Passes,
        2,
        Duration::from_secs(10),
    )
    .await;
    let attempted = app
        .count("SELECT count(*) FROM deliveries WHERE status = 'failed'")
        .await;
    assert!(attempted < 60, "{attempted} of 300 burned before the pause");

    // Resuming clears the reason.
    set_status(&app, &id, "running").await;
    let resumed = app.get(&format!("/api/v1/campaigns/{id}")).await.body;
    assert_eq!(resumed["status_reason"], Value::Null);
}

#[tokio::test]
async fn refused_credentials_pause_the_campaign_without_failing_anyone() {
    let sink = Sink::start(SinkConfig {
        credentials: Some(("postino".to_owned(), "right".to_owned())),
        ..SinkConfig::default()
    })
    .await
    .unwrap();
    let app = sending_app(&sink, |s| {
        s.smtp.username = "postino".to_owned();
        s.smtp.password = "wrong".to_owned().into();
        s.sender.failure_window = Duration::from_millis(500);
    })
    .await;
    let list = audience(&app, 40, &[]).await;
    let id = campaign(&app, &[&list]).await;
    set_status(&app, &id, "running").await;
    let campaign = wait_status(&app, &id, "paused", Duration::from_secs(20)).await;
    let reason = campaign["status_reason"].as_str().unwrap();
    assert!(
        reason.contains("AUTH") && reason.contains("default"),
        "{reason}"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM deliveries WHERE status IN ('failed', 'sent')")
            .await,
        0
    );
    assert_eq!(sink.counts().accepted, 0);
    let unique: HashSet<String> = sink.per_recipient().into_keys().collect();
    assert!(unique.is_empty());
}

#[tokio::test]
async fn limits_are_validated_and_round_trip_through_the_api() {
    let sink = Sink::start(SinkConfig::default()).await.unwrap();
    let app = sending_app(&sink, |_| {}).await;
    app.put("/api/v1/sending-limits", json!({"messages_per_second": 0}))
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "messages_per_second");
    let set = app
        .put(
            "/api/v1/sending-limits",
            json!({"messages_per_second": 120.5}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(set.body["messages_per_second"], 120.5);
    app.put("/api/v1/domain-limits/gmail.com", json!({}))
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "max_connections");
    app.put(
        "/api/v1/domain-limits/not a domain",
        json!({"max_connections": 2}),
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "domain");
    app.put(
        "/api/v1/domain-limits/GMail.com",
        json!({"messages_per_minute": 600}),
    )
    .await
    .expect(StatusCode::CREATED);
    let replaced = app
        .put(
            "/api/v1/domain-limits/gmail.com",
            json!({"max_connections": 5, "messages_per_minute": 300}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(replaced.body["domain"], "gmail.com");
    let all = app
        .get("/api/v1/domain-limits")
        .await
        .expect(StatusCode::OK);
    assert_eq!(all.body["items"][0]["messages_per_minute"], 300);
    app.delete("/api/v1/domain-limits/gmail.com")
        .await
        .expect(StatusCode::NO_CONTENT);
    app.get("/api/v1/domain-limits/gmail.com")
        .await
        .expect(StatusCode::NOT_FOUND);

    let id = relay_id(&app, "default").await;
    app.put(
        &format!("/api/v1/smtp-servers/{id}"),
        json!({"name": "default", "host": "127.0.0.1", "window": {"messages": 10, "secs": 0}}),
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "window.secs");
    let relay = app
        .put(
            &format!("/api/v1/smtp-servers/{id}"),
            json!({"name": "default", "host": "127.0.0.1", "weight": 5, "group": "eu",
                   "messages_per_second": 10, "window": {"messages": 50000, "secs": 3600}}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(relay.body["weight"], 5);
    assert_eq!(relay.body["group"], "eu");
    assert_eq!(relay.body["window"]["messages"], 50000);
}
