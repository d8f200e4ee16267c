//! hanko-server integration tests: the real `hanko` binary against a real SoftHSM token
//! in a temporary data directory, checked with raw HTTP and the openssl CLI.
#![allow(clippy::unwrap_used, reason = "tests: a panic is a failed assertion")]

/// Running the binary, raw HTTP GET, output capture.
mod common;
/// `hanko dev-init`: creates, then reuses; file modes; chains verify with openssl.
mod dev_init;
/// `hanko serve`: --dev readiness, metrics, graceful shutdown; production refusals.
mod serve;
