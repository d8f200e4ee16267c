//! Evidence records (RFC 4998) from a reference producer written here: a batch of five
//! objects, a Merkle tree with sorted concatenation, the batch's archive time-stamp, a
//! time-stamp renewal (in a renewal tree of two) and a hash-tree renewal to SHA-512 (its
//! first list holding the renewal hash alone, as Bouncy Castle writes it), each token
//! by a software-key TSA. The well-formed record passes every check; each broken one
//! fails exactly the check its defect breaks and no other.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod tsa_producer;

use std::collections::BTreeSet;
use std::process::Command;

use hanko_conformance::crypto::Hash;
use hanko_conformance::der;
use hanko_conformance::evidence;
use hanko_conformance::report::{Findings, Outcome};
use tsa_producer::{Tsa, YEAR, now};

/// One defect of the corpus (or none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Defect {
    None,
    /// A sibling of the batch tree's proof changed after the root was time-stamped.
    WrongSibling,
    /// The batch tree built with H(left || right), not sorted concatenation.
    UnsortedTree,
    /// The time-stamp renewal over H(the whole previous ArchiveTimeStamp), not H(its
    /// timeStamp).
    TimeStampRenewalOverWrongBytes,
    /// The hash-tree renewal over H(H(d) || H(the previous chain)), not H(the sequence).
    HashTreeRenewalOverWrongBytes,
    /// The first time-stamp's certificate expired before the renewal.
    RenewedTooLate,
    /// The renewal's genTime before the first time-stamp's.
    GenTimeOutOfOrder,
}

/// The check each defect must fail, alone.
fn check_broken_by(d: Defect) -> &'static str {
    match d {
        Defect::None => "",
        Defect::WrongSibling => "er-root",
        Defect::UnsortedTree => "er-sorted-concatenation",
        Defect::TimeStampRenewalOverWrongBytes => "er-time-stamp-renewal",
        Defect::HashTreeRenewalOverWrongBytes => "er-hash-tree-renewal",
        Defect::RenewedTooLate => "er-validity-at-renewal",
        Defect::GenTimeOutOfOrder => "er-gen-time-order",
    }
}

fn node(h: Hash, a: &[u8], b: &[u8], sorted: bool) -> Vec<u8> {
    if sorted && a > b {
        h.digest(&[b, a].concat())
    } else {
        h.digest(&[a, b].concat())
    }
}

/// The root of the binary tree over `leaves` (an odd node carried up) and the reduced
/// hash tree of leaf `k` in Hanko's form: `[{leaf, sibling}, {sibling}, ...]`, empty for
/// a one-leaf tree.
fn tree(h: Hash, leaves: &[Vec<u8>], k: usize, sorted: bool) -> (Vec<u8>, Vec<Vec<Vec<u8>>>) {
    let mut level = leaves.to_vec();
    let mut idx = k;
    let mut siblings = Vec::new();
    while level.len() > 1 {
        if idx ^ 1 < level.len() {
            siblings.push(level[idx ^ 1].clone());
        }
        level = level
            .chunks(2)
            .map(|p| match p {
                [a, b] => node(h, a, b, sorted),
                [a] => a.clone(),
                _ => unreachable!(),
            })
            .collect();
        idx /= 2;
    }
    let mut lists = Vec::new();
    for (i, s) in siblings.into_iter().enumerate() {
        if i == 0 {
            lists.push(vec![leaves[k].clone(), s]);
        } else {
            lists.push(vec![s]);
        }
    }
    (level.remove(0), lists)
}

/// An ArchiveTimeStamp: [0] digestAlgorithm, [2] reducedHashtree (absent when empty),
/// timeStamp (RFC 4998 §4.1, IMPLICIT tags).
fn ats(h: Hash, lists: &[Vec<Vec<u8>>], token: &[u8]) -> Vec<u8> {
    let mut parts = vec![der::tlv(0xa0, &der::oid(h.oid()))];
    if !lists.is_empty() {
        let encoded: Vec<Vec<u8>> = lists
            .iter()
            .map(|l| {
                let values: Vec<Vec<u8>> = l.iter().map(|v| der::octets(v)).collect();
                let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
                der::seq(&refs)
            })
            .collect();
        parts.push(der::tlv(0xa2, &encoded.concat()));
    }
    parts.push(token.to_vec());
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    der::seq(&refs)
}

/// The record of object `k` of `data` with `defect`: chain 1 holds the batch's
/// time-stamp and a time-stamp renewal (SHA-256), chain 2 a hash-tree renewal (SHA-512).
fn record(tsa: &Tsa, data: &[&[u8]], k: usize, defect: Defect) -> Vec<u8> {
    let t = now();
    let leaves: Vec<Vec<u8>> = data.iter().map(|d| Hash::Sha256.digest(d)).collect();
    let (root, mut proof) = tree(Hash::Sha256, &leaves, k, defect != Defect::UnsortedTree);
    if defect == Defect::UnsortedTree {
        let (sorted_root, _) = tree(Hash::Sha256, &leaves, k, true);
        assert_ne!(root, sorted_root, "the unsorted tree must differ");
    }
    if defect == Defect::WrongSibling {
        proof[1][0][0] ^= 0x01;
    }
    let (unit1, gen1) = if defect == Defect::RenewedTooLate {
        (&tsa.expired, t - 2 * YEAR.as_secs() as i64)
    } else {
        (&tsa.current, t - 300)
    };
    let tok1 = tsa.token(unit1, Hash::Sha256, &root, 101, gen1);
    let ats1 = ats(Hash::Sha256, &proof, &tok1);

    // Time-stamp renewal: H(the previous timeStamp) in a renewal tree of two.
    let renewed = if defect == Defect::TimeStampRenewalOverWrongBytes {
        Hash::Sha256.digest(&ats1)
    } else {
        Hash::Sha256.digest(&tok1)
    };
    let other = Hash::Sha256.digest(b"another chain renewed in the same run");
    let (root2, proof2) = tree(Hash::Sha256, &[renewed, other], 0, true);
    let gen2 = if defect == Defect::GenTimeOutOfOrder {
        gen1 - 50
    } else {
        t - 200
    };
    let tok2 = tsa.token(&tsa.current, Hash::Sha256, &root2, 102, gen2);
    let ats2 = ats(Hash::Sha256, &proof2, &tok2);
    let chain1 = der::seq(&[&ats1, &ats2]);

    // Hash-tree renewal to SHA-512: H(H(d) || H(DER of the sequence so far)).
    let ha = if defect == Defect::HashTreeRenewalOverWrongBytes {
        Hash::Sha512.digest(&chain1)
    } else {
        Hash::Sha512.digest(&der::seq(&[&chain1]))
    };
    let renewal = Hash::Sha512.digest(&[Hash::Sha512.digest(data[k]), ha].concat());
    let sibling = Hash::Sha512.digest(b"a sibling in the renewal tree");
    let root3 = node(Hash::Sha512, &renewal, &sibling, true);
    let tok3 = tsa.token(&tsa.current, Hash::Sha512, &root3, 103, t - 100);
    // Bouncy Castle's form: the renewal hash alone in the first list.
    let ats3 = ats(Hash::Sha512, &[vec![renewal], vec![sibling]], &tok3);
    let chain2 = der::seq(&[&ats3]);

    der::seq(&[
        &der::uint_u64(1),
        &der::seq(&[
            &der::alg_id(Hash::Sha256.oid()),
            &der::alg_id(Hash::Sha512.oid()),
        ]),
        &der::seq(&[&chain1, &chain2]),
    ])
}

const DATA: [&[u8]; 5] = [
    b"object one",
    b"object two",
    b"object three",
    b"object four",
    b"object five",
];

fn with(f: &Findings, o: Outcome) -> BTreeSet<&'static str> {
    f.checks(Some(o))
}

/// What a record's check skips when nothing else is missing: the request's fields and
/// the clock, unknown for a token in a file.
const BASELINE_SKIPS: [&str; 4] = [
    "nonce",
    "certificates-certreq",
    "gen-time-clock",
    "qc-statements",
];

fn run(ers: &[u8], data: Option<&[u8]>, hashes: &[(String, Vec<u8>)], ca: &[Vec<u8>]) -> Findings {
    let mut f = Findings::new();
    evidence::check(ers, hashes, data, ca, &mut f);
    f
}

#[tokio::test(flavor = "current_thread")]
async fn each_defect_fails_its_own_check_and_no_other() {
    let tsa = Tsa::new().await;
    let ca = vec![tsa.root_der()];
    let k = 3;

    let good = record(&tsa, &DATA, k, Defect::None);
    let f = run(&good, Some(DATA[k]), &[], &ca);
    assert!(with(&f, Outcome::Fail).is_empty(), "{:#?}", f.list());
    assert_eq!(
        with(&f, Outcome::Skip),
        BTreeSet::from(BASELINE_SKIPS),
        "{:#?}",
        f.list()
    );
    let baseline: BTreeSet<_> = f.list().iter().map(|x| x.check).collect();
    for c in [
        "er-structure",
        "er-version",
        "er-digest-algorithms",
        "er-root",
        "er-sorted-concatenation",
        "er-data-hash",
        "er-time-stamp-renewal",
        "er-hash-tree-renewal",
        "er-chain-algorithm",
        "er-gen-time-order",
        "er-validity-at-renewal",
        "signature",
        "certificate-chain",
        "message-imprint",
    ] {
        assert_eq!(f.outcome(c), Some(Outcome::Pass), "{c}: {:#?}", f.list());
    }

    for defect in [
        Defect::WrongSibling,
        Defect::UnsortedTree,
        Defect::TimeStampRenewalOverWrongBytes,
        Defect::HashTreeRenewalOverWrongBytes,
        Defect::RenewedTooLate,
        Defect::GenTimeOutOfOrder,
    ] {
        let ers = record(&tsa, &DATA, k, defect);
        let f = run(&ers, Some(DATA[k]), &[], &ca);
        let want = check_broken_by(defect);
        assert_eq!(
            with(&f, Outcome::Fail),
            BTreeSet::from([want]),
            "{defect:?} must fail {want} alone: {:#?}",
            f.list()
        );
        assert_eq!(
            with(&f, Outcome::Skip),
            BTreeSet::from(BASELINE_SKIPS),
            "{defect:?}: {:#?}",
            f.list()
        );
        let all: BTreeSet<_> = f.list().iter().map(|x| x.check).collect();
        assert_eq!(all, baseline, "{defect:?} ran another set of checks");
        // The FAIL names the archive time-stamp.
        let detail = &f.list().iter().find(|x| x.check == want).unwrap().detail;
        assert!(detail.contains("chain "), "{defect:?}: {detail}");
    }

    // Data that does not match: the data check alone fails, and the hash-tree renewal
    // (which needs H(d)) is not recomputed.
    let f = run(&good, Some(b"not the archived object"), &[], &ca);
    assert_eq!(
        with(&f, Outcome::Fail),
        BTreeSet::from(["er-data-hash"]),
        "{:#?}",
        f.list()
    );
    let mut skips = BTreeSet::from(BASELINE_SKIPS);
    skips.insert("er-hash-tree-renewal");
    assert_eq!(with(&f, Outcome::Skip), skips, "{:#?}", f.list());
}

#[tokio::test(flavor = "current_thread")]
async fn every_leaf_and_a_one_leaf_batch_pass_and_hashes_stand_for_the_data() {
    let tsa = Tsa::new().await;
    let ca = vec![tsa.root_der()];
    for k in 0..DATA.len() {
        let ers = record(&tsa, &DATA, k, Defect::None);
        let f = run(&ers, Some(DATA[k]), &[], &ca);
        assert!(
            with(&f, Outcome::Fail).is_empty(),
            "leaf {k}: {:#?}",
            f.list()
        );
        // Another leaf's data is not this record's (two leaves on: never its sibling).
        let other = run(&ers, Some(DATA[(k + 2) % DATA.len()]), &[], &ca);
        assert_eq!(
            with(&other, Outcome::Fail),
            BTreeSet::from(["er-data-hash"])
        );
        // Its sibling's hash is in the first list (RFC 4998 §4.3 proves both), but the
        // hash-tree renewal was made over this leaf's data: that check finds it out.
        if k % 2 == 0 && k + 1 < DATA.len() {
            let sibling = run(&ers, Some(DATA[k + 1]), &[], &ca);
            assert_eq!(
                with(&sibling, Outcome::Fail),
                BTreeSet::from(["er-hash-tree-renewal"])
            );
        }
    }
    // A one-leaf batch: no reducedHashtree, the token is over H(d) itself.
    let one = record(&tsa, &DATA[..1], 0, Defect::None);
    let f = run(&one, Some(DATA[0]), &[], &ca);
    assert!(with(&f, Outcome::Fail).is_empty(), "{:#?}", f.list());
    assert_eq!(f.outcome("er-data-hash"), Some(Outcome::Pass));

    // The data's hashes instead of the data.
    let ers = record(&tsa, &DATA, 2, Defect::None);
    let hashes = vec![
        (Hash::Sha256.oid().to_owned(), Hash::Sha256.digest(DATA[2])),
        (Hash::Sha512.oid().to_owned(), Hash::Sha512.digest(DATA[2])),
    ];
    let f = run(&ers, None, &hashes, &ca);
    assert!(with(&f, Outcome::Fail).is_empty(), "{:#?}", f.list());
    assert_eq!(f.outcome("er-hash-tree-renewal"), Some(Outcome::Pass));
    // Only the SHA-256 hash: the SHA-512 chain's renewal needs the data.
    let f = run(&ers, None, &hashes[..1], &ca);
    assert!(with(&f, Outcome::Fail).is_empty(), "{:#?}", f.list());
    assert_eq!(f.outcome("er-hash-tree-renewal"), Some(Outcome::Skip));
    // Nothing: consistent, tied to no data; without --ca the chain is not checked.
    let f = run(&ers, None, &[], &[]);
    assert!(with(&f, Outcome::Fail).is_empty(), "{:#?}", f.list());
    assert_eq!(f.outcome("er-data-hash"), Some(Outcome::Skip));
    assert_eq!(f.outcome("certificate-chain"), Some(Outcome::Skip));
}

#[tokio::test(flavor = "current_thread")]
async fn mangled_records_are_refused_without_panic() {
    let tsa = Tsa::new().await;
    let ers = record(&tsa, &DATA, 1, Defect::None);
    // Every truncation, and a flipped bit in every byte of the record's own structure
    // (the first 300 bytes), never panics; a truncated record never passes.
    for n in 0..ers.len() {
        let f = run(&ers[..n], Some(DATA[1]), &[], &[]);
        assert!(!with(&f, Outcome::Fail).is_empty(), "truncated to {n}");
    }
    for i in 0..300.min(ers.len()) {
        let mut m = ers.clone();
        m[i] ^= 0x04;
        let _ = run(&m, Some(DATA[1]), &[], &[]);
    }
    // Another version.
    let mut v2 = ers.clone();
    let pos = 4; // SEQUENCE (long form, 4 octets) then INTEGER 02 01 01
    assert_eq!(&v2[pos..pos + 3], &[0x02, 0x01, 0x01]);
    v2[pos + 2] = 2;
    let f = run(&v2, Some(DATA[1]), &[], &[]);
    assert_eq!(with(&f, Outcome::Fail), BTreeSet::from(["er-version"]));
}

#[tokio::test(flavor = "current_thread")]
async fn the_command_line_reports_and_exits_0_1_2() {
    let tsa = Tsa::new().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("doc.txt"), DATA[3]).unwrap();
    std::fs::write(dir.path().join("root.pem"), tsa.root_pem()).unwrap();
    std::fs::write(
        dir.path().join("good.ers"),
        record(&tsa, &DATA, 3, Defect::None),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("bad.ers"),
        record(&tsa, &DATA, 3, Defect::WrongSibling),
    )
    .unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_hanko-conformance"))
            .current_dir(dir.path())
            .arg("evidence")
            .args(args)
            .output()
            .unwrap()
    };
    let ok = run(&[
        "good.ers", "--data", "doc.txt", "--ca", "root.pem", "--html", "r.html",
    ]);
    let text = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(ok.status.code(), Some(0), "{text}");
    assert!(text.contains("PASS F.66   er-hash-tree-renewal"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("input good.ers sha256:")),
        "{text}"
    );
    assert!(
        std::fs::read_to_string(dir.path().join("r.html"))
            .unwrap()
            .contains("conforms")
    );

    let sha256 = format!("sha256:{}", hex::encode(Hash::Sha256.digest(DATA[3])));
    let sha512 = format!("sha512:{}", hex::encode(Hash::Sha512.digest(DATA[3])));
    let hashed = run(&[
        "good.ers",
        "--data-hash",
        &sha256,
        "--data-hash",
        &sha512,
        "--json",
    ]);
    assert_eq!(hashed.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&hashed.stdout).unwrap();
    assert_eq!(json["summary"]["failed"], 0);

    let bad = run(&["bad.ers", "--data", "doc.txt", "--ca", "root.pem", "--json"]);
    assert_eq!(bad.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&bad.stdout).unwrap();
    let fails: Vec<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["outcome"] == "FAIL")
        .map(|f| f["check"].as_str().unwrap())
        .collect();
    assert_eq!(fails, ["er-root"]);

    let missing = run(&["/nonexistent.ers"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent.ers"));
    let bad_hash = run(&["good.ers", "--data-hash", "sha256:abcd"]);
    assert_eq!(bad_hash.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_hash.stderr).contains("--data-hash"));
}

/// Debian's Bouncy Castle 1.72 jars (libbcpkix-java), as hanko-anchor's tests use them.
const BC_JARS: [&str; 3] = [
    "/usr/share/java/bcprov.jar",
    "/usr/share/java/bcpkix.jar",
    "/usr/share/java/bcutil.jar",
];

/// Records another product made: Bouncy Castle's `ERSArchiveTimeStampGenerator`
/// (`anchor/tests/java/ErsMake.java`: its own TSA, every sibling in a list of its own,
/// the data hash alone in the first list) pass every check against their data, and
/// fail the data check against another object. Skipped, saying so, where Java or the
/// jars are missing.
#[test]
fn bouncy_castle_records_pass() {
    let javac_ok = Command::new("javac").arg("-version").output().is_ok();
    if !javac_ok || BC_JARS.iter().any(|j| !std::path::Path::new(j).exists()) {
        eprintln!("SKIPPED: javac or Bouncy Castle jars ({BC_JARS:?}) missing");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cp = BC_JARS.join(":");
    let src = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../anchor/tests/java/ErsMake.java"
    );
    let classes = dir.path().join("classes");
    let out = Command::new("javac")
        .args(["-cp", &cp, "-d"])
        .arg(&classes)
        .arg(src)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for n in [1usize, 3, 5] {
        let work = dir.path().join(format!("batch{n}"));
        std::fs::create_dir_all(&work).unwrap();
        let files: Vec<_> = (0..n)
            .map(|i| {
                let p = work.join(format!("d{i}.txt"));
                std::fs::write(&p, format!("object {i} of a Bouncy Castle batch of {n}")).unwrap();
                p
            })
            .collect();
        let run = Command::new("java")
            .arg("-cp")
            .arg(format!("{}:{cp}", classes.display()))
            .arg("ErsMake")
            .arg(&work)
            .args(&files)
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let root = std::fs::read(work.join("root.pem")).unwrap();
        let ca = hanko_conformance::cert::certificates_from_pem_or_der(&root).unwrap();
        for (i, file) in files.iter().enumerate() {
            let data = std::fs::read(file).unwrap();
            let ers = std::fs::read(work.join(format!("d{i}.txt.ers"))).unwrap();
            let f = run_checks(&ers, &data, &ca);
            assert!(
                with(&f, Outcome::Fail).is_empty(),
                "batch of {n}, object {i}: {:#?}",
                f.list()
            );
            assert_eq!(f.outcome("er-root"), Some(Outcome::Pass));
            assert_eq!(f.outcome("er-data-hash"), Some(Outcome::Pass));
            assert_eq!(f.outcome("signature"), Some(Outcome::Pass));
            assert_eq!(f.outcome("certificate-chain"), Some(Outcome::Pass));
            if n > 1 {
                let g = run_checks(&ers, b"another object", &ca);
                assert_eq!(with(&g, Outcome::Fail), BTreeSet::from(["er-data-hash"]));
            }
        }
    }
}

fn run_checks(ers: &[u8], data: &[u8], ca: &[Vec<u8>]) -> Findings {
    run(ers, Some(data), &[], ca)
}
