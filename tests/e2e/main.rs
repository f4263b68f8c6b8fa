//! Black-box tests: the real binary on 127.0.0.1, spoken to over HTTP, with small fake peers.
#![allow(
    unreachable_pub,
    missing_debug_implementations,
    clippy::unwrap_used,
    clippy::disallowed_methods
)]

mod support;

mod client_face;
mod deploy;
mod foundation;
mod framing;
mod host_face;
mod limits;
mod operations;
mod proxy;
