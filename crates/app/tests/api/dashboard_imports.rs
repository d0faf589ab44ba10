//! The dashboard's Import page over HTTP: the multipart upload form and its
//! CSRF check, the import's page with its summary and bad rows, the error
//! report download, cancelling, and who may import.

use std::time::Duration;

use postino_domain::Role;
use reqwest::StatusCode;

use crate::dashboard::{Browser, between, location, signed_in};
use crate::helpers::{Reply, TestApp, spawn_app, spawn_app_with};

const BOUNDARY: &str = "----postinoTestBoundary7MA4YWxk";

/// A multipart form body: the plain fields in order, then the file.
fn multipart(fields: &[(&str, &str)], file: Option<(&str, &[u8])>) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    if let Some((file_name, bytes)) = file {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; \
                 filename=\"{file_name}\"\r\nContent-Type: text/csv\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// Sends the upload form as a browser does.
async fn upload(browser: &Browser, body: Vec<u8>) -> Reply {
    let response = browser
        .client
        .post(format!("{}/import", browser.base))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    Reply::from(response).await
}

/// Waits for the background worker to end the import; returns its status.
async fn wait_for(app: &TestApp, id: &str) -> String {
    for _ in 0..600 {
        let status: String =
            sqlx::query_scalar("SELECT status FROM imports WHERE uuid = $1::text::uuid")
                .bind(id)
                .fetch_one(&app.pool)
                .await
                .unwrap();
        if ["finished", "failed", "cancelled"].contains(&status.as_str()) {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("import {id} did not end");
}

async fn members_of(app: &TestApp, list: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT s.email FROM subscriber_lists sl
         JOIN subscribers s ON s.id = sl.subscriber_id
         JOIN lists l ON l.id = sl.list_id
         WHERE l.uuid = $1::text::uuid ORDER BY s.email",
    )
    .bind(list)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

const FILE: &str = "email,name\n\
                    ann@example.com,Ann\n\
                    bob@example.com,Bob\n\
                    not-an-email,Broken\n\
                    ,Nobody\n\
                    cy@example.com,Cy\n";

#[tokio::test]
async fn dashboard_imports_an_editor_uploads_a_csv_and_sees_the_summary_the_bad_rows_and_the_report()
 {
    // Arrange
    let app = spawn_app().await;
    let list = app.create_list("Spring newsletter", "single").await;
    let other = app.create_list("Other", "single").await;
    let editor = signed_in(&app, Role::Editor).await;
    let form = editor.get("/import").await.expect(StatusCode::OK);
    assert!(form.text.contains("Spring newsletter"), "{}", form.text);
    assert!(form.text.contains("No imports yet"));
    let csrf = editor.csrf_token().await;

    // Act
    let reply = upload(
        &editor,
        multipart(
            &[
                ("csrf_token", &csrf),
                ("list", &list),
                ("mode", "subscribe"),
            ],
            Some(("people.csv", FILE.as_bytes())),
        ),
    )
    .await
    .expect(StatusCode::SEE_OTHER);

    // Assert
    let page = location(&reply).to_owned();
    let id = page.strip_prefix("/import/").unwrap().to_owned();
    assert_eq!(wait_for(&app, &id).await, "finished");
    assert_eq!(
        members_of(&app, &list).await,
        ["ann@example.com", "bob@example.com", "cy@example.com"]
    );
    assert!(members_of(&app, &other).await.is_empty());

    let shown = editor.get(&page).await.expect(StatusCode::OK);
    assert!(shown.text.contains("people.csv"), "{}", shown.text);
    assert!(shown.text.contains("data-testid=\"import-summary\""));
    let count = |name: &str| {
        between(
            &shown.text,
            &format!("data-testid=\"count-{name}\">"),
            "</dd>",
        )
    };
    assert_eq!(count("rows"), "5");
    assert_eq!(count("created"), "3");
    assert_eq!(count("failed"), "2");
    assert!(shown.text.contains("data-testid=\"errors-table\""));
    assert!(shown.text.contains("not-an-email,Broken"), "{}", shown.text);
    assert!(shown.text.contains(",Nobody"));
    assert!(
        !shown.text.contains("hx-trigger=\"every 1s\""),
        "a finished import is not polled"
    );
    assert!(shown.text.contains(&format!("/import/{id}/errors.csv")));

    let report = editor
        .get(&format!("/import/{id}/errors.csv"))
        .await
        .expect(StatusCode::OK);
    assert!(
        report.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let lines: Vec<&str> = report.text.lines().collect();
    assert_eq!(lines[0], "line,reason,original");
    assert_eq!(lines.len(), 3, "{}", report.text);
    assert!(lines[1].starts_with("4,") && lines[1].contains("not-an-email"));
    assert!(lines[2].starts_with("5,") && lines[2].contains("Nobody"));

    let table = editor.get("/import").await.expect(StatusCode::OK);
    assert!(table.text.contains("data-testid=\"imports-table\""));
    assert!(table.text.contains(&format!("href=\"/import/{id}\"")));
}

#[tokio::test]
async fn dashboard_imports_a_viewer_may_look_but_not_import() {
    // Arrange
    let app = spawn_app().await;
    let list = app.create_list("News", "single").await;
    let viewer = signed_in(&app, Role::Viewer).await;
    let csrf = viewer.csrf_token().await;

    // Act
    let page = viewer.get("/import").await.expect(StatusCode::OK);
    let reply = upload(
        &viewer,
        multipart(
            &[("csrf_token", &csrf), ("list", &list)],
            Some(("people.csv", FILE.as_bytes())),
        ),
    )
    .await;

    // Assert
    assert!(!page.text.contains("data-testid=\"import-form\""));
    assert!(page.text.contains("Ask an editor"));
    reply.expect(StatusCode::FORBIDDEN);
    assert_eq!(app.count("SELECT count(*) FROM imports").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM subscribers").await, 0);
}

#[tokio::test]
async fn dashboard_imports_an_upload_without_its_csrf_token_first_is_refused() {
    // Arrange
    let app = spawn_app().await;
    let list = app.create_list("News", "single").await;
    let editor = signed_in(&app, Role::Editor).await;
    let csrf = editor.csrf_token().await;
    let file = Some(("people.csv", FILE.as_bytes()));

    // Act
    let missing = upload(&editor, multipart(&[("list", &list)], file)).await;
    let wrong = upload(
        &editor,
        multipart(&[("csrf_token", "not-the-token"), ("list", &list)], file),
    )
    .await;
    let not_first = upload(
        &editor,
        multipart(&[("list", &list), ("csrf_token", &csrf)], file),
    )
    .await;

    // Assert
    for reply in [missing, wrong, not_first] {
        let reply = reply.expect(StatusCode::FORBIDDEN);
        assert!(
            reply.text.contains("This form has expired"),
            "{}",
            reply.text
        );
    }
    assert_eq!(app.count("SELECT count(*) FROM imports").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM subscribers").await, 0);
}

#[tokio::test]
async fn dashboard_imports_unusable_files_are_refused_in_words_and_nothing_is_imported() {
    // Arrange
    let app = spawn_app_with(|s| s.import.max_upload_bytes = 2000).await;
    let list = app.create_list("News", "single").await;
    let editor = signed_in(&app, Role::Editor).await;
    let csrf = editor.csrf_token().await;
    let fields = [("csrf_token", csrf.as_str()), ("list", list.as_str())];
    let png: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x06\0\0\0";
    let big = format!("email\n{}", "someone@example.com\n".repeat(200));

    // Act
    let empty = upload(
        &editor,
        multipart(&fields, Some(("empty.csv", b"".as_slice()))),
    )
    .await;
    let picture = upload(&editor, multipart(&fields, Some(("logo.png", png)))).await;
    let no_email = upload(
        &editor,
        multipart(
            &fields,
            Some(("people.csv", b"name,city\nAnn,Rome\n".as_slice())),
        ),
    )
    .await;
    let no_list = upload(
        &editor,
        multipart(
            &[("csrf_token", &csrf), ("mode", "subscribe")],
            Some(("people.csv", FILE.as_bytes())),
        ),
    )
    .await;
    let too_big = upload(
        &editor,
        multipart(&fields, Some(("big.csv", big.as_bytes()))),
    )
    .await;

    // Assert
    let empty = empty.expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        empty
            .text
            .contains("This file is empty, or no file was chosen."),
        "{}",
        empty.text
    );
    assert!(empty.text.contains("data-testid=\"import-form\""));
    let picture = picture.expect(StatusCode::UNPROCESSABLE_ENTITY);
    let said = between(&picture.text, "data-testid=\"file-error\">", "</small>");
    assert!(
        said.contains("no e-mail column") || said.contains("cannot be read as CSV"),
        "{said}"
    );
    let no_email = no_email.expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        no_email.text.contains("This file has no e-mail column."),
        "{}",
        no_email.text
    );
    // The list stays ticked for the next try.
    assert!(no_email.text.contains(&format!("value=\"{list}\" checked")));
    let no_list = no_list.expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        between(&no_list.text, "data-testid=\"lists-error\">", "</small>")
            .contains("Tick at least one list."),
        "{}",
        no_list.text
    );
    let too_big = too_big.expect(StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        too_big
            .text
            .contains("This file is larger than the 1.9 KB limit."),
        "{}",
        too_big.text
    );
    assert_eq!(app.count("SELECT count(*) FROM imports").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM subscribers").await, 0);
}

#[tokio::test]
async fn dashboard_imports_a_waiting_import_shows_a_polled_progress_bar_and_can_be_cancelled() {
    // Arrange: no worker, so the job waits.
    let app = spawn_app_with(|s| s.import.workers = 0).await;
    let list = app.create_list("News", "single").await;
    let editor = signed_in(&app, Role::Editor).await;
    let viewer = signed_in(&app, Role::Viewer).await;
    let csrf = editor.csrf_token().await;
    let reply = upload(
        &editor,
        multipart(
            &[("csrf_token", &csrf), ("list", &list)],
            Some(("people.csv", FILE.as_bytes())),
        ),
    )
    .await
    .expect(StatusCode::SEE_OTHER);
    let page = location(&reply).to_owned();

    // Act
    let waiting = editor.get(&page).await.expect(StatusCode::OK);
    let part = editor
        .get(&format!("{page}/progress"))
        .await
        .expect(StatusCode::OK);
    let viewer_csrf = viewer.csrf_token().await;
    let refused = viewer
        .post(&format!("{page}/cancel"), &[("csrf_token", &viewer_csrf)])
        .await;
    let cancelled = editor
        .post(&format!("{page}/cancel"), &[("csrf_token", &csrf)])
        .await
        .expect(StatusCode::SEE_OTHER);

    // Assert
    assert!(
        waiting.text.contains("Waiting to start"),
        "{}",
        waiting.text
    );
    assert!(waiting.text.contains("hx-trigger=\"every 1s\""));
    assert!(waiting.text.contains("data-testid=\"cancel-import\""));
    assert!(part.text.starts_with("<div id=\"import-progress\""));
    refused.expect(StatusCode::FORBIDDEN);
    assert_eq!(location(&cancelled), format!("{page}?notice=cancelled"));
    let after = editor
        .get(&format!("{page}?notice=cancelled"))
        .await
        .expect(StatusCode::OK);
    assert!(after.text.contains("The import was cancelled."));
    assert!(after.text.contains("status-cancelled"));
    assert_eq!(
        app.count("SELECT count(*) FROM imports WHERE status = 'cancelled'")
            .await,
        1
    );
}
