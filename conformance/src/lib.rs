//! The auditors' tool: checks a TSA, tokens and seals against the requirements listed in
//! docs/requirements.md, on a verification path of its own.
//!
//! Not yet implemented: this crate holds its place in the workspace layout described in
//! docs/architecture.md (section 2) and is filled by the conformance-tool issue.
#![forbid(unsafe_code)]
