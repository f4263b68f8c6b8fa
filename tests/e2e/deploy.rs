//! The deploy/ artifacts: every TOML validates, every YAML parses, and the dashboard and
//! alert rules only use documented metrics.

use crate::support::{TempDir, run_cli, run_cli_env};
use std::path::{Path, PathBuf};
use std::process::Command;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, ext, out);
        } else if p.extension().is_some_and(|x| x == ext) {
            out.push(p);
        }
    }
}

/// Validates a TOML with check-config, after pointing the secret files it names at stand-ins
/// (the real ones are mounted at deploy time).
fn check_toml(text: &str, scratch: &TempDir, name: &str) {
    let secrets = scratch.path().join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    for f in [
        "docs_jwt_secret",
        "docs-jwt-secret",
        "integrator-cloud-secret",
        "access-token-secret",
        "admin_token",
        "admin-token",
    ] {
        std::fs::write(secrets.join(f), "x".repeat(64)).unwrap();
    }
    let key = secrets.join("proof-key.pem");
    if !key.exists() {
        let (code, _, _) = run_cli(&["proof-key", "generate", "--out", key.to_str().unwrap()]);
        assert_eq!(code, 0);
    }
    let s = secrets.display().to_string();
    let text = text
        .replace("/run/secrets", &s)
        .replace("/etc/wopi-gateway/secrets", &s)
        .replace(
            "/var/lib/wopi-gateway",
            &scratch.path().join("data").display().to_string(),
        )
        .replace(
            "/srv/wopi-gateway-content",
            &scratch.path().join("content").display().to_string(),
        );
    let path = scratch.path().join(name);
    std::fs::write(&path, text).unwrap();
    // The compose file hands the Docs JWT secret over in the environment.
    let (code, stdout, stderr) = run_cli_env(
        &["check-config", "--config", path.to_str().unwrap()],
        &[("DOCS_JWT_SECRET", &"y".repeat(64))],
    );
    assert_eq!((code, stdout.trim()), (0, "ok"), "{name}: {stdout}{stderr}");
}

#[test]
fn every_toml_under_deploy_passes_check_config() {
    let scratch = TempDir::new("deploy-toml");
    let mut tomls = Vec::new();
    files(&deploy(), "toml", &mut tomls);
    assert!(tomls.len() >= 2, "{tomls:?}");
    for t in &tomls {
        check_toml(
            &std::fs::read_to_string(t).unwrap(),
            &scratch,
            &t.file_name().unwrap().to_string_lossy(),
        );
    }
    // The Kubernetes ConfigMap carries a TOML too.
    let cm = std::fs::read_to_string(deploy().join("k8s/configmap.yaml")).unwrap();
    let docs = yaml_rust2::YamlLoader::load_from_str(&cm).unwrap();
    let toml = docs[0]["data"]["wopi-gateway.toml"]
        .as_str()
        .expect("configmap has wopi-gateway.toml");
    check_toml(toml, &scratch, "configmap.toml");
}

#[test]
fn every_yaml_under_deploy_parses() {
    let mut yamls = Vec::new();
    files(&deploy(), "yaml", &mut yamls);
    assert!(yamls.len() >= 7, "{yamls:?}");
    for y in &yamls {
        let docs = yaml_rust2::YamlLoader::load_from_str(&std::fs::read_to_string(y).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", y.display()));
        assert!(
            !docs.is_empty() && !docs[0].is_null(),
            "{} is empty",
            y.display()
        );
    }
    let d = yaml_rust2::YamlLoader::load_from_str(
        &std::fs::read_to_string(deploy().join("k8s/deployment.yaml")).unwrap(),
    )
    .unwrap();
    let c = &d[0]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        c["livenessProbe"]["httpGet"]["path"].as_str(),
        Some("/healthz")
    );
    assert_eq!(
        c["readinessProbe"]["httpGet"]["path"].as_str(),
        Some("/readyz")
    );
}

fn metric_names(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("wopi_gateway_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let mut name = tail[..end].to_owned();
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(n) = name.strip_suffix(suffix) {
                name = n.to_owned();
            }
        }
        out.push(name);
        rest = &tail[end..];
    }
    out
}

#[test]
fn dashboard_and_alerts_use_documented_metrics() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/metrics.md"))
            .unwrap();
    let dash =
        std::fs::read_to_string(deploy().join("grafana/wopi-gateway-dashboard.json")).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&dash).unwrap();
    assert!(parsed["panels"].as_array().unwrap().len() >= 10);
    let alerts = std::fs::read_to_string(deploy().join("prometheus/alerts.yaml")).unwrap();
    let names: Vec<String> = metric_names(&dash)
        .into_iter()
        .chain(metric_names(&alerts))
        .collect();
    assert!(names.len() > 20);
    for n in names {
        assert!(
            doc.contains(&format!("`{n}`")),
            "{n} is used by a dashboard or alert but not in docs/metrics.md"
        );
    }
}

/// Runs a validator from a package registry; a missing one fails with its install command.
fn tool(program: &str, install: &str) -> Command {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{program} is needed to validate deploy/: {install} (scripts/test installs it when run as root)"
    );
    Command::new(program)
}

/// Runs `cmd`; a failure fails the test with what it printed on stderr.
fn succeeds(mut cmd: Command, what: &str) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn yaml(path: &str) -> Vec<yaml_rust2::Yaml> {
    yaml_rust2::YamlLoader::load_from_str(&std::fs::read_to_string(deploy().join(path)).unwrap())
        .unwrap()
}

fn toml_of(text: &str) -> toml::Value {
    text.parse::<toml::Value>().unwrap()
}

#[test]
fn compose_file_validates_and_both_sides_read_one_docs_secret() {
    let marker = "compose-shared-secret-0123456789abcdef0123456789abcdef";
    let out = tool("docker-compose", "apt-get install docker-compose")
        .args(["-f", "compose.yaml", "config"])
        .current_dir(deploy())
        .env("DOCS_JWT_SECRET", marker)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "docker-compose config: {}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let resolved = yaml_rust2::YamlLoader::load_from_str(&stdout).unwrap();
    let svc = &resolved[0]["services"];
    // ONLYOFFICE's image reads JWT_ENABLED/JWT_SECRET/JWT_HEADER; the gateway the variable
    // its TOML names in docs.jwt_secret_env. Both carry the one value.
    let ds = &svc["documentserver"]["environment"];
    assert_eq!(ds["JWT_ENABLED"].as_str(), Some("true"));
    assert_eq!(ds["JWT_SECRET"].as_str(), Some(marker));
    let toml =
        toml_of(&std::fs::read_to_string(deploy().join("compose/wopi-gateway.toml")).unwrap());
    let var = toml["docs"]["jwt_secret_env"].as_str().unwrap();
    assert_eq!(
        svc["wopi-gateway"]["environment"][var].as_str(),
        Some(marker)
    );
    assert_eq!(
        ds["JWT_HEADER"].as_str(),
        toml["docs"]["jwt_header"].as_str(),
        "both sides use one JWT header"
    );
    // Docs reaches the gateway by service name and port; the gateway reaches Docs by its.
    let internal = toml["server"]["internal_url"].as_str().unwrap();
    let port = toml["server"]["listen"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap();
    assert_eq!(internal, format!("http://wopi-gateway:{port}"));
    assert_eq!(toml["docs"]["url"].as_str(), Some("http://documentserver"));
    let mounts: Vec<&str> = svc["wopi-gateway"]["volumes"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(|v| v["target"].as_str().or(v.as_str()))
        .collect();
    assert!(
        mounts
            .iter()
            .any(|m| m.contains("/etc/wopi-gateway/wopi-gateway.toml")),
        "{mounts:?}"
    );
    assert!(
        mounts.iter().any(|m| m.contains("/var/lib/wopi-gateway")),
        "{mounts:?}"
    );
    // The compose Redis carries the cluster's state; the content store is a named volume.
    let redis_url = toml["cluster"]["redis_url"].as_str().unwrap();
    assert!(redis_url.starts_with("redis://redis:"), "{redis_url}");
    assert!(!svc["redis"].is_badvalue());
    let content = toml["content"]["dir"].as_str().unwrap();
    assert!(
        mounts.iter().any(|m| m.contains(&format!(":{content}"))),
        "{content} not mounted: {mounts:?}"
    );
    let secrets: Vec<&str> = svc["wopi-gateway"]["secrets"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(|v| v["source"].as_str().or(v.as_str()))
        .collect();
    for f in [
        toml["host_face"]["access_token_secret_file"]
            .as_str()
            .unwrap(),
        toml["client_face"]["proof_key_file"].as_str().unwrap(),
    ] {
        let name = f.strip_prefix("/run/secrets/").unwrap();
        assert!(
            secrets.contains(&name),
            "{name} is not a compose secret: {secrets:?}"
        );
    }
}

#[test]
fn systemd_unit_and_its_user_and_directories_verify() {
    let root = TempDir::new("systemd-root");
    let r = root.path();
    for d in [
        "usr/local/bin",
        "etc/systemd/system",
        "usr/lib/systemd",
        "bin",
    ] {
        std::fs::create_dir_all(r.join(d)).unwrap();
    }
    std::fs::copy(crate::support::BIN, r.join("usr/local/bin/wopi-gateway")).unwrap();
    let kill = ["/usr/bin/kill", "/bin/kill"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("kill(1) for ExecReload");
    std::fs::copy(kill, r.join("bin/kill")).unwrap();
    let status = Command::new("cp")
        .args(["-r", "/usr/lib/systemd/system"])
        .arg(r.join("usr/lib/systemd/"))
        .status()
        .unwrap();
    assert!(
        status.success(),
        "systemd's own units (apt-get install systemd)"
    );
    let sd = deploy().join("systemd");
    std::fs::copy(
        sd.join("wopi-gateway.service"),
        r.join("etc/systemd/system/wopi-gateway.service"),
    )
    .unwrap();
    let out = tool("systemd-analyze", "apt-get install systemd")
        .arg("verify")
        .arg(format!("--root={}", r.display()))
        .arg("/etc/systemd/system/wopi-gateway.service")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.trim().is_empty(),
        "systemd-analyze verify: {err}"
    );
    // sysusers creates the unit's user, tmpfiles the settings folder, in the scratch root.
    let mut cmd = tool("systemd-sysusers", "apt-get install systemd");
    cmd.arg(format!("--root={}", r.display()))
        .arg(sd.join("wopi-gateway.sysusers"));
    succeeds(cmd, "systemd-sysusers");
    let passwd = std::fs::read_to_string(r.join("etc/passwd")).unwrap();
    assert!(
        passwd.lines().any(|l| l.starts_with("wopi-gateway:")),
        "{passwd}"
    );
    let unit = std::fs::read_to_string(sd.join("wopi-gateway.service")).unwrap();
    assert!(unit.contains("User=wopi-gateway") && unit.contains("StateDirectory=wopi-gateway"));
    let mut cmd = tool("systemd-tmpfiles", "apt-get install systemd");
    cmd.arg(format!("--root={}", r.display()))
        .arg("--create")
        .arg(sd.join("wopi-gateway.tmpfiles"));
    succeeds(cmd, "systemd-tmpfiles");
    assert!(r.join("etc/wopi-gateway").is_dir());
    // The shipped TOML writes only where StateDirectory= allows.
    let toml = toml_of(&std::fs::read_to_string(sd.join("wopi-gateway.toml")).unwrap());
    assert_eq!(
        toml["server"]["data_dir"].as_str(),
        Some("/var/lib/wopi-gateway")
    );
    assert!(unit.contains("--config /etc/wopi-gateway/wopi-gateway.toml"));
}

#[test]
fn kubernetes_manifests_validate_and_match_the_configmap() {
    let dir = deploy().join("k8s");
    let mut manifests = Vec::new();
    files(&dir, "yaml", &mut manifests);
    for m in &manifests {
        let out = tool("kubernetes-validate", "pip install kubernetes-validate")
            .args(["--strict", "--quiet"])
            .arg(m)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // A CRD (the ServiceMonitor) has no schema in the bundle: a warning, not a failure.
        assert!(
            out.status.success() && !text.contains("ERROR"),
            "{}: {text}",
            m.display()
        );
    }
    let cm = yaml("k8s/configmap.yaml");
    let toml = toml_of(cm[0]["data"]["wopi-gateway.toml"].as_str().unwrap());
    let dep = yaml("k8s/deployment.yaml");
    let pod = &dep[0]["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    let port_of = |name: &str| {
        c["ports"]
            .as_vec()
            .unwrap()
            .iter()
            .find(|p| p["name"].as_str() == Some(name))
            .and_then(|p| p["containerPort"].as_i64())
            .unwrap_or_else(|| panic!("container port {name}"))
    };
    let listen_port = |key: &str| -> i64 {
        toml["server"][key]
            .as_str()
            .unwrap()
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(port_of("http"), listen_port("listen"));
    assert_eq!(port_of("admin"), listen_port("admin_listen"));
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(
            c[probe]["httpGet"]["port"].as_str(),
            Some("admin"),
            "{probe}"
        );
    }
    // The --config path is mounted, data_dir is a volume, every *_file is under a mount.
    let args: Vec<&str> = c["args"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    let config = args[args.iter().position(|a| *a == "--config").unwrap() + 1];
    let mounts: Vec<&str> = c["volumeMounts"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(|m| m["mountPath"].as_str())
        .collect();
    assert!(mounts.contains(&config), "{config} not mounted: {mounts:?}");
    let data_dir = toml["server"]["data_dir"].as_str().unwrap();
    assert!(
        mounts.contains(&data_dir),
        "{data_dir} not mounted: {mounts:?}"
    );
    let mut files_named = Vec::new();
    fn walk<'a>(v: &'a toml::Value, out: &mut Vec<&'a str>) {
        match v {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    if k.ends_with("_file") {
                        if let Some(s) = v.as_str() {
                            out.push(s);
                        }
                    }
                    walk(v, out);
                }
            }
            toml::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    walk(&toml, &mut files_named);
    assert!(files_named.len() >= 3, "{files_named:?}");
    // Several instances with shared state: no affinity, Redis and a shared content volume.
    assert!(dep[0]["spec"]["replicas"].as_i64().unwrap() >= 3);
    let svc = yaml("k8s/service.yaml");
    assert!(
        svc[0]["spec"]["sessionAffinity"].is_badvalue(),
        "no session affinity: every pod serves every request"
    );
    let pdb = yaml("k8s/pdb.yaml");
    assert!(pdb[0]["spec"]["minAvailable"].as_i64().unwrap() >= 1);
    let redis_url = toml["cluster"]["redis_url"].as_str().unwrap();
    let redis = yaml("k8s/redis.yaml");
    let redis_svc = redis[0]["metadata"]["name"].as_str().unwrap();
    assert!(
        redis_url.starts_with(&format!("redis://{redis_svc}:")),
        "{redis_url} names the Redis Service {redis_svc}"
    );
    let args = redis[1]["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_vec()
        .unwrap();
    assert!(
        args.iter().any(|a| a.as_str() == Some("--appendonly")),
        "the shared state persists"
    );
    let content_dir = toml["content"]["dir"].as_str().unwrap();
    let mount = c["volumeMounts"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"].as_str() == Some(content_dir))
        .unwrap_or_else(|| panic!("content.dir {content_dir} is not a mount"));
    let volume = pod["volumes"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap();
    let claim = volume["persistentVolumeClaim"]["claimName"]
        .as_str()
        .unwrap();
    let pvc = yaml("k8s/content-pvc.yaml");
    assert_eq!(pvc[0]["metadata"]["name"].as_str(), Some(claim));
    assert_eq!(
        pvc[0]["spec"]["accessModes"][0].as_str(),
        Some("ReadWriteMany"),
        "one volume for every pod"
    );
    let secret = yaml("k8s/secret.yaml");
    for f in files_named {
        let mount = mounts
            .iter()
            .find(|m| f.starts_with(&format!("{m}/")))
            .unwrap_or_else(|| panic!("{f} is under no volume mount: {mounts:?}"));
        if mount.ends_with("/secrets") {
            let key = &f[mount.len() + 1..];
            assert!(
                !secret[0]["stringData"][key].is_badvalue(),
                "{f}: the Secret has no key {key}"
            );
        }
    }
}

#[test]
fn dockerfile_copies_paths_that_exist_and_builds_where_an_engine_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(deploy().join("Dockerfile")).unwrap();
    let mut copied = 0;
    for line in text.lines().map(str::trim) {
        let Some(rest) = line.strip_prefix("COPY ") else {
            continue;
        };
        if rest.starts_with("--from=") {
            continue;
        }
        let parts: Vec<&str> = rest.split_whitespace().collect();
        for src in &parts[..parts.len() - 1] {
            assert!(
                root.join(src).exists(),
                "the Dockerfile copies {src}, which does not exist"
            );
            copied += 1;
        }
    }
    assert!(copied >= 2, "{text}");
    // The image's own settings start without any secret.
    let image_toml = deploy().join("docker/wopi-gateway.toml");
    assert!(
        text.contains("COPY deploy/docker/wopi-gateway.toml /etc/wopi-gateway/wopi-gateway.toml")
    );
    let scratch = TempDir::new("image-toml");
    let t = std::fs::read_to_string(&image_toml).unwrap().replace(
        "/var/lib/wopi-gateway",
        &scratch.path().join("d").display().to_string(),
    );
    let p = scratch.path().join("image.toml");
    std::fs::write(&p, t).unwrap();
    assert_eq!(
        run_cli(&["check-config", "--config", p.to_str().unwrap()]).0,
        0
    );
    let engine = Command::new("docker").arg("info").output();
    match engine {
        Ok(o) if o.status.success() => {
            let out = Command::new("docker")
                .args([
                    "build",
                    "-q",
                    "-f",
                    "deploy/Dockerfile",
                    "-t",
                    "wopi-gateway:test",
                    ".",
                ])
                .current_dir(root)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "docker build: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        other => {
            let why = match other {
                Ok(o) => String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_owned(),
                Err(e) => e.to_string(),
            };
            println!(
                "NOT RUN: docker build of deploy/Dockerfile: no container engine here ({why})"
            );
            eprintln!(
                "NOT RUN: docker build of deploy/Dockerfile: no container engine here ({why})"
            );
        }
    }
}

#[test]
fn nginx_sample_passes_nginx_t() {
    let scratch = TempDir::new("nginx");
    let d = scratch.path();
    let cert = rcgen::generate_simple_self_signed(vec!["office.example.com".to_owned()]).unwrap();
    std::fs::write(d.join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(d.join("key.pem"), cert.key_pair.serialize_pem()).unwrap();
    let site = std::fs::read_to_string(deploy().join("nginx/wopi-gateway.conf"))
        .unwrap()
        .replace(
            "/etc/letsencrypt/live/office.example.com/fullchain.pem",
            &d.join("cert.pem").display().to_string(),
        )
        .replace(
            "/etc/letsencrypt/live/office.example.com/privkey.pem",
            &d.join("key.pem").display().to_string(),
        );
    std::fs::write(d.join("site.conf"), site).unwrap();
    std::fs::write(
        d.join("nginx.conf"),
        format!(
            "pid {0}/nginx.pid;\nerror_log {0}/error.log;\nevents {{}}\nhttp {{\n  include {0}/site.conf;\n}}\n",
            d.display()
        ),
    )
    .unwrap();
    let mut cmd = tool("nginx", "apt-get install nginx");
    cmd.arg("-t").arg("-c").arg(d.join("nginx.conf"));
    succeeds(cmd, "nginx -t");
}
