//! The dashboard's campaign pages over HTTP: the editor's form, its live
//! preview, the lifecycle buttons, and who may use them.

use postino_domain::Role;
use postino_sink::{Sink, SinkConfig};
use reqwest::StatusCode;

use crate::dashboard::{Browser, between, location, signed_in};
use crate::helpers::{TestApp, spawn_app};
use crate::sending::sending_app;

const BODY: &str =
    "<p>Hello {{ subscriber.name }}</p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a>";

/// The editor's fields for a campaign to list `list`.
fn campaign_fields<'a>(csrf: &'a str, list: &'a str, body: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf_token", csrf),
        ("name", "Spring sale"),
        ("subject", "Hello {{ subscriber.name }}"),
        ("from_name", "The Shop"),
        ("from_email", "news@example.com"),
        ("lists", list),
        ("body_format", "html"),
        ("body", body),
        ("preview_email", ""),
    ]
}

/// An editor creates a campaign through the form; returns its page's path.
async fn create_campaign(app: &TestApp, editor: &Browser) -> String {
    let list = app.create_list("News", "single").await;
    let csrf = editor.csrf_token().await;
    let reply = editor
        .post("/campaigns", &campaign_fields(&csrf, &list, BODY))
        .await
        .expect(StatusCode::SEE_OTHER);
    location(&reply)
        .strip_suffix("?notice=created")
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn dashboard_campaigns_an_editor_creates_a_draft_through_the_form() {
    // Arrange
    let app = spawn_app().await;
    let editor = signed_in(&app, Role::Editor).await;
    let empty = editor.get("/campaigns").await.expect(StatusCode::OK);
    assert!(empty.text.contains("No campaigns yet"), "{}", empty.text);

    // Act
    let page = create_campaign(&app, &editor).await;

    // Assert
    let shown = editor
        .get(&format!("{page}?notice=created"))
        .await
        .expect(StatusCode::OK);
    assert!(shown.text.contains("saved as a draft"), "{}", shown.text);
    assert!(shown.text.contains("Hello Jane Doe"), "the stored preview");
    let table = editor.get("/campaigns").await.expect(StatusCode::OK);
    assert!(table.text.contains("Spring sale"));
    assert!(table.text.contains("status-draft"));
    let stored = app
        .count("SELECT count(*) FROM campaigns WHERE name = 'Spring sale' AND status = 'draft'")
        .await;
    assert_eq!(stored, 1);
}

#[tokio::test]
async fn dashboard_campaigns_preview_renders_the_subject_and_names_a_broken_field() {
    // Arrange
    let app = spawn_app().await;
    let editor = signed_in(&app, Role::Editor).await;
    let list = app.create_list("News", "single").await;
    let csrf = editor.csrf_token().await;

    // Act
    let good = editor
        .post("/campaigns/preview", &campaign_fields(&csrf, &list, BODY))
        .await
        .expect(StatusCode::OK);
    let broken_body = "<p>Hello</p>\n<p>{% if %}</p>";
    let broken = editor
        .post(
            "/campaigns/preview",
            &campaign_fields(&csrf, &list, broken_body),
        )
        .await
        .expect(StatusCode::OK);

    // Assert
    let subject = between(&good.text, r#"data-testid="preview-subject">"#, "<");
    assert_eq!(subject, "Hello Jane Doe");
    assert!(good.text.contains("srcdoc="), "{}", good.text);
    assert!(good.text.contains(r#"sandbox="""#));
    let error = between(&broken.text, r#"id="error-body" hx-swap-oob="true">"#, "<");
    assert!(error.contains("line 2"), "{error}");
    assert!(!broken.text.contains("preview-subject"));
    let nothing = app.count("SELECT count(*) FROM campaigns").await;
    assert_eq!(nothing, 0, "a preview stores nothing");
}

#[tokio::test]
async fn dashboard_campaigns_a_save_with_a_template_error_keeps_the_text_and_names_the_field() {
    // Arrange
    let app = spawn_app().await;
    let editor = signed_in(&app, Role::Editor).await;
    let list = app.create_list("News", "single").await;
    let csrf = editor.csrf_token().await;
    let mut fields = campaign_fields(&csrf, &list, BODY);
    fields[2] = ("subject", "Hi {{ subscriber.name ");

    // Act
    let reply = editor
        .post("/campaigns", &fields)
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);

    // Assert
    let error = between(&reply.text, r#"id="error-subject">"#, "<");
    assert!(!error.is_empty(), "{}", reply.text);
    assert!(
        reply.text.contains("Hi {{ subscriber.name "),
        "what was typed stays"
    );
    assert_eq!(app.count("SELECT count(*) FROM campaigns").await, 0);
}

#[tokio::test]
async fn dashboard_campaigns_an_editor_starts_and_pauses_and_a_wrong_move_is_explained() {
    // Arrange
    let app = spawn_app().await;
    let editor = signed_in(&app, Role::Editor).await;
    let page = create_campaign(&app, &editor).await;
    let csrf = editor.csrf_token().await;
    let status = format!("{page}/status");

    // Act
    let wrong = editor
        .post(&status, &[("csrf_token", &csrf), ("status", "paused")])
        .await
        .expect(StatusCode::CONFLICT);
    let started = editor
        .post(&status, &[("csrf_token", &csrf), ("status", "running")])
        .await
        .expect(StatusCode::SEE_OTHER);
    let running = editor
        .get(&format!("{page}/progress"))
        .await
        .expect(StatusCode::OK);
    let paused = editor
        .post(&status, &[("csrf_token", &csrf), ("status", "paused")])
        .await
        .expect(StatusCode::SEE_OTHER);

    // Assert
    assert!(
        wrong
            .text
            .contains("a campaign that is draft cannot become paused"),
        "{}",
        wrong.text
    );
    assert_eq!(location(&started), format!("{page}?notice=running"));
    assert!(
        running.text.contains(r#"hx-trigger="every 2s""#),
        "{}",
        running.text
    );
    assert_eq!(location(&paused), format!("{page}?notice=paused"));
    let shown = editor.get(&page).await.expect(StatusCode::OK);
    assert!(
        shown
            .text
            .contains(r#"data-testid="action-running">Resume"#)
    );
    // A page still polling once sending stopped is sent to reload itself.
    let polled = editor
        .client
        .get(format!("{}{page}/progress", editor.base))
        .header("HX-Request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(polled.headers()["hx-redirect"].to_str().unwrap(), page);
    assert_eq!(
        app.count("SELECT count(*) FROM campaigns WHERE status = 'paused'")
            .await,
        1
    );
}

#[tokio::test]
async fn dashboard_campaigns_a_viewer_reads_but_cannot_create_start_pause_schedule_or_test() {
    // Arrange
    let app = spawn_app().await;
    let editor = signed_in(&app, Role::Editor).await;
    let page = create_campaign(&app, &editor).await;
    let viewer = signed_in(&app, Role::Viewer).await;
    let csrf = viewer.csrf_token().await;
    let list = app.create_list("Other", "single").await;

    // Act
    let shown = viewer.get(&page).await.expect(StatusCode::OK);
    let table = viewer.get("/campaigns").await.expect(StatusCode::OK);
    let new = viewer.get("/campaigns/new").await;
    let create = viewer
        .post("/campaigns", &campaign_fields(&csrf, &list, BODY))
        .await;
    let update = viewer
        .post(&page, &campaign_fields(&csrf, &list, BODY))
        .await;
    let start = viewer
        .post(
            &format!("{page}/status"),
            &[("csrf_token", &csrf), ("status", "running")],
        )
        .await;
    let pause = viewer
        .post(
            &format!("{page}/status"),
            &[("csrf_token", &csrf), ("status", "paused")],
        )
        .await;
    let test = viewer
        .post(
            &format!("{page}/test"),
            &[("csrf_token", &csrf), ("emails", "me@example.com")],
        )
        .await;

    let schedule = viewer
        .post(
            &format!("{page}/schedule"),
            &[("csrf_token", &csrf), ("send_at", "2099-01-01T09:00")],
        )
        .await;

    // Assert
    assert!(
        shown.text.contains("Hello Jane Doe"),
        "viewers see the preview"
    );
    assert!(!shown.text.contains("schedule-form"));
    assert!(!shown.text.contains("<form id=\"campaign-form\""));
    assert!(!shown.text.contains("action-running"));
    assert!(!table.text.contains("New campaign"));
    for reply in [new, create, update, start, pause, test, schedule] {
        reply.expect(StatusCode::FORBIDDEN);
    }
    assert_eq!(
        app.count("SELECT count(*) FROM campaigns WHERE status = 'draft'")
            .await,
        1
    );
}

#[tokio::test]
async fn dashboard_campaigns_a_form_without_its_csrf_token_is_refused() {
    // Arrange
    let app = spawn_app().await;
    let editor = signed_in(&app, Role::Editor).await;
    let list = app.create_list("News", "single").await;
    let mut fields = campaign_fields("", &list, BODY);
    fields.remove(0);

    // Act
    let reply = editor.post("/campaigns", &fields).await;

    // Assert
    reply.expect(StatusCode::FORBIDDEN);
    assert_eq!(app.count("SELECT count(*) FROM campaigns").await, 0);
}

#[tokio::test]
async fn dashboard_campaigns_an_editor_schedules_a_draft_in_local_time_but_not_in_the_past() {
    // Arrange
    let app = spawn_app().await;
    let editor = signed_in(&app, Role::Editor).await;
    let page = create_campaign(&app, &editor).await;
    let csrf = editor.csrf_token().await;
    let schedule = format!("{page}/schedule");
    // A browser two hours ahead of UTC reports an offset of -120 minutes.
    let local = (chrono::Utc::now() + chrono::TimeDelta::days(2) + chrono::TimeDelta::hours(2))
        .format("%Y-%m-%dT%H:%M")
        .to_string();

    // Act
    let past = editor
        .post(
            &schedule,
            &[
                ("csrf_token", &csrf),
                ("send_at", "2020-01-01T09:00"),
                ("tz_offset", "0"),
            ],
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    let done = editor
        .post(
            &schedule,
            &[
                ("csrf_token", &csrf),
                ("send_at", &local),
                ("tz_offset", "-120"),
            ],
        )
        .await
        .expect(StatusCode::SEE_OTHER);

    // Assert
    assert!(past.text.contains("must be in the future"), "{}", past.text);
    assert_eq!(location(&done), format!("{page}?notice=scheduled"));
    let hours_ahead: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM send_at - now())::float8 / 3600 FROM campaigns WHERE status = 'scheduled'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(
        (47.0..48.1).contains(&hours_ahead),
        "starts in {hours_ahead} hours, not 48"
    );
    let shown = editor.get(&page).await.expect(StatusCode::OK);
    assert!(shown.text.contains("Scheduled to start on"));
}

#[tokio::test]
async fn dashboard_campaigns_a_finished_campaign_counts_bounces_and_unsubscribes() {
    // Arrange: a campaign that went out, one person bounced twice, one
    // unsubscribed from it.
    let app = spawn_app().await;
    let editor = signed_in(&app, Role::Editor).await;
    let page = create_campaign(&app, &editor).await;
    for sql in [
        "UPDATE campaigns SET status = 'finished', started_at = now(), finished_at = now()",
        "INSERT INTO subscribers (uuid, email, name) VALUES
           (gen_random_uuid(), 'a@example.org', 'A'), (gen_random_uuid(), 'b@example.org', 'B')",
        "INSERT INTO deliveries (campaign_id, subscriber_id, status, sent_at)
         SELECT c.id, s.id, 'sent', now() FROM campaigns c CROSS JOIN subscribers s",
        "INSERT INTO bounces (subscriber_id, campaign_id, kind, source)
         SELECT s.id, c.id, k, 'smtp' FROM campaigns c, subscribers s, unnest(ARRAY['hard', 'soft']) k
         WHERE s.email = 'a@example.org'",
        "INSERT INTO subscription_events (subscriber_id, campaign_id, kind, source)
         SELECT s.id, c.id, 'unsubscribed', 'link' FROM campaigns c, subscribers s
         WHERE s.email = 'b@example.org'",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&app.pool)
            .await
            .unwrap();
    }

    // Act
    let shown = editor.get(&page).await.expect(StatusCode::OK);

    // Assert
    let count = |id: &str| between(&shown.text, &format!(r#"data-testid="{id}">"#), "<");
    assert_eq!(count("count-delivered"), "2");
    assert_eq!(count("count-bounced"), "1");
    assert_eq!(count("count-unsubscribed"), "1");
    assert_eq!(count("progress-percent"), "100%");
}

#[tokio::test]
async fn dashboard_campaigns_a_test_send_shows_each_reply_inline_and_a_bad_address_in_words() {
    // Arrange
    let sink = Sink::start(SinkConfig::default()).await.unwrap();
    let app = sending_app(&sink, |_| {}).await;
    let editor = signed_in(&app, Role::Editor).await;
    let page = create_campaign(&app, &editor).await;
    let csrf = editor.csrf_token().await;
    let test = format!("{page}/test");

    // Act
    let bad = editor
        .post(
            &test,
            &[("csrf_token", &csrf), ("emails", "me@example.com, nobody")],
        )
        .await
        .expect(StatusCode::OK);
    let good = editor
        .post(
            &test,
            &[("csrf_token", &csrf), ("emails", "me@example.com")],
        )
        .await
        .expect(StatusCode::OK);

    // Assert
    assert!(bad.text.contains("“nobody”"), "{}", bad.text);
    assert!(!bad.text.contains("test-results"));
    assert!(good.text.contains("me@example.com"), "{}", good.text);
    assert!(good.text.contains(">sent<"), "{}", good.text);
    assert!(good.text.contains("DKIM: not signed"), "{}", good.text);
    assert_eq!(sink.per_recipient().get("me@example.com"), Some(&1));
}

#[tokio::test]
async fn dashboard_campaigns_a_campaign_that_paused_itself_says_why_and_offers_resume() {
    // Arrange
    let app = spawn_app().await;
    let editor = signed_in(&app, Role::Editor).await;
    let page = create_campaign(&app, &editor).await;
    sqlx::query(
        "UPDATE campaigns SET status = 'paused', started_at = now(),
                status_reason = 'the SMTP server refused 50 messages in a row'",
    )
    .execute(&app.pool)
    .await
    .unwrap();

    // Act
    let shown = editor.get(&page).await.expect(StatusCode::OK);

    // Assert
    assert!(
        shown.text.contains(
            "Postino paused this campaign itself: the SMTP server refused 50 messages in a row"
        ),
        "{}",
        shown.text
    );
    assert!(
        shown
            .text
            .contains(r#"data-testid="action-running">Resume"#)
    );
    assert!(shown.text.contains(r#"data-testid="progress""#));
}
