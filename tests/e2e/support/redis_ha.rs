//! Redis as production runs it: over TLS with a test CA (rcgen), with an ACL user, and as a
//! primary, a replica and three sentinels on loopback ports.

use super::TempDir;
use super::cluster::Redis;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A test CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files.
pub struct Pki {
    pub dir: TempDir,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = TempDir::new("redis-pki");
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "wopi-gateway test CA");
        let ca = ca.self_signed(&ca_key).unwrap();
        let leaf = |name: &str, sans: Vec<String>, file: &str| {
            let key = rcgen::KeyPair::generate().unwrap();
            let mut p = rcgen::CertificateParams::new(sans).unwrap();
            p.distinguished_name.push(rcgen::DnType::CommonName, name);
            let cert = p.signed_by(&key, &ca, &ca_key).unwrap();
            std::fs::write(dir.path().join(format!("{file}.pem")), cert.pem()).unwrap();
            std::fs::write(
                dir.path().join(format!("{file}-key.pem")),
                key.serialize_pem(),
            )
            .unwrap();
        };
        leaf(
            "redis",
            vec!["127.0.0.1".into(), "localhost".into()],
            "server",
        );
        leaf("wopi-gateway", vec!["wopi-gateway".into()], "client");
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        // Another CA that signed nothing here: verifying with it must fail.
        let other_key = rcgen::KeyPair::generate().unwrap();
        let mut other = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        other.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        other
            .distinguished_name
            .push(rcgen::DnType::CommonName, "some other CA");
        let other = other.self_signed(&other_key).unwrap();
        std::fs::write(dir.path().join("other-ca.pem"), other.pem()).unwrap();
        Pki { dir }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// `redis-server` arguments: TLS with these files; `mutual`: clients must present a
    /// certificate of the CA.
    pub fn server_args(&self, mutual: bool) -> Vec<String> {
        vec![
            "--tls-cert-file".into(),
            self.path("server.pem"),
            "--tls-key-file".into(),
            self.path("server-key.pem"),
            "--tls-ca-cert-file".into(),
            self.path("ca.pem"),
            "--tls-auth-clients".into(),
            if mutual { "yes" } else { "no" }.into(),
        ]
    }
}

fn need(program: &str, package: &str) {
    assert!(
        Command::new(program)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok(),
        "{program} is required: apt-get install {package} (scripts/test installs it when run as root)"
    );
}

/// `redis-cli -p port args…`: its output (trimmed).
pub fn cli(port: u16, args: &[&str]) -> String {
    need("redis-cli", "redis-tools");
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A sentinel on a free loopback port; killed on drop.
pub struct Sentinel {
    pub port: u16,
    child: Child,
    _dir: TempDir,
}

impl Sentinel {
    /// Monitors `primary` as `mymaster` (quorum 2), declaring it down after one second.
    pub async fn start(primary: u16) -> Sentinel {
        Sentinel::start_with(primary, "").await
    }

    /// [`Sentinel::start`] over TLS with `pki` (and the primary over TLS), asking clients
    /// for `password`.
    pub async fn start_tls(primary: u16, pki: &Pki, password: &str) -> Sentinel {
        let conf = format!(
            "tls-cert-file {}\ntls-key-file {}\ntls-ca-cert-file {}\ntls-auth-clients no\ntls-replication yes\nrequirepass {password}\n",
            pki.path("server.pem"),
            pki.path("server-key.pem"),
            pki.path("ca.pem"),
        );
        Sentinel::start_with(primary, &conf).await
    }

    async fn start_with(primary: u16, tls: &str) -> Sentinel {
        need("redis-sentinel", "redis-sentinel");
        let dir = TempDir::new("sentinel");
        let port = super::free_port();
        let conf: PathBuf = dir.path().join("sentinel.conf");
        let listen = if tls.is_empty() {
            format!("port {port}\n")
        } else {
            format!("port 0\ntls-port {port}\n{tls}")
        };
        std::fs::write(
            &conf,
            format!(
                "{listen}bind 127.0.0.1\ndir {}\nsentinel monitor mymaster 127.0.0.1 {primary} 2\n\
                 sentinel down-after-milliseconds mymaster 1000\nsentinel failover-timeout mymaster 3000\n\
                 sentinel parallel-syncs mymaster 1\n",
                dir.path().display()
            ),
        )
        .unwrap();
        let child = Command::new("redis-sentinel")
            .arg(&conf)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        // Killed and waited for on drop, whatever happens next.
        let sentinel = Sentinel {
            port,
            child,
            _dir: dir,
        };
        for _ in 0..250 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return sentinel;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("redis-sentinel did not start on port {port}");
    }

    /// The port of the primary this sentinel names.
    pub fn primary(&self) -> Option<u16> {
        cli(
            self.port,
            &["SENTINEL", "get-master-addr-by-name", "mymaster"],
        )
        .lines()
        .nth(1)?
        .trim()
        .parse()
        .ok()
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A primary, one replica and three sentinels that agree on them.
pub struct Sentinels {
    pub primary: Redis,
    pub replica: Redis,
    pub sentinels: Vec<Sentinel>,
}

impl Sentinels {
    pub async fn start() -> Sentinels {
        let primary = Redis::start().await;
        let replica = Redis::start_with(
            false,
            vec![
                "--replicaof".into(),
                "127.0.0.1".into(),
                primary.port.to_string(),
            ],
        )
        .await;
        let mut sentinels = Vec::new();
        for _ in 0..3 {
            sentinels.push(Sentinel::start(primary.port).await);
        }
        let set = Sentinels {
            primary,
            replica,
            sentinels,
        };
        // Ready for a failover: the replica in sync, every sentinel seeing it and the others.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let synced =
                cli(set.replica.port, &["INFO", "replication"]).contains("master_link_status:up");
            let known = set.sentinels.iter().all(|s| {
                let replicas = cli(s.port, &["SENTINEL", "replicas", "mymaster"]);
                let peers = cli(s.port, &["SENTINEL", "sentinels", "mymaster"]);
                replicas.contains(&set.replica.port.to_string())
                    && peers.matches("127.0.0.1").count() >= 2
            });
            if synced && known {
                return set;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the sentinels did not settle"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `[cluster]` keys naming these sentinels.
    pub fn toml(&self) -> String {
        let list: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("\"127.0.0.1:{}\"", s.port))
            .collect();
        format!(
            "redis_sentinels = [{}]\nredis_master_name = \"mymaster\"\n",
            list.join(", ")
        )
    }

    /// Waits until every sentinel names `port` the primary.
    pub async fn wait_primary(&self, port: u16, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while !self.sentinels.iter().all(|s| s.primary() == Some(port)) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no failover to {port} within {within:?}: {:?}",
                self.sentinels
                    .iter()
                    .map(Sentinel::primary)
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
