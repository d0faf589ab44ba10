//! The dashboard in a real browser: headless Chromium (Debian's package)
//! driven by playwright-core through `web/tests/dashboard.mjs`, against the
//! real application on a random port with a fresh database, its sender
//! and scheduler running against an in-process SMTP sink.
//!
//! What the browser needs is set up on first run, never skipped: `npm ci` in
//! `web/` when `node_modules` is missing, and `apt-get install -y chromium`
//! when `/usr/bin/chromium` is missing. Screenshots of every page visited, at
//! desktop and phone widths, go to `target/screenshots/` in the workspace.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use postino_app::{Application, Settings};
use postino_domain::{Password, Role};
use postino_sink::{Sink, SinkConfig};
use postino_testkit::TestDb;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

const CHROMIUM: &str = "/usr/bin/chromium";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn report(what: &str, output: &Output) -> String {
    format!(
        "{what} exited with {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

async fn run(what: &str, command: &mut Command, limit: Duration) -> Output {
    let output = tokio::time::timeout(limit, command.kill_on_drop(true).output())
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {limit:?}"))
        .unwrap_or_else(|e| panic!("{what} could not be started: {e}"));
    assert!(output.status.success(), "{}", report(what, &output));
    output
}

/// playwright-core, from the committed lockfile.
async fn ensure_node_modules(web: &Path) {
    if web.join("node_modules/playwright-core").is_dir() {
        return;
    }
    run(
        "npm ci (in web/)",
        Command::new("npm")
            .arg("ci")
            .arg("--no-audit")
            .arg("--no-fund")
            .current_dir(web),
        Duration::from_secs(300),
    )
    .await;
}

/// Debian's Chromium, installed once (the tests run as root).
async fn ensure_chromium() {
    if Path::new(CHROMIUM).exists() {
        return;
    }
    let install = || {
        let mut command = Command::new("apt-get");
        command
            .args(["install", "-y", "--no-install-recommends", "chromium"])
            .env("DEBIAN_FRONTEND", "noninteractive");
        command
    };
    let first = install().kill_on_drop(true).output().await;
    if !matches!(&first, Ok(output) if output.status.success()) {
        // A fresh machine may have no package lists yet.
        run(
            "apt-get update",
            Command::new("apt-get").arg("update"),
            Duration::from_secs(300),
        )
        .await;
        run(
            "apt-get install chromium",
            &mut install(),
            Duration::from_secs(600),
        )
        .await;
    }
    assert!(
        Path::new(CHROMIUM).exists(),
        "chromium was installed but {CHROMIUM} is missing"
    );
}

/// A month of history, so the pages show what a working installation looks
/// like: a list of 1,240 people, two campaigns sent in the last 30 days and
/// one sending now (stuck at 60%: its other mail is due tomorrow), plus "Early readers", 40 people the test's own campaign
/// goes to.
async fn seed_history(pool: &sqlx::PgPool) {
    let statements = [
        "INSERT INTO lists (uuid, name, description, opt_in, visibility, tags)
         VALUES (gen_random_uuid(), 'Customers', 'Everyone who bought from the shop', 'single', 'private', ARRAY['customers'])",
        "INSERT INTO subscribers (uuid, email, name)
         SELECT gen_random_uuid(), 'reader' || n || '@example.com', 'Reader ' || n FROM generate_series(1, 1240) n",
        "INSERT INTO subscriber_lists (list_id, subscriber_id, status)
         SELECT l.id, s.id, CASE WHEN s.id % 17 = 0 THEN 'unsubscribed'
                                 WHEN s.id % 11 = 0 THEN 'unconfirmed' ELSE 'confirmed' END
         FROM lists l CROSS JOIN subscribers s",
        "INSERT INTO campaigns (uuid, name, subject, from_email, body, body_format, status, started_at, finished_at, enqueued_at)
         VALUES (gen_random_uuid(), 'Autumn newsletter', 'Autumn news', 'news@example.com', 'Hello', 'markdown',
                 'finished', now() - interval '19 days', now() - interval '18 days', now() - interval '19 days'),
                (gen_random_uuid(), 'Black Friday preview', 'A first look', 'news@example.com', 'Hello', 'markdown',
                 'finished', now() - interval '6 days', now() - interval '5 days', now() - interval '6 days'),
                (gen_random_uuid(), 'Weekly digest #48', 'This week', 'news@example.com', 'Hello', 'markdown',
                 'running', now() - interval '1 hour', NULL, now() - interval '1 hour')",
        "INSERT INTO campaign_lists (campaign_id, list_id) SELECT c.id, l.id FROM campaigns c CROSS JOIN lists l",
        // Finished campaigns: most mail goes out on the first day, the rest
        // (retries, slow domains) on the next.
        "INSERT INTO deliveries (campaign_id, subscriber_id, status, sent_at)
         SELECT c.id, s.id, 'sent', c.started_at + CASE WHEN s.id % 5 = 0 THEN interval '1 day' ELSE interval '0' END
         FROM campaigns c CROSS JOIN subscribers s WHERE c.status = 'finished'",
        // The rest of the running one waits for a retry tomorrow, so the
        // sender running here leaves it at 60% for the screenshots.
        "INSERT INTO deliveries (campaign_id, subscriber_id, status, sent_at, run_at)
         SELECT c.id, s.id, CASE WHEN s.id % 5 < 3 THEN 'sent' ELSE 'queued' END,
                CASE WHEN s.id % 5 < 3 THEN now() END, now() + interval '1 day'
         FROM campaigns c CROSS JOIN subscribers s WHERE c.status = 'running'",
        "INSERT INTO lists (uuid, name, description, opt_in, visibility)
         VALUES (gen_random_uuid(), 'Early readers', 'People who asked for news first', 'single', 'private')",
        "INSERT INTO subscriber_lists (list_id, subscriber_id, status)
         SELECT l.id, s.id, 'confirmed' FROM lists l
         JOIN subscribers s ON s.email IN (SELECT 'reader' || n || '@example.com' FROM generate_series(1, 40) n)
         WHERE l.name = 'Early readers'",
        // One reader with a history worth a page: attributes, a bounce.
        "UPDATE subscribers SET attributes = '{\"city\": \"Rome\", \"plan\": \"pro\", \"orders\": 7}'
         WHERE email = 'reader1234@example.com'",
        "INSERT INTO bounces (subscriber_id, campaign_id, kind, source, code, reply)
         SELECT s.id, c.id, 'soft', 'smtp', 452, '4.2.2 Mailbox full, try again later'
         FROM subscribers s, campaigns c
         WHERE s.email = 'reader1234@example.com' AND c.name = 'Black Friday preview'",
        // An admin for the settings pages, with the editor's password.
        "INSERT INTO users (uuid, email, name, password_hash, role)
         SELECT gen_random_uuid(), 'admin@example.com', 'Alex Admin', password_hash, 'admin'
         FROM users WHERE email = 'marketer@example.com'",
        "INSERT INTO api_tokens (uuid, name, token_hash, prefix)
         VALUES (gen_random_uuid(), 'CRM sync', sha256('pst_seeded'::bytea), 'pst_seed')",
        "INSERT INTO domain_limits (domain, max_connections, messages_per_minute)
         VALUES ('gmail.com', 20, 600)",
        "INSERT INTO domain_throttles (domain, messages_per_minute, ceiling, slowed_at)
         VALUES ('outlook.com', 150, 600, now() - interval '4 minutes')",
    ];
    for sql in statements {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(pool)
            .await
            .unwrap_or_else(|e| panic!("seeding failed: {e}\n{sql}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_works_in_a_real_browser() {
    // Arrange: the browser's tools, then the application and a login.
    let web = workspace().join("web");
    ensure_node_modules(&web).await;
    ensure_chromium().await;
    let db = TestDb::new().await.expect("test database");
    let sink = Sink::start(SinkConfig::default())
        .await
        .expect("sink starts");
    let mut settings = Settings::default();
    settings.templates.sandbox_program = Some(env!("CARGO_BIN_EXE_postino").into());
    settings.database.url = db.url.clone();
    settings.database.max_connections = 8;
    settings.http.listen = "127.0.0.1:0".to_owned();
    // Mail goes to the sink, and the sender and scheduler react in
    // milliseconds so the progress bar is seen to finish.
    settings.smtp.port = sink.addr().port();
    settings.smtp.max_connections = 4;
    settings.scheduler.tick_ms = 50;
    settings.sender.idle_poll = Duration::from_millis(50);
    settings.sender.reload_servers = Duration::from_millis(100);
    settings.sender.record_interval = Duration::from_millis(20);
    let app = Application::build(settings)
        .await
        .expect("application starts");
    let base = format!("http://127.0.0.1:{}", app.port());
    let password = "browser test password";
    postino_app::commands::create_user(
        app.pool(),
        "marketer@example.com",
        "Morgan Marketer",
        Password::parse(password).unwrap(),
        Role::Editor,
    )
    .await
    .unwrap();
    seed_history(app.pool()).await;
    let pool = app.pool().clone();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.run(postino_app::Role::All, shutdown.clone()));
    let screenshots = workspace().join("target/screenshots");
    // Every shot checked below must come from this run.
    if screenshots.exists() {
        std::fs::remove_dir_all(&screenshots).unwrap();
    }

    // Act
    let output = run(
        "node web/tests/dashboard.mjs",
        Command::new("node")
            .arg(web.join("tests/dashboard.mjs"))
            .arg(&base)
            .arg("marketer@example.com")
            .arg(password)
            .arg(&screenshots)
            .current_dir(workspace()),
        Duration::from_secs(180),
    )
    .await;

    // Assert
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("dashboard browser test passed"),
        "{}",
        report("node web/tests/dashboard.mjs", &output)
    );
    for page in [
        "login",
        "overview",
        "lists",
        "list-edit",
        "subscribers",
        "subscriber",
        "subscriber-new",
        "import",
        "import-done",
        "templates",
        "template-editor",
        "campaigns",
        "campaign-editor",
        "campaign-editor-phone-preview",
        "campaign-finished",
        "campaign-recipients",
        "settings-smtp",
        "settings-dkim",
        "settings-limits",
        "settings-tokens",
        "settings-users",
    ] {
        for width in ["desktop", "phone"] {
            let shot = screenshots.join(format!("{page}-{width}.png"));
            assert!(shot.is_file(), "no screenshot {}", shot.display());
        }
    }
    let received = sink.per_recipient();
    assert_eq!(
        received.get("me@example.com"),
        Some(&1),
        "the test send reached the sink"
    );
    let delivered: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM deliveries d JOIN campaigns c ON c.id = d.campaign_id
         WHERE c.name = 'Spring launch' AND d.kind = 'campaign' AND d.status = 'sent'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(delivered, 40, "every early reader got the campaign");
    println!("screenshots in {}", screenshots.display());
    shutdown.cancel();
    let _ = server.await;
}
