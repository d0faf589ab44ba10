//! The child's side: read a request a line, answer a reply a line.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsStr;
use std::io::{self, BufRead, Read, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};

use postino_compose::{CompiledCampaign, TemplateError};

use crate::protocol::{Incoming, Reply, write_rendered};

/// The first argument that makes a binary serve as a sandbox; the second is
/// the address-space limit in bytes.
pub const SUBCOMMAND: &str = "template-sandbox";

/// Compiled templates a child keeps. A sender renders a few campaigns at a
/// time; one that comes back after being forgotten is compiled again.
const KEEP: usize = 32;

/// The longest request line: a campaign's parts are at most 512 KiB each,
/// which JSON escaping can make six times larger.
const MAX_REQUEST: u64 = 16 * 1024 * 1024;

/// Serves as a sandbox and exits if this process was started with
/// [`SUBCOMMAND`]; returns at once otherwise. Call it first thing in `main`,
/// before any thread or runtime starts.
pub fn serve_if_asked() {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() != Some(OsStr::new(SUBCOMMAND)) {
        return;
    }
    let memory = args
        .next()
        .and_then(|a| a.to_str().and_then(|s| s.parse::<u64>().ok()));
    if let Some(bytes) = memory
        && let Err(e) = limit_self(bytes)
    {
        // Without its limits a sandbox is no sandbox: refuse to serve.
        let _ = writeln!(io::stderr(), "template sandbox: cannot set limits: {e}");
        std::process::exit(2);
    }
    // Whole replies in one write: a rendered message's parts hold newlines,
    // at each of which a bare stdout would write.
    let out = io::BufWriter::with_capacity(1 << 16, io::stdout().lock());
    let served = serve(io::stdin().lock(), out);
    std::process::exit(i32::from(served.is_err()));
}

/// Limits this process: `bytes` of address space (an allocation past it
/// fails, and a Rust process aborts on that), no files written, no core
/// dump holding subscriber data.
fn limit_self(bytes: u64) -> io::Result<()> {
    use rlimit::Resource;
    Resource::AS.set(bytes, bytes)?;
    Resource::FSIZE.set(0, 0)?;
    Resource::CORE.set(0, 0)?;
    Ok(())
}

/// Answers requests from `input` on `output` until `input` ends.
///
/// # Errors
///
/// If reading or writing fails, or a request is malformed: the parent
/// treats a child that stops answering as broken and starts another.
pub fn serve(mut input: impl BufRead, mut output: impl Write) -> io::Result<()> {
    let mut compiled: HashMap<u64, CompiledCampaign> = HashMap::new();
    let mut order: VecDeque<u64> = VecDeque::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = (&mut input)
            .take(MAX_REQUEST)
            .read_until(b'\n', &mut line)?;
        if read == 0 {
            return Ok(());
        }
        if line.last() != Some(&b'\n') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request too long",
            ));
        }
        let request: Incoming = serde_json::from_slice(&line)?;
        let reply = match request {
            Incoming::Compile { id, source } => {
                match guarded(|| CompiledCampaign::compile(&source.as_campaign())) {
                    Ok(c) => {
                        if compiled.len() >= KEEP
                            && let Some(oldest) = order.pop_front()
                        {
                            compiled.remove(&oldest);
                        }
                        compiled.insert(id, c);
                        order.push_back(id);
                        Reply::Compiled
                    }
                    Err(e) => Reply::Refused(e),
                }
            }
            Incoming::Render {
                id,
                recipient,
                unsubscribe_url,
            } => match compiled.get(&id) {
                Some(c) => {
                    render_one(&mut output, c, &recipient, &unsubscribe_url)?;
                    output.flush()?;
                    continue;
                }
                None => Reply::Unknown,
            },
            Incoming::RenderMany { id, recipients } => match compiled.get(&id) {
                Some(c) => {
                    for (recipient, unsubscribe_url) in &recipients {
                        render_one(&mut output, c, recipient, unsubscribe_url)?;
                    }
                    output.flush()?;
                    continue;
                }
                None => Reply::Unknown,
            },
        };
        serde_json::to_writer(&mut output, &reply)?;
        output.write_all(b"\n")?;
        output.flush()?;
    }
}

/// Writes the reply for one recipient: the rendered message, or the
/// template's error for them.
fn render_one(
    output: &mut impl Write,
    compiled: &CompiledCampaign,
    recipient: &postino_compose::Recipient,
    unsubscribe_url: &str,
) -> io::Result<()> {
    match guarded(|| compiled.render(recipient, unsubscribe_url)) {
        Ok(r) => write_rendered(output, &r),
        Err(e) => {
            serde_json::to_writer(&mut *output, &Reply::Refused(e))?;
            output.write_all(b"\n")
        }
    }
}

/// Runs `f`, turning a panic in the template engine into the template's
/// error rather than the end of this child.
fn guarded<T>(f: impl FnOnce() -> Result<T, TemplateError>) -> Result<T, TemplateError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(TemplateError {
            field: "body",
            line: None,
            reason: "the template engine failed on this template".to_owned(),
        })
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::protocol::{Answer, Outgoing, Source, rendered_from};
    use postino_compose::{CampaignSource, Recipient};
    use postino_domain::BodyFormat;

    fn line(request: &Outgoing<'_>) -> String {
        format!("{}\n", serde_json::to_string(request).unwrap())
    }

    /// The replies to `input`, with a rendered message's parts read after
    /// its line.
    fn replies(input: &str) -> Vec<Answer> {
        let mut out = Vec::new();
        serve(input.as_bytes(), &mut out).unwrap();
        let mut rest = &out[..];
        let mut answers = Vec::new();
        while let Some(newline) = rest.iter().position(|&b| b == b'\n') {
            let reply: Reply = serde_json::from_slice(&rest[..newline]).unwrap();
            rest = &rest[newline + 1..];
            answers.push(match reply {
                Reply::Compiled => Answer::Compiled,
                Reply::Unknown => Answer::Unknown,
                Reply::Refused(e) => Answer::Refused(e),
                Reply::Rendered {
                    subject,
                    html,
                    text,
                } => {
                    let len = subject + html.unwrap_or(0) + text;
                    let parts = rest[..len].to_vec();
                    rest = &rest[len..];
                    Answer::Rendered(rendered_from(parts, subject, html).unwrap())
                }
            });
        }
        answers
    }

    fn source(body: &str) -> Source {
        Source::from_campaign(&CampaignSource {
            uuid: uuid::Uuid::nil(),
            name: "n",
            subject: "Hi {{ subscriber.name }}",
            body,
            format: BodyFormat::Html,
            text_body: None,
            layout: None,
        })
    }

    #[test]
    fn compiles_once_renders_many_and_says_what_it_does_not_know() {
        let good = source("<p>{{ subscriber.email }}</p>");
        let bad = source("{{ 1 / 0 }}");
        let r = Recipient::sample();
        let render = |id| Outgoing::Render {
            id,
            recipient: &r,
            unsubscribe_url: "u",
        };
        let input = [
            line(&render(1)),
            line(&Outgoing::Compile {
                id: 1,
                source: &good,
            }),
            line(&render(1)),
            line(&Outgoing::Compile {
                id: 2,
                source: &bad,
            }),
            line(&render(2)),
        ]
        .concat();
        let out = replies(&input);
        assert!(matches!(out[0], Answer::Unknown));
        assert!(matches!(out[1], Answer::Compiled));
        match &out[2] {
            Answer::Rendered(rendered) => {
                assert_eq!(rendered.subject, "Hi Jane Doe");
                assert!(
                    rendered
                        .html
                        .as_deref()
                        .unwrap()
                        .contains("jane.doe@example.com")
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(&out[3], Answer::Refused(e) if e.reason.contains("sample subscriber")));
        assert!(matches!(out[4], Answer::Unknown));
    }

    #[test]
    fn renders_many_recipients_with_one_reply_each_in_order() {
        let good = source("<p>{{ 10 // (subscriber.attributes.n | default(1)) }}</p>");
        let mut one = Recipient::sample();
        one.attributes.insert("n".into(), 5.into());
        let mut zero = Recipient::sample();
        zero.attributes.insert("n".into(), 0.into());
        let recipients = [(&one, "u"), (&zero, "u"), (&one, "u")];
        let input = [
            line(&Outgoing::RenderMany {
                id: 3,
                recipients: &recipients,
            }),
            line(&Outgoing::Compile {
                id: 3,
                source: &good,
            }),
            line(&Outgoing::RenderMany {
                id: 3,
                recipients: &recipients,
            }),
        ]
        .concat();
        let out = replies(&input);
        assert_eq!(out.len(), 5, "{out:?}");
        assert!(matches!(out[0], Answer::Unknown));
        assert!(matches!(out[1], Answer::Compiled));
        assert!(matches!(&out[2], Answer::Rendered(r) if r.html.as_deref() == Some("<p>2</p>")));
        assert!(matches!(&out[3], Answer::Refused(_)));
        assert!(matches!(&out[4], Answer::Rendered(_)));
    }

    #[test]
    fn a_malformed_request_ends_the_child() {
        let mut out = Vec::new();
        assert!(serve(&b"not json\n"[..], &mut out).is_err());
    }
}
