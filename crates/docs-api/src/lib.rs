//! The ONLYOFFICE Docs API, without I/O: editor config, callbacks, JWT.
//!
//! Knows nothing about WOPI; the gateway translates between the two.
//!
//! # Layout
//! - [`jwt`]: HS256 tokens as Document Server makes and checks them (config tokens, the
//!   `{"payload": …}` header tokens of requests, body tokens of callbacks).
//! - [`callback`]: the callback body and its status values.
//! - [`config`]: helpers over the editor config (document key rules, document types).
#![warn(missing_docs)]

pub mod callback;
pub mod config;
pub mod jwt;

pub use callback::{ActionKind, Callback, CallbackAction, CallbackStatus, ForceSaveType};
pub use jwt::{JwtError, Secret};
