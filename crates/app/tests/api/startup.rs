//! Start-up, configuration and the command line.

use std::process::{Command, Stdio};
use std::time::Duration;

use postino_app::{Application, Settings};
use postino_testkit::TestDb;
use reqwest::StatusCode;

use crate::helpers::test_settings;

fn postino() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_postino"));
    cmd.env_remove("DATABASE_URL")
        .env_remove("POSTINO_CONFIG")
        .env("RUST_LOG", "warn");
    cmd
}

#[tokio::test]
async fn start_up_creates_a_missing_database_and_migrates_it() {
    let db = TestDb::not_yet_created().await.unwrap();
    let app = Application::build(test_settings(&db)).await.unwrap();
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_name IN ('lists', 'subscribers', 'api_tokens')",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(tables, 3);
    app.pool().close().await;
}

#[tokio::test]
async fn bad_settings_stop_start_up_with_a_message_naming_them() {
    let db = TestDb::not_yet_created().await.unwrap();

    let mut bad_url = test_settings(&db);
    bad_url.database.url = "mysql://nope".to_owned();
    let mut unreachable = test_settings(&db);
    unreachable.database.url = "postgres://postgres@127.0.0.1:1/postino".to_owned();
    unreachable.database.connect_timeout_secs = 1;
    let mut bad_listen = test_settings(&db);
    bad_listen.http.listen = "localhost-ish".to_owned();

    let bad_url = Application::build(bad_url).await.unwrap_err();
    let unreachable = Application::build(unreachable).await.unwrap_err();
    let bad_listen = Application::build(bad_listen).await.unwrap_err();

    assert!(
        format!("{bad_url:#}").contains("database.url"),
        "{bad_url:#}"
    );
    assert!(
        format!("{unreachable:#}").contains("cannot reach PostgreSQL"),
        "{unreachable:#}"
    );
    assert!(
        format!("{bad_listen:#}").contains("http.listen"),
        "{bad_listen:#}"
    );
}

#[test]
fn the_command_line_reports_bad_configuration_in_one_line_without_a_panic() {
    let out = postino()
        .arg("migrate")
        .env("POSTINO__DATABASE__MAX_CONNECTIONS", "many")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.to_lowercase().contains("max_connections"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"));

    let out = postino()
        .arg("migrate")
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/x")
        .env("POSTINO__DATABASE__CONNECT_TIMEOUT_SECS", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("cannot reach PostgreSQL at postgres://postgres@127.0.0.1:1/x"),
        "{stderr}"
    );
}

#[test]
fn settings_come_from_defaults_then_the_file_then_the_environment() {
    let dir = std::env::temp_dir().join(format!("postino-cfg-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("postino.toml");
    std::fs::write(
        &file,
        "[http]\nlisten = \"127.0.0.1:9000\"\nroot_url = \"https://news.example.com\"\n[log]\nformat = \"json\"\n",
    )
    .unwrap();
    // Settings::load reads the process environment; run it in a child so the
    // variables set here cannot leak into other tests.
    let out = postino()
        .args(["--config", file.to_str().unwrap(), "config"])
        .env("POSTINO__HTTP__LISTEN", "127.0.0.1:9001")
        .env("DATABASE_URL", "postgres://u:hidden@db.example.com/p")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let effective = String::from_utf8(out.stdout).unwrap();
    assert!(
        effective.contains("127.0.0.1:9001"),
        "the environment wins: {effective}"
    );
    assert!(
        effective.contains("https://news.example.com"),
        "the file fills in: {effective}"
    );
    assert!(effective.contains("Json"), "{effective}");
    assert!(
        effective.contains("db.example.com") && !effective.contains("hidden"),
        "{effective}"
    );

    let loaded = Settings::load(Some(&file)).unwrap();
    assert_eq!(loaded.http.listen, "127.0.0.1:9000");
    assert_eq!(loaded.http.root_url, "https://news.example.com");
    assert_eq!(
        loaded.database.max_connections, 20,
        "defaults fill the rest"
    );

    let missing = Settings::load(Some(&dir.join("nope.toml"))).unwrap_err();
    assert!(missing.to_string().contains("nope.toml"));
    std::fs::write(&file, "[http]\nlisten = 5\n").unwrap();
    let wrong = Settings::load(Some(&file)).unwrap_err();
    assert!(wrong.to_string().contains("listen"), "{wrong}");
    std::fs::write(&file, "[htp]\nlisten = \"x\"\n").unwrap();
    let unknown = Settings::load(Some(&file)).unwrap_err();
    assert!(unknown.to_string().contains("htp"), "{unknown}");
}

#[test]
fn database_settings_never_print_the_password() {
    let mut settings = Settings::default();
    settings.database.url = "postgres://postino:s3cr3t@db.example.com/postino".to_owned();
    let printed = format!("{settings:?}");
    assert!(!printed.contains("s3cr3t"), "{printed}");
    assert!(printed.contains("db.example.com"));
}

#[tokio::test]
async fn token_create_prints_a_working_token_alone_on_the_last_line() {
    // Arrange
    let db = TestDb::new().await.unwrap();

    // Act
    let out = postino()
        .args(["token", "create", "--name", "ci"])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    let user = postino()
        .args([
            "user",
            "create",
            "--email",
            "Admin@Example.com",
            "--role",
            "editor",
            "--password-stdin",
        ])
        .env("DATABASE_URL", &db.url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(b"a long enough password\n")?;
            child.wait_with_output()
        })
        .unwrap();
    let short = postino()
        .args([
            "user",
            "create",
            "--email",
            "b@example.com",
            "--password-stdin",
        ])
        .env("DATABASE_URL", &db.url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(b"short\n")?;
            child.wait_with_output()
        })
        .unwrap();

    // Assert
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let token = stdout.trim_end().lines().last().unwrap();
    assert!(token.starts_with("pst_") && !token.contains(' '));
    let mut conn = db.connect().await.unwrap();
    let found = postino_db::api_tokens::authenticate(&mut conn, token)
        .await
        .unwrap();
    assert!(found.is_some());

    assert!(
        user.status.success(),
        "{}",
        String::from_utf8_lossy(&user.stderr)
    );
    let stored: (String, String, String) =
        sqlx::query_as("SELECT email, role, password_hash FROM users")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(stored.0, "Admin@example.com");
    assert_eq!(stored.1, "editor");
    assert!(stored.2.starts_with("$argon2id$"));
    assert!(password_auth::verify_password("a long enough password", &stored.2).is_ok());

    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 10 characters"));
}

#[tokio::test]
async fn serve_shuts_down_cleanly_on_sigterm() {
    // Arrange
    let db = TestDb::new().await.unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = postino()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", &db.url)
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
        {
            up = r.status() == StatusCode::OK;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "server did not come up");

    // Act
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let mut status = None;
    for _ in 0..100 {
        if let Some(s) = child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Assert
    assert!(killed.success());
    let status = status.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("server did not stop within 10 s of SIGTERM")
    });
    assert!(status.success(), "exit status {status:?}");
}
