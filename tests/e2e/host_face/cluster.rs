//! Three instances sharing one Redis and one content directory behind a round-robin
//! balancer without affinity: the host face behaves as one instance, and a killed instance
//! loses nothing.

use super::*;
use crate::support::cluster::{S3, Shared, rss_kib};

fn host_toml(shared: &Shared, int: &crate::support::fakes::Integrator) -> String {
    host_toml_on(shared, int, &shared.toml())
}

/// [`host_toml`] with `cluster` as the `[cluster]` and `[content]` tables.
fn host_toml_on(shared: &Shared, int: &crate::support::fakes::Integrator, cluster: &str) -> String {
    let (secret, key) = shared.secrets();
    format!(
        "{}\n[docs]\nhealthcheck_interval_seconds = 0\n[client_face]\nproof_key_file = \"{key}\"\n{}",
        cluster,
        host_face_toml(
            int,
            "",
            &format!("access_token_secret_file = \"{secret}\""),
            ""
        )
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_behind_round_robin_edit_one_file_and_survive_a_kill() {
    let shared = Shared::start().await;
    let (int, client) = peers().await;
    let mut gws = shared.start_instances(3, &host_toml(&shared, &int));
    let lb = shared.lb.base();
    int.put_doc("c.docx", b"original");
    let (fid, tok, _) = open_at(&lb, &int, "c.docx", "k-c", Some(("u1", "U")), true).await;
    let f = format!("/wopi/files/{fid}");
    // Signed for the public URL (the balancer), sent to one instance or through the balancer.
    let at = |i: usize| format!("http://{}", gws[i].public);
    let wopi = |base: String,
                method: &'static str,
                path: String,
                h: Vec<(&'static str, String)>,
                body: &'static [u8]| {
        let (client, lb, tok) = (&client, lb.clone(), tok.clone());
        async move {
            let hs: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
            client
                .send_via(
                    &lb,
                    &base,
                    method,
                    &with_token(&path, &tok),
                    &tok,
                    &hs,
                    body,
                    now_ticks(),
                )
                .await
        }
    };
    // CheckFileInfo on every instance: one download of document.url, one answer.
    let mut infos = Vec::new();
    for i in 0..3 {
        let (st, _, body) = wopi(at(i), "GET", f.clone(), vec![], b"").await;
        assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
        infos.push(json(&body));
    }
    for k in ["Version", "Size", "SHA256"] {
        assert!(
            infos.iter().all(|i| i[k] == infos[0][k]),
            "{k} differs: {infos:?}"
        );
    }
    assert_eq!(
        int.log.lock().unwrap().downloads.len(),
        1,
        "document.url fetched once for the cluster"
    );
    // Lock through the balancer; a conflicting Lock on another instance sees it.
    let lock = |id: &str| {
        vec![
            ("x-wopi-override", "LOCK".to_owned()),
            ("x-wopi-lock", id.to_owned()),
        ]
    };
    assert_eq!(
        wopi(lb.clone(), "POST", f.clone(), lock("L"), b"").await.0,
        200
    );
    for i in 0..3 {
        let (st, h, _) = wopi(at(i), "POST", f.clone(), lock("M"), b"").await;
        assert_eq!(st, 409);
        assert_eq!(hdr(&h, "x-wopi-lock").as_deref(), Some("L"));
    }
    // The integrator refuses callbacks; instance 0 acknowledges a PutFile, instance 1 unlocks.
    int.fail_next
        .store(1_000_000, std::sync::atomic::Ordering::SeqCst);
    let put = vec![
        ("x-wopi-override", "PUT".to_owned()),
        ("x-wopi-lock", "L".to_owned()),
    ];
    assert_eq!(
        wopi(
            at(0),
            "POST",
            format!("{f}/contents"),
            put,
            b"edited in the cluster"
        )
        .await
        .0,
        200
    );
    let unlock = vec![
        ("x-wopi-override", "UNLOCK".to_owned()),
        ("x-wopi-lock", "L".to_owned()),
    ];
    assert_eq!(wopi(at(1), "POST", f.clone(), unlock, b"").await.0, 200);
    // The operator CLI reads the cluster's queue from Redis (here: instance 2's settings).
    let config = gws[2].config.to_str().unwrap().to_owned();
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        crate::support::run_cli(&["deliveries", "list", "--config", &config])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&fid) && out.contains("pending in redis://"),
        "{out}"
    );
    // Instance 0 dies mid-retry (SIGKILL); the others take the delivery over after its lease.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    gws[0].kill();
    int.fail_next.store(0, std::sync::atomic::Ordering::SeqCst);
    int.wait_status(2, 1, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        int.log.lock().unwrap().saved,
        vec![(2, b"edited in the cluster".to_vec())],
        "the acknowledged bytes, downloaded through the balancer, accepted once"
    );
    let ones = int.callbacks().iter().filter(|c| c["status"] == 1).count();
    assert_eq!(
        ones,
        1,
        "status 1 once for the cluster: {:?}",
        int.callbacks()
    );
    assert!(
        int.callbacks().iter().all(|c| c["status"] != 4),
        "no instance claimed \"closed, no changes\": {:?}",
        int.callbacks()
    );
    for g in &gws[1..] {
        let (_, _, body) = get(&g.admin_url("/deliveries")).await;
        assert_eq!(json(&body)["pending"], json!([]), "nothing left pending");
    }
    let served = shared.lb.counts();
    assert!(
        served.iter().all(|(_, n)| *n > 0),
        "every instance served requests: {served:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// Redis killed (SIGKILL) mid-edit: 503 naming it, nothing acknowledged; back (its append-only
/// file reloaded), the edit completes.
async fn redis_killed_mid_edit_answers_503_and_the_edit_completes_when_it_is_back() {
    let mut shared = Shared::start().await;
    let (int, client) = peers().await;
    let gws = shared.start_instances(2, &host_toml(&shared, &int));
    let lb = shared.lb.base();
    int.put_doc("r.docx", b"v0");
    let (fid, tok, _) = open_at(&lb, &int, "r.docx", "k-r", Some(("u1", "U")), true).await;
    let f = format!("/wopi/files/{fid}");
    let send_lb = |method: &'static str,
                   path: String,
                   h: Vec<(&'static str, &'static str)>,
                   body: &'static [u8]| {
        let (client, lb, tok) = (&client, lb.clone(), tok.clone());
        async move {
            client
                .send(&lb, method, &with_token(&path, &tok), &tok, &h, body)
                .await
        }
    };
    let lock = vec![("x-wopi-override", "LOCK"), ("x-wopi-lock", "L")];
    assert_eq!(send_lb("POST", f.clone(), lock, b"").await.0, 200);
    shared.redis.kill();
    let put = vec![("x-wopi-override", "PUT"), ("x-wopi-lock", "L")];
    let (st, _, body) = send_lb("POST", format!("{f}/contents"), put.clone(), b"while down").await;
    assert_eq!(st, 503, "{}", String::from_utf8_lossy(&body));
    assert!(
        String::from_utf8_lossy(&body).contains("Redis unavailable"),
        "the answer names Redis"
    );
    let down = tokio::time::Instant::now();
    while get(&gws[1].admin_url("/readyz")).await.0 != 503 {
        assert!(
            down.elapsed() < T,
            "ready while Redis is unreachable: {}",
            gws[1].stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = gws[0].settled_log() + &gws[1].settled_log();
    assert!(
        log.contains("Redis unavailable") || log.contains("Redis unreachable"),
        "{log}"
    );
    shared.redis.restart().await;
    let back = tokio::time::Instant::now();
    while get(&gws[1].admin_url("/readyz")).await.0 != 200 {
        assert!(
            back.elapsed() < T,
            "never ready again after Redis came back: {}",
            gws[1].stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("ready {:?} after Redis came back", back.elapsed());
    assert_eq!(
        send_lb("POST", format!("{f}/contents"), put, b"after")
            .await
            .0,
        200
    );
    let unlock = vec![("x-wopi-override", "UNLOCK"), ("x-wopi-lock", "L")];
    assert_eq!(send_lb("POST", f.clone(), unlock, b"").await.0, 200);
    int.wait_status(2, 1, T).await;
    assert_eq!(int.log.lock().unwrap().saved, vec![(2, b"after".to_vec())]);
}

fn now_ticks() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    wopi::ticks::from_unix_ms(now)
}

fn sha256(b: &[u8]) -> String {
    use sha2::Digest as _;
    base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        sha2::Sha256::digest(b),
    )
}

/// The same scenario on the `s3` content store (moto's S3 server), with a 100 MiB PutFile
/// streamed to S3 as a multipart upload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_s3_a_100_mib_putfile_streams_and_survives_a_kill() {
    let shared = Shared::start().await;
    let mut s3 = S3::start().await;
    let (int, client) = peers().await;
    let content = s3.toml(&shared.dir.path().join("s3.secret"));
    let rest = host_toml_on(&shared, &int, &shared.toml_with(&content));
    let mut gws = shared.start_instances(3, &rest);
    let lb = shared.lb.base();
    int.put_doc("big.docx", b"small original");
    let (fid, tok, _) = open_at(&lb, &int, "big.docx", "k-big", Some(("u1", "U")), true).await;
    let f = format!("/wopi/files/{fid}");
    let bases: Vec<String> = gws.iter().map(|g| format!("http://{}", g.public)).collect();
    let at = |i: usize| bases[i].clone();
    let send_to = |base: String,
                   method: &'static str,
                   path: String,
                   h: Vec<(&'static str, &'static str)>,
                   body: bytes::Bytes| {
        let (client, lb, tok) = (&client, lb.clone(), tok.clone());
        async move {
            client
                .send_via(
                    &lb,
                    &base,
                    method,
                    &with_token(&path, &tok),
                    &tok,
                    &h,
                    body,
                    now_ticks(),
                )
                .await
        }
    };
    let lock = vec![("x-wopi-override", "LOCK"), ("x-wopi-lock", "L")];
    assert_eq!(
        send_to(lb.clone(), "POST", f.clone(), lock, bytes::Bytes::new())
            .await
            .0,
        200
    );
    // 100 MiB of incompressible bytes, acknowledged by instance 0 while the integrator fails.
    let mut big = vec![0u8; 100 * 1024 * 1024];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for chunk in big.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let big = bytes::Bytes::from(big);
    let want = sha256(&big);
    int.fail_next
        .store(1_000_000, std::sync::atomic::Ordering::SeqCst);
    let pid = gws[0].child.as_ref().unwrap().id();
    let (rss_before, hwm_before) = rss_kib(pid);
    let put = vec![("x-wopi-override", "PUT"), ("x-wopi-lock", "L")];
    let (st, _, body) = send_to(at(0), "POST", format!("{f}/contents"), put, big.clone()).await;
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    let (_, peak) = rss_kib(pid);
    let growth_mib = peak.saturating_sub(rss_before) as f64 / 1024.0;
    eprintln!(
        "100 MiB PutFile to S3: peak RSS growth {growth_mib:.1} MiB (RSS {rss_before} KiB, peak before {hwm_before} KiB, after {peak} KiB)"
    );
    assert!(
        growth_mib < 32.0,
        "peak RSS grew {growth_mib:.1} MiB for a 100 MiB PutFile"
    );
    // Every instance reports the same content.
    for i in 0..3 {
        let (st, _, body) = send_to(at(i), "GET", f.clone(), vec![], bytes::Bytes::new()).await;
        assert_eq!(st, 200);
        let info = json(&body);
        assert_eq!(info["Size"], 100 * 1024 * 1024);
        assert_eq!(info["SHA256"], want.as_str());
    }
    let unlock = vec![("x-wopi-override", "UNLOCK"), ("x-wopi-lock", "L")];
    assert_eq!(
        send_to(at(1), "POST", f.clone(), unlock, bytes::Bytes::new())
            .await
            .0,
        200
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    gws[0].kill();
    int.fail_next.store(0, std::sync::atomic::Ordering::SeqCst);
    int.wait_status(2, 1, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    {
        let log = int.log.lock().unwrap();
        assert_eq!(log.saved.len(), 1, "accepted once");
        assert_eq!(log.saved[0].0, 2);
        assert_eq!(
            sha256(&log.saved[0].1),
            want,
            "exactly the acknowledged bytes"
        );
    }
    // The store down: not ready, and content requests answer 503 naming it.
    s3.kill();
    let down = tokio::time::Instant::now();
    while get(&gws[1].admin_url("/readyz")).await.0 != 503 {
        assert!(
            down.elapsed() < T,
            "ready while the content store is unreachable"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (st, _, body) = send_to(
        at(2),
        "GET",
        format!("{f}/contents"),
        vec![],
        bytes::Bytes::new(),
    )
    .await;
    assert_eq!(st, 503, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("content store"));
}
