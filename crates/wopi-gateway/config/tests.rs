use super::*;
use gateway::settings::defaults as d;

const EXAMPLE: &str = include_str!("../../../deploy/wopi-gateway.example.toml");

fn parse(text: &str) -> Result<Settings, ConfigError> {
    parse_str(text, Path::new("/etc/wopi-gateway"))
}

#[test]
fn example_parses_and_matches_defaults() {
    let s = parse(EXAMPLE).unwrap();
    let def = Settings::default();
    assert_eq!(s.server.listen.to_string(), d::LISTEN);
    assert_eq!(s.server.admin_listen.to_string(), d::ADMIN_LISTEN);
    assert_eq!(
        s.server.public_url,
        PublicUrl::parse(d::PUBLIC_URL).unwrap()
    );
    assert_eq!(
        s.server.data_dir,
        Path::new("/etc/wopi-gateway").join(d::DATA_DIR)
    );
    assert_eq!(s.server.header_read_timeout, def.server.header_read_timeout);
    assert_eq!(s.server.idle_timeout, def.server.idle_timeout);
    assert_eq!(s.server.request_timeout, def.server.request_timeout);
    assert_eq!(s.server.shutdown_grace, def.server.shutdown_grace);
    assert_eq!(s.server.max_concurrent_requests, d::MAX_CONCURRENT_REQUESTS);
    assert_eq!(s.server.connection_threads, def.server.connection_threads);
    assert_eq!(s.server.max_connections, d::MAX_CONNECTIONS_AUTO);
    assert_eq!(s.server.max_head_bytes, d::MAX_HEAD_BYTES);
    assert_eq!(s.server.max_headers, d::MAX_HEADERS);
    assert_eq!(
        s.server.body_idle_timeout,
        Duration::from_secs(d::BODY_IDLE_TIMEOUT_SECONDS)
    );
    assert_eq!(s.server.body_limits, def.server.body_limits);
    assert_eq!(s.server.log_format, LogFormat::Human);
    assert!(s.server.tls.is_none());
    assert!(s.access.trusted_proxies.is_empty());
    assert!(s.access.allow.iter().all(AllowList::is_empty));
    assert_eq!(s.locks.kind, LockStoreKind::Memory);
    assert_eq!(s.cluster.redis, None);
    assert_eq!(s.cluster.key_prefix, d::CLUSTER_KEY_PREFIX);
    assert_eq!(s.cluster.lease, def.cluster.lease);
    assert_eq!(
        s.content,
        gateway::settings::ContentSettings::Fs { dir: None }
    );
    assert_eq!(s.locks.store, def.locks.store);
    assert_eq!(
        s.host_face.discovery_refresh,
        def.host_face.discovery_refresh
    );
    assert_eq!(s.host_face.proof, ProofMode::Required);
    assert_eq!(
        s.host_face.proof_future_skew,
        def.host_face.proof_future_skew
    );
    assert_eq!(s.host_face.access_token_ttl, def.host_face.access_token_ttl);
    assert_eq!(s.host_face.download_url_ttl, def.host_face.download_url_ttl);
    assert_eq!(
        s.host_face.delivery_max_backoff,
        def.host_face.delivery_max_backoff
    );
    assert_eq!(s.docs.url, d::DOCS_URL);
    assert_eq!(s.docs.public_url, None);
    assert!(s.docs.jwt_secret.is_none());
    assert_eq!(s.docs.jwt_header, d::JWT_HEADER);
    assert_eq!(s.docs.ca_file, None);
    assert_eq!(s.docs.healthcheck_interval, def.docs.healthcheck_interval);
    assert_eq!(s.docs.tunnel_idle_timeout, def.docs.tunnel_idle_timeout);
    assert_eq!(s.upstream.connect_timeout, def.upstream.connect_timeout);
    assert_eq!(s.upstream.request_timeout, def.upstream.request_timeout);
    assert!(s.client_face.proof_key_file.is_none() && s.client_face.proof_key_old_file.is_none());
    assert!(s.client_face.allowed_wopi_origins.is_empty());
    assert_eq!(s.client_face.lock_refresh, def.client_face.lock_refresh);
    assert_eq!(
        s.client_face.send_authorization_header,
        d::SEND_AUTHORIZATION_HEADER
    );
    assert_eq!(
        s.client_face.profiles.len(),
        1,
        "the example documents one profile"
    );
    assert_eq!(s.client_face.profiles[0].forcesave_interval, Duration::ZERO);
    // Every documented default literal appears in the example.
    for (key, value) in [
        ("redis_url", d::REDIS_URL),
        ("redis_prefix", d::REDIS_PREFIX),
        ("store", d::LOCK_STORE),
        ("proof", d::PROOF),
        ("key_prefix", d::CLUSTER_KEY_PREFIX),
        ("store", d::CONTENT_STORE),
        ("region", d::S3_REGION),
    ] {
        assert!(EXAMPLE.contains(&format!("{key} = \"{value}\"")), "{key}");
    }
}

#[test]
fn unenforceable_is_view_unless_refuse() {
    let base = "[[host_face.integrator]]\nname = \"a\"\njwt_secret = \"0123456789abcdef0123456789abcdef\"\nallowed_origins = [\"https://a\"]\n";
    for (extra, want) in [
        ("", gateway::settings::Unenforceable::View),
        (
            "unenforceable = \"view\"",
            gateway::settings::Unenforceable::View,
        ),
        (
            "unenforceable = \"refuse\"",
            gateway::settings::Unenforceable::Refuse,
        ),
    ] {
        let s = parse(&format!("{base}{extra}")).unwrap();
        assert_eq!(s.host_face.integrators[0].unenforceable, want, "{extra}");
    }
}

#[test]
fn actions_url_is_an_http_url_or_absent() {
    let base = "[[host_face.integrator]]\nname = \"a\"\njwt_secret = \"0123456789abcdef0123456789abcdef\"\nallowed_origins = [\"https://a\"]\n";
    let s = parse(base).unwrap();
    assert_eq!(s.host_face.integrators[0].actions_url, None);
    let s = parse(&format!("{base}actions_url = \"\"")).unwrap();
    assert_eq!(s.host_face.integrators[0].actions_url, None);
    let s = parse(&format!(
        "{base}actions_url = \"https://a/wopi-actions?x=1\""
    ))
    .unwrap();
    assert_eq!(
        s.host_face.integrators[0].actions_url.as_deref(),
        Some("https://a/wopi-actions?x=1")
    );
}

#[test]
fn empty_file_is_the_defaults() {
    let s = parse("").unwrap();
    assert_eq!(s.server.listen.to_string(), d::LISTEN);
}

#[test]
fn connection_threads_per_core_off_or_counted() {
    let cores = gateway::settings::cores().min(d::MAX_CONNECTION_THREADS);
    assert_eq!(Settings::default().server.connection_threads, cores);
    for (text, want) in [
        ("[server]\nconnection_threads = -1", cores),
        ("[server]\nconnection_threads = 0", 0),
        ("[server]\nconnection_threads = 3", 3),
    ] {
        assert_eq!(
            parse(text).unwrap().server.connection_threads,
            want,
            "{text}"
        );
    }
}

#[test]
fn errors_name_the_dotted_key() {
    let cases = [
        ("[server]\nlisen = \"x\"", "server.lisen"),
        ("bogus = 1", "bogus"),
        ("[server]\nlisten = \"nope\"", "server.listen"),
        ("[server]\nlisten = 8080", "server.listen"),
        ("[server]\npublic_url = \"ftp://x\"", "server.public_url"),
        ("[server.tls]\ncert_file = \"c.pem\"", "server.tls.key_file"),
        (
            "[server.body_limit_bytes]\nwopi = 0",
            "server.body_limit_bytes.wopi",
        ),
        (
            "[access]\ntrusted_proxies = [\"10.0.0.0/40\"]",
            "access.trusted_proxies[0]",
        ),
        (
            "[access.allow]\nwopi = [\"1.2.3.4\", \"x\"]",
            "access.allow.wopi[1]",
        ),
        ("[access.allow]\nnope = []", "access.allow.nope"),
        ("[locks]\nttl_seconds = 0", "locks.ttl_seconds"),
        (
            "[server]\nconnection_threads = 65",
            "server.connection_threads",
        ),
        (
            "[server]\nconnection_threads = -2",
            "server.connection_threads",
        ),
        ("[locks]\nstore = \"etcd\"", "locks.store"),
        ("[host_face]\nproof = \"maybe\"", "host_face.proof"),
        (
            "[[host_face.integrator]]\nname = \"a\"\nallowed_origins = [\"https://a\"]",
            "host_face.integrator[0].jwt_secret",
        ),
        (
            "[[host_face.integrator]]\nname = \"a\"\njwt_secret = \"secret\"\nallowed_origins = [\"https://a\"]",
            "host_face.integrator[0].jwt_secret",
        ),
        (
            "[[host_face.integrator]]\nname = \"a\"\njwt_secret = \"0123456789abcdef0123456789abcdef\"",
            "host_face.integrator[0].allowed_origins",
        ),
        (
            "[[host_face.integrator]]\nname = \"a\"\njwt_secret = \"0123456789abcdef0123456789abcdef\"\nallowed_origins = [\"https://a\"]\n[[host_face.integrator]]\nname = \"a\"\njwt_secret = \"0123456789abcdef0123456789abcdef\"\nallowed_origins = [\"https://a\"]",
            "host_face.integrator[1].name",
        ),
        (
            "[[host_face.integrator]]\nname = \"a\"\njwt_secret = \"0123456789abcdef0123456789abcdef\"\nallowed_origins = [\"https://a\"]\nunenforceable = \"widen\"",
            "host_face.integrator[0].unenforceable",
        ),
        (
            "[[host_face.integrator]]\nname = \"a\"\njwt_secret = \"0123456789abcdef0123456789abcdef\"\nallowed_origins = [\"https://a\"]\nactions_url = \"ftp://a/actions\"",
            "host_face.integrator[0].actions_url",
        ),
        (
            "[[host_face.integrator]]\nname = \"a\"\njwt_secret = \"0123456789abcdef0123456789abcdef\"\nallowed_origins = [\"https://a\"]\nactions_url = \"/actions\"",
            "host_face.integrator[0].actions_url",
        ),
        ("[docs]\nurl = \"nope\"", "docs.url"),
        ("[docs]\njwt_secret = \"short\"", "docs.jwt_secret"),
        (
            "[client_face]\nallowed_wopi_origins = [\"x\"]",
            "client_face.allowed_wopi_origins[0]",
        ),
        (
            "[client_face]\nlock_refresh_seconds = 5000",
            "client_face.lock_refresh_seconds",
        ),
        (
            "[client_face]\nproof_key_file = \"/nonexistent.pem\"",
            "client_face.proof_key_file",
        ),
        (
            "[[client_face.profile]]\nmatch_origin = \"https://h\"\nco_editing_mode = \"slow\"",
            "client_face.profile[0].co_editing_mode",
        ),
        (
            "[[client_face.profile]]\nmatch_origin = \"https://h\"\nbogus = 1",
            "client_face.profile[0].bogus",
        ),
    ];
    for (text, key) in cases {
        let e = parse(text).unwrap_err();
        assert_eq!(e.key, key, "{text} → {e}");
        assert!(!e.reason.is_empty());
    }
    let e = parse("[server]\nlisen = \"x\"").unwrap_err();
    assert!(e.reason.contains("line 2"), "{e}");
}

#[test]
fn check_config_refuses_what_serve_would_refuse() {
    let dir = std::env::temp_dir().join(format!("wopi-gw-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let short = dir.join("short-secret");
    std::fs::write(&short, "0123456789").unwrap();
    let good = dir.join("good-secret");
    std::fs::write(&good, "0123456789abcdef0123456789abcdef\n").unwrap();
    let cases = [
        (
            "[server]\nlisten = \"127.0.0.1:8080\"\nadmin_listen = \"127.0.0.1:8080\"".to_owned(),
            "server.admin_listen",
            "collides",
        ),
        (
            "[server]\nlisten = \"0.0.0.0:8080\"\nadmin_listen = \"127.0.0.1:8080\"".to_owned(),
            "server.admin_listen",
            "collides",
        ),
        (
            "[server.tls]\ncert_file = \"/nonexistent/cert.pem\"\nkey_file = \"/nonexistent/key.pem\"".to_owned(),
            "server.tls.cert_file",
            "cannot read",
        ),
        (
            format!("[server.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"", file.display(), file.display()),
            "server.tls",
            "no PEM certificate",
        ),
        (
            format!("[server]\ndata_dir = \"{}\"", file.display()),
            "server.data_dir",
            "not a directory",
        ),
        (
            "[docs]\njwt_secret = \"secret\"".to_owned(),
            "docs.jwt_secret",
            "openssl rand -hex 32",
        ),
        (
            "[docs]\njwt_secret = \"0123456789abcdef0123456789abcde\"".to_owned(),
            "docs.jwt_secret",
            "at least 32 bytes",
        ),
        (
            format!("[docs]\njwt_secret_file = \"{}\"", short.display()),
            "docs.jwt_secret",
            "at least 32 bytes",
        ),
        (
            "[server]\nadmin_listen = \"0.0.0.0:9090\"".to_owned(),
            "server.admin_token_file",
            "not a loopback address",
        ),
        (
            format!("[server]\nadmin_token_file = \"{}\"", short.display()),
            "server.admin_token_file",
            "at least 32 bytes",
        ),
    ];
    for (text, key, why) in &cases {
        let e = parse(text).unwrap_err();
        assert_eq!(&e.key, key, "{text} → {e}");
        assert!(e.to_string().contains(why), "{text} → {e}");
        assert_eq!(
            e.exit_code(),
            if *why == "cannot read" { 66 } else { 64 },
            "{e}"
        );
    }
    // A secret file that cannot be read here: its own message, hint and exit code.
    let e = parse("[docs]\njwt_secret_file = \"/run/secrets/only-in-the-container\"").unwrap_err();
    assert_eq!(e.key, "docs.jwt_secret_file");
    assert!(e.unreadable);
    assert_eq!(e.exit_code(), 66);
    assert!(
        e.to_string()
            .contains("cannot read /run/secrets/only-in-the-container on this machine"),
        "{e}"
    );
    assert!(e.to_string().contains("inside its container"), "{e}");
    // A non-loopback admin listener with a token is fine.
    let s = parse(&format!(
        "[server]\nadmin_listen = \"0.0.0.0:9090\"\nadmin_token_file = \"{}\"",
        good.display()
    ))
    .unwrap();
    assert!(
        s.server
            .admin_token
            .unwrap()
            .matches(b"0123456789abcdef0123456789abcdef")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn redis_connection_keys_are_checked() {
    let dir = std::env::temp_dir().join(format!("wopi-gw-redis-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let not_pem = dir.join("ca.txt");
    std::fs::write(&not_pem, "not a certificate").unwrap();
    let pw = dir.join("redis-password");
    std::fs::write(&pw, "s3cr3t-pw\n").unwrap();
    let (not_pem, pw) = (not_pem.display(), pw.display());
    let cases = [
        (
            format!("[cluster]\nredis_url = \"rediss://h:6380/\"\nredis_ca_file = \"{not_pem}\""),
            "cluster.redis_ca_file",
            "no PEM certificate",
        ),
        (
            "[cluster]\nredis_url = \"rediss://h:6380/\"\nredis_ca_file = \"/nonexistent-ca.pem\""
                .to_owned(),
            "cluster.redis_ca_file",
            "cannot read",
        ),
        (
            "[cluster]\nredis_sentinels = [\"127.0.0.1:26379\"]".to_owned(),
            "cluster.redis_master_name",
            "is required",
        ),
        (
            "[cluster]\nredis_sentinels = [\"nope\"]\nredis_master_name = \"m\"".to_owned(),
            "cluster.redis_sentinels[0]",
            "host:port",
        ),
        (
            "[cluster]\nredis_url = \"redis://h/\"\nredis_sentinels = [\"h:26379\"]\nredis_master_name = \"m\"".to_owned(),
            "cluster.redis_sentinels",
            "not both",
        ),
        (
            format!("[cluster]\nredis_url = \"redis://gw:inline@h/\"\nredis_password_file = \"{pw}\""),
            "cluster.redis_password_file",
            "also in cluster.redis_url",
        ),
        (
            "[cluster]\nredis_url = \"redis://h/\"\nredis_ca_file = \"/x.pem\"".to_owned(),
            "cluster.redis_ca_file",
            "not rediss://",
        ),
        (
            "[cluster]\nredis_url = \"rediss://h/\"\nredis_client_cert_file = \"/x.pem\"".to_owned(),
            "cluster.redis_client_key_file",
            "both",
        ),
        (
            "[cluster]\nredis_master_name = \"m\"".to_owned(),
            "cluster.redis_master_name",
            "neither",
        ),
    ];
    for (text, key, why) in &cases {
        let e = parse(text).unwrap_err();
        assert_eq!(&e.key, key, "{text} → {e}");
        assert!(e.reason.contains(why), "{text} → {e}");
        assert!(!e.to_string().contains("inline"), "password shown: {e}");
    }
    // A password in a file, the URL without one: accepted, and never in Debug output.
    let s = parse(&format!(
        "[cluster]\nredis_url = \"redis://h/\"\nredis_username = \"gw\"\nredis_password_file = \"{pw}\"\nredis_min_replicas_acked = 1\n[content]\ndir = \"/srv/c\"\n[host_face]\naccess_token_secret_file = \"{pw}\"\n"
    ));
    // (the secret file above is too short for an access-token secret: that error is fine here)
    if let Ok(s) = s {
        let r = s.cluster.redis.unwrap();
        assert_eq!(r.password.as_deref(), Some("s3cr3t-pw"));
        assert!(!format!("{r:?}").contains("s3cr3t"));
    }
    let e = parse(&format!(
        "[cluster]\nredis_url = \"redis://h/\"\nredis_username = \"gw\"\nredis_password_file = \"{pw}\"\nredis_min_replicas_acked = 1\n"
    ))
    .unwrap_err();
    assert_ne!(e.key, "cluster.redis_password_file", "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
