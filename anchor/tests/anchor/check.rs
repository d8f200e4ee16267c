//! `hanko_anchor::check` on damaged records: any single flipped bit of a record (or of the
//! data hash) is refused, by the check itself or, for bits inside a token that only its
//! signature covers, by hanko-client's verification of the tokens the check returns; and
//! arbitrary or mangled bytes are refused without a panic.

use hanko_anchor::evidence::{
    EvidenceRecord, check_anchor_token, renew_time_stamp, time_stamp_renewal_hash,
};
use hanko_anchor::tree::{BLOCK_LEAVES, BlockProofs, block_root, root_of_blocks};
use hanko_anchor::{Error, HashAlg, check, evidence_record};
use proptest::prelude::*;

use crate::common::{Kind, fixture, verify_token};

/// A record for leaf `i` of a batch of `n` stamped by `kind`, and the leaf.
fn record(kind: Kind, n: usize, i: usize) -> (Vec<u8>, Vec<u8>) {
    let alg = HashAlg::Sha256;
    let leaves: Vec<Vec<u8>> = (0..n as u64)
        .map(|k| alg.digest(&[&n.to_be_bytes()[..], &k.to_be_bytes()].concat()))
        .collect();
    let roots: Vec<Vec<u8>> = leaves
        .chunks(BLOCK_LEAVES)
        .map(|b| block_root(alg, b).unwrap())
        .collect();
    let root = root_of_blocks(alg, &roots).unwrap();
    let token = fixture().stamp(kind, alg, &root);
    let chunk = leaves.chunks(BLOCK_LEAVES).nth(i / BLOCK_LEAVES).unwrap();
    let proofs = BlockProofs::new(alg, chunk, &roots, (i / BLOCK_LEAVES) as u64).unwrap();
    let reduced = proofs.reduced_hashtree(i as u64).unwrap();
    (
        evidence_record(alg, &reduced, &token).unwrap(),
        leaves[i].clone(),
    )
}

/// Where the token lies in the record (its whole TLV).
fn token_range(er: &[u8]) -> std::ops::Range<usize> {
    let token = EvidenceRecord::from_der(er)
        .unwrap()
        .archive_time_stamp_sequence[0][0]
        .time_stamp
        .as_bytes()
        .to_vec();
    let start = er.windows(token.len()).position(|w| w == token).unwrap();
    start..start + token.len()
}

/// The record with bit `bit` flipped is refused: by `check`, or by the verification of
/// the tokens `check` returns.
fn refused(er: &[u8], leaf: &[u8], bit: usize) -> bool {
    let mut bad = er.to_vec();
    bad[bit / 8] ^= 1 << (bit % 8);
    match check(&bad, leaf) {
        Err(_) => true,
        Ok(c) => c
            .time_stamps
            .iter()
            .any(|ts| verify_token(&ts.token_der, &ts.imprint).is_err()),
    }
}

/// Every bit outside the token (the record's own structure and its reduced hash tree,
/// 14 levels deep in a batch of 10,000) is refused by `check` alone; every bit of the
/// data hash too.
#[test]
fn check_alone_refuses_every_flipped_bit_outside_the_token() {
    let (er, leaf) = record(Kind::P256, 10_000, 6_000);
    let checked = check(&er, &leaf).unwrap();
    assert_eq!(checked.time_stamps.len(), 1);
    let token = token_range(&er);
    for bit in 0..er.len() * 8 {
        if token.contains(&(bit / 8)) {
            continue;
        }
        let mut bad = er.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        assert!(check(&bad, &leaf).is_err(), "bit {bit} of {}", er.len() * 8);
    }
    for bit in 0..leaf.len() * 8 {
        let mut bad = leaf.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        assert!(
            matches!(check(&er, &bad), Err(Error::NotInTree { .. })),
            "data hash bit {bit}"
        );
    }
}

/// Every bit of a P-256 record, the token included, is refused by the check and the
/// token verification together.
#[test]
fn every_flipped_bit_of_a_record_is_refused() {
    let (er, leaf) = record(Kind::P256, 3, 2);
    check(&er, &leaf).unwrap();
    let unrefused: Vec<usize> = (0..er.len() * 8)
        .filter(|&bit| !refused(&er, &leaf, bit))
        .collect();
    let kept = fixture().path("every-bit.ers");
    std::fs::write(&kept, &er).unwrap();
    assert!(
        unrefused.is_empty(),
        "bits of {} not refused: {unrefused:?}",
        kept.display()
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Random batch sizes and leaves, both TSA keys: the record checks, and random
    /// single-bit flips of it or of the data hash are refused.
    #[test]
    fn random_records_refuse_flipped_bits(
        n in 1usize..3000,
        pick: usize,
        rsa: bool,
        bits in proptest::collection::vec(any::<usize>(), 16),
        data_bit in 0usize..256,
    ) {
        let kind = if rsa { Kind::Rsa3072 } else { Kind::P256 };
        let (er, leaf) = record(kind, n, pick % n);
        let checked = check(&er, &leaf).unwrap();
        prop_assert_eq!(checked.time_stamps.len(), 1);
        for b in bits {
            prop_assert!(refused(&er, &leaf, b % (er.len() * 8)));
        }
        let mut bad = leaf.clone();
        bad[data_bit / 8] ^= 1 << (data_bit % 8);
        prop_assert!(check(&er, &bad).is_err());
    }

    /// Arbitrary bytes are refused, never a panic.
    #[test]
    fn arbitrary_bytes_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        prop_assert!(check(&bytes, &[0u8; 32]).is_err());
    }
}

/// A fuzz-style loop over mangled records (bytes replaced, cut, inserted; lengths
/// changed): never a panic, and nothing but the original checks.
#[test]
fn mangled_records_never_panic() {
    let (er, leaf) = record(Kind::P256, 7, 3);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        // xorshift64*: a fixed, reproducible sequence.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    for _ in 0..3000 {
        let mut bad = er.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() as usize) % bad.len();
            match next() % 4 {
                0 => bad[at] = next() as u8,
                1 => bad.truncate(at),
                2 => bad.insert(at, next() as u8),
                _ => {
                    bad.remove(at);
                }
            }
            if bad.is_empty() {
                break;
            }
        }
        if bad != er {
            let _ = check(&bad, &leaf);
        }
    }
}

/// Rule 64: a renewal time-stamp older than the one it renews is refused (the late TSA's
/// clock runs behind); so is one whose token uses another algorithm than its chain,
/// which the builder refuses to make in the first place.
#[test]
fn out_of_order_and_mixed_algorithm_chains_are_refused() {
    let f = fixture();
    let (er, leaf) = record(Kind::P256, 5, 1);
    let (alg, hash) = time_stamp_renewal_hash(&er).unwrap();

    let late = f.stamp_late(alg, &hash);
    let older = renew_time_stamp(&er, &[], &late).unwrap();
    assert_eq!(
        check(&older, &leaf).unwrap_err(),
        Error::TimeOrder { chain: 0, index: 1 }
    );
    // The same renewal in time checks, its two genTimes in order.
    let renewed = renew_time_stamp(&er, &[], &f.stamp(Kind::P256, alg, &hash)).unwrap();
    let checked = check(&renewed, &leaf).unwrap();
    assert!(checked.time_stamps[0].gen_time <= checked.time_stamps[1].gen_time);

    // A SHA-512 token in the SHA-256 chain.
    let sha512 = HashAlg::Sha512.digest(&hash);
    let token = f.stamp(Kind::P256, HashAlg::Sha512, &sha512);
    assert_eq!(
        renew_time_stamp(&er, &[], &token).unwrap_err(),
        Error::AlgorithmMismatch { chain: 0, index: 0 }
    );
    let mut mixed = EvidenceRecord::from_der(&er).unwrap();
    let mut ats = mixed.archive_time_stamp_sequence[0][0].clone();
    ats.reduced_hashtree = None;
    ats.time_stamp = rasn::types::Any::new(token);
    mixed.archive_time_stamp_sequence[0].push(ats);
    assert_eq!(
        check(&mixed.to_der().unwrap(), &leaf).unwrap_err(),
        Error::AlgorithmMismatch { chain: 0, index: 1 }
    );
}

/// The batcher's check of an anchor's token: over the root, yes; over another hash, of
/// another algorithm, or not a token, no.
#[test]
fn anchor_tokens_are_checked_against_the_root() {
    let f = fixture();
    let root = HashAlg::Sha256.digest(b"a batch root");
    let token = f.stamp(Kind::Rsa3072, HashAlg::Sha256, &root);
    let gen_time = check_anchor_token(HashAlg::Sha256, &root, &token).unwrap();
    assert!(gen_time <= std::time::SystemTime::now());
    assert_eq!(
        check_anchor_token(HashAlg::Sha256, &HashAlg::Sha256.digest(b"other"), &token).unwrap_err(),
        Error::ImprintMismatch { chain: 0, index: 0 }
    );
    assert_eq!(
        check_anchor_token(HashAlg::Sha384, &HashAlg::Sha384.digest(b"x"), &token).unwrap_err(),
        Error::AlgorithmMismatch { chain: 0, index: 0 }
    );
    assert!(matches!(
        check_anchor_token(HashAlg::Sha256, &root, &token[..token.len() - 1]),
        Err(Error::MalformedTimeStamp { .. })
    ));
}
