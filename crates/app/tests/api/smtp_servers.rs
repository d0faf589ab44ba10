//! `/api/v1/smtp-servers`. A fresh app already holds one server, "default",
//! seeded from `[smtp]`.

use postino_sink::{Sink, SinkConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Reply, TestApp, spawn_app};

const SECRET: &str = "hunter2-Relay-Secret";

async fn create_server(app: &TestApp, body: Value) -> Reply {
    app.post("/api/v1/smtp-servers", body)
        .await
        .expect(StatusCode::CREATED)
}

async fn stored_password(app: &TestApp, id: &str) -> String {
    sqlx::query_scalar::<_, String>("SELECT password FROM smtp_servers WHERE uuid = $1")
        .bind(uuid::Uuid::parse_str(id).unwrap())
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[track_caller]
fn assert_no_secret(reply: &Reply, secret: &str) {
    assert!(
        !reply.text.contains(secret),
        "a reply shows the password: {}",
        reply.text
    );
    assert!(
        !reply.text.contains("\"password\""),
        "a reply has a password field: {}",
        reply.text
    );
}

#[tokio::test]
async fn an_smtp_server_is_created_read_replaced_and_deleted() {
    // Arrange
    let app = spawn_app().await;
    let seeded = app.get("/api/v1/smtp-servers").await.expect(StatusCode::OK);

    // Act
    let created = create_server(
        &app,
        json!({"name": " Relay ", "host": " smtp.example.net ", "port": 587, "tls": "starttls",
               "username": "mailer", "password": SECRET, "max_connections": 4}),
    )
    .await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/smtp-servers/{id}");
    let fetched = app.get(&path).await.expect(StatusCode::OK);
    let replaced = app
        .put(
            &path,
            json!({"name": "Backup relay", "host": "smtp2.example.net", "port": 465, "tls": "tls",
                   "username": "mailer2", "hello_name": "mail.example.org", "enabled": false}),
        )
        .await
        .expect(StatusCode::OK);
    let all = app.get("/api/v1/smtp-servers").await.expect(StatusCode::OK);
    app.delete(&path).await.expect(StatusCode::NO_CONTENT);

    // Assert
    let items = seeded.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["name"], "default");
    assert_eq!(items[0]["has_password"], false);
    let c = &created.body;
    assert_eq!(c["name"], "Relay");
    assert_eq!(c["host"], "smtp.example.net");
    assert_eq!(c["port"], 587);
    assert_eq!(c["tls"], "starttls");
    assert_eq!(c["username"], "mailer");
    assert_eq!(c["has_password"], true);
    assert_eq!(c["max_connections"], 4);
    assert_eq!(c["hello_name"], "localhost", "omitted fields take defaults");
    assert_eq!(c["messages_per_connection"], 1000);
    assert_eq!(c["timeout_secs"], 30);
    assert_eq!(c["enabled"], true);
    assert_eq!(fetched.body, created.body);
    let r = &replaced.body;
    assert_eq!(r["id"], id.as_str());
    assert_eq!(r["name"], "Backup relay");
    assert_eq!(r["host"], "smtp2.example.net");
    assert_eq!(r["port"], 465);
    assert_eq!(r["tls"], "tls");
    assert_eq!(r["hello_name"], "mail.example.org");
    assert_eq!(r["enabled"], false);
    assert_eq!(
        r["max_connections"], 8,
        "PUT replaces: an omitted field is reset to its default"
    );
    assert_eq!(r["has_password"], true);
    let names: Vec<&str> = all.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"default") && names.contains(&"Backup relay"));
    app.get(&path)
        .await
        .expect_problem(StatusCode::NOT_FOUND, "");
    assert_eq!(app.count("SELECT count(*) FROM smtp_servers").await, 1);
}

#[tokio::test]
async fn the_password_is_write_only_and_put_keeps_it_unless_given() {
    // Arrange
    let app = spawn_app().await;
    let base = json!({"name": "Relay", "host": "smtp.example.net", "username": "mailer"});
    let with = |password: Value| {
        let mut body = base.clone();
        body["password"] = password;
        body
    };

    // Act
    let created = create_server(&app, with(json!(SECRET))).await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/smtp-servers/{id}");
    let fetched = app.get(&path).await.expect(StatusCode::OK);
    let listed = app.get("/api/v1/smtp-servers").await.expect(StatusCode::OK);
    let omitted = app.put(&path, base.clone()).await.expect(StatusCode::OK);
    let after_omitted = stored_password(&app, &id).await;
    let null = app
        .put(&path, with(Value::Null))
        .await
        .expect(StatusCode::OK);
    let after_null = stored_password(&app, &id).await;
    let changed = app
        .put(&path, with(json!("another-Secret-9")))
        .await
        .expect(StatusCode::OK);
    let after_change = stored_password(&app, &id).await;
    let cleared = app.put(&path, with(json!(""))).await.expect(StatusCode::OK);
    let after_clear = stored_password(&app, &id).await;

    // Assert
    for reply in [&created, &fetched, &listed, &omitted, &null] {
        assert_no_secret(reply, SECRET);
    }
    assert_no_secret(&changed, "another-Secret-9");
    assert_eq!(after_omitted, SECRET, "a PUT without password keeps it");
    assert_eq!(omitted.body["has_password"], true);
    assert_eq!(after_null, SECRET, "a PUT with a null password keeps it");
    assert_eq!(null.body["has_password"], true);
    assert_eq!(after_change, "another-Secret-9");
    assert_eq!(changed.body["has_password"], true);
    assert_eq!(after_clear, "", "an empty password clears it");
    assert_eq!(cleared.body["has_password"], false);
}

#[tokio::test]
async fn invalid_smtp_servers_are_refused_naming_the_field() {
    // Arrange
    let app = spawn_app().await;
    let valid = json!({"name": "Relay", "host": "smtp.example.net"});
    let cases = [
        ("port", json!(0)),
        ("port", json!(70000)),
        ("tls", json!("ssl")),
        ("max_connections", json!(0)),
        ("messages_per_connection", json!(0)),
        ("timeout_secs", json!(0)),
        ("host", json!("")),
        ("host", json!("smtp example net")),
        ("username", json!("mailer\r\nRCPT TO:<x@y.z>")),
        ("username", json!("mailer\nx")),
        ("hello_name", json!("a b")),
        ("name", json!("")),
        ("name", json!("x".repeat(101))),
        ("password", json!(12)),
    ];
    let existing = create_server(
        &app,
        json!({"name": "Existing", "host": "smtp.example.net"}),
    )
    .await
    .body["id"]
        .as_str()
        .unwrap()
        .to_owned();

    for (field, value) in cases {
        let mut body = valid.clone();
        body[field] = value;

        // Act
        let created = app.post("/api/v1/smtp-servers", body.clone()).await;
        let replaced = app
            .put(&format!("/api/v1/smtp-servers/{existing}"), body)
            .await;

        // Assert
        created.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, field);
        replaced.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, field);
    }
    app.post("/api/v1/smtp-servers", json!({"name": "Relay"}))
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "host");
    app.post("/api/v1/smtp-servers", json!({"host": "smtp.example.net"}))
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "name");
    let mut unknown = valid.clone();
    unknown["passwd"] = json!("x");
    app.post("/api/v1/smtp-servers", unknown)
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "passwd");
    assert_eq!(
        app.count("SELECT count(*) FROM smtp_servers").await,
        2,
        "nothing invalid was stored"
    );
    let stored = app
        .get(&format!("/api/v1/smtp-servers/{existing}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        stored.body["name"], "Existing",
        "nothing invalid replaced it"
    );
}

#[tokio::test]
async fn a_duplicate_name_is_a_conflict_on_name() {
    // Arrange
    let app = spawn_app().await;
    let other = create_server(&app, json!({"name": "Relay", "host": "smtp.example.net"}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Act
    let created = app
        .post(
            "/api/v1/smtp-servers",
            json!({"name": " default ", "host": "smtp.example.net"}),
        )
        .await;
    let renamed = app
        .put(
            &format!("/api/v1/smtp-servers/{other}"),
            json!({"name": "default", "host": "smtp.example.net"}),
        )
        .await;

    // Assert
    created.expect_problem(StatusCode::CONFLICT, "name");
    renamed.expect_problem(StatusCode::CONFLICT, "name");
    assert_eq!(app.count("SELECT count(*) FROM smtp_servers").await, 2);
}

#[tokio::test]
async fn the_connection_test_authenticates_against_a_real_smtp_server() {
    // Arrange
    let sink = Sink::start(SinkConfig::default()).await.unwrap();
    let app = spawn_app().await;
    let id = create_server(
        &app,
        json!({"name": "Sink", "host": "127.0.0.1", "port": sink.addr().port(),
               "username": "mailer", "password": SECRET}),
    )
    .await
    .body["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Act
    let reply = app
        .post(&format!("/api/v1/smtp-servers/{id}/test"), json!({}))
        .await
        .expect(StatusCode::OK);

    // Assert
    assert_eq!(reply.body["ok"], true, "{}", reply.text);
    assert_eq!(reply.body["authenticated"], true);
    assert_eq!(reply.body["encrypted"], false);
    assert_eq!(reply.body["server_name"], "postino-sink");
    assert!(reply.body["error"].is_null());
    assert!(!reply.text.contains(SECRET));
    assert!(sink.counts().connections >= 1, "it really connected");
    assert!(sink.messages().is_empty(), "a test sends nothing");
}

#[tokio::test]
async fn the_connection_test_reports_a_closed_port_as_not_ok() {
    // Arrange
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let app = spawn_app().await;
    let id = create_server(
        &app,
        json!({"name": "Nowhere", "host": "127.0.0.1", "port": closed,
               "username": "mailer", "password": SECRET}),
    )
    .await
    .body["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Act
    let reply = app
        .post(&format!("/api/v1/smtp-servers/{id}/test"), json!({}))
        .await
        .expect(StatusCode::OK);

    // Assert
    assert_eq!(reply.body["ok"], false, "{}", reply.text);
    assert_eq!(reply.body["authenticated"], false);
    assert!(reply.body["server_name"].is_null());
    let error = reply.body["error"].as_str().unwrap();
    assert!(error.contains("connect"), "{error}");
    assert!(error.contains(&closed.to_string()), "{error}");
    assert!(!reply.text.contains(SECRET));
}

#[tokio::test]
async fn unknown_smtp_server_ids_are_not_found() {
    let app = spawn_app().await;
    let body = json!({"name": "Relay", "host": "smtp.example.net"});
    for id in [uuid::Uuid::new_v4().to_string(), "not-a-uuid".to_owned()] {
        let path = format!("/api/v1/smtp-servers/{id}");
        app.get(&path)
            .await
            .expect_problem(StatusCode::NOT_FOUND, "");
        app.put(&path, body.clone())
            .await
            .expect_problem(StatusCode::NOT_FOUND, "");
        app.delete(&path)
            .await
            .expect_problem(StatusCode::NOT_FOUND, "");
        app.post(&format!("{path}/test"), json!({}))
            .await
            .expect_problem(StatusCode::NOT_FOUND, "");
    }
    assert_eq!(app.count("SELECT count(*) FROM smtp_servers").await, 1);
}
