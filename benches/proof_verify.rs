//! Guards the WOPI proof check on every host-face request: one full check (headers parsed,
//! Base64 decoded, signed bytes built, timestamp window, RSA verify with the current key)
//! against a bare RSA verify with the same parsed key in the same run. Goal: ≤ 1.3×.
//! Also measures the alternatives the verifier was chosen against, in the same run: `ring`,
//! which parses the key for every signature (the verifier before, and the bare server of
//! benches/load.sh S2b), and the `rsa` crate.

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use rsa::signature::Verifier as _;
use rsa::traits::PublicKeyParts as _;
use wopi::proof::verify::Window;
use wopi::proof::{ProofInput, ProofKeys, SigningKey, signed_bytes};

fn bench(c: &mut Criterion) {
    let current = SigningKey::generate().expect("keygen");
    let old = SigningKey::generate().expect("keygen");
    let keys = ProofKeys {
        current: Some(current.public_key().clone()),
        old: Some(old.public_key().clone()),
    };
    let token = "eyJhbGciOiJIUzI1NiJ9.eyJmaWQiOiJhYmMiLCJ1aWQiOiJ1c2VyLTEiLCJleHAiOjQwMDAwMDAwMDB9.c2lnbmF0dXJlLXNpZ25hdHVyZQ";
    let url = format!(
        "https://gateway.example.com/wopi/files/Zm9vYmFyYmF6cXV4?access_token={token}&access_token_ttl=0"
    );
    let now = wopi::ticks::from_unix_ms(1_800_000_000_000);
    let h = current.sign(Some(&old), token, &url, now).expect("sign");
    let window = Some(Window {
        now_ticks: now,
        future_skew_ticks: 300 * wopi::ticks::TICKS_PER_SECOND,
    });
    let input = ProofInput {
        access_token: token,
        url: &url,
        timestamp: Some(&h.timestamp),
        proof: Some(&h.proof),
        proof_old: Some(&h.proof_old),
    };
    assert!(keys.verify(&input, window).is_ok());

    let message = signed_bytes(token, &url, now);
    let sig = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(&h.proof)
            .expect("b64")
    };
    let pk = current.public_key().clone();

    let mut g = c.benchmark_group("proof");
    g.bench_function("parsed_key_bare_verify", |b| {
        b.iter(|| assert!(pk.verify(black_box(&message), black_box(&sig))))
    });
    g.bench_function("ring_bare_verify_key_parsed_per_call", |b| {
        b.iter(|| {
            let key = ring::signature::RsaPublicKeyComponents {
                n: pk.modulus(),
                e: pk.exponent(),
            };
            assert!(
                key.verify(
                    &ring::signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
                    black_box(&message),
                    black_box(&sig),
                )
                .is_ok()
            )
        })
    });
    g.bench_function("full_check_current_key", |b| {
        b.iter(|| assert!(keys.verify(black_box(&input), window).is_ok()))
    });
    let rsa_pk = rsa::RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(pk.modulus()),
        rsa::BigUint::from_bytes_be(pk.exponent()),
    )
    .expect("rsa key");
    assert_eq!(rsa_pk.size(), 256);
    let vk = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(rsa_pk);
    let rsa_sig = rsa::pkcs1v15::Signature::try_from(sig.as_slice()).expect("sig");
    g.bench_function("rsa_crate_bare_verify", |b| {
        b.iter(|| assert!(vk.verify(black_box(&message), black_box(&rsa_sig)).is_ok()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
