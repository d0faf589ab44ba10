//! What a campaign's page tells after it started: deliveries over time,
//! each recipient's outcome, retrying failures, deleting; and the editor's
//! optional fields, stored and cleared through the form.

use postino_domain::Role;
use reqwest::StatusCode;
use serde_json::Value;

use crate::dashboard::{Browser, between, location, signed_in};
use crate::helpers::{TestApp, spawn_app};

const BODY: &str =
    "<p>Hello {{ subscriber.name }}</p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a>";

async fn sql(app: &TestApp, statement: &str) {
    sqlx::query(sqlx::AssertSqlSafe(statement))
        .execute(&app.pool)
        .await
        .unwrap();
}

/// An editor's draft to a list of three (one of them blocklisted later);
/// returns its page's path.
async fn draft(app: &TestApp, editor: &Browser, extra: &[(&str, &str)]) -> Reply {
    let list = app.create_list("News", "single").await;
    let csrf = editor.csrf_token().await;
    let mut fields = vec![
        ("csrf_token", csrf.as_str()),
        ("name", "Spring sale"),
        ("subject", "Hello {{ subscriber.name }}"),
        ("from_name", "The Shop"),
        ("from_email", "news@example.com"),
        ("lists", list.as_str()),
        ("body_format", "html"),
        ("body", BODY),
    ];
    fields.extend_from_slice(extra);
    editor.post("/campaigns", &fields).await
}

type Reply = crate::helpers::Reply;

fn page_of(reply: &Reply) -> String {
    location(reply)
        .strip_suffix("?notice=created")
        .unwrap()
        .to_owned()
}

/// The campaign went out an hour ago over 40 minutes: 60 delivered, 2
/// (r61 and r62) failed with the server's reply.
async fn sent_an_hour_ago(app: &TestApp) {
    sql(app, "UPDATE campaigns SET status = 'finished', started_at = now() - interval '60 minutes', finished_at = now() - interval '20 minutes'").await;
    sql(app, "INSERT INTO subscribers (uuid, email, name) SELECT gen_random_uuid(), 'r' || n || '@example.org', 'R' || n FROM generate_series(1, 62) n").await;
    sql(
        app,
        "INSERT INTO deliveries (campaign_id, subscriber_id, status, attempts, sent_at, updated_at, last_code, last_reply)
         SELECT c.id, s.id,
                CASE WHEN s.email IN ('r61@example.org', 'r62@example.org') THEN 'failed' ELSE 'sent' END, 1,
                CASE WHEN s.email IN ('r61@example.org', 'r62@example.org') THEN NULL
                     ELSE now() - interval '60 minutes' + ((s.id % 40) || ' minutes')::interval END,
                now() - interval '30 minutes',
                CASE WHEN s.email IN ('r61@example.org', 'r62@example.org') THEN 550 ELSE 250 END,
                CASE WHEN s.email IN ('r61@example.org', 'r62@example.org') THEN '5.1.1 mailbox unknown' ELSE 'ok' END
         FROM campaigns c CROSS JOIN subscribers s",
    )
    .await;
}

#[tokio::test]
async fn dashboard_a_finished_campaign_charts_its_deliveries_over_time_as_the_api_does() {
    // Arrange
    let app = spawn_app().await;
    let editor = signed_in(&app, Role::Editor).await;
    let page = page_of(
        &draft(&app, &editor, &[])
            .await
            .expect(StatusCode::SEE_OTHER),
    );
    sent_an_hour_ago(&app).await;

    // Act
    let shown = editor.get(&page).await.expect(StatusCode::OK);
    let id = page.trim_start_matches("/campaigns/");
    let api: Value = app
        .get(&format!("/api/v1/campaigns/{id}/timeline"))
        .await
        .expect(StatusCode::OK)
        .body;

    // Assert: the page draws every delivery and failure once.
    assert!(
        shown.text.contains("Deliveries over time"),
        "{}",
        shown.text
    );
    let sum = |attr: &str| -> i64 {
        shown
            .text
            .split(&format!("{attr}=\""))
            .skip(1)
            .map(|rest| rest[..rest.find('"').unwrap()].parse::<i64>().unwrap())
            .sum()
    };
    assert_eq!(sum("data-sent"), 60);
    assert_eq!(sum("data-failed"), 2);
    assert!(
        shown.text.contains("each bar is a minute"),
        "{}",
        shown.text
    );
    // The API: minute slots over the 40 minutes, the same totals.
    assert_eq!(api["slot_seconds"], 60);
    let slots = api["slots"].as_array().unwrap();
    assert!(
        slots.len() >= 40 && slots.len() < 60,
        "{} slots",
        slots.len()
    );
    let total = |key: &str| slots.iter().map(|s| s[key].as_i64().unwrap()).sum::<i64>();
    assert_eq!((total("sent"), total("failed")), (60, 2));
}

#[tokio::test]
async fn dashboard_recipients_are_listed_by_outcome_with_the_servers_reply_and_failures_retried() {
    // Arrange
    let app = spawn_app().await;
    let editor = signed_in(&app, Role::Editor).await;
    let page = page_of(
        &draft(&app, &editor, &[])
            .await
            .expect(StatusCode::SEE_OTHER),
    );
    sent_an_hour_ago(&app).await;
    sql(
        &app,
        "UPDATE subscribers SET status = 'blocklisted' WHERE email = 'r62@example.org'",
    )
    .await;

    // Act
    let all = editor
        .get(&format!("{page}/deliveries"))
        .await
        .expect(StatusCode::OK);
    let link_end = all.text.find(r#"" data-testid="next-page""#).unwrap();
    let link_start = all.text[..link_end].rfind(r#"href=""#).unwrap() + r#"href=""#.len();
    let next = all.text[link_start..link_end].replace("&#38;", "&");
    let second = editor.get(&next).await.expect(StatusCode::OK);
    let failed = editor
        .get(&format!("{page}/deliveries?status=failed"))
        .await
        .expect(StatusCode::OK);
    let shown = editor.get(&page).await.expect(StatusCode::OK);
    let csrf = editor.csrf_token().await;
    let retried = editor
        .post(
            &format!("{page}/deliveries/retry"),
            &[("csrf_token", &csrf)],
        )
        .await
        .expect(StatusCode::SEE_OTHER);

    // Assert: pages of 50 in recipient order, each recipient once.
    let on = |reply: &Reply, n: i32| reply.text.contains(&format!(">r{n}@example.org<"));
    assert!((1..=50).all(|n| on(&all, n)) && !(51..=62).any(|n| on(&all, n)));
    assert!(
        (51..=62).all(|n| on(&second, n)) && !(1..=50).any(|n| on(&second, n)),
        "{next}: {}",
        second.text
    );
    assert!(!second.text.contains("next-page"));
    assert!(
        failed.text.contains("550 5.1.1 mailbox unknown"),
        "{}",
        failed.text
    );
    assert!(on(&failed, 61) && on(&failed, 62) && !on(&failed, 1));
    assert!(shown.text.contains(r#"data-testid="retry-failed""#));
    assert_eq!(location(&retried), format!("{page}?notice=retried"));
    // The blocklisted one stays failed; the other is queued again.
    let queued = app
        .count("SELECT count(*) FROM deliveries WHERE status = 'queued'")
        .await;
    assert_eq!(queued, 1);
}

#[tokio::test]
async fn dashboard_a_campaign_is_deleted_unless_it_is_sending() {
    // Arrange
    let app = spawn_app().await;
    let editor = signed_in(&app, Role::Editor).await;
    let page = page_of(
        &draft(&app, &editor, &[])
            .await
            .expect(StatusCode::SEE_OTHER),
    );
    let csrf = editor.csrf_token().await;
    sql(
        &app,
        "UPDATE campaigns SET status = 'running', started_at = now()",
    )
    .await;

    // Act
    let refused = editor
        .post(&format!("{page}/delete"), &[("csrf_token", &csrf)])
        .await
        .expect(StatusCode::CONFLICT);
    sql(&app, "UPDATE campaigns SET status = 'cancelled'").await;
    let deleted = editor
        .post(&format!("{page}/delete"), &[("csrf_token", &csrf)])
        .await
        .expect(StatusCode::SEE_OTHER);

    // Assert
    assert!(
        refused
            .text
            .contains("cannot delete a campaign that is running"),
        "{}",
        refused.text
    );
    assert_eq!(location(&deleted), "/campaigns?notice=deleted");
    assert_eq!(app.count("SELECT count(*) FROM campaigns").await, 0);
    let table = editor
        .get("/campaigns?notice=deleted")
        .await
        .expect(StatusCode::OK);
    assert!(table.text.contains("The campaign was deleted."));
}

#[tokio::test]
async fn dashboard_the_editors_more_options_are_stored_shown_and_cleared() {
    // Arrange
    let app = spawn_app().await;
    let editor = signed_in(&app, Role::Editor).await;
    let layout: Value = app
        .post(
            "/api/v1/templates",
            serde_json::json!({"name": "Brand", "body": "<div class=\"brand\">{{ content }}</div>"}),
        )
        .await
        .expect(StatusCode::CREATED)
        .body;
    let layout_id = layout["id"].as_str().unwrap().to_owned();

    // Act: a draft with every optional field.
    let created = draft(
        &app,
        &editor,
        &[
            ("reply_to", "help@example.com"),
            ("text_body", "Hello {{ subscriber.name }}, in plain words."),
            ("template", &layout_id),
            ("tags", "spring, sale"),
            ("headers", "X-Campaign: spring\r\nX-Team: shop"),
            ("smtp_group", "bulk"),
        ],
    )
    .await
    .expect(StatusCode::SEE_OTHER);
    let page = page_of(&created);
    let shown = editor.get(&page).await.expect(StatusCode::OK);
    let id = page.trim_start_matches("/campaigns/");
    let stored: Value = app
        .get(&format!("/api/v1/campaigns/{id}"))
        .await
        .expect(StatusCode::OK)
        .body;

    // Assert: stored as the API sees it, and shown again in the form.
    assert_eq!(stored["reply_to"], "help@example.com");
    assert_eq!(stored["template"], layout_id.as_str());
    assert_eq!(stored["tags"], serde_json::json!(["spring", "sale"]));
    assert_eq!(stored["smtp_group"], "bulk");
    assert_eq!(stored["headers"][1]["name"], "X-Team");
    assert!(
        stored["text_body"]
            .as_str()
            .unwrap()
            .contains("plain words")
    );
    assert!(
        shown
            .text
            .contains(r#"name="reply_to" value="help@example.com""#)
    );
    assert!(
        shown.text.contains("X-Campaign: spring\nX-Team: shop"),
        "{}",
        shown.text
    );
    assert!(shown.text.contains(r#"<option value="bulk" selected>"#));
    assert!(shown.text.contains(r#"data-testid="more-options" open"#));
    assert!(
        shown.text.contains(r#"class="brand""#),
        "the preview uses the layout"
    );

    // Act: emptied fields clear what was stored.
    let csrf = editor.csrf_token().await;
    let list = stored["lists"][0].as_str().unwrap().to_owned();
    editor
        .post(
            &page,
            &[
                ("csrf_token", csrf.as_str()),
                ("name", "Spring sale"),
                ("subject", "Hello"),
                ("from_email", "news@example.com"),
                ("lists", list.as_str()),
                ("body_format", "html"),
                ("body", BODY),
                ("reply_to", ""),
                ("text_body", ""),
                ("template", ""),
                ("tags", ""),
                ("headers", ""),
                ("smtp_group", ""),
            ],
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    let cleared: Value = app
        .get(&format!("/api/v1/campaigns/{id}"))
        .await
        .expect(StatusCode::OK)
        .body;
    for field in ["reply_to", "text_body", "template", "smtp_group"] {
        assert!(cleared[field].is_null(), "{field}: {}", cleared[field]);
    }
    assert_eq!(cleared["tags"], serde_json::json!([]));
    assert_eq!(cleared["headers"], serde_json::json!([]));
}

#[tokio::test]
async fn dashboard_a_reserved_header_is_named_beside_its_field_and_nothing_is_stored() {
    // Arrange
    let app = spawn_app().await;
    let editor = signed_in(&app, Role::Editor).await;

    // Act
    let refused = draft(&app, &editor, &[("headers", "From: someone@else.example")])
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);

    // Assert
    let error = between(&refused.text, r#"id="error-headers">"#, "<");
    assert!(error.contains("set by Postino"), "{error}");
    assert_eq!(app.count("SELECT count(*) FROM campaigns").await, 0);
}
