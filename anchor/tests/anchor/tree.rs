//! `block_root`/`root_of_blocks` against a reference written another way (recursive
//! split at the largest power of two below the count, as RFC 6962 defines its tree: the
//! same tree as pairing level by level from the left with an odd node carried up), and
//! every leaf's reduced hash tree walked the way RFC 4998 section 4.3 verifies one.

use std::collections::HashMap;

use hanko_anchor::Error;
use hanko_anchor::tree::{
    self, BLOCK_LEAVES, BlockProofs, HashAlg, block_root, reduced_hashtree, root_of_blocks,
    root_of_reduced,
};
use proptest::prelude::*;

/// Leaf `i` of a test batch: SHA-256 of a per-batch salt and `i`.
pub fn leaves(salt: u64, n: usize) -> Vec<[u8; 32]> {
    (0..n as u64)
        .map(|i| {
            let mut d = salt.to_be_bytes().to_vec();
            d.extend_from_slice(&i.to_be_bytes());
            HashAlg::Sha256.digest(&d).try_into().unwrap()
        })
        .collect()
}

/// The reference root: one leaf is its own root; otherwise split at the largest power of
/// two strictly below the count and join the two halves' roots with the sorted node hash,
/// spelled out here with the hash of a concatenation. Roots of aligned power-of-two
/// ranges are remembered in `memo` (keyed by start and length), so that the roots of all
/// prefixes of one leaf list cost little.
fn reference_root_memo(
    alg: HashAlg,
    leaves: &[[u8; 32]],
    start: usize,
    len: usize,
    memo: &mut HashMap<(usize, usize), Vec<u8>>,
) -> Vec<u8> {
    if len == 1 {
        return leaves[start].to_vec();
    }
    let aligned = len.is_power_of_two() && start.is_multiple_of(len);
    if let Some(r) = memo.get(&(start, len)).filter(|_| aligned) {
        return r.clone();
    }
    let mut k = 1;
    while k * 2 < len {
        k *= 2;
    }
    let a = reference_root_memo(alg, leaves, start, k, memo);
    let b = reference_root_memo(alg, leaves, start + k, len - k, memo);
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    let r = alg.digest(&[lo, hi].concat());
    if aligned {
        memo.insert((start, len), r.clone());
    }
    r
}

fn reference_root(alg: HashAlg, leaves: &[[u8; 32]]) -> Vec<u8> {
    reference_root_memo(alg, leaves, 0, leaves.len(), &mut HashMap::new())
}

fn block_roots(alg: HashAlg, leaves: &[[u8; 32]]) -> Vec<Vec<u8>> {
    leaves
        .chunks(BLOCK_LEAVES)
        .map(|b| block_root(alg, b).unwrap())
        .collect()
}

/// Checks every leaf in `which` of a batch of `leaves` through `reduced_hashtree`: its
/// reduced tree has the RFC's shape and reaches `root`.
fn check_proofs(
    alg: HashAlg,
    leaves: &[[u8; 32]],
    root: &[u8],
    which: impl Iterator<Item = usize>,
) {
    let roots = block_roots(alg, leaves);
    for i in which {
        let chunk = leaves.chunks(BLOCK_LEAVES).nth(i / BLOCK_LEAVES).unwrap();
        let r = reduced_hashtree(alg, chunk, &roots, i as u64).unwrap();
        check_one(alg, leaves, root, i, &r);
    }
}

fn check_one(alg: HashAlg, leaves: &[[u8; 32]], root: &[u8], i: usize, r: &[Vec<Vec<u8>>]) {
    let n = leaves.len();
    assert_eq!(r.is_empty(), n == 1, "leaf {i} of {n}");
    for (level, list) in r.iter().enumerate() {
        assert_eq!(list.len(), if level == 0 { 2 } else { 1 });
    }
    if let Some(first) = r.first() {
        assert_eq!(first[0], leaves[i], "leaf {i} of {n} first in its list");
    }
    assert_eq!(
        root_of_reduced(alg, &leaves[i], r).as_deref(),
        Some(root),
        "leaf {i} of {n}"
    );
}

#[test]
fn roots_equal_the_reference_for_every_size_to_2100() {
    let alg = HashAlg::Sha256;
    let all = leaves(7, 2100);
    let mut memo = HashMap::new();
    // Roots of the full blocks, computed as each block fills.
    let mut full: Vec<Vec<u8>> = Vec::new();
    for n in 1..=2100 {
        let want = reference_root_memo(alg, &all, 0, n, &mut memo);
        let last = &all[full.len() * BLOCK_LEAVES..n];
        let mut roots = full.clone();
        roots.push(block_root(alg, last).unwrap());
        assert_eq!(root_of_blocks(alg, &roots).unwrap(), want, "{n} leaves");
        if n <= BLOCK_LEAVES {
            assert_eq!(block_root(alg, &all[..n]).unwrap(), want, "{n} leaves");
        }
        if last.len() == BLOCK_LEAVES {
            full = roots;
        }
    }
    // Over more than a block, block_root is the whole tree's root too.
    assert_eq!(block_root(alg, &all).unwrap(), reference_root(alg, &all));
}

#[test]
fn one_leaf_batch_is_its_own_root_without_a_tree() {
    let l = leaves(1, 1);
    let root = root_of_blocks(HashAlg::Sha256, &block_roots(HashAlg::Sha256, &l)).unwrap();
    assert_eq!(root, l[0]);
    assert!(
        reduced_hashtree(HashAlg::Sha256, &l, &[root], 0)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn sha384_and_sha512_trees() {
    for alg in [HashAlg::Sha384, HashAlg::Sha512] {
        let l: Vec<Vec<u8>> = (0u32..1500).map(|i| alg.digest(&i.to_be_bytes())).collect();
        let roots: Vec<Vec<u8>> = l
            .chunks(BLOCK_LEAVES)
            .map(|b| block_root(alg, b).unwrap())
            .collect();
        let root = root_of_blocks(alg, &roots).unwrap();
        assert_eq!(root.len(), alg.len());
        for i in [0usize, 1023, 1024, 1499] {
            let block = l.chunks(BLOCK_LEAVES).nth(i / BLOCK_LEAVES).unwrap();
            let r = reduced_hashtree(alg, block, &roots, i as u64).unwrap();
            assert_eq!(root_of_reduced(alg, &l[i], &r), Some(root.clone()));
        }
    }
}

#[test]
fn a_leaf_not_in_the_first_list_reaches_nothing() {
    let l = leaves(3, 9);
    let roots = block_roots(HashAlg::Sha256, &l);
    let r = reduced_hashtree(HashAlg::Sha256, &l, &roots, 4).unwrap();
    assert_eq!(
        root_of_reduced(HashAlg::Sha256, &l[5], &r),
        Some(roots[0].clone())
    );
    assert_eq!(root_of_reduced(HashAlg::Sha256, &l[6], &r), None);
    assert_eq!(
        tree::node(HashAlg::Sha256, &l[4], &l[5]),
        tree::node(HashAlg::Sha256, &l[5], &l[4])
    );
}

#[test]
fn block_proofs_refuse_what_reduced_hashtree_refuses() {
    let l = leaves(5, 1030);
    let roots = block_roots(HashAlg::Sha256, &l);
    let p = BlockProofs::new(HashAlg::Sha256, &l[1024..], &roots, 1).unwrap();
    assert_eq!(p.batch_root(), reference_root(HashAlg::Sha256, &l));
    assert_eq!(
        p.reduced_hashtree(3),
        Err(Error::IndexOutOfRange {
            index: 3,
            leaves: 1030
        })
    );
    assert_eq!(
        p.reduced_hashtree(1030),
        Err(Error::IndexOutOfRange {
            index: 1030,
            leaves: 1030
        })
    );
    // Another block's leaves, and a block of the batch given as block 2.
    assert_eq!(
        BlockProofs::new(HashAlg::Sha256, &l[..1024], &roots, 1).unwrap_err(),
        Error::BlockMismatch { block: 1 }
    );
    assert!(matches!(
        reduced_hashtree(HashAlg::Sha256, &l[1024..], &roots, 2048),
        Err(Error::IndexOutOfRange { index: 2048, .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// For random batch sizes, every leaf's reduced tree reaches the root.
    #[test]
    fn every_leaf_reaches_the_root(n in 1usize..3000, salt: u64) {
        let l = leaves(salt, n);
        let root = root_of_blocks(HashAlg::Sha256, &block_roots(HashAlg::Sha256, &l)).unwrap();
        prop_assert_eq!(&root, &reference_root(HashAlg::Sha256, &l));
        let roots = block_roots(HashAlg::Sha256, &l);
        for (b, chunk) in l.chunks(BLOCK_LEAVES).enumerate() {
            let p = BlockProofs::new(HashAlg::Sha256, chunk, &roots, b as u64).unwrap();
            for i in b * BLOCK_LEAVES..b * BLOCK_LEAVES + chunk.len() {
                check_one(HashAlg::Sha256, &l, &root, i, &p.reduced_hashtree(i as u64).unwrap());
            }
        }
        // The one-shot function agrees, at the first, middle and last leaf.
        check_proofs(HashAlg::Sha256, &l, &root, [0, n / 2, n - 1].into_iter());
    }
}

/// Batches of 1,023 to 1,025 and 10,000 leaves: first, last, middle and block edges.
#[test]
fn proofs_at_block_edges() {
    for n in [1023usize, 1024, 1025, 2048, 2049, 10_000] {
        let l = leaves(n as u64, n);
        let root = reference_root(HashAlg::Sha256, &l);
        let mut which = vec![0, n / 2, n - 1];
        for b in (BLOCK_LEAVES..n).step_by(BLOCK_LEAVES) {
            which.extend([b - 1, b]);
        }
        check_proofs(HashAlg::Sha256, &l, &root, which.into_iter());
    }
}
