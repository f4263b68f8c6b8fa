//! The chunked transfer coding (RFC 9112 §7.1), decoded strictly and incrementally: a chunk
//! size of hex digits (at most 15), optional extensions, CRLF; exactly that many data bytes and
//! CRLF; a last chunk `0`, then trailer fields up to an empty line. Bare LF, a missing CRLF
//! after data, a size that does not parse or overflows, controls in an extension or a trailer
//! section over [`MAX_TRAILERS`] are errors.
//!
//! The same decoder follows an answer (how many bytes belong to it) and re-frames a request
//! body for the upstream ([`reframe`]): data only, in canonical chunks, extensions and trailers
//! dropped.

/// Bytes of chunk extensions on one line, and of the trailer section, accepted at most.
pub const MAX_TRAILERS: usize = 16 * 1024;

/// Why a chunked body is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkError(pub &'static str);

impl std::fmt::Display for ChunkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed chunked body: {}", self.0)
    }
}

impl std::error::Error for ChunkError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    /// Hex digits of a chunk size (`digits` read so far).
    #[default]
    Size,
    /// After the size: extensions up to CR.
    Ext,
    /// CR seen after the size line; LF must follow.
    SizeLf,
    /// Data bytes still to come.
    Data,
    /// CR after the data.
    DataCr,
    /// LF after the data.
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    /// Inside a trailer line.
    Trailer,
    /// CR of a trailer line seen.
    TrailerLf,
    /// CR of the final empty line seen.
    EndLf,
    Done,
}

/// An incremental, strict decoder of one chunked body.
#[derive(Debug, Clone, Default)]
pub struct ChunkedDecoder {
    state: State,
    size: u64,
    digits: u8,
    /// Extension or trailer bytes so far.
    extra: usize,
    /// Data bytes decoded in all.
    pub data: u64,
}

/// What [`ChunkedDecoder::feed`] did with its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes of the input that belong to the body.
    pub consumed: usize,
    /// The body ended (its last byte is at `consumed - 1`).
    pub done: bool,
}

impl ChunkedDecoder {
    /// Whether the body has ended.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes `input`, handing every run of data bytes to `data`. Stops at the end of the
    /// body: what follows it in `input` is not consumed.
    pub fn feed(
        &mut self,
        input: &[u8],
        mut data: impl FnMut(&[u8]),
    ) -> Result<Progress, ChunkError> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                State::Done => break,
                State::Size => match b {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        if self.digits >= 15 {
                            return Err(ChunkError("chunk size too large"));
                        }
                        let v = (b as char).to_digit(16).unwrap_or(0) as u64;
                        self.size = self.size * 16 + v;
                        self.digits += 1;
                        i += 1;
                    }
                    _ if self.digits == 0 => return Err(ChunkError("chunk size is not hex")),
                    b';' | b' ' | b'\t' => {
                        self.state = State::Ext;
                        self.extra = 0;
                    }
                    b'\r' => {
                        self.state = State::SizeLf;
                        i += 1;
                    }
                    _ => return Err(ChunkError("chunk size is not hex")),
                },
                State::Ext => match b {
                    b'\r' => {
                        self.state = State::SizeLf;
                        i += 1;
                    }
                    b'\t' | b' '..=b'~' => {
                        self.extra += 1;
                        if self.extra > MAX_TRAILERS {
                            return Err(ChunkError("chunk extension too long"));
                        }
                        i += 1;
                    }
                    _ => return Err(ChunkError("control character in a chunk extension")),
                },
                State::SizeLf => {
                    if b != b'\n' {
                        return Err(ChunkError("chunk size line without CRLF"));
                    }
                    i += 1;
                    self.digits = 0;
                    if self.size == 0 {
                        self.state = State::TrailerStart;
                        self.extra = 0;
                    } else {
                        self.state = State::Data;
                    }
                }
                State::Data => {
                    let n = (input.len() - i).min(usize::try_from(self.size).unwrap_or(usize::MAX));
                    data(&input[i..i + n]);
                    self.data += n as u64;
                    self.size -= n as u64;
                    i += n;
                    if self.size == 0 {
                        self.state = State::DataCr;
                    }
                }
                State::DataCr => {
                    if b != b'\r' {
                        return Err(ChunkError("chunk data without CRLF"));
                    }
                    self.state = State::DataLf;
                    i += 1;
                }
                State::DataLf => {
                    if b != b'\n' {
                        return Err(ChunkError("chunk data without CRLF"));
                    }
                    self.state = State::Size;
                    i += 1;
                }
                State::TrailerStart => {
                    if b == b'\r' {
                        self.state = State::EndLf;
                    } else if b == b'\t' || b == b' ' {
                        return Err(ChunkError("folded trailer line"));
                    } else if b.is_ascii_control() {
                        return Err(ChunkError("control character in a trailer"));
                    } else {
                        self.state = State::Trailer;
                        self.count_trailer()?;
                    }
                    i += 1;
                }
                State::Trailer => {
                    match b {
                        b'\r' => self.state = State::TrailerLf,
                        b'\t' | b' '..=b'~' | 0x80..=0xff => self.count_trailer()?,
                        _ => return Err(ChunkError("control character in a trailer")),
                    }
                    i += 1;
                }
                State::TrailerLf => {
                    if b != b'\n' {
                        return Err(ChunkError("trailer line without CRLF"));
                    }
                    self.state = State::TrailerStart;
                    i += 1;
                }
                State::EndLf => {
                    if b != b'\n' {
                        return Err(ChunkError("chunked body end without CRLF"));
                    }
                    self.state = State::Done;
                    i += 1;
                }
            }
        }
        Ok(Progress {
            consumed: i,
            done: self.state == State::Done,
        })
    }

    fn count_trailer(&mut self) -> Result<(), ChunkError> {
        self.extra += 1;
        if self.extra > MAX_TRAILERS {
            return Err(ChunkError("trailer section too long"));
        }
        Ok(())
    }
}

/// Decodes `input` and appends its data to `out` in canonical chunks (`{size:x}\r\n` data
/// `\r\n`, one per run of input; `0\r\n\r\n` at the end), dropping extensions and trailers.
pub fn reframe(
    dec: &mut ChunkedDecoder,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Result<Progress, ChunkError> {
    let p = dec.feed(input, |d| {
        if !d.is_empty() {
            use std::io::Write as _;
            let _ = write!(out, "{:x}\r\n", d.len());
            out.extend_from_slice(d);
            out.extend_from_slice(b"\r\n");
        }
    })?;
    if p.done {
        out.extend_from_slice(b"0\r\n\r\n");
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(body: &[u8]) -> Result<(Vec<u8>, Progress), ChunkError> {
        let mut dec = ChunkedDecoder::default();
        let mut out = Vec::new();
        let p = dec.feed(body, |d| out.extend_from_slice(d))?;
        Ok((out, p))
    }

    #[test]
    fn valid_bodies_end_where_they_end() {
        let (d, p) = decode(b"5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1").unwrap();
        assert_eq!(d, b"hello");
        assert_eq!(
            p,
            Progress {
                consumed: 15,
                done: true
            }
        );
        let (d, p) = decode(b"3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n").unwrap();
        assert_eq!(d, b"abc0123456789");
        assert!(p.done);
        let (_, p) = decode(b"5\r\nhel").unwrap();
        assert_eq!(
            p,
            Progress {
                consumed: 6,
                done: false
            }
        );
    }

    #[test]
    fn byte_by_byte_is_the_same() {
        let body = b"3;x\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nT: v\r\n\r\nNEXT";
        let mut dec = ChunkedDecoder::default();
        let mut out = Vec::new();
        let mut at = 0;
        while !dec.is_done() {
            let p = dec
                .feed(&body[at..at + 1], |d| out.extend_from_slice(d))
                .unwrap();
            at += p.consumed;
        }
        assert_eq!(out, b"abc0123456789abcdef");
        assert_eq!(&body[at..], b"NEXT");
    }

    #[test]
    fn malformed_bodies_are_errors() {
        for bad in [
            &b"x\r\n"[..],
            b"0x5\r\nhello\r\n0\r\n\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhelloX\r\n0\r\n\r\n",
            b"5\r\nhello\n0\r\n\r\n",
            b"-5\r\nhello\r\n",
            b"ffffffffffffffff\r\n",
            b"\r\n",
            b"5 \x01\r\n",
            b"0\r\n\r\r",
            b"0\r\nX: 1\n\r\n",
            b"0\r\n folded\r\n\r\n",
            b"0\r\n\n",
        ] {
            assert!(decode(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn reframing_drops_extensions_and_trailers() {
        let mut dec = ChunkedDecoder::default();
        let mut out = Vec::new();
        reframe(&mut dec, b"3;a=b\r\nabc\r\n0\r\nX: y\r\n\r\n", &mut out).unwrap();
        assert_eq!(out, b"3\r\nabc\r\n0\r\n\r\n");
    }
}
