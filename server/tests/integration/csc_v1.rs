//! Issue #12, CSC API 1.0.4 (`/csc/v1/...`) and `signatures/timestamp` (v1 and v2)
//! through the real `hanko serve --dev`: the v1 shapes, v1 signatures verified by
//! `openssl pkeyutl -verify`, time-stamp tokens verified by `openssl ts -verify` and
//! found in the issuance log exactly, `[csc]` in `info`, and every refusal with its own
//! status and CSC error, logging nothing.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hanko_pki::HashAlgorithm;
use hanko_pki::oid::dotted;
use serde_json::{Value, json};

use crate::common::csc::{
    Csc, assert_error, b64, billing_client, call, call_raw, digests, verifies,
};
use crate::common::seal::{log_records, of_kind};
use crate::common::tsp::openssl;
use crate::common::{dev_api_key, dev_init, start_dev_with_extra};

const V: Csc = Csc::V1;

/// Verifies the base64 token `b64_token` over `digest` with `openssl ts -verify`
/// against the dev root, and that it carries `nonce`; returns its DER.
fn check_token(dir: &Path, b64_token: &Value, digest: &[u8], nonce: u64) -> Vec<u8> {
    let token = STANDARD.decode(b64_token.as_str().unwrap()).unwrap();
    let ci: rasn_cms::ContentInfo = rasn::der::decode(&token).unwrap();
    let sd: rasn_cms::SignedData = rasn::der::decode(ci.content.as_bytes()).unwrap();
    let tst: rasn_cms::tsp::TstInfo =
        rasn::der::decode(&sd.encap_content_info.content.clone().unwrap()).unwrap();
    assert_eq!(tst.nonce, Some(rasn::types::Integer::from(nonce)));
    let path = dir.join("token.tst");
    std::fs::write(&path, &token).unwrap();
    let data = dir.join("data/dev-pki");
    let out = openssl(
        dir,
        &[
            "ts",
            "-verify",
            "-digest",
            &hex::encode(digest),
            "-token_in",
            "-in",
            path.to_str().unwrap(),
            "-CAfile",
            data.join("root.pem").to_str().unwrap(),
            "-untrusted",
            data.join("tsa-rsa3072-chain.pem").to_str().unwrap(),
        ],
    );
    assert!(out.contains("Verification: OK"), "{out}");
    token
}

#[test]
fn csc_v1_signatures_and_timestamps_verify_and_tokens_are_logged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    dev_init(&dir);
    let key = dev_api_key(&dir);
    let server = start_dev_with_extra(
        &dir,
        "[csc]\nname = \"City Hall Seal Service\"\nlogo = \"https://example.org/logo.png\"\n\
         region = \"JP\"\nlang = \"ja-JP\"\ndescription = \"公印 of the city hall\"\n",
    );
    let addr = server.addr;

    // info, both versions: the [csc] values, the version's specs and methods.
    for (version, specs, sign_doc) in [("v1", "1.0.4.0", false), ("v2", "2.0.0.0", true)] {
        let (status, info) = call(addr, &format!("{version}/info"), None, &json!({}));
        assert_eq!(status, 200, "{info}");
        assert_eq!(info["specs"], specs);
        assert_eq!(info["name"], "City Hall Seal Service");
        assert_eq!(info["logo"], "https://example.org/logo.png");
        assert_eq!(info["region"], "JP");
        assert_eq!(info["lang"], "ja-JP");
        assert_eq!(info["description"], "公印 of the city hall");
        assert_eq!(info["authType"], json!(["external"]));
        let methods = info["methods"].as_array().unwrap();
        assert!(methods.contains(&json!("signatures/timestamp")), "{info}");
        assert_eq!(methods.contains(&json!("signatures/signDoc")), sign_doc);
    }

    // credentials/info: v1 says authMode, not v2's auth object.
    let (status, ci) = V.call(
        addr,
        "credentials/info",
        Some(&key),
        &json!({ "credentialID": "seal-p256", "certificates": "chain", "certInfo": false }),
    );
    assert_eq!(status, 200, "{ci}");
    assert_eq!(ci["authMode"], "implicit", "{ci}");
    assert!(ci.get("auth").is_none(), "{ci}");
    assert_eq!(ci["lang"], "ja-JP");
    assert!(ci["cert"]["certificates"].as_array().unwrap().len() >= 2);
    let (_, list) = V.call(addr, "credentials/list", Some(&key), &json!({}));
    assert_eq!(list["credentialIDs"], json!(["seal-rsa3072", "seal-p256"]));

    // signHash in v1 words, a SAD bound to the hashes' bytes and one that is not.
    let pki = dir.join("dev-pki");
    let cases = [
        (
            "seal-rsa3072",
            dotted::SHA256_WITH_RSA_ENCRYPTION,
            ["digest:sha256"].as_slice(),
        ),
        (
            "seal-p256",
            dotted::ECDSA_WITH_SHA256,
            ["digest:sha256"].as_slice(),
        ),
    ];
    for (credential, sign_algo, opts) in cases {
        let cert = pki.join(format!("{credential}.pem"));
        for bound in [false, true] {
            let hashes = digests(&format!("{credential} {bound}"), 2);
            let sad = V.authorize(addr, &key, credential, 2, bound.then_some(&hashes[..]));
            let (status, v) = V.call(
                addr,
                "signatures/signHash",
                Some(&key),
                &V.sign_body(credential, Some(&sad), sign_algo, &hashes),
            );
            assert_eq!(status, 200, "{credential}: {v}");
            let sigs = v["signatures"].as_array().unwrap();
            assert_eq!(sigs.len(), 2);
            for (digest, sig) in hashes.iter().zip(sigs) {
                let sig = STANDARD.decode(sig.as_str().unwrap()).unwrap();
                assert!(
                    verifies(tmp.path(), &cert, digest, &sig, opts),
                    "{credential}"
                );
            }
        }
    }

    // timestamp, v1 and v2 words: verified tokens carrying the nonce, each in the log.
    let mut tokens = Vec::new();
    for (i, (version, alg_name)) in [("v1", "hashAlgo"), ("v2", "hashAlgorithmOID")]
        .into_iter()
        .enumerate()
    {
        let digest = HashAlgorithm::Sha256.digest(format!("stamp {version}").as_bytes());
        let nonce = 0x0123_4567_89ab_cdef_u64 + i as u64;
        let (status, v) = call(
            addr,
            &format!("{version}/signatures/timestamp"),
            Some(&key),
            &json!({ "hash": b64(&digest), alg_name: dotted::SHA256, "nonce": format!("{nonce:x}") }),
        );
        assert_eq!(status, 200, "{v}");
        tokens.push(check_token(tmp.path(), &v["timestamp"], &digest, nonce));
    }
    let (status, out) = server.stop();
    assert!(status.success(), "{out}");
    assert!(!out.contains(&key), "the API key was logged");

    // Exactly the two tokens, recorded for the dev client; signHash records nothing.
    let records = log_records(&dir);
    assert_eq!(records.len(), 2, "{records:#?}");
    let stamped = of_kind(&records, "timestamp");
    for token in &tokens {
        let hash = hex::encode(HashAlgorithm::Sha256.digest(token));
        let r: Vec<_> = stamped
            .iter()
            .filter(|r| r["object_hash"] == hash)
            .collect();
        assert_eq!(r.len(), 1, "{records:#?}");
        assert_eq!(r[0]["client"], "dev-client");
    }
}

#[test]
fn csc_v1_and_timestamp_refusals_each_with_its_error_and_nothing_logged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    dev_init(&dir);
    let key = dev_api_key(&dir);
    let billing = "hanko_csc-v1-billing-client-key";
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
    let sign = |who: Option<&str>, body: &Value| V.call(addr, "signatures/signHash", who, body);
    let one = digests("one", 1);
    let two = digests("two", 2);

    // Unknown credential, another client's credential, no API key.
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
        sign(None, &V.sign_body(p256, Some("x"), ecdsa, &one)),
        401,
        "invalid_request",
        "authentication required",
    );
    // Missing, reused SAD; a SAD bound to other hashes; more hashes than authorised.
    assert_error(
        sign(Some(&key), &V.sign_body(p256, None, ecdsa, &one)),
        400,
        "invalid_request",
        "invalid SAD: missing",
    );
    let sad = V.authorize(addr, &key, p256, 1, None);
    assert_eq!(
        sign(Some(&key), &V.sign_body(p256, Some(&sad), ecdsa, &one)).0,
        200
    );
    assert_error(
        sign(Some(&key), &V.sign_body(p256, Some(&sad), ecdsa, &one)),
        400,
        "invalid_request",
        "already used",
    );
    let sad = V.authorize(addr, &key, p256, 1, Some(&one));
    assert_error(
        sign(
            Some(&key),
            &V.sign_body(p256, Some(&sad), ecdsa, &digests("x", 1)),
        ),
        400,
        "invalid_request",
        "not issued for these hashes",
    );
    let sad = V.authorize(addr, &key, p256, 1, None);
    assert_error(
        sign(Some(&key), &V.sign_body(p256, Some(&sad), ecdsa, &two)),
        400,
        "invalid_request",
        "more hashes than it authorises",
    );
    // A v1 authorize hash of no accepted length; its count not numSignatures.
    assert_error(
        V.call(
            addr,
            "credentials/authorize",
            Some(&key),
            &json!({ "credentialID": p256, "numSignatures": 1, "hash": [b64(&[1; 20])] }),
        ),
        400,
        "invalid_request",
        "hash[0] is 20 bytes; no accepted hash algorithm",
    );
    assert_error(
        V.call(
            addr,
            "credentials/authorize",
            Some(&key),
            &json!({ "credentialID": p256, "numSignatures": 2, "hash": [b64(&one[0])] }),
        ),
        400,
        "invalid_request",
        "numSignatures is 2 but 1 hash were given",
    );
    // Bad hashes and algorithms: refused before the SAD is spent.
    let sad = V.authorize(addr, &key, p256, 2, None);
    assert_error(
        sign(
            Some(&key),
            &V.sign_body(p256, Some(&sad), ecdsa, &[vec![1; 20]]),
        ),
        400,
        "invalid_request",
        "hash[0] is 20 bytes; a SHA-256 hash is 32",
    );
    assert_error(
        sign(Some(&key), &V.sign_body(p256, Some(&sad), "1.2.3.4", &one)),
        400,
        "invalid_request",
        "unknown or unsupported signature algorithm 1.2.3.4",
    );
    let mut sha1 = V.sign_body(p256, Some(&sad), ecdsa, &one);
    sha1["hashAlgo"] = json!("1.3.14.3.2.26");
    assert_error(sign(Some(&key), &sha1), 400, "invalid_request", "too weak");
    let mut bad64 = V.sign_body(p256, Some(&sad), ecdsa, &one);
    bad64["hash"] = json!(["not base64!"]);
    assert_error(
        sign(Some(&key), &bad64),
        400,
        "invalid_request",
        "hash[0] is not valid base64",
    );
    assert_error(
        sign(Some(&key), &V.sign_body(p256, Some(&sad), ecdsa, &[])),
        400,
        "invalid_request",
        "hash is empty",
    );
    let mut big = V.sign_body(p256, Some(&sad), ecdsa, &one);
    big["padding"] = json!("x".repeat(70 * 1024));
    assert_error(
        sign(Some(&key), &big),
        413,
        "invalid_request",
        "larger than",
    );
    assert_error(
        call_raw(addr, "v1/signatures/signHash", Some(&key), b"{\"hash\": [1"),
        400,
        "invalid_request",
        "invalid JSON body",
    );
    let (status, v) = sign(Some(&key), &V.sign_body(p256, Some(&sad), ecdsa, &two));
    assert_eq!(status, 200, "the SAD survived the refusals: {v}");
    // An expired SAD.
    let sad = V.authorize(addr, &key, p256, 1, None);
    std::thread::sleep(Duration::from_millis(3500));
    assert_error(
        sign(Some(&key), &V.sign_body(p256, Some(&sad), ecdsa, &one)),
        400,
        "invalid_request",
        "invalid SAD: expired",
    );

    // signatures/timestamp, both versions: each bad parameter refused, nothing issued.
    let digest = b64(&one[0]);
    for (version, alg) in [("v1", "hashAlgo"), ("v2", "hashAlgorithmOID")] {
        let method = format!("{version}/signatures/timestamp");
        let stamp = |who: Option<&str>, body: Value| call(addr, &method, who, &body);
        assert_error(
            stamp(None, json!({ "hash": digest, alg: dotted::SHA256 })),
            401,
            "invalid_request",
            "authentication required",
        );
        assert_error(
            stamp(Some(&key), json!({ "hash": digest })),
            400,
            "invalid_request",
            &format!("missing string parameter {alg}"),
        );
        assert_error(
            stamp(Some(&key), json!({ alg: dotted::SHA256 })),
            400,
            "invalid_request",
            "missing string parameter hash",
        );
        assert_error(
            stamp(
                Some(&key),
                json!({ "hash": "no base64!", alg: dotted::SHA256 }),
            ),
            400,
            "invalid_request",
            "hash is not valid base64",
        );
        assert_error(
            stamp(
                Some(&key),
                json!({ "hash": b64(&[1; 20]), alg: dotted::SHA256 }),
            ),
            400,
            "invalid_request",
            "hash is 20 bytes; a SHA-256 hash is 32",
        );
        assert_error(
            stamp(
                Some(&key),
                json!({ "hash": b64(&[1; 20]), alg: "1.3.14.3.2.26" }),
            ),
            400,
            "invalid_request",
            "too weak",
        );
        assert_error(
            stamp(Some(&key), json!({ "hash": digest, alg: "1.2.3.4" })),
            400,
            "invalid_request",
            "1.2.3.4",
        );
        for nonce in ["", "xyz", "0", "12345678901234567"] {
            assert_error(
                stamp(
                    Some(&key),
                    json!({ "hash": digest, alg: dotted::SHA256, "nonce": nonce }),
                ),
                400,
                "invalid_request",
                "nonce must be 1 to 16 hexadecimal digits",
            );
        }
        let mut big = json!({ "hash": digest, alg: dotted::SHA256 });
        big["padding"] = json!("x".repeat(70 * 1024));
        assert_error(
            stamp(Some(&key), big),
            413,
            "invalid_request",
            "larger than",
        );
    }

    let (status, out) = server.stop();
    assert!(status.success(), "{out}");
    assert!(!out.contains("panicked"), "{out}");
    for k in [billing, key.as_str()] {
        assert!(!out.contains(k), "an API key was logged");
    }
    let records = log_records(&dir);
    assert!(
        records.is_empty(),
        "refusals logged something: {records:#?}"
    );
}
