//! RFC 4998 evidence records: building the record of one leaf of a time-stamped batch,
//! renewing it, and the structural check of a record against a data object's hash.
//!
//! # The record Hanko issues
//! One `EvidenceRecord` per leaf and anchor: version 1, `digestAlgorithms` = the tree's
//! algorithm, one chain holding one `ArchiveTimeStamp` with `digestAlgorithm` (always
//! written), `reducedHashtree` (absent for a one-leaf batch) and `timeStamp`, the
//! anchor's TimeStampToken exactly as the TSA returned it. Several anchors of one batch
//! make several records, never one record with several chains: RFC 4998's chains are
//! renewals in sequence (each covers the one before), not parallel witnesses.
//!
//! # The check
//! [`check`] decodes strictly (the record must re-encode to the same bytes) and walks
//! every chain and archive time-stamp (docs/requirements.md, section F, F.62 to F.66):
//!
//! ```text
//!  chain 0, ATS 0:  H(d) in the first list -> reduced tree -> root == token imprint
//!  chain c, ATS j>0 (time-stamp renewal):   H(DER of ATS j-1's timeStamp) -> ... == imprint
//!  chain c>0, ATS 0 (hash-tree renewal):    H(H(d) || H(DER of chains 0..c-1)) -> ... == imprint
//! ```
//!
//! with one algorithm per chain, equal to each token's messageImprint algorithm and
//! listed in `digestAlgorithms`, and genTimes in ascending order. It does not verify the
//! tokens' signatures or certificates, nor whether each token was valid when the next was
//! made (rule 67): it returns the tokens, in order, for the client to verify.
//!
//! The ASN.1 types follow RFC 4998's module, which is `IMPLICIT TAGS`: `[0]`
//! digestAlgorithm is an AlgorithmIdentifier with its SEQUENCE tag replaced by `A0`,
//! `[2]` reducedHashtree a SEQUENCE OF with `A2`.

use std::time::SystemTime;

use rasn::prelude::*;
use rasn_pkix::{AlgorithmIdentifier, Attribute};

use crate::Error;
use crate::tree::{HashAlg, root_of_reduced};

mod token;

use token::TokenInfo;

/// `EvidenceRecord` (RFC 4998 section 3).
#[derive(AsnType, Clone, Debug, Decode, Encode, PartialEq, Eq)]
pub struct EvidenceRecord {
    /// Must be 1.
    pub version: Integer,
    /// Every hash algorithm used in the record.
    pub digest_algorithms: SequenceOf<AlgorithmIdentifier>,
    /// `[0] CryptoInfos`: informational, not used by the check.
    #[rasn(tag(0))]
    pub crypto_infos: Option<SequenceOf<Attribute>>,
    /// `[1] EncryptionInfo`: the data was encrypted; the check refuses such records.
    #[rasn(tag(1))]
    pub encryption_info: Option<EncryptionInfo>,
    /// The chains, oldest first.
    pub archive_time_stamp_sequence: SequenceOf<ArchiveTimeStampChain>,
}

/// `ArchiveTimeStampChain`: archive time-stamps of one algorithm, each renewing the one
/// before.
pub type ArchiveTimeStampChain = SequenceOf<ArchiveTimeStamp>;

/// `PartialHashtree`: hash values of one level of a reduced hash tree.
pub type PartialHashtree = SequenceOf<OctetString>;

/// `ArchiveTimeStamp` (RFC 4998 section 4.1).
#[derive(AsnType, Clone, Debug, Decode, Encode, PartialEq, Eq)]
pub struct ArchiveTimeStamp {
    /// `[0]` the hash tree's algorithm (when absent: the token's imprint algorithm).
    #[rasn(tag(0))]
    pub digest_algorithm: Option<AlgorithmIdentifier>,
    /// `[1]` attributes, not used by the check.
    #[rasn(tag(1))]
    pub attributes: Option<SetOf<Attribute>>,
    /// `[2]` the reduced hash tree, first list holding the hashed object.
    #[rasn(tag(2))]
    pub reduced_hashtree: Option<SequenceOf<PartialHashtree>>,
    /// The TimeStampToken (a ContentInfo), kept as its bytes.
    pub time_stamp: Any,
}

/// `EncryptionInfo` (RFC 4998 section 3).
#[derive(AsnType, Clone, Debug, Decode, Encode, PartialEq, Eq)]
pub struct EncryptionInfo {
    /// What kind of encryption.
    pub encryption_info_type: ObjectIdentifier,
    /// Its parameters.
    pub encryption_info_value: Any,
}

impl EvidenceRecord {
    /// Decodes DER, refusing what is not exactly DER (it must re-encode to `der`).
    pub fn from_der(der: &[u8]) -> Result<Self, Error> {
        let er: Self = rasn::der::decode(der).map_err(|e| Error::MalformedRecord(e.to_string()))?;
        match rasn::der::encode(&er) {
            Ok(again) if again == der => Ok(er),
            _ => Err(Error::NotDer),
        }
    }

    /// DER.
    pub fn to_der(&self) -> Result<Vec<u8>, Error> {
        rasn::der::encode(self).map_err(|e| Error::Encode(e.to_string()))
    }
}

/// The DER EvidenceRecord of one leaf: version 1, `digestAlgorithms` = `alg`, one chain
/// with one ArchiveTimeStamp: `digestAlgorithm` = `alg`, `reducedHashtree` = `reduced`
/// (absent when empty, for a one-leaf batch), `timeStamp` = `time_stamp_token` (a
/// TimeStampToken ContentInfo, DER) byte for byte.
///
/// Refused: a token that is not a TimeStampToken, whose imprint algorithm is not `alg`
/// or whose imprint is not the root `reduced` reaches from its first value.
pub fn evidence_record(
    alg: HashAlg,
    reduced: &[Vec<Vec<u8>>],
    time_stamp_token: &[u8],
) -> Result<Vec<u8>, Error> {
    let ats = archive_time_stamp(alg, reduced, None, time_stamp_token)?;
    EvidenceRecord {
        version: 1.into(),
        digest_algorithms: vec![algorithm_identifier(alg)?],
        crypto_infos: None,
        encryption_info: None,
        archive_time_stamp_sequence: vec![vec![ats]],
    }
    .to_der()
}

/// Checks that `time_stamp_token` can anchor a batch whose root is `root`: a DER
/// TimeStampToken (as [`check`] requires it) whose messageImprint is `alg` over `root`.
/// Returns its genTime. A batcher checks each anchor's token with this before storing
/// it: a token refused here would make no evidence record.
pub fn check_anchor_token(
    alg: HashAlg,
    root: &[u8],
    time_stamp_token: &[u8],
) -> Result<SystemTime, Error> {
    let ats = archive_time_stamp(alg, &[], Some(root), time_stamp_token)?;
    Ok(TokenInfo::parse(&ats, 0, 0)?.gen_time)
}

/// The hash to time-stamp to renew the last chain of `er_der` by a new time-stamp (rule
/// 65): H(DER of its last ArchiveTimeStamp's timeStamp), with the chain's algorithm.
pub fn time_stamp_renewal_hash(er_der: &[u8]) -> Result<(HashAlg, Vec<u8>), Error> {
    let er = EvidenceRecord::from_der(er_der)?;
    let (c, chain) = last_chain(&er)?;
    let Some((j, last)) = chain.iter().enumerate().next_back() else {
        return Err(Error::EmptyChain { chain: c });
    };
    let alg = TokenInfo::parse(last, c, j)?.tree_alg(last, c, j)?;
    Ok((alg, alg.digest(last.time_stamp.as_bytes())))
}

/// Appends to the last chain of `er_der` an ArchiveTimeStamp with `time_stamp_token`
/// over [`time_stamp_renewal_hash`] (or over the root `reduced` reaches from it, when
/// several records were renewed in one tree).
pub fn renew_time_stamp(
    er_der: &[u8],
    reduced: &[Vec<Vec<u8>>],
    time_stamp_token: &[u8],
) -> Result<Vec<u8>, Error> {
    let (alg, hash) = time_stamp_renewal_hash(er_der)?;
    let ats = archive_time_stamp(alg, reduced, Some(&hash), time_stamp_token)?;
    let mut er = EvidenceRecord::from_der(er_der)?;
    let Some(chain) = er.archive_time_stamp_sequence.last_mut() else {
        return Err(Error::EmptySequence);
    };
    chain.push(ats);
    er.to_der()
}

/// The hash to time-stamp (as the leaf of a new tree) to renew `er_der` with a new hash
/// tree of algorithm `alg` (rule 66): H(H(d) || H(DER of the whole
/// ArchiveTimeStampSequence)), data hash first; `data_hash` is H(d) with `alg`.
pub fn hash_tree_renewal_hash(
    er_der: &[u8],
    alg: HashAlg,
    data_hash: &[u8],
) -> Result<Vec<u8>, Error> {
    let er = EvidenceRecord::from_der(er_der)?;
    if data_hash.len() != alg.len() {
        return Err(Error::HashLength {
            got: data_hash.len(),
            want: alg.len(),
        });
    }
    sequence_renewal_hash(alg, data_hash, &er.archive_time_stamp_sequence)
}

/// Appends to `er_der` a new chain whose first ArchiveTimeStamp has `time_stamp_token`
/// over the root `reduced` reaches from [`hash_tree_renewal_hash`], and lists `alg` in
/// `digestAlgorithms` if it is not there yet.
pub fn renew_hash_tree(
    er_der: &[u8],
    alg: HashAlg,
    data_hash: &[u8],
    reduced: &[Vec<Vec<u8>>],
    time_stamp_token: &[u8],
) -> Result<Vec<u8>, Error> {
    let hash = hash_tree_renewal_hash(er_der, alg, data_hash)?;
    let ats = archive_time_stamp(alg, reduced, Some(&hash), time_stamp_token)?;
    let mut er = EvidenceRecord::from_der(er_der)?;
    if !er
        .digest_algorithms
        .iter()
        .any(|a| hash_alg(a).ok() == Some(alg))
    {
        er.digest_algorithms.push(algorithm_identifier(alg)?);
    }
    er.archive_time_stamp_sequence.push(vec![ats]);
    er.to_der()
}

/// What [`check`] proved: the record's trees and hashes lead from the data to every
/// time-stamp's imprint. The tokens themselves are still to be verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    /// The first archive time-stamp's root: the batch root (the data hash itself for a
    /// one-leaf batch).
    pub root: Vec<u8>,
    /// The first chain's algorithm, that of the data hash.
    pub alg: HashAlg,
    /// Every archive time-stamp, chain by chain, oldest first.
    pub time_stamps: Vec<CheckedTimeStamp>,
}

/// One archive time-stamp of a checked record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedTimeStamp {
    /// Its chain (0-based).
    pub chain: usize,
    /// Its place in the chain (0-based).
    pub index: usize,
    /// The chain's algorithm, the token's imprint algorithm.
    pub alg: HashAlg,
    /// The token's messageImprint: the root the record leads to.
    pub imprint: Vec<u8>,
    /// The TimeStampToken (ContentInfo) DER, as in the record.
    pub token_der: Vec<u8>,
    /// Its TSTInfo genTime.
    pub gen_time: SystemTime,
}

/// Checks the structure of the DER record `er_der` for the data whose hash is
/// `data_hash` (with the first chain's algorithm); see the module docs. A record whose
/// later chains use another algorithm needs the data itself: [`check_data`].
pub fn check(er_der: &[u8], data_hash: &[u8]) -> Result<Checked, Error> {
    check_with(er_der, &mut |alg, first| {
        if first || alg.len() == data_hash.len() {
            Ok(data_hash.to_vec())
        } else {
            Err(Error::DataNeeded(alg))
        }
    })
}

/// As [`check`], hashing `data` with each chain's algorithm.
pub fn check_data(er_der: &[u8], data: &[u8]) -> Result<Checked, Error> {
    check_with(er_der, &mut |alg, _| Ok(alg.digest(data)))
}

/// As [`check`], for a party that holds the record but not necessarily the data (a
/// renewal service: docs/requirements.md F.67): `data_hashes` gives H(d) for the
/// algorithms the caller knows. The first chain's hash, when not given, is the one the
/// record names itself (the first value of its first reduced-tree list, or the first
/// token's imprint for a one-leaf record): the trees and tokens are then proved
/// consistent from there, but not tied to any data. A later chain with an algorithm
/// not given is [`Error::DataNeeded`].
pub fn check_hashes(er_der: &[u8], data_hashes: &[(HashAlg, Vec<u8>)]) -> Result<Checked, Error> {
    let er = EvidenceRecord::from_der(er_der)?;
    let named = er
        .archive_time_stamp_sequence
        .first()
        .and_then(|chain| chain.first())
        .map(|ats| match &ats.reduced_hashtree {
            Some(tree) => Ok(tree
                .first()
                .and_then(|list| list.first())
                .map(|v| v.to_vec())
                .unwrap_or_default()),
            None => TokenInfo::parse(ats, 0, 0).map(|t| t.imprint),
        })
        .transpose()?;
    check_with(
        er_der,
        &mut |alg, first| match data_hashes.iter().find(|(a, _)| *a == alg) {
            Some((_, h)) => Ok(h.clone()),
            None if first => named.clone().ok_or(Error::EmptySequence),
            None => Err(Error::DataNeeded(alg)),
        },
    )
}

type DataHash<'a> = dyn FnMut(HashAlg, bool) -> Result<Vec<u8>, Error> + 'a;

fn check_with(er_der: &[u8], data_hash: &mut DataHash<'_>) -> Result<Checked, Error> {
    let er = EvidenceRecord::from_der(er_der)?;
    if er.version != Integer::from(1) {
        return Err(Error::Version);
    }
    if er.encryption_info.is_some() {
        return Err(Error::Encrypted);
    }
    let listed = er
        .digest_algorithms
        .iter()
        .map(hash_alg)
        .collect::<Result<Vec<_>, _>>()?;
    let chains = &er.archive_time_stamp_sequence;
    if chains.is_empty() {
        return Err(Error::EmptySequence);
    }
    let mut time_stamps: Vec<CheckedTimeStamp> = Vec::new();
    let mut first_alg = None;
    let mut root = None;
    for (c, chain) in chains.iter().enumerate() {
        let Some(first) = chain.first() else {
            return Err(Error::EmptyChain { chain: c });
        };
        let alg = TokenInfo::parse(first, c, 0)?.tree_alg(first, c, 0)?;
        if !listed.contains(&alg) {
            return Err(Error::AlgorithmNotListed(alg));
        }
        let d = data_hash(alg, c == 0)?;
        if d.len() != alg.len() {
            return Err(Error::HashLength {
                got: d.len(),
                want: alg.len(),
            });
        }
        let mut hashed = if c == 0 {
            first_alg = Some(alg);
            d
        } else {
            sequence_renewal_hash(alg, &d, &chains[..c])?
        };
        for (j, ats) in chain.iter().enumerate() {
            let token = TokenInfo::parse(ats, c, j)?;
            if token.tree_alg(ats, c, j)? != alg {
                return Err(Error::AlgorithmMismatch { chain: c, index: j });
            }
            let reached = match &ats.reduced_hashtree {
                None => hashed.clone(),
                Some(tree) => {
                    let tree = tree_values(alg, tree, c, j)?;
                    root_of_reduced(alg, &hashed, &tree)
                        .ok_or(Error::NotInTree { chain: c, index: j })?
                }
            };
            if reached != token.imprint {
                return Err(Error::ImprintMismatch { chain: c, index: j });
            }
            if time_stamps
                .last()
                .is_some_and(|prev| prev.gen_time > token.gen_time)
            {
                return Err(Error::TimeOrder { chain: c, index: j });
            }
            root.get_or_insert_with(|| reached.clone());
            hashed = alg.digest(ats.time_stamp.as_bytes());
            time_stamps.push(CheckedTimeStamp {
                chain: c,
                index: j,
                alg,
                imprint: token.imprint,
                token_der: ats.time_stamp.as_bytes().to_vec(),
                gen_time: token.gen_time,
            });
        }
    }
    match (root, first_alg) {
        (Some(root), Some(alg)) => Ok(Checked {
            root,
            alg,
            time_stamps,
        }),
        _ => Err(Error::EmptySequence),
    }
}

/// H(H(d) || H(DER of `chains` as an ArchiveTimeStampSequence)).
fn sequence_renewal_hash(
    alg: HashAlg,
    data_hash: &[u8],
    chains: &[ArchiveTimeStampChain],
) -> Result<Vec<u8>, Error> {
    let seq = rasn::der::encode(&chains.to_vec()).map_err(|e| Error::Encode(e.to_string()))?;
    let mut cat = data_hash.to_vec();
    cat.extend_from_slice(&alg.digest(&seq));
    Ok(alg.digest(&cat))
}

/// An ArchiveTimeStamp over `token`, after checking that the token's imprint is the root
/// `reduced` reaches (from `hashed` when given, else from its first value).
fn archive_time_stamp(
    alg: HashAlg,
    reduced: &[Vec<Vec<u8>>],
    hashed: Option<&[u8]>,
    token: &[u8],
) -> Result<ArchiveTimeStamp, Error> {
    let ats = ArchiveTimeStamp {
        digest_algorithm: Some(algorithm_identifier(alg)?),
        attributes: None,
        reduced_hashtree: (!reduced.is_empty()).then(|| {
            reduced
                .iter()
                .map(|list| list.iter().map(|v| OctetString::from(v.clone())).collect())
                .collect()
        }),
        time_stamp: Any::new(token.to_vec()),
    };
    let info = TokenInfo::parse(&ats, 0, 0)?;
    if info.alg != alg {
        return Err(Error::AlgorithmMismatch { chain: 0, index: 0 });
    }
    let reached = match (&ats.reduced_hashtree, hashed) {
        (None, None) => None,
        (None, Some(h)) => Some(h.to_vec()),
        (Some(tree), hashed) => {
            let tree = tree_values(alg, tree, 0, 0)?;
            let leaf = hashed.or_else(|| tree.first().and_then(|l| l.first()).map(Vec::as_slice));
            leaf.and_then(|l| root_of_reduced(alg, l, &tree))
        }
    };
    if reached.is_some_and(|r| r != info.imprint) {
        return Err(Error::ImprintMismatch { chain: 0, index: 0 });
    }
    Ok(ats)
}

/// A reduced hash tree's values, each `alg.len()` bytes, no list empty.
fn tree_values(
    alg: HashAlg,
    tree: &[PartialHashtree],
    chain: usize,
    index: usize,
) -> Result<Vec<Vec<Vec<u8>>>, Error> {
    if tree.is_empty() || tree.iter().any(Vec::is_empty) {
        return Err(Error::EmptyTreeList { chain, index });
    }
    tree.iter()
        .map(|list| {
            list.iter()
                .map(|v| {
                    if v.len() == alg.len() {
                        Ok(v.to_vec())
                    } else {
                        Err(Error::HashLength {
                            got: v.len(),
                            want: alg.len(),
                        })
                    }
                })
                .collect()
        })
        .collect()
}

/// `alg`'s AlgorithmIdentifier with absent parameters (RFC 5754).
fn algorithm_identifier(alg: HashAlg) -> Result<AlgorithmIdentifier, Error> {
    Ok(AlgorithmIdentifier {
        algorithm: hanko_pki::cms::oid(alg.oid()).map_err(|e| Error::Encode(e.to_string()))?,
        parameters: None,
    })
}

/// A hash AlgorithmIdentifier with absent or NULL parameters.
fn hash_alg(a: &AlgorithmIdentifier) -> Result<HashAlg, Error> {
    let unknown = || Error::UnknownHashAlgorithm(a.algorithm.to_string());
    let alg = HashAlg::from_oid(&a.algorithm.to_string()).ok_or_else(unknown)?;
    match &a.parameters {
        None => Ok(alg),
        Some(p) if p.as_bytes() == [0x05, 0x00] => Ok(alg),
        Some(_) => Err(unknown()),
    }
}

fn last_chain(er: &EvidenceRecord) -> Result<(usize, &ArchiveTimeStampChain), Error> {
    er.archive_time_stamp_sequence
        .iter()
        .enumerate()
        .next_back()
        .ok_or(Error::EmptySequence)
}
