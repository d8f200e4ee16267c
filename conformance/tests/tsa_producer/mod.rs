//! A reference TSA for the evidence-record and issuance-log tests (`tests/evidence.rs`,
//! `tests/log.rs`): tokens written with the crate's own DER writer and signed by
//! software P-256 keys made for the run (never written to disk), under a root and
//! intermediate of `hanko_pki::test_support::TestCa`, as `tests/corpus.rs` makes them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    dead_code,
    reason = "tests; each test file uses a part"
)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hanko_conformance::der::{self, tag};
use hanko_conformance::{crypto, time, token};
use hanko_pki::soft::SoftwareSigner;
use hanko_pki::test_support::{TestCa, name};
use hanko_pki::x509::{CertParams, CertProfile, issue_certificate};
use hanko_pki::{HashAlgorithm, KeyType, SignatureAlgorithm, Signer as _};

/// The policy of the tokens.
pub const POLICY: &str = "1.3.6.1.4.1.99999.1.1";
const ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
const SHA256: &str = "2.16.840.1.101.3.4.2.1";

/// A year.
pub const YEAR: Duration = Duration::from_secs(365 * 86_400);

/// Unix seconds now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// One TSA key and its certificate.
pub struct Unit {
    /// The TSA certificate (DER).
    pub cert: Vec<u8>,
    key: SoftwareSigner,
}

/// A CA with a TSA valid now and one whose certificate expired a year ago.
pub struct Tsa {
    /// The root and intermediate.
    pub ca: TestCa,
    /// Valid from a year ago to a year from now.
    pub current: Unit,
    /// Valid from three years ago to a year ago.
    pub expired: Unit,
}

async fn unit(ca: &TestCa, cn: &str, from: SystemTime, until: SystemTime) -> Unit {
    let key = SoftwareSigner::generate(
        KeyType::EcP256,
        SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256),
    )
    .unwrap();
    let params = CertParams::new(
        CertProfile::Tsa {
            non_repudiation: false,
            private_key_usage_period: None,
        },
        name("Test TSA", cn),
        from,
        until,
    );
    let cert = issue_certificate(
        &params,
        key.public_key_der(),
        Some(&ca.inter),
        ca.inter_key.as_ref(),
    )
    .await
    .unwrap()
    .der()
    .to_vec();
    Unit { cert, key }
}

impl Tsa {
    /// New keys and certificates.
    pub async fn new() -> Self {
        let now = SystemTime::now();
        let ca = TestCa::generate("Test", now - 5 * YEAR, now + 5 * YEAR, now + 5 * YEAR).await;
        let current = unit(&ca, "Test TSA 1", now - YEAR, now + YEAR).await;
        let expired = unit(&ca, "Test TSA old", now - 3 * YEAR, now - YEAR).await;
        Self {
            ca,
            current,
            expired,
        }
    }

    /// The root as PEM.
    pub fn root_pem(&self) -> String {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(self.ca.root.der());
        format!("-----BEGIN CERTIFICATE-----\n{b64}\n-----END CERTIFICATE-----\n")
    }

    /// The root (DER).
    pub fn root_der(&self) -> Vec<u8> {
        self.ca.root.der().to_vec()
    }

    /// A TimeStampToken (ContentInfo) by `unit` over `imprint` made with `hash`, with
    /// `serial` and genTime `gen_time` (Unix seconds), carrying the TSA certificate and
    /// the intermediate.
    pub fn token(
        &self,
        unit: &Unit,
        hash: crypto::Hash,
        imprint: &[u8],
        serial: u64,
        gen_time: i64,
    ) -> Vec<u8> {
        let (y, mo, d, h, mi, s) = time::civil_from_unix(gen_time);
        let tst = der::seq(&[
            &der::uint_u64(1),
            &der::oid(POLICY),
            &der::seq(&[&der::alg_id(hash.oid()), &der::octets(imprint)]),
            &der::uint_u64(serial),
            &der::tlv(
                tag::GENERALIZED_TIME,
                format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z").as_bytes(),
            ),
            &der::seq(&[&der::uint_u64(1)]),
        ]);
        signed_token(&tst, &unit.cert, self.ca.inter.der(), &unit.key)
    }
}

/// The SignedData of a TimeStampToken over the DER `tst` (TSTInfo), signed by `key` with
/// ECDSA-SHA256 as the holder of `cert`, carrying `cert` and `inter`: content-type,
/// message-digest, CMS algorithm protection and signing-certificate-v2, sorted. The one
/// token signer of the e-seal, evidence and log corpora (`tests/corpus.rs` keeps its
/// own, which breaks each of these parts on purpose).
pub fn signed_token(tst: &[u8], cert: &[u8], inter: &[u8], key: &SoftwareSigner) -> Vec<u8> {
    let c = hanko_conformance::cert::Cert::from_der(cert).unwrap();
    let attr = |oid: &str, value: &[u8]| der::seq(&[&der::oid(oid), &der::set_of(&[value])]);
    let id = der::seq(&[&der::octets(&crypto::Hash::Sha256.digest(cert))]);
    let mut attrs = [
        attr("1.2.840.113549.1.9.3", &der::oid(token::oid::TST_INFO)),
        attr(
            "1.2.840.113549.1.9.4",
            &der::octets(&crypto::Hash::Sha256.digest(tst)),
        ),
        attr(
            token::oid::ALGORITHM_PROTECTION,
            &der::seq(&[
                &der::alg_id(SHA256),
                &der::tlv(0xa1, &der::oid(ECDSA_SHA256)),
            ]),
        ),
        attr(
            token::oid::SIGNING_CERTIFICATE_V2,
            &der::seq(&[&der::seq(&[&id])]),
        ),
    ];
    attrs.sort();
    let mut signed = der::tlv(tag::SET, &attrs.concat());
    let sig = key.sign_now(&signed).unwrap();
    signed[0] = 0xa0;
    let signer_info = der::seq(&[
        &der::uint_u64(1),
        &der::seq(&[&c.issuer, &der::tlv(tag::INTEGER, &c.serial)]),
        &der::alg_id(SHA256),
        &signed,
        &der::alg_id(ECDSA_SHA256),
        &der::octets(&sig),
    ]);
    let certs = der::set_of(&[cert, inter]);
    let signed_data = der::seq(&[
        &der::uint_u64(3),
        &der::set_of(&[&der::alg_id(SHA256)]),
        &der::seq(&[
            &der::oid(token::oid::TST_INFO),
            &der::tlv(0xa0, &der::octets(tst)),
        ]),
        &der::tlv(0xa0, der::read_exact(&certs).unwrap().value),
        &der::set_of(&[&signer_info]),
    ]);
    der::seq(&[
        &der::oid(token::oid::SIGNED_DATA),
        &der::tlv(0xa0, &signed_data),
    ])
}
