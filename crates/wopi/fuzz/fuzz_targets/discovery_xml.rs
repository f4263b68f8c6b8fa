//! Contract: `wopi::discovery::parse` never panics on any input; it returns `Err` for
//! malformed, oversized or hostile documents, and a document that parses renders to XML that
//! parses back to the same value.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = wopi::discovery::parse(data) {
        let _ = doc.proof_keys();
        let again = wopi::discovery::parse(wopi::discovery::render(&doc).as_bytes()).expect("rendered discovery parses");
        assert_eq!(doc, again);
        for zone in &doc.net_zones {
            for app in &zone.apps {
                for a in &app.actions {
                    let _ = wopi::discovery::resolve_urlsrc(&a.urlsrc, |p| (p == "WOPI_SOURCE").then(|| "x".to_owned()));
                }
            }
        }
    }
});
