//! A real browser for the tests of pages: headless Chromium, which the suite requires (no
//! test is skipped without it).

use serde_json::Value;

/// The Chromium program; panics, saying how to install it, when there is none.
pub fn chromium() -> &'static str {
    ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| std::process::Command::new(c).arg("--version").output().is_ok())
        .unwrap_or_else(|| {
            panic!(
                "chromium is required for the browser tests: apt-get install chromium (scripts/test installs it when run as root)"
            )
        })
}

/// Headless Chromium loads `url`, runs its scripts for up to 5 s of virtual time, and
/// dumps the DOM it ends on; returns (DOM, stderr).
pub async fn chromium_dom(chromium: &str, url: &str) -> (String, String) {
    chromium_dom_args(chromium, url, &[]).await
}

/// [`chromium_dom`] for pages that frame other sites (`127.0.0.1` and `localhost` are two):
/// every frame in one renderer process. Virtual time runs in the page's process only: a
/// frame of another site, in a process of its own, would run in real time, and its scripts
/// might not have run when the budget is spent.
pub async fn chromium_dom_cross_site(chromium: &str, url: &str) -> (String, String) {
    chromium_dom_args(chromium, url, &["--disable-site-isolation-trials"]).await
}

async fn chromium_dom_args(chromium: &str, url: &str, extra: &[&str]) -> (String, String) {
    let profile = super::TempDir::new("chromium");
    let (chromium, url) = (chromium.to_owned(), url.to_owned());
    let extra: Vec<String> = extra.iter().map(|a| (*a).to_owned()).collect();
    let out = tokio::task::spawn_blocking({
        let profile = profile.path().to_owned();
        move || {
            std::process::Command::new(chromium)
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--virtual-time-budget=5000",
                    &format!("--user-data-dir={}", profile.display()),
                ])
                .args(&extra)
                .args(["--dump-dom", &url])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// An attribute of the dumped DOM, as JSON.
pub fn dom_json(dom: &str, attr: &str) -> Option<Value> {
    let raw = dom.split(&format!("{attr}=\"")).nth(1)?.split('"').next()?;
    let text = raw
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    serde_json::from_str(&text).ok()
}

/// `s` escaped for a quoted HTML attribute.
pub fn html_attr(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
