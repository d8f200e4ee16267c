//! hanko-pki integration tests: one binary, every check against a real third party
//! (the `openssl` CLI) rather than against our own code.
#![allow(clippy::unwrap_used, reason = "tests: a panic is a failed assertion")]

/// `cert` and `x509`: chains we issue pass `openssl verify`; certificates OpenSSL makes
/// load byte-exactly; every TSA/seal check refuses the defect it names.
mod cert;
/// Shared helpers: running openssl, a tiny executor, temp files.
mod common;
/// `SoftwareSigner`: every key type signs, OpenSSL verifies; OpenSSL keys load.
mod soft;
