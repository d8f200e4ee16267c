//! The Merkle tree of a batch, as RFC 4998 builds hash trees, and the reduced hash tree
//! that proves one leaf is in it.
//!
//! # The rules (docs/requirements.md, section F, F.63 and F.63a)
//! - A leaf is the object's hash as it is, with no prefix or domain separator: RFC 4998
//!   hashes the data object and nothing else, and a verifier that knows only the data
//!   must be able to start from `H(data)`.
//! - A node is `H(min(a, b) || max(a, b))`: its two children concatenated in binary
//!   ascending order (byte-wise comparison), so a verifier needs no left/right flags.
//! - The tree is binary and built level by level from the left: leaves `2i` and `2i+1`
//!   pair up; a node left without a partner at the end of a level is carried up to the
//!   next level unchanged (it is not duplicated and not hashed again).
//! - A one-leaf batch has the leaf itself as its root and no reduced hash tree.
//!
//! # Blocks
//! A batch's leaves are stored in blocks of [`BLOCK_LEAVES`] (1024 = 2^10) leaves, in
//! order. Because blocks start at multiples of 2^10, node `j` at level 10 of the whole
//! tree covers exactly the leaves of block `j`; so the root of a block is the whole
//! tree's level-10 node ([`block_root`]), and the batch root is the root of the tree over
//! the block roots ([`root_of_blocks`]). The batcher therefore hashes one block at a time
//! (bounded memory), and a proof for one leaf needs only that leaf's block and the block
//! roots ([`reduced_hashtree`]), never the whole batch.
//!
//! # Speed
//! A level is hashed in place in one flat buffer with one hasher per node on the stack:
//! no allocation per node. The batch root of 1,000,000 leaves is about 1,000,000 SHA-256
//! hashes of 64 bytes: measured at about 0.2 s in a release build on the 2-core dev
//! machine (block by block, 977 blocks, then the root), and one leaf's proof at about
//! 0.4 ms (its block and the block roots hashed again; [`BlockProofs`] keeps them for
//! the other leaves of the block).
//!
//! ```
//! use hanko_anchor::tree::{self, HashAlg};
//! let leaves: Vec<[u8; 32]> = (0u8..3).map(|i| [i; 32]).collect();
//! let root = tree::block_root(HashAlg::Sha256, &leaves).unwrap();
//! let left = tree::node(HashAlg::Sha256, &leaves[0], &leaves[1]);
//! assert_eq!(root, tree::node(HashAlg::Sha256, &left, &leaves[2]));
//! // Leaf 2 was carried up from level 0; its proof is its one sibling, node(0, 1).
//! let proof = tree::reduced_hashtree(HashAlg::Sha256, &leaves, &[root.clone()], 2).unwrap();
//! assert_eq!(proof, vec![vec![leaves[2].to_vec(), left]]);
//! assert_eq!(tree::root_of_reduced(HashAlg::Sha256, &leaves[2], &proof).unwrap(), root);
//! ```

use sha2::Digest;

use crate::Error;

/// How many leaves a stored block of a batch holds (all blocks but the last are full).
pub const BLOCK_LEAVES: usize = 1024;

/// The hash algorithm of a tree: the algorithm of the leaves and of every node, and the
/// messageImprint algorithm of the time-stamp over the root (rule 63a).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashAlg {
    /// SHA-256, the algorithm of the issuance log's `object_hash`.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlg {
    /// Output length in bytes.
    pub const fn len(self) -> usize {
        self.pki().output_len()
    }

    /// Whether the output is empty: never (clippy wants it beside `len`).
    pub const fn is_empty(self) -> bool {
        false
    }

    /// Hashes `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        self.pki().digest(data)
    }

    /// Dotted OID, from pki's algorithm table.
    pub const fn oid(self) -> &'static str {
        self.pki().oid()
    }

    /// The same algorithm in pki's table (OIDs, AlgorithmIdentifier encodings).
    pub const fn pki(self) -> hanko_pki::HashAlgorithm {
        match self {
            Self::Sha256 => hanko_pki::HashAlgorithm::Sha256,
            Self::Sha384 => hanko_pki::HashAlgorithm::Sha384,
            Self::Sha512 => hanko_pki::HashAlgorithm::Sha512,
        }
    }

    /// The tree algorithm for a pki algorithm; `None` for one a tree is not built with.
    pub fn from_pki(alg: hanko_pki::HashAlgorithm) -> Option<Self> {
        [Self::Sha256, Self::Sha384, Self::Sha512]
            .into_iter()
            .find(|a| a.pki() == alg)
    }

    /// Looks up a dotted OID.
    pub fn from_oid(oid: &str) -> Option<Self> {
        hanko_pki::HashAlgorithm::from_oid(oid)
            .ok()
            .and_then(Self::from_pki)
    }
}

impl From<HashAlg> for hanko_pki::HashAlgorithm {
    fn from(alg: HashAlg) -> Self {
        alg.pki()
    }
}

/// An inner node: `H` of the two children concatenated in binary ascending order.
pub fn node(alg: HashAlg, a: &[u8], b: &[u8]) -> Vec<u8> {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    match alg {
        HashAlg::Sha256 => hash2::<sha2::Sha256>(lo, hi).to_vec(),
        HashAlg::Sha384 => hash2::<sha2::Sha384>(lo, hi).to_vec(),
        HashAlg::Sha512 => hash2::<sha2::Sha512>(lo, hi).to_vec(),
    }
}

/// Root of the tree over `leaves` (one block: up to [`BLOCK_LEAVES`]), `None` when there
/// are none or a leaf is not `alg.len()` bytes long. Any count is hashed by the same
/// rules, so over a whole batch's leaves this is the batch root too.
pub fn block_root<L: AsRef<[u8]>>(alg: HashAlg, leaves: &[L]) -> Option<Vec<u8>> {
    Level::new(alg, leaves).ok()?.root()
}

/// The batch root from its blocks' roots, in block order, `None` when there are none or
/// a root is not `alg.len()` bytes long. Equal to [`block_root`] over all the batch's
/// leaves, because every block but the last is full.
pub fn root_of_blocks<R: AsRef<[u8]>>(alg: HashAlg, block_roots: &[R]) -> Option<Vec<u8>> {
    block_root(alg, block_roots)
}

/// The RFC 4998 reduced hash tree for leaf `index` (0-based, in the batch), given the
/// leaves of its block and the roots of all blocks of the batch:
/// `[[leaf, sibling], [sibling], ...]`, one sibling per level where the path has one (a
/// node carried up has none), bottom up; empty for a one-leaf batch.
///
/// Errors: the index is outside the batch or its block, a hash has the wrong length, or
/// the block's leaves do not hash to its root (or a non-final block is not full).
/// For many leaves of one block, [`BlockProofs`] hashes the block once.
pub fn reduced_hashtree<L: AsRef<[u8]>, R: AsRef<[u8]>>(
    alg: HashAlg,
    block_leaves: &[L],
    block_roots: &[R],
    index: u64,
) -> Result<Vec<Vec<Vec<u8>>>, Error> {
    let block = index / BLOCK_LEAVES as u64;
    BlockProofs::new(alg, block_leaves, block_roots, block)
        .map_err(|e| match e {
            Error::IndexOutOfRange { leaves, .. } => Error::IndexOutOfRange { index, leaves },
            e => e,
        })?
        .reduced_hashtree(index)
}

/// The reduced hash trees of the leaves of one block: the block's tree and the tree over
/// the block roots, hashed once, every level kept (twice a block's leaves in memory).
#[derive(Debug)]
pub struct BlockProofs {
    block: u64,
    leaves: Tree,
    roots: std::sync::Arc<BlockRootsTree>,
}

/// The tree over a batch's block roots, every level kept: the upper part of every
/// leaf's reduced hash tree ([`BlockProofs::with_roots`]). A closed batch never changes,
/// so one can be kept and shared between lookups.
#[derive(Debug)]
pub struct BlockRootsTree {
    tree: Tree,
}

impl BlockRootsTree {
    /// Hashes the tree over `block_roots` (at least one).
    pub fn new<R: AsRef<[u8]>>(alg: HashAlg, block_roots: &[R]) -> Result<Self, Error> {
        if block_roots.is_empty() {
            return Err(Error::IndexOutOfRange {
                index: 0,
                leaves: 0,
            });
        }
        Ok(Self {
            tree: Tree::new(alg, block_roots)?,
        })
    }

    /// The batch root.
    pub fn root(&self) -> &[u8] {
        self.tree.root()
    }

    /// How many blocks (block roots) the batch has.
    pub fn blocks(&self) -> usize {
        self.tree.counts[0]
    }
}

impl BlockProofs {
    /// Hashes block `block`'s leaves and the batch's block roots, and checks the first
    /// against the second. Errors as [`reduced_hashtree`].
    pub fn new<L: AsRef<[u8]>, R: AsRef<[u8]>>(
        alg: HashAlg,
        block_leaves: &[L],
        block_roots: &[R],
        block: u64,
    ) -> Result<Self, Error> {
        let roots = BlockRootsTree {
            tree: Tree::new(alg, block_roots)?,
        };
        Self::with_roots(alg, block_leaves, std::sync::Arc::new(roots), block)
    }

    /// As [`BlockProofs::new`], over a tree of the block roots already built (a server
    /// answering many lookups in one batch hashes its block roots once, not per lookup).
    pub fn with_roots<L: AsRef<[u8]>>(
        alg: HashAlg,
        block_leaves: &[L],
        roots: std::sync::Arc<BlockRootsTree>,
        block: u64,
    ) -> Result<Self, Error> {
        let blocks = roots.blocks() as u64;
        let block_size = BLOCK_LEAVES as u64;
        let stored_root = usize::try_from(block)
            .ok()
            .filter(|b| (*b as u64) < blocks)
            .map(|b| roots.tree.node(0, b));
        let Some(stored_root) = stored_root else {
            return Err(Error::IndexOutOfRange {
                index: block.saturating_mul(block_size),
                leaves: blocks.saturating_mul(block_size),
            });
        };
        let last_block = block + 1 == blocks;
        if block_leaves.is_empty()
            || block_leaves.len() > BLOCK_LEAVES
            || (!last_block && block_leaves.len() != BLOCK_LEAVES)
        {
            return Err(Error::BlockMismatch { block });
        }
        let leaves = Tree::new(alg, block_leaves)?;
        if leaves.root() != stored_root {
            return Err(Error::BlockMismatch { block });
        }
        Ok(Self {
            block,
            leaves,
            roots,
        })
    }

    /// The batch root.
    pub fn batch_root(&self) -> &[u8] {
        self.roots.root()
    }

    /// The reduced hash tree of leaf `index` (0-based, in the batch; it must be in this
    /// block), as [`reduced_hashtree`] returns it.
    pub fn reduced_hashtree(&self, index: u64) -> Result<Vec<Vec<Vec<u8>>>, Error> {
        let block_size = BLOCK_LEAVES as u64;
        let count = self.leaves.counts[0];
        let start = self.block * block_size;
        let within = index
            .checked_sub(start)
            .and_then(|w| usize::try_from(w).ok())
            .filter(|w| *w < count);
        let Some(within) = within else {
            return Err(Error::IndexOutOfRange {
                index,
                leaves: start + count as u64,
            });
        };
        let mut siblings = self.leaves.siblings(within);
        // `block` indexes block_roots (checked in `new`), so it fits in usize.
        siblings.extend(
            self.roots
                .tree
                .siblings(usize::try_from(self.block).unwrap_or(0)),
        );
        let mut siblings = siblings.into_iter();
        let Some(first) = siblings.next() else {
            return Ok(Vec::new());
        };
        let mut out = vec![vec![self.leaves.node(0, within).to_vec(), first]];
        out.extend(siblings.map(|s| vec![s]));
        Ok(out)
    }
}

/// Every level of a tree, each in a flat buffer of equal-length hashes.
#[derive(Debug)]
struct Tree {
    width: usize,
    counts: Vec<usize>,
    levels: Vec<Vec<u8>>,
}

impl Tree {
    /// At least one node: callers check.
    fn new<L: AsRef<[u8]>>(alg: HashAlg, nodes: &[L]) -> Result<Self, Error> {
        let mut level = Level::new(alg, nodes)?;
        let mut levels = vec![level.buf.clone()];
        let mut counts = vec![level.count];
        while level.count > 1 {
            level.up();
            levels.push(level.buf.clone());
            counts.push(level.count);
        }
        Ok(Self {
            width: level.width,
            counts,
            levels,
        })
    }

    fn node(&self, level: usize, i: usize) -> &[u8] {
        &self.levels[level][i * self.width..(i + 1) * self.width]
    }

    fn root(&self) -> &[u8] {
        self.levels.last().map_or(&[], Vec::as_slice)
    }

    /// The siblings on the path of node `index` of level 0 (`index < counts[0]`), bottom
    /// up; none for a level where the node is carried up.
    fn siblings(&self, mut index: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for (level, count) in self.counts.iter().enumerate() {
            let sibling = index ^ 1;
            if sibling < *count {
                out.push(self.node(level, sibling).to_vec());
            }
            index /= 2;
        }
        out
    }
}

/// Walks a reduced hash tree the way RFC 4998 section 4.3 verifies one: `leaf` must be
/// in the first list; each list's values together with the result so far are sorted,
/// concatenated and hashed. Returns the root it reaches (`leaf` itself for an empty
/// tree), or `None` when `leaf` is not in the first list.
///
/// A first list of `leaf` alone is the leaf itself, not hashed once more: Bouncy Castle
/// 1.72 writes each sibling in a list of its own, `[{h}, {s1}, {s2}, ...]`, and a
/// literal reading of §4.3 step 3 (hash the first list) would refuse every such record
/// (docs/requirements.md F.63a). Either form is an inclusion proof of `leaf`; ours,
/// `[{h, s1}, {s2}, ...]`, never has a one-value first list.
pub fn root_of_reduced(alg: HashAlg, leaf: &[u8], reduced: &[Vec<Vec<u8>>]) -> Option<Vec<u8>> {
    let mut lists = reduced.iter();
    let Some(first) = lists.next() else {
        return Some(leaf.to_vec());
    };
    if !first.iter().any(|h| h.as_slice() == leaf) {
        return None;
    }
    let mut acc = match first.as_slice() {
        [only] => only.clone(),
        _ => hash_sorted(alg, first.iter().map(Vec::as_slice).collect()),
    };
    for list in lists {
        let mut values: Vec<&[u8]> = list.iter().map(Vec::as_slice).collect();
        values.push(&acc);
        acc = hash_sorted(alg, values);
    }
    Some(acc)
}

/// `H` of `values` sorted in binary ascending order and concatenated.
pub(crate) fn hash_sorted(alg: HashAlg, mut values: Vec<&[u8]>) -> Vec<u8> {
    values.sort_unstable();
    fn run<D: Digest>(values: &[&[u8]]) -> Vec<u8> {
        let mut d = D::new();
        for v in values {
            d.update(v);
        }
        d.finalize().to_vec()
    }
    match alg {
        HashAlg::Sha256 => run::<sha2::Sha256>(&values),
        HashAlg::Sha384 => run::<sha2::Sha384>(&values),
        HashAlg::Sha512 => run::<sha2::Sha512>(&values),
    }
}

fn hash2<D: Digest>(lo: &[u8], hi: &[u8]) -> sha2::digest::Output<D> {
    let mut d = D::new();
    d.update(lo);
    d.update(hi);
    d.finalize()
}

/// One level of a tree in a flat buffer of equal-length hashes, reduced in place.
struct Level {
    alg: HashAlg,
    width: usize,
    count: usize,
    buf: Vec<u8>,
}

impl Level {
    fn new<L: AsRef<[u8]>>(alg: HashAlg, nodes: &[L]) -> Result<Self, Error> {
        let width = alg.len();
        let mut buf = Vec::with_capacity(nodes.len() * width);
        for n in nodes {
            let n = n.as_ref();
            if n.len() != width {
                return Err(Error::HashLength {
                    got: n.len(),
                    want: width,
                });
            }
            buf.extend_from_slice(n);
        }
        Ok(Self {
            alg,
            width,
            count: nodes.len(),
            buf,
        })
    }

    /// Replaces this level by the next one up.
    fn up(&mut self) {
        match self.alg {
            HashAlg::Sha256 => self.up_with::<sha2::Sha256>(),
            HashAlg::Sha384 => self.up_with::<sha2::Sha384>(),
            HashAlg::Sha512 => self.up_with::<sha2::Sha512>(),
        }
    }

    fn up_with<D: Digest>(&mut self) {
        let w = self.width;
        let pairs = self.count / 2;
        for i in 0..pairs {
            let (a, b) = self.buf[2 * i * w..(2 * i + 2) * w].split_at(w);
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            let h = hash2::<D>(lo, hi);
            // Node i is written at or before the pair it was made from (i <= 2i), after
            // that pair was read.
            self.buf[i * w..(i + 1) * w].copy_from_slice(&h);
        }
        if self.count % 2 == 1 {
            let last = self.count - 1;
            self.buf.copy_within(last * w..(last + 1) * w, pairs * w);
        }
        self.count = self.count.div_ceil(2);
        self.buf.truncate(self.count * w);
    }

    fn root(mut self) -> Option<Vec<u8>> {
        if self.count == 0 {
            return None;
        }
        while self.count > 1 {
            self.up();
        }
        // The buffer still has room for every node of the first level (32 KiB for a
        // block): give that back, or a caller keeping one root per block (the batcher,
        // 977 blocks for 1,000,000 leaves) holds 32 bytes per leaf, not per block.
        self.buf.shrink_to_fit();
        Some(self.buf)
    }
}

#[cfg(test)]
mod tests;
