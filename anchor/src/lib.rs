//! Merkle batch anchoring for Hanko: the hash tree of a batch of issued objects, and the
//! RFC 4998 evidence records that prove one object was in a time-stamped batch.
//!
//! # What this crate does not do
//! No I/O: no PKCS#11, HTTP or SQL. The server's batcher reads a batch's leaves from the
//! issuance log, hashes them block by block with [`tree`], has the root time-stamped by
//! its anchor targets and stores what it got; this crate only computes. It does not
//! verify time-stamp signatures or certificates either: [`check`] returns the tokens,
//! and `hanko-client` verifies them.
//!
//! ```text
//!  leaves (object hashes, log order), in blocks of tree::BLOCK_LEAVES
//!     |  tree::block_root         per block
//!     |  tree::root_of_blocks     the batch root, time-stamped by each anchor
//!     v
//!  tree::reduced_hashtree         one leaf's path: its block's leaves + all block roots
//!     |  evidence::evidence_record    + one anchor's TimeStampToken
//!     v
//!  DER EvidenceRecord  --  evidence::check(record, H(data))  ->  Checked { root, tokens }
//! ```
//!
//! The tree's rules and the blocks are explained in [`tree`]; the record, its renewal
//! and the check in [`evidence`]; docs/architecture.md section 14 has the whole picture.
//!
//! ```
//! use hanko_anchor::{Error, HashAlg, check, tree};
//! let leaves: Vec<[u8; 32]> = (0u8..5).map(|i| [i; 32]).collect();
//! let root = tree::block_root(HashAlg::Sha256, &leaves).unwrap();
//! let proof = tree::reduced_hashtree(HashAlg::Sha256, &leaves, &[root.clone()], 3).unwrap();
//! assert_eq!(tree::root_of_reduced(HashAlg::Sha256, &leaves[3], &proof), Some(root));
//! // Not an evidence record: refused, never a panic.
//! assert!(matches!(check(b"\x30\x00", &leaves[3]), Err(Error::MalformedRecord(_))));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
pub mod evidence;
pub mod renewal;
#[cfg(feature = "test-support")]
pub mod test_support;
pub mod tree;

pub use error::Error;
pub use evidence::{Checked, CheckedTimeStamp, check, check_data, evidence_record};
pub use tree::HashAlg;
