//! A two-level test CA for the integration tests of the crates that issue under one
//! (`hanko-seal`, `hanko-anchor`): a P-256 root and intermediate with software keys,
//! made with [`crate::x509`] as `hanko dev-init` makes its CA. Compiled only with the
//! `test-support` feature, which those crates enable from their `[dev-dependencies]`;
//! no production build contains it.
//!
//! # What it does not do
//! It writes nothing to disk and makes no leaf certificates: each suite issues its own
//! (TSA, seal) under [`TestCa::inter`], with keys in SoftHSM or in memory.

use std::sync::Arc;
use std::time::SystemTime;

use crate::cert::Certificate;
use crate::soft::SoftwareSigner;
use crate::x509::{CertParams, CertProfile, Name, NameAttr, build_name, issue_certificate};
use crate::{HashAlgorithm, KeyType, SignatureAlgorithm, Signer};

/// A root and an intermediate (path length 0), both P-256 with ECDSA-SHA256.
#[derive(Debug)]
pub struct TestCa {
    /// The trust anchor.
    pub root: Certificate,
    /// Its key.
    pub root_key: SoftwareSigner,
    /// The issuing CA.
    pub inter: Certificate,
    /// Its key, shared with what the suite keeps.
    pub inter_key: Arc<SoftwareSigner>,
}

impl TestCa {
    /// Generates both keys and certificates: subjects `<org> Root` and
    /// `<org> Intermediate` under organisation `org` (C=JP), the root valid from `from`
    /// to `until`, the intermediate to `inter_until`.
    ///
    /// # Panics
    /// When a key or certificate cannot be made: this is a fixture for tests.
    pub async fn generate(
        org: &str,
        from: SystemTime,
        until: SystemTime,
        inter_until: SystemTime,
    ) -> Self {
        #[allow(
            clippy::unwrap_used,
            reason = "a test fixture: failing is the assertion"
        )]
        {
            let ec = SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256);
            let root_key = SoftwareSigner::generate(KeyType::EcP256, ec).unwrap();
            let root = issue_certificate(
                &CertParams::new(
                    CertProfile::RootCa,
                    name(org, &format!("{org} Root")),
                    from,
                    until,
                ),
                root_key.public_key_der(),
                None,
                &root_key,
            )
            .await
            .unwrap();
            let inter_key = Arc::new(SoftwareSigner::generate(KeyType::EcP256, ec).unwrap());
            let inter = issue_certificate(
                &CertParams::new(
                    CertProfile::IntermediateCa { path_len: 0 },
                    name(org, &format!("{org} Intermediate")),
                    from,
                    inter_until,
                ),
                inter_key.public_key_der(),
                Some(&root),
                &root_key,
            )
            .await
            .unwrap();
            Self {
                root,
                root_key,
                inter,
                inter_key,
            }
        }
    }
}

/// The subject `C=JP, O=<org>, CN=<cn>`.
///
/// # Panics
/// When the name cannot be encoded: this is a fixture for tests.
pub fn name(org: &str, cn: &str) -> Name {
    #[allow(
        clippy::unwrap_used,
        reason = "a test fixture: failing is the assertion"
    )]
    build_name(&[
        (NameAttr::Country, "JP"),
        (NameAttr::Organization, org),
        (NameAttr::CommonName, cn),
    ])
    .unwrap()
}
