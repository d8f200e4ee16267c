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
