#![allow(clippy::unwrap_used, clippy::zombie_processes)]
//! [`RedisConn`] through a real `redis-sentinel`: a demoted primary's `READONLY` makes it ask
//! the sentinels again, answering that command with its error (no retry loop), and the next
//! commands reach the new primary.

use locks::{RedisConn, RedisSettings};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A process killed on drop, and the directory it worked in removed.
struct Proc(Child, Option<std::path::PathBuf>);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        if let Some(dir) = &self.1 {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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

async fn wait_port(port: u16) {
    for _ in 0..250 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("nothing listens on {port}");
}

async fn redis(port: u16, extra: &[String]) -> Proc {
    need("redis-server", "redis-server");
    // Its own directory: a replica's full sync writes an RDB file there.
    let dir = std::env::temp_dir().join(format!("locks-redis-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--dir", dir.to_str().unwrap()])
        .args(["--save", "", "--appendonly", "no"])
        .args(extra)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let p = Proc(child, Some(dir));
    wait_port(port).await;
    p
}

async fn query(port: u16, args: &[&str]) -> redis::Value {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async(&mut c).await.unwrap()
}

async fn text(port: u16, args: &[&str]) -> String {
    format!("{:?}", query(port, args).await)
}

async fn get_k(port: u16) -> Option<String> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("GET")
        .arg("k")
        .query_async(&mut c)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demoted_primary_answers_readonly_once_and_the_new_primary_is_found() {
    need("redis-sentinel", "redis-sentinel");
    let (p, r, s) = (free_port(), free_port(), free_port());
    let _primary = redis(p, &[]).await;
    let _replica = redis(
        r,
        &["--replicaof".into(), "127.0.0.1".into(), p.to_string()],
    )
    .await;
    let dir = std::env::temp_dir().join(format!("locks-sentinel-{s}"));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("sentinel.conf");
    std::fs::write(
        &conf,
        format!(
            "port {s}\nbind 127.0.0.1\ndir {}\nsentinel monitor m 127.0.0.1 {p} 1\n\
             sentinel down-after-milliseconds m 1000\nsentinel failover-timeout m 3000\n",
            dir.display()
        ),
    )
    .unwrap();
    let _sentinel = Proc(
        Command::new("redis-sentinel")
            .arg(&conf)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
        None,
    );
    wait_port(s).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !(text(r, &["INFO", "replication"])
        .await
        .contains("master_link_status:up")
        && text(s, &["SENTINEL", "replicas", "m"])
            .await
            .contains(&r.to_string()))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sentinel did not settle"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let settings = RedisSettings {
        sentinels: vec![format!("127.0.0.1:{s}")],
        master_name: "m".into(),
        // Only errors make it ask the sentinels again in this test.
        sentinel_poll: Duration::from_secs(3600),
        ..RedisSettings::from_url("")
    };
    let mut conn = RedisConn::connect(&settings, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(conn.primary(), Some(format!("127.0.0.1:{p}")));
    let set = |conn: &mut RedisConn, v: &'static str| {
        let mut c = conn.clone();
        async move {
            redis::cmd("SET")
                .arg("k")
                .arg(v)
                .query_async::<()>(&mut c)
                .await
        }
    };
    set(&mut conn, "before").await.unwrap();

    // Switchover: the primary becomes a replica while it runs (refused with NOGOODSLAVE until
    // the sentinel has fresh news of the replica).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let client = redis::Client::open(format!("redis://127.0.0.1:{s}/")).unwrap();
        let mut c = client.get_multiplexed_async_connection().await.unwrap();
        let r: redis::RedisResult<()> = redis::cmd("SENTINEL")
            .arg("failover")
            .arg("m")
            .query_async(&mut c)
            .await;
        match r {
            Ok(()) => break,
            Err(e) => assert!(tokio::time::Instant::now() < deadline, "{e}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !text(p, &["ROLE"]).await.contains("slave") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{p} was not demoted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The demoted primary dropped its clients: the command fails with that error, and makes
    // the connection ask the sentinels; the next commands reach the new primary.
    let e = set(&mut conn, "on the demoted one").await.unwrap_err();
    assert!(
        matches!(
            e.kind(),
            redis::ErrorKind::ReadOnly | redis::ErrorKind::IoError
        ),
        "{e}"
    );
    let started = tokio::time::Instant::now();
    let mut failed = 0;
    while set(&mut conn, "after").await.is_err() {
        failed += 1;
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never found the new primary"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(conn.primary(), Some(format!("127.0.0.1:{r}")));
    assert!(failed < 100, "{failed} failed attempts");
    assert_eq!(get_k(r).await.as_deref(), Some("after"));

    // Demoted behind the sentinel's back (it still names r): after the dropped connection,
    // the reconnection reaches a replica, which answers READONLY. The connection is dropped
    // at once and the sentinel asked again; r is not a primary, so the following commands
    // fail with "no Redis primary known" rather than reaching a replica or looping.
    let _: () = redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query_async(
            &mut redis::Client::open(format!("redis://127.0.0.1:{p}/"))
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap(),
        )
        .await
        .unwrap();
    let demote = |port: u16, of: Option<u16>| async move {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
        let mut c = client.get_multiplexed_async_connection().await.unwrap();
        let mut cmd = redis::cmd("REPLICAOF");
        match of {
            Some(o) => cmd.arg("127.0.0.1").arg(o),
            None => cmd.arg("NO").arg("ONE"),
        };
        let _: () = cmd.query_async(&mut c).await.unwrap();
    };
    demote(r, Some(p)).await;
    let mut kinds = Vec::new();
    for _ in 0..3 {
        let e = set(&mut conn, "on a replica").await.unwrap_err();
        kinds.push((e.kind(), e.to_string()));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        kinds.iter().any(|(k, _)| *k == redis::ErrorKind::ReadOnly),
        "{kinds:?}"
    );
    let last = &kinds[2].1;
    assert!(
        last.contains("no Redis primary known") && last.contains("not a primary"),
        "{kinds:?}"
    );
    // Back as the sentinel says: r is the primary again, and found without a restart.
    demote(r, None).await;
    demote(p, Some(r)).await;
    let started = tokio::time::Instant::now();
    while set(&mut conn, "again").await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never back on the primary"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(get_k(r).await.as_deref(), Some("again"));
    let _ = std::fs::remove_dir_all(&dir);
}
