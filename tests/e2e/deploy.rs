//! The deploy/ artifacts: every TOML validates, every YAML parses, and the dashboard and
//! alert rules only use documented metrics.

use crate::support::{TempDir, run_cli};
use std::path::{Path, PathBuf};

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
        );
    let path = scratch.path().join(name);
    std::fs::write(&path, text).unwrap();
    let (code, stdout, stderr) = run_cli(&["check-config", "--config", path.to_str().unwrap()]);
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
