//! Contract: lock-id validation never panics, accepts exactly the non-empty visible-ASCII ids
//! of at most 1024 bytes, and the lock rules always report the current lock on a conflict.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let (a, b) = data.split_at(data.len() / 2);
    let (a, b) = (String::from_utf8_lossy(a), String::from_utf8_lossy(b));
    let (a, b) = (a.as_ref(), b.as_ref());
    let valid = |x: &str| !x.is_empty() && x.len() <= 1024 && x.bytes().all(|c| (0x20..0x7f).contains(&c));
    assert_eq!(wopi::LockId::parse(a).is_ok(), valid(a));
    for r in [wopi::lock::lock(Some(a), b), wopi::lock::refresh(Some(a), b), wopi::lock::unlock(Some(a), b)] {
        if let Err(c) = r {
            assert_eq!(c.current, a);
        }
    }
    let _ = wopi::Operation::parse(a, wopi::operation::Endpoint::File("x"), Some(b), b.is_empty());
    let _ = wopi::operation::parse_endpoint(&s);
});
