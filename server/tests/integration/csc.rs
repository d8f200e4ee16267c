//! Issue #12, the Cloud Signature Consortium API v2 through the real `hanko serve --dev`:
//! `info`, `credentials/list|info|authorize`, `signatures/signHash` for both dev seal
//! credentials, every signature verified by `openssl pkeyutl -verify` against the
//! credential's certificate, and each refusal with its own status and JSON error.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hanko_pki::oid::dotted;
use hanko_pki::{DigestSignAlgorithm, HashAlgorithm};
use serde_json::{Value, json};

use crate::common::csc::{Csc, assert_error, b64, billing_client, digests, verifies};
use crate::common::tsp::openssl;
use crate::common::{Server, dev_api_key, hanko, run, start_dev_with_extra, text};

const V: Csc = Csc::V2;

/// (credential, key length, signAlgo, signAlgoParams, pkeyutl options).
type Case<'a> = (&'a str, u64, &'a str, Option<&'a str>, &'a [&'a str]);

#[test]
fn csc_v2_signatures_verify_with_openssl() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let server = Server::start(hanko(), &["--dev", "--data-dir", dir.to_str().unwrap()]);
    let key = dev_api_key(&dir);
    let addr = server.addr;

    let (status, info) = V.call(addr, "info", None, &json!({}));
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["specs"], "2.0.0.0");
    assert_eq!(info["authType"], json!(["external"]));
    let methods = info["methods"].as_array().unwrap();
    for m in [
        "credentials/list",
        "credentials/authorize",
        "signatures/signHash",
    ] {
        assert!(methods.contains(&json!(m)), "{info}");
    }

    let (status, list) = V.call(addr, "credentials/list", Some(&key), &json!({}));
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["credentialIDs"], json!(["seal-rsa3072", "seal-p256"]));

    let pss = DigestSignAlgorithm::RsaPss(HashAlgorithm::Sha256);
    let pss_params = b64(&pss.sign_algo_params_der().unwrap());
    let cases: [Case; 3] = [
        (
            "seal-rsa3072",
            3072,
            dotted::SHA256_WITH_RSA_ENCRYPTION,
            None,
            &["digest:sha256"],
        ),
        (
            "seal-rsa3072",
            3072,
            dotted::RSASSA_PSS,
            Some(&pss_params),
            &[
                "rsa_padding_mode:pss",
                "rsa_pss_saltlen:32",
                "digest:sha256",
            ],
        ),
        (
            "seal-p256",
            256,
            dotted::ECDSA_WITH_SHA256,
            None,
            &["digest:sha256"],
        ),
    ];
    for (credential, len, sign_algo, params, opts) in cases {
        let (status, ci) = V.call(
            addr,
            "credentials/info",
            Some(&key),
            &json!({ "credentialID": credential, "certificates": "chain", "certInfo": true }),
        );
        assert_eq!(status, 200, "{ci}");
        assert_eq!(ci["key"]["status"], "enabled", "{ci}");
        assert_eq!(ci["key"]["len"], len, "{ci}");
        assert!(
            ci["key"]["algo"]
                .as_array()
                .unwrap()
                .contains(&json!(sign_algo)),
            "{ci}"
        );
        assert_eq!(ci["cert"]["status"], "valid", "{ci}");
        assert!(
            ci["cert"]["subjectDN"].as_str().unwrap().contains("CN="),
            "{ci}"
        );
        assert_eq!(ci["SCAL"], "1");
        assert_eq!(ci["multisign"], 64);
        let chain = ci["cert"]["certificates"].as_array().unwrap();
        assert!(chain.len() >= 2, "leaf and its issuers: {ci}");
        let leaf = STANDARD.decode(chain[0].as_str().unwrap()).unwrap();
        let leaf_der = tmp.path().join(format!("{credential}.der"));
        let leaf_pem = tmp.path().join(format!("{credential}.pem"));
        std::fs::write(&leaf_der, &leaf).unwrap();
        openssl(
            tmp.path(),
            &[
                "x509",
                "-inform",
                "DER",
                "-in",
                leaf_der.to_str().unwrap(),
                "-out",
                leaf_pem.to_str().unwrap(),
            ],
        );
        let (_, single) = V.call(
            addr,
            "credentials/info",
            Some(&key),
            &json!({ "credentialID": credential }),
        );
        assert_eq!(single["cert"]["certificates"], json!([chain[0]]));

        for (n, scal2) in [(1, true), (3, false), (3, true)] {
            let hashes = digests(&format!("{credential} {sign_algo} {n} {scal2}"), n);
            let sad = V.authorize(addr, &key, credential, n, scal2.then_some(&hashes[..]));
            let mut body = V.sign_body(credential, Some(&sad), sign_algo, &hashes);
            if let Some(p) = params {
                body["signAlgoParams"] = json!(p);
            }
            let (status, v) = V.call(addr, "signatures/signHash", Some(&key), &body);
            assert_eq!(status, 200, "{credential} {sign_algo}: {v}");
            let sigs = v["signatures"].as_array().unwrap();
            assert_eq!(sigs.len(), n, "{v}");
            for (i, (digest, sig)) in hashes.iter().zip(sigs).enumerate() {
                let sig = STANDARD.decode(sig.as_str().unwrap()).unwrap();
                assert!(
                    verifies(tmp.path(), &leaf_pem, digest, &sig, opts),
                    "{credential} {sign_algo} {n} #{i}"
                );
                // In order: not the signature of another hash of the call.
                let other = &hashes[(i + 1) % n];
                if n > 1 {
                    assert!(!verifies(tmp.path(), &leaf_pem, other, &sig, opts));
                }
            }
        }
    }
    let (status, out) = server.stop();
    assert!(status.success(), "{out}");
    assert!(!out.contains(&key), "the API key was logged");
}

#[test]
fn csc_v2_refusals_each_with_its_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let d = dir.to_str().unwrap();
    let init = run(&["dev-init", "--data-dir", d]);
    assert!(init.status.success(), "{}", text(&init));
    let key = dev_api_key(&dir);
    let billing = "hanko_csc-billing-client-key";
    let server = start_dev_with_extra(
        &dir,
        &format!(
            "{}[http]\ncsc_sad_lifetime_secs = 3\n",
            billing_client(billing)
        ),
    );
    let addr = server.addr;
    let p256 = "seal-p256";
    let ecdsa = dotted::ECDSA_WITH_SHA256;
    let sign = |who: &str, body: &Value| V.call(addr, "signatures/signHash", Some(who), body);
    let one = digests("one", 1);
    let two = digests("two", 2);

    // The second client sees only its credential, and may not use another.
    let (_, list) = V.call(addr, "credentials/list", Some(billing), &json!({}));
    assert_eq!(list["credentialIDs"], json!([p256]));
    assert_error(
        V.call(
            addr,
            "credentials/info",
            Some(billing),
            &json!({ "credentialID": "seal-rsa3072" }),
        ),
        403,
        "access_denied",
        "may not use the seal credential \"seal-rsa3072\"",
    );
    assert_error(
        V.call(
            addr,
            "credentials/authorize",
            Some(billing),
            &json!({ "credentialID": "seal-rsa3072", "numSignatures": 1 }),
        ),
        403,
        "access_denied",
        "seal-rsa3072",
    );
    // No API key, and an unknown credential.
    assert_error(
        V.call(addr, "credentials/list", None, &json!({})),
        401,
        "invalid_request",
        "authentication required",
    );
    assert_error(
        V.call(
            addr,
            "credentials/authorize",
            Some(&key),
            &json!({ "credentialID": "seal-nope", "numSignatures": 1 }),
        ),
        400,
        "invalid_request",
        "invalid parameter credentialID",
    );
    assert_error(
        sign(&key, &V.sign_body("seal-nope", Some("x"), ecdsa, &one)),
        400,
        "invalid_request",
        "invalid parameter credentialID",
    );

    // Missing, unknown, foreign, reused, expired SAD.
    assert_error(
        sign(&key, &V.sign_body(p256, None, ecdsa, &one)),
        400,
        "invalid_request",
        "invalid SAD: missing",
    );
    assert_error(
        sign(&key, &V.sign_body(p256, Some("AAAA"), ecdsa, &one)),
        400,
        "invalid_request",
        "invalid SAD: unknown",
    );
    let sad = V.authorize(addr, &key, p256, 1, None);
    assert_error(
        sign(billing, &V.sign_body(p256, Some(&sad), ecdsa, &one)),
        400,
        "invalid_request",
        "another client",
    );
    // Not spent by the foreign attempt; spent by its first use.
    let (status, v) = sign(&key, &V.sign_body(p256, Some(&sad), ecdsa, &one));
    assert_eq!(status, 200, "{v}");
    assert_error(
        sign(&key, &V.sign_body(p256, Some(&sad), ecdsa, &one)),
        400,
        "invalid_request",
        "already used",
    );
    let sad = V.authorize(addr, &key, p256, 1, None);
    std::thread::sleep(Duration::from_millis(3500));
    assert_error(
        sign(&key, &V.sign_body(p256, Some(&sad), ecdsa, &one)),
        400,
        "invalid_request",
        "invalid SAD: expired",
    );

    // A SAD for other hashes; more hashes than authorised.
    let sad = V.authorize(addr, &key, p256, 1, Some(&one));
    assert_error(
        sign(
            &key,
            &V.sign_body(p256, Some(&sad), ecdsa, &digests("other", 1)),
        ),
        400,
        "invalid_request",
        "not issued for these hashes",
    );
    let sad = V.authorize(addr, &key, p256, 1, None);
    assert_error(
        sign(&key, &V.sign_body(p256, Some(&sad), ecdsa, &two)),
        400,
        "invalid_request",
        "more hashes than it authorises",
    );

    // Bad hashes and algorithms: refused before the SAD is spent.
    let sad = V.authorize(addr, &key, p256, 2, None);
    let short = vec![vec![1u8; 20]];
    assert_error(
        sign(&key, &V.sign_body(p256, Some(&sad), ecdsa, &short)),
        400,
        "invalid_request",
        "hashes[0] is 20 bytes; a SHA-256 hash is 32",
    );
    assert_error(
        sign(&key, &V.sign_body(p256, Some(&sad), "1.2.3.4", &one)),
        400,
        "invalid_request",
        "unknown or unsupported signature algorithm 1.2.3.4",
    );
    assert_error(
        sign(
            &key,
            &V.sign_body(p256, Some(&sad), dotted::SHA256_WITH_RSA_ENCRYPTION, &one),
        ),
        400,
        "invalid_request",
        "does not fit the key",
    );
    let mut bad64 = V.sign_body(p256, Some(&sad), ecdsa, &one);
    bad64["hashes"] = json!(["not base64!"]);
    assert_error(
        sign(&key, &bad64),
        400,
        "invalid_request",
        "hashes[0] is not valid base64",
    );
    assert_error(
        sign(&key, &V.sign_body(p256, Some(&sad), ecdsa, &[])),
        400,
        "invalid_request",
        "hashes is empty",
    );
    let mut big = V.sign_body(p256, Some(&sad), ecdsa, &one);
    big["padding"] = json!("x".repeat(70 * 1024));
    assert_error(sign(&key, &big), 413, "invalid_request", "larger than");
    let (status, v) = sign(&key, &V.sign_body(p256, Some(&sad), ecdsa, &two));
    assert_eq!(status, 200, "the SAD survived the refusals: {v}");

    let (status, out) = server.stop();
    assert!(status.success(), "{out}");
    for k in [billing, key.as_str()] {
        assert!(!out.contains(k), "an API key was logged");
    }
}
