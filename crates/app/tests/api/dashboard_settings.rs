//! The settings pages: only admins see or change them, every change lands
//! in the database through the same functions as the API, and secrets are
//! never sent back to the browser.

use postino_domain::Role;
use postino_sink::{Sink, SinkConfig};
use reqwest::StatusCode;

use crate::dashboard::{Browser, between, location, signed_in};
use crate::helpers::{Reply, TestApp, spawn_app};

const RELAY_SECRET: &str = "hunter2-Relay-Secret";

/// A POST as htmx sends it: the token in a header, `HX-Request` set.
async fn hx_post(browser: &Browser, path: &str, csrf: &str) -> Reply {
    let response = browser
        .client
        .post(format!("{}{path}", browser.base))
        .header("hx-request", "true")
        .header("x-csrf-token", csrf)
        .send()
        .await
        .unwrap();
    Reply::from(response).await
}

fn smtp_fields<'a>(csrf: &'a str, name: &'a str, port: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf_token", csrf),
        ("name", name),
        ("host", "127.0.0.1"),
        ("port", port),
        ("tls", "none"),
        ("username", "mailer"),
        ("password", RELAY_SECRET),
        ("hello_name", "mail.example.com"),
        ("max_connections", "4"),
        ("messages_per_connection", "100"),
        ("timeout_secs", "10"),
        ("enabled", "on"),
        ("weight", "3"),
        ("group", "bulk"),
        ("messages_per_second", "12.5"),
        ("window_messages", "50000"),
        ("window_secs", "3600"),
    ]
}

/// Relay `name`'s stored password, opened with the installation's key.
async fn stored_password(app: &TestApp, name: &str) -> String {
    use secrecy::ExposeSecret;
    let sealed: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT password_sealed FROM smtp_servers WHERE name = $1")
            .bind(name)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    postino_app::relay_passwords(&crate::helpers::test_settings(&app.db), &app.pool)
        .await
        .unwrap()
        .open(sealed.as_deref())
        .unwrap()
        .expose_secret()
        .to_owned()
}

async fn server_id(app: &TestApp, name: &str) -> String {
    sqlx::query_scalar::<_, uuid::Uuid>("SELECT uuid FROM smtp_servers WHERE name = $1")
        .bind(name)
        .fetch_one(&app.pool)
        .await
        .unwrap()
        .to_string()
}

#[track_caller]
fn assert_no_relay_secret(reply: &Reply) {
    assert!(
        !reply.text.contains(RELAY_SECRET),
        "a page shows the relay's password"
    );
}

#[tokio::test]
async fn dashboard_settings_open_at_the_smtp_section_with_tabs_for_every_section() {
    // Arrange
    let app = spawn_app().await;
    let admin = signed_in(&app, Role::Admin).await;

    // Act
    let settings = admin.get("/settings").await.expect(StatusCode::SEE_OTHER);
    let page = admin.get("/settings/smtp").await.expect(StatusCode::OK);

    // Assert
    assert_eq!(location(&settings), "/settings/smtp");
    for tab in [
        "/settings/smtp",
        "/settings/dkim",
        "/settings/limits",
        "/settings/tokens",
        "/settings/users",
    ] {
        assert!(page.text.contains(&format!("href=\"{tab}\"")), "{tab}");
    }
    assert!(page.text.contains("default"), "the seeded relay is listed");
}

#[tokio::test]
async fn dashboard_settings_an_admin_adds_edits_and_deletes_an_smtp_server_without_the_password_ever_shown()
 {
    // Arrange
    let app = spawn_app().await;
    let admin = signed_in(&app, Role::Admin).await;
    let csrf = admin.csrf_token().await;

    // Act: add.
    let added = admin
        .post("/settings/smtp", &smtp_fields(&csrf, "Relay one", "2525"))
        .await
        .expect(StatusCode::SEE_OTHER);

    // Assert
    assert_eq!(location(&added), "/settings/smtp?notice=created");
    let stored: String = sqlx::query_scalar(
        "SELECT concat_ws('|', host, port, tls, password, max_connections, weight, server_group,
                          messages_per_second, window_messages, window_secs, enabled)
         FROM smtp_servers WHERE name = 'Relay one'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        stored, "127.0.0.1|2525|none||4|3|bulk|12.5|50000|3600|t",
        "the password is not stored in plain text"
    );
    assert_eq!(stored_password(&app, "Relay one").await, RELAY_SECRET);
    let id = server_id(&app, "Relay one").await;
    let list = admin.get("/settings/smtp").await.expect(StatusCode::OK);
    assert!(list.text.contains("Relay one"));
    assert!(list.text.contains("127.0.0.1:2525"));
    assert!(list.text.contains("12.5 per second"));
    assert_no_relay_secret(&list);
    let edit = admin
        .get(&format!("/settings/smtp/{id}/edit"))
        .await
        .expect(StatusCode::OK);
    assert_no_relay_secret(&edit);
    assert!(edit.text.contains("a password is saved"));

    // Act: move it to another port with a blank password: refused, since
    // the stored password would follow it there.
    let mut moved = smtp_fields(&csrf, "Relay moved", "2526");
    moved.retain(|(k, _)| *k != "password");
    moved.push(("password", ""));
    let refused_move = admin
        .post(&format!("/settings/smtp/{id}"), &moved)
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);

    // Assert
    assert!(
        refused_move.text.contains("enter the password again"),
        "the form says why, by the password field"
    );
    assert_no_relay_secret(&refused_move);
    assert_eq!(
        app.count("SELECT count(*) FROM smtp_servers WHERE name = 'Relay moved'")
            .await,
        0
    );

    // Act: edit with a blank password on the same server, which keeps it.
    let mut fields = smtp_fields(&csrf, "Relay renamed", "2525");
    fields.retain(|(k, _)| *k != "password" && *k != "enabled");
    fields.push(("password", ""));
    admin
        .post(&format!("/settings/smtp/{id}"), &fields)
        .await
        .expect(StatusCode::SEE_OTHER);

    // Assert
    let (port, enabled): (i32, bool) =
        sqlx::query_as("SELECT port, enabled FROM smtp_servers WHERE name = 'Relay renamed'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(port, 2525);
    assert_eq!(
        stored_password(&app, "Relay renamed").await,
        RELAY_SECRET,
        "a blank password keeps the stored one"
    );
    assert!(!enabled, "unticked, it leaves the rotation");

    // Act: bad input is named next to its field and changes nothing.
    let mut bad = smtp_fields(&csrf, "Relay renamed", "not a port");
    bad.retain(|(k, _)| *k != "window_secs");
    let refused = admin
        .post(&format!("/settings/smtp/{id}"), &bad)
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.text.contains("enter a whole number"));
    assert!(refused.text.contains("give the window"));
    assert_no_relay_secret(&refused);
    let duplicate = admin
        .post("/settings/smtp", &smtp_fields(&csrf, "Relay renamed", "25"))
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(duplicate.text.contains("another SMTP server has this name"));
    assert_no_relay_secret(&duplicate);

    // Act: delete, as htmx does.
    hx_post(&admin, &format!("/settings/smtp/{id}/delete"), &csrf)
        .await
        .expect(StatusCode::OK);

    // Assert
    assert_eq!(
        app.count("SELECT count(*) FROM smtp_servers WHERE name = 'Relay renamed'")
            .await,
        0
    );
}

#[tokio::test]
async fn dashboard_settings_test_connection_reports_a_real_server_in_words() {
    // Arrange
    let sink = Sink::start(SinkConfig::default()).await.unwrap();
    let app = spawn_app().await;
    let admin = signed_in(&app, Role::Admin).await;
    let csrf = admin.csrf_token().await;
    let port = sink.addr().port().to_string();
    admin
        .post("/settings/smtp", &smtp_fields(&csrf, "Sink", &port))
        .await
        .expect(StatusCode::SEE_OTHER);
    let id = server_id(&app, "Sink").await;

    // Act
    let partial = hx_post(&admin, &format!("/settings/smtp/{id}/test"), &csrf)
        .await
        .expect(StatusCode::OK);
    let page = admin
        .post(
            &format!("/settings/smtp/{id}/test"),
            &[("csrf_token", csrf.as_str())],
        )
        .await
        .expect(StatusCode::OK);

    // Assert
    assert!(partial.text.contains("Connected"), "{}", partial.text);
    assert!(partial.text.contains("authenticated"), "{}", partial.text);
    assert!(partial.text.contains("postino-sink"), "{}", partial.text);
    assert!(
        !partial.text.contains("<html"),
        "htmx gets the result alone"
    );
    assert!(
        page.text.contains("<html"),
        "a plain form gets a whole page"
    );
    assert!(page.text.contains("authenticated"));
    assert_no_relay_secret(&partial);
    assert_no_relay_secret(&page);
    assert!(sink.counts().connections >= 1, "it really connected");
    assert!(sink.messages().is_empty(), "a test sends nothing");
}

#[tokio::test]
async fn dashboard_settings_test_connection_reports_a_closed_port_in_words() {
    // Arrange
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let app = spawn_app().await;
    let admin = signed_in(&app, Role::Admin).await;
    let csrf = admin.csrf_token().await;
    let port = closed.to_string();
    admin
        .post("/settings/smtp", &smtp_fields(&csrf, "Nowhere", &port))
        .await
        .expect(StatusCode::SEE_OTHER);
    let id = server_id(&app, "Nowhere").await;

    // Act
    let partial = hx_post(&admin, &format!("/settings/smtp/{id}/test"), &csrf)
        .await
        .expect(StatusCode::OK);

    // Assert
    assert!(
        partial.text.contains("Could not use this server"),
        "{}",
        partial.text
    );
    assert!(partial.text.contains("connect"), "{}", partial.text);
    assert!(partial.text.contains(&port), "{}", partial.text);
    assert_no_relay_secret(&partial);
}

#[tokio::test]
async fn dashboard_settings_refuse_a_form_without_the_csrf_token() {
    // Arrange
    let app = spawn_app().await;
    let admin = signed_in(&app, Role::Admin).await;
    let mut fields = smtp_fields("", "Forged", "25");
    fields.retain(|(k, _)| *k != "csrf_token");

    // Act
    let reply = admin.post("/settings/smtp", &fields).await;

    // Assert
    reply.expect(StatusCode::FORBIDDEN);
    assert_eq!(
        app.count("SELECT count(*) FROM smtp_servers WHERE name = 'Forged'")
            .await,
        0
    );
}

type Posts = Vec<(String, Vec<(&'static str, String)>)>;

/// Every settings page, and every change with a well-formed body.
async fn settings_requests(app: &TestApp) -> (Vec<String>, Posts) {
    let smtp = server_id(app, "default").await;
    let admin = sqlx::query_scalar::<_, uuid::Uuid>("SELECT uuid FROM users WHERE role = 'admin'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let token = sqlx::query_scalar::<_, uuid::Uuid>("SELECT uuid FROM api_tokens LIMIT 1")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let dkim = sqlx::query_scalar::<_, uuid::Uuid>("SELECT uuid FROM dkim_keys LIMIT 1")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let gets = vec![
        "/settings".to_owned(),
        "/settings/smtp".to_owned(),
        format!("/settings/smtp/{smtp}/edit"),
        "/settings/dkim".to_owned(),
        "/settings/limits".to_owned(),
        "/settings/limits?edit=gmail.com".to_owned(),
        "/settings/tokens".to_owned(),
        "/settings/users".to_owned(),
        format!("/settings/users/{admin}/edit"),
    ];
    let field = |k: &'static str, v: &str| (k, v.to_owned());
    let posts = vec![
        (
            "/settings/smtp".to_owned(),
            vec![
                field("name", "Sneaky"),
                field("host", "127.0.0.1"),
                field("port", "25"),
            ],
        ),
        (
            format!("/settings/smtp/{smtp}"),
            vec![field("name", "Sneaky")],
        ),
        (format!("/settings/smtp/{smtp}/delete"), vec![]),
        (format!("/settings/smtp/{smtp}/test"), vec![]),
        (
            "/settings/dkim".to_owned(),
            vec![
                field("domain", "sneaky.example"),
                field("selector", "s1"),
                field("algorithm", "ed25519-sha256"),
            ],
        ),
        (format!("/settings/dkim/{dkim}/delete"), vec![]),
        (
            "/settings/limits/rate".to_owned(),
            vec![field("messages_per_second", "1")],
        ),
        (
            "/settings/limits/domains".to_owned(),
            vec![
                field("domain", "sneaky.example"),
                field("max_connections", "1"),
            ],
        ),
        (
            "/settings/limits/domains/gmail.com/delete".to_owned(),
            vec![],
        ),
        ("/settings/tokens".to_owned(), vec![field("name", "Sneaky")]),
        (format!("/settings/tokens/{token}/revoke"), vec![]),
        (
            "/settings/users".to_owned(),
            vec![
                field("name", "Sneaky"),
                field("email", "sneaky@example.com"),
                field("role", "admin"),
                field("password", "a long enough password"),
            ],
        ),
        (
            format!("/settings/users/{admin}/role"),
            vec![field("role", "viewer")],
        ),
        (
            format!("/settings/users/{admin}/password"),
            vec![field("password", "another long password")],
        ),
        (format!("/settings/users/{admin}/delete"), vec![]),
    ];
    (gets, posts)
}

/// A row in every settings table, so every id in a path exists.
async fn seed_settings(app: &TestApp) {
    for sql in [
        "INSERT INTO api_tokens (uuid, name, token_hash, prefix)
         VALUES (gen_random_uuid(), 'CRM', sha256('pst_x'::bytea), 'pst_x')",
        "INSERT INTO domain_limits (domain, max_connections) VALUES ('gmail.com', 5)",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&app.pool)
            .await
            .unwrap();
    }
    app.post(
        "/api/v1/dkim-keys",
        serde_json::json!({"domain": "example.com", "selector": "s1", "algorithm": "ed25519-sha256"}),
    )
    .await
    .expect(StatusCode::CREATED);
}

/// Everything the settings pages could change, to compare before and after.
async fn settings_state(app: &TestApp) -> Vec<i64> {
    let mut counts = Vec::new();
    for sql in [
        "SELECT count(*) FROM smtp_servers WHERE name = 'default'",
        "SELECT count(*) FROM smtp_servers",
        "SELECT count(*) FROM dkim_keys",
        "SELECT count(*) FROM domain_limits WHERE max_connections = 5",
        "SELECT count(*) FROM domain_limits",
        "SELECT count(*) FROM api_tokens WHERE revoked_at IS NULL",
        "SELECT count(*) FROM api_tokens",
        "SELECT count(*) FROM users",
        "SELECT count(*) FROM users WHERE role = 'admin'",
        "SELECT count(*) FROM sessions",
        "SELECT count(*) FROM sending_limits WHERE messages_per_second IS NOT NULL",
    ] {
        counts.push(app.count(sql).await);
    }
    counts
}

#[tokio::test]
async fn dashboard_settings_are_forbidden_to_editors_and_viewers() {
    // Arrange
    let app = spawn_app().await;
    let _admin = signed_in(&app, Role::Admin).await;
    seed_settings(&app).await;
    let (gets, posts) = settings_requests(&app).await;
    let editor = signed_in(&app, Role::Editor).await;
    let viewer = signed_in(&app, Role::Viewer).await;
    let before = settings_state(&app).await;

    for (role, browser) in [(Role::Editor, &editor), (Role::Viewer, &viewer)] {
        let csrf = browser.csrf_token().await;

        // Act and assert
        for path in &gets {
            let reply = browser.get(path).await;
            assert_eq!(
                reply.status,
                StatusCode::FORBIDDEN,
                "GET {path} as {role:?}"
            );
            assert!(reply.text.contains("You cannot do that"), "GET {path}");
        }
        for (path, fields) in &posts {
            let mut form: Vec<(&str, &str)> = vec![("csrf_token", csrf.as_str())];
            form.extend(fields.iter().map(|(k, v)| (*k, v.as_str())));
            let reply = browser.post(path, &form).await;
            assert_eq!(
                reply.status,
                StatusCode::FORBIDDEN,
                "POST {path} as {role:?}"
            );
        }
        let page = browser.get("/").await.expect(StatusCode::OK);
        assert!(
            !page.text.contains("href=\"/settings\""),
            "no Settings link"
        );
    }
    assert_eq!(settings_state(&app).await, before, "nothing changed");
}

#[tokio::test]
async fn dashboard_settings_an_admin_generates_imports_and_deletes_dkim_keys_and_sees_their_dns_records()
 {
    // Arrange
    let app = spawn_app().await;
    let admin = signed_in(&app, Role::Admin).await;
    let csrf = admin.csrf_token().await;
    let empty = admin.get("/settings/dkim").await.expect(StatusCode::OK);
    assert!(empty.text.contains("No DKIM keys yet"));

    // Act: generate.
    let created = admin
        .post(
            "/settings/dkim",
            &[
                ("csrf_token", csrf.as_str()),
                ("domain", "Example.com"),
                ("selector", "news2026"),
                ("algorithm", "ed25519-sha256"),
                ("enabled", "on"),
            ],
        )
        .await
        .expect(StatusCode::SEE_OTHER);

    // Assert
    assert_eq!(location(&created), "/settings/dkim?notice=created");
    let (domain, algorithm, enabled): (String, String, bool) = sqlx::query_as(
        "SELECT domain, algorithm, enabled FROM dkim_keys WHERE selector = 'news2026'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(domain, "example.com");
    assert_eq!(algorithm, "ed25519-sha256");
    assert!(enabled);
    let page = admin.get("/settings/dkim").await.expect(StatusCode::OK);
    assert!(page.text.contains("news2026._domainkey.example.com"));
    assert!(page.text.contains("v=DKIM1; k=ed25519; p="));
    assert!(page.text.contains("data-copy="), "a Copy button");

    // Act: import a PEM key, which is never shown back.
    let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n";
    admin
        .post(
            "/settings/dkim",
            &[
                ("csrf_token", csrf.as_str()),
                ("domain", "example.com"),
                ("selector", "imported"),
                ("algorithm", "rsa-sha256"),
                ("private_key", pem),
            ],
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    let (algorithm, enabled): (String, bool) =
        sqlx::query_as("SELECT algorithm, enabled FROM dkim_keys WHERE selector = 'imported'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(algorithm, "ed25519-sha256", "read from the key");
    assert!(!enabled, "unticked, it does not sign yet");

    // Act: bad input is named and the key is not echoed.
    let refused = admin
        .post(
            "/settings/dkim",
            &[
                ("csrf_token", csrf.as_str()),
                ("domain", "example.com"),
                ("selector", "broken"),
                ("algorithm", "rsa-sha256"),
                (
                    "private_key",
                    "-----BEGIN PRIVATE KEY-----\nNOTAKEYATALL\n-----END PRIVATE KEY-----",
                ),
            ],
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!refused.text.contains("NOTAKEYATALL"), "the key is echoed");
    let taken = admin
        .post(
            "/settings/dkim",
            &[
                ("csrf_token", csrf.as_str()),
                ("domain", "example.com"),
                ("selector", "news2026"),
                ("algorithm", "ed25519-sha256"),
            ],
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(taken.text.contains("pick another selector"));

    // Act: delete.
    let id = sqlx::query_scalar::<_, uuid::Uuid>(
        "SELECT uuid FROM dkim_keys WHERE selector = 'news2026'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    hx_post(&admin, &format!("/settings/dkim/{id}/delete"), &csrf)
        .await
        .expect(StatusCode::OK);

    // Assert
    assert_eq!(app.count("SELECT count(*) FROM dkim_keys").await, 1);
}

#[tokio::test]
async fn dashboard_settings_an_admin_sets_the_overall_rate_and_domain_limits_and_sees_throttles() {
    // Arrange
    let app = spawn_app().await;
    let admin = signed_in(&app, Role::Admin).await;
    let csrf = admin.csrf_token().await;
    sqlx::query(
        "INSERT INTO domain_throttles (domain, messages_per_minute, ceiling) VALUES ('outlook.com', 50, 100)",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let rate = || async {
        sqlx::query_scalar::<_, Option<f64>>("SELECT messages_per_second FROM sending_limits")
            .fetch_optional(&app.pool)
            .await
            .unwrap()
            .flatten()
    };

    // Act and assert: the overall rate.
    admin
        .post(
            "/settings/limits/rate",
            &[("csrf_token", csrf.as_str()), ("messages_per_second", "25")],
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    assert_eq!(rate().await, Some(25.0));
    let refused = admin
        .post(
            "/settings/limits/rate",
            &[("csrf_token", csrf.as_str()), ("messages_per_second", "-3")],
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.text.contains("must be a number above 0"),
        "{}",
        refused.text
    );
    assert_eq!(rate().await, Some(25.0));
    admin
        .post(
            "/settings/limits/rate",
            &[
                ("csrf_token", csrf.as_str()),
                ("messages_per_second", "25"),
                ("clear", "1"),
            ],
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    assert_eq!(rate().await, None);

    // Act and assert: a domain's limits, added, edited, removed.
    admin
        .post(
            "/settings/limits/domains",
            &[
                ("csrf_token", csrf.as_str()),
                ("domain", "Gmail.com"),
                ("max_connections", "20"),
                ("messages_per_minute", ""),
            ],
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    admin
        .post(
            "/settings/limits/domains",
            &[
                ("csrf_token", csrf.as_str()),
                ("domain", "gmail.com"),
                ("max_connections", "10"),
                ("messages_per_minute", "600"),
            ],
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    let limits: Vec<(String, Option<i32>, Option<i32>)> =
        sqlx::query_as("SELECT domain, max_connections, messages_per_minute FROM domain_limits")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(limits, [("gmail.com".to_owned(), Some(10), Some(600))]);
    let neither = admin
        .post(
            "/settings/limits/domains",
            &[
                ("csrf_token", csrf.as_str()),
                ("domain", "yahoo.com"),
                ("max_connections", ""),
                ("messages_per_minute", ""),
            ],
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        neither.text.contains("set messages in flight"),
        "{}",
        neither.text
    );
    let page = admin
        .get("/settings/limits?edit=gmail.com")
        .await
        .expect(StatusCode::OK);
    assert!(page.text.contains("Edit the limits for gmail.com"));
    assert!(page.text.contains("outlook.com"), "the throttle is shown");
    assert!(page.text.contains("after 3 quiet periods"), "when it lifts");
    hx_post(&admin, "/settings/limits/domains/gmail.com/delete", &csrf)
        .await
        .expect(StatusCode::OK);
    assert_eq!(app.count("SELECT count(*) FROM domain_limits").await, 0);
}

#[tokio::test]
async fn dashboard_settings_a_new_token_secret_is_shown_once_and_only_its_hash_is_stored() {
    // Arrange
    let app = spawn_app().await;
    let admin = signed_in(&app, Role::Admin).await;
    let csrf = admin.csrf_token().await;

    // Act
    let created = admin
        .post(
            "/settings/tokens",
            &[("csrf_token", csrf.as_str()), ("name", "Shop sign-ups")],
        )
        .await
        .expect(StatusCode::OK);

    // Assert
    let secret = between(&created.text, "data-testid=\"token-secret\">", "<");
    assert!(secret.starts_with("pst_"), "{secret}");
    assert!(created.text.contains("will not be shown again"));
    let (hash, prefix): (Vec<u8>, String) =
        sqlx::query_as("SELECT token_hash, prefix FROM api_tokens WHERE name = 'Shop sign-ups'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(secret.starts_with(&prefix));
    assert_ne!(hash, secret.as_bytes(), "the secret itself is not stored");
    let stored_as_text = app
        .count(&format!(
            "SELECT count(*) FROM api_tokens WHERE encode(token_hash, 'escape') LIKE '%{secret}%' OR prefix = '{secret}'"
        ))
        .await;
    assert_eq!(stored_as_text, 0);
    let works = app
        .client
        .get(format!("{}/api/v1/lists", app.address))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(
        works.status(),
        StatusCode::OK,
        "the secret is a working token"
    );
    let again = admin.get("/settings/tokens").await.expect(StatusCode::OK);
    assert!(!again.text.contains(&secret), "the secret is shown again");
    assert!(again.text.contains("Shop sign-ups"));

    // Act: revoke.
    let id = sqlx::query_scalar::<_, uuid::Uuid>(
        "SELECT uuid FROM api_tokens WHERE name = 'Shop sign-ups'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let revoked = hx_post(&admin, &format!("/settings/tokens/{id}/revoke"), &csrf)
        .await
        .expect(StatusCode::OK);

    // Assert
    assert_eq!(
        revoked.headers["hx-redirect"],
        "/settings/tokens?notice=revoked"
    );
    let refused = app
        .client
        .get(format!("{}/api/v1/lists", app.address))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
}

async fn user_id(app: &TestApp, email: &str) -> String {
    sqlx::query_scalar::<_, uuid::Uuid>("SELECT uuid FROM users WHERE email = $1")
        .bind(email)
        .fetch_one(&app.pool)
        .await
        .unwrap()
        .to_string()
}

async fn role_of(app: &TestApp, email: &str) -> String {
    sqlx::query_scalar::<_, String>("SELECT role FROM users WHERE email = $1")
        .bind(email)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn dashboard_settings_an_admin_creates_users_changes_roles_resets_passwords_and_deletes_users()
 {
    // Arrange
    let app = spawn_app().await;
    let admin = signed_in(&app, Role::Admin).await;
    let csrf = admin.csrf_token().await;

    // Act: a password too short is refused in words, and not echoed.
    let short = admin
        .post(
            "/settings/users",
            &[
                ("csrf_token", csrf.as_str()),
                ("name", "Sam Writer"),
                ("email", "sam@example.com"),
                ("role", "editor"),
                ("password", "short1"),
            ],
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(short.text.contains("must be at least 10 characters"));
    assert!(!short.text.contains("short1"));
    assert_eq!(app.count("SELECT count(*) FROM users").await, 1);

    // Act: create.
    admin
        .post(
            "/settings/users",
            &[
                ("csrf_token", csrf.as_str()),
                ("name", "Sam Writer"),
                ("email", "sam@example.com"),
                ("role", "editor"),
                ("password", "sam's first password"),
            ],
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    let taken = admin
        .post(
            "/settings/users",
            &[
                ("csrf_token", csrf.as_str()),
                ("email", "SAM@example.com"),
                ("role", "viewer"),
                ("password", "another long password"),
            ],
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(taken.text.contains("already signs in with this address"));

    // Assert: Sam can sign in.
    assert_eq!(role_of(&app, "sam@example.com").await, "editor");
    let hash: String =
        sqlx::query_scalar("SELECT password_hash FROM users WHERE email = 'sam@example.com'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(hash.starts_with("$argon2"), "stored hashed");
    let sam =
        crate::dashboard::Browser::signed_in_as(&app, "sam@example.com", "sam's first password")
            .await;
    sam.get("/lists").await.expect(StatusCode::OK);
    let list = admin.get("/settings/users").await.expect(StatusCode::OK);
    assert!(list.text.contains("Sam Writer"));
    assert!(list.text.contains("Never") || list.text.contains("UTC"));

    // Act: change Sam's role; Sam's session ends.
    let sam_id = user_id(&app, "sam@example.com").await;
    admin
        .post(
            &format!("/settings/users/{sam_id}/role"),
            &[("csrf_token", csrf.as_str()), ("role", "viewer")],
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    assert_eq!(role_of(&app, "sam@example.com").await, "viewer");
    sam.get("/lists").await.expect(StatusCode::SEE_OTHER);

    // The same role again changes nothing, and says so: no one is signed out.
    let sam =
        crate::dashboard::Browser::signed_in_as(&app, "sam@example.com", "sam's first password")
            .await;
    let unchanged = admin
        .post(
            &format!("/settings/users/{sam_id}/role"),
            &[("csrf_token", csrf.as_str()), ("role", "viewer")],
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    assert_eq!(
        crate::dashboard::location(&unchanged),
        "/settings/users?notice=role-unchanged"
    );
    sam.get("/lists").await.expect(StatusCode::OK);

    // Act: reset Sam's password; the old one stops working.
    let sam =
        crate::dashboard::Browser::signed_in_as(&app, "sam@example.com", "sam's first password")
            .await;
    admin
        .post(
            &format!("/settings/users/{sam_id}/password"),
            &[
                ("csrf_token", csrf.as_str()),
                ("password", "sam's second password"),
            ],
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    sam.get("/lists").await.expect(StatusCode::SEE_OTHER);
    let sessions = app
        .count("SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.email = 'sam@example.com'")
        .await;
    assert_eq!(sessions, 0);
    crate::dashboard::Browser::signed_in_as(&app, "sam@example.com", "sam's second password").await;

    // Act: delete Sam.
    admin
        .post(
            &format!("/settings/users/{sam_id}/delete"),
            &[("csrf_token", csrf.as_str()), ("confirm", "yes")],
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    assert_eq!(
        app.count("SELECT count(*) FROM users WHERE email = 'sam@example.com'")
            .await,
        0
    );
}

#[tokio::test]
async fn dashboard_settings_the_last_admin_can_neither_demote_nor_delete_themselves() {
    // Arrange
    let app = spawn_app().await;
    let admin = signed_in(&app, Role::Admin).await;
    let csrf = admin.csrf_token().await;
    let me = user_id(&app, "admin@example.com").await;

    // Act
    let demoted = admin
        .post(
            &format!("/settings/users/{me}/role"),
            &[("csrf_token", csrf.as_str()), ("role", "editor")],
        )
        .await
        .expect(StatusCode::CONFLICT);
    let deleted = admin
        .post(
            &format!("/settings/users/{me}/delete"),
            &[("csrf_token", csrf.as_str()), ("confirm", "yes")],
        )
        .await
        .expect(StatusCode::CONFLICT);

    // Assert
    assert!(
        demoted.text.contains("This is the only admin"),
        "{}",
        demoted.text
    );
    assert!(deleted.text.contains("This is the only admin"));
    assert_eq!(role_of(&app, "admin@example.com").await, "admin");
    admin.get("/settings/users").await.expect(StatusCode::OK);

    // With a second admin, the first may step down, and is signed out.
    let other = signed_in(&app, Role::Editor).await;
    let editor_id = user_id(&app, "editor@example.com").await;
    admin
        .post(
            &format!("/settings/users/{editor_id}/role"),
            &[("csrf_token", csrf.as_str()), ("role", "admin")],
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    admin
        .post(
            &format!("/settings/users/{me}/role"),
            &[("csrf_token", csrf.as_str()), ("role", "editor")],
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    assert_eq!(role_of(&app, "admin@example.com").await, "editor");
    admin
        .get("/settings/users")
        .await
        .expect(StatusCode::SEE_OTHER);
    other.get("/lists").await.expect(StatusCode::SEE_OTHER);
}
