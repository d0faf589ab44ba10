//! One SMTP conversation (RFC 5321), server side.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use rand::Rng;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;

use crate::{Received, SinkConfig, State};

/// Largest message accepted, also advertised with SIZE.
const MAX_MESSAGE: usize = 50 * 1024 * 1024;
/// Longest command line accepted (RFC 5321 says 512; be lenient, but bounded).
const MAX_LINE: usize = 4096;

enum Verdict {
    Accept,
    Temp,
    Perm,
    Policy,
    SlowDown,
}

/// Whether the throttled domain has room for one more recipient now.
fn throttle_admits(config: &SinkConfig, state: &State, recipient: &str) -> bool {
    let Some(t) = &config.throttle else {
        return true;
    };
    let domain = recipient.rsplit_once('@').map_or("", |(_, d)| d);
    if !domain.eq_ignore_ascii_case(&t.domain) {
        return true;
    }
    let Ok(mut window) = state.throttle_window.lock() else {
        return true;
    };
    let now = std::time::Instant::now();
    while window
        .front()
        .is_some_and(|at| now.duration_since(*at) >= std::time::Duration::from_secs(1))
    {
        window.pop_front();
    }
    if window.len() >= t.per_second as usize {
        return false;
    }
    window.push_back(now);
    true
}

fn verdict(config: &SinkConfig, state: &State, recipient: &str) -> Verdict {
    if !throttle_admits(config, state, recipient) {
        return Verdict::SlowDown;
    }
    let local = recipient
        .split('@')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if local.starts_with("tempfail") {
        return Verdict::Temp;
    }
    if local.starts_with("permfail") {
        return Verdict::Perm;
    }
    if local.starts_with("policyfail") {
        return Verdict::Policy;
    }
    if config.temp_fail > 0.0 || config.perm_fail > 0.0 {
        let roll: f64 = rand::rng().random();
        if roll < config.perm_fail {
            return Verdict::Perm;
        }
        if roll < config.perm_fail + config.temp_fail {
            return Verdict::Temp;
        }
    }
    Verdict::Accept
}

fn decode_base64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn credentials_match(config: &SinkConfig, user: &str, password: &str) -> bool {
    config
        .credentials
        .as_ref()
        .is_none_or(|(u, p)| u == user && p == password)
}

fn auth_reply(ok: bool) -> &'static [u8] {
    if ok {
        b"235 2.7.0 Authentication succeeded\r\n"
    } else {
        b"535 5.7.8 Authentication credentials invalid\r\n"
    }
}

/// The address inside `FROM:<…>` / `TO:<…>`, parameters ignored.
fn path_of(arg: &str) -> String {
    let arg = arg.trim();
    match (arg.find('<'), arg.find('>')) {
        (Some(a), Some(b)) if b > a => arg[a + 1..b].to_owned(),
        _ => arg.split_whitespace().next().unwrap_or_default().to_owned(),
    }
}

pub(crate) async fn serve(
    stream: TcpStream,
    id: u64,
    config: &SinkConfig,
    state: &State,
) -> std::io::Result<()> {
    let (read, write) = stream.into_split();
    let mut reader = BufReader::with_capacity(64 * 1024, read);
    let mut out = BufWriter::new(write);
    out.write_all(b"220 postino-sink ESMTP ready (test server, delivers nothing)\r\n")
        .await?;
    out.flush().await?;

    let mut line = Vec::with_capacity(512);
    let mut mail_from: Option<String> = None;
    let mut rcpts: Vec<String> = Vec::new();
    let mut auth_login_step = 0u8;
    let mut login_user = String::new();
    loop {
        line.clear();
        let n = (&mut reader)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        if auth_login_step > 0 {
            // AUTH LOGIN: username, then password, both base64.
            auth_login_step += 1;
            if auth_login_step == 2 {
                login_user = decode_base64(text);
                out.write_all(b"334 UGFzc3dvcmQ6\r\n").await?;
            } else {
                auth_login_step = 0;
                let ok = credentials_match(config, &login_user, &decode_base64(text));
                out.write_all(auth_reply(ok)).await?;
            }
            out.flush().await?;
            continue;
        }
        let (verb, arg) = text.split_once(' ').unwrap_or((text, ""));
        let reply: &[u8] = match verb.to_ascii_uppercase().as_str() {
            "EHLO" if config.pipelining => b"250-postino-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250-AUTH PLAIN LOGIN\r\n250 SIZE 52428800\r\n",
            "EHLO" => b"250-postino-sink\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250-AUTH PLAIN LOGIN\r\n250 SIZE 52428800\r\n",
            "HELO" => b"250 postino-sink\r\n",
            "AUTH" => {
                if arg.to_ascii_uppercase().starts_with("LOGIN") {
                    auth_login_step = 1;
                    b"334 VXNlcm5hbWU6\r\n"
                } else {
                    // AUTH PLAIN <base64 of "\0user\0password">
                    let plain = decode_base64(arg.split_whitespace().nth(1).unwrap_or_default());
                    let mut parts = plain.split('\0').skip(1);
                    let (user, password) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
                    auth_reply(credentials_match(config, user, password))
                }
            }
            "MAIL" => {
                mail_from = Some(path_of(arg.get(5..).unwrap_or_default()));
                rcpts.clear();
                b"250 2.1.0 OK\r\n"
            }
            "RCPT" => {
                if mail_from.is_none() {
                    b"503 5.5.1 MAIL first\r\n"
                } else {
                    let rcpt = path_of(arg.get(3..).unwrap_or_default());
                    match verdict(config, state, &rcpt) {
                        Verdict::SlowDown => {
                            state.refused_throttled.fetch_add(1, Ordering::Relaxed);
                            out.write_all(b"421 4.7.0 Too many messages for this domain, slow down and try again later\r\n").await?;
                            out.flush().await?;
                            return Ok(());
                        }
                        Verdict::Accept => {
                            rcpts.push(rcpt);
                            b"250 2.1.5 OK\r\n"
                        }
                        Verdict::Temp => {
                            state.refused_temp.fetch_add(1, Ordering::Relaxed);
                            b"451 4.3.0 Temporary failure injected by the sink, try again later\r\n"
                        }
                        Verdict::Perm => {
                            state.refused_perm.fetch_add(1, Ordering::Relaxed);
                            b"550 5.1.1 Mailbox unavailable (permanent failure injected by the sink)\r\n"
                        }
                        Verdict::Policy => {
                            state.refused_perm.fetch_add(1, Ordering::Relaxed);
                            b"554 5.7.1 Message refused by policy (injected by the sink)\r\n"
                        }
                    }
                }
            }
            "DATA" => {
                if rcpts.is_empty() {
                    b"554 5.5.1 No valid recipients\r\n"
                } else {
                    out.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await?;
                    out.flush().await?;
                    let Some(data) = read_data(&mut reader).await? else {
                        out.write_all(b"552 5.3.4 Message too big\r\n").await?;
                        out.flush().await?;
                        continue;
                    };
                    if !config.delay.is_zero() {
                        tokio::time::sleep(config.delay).await;
                    }
                    if config.drop > 0.0 && rand::rng().random::<f64>() < config.drop {
                        state.dropped.fetch_add(1, Ordering::Relaxed);
                        return Ok(());
                    }
                    let number = state.accepted.fetch_add(1, Ordering::Relaxed) + 1;
                    if let Some(dir) = &config.store {
                        tokio::fs::write(dir.join(format!("{number}.eml")), &data).await?;
                    }
                    if let Ok(mut per) = state.per_recipient.lock() {
                        for r in &rcpts {
                            *per.entry(r.to_ascii_lowercase()).or_default() += 1;
                        }
                    }
                    if config.keep
                        && let Ok(mut messages) = state.messages.lock()
                    {
                        messages.push(Received {
                            mail_from: mail_from.clone().unwrap_or_default(),
                            rcpt_to: std::mem::take(&mut rcpts),
                            data,
                            at: SystemTime::now(),
                            connection: id,
                        });
                    }
                    mail_from = None;
                    rcpts.clear();
                    b"250 2.0.0 OK queued\r\n"
                }
            }
            "RSET" => {
                mail_from = None;
                rcpts.clear();
                b"250 2.0.0 OK\r\n"
            }
            "NOOP" => b"250 2.0.0 OK\r\n",
            "QUIT" => {
                out.write_all(b"221 2.0.0 Bye\r\n").await?;
                out.flush().await?;
                return Ok(());
            }
            _ => b"500 5.5.2 Command not recognized\r\n",
        };
        out.write_all(reply).await?;
        // With PIPELINING the client may have sent more commands already:
        // answer them all before flushing, as real servers do.
        if reader.buffer().is_empty() {
            out.flush().await?;
        }
    }
}

/// Reads DATA up to the lone dot, undoing dot-stuffing. `None` if too big.
async fn read_data<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut data = Vec::with_capacity(8 * 1024);
    let mut line = Vec::with_capacity(1024);
    let mut too_big = false;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed in DATA",
            ));
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok((!too_big).then_some(data));
        }
        let content = if line.starts_with(b"..") {
            &line[1..]
        } else {
            &line[..]
        };
        if data.len() + content.len() > MAX_MESSAGE {
            too_big = true;
            data.clear();
        }
        if !too_big {
            data.extend_from_slice(content);
        }
    }
}
