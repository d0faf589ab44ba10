//! Hostile templates: a template that would exhaust memory is refused when
//! saved, and one that does so for a single subscriber fails that delivery
//! alone, while the server keeps answering and sending.

use postino_sink::{Sink, SinkConfig};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, spawn_app};
use crate::sending::{audience, sending_app, set_status, wait_for};

/// A string of a million bytes in a list ten thousand times over (cheap:
/// the list holds one string), printed as text: ten gigabytes, which the
/// engine's fuel pays for only after building it.
const BOMB: &str = "{% set s = 'x' * 1000000 %}{{ ([s] * 10000) ~ '' }}";

fn draft(body: &str) -> serde_json::Value {
    json!({
        "name": "Bomb", "subject": "Hi", "from_email": "news@acme.example",
        "body": format!("{body}<a href=\"{{{{ unsubscribe_url }}}}\">leave</a>"),
    })
}

/// Creates a campaign to `list` with `body` and starts it.
async fn start(app: &TestApp, list: &str, body: &str) -> String {
    let mut body = draft(body);
    body["lists"] = json!([list]);
    let id = app
        .post("/api/v1/campaigns", body)
        .await
        .expect(StatusCode::CREATED)
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    set_status(app, &id, "running").await;
    id
}

#[tokio::test]
async fn templates_that_would_exhaust_memory_are_refused_and_the_server_stays_up() {
    let app = spawn_app().await;
    // The attack from the security review: an indent of 100 million spaces.
    let reply = app
        .post(
            "/api/v1/campaigns",
            draft("{{ range(100)|list|tojson(indent=100000000) }}"),
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.body["errors"][0]["field"], "body", "{}", reply.body);
    assert!(
        reply.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("indents by at most 8"),
        "{}",
        reply.body
    );
    // The whole class: whatever the engine does not bound, the sandbox does.
    let reply = app
        .post("/api/v1/campaigns", draft(BOMB))
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        reply.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("MiB of memory"),
        "{}",
        reply.body
    );
    // A layout is checked the same way.
    let reply = app
        .post(
            "/api/v1/templates",
            json!({"name": "Bomb", "body": format!("{BOMB}{{{{ content }}}}")}),
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.body["errors"][0]["field"], "body", "{}", reply.body);
    // The server is alive, and a sound template still saves.
    app.get("/healthz").await.expect(StatusCode::OK);
    app.post(
        "/api/v1/campaigns",
        draft("<p>Hello {{ subscriber.name }}</p>"),
    )
    .await
    .expect(StatusCode::CREATED);
}

#[tokio::test]
async fn a_template_that_explodes_for_one_subscriber_fails_only_that_delivery() {
    let sink = Sink::start(SinkConfig::default()).await.unwrap();
    let app = sending_app(&sink, |_| {}).await;
    let list = audience(&app, 3, &[]).await;
    sqlx::query(
        "UPDATE subscribers SET attributes = '{\"w\": 1}' WHERE email = 'user2@example.org'",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    // The sample subscriber has no `w`, so this saves; user2 has one.
    let id = start(
        &app,
        &list,
        &format!("<p>Hi</p>{{% if subscriber.attributes.w %}}{BOMB}{{% endif %}}"),
    )
    .await;
    let stats = wait_for(&app, &id, "two sent and one failed", |s| {
        s["sent"] == 2 && s["failed"] == 1
    })
    .await;
    assert_eq!(stats["queued"], 0, "{stats}");
    let reply: String = sqlx::query_scalar(
        "SELECT d.last_reply FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
         WHERE s.email = 'user2@example.org'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(reply.contains("MiB of memory"), "{reply}");
    let received: Vec<String> = sink
        .messages()
        .iter()
        .map(|m| m.rcpt_to.join(","))
        .collect();
    assert_eq!(received.len(), 2, "{received:?}");
    assert!(
        !received.iter().any(|to| to.contains("user2@")),
        "{received:?}"
    );

    // The sender is still at work: a second campaign goes out in full.
    let second = start(&app, &list, "<p>Again</p>").await;
    wait_for(&app, &second, "all three sent", |s| s["sent"] == 3).await;
}
