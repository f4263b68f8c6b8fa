#![allow(clippy::unwrap_used)]
//! Microsoft's proof-key test vectors (MIT, from
//! microsoft/Office-Online-Test-Tools-and-Documentation `samples/python/proof_keys/tests.py`).

use serde_json::Value;
use wopi::proof::verify::{ProofError, Window};
use wopi::proof::{ProofInput, ProofKeys, PublicKey, SigningKey, Verified, signed_bytes};

const VECTORS: &str = include_str!("fixtures/wopi-proof-key-test-vectors.json");

fn keys(v: &Value) -> ProofKeys {
    let d = &v["discovery"];
    let s = |k: &str| d[k].as_str();
    ProofKeys {
        current: PublicKey::from_discovery(s("value"), s("modulus"), s("exponent")).unwrap(),
        old: PublicKey::from_discovery(s("oldvalue"), s("oldmodulus"), s("oldexponent")).unwrap(),
    }
}

#[test]
fn all_eight_vectors() {
    let v: Value = serde_json::from_str(VECTORS).unwrap();
    let keys = keys(&v);
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 8);
    for case in cases {
        let ts = case["timestamp"].as_i64().unwrap().to_string();
        let input = ProofInput {
            access_token: case["access_token"].as_str().unwrap(),
            url: case["url"].as_str().unwrap(),
            timestamp: Some(&ts),
            proof: case["proof"].as_str(),
            proof_old: case["proof_old"].as_str(),
        };
        let result = keys.verify(&input, None);
        let name = case["name"].as_str().unwrap();
        assert_eq!(
            result.is_ok(),
            case["expected"].as_bool().unwrap(),
            "{name}: {result:?}"
        );
        let expected = match name {
            n if n.starts_with("test_proof_current") => Ok(Verified::ProofWithCurrent),
            n if n.starts_with("test_old_proof_current") => Ok(Verified::ProofOldWithCurrent),
            n if n.starts_with("test_proof_old") => Ok(Verified::ProofWithOld),
            _ => Err(ProofError::Signature),
        };
        assert_eq!(result, expected, "{name}");
    }
}

#[test]
fn worked_intermediate_of_case_one() {
    let v: Value = serde_json::from_str(VECTORS).unwrap();
    let c = &v["cases"][0];
    let bytes = signed_bytes(
        c["access_token"].as_str().unwrap(),
        c["url"].as_str().unwrap(),
        c["timestamp"].as_i64().unwrap(),
    );
    assert_eq!(bytes.len(), 507);
    assert_eq!(&bytes[..4], &[0, 0, 0, 0xc8]);
    assert_eq!(&bytes[204..208], &[0, 0, 1, 0x1f]);
    assert_eq!(
        &bytes[bytes.len() - 12..],
        &[0, 0, 0, 8, 0x08, 0xd2, 0x4d, 0xab, 0xc8, 0x78, 0xe4, 0x1c]
    );
    let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        hex,
        "5ba5ba7a205e58d1de521c6f290b484787901e4104409cc9fb28d5803fc48079"
    );
}

#[test]
fn both_encodings_agree_and_round_trip() {
    let v: Value = serde_json::from_str(VECTORS).unwrap();
    let d = &v["discovery"];
    let blob = PublicKey::from_csp_blob_b64(d["value"].as_str().unwrap()).unwrap();
    let comp = PublicKey::from_modulus_exponent(
        d["modulus"].as_str().unwrap(),
        d["exponent"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(blob, comp);
    assert_eq!(blob.csp_blob_b64(), d["value"].as_str().unwrap());
    assert_eq!(blob.modulus_b64(), d["modulus"].as_str().unwrap());
    assert_eq!(blob.exponent_b64(), "AQAB");
}

fn now_window(now: i64) -> Option<Window> {
    Some(Window {
        now_ticks: now,
        future_skew_ticks: 300 * wopi::ticks::TICKS_PER_SECOND,
    })
}

#[test]
fn sign_then_verify_current_and_old_and_every_flip_fails() {
    let current = SigningKey::generate().unwrap();
    let old = SigningKey::generate().unwrap();
    let keys = ProofKeys {
        current: Some(current.public_key().clone()),
        old: Some(old.public_key().clone()),
    };
    let now = wopi::ticks::from_unix_ms(1_800_000_000_000);
    let token = "tok-123";
    let url = "https://gw.example/wopi/files/abc?access_token=tok-123&access_token_ttl=0";
    let h = current.sign(Some(&old), token, url, now).unwrap();
    let input = ProofInput {
        access_token: token,
        url,
        timestamp: Some(&h.timestamp),
        proof: Some(&h.proof),
        proof_old: Some(&h.proof_old),
    };
    assert_eq!(
        keys.verify(&input, now_window(now)),
        Ok(Verified::ProofWithCurrent)
    );

    // Signed only by the old key in X-WOPI-Proof: accepted via the old key.
    let h_old = old.sign(None, token, url, now).unwrap();
    let i2 = ProofInput {
        proof: Some(&h_old.proof),
        proof_old: None,
        ..input
    };
    assert_eq!(
        keys.verify(&i2, now_window(now)),
        Ok(Verified::ProofWithOld)
    );
    // ProofOld signed with the old key alone is refused (CurrentInvalid.OldValidSignedWithOldKey).
    let i3 = ProofInput {
        proof: Some("SU5WQUxJRA=="),
        proof_old: Some(&h_old.proof),
        ..input
    };
    assert_eq!(
        keys.verify(&i3, now_window(now)),
        Err(ProofError::Signature)
    );

    // Flip: token, url, timestamp, signature.
    assert!(
        keys.verify(
            &ProofInput {
                access_token: "tok-124",
                ..input
            },
            now_window(now)
        )
        .is_err()
    );
    assert!(
        keys.verify(
            &ProofInput {
                url: "https://gw.example/wopi/files/abd?access_token=tok-123&access_token_ttl=0",
                ..input
            },
            now_window(now)
        )
        .is_err()
    );
    let ts2 = (now + 1).to_string();
    assert!(
        keys.verify(
            &ProofInput {
                timestamp: Some(&ts2),
                ..input
            },
            now_window(now)
        )
        .is_err()
    );
    let mut sig = base64_decode(&h.proof);
    for i in [0, sig.len() / 2, sig.len() - 1] {
        sig[i] ^= 1;
        let s = base64_encode(&sig);
        let only = ProofInput {
            proof: Some(&s),
            proof_old: None,
            ..input
        };
        assert_eq!(
            keys.verify(&only, now_window(now)),
            Err(ProofError::Signature)
        );
        sig[i] ^= 1;
    }
}

#[test]
fn freshness_and_malformed_headers() {
    let key = SigningKey::generate().unwrap();
    let keys = ProofKeys {
        current: Some(key.public_key().clone()),
        old: None,
    };
    let now = wopi::ticks::from_unix_ms(1_800_000_000_000);
    let url = "https://h/wopi/files/1?access_token=t";
    let sign_at = |ticks: i64| key.sign(None, "t", url, ticks).unwrap();
    let check = |h: &wopi::proof::ProofHeaders| {
        keys.verify(
            &ProofInput {
                access_token: "t",
                url,
                timestamp: Some(&h.timestamp),
                proof: Some(&h.proof),
                proof_old: None,
            },
            now_window(now),
        )
    };
    let minute = 60 * wopi::ticks::TICKS_PER_SECOND;
    assert!(check(&sign_at(now - 19 * minute)).is_ok());
    assert_eq!(check(&sign_at(now - 21 * minute)), Err(ProofError::Stale));
    assert!(check(&sign_at(now + 4 * minute)).is_ok());
    assert_eq!(check(&sign_at(now + 6 * minute)), Err(ProofError::Future));
    let base = ProofInput {
        access_token: "t",
        url,
        timestamp: Some("1"),
        proof: Some("x"),
        proof_old: None,
    };
    assert_eq!(
        keys.verify(
            &ProofInput {
                proof: None,
                ..base
            },
            None
        ),
        Err(ProofError::Missing("X-WOPI-Proof"))
    );
    assert_eq!(
        keys.verify(
            &ProofInput {
                timestamp: None,
                ..base
            },
            None
        ),
        Err(ProofError::Missing("X-WOPI-TimeStamp"))
    );
    assert_eq!(
        keys.verify(
            &ProofInput {
                timestamp: Some("12a"),
                ..base
            },
            None
        ),
        Err(ProofError::BadTimestamp)
    );
    assert_eq!(
        keys.verify(
            &ProofInput {
                proof: Some("!!!"),
                ..base
            },
            None
        ),
        Err(ProofError::BadBase64)
    );
    assert_eq!(
        keys.verify(
            &ProofInput {
                proof: Some("SU5WQUxJRA=="),
                ..base
            },
            None
        ),
        Err(ProofError::Signature)
    );
    assert_eq!(
        ProofKeys::default().verify(&base, None),
        Err(ProofError::NoKeys)
    );
}

#[test]
fn pem_round_trip_pkcs8_and_pkcs1() {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    let key = SigningKey::generate().unwrap();
    let again = SigningKey::from_pem(key.to_pem()).unwrap();
    assert_eq!(again.public_key(), key.public_key());
    let rsa_key = rsa::RsaPrivateKey::from_pkcs8_pem(key.to_pem()).unwrap();
    let pkcs1 = rsa_key.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).unwrap();
    assert_eq!(
        SigningKey::from_pem(&pkcs1).unwrap().public_key(),
        key.public_key()
    );
    assert!(
        SigningKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
            .is_err()
    );
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}
