//! hanko-tsa integration tests, one binary with a module per concern (CONTRIBUTING.md).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

/// openssl-made PKI, a Tsa over SoftwareSigner, `openssl ts -query` requests.
mod common;
/// Tokens verified by openssl and rfc3161-client, and taken apart structurally.
mod interop;
/// What a token does not carry: ESSCertID v1, anything about the requester.
mod profile;
/// Property tests: arbitrary and mutated input never panics; imprints are not examined.
mod props;
/// Every bad input, its failure code, no token.
mod rejections;
