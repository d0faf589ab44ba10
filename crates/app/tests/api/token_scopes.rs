//! API tokens belong to a user and carry a scope: a token never does more
//! than its scope and its owner's role allow right now, demoting the owner
//! narrows their tokens, deleting them deletes their tokens, and a token
//! cannot mint a wider one. The scope is enforced on every route of the
//! route table (read from the OpenAPI document, like `auth.rs`).

use postino_domain::{Password, Role};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::dashboard::{Browser, PASSWORD, between, location};
use crate::helpers::{Reply, TestApp, spawn_app};

/// A request with `token`, with an empty JSON body on changing methods.
async fn with(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Reply {
    let mut req = app
        .client
        .request(method.clone(), app.url(path))
        .bearer_auth(token);
    if method != Method::GET {
        req = req.json(&body.unwrap_or_else(|| json!({})));
    }
    Reply::from(req.send().await.unwrap()).await
}

/// A new token made with the test's installation token.
async fn token_with_scope(app: &TestApp, scope: &str) -> String {
    app.post(
        "/api/v1/tokens",
        json!({"name": format!("{scope} token"), "scope": scope}),
    )
    .await
    .expect(StatusCode::CREATED)
    .body["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn concrete(path: &str) -> String {
    let mut out = String::new();
    for segment in path.split('/').skip(1) {
        out.push('/');
        if segment.starts_with('{') {
            out.push_str(&uuid::Uuid::new_v4().to_string());
        } else {
            out.push_str(segment);
        }
    }
    out
}

/// Every API operation with its OpenAPI tag.
fn tagged_operations() -> Vec<(Method, String, String)> {
    let doc = postino_web::openapi();
    let mut ops = Vec::new();
    for (path, item) in &doc.paths.paths {
        for (method, op) in [
            (Method::GET, &item.get),
            (Method::POST, &item.post),
            (Method::PUT, &item.put),
            (Method::PATCH, &item.patch),
            (Method::DELETE, &item.delete),
        ] {
            if let Some(op) = op {
                let tag = op.tags.iter().flatten().next().cloned().unwrap_or_default();
                ops.push((method, format!("/api/v1{path}"), tag));
            }
        }
    }
    ops
}

async fn snapshot(app: &TestApp) -> Vec<i64> {
    let mut counts = Vec::new();
    for table in [
        "lists",
        "subscribers",
        "campaigns",
        "templates",
        "imports",
        "smtp_servers",
        "dkim_keys",
        "domain_limits",
        "api_tokens",
        "users",
    ] {
        counts.push(app.count(&format!("SELECT count(*) FROM {table}")).await);
    }
    counts
}

async fn create_user(app: &TestApp, email: &str, role: Role) {
    postino_app::commands::create_user(
        &app.pool,
        email,
        "Alex Admin",
        Password::parse(PASSWORD).unwrap(),
        role,
    )
    .await
    .unwrap();
}

async fn user_uuid(app: &TestApp, email: &str) -> String {
    sqlx::query_scalar::<_, uuid::Uuid>("SELECT uuid FROM users WHERE email = $1")
        .bind(email)
        .fetch_one(&app.pool)
        .await
        .unwrap()
        .to_string()
}

/// A token made on the dashboard's tokens page by `browser`.
async fn dashboard_token(browser: &Browser, name: &str, scope: &str) -> String {
    let csrf = browser.csrf_token().await;
    let page = browser
        .post(
            "/settings/tokens",
            &[
                ("csrf_token", csrf.as_str()),
                ("name", name),
                ("scope", scope),
            ],
        )
        .await
        .expect(StatusCode::OK);
    between(&page.text, "data-testid=\"token-secret\">", "<")
}

fn listed<'a>(listing: &'a Reply, name: &str) -> &'a Value {
    listing.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {}", listing.text))
}

#[tokio::test]
async fn a_demoted_admins_tokens_lose_admin_power_and_a_deleted_users_tokens_stop_working() {
    // Arrange: Alex, an admin, makes a token on the dashboard, and with it a
    // second token through the API. Blair, another admin, manages users.
    let app = spawn_app().await;
    create_user(&app, "alex@example.com", Role::Admin).await;
    create_user(&app, "blair@example.com", Role::Admin).await;
    let alex = Browser::signed_in_as(&app, "alex@example.com", PASSWORD).await;
    let blair = Browser::signed_in_as(&app, "blair@example.com", PASSWORD).await;
    let token = dashboard_token(&alex, "Alex's script", "admin").await;
    let minted = with(
        &app,
        &token,
        Method::POST,
        "/api/v1/tokens",
        Some(json!({"name": "Minted by Alex's script"})),
    )
    .await
    .expect(StatusCode::CREATED);
    let child = minted.body["token"].as_str().unwrap().to_owned();
    assert_eq!(minted.body["owner"]["email"], "alex@example.com");
    assert_eq!(minted.body["scope"], "admin");

    // Act: Blair demotes Alex to viewer.
    let csrf = blair.csrf_token().await;
    let alex_id = user_uuid(&app, "alex@example.com").await;
    let demoted = blair
        .post(
            &format!("/settings/users/{alex_id}/role"),
            &[("csrf_token", csrf.as_str()), ("role", "viewer")],
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    assert_eq!(location(&demoted), "/settings/users?notice=role");

    // Assert: both tokens still read, but change nothing and mint nothing.
    for secret in [&token, &child] {
        with(&app, secret, Method::GET, "/api/v1/lists", None)
            .await
            .expect(StatusCode::OK);
        let refused = with(
            &app,
            secret,
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": "Sneaky"})),
        )
        .await
        .expect_problem(StatusCode::FORBIDDEN, "");
        assert!(refused.text.contains("scope is read"), "{}", refused.text);
        with(
            &app,
            secret,
            Method::POST,
            "/api/v1/lists",
            Some(json!({"name": "Sneaky", "opt_in": "single"})),
        )
        .await
        .expect(StatusCode::FORBIDDEN);
        with(&app, secret, Method::GET, "/api/v1/tokens", None)
            .await
            .expect(StatusCode::FORBIDDEN);
    }
    assert_eq!(app.count("SELECT count(*) FROM lists").await, 0);
    let listing = app.get("/api/v1/tokens").await.expect(StatusCode::OK);
    for name in ["Alex's script", "Minted by Alex's script"] {
        let t = listed(&listing, name);
        assert_eq!(t["scope"], "read", "narrowed for good: {t}");
        assert_eq!(t["owner"]["email"], "alex@example.com");
        assert_eq!(t["owner"]["role"], "viewer");
        assert!(t["last_used_at"].is_string(), "{t}");
    }
    assert!(
        listed(&listing, "tests")["owner"].is_null(),
        "the CLI's token is an installation token"
    );

    // Act: promoting Alex back does not bring the admin scope back.
    let csrf = blair.csrf_token().await;
    blair
        .post(
            &format!("/settings/users/{alex_id}/role"),
            &[("csrf_token", csrf.as_str()), ("role", "admin")],
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    with(&app, &token, Method::GET, "/api/v1/tokens", None)
        .await
        .expect(StatusCode::FORBIDDEN);

    // Act: Blair deletes Alex.
    let csrf = blair.csrf_token().await;
    blair
        .post(
            &format!("/settings/users/{alex_id}/delete"),
            &[("csrf_token", csrf.as_str())],
        )
        .await
        .expect(StatusCode::SEE_OTHER);

    // Assert: neither token works for anything, and they are gone.
    for secret in [&token, &child] {
        with(&app, secret, Method::GET, "/api/v1/lists", None)
            .await
            .expect(StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        app.count("SELECT count(*) FROM api_tokens WHERE name LIKE '%Alex%'")
            .await,
        0
    );
}

#[tokio::test]
async fn an_editor_demoted_admin_token_may_still_edit_but_never_reach_settings() {
    // Arrange
    let app = spawn_app().await;
    create_user(&app, "alex@example.com", Role::Admin).await;
    create_user(&app, "blair@example.com", Role::Admin).await;
    let alex = Browser::signed_in_as(&app, "alex@example.com", PASSWORD).await;
    let blair = Browser::signed_in_as(&app, "blair@example.com", PASSWORD).await;
    let token = dashboard_token(&alex, "Alex's sync", "admin").await;

    // Act
    let csrf = blair.csrf_token().await;
    let alex_id = user_uuid(&app, "alex@example.com").await;
    blair
        .post(
            &format!("/settings/users/{alex_id}/role"),
            &[("csrf_token", csrf.as_str()), ("role", "editor")],
        )
        .await
        .expect(StatusCode::SEE_OTHER);

    // Assert: an editor's work is allowed, admin work is not.
    with(
        &app,
        &token,
        Method::POST,
        "/api/v1/lists",
        Some(json!({"name": "Weekly", "opt_in": "single"})),
    )
    .await
    .expect(StatusCode::CREATED);
    for (method, path) in [
        (Method::GET, "/api/v1/smtp-servers"),
        (Method::GET, "/api/v1/tokens"),
        (Method::PUT, "/api/v1/sending-limits"),
        (Method::GET, "/api/v1/dkim-keys"),
    ] {
        with(&app, &token, method.clone(), path, None)
            .await
            .expect_problem(StatusCode::FORBIDDEN, "");
    }
    let listing = app.get("/api/v1/tokens").await.expect(StatusCode::OK);
    assert_eq!(listed(&listing, "Alex's sync")["scope"], "write");
}

#[tokio::test]
async fn a_token_cannot_mint_a_token_with_more_scope_than_itself() {
    // Arrange: an admin-scoped token narrowed to write, made by the test's
    // installation token; and an editor can never pick admin on the page.
    let app = spawn_app().await;
    let write = token_with_scope(&app, "write").await;
    let subscribers = token_with_scope(&app, "subscribers").await;
    let admin = token_with_scope(&app, "admin").await;
    let before = app.count("SELECT count(*) FROM api_tokens").await;

    // Act and assert: narrower tokens cannot reach the tokens area at all.
    for (secret, scope) in [(&write, "admin"), (&write, "read"), (&subscribers, "read")] {
        with(
            &app,
            secret,
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": "Escalated", "scope": scope})),
        )
        .await
        .expect_problem(StatusCode::FORBIDDEN, "");
    }
    assert_eq!(app.count("SELECT count(*) FROM api_tokens").await, before);

    // An admin token mints narrower ones, which then hold only that scope.
    let read = with(
        &app,
        &admin,
        Method::POST,
        "/api/v1/tokens",
        Some(json!({"name": "Read only", "scope": "read"})),
    )
    .await
    .expect(StatusCode::CREATED);
    assert_eq!(read.body["scope"], "read");
    assert!(
        read.body["owner"].is_null(),
        "an installation token's child"
    );
    let read_secret = read.body["token"].as_str().unwrap();
    with(
        &app,
        read_secret,
        Method::POST,
        "/api/v1/tokens",
        Some(json!({"name": "Escalated", "scope": "admin"})),
    )
    .await
    .expect(StatusCode::FORBIDDEN);
    with(
        &app,
        &admin,
        Method::POST,
        "/api/v1/tokens",
        Some(json!({"name": "Bad", "scope": "root"})),
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "scope");
}

#[tokio::test]
async fn a_read_only_token_is_refused_every_changing_request_and_reads_outside_settings() {
    // Arrange
    let app = spawn_app().await;
    let read = token_with_scope(&app, "read").await;
    let before = snapshot(&app).await;
    let operations = tagged_operations();
    assert!(operations.len() >= 40, "route table looks incomplete");
    let admin_tags = ["tokens", "smtp-servers", "limits", "dkim-keys"];

    // Act and assert
    let mut changing = 0;
    for (method, path, tag) in &operations {
        let reply = with(&app, &read, method.clone(), &concrete(path), None).await;
        let refused = *method != Method::GET || admin_tags.contains(&tag.as_str());
        if refused {
            assert_eq!(
                reply.status,
                StatusCode::FORBIDDEN,
                "{method} {path} with a read-only token: {}",
                reply.text
            );
            assert!(reply.text.contains("scope is read"), "{}", reply.text);
            changing += usize::from(*method != Method::GET);
        } else {
            assert!(
                ![StatusCode::FORBIDDEN, StatusCode::UNAUTHORIZED].contains(&reply.status),
                "{method} {path} with a read-only token got {}",
                reply.status
            );
        }
    }
    assert!(changing >= 25, "only {changing} changing routes");
    assert_eq!(
        snapshot(&app).await,
        before,
        "a refused request changed data"
    );
}

#[tokio::test]
async fn narrow_scopes_change_only_their_own_area() {
    // Arrange
    let app = spawn_app().await;
    let subscribers = token_with_scope(&app, "subscribers").await;
    let campaigns = token_with_scope(&app, "campaigns").await;
    let write = token_with_scope(&app, "write").await;

    // Act and assert: each changing route outside the token's area is
    // refused before anything is looked up.
    for (method, path, tag) in tagged_operations() {
        if method == Method::GET {
            continue;
        }
        let path = concrete(&path);
        for (secret, allowed) in [
            (&subscribers, &["lists", "subscribers", "imports"][..]),
            (&campaigns, &["templates", "campaigns"][..]),
            (
                &write,
                &["lists", "subscribers", "imports", "templates", "campaigns"][..],
            ),
        ] {
            let reply = with(&app, secret, method.clone(), &path, None).await;
            assert_eq!(
                reply.status == StatusCode::FORBIDDEN,
                !allowed.contains(&tag.as_str()),
                "{method} {path} ({tag}): {} {}",
                reply.status,
                reply.text
            );
        }
    }
    with(
        &app,
        &subscribers,
        Method::POST,
        "/api/v1/lists",
        Some(json!({"name": "Weekly", "opt_in": "single"})),
    )
    .await
    .expect(StatusCode::CREATED);
    with(&app, &campaigns, Method::GET, "/api/v1/lists", None)
        .await
        .expect(StatusCode::OK);
}

#[tokio::test]
async fn the_tokens_page_shows_each_tokens_owner_scope_and_last_use() {
    // Arrange
    let app = spawn_app().await;
    create_user(&app, "alex@example.com", Role::Admin).await;
    let alex = Browser::signed_in_as(&app, "alex@example.com", PASSWORD).await;
    let secret = dashboard_token(&alex, "Shop sign-ups", "subscribers").await;
    with(&app, &secret, Method::GET, "/api/v1/lists", None)
        .await
        .expect(StatusCode::OK);

    // Act
    let page = alex.get("/settings/tokens").await.expect(StatusCode::OK);

    // Assert
    let row = between(&page.text, "<strong>Shop sign-ups</strong>", "</tr>");
    assert!(
        row.contains(r#"data-testid="token-scope">subscribers<"#),
        "{row}"
    );
    assert!(row.contains("Alex Admin (alex@example.com)"), "{row}");
    assert!(!row.contains("Never"), "its use is shown: {row}");
    let installation = between(&page.text, "<strong>tests</strong>", "</tr>");
    assert!(installation.contains("Installation"), "{installation}");
    assert!(installation.contains(r#"data-testid="token-scope">admin<"#));
    assert!(page.text.contains(r#"<select name="scope""#));
}
