//! Stamps the git commit into `wopi_gateway_build_info{commit}` when built from a checkout
//! (`WOPI_GATEWAY_COMMIT` in the environment wins, e.g. in an image built without `.git`).

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=WOPI_GATEWAY_COMMIT");
    if let Ok(c) = std::env::var("WOPI_GATEWAY_COMMIT") {
        println!("cargo:rustc-env=WOPI_GATEWAY_COMMIT={c}");
        return;
    }
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(&manifest)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        let dir = Path::new(&manifest).join(dir);
        // In a worktree the branch refs live in the common directory, not the worktree's.
        let common = git(&["rev-parse", "--git-common-dir"])
            .map_or_else(|| dir.clone(), |c| Path::new(&manifest).join(c));
        // A new commit or checkout changes HEAD or the ref it points at (a missing path
        // would make cargo rerun this on every build, so only existing ones are named).
        let mut watch = vec![
            dir.join("HEAD"),
            dir.join("packed-refs"),
            common.join("packed-refs"),
        ];
        if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watch.push(dir.join(&r));
            watch.push(common.join(r));
        }
        for p in watch.iter().filter(|p| p.exists()) {
            println!("cargo:rerun-if-changed={}", p.display());
        }
    }
    if let Some(c) = git(&["rev-parse", "--short=12", "HEAD"]).filter(|c| !c.is_empty()) {
        println!("cargo:rustc-env=WOPI_GATEWAY_COMMIT={c}");
    }
}
