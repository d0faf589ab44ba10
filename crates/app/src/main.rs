//! `postino`: the one binary. See `postino --help`.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use postino_app::{Application, Role as AppRole, Settings, commands, open_database, telemetry};
use postino_domain::{Password, Role};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "postino",
    version,
    about = "Self-hosted newsletters and campaigns"
)]
struct Cli {
    /// TOML configuration file.
    #[arg(long, global = true, env = "POSTINO_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Address to listen on (overrides http.listen).
        #[arg(long)]
        listen: Option<String>,
        /// Which roles this process runs.
        #[arg(long, value_enum, default_value_t = ServeRole::All)]
        role: ServeRole,
    },
    /// The quick start: database, a demo list, an admin login and a token, the server.
    Demo {
        /// Address to listen on (overrides http.listen).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Manage dashboard users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Import subscribers from a CSV file, with a progress bar and a summary.
    Import {
        /// The CSV file (comma, semicolon or tab; UTF-8 or Windows-1252).
        file: PathBuf,
        /// A list to act on, by id or exact name; repeat for several.
        #[arg(long = "list")]
        lists: Vec<String>,
        /// What to do with each address.
        #[arg(long, value_enum, default_value_t = ImportModeArg::Subscribe)]
        mode: ImportModeArg,
        /// Overwrite names and merge attributes of existing subscribers.
        #[arg(long)]
        overwrite: bool,
        /// The addresses were confirmed elsewhere: double opt-in memberships
        /// arrive confirmed.
        #[arg(long)]
        confirmed: bool,
    },
    /// Print the OpenAPI document of the REST API.
    Openapi,
    /// Print the effective configuration, passwords redacted.
    Config,
    /// A local SMTP server that captures mail and injects faults (never a relay).
    Sink {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:2525")]
        listen: std::net::SocketAddr,
        /// Share of recipients refused with 451 (0.0 to 1.0).
        #[arg(long, default_value_t = 0.0)]
        temp_fail: f64,
        /// Share of recipients refused with 550 (0.0 to 1.0).
        #[arg(long, default_value_t = 0.0)]
        perm_fail: f64,
        /// Share of messages after which the connection is dropped without a reply (0.0 to 1.0).
        #[arg(long, default_value_t = 0.0)]
        drop: f64,
        /// Delay before answering each message, in milliseconds.
        #[arg(long, default_value_t = 0)]
        delay_ms: u64,
        /// Write each accepted message to this folder as an .eml file.
        #[arg(long)]
        store: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ServeRole {
    /// Everything this build has.
    All,
    /// The HTTP server (API, dashboard, public pages).
    Web,
    /// The scheduler: starts due campaigns and enqueues their recipients.
    Scheduler,
    /// The sender: delivers queued messages over SMTP.
    Sender,
}

#[derive(Clone, Copy, ValueEnum)]
enum ImportModeArg {
    Subscribe,
    Unsubscribe,
    Blocklist,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user. The password is read from the first line of standard
    /// input with --password-stdin, else generated and printed.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "")]
        name: String,
        #[arg(long, value_enum, default_value_t = RoleArg::Admin)]
        role: RoleArg,
        /// Read the password from standard input (keeps it out of shell history).
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Admin,
    Editor,
    Viewer,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create an installation API token (one that belongs to no dashboard
    /// user); it is printed once, alone on the last line.
    Create {
        #[arg(long)]
        name: String,
        /// What it may do: read, subscribers, campaigns, write or admin.
        #[arg(long, default_value = "admin")]
        scope: String,
    },
}

fn main() -> ExitCode {
    // A rendering child of a running server serves and exits here, before
    // any thread starts.
    postino_sandbox::serve_if_asked();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line with the whole cause chain, no backtrace.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut settings = Settings::load(cli.config.as_deref())?;
    telemetry::init(&settings.log);
    match cli.command {
        Command::Serve { listen, role } => {
            if let Some(listen) = listen {
                settings.http.listen = listen;
            }
            let role = match role {
                ServeRole::All => AppRole::All,
                ServeRole::Web => AppRole::Web,
                ServeRole::Scheduler => AppRole::Scheduler,
                ServeRole::Sender => AppRole::Sender,
            };
            serve(settings, role).await
        }
        Command::Sink {
            listen,
            temp_fail,
            perm_fail,
            drop,
            delay_ms,
            store,
        } => sink(listen, temp_fail, perm_fail, drop, delay_ms, store).await,
        Command::Demo { listen } => {
            if let Some(listen) = listen {
                settings.http.listen = listen;
            }
            demo(settings).await
        }
        Command::Migrate => {
            let pool = open_database(&settings).await?;
            // The data half of the migration that seals relay passwords.
            postino_app::seal_relay_passwords(&settings, &pool).await?;
            pool.close().await;
            println!("migrations applied");
            Ok(())
        }
        Command::User {
            command:
                UserCommand::Create {
                    email,
                    name,
                    role,
                    password_stdin,
                },
        } => {
            let (password, generated) = if password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .context("reading the password")?;
                (line.trim_end_matches(['\r', '\n']).to_owned(), false)
            } else {
                (commands::random_password(), true)
            };
            let password = Password::parse(&password).map_err(|e| anyhow::anyhow!("{e}"))?;
            let role = match role {
                RoleArg::Admin => Role::Admin,
                RoleArg::Editor => Role::Editor,
                RoleArg::Viewer => Role::Viewer,
            };
            let pool = open_database(&settings).await?;
            let user = commands::create_user(&pool, &email, &name, password.clone(), role).await?;
            println!("created {} user {}", user.role, user.email);
            if generated {
                println!("password: {}", password.expose());
            }
            Ok(())
        }
        Command::Token {
            command: TokenCommand::Create { name, scope },
        } => {
            let scope: postino_domain::ApiScope =
                scope.parse().map_err(|e| anyhow::anyhow!("--scope: {e}"))?;
            let pool = open_database(&settings).await?;
            let token = commands::create_installation_token(&pool, &name, scope).await?;
            println!("created API token {name:?}; it is shown only now:");
            println!("{token}");
            Ok(())
        }
        Command::Import {
            file,
            lists,
            mode,
            overwrite,
            confirmed,
        } => {
            let mode = match mode {
                ImportModeArg::Subscribe => postino_domain::ImportMode::Subscribe,
                ImportModeArg::Unsubscribe => postino_domain::ImportMode::Unsubscribe,
                ImportModeArg::Blocklist => postino_domain::ImportMode::Blocklist,
            };
            let pool = open_database(&settings).await?;
            let started = std::time::Instant::now();
            let request = postino_app::import_command::ImportRequest {
                file: &file,
                lists: &lists,
                mode,
                overwrite,
                confirmed,
                progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            };
            let summary =
                postino_app::import_command::run(&pool, &settings.import, &request).await?;
            print!(
                "{}",
                postino_app::import_command::render(&summary, started.elapsed().as_secs_f64())
            );
            pool.close().await;
            if summary.job.status == postino_domain::ImportStatus::Finished {
                Ok(())
            } else {
                anyhow::bail!("the import did not finish")
            }
        }
        Command::Config => {
            println!("{settings:#?}");
            Ok(())
        }
        Command::Openapi => {
            let doc = postino_web::openapi()
                .to_pretty_json()
                .context("serialising the OpenAPI document")?;
            println!("{doc}");
            Ok(())
        }
    }
}

async fn serve(settings: Settings, role: AppRole) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    postino_app::cancel_on_signals(shutdown.clone());
    if role == AppRole::Scheduler {
        // No listener: many scheduler processes may share a host.
        let pool = open_database(&settings).await?;
        postino_scheduler::run(pool.clone(), settings.scheduler.clone(), shutdown).await;
        pool.close().await;
        return Ok(());
    }
    if role == AppRole::Sender {
        // No listener either: run as many senders as the relays can take.
        return postino_app::run_sender(&settings, shutdown).await;
    }
    let app = Application::build(settings).await?;
    app.run(role, shutdown).await
}

async fn sink(
    listen: std::net::SocketAddr,
    temp_fail: f64,
    perm_fail: f64,
    drop: f64,
    delay_ms: u64,
    store: Option<PathBuf>,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&temp_fail),
        "--temp-fail must be between 0 and 1"
    );
    anyhow::ensure!(
        (0.0..=1.0).contains(&perm_fail),
        "--perm-fail must be between 0 and 1"
    );
    anyhow::ensure!(
        (0.0..=1.0).contains(&drop),
        "--drop must be between 0 and 1"
    );
    let sink = postino_sink::Sink::start(postino_sink::SinkConfig {
        listen,
        temp_fail,
        perm_fail,
        drop,
        delay: std::time::Duration::from_millis(delay_ms),
        store,
        keep: false,
        ..postino_sink::SinkConfig::default()
    })
    .await
    .with_context(|| format!("--listen: cannot listen on {listen}"))?;
    println!(
        "postino sink listening on {} (captures mail, delivers nothing); Ctrl-C to stop",
        sink.addr()
    );
    let shutdown = CancellationToken::new();
    postino_app::cancel_on_signals(shutdown.clone());
    shutdown.cancelled().await;
    let counts = sink.counts();
    println!(
        "accepted {} messages, refused {} temporarily and {} permanently, dropped {}, over {} connections",
        counts.accepted,
        counts.refused_temp,
        counts.refused_perm,
        counts.dropped,
        counts.connections
    );
    Ok(())
}

async fn demo(mut settings: Settings) -> anyhow::Result<()> {
    postino_app::demo::use_local_database(&mut settings).await?;
    // The demo mails only the built-in sink, never a real relay.
    let sink_addr: std::net::SocketAddr = ([127, 0, 0, 1], 2525).into();
    let sink = postino_sink::Sink::start(postino_sink::SinkConfig {
        listen: sink_addr,
        keep: false,
        ..postino_sink::SinkConfig::default()
    })
    .await
    .with_context(|| format!("cannot start the demo mail sink on {sink_addr}"))?;
    settings.smtp = postino_smtp::SmtpSettings {
        host: "127.0.0.1".to_owned(),
        port: sink.addr().port(),
        ..postino_smtp::SmtpSettings::default()
    };
    let root = settings.http.root_url.clone();
    let import = settings.import.clone();
    let app = Application::build(settings).await?;
    let access = commands::seed_demo(app.pool(), &import).await?;
    let port = app.port();
    let base = if root.contains(&format!(":{port}")) {
        root
    } else {
        format!("http://127.0.0.1:{port}")
    };
    println!();
    println!("Postino demo is running at {base}");
    println!("  dashboard:   {base}/ (sign in with the login below)");
    println!("  API docs:    {base}/api/docs");
    println!(
        "  demo list:   \"Demo newsletter\" with {} subscribers",
        access.subscribers
    );
    println!(
        "  campaign:    \"Welcome to Postino\" (draft; preview it, send a test, start it: the sender delivers it to the sink)"
    );
    println!(
        "  mail sink:   smtp://{} (captures everything, delivers nothing)",
        sink.addr()
    );
    println!("  login:       {} / {}", access.email, access.password);
    println!("  API token:   {}", access.token);
    println!(
        "  try:         curl -H 'Authorization: Bearer {}' {base}/api/v1/lists",
        access.token
    );
    println!("Press Ctrl-C to stop.");
    let shutdown = CancellationToken::new();
    postino_app::cancel_on_signals(shutdown.clone());
    app.run_until_stopped(shutdown).await
}
