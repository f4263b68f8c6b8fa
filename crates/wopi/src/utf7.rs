//! UTF-7 (RFC 2152), the encoding of the WOPI name headers (`X-WOPI-SuggestedTarget`,
//! `X-WOPI-RelativeTarget`, `X-WOPI-RequestedName`, `X-WOPI-ValidRelativeTarget`).
//!
//! The WOPI Validator uses .NET's encoder, which shifts every "optional direct" character:
//! `madeup_name` arrives as `madeup+AF8-name`. Decoding must therefore accept base64 runs
//! anywhere, `+-` as a literal `+`, and a run ended by any non-base64 character.

use std::fmt;

/// Why a UTF-7 string could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Utf7Error {
    /// A byte outside 7-bit ASCII.
    NotAscii,
    /// A base64 run left non-zero bits over, or decoded to an unpaired surrogate.
    BadShiftSequence,
}

impl fmt::Display for Utf7Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Utf7Error::NotAscii => f.write_str("UTF-7 text contains a non-ASCII byte"),
            Utf7Error::BadShiftSequence => f.write_str("malformed UTF-7 shift sequence"),
        }
    }
}

impl std::error::Error for Utf7Error {}

fn b64_value(c: u8) -> Option<u32> {
    match c {
        b'A'..=b'Z' => Some(u32::from(c - b'A')),
        b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Decodes UTF-7 text.
pub fn decode(input: &str) -> Result<String, Utf7Error> {
    let bytes = input.as_bytes();
    if !input.is_ascii() {
        return Err(Utf7Error::NotAscii);
    }
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c != b'+' {
            out.push(char::from(c));
            i += 1;
            continue;
        }
        i += 1;
        if bytes.get(i) == Some(&b'-') {
            out.push('+');
            i += 1;
            continue;
        }
        // A base64 run of UTF-16 code units.
        let mut units: Vec<u16> = Vec::new();
        let mut acc: u32 = 0;
        let mut bits: u32 = 0;
        while let Some(v) = bytes.get(i).copied().and_then(b64_value) {
            acc = (acc << 6) | v;
            bits += 6;
            if bits >= 16 {
                bits -= 16;
                units.push(((acc >> bits) & 0xFFFF) as u16);
            }
            acc &= (1 << bits) - 1;
            i += 1;
        }
        // Leftover bits must be zero padding (fewer than 6 of them).
        if bits >= 6 || acc != 0 {
            return Err(Utf7Error::BadShiftSequence);
        }
        // A '-' right after the run is absorbed.
        if bytes.get(i) == Some(&b'-') {
            i += 1;
        }
        let text = String::from_utf16(&units).map_err(|_| Utf7Error::BadShiftSequence)?;
        out.push_str(&text);
    }
    Ok(out)
}

fn is_direct(c: char) -> bool {
    c.is_ascii_alphanumeric() || "'(),-./:? ".contains(c)
}

/// Encodes text as UTF-7, shifting everything outside RFC 2152's set D (and space).
pub fn encode(input: &str) -> String {
    let mut out = String::with_capacity(input.len() + 8);
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if pending.is_empty() {
            return;
        }
        out.push('+');
        let mut acc: u32 = 0;
        let mut bits = 0;
        for unit in pending.drain(..) {
            acc = (acc << 16) | u32::from(unit);
            bits += 16;
            while bits >= 6 {
                bits -= 6;
                out.push(char::from(B64[((acc >> bits) & 0x3F) as usize]));
            }
            acc &= (1 << bits) - 1;
        }
        if bits > 0 {
            out.push(char::from(B64[((acc << (6 - bits)) & 0x3F) as usize]));
        }
        out.push('-');
    };
    for c in input.chars() {
        if c == '+' && pending.is_empty() {
            out.push_str("+-");
        } else if is_direct(c) {
            flush(&mut pending, &mut out);
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut pending, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn validator_samples() {
        assert_eq!(
            decode("madeup+AF8-name.wopitestx").unwrap(),
            "madeup_name.wopitestx"
        );
        assert_eq!(decode("a+-b").unwrap(), "a+b");
        assert_eq!(decode("+AH4-").unwrap(), "~");
        assert_eq!(decode("Hi Mom -+Jjo--!").unwrap(), "Hi Mom -\u{263A}-!");
        assert_eq!(decode("+ZeVnLIqe-").unwrap(), "\u{65E5}\u{672C}\u{8A9E}");
        assert_eq!(decode("plain.docx").unwrap(), "plain.docx");
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(decode("caf\u{e9}"), Err(Utf7Error::NotAscii));
        assert_eq!(decode("+A-"), Err(Utf7Error::BadShiftSequence));
        // An unpaired high surrogate.
        assert_eq!(decode("+2D0-"), Err(Utf7Error::BadShiftSequence));
    }

    proptest! {
        #[test]
        fn round_trips(s in "\\PC{0,40}") {
            prop_assert_eq!(decode(&encode(&s)).unwrap(), s);
        }

        #[test]
        fn decode_never_panics(s in "[ -~]{0,60}") {
            let _ = decode(&s);
        }
    }
}
