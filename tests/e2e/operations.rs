//! Operator features: hot reload under load, the doctor command.

use crate::support::http::get;
use crate::support::{Config, Gateway, run_cli};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

fn key_file(dir: &std::path::Path, name: &str) -> String {
    let path = dir.join(name);
    let (code, out, err) = run_cli(&["proof-key", "generate", "--out", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    path.to_str().unwrap().to_owned()
}

fn discovery_keys(xml: &[u8]) -> wopi::proof::ProofKeys {
    wopi::discovery::parse(xml).unwrap().proof_keys().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_under_load_without_failed_requests() {
    let keys = crate::support::TempDir::new("keys");
    let k1 = key_file(keys.path(), "k1.pem");
    let k2 = key_file(keys.path(), "k2.pem");
    let before = format!(
        "[access.allow]\nintegrator = [\"10.0.0.0/8\"]\n[client_face]\nproof_key_file = \"{k1}\"\n"
    );
    let gw = Gateway::start(Config {
        rest: before,
        ..Default::default()
    });
    assert_eq!(get(&gw.url("/api/v1/x")).await.0, 403);
    let (_, _, d1) = get(&gw.url("/hosting/discovery")).await;
    let first = discovery_keys(&d1);

    // Load on another route for the whole reload.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (stop, ok, failed, url) = (
            stop.clone(),
            ok.clone(),
            failed.clone(),
            gw.url("/hosting/capabilities"),
        );
        workers.push(tokio::spawn(async move {
            let client: hyper_util::client::legacy::Client<_, http_body_util::Full<bytes::Bytes>> =
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .build_http();
            while !stop.load(Ordering::Relaxed) {
                let req = http::Request::get(&url)
                    .body(http_body_util::Full::new(bytes::Bytes::new()))
                    .unwrap();
                match client.request(req).await {
                    Ok(r) if r.status() == 200 => {
                        let _ = http_body_util::BodyExt::collect(r.into_body()).await;
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A broken file: refused, the running settings stay.
    let config = std::fs::read_to_string(&gw.config).unwrap();
    std::fs::write(&gw.config, format!("{config}\n[locks]\nttl_seconds = 0\n")).unwrap();
    gw.signal("HUP");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(get(&gw.url("/api/v1/x")).await.0, 403);
    assert_eq!(
        gw.metric("wopi_gateway_reloads_total{result=\"error\"}")
            .await,
        1.0
    );
    assert!(
        gw.wait_log("locks.ttl_seconds")
            .contains("locks.ttl_seconds"),
        "the log names the bad key"
    );

    // A good file: new allowlist and a rotated proof key.
    let after = config
        .replace(
            "integrator = [\"10.0.0.0/8\"]",
            "integrator = [\"127.0.0.1\"]",
        )
        .replace(&k1, &k2);
    std::fs::write(&gw.config, after).unwrap();
    gw.signal("HUP");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while get(&gw.url("/api/v1/x")).await.0 == 403 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "reload never applied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "no request failed during the reloads"
    );
    assert!(ok.load(Ordering::Relaxed) > 50);
    assert_eq!(
        gw.metric("wopi_gateway_reloads_total{result=\"ok\"}").await,
        1.0
    );
    let (_, _, d2) = get(&gw.url("/hosting/discovery")).await;
    let second = discovery_keys(&d2);
    assert_ne!(second.current, first.current, "the new key is current");
    assert_eq!(
        second.old, first.current,
        "the previous current key became old"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_the_failing_stage() {
    let up = crate::support::upstream::start(0).await;
    let dir = crate::support::TempDir::new("doctor");
    let write = |secret: &str| {
        let path = dir.path().join("gw.toml");
        std::fs::write(
            &path,
            format!(
                "[server]\nlisten = \"127.0.0.1:{}\"\nadmin_listen = \"127.0.0.1:{}\"\ndata_dir = \"{}\"\n[docs]\nurl = \"http://{up}\"\njwt_secret = \"{secret}\"\n[client_face]\nallowed_wopi_origins = [\"https://cloud.example.com\"]\n",
                crate::support::free_port(),
                crate::support::free_port(),
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        path
    };
    let bad = write("wrong-secret-0123456789abcdef-0123456789");
    let out = tokio::task::spawn_blocking(move || {
        run_cli(&["doctor", "--config", bad.to_str().unwrap()])
    })
    .await
    .unwrap();
    assert_eq!(out.0, 1, "{}", out.1);
    assert!(
        out.1.lines().any(|l| l.starts_with("fail")
            && l.contains("docs.jwt_secret")
            && l.contains("error 6")),
        "{}",
        out.1
    );
    assert!(
        out.1
            .contains("fix: make docs.jwt_secret equal Docs' JWT_SECRET"),
        "{}",
        out.1
    );
    assert!(
        out.1
            .lines()
            .any(|l| l.starts_with("ok") && l.contains("docs.url")),
        "{}",
        out.1
    );
    let good = write(crate::support::upstream::DOCS_SECRET);
    let out = tokio::task::spawn_blocking(move || {
        run_cli(&["doctor", "--config", good.to_str().unwrap()])
    })
    .await
    .unwrap();
    assert_eq!(out.0, 0, "{}", out.1);
    assert!(
        out.1
            .lines()
            .any(|l| l.starts_with("ok") && l.contains("docs.jwt_secret") && l.contains("9.3.1.1")),
        "{}",
        out.1
    );
    assert!(
        out.1
            .lines()
            .any(|l| l.starts_with("ok") && l.contains("clock")),
        "{}",
        out.1
    );
    // Upstream down: the docs.url stage fails.
    let down = dir.path().join("down.toml");
    std::fs::write(
        &down,
        format!(
            "[server]\ndata_dir = \"{}\"\n[docs]\nurl = \"http://127.0.0.1:{}\"\n",
            dir.path().join("d2").display(),
            crate::support::free_port()
        ),
    )
    .unwrap();
    let out = tokio::task::spawn_blocking(move || {
        run_cli(&["doctor", "--config", down.to_str().unwrap()])
    })
    .await
    .unwrap();
    assert_eq!(out.0, 1);
    assert!(
        out.1
            .lines()
            .any(|l| l.starts_with("fail") && l.contains("docs.url")),
        "{}",
        out.1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_swaps_the_tls_certificate() {
    use rustls::pki_types::ServerName;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = crate::support::TempDir::new("tls-reload");
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    let write = |name: &str| {
        let c = rcgen::generate_simple_self_signed(vec![name.to_owned(), "localhost".to_owned()])
            .unwrap();
        std::fs::write(&cert_path, c.cert.pem()).unwrap();
        std::fs::write(&key_path, c.key_pair.serialize_pem()).unwrap();
        c.cert.der().to_vec()
    };
    let first = write("first.example");
    let gw = Gateway::start(Config {
        server: format!(
            "[server.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
            cert_path.display(),
            key_path.display()
        ),
        ..Default::default()
    });
    // Presents whatever it serves; the test only reads which certificate that is.
    #[derive(Debug)]
    struct AcceptAny;
    impl rustls::client::danger::ServerCertVerifier for AcceptAny {
        fn verify_server_cert(
            &self,
            _: &rustls::pki_types::CertificateDer<'_>,
            _: &[rustls::pki_types::CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: rustls::pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &rustls::pki_types::CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &rustls::pki_types::CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            rustls::crypto::ring::default_provider()
                .signature_verification_algorithms
                .supported_schemes()
        }
    }
    let presented = |addr: std::net::SocketAddr| async move {
        let config = rustls::ClientConfig::builder()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny))
            .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
    };
    assert_eq!(presented(gw.public).await, first);
    // Keep a connection open across the reload: it must survive.
    let config = rustls::ClientConfig::builder()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny))
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(gw.public).await.unwrap();
    let mut open = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let second = write("second.example");
    gw.signal("HUP");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while presented(gw.public).await != second {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    open.write_all(
        b"GET /hosting/capabilities HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    open.read_to_end(&mut answer).await.unwrap();
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"),
        "the connection opened before the reload still works"
    );
}

#[tokio::test]
async fn admin_operator_routes_need_the_bearer_token() {
    use crate::support::http::send;
    let dir = crate::support::TempDir::new("admin-token");
    let token_file = dir.path().join("admin-token");
    let token = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let gw = Gateway::start(Config {
        server: format!("admin_token_file = \"{}\"", token_file.display()),
        ..Default::default()
    });
    let bearer = format!("Bearer {token}");
    for (method, path) in [
        ("POST", "/deliveries/nope/retry"),
        ("POST", "/deliveries/nope/discard"),
        ("GET", "/deliveries"),
        ("GET", "/recovery"),
    ] {
        let url = gw.admin_url(path);
        let (st, h, _) = send(method, &url, &[], "").await;
        assert_eq!(st, 401, "{method} {path} without a token");
        assert!(h.contains_key("www-authenticate"));
        let (st, _, _) = send(method, &url, &[("authorization", "Bearer wrong")], "").await;
        assert_eq!(st, 401, "{method} {path} with a wrong token");
        let (st, _, _) = send(method, &url, &[("authorization", &bearer)], "").await;
        assert_eq!(
            st,
            if method == "POST" { 404 } else { 200 },
            "{method} {path} with the token"
        );
    }
    // Scrapers and probes need no token.
    assert_eq!(get(&gw.admin_url("/metrics")).await.0, 200);
    assert_eq!(get(&gw.admin_url("/healthz")).await.0, 200);
    assert_ne!(get(&gw.admin_url("/readyz")).await.0, 401);
    assert_eq!(
        gw.metric("wopi_gateway_admin_auth_failures_total").await,
        8.0
    );
    assert!(!gw.stderr().contains(token), "the token is never logged");
}

#[test]
fn check_config_refuses_an_open_admin_listener_without_a_token() {
    let dir = crate::support::TempDir::new("admin-open");
    let path = dir.path().join("gw.toml");
    std::fs::write(&path, "[server]\nadmin_listen = \"0.0.0.0:9090\"\n").unwrap();
    let (code, out, _) = run_cli(&["check-config", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 64);
    assert!(out.contains("server.admin_token_file"), "{out}");
    let missing = dir.path().join("missing.toml");
    std::fs::write(
        &missing,
        "[docs]\njwt_secret_file = \"/run/secrets/not-on-this-machine\"\n",
    )
    .unwrap();
    let (code, out, _) = run_cli(&["check-config", "--config", missing.to_str().unwrap()]);
    assert_eq!(
        code, 66,
        "a secret file that is not here: its own exit code"
    );
    assert!(
        out.contains("on this machine") && out.contains("hint"),
        "{out}"
    );
}

#[test]
fn deliveries_list_and_doctor_leave_a_missing_data_dir_alone() {
    let dir = crate::support::TempDir::new("no-data");
    let data = dir.path().join("never-created");
    let path = dir.path().join("gw.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"127.0.0.1:{}\"\nadmin_listen = \"127.0.0.1:{}\"\ndata_dir = \"{}\"\n[docs]\nurl = \"http://127.0.0.1:1\"\n",
            crate::support::free_port(),
            crate::support::free_port(),
            data.display()
        ),
    )
    .unwrap();
    let cfg = path.to_str().unwrap();
    let (code, _, err) = run_cli(&["deliveries", "list", "--config", cfg]);
    assert_eq!(code, 1);
    assert!(err.contains("does not exist"), "{err}");
    let (_, out, _) = run_cli(&["doctor", "--config", cfg]);
    assert!(
        out.lines()
            .any(|l| l.contains("server.data_dir") && l.contains("does not exist yet")),
        "{out}"
    );
    assert!(!data.exists(), "doctor created the data dir");
}

#[test]
fn check_config_refuses_unshareable_cluster_settings() {
    let dir = crate::support::TempDir::new("cluster-config");
    std::fs::write(
        dir.path().join("s.secret"),
        "0123456789abcdef0123456789abcdef",
    )
    .unwrap();
    let secret = dir.path().join("s.secret").display().to_string();
    let key = dir.path().join("key.pem");
    assert_eq!(
        run_cli(&["proof-key", "generate", "--out", key.to_str().unwrap()]).0,
        0
    );
    let shared = format!(
        "[host_face]\naccess_token_secret_file = \"{secret}\"\n[client_face]\nproof_key_file = \"{}\"\n",
        key.display()
    );
    let cluster = "[cluster]\nredis_url = \"redis://127.0.0.1:6379/\"\n";
    let content = "[content]\ndir = \"/srv/shared\"\n";
    let cases: Vec<(String, &str, &str)> = vec![
        (
            format!("{cluster}{content}{shared}[locks]\nstore = \"memory\"\n"),
            "locks.store",
            "every instance must see the same locks",
        ),
        (
            format!("{cluster}{shared}"),
            "content.dir",
            "every instance shares",
        ),
        (
            format!("{cluster}{content}"),
            "host_face.access_token_secret_file",
            "every instance",
        ),
        (
            format!("{cluster}{content}[host_face]\naccess_token_secret_file = \"{secret}\"\n"),
            "client_face.proof_key_file",
            "every instance",
        ),
        (
            "[content]\nstore = \"s3\"\n[content.s3]\nendpoint = \"http://127.0.0.1:9000\"\n"
                .into(),
            "content.s3.bucket",
            "required",
        ),
        (
            "[content]\nstore = \"s3\"\n[content.s3]\nbucket = \"b\"\n".into(),
            "content.s3.endpoint",
            "required",
        ),
        (
            "[content]\nstore = \"nfs\"\n".into(),
            "content.store",
            "neither",
        ),
        (
            "[cluster]\nredis_url = \"http://redis\"\n".into(),
            "cluster.redis_url",
            "redis://",
        ),
        (
            "[cluster]\nkey_prefix = \"\"\n".into(),
            "cluster.key_prefix",
            "must not be empty",
        ),
        (
            format!(
                "[cluster]\nredis_url = \"rediss://127.0.0.1:6380/\"\nredis_ca_file = \"{secret}\"\n{content}{shared}"
            ),
            "cluster.redis_ca_file",
            "no PEM certificate",
        ),
        (
            format!("[cluster]\nredis_sentinels = [\"127.0.0.1:26379\"]\n{content}{shared}"),
            "cluster.redis_master_name",
            "required with cluster.redis_sentinels",
        ),
        (
            format!(
                "[cluster]\nredis_url = \"redis://gw:in-the-url@127.0.0.1/\"\nredis_password_file = \"{secret}\"\n{content}{shared}"
            ),
            "cluster.redis_password_file",
            "also in cluster.redis_url",
        ),
    ];
    for (i, (toml, key, why)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("c{i}.toml"));
        std::fs::write(&path, toml).unwrap();
        let (code, out, err) = run_cli(&["check-config", "--config", path.to_str().unwrap()]);
        assert_eq!(code, 64, "{toml}\n{out}{err}");
        assert!(out.contains(key) && out.contains(why), "{toml}\n{out}");
        assert!(
            !out.contains("in-the-url"),
            "a password in the output: {out}"
        );
    }
    // A complete cluster: locks default to the cluster's Redis.
    let path = dir.path().join("ok.toml");
    std::fs::write(&path, format!("{cluster}{content}{shared}")).unwrap();
    let (code, out, err) = run_cli(&["check-config", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
}
