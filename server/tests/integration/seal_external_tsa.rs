//! Issue #12: `seal.tsa_url`. A second real `hanko serve --dev` (its own token, PKI and
//! log) is the external RFC 3161 TSA of a sealing server: B-T seals carry its tokens
//! (verified against its root, `seal.tsa_ca`), its log holds them, the sealing server's
//! log holds only the seals. Once the TSA is gone, a B-T seal is a retryable 503 and
//! nothing is logged, while B-B seals go on. The sealing server's `[keys.seal]`
//! metadata restricts `seal-rsa3072` to B-B (B-T with it is a 400 naming the levels) and
//! `seal-p256` to ECDSA with SHA-256 in CSC; a PDF seal is held to the same levels and
//! its B-T time-stamp comes from the same external TSA (pyHanko trusts it to that root) (`credentials/info` offers only that;
//! `signHash` with SHA-384 is a 400 before any SAD is looked at).

use serde_json::{Value, json};

use crate::common::http::send;
use crate::common::seal::{assert_json_error, log_records, of_kind, seal, seal_pdf};
use crate::common::{Server, dev_api_key, dev_init, hanko, text};
use crate::seal_pdf::{assert_sealed, fixture};

#[test]
fn external_tsa_stamps_bt_seals_and_its_failure_is_a_retryable_503() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let tsa_dir = work.join("tsa");
    let tsa = Server::start(hanko(), &["--dev", "--data-dir", tsa_dir.to_str().unwrap()]);

    let dir = work.join("data");
    dev_init(&dir);
    // dev-init drew the dev seals' image, which the credentials load and check.
    let png = std::fs::read(dir.join("dev-pki/seal-image.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    let toml = std::fs::read_to_string(dir.join("hanko.toml")).unwrap();
    // The first [keys.seal] is seal-rsa3072's (dev-init writes the keys in order).
    let restricted = toml.replacen("levels = [\"B-B\", \"B-T\"]", "levels = [\"B-B\"]", 1);
    assert_ne!(restricted, toml, "dev-init writes [keys.seal] levels");
    // The second is seal-p256's: ECDSA with SHA-256 only.
    let at = restricted.rfind("levels = [\"B-B\", \"B-T\"]").unwrap();
    let mut restricted = restricted;
    restricted.insert_str(at, "algorithms = [\"ecdsa-sha256\"]\n");
    let custom = dir.join("custom.toml");
    std::fs::write(
        &custom,
        format!(
            "{restricted}\n[seal]\ntsa_url = \"http://{}/tsa\"\ntsa_ca = {:?}\ntsa_timeout_ms = 2000\n",
            tsa.addr,
            tsa_dir.join("dev-pki/root.pem").to_str().unwrap()
        ),
    )
    .unwrap();
    let d = dir.to_str().unwrap();
    let server = Server::start(
        hanko(),
        &[
            "--dev",
            "--data-dir",
            d,
            "--config",
            custom.to_str().unwrap(),
        ],
    );
    let key = dev_api_key(&dir);
    let doc = b"certificate of residence, stamped elsewhere".to_vec();
    std::fs::write(work.join("doc.bin"), &doc).unwrap();

    let (status, head, p7s) = seal(
        server.addr,
        "credential=seal-p256&level=B-T",
        Some(&key),
        &doc,
    );
    assert_eq!(status, 200, "{head}\n{}", String::from_utf8_lossy(&p7s));
    std::fs::write(work.join("bt.p7s"), &p7s).unwrap();
    let verify = |tsa_root: &str| {
        hanko()
            .current_dir(work)
            .args([
                "seal-verify",
                "bt.p7s",
                "--data",
                "doc.bin",
                "--ca",
                "data/dev-pki/root.pem",
                "--tsa-ca",
                tsa_root,
            ])
            .output()
            .unwrap()
    };
    // The token is the other server's: it verifies under its root, not ours.
    let out = verify("tsa/dev-pki/root.pem");
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("CAdES B-T"), "{}", text(&out));
    let out = verify("data/dev-pki/root.pem");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("signature time-stamp: no chain to the --ca root"),
        "{}",
        text(&out)
    );

    // The credential's levels: seal-rsa3072 makes B-B only.
    assert_json_error(
        seal(
            server.addr,
            "credential=seal-rsa3072&level=B-T",
            Some(&key),
            &doc,
        ),
        400,
        "invalid_request",
        "credential \"seal-rsa3072\" does not allow level B-T (allowed: B-B)",
    );
    let (status, _, _) = seal(
        server.addr,
        "credential=seal-rsa3072&level=B-B",
        Some(&key),
        &doc,
    );
    assert_eq!(status, 200);

    // PDF seals: the same levels, and B-T stamped by the same external TSA (its bound
    // on tokens unknown: /Contents reserves the default).
    let pdf = fixture("gs-table.pdf");
    assert_json_error(
        seal_pdf(server.addr, "credential=seal-rsa3072&level=B-T", &key, &pdf),
        400,
        "invalid_request",
        "credential \"seal-rsa3072\" does not allow level B-T (allowed: B-B)",
    );
    let (status, head, sealed) =
        seal_pdf(server.addr, "credential=seal-p256&level=B-T", &key, &pdf);
    assert_eq!(status, 200, "{head}\n{}", String::from_utf8_lossy(&sealed));
    let sealed_path = work.join("sealed.pdf");
    std::fs::write(&sealed_path, &sealed).unwrap();
    assert_sealed(
        &sealed_path,
        &[
            &dir.join("dev-pki/root.pem"),
            &tsa_dir.join("dev-pki/root.pem"),
        ],
        1,
        "B-T",
    );

    // The credential's CSC algorithms: only ECDSA with SHA-256 offered and accepted.
    let csc = |method: &str, body: Value| -> (u16, Value) {
        let auth = format!("Bearer {key}");
        let r = send(
            server.addr,
            "POST",
            &format!("/csc/v2/{method}"),
            &[
                ("Content-Type", "application/json"),
                ("Authorization", &auth),
            ],
            body.to_string().as_bytes(),
        )
        .unwrap();
        (r.status, serde_json::from_slice(&r.body).unwrap())
    };
    let (status, info) = csc("credentials/info", json!({ "credentialID": "seal-p256" }));
    assert_eq!(status, 200, "{info}");
    assert_eq!(
        info["key"]["algo"],
        json!(["1.2.840.10045.4.3.2"]),
        "{info}"
    );
    assert!(
        info["description"].as_str().unwrap().contains("P-256"),
        "{info}"
    );
    let (status, err) = csc(
        "signatures/signHash",
        json!({
            "credentialID": "seal-p256",
            "SAD": "not-looked-at",
            "hashes": ["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"],
            "hashAlgorithmOID": "2.16.840.1.101.3.4.2.2",
            "signAlgo": "1.2.840.10045.4.3.3",
        }),
    );
    assert_eq!(status, 400, "{err}");
    assert!(
        err["error_description"]
            .as_str()
            .unwrap()
            .contains("does not allow signature algorithm"),
        "{err}"
    );

    // The TSA goes away: B-T is a retryable 503, B-B still works.
    let (tsa_status, tsa_out) = tsa.stop();
    assert!(tsa_status.success(), "{tsa_out}");
    let r = seal(
        server.addr,
        "credential=seal-p256&level=B-T",
        Some(&key),
        &doc,
    );
    assert!(r.1.to_ascii_lowercase().contains("retry-after:"), "{}", r.1);
    assert_json_error(r, 503, "temporarily_unavailable", "retry later");
    let (status, _, _) = seal(
        server.addr,
        "credential=seal-p256&level=B-B",
        Some(&key),
        &doc,
    );
    assert_eq!(status, 200);

    let (_, metrics) = server.get("/metrics");
    assert!(
        metrics.contains("hanko_seal_failures_total{reason=\"time_stamp\"} 1"),
        "{metrics}"
    );
    let (status, out) = server.stop();
    assert!(status.success(), "{out}");
    assert!(
        out.contains("B-T seals are stamped by an external TSA"),
        "{out}"
    );
    assert!(out.contains("time-stamp authority unavailable"), "{out}");
    assert!(!out.contains("panicked"), "{out}");

    // Four seals returned (one a PDF), four records; no token record here: the
    // external TSA logged its own tokens.
    let records = log_records(&dir);
    assert_eq!(of_kind(&records, "seal").len(), 4, "{records:#?}");
    assert_eq!(of_kind(&records, "timestamp").len(), 0, "{records:#?}");
    let tsa_records = log_records(&tsa_dir);
    assert_eq!(
        of_kind(&tsa_records, "timestamp").len(),
        2,
        "{tsa_records:#?}"
    );
}
