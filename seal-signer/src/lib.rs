//! Organisational e-seals (CAdES, PAdES) for Hanko.
//!
//! Not yet implemented: this crate is a placeholder in the workspace layout of
//! shared/DESIGN.md and is filled by a later issue.
#![forbid(unsafe_code)]
