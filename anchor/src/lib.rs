//! Merkle batch anchoring and RFC 4998 evidence records for Hanko.
//!
//! Not yet implemented: this crate holds its place in the workspace layout described in
//! docs/architecture.md (section 2) and is filled by the anchoring issue.
#![forbid(unsafe_code)]
