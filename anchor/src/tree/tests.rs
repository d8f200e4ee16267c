//! Unit tests of `tree` (the module's private `Tree` and `Level` are in reach).
#![allow(clippy::unwrap_used, reason = "tests")]
use super::*;

fn leaves(n: usize) -> Vec<[u8; 32]> {
    (0..n)
        .map(|i| {
            let d = HashAlg::Sha256.digest(&(i as u64).to_be_bytes());
            d.try_into().unwrap()
        })
        .collect()
}

#[test]
fn node_sorts_its_children() {
    let a = [1u8; 32];
    let b = [2u8; 32];
    let mut cat = a.to_vec();
    cat.extend_from_slice(&b);
    let want = HashAlg::Sha256.digest(&cat);
    assert_eq!(node(HashAlg::Sha256, &a, &b), want);
    assert_eq!(node(HashAlg::Sha256, &b, &a), want);
    assert_eq!(node(HashAlg::Sha512, &b, &a).len(), 64);
}

#[test]
fn empty_and_single() {
    assert_eq!(block_root::<[u8; 32]>(HashAlg::Sha256, &[]), None);
    let l = leaves(1);
    assert_eq!(block_root(HashAlg::Sha256, &l), Some(l[0].to_vec()));
    let r = reduced_hashtree(HashAlg::Sha256, &l, &[l[0].to_vec()], 0).unwrap();
    assert!(r.is_empty());
}

#[test]
fn a_root_does_not_keep_its_level_buffer() {
    // The batcher keeps one root per block of a batch: each must cost its hash, not
    // the block's 32 KiB (the close of 1,000,000 leaves held 31 MiB of them).
    let root = block_root(HashAlg::Sha256, &leaves(BLOCK_LEAVES)).unwrap();
    assert_eq!(root.len(), 32);
    assert_eq!(root.capacity(), 32);
    let root = root_of_blocks(HashAlg::Sha384, &[[7u8; 48]; 3]).unwrap();
    assert_eq!(root.capacity(), 48);
}

#[test]
fn odd_node_is_carried_up_not_duplicated() {
    let l = leaves(5);
    let n01 = node(HashAlg::Sha256, &l[0], &l[1]);
    let n23 = node(HashAlg::Sha256, &l[2], &l[3]);
    let n0123 = node(HashAlg::Sha256, &n01, &n23);
    let root = node(HashAlg::Sha256, &n0123, &l[4]);
    assert_eq!(block_root(HashAlg::Sha256, &l).unwrap(), root);
    let r = reduced_hashtree(HashAlg::Sha256, &l, std::slice::from_ref(&root), 4).unwrap();
    assert_eq!(r, vec![vec![l[4].to_vec(), n0123.clone()]]);
    let r = reduced_hashtree(HashAlg::Sha256, &l, std::slice::from_ref(&root), 2).unwrap();
    assert_eq!(
        r,
        vec![
            vec![l[2].to_vec(), l[3].to_vec()],
            vec![n01],
            vec![l[4].to_vec()]
        ]
    );
    assert_eq!(root_of_reduced(HashAlg::Sha256, &l[2], &r), Some(root));
}

#[test]
fn wrong_lengths_and_indices_are_errors() {
    let l = leaves(3);
    assert_eq!(block_root(HashAlg::Sha384, &l), None);
    let root = block_root(HashAlg::Sha256, &l).unwrap();
    assert_eq!(
        reduced_hashtree(HashAlg::Sha256, &l, std::slice::from_ref(&root), 3),
        Err(Error::IndexOutOfRange {
            index: 3,
            leaves: 3
        })
    );
    assert_eq!(
        reduced_hashtree(HashAlg::Sha256, &l, std::slice::from_ref(&root), 1024),
        Err(Error::IndexOutOfRange {
            index: 1024,
            leaves: 1024
        })
    );
    assert_eq!(
        reduced_hashtree(HashAlg::Sha256, &l[..2], std::slice::from_ref(&root), 0),
        Err(Error::BlockMismatch { block: 0 })
    );
    // A non-final block must be full.
    assert_eq!(
        reduced_hashtree(HashAlg::Sha256, &l, &[root.clone(), root.clone()], 0),
        Err(Error::BlockMismatch { block: 0 })
    );
    assert_eq!(
        reduced_hashtree(HashAlg::Sha384, &l, &[root], 0),
        Err(Error::HashLength { got: 32, want: 48 })
    );
    assert_eq!(root_of_reduced(HashAlg::Sha256, &[0; 32], &[vec![]]), None);
}

#[test]
fn proofs_across_blocks_reach_the_root() {
    let l = leaves(2 * BLOCK_LEAVES + 3);
    let blocks: Vec<Vec<u8>> = l
        .chunks(BLOCK_LEAVES)
        .map(|b| block_root(HashAlg::Sha256, b).unwrap())
        .collect();
    let root = root_of_blocks(HashAlg::Sha256, &blocks).unwrap();
    assert_eq!(block_root(HashAlg::Sha256, &l).unwrap(), root);
    for i in [0, 1, 1023, 1024, 2047, 2048, 2050] {
        let b = i / BLOCK_LEAVES;
        let chunk = l.chunks(BLOCK_LEAVES).nth(b).unwrap();
        let r = reduced_hashtree(HashAlg::Sha256, chunk, &blocks, i as u64).unwrap();
        assert_eq!(root_of_reduced(HashAlg::Sha256, &l[i], &r).unwrap(), root);
    }
}

#[test]
fn a_shared_block_roots_tree_gives_the_same_proofs() {
    let l = leaves(2 * BLOCK_LEAVES + 3);
    let blocks: Vec<Vec<u8>> = l
        .chunks(BLOCK_LEAVES)
        .map(|b| block_root(HashAlg::Sha256, b).unwrap())
        .collect();
    let roots = std::sync::Arc::new(BlockRootsTree::new(HashAlg::Sha256, &blocks).unwrap());
    assert_eq!(roots.blocks(), 3);
    assert_eq!(
        roots.root(),
        root_of_blocks(HashAlg::Sha256, &blocks).unwrap().as_slice()
    );
    for i in [0, 1, 1023, 1024, 2047, 2048, 2050] {
        let b = i / BLOCK_LEAVES;
        let chunk = l.chunks(BLOCK_LEAVES).nth(b).unwrap();
        let shared = BlockProofs::with_roots(HashAlg::Sha256, chunk, roots.clone(), b as u64)
            .unwrap()
            .reduced_hashtree(i as u64)
            .unwrap();
        let own = reduced_hashtree(HashAlg::Sha256, chunk, &blocks, i as u64).unwrap();
        assert_eq!(shared, own, "leaf {i}");
    }
    // Another block's leaves, a block past the end and a short middle block are refused.
    let first = &l[..BLOCK_LEAVES];
    assert!(matches!(
        BlockProofs::with_roots(HashAlg::Sha256, first, roots.clone(), 1),
        Err(Error::BlockMismatch { block: 1 })
    ));
    assert!(matches!(
        BlockProofs::with_roots(HashAlg::Sha256, first, roots.clone(), 3),
        Err(Error::IndexOutOfRange { .. })
    ));
    assert!(matches!(
        BlockProofs::with_roots(HashAlg::Sha256, &first[..10], roots, 0),
        Err(Error::BlockMismatch { block: 0 })
    ));
    assert!(BlockRootsTree::new::<[u8; 32]>(HashAlg::Sha256, &[]).is_err());
}

/// Bouncy Castle 1.72 writes every sibling in a list of its own, `[{h}, {s1}, {s2}]`:
/// the lone first value is the leaf itself (docs/requirements.md F.63a; issue #16's
/// import of records Bouncy Castle made).
#[test]
fn a_lone_first_value_is_the_leaf_itself() {
    let l = leaves(3);
    let root = block_root(HashAlg::Sha256, &l).unwrap();
    let bc = vec![
        vec![l[0].to_vec()],
        vec![l[1].to_vec()],
        vec![l[2].to_vec()],
    ];
    assert_eq!(root_of_reduced(HashAlg::Sha256, &l[0], &bc), Some(root));
    assert_eq!(root_of_reduced(HashAlg::Sha256, &l[1], &bc), None);
}
