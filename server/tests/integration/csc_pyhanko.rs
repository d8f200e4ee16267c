//! Issue #12 acceptance: pyHanko's own CSC client (`pyhanko.sign.signers.csc_signer`)
//! seals a PDF remotely through Hanko's `/csc/v1` endpoints (`info`,
//! `credentials/info`, `credentials/authorize`, `signatures/signHash`, and
//! `signatures/timestamp` for the PAdES signature time-stamp) against the real
//! `hanko serve --dev`, for the RSA-3072 and the P-256 seal credential; pyHanko's
//! validator, trusting only the dev root, finds each signature and its time-stamp
//! intact, valid and trusted (and a copy with one signed byte changed not intact).
//! The script is tests/py/csc_pyhanko.py; this module runs it and asserts its report,
//! then reads the issuance log: exactly the tokens pyHanko received, no seal records
//! (signHash returns raw signatures, which are not logged).

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::common::seal::{log_records, of_kind};
use crate::common::{Server, dev_api_key, hanko, text};

#[test]
fn pyhanko_seals_a_pdf_through_csc_v1_and_its_validator_accepts_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let server = Server::start(hanko(), &["--dev", "--data-dir", dir.to_str().unwrap()]);
    let key = dev_api_key(&dir);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/py/csc_pyhanko.py");
    let url = format!("http://{}", server.addr);
    let mut received = BTreeSet::new();
    for (credential, mechanism) in [
        ("seal-rsa3072", "sha256/sha256_rsa"),
        ("seal-p256", "sha256/sha256_ecdsa"),
    ] {
        let pdf = tmp.path().join(format!("{credential}.pdf"));
        let out = std::process::Command::new("python3")
            .arg(script)
            .arg(&url)
            .arg(dir.join("dev-api-key"))
            .arg(credential)
            .arg(dir.join("dev-pki/root.pem"))
            .arg(&pdf)
            .output()
            .unwrap();
        assert!(out.status.success(), "{credential}: {}", text(&out));
        let r: Value = serde_json::from_slice(&out.stdout).unwrap();
        let ok = json!({ "intact": true, "valid": true, "trusted": true });
        assert_eq!(r["credential"], credential);
        assert_eq!(r["specs"], "1.0.4.0", "{r}");
        assert_eq!(r["auth_mode"], "implicit", "{r}");
        assert_eq!(r["signatures"], 1, "{r}");
        assert_eq!(r["signature"], ok, "{credential}: {r}");
        assert_eq!(r["bottom_line"], true, "{r}");
        assert_eq!(r["coverage"], "ENTIRE_FILE", "{r}");
        assert_eq!(r["mechanism"], mechanism, "{r}");
        assert_eq!(r["timestamp"], ok, "{credential}: {r}");
        assert_eq!(r["tampered"]["intact"], false, "{r}");
        assert!(
            r["signer_subject"]
                .as_str()
                .unwrap()
                .contains("Hanko Dev Seal"),
            "{r}"
        );
        assert!(std::fs::read(&pdf).unwrap().starts_with(b"%PDF-"));
        // pyHanko's calls: its size estimate's time-stamp, the SAD for the one hash,
        // the signature, the real time-stamp.
        assert_eq!(
            r["calls"],
            json!([
                "info",
                "credentials/info",
                "signatures/timestamp",
                "credentials/authorize",
                "signatures/signHash",
                "signatures/timestamp"
            ]),
            "{r}"
        );
        for t in r["tokens"].as_array().unwrap() {
            assert!(received.insert(t.as_str().unwrap().to_owned()), "{r}");
        }
    }
    let (status, out) = server.stop();
    assert!(status.success(), "{out}");
    assert!(!out.contains(&key), "the API key was logged");
    assert!(!out.contains("panicked"), "{out}");

    let records = log_records(&dir);
    let logged: BTreeSet<String> = of_kind(&records, "timestamp")
        .iter()
        .map(|r| r["object_hash"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(received.len(), 4);
    assert_eq!(logged, received, "{records:#?}");
    assert_eq!(records.len(), received.len(), "{records:#?}");
}
