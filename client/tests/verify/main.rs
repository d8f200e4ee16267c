//! hanko-client integration tests, one binary: tokens issued by `hanko-tsa` (the
//! builder this crate must never share code with) over an in-process PKI, verified by
//! `hanko_client::verify`, and then broken one field at a time to see each step refuse
//! with its own error. The openssl and rfc3161-client cross-checks of the same path run
//! through the `hanko` binary in the server's tsa_interop tests.
#![allow(
    clippy::unwrap_used,
    reason = "tests: a failed unwrap is a failed test"
)]

/// RFC 4998 archive time-stamps: `verify_evidence`, each valid when the next renewed it.
mod evidence;
/// CAdES seals: `verify_seal` over `hanko-seal`'s output, each signed attribute broken.
mod seal;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hanko_client::reply::{self, Reply};
use hanko_client::{Error, request, verify};
use hanko_pki::cert::Certificate;
use hanko_pki::soft::SoftwareSigner;
use hanko_pki::x509::{CertParams, CertProfile, NameAttr, build_name, issue_certificate};
use hanko_pki::{HashAlgorithm, KeyType, SignatureAlgorithm, Signer as _};
use hanko_tsa::{
    ClockGuard, ClockGuardConfig, CountingSerials, ManualClock, TimeStampUnit, Tsa, TsaConfig,
};

const DAY: Duration = Duration::from_secs(86_400);
const DATA: &[u8] = b"the time-stamped document";

/// A root, a TSA certificate under it, and a `Tsa` signing with the TSA key on a
/// synchronised manual clock.
struct Fixture {
    tsa: Tsa,
    root: Certificate,
    tsa_cert: Certificate,
    /// The TSA's clock (genTime), moved by the tests.
    clock: Arc<ManualClock>,
}

/// The subject `C=JP, O=Hanko client tests, CN=<cn>`.
fn test_name(cn: &str) -> hanko_pki::x509::Name {
    build_name(&[
        (NameAttr::Country, "JP"),
        (NameAttr::Organization, "Hanko client tests"),
        (NameAttr::CommonName, cn),
    ])
    .unwrap()
}

/// A P-256 root CA valid from a day before `now` for 30 days, and its key.
async fn test_root(now: SystemTime) -> (Certificate, SoftwareSigner) {
    let alg = SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256);
    let root_key = SoftwareSigner::generate(KeyType::EcP256, alg).unwrap();
    let root = issue_certificate(
        &CertParams::new(
            CertProfile::RootCa,
            test_name("Root"),
            now - DAY,
            now + 30 * DAY,
        ),
        root_key.public_key_der(),
        None,
        &root_key,
    )
    .await
    .unwrap();
    (root, root_key)
}

async fn fixture() -> Fixture {
    fixture_at(SystemTime::now()).await
}

/// [`fixture`] as if it were `now`: the certificates valid from a day before, the clock
/// at `now`.
async fn fixture_at(now: SystemTime) -> Fixture {
    let alg = SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256);
    let name = test_name;
    let (root, root_key) = test_root(now).await;
    let key = SoftwareSigner::generate(KeyType::EcP256, alg).unwrap();
    let tsa_profile = CertProfile::Tsa {
        non_repudiation: false,
        private_key_usage_period: None,
    };
    let tsa_cert = issue_certificate(
        &CertParams::new(tsa_profile, name("TSA"), now - DAY, now + 10 * DAY),
        key.public_key_der(),
        Some(&root),
        &root_key,
    )
    .await
    .unwrap();

    let config = TsaConfig::default();
    let manual = Arc::new(ManualClock::new(now));
    let clock = ClockGuard::new(
        manual.clone(),
        ClockGuardConfig::for_accuracy(config.accuracy),
    );
    let policies = config.policies();
    let tsa = Tsa::new(config, clock, Arc::new(CountingSerials::default())).unwrap();
    let unit = Arc::new(TimeStampUnit::new(Arc::new(key), vec![tsa_cert.clone()], now).unwrap());
    for p in &policies {
        tsa.install_unit(p, unit.clone()).unwrap();
    }
    Fixture {
        tsa,
        root,
        tsa_cert,
        clock: manual,
    }
}

/// A request over `DATA` (SHA-256) and its DER.
fn request_for(nonce: Option<u64>, cert_req: bool) -> (rasn_cms::tsp::TimeStampReq, Vec<u8>) {
    let digest = HashAlgorithm::Sha256.digest(DATA);
    let req = request::build(HashAlgorithm::Sha256, digest, nonce, None, cert_req).unwrap();
    let der = request::encode(&req).unwrap();
    (req, der)
}

fn digest_of(data: &'static [u8]) -> impl Fn(HashAlgorithm) -> Result<Vec<u8>, Error> {
    move |alg| Ok(alg.digest(data))
}

#[tokio::test]
async fn a_token_verifies_and_says_what_it_stamped() {
    let f = fixture().await;
    let (req, req_der) = request_for(Some(0x1234_5678_9abc), true);
    let resp = f.tsa.respond(&req_der).await.der;

    // stamp's quick check of the reply, then the full verification.
    let Reply::Granted(g) = reply::check(&resp, &req).unwrap() else {
        panic!("refused")
    };
    let v = verify(
        &resp,
        &digest_of(DATA),
        Some(&req_der),
        std::slice::from_ref(&f.root),
        &[],
    )
    .unwrap();
    assert_eq!(v.serial, g.serial);
    assert_eq!(v.gen_time_text, g.gen_time_text);
    assert_eq!(v.hash, HashAlgorithm::Sha256);
    assert_eq!(v.imprint, HashAlgorithm::Sha256.digest(DATA));
    assert_eq!(v.nonce.as_deref(), Some("0x123456789abc"));
    assert_eq!(v.tsa_subject, f.tsa_cert.subject_string());
    assert_eq!(
        v.chain,
        [f.tsa_cert.subject_string(), f.root.subject_string()]
    );
    assert!(v.summary().starts_with("Verification: OK\n"));
}

#[tokio::test]
async fn each_step_refuses_with_its_own_error() {
    let f = fixture().await;
    let roots = [f.root.clone()];
    let (_, req_der) = request_for(Some(7), true);
    let resp = f.tsa.respond(&req_der).await.der;

    let e = verify(&resp, &digest_of(b"other data"), None, &roots, &[]).unwrap_err();
    assert!(matches!(e, Error::ImprintNotOfTheData("sha256")), "{e}");
    assert!(e.to_string().contains("the data differs"), "{e}");

    let (_, other_req) = request_for(Some(8), true);
    let e = verify(&resp, &digest_of(DATA), Some(&other_req), &roots, &[]).unwrap_err();
    assert!(matches!(e, Error::RequestNonceDiffers), "{e}");

    let e = verify(
        &resp,
        &digest_of(DATA),
        None,
        std::slice::from_ref(&f.tsa_cert),
        &[],
    )
    .unwrap_err();
    assert!(matches!(e, Error::NoChain(_)), "{e}");

    let e = verify(&resp, &digest_of(DATA), None, &[], &[]).unwrap_err();
    assert!(matches!(e, Error::NoTrustAnchor), "{e}");

    // The signature is the last field of the response: change its last byte.
    let mut forged = resp.clone();
    *forged.last_mut().unwrap() ^= 0x01;
    let e = verify(&forged, &digest_of(DATA), None, &roots, &[]).unwrap_err();
    assert!(matches!(e, Error::BadSignature(_)), "{e}");
}

#[tokio::test]
async fn a_token_without_certificates_needs_the_tsa_certificate_given() {
    let f = fixture().await;
    let (req, req_der) = request_for(None, false);
    let resp = f.tsa.respond(&req_der).await.der;
    assert!(matches!(
        reply::check(&resp, &req).unwrap(),
        Reply::Granted(_)
    ));

    let roots = [f.root.clone()];
    let e = verify(&resp, &digest_of(DATA), Some(&req_der), &roots, &[]).unwrap_err();
    assert!(matches!(e, Error::SignerCertificateNotFound), "{e}");
    let v = verify(
        &resp,
        &digest_of(DATA),
        Some(&req_der),
        &roots,
        std::slice::from_ref(&f.tsa_cert),
    )
    .unwrap();
    assert_eq!(v.nonce, None);
}

#[tokio::test]
async fn a_refusal_is_reported_in_words() {
    let f = fixture().await;
    // A SHA-256 imprint of the wrong length: the TSA answers badDataFormat.
    let req = request::build(HashAlgorithm::Sha256, vec![0; 20], Some(1), None, true).unwrap();
    let resp = f.tsa.respond(&request::encode(&req).unwrap()).await.der;
    let Reply::Refused(why) = reply::check(&resp, &req).unwrap() else {
        panic!("granted a bad imprint")
    };
    assert!(why.starts_with("Rejection ("), "{why}");
    let e = verify(
        &resp,
        &digest_of(DATA),
        None,
        std::slice::from_ref(&f.root),
        &[],
    )
    .unwrap_err();
    assert!(matches!(e, Error::NoToken(_)), "{e}");
}

#[tokio::test]
async fn a_truncated_or_relabelled_token_is_refused() {
    let f = fixture().await;
    let roots = [f.root.clone()];
    let (_, req_der) = request_for(Some(9), true);
    let resp = f.tsa.respond(&req_der).await.der;
    assert!(verify(&resp, &digest_of(DATA), None, &roots, &[]).is_ok());

    // Every proper prefix is refused (and nothing panics on the way).
    for len in 0..resp.len() {
        assert!(
            verify(&resp[..len], &digest_of(DATA), None, &roots, &[]).is_err(),
            "prefix of {len} bytes accepted"
        );
    }

    // The same token labelled id-data instead of id-signedData is refused for its type.
    let signed_data = hanko_pki::der::oid(&hanko_pki::oid::SIGNED_DATA);
    let data = hanko_pki::der::oid(&hanko_pki::oid::DATA);
    let at = resp
        .windows(signed_data.len())
        .position(|w| w == signed_data.as_slice())
        .unwrap();
    let mut relabelled = resp.clone();
    relabelled[at..at + data.len()].copy_from_slice(&data);
    let e = verify(&relabelled, &digest_of(DATA), None, &roots, &[]).unwrap_err();
    assert!(matches!(e, Error::NotSignedData), "{e}");
}
