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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().bench {
        Bench::Pagination {
            subscribers,
            depth,
            limit,
            rounds,
        } => pagination(subscribers, depth, limit, rounds).await,
        Bench::Import { rows, batch_rows } => import::run(rows, batch_rows).await,
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
    tokio::spawn(app.run_until_stopped(shutdown.clone()));
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
    let list = postino_db::lists::create(
        &mut conn,
        &postino_db::lists::NewList {
            name: ListName::parse("Benchmark")?,
            description: String::new(),
            opt_in: OptIn::Single,
            visibility: ListVisibility::Private,
            tags: Tags::default(),
        },
    )
    .await?;
    postino_db::seed::generated_subscribers(
        &mut conn,
        list.id,
        subscribers,
        "bench",
        "example.com",
    )
    .await?;
    sqlx::query("VACUUM ANALYZE subscribers")
        .execute(&mut *conn)
        .await?;
    sqlx::query("VACUUM ANALYZE subscriber_lists")
        .execute(&mut *conn)
        .await?;
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
    let cursor = Cursor::after(deep_key).encode();
    let cases = [
        (
            "list filter, page 1",
            format!("list={}&limit={limit}", list.uuid),
        ),
        (
            "list filter, deep page",
            format!("list={}&limit={limit}&cursor={cursor}", list.uuid),
        ),
        ("no filter, page 1", format!("limit={limit}")),
        (
            "no filter, deep page",
            format!("limit={limit}&cursor={cursor}"),
        ),
    ];

    // Correctness first: the deep page starts right after the cursor.
    let check: serde_json::Value = client
        .get(format!("{}/api/v1/subscribers?{}", run.base, cases[1].1))
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

    // Interleave the cases round by round so machine noise hits them alike.
    let mut timings: Vec<Vec<Duration>> = vec![Vec::with_capacity(rounds); cases.len()];
    for round in 0..rounds + 10 {
        for (i, (_, query)) in cases.iter().enumerate() {
            let t = Instant::now();
            let response = client
                .get(format!("{}/api/v1/subscribers?{query}", run.base))
                .bearer_auth(&token)
                .send()
                .await?
                .error_for_status()?;
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
    for ((name, _), times) in cases.iter().zip(&mut timings) {
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
    println!("deep page / page 1 (list filter): {with_list:.2}x  (target: at most 2x)");
    println!("deep page / page 1 (no filter):   {without:.2}x  (target: at most 2x)");
    run.shutdown.cancel();
    if with_list > 2.0 || without > 2.0 {
        anyhow::bail!("a deep page costs more than twice page 1");
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
