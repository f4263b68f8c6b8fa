//! Contract: `ChunkedDecoder::feed` never panics on any bytes, and the decoder does not care
//! how its input is cut: the body fed whole, or in two pieces split where the input's first
//! byte says, hands on the same data and ends in the same outcome (bytes consumed and done,
//! or the same error). A body it accepts re-frames (`reframe`) to canonical chunks that
//! decode again to the same data and end exactly at their last byte; re-framing those
//! changes nothing.
#![no_main]
use h1::chunked::{ChunkError, ChunkedDecoder, Progress, reframe};
use libfuzzer_sys::fuzz_target;

/// Decodes `pieces` one after another as one body: the data, and the outcome
/// (`consumed` counted over all the pieces).
fn decode(pieces: &[&[u8]]) -> (Vec<u8>, Result<Progress, ChunkError>) {
    let mut dec = ChunkedDecoder::default();
    let mut data = Vec::new();
    let mut consumed = 0;
    for piece in pieces {
        match dec.feed(piece, |d| data.extend_from_slice(d)) {
            Err(e) => return (data, Err(e)),
            Ok(p) => {
                assert!(p.consumed <= piece.len());
                consumed += p.consumed;
                assert_eq!(p.done, dec.is_done());
                if p.done {
                    return (
                        data,
                        Ok(Progress {
                            consumed,
                            done: true,
                        }),
                    );
                }
                assert_eq!(p.consumed, piece.len(), "stopped early without ending");
            }
        }
    }
    assert_eq!(dec.data, data.len() as u64);
    (
        data,
        Ok(Progress {
            consumed,
            done: false,
        }),
    )
}

fuzz_target!(|input: &[u8]| {
    let Some((&selector, body)) = input.split_first() else {
        return;
    };
    let split = body.len() * usize::from(selector) / 255;
    let whole = decode(&[body]);
    let pieces = decode(&[&body[..split], &body[split..]]);
    assert_eq!(whole, pieces, "split at {split}");

    let (
        data,
        Ok(Progress {
            consumed,
            done: true,
        }),
    ) = whole
    else {
        return;
    };
    // Re-framed in two runs (as a body arriving in two reads is), then decoded again.
    let mut dec = ChunkedDecoder::default();
    let mut framed = Vec::new();
    let p = reframe(&mut dec, &body[..split], &mut framed).expect("accepted body reframes");
    if !p.done {
        let q = reframe(&mut dec, &body[split..], &mut framed).expect("accepted body reframes");
        assert_eq!(split + q.consumed, consumed);
    } else {
        assert_eq!(p.consumed, consumed);
    }
    assert!(dec.is_done());
    let (again, outcome) = decode(&[&framed]);
    assert_eq!(again, data);
    assert_eq!(
        outcome,
        Ok(Progress {
            consumed: framed.len(),
            done: true
        })
    );
    // Canonical chunks are a fixed point.
    let mut twice = Vec::new();
    let p = reframe(&mut ChunkedDecoder::default(), &framed, &mut twice).expect("reframes");
    assert_eq!(
        p,
        Progress {
            consumed: framed.len(),
            done: true
        }
    );
    assert_eq!(twice, framed);
});
