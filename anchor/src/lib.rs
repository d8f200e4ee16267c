//! Merkle batch anchoring for Hanko: the hash tree of a batch of issued objects, and the
//! RFC 4998 evidence records that prove one object was in a time-stamped batch.
//!
//! # What this crate does not do
//! No I/O: no PKCS#11, HTTP or SQL. The server's batcher reads a batch's leaves from the
//! issuance log, hashes them block by block with [`tree`], has the root time-stamped by
//! its anchor targets and stores what it got; this crate only computes.
//!
//! ```text
//!  leaves (object hashes, log order), in blocks of tree::BLOCK_LEAVES
//!     |  tree::block_root         per block
//!     |  tree::root_of_blocks     the batch root, time-stamped by each anchor
//!     v
//!  tree::reduced_hashtree         one leaf's path: its block's leaves + all block roots
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
pub mod evidence;
pub mod tree;

pub use error::Error;
pub use evidence::{Checked, CheckedTimeStamp, check, check_data, evidence_record};
pub use tree::HashAlg;
