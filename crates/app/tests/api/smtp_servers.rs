//! `/api/v1/smtp-servers`. A fresh app already holds one server, "default",
//! seeded from `[smtp]`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use postino_sink::{Sink, SinkConfig};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::helpers::{Reply, TestApp, spawn_app, spawn_app_with, test_settings};

const SECRET: &str = "hunter2-Relay-Secret";

async fn create_server(app: &TestApp, body: Value) -> Reply {
    app.post("/api/v1/smtp-servers", body)
        .await
        .expect(StatusCode::CREATED)
}

/// The relay's password as stored, opened with the installation's key;
/// checks on the way that the row holds it only sealed.
async fn stored_password(app: &TestApp, id: &str) -> String {
    let (plain, sealed): (String, Option<Vec<u8>>) =
        sqlx::query_as("SELECT password, password_sealed FROM smtp_servers WHERE uuid = $1")
            .bind(uuid::Uuid::parse_str(id).unwrap())
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(plain, "", "no password is stored in plain text");
    let vault = postino_app::relay_passwords(&test_settings(&app.db), &app.pool)
        .await
        .unwrap();
    vault
        .open(sealed.as_deref())
        .unwrap()
        .expose_secret()
        .to_owned()
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
                   "username": "mailer2", "password": SECRET, "hello_name": "mail.example.org",
                   "enabled": false}),
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

/// A server of the attacker's: it greets, offers AUTH, accepts whatever
/// credentials it is given and keeps every line it received.
struct Listener {
    port: u16,
    lines: Arc<Mutex<Vec<String>>>,
    connections: Arc<Mutex<u32>>,
}

impl Listener {
    async fn start() -> Self {
        let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = socket.local_addr().unwrap().port();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(0));
        let (kept, counted) = (Arc::clone(&lines), Arc::clone(&connections));
        tokio::spawn(async move {
            while let Ok((stream, _)) = socket.accept().await {
                *counted.lock().unwrap() += 1;
                let kept = Arc::clone(&kept);
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut read = BufReader::new(read);
                    write.write_all(b"220 attacker ESMTP\r\n").await.unwrap();
                    let mut line = String::new();
                    while read.read_line(&mut line).await.unwrap_or(0) > 0 {
                        let command = line.trim_end().to_owned();
                        kept.lock().unwrap().push(command.clone());
                        let upper = command.to_ascii_uppercase();
                        let reply: &[u8] = if upper.starts_with("EHLO") {
                            b"250-attacker\r\n250 AUTH PLAIN LOGIN\r\n"
                        } else if upper.starts_with("AUTH") {
                            b"235 2.7.0 ok\r\n"
                        } else if upper.starts_with("QUIT") {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            break;
                        } else {
                            b"250 ok\r\n"
                        };
                        if write.write_all(reply).await.is_err() {
                            break;
                        }
                        line.clear();
                    }
                });
            }
        });
        Self {
            port,
            lines,
            connections,
        }
    }

    fn connections(&self) -> u32 {
        *self.connections.lock().unwrap()
    }

    /// Every password that arrived, from AUTH PLAIN.
    fn passwords(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| l.strip_prefix("AUTH PLAIN "))
            .filter_map(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
            .filter_map(|raw| {
                String::from_utf8(raw)
                    .ok()
                    .and_then(|s| s.rsplit('\0').next().map(str::to_owned))
            })
            .collect()
    }

    /// Waits for an AUTH to arrive, with a deadline.
    async fn wait_for_password(&self) -> Vec<String> {
        for _ in 0..200 {
            let passwords = self.passwords();
            if !passwords.is_empty() {
                return passwords;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no AUTH arrived: {:?}", self.lines.lock().unwrap());
    }
}

#[tokio::test]
async fn a_relay_pointed_elsewhere_needs_its_password_again_so_the_stored_one_never_leaves() {
    // Arrange: the real relay, which takes only the real credentials, and
    // a server of the attacker's.
    let real = Sink::start(SinkConfig {
        credentials: Some(("mailer".to_owned(), SECRET.to_owned())),
        ..SinkConfig::default()
    })
    .await
    .unwrap();
    let attacker = Listener::start().await;
    let app = spawn_app().await;
    let relay = json!({"name": "Relay", "host": "127.0.0.1", "port": real.addr().port(),
                       "username": "mailer", "password": SECRET});
    let id = create_server(&app, relay.clone()).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/smtp-servers/{id}");
    let mut moved = relay.clone();
    moved.as_object_mut().unwrap().remove("password");
    moved["host"] = json!("localhost");
    moved["port"] = json!(attacker.port);

    // Act: move the relay without the password, then press "test".
    let refused = app.put(&path, moved.clone()).await;
    let mut other_user = relay.clone();
    other_user.as_object_mut().unwrap().remove("password");
    other_user["username"] = json!("someone-else");
    let refused_user = app.put(&path, other_user).await;
    let mut downgraded = relay.clone();
    downgraded.as_object_mut().unwrap().remove("password");
    downgraded["tls"] = json!("none");
    let same_tls = app.put(&path, downgraded).await;
    let test = app
        .post(&format!("{path}/test"), json!({}))
        .await
        .expect(StatusCode::OK);

    // Assert: refused naming the password; the test still went to the real relay.
    refused.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "password");
    refused_user.expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "password");
    same_tls.expect(StatusCode::OK); // none was already the mode: nothing weaker
    assert_eq!(test.body["ok"], true, "{}", test.text);
    assert_eq!(test.body["authenticated"], true);
    let stored = app.get(&path).await.expect(StatusCode::OK);
    assert_eq!(stored.body["port"], real.addr().port());
    assert_eq!(stored_password(&app, &id).await, SECRET);
    assert_eq!(attacker.connections(), 0, "{:?}", attacker.passwords());

    // Act: moved with a password of the mover's own, it does reach there.
    moved["password"] = json!("mover-typed-this");
    app.put(&path, moved).await.expect(StatusCode::OK);
    let test = app
        .post(&format!("{path}/test"), json!({}))
        .await
        .expect(StatusCode::OK);

    // Assert: only the new password arrived; the old one never did.
    assert_eq!(test.body["ok"], true, "{}", test.text);
    let passwords = attacker.wait_for_password().await;
    assert_eq!(passwords, vec!["mover-typed-this".to_owned()]);
    assert!(
        !attacker
            .lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains(SECRET)),
        "the stored password reached the new host"
    );
}

#[tokio::test]
async fn relay_passwords_are_stored_sealed_and_plain_rows_are_sealed_at_start() {
    // Arrange: a relay stored through the API, and one written in plain
    // text the way relays were stored before passwords were sealed.
    let sink = Sink::start(SinkConfig {
        credentials: Some(("mailer".to_owned(), "old-Plain-Secret".to_owned())),
        ..SinkConfig::default()
    })
    .await
    .unwrap();
    let app = spawn_app().await;
    let id = create_server(
        &app,
        json!({"name": "Relay", "host": "smtp.example.net", "username": "mailer",
               "password": SECRET}),
    )
    .await
    .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let old = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO smtp_servers (uuid, name, host, port, tls, username, password, hello_name,
                                   max_connections, messages_per_connection, timeout_secs)
         VALUES ($1, 'Old', '127.0.0.1', $2, 'none', 'mailer', 'old-Plain-Secret', 'localhost', 1, 10, 5)",
    )
    .bind(old)
    .bind(i32::from(sink.addr().port()))
    .execute(&app.pool)
    .await
    .unwrap();

    // Act: what every start (and `postino migrate`) does first.
    let sealed_now = postino_app::seal_relay_passwords(&test_settings(&app.db), &app.pool)
        .await
        .unwrap();
    let again = postino_app::seal_relay_passwords(&test_settings(&app.db), &app.pool)
        .await
        .unwrap();
    let test = app
        .post(&format!("/api/v1/smtp-servers/{old}/test"), json!({}))
        .await
        .expect(StatusCode::OK);

    // Assert
    assert_eq!((sealed_now, again), (1, 0));
    let rows: Vec<(String, Option<Vec<u8>>)> = sqlx::query_as(
        "SELECT password, password_sealed FROM smtp_servers WHERE name <> 'default'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 2);
    for (plain, sealed) in &rows {
        assert_eq!(plain, "");
        let sealed = sealed.as_ref().expect("a sealed password");
        for secret in [SECRET, "old-Plain-Secret"] {
            assert!(
                !sealed.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} readable in the row"
            );
        }
    }
    assert_eq!(stored_password(&app, &id).await, SECRET);
    assert_eq!(
        stored_password(&app, &old.to_string()).await,
        "old-Plain-Secret"
    );
    assert_eq!(
        test.body["ok"], true,
        "the sealed password still logs in: {}",
        test.text
    );
    assert_eq!(test.body["authenticated"], true);
}

#[tokio::test]
async fn the_connection_test_gives_one_answer_for_every_way_a_connection_fails() {
    // Arrange: a closed port, a port that accepts and hangs up, one that
    // answers something else than SMTP, and one that never says anything.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let start = |greeting: Option<&'static [u8]>, hang_up: bool| async move {
        let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = socket.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut stream, _)) = socket.accept().await {
                if let Some(greeting) = greeting {
                    let _ = stream.write_all(greeting).await;
                }
                if !hang_up {
                    held.push(stream);
                }
            }
        });
        port
    };
    let hangs_up = start(None, true).await;
    let not_smtp = start(Some(b"SSH-2.0-OpenSSH_9.6\r\n"), false).await;
    let silent = start(None, false).await;
    let app = spawn_app().await;

    // Act
    let mut errors = Vec::new();
    for (name, port) in [
        ("closed", closed),
        ("hangs up", hangs_up),
        ("not smtp", not_smtp),
        ("silent", silent),
    ] {
        let id = create_server(
            &app,
            json!({"name": name, "host": "127.0.0.1", "port": port, "timeout_secs": 1}),
        )
        .await
        .body["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let reply = app
            .post(&format!("/api/v1/smtp-servers/{id}/test"), json!({}))
            .await
            .expect(StatusCode::OK);
        assert_eq!(reply.body["ok"], false, "{name}: {}", reply.text);
        let error = reply.body["error"].as_str().unwrap().to_owned();
        errors.push(error.replace(&port.to_string(), "PORT"));
    }

    // Assert: the same words whatever happened on the port.
    assert!(errors[0].contains("127.0.0.1:PORT"), "{errors:?}");
    assert!(errors.iter().all(|e| *e == errors[0]), "{errors:#?}");
}

#[tokio::test]
async fn with_private_hosts_disallowed_relays_on_internal_addresses_are_refused() {
    // Arrange: the seeded relay (127.0.0.1:2525) predates the setting.
    let app = spawn_app_with(|s| s.http.allow_private_relay_hosts = false).await;
    let seeded = app.get("/api/v1/smtp-servers").await.expect(StatusCode::OK);
    let seeded = seeded.body["items"][0]["id"].as_str().unwrap().to_owned();

    // Act and assert
    for host in [
        "127.0.0.1",
        "localhost",
        "10.0.0.7",
        "192.168.1.20",
        "169.254.169.254",
        "[::1]",
        "::1",
    ] {
        app.post(
            "/api/v1/smtp-servers",
            json!({"name": format!("Internal {host}"), "host": host, "port": 25}),
        )
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "host");
    }
    app.post(&format!("/api/v1/smtp-servers/{seeded}/test"), json!({}))
        .await
        .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "host");
    app.put(
        &format!("/api/v1/smtp-servers/{seeded}"),
        json!({"name": "default", "host": "127.0.0.1", "port": 2525, "tls": "none"}),
    )
    .await
    .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "host");
    app.post(
        "/api/v1/smtp-servers",
        json!({"name": "Public", "host": "192.0.2.10", "port": 25}),
    )
    .await
    .expect(StatusCode::CREATED);
    assert_eq!(app.count("SELECT count(*) FROM smtp_servers").await, 2);
}
