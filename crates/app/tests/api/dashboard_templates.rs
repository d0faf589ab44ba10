//! The dashboard's Templates pages over HTTP: creating, editing, the live
//! preview, refusing a broken layout, deleting, and who may change them.

use postino_domain::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::dashboard::{between, location, signed_in};
use crate::helpers::{TestApp, spawn_app};

const LAYOUT: &str = "<html><body><div class=\"frame\">{{ content }}</div><a href=\"{{ unsubscribe_url }}\">Leave</a></body></html>";

async fn stored(app: &TestApp) -> Vec<(String, String, String)> {
    sqlx::query_as("SELECT uuid::text, name, body FROM templates ORDER BY id")
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn dashboard_templates_an_editor_creates_and_edits_a_template() {
    // Arrange
    let app = spawn_app().await;
    let editor = signed_in(&app, Role::Editor).await;
    let empty = editor.get("/templates").await.expect(StatusCode::OK);
    assert!(empty.text.contains("No templates yet"), "{}", empty.text);
    let new = editor.get("/templates/new").await.expect(StatusCode::OK);
    assert!(new.text.contains("{{ content }}"), "the starter layout");
    assert!(new.text.contains("data-testid=\"preview-frame\""));
    let csrf = editor.csrf_token().await;

    // Act
    let created = editor
        .post(
            "/templates",
            &[("csrf_token", &csrf), ("name", "Brand"), ("body", LAYOUT)],
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    let (id, _, _) = stored(&app).await.remove(0);
    let saved = editor
        .post(
            &format!("/templates/{id}"),
            &[
                ("csrf_token", &csrf),
                ("name", "Brand 2026"),
                ("body", &LAYOUT.replace("frame", "frame-2026")),
            ],
        )
        .await
        .expect(StatusCode::SEE_OTHER);

    // Assert
    assert_eq!(location(&created), "/templates?notice=created");
    assert_eq!(location(&saved), "/templates?notice=saved");
    let rows = stored(&app).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1, "Brand 2026");
    assert!(rows[0].2.contains("frame-2026"));
    let table = editor
        .get("/templates?notice=saved")
        .await
        .expect(StatusCode::OK);
    assert!(table.text.contains("Your changes were saved."));
    assert!(table.text.contains("Brand 2026"));
    let page = editor
        .get(&format!("/templates/{id}"))
        .await
        .expect(StatusCode::OK);
    assert!(page.text.contains("frame-2026"));
}

#[tokio::test]
async fn dashboard_templates_the_preview_wraps_sample_content_and_names_an_error() {
    // Arrange
    let app = spawn_app().await;
    let editor = signed_in(&app, Role::Editor).await;
    let csrf = editor.csrf_token().await;

    // Act
    let good = editor
        .post(
            "/templates/preview",
            &[("csrf_token", &csrf), ("name", ""), ("body", LAYOUT)],
        )
        .await
        .expect(StatusCode::OK);
    let broken = editor
        .post(
            "/templates/preview",
            &[
                ("csrf_token", &csrf),
                ("name", ""),
                ("body", "<p>\n{{ content </p>"),
            ],
        )
        .await
        .expect(StatusCode::OK);

    // Assert
    let frame = between(&good.text, "srcdoc=\"", "\"");
    assert!(frame.contains("Hello Jane Doe"), "{frame}");
    assert!(frame.contains("frame"), "{frame}");
    let error = between(&broken.text, "data-testid=\"error-body\">", "</small>");
    assert!(error.starts_with("Line 2:"), "{error}");
    assert!(broken.text.contains("data-testid=\"preview-broken\""));
}

#[tokio::test]
async fn dashboard_templates_an_invalid_template_is_refused_with_its_error_and_nothing_is_written()
{
    // Arrange
    let app = spawn_app().await;
    let editor = signed_in(&app, Role::Editor).await;
    let csrf = editor.csrf_token().await;
    editor
        .post(
            "/templates",
            &[("csrf_token", &csrf), ("name", "Brand"), ("body", LAYOUT)],
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    let (id, _, _) = stored(&app).await.remove(0);

    // Act
    let no_slot = editor
        .post(
            "/templates",
            &[
                ("csrf_token", &csrf),
                ("name", "No slot"),
                ("body", "<html><body>Just text</body></html>"),
            ],
        )
        .await;
    let no_name = editor
        .post(
            "/templates",
            &[("csrf_token", &csrf), ("name", " "), ("body", LAYOUT)],
        )
        .await;
    let broken_edit = editor
        .post(
            &format!("/templates/{id}"),
            &[
                ("csrf_token", &csrf),
                ("name", "Brand"),
                ("body", "<p>{% if %}</p>{{ content }}"),
            ],
        )
        .await;

    // Assert
    let no_slot = no_slot.expect(StatusCode::UNPROCESSABLE_ENTITY);
    let said = between(&no_slot.text, "data-testid=\"error-body\">", "</small>");
    assert!(said.contains("{{ content }}"), "{said}");
    assert!(no_slot.text.contains("Just text"), "the typed body is kept");
    let no_name = no_name.expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        between(&no_name.text, "id=\"error-name\">", "</small>").len() > 5,
        "{}",
        no_name.text
    );
    let broken_edit = broken_edit.expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!between(&broken_edit.text, "data-testid=\"error-body\">", "</small>").is_empty());
    let rows = stored(&app).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].2, LAYOUT, "the stored template is unchanged");
}

#[tokio::test]
async fn dashboard_templates_delete_removes_an_unused_template_and_refuses_one_in_use() {
    // Arrange
    let app = spawn_app().await;
    let editor = signed_in(&app, Role::Editor).await;
    let csrf = editor.csrf_token().await;
    for name in ["Unused", "In use"] {
        editor
            .post(
                "/templates",
                &[("csrf_token", &csrf), ("name", name), ("body", LAYOUT)],
            )
            .await
            .expect(StatusCode::SEE_OTHER);
    }
    let rows = stored(&app).await;
    let (unused, in_use) = (rows[0].0.clone(), rows[1].0.clone());
    let list = app.create_list("News", "single").await;
    app.post(
        "/api/v1/campaigns",
        json!({
            "name": "Spring", "subject": "Hi", "from_name": "Acme",
            "from_email": "news@acme.example", "body": "<p>Hi</p>", "lists": [list],
            "template": in_use,
        }),
    )
    .await
    .expect(StatusCode::CREATED);

    let table = editor.get("/templates").await.expect(StatusCode::OK);
    assert!(table.text.contains("Not used yet"), "{}", table.text);
    assert!(table.text.contains("1 campaign"));
    assert!(
        !table.text.contains(&format!("/templates/{in_use}/delete")),
        "no delete button for a template in use"
    );

    // Act
    let deleted = editor
        .post(
            &format!("/templates/{unused}/delete"),
            &[("csrf_token", &csrf)],
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    let refused = editor
        .post(
            &format!("/templates/{in_use}/delete"),
            &[("csrf_token", &csrf)],
        )
        .await
        .expect(StatusCode::SEE_OTHER);

    // Assert
    assert_eq!(location(&deleted), "/templates?notice=deleted");
    assert_eq!(location(&refused), "/templates?notice=in-use");
    let page = editor
        .get("/templates?notice=in-use")
        .await
        .expect(StatusCode::OK);
    assert!(
        page.text.contains("campaigns still use it"),
        "{}",
        page.text
    );
    let names: Vec<String> = stored(&app).await.into_iter().map(|r| r.1).collect();
    assert_eq!(names, ["In use"]);
}

#[tokio::test]
async fn dashboard_templates_a_viewer_may_look_but_not_change_anything() {
    // Arrange
    let app = spawn_app().await;
    let editor = signed_in(&app, Role::Editor).await;
    let viewer = signed_in(&app, Role::Viewer).await;
    let csrf = editor.csrf_token().await;
    editor
        .post(
            "/templates",
            &[("csrf_token", &csrf), ("name", "Brand"), ("body", LAYOUT)],
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    let (id, _, _) = stored(&app).await.remove(0);
    let token = viewer.csrf_token().await;

    // Act
    let table = viewer.get("/templates").await.expect(StatusCode::OK);
    let page = viewer
        .get(&format!("/templates/{id}"))
        .await
        .expect(StatusCode::OK);
    let replies = [
        viewer.get("/templates/new").await,
        viewer
            .post(
                "/templates",
                &[("csrf_token", &token), ("name", "Mine"), ("body", LAYOUT)],
            )
            .await,
        viewer
            .post(
                &format!("/templates/{id}"),
                &[
                    ("csrf_token", &token),
                    ("name", "Renamed"),
                    ("body", LAYOUT),
                ],
            )
            .await,
        viewer
            .post(
                &format!("/templates/{id}/delete"),
                &[("csrf_token", &token)],
            )
            .await,
    ];

    // Assert
    assert!(table.text.contains("Brand"));
    assert!(
        !table.text.contains("/delete"),
        "no delete button for viewers"
    );
    assert!(page.text.contains("Read only"));
    assert!(!page.text.contains("data-testid=\"save-template\""));
    for reply in replies {
        reply.expect(StatusCode::FORBIDDEN);
    }
    let rows = stored(&app).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1, "Brand");
}
