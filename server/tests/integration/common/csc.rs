//! Calls of the CSC API (`/csc/v1/...`, `/csc/v2/...`) and checks of its JSON errors.

use std::net::SocketAddr;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hanko_pki::HashAlgorithm;
use hanko_pki::oid::dotted;
use serde_json::{Value, json};

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

/// A CSC API version, for the calls whose fields they name differently.
#[derive(Clone, Copy, Debug)]
pub enum Csc {
    V1,
    V2,
}

impl Csc {
    /// POSTs `body` to this version's `method` (see [`call`]).
    pub fn call(
        self,
        addr: SocketAddr,
        method: &str,
        key: Option<&str>,
        body: &Value,
    ) -> (u16, Value) {
        let v = match self {
            Csc::V1 => "v1",
            Csc::V2 => "v2",
        };
        call(addr, &format!("{v}/{method}"), key, body)
    }

    /// A SAD for `n` signatures with `credential`, bound to the SHA-256 `hashes` when
    /// given (v1 `hash`; v2 `hashes` and `hashAlgorithmOID`).
    pub fn authorize(
        self,
        addr: SocketAddr,
        key: &str,
        credential: &str,
        n: usize,
        hashes: Option<&[Vec<u8>]>,
    ) -> String {
        let mut body = json!({ "credentialID": credential, "numSignatures": n });
        if let Some(h) = hashes {
            let list = json!(h.iter().map(|d| b64(d)).collect::<Vec<_>>());
            match self {
                Csc::V1 => body["hash"] = list,
                Csc::V2 => {
                    body["hashes"] = list;
                    body["hashAlgorithmOID"] = json!(dotted::SHA256);
                }
            }
        }
        let (status, v) = self.call(addr, "credentials/authorize", Some(key), &body);
        assert_eq!(status, 200, "{v}");
        assert!(v["expiresIn"].as_u64().unwrap() > 0, "{v}");
        v["SAD"].as_str().unwrap().to_owned()
    }

    /// A signHash body with SHA-256 hashes, in this version's words.
    pub fn sign_body(
        self,
        credential: &str,
        sad: Option<&str>,
        sign_algo: &str,
        hashes: &[Vec<u8>],
    ) -> Value {
        let list = json!(hashes.iter().map(|d| b64(d)).collect::<Vec<_>>());
        let (hashes_name, alg_name) = match self {
            Csc::V1 => ("hash", "hashAlgo"),
            Csc::V2 => ("hashes", "hashAlgorithmOID"),
        };
        let mut body = json!({
            "credentialID": credential,
            hashes_name: list,
            alg_name: dotted::SHA256,
            "signAlgo": sign_algo,
        });
        if let Some(s) = sad {
            body["SAD"] = json!(s);
        }
        body
    }
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

/// The `[[api_keys]]` entry of a second sealing client, "billing", whose API key is
/// `key` and who may use `seal-p256` only (config TOML to append).
pub fn billing_client(key: &str) -> String {
    format!(
        "[[api_keys]]\nname = \"billing\"\nsha256 = \"{}\"\nscopes = [\"seal\"]\n\
         credentials = [\"seal-p256\"]\n\n",
        hanko_server::auth::key_digest_hex(key),
    )
}
