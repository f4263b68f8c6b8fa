//! Contract: `h1::parse` never panics on any bytes, and when it accepts a head:
//!
//! - it agrees with `httparse` given the same field limit: httparse parses the same bytes
//!   `Complete` with the same head length, method and field count; where httparse refuses
//!   the bytes, h1 refuses them too (a field over the limit in a head that is not yet
//!   complete may instead wait for the rest: h1 then refuses it one field later, with 431);
//! - a strict prefix of it is still incomplete (`Ok(None)`): a head read in pieces off a
//!   socket is never decided before its empty line;
//! - `write_canonical` round-trips: the canonical head parses again to an equal `Checked`
//!   (absolute-form becomes origin-form, by design), and canonicalising it again changes
//!   nothing;
//! - `write_forward` plus an empty line is a complete head for httparse, without
//!   `Connection`, other hop-by-hop fields, `Host`, `Expect`, or any field the request's
//!   `Connection` names, except the one framing field it writes itself; h1 reads that
//!   forwarded head (given a `Host`) with the same framing, path and query.
#![no_main]
use h1::{Form, Framing, Limits};
use libfuzzer_sys::fuzz_target;

/// Small limits, so that libFuzzer's 4 KiB inputs reach both of them.
const LIMITS: Limits = Limits {
    max_head_bytes: 2048,
    max_headers: 24,
};

/// For heads h1 itself wrote: the canonical head may add a `host` field (absolute-form
/// without one) and be longer (`\r\n` for `\n`, `: ` for `:`); the HTTP server that reads it
/// applies its own limits.
const RELAXED: Limits = Limits {
    max_head_bytes: usize::MAX,
    max_headers: LIMITS.max_headers + 2,
};

/// What httparse makes of a buffer with `slots` field slots.
#[derive(Debug)]
enum Reference {
    Complete {
        len: usize,
        method: String,
        fields: usize,
    },
    Partial,
    Error(httparse::Error),
}

fn reference(buf: &[u8], slots: usize) -> Reference {
    let mut headers = vec![httparse::EMPTY_HEADER; slots];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => Reference::Complete {
            len,
            method: req.method.unwrap_or("").to_owned(),
            fields: req.headers.len(),
        },
        Ok(httparse::Status::Partial) => Reference::Partial,
        Err(e) => Reference::Error(e),
    }
}

/// The elements of a list field value, byte-wise: split at commas, spaces and tabs trimmed,
/// empty ones skipped (RFC 9110 §5.6.1), whatever bytes they hold.
fn list_elements(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|&b| b == b',')
        .map(|e| {
            let start = e
                .iter()
                .position(|&b| b != b' ' && b != b'\t')
                .unwrap_or(e.len());
            let end = e
                .iter()
                .rposition(|&b| b != b' ' && b != b'\t')
                .map_or(start, |i| i + 1);
            &e[start..end]
        })
        .filter(|e| !e.is_empty())
}

fn hash(data: &[u8]) -> usize {
    data.iter().fold(0usize, |h, &b| {
        h.wrapping_mul(31).wrapping_add(usize::from(b))
    })
}

fuzz_target!(|data: &[u8]| {
    let parsed = h1::parse(data, &LIMITS);
    let reference = reference(data, LIMITS.max_headers);
    if let Err(r) = &parsed {
        assert!(
            matches!(r.status, 400 | 405 | 414 | 417 | 431 | 501 | 505) && !r.rule.is_empty(),
            "{r:?}"
        );
    }
    match (&parsed, &reference) {
        (Ok(Some(_)), Reference::Complete { .. }) | (Err(_), _) => {}
        (Ok(None), Reference::Partial | Reference::Error(httparse::Error::TooManyHeaders)) => {}
        (Ok(_), _) => panic!("h1 {parsed:?}, httparse {reference:?}"),
    }
    if matches!(reference, Reference::Partial) {
        if let Err(r) = &parsed {
            assert!(
                matches!(r.status, 414 | 431),
                "incomplete head refused: {r:?}"
            );
        }
    }
    let Ok(Some(head)) = parsed else {
        return;
    };

    // Agreement with httparse.
    let Reference::Complete {
        len,
        method,
        fields,
    } = reference
    else {
        unreachable!()
    };
    assert_eq!(head.len, len);
    assert_eq!(head.method, method);
    assert_eq!(head.fields.len(), fields);
    assert!(head.len <= LIMITS.max_head_bytes && head.fields.len() <= LIMITS.max_headers);

    // A strict prefix is still incomplete.
    let cut = hash(data) % head.len;
    assert_eq!(
        h1::parse(&data[..cut], &LIMITS),
        Ok(None),
        "prefix of {cut} bytes"
    );
    // What follows the head does not change it.
    assert_eq!(
        h1::parse(&data[..head.len], &LIMITS),
        Ok(Some(head.clone()))
    );

    // The canonical head round-trips.
    let mut canonical = Vec::new();
    head.write_canonical(&mut canonical);
    let again = match h1::parse(&canonical, &RELAXED) {
        Ok(Some(h)) => h,
        other => panic!(
            "canonical head {:?}: {other:?}",
            String::from_utf8_lossy(&canonical)
        ),
    };
    assert_eq!(again.len, canonical.len());
    assert_eq!((again.method, again.version), (head.method, head.version));
    let mut want = head.checked.clone();
    if want.form == Form::Absolute {
        want.form = Form::Origin;
    }
    assert_eq!(again.checked, want);
    let mut twice = Vec::new();
    again.write_canonical(&mut twice);
    assert_eq!(twice, canonical);

    // The forwarded head.
    let mut forward = Vec::new();
    head.write_forward("", &head.checked.path, |_| false, &mut forward);
    let fields_end = forward.len();
    forward.extend_from_slice(b"\r\n");
    let mut slots = vec![httparse::EMPTY_HEADER; head.fields.len() + 2];
    let mut req = httparse::Request::new(&mut slots);
    match req.parse(&forward) {
        Ok(httparse::Status::Complete(n)) => assert_eq!(n, forward.len()),
        other => panic!(
            "forwarded head {:?}: {other:?}",
            String::from_utf8_lossy(&forward)
        ),
    }
    let named: Vec<&[u8]> = head
        .fields
        .iter()
        .filter(|f| f.name.eq_ignore_ascii_case("connection"))
        .flat_map(|f| list_elements(f.value))
        .collect();
    let mut framing_fields = Vec::new();
    for f in req.headers.iter() {
        let n = f.name;
        if n.eq_ignore_ascii_case("content-length") || n.eq_ignore_ascii_case("transfer-encoding") {
            framing_fields.push((n, f.value));
            continue;
        }
        assert!(
            !h1::field::HOP_BY_HOP
                .iter()
                .any(|h| h.eq_ignore_ascii_case(n))
                && !n.eq_ignore_ascii_case("host")
                && !n.eq_ignore_ascii_case("expect"),
            "{n} forwarded: {:?}",
            String::from_utf8_lossy(&forward)
        );
        assert!(
            !named.iter().any(|c| c.eq_ignore_ascii_case(n.as_bytes())),
            "{n}, named in Connection, forwarded: {:?} from {:?}",
            String::from_utf8_lossy(&forward),
            String::from_utf8_lossy(&data[..head.len])
        );
    }
    let length = match head.checked.framing {
        Framing::Length(n) => Some(n.to_string()),
        _ => None,
    };
    let want_framing: Vec<(&str, &[u8])> = match head.checked.framing {
        Framing::None => vec![],
        Framing::Length(_) => vec![("content-length", length.as_deref().unwrap_or("").as_bytes())],
        Framing::Chunked => vec![("transfer-encoding", b"chunked")],
    };
    assert_eq!(framing_fields, want_framing);
    // h1 reads the forwarded head with the same framing and path.
    forward.truncate(fields_end);
    forward.extend_from_slice(b"host: upstream\r\n\r\n");
    let upstream = match h1::parse(&forward, &RELAXED) {
        Ok(Some(h)) => h,
        other => panic!(
            "forwarded head {:?}: {other:?}",
            String::from_utf8_lossy(&forward)
        ),
    };
    assert_eq!(upstream.checked.framing, head.checked.framing);
    assert_eq!(upstream.checked.path, head.checked.path);
    assert_eq!(upstream.checked.query, head.checked.query);
});
