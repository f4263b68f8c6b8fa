//! Contract: proof verification never panics whatever the headers, token or URL; malformed
//! Base64, timestamps or signatures are rejected with `Err`, never accepted.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use wopi::proof::{ProofInput, ProofKeys, PublicKey};

fn keys() -> &'static ProofKeys {
    static KEYS: OnceLock<ProofKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let v = include_str!("../../tests/fixtures/wopi-proof-key-test-vectors.json");
        let find = |k: &str| v.split(&format!("\"{k}\": \"")).nth(1).and_then(|r| r.split('"').next()).map(str::to_owned);
        ProofKeys {
            current: PublicKey::from_discovery(find("value").as_deref(), find("modulus").as_deref(), find("exponent").as_deref()).ok().flatten(),
            old: PublicKey::from_discovery(find("oldvalue").as_deref(), find("oldmodulus").as_deref(), find("oldexponent").as_deref()).ok().flatten(),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(5, '\n');
    let token = parts.next().unwrap_or("");
    let url = parts.next().unwrap_or("");
    let ts = parts.next();
    let proof = parts.next();
    let proof_old = parts.next();
    let input = ProofInput { access_token: token, url, timestamp: ts, proof, proof_old };
    assert!(keys().verify(&input, None).is_err(), "random input must never verify");
    let _ = PublicKey::from_csp_blob(data);
    let _ = wopi::utf7::decode(&text);
});
