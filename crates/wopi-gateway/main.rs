//! The wopi-gateway binary: CLI, settings, logging, signals, exit codes.
//! Exit codes: 0 success, 1 runtime failure (or invalid proof), 64 bad usage or settings,
//! 66 a file the settings name cannot be read on this machine.

/// mimalloc: the request path allocates on one worker and frees on another; glibc's arenas
/// serialise that on a lock (measured: docs/benchmarks.md, S2).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cli;
mod config;
mod doctor;
mod log_writer;
mod proof_key;

use clap::Parser;
use cli::{Cli, Command, DeliveriesCommand, ProofKeyCommand};
use gateway::settings::{LogFormat, Settings};
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

const EX_USAGE: u8 = 64;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, log_format } => serve(config.as_deref(), log_format.as_deref()),
        Command::CheckConfig { config } => match config::load(&config) {
            Ok(_) => {
                println!("ok");
                ExitCode::SUCCESS
            }
            Err(e) => {
                println!("{e}");
                ExitCode::from(e.exit_code())
            }
        },
        Command::Doctor { config } => doctor::run(&config),
        Command::Deliveries {
            command: DeliveriesCommand::List { config },
        } => list_deliveries(config.as_deref()),
        Command::ProofKey { command } => match command {
            ProofKeyCommand::Generate { out } => proof_key::generate(&out),
            ProofKeyCommand::Verify {
                discovery,
                url,
                access_token,
                timestamp,
                proof,
                proof_old,
                ignore_time,
            } => proof_key::verify(
                &discovery,
                &url,
                &access_token,
                &timestamp,
                &proof,
                proof_old.as_deref(),
                ignore_time,
            ),
        },
    }
}

fn list_deliveries(config_path: Option<&Path>) -> ExitCode {
    let settings = match config_path.map(config::load) {
        Some(Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(e.exit_code());
        }
        Some(Ok(s)) => s,
        None => Settings::default(),
    };
    if settings.cluster.redis.is_none() && !settings.server.data_dir.is_dir() {
        eprintln!(
            "error: server.data_dir {} does not exist: no gateway has run with these settings here (check --config and the path)",
            settings.server.data_dir.display()
        );
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (rows, dir) = match runtime.block_on(gateway::pending_for_cli(&settings)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot read the pending deliveries: {e}");
            return ExitCode::from(69);
        }
    };

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    println!(
        "{:<26} {:>6} {:>8} {:>9}  {:<24} last error",
        "id", "status", "attempts", "age", "file"
    );
    for v in &rows {
        let age = now.saturating_sub(v["created_ms"].as_u64().unwrap_or(now)) / 1000;
        println!(
            "{:<26} {:>6} {:>8} {:>8}s  {:<24} {}",
            v["id"].as_str().unwrap_or("?"),
            v["status"],
            v["attempts"],
            age,
            v["file_id"].as_str().unwrap_or("?"),
            v["last_error"].as_str().unwrap_or("-")
        );
    }
    println!("{} pending in {dir}", rows.len());
    ExitCode::SUCCESS
}

/// Sets up logging to stderr. Lines are formatted and redacted where they are logged, and
/// written in batches by a thread of their own ([`log_writer`]), so a request never waits on
/// stderr nor wakes another thread; nothing is dropped. The guard writes what is waiting when
/// it is dropped: keep it until the process ends.
fn init_tracing(format: LogFormat) -> log_writer::Guard {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WOPI_GATEWAY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (sink, guard) = log_writer::LogSink::new(std::io::stderr(), "wopi-gateway-log");
    // Colours only on a terminal: log files and journald get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(sink);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
        LogFormat::Human => builder.init(),
    }
    guard
}

/// Prints a line for scripts on stdout: plain text, or a JSON log record whose message is
/// the same text when logs are JSON.
fn print_line(format: LogFormat, level: &str, text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = match format {
        LogFormat::Human => writeln!(out, "{text}"),
        LogFormat::Json => writeln!(
            out,
            "{}",
            serde_json::json!({
                "timestamp": gateway::iso_time(now_ms()),
                "level": level,
                "message": text,
                "target": "wopi_gateway",
            })
        ),
    };
    let _ = out.flush();
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn serve(config_path: Option<&Path>, log_format: Option<&str>) -> ExitCode {
    let cli_format = match log_format {
        None => None,
        Some("json") => Some(LogFormat::Json),
        Some("human") => Some(LogFormat::Human),
        Some(other) => {
            eprintln!("error: --log-format: `{other}` is neither human nor json");
            return ExitCode::from(EX_USAGE);
        }
    };
    let settings = match config_path {
        Some(p) => match config::load(p) {
            Ok(s) => s,
            Err(e) => {
                let _log = init_tracing(cli_format.unwrap_or(LogFormat::Human));
                tracing::error!("{e}");
                return ExitCode::from(e.exit_code());
            }
        },
        None => Settings::default(),
    };
    let format = cli_format.unwrap_or(settings.server.log_format);
    let _log = init_tracing(format);
    if config_path.is_none() {
        tracing::info!(
            "no --config: running on embedded defaults (listen {}, admin {}, data_dir {}, in-memory locks, generated keys)",
            settings.server.listen,
            settings.server.admin_listen,
            settings.server.data_dir.display()
        );
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = std::env::var("WOPI_GATEWAY_WORKERS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        builder.worker_threads(n.max(1));
    } else if settings.server.connection_threads > 0 {
        // The connection threads serve the public listener; the shared runtime keeps the
        // accept loops, the admin listener and the background tasks.
        builder.worker_threads(1);
    }
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let bind = |role: &str, addr| match std::net::TcpListener::bind(addr) {
            Ok(l) => {
                let _ = l.set_nonblocking(true);
                let local = l.local_addr().unwrap_or(addr);
                print_line(
                    format,
                    "INFO",
                    &format!("listening role={role} addr={local}"),
                );
                tokio::net::TcpListener::from_std(l).map_err(|e| format!("{role} listener: {e}"))
            }
            Err(e) => Err(format!(
                "server.{}: cannot bind {addr}: {e}",
                if role == "public" {
                    "listen"
                } else {
                    "admin_listen"
                }
            )),
        };
        let listeners = match (
            bind("public", settings.server.listen),
            bind("admin", settings.server.admin_listen),
        ) {
            (Ok(public), Ok(admin)) => gateway::Listeners { public, admin },
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!("{e}");
                return ExitCode::FAILURE;
            }
        };
        let shutdown = CancellationToken::new();
        tokio::spawn(wait_for_signal(shutdown.clone()));
        let (reload_tx, reload_rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(wait_for_reload(
            config_path.map(Path::to_path_buf),
            reload_tx,
        ));
        match gateway::run_with_reload(listeners, settings, shutdown, reload_rx).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "cannot start");
                ExitCode::FAILURE
            }
        }
    })
}

/// SIGHUP: re-read and validate the settings file, and hand the result to the gateway.
async fn wait_for_reload(
    path: Option<std::path::PathBuf>,
    tx: tokio::sync::mpsc::UnboundedSender<gateway::Reload>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::error!("cannot install the SIGHUP handler");
        return;
    };
    while hup.recv().await.is_some() {
        let Some(path) = &path else {
            tracing::warn!("SIGHUP: running on embedded defaults (no --config); nothing to reload");
            continue;
        };
        tracing::info!(path = %path.display(), "SIGHUP: reloading settings");
        let r = config::load(path).map_err(|e| e.to_string());
        if tx.send(r).is_err() {
            return;
        }
    }
}

async fn wait_for_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        _ = int.recv() => tracing::info!("SIGINT: stopping"),
    }
    shutdown.cancel();
}
