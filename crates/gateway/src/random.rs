//! Random ids from the system's CSPRNG. A failure fails the request: an id of zeros would
//! make sessions, users and correlation ids collide.

/// The system's random number generator failed.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the system random number generator failed")]
pub(crate) struct RandomError;

/// `N` random bytes.
pub(crate) fn bytes<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut b = [0u8; N];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .map_err(|_| RandomError)?;
    Ok(b)
}

/// `N` random bytes as lower-case hex (`2 × N` characters).
pub(crate) fn hex<const N: usize>() -> Result<String, RandomError> {
    use std::fmt::Write as _;
    let b = bytes::<N>()?;
    let mut s = String::with_capacity(2 * N);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_differ_and_have_their_length() {
        let (a, b) = (super::hex::<8>().unwrap(), super::hex::<8>().unwrap());
        assert_eq!(a.len(), 16);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
