//! Evidence records made by `hanko_anchor::evidence` over real batches, with real RFC
//! 3161 tokens from the in-process TSA (RSA-3072 and P-256 keys in SoftHSM), checked by
//! Bouncy Castle's RFC 4998 implementation (`tests/java/ErsCheck.java`, run by
//! `hanko_anchor::test_support` with Debian's libbcprov-java and libbcpkix-java): valid for the data, invalid for the data with one
//! byte changed, time-stamp signatures valid. Our own `check` and hanko-client's token
//! verification run on the same records.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use hanko_anchor::evidence::{
    self, hash_tree_renewal_hash, renew_hash_tree, renew_time_stamp, time_stamp_renewal_hash,
};
use hanko_anchor::test_support::{BcCase, assert_bouncy_castle_accepts, bouncy_castle};
use hanko_anchor::tree::{BLOCK_LEAVES, BlockProofs, block_root, root_of_blocks};
use hanko_anchor::{HashAlg, check, check_data, evidence_record};

use crate::common::{Kind, fixture, verify_token};

/// One record for Bouncy Castle.
struct Case {
    name: String,
    er: Vec<u8>,
    data: Vec<u8>,
    kind: Kind,
}

/// The data objects of a batch of `n`, distinct per batch.
fn objects(tag: &str, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("hanko anchor test object {tag} {n} #{i}").into_bytes())
        .collect()
}

/// A batch of `n` objects stamped by TSA `kind`: the records of the leaves in `which`.
fn batch_cases(kind: Kind, alg: HashAlg, n: usize, which: &[usize]) -> Vec<Case> {
    let f = fixture();
    let tag = format!("{kind:?}-{alg:?}");
    let data = objects(&tag, n);
    let leaves: Vec<Vec<u8>> = data.iter().map(|d| alg.digest(d)).collect();
    let roots: Vec<Vec<u8>> = leaves
        .chunks(BLOCK_LEAVES)
        .map(|b| block_root(alg, b).unwrap())
        .collect();
    let root = root_of_blocks(alg, &roots).unwrap();
    let token = f.stamp(kind, alg, &root);
    verify_token(&token, &root).unwrap();
    let mut cases = Vec::new();
    for &i in which {
        let block = i / BLOCK_LEAVES;
        let chunk = leaves.chunks(BLOCK_LEAVES).nth(block).unwrap();
        let proofs = BlockProofs::new(alg, chunk, &roots, block as u64).unwrap();
        let reduced = proofs.reduced_hashtree(i as u64).unwrap();
        let er = evidence_record(alg, &reduced, &token).unwrap();
        // Our own check agrees, and refuses the changed data.
        let checked = check(&er, &leaves[i]).unwrap();
        assert_eq!(checked.root, root);
        assert_eq!(checked.time_stamps.len(), 1);
        assert_eq!(checked.time_stamps[0].token_der, token);
        let mut changed = data[i].clone();
        let mid = changed.len() / 2;
        changed[mid] ^= 1;
        assert!(check_data(&er, &changed).is_err());
        cases.push(Case {
            name: format!("{tag} n={n} leaf={i}"),
            er,
            data: data[i].clone(),
            kind,
        });
    }
    cases
}

/// First, middle, last and both sides of every block edge.
fn leaves_to_check(n: usize) -> Vec<usize> {
    let mut which = vec![0, n / 2, n - 1];
    for b in (BLOCK_LEAVES..n).step_by(BLOCK_LEAVES) {
        which.extend([b - 1, b]);
    }
    which.sort_unstable();
    which.dedup();
    which
}

/// Writes `cases` into a fresh directory, for Bouncy Castle (hanko-anchor's
/// test-support runner of ErsCheck.java): that directory and the cases as files.
fn write_cases(cases: &[Case]) -> (PathBuf, Vec<BcCase>) {
    let f = fixture();
    let dir = tempfile_dir("bc");
    let files: Vec<BcCase> = cases
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let record = dir.join(format!("{k}.ers"));
            let data = dir.join(format!("{k}.bin"));
            let tsa_cert = dir.join(format!("{:?}.pem", c.kind));
            std::fs::write(&record, &c.er).unwrap();
            std::fs::write(&data, &c.data).unwrap();
            std::fs::write(&tsa_cert, f.tsa_cert(c.kind).to_pem()).unwrap();
            BcCase {
                name: c.name.clone(),
                record,
                data,
                tsa_cert,
            }
        })
        .collect();
    (dir, files)
}

/// A fresh directory under the fixture's, unique per call (tests run in parallel).
fn tempfile_dir(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let d = fixture().path(&format!("{name}-{}", NEXT.fetch_add(1, Ordering::Relaxed)));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn assert_all_valid(cases: &[Case]) {
    let (dir, files) = write_cases(cases);
    assert_bouncy_castle_accepts(&dir, &files);
}

#[test]
fn bouncy_castle_accepts_our_records_and_refuses_changed_data() {
    let mut cases = Vec::new();
    for kind in Kind::ALL {
        for n in [1usize, 2, 3, 7, 1023, 1025, 10_000] {
            cases.extend(batch_cases(kind, HashAlg::Sha256, n, &leaves_to_check(n)));
        }
    }
    // A SHA-384 tree: leaves, nodes and the token's imprint all SHA-384.
    cases.extend(batch_cases(Kind::P256, HashAlg::Sha384, 5, &[0, 2, 4]));
    assert_all_valid(&cases);
}

/// Renewals (rules 65 and 66) as Bouncy Castle 1.72 reads them: a new time-stamp over the
/// hash of the last one's ContentInfo, appended to the chain; a new chain over
/// H(H(d) || H(ArchiveTimeStampSequence)).
#[test]
fn bouncy_castle_accepts_our_renewals() {
    let f = fixture();
    let mut cases = Vec::new();
    for kind in Kind::ALL {
        for base in batch_cases(kind, HashAlg::Sha256, 3, &[0, 2]) {
            let (alg, hash) = time_stamp_renewal_hash(&base.er).unwrap();
            assert_eq!(alg, HashAlg::Sha256);
            let renewed = renew_time_stamp(&base.er, &[], &f.stamp(kind, alg, &hash)).unwrap();
            let checked = check_data(&renewed, &base.data).unwrap();
            assert_eq!(checked.time_stamps.len(), 2);
            for ts in &checked.time_stamps {
                verify_token(&ts.token_der, &ts.imprint).unwrap();
            }

            let d = HashAlg::Sha512.digest(&base.data);
            let h = hash_tree_renewal_hash(&renewed, HashAlg::Sha512, &d).unwrap();
            let token = f.stamp(kind, HashAlg::Sha512, &h);
            let rehashed = renew_hash_tree(&renewed, HashAlg::Sha512, &d, &[], &token).unwrap();
            let checked = check_data(&rehashed, &base.data).unwrap();
            assert_eq!(checked.time_stamps.len(), 3);
            assert_eq!(checked.time_stamps[2].alg, HashAlg::Sha512);
            // One hash is not enough once a chain uses another algorithm.
            assert_eq!(
                check(&rehashed, &HashAlg::Sha256.digest(&base.data)).unwrap_err(),
                hanko_anchor::Error::DataNeeded(HashAlg::Sha512)
            );
            // Without the data (a renewal service): the first chain from the hash the
            // record names, later chains from the hashes given.
            let leaf = HashAlg::Sha256.digest(&base.data);
            assert_eq!(
                evidence::check_hashes(&renewed, &[]).unwrap(),
                check(&renewed, &leaf).unwrap()
            );
            assert_eq!(
                evidence::check_hashes(&rehashed, &[]).unwrap_err(),
                hanko_anchor::Error::DataNeeded(HashAlg::Sha512)
            );
            assert_eq!(
                evidence::check_hashes(&rehashed, &[(HashAlg::Sha512, d.clone())]).unwrap(),
                check_data(&rehashed, &base.data).unwrap()
            );
            assert!(evidence::check_hashes(&rehashed, &[(HashAlg::Sha512, vec![0; 64])]).is_err());
            assert!(evidence::check_hashes(&renewed, &[(HashAlg::Sha256, vec![0; 32])]).is_err());
            let er = evidence::EvidenceRecord::from_der(&rehashed).unwrap();
            assert_eq!(er.digest_algorithms.len(), 2);
            cases.push(Case {
                name: format!("{} renewed", base.name),
                er: renewed,
                data: base.data.clone(),
                kind,
            });
            cases.push(Case {
                name: format!("{} rehashed", base.name),
                er: rehashed,
                data: base.data,
                kind,
            });
        }
    }
    assert_all_valid(&cases);
}

/// The controls: records whose tree or token does not lead to the data are refused by
/// Bouncy Castle (so its "valid" above means something) and by our check.
#[test]
fn bouncy_castle_refuses_broken_records() {
    let f = fixture();
    let mut cases = Vec::new();
    for base in batch_cases(Kind::P256, HashAlg::Sha256, 9, &[4]) {
        let leaf = HashAlg::Sha256.digest(&base.data);
        // A sibling changed: the data is found, the root is not the token's imprint.
        let mut er = evidence::EvidenceRecord::from_der(&base.er).unwrap();
        let tree = er.archive_time_stamp_sequence[0][0]
            .reduced_hashtree
            .as_mut()
            .unwrap();
        let last = tree.last_mut().unwrap();
        let mut v = last[0].to_vec();
        v[0] ^= 0x80;
        last[0] = v.into();
        let sibling = er.to_der().unwrap();
        assert_eq!(
            check(&sibling, &leaf).unwrap_err(),
            hanko_anchor::Error::ImprintMismatch { chain: 0, index: 0 }
        );
        // A real token over another root in place of the right one.
        let mut er = evidence::EvidenceRecord::from_der(&base.er).unwrap();
        let other = f.stamp(
            Kind::P256,
            HashAlg::Sha256,
            &HashAlg::Sha256.digest(b"other"),
        );
        er.archive_time_stamp_sequence[0][0].time_stamp = rasn::types::Any::new(other);
        let token = er.to_der().unwrap();
        assert_eq!(
            check(&token, &leaf).unwrap_err(),
            hanko_anchor::Error::ImprintMismatch { chain: 0, index: 0 }
        );
        for (what, er) in [
            ("sibling changed", sibling),
            ("token over another root", token),
        ] {
            cases.push(Case {
                name: format!("{} {what}", base.name),
                er,
                data: base.data.clone(),
                kind: Kind::P256,
            });
        }
    }
    let (dir, files) = write_cases(&cases);
    for v in bouncy_castle(&dir, &files) {
        assert!(v.right.starts_with("invalid"), "{}: {}", v.name, v.right);
    }
}

/// Records Bouncy Castle 1.72 made itself (another product: its own TSA, one tree over
/// 1, 3 and 5 objects, each sibling in a list of its own) check against their data and
/// refuse changed data (docs/requirements.md F.63a, issue #16's import).
#[test]
fn records_bouncy_castle_made_check_against_their_data() {
    use hanko_anchor::test_support::bouncy_castle_make;
    for n in [1usize, 3, 5] {
        let dir = tempfile_dir("bc-made");
        let data: Vec<PathBuf> = objects(&format!("bc-made-{n}"), n)
            .into_iter()
            .enumerate()
            .map(|(i, d)| {
                let p = dir.join(format!("object-{i}.bin"));
                std::fs::write(&p, d).unwrap();
                p
            })
            .collect();
        let made = bouncy_castle_make(&dir, &dir.join("out"), &data);
        for (record, file) in made.records.iter().zip(&data) {
            let er = std::fs::read(record).unwrap();
            let d = std::fs::read(file).unwrap();
            let checked = check_data(&er, &d).unwrap_or_else(|e| panic!("n={n}: {e}"));
            assert_eq!(checked.time_stamps.len(), 1);
            assert_eq!(evidence::check_hashes(&er, &[]).unwrap(), checked);
            let mut changed = d.clone();
            changed[0] ^= 1;
            assert!(check_data(&er, &changed).is_err(), "n={n}");
        }
    }
}
