//! `postino-bench upload-field`: the server's memory while it refuses an
//! oversized form field on `POST /api/v1/imports` (issue 13, finding 4).
//!
//! The application runs in this process, so its resident set is this
//! process's: idle RSS is read after start-up and one small request, the
//! peak-RSS mark is then reset (`/proc/self/clear_refs`) and read again
//! (`VmHWM`) after the upload. The client streams the field from one 64 KiB
//! buffer over a plain socket, so it adds nothing to the figure.

use std::time::Instant;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CHUNK: usize = 64 * 1024;

/// A `/proc/self/status` field in KiB (`VmRSS`, `VmHWM`).
fn status_kib(field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/self/status"))
}

fn mib(kib: u64) -> f64 {
    #[allow(clippy::cast_precision_loss, reason = "a figure for display")]
    let v = kib as f64 / 1024.0;
    v
}

/// Sends one multipart upload whose `mode` field is `field_mib` MiB, and
/// returns the status line and the body of the answer.
async fn send(base: &str, token: &str, field_mib: u64) -> anyhow::Result<(String, String)> {
    let address = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    let boundary = "postino-bench-boundary";
    let head = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"mode\"\r\n\r\n");
    let tail = format!(
        "\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.csv\"\r\n\
         Content-Type: text/csv\r\n\r\nemail\na@example.com\n\r\n--{boundary}--\r\n"
    );
    let field_bytes = field_mib * 1024 * 1024;
    let length = head.len() as u64 + field_bytes + tail.len() as u64;
    let request = format!(
        "POST /api/v1/imports HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {length}\r\n\
         Connection: close\r\n\r\n{head}"
    );
    stream.write_all(request.as_bytes()).await?;
    let chunk = vec![b'x'; CHUNK];
    let mut sent = 0u64;
    while sent < field_bytes {
        let n = usize::try_from((field_bytes - sent).min(CHUNK as u64)).unwrap_or(CHUNK);
        if stream.write_all(&chunk[..n]).await.is_err() {
            // The server answered and closed early: read what it said.
            break;
        }
        sent += n as u64;
    }
    let _ = stream.write_all(tail.as_bytes()).await;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.lines().next().unwrap_or_default().to_owned();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Runs the benchmark with a field of `field_mib` MiB.
///
/// # Errors
///
/// If the application cannot start or the upload cannot be sent.
pub(crate) async fn run(field_mib: u64) -> anyhow::Result<()> {
    let run = crate::start().await?;
    let token = postino_app::commands::create_token(&run.pool, "bench").await?;
    // Warm up: one small refused field, so allocator pools and lazily
    // built state count as idle.
    let (status, _) = send(&run.base, &token, 0).await?;
    anyhow::ensure!(status.contains("422"), "warm-up answered {status}");
    let idle = status_kib("VmRSS")?;
    // Reset the peak-RSS mark to the current RSS (Linux 4.0+).
    std::fs::write("/proc/self/clear_refs", "5").context("cannot reset VmHWM")?;
    let started = Instant::now();
    let (status, body) = send(&run.base, &token, field_mib).await?;
    let elapsed = started.elapsed();
    let peak = status_kib("VmHWM")?;
    run.shutdown.cancel();
    println!("oversized multipart field on POST /api/v1/imports ({field_mib} MiB `mode`)");
    println!("  answer:        {status}, {} bytes: {body}", body.len());
    println!("  idle RSS:      {:.1} MiB", mib(idle));
    println!("  peak RSS:      {:.1} MiB", mib(peak));
    println!(
        "  growth:        {:.1} MiB ({:.2}x idle)",
        mib(peak.saturating_sub(idle)),
        {
            #[allow(clippy::cast_precision_loss, reason = "a ratio for display")]
            let r = peak as f64 / idle.max(1) as f64;
            r
        }
    );
    println!("  upload time:   {:.2} s", elapsed.as_secs_f64());
    anyhow::ensure!(status.contains("422"), "expected a 422, got {status}");
    Ok(())
}
