//! The CSV import benchmark: throughput against a plain `COPY` of the same
//! file measured in the same run, and the importing process's peak memory.

use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::time::Instant;

use postino_app::Settings;
use postino_db::imports;
use postino_domain::{ImportMode, ListName, ListVisibility, OptIn, Tags};
use postino_importer::ImportSettings;
use postino_importer::engine;
use postino_testkit::TestDb;
use tokio_util::sync::CancellationToken;

/// Writes `rows` subscribers: e-mail, name and three attributes. `round`
/// changes the attribute values, so a second file updates every subscriber.
fn generate(path: &Path, rows: u64, round: u64) -> anyhow::Result<u64> {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    writeln!(out, "email,name,plan,score,vip")?;
    let plans = ["free", "pro", "team", "enterprise"];
    for i in 0..rows {
        let plan = plans[usize::try_from((i + round) % 4).unwrap_or(0)];
        writeln!(
            out,
            "user{i}@example.com,Subscriber {i},{plan},{},{}",
            (i * 7 + round) % 1000,
            (i + round).is_multiple_of(3)
        )?;
    }
    out.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

/// The process's peak resident memory (VmHWM), in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// Resets the peak so each phase is measured on its own (Linux: writing 5
/// to clear_refs resets VmHWM to the current RSS).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

async fn plain_copy(pool: &sqlx::PgPool, path: &Path) -> anyhow::Result<f64> {
    let mut conn = pool.acquire().await?;
    sqlx::raw_sql(
        "DROP TABLE IF EXISTS bench_copy;
         CREATE TABLE bench_copy (email text, name text, plan text, score text, vip text)",
    )
    .execute(&mut *conn)
    .await?;
    let started = Instant::now();
    copy_file(
        &mut conn,
        "COPY bench_copy FROM STDIN (FORMAT csv, HEADER true)",
        path,
    )
    .await?;
    Ok(started.elapsed().as_secs_f64())
}

/// The schema's floor: the whole file loaded in one go, the fastest these
/// tables can take a million subscribers and their memberships. A `COPY`
/// into a staging table, then one `INSERT … SELECT` into `subscribers` (all
/// its indexes, both GIN ones included) and one into `subscriber_lists`
/// (its foreign keys checked), in a fresh database of its own. No conflict
/// handling, no batches, no error report: what any importer into this
/// schema has to pay at least.
async fn schema_floor(path: &Path) -> anyhow::Result<f64> {
    let db = TestDb::new().await?;
    let mut settings = Settings::default();
    settings.database.url = db.url.clone();
    let pool = postino_app::open_database(&settings).await?;
    let mut conn = pool.acquire().await?;
    let list = postino_db::lists::create(
        &mut conn,
        &postino_db::lists::NewList {
            name: ListName::parse("Floor")?,
            description: String::new(),
            opt_in: OptIn::Single,
            visibility: ListVisibility::Private,
            tags: Tags::default(),
        },
    )
    .await?;
    sqlx::raw_sql(
        "CREATE UNLOGGED TABLE bench_stage (email text, name text, plan text, score text, vip text)",
    )
    .execute(&mut *conn)
    .await?;
    let started = Instant::now();
    copy_file(
        &mut conn,
        "COPY bench_stage FROM STDIN (FORMAT csv, HEADER true)",
        path,
    )
    .await?;
    sqlx::query(
        "INSERT INTO subscribers (uuid, email, name, attributes)
         SELECT gen_random_uuid(), email, name,
                jsonb_build_object('plan', plan, 'score', score::numeric, 'vip', vip::boolean)
         FROM bench_stage",
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO subscriber_lists (list_id, subscriber_id, status)
         SELECT $1, id, 'unconfirmed' FROM subscribers",
    )
    .bind(list.id)
    .execute(&mut *conn)
    .await?;
    let secs = started.elapsed().as_secs_f64();
    drop(conn);
    pool.close().await;
    Ok(secs)
}

async fn copy_file(
    conn: &mut sqlx::PgConnection,
    statement: &str,
    path: &Path,
) -> anyhow::Result<()> {
    let mut copy = conn.copy_in_raw(statement).await?;
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        copy.send(&buf[..n]).await?;
    }
    copy.finish().await?;
    Ok(())
}

struct Run {
    secs: f64,
    peak_mib: f64,
    job: imports::Import,
}

async fn import(
    pool: &sqlx::PgPool,
    path: &Path,
    list_id: i64,
    overwrite: bool,
    settings: &ImportSettings,
) -> anyhow::Result<Run> {
    reset_peak();
    let started = Instant::now();
    let job = engine::create_local_job(
        pool,
        path,
        ImportMode::Subscribe,
        vec![list_id],
        overwrite,
        false,
        settings,
    )
    .await?;
    engine::run_job(pool, &job, settings, &CancellationToken::new(), &mut |_| {}).await?;
    let secs = started.elapsed().as_secs_f64();
    let peak_mib = peak_rss_mib();
    let mut conn = pool.acquire().await?;
    let job = imports::get(&mut conn, job.uuid).await?;
    Ok(Run {
        secs,
        peak_mib,
        job,
    })
}

#[allow(clippy::cast_precision_loss, reason = "rates for display")]
pub(crate) async fn run(rows: u64, batch_rows: usize) -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let mut settings = Settings::default();
    settings.database.url = db.url.clone();
    settings.import.batch_rows = batch_rows;
    let pool = postino_app::open_database(&settings).await?;
    let dir = std::env::temp_dir().join(format!("postino-bench-import-{}", db.name));
    std::fs::create_dir_all(&dir)?;
    let first = dir.join("subscribers.csv");
    let second = dir.join("subscribers-changed.csv");
    println!("generating {rows} rows…");
    let bytes = generate(&first, rows, 0)?;
    generate(&second, rows, 1)?;
    let mut conn = pool.acquire().await?;
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
    drop(conn);

    println!("plain COPY…");
    let copy_secs = plain_copy(&pool, &first).await?;
    println!("the schema's floor (one COPY, one INSERT … SELECT per table, fresh database)…");
    let floor_secs = schema_floor(&first).await?;
    println!("import into an empty list…");
    let insert = import(&pool, &first, list.id, false, &settings.import).await?;
    println!("import again with --overwrite and changed attributes…");
    let update = import(&pool, &second, list.id, true, &settings.import).await?;

    anyhow::ensure!(
        insert.job.imported == i64::try_from(rows)? && insert.job.failed == 0,
        "first import: {:?}",
        insert.job
    );
    anyhow::ensure!(
        update.job.updated == i64::try_from(rows)? && update.job.failed == 0,
        "second import: {:?}",
        update.job
    );

    let rate = |secs: f64| rows as f64 / secs;
    println!();
    println!(
        "CSV import of {rows} rows ({:.1} MiB: email, name, three attributes), batches of {batch_rows}",
        bytes as f64 / (1024.0 * 1024.0)
    );
    println!();
    println!("| run | time | rows/s | × plain COPY time | × schema floor | peak RSS |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| plain `COPY` into a bare table (reference) | {copy_secs:.1} s | {:.0} | 1.00× | | |",
        rate(copy_secs)
    );
    println!(
        "| schema floor: one `COPY` + one `INSERT … SELECT` per table | {floor_secs:.1} s | {:.0} | {:.2}× | 1.00× | |",
        rate(floor_secs),
        floor_secs / copy_secs
    );
    println!(
        "| import into an empty list (insert path) | {:.1} s | {:.0} | {:.2}× | {:.2}× | {:.0} MiB |",
        insert.secs,
        rate(insert.secs),
        insert.secs / copy_secs,
        insert.secs / floor_secs,
        insert.peak_mib
    );
    println!(
        "| import again, `--overwrite`, every row changed (update path) | {:.1} s | {:.0} | {:.2}× | {:.2}× | {:.0} MiB |",
        update.secs,
        rate(update.secs),
        update.secs / copy_secs,
        update.secs / floor_secs,
        update.peak_mib
    );
    println!();
    println!("targets: import time at most 2× plain COPY; peak RSS under 150 MiB");
    std::fs::remove_dir_all(&dir)?;
    pool.close().await;
    let missed = insert.secs > 2.0 * copy_secs
        || update.secs > 2.0 * copy_secs
        || insert.peak_mib.max(update.peak_mib) >= 150.0;
    if missed {
        anyhow::bail!("a target was missed");
    }
    Ok(())
}
