//! `login-timing`: how long a failed dashboard sign-in takes, for an
//! address with no account and for a real account with a short or a wrong
//! long password. The answers must not tell these apart, so neither may
//! their timing: each does one lookup, one throttle update and one argon2
//! check. Medians of `tries` each, interleaved so drift on a shared machine
//! hits every case alike; ratios against the unknown address.
//!
//! The sign-in throttle would answer later tries without any hash (that is
//! its job), so it is reset before each timed try, outside the timing; the
//! per-client-address limit is turned off for the run.

use std::time::{Duration, Instant};

use anyhow::Context;
use postino_app::{Application, Settings};
use postino_testkit::TestDb;
use tokio_util::sync::CancellationToken;

const PASSWORD: &str = "benchmark password, long enough";

/// (label, address, password). The long password is within the allowed
/// length, so it is really hashed: its cost belongs to the password typed,
/// and the unknown address with the same password shows it is the same.
fn cases() -> [(&'static str, &'static str, String); 5] {
    [
        (
            "unknown address",
            "nobody@example.com",
            "wrong but long enough".to_owned(),
        ),
        (
            "unknown address, short password",
            "nobody@example.com",
            "short".to_owned(),
        ),
        (
            "real address, short password",
            "bench@example.com",
            "short".to_owned(),
        ),
        (
            "unknown address, long password",
            "nobody@example.com",
            "x".repeat(1000),
        ),
        (
            "real address, wrong long password",
            "bench@example.com",
            "x".repeat(1000),
        ),
    ]
}

pub(crate) async fn run(tries: usize) -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let mut settings = Settings::default();
    settings.database.url = db.url.clone();
    settings.http.listen = "127.0.0.1:0".to_owned();
    settings.http.login_failures_per_ip = 0;
    let app = Application::build(settings).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let pool = app.pool().clone();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.run(postino_app::Role::Web, shutdown.clone()));
    postino_app::commands::create_user(
        &pool,
        "bench@example.com",
        "Bench",
        postino_domain::Password::parse(PASSWORD)?,
        postino_domain::Role::Viewer,
    )
    .await?;
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;

    let cases = cases();
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(tries); cases.len()];
    // One untimed round first: connections, the stand-in hash, caches.
    for round in 0..=tries {
        for (i, (label, email, password)) in cases.iter().enumerate() {
            let form = browser
                .get(format!("{base}/login"))
                .send()
                .await?
                .text()
                .await?;
            let token = csrf_token(&form)?;
            sqlx::query("DELETE FROM login_throttle")
                .execute(&pool)
                .await?;
            let started = Instant::now();
            let reply = browser
                .post(format!("{base}/login"))
                .form(&[
                    ("csrf_token", token.as_str()),
                    ("email", *email),
                    ("password", password.as_str()),
                    ("next", "/"),
                ])
                .send()
                .await?;
            let status = reply.status();
            let body = reply.text().await?;
            let elapsed = started.elapsed();
            anyhow::ensure!(
                status == reqwest::StatusCode::UNAUTHORIZED
                    && body.contains("do not match an account"),
                "{label}: expected the same refusal, got {status}"
            );
            if round > 0 {
                times[i].push(elapsed);
            }
        }
    }
    shutdown.cancel();
    let _ = server.await;

    let medians: Vec<Duration> = times.iter_mut().map(|t| median(t)).collect();
    let reference = medians[0].as_secs_f64();
    println!("failed sign-in, median of {tries} tries each (HTTP round trip):");
    for ((label, _, _), m) in cases.iter().zip(&medians) {
        println!(
            "  {label:<36} {:>7.1} ms   {:.2}x",
            m.as_secs_f64() * 1000.0,
            m.as_secs_f64() / reference
        );
    }
    Ok(())
}

fn csrf_token(form: &str) -> anyhow::Result<String> {
    let marker = r#"name="csrf_token" value=""#;
    let start = form
        .find(marker)
        .context("no CSRF token on the login page")?
        + marker.len();
    let len = form[start..].find('"').context("unterminated token")?;
    Ok(form[start..start + len].to_owned())
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort_unstable();
    times.get(times.len() / 2).copied().unwrap_or_default()
}
