//! Redis as production runs it: TLS with a private CA and client certificates, an ACL user
//! whose password is in a file, and Sentinel with a failover under the gateways' feet.

use super::*;
use crate::support::cluster::{Redis, Shared};
use crate::support::fakes::Integrator;
use crate::support::redis_ha::{Pki, Sentinel, Sentinels, cli};

const PASSWORD: &str = "gw-password-0123456789";

fn host_toml(shared: &Shared, int: &Integrator) -> String {
    let (secret, key) = shared.secrets();
    format!(
        "{}\n[docs]\nhealthcheck_interval_seconds = 0\n[client_face]\nproof_key_file = \"{key}\"\n{}",
        shared.toml(),
        host_face_toml(
            int,
            "",
            &format!("access_token_secret_file = \"{secret}\""),
            ""
        )
    )
}

/// A WOPI call through `base`, signed for the balancer's URL.
#[allow(clippy::too_many_arguments)]
async fn call(
    client: &WopiClient,
    lb: &str,
    base: &str,
    tok: &str,
    method: &str,
    path: &str,
    h: &[(&str, &str)],
    body: &'static [u8],
) -> (u16, http::HeaderMap, Vec<u8>) {
    let (st, hs, b) = client
        .send_via(
            lb,
            base,
            method,
            &with_token(path, tok),
            tok,
            h,
            body,
            now_ticks(),
        )
        .await;
    (st, hs, b.to_vec())
}

fn now_ticks() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    wopi::ticks::from_unix_ms(now)
}

/// `doctor` on `config` with `from`→`to` replaced in it: (exit code, stdout).
async fn doctor(config: &std::path::Path, from: &str, to: &str) -> (i32, String) {
    let text = std::fs::read_to_string(config).unwrap().replace(from, to);
    let path = config.with_extension(format!("doctor-{}.toml", text.len()));
    std::fs::write(&path, text).unwrap();
    let (code, out, _) = tokio::task::spawn_blocking(move || {
        crate::support::run_cli(&["doctor", "--config", path.to_str().unwrap()])
    })
    .await
    .unwrap();
    (code, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_mutual_tls_with_an_acl_user_two_instances_share_locks_and_doctor_names_each_failure()
{
    let pki = Pki::new();
    let mut args = pki.server_args(true);
    for a in [
        "--user",
        "gw",
        "on",
        &format!(">{PASSWORD}"),
        "~*",
        "&*",
        "+@all",
    ] {
        args.push(a.to_owned());
    }
    let redis = Redis::start_with(true, args).await;
    let pw = pki.dir.path().join("redis-password");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let wrong_pw = pki.dir.path().join("wrong-password");
    std::fs::write(&wrong_pw, "not-the-password-42\n").unwrap();
    let cluster = format!(
        "redis_username = \"gw\"\nredis_password_file = \"{}\"\nredis_ca_file = \"{}\"\nredis_client_cert_file = \"{}\"\nredis_client_key_file = \"{}\"\n",
        pw.display(),
        pki.path("ca.pem"),
        pki.path("client.pem"),
        pki.path("client-key.pem"),
    );
    let shared = Shared::start_on(Some(redis), &cluster).await;
    assert!(shared.redis.url().starts_with("rediss://"));
    let (int, client) = peers().await;
    let gws = shared.start_instances(2, &host_toml(&shared, &int));
    let lb = shared.lb.base();
    int.put_doc("t.docx", b"original");
    let (fid, tok, _) = open_at(&lb, &int, "t.docx", "k-t", Some(("u1", "U")), true).await;
    let f = format!("/wopi/files/{fid}");
    let at = |i: usize| format!("http://{}", gws[i].public);
    let lock = |id: &'static str| [("x-wopi-override", "LOCK"), ("x-wopi-lock", id)];
    let (st, _, body) = call(&client, &lb, &at(0), &tok, "POST", &f, &lock("L"), b"").await;
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    let (st, h, _) = call(&client, &lb, &at(1), &tok, "POST", &f, &lock("M"), b"").await;
    assert_eq!(st, 409, "the other instance sees the lock over TLS");
    assert_eq!(hdr(&h, "x-wopi-lock").as_deref(), Some("L"));
    let put = [("x-wopi-override", "PUT"), ("x-wopi-lock", "L")];
    let path = format!("{f}/contents");
    let (st, _, body) = call(&client, &lb, &at(1), &tok, "POST", &path, &put, b"over TLS").await;
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    for g in &gws {
        let since = tokio::time::Instant::now();
        while get(&g.admin_url("/readyz")).await.0 != 200 {
            assert!(since.elapsed() < T, "never ready: {}", g.stderr());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // doctor: the real handshake, AUTH and PING; then each failure named.
    let config = gws[0].config.clone();
    let (_, out) = doctor(&config, "", "").await;
    assert!(
        out.contains("ok    cluster.redis_url:")
            && out.contains("answers PING over TLS after AUTH"),
        "{out}"
    );
    let (code, out) = doctor(&config, &pki.path("ca.pem"), &pki.path("other-ca.pem")).await;
    assert_ne!(code, 0);
    assert!(
        out.contains("fail  cluster.redis_url:")
            && out.contains("TLS")
            && out.contains("UnknownIssuer"),
        "the verification failure and its reason: {out}"
    );
    let without_cert = format!("redis_client_cert_file = \"{}\"", pki.path("client.pem"));
    let (code, out) = doctor(&config, &without_cert, "").await;
    let (code, out) = if out.contains("redis_client_key_file") {
        // Both keys go together: drop the key too.
        let text = std::fs::read_to_string(&config)
            .unwrap()
            .replace(&without_cert, "")
            .replace(
                &format!("redis_client_key_file = \"{}\"", pki.path("client-key.pem")),
                "",
            );
        let p = config.with_extension("no-client-cert.toml");
        std::fs::write(&p, text).unwrap();
        doctor(&p, "", "").await
    } else {
        (code, out)
    };
    assert_ne!(code, 0);
    assert!(
        out.contains("fail  cluster.redis_url:"),
        "Redis requires a client certificate: {out}"
    );
    let (code, out) = doctor(
        &config,
        &pw.display().to_string(),
        &wrong_pw.display().to_string(),
    )
    .await;
    assert_ne!(code, 0);
    assert!(
        out.contains("fail  cluster.redis_url:") && out.contains("AUTH"),
        "{out}"
    );
    assert!(
        !out.contains(PASSWORD) && !out.contains("not-the-password-42"),
        "a password in doctor's output: {out}"
    );

    // A gateway started with the wrong password stops, naming AUTH and not the password.
    let text: String = std::fs::read_to_string(&config)
        .unwrap()
        .replace(&pw.display().to_string(), &wrong_pw.display().to_string())
        .lines()
        .map(|l| {
            if l.starts_with("listen = ") || l.starts_with("admin_listen = ") {
                format!("{} = \"127.0.0.1:0\"\n", l.split(' ').next().unwrap())
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let bad = config.with_extension("wrong-password.toml");
    std::fs::write(&bad, text).unwrap();
    let (code, _, err) = tokio::task::spawn_blocking(move || {
        crate::support::run_cli(&["serve", "--config", bad.to_str().unwrap()])
    })
    .await
    .unwrap();
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("AUTH refused"), "{err}");
    assert!(
        !err.contains(PASSWORD) && !err.contains("not-the-password-42"),
        "{err}"
    );
}

/// `call` until it answers something else than 503 (as WOPI clients retry), within [`T`]:
/// (status, headers, body, time taken).
#[allow(clippy::too_many_arguments)]
async fn until_answered(
    client: &WopiClient,
    lb: &str,
    base: &str,
    tok: &str,
    method: &str,
    path: &str,
    h: &[(&str, &str)],
    body: &'static [u8],
) -> (u16, http::HeaderMap, Vec<u8>, Duration) {
    let started = tokio::time::Instant::now();
    loop {
        let (st, hs, b) = call(client, lb, base, tok, method, path, h, body).await;
        if st != 503 {
            return (st, hs, b, started.elapsed());
        }
        assert!(
            started.elapsed() < T,
            "still 503 after {T:?}: {}",
            String::from_utf8_lossy(&b)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_sentinels_a_switchover_and_a_killed_primary_lose_no_acknowledged_save() {
    let mut set = Sentinels::start().await;
    let cluster = format!(
        "{}redis_min_replicas_acked = 1\nredis_replication_timeout_ms = 1500\n",
        set.toml()
    );
    let shared = Shared::start_on(None, &cluster).await;
    let (int, client) = peers().await;
    let gws = shared.start_instances(2, &host_toml(&shared, &int));
    let logs = || {
        gws.iter()
            .map(Gateway::stderr)
            .collect::<Vec<_>>()
            .join("\n---\n")
    };
    let lb = shared.lb.base();
    int.put_doc("s.docx", b"original");
    let (fid, tok, _) = open_at(&lb, &int, "s.docx", "k-s", Some(("u1", "U")), true).await;
    let f = format!("/wopi/files/{fid}");
    let path = format!("{f}/contents");
    let at = |i: usize| format!("http://{}", gws[i].public);
    let lock = |id: &'static str| [("x-wopi-override", "LOCK"), ("x-wopi-lock", id)];
    let put = [("x-wopi-override", "PUT"), ("x-wopi-lock", "L")];
    let (st, _, _) = call(&client, &lb, &at(0), &tok, "POST", &f, &lock("L"), b"").await;
    assert_eq!(st, 200);
    let (st, _, body) = call(&client, &lb, &at(0), &tok, "POST", &path, &put, b"v1").await;
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));

    // A switchover: the primary is demoted while it runs (writes to it answer READONLY).
    let (old, new) = (set.primary.port, set.replica.port);
    let ok = cli(set.sentinels[0].port, &["SENTINEL", "failover", "mymaster"]);
    assert_eq!(ok, "OK");
    set.wait_primary(new, Duration::from_secs(20)).await;
    // Writes reach the new primary; meanwhile each answers 503, never hangs nor loops.
    let (st, _, body, took) = until_answered(
        &client,
        &lb,
        &at(1),
        &tok,
        "POST",
        &path,
        &put,
        b"v2 after switchover",
    )
    .await;
    assert_eq!(st, 200, "{}\n{}", String::from_utf8_lossy(&body), logs());
    eprintln!("saving again {took:?} after the switchover");
    // The demoted node follows the new primary before that one is killed.
    let deadline = tokio::time::Instant::now() + T;
    while !cli(old, &["INFO", "replication"]).contains("master_link_status:up") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "old primary never resynced"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The new primary is killed (SIGKILL): the sentinels promote the other node again.
    set.replica.kill();
    set.wait_primary(old, Duration::from_secs(30)).await;
    let (st, _, body, took) = until_answered(&client, &lb, &at(0), &tok, "GET", &f, &[], b"").await;
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    eprintln!("answering again {took:?} after the failover");
    let info = json(&body);
    assert_eq!(
        info["Size"],
        json!(b"v2 after switchover".len()),
        "the save acknowledged before the failover is there: {info}"
    );
    let (st, h, _, _) =
        until_answered(&client, &lb, &at(1), &tok, "POST", &f, &lock("M"), b"").await;
    assert_eq!(st, 409, "the lock survived the failover");
    assert_eq!(hdr(&h, "x-wopi-lock").as_deref(), Some("L"));
    // Ready again once each instance's periodic check reaches the new primary.
    for g in &gws {
        let since = tokio::time::Instant::now();
        while get(&g.admin_url("/readyz")).await.0 != 200 {
            assert!(since.elapsed() < T, "not ready with a primary known");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // No replica is left: a save cannot be replicated, and is not acknowledged.
    let (st, _, body) = call(&client, &lb, &at(1), &tok, "POST", &path, &put, b"v3").await;
    let body = String::from_utf8_lossy(&body);
    assert_eq!(st, 503, "{body}");
    assert!(body.contains("Redis replication"), "{body}");
    let (_, out) = doctor(&gws[0].config, "", "").await;
    assert!(
        out.contains(&format!("names 127.0.0.1:{old} primary of `mymaster`")),
        "doctor shows the sentinels' view: {out}"
    );
    let log = logs();
    assert!(!log.contains("panicked"), "{log}");
    eprintln!("{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinels_over_tls_with_a_password_name_a_tls_primary_for_doctor_and_serve() {
    let pki = Pki::new();
    let redis = Redis::start_with(true, pki.server_args(false)).await;
    let sentinel = Sentinel::start_tls(redis.port, &pki, "sentinel-password-0123").await;
    let pw = pki.dir.path().join("sentinel-password");
    std::fs::write(&pw, "sentinel-password-0123\n").unwrap();
    let cluster = format!(
        "redis_sentinels = [\"127.0.0.1:{}\"]\nredis_master_name = \"mymaster\"\nredis_sentinel_tls = true\nredis_sentinel_password_file = \"{}\"\nredis_ca_file = \"{}\"\n",
        sentinel.port,
        pw.display(),
        pki.path("ca.pem"),
    );
    let shared = Shared::start_on(None, &cluster).await;
    let (int, _client) = peers().await;
    let gws = shared.start_instances(1, &host_toml(&shared, &int));
    let since = tokio::time::Instant::now();
    while get(&gws[0].admin_url("/readyz")).await.0 != 200 {
        assert!(since.elapsed() < T, "never ready: {}", gws[0].stderr());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, out) = doctor(&gws[0].config, "", "").await;
    assert!(
        out.contains(&format!(
            "names 127.0.0.1:{} primary of `mymaster`",
            redis.port
        )) && out.contains("answers PING over TLS"),
        "{out}"
    );
    // A wrong sentinel password is named, not shown.
    let wrong = pki.dir.path().join("wrong");
    std::fs::write(&wrong, "not-the-sentinel-password\n").unwrap();
    let (code, out) = doctor(
        &gws[0].config,
        &pw.display().to_string(),
        &wrong.display().to_string(),
    )
    .await;
    assert_ne!(code, 0);
    assert!(
        out.contains(&format!("fail  sentinel 127.0.0.1:{}", sentinel.port)),
        "{out}"
    );
    assert!(!out.contains("sentinel-password-0123") && !out.contains("not-the-sentinel-password"));
}
