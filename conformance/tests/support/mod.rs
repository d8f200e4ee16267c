//! A reference producer of CAdES signatures and PAdES files for the e-seal corpus
//! (`tests/cades.rs`, `tests/pades.rs`): its own DER (the crate's writer), software keys
//! made for the run, first well formed, then each with one defect. Its time-stamp
//! tokens are made the way `tests/corpus.rs` makes them.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests; each test binary uses a part"
)]

#[path = "../tsa_producer/mod.rs"]
mod tsa_producer;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hanko_conformance::cms::oid;
use hanko_conformance::der::{self, tag};
use hanko_conformance::report::{Findings, Outcome};
use hanko_conformance::{crypto, time};
use hanko_pki::soft::SoftwareSigner;
use hanko_pki::test_support::{TestCa, name};
use hanko_pki::x509::{CertParams, CertProfile, issue_certificate};
use hanko_pki::{HashAlgorithm, KeyType, SignatureAlgorithm, Signer as _};

pub const POLICY: &str = "1.3.6.1.4.1.99999.1.1";
pub const ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
pub const SHA256: &str = "2.16.840.1.101.3.4.2.1";

const YEAR: Duration = Duration::from_secs(365 * 86_400);

/// One defect of a seal (or none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Defect {
    None,
    WrongMessageDigest,
    UnsortedSignedAttributes,
    NoEssCertIdV2,
    EssCertIdOfAnotherCertificate,
    TwoSigningTimes,
    ExpiredSigner,
    TamperedSignature,
    TokenOverWrongBytes,
}

/// How the CMS is made.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// The defect.
    pub defect: Defect,
    /// Add a signature-time-stamp (B-T).
    pub b_t: bool,
    /// Include a signing-time (CAdES: yes; PAdES: no).
    pub signing_time: bool,
}

pub struct Producer {
    pub ca: TestCa,
    seal_cert: Vec<u8>,
    seal_key: SoftwareSigner,
    expired_cert: Vec<u8>,
    expired_key: SoftwareSigner,
    other_cert: Vec<u8>,
    tsa_cert: Vec<u8>,
    tsa_key: SoftwareSigner,
}

fn ec() -> SignatureAlgorithm {
    SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256)
}

async fn issue(
    ca: &TestCa,
    key: &SoftwareSigner,
    profile: CertProfile,
    cn: &str,
    from: SystemTime,
    until: SystemTime,
) -> Vec<u8> {
    let params = CertParams::new(profile, name("Corpus Seal", cn), from, until);
    issue_certificate(
        &params,
        key.public_key_der(),
        Some(&ca.inter),
        ca.inter_key.as_ref(),
    )
    .await
    .unwrap()
    .der()
    .to_vec()
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn attr(oid: &str, value: &[u8]) -> Vec<u8> {
    der::seq(&[&der::oid(oid), &der::set_of(&[value])])
}

fn utc_time(secs: i64) -> Vec<u8> {
    let (y, mo, d, h, mi, s) = time::civil_from_unix(secs);
    der::tlv(
        tag::UTC_TIME,
        format!("{:02}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z", y % 100).as_bytes(),
    )
}

impl Producer {
    pub async fn new() -> Self {
        let now = SystemTime::now();
        let ca = TestCa::generate("Corpus", now - 5 * YEAR, now + 5 * YEAR, now + 5 * YEAR).await;
        let seal_key = SoftwareSigner::generate(KeyType::EcP256, ec()).unwrap();
        let expired_key = SoftwareSigner::generate(KeyType::EcP256, ec()).unwrap();
        let tsa_key = SoftwareSigner::generate(KeyType::EcP256, ec()).unwrap();
        let seal_cert = issue(
            &ca,
            &seal_key,
            CertProfile::Seal,
            "Corpus Seal 1",
            now - YEAR,
            now + YEAR,
        )
        .await;
        let expired_cert = issue(
            &ca,
            &expired_key,
            CertProfile::Seal,
            "Corpus Seal old",
            now - 3 * YEAR,
            now - YEAR,
        )
        .await;
        let other_cert = issue(
            &ca,
            &expired_key,
            CertProfile::Seal,
            "Corpus Seal 2",
            now - YEAR,
            now + YEAR,
        )
        .await;
        let tsa_cert = issue(
            &ca,
            &tsa_key,
            CertProfile::Tsa {
                non_repudiation: false,
                private_key_usage_period: None,
            },
            "Corpus TSA",
            now - YEAR,
            now + YEAR,
        )
        .await;
        Self {
            ca,
            seal_cert,
            seal_key,
            expired_cert,
            expired_key,
            other_cert,
            tsa_cert,
            tsa_key,
        }
    }

    /// The trust anchor, DER.
    pub fn root(&self) -> Vec<u8> {
        self.ca.root.der().to_vec()
    }

    /// The trust anchor, PEM.
    pub fn root_pem(&self) -> String {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(self.ca.root.der());
        format!("-----BEGIN CERTIFICATE-----\n{b64}\n-----END CERTIFICATE-----\n")
    }

    /// A well-formed time-stamp token over the SHA-256 `imprint` (as `tests/corpus.rs`
    /// makes them).
    pub fn token(&self, imprint: &[u8]) -> Vec<u8> {
        let now = now_secs();
        let (y, mo, d, h, mi, s) = time::civil_from_unix(now);
        let tst = der::seq(&[
            &der::uint_u64(1),
            &der::oid(POLICY),
            &der::seq(&[&der::alg_id(SHA256), &der::octets(imprint)]),
            &der::uint(&now.to_be_bytes()),
            &der::tlv(
                tag::GENERALIZED_TIME,
                format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z").as_bytes(),
            ),
            &der::seq(&[&der::uint_u64(1)]),
        ]);
        tsa_producer::signed_token(&tst, &self.tsa_cert, self.ca.inter.der(), &self.tsa_key)
    }

    /// A detached CMS SignedData over `data` (already the ByteRange bytes for PAdES).
    pub fn cms(&self, data: &[u8], o: Options) -> Vec<u8> {
        let (cert, key) = if o.defect == Defect::ExpiredSigner {
            (&self.expired_cert, &self.expired_key)
        } else {
            (&self.seal_cert, &self.seal_key)
        };
        let c = hanko_conformance::cert::Cert::from_der(cert).unwrap();
        let mut digest = crypto::Hash::Sha256.digest(data);
        if o.defect == Defect::WrongMessageDigest {
            digest[0] ^= 0x01;
        }
        let now = now_secs();
        let mut attrs = vec![
            attr(oid::CONTENT_TYPE, &der::oid(oid::DATA)),
            attr(oid::MESSAGE_DIGEST, &der::octets(&digest)),
            attr(
                oid::ALGORITHM_PROTECTION,
                &der::seq(&[
                    &der::alg_id(SHA256),
                    &der::tlv(0xa1, &der::oid(ECDSA_SHA256)),
                ]),
            ),
        ];
        if o.signing_time {
            attrs.push(attr(oid::SIGNING_TIME, &utc_time(now)));
        }
        if o.defect == Defect::TwoSigningTimes {
            attrs.push(attr(oid::SIGNING_TIME, &utc_time(now - 60)));
        }
        if o.defect != Defect::NoEssCertIdV2 {
            let named = if o.defect == Defect::EssCertIdOfAnotherCertificate {
                &self.other_cert
            } else {
                cert
            };
            let id = der::seq(&[&der::octets(&crypto::Hash::Sha256.digest(named))]);
            attrs.push(attr(
                oid::SIGNING_CERTIFICATE_V2,
                &der::seq(&[&der::seq(&[&id])]),
            ));
        }
        attrs.sort();
        if o.defect == Defect::UnsortedSignedAttributes {
            attrs.reverse();
        }
        let mut signed = der::tlv(tag::SET, &attrs.concat());
        let mut sig = key.sign_now(&signed).unwrap();
        if o.defect == Defect::TamperedSignature {
            let last = sig.len() - 1;
            sig[last] ^= 0x01;
        }
        signed[0] = 0xa0;
        let mut fields: Vec<Vec<u8>> = vec![
            der::uint_u64(1),
            der::seq(&[&c.issuer, &der::tlv(tag::INTEGER, &c.serial)]),
            der::alg_id(SHA256),
            signed,
            der::alg_id(ECDSA_SHA256),
            der::octets(&sig),
        ];
        if o.b_t {
            let stamped: &[u8] = if o.defect == Defect::TokenOverWrongBytes {
                b"not the signature value"
            } else {
                &sig
            };
            let tok = self.token(&crypto::Hash::Sha256.digest(stamped));
            fields.push(der::tlv(0xa1, &attr(oid::SIGNATURE_TIME_STAMP, &tok)));
        }
        let refs: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
        let signer_info = der::seq(&refs);
        let certs = der::set_of(&[cert, self.ca.inter.der()]);
        let signed_data = der::seq(&[
            &der::uint_u64(1),
            &der::set_of(&[&der::alg_id(SHA256)]),
            &der::seq(&[&der::oid(oid::DATA)]),
            &der::tlv(0xa0, der::read_exact(&certs).unwrap().value),
            &der::set_of(&[&signer_info]),
        ]);
        der::seq(&[&der::oid(oid::SIGNED_DATA), &der::tlv(0xa0, &signed_data)])
    }
}

/// The checks that failed.
pub fn failed(f: &Findings) -> BTreeSet<&'static str> {
    f.checks(Some(Outcome::Fail))
}

/// The checks that were skipped.
pub fn skipped(f: &Findings) -> BTreeSet<&'static str> {
    f.checks(Some(Outcome::Skip))
}

/// Every check made.
pub fn all(f: &Findings) -> BTreeSet<&'static str> {
    f.checks(None)
}

/// The checks a B-T seal's token leaves unchecked: they need the request or a clock.
pub const TOKEN_SKIPS: [&str; 4] = [
    "nonce",
    "certificates-certreq",
    "gen-time-clock",
    "qc-statements",
];
