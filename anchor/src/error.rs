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
    /// The bytes are not an EvidenceRecord (RFC 4998).
    #[error("not a DER EvidenceRecord: {0}")]
    MalformedRecord(String),
    /// The record decodes but is not DER (it does not re-encode to the same bytes).
    #[error("the evidence record is not DER")]
    NotDer,
    /// The record's version is not 1.
    #[error("evidence record version is not 1")]
    Version,
    /// The record has encryptionInfo: it covers encrypted data, which this check does
    /// not handle.
    #[error("the evidence record covers encrypted data (encryptionInfo)")]
    Encrypted,
    /// The record has no ArchiveTimeStampChain.
    #[error("the evidence record has no archive time-stamp chain")]
    EmptySequence,
    /// An ArchiveTimeStampChain has no ArchiveTimeStamp.
    #[error("archive time-stamp chain {chain} is empty")]
    EmptyChain {
        /// The chain (0-based).
        chain: usize,
    },
    /// A hash algorithm that is not SHA-256, SHA-384 or SHA-512 (or has parameters other
    /// than absent or NULL).
    #[error("unsupported hash algorithm {0}")]
    UnknownHashAlgorithm(String),
    /// A chain uses an algorithm that digestAlgorithms does not list (rule 62).
    #[error("{0:?} is used but not listed in digestAlgorithms")]
    AlgorithmNotListed(crate::HashAlg),
    /// An archive time-stamp's digestAlgorithm is not its token's imprint algorithm, or
    /// not its chain's algorithm (rules 63a, 64).
    #[error(
        "archive time-stamp {chain}.{index}: its algorithm differs from its token's or its chain's"
    )]
    AlgorithmMismatch {
        /// The chain (0-based).
        chain: usize,
        /// The archive time-stamp in the chain (0-based).
        index: usize,
    },
    /// The timeStamp is not a TimeStampToken (ContentInfo of SignedData over TSTInfo).
    #[error("archive time-stamp {chain}.{index}: {reason}")]
    MalformedTimeStamp {
        /// The chain (0-based).
        chain: usize,
        /// The archive time-stamp in the chain (0-based).
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// A reducedHashtree, or one of its lists, is empty.
    #[error("archive time-stamp {chain}.{index}: an empty reduced hash tree or list")]
    EmptyTreeList {
        /// The chain (0-based).
        chain: usize,
        /// The archive time-stamp in the chain (0-based).
        index: usize,
    },
    /// The hashed object (the data's hash or a renewal hash) is not in the first list of
    /// the reduced hash tree.
    #[error("archive time-stamp {chain}.{index}: the hash is not in its reduced hash tree")]
    NotInTree {
        /// The chain (0-based).
        chain: usize,
        /// The archive time-stamp in the chain (0-based).
        index: usize,
    },
    /// The root reached (or the hash, without a tree) is not the token's messageImprint.
    #[error("archive time-stamp {chain}.{index}: the time-stamp is over another hash")]
    ImprintMismatch {
        /// The chain (0-based).
        chain: usize,
        /// The archive time-stamp in the chain (0-based).
        index: usize,
    },
    /// An archive time-stamp's genTime is before the previous one's (rule 64).
    #[error("archive time-stamp {chain}.{index} is older than the one before it")]
    TimeOrder {
        /// The chain (0-based).
        chain: usize,
        /// The archive time-stamp in the chain (0-based).
        index: usize,
    },
    /// A later chain uses another algorithm: the data itself is needed, not one hash.
    #[error("the record was renewed with {0:?}: check it against the data, not a hash")]
    DataNeeded(crate::HashAlg),
    /// Encoding failed (a bug: please report it).
    #[error("encoding the evidence record failed: {0}")]
    Encode(String),
}
