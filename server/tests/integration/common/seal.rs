//! Seals and the issuance log, read back: `hanko log export` records, and a seal
//! verified by openssl (`cms -verify` against the dev root, `ts -verify` of each
//! embedded signature time-stamp). Shared by the seal route's and the CSC API's tests.

use std::net::SocketAddr;
use std::path::Path;

use hanko_pki::HashAlgorithm;
use hanko_pki::oid::dotted;

use crate::common::http::send;
use crate::common::tsp::openssl;
use crate::common::{run, text};

/// POSTs `body` to `/api/v1/seal/cades?{query}` with `key` as bearer token:
/// (status, raw headers, body).
pub fn seal(
    addr: SocketAddr,
    query: &str,
    key: Option<&str>,
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut headers = vec![("Content-Type", "application/octet-stream")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a));
    }
    let r = send(
        addr,
        "POST",
        &format!("/api/v1/seal/cades?{query}"),
        &headers,
        body,
    )
    .unwrap();
    (r.status, r.head, r.body)
}

/// `openssl cms -verify` in `dir` of the DER seal `p7s` (detached over `data` unless
/// None) against the trust anchor `root`: whether it accepted, and its output.
pub fn openssl_cms_verify(dir: &Path, p7s: &str, data: Option<&str>, root: &str) -> (bool, String) {
    let mut args = vec![
        "cms",
        "-verify",
        "-binary",
        "-inform",
        "DER",
        "-in",
        p7s,
        "-CAfile",
        root,
        "-out",
        "/dev/null",
    ];
    if let Some(d) = data {
        args.extend(["-content", d]);
    }
    let out = std::process::Command::new("openssl")
        .current_dir(dir)
        .args(&args)
        .output()
        .unwrap();
    (out.status.success(), text(&out))
}

/// POSTs `pdf` to `/api/v1/seal/pdf?{query}` with the key: (status, head, body).
pub fn seal_pdf(addr: SocketAddr, query: &str, key: &str, pdf: &[u8]) -> (u16, String, Vec<u8>) {
    let auth = format!("Bearer {key}");
    let r = send(
        addr,
        "POST",
        &format!("/api/v1/seal/pdf?{query}"),
        &[
            ("Content-Type", "application/pdf"),
            ("Authorization", &auth),
        ],
        pdf,
    )
    .unwrap();
    (r.status, r.head, r.body)
}

/// Asserts a JSON error: `status`, `error` code, and a description containing `says`.
pub fn assert_json_error(got: (u16, String, Vec<u8>), status: u16, error: &str, says: &str) {
    let (code, head, body) = got;
    let text = String::from_utf8_lossy(&body);
    assert_eq!(code, status, "{head}\n{text}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"], error, "{text}");
    let description = v["error_description"].as_str().unwrap();
    assert!(description.contains(says), "{text}");
}

/// The records of a data directory's log (`hanko log export`), in sequence order, but
/// for the audit records (the server's own start and stop; `key_lifecycle.rs` reads
/// those).
pub fn log_records(data_dir: &Path) -> Vec<serde_json::Value> {
    issued(run(&[
        "log",
        "export",
        "--data-dir",
        data_dir.to_str().unwrap(),
    ]))
}

/// [`exported`] without the server's own records: the audit records, and the archive
/// time-stamps of anchoring, which a run slower than `anchor.interval_secs` (5 s in dev)
/// meets at any point (seen in CI: one more record than the test had caused).
pub fn issued(out: std::process::Output) -> Vec<serde_json::Value> {
    exported(out)
        .into_iter()
        .filter(|r| r["kind"] != "audit" && r["kind"] != "archive-stamp")
        .collect()
}

/// The JSON lines of a `hanko log export` run. (Not keyed by serial: seals and tokens
/// draw from counters of their own, so a seal and a token may share a serial.)
pub fn exported(out: std::process::Output) -> Vec<serde_json::Value> {
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn of_kind<'a>(records: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    records.iter().filter(|r| r["kind"] == kind).collect()
}

/// The signature value and the embedded signature time-stamp tokens of a DER seal.
pub fn signature_and_tokens(p7s: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let ci: rasn_cms::ContentInfo = rasn::der::decode(p7s).unwrap();
    let sd: rasn_cms::SignedData = rasn::der::decode(ci.content.as_bytes()).unwrap();
    let si = sd.signer_infos.to_vec()[0].clone();
    let tokens = si
        .unsigned_attrs
        .as_ref()
        .map(|attrs| {
            attrs
                .to_vec()
                .iter()
                .filter(|a| a.r#type.to_string() == dotted::SIGNATURE_TIME_STAMP_TOKEN)
                .flat_map(|a| a.values.to_vec())
                .map(|v| v.as_bytes().to_vec())
                .collect()
        })
        .unwrap_or_default();
    (si.signature.to_vec(), tokens)
}

/// Verifies the seal `p7s` (written to `<dir>/<name>.p7s`) with `openssl cms -verify`
/// against the dev root, over the file `detached_over` unless it is attached (`None`), and
/// checks that it carries `doc`;
/// then each embedded signature time-stamp with `openssl ts -verify` over the SHA-256 of
/// the signature value (both dev seal keys sign with SHA-256). Returns how many tokens
/// it carries. `dir` is the test's directory, `data/` in it the data directory.
pub fn verify_seal(
    dir: &Path,
    name: &str,
    p7s: &[u8],
    detached_over: Option<&str>,
    doc: &[u8],
) -> usize {
    let path = |f: &str| dir.join(f).to_str().unwrap().to_owned();
    let (p7s_path, out_path) = (path(&format!("{name}.p7s")), path(&format!("{name}.out")));
    std::fs::write(&p7s_path, p7s).unwrap();
    let root = path("data/dev-pki/root.pem");
    let mut args = vec![
        "cms", "-verify", "-binary", "-inform", "DER", "-in", &p7s_path, "-CAfile", &root, "-out",
        &out_path,
    ];
    if let Some(content) = detached_over {
        args.extend(["-content", content]);
    }
    let out = openssl(dir, &args);
    assert!(out.contains("Verification successful"), "{name}: {out}");
    assert_eq!(std::fs::read(&out_path).unwrap(), doc, "{name}");

    let (signature, tokens) = signature_and_tokens(p7s);
    let imprint = hex::encode(HashAlgorithm::Sha256.digest(&signature));
    let tsa_chain = path("data/dev-pki/tsa-rsa3072-chain.pem");
    for token in &tokens {
        let token_path = path(&format!("{name}.tst"));
        std::fs::write(&token_path, token).unwrap();
        let out = openssl(
            dir,
            &[
                "ts",
                "-verify",
                "-digest",
                &imprint,
                "-token_in",
                "-in",
                &token_path,
                "-CAfile",
                &root,
                "-untrusted",
                &tsa_chain,
            ],
        );
        assert!(out.contains("Verification: OK"), "{name}: {out}");
    }
    tokens.len()
}
