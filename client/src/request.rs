//! Building an RFC 3161 TimeStampReq: the imprint of the data (hashed here, so that only
//! the hash leaves the machine), a random nonce, an optional policy and certReq.
//!
//! The request is encoded once ([`encode`]); those bytes are what is sent, and what
//! `hanko stamp --query-out` writes for a later `verify` against the request.

use std::io::Read as _;
use std::path::Path;

use hanko_pki::HashAlgorithm;
use rasn::types::{Integer, OctetString};
use rasn_cms::tsp::{MessageImprint, TimeStampReq};
use rasn_pkix::AlgorithmIdentifier;

use crate::Error;

/// A version 1 TimeStampReq for `digest` (made with `hash`), with `nonce` if given,
/// asking for `policy` (a dotted OID) if given, and for the TSA's certificates in the
/// token if `cert_req`.
pub fn build(
    hash: HashAlgorithm,
    digest: Vec<u8>,
    nonce: Option<u64>,
    policy: Option<&str>,
    cert_req: bool,
) -> Result<TimeStampReq, Error> {
    let policy = match policy {
        Some(p) => Some(hanko_pki::cms::oid(p).map_err(|_| Error::PolicyNotAnOid(p.to_owned()))?),
        None => None,
    };
    Ok(TimeStampReq {
        version: 1,
        message_imprint: MessageImprint {
            // RFC 5754 §2: SHA-2 parameters absent.
            hash_algorithm: AlgorithmIdentifier {
                algorithm: hanko_pki::cms::oid(hash.oid())
                    .map_err(|e| Error::HashOid(e.to_string()))?,
                parameters: None,
            },
            hashed_message: OctetString::from(digest),
        },
        req_policy: policy,
        nonce: nonce.map(Integer::from),
        cert_req,
        extensions: None,
    })
}

/// The request's DER, the bytes to send.
pub fn encode(request: &TimeStampReq) -> Result<Vec<u8>, Error> {
    rasn::der::encode(request).map_err(|e| Error::EncodeRequest(e.to_string()))
}

/// A random 64-bit nonce, never zero (so that the nonce always has content to compare).
pub fn random_nonce() -> u64 {
    use rand::Rng as _;
    let mut b = [0u8; 8];
    rand::rng().fill_bytes(&mut b);
    u64::from_be_bytes(b).max(1)
}

/// The `alg` digest of the file at `path`, read in 64 KiB pieces. SHA-256, SHA-384 and
/// SHA-512 only (the imprint algorithms a TSA is asked to accept).
pub fn hash_file(path: &Path, alg: HashAlgorithm) -> Result<Vec<u8>, Error> {
    fn run<D: sha2::Digest>(mut f: std::fs::File) -> std::io::Result<Vec<u8>> {
        let mut h = D::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                return Ok(h.finalize().to_vec());
            }
            h.update(&buf[..n]);
        }
    }
    let f = std::fs::File::open(path).map_err(|source| Error::OpenData {
        path: path.to_owned(),
        source,
    })?;
    let d = match alg {
        HashAlgorithm::Sha256 => run::<sha2::Sha256>(f),
        HashAlgorithm::Sha384 => run::<sha2::Sha384>(f),
        HashAlgorithm::Sha512 => run::<sha2::Sha512>(f),
        other => return Err(Error::UnsupportedImprintHash(other.name())),
    };
    d.map_err(|source| Error::ReadData {
        path: path.to_owned(),
        source,
    })
}
