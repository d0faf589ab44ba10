//! `postino-bench`: the benchmarks behind `BENCHMARKS.md`.
//!
//! Each benchmark builds its own throwaway database on the local PostgreSQL
//! (as the test harness does), starts the real application on a random port
//! and measures through its public interface. Results are reported as ratios
//! against a reference measured in the same run, because absolute numbers on
//! a shared machine say little.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use postino_app::{Application, Settings};
use postino_domain::{Cursor, ListName, ListVisibility, OptIn, Tags};
use postino_testkit::TestDb;
use tokio_util::sync::CancellationToken;

mod import;
mod login;
mod send;
mod upload_field;

#[derive(Parser)]
#[command(name = "postino-bench")]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Keyset pagination: page 1 against a page deep in a large list.
    Pagination {
        /// Subscribers on the list.
        #[arg(long, default_value_t = 1_000_000)]
        subscribers: i64,
        /// How deep the far page starts (rows before it).
        #[arg(long, default_value_t = 900_000)]
        depth: i64,
        /// Page size.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Timed requests per page.
        #[arg(long, default_value_t = 200)]
        rounds: usize,
    },
    /// Campaign enqueue: start a campaign to two overlapping lists and time
    /// the first queued delivery and the whole enqueue, against a plain
    /// INSERT … SELECT of the same rows.
    Enqueue {
        /// Distinct subscribers across the two lists.
        #[arg(long, default_value_t = 1_000_000)]
        subscribers: i64,
        /// Runs of each (the median is reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// CSV import: a generated file into an empty list, again over the same
    /// subscribers, and a plain COPY of the same file as the reference.
    Import {
        /// Rows in the generated file.
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        /// Rows per batch (per transaction and COPY).
        #[arg(long, default_value_t = 10_000)]
        batch_rows: usize,
    },
    /// Upload limits: the server's peak memory while it refuses a huge form
    /// field beside an import's file, against its idle memory.
    UploadField {
        /// Size of the `mode` field, in MiB.
        #[arg(long, default_value_t = 400)]
        mib: u64,
    },
    /// Sending: the sender (`postino serve --role sender`) delivers a
    /// campaign into `postino sink`, against Postfix's `smtp-source` into the
    /// same sink; with the sender's CPU time and peak memory.
    Send {
        /// Recipients of the campaign.
        #[arg(long, default_value_t = 100_000)]
        recipients: i64,
        /// SMTP connections, for the sender and for `smtp-source` alike.
        #[arg(long, default_value_t = 16)]
        connections: u32,
        /// Run again at this many recipients and require the sender's peak
        /// memory not to grow with the audience.
        #[arg(long, value_name = "RECIPIENTS")]
        memory_check: Option<i64>,
        /// The `postino` binary; by default the one next to this benchmark
        /// (`cargo build --release --bin postino`).
        #[arg(long)]
        postino: Option<std::path::PathBuf>,
        /// Send the campaign again from a domain with a DKIM key of this
        /// kind, so every message is signed, and compare the two sends.
        #[arg(long, value_enum)]
        dkim: Option<DkimArg>,
    },
    /// Failed dashboard sign-ins: an unknown address against a real one
    /// with a short or a wrong long password (median time of each).
    LoginTiming {
        /// Timed tries per case.
        #[arg(long, default_value_t = 50)]
        tries: usize,
    },
}

/// DKIM key kinds for `send --dkim`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum DkimArg {
    /// RSA-2048 (rsa-sha256).
    Rsa,
    /// Ed25519 (ed25519-sha256).
    Ed25519,
}

fn main() -> anyhow::Result<()> {
    // The app under test renders templates in children of this binary.
    postino_sandbox::serve_if_asked();
    tokio::runtime::Runtime::new()?.block_on(bench(Cli::parse().bench))
}

async fn bench(bench: Bench) -> anyhow::Result<()> {
    match bench {
        Bench::Pagination {
            subscribers,
            depth,
            limit,
            rounds,
        } => pagination(subscribers, depth, limit, rounds).await,
        Bench::Enqueue { subscribers, runs } => enqueue(subscribers, runs.max(1)).await,
        Bench::Import { rows, batch_rows } => import::run(rows, batch_rows).await,
        Bench::UploadField { mib } => upload_field::run(mib).await,
        Bench::LoginTiming { tries } => login::run(tries.max(1)).await,
        Bench::Send {
            recipients,
            connections,
            memory_check,
            postino,
            dkim,
        } => {
            send::run(send::Options {
                recipients,
                connections,
                memory_check,
                postino,
                dkim: dkim.map(|d| match d {
                    DkimArg::Rsa => postino_domain::DkimAlgorithm::RsaSha256,
                    DkimArg::Ed25519 => postino_domain::DkimAlgorithm::Ed25519Sha256,
                }),
            })
            .await
        }
    }
}

struct Running {
    base: String,
    pool: sqlx::PgPool,
    shutdown: CancellationToken,
    _db: TestDb,
}

async fn start() -> anyhow::Result<Running> {
    let db = TestDb::new().await?;
    let mut settings = Settings::default();
    settings.database.url = db.url.clone();
    settings.http.listen = "127.0.0.1:0".to_owned();
    let app = Application::build(settings).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let pool = app.pool().clone();
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run(postino_app::Role::All, shutdown.clone()));
    Ok(Running {
        base,
        pool,
        shutdown,
        _db: db,
    })
}

async fn pagination(subscribers: i64, depth: i64, limit: u32, rounds: usize) -> anyhow::Result<()> {
    anyhow::ensure!(depth < subscribers, "--depth must be below --subscribers");
    let run = start().await?;
    let mut conn = run.pool.acquire().await?;

    println!("seeding {subscribers} subscribers on one list…");
    let started = Instant::now();
    let list = seed_list(&mut conn, subscribers).await?;
    println!("seeded in {:.1} s", started.elapsed().as_secs_f64());

    // The cursor a client holds after reading `depth` rows: the key of row `depth`.
    let deep_key: i64 = sqlx::query_scalar(
        "SELECT subscriber_id FROM subscriber_lists WHERE list_id = $1 ORDER BY subscriber_id OFFSET $2 LIMIT 1",
    )
    .bind(list.id)
    .bind(depth - 1)
    .fetch_one(&mut *conn)
    .await?;
    let expected_first: String =
        sqlx::query_scalar("SELECT email FROM subscribers WHERE id > $1 ORDER BY id LIMIT 1")
            .bind(deep_key)
            .fetch_one(&mut *conn)
            .await?;
    let token = postino_app::commands::create_token(&run.pool, "bench").await?;
    drop(conn);

    let client = reqwest::Client::new();
    let dashboard = signed_in_browser(&run).await?;
    let cursor = Cursor::after(deep_key).encode();
    let api = |query: String| format!("{}/api/v1/subscribers?{query}", run.base);
    let page = |query: String| format!("{}/subscribers?{query}", run.base);
    // (name, address, whether the dashboard's session asks rather than the
    // API's token).
    let cases = [
        (
            "list filter, page 1",
            api(format!("list={}&limit={limit}", list.uuid)),
            false,
        ),
        (
            "list filter, deep page",
            api(format!("list={}&limit={limit}&cursor={cursor}", list.uuid)),
            false,
        ),
        ("no filter, page 1", api(format!("limit={limit}")), false),
        (
            "no filter, deep page",
            api(format!("limit={limit}&cursor={cursor}")),
            false,
        ),
        (
            "dashboard page, list filter, page 1",
            page(format!("list={}", list.uuid)),
            true,
        ),
        (
            "dashboard page, list filter, deep page",
            page(format!("list={}&after={cursor}", list.uuid)),
            true,
        ),
    ];

    // Correctness first: the deep page starts right after the cursor.
    let check: serde_json::Value = client
        .get(&cases[1].1)
        .bearer_auth(&token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let first = check["items"][0]["email"]
        .as_str()
        .context("deep page is empty")?;
    anyhow::ensure!(
        first == expected_first,
        "deep page starts at {first}, expected {expected_first}"
    );
    let shown = dashboard
        .get(&cases[5].1)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    anyhow::ensure!(
        shown.contains(&format!(">{expected_first}<")),
        "the dashboard's deep page does not start at {expected_first}"
    );

    // Interleave the cases round by round so machine noise hits them alike.
    let mut timings: Vec<Vec<Duration>> = vec![Vec::with_capacity(rounds); cases.len()];
    for round in 0..rounds + 10 {
        for (i, (_, url, in_dashboard)) in cases.iter().enumerate() {
            let t = Instant::now();
            let request = if *in_dashboard {
                dashboard.get(url)
            } else {
                client.get(url).bearer_auth(&token)
            };
            let response = request.send().await?.error_for_status()?;
            let body = response.bytes().await?;
            let elapsed = t.elapsed();
            anyhow::ensure!(!body.is_empty());
            if round >= 10 {
                timings[i].push(elapsed);
            }
        }
    }

    // The same deep page by OFFSET, the approach keyset pagination replaces.
    let mut offset_times = Vec::new();
    let mut conn = run.pool.acquire().await?;
    for _ in 0..5 {
        let t = Instant::now();
        sqlx::query(
            "SELECT s.id FROM subscriber_lists sl JOIN subscribers s ON s.id = sl.subscriber_id \
             WHERE sl.list_id = $1 ORDER BY sl.subscriber_id OFFSET $2 LIMIT $3",
        )
        .bind(list.id)
        .bind(depth)
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await?;
        offset_times.push(t.elapsed());
    }
    drop(conn);

    println!();
    println!(
        "Pagination over {subscribers} subscribers, page size {limit}, deep page after row {depth}, {rounds} requests each"
    );
    println!();
    println!("| case | median | p95 |");
    println!("|---|---|---|");
    let mut medians = Vec::new();
    for ((name, _, _), times) in cases.iter().zip(&mut timings) {
        times.sort();
        let median = times[times.len() / 2];
        let p95 = times[(times.len() * 95 / 100).min(times.len() - 1)];
        medians.push(median);
        println!("| {name} | {:.2} ms | {:.2} ms |", ms(median), ms(p95));
    }
    offset_times.sort();
    println!(
        "| OFFSET {depth} in SQL alone (reference, not via HTTP) | {:.2} ms | |",
        ms(offset_times[offset_times.len() / 2])
    );
    println!();
    let with_list = ms(medians[1]) / ms(medians[0]);
    let without = ms(medians[3]) / ms(medians[2]);
    let in_dashboard = ms(medians[5]) / ms(medians[4]);
    println!("deep page / page 1 (list filter): {with_list:.2}x  (target: at most 2x)");
    println!("deep page / page 1 (no filter):   {without:.2}x  (target: at most 2x)");
    println!("deep page / page 1 (dashboard):   {in_dashboard:.2}x  (target: at most 2x)");
    run.shutdown.cancel();
    if with_list > 2.0 || without > 2.0 || in_dashboard > 2.0 {
        anyhow::bail!("a deep page costs more than twice page 1");
    }
    Ok(())
}

/// A browser signed in to the dashboard as a viewer, through the login
/// form as a person would.
async fn signed_in_browser(run: &Running) -> anyhow::Result<reqwest::Client> {
    const PASSWORD: &str = "benchmark password, long enough";
    postino_app::commands::create_user(
        &run.pool,
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
    let form = browser
        .get(format!("{}/login", run.base))
        .send()
        .await?
        .text()
        .await?;
    let marker = r#"name="csrf_token" value=""#;
    let start = form
        .find(marker)
        .context("no CSRF token on the login page")?
        + marker.len();
    let token = &form[start..start + form[start..].find('"').context("unterminated token")?];
    let reply = browser
        .post(format!("{}/login", run.base))
        .form(&[
            ("csrf_token", token),
            ("email", "bench@example.com"),
            ("password", PASSWORD),
            ("next", "/"),
        ])
        .send()
        .await?;
    anyhow::ensure!(
        reply.status() == reqwest::StatusCode::SEE_OTHER,
        "signing in answered {}",
        reply.status()
    );
    Ok(browser)
}

/// One private list named "Benchmark" holding `subscribers` generated,
/// confirmed subscribers (`bench<n>@example.com`, named `Subscriber <n>`),
/// with the planner's statistics refreshed.
async fn seed_list(
    conn: &mut sqlx::PgConnection,
    subscribers: i64,
) -> anyhow::Result<postino_db::lists::List> {
    let list = postino_db::lists::create(
        conn,
        &postino_db::lists::NewList {
            name: ListName::parse("Benchmark")?,
            description: String::new(),
            opt_in: OptIn::Single,
            visibility: ListVisibility::Private,
            tags: Tags::default(),
        },
    )
    .await?;
    postino_db::seed::generated_subscribers(conn, list.id, subscribers, "bench", "example.com")
        .await?;
    sqlx::query("VACUUM ANALYZE subscribers")
        .execute(&mut *conn)
        .await?;
    sqlx::query("VACUUM ANALYZE subscriber_lists")
        .execute(&mut *conn)
        .await?;
    Ok(list)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Two lists over `subscribers` generated subscribers: A holds the first 60%,
/// B the last 60%, so a fifth of them are on both.
async fn seed_overlapping_lists(
    conn: &mut sqlx::PgConnection,
    subscribers: i64,
) -> anyhow::Result<(i64, i64)> {
    let mut ids = Vec::new();
    for name in ["List A", "List B"] {
        let list = postino_db::lists::create(
            conn,
            &postino_db::lists::NewList {
                name: ListName::parse(name)?,
                description: String::new(),
                opt_in: OptIn::Single,
                visibility: ListVisibility::Private,
                tags: Tags::default(),
            },
        )
        .await?;
        ids.push(list.id);
    }
    let (a, b) = (ids[0], ids[1]);
    postino_db::seed::generated_subscribers(conn, a, subscribers, "reader", "example.com").await?;
    let cut_a = subscribers * 6 / 10;
    let start_b = subscribers * 4 / 10;
    sqlx::query(
        "WITH ranked AS (SELECT id, row_number() OVER (ORDER BY id) AS n FROM subscribers) \
         INSERT INTO subscriber_lists (list_id, subscriber_id, status) \
         SELECT $1, id, 'confirmed' FROM ranked WHERE n > $2",
    )
    .bind(b)
    .bind(start_b)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "WITH ranked AS (SELECT id, row_number() OVER (ORDER BY id) AS n FROM subscribers) \
         DELETE FROM subscriber_lists WHERE list_id = $1 AND subscriber_id IN (SELECT id FROM ranked WHERE n > $2)",
    )
    .bind(a)
    .bind(cut_a)
    .execute(&mut *conn)
    .await?;
    sqlx::query("VACUUM ANALYZE subscribers")
        .execute(&mut *conn)
        .await?;
    sqlx::query("VACUUM ANALYZE subscriber_lists")
        .execute(&mut *conn)
        .await?;
    Ok((a, b))
}

async fn enqueue(subscribers: i64, runs: usize) -> anyhow::Result<()> {
    let run = start().await?;
    let mut conn = run.pool.acquire().await?;
    println!("seeding {subscribers} subscribers on two overlapping lists…");
    let started = Instant::now();
    let (a, b) = seed_overlapping_lists(&mut conn, subscribers).await?;
    println!("seeded in {:.1} s", started.elapsed().as_secs_f64());
    let lists: Vec<String> =
        sqlx::query_scalar("SELECT uuid::text FROM lists WHERE id = ANY($1) ORDER BY id")
            .bind(vec![a, b])
            .fetch_all(&mut *conn)
            .await?;
    let token = postino_app::commands::create_token(&run.pool, "bench").await?;
    let client = reqwest::Client::new();
    let api = format!("{}/api/v1", run.base);

    let mut reference = Vec::new();
    let mut first = Vec::new();
    let mut full = Vec::new();
    for round in 0..runs {
        // Reference: the same rows in one plain statement, into a campaign of
        // its own, with the same table and indexes.
        let ref_campaign: i64 = sqlx::query_scalar(
            "INSERT INTO campaigns (uuid, name, subject, from_email, body, body_format) \
             VALUES (gen_random_uuid(), 'reference', 's', 'a@example.com', 'b', 'html') RETURNING id",
        )
        .fetch_one(&mut *conn)
        .await?;
        let t = Instant::now();
        let inserted = sqlx::query(
            "INSERT INTO deliveries (campaign_id, subscriber_id) \
             SELECT DISTINCT $1::bigint, sl.subscriber_id FROM subscriber_lists sl \
             JOIN subscribers s ON s.id = sl.subscriber_id \
             WHERE sl.list_id = ANY($2) AND sl.status = 'confirmed' AND s.status = 'enabled'",
        )
        .bind(ref_campaign)
        .bind(vec![a, b])
        .execute(&mut *conn)
        .await?
        .rows_affected();
        reference.push(t.elapsed());
        anyhow::ensure!(
            inserted == u64::try_from(subscribers)?,
            "reference inserted {inserted} rows"
        );

        // Postino: create a campaign, start it through the API, let the
        // scheduler (default settings, ticking every second) enqueue it.
        let created: serde_json::Value = client
            .post(format!("{api}/campaigns"))
            .bearer_auth(&token)
            .json(&serde_json::json!({
                "name": format!("bench {round}"), "subject": "Hello", "from_email": "news@example.com",
                "body": "<p>Hi {{ subscriber.name }}</p><a href=\"{{ unsubscribe_url }}\">unsubscribe</a>",
                "lists": lists,
            }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let id = created["id"].as_str().context("campaign id")?.to_owned();
        let campaign_id: i64 = sqlx::query_scalar("SELECT id FROM campaigns WHERE uuid = $1::uuid")
            .bind(&id)
            .fetch_one(&mut *conn)
            .await?;
        let t = Instant::now();
        client
            .put(format!("{api}/campaigns/{id}/status"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"status": "running"}))
            .send()
            .await?
            .error_for_status()?;
        let mut first_at = None;
        loop {
            let (any, done): (bool, bool) = sqlx::query_as(
                "SELECT EXISTS (SELECT 1 FROM deliveries WHERE campaign_id = $1 AND kind = 'campaign'), \
                        (SELECT enqueued_at IS NOT NULL FROM campaigns WHERE id = $1)",
            )
            .bind(campaign_id)
            .fetch_one(&mut *conn)
            .await?;
            if any && first_at.is_none() {
                first_at = Some(t.elapsed());
            }
            if done {
                break;
            }
            anyhow::ensure!(
                t.elapsed() < Duration::from_secs(600),
                "enqueue did not finish in 10 minutes"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        full.push(t.elapsed());
        first.push(first_at.context("no delivery seen")?);
        let count: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM deliveries WHERE campaign_id = $1 AND kind = 'campaign'",
        )
        .bind(campaign_id)
        .fetch_one(&mut *conn)
        .await?;
        anyhow::ensure!(
            count == subscribers,
            "enqueued {count}, expected {subscribers}"
        );
        // Pause it so the scheduler leaves it alone, and clear both runs' rows.
        sqlx::query("UPDATE campaigns SET status = 'cancelled' WHERE id = $1")
            .bind(campaign_id)
            .execute(&mut *conn)
            .await?;
        sqlx::query("DELETE FROM deliveries")
            .execute(&mut *conn)
            .await?;
        sqlx::query("VACUUM ANALYZE deliveries")
            .execute(&mut *conn)
            .await?;
        println!(
            "run {}: reference {:.2} s, first delivery {:.3} s, full enqueue {:.2} s",
            round + 1,
            reference[round].as_secs_f64(),
            first[round].as_secs_f64(),
            full[round].as_secs_f64()
        );
    }
    drop(conn);
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (reference, first, full) = (
        median(&mut reference),
        median(&mut first),
        median(&mut full),
    );
    let ratio = full.as_secs_f64() / reference.as_secs_f64();
    println!();
    println!(
        "Enqueue of {subscribers} recipients on two overlapping lists (median of {runs} runs)"
    );
    println!();
    println!("| measure | time | target |");
    println!("|---|---|---|");
    println!(
        "| plain INSERT … SELECT DISTINCT (reference) | {:.2} s | |",
        reference.as_secs_f64()
    );
    println!(
        "| start request → first queued delivery | {:.3} s | < 2 s |",
        first.as_secs_f64()
    );
    println!(
        "| start request → whole audience enqueued | {:.2} s | |",
        full.as_secs_f64()
    );
    println!("| full enqueue / reference | {ratio:.2}x | ≤ 1.5x |");
    run.shutdown.cancel();
    if first > Duration::from_secs(2) || ratio > 1.5 {
        anyhow::bail!("a target was missed");
    }
    Ok(())
}
