//! Issue #19 acceptance: `hanko-conformance` (its library, the code path that shares
//! nothing with Hanko's builders) audits `serve --dev` end to end: the TSA with its
//! RSA-3072 and ECDSA P-256 units over HTTP and HTTPS (the only SKIP is the EU-qualified
//! profile, which the dev server does not claim), CAdES seals of both credentials at
//! B-B and B-T, a PDF sealed twice, a token's evidence record and the log export. No
//! check fails.

use std::collections::BTreeSet;
use std::time::Duration;

use hanko_conformance::report::{Findings, Outcome};
use hanko_conformance::{cert, tsa};

use crate::common::log::{TestDb, shared_dev_data_dir, start_dev_server};

/// The dev server's ECDSA policy (`[tsa.policy_keys]` in the dev hanko.toml).
const ECDSA_POLICY: &str = "1.3.6.1.5.5.7.13.2";

fn with(f: &Findings, outcome: Outcome) -> BTreeSet<&'static str> {
    f.checks(Some(outcome))
}

#[test]
fn hanko_conformance_passes_the_dev_tsa_rsa_and_ecdsa_over_http_and_https() {
    let data_dir = shared_dev_data_dir();
    let db = TestDb::sqlite();
    let server = start_dev_server(data_dir, &db, None);
    let root_pem = std::fs::read(data_dir.join("dev-pki/root.pem")).unwrap();
    let roots = cert::certificates_from_pem_or_der(&root_pem).unwrap();
    let target = |url: String, policy: Option<&str>| tsa::Target {
        url,
        ca: roots.clone(),
        policy: policy.map(str::to_owned),
        qualified: false,
        tls_ca: Some(root_pem.clone()),
        timeout: Duration::from_secs(30),
    };
    let http = format!("http://{}/tsa", server.addr);
    let https = format!("https://localhost:{}/tsa", server.tls_addr().port());
    for (url, policy, key) in [
        (http.clone(), None, "RSA-3072"),
        (http, Some(ECDSA_POLICY), "ECDSA P-256"),
        (https, Some(ECDSA_POLICY), "ECDSA P-256"),
    ] {
        let f = tsa::probe(&target(url.clone(), policy)).unwrap();
        assert!(
            with(&f, Outcome::Fail).is_empty(),
            "{url} {policy:?}: {:#?}",
            f.list()
        );
        assert_eq!(with(&f, Outcome::Skip), BTreeSet::from(["qc-statements"]));
        assert!(with(&f, Outcome::Pass).len() >= 38, "{:#?}", f.list());
        let alg = f.list().iter().find(|x| x.check == "algorithms").unwrap();
        assert!(alg.detail.starts_with(key), "{url}: {}", alg.detail);
    }
    server.stop();
}

/// The failed checks of `f`, with their details (for the assertion message).
fn failures(f: &Findings) -> Vec<String> {
    f.list()
        .iter()
        .filter(|x| x.outcome == Outcome::Fail)
        .map(|x| format!("{} {}: {}", x.requirement, x.check, x.detail))
        .collect()
}

#[test]
fn hanko_conformance_passes_dev_seals_pdfs_evidence_records_and_the_log_export() {
    use crate::common::http::send;
    use crate::common::seal::{seal, seal_pdf};
    use crate::common::tsp::{granted, request_der, timestamp};
    use crate::common::{dev_api_key, dev_init, eventually, run, start_dev_with_extra};
    use hanko_conformance::{cades, evidence, log, pades};
    use hanko_pki::HashAlgorithm;

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    dev_init(&dir);
    let server = start_dev_with_extra(&dir, "[anchor]\ninterval_secs = 2\n");
    let key = dev_api_key(&dir);
    let roots =
        cert::certificates_from_pem_or_der(&std::fs::read(dir.join("dev-pki/root.pem")).unwrap())
            .unwrap();

    // CAdES seals: both credentials, B-B and B-T.
    let document = "住民票の写し: conformance check".as_bytes();
    for credential in ["seal-rsa3072", "seal-p256"] {
        for level in ["B-B", "B-T"] {
            let (status, _, p7s) = seal(
                server.addr,
                &format!("credential={credential}&level={level}"),
                Some(&key),
                document,
            );
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&p7s));
            let mut f = Findings::new();
            cades::check(&p7s, document, &roots, &mut f);
            assert!(
                failures(&f).is_empty(),
                "{credential} {level}: {:#?}",
                failures(&f)
            );
            let lvl = f.list().iter().find(|x| x.check == "cades-level").unwrap();
            assert!(lvl.detail.starts_with(level), "{}", lvl.detail);
        }
    }

    // An enveloping seal: the signed bytes are the encapsulated content; other data given
    // beside it is named as not the content.
    let (status, _, enveloping) = seal(
        server.addr,
        "credential=seal-p256&level=B-T&attached=true",
        Some(&key),
        document,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&enveloping));
    for data in [None, Some(document)] {
        let mut f = Findings::new();
        cades::check_signature(&enveloping, data, &roots, &mut f);
        assert!(failures(&f).is_empty(), "enveloping: {:#?}", failures(&f));
        let s = f
            .list()
            .iter()
            .find(|x| x.check == "cades-structure")
            .unwrap();
        assert!(s.detail.contains("enveloping"), "{}", s.detail);
    }
    let mut f = Findings::new();
    cades::check_signature(&enveloping, Some(b"another document"), &roots, &mut f);
    assert_eq!(
        failures(&f),
        ["D.45 cades-message-digest: the encapsulated content is not the data given (--data)"]
    );

    // PAdES: a PDF sealed twice, B-T then B-B, by each credential.
    let pdf = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/pdf/qpdf-20.pdf"),
    )
    .unwrap();
    let (status, _, once) = seal_pdf(server.addr, "credential=seal-p256&level=B-T", &key, &pdf);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&once));
    let (status, _, twice) = seal_pdf(server.addr, "credential=seal-rsa3072", &key, &once);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&twice));
    for sealed in [&once, &twice] {
        let mut f = Findings::new();
        pades::check(sealed, &roots, &mut f);
        assert!(failures(&f).is_empty(), "{:#?}", failures(&f));
    }

    // Evidence: a token, anchored by the own TSA within the 2 s interval.
    let req = request_der(
        HashAlgorithm::Sha256,
        b"an archived notice",
        Some(19),
        true,
        None,
    );
    let (_, token) = granted(&timestamp(server.addr, &req)).unwrap();
    let hash = HashAlgorithm::Sha256.digest(&token);
    let path = format!("/api/v1/evidence/sha256/{}", hex::encode(&hash));
    let mut ers = Vec::new();
    eventually("the token's evidence record", || {
        let r = send(server.addr, "GET", &path, &[], b"").unwrap();
        ers = r.body;
        r.status == 200
    });
    let mut f = Findings::new();
    evidence::check(&ers, &[], Some(&token), &roots, &mut f);
    assert!(failures(&f).is_empty(), "{:#?}", failures(&f));
    let passed = with(&f, Outcome::Pass);
    for check in [
        "er-structure",
        "er-data-hash",
        "er-root",
        "signature",
        "certificate-chain",
    ] {
        assert!(passed.contains(check), "{check}: {:#?}", f.list());
    }

    // The log export, with the tokens and seals it keeps and its anchor batches (the
    // token's batch is anchored by now): every root recomputed, every anchor checked.
    let out = run(&[
        "log",
        "export",
        "--tokens",
        "--batches",
        "--data-dir",
        dir.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut f = Findings::new();
    log::check(&out.stdout, &roots, &mut f);
    assert!(failures(&f).is_empty(), "{:#?}", failures(&f));
    let passed = with(&f, Outcome::Pass);
    for check in [
        "log-chain",
        "log-sequence",
        "log-serials-unique",
        "log-seal-cms",
        "log-batches",
        "log-anchors",
        "signature",
    ] {
        assert!(passed.contains(check), "{check}: {:#?}", f.list());
    }
    server.stop();
}
