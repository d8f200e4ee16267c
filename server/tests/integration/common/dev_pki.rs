//! The dev PKI of an initialised data directory (`dev-pki/`), for tests that issue
//! certificates of their own under the dev CA (its DEV-ONLY key files).

use std::path::Path;

use hanko_pki::cert::Certificate;
use hanko_pki::soft::SoftwareSigner;
use hanko_pki::{HashAlgorithm, SignatureAlgorithm};

/// The dev CA's keys sign with ECDSA P-384 / SHA-384 (`dev/ca.rs`).
pub const CA_ALG: SignatureAlgorithm = SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha384);

/// The certificate `dev-pki/<name>`.
pub fn cert(dir: &Path, name: &str) -> Certificate {
    Certificate::from_pem(&std::fs::read_to_string(dir.join("dev-pki").join(name)).unwrap())
        .unwrap()
}

/// The dev CA key `dev-pki/<name>` (`root.key.DEV-ONLY.pem`,
/// `intermediate.key.DEV-ONLY.pem`).
pub fn ca_key(dir: &Path, name: &str) -> SoftwareSigner {
    let pem = std::fs::read_to_string(dir.join("dev-pki").join(name)).unwrap();
    SoftwareSigner::from_pkcs8_pem(&pem, CA_ALG).unwrap()
}
