//! hanko-anchor's integration tests, one binary.
#![allow(clippy::unwrap_used, reason = "tests")]

/// Bouncy Castle's ERS code checks our evidence records (and renewals) over real tokens.
mod bc;
/// `check` refuses damaged records (every bit flipped) and arbitrary bytes, no panic.
mod check;
/// The SoftHSM-backed TSAs and PKI the record tests share.
mod common;
/// The tree against a reference implementation written another way, and every leaf's
/// reduced hash tree walked the way RFC 4998 verifies one.
mod tree;
