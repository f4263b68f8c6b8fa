//! `proof-key generate` and `proof-key verify`.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use wopi::proof::verify::Window;
use wopi::proof::{ProofInput, SigningKey};

pub(crate) fn generate(out: &Path) -> ExitCode {
    let key = match SigningKey::generate() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(out).and_then(|mut f| {
        f.write_all(key.to_pem().as_bytes())
            .and_then(|()| f.sync_all())
    });
    if let Err(e) = written {
        eprintln!("error: cannot write {}: {e}", out.display());
        return ExitCode::from(64);
    }
    let p = key.public_key();
    println!("wrote {} ({} bits)", out.display(), p.bits());
    println!("value={}", p.csp_blob_b64());
    println!("modulus={}", p.modulus_b64());
    println!("exponent={}", p.exponent_b64());
    ExitCode::SUCCESS
}

fn read_discovery(source: &str) -> Result<Vec<u8>, String> {
    if source.starts_with("http://") || source.starts_with("https://") {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let metrics = gateway::Metrics::register();
            let client = gateway::HttpClient::new(
                std::time::Duration::from_secs(10),
                std::time::Duration::from_secs(30),
                metrics,
            );
            let req = http::Request::get(source)
                .body(axum_body())
                .map_err(|e| e.to_string())?;
            client
                .send_read("discovery", req, wopi::discovery::MAX_BYTES)
                .await
                .map(|(_, b)| b.to_vec())
                .map_err(|e| e.to_string())
        })
    } else {
        std::fs::read(source).map_err(|e| format!("{source}: {e}"))
    }
}

fn axum_body() -> gateway::OutBody {
    gateway::OutBody::empty()
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn verify(
    discovery: &str,
    url: &str,
    access_token: &str,
    timestamp: &str,
    proof: &str,
    proof_old: Option<&str>,
    ignore_time: bool,
) -> ExitCode {
    let xml = match read_discovery(discovery) {
        Ok(x) => x,
        Err(e) => {
            println!("invalid: cannot read discovery: {e}");
            return ExitCode::FAILURE;
        }
    };
    let keys = match wopi::discovery::parse(&xml)
        .map_err(|e| e.to_string())
        .and_then(|d| d.proof_keys().map_err(|e| e.to_string()))
    {
        Ok(k) => k,
        Err(e) => {
            println!("invalid: discovery: {e}");
            return ExitCode::FAILURE;
        }
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let window = (!ignore_time).then(|| Window {
        now_ticks: wopi::ticks::from_unix_ms(now_ms),
        future_skew_ticks: 300 * wopi::ticks::TICKS_PER_SECOND,
    });
    let input = ProofInput {
        access_token,
        url,
        timestamp: Some(timestamp),
        proof: Some(proof),
        proof_old,
    };
    match keys.verify(&input, window) {
        Ok(v) => {
            println!("valid: {}", v.as_str());
            if v.suggests_refresh() {
                println!("note: the client has rotated its keys; re-fetch its discovery");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("invalid: {} ({e})", e.reason());
            ExitCode::FAILURE
        }
    }
}
