//! Test support: start the real binary, speak HTTP to it, stop it.
#![allow(dead_code)]

pub mod browser;
pub mod cluster;
pub mod fakes;
pub mod http;
pub mod recorder;
pub mod redis_ha;
pub mod upstream;
pub mod wopi_host;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_wopi-gateway");

/// A temporary folder removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "wopi-gw-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running gateway; killed on drop.
pub struct Gateway {
    pub child: Option<Child>,
    pub public: SocketAddr,
    pub admin: SocketAddr,
    pub dir: TempDir,
    pub config: PathBuf,
}

/// Settings for [`Gateway::start`]: `server` lines go into `[server]` (after listen,
/// admin_listen, public_url and data_dir), `rest` after it.
#[derive(Default, Clone)]
pub struct Config {
    pub server: String,
    pub rest: String,
    /// Keep this data directory (restart tests); a fresh one when `None`.
    pub data_dir: Option<PathBuf>,
    /// Use this public port (restart tests); a free one when `None`.
    pub port: Option<u16>,
    /// A path after `http://127.0.0.1:{port}` in `server.public_url` (e.g. `/office`).
    pub public_path: String,
    /// The whole `server.public_url` (e.g. a balancer's), instead of the gateway's own port.
    pub public_url: Option<String>,
}

impl Gateway {
    pub fn start(cfg: Config) -> Gateway {
        let dir = TempDir::new("gw");
        let port = cfg.port.unwrap_or_else(free_port);
        let data = cfg
            .data_dir
            .clone()
            .unwrap_or_else(|| dir.path().join("data"));
        let public_url = cfg
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://127.0.0.1:{port}{}", cfg.public_path));
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\nadmin_listen = \"127.0.0.1:0\"\npublic_url = \"{public_url}\"\ndata_dir = \"{}\"\nshutdown_grace_seconds = 10\n{}\n{}\n",
            data.display(),
            cfg.server,
            cfg.rest
        );
        let config = dir.path().join("gateway.toml");
        std::fs::write(&config, text).unwrap();
        let arg = config.to_str().unwrap().to_owned();
        Self::spawn(&["serve", "--config", &arg], dir, config)
    }

    pub fn spawn(args: &[&str], dir: TempDir, config: PathBuf) -> Gateway {
        let log = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
        let mut child = Command::new(BIN)
            .args(args)
            .current_dir(dir.path())
            .env("WOPI_GATEWAY_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let mut out_log = std::fs::File::create(dir.path().join("stdout.log")).unwrap();
        std::thread::spawn(move || {
            use std::io::Write as _;
            // Every stdout line is kept (tests read it), the listening lines are also sent.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = writeln!(out_log, "{line}");
                let _ = tx.send(line);
            }
        });
        let (mut public, mut admin) = (None, None);
        let deadline = Instant::now() + Duration::from_secs(30);
        while public.is_none() || admin.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    // Plain text, or the same text as the message of a JSON record.
                    let parse = |l: &str| {
                        l.split("addr=").nth(1).and_then(|a| {
                            a.split(|c: char| !(c.is_ascii_hexdigit() || ".:[]".contains(c)))
                                .next()?
                                .parse::<SocketAddr>()
                                .ok()
                        })
                    };
                    if line.contains("listening role=public ") {
                        public = parse(&line);
                    } else if line.contains("listening role=admin ") {
                        admin = parse(&line);
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let log =
                        std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();
                    panic!("gateway did not print its listening lines; stderr:\n{log}");
                }
            }
        }
        let gw = Gateway {
            child: Some(child),
            public: public.unwrap(),
            admin: admin.unwrap(),
            dir,
            config,
        };
        gw.wait_ready();
        gw
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok((200, _, _)) = http::blocking_get(&self.admin_url("/healthz")) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("gateway never became ready; stderr:\n{}", self.stderr());
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.public)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// Everything the gateway printed on stdout so far.
    /// The log once it contains `needle` (log lines are written by a thread of their own:
    /// one may land a moment after the event), waiting at most 10 s; the log as it is then
    /// otherwise, for the caller's assertion to show.
    pub fn wait_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.stderr();
            if log.contains(needle) || Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The log once nothing was added to it for 200 ms (at most 5 s): every line of what
    /// happened before the call has been written, whole.
    pub fn settled_log(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut last = self.stderr();
        loop {
            std::thread::sleep(Duration::from_millis(200));
            let now = self.stderr();
            if now == last || Instant::now() > deadline {
                return now;
            }
            last = now;
        }
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stdout.log")).unwrap_or_default()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Sends a signal by name (`HUP`, `TERM`, …).
    pub fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            Command::new("kill")
                .args([&format!("-{sig}"), &c.id().to_string()])
                .status()
                .unwrap();
        }
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        if let Some(c) = &self.child {
            Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status()
                .unwrap();
        }
    }

    /// Waits for the process to exit.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let child = self.child.as_mut().unwrap();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "gateway did not exit; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits (up to 10 s) until a metric reaches `at_least`; returns its value.
    pub async fn wait_metric(&self, series: &str, at_least: f64) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let v = self.metric(series).await;
            if v >= at_least || Instant::now() > deadline {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Reads one metric value (a full series name with labels, as printed).
    pub async fn metric(&self, series: &str) -> f64 {
        let (_, _, body) = http::get(&self.admin_url("/metrics")).await;
        let text = String::from_utf8(body).unwrap();
        text.lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .map_or(0.0, |v| v.parse().unwrap())
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs the binary to completion with `args`; returns (exit code, stdout, stderr).
pub fn run_cli(args: &[&str]) -> (i32, String, String) {
    run_cli_env(args, &[])
}

/// [`run_cli`] with extra environment variables.
pub fn run_cli_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
