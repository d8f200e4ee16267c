//! hanko-anchor's integration tests, one binary.
#![allow(clippy::unwrap_used, reason = "tests")]

/// The tree against a reference implementation written another way, and every leaf's
/// reduced hash tree walked the way RFC 4998 verifies one.
mod tree;
