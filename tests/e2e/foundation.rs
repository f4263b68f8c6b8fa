//! The skeleton: defaults, settings errors, allowlists, body limits, TLS, metrics, shutdown.

use crate::support::http::{get, send};
use crate::support::{Config, Gateway, TempDir, free_port, run_cli};
use std::time::Duration;

#[tokio::test]
async fn starts_on_embedded_defaults() {
    // The defaults listen on 8080/9090: the test needs them free, and says so when not.
    for port in [8080, 9090] {
        if let Err(e) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            panic!(
                "127.0.0.1:{port} is busy ({e}): the embedded-defaults test needs ports 8080 and 9090 free; stop what listens there (ss -ltnp 'sport = :{port}')"
            );
        }
    }
    let dir = TempDir::new("defaults");
    let mut gw = Gateway::spawn(&["serve"], dir, Default::default());
    assert_eq!(gw.public.to_string(), "127.0.0.1:8080");
    assert_eq!(gw.admin.to_string(), "127.0.0.1:9090");
    assert_eq!(get(&gw.admin_url("/healthz")).await.0, 200);
    assert!(
        gw.dir.path().join("wopi-gateway-data").is_dir(),
        "data directory created"
    );
    gw.terminate();
    assert!(gw.wait(Duration::from_secs(15)).success());
}

#[test]
fn bad_settings_exit_64_naming_the_key() {
    let dir = TempDir::new("bad");
    for (text, key) in [
        ("[server]\nlisen = \"127.0.0.1:1\"\n", "server.lisen"),
        ("[locks]\nttl_seconds = 0\n", "locks.ttl_seconds"),
        ("[server\n", "line"),
        (
            "[access.allow]\nwopi = [\"300.1.1.1\"]\n",
            "access.allow.wopi[0]",
        ),
    ] {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text).unwrap();
        let (code, _, stderr) = run_cli(&["serve", "--config", path.to_str().unwrap()]);
        assert_eq!(code, 64, "{text}: {stderr}");
        assert!(stderr.contains(key), "{text}: {stderr}");
        let (code, stdout, _) = run_cli(&["check-config", "--config", path.to_str().unwrap()]);
        assert_eq!(code, 64);
        assert!(stdout.contains(key), "{stdout}");
    }
    let (code, _, _) = run_cli(&[
        "serve",
        "--config",
        dir.path().join("missing.toml").to_str().unwrap(),
    ]);
    assert_eq!(code, 64);
}

#[tokio::test]
async fn allowlists_by_group_with_trusted_proxies() {
    let gw = Gateway::start(Config {
        rest: r#"
[access]
trusted_proxies = ["127.0.0.1"]
[access.allow]
wopi = ["10.0.0.0/8"]
integrator = ["127.0.0.1", "192.0.2.0/24"]
hosting = ["2001:db8::/32"]
"#
        .into(),
        ..Default::default()
    });
    // Direct peer 127.0.0.1 is not in 10/8: denied with 403 and a short body.
    let (status, _, body) = get(&gw.url("/wopi/files/x")).await;
    assert_eq!(status, 403);
    assert!(String::from_utf8_lossy(&body).contains("not allowed"));
    // (path, forwarding header, denied?)
    let cases = [
        // Through the trusted proxy 127.0.0.1, the forwarded client 10.1.2.3 is allowed.
        (
            "/wopi/files/x",
            Some(("x-forwarded-for", "10.1.2.3")),
            false,
        ),
        // Right-most untrusted address decides: the spoofed left entry does not help.
        (
            "/wopi/files/x",
            Some(("x-forwarded-for", "10.9.9.9, 203.0.113.5")),
            true,
        ),
        // IPv6 CIDR through Forwarded.
        (
            "/hosting/discovery",
            Some(("forwarded", "for=\"[2001:db8::7]:1234\"")),
            false,
        ),
        (
            "/hosting/discovery",
            Some(("forwarded", "for=\"[2001:db9::7]\"")),
            true,
        ),
        // Single address: the peer itself.
        ("/api/v1/nothing", None, false),
        // Empty list = anyone.
        ("/docs/callback/x", None, false),
        ("/wopi/files/x", None, true),
    ];
    for (path, header, denied) in cases {
        let headers: Vec<(&str, &str)> = header.into_iter().collect();
        let (status, _, _) = send("GET", &gw.url(path), &headers, "").await;
        assert_eq!(status == 403, denied, "{path} {header:?}: {status}");
    }
    assert!(
        gw.wait_metric("wopi_gateway_ip_denials_total{group=\"wopi\"}", 2.0)
            .await
            >= 2.0
    );
    assert!(
        gw.wait_log("client address not in the allowlist")
            .contains("client address not in the allowlist")
    );
}

#[tokio::test]
async fn forwarded_headers_from_untrusted_peers_are_ignored() {
    let gw = Gateway::start(Config {
        rest: "[access.allow]\nwopi = [\"10.0.0.0/8\"]\n".into(),
        ..Default::default()
    });
    let (status, _, _) = send(
        "GET",
        &gw.url("/wopi/files/x"),
        &[("x-forwarded-for", "10.1.2.3")],
        "",
    )
    .await;
    assert_eq!(status, 403);
    let (status, _, _) = send(
        "GET",
        &gw.url("/wopi/files/x"),
        &[("forwarded", "for=10.1.2.3")],
        "",
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let gw = Gateway::start(Config {
        server: "[server.body_limit_bytes]\nintegrator = 100\n".into(),
        ..Default::default()
    });
    let (status, _, _) = send(
        "POST",
        &gw.url("/api/v1/sessions?integrator=x"),
        &[("content-type", "application/json")],
        vec![b'x'; 1000],
    )
    .await;
    assert_eq!(status, 413);
}

#[tokio::test]
async fn metrics_parse_and_count_requests() {
    let gw = Gateway::start(Config::default());
    for _ in 0..3 {
        get(&gw.url("/hosting/nothing-here")).await;
    }
    let (status, headers, body) = get(&gw.admin_url("/metrics")).await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = String::from_utf8(body).unwrap();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix('#') {
            assert!(
                rest.starts_with(" HELP ") || rest.starts_with(" TYPE "),
                "{line}"
            );
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        assert!(series.starts_with("wopi_gateway_"), "{line}");
        value
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("bad value in {line}"));
    }
    assert!(text.contains("wopi_gateway_build_info{"));
    // Built from a checkout: build_info names its commit.
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("git is needed to check build_info's commit");
    assert!(head.status.success(), "the tests run in a git checkout");
    let head = String::from_utf8_lossy(&head.stdout).trim().to_owned();
    assert!(
        text.contains(&format!("commit=\"{head}\"")),
        "build_info carries commit {head}: {}",
        text.lines()
            .find(|l| l.starts_with("wopi_gateway_build_info"))
            .unwrap_or("")
    );
    assert!(
        gw.wait_metric(
            "wopi_gateway_http_requests_total{group=\"hosting\",status_class=\"4xx\"}",
            3.0
        )
        .await
            >= 3.0
    );
    assert!(!text.contains("127.0.0.1"), "no addresses in labels");
}

#[tokio::test]
async fn tls_negotiates_http2_and_http11() {
    use rustls::pki_types::ServerName;
    use std::sync::Arc;
    let dir = TempDir::new("tls");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let gw = Gateway::start(Config {
        server: format!(
            "[server.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
            cert_path.display(),
            key_path.display()
        ),
        ..Default::default()
    });
    let _ = rustls::crypto::ring::default_provider().install_default();
    for (alpn, expect) in [
        (b"h2".to_vec(), hyper::Version::HTTP_2),
        (b"http/1.1".to_vec(), hyper::Version::HTTP_11),
    ] {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.cert.der().clone()).unwrap();
        let mut config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![alpn.clone()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(gw.public).await.unwrap();
        let tls = connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(alpn.as_slice()));
        let io = hyper_util::rt::TokioIo::new(tls);
        let mut req = http::Request::get(format!(
            "https://localhost:{}/hosting/none",
            gw.public.port()
        ))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
        if expect == hyper::Version::HTTP_11 {
            // HTTP/1.1 needs its Host field (RFC 9112 §3.2); hyper's client connection does
            // not add one.
            req.headers_mut().insert(
                http::header::HOST,
                http::HeaderValue::from_str(&format!("localhost:{}", gw.public.port())).unwrap(),
            );
        }
        let resp = if expect == hyper::Version::HTTP_2 {
            let (mut send, conn) =
                hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                    .await
                    .unwrap();
            tokio::spawn(conn);
            send.send_request(req).await.unwrap()
        } else {
            let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
            tokio::spawn(conn);
            send.send_request(req).await.unwrap()
        };
        assert_eq!(resp.version(), expect);
        assert_eq!(resp.status(), 404);
    }
    // Plain HTTP on the TLS port fails.
    let plain = crate::support::http::blocking_get(&gw.url("/hosting/none"));
    assert!(
        plain.is_err(),
        "plain HTTP on the TLS port got an answer: {plain:?}"
    );
}

#[test]
fn busy_port_is_a_clear_runtime_error() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let dir = TempDir::new("busy");
    let path = dir.path().join("c.toml");
    std::fs::write(&path, format!("[server]\nlisten = \"127.0.0.1:{port}\"\nadmin_listen = \"127.0.0.1:{}\"\ndata_dir = \"{}\"\n", free_port(), dir.path().join("d").display())).unwrap();
    let (code, _, stderr) = run_cli(&["serve", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(stderr.contains("server.listen"), "{stderr}");
}

#[test]
fn proof_key_cli_answers_the_microsoft_vectors() {
    let v: serde_json::Value = serde_json::from_str(include_str!(
        "../../crates/wopi/tests/fixtures/wopi-proof-key-test-vectors.json"
    ))
    .unwrap();
    let d = &v["discovery"];
    let attrs = wopi::discovery::ProofKeyAttrs {
        value: d["value"].as_str().map(str::to_owned),
        modulus: d["modulus"].as_str().map(str::to_owned),
        exponent: d["exponent"].as_str().map(str::to_owned),
        old_value: d["oldvalue"].as_str().map(str::to_owned),
        old_modulus: d["oldmodulus"].as_str().map(str::to_owned),
        old_exponent: d["oldexponent"].as_str().map(str::to_owned),
    };
    let xml = wopi::discovery::render(&wopi::discovery::Discovery {
        net_zones: vec![],
        proof_key: Some(attrs),
    });
    let dir = TempDir::new("vectors");
    let file = dir.path().join("discovery.xml");
    std::fs::write(&file, xml).unwrap();
    for case in v["cases"].as_array().unwrap() {
        let ts = case["timestamp"].as_i64().unwrap().to_string();
        let mut args = vec![
            "proof-key",
            "verify",
            "--discovery",
            file.to_str().unwrap(),
            "--url",
            case["url"].as_str().unwrap(),
            "--access-token",
            case["access_token"].as_str().unwrap(),
            "--timestamp",
            &ts,
            "--proof",
            case["proof"].as_str().unwrap(),
            "--proof-old",
            case["proof_old"].as_str().unwrap(),
        ];
        args.push("--ignore-time");
        let (code, out, _) = run_cli(&args);
        let name = case["name"].as_str().unwrap();
        if case["expected"].as_bool().unwrap() {
            assert_eq!(code, 0, "{name}: {out}");
            assert!(out.starts_with("valid: proof"), "{name}: {out}");
        } else {
            assert_eq!(code, 1, "{name}: {out}");
            assert!(out.starts_with("invalid: signature"), "{name}: {out}");
        }
    }
    // Without --ignore-time the 2015 timestamps are stale.
    let c = &v["cases"][0];
    let ts = c["timestamp"].as_i64().unwrap().to_string();
    let (code, out, _) = run_cli(&[
        "proof-key",
        "verify",
        "--discovery",
        file.to_str().unwrap(),
        "--url",
        c["url"].as_str().unwrap(),
        "--access-token",
        c["access_token"].as_str().unwrap(),
        "--timestamp",
        &ts,
        "--proof",
        c["proof"].as_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(out.contains("stale"), "{out}");
}

/// Sends raw bytes and returns the status line's code (0 when the connection just closed).
fn raw_status(addr: std::net::SocketAddr, head: &[u8]) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(head);
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n])
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn oversized_heads_are_logged_and_counted() {
    let gw = Gateway::start(Config {
        server: "log_format = \"json\"".into(),
        ..Default::default()
    });
    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000));
    assert_eq!(raw_status(gw.public, long_uri.as_bytes()), 414);
    let big_header = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(600_000)
    );
    assert_eq!(raw_status(gw.public, big_header.as_bytes()), 431);
    assert_eq!(
        raw_status(gw.public, b"GARBAGE\x01 / HTTP/1.1\r\n\r\n"),
        400
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let counts = (
            gw.metric("wopi_gateway_http_unrouted_requests_total{status=\"414\"}")
                .await,
            gw.metric("wopi_gateway_http_unrouted_requests_total{status=\"431\"}")
                .await,
            gw.metric("wopi_gateway_http_unrouted_requests_total{status=\"400\"}")
                .await,
            gw.metric("wopi_gateway_http_requests_total{group=\"unrouted\",status_class=\"4xx\"}")
                .await,
        );
        if counts == (1.0, 1.0, 1.0, 3.0) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{counts:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
