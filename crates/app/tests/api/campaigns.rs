//! `/api/v1/campaigns`, `/api/v1/templates`, the scheduler and unsubscribe.

use postino_scheduler::{SchedulerSettings, tick};
use postino_sink::{Sink, SinkConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, spawn_app_as, spawn_app_with};

const BODY: &str =
    "<p>Hello {{ subscriber.name }}</p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a>";

fn campaign_body(lists: &[&str]) -> Value {
    json!({
        "name": "Spring", "subject": "News for {{ subscriber.name }}",
        "from_name": "Acme", "from_email": "news@acme.example", "body": BODY, "lists": lists,
    })
}

async fn create_campaign(app: &TestApp, body: Value) -> String {
    let reply = app
        .post("/api/v1/campaigns", body)
        .await
        .expect(StatusCode::CREATED);
    reply.body["id"].as_str().unwrap().to_owned()
}

async fn set_status(app: &TestApp, id: &str, body: Value) -> crate::helpers::Reply {
    app.request(
        reqwest::Method::PUT,
        &format!("/api/v1/campaigns/{id}/status"),
        Some(body),
    )
    .await
}

fn small_chunks() -> SchedulerSettings {
    SchedulerSettings {
        chunk_size: 2,
        ..SchedulerSettings::default()
    }
}

#[tokio::test]
async fn a_campaign_is_created_read_and_edited_while_a_draft() {
    let app = spawn_app().await;
    let list = app.create_list("News", "single").await;
    let id = create_campaign(&app, campaign_body(&[&list])).await;

    let fetched = app
        .get(&format!("/api/v1/campaigns/{id}"))
        .await
        .expect(StatusCode::OK);
    let edited = app
        .patch(
            &format!("/api/v1/campaigns/{id}"),
            json!({"subject": "Hi", "headers": [{"name": "X-Campaign", "value": "spring"}]}),
        )
        .await
        .expect(StatusCode::OK);
    let all = app.get("/api/v1/campaigns").await.expect(StatusCode::OK);

    assert_eq!(fetched.body["status"], "draft");
    assert_eq!(fetched.body["lists"], json!([list]));
    assert_eq!(edited.body["subject"], "Hi");
    assert_eq!(edited.body["body"], BODY, "absent fields are kept");
    assert_eq!(edited.body["headers"][0]["name"], "X-Campaign");
    assert_eq!(all.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn invalid_campaigns_are_refused_when_saved_naming_the_field() {
    let app = spawn_app().await;
    let list = app.create_list("News", "single").await;
    let with = |patch: Value| {
        let mut body = campaign_body(&[&list]);
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    for (body, field, says) in [
        (
            with(json!({"body": "<p>ok</p>\n<p>{{ subscriber.name </p>"})),
            "body",
            "line 2",
        ),
        (with(json!({"subject": "Hi {% if %}"})), "subject", ""),
        (
            with(json!({"subject": "Hi\r\nBcc: victim@example.com"})),
            "subject",
            "line breaks",
        ),
        (
            with(json!({"from_name": "Acme\nBcc: x@y.z"})),
            "from_name",
            "line breaks",
        ),
        (
            with(json!({"from_email": "not-an-address"})),
            "from_email",
            "",
        ),
        (
            with(json!({"headers": [{"name": "Bcc", "value": "x@y.z"}]})),
            "headers[0]",
            "cannot be overridden",
        ),
        (
            with(json!({"headers": [{"name": "X-Ok", "value": "a\r\nBcc: x"}]})),
            "headers[0]",
            "",
        ),
        (
            with(json!({"lists": [uuid::Uuid::new_v4()]})),
            "lists[0]",
            "no list",
        ),
        (
            with(json!({"template": uuid::Uuid::new_v4()})),
            "template",
            "no template",
        ),
        (
            with(json!({"body": "{{ 1 / 0 }}"})),
            "body",
            "sample subscriber",
        ),
        (with(json!({"body_format": "pdf"})), "body_format", ""),
        (json!({"name": "x"}), "subject", "required"),
    ] {
        let reply = app
            .post("/api/v1/campaigns", body)
            .await
            .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, field);
        assert!(reply.text.contains(says), "{field}: {}", reply.text);
    }
    assert_eq!(app.count("SELECT count(*) FROM campaigns").await, 0);
}

#[tokio::test]
async fn custom_headers_that_spoof_trace_or_authentication_headers_are_refused_by_name() {
    // Arrange
    let app = spawn_app().await;
    let list = app.create_list("News", "single").await;
    let spoofs = [
        (
            "Authentication-Results",
            "mx.example.com; dkim=pass; spf=pass; dmarc=pass",
        ),
        ("Received", "from trusted.example.com by mx.example.com"),
        ("Received-SPF", "pass"),
        ("Resent-From", "ceo@example.com"),
        (
            "ARC-Authentication-Results",
            "i=1; mx.example.com; dkim=pass",
        ),
        ("ARC-Seal", "i=1; a=rsa-sha256; cv=none"),
        ("DKIM-Signature", "v=1; a=rsa-sha256; d=bank.example"),
        ("Return-Path", "<ceo@example.com>"),
        ("X-Original-From", "ceo@example.com"),
    ];

    // Act and assert: on create and on edit alike, the header is named.
    let draft = app
        .post("/api/v1/campaigns", campaign_body(&[&list]))
        .await
        .expect(StatusCode::CREATED);
    let id = draft.body["id"].as_str().unwrap();
    for (name, value) in spoofs {
        let mut body = campaign_body(&[&list]);
        body["headers"] =
            json!([{"name": "X-Campaign", "value": "ok"}, {"name": name, "value": value}]);
        let reply = app
            .post("/api/v1/campaigns", body)
            .await
            .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "headers[1]");
        assert!(reply.text.contains(name), "{name}: {}", reply.text);
        app.patch(
            &format!("/api/v1/campaigns/{id}"),
            json!({"headers": [{"name": name, "value": value}]}),
        )
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "headers[0]");
    }
    assert_eq!(app.count("SELECT count(*) FROM campaigns").await, 1);
    let stored = app
        .get(&format!("/api/v1/campaigns/{id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(stored.body["headers"], draft.body["headers"]);
}

#[tokio::test]
async fn every_lifecycle_move_is_allowed_or_refused_with_the_current_state() {
    let app = spawn_app().await;
    let list = app.create_list("News", "single").await;
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let legal: &[(&str, &str)] = &[
        ("draft", "scheduled"),
        ("draft", "running"),
        ("draft", "cancelled"),
        ("scheduled", "draft"),
        ("scheduled", "running"),
        ("scheduled", "cancelled"),
        ("running", "paused"),
        ("running", "cancelled"),
        ("paused", "running"),
        ("paused", "cancelled"),
    ];
    let all = [
        "draft",
        "scheduled",
        "running",
        "paused",
        "finished",
        "cancelled",
    ];
    // The way to reach each state from a fresh draft.
    let path_to = |state: &str| -> Vec<&str> {
        match state {
            "draft" => vec![],
            "scheduled" => vec!["scheduled"],
            "running" => vec!["running"],
            "paused" => vec!["running", "paused"],
            "cancelled" => vec!["cancelled"],
            _ => vec!["running"],
        }
    };
    for from in all {
        for to in all {
            let id = create_campaign(&app, campaign_body(&[&list])).await;
            for step in path_to(from) {
                let body = if step == "scheduled" {
                    json!({"status": step, "send_at": future})
                } else {
                    json!({"status": step})
                };
                set_status(&app, &id, body).await.expect(StatusCode::OK);
            }
            if from == "finished" {
                sqlx::query("UPDATE campaigns SET status = 'finished' WHERE uuid = $1::uuid")
                    .bind(&id)
                    .execute(&app.pool)
                    .await
                    .unwrap();
            }
            let body = if to == "scheduled" {
                json!({"status": to, "send_at": future})
            } else {
                json!({"status": to})
            };
            let reply = set_status(&app, &id, body).await;
            if legal.contains(&(from, to)) {
                let reply = reply.expect(StatusCode::OK);
                assert_eq!(reply.body["status"], to, "{from} -> {to}");
            } else {
                let reply = reply.expect_problem(StatusCode::CONFLICT, "status");
                assert!(
                    reply.text.contains(&format!("is {from}")),
                    "{from} -> {to}: {}",
                    reply.text
                );
            }
        }
    }
}

#[tokio::test]
async fn a_campaign_cannot_start_without_lists_an_unsubscribe_link_or_a_send_time() {
    let app = spawn_app().await;
    let list = app.create_list("News", "single").await;
    let no_lists = create_campaign(&app, campaign_body(&[])).await;
    let mut body = campaign_body(&[&list]);
    body["body"] = json!("<p>No way out</p>");
    let no_link = create_campaign(&app, body).await;
    let ok = create_campaign(&app, campaign_body(&[&list])).await;

    set_status(&app, &no_lists, json!({"status": "running"}))
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "lists");
    set_status(&app, &no_link, json!({"status": "running"}))
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "body");
    set_status(&app, &ok, json!({"status": "scheduled"}))
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "send_at");
    set_status(
        &app,
        &ok,
        json!({"status": "scheduled", "send_at": "2000-01-01T00:00:00Z"}),
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "send_at");
    let scheduled = set_status(
        &app,
        &ok,
        json!({"status": "scheduled", "send_at": "2999-01-01T10:00:00+02:00"}),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(
        scheduled.body["send_at"], "2999-01-01T08:00:00Z",
        "stored in UTC"
    );
    app.patch(
        &format!("/api/v1/campaigns/{ok}"),
        json!({"subject": "still editable"}),
    )
    .await
    .expect(StatusCode::OK);
    set_status(&app, &ok, json!({"status": "running"}))
        .await
        .expect(StatusCode::OK);
    app.patch(
        &format!("/api/v1/campaigns/{ok}"),
        json!({"subject": "too late"}),
    )
    .await
    .expect_problem(StatusCode::CONFLICT, "status");
}

#[tokio::test]
async fn a_turned_off_unsubscribe_check_lets_such_a_campaign_start() {
    let app = spawn_app_with(|s| s.campaigns.require_unsubscribe_link = false).await;
    let list = app.create_list("News", "single").await;
    let mut body = campaign_body(&[&list]);
    body["body"] = json!("<p>Receipt</p>");
    let id = create_campaign(&app, body).await;
    set_status(&app, &id, json!({"status": "running"}))
        .await
        .expect(StatusCode::OK);
}

/// Subscribers covering every enqueue rule; returns (campaign id, the
/// addresses that must get exactly one delivery).
async fn audience(app: &TestApp) -> (String, Vec<&'static str>) {
    let single = app.create_list("Single", "single").await;
    let double = app.create_list("Double", "double").await;
    let add = |email: &'static str, lists: Value, list_status: Option<&str>, status: &str| {
        let mut body = json!({"email": email, "lists": lists, "status": status});
        if let Some(s) = list_status {
            body["list_status"] = json!(s);
        }
        body
    };
    for body in [
        add("confirmed@x.io", json!([single]), None, "enabled"),
        add(
            "both@x.io",
            json!([single, double]),
            Some("confirmed"),
            "enabled",
        ),
        add("unconfirmed-double@x.io", json!([double]), None, "enabled"),
        add(
            "unconfirmed-single@x.io",
            json!([single]),
            Some("unconfirmed"),
            "enabled",
        ),
        add(
            "unsubscribed@x.io",
            json!([single]),
            Some("unsubscribed"),
            "enabled",
        ),
        add(
            "blocked@x.io",
            json!([single]),
            Some("confirmed"),
            "blocklisted",
        ),
        add("elsewhere@x.io", json!([]), None, "enabled"),
        add(
            "confirmed-double@x.io",
            json!([double]),
            Some("confirmed"),
            "enabled",
        ),
    ] {
        app.create_subscriber(body).await;
    }
    // Blocklisting on create does not touch memberships: make sure the rule
    // holds on the subscriber status alone.
    sqlx::query("UPDATE subscriber_lists SET status = 'confirmed' WHERE subscriber_id = (SELECT id FROM subscribers WHERE email = 'blocked@x.io')")
        .execute(&app.pool)
        .await
        .unwrap();
    let id = create_campaign(app, campaign_body(&[&single, &double])).await;
    (
        id,
        vec![
            "both@x.io",
            "confirmed-double@x.io",
            "confirmed@x.io",
            "unconfirmed-single@x.io",
        ],
    )
}

async fn delivered_to(app: &TestApp, campaign: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT s.email FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id \
         JOIN campaigns c ON c.id = d.campaign_id WHERE c.uuid = $1::uuid ORDER BY s.email",
    )
    .bind(campaign)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn starting_a_campaign_enqueues_each_eligible_subscriber_once() {
    // Arrange
    let app = spawn_app().await;
    let (id, expected) = audience(&app).await;

    // Act
    set_status(&app, &id, json!({"status": "running"}))
        .await
        .expect(StatusCode::OK);
    let first = tick(&app.pool, &small_chunks()).await.unwrap();
    let second = tick(&app.pool, &small_chunks()).await.unwrap();

    // Assert
    assert!(first.acted);
    assert_eq!(first.enqueued, 4);
    assert_eq!(second.enqueued, 0, "a second tick adds nothing");
    assert_eq!(delivered_to(&app, &id).await, expected);
    let stats = app
        .get(&format!("/api/v1/campaigns/{id}/stats"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(stats.body["queued"], 4);
    assert_eq!(stats.body["total"], 4);
    assert_eq!(stats.body["enqueued"], true);
    assert_eq!(stats.body["status"], "running");
}

#[tokio::test]
async fn two_schedulers_at_once_never_enqueue_a_recipient_twice() {
    // Arrange
    let app = spawn_app().await;
    let (id, expected) = audience(&app).await;
    let list_id: i64 = sqlx::query_scalar("SELECT id FROM lists WHERE name = 'Single'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    postino_db::seed::generated_subscribers(&mut conn, list_id, 3000, "bulk", "example.com")
        .await
        .unwrap();
    drop(conn);
    set_status(&app, &id, json!({"status": "running"}))
        .await
        .expect(StatusCode::OK);
    let settings = SchedulerSettings {
        chunk_size: 100,
        ..SchedulerSettings::default()
    };

    // Act: two schedulers tick at once, and, bypassing the leader lock, two
    // raw enqueue loops race over the same campaign.
    let (a, b) = tokio::join!(tick(&app.pool, &settings), tick(&app.pool, &settings));
    let campaign_id: i64 = sqlx::query_scalar("SELECT id FROM campaigns WHERE uuid = $1::uuid")
        .bind(&id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let race = |pool: sqlx::PgPool| async move {
        let mut conn = pool.acquire().await.unwrap();
        let mut cursor = 0;
        let mut inserted = 0;
        while let Some(last) = {
            let step = postino_db::deliveries::enqueue_step(&mut conn, campaign_id, cursor, 50)
                .await
                .unwrap();
            inserted += step.inserted;
            step.last
        } {
            cursor = last;
        }
        inserted
    };
    let (x, y) = tokio::join!(race(app.pool.clone()), race(app.pool.clone()));

    // Assert
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a.acted || b.acted);
    assert_eq!(a.enqueued + b.enqueued, 3004);
    assert_eq!(x + y, 0, "everything was enqueued already");
    let total = app.count(&format!("SELECT count(*) FROM deliveries d JOIN campaigns c ON c.id = d.campaign_id WHERE c.uuid = '{id}'")).await;
    let distinct = app
        .count(&format!("SELECT count(DISTINCT subscriber_id) FROM deliveries d JOIN campaigns c ON c.id = d.campaign_id WHERE c.uuid = '{id}'"))
        .await;
    assert_eq!(total, 3004);
    assert_eq!(distinct, 3004);
    let named = delivered_to(&app, &id).await;
    for email in expected {
        assert!(named.iter().any(|e| e == email), "{email}");
    }
}

#[tokio::test]
async fn a_scheduled_campaign_starts_when_due_and_finishes_when_all_is_sent() {
    let app = spawn_app().await;
    let (id, _) = audience(&app).await;
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    set_status(&app, &id, json!({"status": "scheduled", "send_at": future}))
        .await
        .expect(StatusCode::OK);

    let early = tick(&app.pool, &small_chunks()).await.unwrap();
    sqlx::query("UPDATE campaigns SET send_at = now() - interval '1 second' WHERE uuid = $1::uuid")
        .bind(&id)
        .execute(&app.pool)
        .await
        .unwrap();
    let due = tick(&app.pool, &small_chunks()).await.unwrap();
    // A worker claimed one and died; its lease expired.
    sqlx::query("UPDATE deliveries SET status = 'sending', lease_until = now() - interval '1 second' WHERE id = (SELECT min(id) FROM deliveries)")
        .execute(&app.pool)
        .await
        .unwrap();
    let reaped = tick(&app.pool, &small_chunks()).await.unwrap();
    sqlx::query("UPDATE deliveries SET status = 'sent', sent_at = now()")
        .execute(&app.pool)
        .await
        .unwrap();
    let done = tick(&app.pool, &small_chunks()).await.unwrap();

    assert_eq!((early.started, early.enqueued), (0, 0));
    assert_eq!((due.started, due.enqueued), (1, 4));
    assert_eq!(reaped.requeued, 1);
    assert_eq!(reaped.finished, 0, "not finished while anything is queued");
    assert_eq!(done.finished, 1);
    let campaign = app
        .get(&format!("/api/v1/campaigns/{id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(campaign.body["status"], "finished");
    assert!(campaign.body["finished_at"].is_string());
    let stats = app
        .get(&format!("/api/v1/campaigns/{id}/stats"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(stats.body["sent"], 4);
    assert_eq!(stats.body["rate_per_minute"], 4);
}

#[tokio::test]
async fn cancelling_skips_what_was_queued_and_pausing_stops_enqueueing() {
    let app = spawn_app().await;
    let (id, _) = audience(&app).await;
    set_status(&app, &id, json!({"status": "running"}))
        .await
        .expect(StatusCode::OK);
    set_status(&app, &id, json!({"status": "paused"}))
        .await
        .expect(StatusCode::OK);
    let paused = tick(&app.pool, &small_chunks()).await.unwrap();
    set_status(&app, &id, json!({"status": "running"}))
        .await
        .expect(StatusCode::OK);
    tick(&app.pool, &small_chunks()).await.unwrap();
    set_status(&app, &id, json!({"status": "cancelled"}))
        .await
        .expect(StatusCode::OK);

    assert_eq!(paused.enqueued, 0);
    let stats = app
        .get(&format!("/api/v1/campaigns/{id}/stats"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(stats.body["skipped"], 4);
    assert_eq!(stats.body["queued"], 0);
}

#[tokio::test]
async fn a_preview_renders_for_a_chosen_or_sample_subscriber_with_every_header() {
    let app = spawn_app().await;
    let list = app.create_list("News", "single").await;
    let s = app
        .create_subscriber(json!({"email": "ada@x.io", "name": "Ada", "lists": [list]}))
        .await;
    let id = create_campaign(&app, campaign_body(&[&list])).await;

    let chosen = app
        .post(
            &format!("/api/v1/campaigns/{id}/preview"),
            json!({"subscriber": s["id"]}),
        )
        .await
        .expect(StatusCode::OK);
    let sample = app
        .post(&format!("/api/v1/campaigns/{id}/preview"), json!({}))
        .await
        .expect(StatusCode::OK);
    app.post(
        &format!("/api/v1/campaigns/{id}/preview"),
        json!({"subscriber": uuid::Uuid::new_v4()}),
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "subscriber");

    assert_eq!(chosen.body["subject"], "News for Ada");
    assert!(chosen.body["html"].as_str().unwrap().contains("Hello Ada"));
    assert!(chosen.body["text"].as_str().unwrap().contains("Hello Ada"));
    let names: Vec<&str> = chosen.body["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    for header in [
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "List-Id",
    ] {
        assert!(names.contains(&header), "{header} missing from {names:?}");
    }
    let mime = chosen.body["mime"].as_str().unwrap();
    assert!(mime.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
    assert!(
        mime.contains("List-Unsubscribe: <http://127.0.0.1:8080/unsubscribe/"),
        "links use http.root_url: {mime}"
    );
    assert_eq!(sample.body["subject"], "News for Jane Doe");
}

#[tokio::test]
async fn a_test_send_reaches_a_real_smtp_server_and_reports_each_reply() {
    // Arrange
    let sink = Sink::start(SinkConfig::default()).await.unwrap();
    let port = sink.addr().port();
    // The sender sends test mail; the web role only queues it.
    let app = spawn_app_as(postino_app::Role::All, |s| s.smtp.port = port).await;
    let list = app.create_list("News", "single").await;
    app.create_subscriber(json!({"email": "ada@x.io", "name": "Ada", "lists": [list]}))
        .await;
    let id = create_campaign(&app, campaign_body(&[&list])).await;

    // Act
    let reply = app
        .post(
            &format!("/api/v1/campaigns/{id}/test"),
            json!({"emails": ["ada@x.io", "tempfail@x.io", "permfail@x.io"]}),
        )
        .await
        .expect(StatusCode::OK);

    // Assert
    let results = reply.body["results"].as_array().unwrap();
    assert_eq!(results[0]["accepted"], true);
    assert_eq!(results[0]["code"], 250);
    assert_eq!(results[1]["accepted"], false);
    assert_eq!(results[1]["code"], 451);
    assert_eq!(results[2]["code"], 550);
    let received = sink.messages();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].rcpt_to, ["ada@x.io"]);
    assert_eq!(received[0].mail_from, "news@acme.example");
    let text = received[0].text();
    assert!(text.contains("Subject: News for Ada"), "{text}");
    assert!(text.contains("List-Unsubscribe: <"), "{text}");
    app.post(
        &format!("/api/v1/campaigns/{id}/test"),
        json!({"emails": []}),
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "emails");
    assert_eq!(
        app.count("SELECT count(*) FROM deliveries WHERE kind = 'campaign'")
            .await,
        0,
        "test sends are not the campaign's deliveries"
    );
}

/// The unsubscribe URL of `email`'s preview.
async fn unsubscribe_url(app: &TestApp, campaign: &str, subscriber: &Value) -> String {
    let preview = app
        .post(
            &format!("/api/v1/campaigns/{campaign}/preview"),
            json!({"subscriber": subscriber["id"]}),
        )
        .await
        .expect(StatusCode::OK);
    let mime = preview.body["mime"].as_str().unwrap().to_owned();
    let start = mime.find("List-Unsubscribe: <").unwrap() + "List-Unsubscribe: <".len();
    let end = mime[start..].find('>').unwrap() + start;
    mime[start..end].to_owned()
}

#[tokio::test]
async fn the_unsubscribe_link_confirms_on_get_and_unsubscribes_on_one_click_post() {
    // Arrange
    let app = spawn_app_with(|s| s.http.root_url = "http://127.0.0.1:1".to_owned()).await;
    let news = app.create_list("News", "single").await;
    let other = app.create_list("Other", "single").await;
    let s = app
        .create_subscriber(json!({"email": "ada@x.io", "lists": [news, other]}))
        .await;
    let id = create_campaign(&app, campaign_body(&[&news])).await;
    let url = unsubscribe_url(&app, &id, &s)
        .await
        .replace("http://127.0.0.1:1", &app.address);
    let membership = |list: String| {
        let app = &app;
        async move {
            sqlx::query_scalar::<_, String>("SELECT sl.status FROM subscriber_lists sl JOIN lists l ON l.id = sl.list_id WHERE l.uuid = $1::uuid")
                .bind(list)
                .fetch_one(&app.pool)
                .await
                .unwrap()
        }
    };

    // Act
    let page = app.client.get(&url).send().await.unwrap();
    let status_after_get = membership(news.clone()).await;
    let one_click = app
        .client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    let again = app.client.post(&url).send().await.unwrap();

    // Assert
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("ada@x.io")
            && html.contains("News")
            && html.contains("<form method=\"post\""),
        "{html}"
    );
    assert_eq!(status_after_get, "confirmed", "GET changes nothing");
    assert_eq!(one_click.status(), StatusCode::OK);
    assert!(
        one_click
            .text()
            .await
            .unwrap()
            .contains("You are unsubscribed")
    );
    assert_eq!(again.status(), StatusCode::OK, "idempotent");
    assert_eq!(membership(news).await, "unsubscribed");
    assert_eq!(
        membership(other).await,
        "confirmed",
        "only the campaign's lists"
    );
    let events: Vec<String> =
        sqlx::query_scalar("SELECT source FROM subscription_events ORDER BY id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        events,
        ["one-click"],
        "one event; the repeat changed nothing"
    );
}

#[tokio::test]
async fn a_tampered_or_unknown_unsubscribe_token_gets_a_404_page_and_changes_nothing() {
    let app = spawn_app_with(|s| s.http.root_url = "http://127.0.0.1:1".to_owned()).await;
    let news = app.create_list("News", "single").await;
    let s = app
        .create_subscriber(json!({"email": "ada@x.io", "lists": [news]}))
        .await;
    let other = app
        .create_subscriber(json!({"email": "bob@x.io", "lists": [news]}))
        .await;
    let id = create_campaign(&app, campaign_body(&[&news])).await;
    let url = unsubscribe_url(&app, &id, &s)
        .await
        .replace("http://127.0.0.1:1", &app.address);
    let token = url.rsplit('/').next().unwrap().to_owned();
    // Swap in another subscriber's id, keep the tag.
    use base64::Engine;
    let mut bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&token)
        .unwrap();
    let bob = uuid::Uuid::parse_str(other["id"].as_str().unwrap()).unwrap();
    bytes[16..32].copy_from_slice(bob.as_bytes());
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes);

    for bad in [forged.as_str(), "nonsense", &token[..token.len() - 2]] {
        let page = app
            .client
            .get(app.url(&format!("/unsubscribe/{bad}")))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::NOT_FOUND);
        assert!(page.text().await.unwrap().contains("not valid"));
        let post = app
            .client
            .post(app.url(&format!("/unsubscribe/{bad}")))
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap();
        assert_eq!(post.status(), StatusCode::NOT_FOUND);
    }
    assert_eq!(
        app.count("SELECT count(*) FROM subscriber_lists WHERE status = 'unsubscribed'")
            .await,
        0
    );
    assert_eq!(
        app.count("SELECT count(*) FROM subscription_events").await,
        0
    );
}

#[tokio::test]
async fn layouts_wrap_bodies_are_checked_when_saved_and_cannot_be_deleted_while_used() {
    let app = spawn_app().await;
    let list = app.create_list("News", "single").await;
    app.post(
        "/api/v1/templates",
        json!({"name": "Broken", "body": "<html>no slot</html>"}),
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "body");
    app.post(
        "/api/v1/templates",
        json!({"name": "Broken", "body": "{{ content }}{% endif %}"}),
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "body");
    let layout = app
        .post(
            "/api/v1/templates",
            json!({"name": "Brand", "body": "<div class=brand>{{ content }}</div>"}),
        )
        .await
        .expect(StatusCode::CREATED);
    let layout_id = layout.body["id"].as_str().unwrap();
    let mut body = campaign_body(&[&list]);
    body["template"] = json!(layout_id);
    let id = create_campaign(&app, body).await;

    let preview = app
        .post(&format!("/api/v1/campaigns/{id}/preview"), json!({}))
        .await
        .expect(StatusCode::OK);
    let in_use = app.delete(&format!("/api/v1/templates/{layout_id}")).await;
    let updated = app
        .request(
            reqwest::Method::PUT,
            &format!("/api/v1/templates/{layout_id}"),
            Some(json!({"name": "Brand 2", "body": "<main>{{ content }}</main>"})),
        )
        .await
        .expect(StatusCode::OK);

    assert!(
        preview.body["html"]
            .as_str()
            .unwrap()
            .starts_with("<div class=brand><p>Hello Jane Doe</p>")
    );
    in_use.expect_problem(StatusCode::CONFLICT, "");
    assert_eq!(updated.body["name"], "Brand 2");
    app.delete(&format!("/api/v1/campaigns/{id}"))
        .await
        .expect(StatusCode::NO_CONTENT);
    app.delete(&format!("/api/v1/templates/{layout_id}"))
        .await
        .expect(StatusCode::NO_CONTENT);
    app.get(&format!("/api/v1/templates/{layout_id}"))
        .await
        .expect_problem(StatusCode::NOT_FOUND, "");
}

#[tokio::test]
async fn starting_a_campaign_wakes_the_scheduler_without_waiting_for_its_tick() {
    // Arrange: a scheduler that ticks once at start-up and then only hourly.
    let app = spawn_app_as(postino_app::Role::All, |s| s.scheduler.tick_ms = 3_600_000).await;
    let (id, expected) = audience(&app).await;
    postino_testkit::wait_until(
        "the scheduler's start-up tick",
        std::time::Duration::from_secs(10),
        async || {
            app.count("SELECT coalesce(max(passes), 0) FROM heartbeats WHERE role = 'scheduler'")
                .await
                >= 1
        },
    )
    .await;

    // Act
    set_status(&app, &id, json!({"status": "running"}))
        .await
        .expect(StatusCode::OK);
    let mut enqueued = Vec::new();
    for _ in 0..100 {
        enqueued = delivered_to(&app, &id).await;
        if enqueued.len() == expected.len() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // Assert
    assert_eq!(
        enqueued, expected,
        "the notification made the scheduler act within 5 s"
    );
}
