//! RFC 3161 on the wire for the tests: a dev server on a fresh data directory, requests
//! built with rasn, responses taken apart with rasn, the SQLite issuance log read with the
//! sqlite3 CLI, and `openssl ts -verify` as the third-party verifier.
//!
//! Serial numbers are compared in one form everywhere: lowercase hex of the minimal
//! big-endian bytes, as `hanko log export` and the log API write them.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use hanko_pki::HashAlgorithm;
use rasn::types::{Integer, OctetString};
use rasn_cms::tsp::{MessageImprint, PkiStatus, TimeStampReq, TimeStampResp, TstInfo};
use rasn_cms::{ContentInfo, SignedData};
use rasn_pkix::AlgorithmIdentifier;

use crate::common::http;
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

/// A TimeStampReq over `data`.
pub fn request_der(
    hash: HashAlgorithm,
    data: &[u8],
    nonce: Option<u64>,
    cert_req: bool,
    policy: Option<&str>,
) -> Vec<u8> {
    request_for_digest(hash, hash.digest(data), nonce, cert_req, policy)
}

/// A SHA-256 TimeStampReq whose imprint is `imprint` itself, with a nonce and certReq
/// (what `openssl ts -query -sha256 -cert` sends); the log records `imprint` as the
/// request hash.
pub fn imprint_request(imprint: &[u8; 32], nonce: u64) -> Vec<u8> {
    request_for_digest(
        HashAlgorithm::Sha256,
        imprint.to_vec(),
        Some(nonce),
        true,
        None,
    )
}

fn request_for_digest(
    hash: HashAlgorithm,
    digest: Vec<u8>,
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
            hashed_message: OctetString::from(digest),
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
    let (status, headers, body) = http::post(addr, "/tsa", "application/timestamp-query", req);
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

/// The response's token (DER) and serial when it grants one; `None` for a rejection.
pub fn granted(resp_der: &[u8]) -> Option<(String, Vec<u8>)> {
    let resp: TimeStampResp = rasn::der::decode(resp_der).ok()?;
    resp.time_stamp_token?;
    let (token, tst) = token_of(resp_der);
    Some((
        serial_hex(&tst.serial_number),
        rasn::der::encode(&token).unwrap(),
    ))
}

/// POSTs one time-stamp request; the grant (serial hex, token DER, whole response) when
/// a complete HTTP 200 carried one; `None` for anything else, a broken connection too.
pub fn post_timestamp(addr: SocketAddr, req: &[u8]) -> Option<(String, Vec<u8>, Vec<u8>)> {
    let r = http::send(
        addr,
        "POST",
        "/tsa",
        &[("Content-Type", "application/timestamp-query")],
        req,
    )
    .ok()?;
    if r.status != 200 {
        return None;
    }
    let (serial, token) = granted(&r.body)?;
    Some((serial, token, r.body))
}

/// A serial number in the one form the tests compare (see the module doc).
pub fn serial_hex(i: &Integer) -> String {
    let der = rasn::der::encode(i).unwrap();
    hex::encode(hanko_store::normalize_serial(&der[2..]))
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
            let serial = hex::decode(s).unwrap();
            (
                hex::encode(hanko_store::normalize_serial(&serial)),
                hex::decode(t).unwrap(),
            )
        })
        .collect()
}

/// Asserts that the data directory's SQLite log holds exactly the tokens in `granted`
/// (serial -> token DER), byte for byte, and no serial twice: nothing that was not sent.
pub fn assert_log_holds_exactly(data_dir: &Path, granted: &HashMap<String, Vec<u8>>) {
    let logged = log_records(data_dir);
    let serials: HashSet<&String> = logged.iter().map(|(s, _)| s).collect();
    assert_eq!(serials.len(), logged.len(), "a serial is logged twice");
    assert_eq!(logged.len(), granted.len(), "one record per granted token");
    for (serial, token) in &logged {
        let sent = granted
            .get(serial)
            .unwrap_or_else(|| panic!("logged serial {serial} was never granted"));
        assert_eq!(sent, token, "serial {serial}: log and reply differ");
    }
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

/// `openssl req` in `dir` with a new P-256 key written to `key` (unencrypted), then
/// `rest` (e.g. `-x509 -subj ... -out ...` for a self-signed root).
pub fn openssl_req_new_p256(dir: &Path, key: &str, rest: &[&str]) {
    let mut args = vec![
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        key,
    ];
    args.extend_from_slice(rest);
    let _ = openssl(dir, &args);
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
