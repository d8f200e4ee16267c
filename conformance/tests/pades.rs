//! The PAdES corpus: a small PDF of the fixtures (annots-indirect.pdf, a classic
//! cross-reference table) sealed by an incremental update written here (a signature
//! dictionary, an xref section, a trailer with /Prev; a fixed-width /ByteRange and a
//! zero /Contents filled in afterwards), its CMS from the reference producer of
//! `support/`. The well-formed files, B-B and B-T, pass every check; each broken one
//! fails exactly the check its defect breaks and no other.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use std::collections::BTreeSet;
use std::process::Command;

use hanko_conformance::pades;
use hanko_conformance::report::Findings;
use support::{Defect, Options, Producer, TOKEN_SKIPS, all, failed, skipped};

/// Bytes reserved for the CMS in /Contents.
const RESERVED: usize = 8192;

/// One PAdES defect (or none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PdfDefect {
    None,
    ByteRangeSkipsBytes,
    SigningTimeInCms,
    BytesAppended,
    WrongSubFilter,
}

fn check_broken_by(d: PdfDefect) -> &'static str {
    match d {
        PdfDefect::None => "",
        PdfDefect::ByteRangeSkipsBytes => "pades-byte-range",
        PdfDefect::SigningTimeInCms => "pades-no-signing-time",
        PdfDefect::BytesAppended => "pades-whole-file",
        PdfDefect::WrongSubFilter => "pades-sub-filter",
    }
}

fn original() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/pdf/annots-indirect.pdf"
    );
    std::fs::read(path).unwrap()
}

/// The offset after `startxref` in the last trailer of `pdf`.
fn startxref(pdf: &[u8]) -> usize {
    let at = pdf
        .windows(9)
        .rposition(|w| w == b"startxref")
        .expect("startxref");
    let rest = std::str::from_utf8(&pdf[at + 9..]).unwrap();
    rest.split_ascii_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// The /Size of the last trailer.
fn trailer_size(pdf: &[u8]) -> usize {
    let at = pdf.windows(5).rposition(|w| w == b"/Size").unwrap();
    let rest = std::str::from_utf8(&pdf[at + 5..]).unwrap();
    rest.split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())
        .unwrap()
        .parse()
        .unwrap()
}

/// `pdf` sealed by an incremental update, with `defect`.
fn seal(p: &Producer, pdf: &[u8], b_t: bool, defect: PdfDefect) -> Vec<u8> {
    let sub_filter = if defect == PdfDefect::WrongSubFilter {
        "adbe.pkcs7.detached"
    } else {
        "ETSI.CAdES.detached"
    };
    update(
        pdf,
        &format!("/Type/Sig/SubFilter/{sub_filter}"),
        defect,
        |signed| {
            p.cms(
                signed,
                Options {
                    defect: Defect::None,
                    b_t,
                    signing_time: defect == PdfDefect::SigningTimeInCms,
                },
            )
        },
    )
}

/// `pdf` with a document time-stamp (ISO 32000-2 §12.8.5) over it.
fn doc_time_stamp(p: &Producer, pdf: &[u8]) -> Vec<u8> {
    update(
        pdf,
        "/Type/DocTimeStamp/SubFilter/ETSI.RFC3161",
        PdfDefect::None,
        |signed| p.token(&hanko_conformance::crypto::Hash::Sha256.digest(signed)),
    )
}

/// `pdf` with an incremental update adding a signature dictionary whose entries start
/// with `head`, its /Contents made by `contents` from the bytes its /ByteRange names.
fn update(
    pdf: &[u8],
    head: &str,
    defect: PdfDefect,
    contents: impl Fn(&[u8]) -> Vec<u8>,
) -> Vec<u8> {
    let prev = startxref(pdf);
    let size = trailer_size(pdf);
    let root = "1 0 R";
    let mut out = pdf.to_vec();
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    let obj_at = out.len();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (y, mo, d, h, mi, s) = hanko_conformance::time::civil_from_unix(now);
    out.extend_from_slice(
        format!(
            "{size} 0 obj\n<<{head}/Filter/Adobe.PPKLite/M(D:{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z)/ByteRange[0 0000000000 0000000000 0000000000]/Contents<"
        )
        .as_bytes(),
    );
    let range_at = out.windows(11).rposition(|w| w == b"/ByteRange[").unwrap() + 11;
    let contents_start = out.len() - 1;
    out.extend(std::iter::repeat_n(b'0', RESERVED * 2));
    out.push(b'>');
    let contents_end = out.len();
    out.extend_from_slice(b">>\nendobj\n");
    let xref_at = out.len();
    out.extend_from_slice(
        format!(
            "xref\n0 1\n0000000000 65535 f \n{size} 1\n{obj_at:010} 00000 n \ntrailer\n<</Size {}/Root {root}/Prev {prev}>>\nstartxref\n{xref_at}\n%%EOF\n",
            size + 1
        )
        .as_bytes(),
    );
    let len = out.len();
    let (a, b, c) = if defect == PdfDefect::ByteRangeSkipsBytes {
        // One byte after the '>' is neither signed nor /Contents.
        (contents_start, contents_end + 1, len - contents_end - 1)
    } else {
        (contents_start, contents_end, len - contents_end)
    };
    let range = format!("0 {a:010} {b:010} {c:010}");
    out[range_at..range_at + range.len()].copy_from_slice(range.as_bytes());
    let signed = [&out[..a], &out[b..]].concat();
    let cms = contents(&signed);
    assert!(cms.len() <= RESERVED, "the CMS does not fit");
    let hex = hex::encode_upper(&cms);
    out[contents_start + 1..contents_start + 1 + hex.len()].copy_from_slice(hex.as_bytes());
    if defect == PdfDefect::BytesAppended {
        out.extend_from_slice(b"% appended after the seal\n");
    }
    out
}

fn run(p: &Producer, pdf: &[u8]) -> Findings {
    let mut f = Findings::new();
    pades::check(pdf, &[p.root()], &mut f);
    f
}

#[tokio::test(flavor = "current_thread")]
async fn each_defect_fails_its_own_check_and_no_other() {
    let p = Producer::new().await;
    let pdf = original();

    let good_bb = run(&p, &seal(&p, &pdf, false, PdfDefect::None));
    assert!(failed(&good_bb).is_empty(), "{:#?}", good_bb.list());
    assert_eq!(
        skipped(&good_bb),
        BTreeSet::from(["cades-time-stamp-in-validity"]),
        "{:#?}",
        good_bb.list()
    );
    let bb_checks = all(&good_bb);
    for c in [
        "pades-signatures",
        "pades-filter",
        "pades-sub-filter",
        "pades-contents",
        "pades-byte-range",
        "pades-whole-file",
        "pades-m",
        "pades-no-signing-time",
        "pades-content-type",
        "pades-signing-certificate-v2",
        "pades-reason",
        "pades-level",
        "cades-message-digest",
        "cades-signature",
        "cades-signer-chain",
    ] {
        assert!(bb_checks.contains(c), "{c} missing: {bb_checks:?}");
    }
    assert!(!bb_checks.contains("cades-signing-time"), "{bb_checks:?}");

    let good_bt = run(&p, &seal(&p, &pdf, true, PdfDefect::None));
    assert!(failed(&good_bt).is_empty(), "{:#?}", good_bt.list());
    assert_eq!(skipped(&good_bt), BTreeSet::from(TOKEN_SKIPS));
    let level = good_bt
        .list()
        .iter()
        .find(|x| x.check == "pades-level")
        .unwrap();
    assert!(level.detail.starts_with("B-T"), "{level:?}");

    for defect in [
        PdfDefect::ByteRangeSkipsBytes,
        PdfDefect::SigningTimeInCms,
        PdfDefect::BytesAppended,
        PdfDefect::WrongSubFilter,
    ] {
        let f = run(&p, &seal(&p, &pdf, false, defect));
        let want = check_broken_by(defect);
        assert_eq!(
            failed(&f),
            BTreeSet::from([want]),
            "{defect:?} must fail {want} alone: {:#?}",
            f.list()
        );
        assert_eq!(
            skipped(&f),
            BTreeSet::from(["cades-time-stamp-in-validity"]),
            "{defect:?}: {:#?}",
            f.list()
        );
        assert_eq!(all(&f), bb_checks, "{defect:?} ran another set of checks");
        let d = &f.list().iter().find(|x| x.check == want).unwrap().detail;
        assert!(d.starts_with("signature 1 (object 8): "), "{d}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_second_seal_keeps_the_first_and_garbage_never_panics() {
    let p = Producer::new().await;
    let once = seal(&p, &original(), false, PdfDefect::None);
    let twice = seal(&p, &once, true, PdfDefect::None);
    let f = run(&p, &twice);
    assert!(failed(&f).is_empty(), "{:#?}", f.list());
    let sigs = f
        .list()
        .iter()
        .find(|x| x.check == "pades-signatures")
        .unwrap();
    assert_eq!(sigs.detail, "2 signature dictionaries");

    // B-T by a document time-stamp after the seal: its token checked over the bytes
    // its /ByteRange names.
    let stamped = doc_time_stamp(&p, &once);
    let f = run(&p, &stamped);
    assert!(failed(&f).is_empty(), "{:#?}", f.list());
    let mut skips = BTreeSet::from(TOKEN_SKIPS);
    skips.insert("cades-time-stamp-in-validity");
    assert_eq!(skipped(&f), skips, "{:#?}", f.list());
    assert!(all(&f).contains("message-imprint"));
    // A byte the time-stamp covers changed (the '>' that ends its revision's trailer):
    // its imprint check alone fails; the seal before it covers none of that.
    let mut tampered = stamped.clone();
    let at = tampered.windows(5).rposition(|w| w == b"%%EOF").unwrap();
    let before = tampered[..at]
        .windows(9)
        .rposition(|w| w == b"startxref")
        .unwrap();
    tampered[before - 2] = b' ';
    let f = run(&p, &tampered);
    assert_eq!(
        failed(&f),
        BTreeSet::from(["message-imprint"]),
        "{:#?}",
        f.list()
    );

    // No signature at all, not a PDF, and truncations: FAILs, never a panic.
    let mut f = Findings::new();
    pades::check(&original(), &[], &mut f);
    assert_eq!(failed(&f), BTreeSet::from(["pades-signatures"]));
    let mut f = Findings::new();
    pades::check(b"GIF89a", &[], &mut f);
    assert_eq!(failed(&f), BTreeSet::from(["pades-signatures"]));
    for cut in (0..once.len()).step_by(97) {
        let mut f = Findings::new();
        pades::check(&once[..cut], &[], &mut f);
    }
    for i in (original().len()..once.len()).step_by(13) {
        let mut bad = once.clone();
        bad[i] ^= 0x21;
        let mut f = Findings::new();
        pades::check(&bad, &[p.root()], &mut f);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_command_line_reports_and_exits_0_1_2() {
    let p = Producer::new().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("good.pdf"),
        seal(&p, &original(), true, PdfDefect::None),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("appended.pdf"),
        seal(&p, &original(), false, PdfDefect::BytesAppended),
    )
    .unwrap();
    std::fs::write(dir.path().join("root.pem"), p.root_pem()).unwrap();
    let run = |file: &str, extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_hanko-conformance"))
            .current_dir(dir.path())
            .args(["pades", file, "--ca", "root.pem"])
            .args(extra)
            .output()
            .unwrap()
    };
    let ok = run("good.pdf", &[]);
    let text = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(ok.status.code(), Some(0), "{text}");
    assert!(text.contains("PASS E.55   pades-byte-range"), "{text}");
    assert!(text.trim_end().ends_with("0 failed, 4 skipped"), "{text}");

    let bad = run("appended.pdf", &["--json"]);
    assert_eq!(bad.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&bad.stdout).unwrap();
    let fails: Vec<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["outcome"] == "FAIL")
        .map(|f| f["check"].as_str().unwrap())
        .collect();
    assert_eq!(fails, ["pades-whole-file"]);

    let missing = run("/nonexistent.pdf", &[]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent.pdf"));
}
