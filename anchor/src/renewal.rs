//! The tree of a renewal run: many evidence records renewed under one time-stamp
//! (RFC 4998 sections 5.2 and 5.3, docs/requirements.md F.65 and F.66).
//!
//! A server renewing many records computes each one's renewal hash
//! ([`crate::evidence::time_stamp_renewal_hash`] or
//! [`crate::evidence::hash_tree_renewal_hash`]), makes them the leaves of one tree
//! ([`RunTree`], built by the same rules and in the same blocks as a batch's), has its
//! root time-stamped once, and gives each record its own reduced hash tree to that root
//! ([`crate::evidence::renew_time_stamp`], [`crate::evidence::renew_hash_tree`]). The
//! reduced trees are kept between planning and serving as DER ([`reduced_to_der`],
//! [`reduced_from_der`]), the `SEQUENCE OF PartialHashtree` of an ArchiveTimeStamp.
//!
//! ```
//! use hanko_anchor::{HashAlg, renewal::RunTree, tree::root_of_reduced};
//! let leaves: Vec<Vec<u8>> = (0u8..3).map(|i| vec![i; 32]).collect();
//! let run = RunTree::new(HashAlg::Sha256, &leaves).unwrap();
//! let path = run.reduced_hashtree(2).unwrap();
//! assert_eq!(root_of_reduced(HashAlg::Sha256, &leaves[2], &path).unwrap(), run.root());
//! ```

use std::sync::Arc;

use rasn::prelude::*;

use crate::Error;
use crate::evidence::PartialHashtree;
use crate::tree::{self, BLOCK_LEAVES, BlockProofs, BlockRootsTree, HashAlg};

/// The tree over a run's renewal hashes, with every leaf's reduced hash tree at hand.
#[derive(Debug)]
pub struct RunTree {
    blocks: Vec<BlockProofs>,
    root: Vec<u8>,
}

impl RunTree {
    /// Hashes the tree over `leaves` (at least one, each `alg.len()` bytes).
    pub fn new<L: AsRef<[u8]>>(alg: HashAlg, leaves: &[L]) -> Result<Self, Error> {
        let chunks: Vec<&[L]> = leaves.chunks(BLOCK_LEAVES).collect();
        let mut roots = Vec::with_capacity(chunks.len());
        for c in &chunks {
            roots.push(tree::block_root(alg, c).ok_or(Error::HashLength {
                got: c.first().map_or(0, |l| l.as_ref().len()),
                want: alg.len(),
            })?);
        }
        let roots = Arc::new(BlockRootsTree::new(alg, &roots)?);
        let root = roots.root().to_vec();
        let blocks = chunks
            .iter()
            .enumerate()
            .map(|(b, c)| BlockProofs::with_roots(alg, c, roots.clone(), b as u64))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { blocks, root })
    }

    /// The root to time-stamp.
    pub fn root(&self) -> &[u8] {
        &self.root
    }

    /// The reduced hash tree of leaf `index` (empty for a one-leaf run).
    pub fn reduced_hashtree(&self, index: usize) -> Result<Vec<Vec<Vec<u8>>>, Error> {
        let block = self
            .blocks
            .get(index / BLOCK_LEAVES)
            .ok_or(Error::IndexOutOfRange {
                index: index as u64,
                leaves: (self.blocks.len() * BLOCK_LEAVES) as u64,
            })?;
        block.reduced_hashtree(index as u64)
    }
}

/// A reduced hash tree as DER `SEQUENCE OF PartialHashtree`; an empty tree (a one-leaf
/// run) as no bytes at all.
pub fn reduced_to_der(reduced: &[Vec<Vec<u8>>]) -> Result<Vec<u8>, Error> {
    if reduced.is_empty() {
        return Ok(Vec::new());
    }
    let lists: Vec<PartialHashtree> = reduced
        .iter()
        .map(|l| l.iter().map(|v| OctetString::from(v.clone())).collect())
        .collect();
    rasn::der::encode(&lists).map_err(|e| Error::Encode(e.to_string()))
}

/// The reduced hash tree [`reduced_to_der`] wrote.
pub fn reduced_from_der(der: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, Error> {
    if der.is_empty() {
        return Ok(Vec::new());
    }
    let lists: Vec<PartialHashtree> =
        rasn::der::decode(der).map_err(|e| Error::MalformedRecord(e.to_string()))?;
    Ok(lists
        .into_iter()
        .map(|l| l.into_iter().map(|v| v.to_vec()).collect())
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn every_leaf_of_runs_over_block_sizes_reaches_the_root_and_survives_der() {
        for n in [1usize, 2, 3, 1024, 1025, 2100] {
            let leaves: Vec<Vec<u8>> = (0..n)
                .map(|i| HashAlg::Sha256.digest(&i.to_be_bytes()))
                .collect();
            let run = RunTree::new(HashAlg::Sha256, &leaves).unwrap();
            assert_eq!(
                run.root(),
                tree::block_root(HashAlg::Sha256, &leaves).unwrap()
            );
            for i in [0, n / 2, n - 1] {
                let path = run.reduced_hashtree(i).unwrap();
                let back = reduced_from_der(&reduced_to_der(&path).unwrap()).unwrap();
                assert_eq!(back, path);
                assert_eq!(
                    tree::root_of_reduced(HashAlg::Sha256, &leaves[i], &back).unwrap(),
                    run.root()
                );
            }
            assert!(run.reduced_hashtree(n + BLOCK_LEAVES).is_err());
        }
    }
}
