//! The crate's one error enum: what is wrong with the inputs of a tree computation, an
//! evidence record to build, or an evidence record to check.

/// Why a tree, an evidence record or a check failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The leaf index is not in the batch (or not in the block whose leaves were given).
    #[error("leaf {index} is not in a batch of {leaves} leaves")]
    IndexOutOfRange {
        /// The index asked for (0-based, in the batch).
        index: u64,
        /// How many leaves the inputs describe.
        leaves: u64,
    },
    /// A leaf or node is not as long as the tree's hash algorithm's output.
    #[error("a hash value of {got} bytes in a tree of {want}-byte hashes")]
    HashLength {
        /// The length found.
        got: usize,
        /// The algorithm's output length.
        want: usize,
    },
    /// The block's leaves do not hash to the block root given for that block, or a block
    /// other than the last holds fewer than `BLOCK_LEAVES` leaves.
    #[error("the leaves of block {block} do not match its stored root")]
    BlockMismatch {
        /// The block's number in the batch (0-based).
        block: u64,
    },
}
