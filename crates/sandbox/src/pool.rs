//! The parent's side: a pool of child processes, each answering one
//! request at a time.

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use postino_compose::{CampaignSource, Recipient, Rendered, TemplateError};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::Semaphore;

use crate::child::SUBCOMMAND;
use crate::protocol::{Answer, Outgoing, Reply, Source, rendered_from};

/// The longest reply line: a template error, whose reason may quote a
/// little of the template.
const MAX_LINE: u64 = 1024 * 1024;
/// The most a rendered message's parts may hold: three parts, each bounded
/// by the engine's fuel to about 12 MiB of output.
const MAX_RENDERED: usize = 64 * 1024 * 1024;

/// How far a sandbox may go.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Address space of each child, in bytes.
    pub memory_bytes: u64,
    /// Longest wait for one compile or render; the child is killed after it.
    pub timeout: Duration,
    /// Children at work at once; renders beyond wait their turn.
    pub processes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 512 * 1024 * 1024,
            timeout: Duration::from_secs(10),
            processes: std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
        }
    }
}

/// Why a template could not be compiled or rendered.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The template is at fault, including one stopped for going past the
    /// sandbox's limits.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// No child could be started or talked to: not the template's fault,
    /// so a delivery waits rather than fails.
    #[error("the template sandbox is unavailable: {0}")]
    Unavailable(String),
}

/// The pool. Cheap to clone; clones share the children.
#[derive(Debug, Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The binary started as a child (this one, normally).
    program: PathBuf,
    limits: Limits,
    idle: Mutex<Vec<Worker>>,
    /// One permit a child at work, so at most `limits.processes` run.
    slots: Semaphore,
    /// Names compiled templates across every child.
    next_id: AtomicU64,
}

/// One child and its pipes.
#[derive(Debug)]
struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// A campaign's templates, compiled and checked by a child. Children that
/// have not seen it yet are sent its source on first use.
#[derive(Debug, Clone)]
pub struct Template {
    sandbox: Sandbox,
    id: u64,
    source: Arc<Source>,
}

/// What went wrong talking to one child.
enum Broken {
    /// It could not be written to or read from: it died, or was already dead.
    Io,
    /// It answered nonsense or too much.
    Protocol(String),
}

impl Sandbox {
    /// A pool that starts `program` with [`SUBCOMMAND`] for its children,
    /// as they are needed.
    #[must_use]
    pub fn new(program: PathBuf, limits: Limits) -> Self {
        let processes = limits.processes.max(1);
        Self {
            inner: Arc::new(Inner {
                program,
                limits,
                idle: Mutex::new(Vec::new()),
                slots: Semaphore::new(processes),
                next_id: AtomicU64::new(1),
            }),
        }
    }

    /// A pool of this very binary, which must call
    /// [`crate::serve_if_asked`] at the start of `main`.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] if the binary's path is unknown.
    pub fn of_this_binary(limits: Limits) -> Result<Self, Error> {
        let program = std::env::current_exe()
            .map_err(|e| Error::Unavailable(format!("cannot find this program: {e}")))?;
        Ok(Self::new(program, limits))
    }

    /// Compiles every part of a campaign and renders it once for a sample
    /// subscriber, in a child.
    ///
    /// # Errors
    ///
    /// [`Error::Template`] if the template is refused or went past the
    /// limits; [`Error::Unavailable`] if no child could do it.
    pub async fn compile(&self, source: &CampaignSource<'_>) -> Result<Template, Error> {
        let template = Template {
            sandbox: self.clone(),
            id: self.inner.next_id.fetch_add(1, Ordering::Relaxed),
            source: Arc::new(Source::from_campaign(source)),
        };
        match self.call(&template, None).await? {
            Answer::Compiled => Ok(template),
            Answer::Refused(e) => Err(e.into()),
            other => Err(Error::Unavailable(format!("unexpected reply {other:?}"))),
        }
    }

    /// Sends `template` (and renders it for `recipient`, if given) to a
    /// child, retrying once on a fresh child if the first could not be
    /// talked to at all: an idle child may have died for reasons of its own.
    async fn call(
        &self,
        template: &Template,
        recipient: Option<(&Recipient, &str)>,
    ) -> Result<Answer, Error> {
        let _slot = self
            .inner
            .slots
            .acquire()
            .await
            .map_err(|_| Error::Unavailable("the sandbox is closed".to_owned()))?;
        let limits = &self.inner.limits;
        let (mut worker, mut fresh) = match self.take_idle() {
            Some(w) => (w, false),
            None => (self.spawn()?, true),
        };
        loop {
            let exchanged =
                tokio::time::timeout(limits.timeout, worker.exchange(template, recipient)).await;
            match exchanged {
                Ok(Ok(reply)) => {
                    self.put_idle(worker);
                    return Ok(reply);
                }
                Ok(Err(Broken::Io)) if !fresh => {
                    let _ = worker.finish().await;
                    worker = self.spawn()?;
                    fresh = true;
                }
                Ok(Err(Broken::Io)) => {
                    let status = worker.finish().await;
                    return Err(self.stopped(status).into());
                }
                Ok(Err(Broken::Protocol(why))) => {
                    let _ = worker.finish().await;
                    return Err(Error::Unavailable(why));
                }
                Err(_) => {
                    let _ = worker.finish().await;
                    return Err(TemplateError {
                        field: "body",
                        line: None,
                        reason: format!(
                            "rendering took longer than {} s and was stopped",
                            limits.timeout.as_secs()
                        ),
                    }
                    .into());
                }
            }
        }
    }

    /// Sends a batch render to a child. If the child fails midway it is
    /// ended and `answers` keeps what came before; an error means no child
    /// could be started at all.
    async fn call_many(
        &self,
        template: &Template,
        recipients: &[(&Recipient, &str)],
        answers: &mut Vec<Answer>,
    ) -> Result<(), Error> {
        let _slot = self
            .inner
            .slots
            .acquire()
            .await
            .map_err(|_| Error::Unavailable("the sandbox is closed".to_owned()))?;
        let mut worker = match self.take_idle() {
            Some(w) => w,
            None => self.spawn()?,
        };
        let exchanged = tokio::time::timeout(
            self.inner.limits.timeout,
            worker.exchange_many(template, recipients, answers),
        )
        .await;
        match exchanged {
            Ok(Ok(())) => {
                self.put_idle(worker);
                Ok(())
            }
            Ok(Err(_)) | Err(_) => {
                // The child died or stalled on some recipient: the caller
                // renders those not answered one by one, to find which.
                let _ = worker.finish().await;
                Ok(())
            }
        }
    }

    /// The error for a child that died on a template.
    fn stopped(&self, status: Option<ExitStatus>) -> TemplateError {
        let mib = self.inner.limits.memory_bytes / (1024 * 1024);
        let how = status.map_or_else(|| "unknown".to_owned(), |s| s.to_string());
        tracing::warn!(status = %how, "a template sandbox died while rendering");
        TemplateError {
            field: "body",
            line: None,
            reason: format!(
                "rendering was stopped: the template needs more than {mib} MiB of memory"
            ),
        }
    }

    fn take_idle(&self) -> Option<Worker> {
        self.inner.idle.lock().ok()?.pop()
    }

    fn put_idle(&self, worker: Worker) {
        if let Ok(mut idle) = self.inner.idle.lock() {
            idle.push(worker);
        }
    }

    fn spawn(&self) -> Result<Worker, Error> {
        let mut child = Command::new(&self.inner.program)
            .arg(SUBCOMMAND)
            .arg(self.inner.limits.memory_bytes.to_string())
            // The child needs nothing from the environment, and secrets
            // passed that way (database URL, keys) stay out of its reach.
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // An aborting child prints why; that is the parent's to log.
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                Error::Unavailable(format!(
                    "cannot start {}: {e}",
                    self.inner.program.display()
                ))
            })?;
        match (child.stdin.take(), child.stdout.take()) {
            (Some(stdin), Some(stdout)) => Ok(Worker {
                child,
                stdin,
                stdout: BufReader::with_capacity(1 << 16, stdout),
            }),
            _ => Err(Error::Unavailable("the child has no pipes".to_owned())),
        }
    }
}

impl Template {
    /// Renders every part for one recipient, in a child.
    ///
    /// # Errors
    ///
    /// [`Error::Template`] if a part fails for this recipient or went past
    /// the limits; [`Error::Unavailable`] if no child could do it.
    pub async fn render(
        &self,
        recipient: &Recipient,
        unsubscribe_url: &str,
    ) -> Result<Rendered, Error> {
        match self
            .sandbox
            .call(self, Some((recipient, unsubscribe_url)))
            .await?
        {
            Answer::Rendered(r) => Ok(r),
            Answer::Refused(e) => Err(e.into()),
            other => Err(Error::Unavailable(format!("unexpected reply {other:?}"))),
        }
    }
}

impl Template {
    /// Renders every part for each recipient (with its unsubscribe URL),
    /// in one request to a child. Should the child die or stall on one of
    /// them, the recipients it had not answered are rendered one a request,
    /// so only the one at fault fails.
    pub async fn render_many(
        &self,
        recipients: &[(&Recipient, &str)],
    ) -> Vec<Result<Rendered, Error>> {
        let mut answers = Vec::with_capacity(recipients.len());
        if let Err(e) = self.sandbox.call_many(self, recipients, &mut answers).await {
            // No child could be started: each recipient would get the same.
            return recipients
                .iter()
                .map(|_| Err(Error::Unavailable(e.to_string())))
                .collect();
        }
        let mut results: Vec<Result<Rendered, Error>> = answers
            .into_iter()
            .map(|a| match a {
                Answer::Rendered(r) => Ok(r),
                Answer::Refused(e) => Err(e.into()),
                other => Err(Error::Unavailable(format!("unexpected reply {other:?}"))),
            })
            .collect();
        for (recipient, url) in recipients.iter().skip(results.len()) {
            results.push(self.render(recipient, url).await);
        }
        results
    }
}

impl Worker {
    /// Compiles `template` if no recipient is given; otherwise renders it,
    /// compiling first if this child has not seen it.
    async fn exchange(
        &mut self,
        template: &Template,
        recipient: Option<(&Recipient, &str)>,
    ) -> Result<Answer, Broken> {
        let compile = Outgoing::Compile {
            id: template.id,
            source: &template.source,
        };
        let Some((recipient, unsubscribe_url)) = recipient else {
            return self.ask(&compile).await;
        };
        let render = Outgoing::Render {
            id: template.id,
            recipient,
            unsubscribe_url,
        };
        match self.ask(&render).await? {
            Answer::Unknown => match self.ask(&compile).await? {
                Answer::Compiled => self.ask(&render).await,
                other => Ok(other),
            },
            other => Ok(other),
        }
    }

    /// Renders `template` for each of `recipients`, compiling first if this
    /// child has not seen it, pushing each answer onto `answers` as it
    /// comes: on an error, `answers` holds those received before it.
    async fn exchange_many(
        &mut self,
        template: &Template,
        recipients: &[(&Recipient, &str)],
        answers: &mut Vec<Answer>,
    ) -> Result<(), Broken> {
        let render = Outgoing::RenderMany {
            id: template.id,
            recipients,
        };
        self.send(&render).await?;
        let mut first = self.answer().await?;
        if matches!(first, Answer::Unknown) {
            let compile = Outgoing::Compile {
                id: template.id,
                source: &template.source,
            };
            match self.ask(&compile).await? {
                Answer::Compiled => {}
                Answer::Refused(e) => {
                    answers.extend(recipients.iter().map(|_| Answer::Refused(e.clone())));
                    return Ok(());
                }
                other => return Err(Broken::Protocol(format!("unexpected reply {other:?}"))),
            }
            self.send(&render).await?;
            first = self.answer().await?;
        }
        answers.push(first);
        while answers.len() < recipients.len() {
            answers.push(self.answer().await?);
        }
        Ok(())
    }

    async fn ask(&mut self, request: &Outgoing<'_>) -> Result<Answer, Broken> {
        self.send(request).await?;
        self.answer().await
    }

    async fn send(&mut self, request: &Outgoing<'_>) -> Result<(), Broken> {
        let mut line = serde_json::to_vec(request).map_err(|e| Broken::Protocol(e.to_string()))?;
        line.push(b'\n');
        self.stdin.write_all(&line).await.map_err(|_| Broken::Io)?;
        self.stdin.flush().await.map_err(|_| Broken::Io)
    }

    /// Reads one reply, with a rendered message's parts.
    async fn answer(&mut self) -> Result<Answer, Broken> {
        let mut reply = Vec::new();
        let read = (&mut self.stdout)
            .take(MAX_LINE)
            .read_until(b'\n', &mut reply)
            .await
            .map_err(|_| Broken::Io)?;
        if read == 0 {
            return Err(Broken::Io);
        }
        if reply.last() != Some(&b'\n') {
            return Err(Broken::Protocol("the reply is too long".to_owned()));
        }
        let reply: Reply =
            serde_json::from_slice(&reply).map_err(|e| Broken::Protocol(e.to_string()))?;
        Ok(match reply {
            Reply::Compiled => Answer::Compiled,
            Reply::Refused(e) => Answer::Refused(e),
            Reply::Unknown => Answer::Unknown,
            Reply::Rendered {
                subject,
                html,
                text,
            } => {
                let len = subject
                    .checked_add(html.unwrap_or(0))
                    .and_then(|n| n.checked_add(text))
                    .filter(|&n| n <= MAX_RENDERED)
                    .ok_or_else(|| {
                        Broken::Protocol("the rendered message is too large".to_owned())
                    })?;
                let mut parts = vec![0; len];
                self.stdout
                    .read_exact(&mut parts)
                    .await
                    .map_err(|_| Broken::Io)?;
                let rendered = rendered_from(parts, subject, html).ok_or_else(|| {
                    Broken::Protocol("the rendered parts are not text".to_owned())
                })?;
                Answer::Rendered(rendered)
            }
        })
    }

    /// Ends the child and says how it ended, if it did so promptly.
    async fn finish(mut self) -> Option<ExitStatus> {
        let _ = self.child.start_kill();
        tokio::time::timeout(Duration::from_secs(2), self.child.wait())
            .await
            .ok()
            .and_then(Result::ok)
    }
}
