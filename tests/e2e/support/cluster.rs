//! Several gateways sharing one Redis and one content directory, behind a round-robin
//! balancer with no affinity of any kind (each request goes to the next live instance).

use super::fakes::{Handler, serve};
use super::{Config, Gateway, TempDir};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A `redis-server` on a free loopback port; killed on drop.
pub struct Redis {
    pub port: u16,
    /// Listens with TLS (`--tls-port`) instead of plain TCP.
    pub tls: bool,
    /// More `redis-server` arguments (TLS files, ACL users, `--replicaof`).
    pub args: Vec<String>,
    child: Option<std::process::Child>,
}

impl Redis {
    /// Starts one, failing the test (with the install command) when the program is missing.
    pub async fn start() -> Redis {
        Redis::start_with(false, Vec::new()).await
    }

    /// Starts one with `args`, on a TLS port when `tls`.
    pub async fn start_with(tls: bool, args: Vec<String>) -> Redis {
        assert!(
            std::process::Command::new("redis-server")
                .arg("--version")
                .output()
                .is_ok(),
            "redis-server is required: apt-get install redis-server (scripts/test installs it when run as root)"
        );
        let mut r = Redis {
            port: super::free_port(),
            tls,
            args,
            child: None,
        };
        r.restart().await;
        r
    }

    /// `redis://127.0.0.1:{port}/`
    pub fn url(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}/", self.port)
    }

    /// Kills it (SIGKILL), as a crash does; [`Redis::restart`] reloads its append-only file.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it (again) on the same port, loading its append-only file when there is one.
    pub async fn restart(&mut self) {
        let dir = std::env::temp_dir().join(format!("wopi-gw-redis-{}", self.port));
        std::fs::create_dir_all(&dir).unwrap();
        let port = self.port.to_string();
        let listen: Vec<&str> = if self.tls {
            vec!["--port", "0", "--tls-port", &port]
        } else {
            vec!["--port", &port]
        };
        let child = std::process::Command::new("redis-server")
            .args(listen)
            .args(&self.args)
            .args([
                "--bind",
                "127.0.0.1",
                "--dir",
                dir.to_str().unwrap(),
                "--save",
                "",
                // Every write on disk before it is answered: a SIGKILL loses nothing.
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        for _ in 0..250 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("redis-server did not start on port {}", self.port);
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(
            std::env::temp_dir().join(format!("wopi-gw-redis-{}", self.port)),
        );
    }
}

/// A round-robin HTTP balancer on loopback: request n goes to backend n mod N; a backend that
/// refuses the connection is skipped (as nginx's `proxy_next_upstream error` does).
pub struct Balancer {
    pub addr: SocketAddr,
    pub backends: Arc<Mutex<Vec<SocketAddr>>>,
    /// Which backend served each request, in order.
    pub served: Arc<Mutex<Vec<SocketAddr>>>,
}

impl Balancer {
    /// Starts on `port` (0: any) in front of `backends`.
    pub async fn start(port: u16, backends: Vec<SocketAddr>) -> Balancer {
        let backends = Arc::new(Mutex::new(backends));
        let served = Arc::new(Mutex::new(Vec::new()));
        let next = Arc::new(AtomicUsize::new(0));
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build_http();
        let handler: Handler = {
            let (backends, served) = (backends.clone(), served.clone());
            Arc::new(move |req: Request<Bytes>| {
                let (backends, served, next, client) = (
                    backends.clone(),
                    served.clone(),
                    next.clone(),
                    client.clone(),
                );
                Box::pin(async move {
                    let list = backends.lock().unwrap().clone();
                    let (parts, body) = req.into_parts();
                    for _ in 0..list.len() {
                        let b = list[next.fetch_add(1, Ordering::Relaxed) % list.len()];
                        let mut out = Request::builder().method(parts.method.clone()).uri(format!(
                            "http://{b}{}",
                            parts.uri.path_and_query().map_or("/", |p| p.as_str())
                        ));
                        for (k, v) in &parts.headers {
                            out = out.header(k, v);
                        }
                        match client
                            .request(out.body(Full::new(body.clone())).unwrap())
                            .await
                        {
                            Ok(resp) => {
                                served.lock().unwrap().push(b);
                                let (p, body) = resp.into_parts();
                                let bytes = body
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default();
                                return Response::from_parts(p, Full::new(bytes));
                            }
                            Err(e) if e.is_connect() => continue,
                            Err(e) => {
                                return Response::builder()
                                    .status(StatusCode::BAD_GATEWAY)
                                    .body(Full::new(Bytes::from(format!("balancer: {e}"))))
                                    .unwrap();
                            }
                        }
                    }
                    Response::builder()
                        .status(StatusCode::BAD_GATEWAY)
                        .body(Full::new(Bytes::from_static(b"balancer: no live backend")))
                        .unwrap()
                })
            })
        };
        let addr = serve(port, handler).await;
        Balancer {
            addr,
            backends,
            served,
        }
    }

    /// `http://127.0.0.1:{port}`
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many requests each backend served.
    pub fn counts(&self) -> Vec<(SocketAddr, usize)> {
        let served = self.served.lock().unwrap();
        self.backends
            .lock()
            .unwrap()
            .iter()
            .map(|b| (*b, served.iter().filter(|s| *s == b).count()))
            .collect()
    }
}

/// What every instance of one cluster shares.
pub struct Shared {
    pub dir: TempDir,
    pub redis: Redis,
    pub lb: Balancer,
    /// More `[cluster]` keys.
    pub cluster: String,
}

impl Shared {
    pub async fn start() -> Shared {
        let mut s = Shared::start_without_redis().await;
        s.redis = Redis::start().await;
        s
    }

    /// What every instance of a cluster on `redis` shares; `cluster` holds more `[cluster]`
    /// keys (TLS files, credentials), or replaces `redis_url` when it sets `redis_sentinels`.
    pub async fn start_on(redis: Option<Redis>, cluster: &str) -> Shared {
        let mut s = Shared::start_without_redis().await;
        if let Some(redis) = redis {
            s.redis = redis;
        }
        s.cluster = cluster.to_owned();
        s
    }

    async fn start_without_redis() -> Shared {
        let dir = TempDir::new("cluster");
        std::fs::create_dir_all(dir.path().join("content")).unwrap();
        std::fs::write(
            dir.path().join("access-token.secret"),
            "0123456789abcdef0123456789abcdef-cluster",
        )
        .unwrap();
        let key = dir.path().join("proof-key.pem");
        let (code, _, err) =
            crate::support::run_cli(&["proof-key", "generate", "--out", key.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
        Shared {
            redis: Redis {
                port: 0,
                tls: false,
                args: Vec::new(),
                child: None,
            },
            lb: Balancer::start(0, Vec::new()).await,
            dir,
            cluster: String::new(),
        }
    }

    /// The `[cluster]` table.
    fn cluster_table(&self) -> String {
        if self.cluster.contains("redis_sentinels") {
            format!("[cluster]\nlease_seconds = 2\n{}\n", self.cluster)
        } else {
            format!(
                "[cluster]\nredis_url = \"{}\"\nlease_seconds = 2\n{}\n",
                self.redis.url(),
                self.cluster
            )
        }
    }

    /// The settings every instance gets (besides `[server]`), with `content` as `[content]`.
    pub fn toml_with(&self, content: &str) -> String {
        format!("{}{content}\n", self.cluster_table())
    }

    /// The settings every instance gets (besides `[server]`).
    pub fn toml(&self) -> String {
        format!(
            "{}[content]\ndir = \"{}\"\n",
            self.cluster_table(),
            self.dir.path().join("content").display()
        )
    }

    pub fn secrets(&self) -> (String, String) {
        (
            self.dir
                .path()
                .join("access-token.secret")
                .display()
                .to_string(),
            self.dir.path().join("proof-key.pem").display().to_string(),
        )
    }

    /// Starts `n` instances with `rest`, puts them behind the balancer.
    pub fn start_instances(&self, n: usize, rest: &str) -> Vec<Gateway> {
        let gws: Vec<Gateway> = (0..n)
            .map(|_| {
                Gateway::start(Config {
                    rest: rest.to_owned(),
                    public_url: Some(self.lb.base()),
                    ..Default::default()
                })
            })
            .collect();
        *self.lb.backends.lock().unwrap() = gws.iter().map(|g| g.public).collect();
        gws
    }
}

/// An S3-compatible server (moto's, from PyPI: `pip install "moto[server]"`) on a free
/// loopback port with one bucket; killed on drop.
pub struct S3 {
    pub port: u16,
    pub bucket: String,
    child: Option<std::process::Child>,
}

impl S3 {
    pub async fn start() -> S3 {
        assert!(
            std::process::Command::new("moto_server")
                .arg("--help")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success()),
            "moto_server is required: pip install \"moto[server]\" (scripts/test installs it)"
        );
        let port = super::free_port();
        let child = std::process::Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let s3 = S3 {
            port,
            bucket: "wopi-content".into(),
            child: Some(child),
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "moto_server did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (st, _, body) =
            super::http::send("PUT", &format!("{}/{}", s3.endpoint(), s3.bucket), &[], "").await;
        assert_eq!(st, 200, "create bucket: {}", String::from_utf8_lossy(&body));
        s3
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `[content]` for this bucket; the secret goes into `secret_file`.
    pub fn toml(&self, secret_file: &std::path::Path) -> String {
        std::fs::write(secret_file, "moto-secret-access-key").unwrap();
        format!(
            "[content]\nstore = \"s3\"\n[content.s3]\nendpoint = \"{}\"\nbucket = \"{}\"\naccess_key_id = \"testing\"\nsecret_access_key_file = \"{}\"\npath_style = true\n",
            self.endpoint(),
            self.bucket,
            secret_file.display()
        )
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Resident and peak resident memory of a process, in KiB (`VmRSS`, `VmHWM`).
pub fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}
