//! Helpers of the `tsa_*` server tests (on top of `integration/common.rs`, which they
//! include as `common`): a dev server per test binary, raw HTTP POST, requests built with
//! rasn, responses taken apart, and the issuance log read with the sqlite3 CLI.
#![allow(dead_code, reason = "each tsa_* binary uses a different subset")]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hanko_pki::HashAlgorithm;
use rasn::types::{Integer, OctetString};
use rasn_cms::tsp::{MessageImprint, PkiStatus, TimeStampReq, TimeStampResp, TstInfo};
use rasn_cms::{ContentInfo, SignedData};
use rasn_pkix::AlgorithmIdentifier;

use crate::common::{Server, hanko};

/// The ECDSA P-256 dev policy (server/src/dev.rs DEV_ECDSA_POLICY).
pub const P256_POLICY: &str = "1.3.6.1.5.5.7.13.2";
/// The default policy of the dev config.
pub const DEFAULT_POLICY: &str = "0.4.0.2023.1.1";

/// `hanko serve --dev` on a fresh data directory under `tmp`.
pub fn dev_server(tmp: &Path) -> (Server, PathBuf) {
    let dir = tmp.join("data");
    let server = Server::start(hanko(), &["--dev", "--data-dir", dir.to_str().unwrap()]);
    (server, dir)
}

/// HTTP/1.1 POST with `Connection: close`: (status, raw headers, body).
pub fn post(
    addr: SocketAddr,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    request(addr, "POST", path, Some(content_type), body)
}

/// Any HTTP/1.1 request with `Connection: close`: (status, raw headers, body).
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(ct) = content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) and close before reading all of a large body.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("not an HTTP response: {:?}", String::from_utf8_lossy(&raw)));
    let headers = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = headers
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap();
    (status, headers, raw[split + 4..].to_vec())
}

/// A TimeStampReq over `data`.
pub fn request_der(
    hash: HashAlgorithm,
    data: &[u8],
    nonce: Option<u64>,
    cert_req: bool,
    policy: Option<&str>,
) -> Vec<u8> {
    let req = TimeStampReq {
        version: 1,
        message_imprint: MessageImprint {
            hash_algorithm: AlgorithmIdentifier {
                algorithm: hanko_pki::cms::oid(hash.oid()).unwrap(),
                parameters: None,
            },
            hashed_message: OctetString::from(hash.digest(data)),
        },
        req_policy: policy.map(|p| hanko_pki::cms::oid(p).unwrap()),
        nonce: nonce.map(Integer::from),
        cert_req,
        extensions: None,
    };
    rasn::der::encode(&req).unwrap()
}

/// POSTs a request to `/tsa` and returns the DER reply (asserting HTTP 200 and the reply
/// media type).
pub fn timestamp(addr: SocketAddr, req: &[u8]) -> Vec<u8> {
    let (status, headers, body) = post(addr, "/tsa", "application/timestamp-query", req);
    assert_eq!(status, 200, "{headers}\n{}", String::from_utf8_lossy(&body));
    assert!(
        headers
            .to_ascii_lowercase()
            .contains("content-type: application/timestamp-reply"),
        "{headers}"
    );
    body
}

/// The response's status and failInfo bits.
pub fn status_of(resp_der: &[u8]) -> (PkiStatus, Vec<usize>) {
    let resp: TimeStampResp = rasn::der::decode(resp_der).unwrap();
    let bits = resp
        .status
        .fail_info
        .map(|b| b.iter_ones().collect())
        .unwrap_or_default();
    (resp.status.status, bits)
}

/// The token (ContentInfo) and TSTInfo of a granted response.
pub fn token_of(resp_der: &[u8]) -> (ContentInfo, TstInfo) {
    let resp: TimeStampResp = rasn::der::decode(resp_der).unwrap();
    assert_eq!(resp.status.status, PkiStatus::Granted, "{:?}", resp.status);
    let token = resp.time_stamp_token.unwrap();
    let sd: SignedData = rasn::der::decode(token.content.as_bytes()).unwrap();
    let tst: TstInfo = rasn::der::decode(&sd.encap_content_info.content.clone().unwrap()).unwrap();
    (token, tst)
}

/// A non-negative INTEGER's value as upper-case hex of its minimal unsigned bytes (the
/// issuance log's form: no 00 sign octet).
pub fn int_hex(i: &Integer) -> String {
    let der = rasn::der::encode(i).unwrap();
    strip_zeros(&hex::encode_upper(&der[2..]))
}

/// `(serial hex, token DER)` of every timestamp record of the data dir's SQLite log
/// (read with the sqlite3 CLI, read-only; the server should be stopped).
pub fn log_records(data_dir: &Path) -> Vec<(String, Vec<u8>)> {
    let db = data_dir.join("issuance-log.sqlite");
    let out = Command::new("sqlite3")
        .args([
            "-readonly",
            db.to_str().unwrap(),
            "SELECT hex(serial), hex(token) FROM log_records WHERE kind = 'timestamp' ORDER BY seq",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (s, t) = l.split_once('|').unwrap();
            // The log keeps minimal big-endian bytes; INTEGER content may carry a 00 sign
            // byte: compare without leading zeros.
            (strip_zeros(s), hex::decode(t).unwrap())
        })
        .collect()
}

/// Hex without leading `00` octets.
pub fn strip_zeros(h: &str) -> String {
    let mut s = h;
    while s.len() > 2 && s.starts_with("00") {
        s = &s[2..];
    }
    s.to_owned()
}

/// Runs openssl with `args` in `dir`; stdout + stderr, asserting success.
pub fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "openssl {args:?}:\n{text}");
    text
}

/// `openssl ts -verify` of the response `resp` against its request `req` and the trust
/// anchor `root` (written to `dir` as `name.tsq` / `name.tsr`), with `untrusted`
/// intermediates when the token carries no certificates; asserts "Verification: OK".
pub fn openssl_ts_verify(
    dir: &Path,
    name: &str,
    req: &[u8],
    resp: &[u8],
    root: &Path,
    untrusted: Option<&Path>,
) {
    let (tsq, tsr) = (
        dir.join(format!("{name}.tsq")),
        dir.join(format!("{name}.tsr")),
    );
    std::fs::write(&tsq, req).unwrap();
    std::fs::write(&tsr, resp).unwrap();
    let mut args = vec![
        "ts",
        "-verify",
        "-in",
        tsr.to_str().unwrap(),
        "-queryfile",
        tsq.to_str().unwrap(),
        "-CAfile",
        root.to_str().unwrap(),
    ];
    if let Some(chain) = untrusted {
        args.extend(["-untrusted", chain.to_str().unwrap()]);
    }
    let out = openssl(dir, &args);
    assert!(out.contains("Verification: OK"), "{name}: {out}");
}
