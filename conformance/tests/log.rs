//! Issuance-log exports from a reference producer written here: JSON lines in the format
//! of `hanko log export --tokens` (store/README.md), the chained hash computed here from
//! its definition, tokens from a software-key TSA. The well-formed export passes every
//! check; a changed record, a removed record and a repeated serial each fail their own
//! check alone. Batch lines (`--batches`) are added by the same producer: a wrong root,
//! a gap between batches and an anchor over another root each fail their own check.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod tsa_producer;

use std::collections::BTreeSet;
use std::process::Command;

use base64::Engine as _;
use hanko_conformance::crypto::Hash;
use hanko_conformance::report::{Findings, Outcome};
use hanko_conformance::{log, time};
use serde_json::json;
use tsa_producer::{POLICY, Tsa, now};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Defect {
    None,
    /// A record's client changed after it was chained.
    ChangedRecord,
    /// A record taken out (a gap in seq).
    RemovedRecord,
    /// Two time-stamp records (and tokens) with one serial, chained as written.
    DuplicateSerial,
}

fn check_broken_by(d: Defect) -> &'static str {
    match d {
        Defect::None => "",
        Defect::ChangedRecord => "log-chain",
        Defect::RemovedRecord => "log-sequence",
        Defect::DuplicateSerial => "log-serials-unique",
    }
}

/// A record before it is chained.
struct Rec {
    kind: &'static str,
    serial: u64,
    object: Option<Vec<u8>>,
    object_hash: Vec<u8>,
    request_hash: Vec<u8>,
    policy: String,
    client: &'static str,
    issued_at_ns: i64,
    event: Option<serde_json::Value>,
}

/// lp(x) = u32_be(len(x)) || x; the chain of store/README.md, version 1.
fn chain(prev: &[u8], seq: u64, r: &Rec, node: &str) -> Vec<u8> {
    let serial = r.serial.to_be_bytes();
    let first = serial.iter().position(|&b| b != 0).unwrap_or(7);
    let mut buf = Vec::new();
    for field in [
        &b"hanko-log-chain-v1"[..],
        prev,
        &seq.to_be_bytes(),
        r.kind.as_bytes(),
        &serial[first..],
        &r.object_hash,
        &r.request_hash,
        r.policy.as_bytes(),
        r.client.as_bytes(),
        &r.issued_at_ns.to_be_bytes(),
        node.as_bytes(),
    ] {
        buf.extend_from_slice(&(field.len() as u32).to_be_bytes());
        buf.extend_from_slice(field);
    }
    Hash::Sha256.digest(&buf)
}

fn rfc3339_ns(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let frac = ns.rem_euclid(1_000_000_000);
    let base = time::rfc3339(secs);
    if frac == 0 {
        base
    } else {
        let digits = format!("{frac:09}");
        format!(
            "{}.{}Z",
            base.trim_end_matches('Z'),
            digits.trim_end_matches('0')
        )
    }
}

fn token_rec(tsa: &Tsa, kind: &'static str, serial: u64, at: i64, what: &[u8]) -> Rec {
    let imprint = Hash::Sha256.digest(what);
    let tok = tsa.token(&tsa.current, Hash::Sha256, &imprint, serial, at);
    Rec {
        kind,
        serial,
        object_hash: Hash::Sha256.digest(&tok),
        object: Some(tok),
        request_hash: imprint,
        policy: POLICY.into(),
        client: "anonymous",
        issued_at_ns: at * 1_000_000_000,
        event: None,
    }
}

/// The export (JSON lines) of a small log with `defect`.
fn export(tsa: &Tsa, defect: Defect, tokens: bool) -> String {
    let t = now() - 600;
    let body = br#"{"v":1,"event":"service-started","fields":{"version":"0.1.0"}}"#.to_vec();
    let mut recs = vec![Rec {
        kind: "audit",
        serial: 1,
        object_hash: Hash::Sha256.digest(&body),
        request_hash: Hash::Sha256.digest(&body),
        object: Some(body),
        policy: "service-started".into(),
        client: "system",
        issued_at_ns: t * 1_000_000_000 + 123_456_789,
        event: Some(json!({"type": "service-started", "fields": {"version": "0.1.0"}})),
    }];
    for i in 1..=5u64 {
        let serial = if defect == Defect::DuplicateSerial && i == 5 {
            4
        } else {
            i
        };
        recs.push(token_rec(
            tsa,
            "timestamp",
            serial,
            t + i as i64,
            format!("document {i}").as_bytes(),
        ));
    }
    let submitted = Hash::Sha256.digest(b"an archive object");
    recs.push(Rec {
        kind: "archive-object",
        serial: 1,
        object: None,
        object_hash: submitted.clone(),
        request_hash: submitted,
        policy: "sha256".into(),
        client: "archive",
        issued_at_ns: (t + 10) * 1_000_000_000 + 500_000_000,
        event: None,
    });
    // A seal's object is a CMS SignedData; a token is one, and stands in for it here.
    let mut seal = token_rec(tsa, "seal", 1, t + 11, b"a sealed document");
    seal.policy = "seal-credential".into();
    seal.client = "client:erp";
    recs.push(seal);
    recs.push(token_rec(tsa, "archive-stamp", 6, t + 12, b"a batch root"));

    let mut prev = vec![0u8; 32];
    let mut lines = Vec::new();
    for (i, r) in recs.iter().enumerate() {
        let seq = i as u64 + 1;
        let h = chain(&prev, seq, r, "node-a");
        let serial = r.serial.to_be_bytes();
        let first = serial.iter().position(|&b| b != 0).unwrap_or(7);
        let mut line = json!({
            "seq": seq,
            "kind": r.kind,
            "serial": hex::encode(&serial[first..]),
            "object_hash": hex::encode(&r.object_hash),
            "request_hash": hex::encode(&r.request_hash),
            "policy": r.policy,
            "client": if defect == Defect::ChangedRecord && seq == 3 { "someone else" } else { r.client },
            "issued_at": rfc3339_ns(r.issued_at_ns),
            "issued_at_ns": r.issued_at_ns,
            "node_id": "node-a",
            "chain_hash": hex::encode(&h),
        });
        if let Some(e) = &r.event {
            line["event"] = e.clone();
        }
        if tokens && let Some(o) = &r.object {
            line["token"] = json!(base64::engine::general_purpose::STANDARD.encode(o));
        }
        prev = h;
        if defect == Defect::RemovedRecord && seq == 4 {
            continue;
        }
        lines.push(line.to_string());
    }
    lines.join("\n") + "\n"
}

fn with(f: &Findings, o: Outcome) -> BTreeSet<&'static str> {
    f.checks(Some(o))
}

const BASELINE_SKIPS: [&str; 6] = [
    "nonce",
    "certificates-certreq",
    "gen-time-clock",
    "qc-statements",
    "log-batches",
    "log-anchors",
];

#[tokio::test(flavor = "current_thread")]
async fn each_defect_fails_its_own_check_and_no_other() {
    let tsa = Tsa::new().await;
    let ca = vec![tsa.root_der()];
    let mut f = Findings::new();
    log::check(export(&tsa, Defect::None, true).as_bytes(), &ca, &mut f);
    assert!(with(&f, Outcome::Fail).is_empty(), "{:#?}", f.list());
    assert_eq!(
        with(&f, Outcome::Skip),
        BTreeSet::from(BASELINE_SKIPS),
        "{:#?}",
        f.list()
    );
    for c in [
        "log-lines",
        "log-sequence",
        "log-chain",
        "log-token-hash",
        "log-serials-unique",
        "log-record-matches-token",
        "log-seal-cms",
        "log-audit-events",
        "signature",
        "certificate-chain",
        "message-imprint",
    ] {
        assert_eq!(f.outcome(c), Some(Outcome::Pass), "{c}: {:#?}", f.list());
    }
    let baseline: BTreeSet<_> = f.list().iter().map(|x| x.check).collect();

    for defect in [
        Defect::ChangedRecord,
        Defect::RemovedRecord,
        Defect::DuplicateSerial,
    ] {
        let mut f = Findings::new();
        log::check(export(&tsa, defect, true).as_bytes(), &ca, &mut f);
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
            "{defect:?}"
        );
        let all: BTreeSet<_> = f.list().iter().map(|x| x.check).collect();
        assert_eq!(all, baseline, "{defect:?} ran another set of checks");
        let detail = &f.list().iter().find(|x| x.check == want).unwrap().detail;
        let names = match defect {
            Defect::ChangedRecord => "seq 3",
            Defect::RemovedRecord => "seq 4..=4 missing",
            _ => "timestamp serial 04 at seq 5 and seq 6",
        };
        assert!(detail.contains(names), "{defect:?}: {detail}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn partial_and_token_less_exports_and_garbage() {
    let tsa = Tsa::new().await;
    let full = export(&tsa, Defect::None, true);
    // From seq 3 on: the first record's hash is taken as given.
    let partial: String = full.lines().skip(2).map(|l| format!("{l}\n")).collect();
    let mut f = Findings::new();
    log::check(partial.as_bytes(), &[], &mut f);
    assert!(with(&f, Outcome::Fail).is_empty(), "{:#?}", f.list());
    let chain = f.list().iter().find(|x| x.check == "log-chain").unwrap();
    assert!(
        chain.detail.contains("partial export from seq 3"),
        "{}",
        chain.detail
    );
    // Without tokens: the chain is still checked; the token checks say SKIP.
    let mut f = Findings::new();
    log::check(export(&tsa, Defect::None, false).as_bytes(), &[], &mut f);
    assert!(with(&f, Outcome::Fail).is_empty(), "{:#?}", f.list());
    assert_eq!(f.outcome("log-chain"), Some(Outcome::Pass));
    assert_eq!(f.outcome("log-token-hash"), Some(Outcome::Skip));
    assert_eq!(f.outcome("log-record-matches-token"), Some(Outcome::Skip));
    // A replaced token: its hash is no longer object_hash.
    let other = tsa.token(&tsa.current, Hash::Sha256, &[7; 32], 2, now());
    let replaced: String = full
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            if v["seq"] == 3 {
                v["token"] = json!(base64::engine::general_purpose::STANDARD.encode(&other));
            }
            v.to_string() + "\n"
        })
        .collect();
    let mut f = Findings::new();
    log::check(replaced.as_bytes(), &[], &mut f);
    assert_eq!(f.outcome("log-token-hash"), Some(Outcome::Fail));
    // Any byte of the first records changed (the audit record, and a time-stamp record
    // without its token: the tokens' own bytes are the token checks' matter): never a
    // panic, never a pass.
    let head: String = full
        .lines()
        .take(2)
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            if v["kind"] == "timestamp" {
                v.as_object_mut().unwrap().remove("token");
            }
            v.to_string() + "\n"
        })
        .collect();
    for i in 0..head.len() {
        let mut m = head.clone().into_bytes();
        m[i] = if m[i] == b'0' { b'1' } else { b'0' };
        let mut f = Findings::new();
        log::check(&m, &[], &mut f);
        assert!(!with(&f, Outcome::Fail).is_empty(), "byte {i} changed");
    }
    // Garbage never panics and never passes.
    for input in [
        &b""[..],
        b"not json\n",
        b"{}\n",
        b"[1,2]\n",
        &full.as_bytes()[..100],
    ] {
        let mut f = Findings::new();
        log::check(input, &[], &mut f);
        assert_eq!(f.outcome("log-lines"), Some(Outcome::Fail), "{input:?}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_command_line_reports_and_exits_0_1_2() {
    let tsa = Tsa::new().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("root.pem"), tsa.root_pem()).unwrap();
    std::fs::write(
        dir.path().join("good.jsonl"),
        export(&tsa, Defect::None, true),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("gap.jsonl"),
        export(&tsa, Defect::RemovedRecord, true),
    )
    .unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_hanko-conformance"))
            .current_dir(dir.path())
            .arg("log")
            .args(args)
            .output()
            .unwrap()
    };
    let ok = run(&["good.jsonl", "--ca", "root.pem", "--html", "r.html"]);
    let text = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(ok.status.code(), Some(0), "{text}");
    assert!(text.contains("PASS C.38   log-chain"), "{text}");
    assert!(text.contains("SKIP C.38   log-batches"), "{text}");
    assert!(
        std::fs::read_to_string(dir.path().join("r.html"))
            .unwrap()
            .contains("conforms")
    );

    let bad = run(&["gap.jsonl", "--ca", "root.pem", "--json"]);
    assert_eq!(bad.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&bad.stdout).unwrap();
    let fails: Vec<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["outcome"] == "FAIL")
        .map(|f| f["check"].as_str().unwrap())
        .collect();
    assert_eq!(fails, ["log-sequence"]);

    let missing = run(&["/nonexistent.jsonl"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent.jsonl"));
}

/// A defect of the batch lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BatchDefect {
    None,
    /// Batch 2's root changed (and anchored as changed).
    WrongRoot,
    /// Batch 2 starts one record late.
    Gap,
    /// Batch 1's anchor time-stamps another root.
    AnchorOverOtherRoot,
}

/// This producer's batch tree (F.63a): `H(min || max)`, a lone node carried up.
fn tree_root(leaves: &[Vec<u8>]) -> Vec<u8> {
    let mut level = leaves.to_vec();
    while level.len() > 1 {
        let mut next = Vec::new();
        for pair in level.chunks(2) {
            if pair.len() == 2 {
                let (a, b) = if pair[0] <= pair[1] {
                    (&pair[0], &pair[1])
                } else {
                    (&pair[1], &pair[0])
                };
                next.push(Hash::Sha256.digest(&[a.as_slice(), b.as_slice()].concat()));
            } else {
                next.push(pair[0].clone());
            }
        }
        level = next;
    }
    level.pop().unwrap()
}

/// `export` followed by two batch lines (seq 1..=4 and 5..=9), each anchored by the
/// test TSA, with `defect`.
fn with_batches(tsa: &Tsa, export: &str, defect: BatchDefect) -> String {
    let hashes: Vec<Vec<u8>> = export
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            hex::decode(v["object_hash"].as_str().unwrap()).unwrap()
        })
        .collect();
    assert_eq!(hashes.len(), 9);
    let mut out = export.to_owned();
    let ranges = if defect == BatchDefect::Gap {
        [(1u64, 4u64), (6, 9)]
    } else {
        [(1, 4), (5, 9)]
    };
    for (i, (first, last)) in ranges.into_iter().enumerate() {
        let id = i as u64 + 1;
        let mut root = tree_root(&hashes[first as usize - 1..last as usize]);
        if defect == BatchDefect::WrongRoot && id == 2 {
            root[0] ^= 1;
        }
        let anchored = if defect == BatchDefect::AnchorOverOtherRoot && id == 1 {
            vec![9u8; 32]
        } else {
            root.clone()
        };
        let tok = tsa.token(&tsa.current, Hash::Sha256, &anchored, 100 + id, now() - 60);
        let line = json!({
            "batch": id,
            "first_seq": first,
            "last_seq": last,
            "leaf_count": last - first + 1,
            "hash_alg": "sha256",
            "root": hex::encode(&root),
            "closed_at": "2026-12-03T00:00:00Z",
            "closed_at_ns": 1_796_256_000_000_000_000i64,
            "closed_by": "node-a",
            "anchors": [{
                "target": "self",
                "state": "done",
                "anchored_at": "2026-12-03T00:00:01Z",
                "token": base64::engine::general_purpose::STANDARD.encode(&tok),
            }],
        });
        out.push_str(&line.to_string());
        out.push('\n');
    }
    out
}

#[tokio::test(flavor = "current_thread")]
async fn batch_lines_tile_recompute_and_anchor_and_each_defect_fails_its_check() {
    let tsa = Tsa::new().await;
    let ca = vec![tsa.root_der()];
    let base = export(&tsa, Defect::None, true);
    let mut f = Findings::new();
    log::check(
        with_batches(&tsa, &base, BatchDefect::None).as_bytes(),
        &ca,
        &mut f,
    );
    assert!(with(&f, Outcome::Fail).is_empty(), "{:#?}", f.list());
    assert_eq!(
        f.outcome("log-batches"),
        Some(Outcome::Pass),
        "{:#?}",
        f.list()
    );
    assert_eq!(
        f.outcome("log-anchors"),
        Some(Outcome::Pass),
        "{:#?}",
        f.list()
    );
    let batches = f.list().iter().find(|x| x.check == "log-batches").unwrap();
    assert!(
        batches.detail.contains("batches 1..=2 tile seq 1..=9"),
        "{}",
        batches.detail
    );
    for (defect, want) in [
        (BatchDefect::WrongRoot, "log-batches"),
        (BatchDefect::Gap, "log-batches"),
        (BatchDefect::AnchorOverOtherRoot, "message-imprint"),
    ] {
        let mut f = Findings::new();
        log::check(with_batches(&tsa, &base, defect).as_bytes(), &ca, &mut f);
        assert_eq!(
            with(&f, Outcome::Fail),
            BTreeSet::from([want]),
            "{defect:?} must fail {want} alone: {:#?}",
            f.list()
        );
        let detail = &f.list().iter().find(|x| x.check == want).unwrap().detail;
        let names = match defect {
            BatchDefect::WrongRoot => "batch 2 (line 11): root",
            BatchDefect::Gap => "does not follow batch 1",
            _ => "batch 1 anchor self",
        };
        assert!(detail.contains(names), "{defect:?}: {detail}");
    }
}
