//! hanko-pki integration tests: one binary, every check against a real third party
//! (the `openssl` CLI) rather than against our own code.
#![allow(clippy::unwrap_used, reason = "tests: a panic is a failed assertion")]

/// Shared helpers: running openssl, a tiny executor, temp files.
mod common;
/// `SoftwareSigner`: every key type signs, OpenSSL verifies; OpenSSL keys load.
mod soft;
