//! hanko-server integration tests: the real `hanko` binary against a real SoftHSM token
//! in a temporary data directory, checked with raw HTTP and the openssl CLI.
#![allow(clippy::unwrap_used, reason = "tests: a panic is a failed assertion")]

/// Running the binary, raw HTTP GET, output capture.
mod common;
/// docs/configuration.md against the config structs, the serve flags and the environment.
mod config_doc;
/// `hanko dev-init`: creates, then reuses; file modes; chains verify with openssl.
mod dev_init;
/// Issue #11: HANKO_PIN leaves the server's environment and never reaches a child.
mod pin_env;
/// `hanko serve`: --dev readiness, metrics, graceful shutdown; production refusals.
mod serve;
/// Slow clients (issue #11): trickled bodies get 408 at the deadline while ordinary
/// clients are served; slow heads and idle keep-alive are closed; connections per source.
mod slow_clients;
/// Time-stamp requests and their checks (shared with the tsa_* binaries).
#[path = "../tsa_support/mod.rs"]
mod tsa_support;
