//! The send benchmark: how fast the sender delivers a campaign into a local
//! SMTP sink, against Postfix's `smtp-source` pushing the same number of
//! messages over as many connections into the same kind of sink; and what
//! the sender costs in CPU time and memory.
//!
//! Everything runs on this machine, each part as its own process so it can
//! be measured through `/proc`: `postino sink` (a fresh one per phase, so its
//! count covers that phase alone), `smtp-source`, and `postino serve --role
//! sender`. The audience is enqueued beforehand by calling the scheduler in
//! this process, and timed on its own.
//!
//! With `--dkim`, the same audience gets a second campaign from a domain with
//! a DKIM key, sent by a fresh sender process right after the first, so the
//! cost of signing every message is measured against an unsigned send of
//! the same session.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use postino_app::Settings;
use postino_db::campaigns::{self, CampaignFields};
use postino_domain::{BodyFormat, CampaignStatus, DkimAlgorithm, EmailAddress, Tags};
use postino_testkit::TestDb;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

/// The sender must reach at least this share of the `smtp-source` rate.
const MIN_SHARE_OF_CEILING: f64 = 0.5;
/// The sender's peak resident memory must stay below this.
const MAX_PEAK_RSS_MIB: f64 = 57.0;
/// With `--memory-check`, the larger run's peak may exceed the smaller
/// run's by this factor before it counts as growth (allocator noise).
const RSS_GROWTH_ALLOWED: f64 = 1.10;
/// `smtp-source` payload, about the size of the campaign's HTML body.
const REFERENCE_PAYLOAD: usize = 5120;
/// How often the queue and the sender's memory are looked at.
const POLL: Duration = Duration::from_millis(100);
/// A send that takes longer than this is reported as stuck.
const SEND_TIMEOUT: Duration = Duration::from_secs(3600);
/// The unit of CPU times in `/proc` (`USER_HZ`), 100 on Linux.
const TICKS_PER_SECOND: f64 = 100.0;
/// A signed send must reach at least this share of the unsigned one's rate.
const MIN_SHARE_WITH_DKIM: f64 = 0.6;
/// The From domain of the signed campaign, and its key's selector.
const DKIM_DOMAIN: &str = "dkim.example.com";
const DKIM_SELECTOR: &str = "bench";

/// What to run, from the command line.
#[derive(Debug)]
pub(crate) struct Options {
    pub(crate) recipients: i64,
    pub(crate) connections: u32,
    pub(crate) memory_check: Option<i64>,
    pub(crate) postino: Option<PathBuf>,
    pub(crate) dkim: Option<DkimAlgorithm>,
}

/// One phase's wall time and what the sink saw of it.
#[derive(Debug)]
struct Phase {
    secs: f64,
    /// Messages the sink accepted, by its own count.
    accepted: u64,
    /// CPU seconds the sink used.
    sink_cpu: f64,
    /// CPU seconds every process on the machine used, idle excluded.
    machine_cpu: f64,
}

/// Everything measured at one audience size.
#[derive(Debug)]
struct Run {
    recipients: i64,
    enqueue_secs: f64,
    reference: Phase,
    send: Phase,
    /// CPU seconds of the sender process, start-up included.
    sender_cpu: f64,
    sender_peak_mib: f64,
    /// CPU seconds of the PostgreSQL processes alive at the end of the send.
    postgres_cpu: f64,
    /// The same audience again with every message DKIM-signed.
    signed: Option<(DkimAlgorithm, SenderResult)>,
}

impl Run {
    #[allow(clippy::cast_precision_loss, reason = "rates for display")]
    fn rate(&self, phase: &Phase) -> f64 {
        self.recipients as f64 / phase.secs
    }

    fn share_of_ceiling(&self) -> f64 {
        self.rate(&self.send) / self.rate(&self.reference)
    }

    #[allow(clippy::cast_precision_loss, reason = "rates for display")]
    fn sender_cpu_per_thousand(&self) -> f64 {
        self.sender_cpu * 1000.0 / self.recipients as f64
    }

    /// The signed send's rate over the unsigned one's.
    fn dkim_share(&self) -> Option<f64> {
        let (_, signed) = self.signed.as_ref()?;
        Some(self.send.secs / signed.phase.secs)
    }
}

pub(crate) async fn run(options: Options) -> anyhow::Result<()> {
    let postino = postino_binary(options.postino)?;
    let connections = options.connections.max(1);
    if let Some(larger) = options.memory_check {
        anyhow::ensure!(
            larger > options.recipients,
            "--memory-check must be above --recipients"
        );
    }
    let mut runs = Vec::new();
    for recipients in std::iter::once(options.recipients).chain(options.memory_check) {
        anyhow::ensure!(recipients > 0, "the recipient count must be positive");
        runs.push(measure(&postino, recipients, connections, options.dkim).await?);
    }
    print_table(&runs, connections);

    let mut missed = Vec::new();
    for run in &runs {
        let n = run.recipients;
        if run.share_of_ceiling() < MIN_SHARE_OF_CEILING {
            missed.push(format!(
                "at {n} recipients the sender reached {:.2} of the ceiling",
                run.share_of_ceiling()
            ));
        }
        if run.sender_peak_mib >= MAX_PEAK_RSS_MIB {
            missed.push(format!(
                "at {n} recipients the sender peaked at {:.1} MiB",
                run.sender_peak_mib
            ));
        }
        let expected = u64::try_from(n)?;
        if run.reference.accepted != expected || run.send.accepted != expected {
            missed.push(format!("at {n} recipients the sink counts are wrong"));
        }
        if let Some((algorithm, signed)) = &run.signed {
            if signed.phase.accepted != expected {
                missed.push(format!(
                    "at {n} recipients the sink count with DKIM is wrong"
                ));
            }
            let share = run.dkim_share().unwrap_or(0.0);
            if share < MIN_SHARE_WITH_DKIM {
                missed.push(format!(
                    "at {n} recipients the sender with DKIM {algorithm} reached {share:.2} of its unsigned rate"
                ));
            }
        }
    }
    if let [small, large] = runs.as_slice()
        && large.sender_peak_mib > small.sender_peak_mib * RSS_GROWTH_ALLOWED
    {
        missed.push(format!(
            "peak memory grew from {:.1} MiB ({} recipients) to {:.1} MiB ({} recipients)",
            small.sender_peak_mib, small.recipients, large.sender_peak_mib, large.recipients
        ));
    }
    if !missed.is_empty() {
        anyhow::bail!("targets missed: {}", missed.join("; "));
    }
    Ok(())
}

/// The `postino` binary: as given, or the one in this benchmark's own
/// target directory.
fn postino_binary(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let path = match given {
        Some(path) => path,
        None => std::env::current_exe()?
            .parent()
            .context("the benchmark binary has no directory")?
            .join("postino"),
    };
    anyhow::ensure!(
        path.is_file(),
        "{} not found: build it with `cargo build --release --bin postino`, or pass --postino",
        path.display()
    );
    Ok(path)
}

async fn measure(
    postino: &Path,
    recipients: i64,
    connections: u32,
    dkim: Option<DkimAlgorithm>,
) -> anyhow::Result<Run> {
    let db = TestDb::new().await?;
    let mut settings = Settings::default();
    settings.database.url = db.url.clone();
    let pool = postino_app::open_database(&settings).await?;

    println!("seeding {recipients} subscribers on one list…");
    let started = Instant::now();
    let mut conn = pool.acquire().await?;
    let list = crate::seed_list(&mut conn, recipients).await?;
    drop(conn);
    let campaign = start_campaign(&pool, list.id, "news@example.com").await?;
    println!("seeded in {:.1} s", started.elapsed().as_secs_f64());

    let enqueue_secs = enqueue(&pool, &settings, campaign, recipients).await?;
    println!("enqueued in {enqueue_secs:.1} s");

    println!("smtp-source: {recipients} messages over {connections} connections…");
    let reference = reference(postino, recipients, connections).await?;
    println!("sender: {recipients} messages over {connections} connections…");
    let sent = send(postino, &db, &pool, campaign, recipients, connections, None).await?;
    let signed = match dkim {
        Some(algorithm) => {
            let record = postino_app::commands::generate_dkim_key(
                &settings,
                &pool,
                DKIM_DOMAIN,
                DKIM_SELECTOR,
                algorithm,
            )
            .await?;
            let signed_campaign =
                start_campaign(&pool, list.id, &format!("news@{DKIM_DOMAIN}")).await?;
            enqueue(&pool, &settings, signed_campaign, recipients).await?;
            println!(
                "sender, every message signed ({algorithm}, {}): {recipients} messages over {connections} connections…",
                record.name
            );
            let result = send(
                postino,
                &db,
                &pool,
                signed_campaign,
                recipients,
                connections,
                Some(&record.name),
            )
            .await?;
            Some((algorithm, result))
        }
        None => None,
    };
    pool.close().await;
    Ok(Run {
        recipients,
        enqueue_secs,
        reference,
        send: sent.phase,
        sender_cpu: sent.cpu,
        sender_peak_mib: sent.peak_mib,
        postgres_cpu: sent.postgres_cpu,
        signed,
    })
}

/// Creates the benchmark's campaign from `from` to the list and starts it.
async fn start_campaign(pool: &sqlx::PgPool, list: i64, from: &str) -> anyhow::Result<i64> {
    let mut conn = pool.acquire().await?;
    let campaign = campaigns::create(
        &mut conn,
        &CampaignFields {
            name: format!("Send benchmark from {from}"),
            subject: "This week at Postino".to_owned(),
            from_name: "Postino Bench".to_owned(),
            from_email: EmailAddress::parse(from)?,
            reply_to: None,
            body: body_html(),
            body_format: BodyFormat::Html,
            text_body: None,
            template_id: None,
            tags: Tags::default(),
            headers: Vec::new(),
            smtp_group: None,
        },
        &[list],
    )
    .await?;
    campaigns::transition(
        &mut conn,
        campaign.id,
        CampaignStatus::Draft,
        CampaignStatus::Running,
        None,
    )
    .await?;
    Ok(campaign.id)
}

/// Runs the scheduler until the campaign's audience is enqueued; returns
/// how long that took.
async fn enqueue(
    pool: &sqlx::PgPool,
    settings: &Settings,
    campaign: i64,
    recipients: i64,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    loop {
        postino_scheduler::tick(pool, &settings.scheduler).await?;
        let enqueued: bool =
            sqlx::query_scalar("SELECT enqueued_at IS NOT NULL FROM campaigns WHERE id = $1")
                .bind(campaign)
                .fetch_one(pool)
                .await?;
        if enqueued {
            break;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let queued: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM deliveries WHERE campaign_id = $1 AND kind = 'campaign'",
    )
    .bind(campaign)
    .fetch_one(pool)
    .await?;
    anyhow::ensure!(
        queued == recipients,
        "enqueued {queued} deliveries, expected {recipients}"
    );
    Ok(secs)
}

/// HTML with the two merge fields every campaign has, sized so that the
/// whole message (headers, this HTML and the text part generated from it)
/// comes to about 5 KB, like `smtp-source`'s 5,120-byte messages.
fn body_html() -> String {
    let mut html = String::from(
        "<html><body style=\"font-family: sans-serif\">\n<h1>Hello {{ subscriber.name }},</h1>\n",
    );
    let mut story = 1;
    while html.len() < 2600 {
        html.push_str(&format!(
            "<h2>Story {story}</h2>\n<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit, \
             sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim \
             veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo \
             consequat. <a href=\"https://example.com/stories/{story}\">Read more</a></p>\n"
        ));
        story += 1;
    }
    html.push_str(
        "<p style=\"font-size: small\">You receive this because you subscribed. \
         <a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p>\n</body></html>\n",
    );
    html
}

/// The ceiling: `smtp-source` into a fresh sink.
async fn reference(postino: &Path, recipients: i64, connections: u32) -> anyhow::Result<Phase> {
    let sink = SinkProcess::start(postino).await?;
    let cpu_before = machine_cpu_ticks();
    let started = Instant::now();
    let (sessions, messages, payload, target) = (
        connections.to_string(),
        recipients.to_string(),
        REFERENCE_PAYLOAD.to_string(),
        sink.addr.to_string(),
    );
    // -d: one connection per session for all its messages, as the sender does.
    let status = Command::new("smtp-source")
        .args(["-s", &sessions, "-m", &messages, "-l", &payload, "-d", "-N"])
        .args(["-f", "bench@example.com", "-t", "rcpt@example.org", &target])
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .status()
        .await
        .context("cannot run smtp-source (Debian: apt-get install postfix)")?;
    let secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(status.success(), "smtp-source failed: {status}");
    let machine_cpu = ticks_to_secs(machine_cpu_ticks().saturating_sub(cpu_before));
    let sink_cpu = sink.cpu_secs();
    Ok(Phase {
        secs,
        accepted: sink.stop().await?,
        sink_cpu,
        machine_cpu,
    })
}

/// What the sender's run adds to its phase.
#[derive(Debug)]
struct SenderResult {
    phase: Phase,
    cpu: f64,
    peak_mib: f64,
    postgres_cpu: f64,
}

/// Starts the sender against a fresh sink and times it from process start
/// until no delivery is left to send. With `dkim_record`, checks that the
/// sender loaded the key published there.
async fn send(
    postino: &Path,
    db: &TestDb,
    pool: &sqlx::PgPool,
    campaign: i64,
    recipients: i64,
    connections: u32,
    dkim_record: Option<&str>,
) -> anyhow::Result<SenderResult> {
    let sink = SinkProcess::start(postino).await?;
    // A later phase finds the relay stored by the first: point it at this
    // phase's sink.
    sqlx::query("UPDATE smtp_servers SET host = $1, port = $2, updated_at = now()")
        .bind(sink.addr.ip().to_string())
        .bind(i32::from(sink.addr.port()))
        .execute(pool)
        .await?;
    let log_path = std::env::temp_dir().join(format!("postino-bench-send-{}.log", db.name));
    let log = std::fs::File::create(&log_path)?;
    let postgres_before = postgres_cpu_ticks();
    let cpu_before = machine_cpu_ticks();
    let started = Instant::now();
    // A fresh database has no relay yet: the sender stores `[smtp]` as the
    // first one at start-up, so the environment points it at the sink.
    let mut sender = Command::new(postino)
        .args(["serve", "--role", "sender"])
        .env_remove("POSTINO_CONFIG")
        .env("DATABASE_URL", &db.url)
        .env("POSTINO__HTTP__LISTEN", "127.0.0.1:0")
        .env("POSTINO__SMTP__HOST", sink.addr.ip().to_string())
        .env("POSTINO__SMTP__PORT", sink.addr.port().to_string())
        .env("POSTINO__SMTP__MAX_CONNECTIONS", connections.to_string())
        // Connections stay open for the whole run, as with `smtp-source -d`.
        .env(
            "POSTINO__SMTP__MESSAGES_PER_CONNECTION",
            recipients.min(i64::from(i32::MAX)).to_string(),
        )
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", postino.display()))?;
    let pid = sender.id().context("the sender exited at once")?;

    // Done when nothing is queued or in flight. The probe follows the
    // lowest delivery still to send along the primary key: rows below it
    // are final (nothing injects faults, so nothing goes back to the queue;
    // the count at the end checks that), so each probe reads only the rows
    // finished since the last one. A count(*) of sent rows would scan the
    // table (0.7 s at a million rows), and an EXISTS on the partial queue
    // index walks every dead entry left by rows already claimed (40 ms late
    // in a million-row run): either would load the PostgreSQL it measures.
    let mut front = 0_i64;
    let mut peak_mib = 0.0_f64;
    loop {
        tokio::time::sleep(POLL).await;
        if let Some(status) = sender.try_wait()? {
            anyhow::bail!(
                "the sender exited early ({status}); its log is {}",
                log_path.display()
            );
        }
        peak_mib = peak_mib.max(peak_rss_mib(pid).unwrap_or(0.0));
        let pending: Option<i64> = sqlx::query_scalar(
            "SELECT min(id) FROM deliveries WHERE id >= $1 AND status IN ('queued', 'sending') AND kind = 'campaign'",
        )
        .bind(front)
        .fetch_one(pool)
        .await?;
        match pending {
            Some(id) => front = id,
            None => break,
        }
        anyhow::ensure!(
            started.elapsed() < SEND_TIMEOUT,
            "the send did not finish in {} s; the sender's log is {}",
            SEND_TIMEOUT.as_secs(),
            log_path.display()
        );
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = ticks_to_secs(process_cpu_ticks(pid).unwrap_or(0));
    peak_mib = peak_mib.max(peak_rss_mib(pid).unwrap_or(0.0));
    let machine_cpu = ticks_to_secs(machine_cpu_ticks().saturating_sub(cpu_before));
    let postgres_cpu = ticks_to_secs(
        postgres_cpu_ticks()
            .iter()
            .map(|(pid, &ticks)| {
                ticks.saturating_sub(postgres_before.get(pid).copied().unwrap_or(0))
            })
            .sum(),
    );
    let sink_cpu = sink.cpu_secs();
    let status = terminate(&mut sender).await?;
    anyhow::ensure!(
        status.success(),
        "the sender did not stop cleanly ({status}); its log is {}",
        log_path.display()
    );
    let accepted = sink.stop().await?;

    let outcomes: Vec<(String, i64)> = sqlx::query_as(
        "SELECT status, count(*) FROM deliveries WHERE campaign_id = $1 AND kind = 'campaign' GROUP BY status ORDER BY status",
    )
    .bind(campaign)
    .fetch_all(pool)
    .await?;
    anyhow::ensure!(
        outcomes == [("sent".to_owned(), recipients)],
        "deliveries by status: {outcomes:?}, expected all {recipients} sent; the sender's log is {}",
        log_path.display()
    );
    if let Some(record) = dkim_record {
        let log = std::fs::read_to_string(&log_path)?;
        anyhow::ensure!(
            log.lines()
                .any(|l| l.contains("DKIM keys loaded") && l.contains(record)),
            "the sender did not load the DKIM key {record}; its log is {}",
            log_path.display()
        );
    }
    std::fs::remove_file(&log_path)?;
    Ok(SenderResult {
        phase: Phase {
            secs,
            accepted,
            sink_cpu,
            machine_cpu,
        },
        cpu,
        peak_mib,
        postgres_cpu,
    })
}

/// `postino sink` as a child process, counting only (it keeps no messages).
#[derive(Debug)]
struct SinkProcess {
    child: Child,
    addr: SocketAddr,
    /// Its remaining standard output, read to the end once it stops.
    output: JoinHandle<Vec<String>>,
}

impl SinkProcess {
    /// Starts a sink on a free port and waits until it listens.
    async fn start(postino: &Path) -> anyhow::Result<Self> {
        let mut child = Command::new(postino)
            .args(["sink", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {} sink", postino.display()))?;
        let stdout = child.stdout.take().context("the sink has no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .context("the sink did not start in 10 s")??
            .context("the sink exited before listening")?;
        // "postino sink listening on 127.0.0.1:PORT (…)"
        let addr = first
            .strip_prefix("postino sink listening on ")
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|a| a.parse().ok())
            .with_context(|| format!("unexpected first line from the sink: {first}"))?;
        let output = tokio::spawn(async move {
            let mut rest = Vec::new();
            while let Ok(Some(line)) = lines.next_line().await {
                rest.push(line);
            }
            rest
        });
        Ok(Self {
            child,
            addr,
            output,
        })
    }

    fn cpu_secs(&self) -> f64 {
        let ticks = self.child.id().and_then(process_cpu_ticks);
        ticks_to_secs(ticks.unwrap_or(0))
    }

    /// Stops the sink; returns how many messages it accepted, as it reports
    /// on its way out.
    async fn stop(mut self) -> anyhow::Result<u64> {
        terminate(&mut self.child).await?;
        let lines = self.output.await?;
        // "accepted N messages, refused … over M connections"
        lines
            .iter()
            .find_map(|l| {
                l.strip_prefix("accepted ")?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
            .with_context(|| format!("the sink did not report its count: {lines:?}"))
    }
}

/// Sends SIGTERM and waits for the process to exit.
async fn terminate(child: &mut Child) -> anyhow::Result<ExitStatus> {
    let pid = child.id().context("the process has already been reaped")?;
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await?;
    anyhow::ensure!(status.success(), "kill -TERM {pid} failed");
    match tokio::time::timeout(Duration::from_secs(30), child.wait()).await {
        Ok(status) => Ok(status?),
        Err(_) => {
            child.kill().await?;
            anyhow::bail!("process {pid} ignored SIGTERM for 30 s and was killed")
        }
    }
}

fn ticks_to_secs(ticks: u64) -> f64 {
    #[allow(clippy::cast_precision_loss, reason = "CPU times for display")]
    let ticks = ticks as f64;
    ticks / TICKS_PER_SECOND
}

/// A process's name and its user plus system CPU time so far, in ticks,
/// from `/proc/<pid>/stat`.
fn process_stat(pid: u32) -> Option<(String, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid …": comm may hold spaces, so split at the last ')'.
    let (head, rest) = stat.rsplit_once(')')?;
    let name = head.split_once('(')?.1.to_owned();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of the line (utime, stime); `rest` starts at field 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((name, utime + stime))
}

fn process_cpu_ticks(pid: u32) -> Option<u64> {
    process_stat(pid).map(|(_, ticks)| ticks)
}

/// CPU ticks of every live PostgreSQL process, by pid.
fn postgres_cpu_ticks() -> HashMap<u32, u64> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let (name, ticks) = process_stat(pid)?;
            (name == "postgres").then_some((pid, ticks))
        })
        .collect()
}

/// Busy CPU ticks of the whole machine since boot (every field of the
/// `cpu` line of `/proc/stat` but idle and iowait).
fn machine_cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(cpu) = stat.lines().find_map(|l| l.strip_prefix("cpu ")) else {
        return 0;
    };
    // user nice system idle iowait irq softirq steal (guest time is
    // already counted in user).
    cpu.split_whitespace()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .filter_map(|(_, v)| v.parse::<u64>().ok())
        .sum()
}

/// A process's peak resident memory so far (VmHWM), in MiB.
fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

fn print_table(runs: &[Run], connections: u32) {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let cells = |cell: &dyn Fn(&Run) -> String| -> String {
        runs.iter().map(cell).collect::<Vec<_>>().join(" | ")
    };
    let row = |measure: &str, target: &str, cell: &dyn Fn(&Run) -> String| {
        println!("| {measure} | {} | {target} |", cells(cell));
    };
    let check = |ok: bool| if ok { "✓" } else { "✗" };
    let busy = |phase: &Phase| phase.machine_cpu / phase.secs;

    println!();
    println!(
        "Send over {connections} SMTP connections into `postino sink`, all on this machine ({cores} cores); \
         campaign HTML body {} bytes with `{{{{ subscriber.name }}}}` and `{{{{ unsubscribe_url }}}}`, \
         text part generated; reference `smtp-source -s {connections} -m <recipients> -l {REFERENCE_PAYLOAD} -d -N \
         -f bench@example.com -t rcpt@example.org <sink>`",
        body_html().len()
    );
    println!();
    println!(
        "| measure | {} | target |",
        cells(&|r| format!("{} recipients", r.recipients))
    );
    println!("|---|{}---|", "---|".repeat(runs.len()));
    row(
        "enqueue, scheduler in-process (not part of the send)",
        "",
        &|r| format!("{:.1} s", r.enqueue_secs),
    );
    row("`smtp-source` → sink (ceiling)", "", &|r| {
        format!(
            "{:.0} msg/s ({:.1} s)",
            r.rate(&r.reference),
            r.reference.secs
        )
    });
    row("Postino sender → sink, from process start", "", &|r| {
        format!("{:.0} msg/s ({:.1} s)", r.rate(&r.send), r.send.secs)
    });
    row(
        "Postino / ceiling",
        &format!("≥ {MIN_SHARE_OF_CEILING:.2}"),
        &|r| {
            format!(
                "{:.2} {}",
                r.share_of_ceiling(),
                check(r.share_of_ceiling() >= MIN_SHARE_OF_CEILING)
            )
        },
    );
    row("sender CPU per 1,000 messages", "", &|r| {
        format!(
            "{:.3} s ({:.1} s in all)",
            r.sender_cpu_per_thousand(),
            r.sender_cpu
        )
    });
    row(
        "sender peak RSS",
        &format!("< {MAX_PEAK_RSS_MIB:.0} MiB"),
        &|r| {
            format!(
                "{:.1} MiB {}",
                r.sender_peak_mib,
                check(r.sender_peak_mib < MAX_PEAK_RSS_MIB)
            )
        },
    );
    if runs.iter().any(|r| r.signed.is_some()) {
        fn signed(r: &Run) -> Option<(DkimAlgorithm, &SenderResult)> {
            r.signed.as_ref().map(|(a, s)| (*a, s))
        }
        row("Postino sender, every message DKIM-signed", "", &|r| {
            signed(r).map_or_else(String::new, |(a, s)| {
                format!("{:.0} msg/s ({:.1} s), {a}", r.rate(&s.phase), s.phase.secs)
            })
        });
        row(
            "DKIM-signed / unsigned",
            &format!("≥ {MIN_SHARE_WITH_DKIM:.2}"),
            &|r| {
                r.dkim_share().map_or_else(String::new, |share| {
                    format!("{share:.2} {}", check(share >= MIN_SHARE_WITH_DKIM))
                })
            },
        );
        row("sender CPU per 1,000 messages, DKIM-signed", "", &|r| {
            signed(r).map_or_else(String::new, |(_, s)| {
                #[allow(clippy::cast_precision_loss, reason = "for display")]
                let n = r.recipients as f64;
                format!("{:.3} s ({:.1} s in all)", s.cpu * 1000.0 / n, s.cpu)
            })
        });
        row("sender peak RSS, DKIM-signed", "", &|r| {
            signed(r).map_or_else(String::new, |(_, s)| format!("{:.1} MiB", s.peak_mib))
        });
        row("machine busy, cores: DKIM-signed run", "", &|r| {
            signed(r).map_or_else(String::new, |(_, s)| format!("{:.2}", busy(&s.phase)))
        });
    }
    row("PostgreSQL CPU during the send", "", &|r| {
        format!("{:.1} s", r.postgres_cpu)
    });
    row("sink CPU: `smtp-source` run / Postino run", "", &|r| {
        format!("{:.1} s / {:.1} s", r.reference.sink_cpu, r.send.sink_cpu)
    });
    row(
        "machine busy, cores: `smtp-source` run / Postino run",
        &format!("of {cores}"),
        &|r| format!("{:.2} / {:.2}", busy(&r.reference), busy(&r.send)),
    );
    row(
        "sink count: `smtp-source` run / Postino run",
        "= recipients",
        &|r| {
            let n = u64::try_from(r.recipients).unwrap_or(0);
            format!(
                "{} / {} {}",
                r.reference.accepted,
                r.send.accepted,
                check(r.reference.accepted == n && r.send.accepted == n)
            )
        },
    );
    if let [small, large] = runs {
        println!();
        println!(
            "memory check: peak RSS {:.1} MiB at {} recipients, {:.1} MiB at {} ({:+.1}%; allowed up to {:+.0}%) {}",
            small.sender_peak_mib,
            small.recipients,
            large.sender_peak_mib,
            large.recipients,
            (large.sender_peak_mib / small.sender_peak_mib - 1.0) * 100.0,
            (RSS_GROWTH_ALLOWED - 1.0) * 100.0,
            check(large.sender_peak_mib <= small.sender_peak_mib * RSS_GROWTH_ALLOWED)
        );
    }
}
