//! `POST /tsa` under bad input, `GET /tsa/policy` and `hanko stamp` against a running
//! `hanko serve --dev`: wrong content type 415, body over 8 KiB 413, empty, garbage and
//! truncated bodies HTTP 200 with badDataFormat, GET /tsa 405; none of it takes the
//! server down (readyz still 200). One dev server for the whole binary.

use hanko_pki::HashAlgorithm;
use rasn_cms::tsp::PkiStatus;

use crate::common::http::{self, post};
use crate::common::tsp::{
    DEFAULT_POLICY, P256_POLICY, dev_server, request_der, status_of, timestamp, token_of,
};
use crate::common::{run, text};

const QUERY: &str = "application/timestamp-query";
const BAD_DATA_FORMAT: usize = 5;

#[test]
fn bad_input_policy_document_and_the_stamp_client() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, data) = dev_server(tmp.path());
    let addr = server.addr;
    let good = request_der(HashAlgorithm::Sha256, b"x", Some(7), true, None);

    // HTTP errors only where no TimeStampResp can be formed.
    let (status, headers, _) = post(addr, "/tsa", "application/octet-stream", &good);
    assert_eq!(status, 415, "{headers}");
    let (status, headers, _) = post(addr, "/tsa", QUERY, &vec![0x30; 9000]);
    assert_eq!(status, 413, "{headers}");
    let (status, body) = http::get(addr, "/tsa");
    assert_eq!(status, 405, "{body}");

    // Everything else: HTTP 200, a rejection with badDataFormat.
    let mut garbage = b"GET / HTTP/1.0 garbage".to_vec();
    garbage.extend([0xff; 64]);
    for (what, body) in [
        ("empty", Vec::new()),
        ("garbage", garbage),
        ("truncated", good[..good.len() - 5].to_vec()),
        ("trailing bytes", [good.as_slice(), &[0x00]].concat()),
    ] {
        let resp = timestamp(addr, &body);
        let (status, bits) = status_of(&resp);
        assert_eq!(status, PkiStatus::Rejection, "{what}");
        assert_eq!(bits, vec![BAD_DATA_FORMAT], "{what}");
    }
    // The good request still works, and the server is still ready.
    let (_, tst) = token_of(&timestamp(addr, &good));
    assert_eq!(tst.policy.to_string(), DEFAULT_POLICY);
    let (status, body) = server.get("/readyz");
    assert_eq!(status, 200, "{body}");

    // The disclosure summary (CONFORMANCE 44).
    let (status, body) = server.get("/tsa/policy");
    assert_eq!(status, 200, "{body}");
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["default_policy"], DEFAULT_POLICY);
    assert_eq!(
        doc["accepted_hashes"],
        serde_json::json!(["sha256", "sha384", "sha512"])
    );
    assert_eq!(doc["accuracy_ms"], 1000);
    assert_eq!(doc["ordering"], false);
    assert_eq!(doc["qualified"], false);
    assert_eq!(doc["dev"], true);
    assert_eq!(doc["clock"]["source"], "kernel");
    let policies = doc["policies"].as_array().unwrap();
    assert_eq!(policies.len(), 2, "{doc}");
    let by_oid = |oid: &str| policies.iter().find(|p| p["oid"] == oid).unwrap();
    let rsa = by_oid(DEFAULT_POLICY);
    assert_eq!(rsa["default"], true);
    assert_eq!(rsa["key"], "tsa-rsa3072");
    assert_eq!(rsa["algorithm"], "rsa-pkcs1-sha256");
    assert!(
        rsa["certificate"]["subject"]
            .as_str()
            .unwrap()
            .contains("CN=Hanko Dev TSA"),
        "{rsa}"
    );
    let p256 = by_oid(P256_POLICY);
    assert_eq!(p256["key"], "tsa-p256");
    assert_eq!(p256["algorithm"], "ecdsa-sha256");
    for p in policies {
        let until = p["signs_until"].as_str().unwrap();
        let not_after = p["certificate"]["not_after"].as_str().unwrap();
        assert!(until.ends_with('Z') && until <= not_after, "{p}");
    }

    // `hanko stamp` against it, then `hanko verify` of what it wrote.
    let doc_path = tmp.path().join("hello.txt");
    std::fs::write(&doc_path, b"hello, time\n").unwrap();
    let url = format!("http://{addr}/tsa");
    let d = doc_path.to_str().unwrap();
    let out = run(&[
        "stamp",
        d,
        "--url",
        &url,
        "--hash",
        "sha384",
        "--policy",
        P256_POLICY,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Time-stamp granted"), "{}", text(&out));
    let tsr = format!("{d}.tsr");
    let root = data.join("dev-pki/root.pem");
    let out = run(&["verify", &tsr, "--data", d, "--ca", root.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(P256_POLICY), "{}", text(&out));
    // A refused request: exit 1 with the failure info.
    let out = run(&[
        "stamp",
        d,
        "--url",
        &url,
        "--policy",
        "1.2.3.4",
        "--out",
        "/dev/null",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("unacceptedPolicy"), "{}", text(&out));
    // No TSA there: exit 2.
    let out = run(&[
        "stamp",
        d,
        "--url",
        "http://127.0.0.1:9/tsa",
        "--timeout",
        "5",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    let (status, body) = server.get("/readyz");
    assert_eq!(status, 200, "{body}");
    let (exit, log) = server.stop();
    assert!(exit.success(), "{log}");
}
