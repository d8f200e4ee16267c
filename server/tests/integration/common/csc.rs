//! Calls of the CSC API (`/csc/v1/...`, `/csc/v2/...`) and checks of its JSON errors.

use std::net::SocketAddr;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hanko_pki::HashAlgorithm;
use serde_json::Value;

use crate::common::http::send;

/// POSTs the JSON `body` to `/csc/{method}` (`method` with its version: `v1/info`) with
/// `key` as bearer token: (status, JSON answer).
pub fn call(addr: SocketAddr, method: &str, key: Option<&str>, body: &Value) -> (u16, Value) {
    call_raw(addr, method, key, body.to_string().as_bytes())
}

/// [`call`] with a body of any bytes.
pub fn call_raw(addr: SocketAddr, method: &str, key: Option<&str>, body: &[u8]) -> (u16, Value) {
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a));
    }
    let r = send(addr, "POST", &format!("/csc/{method}"), &headers, body).unwrap();
    let v = serde_json::from_slice(&r.body)
        .unwrap_or_else(|_| panic!("{method}: {}\n{}", r.head, String::from_utf8_lossy(&r.body)));
    (r.status, v)
}

/// Asserts a CSC error: `status`, `error` code, a description containing `says`.
pub fn assert_error(got: (u16, Value), status: u16, error: &str, says: &str) {
    let (code, v) = got;
    assert_eq!(code, status, "{v}");
    assert_eq!(v["error"], error, "{v}");
    let description = v["error_description"].as_str().unwrap();
    assert!(description.contains(says), "{v}");
}

pub fn b64(b: &[u8]) -> String {
    STANDARD.encode(b)
}

/// `n` distinct SHA-256 digests, tagged with `tag`.
pub fn digests(tag: &str, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| HashAlgorithm::Sha256.digest(format!("{tag} {i}").as_bytes()))
        .collect()
}

/// `openssl pkeyutl -verify` of `sig` over `digest` with the key of the PEM certificate
/// `cert`, with the options `opts` (`-pkeyopt ...`).
pub fn verifies(dir: &Path, cert: &Path, digest: &[u8], sig: &[u8], opts: &[&str]) -> bool {
    let (d, s) = (dir.join("digest"), dir.join("sig"));
    std::fs::write(&d, digest).unwrap();
    std::fs::write(&s, sig).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["pkeyutl", "-verify", "-certin", "-inkey"])
        .arg(cert)
        .arg("-in")
        .arg(&d)
        .arg("-sigfile")
        .arg(&s)
        .args(opts.iter().flat_map(|o| ["-pkeyopt", o]))
        .output()
        .unwrap();
    out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Verified Successfully")
}
