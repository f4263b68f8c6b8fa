//! Host face, black-box: a fake WOPI client signs every request, a fake Docs-API integrator
//! serves the document and records the callbacks. The shared setup is here; the tests are
//! grouped by topic in the submodules.

use crate::support::fakes::{Integrator, WopiClient, hdr, json, with_token};
use crate::support::http::{get, send};
use crate::support::{Config, Gateway};
use serde_json::{Value, json};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

struct Setup {
    gw: Gateway,
    int: Integrator,
    client: WopiClient,
}

/// A Docs-API integrator and a WOPI client whose discovery the integrator serves.
async fn peers() -> (Integrator, WopiClient) {
    let int = Integrator::start().await;
    let client = WopiClient::new();
    *int.discovery.lock().unwrap() = Some(client.discovery("http://office.test/hosting"));
    (int, client)
}

/// Settings trusting the client's discovery and registering the integrator as `nc`;
/// `before` goes first (e.g. a `[locks]` table).
fn host_face_toml(
    int: &Integrator,
    before: &str,
    host_face_extra: &str,
    integrator_extra: &str,
) -> String {
    format!(
        "{before}\n[host_face]\ndiscovery_urls = [\"{}/hosting/discovery\"]\ndelivery_max_backoff_seconds = 1\n{host_face_extra}\n{}",
        int.origin(),
        int.toml("nc", integrator_extra)
    )
}

async fn setup(host_face_extra: &str, integrator_extra: &str, server_extra: &str) -> Setup {
    let (int, client) = peers().await;
    let rest = host_face_toml(&int, "", host_face_extra, integrator_extra);
    let gw = Gateway::start(Config {
        server: server_extra.into(),
        rest,
        ..Default::default()
    });
    Setup { gw, int, client }
}

/// Opens a session; returns (file_id, access_token, response JSON).
async fn open(
    s: &Setup,
    doc: &str,
    key: &str,
    user: Option<(&str, &str)>,
    edit: bool,
) -> (String, String, Value) {
    open_at(&s.gw.url(""), &s.int, doc, key, user, edit).await
}

/// [`open`] on the gateway (or balancer) at `base`.
async fn open_at(
    base: &str,
    int: &crate::support::fakes::Integrator,
    doc: &str,
    key: &str,
    user: Option<(&str, &str)>,
    edit: bool,
) -> (String, String, Value) {
    open_config_at(base, &int.config(doc, key, user, edit)).await
}

/// Opens a session on the gateway (or balancer) at `base` with a signed editor config.
async fn open_config_at(base: &str, token: &str) -> (String, String, Value) {
    let (status, _, body) = send(
        "POST",
        &format!("{base}/api/v1/sessions?integrator=nc"),
        &[("content-type", "application/json")],
        json!({"token": token}).to_string(),
    )
    .await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let v = json(&body);
    (
        v["file_id"].as_str().unwrap().to_owned(),
        v["access_token"].as_str().unwrap().to_owned(),
        v,
    )
}

/// The access token the host page at `url` posts to the WOPI client.
async fn page_token(url: &str) -> String {
    let (status, _, body) = get(url).await;
    let page = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(status, 200, "{page}");
    let at = page
        .find(r#"name="access_token" value=""#)
        .expect("an access_token field");
    let rest = &page[at + r#"name="access_token" value=""#.len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

impl Setup {
    /// One editing session on `file` (`/wopi/files/{id}`): Lock "L", PutFile `body`, Unlock.
    async fn edit_session(&self, file: &str, token: &str, body: &'static str) {
        let lock = [("x-wopi-override", "LOCK"), ("x-wopi-lock", "L")];
        let put = [("x-wopi-override", "PUT"), ("x-wopi-lock", "L")];
        let unlock = [("x-wopi-override", "UNLOCK"), ("x-wopi-lock", "L")];
        assert_eq!(self.wopi("POST", file, token, &lock, "").await.0, 200);
        assert_eq!(
            self.wopi("POST", &format!("{file}/contents"), token, &put, body)
                .await
                .0,
            200
        );
        assert_eq!(self.wopi("POST", file, token, &unlock, "").await.0, 200);
    }

    /// A lock operation (`LOCK`, `REFRESH_LOCK`, `UNLOCK`, …) with `lock`; its status.
    async fn lock_op(&self, file: &str, token: &str, over: &str, lock: &str) -> u16 {
        self.wopi(
            "POST",
            file,
            token,
            &[("x-wopi-override", over), ("x-wopi-lock", lock)],
            "",
        )
        .await
        .0
    }

    async fn wopi(
        &self,
        method: &str,
        path: &str,
        token: &str,
        headers: &[(&str, &str)],
        body: impl Into<bytes::Bytes>,
    ) -> crate::support::http::Resp {
        self.client
            .send(
                &format!("http://{}", self.gw.public),
                method,
                &with_token(path, token),
                token,
                headers,
                body,
            )
            .await
    }
}

mod actions;
mod cluster;
mod command;
mod customization;
mod deliveries;
mod hook;
mod host_page;
mod locks;
mod permissions;
mod redis_ha;
mod security;
mod sessions;
mod urls;
mod validator;
