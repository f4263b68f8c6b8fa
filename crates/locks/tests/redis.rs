#![allow(clippy::unwrap_used, clippy::zombie_processes)]
//! The conformance suite against a real `redis-server` on a free loopback port.

use locks::conformance::Harness;
use locks::{LockError, LockSettings, LockStore, ManualClock, RedisLockStore};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

struct Redis {
    child: Child,
    url: String,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts redis-server; a missing binary fails the test with the install command.
async fn start_redis() -> Redis {
    assert!(
        Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok(),
        "redis-server is required: apt-get install redis-server (scripts/test installs it when run as root)"
    );
    let port = free_port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("redis://127.0.0.1:{port}/");
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Redis { child, url };
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("redis-server did not start on port {port}");
}

async fn harness(redis: &Redis, prefix: &str) -> (Harness, RedisLockStore) {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let (store, events) = RedisLockStore::connect(
        &locks::RedisSettings::from_url(&redis.url),
        prefix,
        LockSettings::default(),
        clock.clone(),
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    (
        Harness {
            store: Arc::new(store.clone()),
            clock,
            events,
            prefix: String::new(),
        },
        store,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_conformance() {
    let redis = start_redis().await;
    harness(&redis, "t1:").await.0.decision_table().await;
    harness(&redis, "t2:").await.0.expiry().await;
    harness(&redis, "t3:").await.0.one_winner().await;
    for seed in 1..6 {
        harness(&redis, &format!("m{seed}:"))
            .await
            .0
            .against_model(seed * 7919, 300)
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_locks_and_each_expiry_fires_once() {
    let redis = start_redis().await;
    let clock = Arc::new(ManualClock::new(5_000_000));
    let settings = LockSettings::default();
    let (a, mut ev_a) = RedisLockStore::connect(
        &locks::RedisSettings::from_url(&redis.url),
        "shared:",
        settings,
        clock.clone(),
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    let (b, mut ev_b) = RedisLockStore::connect(
        &locks::RedisSettings::from_url(&redis.url),
        "shared:",
        settings,
        clock.clone(),
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    let id = |s: &str| wopi::lock::LockId::parse(s).unwrap();
    for i in 0..50 {
        a.lock(&format!("f{i}"), &id("L")).await.unwrap();
    }
    assert!(
        matches!(b.lock("f0", &id("X")).await, Err(LockError::Conflict(c)) if c.current == "L")
    );
    clock.advance(1_800_000);
    let (ra, rb) = tokio::join!(a.sweep_now(), b.sweep_now());
    assert_eq!(ra.unwrap() + rb.unwrap(), 50);
    let mut seen = std::collections::HashSet::new();
    while let Ok(e) = ev_a.try_recv() {
        assert!(seen.insert(e.file_id));
    }
    while let Ok(e) = ev_b.try_recv() {
        assert!(seen.insert(e.file_id), "an expiry fired on both instances");
    }
    assert_eq!(seen.len(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_closed_when_redis_is_down() {
    let redis = start_redis().await;
    let (h, store) = harness(&redis, "down:").await;
    let id = wopi::lock::LockId::parse("L").unwrap();
    store.lock("f", &id).await.unwrap();
    drop(redis);
    tokio::time::sleep(Duration::from_millis(100)).await;
    for r in [
        store.lock("f", &id).await,
        store.get("f").await.map(|_| ()),
        store.unlock("f", &id).await,
    ] {
        assert!(matches!(r, Err(LockError::Unavailable(_))), "{r:?}");
    }
    drop(h);
    let clock = Arc::new(ManualClock::new(0));
    let r = RedisLockStore::connect(
        &locks::RedisSettings::from_url(&format!("redis://127.0.0.1:{}/", free_port())),
        "x:",
        LockSettings::default(),
        clock,
        Duration::from_millis(500),
    )
    .await;
    assert!(matches!(r, Err(LockError::Unavailable(_))));
}
