//! The CAdES corpus: detached seals made by the reference producer of `support/` (its
//! own DER, software keys made for the run), B-B and B-T, first well formed, then each
//! with one defect. The well-formed seals pass every check; each broken one fails
//! exactly the check its defect breaks and no other.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use std::collections::BTreeSet;
use std::process::Command;

use hanko_conformance::cades;
use hanko_conformance::report::Findings;
use support::{Defect, Options, Producer, TOKEN_SKIPS, all, failed, skipped};

const DATA: &[u8] = b"a contract the archive keeps, sealed detached";

fn options(defect: Defect, b_t: bool) -> Options {
    Options {
        defect,
        b_t,
        signing_time: true,
    }
}

/// The check each defect must fail, alone.
fn check_broken_by(d: Defect) -> &'static str {
    match d {
        Defect::None => "",
        Defect::WrongMessageDigest => "cades-message-digest",
        Defect::UnsortedSignedAttributes => "cades-signed-attributes-sorted",
        Defect::NoEssCertIdV2 => "cades-signing-certificate-v2",
        Defect::EssCertIdOfAnotherCertificate => "cades-ess-cert-id",
        Defect::TwoSigningTimes => "cades-signing-time",
        Defect::ExpiredSigner => "cades-signer-validity",
        Defect::TamperedSignature => "cades-signature",
        // The token's own check: its imprint is not the hash of the signature value.
        Defect::TokenOverWrongBytes => "message-imprint",
    }
}

fn run(p: &Producer, o: Options) -> Findings {
    let mut f = Findings::new();
    cades::check(&p.cms(DATA, o), DATA, &[p.root()], &mut f);
    f
}

#[tokio::test(flavor = "current_thread")]
async fn each_defect_fails_its_own_check_and_no_other() {
    let p = Producer::new().await;

    // B-B: every check passes but the time-stamp's, which has nothing to check.
    let good_bb = run(&p, options(Defect::None, false));
    assert!(failed(&good_bb).is_empty(), "{:#?}", good_bb.list());
    assert_eq!(
        skipped(&good_bb),
        BTreeSet::from(["cades-time-stamp-in-validity"]),
        "{:#?}",
        good_bb.list()
    );
    let level = good_bb
        .list()
        .iter()
        .find(|x| x.check == "cades-level")
        .unwrap();
    assert!(level.detail.starts_with("B-B"), "{level:?}");
    let bb_checks = all(&good_bb);
    assert_eq!(bb_checks.len(), 17, "{bb_checks:?}");

    // B-T: the CAdES checks and the token's.
    let good_bt = run(&p, options(Defect::None, true));
    assert!(failed(&good_bt).is_empty(), "{:#?}", good_bt.list());
    assert_eq!(
        skipped(&good_bt),
        BTreeSet::from(TOKEN_SKIPS),
        "{:#?}",
        good_bt.list()
    );
    let level = good_bt
        .list()
        .iter()
        .find(|x| x.check == "cades-level")
        .unwrap();
    assert!(level.detail.starts_with("B-T: 1 "), "{level:?}");
    let bt_checks = all(&good_bt);
    assert!(bt_checks.is_superset(&bb_checks));
    assert!(bt_checks.contains("message-imprint") && bt_checks.len() >= 17 + 28);

    for defect in [
        Defect::WrongMessageDigest,
        Defect::UnsortedSignedAttributes,
        Defect::NoEssCertIdV2,
        Defect::EssCertIdOfAnotherCertificate,
        Defect::TwoSigningTimes,
        Defect::ExpiredSigner,
        Defect::TamperedSignature,
        Defect::TokenOverWrongBytes,
    ] {
        let b_t = defect == Defect::TokenOverWrongBytes;
        let f = run(&p, options(defect, b_t));
        let want = check_broken_by(defect);
        assert_eq!(
            failed(&f),
            BTreeSet::from([want]),
            "{defect:?} must fail {want} alone: {:#?}",
            f.list()
        );
        let mut expected_skips: BTreeSet<&str> = if b_t {
            BTreeSet::from(TOKEN_SKIPS)
        } else {
            BTreeSet::from(["cades-time-stamp-in-validity"])
        };
        if defect == Defect::NoEssCertIdV2 {
            // Nothing to compare once the attribute is missing: a SKIP, not a second FAIL.
            expected_skips.insert("cades-ess-cert-id");
        }
        assert_eq!(skipped(&f), expected_skips, "{defect:?}: {:#?}", f.list());
        let baseline = if b_t { &bt_checks } else { &bb_checks };
        assert_eq!(&all(&f), baseline, "{defect:?} ran another set of checks");
        if defect == Defect::TokenOverWrongBytes {
            let d = &f.list().iter().find(|x| x.check == want).unwrap().detail;
            assert!(d.starts_with("signature-time-stamp: imprint"), "{d}");
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn garbage_is_a_structure_failure_not_a_panic() {
    let p = Producer::new().await;
    let good = p.cms(DATA, options(Defect::None, true));
    for cut in [0, 1, 2, 10, good.len() / 2, good.len() - 1] {
        let mut f = Findings::new();
        cades::check(&good[..cut], DATA, &[], &mut f);
        assert_eq!(
            failed(&f),
            BTreeSet::from(["cades-structure"]),
            "cut at {cut}"
        );
    }
    // Every single-byte flip: never a panic.
    for i in (0..good.len()).step_by(7) {
        let mut bad = good.clone();
        bad[i] ^= 0x5a;
        let mut f = Findings::new();
        cades::check(&bad, DATA, &[p.root()], &mut f);
    }
    // Without a trust anchor the chain check says SKIP, nothing fails.
    let mut f = Findings::new();
    cades::check(&good, DATA, &[], &mut f);
    assert!(failed(&f).is_empty(), "{:#?}", f.list());
    assert!(skipped(&f).contains("cades-signer-chain"));
}

#[tokio::test(flavor = "current_thread")]
async fn the_command_line_reports_and_exits_0_1_2() {
    let p = Producer::new().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("doc.txt"), DATA).unwrap();
    std::fs::write(
        dir.path().join("good.p7s"),
        p.cms(DATA, options(Defect::None, true)),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("tampered.p7s"),
        p.cms(DATA, options(Defect::TamperedSignature, false)),
    )
    .unwrap();
    std::fs::write(dir.path().join("root.pem"), p.root_pem()).unwrap();
    let run = |file: &str, extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_hanko-conformance"))
            .current_dir(dir.path())
            .args(["cades", file, "--data", "doc.txt", "--ca", "root.pem"])
            .args(extra)
            .output()
            .unwrap()
    };
    let ok = run("good.p7s", &["--html", "report.html"]);
    let text = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(ok.status.code(), Some(0), "{text}");
    assert!(text.contains("PASS D.48   cades-level"), "{text}");
    assert!(text.contains("PASS B.24   message-imprint"), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("input doc.txt sha256:")),
        "{text}"
    );
    assert!(text.trim_end().ends_with("0 failed, 4 skipped"), "{text}");
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("cades-signature"), "{html}");

    let bad = run("tampered.p7s", &["--json"]);
    assert_eq!(bad.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&bad.stdout).unwrap();
    let fails: Vec<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["outcome"] == "FAIL")
        .map(|f| f["check"].as_str().unwrap())
        .collect();
    assert_eq!(fails, ["cades-signature"]);

    let missing = run("/nonexistent.p7s", &[]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent.p7s"));
}
