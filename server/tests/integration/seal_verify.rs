//! Issue #12: `hanko seal-verify`, the seal verifier on its own code path, over seals
//! from the real `hanko serve --dev` (RSA-3072 and P-256, B-B and B-T, detached and
//! enveloping): each one it accepts `openssl cms -verify` accepts too, and each defect
//! (tampered data, wrong root, a modified signed attribute, the wrong packaging, no
//! data for a detached seal) fails with its own reason and exit code 1.

use std::path::Path;
use std::process::Output;

use crate::common::seal::{openssl_cms_verify, seal};
use crate::common::tsp::openssl_req_new_p256;
use crate::common::{Server, dev_api_key, hanko, text};

/// `hanko seal-verify <p7s> <args...>` in `dir`.
fn seal_verify(dir: &Path, p7s: &str, args: &[&str]) -> Output {
    hanko()
        .current_dir(dir)
        .arg("seal-verify")
        .arg(p7s)
        .args(args)
        .output()
        .unwrap()
}

/// Asserts that `out` is a failed verification (exit 1) whose reason contains `why`.
fn assert_fails(out: &Output, why: &str) {
    let t = text(out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("seal verification FAILED"), "{t}");
    assert!(t.contains(why), "expected {why:?} in:\n{t}");
}

/// Whether `openssl cms -verify` accepts `p7s` (detached over `data` unless None).
fn openssl_accepts(dir: &Path, p7s: &str, data: Option<&str>, root: &str) -> bool {
    openssl_cms_verify(dir, p7s, data, root).0
}

/// The index of the signing-time's UTCTime value in a seal: after the attribute's OID
/// (1.2.840.113549.1.9.5), `SET { UTCTime }`.
fn signing_time_at(p7s: &[u8]) -> usize {
    let oid = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x05, 0x31, 0x0f, 0x17, 0x0d,
    ];
    p7s.windows(oid.len())
        .position(|w| w == oid)
        .map(|i| i + oid.len())
        .expect("a signing-time attribute")
}

#[test]
fn seal_verify_accepts_dev_seals_and_names_each_defect() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let dir = work.join("data");
    let server = Server::start(hanko(), &["--dev", "--data-dir", dir.to_str().unwrap()]);
    let key = dev_api_key(&dir);
    let doc: Vec<u8> = (0..5000u32).map(|i| (i * 13 % 251) as u8).collect();
    std::fs::write(work.join("doc.bin"), &doc).unwrap();
    let root = "data/dev-pki/root.pem";

    let mut seals = Vec::new();
    for credential in ["seal-rsa3072", "seal-p256"] {
        for level in ["B-B", "B-T"] {
            for attached in [false, true] {
                let name = format!("{credential}-{level}-{attached}.p7s");
                let (status, head, p7s) = seal(
                    server.addr,
                    &format!("credential={credential}&level={level}&attached={attached}"),
                    Some(&key),
                    &doc,
                );
                assert_eq!(status, 200, "{name}: {head}");
                std::fs::write(work.join(&name), &p7s).unwrap();
                let mut args = vec!["--data", "doc.bin", "--ca", root];
                if attached {
                    args.push("--attached");
                }
                let out = seal_verify(work, &name, &args);
                let t = text(&out);
                assert!(out.status.success(), "{name}: {t}");
                assert!(t.contains("Seal verification: OK"), "{t}");
                assert!(t.contains(&format!("CAdES {level}")), "{name}: {t}");
                assert!(t.contains("signer    : CN=Hanko Dev Seal"), "{t}");
                assert!(t.contains("signed at : 20"), "{t}");
                assert_eq!(t.contains("time-stamp: 20"), level == "B-T", "{name}: {t}");
                assert!(
                    t.contains(if attached { "enveloping" } else { "detached" }),
                    "{t}"
                );
                // The cross-check: what seal-verify accepts, openssl accepts.
                let data = (!attached).then_some("doc.bin");
                assert!(
                    openssl_accepts(work, &name, data, root),
                    "openssl refuses {name}"
                );
                seals.push((name, attached, p7s));
            }
        }
    }
    // An enveloping seal verifies without --data too (its content is inside).
    let out = seal_verify(
        work,
        "seal-p256-B-T-true.p7s",
        &["--ca", root, "--attached"],
    );
    assert!(out.status.success(), "{}", text(&out));

    // Tampered data: one byte changed.
    let mut tampered = doc.clone();
    tampered[100] ^= 1;
    std::fs::write(work.join("tampered.bin"), &tampered).unwrap();
    for (name, attached, _) in &seals {
        let mut args = vec!["--data", "tampered.bin", "--ca", root];
        if *attached {
            args.push("--attached");
        }
        let why = if *attached {
            "content differs from the --data given"
        } else {
            "the data differs from what was sealed"
        };
        assert_fails(&seal_verify(work, name, &args), why);
        if !attached {
            assert!(!openssl_accepts(work, name, Some("tampered.bin"), root));
        }
    }

    // A wrong root: a self-signed certificate of another key.
    openssl_req_new_p256(
        work,
        "other.key",
        &[
            "-x509",
            "-subj",
            "/CN=Other Root",
            "-days",
            "2",
            "-out",
            "other.pem",
        ],
    );
    let bb = "seal-rsa3072-B-B-false.p7s";
    let out = seal_verify(work, bb, &["--data", "doc.bin", "--ca", "other.pem"]);
    assert_fails(&out, "no chain to the --ca root");
    assert!(!openssl_accepts(work, bb, Some("doc.bin"), "other.pem"));
    // B-T: the seal under the right root, the time-stamp under a wrong one.
    let bt = "seal-p256-B-T-false.p7s";
    let out = seal_verify(
        work,
        bt,
        &["--data", "doc.bin", "--ca", root, "--tsa-ca", "other.pem"],
    );
    assert_fails(&out, "signature time-stamp: no chain to the --ca root");

    // A modified signed attribute: the signing time one second later. The
    // message-digest still matches; the signature over the attributes does not.
    for (name, _, p7s) in seals.iter().filter(|(_, attached, _)| !attached) {
        let mut modified = p7s.clone();
        let at = signing_time_at(&modified) + 11; // YYMMDDHHMMS|S|Z
        modified[at] = if modified[at] == b'0' { b'1' } else { b'0' };
        let out_name = format!("modified-{name}");
        std::fs::write(work.join(&out_name), &modified).unwrap();
        let out = seal_verify(work, &out_name, &["--data", "doc.bin", "--ca", root]);
        assert_fails(&out, "the seal's signature does not verify");
        assert!(!openssl_accepts(work, &out_name, Some("doc.bin"), root));
    }

    // The wrong packaging, and a detached seal without its data.
    let out = seal_verify(work, bb, &["--data", "doc.bin", "--ca", root, "--attached"]);
    assert_fails(&out, "the seal is detached, not enveloping");
    let out = seal_verify(work, "seal-p256-B-B-true.p7s", &["--ca", root]);
    assert_fails(&out, "the seal is enveloping, not detached");
    assert_fails(
        &seal_verify(work, bb, &["--ca", root]),
        "give the sealed document with --data",
    );
    // Not a seal at all.
    std::fs::write(work.join("text.p7s"), b"hello, not a seal").unwrap();
    assert_fails(
        &seal_verify(work, "text.p7s", &["--data", "doc.bin", "--ca", root]),
        "malformed seal: ContentInfo: missing or truncated",
    );
    let (status, out) = server.stop();
    assert!(status.success(), "{out}");
}
