//! The gateway's host page (`/open`) in a real browser (#23): it relays the WOPI client's
//! messages the Docs API has events for to the integrator's page that frames it —
//! `App_LoadingStatus` as `onAppReady` / `onDocumentReady` (answering the client with
//! `Host_PostmessageReady`), `UI_Close` as `onRequestClose` — only from the office frame at
//! the action URL's origin, and only to the integrator's origins; not framed, `UI_Close`
//! takes it to the config's `goback.url`.
//!
//! One test server plays every page, under two names that are two origins to a browser:
//! `127.0.0.1:P` (the integrator's pages, in `allowed_origins`) and `localhost:P` (the WOPI
//! client, whose discovery's action URLs point there).

use super::*;
use crate::support::browser::{chromium, chromium_dom_cross_site, dom_json};
use crate::support::fakes::{Handler, SECRET, serve};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use std::sync::{Arc, Mutex};

/// The fake WOPI client's page (the action URL the host page posts its form to). It tells
/// the window on top what it receives from its host page (`{"client": …}`). It says
/// `App_LoadingStatus` (Frame_Ready); once answered, it has the other frames of the top
/// window (the intruders) try their messages on the host page and, when they are done,
/// sends something unparsable, `App_LoadingStatus` (Document_Loaded, as an object) and
/// `UI_Close`; then it goes to `renegade`, another origin in the same frame.
const CLIENT_PAGE: &str = r#"<!DOCTYPE html><html><body><p>WOPI CLIENT</p><script>
var host = window.parent, top_ = window.top, framed = top_ !== host;
var intruders = framed ? top_.frames.length - 1 : 0, done = 0, readies = 0;
function report(what) { if (framed) top_.postMessage(JSON.stringify({client: what}), '*'); }
function post(id, values) { host.postMessage(JSON.stringify({MessageId: id, SendTime: Date.now(), Values: values}), '*'); }
function finish() {
  host.postMessage('not json {', '*');
  host.postMessage({MessageId: 'App_LoadingStatus', SendTime: Date.now(), Values: {Status: 'Document_Loaded', DocumentLoadedTime: 1}}, '*');
  post('UI_Close', {url: location.origin + '/evil'});
  setTimeout(function () { location.href = RENEGADE; }, 200);
}
window.addEventListener('message', function (e) {
  if (e.source === host) {
    var m; try { m = JSON.parse(e.data); } catch (x) { report('unparsable'); return; }
    report(m.MessageId + ' from ' + e.origin);
    if (m.MessageId === 'Host_PostmessageReady' && ++readies === 1) {
      if (intruders === 0) finish();
      for (var i = 1; i <= intruders; i++) top_.frames[i].postMessage('attack', '*');
    }
  } else if (e.data === 'done' && ++done === intruders) {
    finish();
  }
});
post('App_LoadingStatus', {Status: 'Frame_Ready'});
</script></body></html>"#;

/// Another page in the office frame, at another origin than the action URL's: the host
/// page must not take its `UI_Close`.
const RENEGADE_PAGE: &str = r#"<!DOCTYPE html><html><body><p>RENEGADE</p><script>
window.parent.postMessage(JSON.stringify({MessageId: 'UI_Close', SendTime: Date.now(), Values: {}}), '*');
window.parent.postMessage(JSON.stringify({MessageId: 'App_LoadingStatus', SendTime: Date.now(), Values: {Status: 'Document_Loaded'}}), '*');
if (window.top !== window.parent) window.top.postMessage(JSON.stringify({client: 'renegade posted'}), '*');
</script></body></html>"#;

/// A frame of the integrator's page that is not the office frame: on `attack` it posts
/// the client's messages to the host page (`top.frames[0]`), then answers `done`.
const INTRUDER_PAGE: &str = r#"<!DOCTYPE html><html><body><script>
window.addEventListener('message', function (e) {
  if (e.data !== 'attack') return;
  var open = window.top.frames[0];
  open.postMessage(JSON.stringify({MessageId: 'UI_Close', SendTime: Date.now(), Values: {}}), '*');
  open.postMessage({MessageId: 'App_LoadingStatus', SendTime: Date.now(), Values: {Status: 'Document_Loaded'}}, '*');
  e.source.postMessage('done', '*');
});
</script></body></html>"#;

/// The integrator's page: frames the host page (`OPEN`) and two intruders, one at the
/// client's origin and one at its own; records every message it receives in `data-got`.
const INTEGRATOR_PAGE: &str = r#"<!DOCTYPE html><html><body><script>
var got = [];
window.addEventListener('message', function (e) {
  got.push({origin: e.origin, data: typeof e.data === 'string' ? e.data : JSON.stringify(e.data)});
  document.body.setAttribute('data-got', JSON.stringify(got));
});
</script>
<iframe id="open" src="OPEN" style="width:800px;height:600px"></iframe>
<iframe id="same" src="CLIENT_ORIGIN/intruder"></iframe>
<iframe id="other" src="PAGES_ORIGIN/intruder"></iframe>
</body></html>"#;

/// The test server: `/hosting/edit` and `/hosting/view` the client, `/hosting/renegade`,
/// `/intruder`, `/integrator`, `/folder` (a config's `goback.url`) and `/evil` (a URL a
/// message names); `/integrator` is filled in once the gateway is known.
struct Pages {
    port: u16,
    integrator: Arc<Mutex<String>>,
}

impl Pages {
    async fn start() -> Pages {
        let integrator = Arc::new(Mutex::new(String::new()));
        let page = integrator.clone();
        let port = Arc::new(Mutex::new(0u16));
        let p = port.clone();
        let handler: Handler = Arc::new(move |req: Request<Bytes>| {
            let (page, p) = (page.clone(), p.clone());
            Box::pin(async move {
                let renegade = format!("'http://127.0.0.1:{}/hosting/renegade'", p.lock().unwrap());
                let html = match req.uri().path() {
                    "/hosting/edit" | "/hosting/view" => CLIENT_PAGE.replace("RENEGADE", &renegade),
                    "/hosting/renegade" => RENEGADE_PAGE.to_owned(),
                    "/intruder" => INTRUDER_PAGE.to_owned(),
                    "/integrator" => page.lock().unwrap().clone(),
                    "/folder" => {
                        "<!DOCTYPE html><html><body><p>FOLDER PAGE</p></body></html>".into()
                    }
                    "/evil" => "<!DOCTYPE html><html><body><p>EVIL PAGE</p></body></html>".into(),
                    _ => {
                        return Response::builder()
                            .status(404)
                            .body(Full::new(Bytes::new()))
                            .unwrap();
                    }
                };
                Response::builder()
                    .header("content-type", "text/html; charset=utf-8")
                    .body(Full::new(Bytes::from(html)))
                    .unwrap()
            })
        });
        let addr = serve(0, handler).await;
        *port.lock().unwrap() = addr.port();
        Pages {
            port: addr.port(),
            integrator,
        }
    }

    /// The integrator's origin.
    fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The WOPI client's origin: the same server, another origin to a browser.
    fn client_origin(&self) -> String {
        format!("http://localhost:{}", self.port)
    }
}

/// A gateway whose integrator `nc` allows the fake integrator's and the pages' origins, and
/// whose WOPI client's actions are the pages' client.
async fn start() -> (Setup, Pages) {
    let pages = Pages::start().await;
    let (int, client) = peers().await;
    *int.discovery.lock().unwrap() =
        Some(client.discovery(&format!("{}/hosting", pages.client_origin())));
    let rest = format!(
        "[host_face]\ndiscovery_urls = [\"{o}/hosting/discovery\"]\n[[host_face.integrator]]\nname = \"nc\"\njwt_secret = \"{SECRET}\"\nallowed_origins = [\"{o}\", \"{p}/nc\"]\n",
        o = int.origin(),
        p = pages.origin()
    );
    let gw = Gateway::start(Config {
        rest,
        ..Default::default()
    });
    int.put_doc("a.docx", b"x");
    (Setup { gw, int, client }, pages)
}

/// `/open` for `a.docx` with `customization`.
fn open_url(s: &Setup, customization: Value) -> String {
    let config = super::customization::customized_config(&s.int, "u1", true, customization);
    s.gw.url(&format!(
        "/open?integrator=nc&action=edit&config={}",
        percent_encoding::utf8_percent_encode(&config, percent_encoding::NON_ALPHANUMERIC)
    ))
}

/// Runs the integrator's page (at `integrator_origin`) framing `open`; what it received:
/// (events relayed from the gateway's origin, the reports of the pages in the office frame
/// as "{report} at {origin}"), and the DOM.
async fn run_integrator(
    s: &Setup,
    pages: &Pages,
    integrator_origin: &str,
    open: &str,
) -> (Vec<String>, Vec<String>, String) {
    *pages.integrator.lock().unwrap() = INTEGRATOR_PAGE
        .replace("CLIENT_ORIGIN", &pages.client_origin())
        .replace("PAGES_ORIGIN", &pages.origin())
        .replace("OPEN", &crate::support::browser::html_attr(open));
    let (dom, stderr) =
        chromium_dom_cross_site(chromium(), &format!("{integrator_origin}/integrator")).await;
    let got = dom_json(&dom, "data-got").unwrap_or_else(|| {
        panic!("the integrator's page got nothing; DOM:\n{dom}\nstderr:\n{stderr}")
    });
    let gw_origin = format!("http://{}", s.gw.public);
    let (mut events, mut reports) = (Vec::new(), Vec::new());
    for m in got.as_array().unwrap() {
        let data: Value = serde_json::from_str(m["data"].as_str().unwrap())
            .unwrap_or_else(|_| panic!("not JSON: {m}"));
        if m["origin"] == gw_origin.as_str() {
            events.push(
                data["event"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{m}"))
                    .to_owned(),
            );
        } else {
            let report = data["client"].as_str().unwrap_or_else(|| panic!("{m}"));
            reports.push(format!("{report} at {}", m["origin"].as_str().unwrap()));
        }
    }
    (events, reports, format!("{dom}\nstderr:\n{stderr}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_browser_relays_the_clients_messages_to_the_integrators_page() {
    let (s, pages) = start().await;
    let open = open_url(&s, json!({"close": {"visible": true}}));
    let (events, reports, dom) = run_integrator(&s, &pages, &pages.origin(), &open).await;
    let gw_origin = format!("http://{}", s.gw.public);
    // The client was answered once, by the host page, although it said App_LoadingStatus
    // twice; the intruders and the renegade did their part.
    assert_eq!(
        reports,
        [
            format!(
                "Host_PostmessageReady from {gw_origin} at {}",
                pages.client_origin()
            ),
            format!("renegade posted at {}", pages.origin()),
        ],
        "{dom}"
    );
    // The Docs API's events, each once, in order: nothing of the unparsable message, the
    // intruders (one at the client's origin, one at the integrator's) or the renegade (the
    // office frame, at another origin).
    assert_eq!(
        events,
        ["onAppReady", "onDocumentReady", "onRequestClose"],
        "{dom}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_outside_the_allowed_origins_gets_no_events() {
    let (s, pages) = start().await;
    let open = open_url(&s, json!({"close": {"visible": true}}));
    // localhost:P is not in allowed_origins (127.0.0.1:P is): the host page never guesses
    // the framing page's origin, nor posts to "*".
    let (events, reports, dom) = run_integrator(&s, &pages, &pages.client_origin(), &open).await;
    assert_eq!(
        reports,
        [
            format!(
                "Host_PostmessageReady from http://{} at {}",
                s.gw.public,
                pages.client_origin()
            ),
            format!("renegade posted at {}", pages.origin()),
        ],
        "the client did run: {dom}"
    );
    assert!(events.is_empty(), "{events:?}\n{dom}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_page_that_is_not_framed_goes_to_the_configs_folder_on_close() {
    let (s, pages) = start().await;
    // goback.requestClose keeps the URL out of the breadcrumbs; it is still where closing
    // goes. The client's UI_Close names another URL (`/evil`): never followed.
    let folder = format!("{}/folder", pages.origin());
    let open = open_url(&s, json!({"goback": {"url": folder, "requestClose": true}}));
    let (dom, stderr) = chromium_dom_cross_site(chromium(), &open).await;
    assert!(
        dom.contains("FOLDER PAGE") && !dom.contains("EVIL PAGE"),
        "DOM:\n{dom}\nstderr:\n{stderr}"
    );
}

/// The page's HTML: the form and frame as ever, the relay's settings escaped, no-store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_page_embeds_the_relay_settings_escaped() {
    let (s, pages) = start().await;
    let folder = format!(
        "{}/folder?a=1&b=</script><script>alert(1)</script>",
        pages.origin()
    );
    let (status, headers, body) = get(&open_url(&s, json!({"goback": {"url": folder}}))).await;
    let page = String::from_utf8(body).unwrap();
    assert_eq!(status, 200, "{page}");
    assert_eq!(hdr(&headers, "cache-control").as_deref(), Some("no-store"));
    assert!(
        page.contains(
            r#"<form id="office_form" name="office_form" target="office_frame" action=""#
        )
    );
    assert!(page.contains(r#"<iframe id="office_frame" name="office_frame""#));
    assert_eq!(page.matches("</script>").count(), 3, "{page}");
    let json_text = page
        .split(r#"<script type="application/json" id="relay_config">"#)
        .nth(1)
        .and_then(|r| r.split("</script>").next())
        .unwrap_or_else(|| panic!("{page}"));
    assert!(
        !json_text.contains('<') && !json_text.contains('&'),
        "{json_text}"
    );
    let relay: Value = serde_json::from_str(json_text).unwrap();
    assert_eq!(
        relay,
        json!({"client": pages.client_origin(), "parents": [s.int.origin(), pages.origin()],
               "close": folder})
    );
}
