//! Seals made by `hanko-seal` (the builder `verify_seal` must never share code with)
//! over an in-process PKI, verified by `hanko_client::verify_seal`, then broken one
//! signed attribute at a time and signed again with the seal key, so that the
//! signature is valid and only the attribute's own check can catch the defect. The
//! HSM-made seals of the real server (B-B and B-T, both key types) and the openssl
//! cross-check run through the `hanko` binary in the server's seal_verify tests.

use std::sync::Arc;
use std::time::SystemTime;

use hanko_client::{Error, verify_seal};
use hanko_pki::cert::Certificate;
use hanko_pki::soft::SoftwareSigner;
use hanko_pki::x509::{CertParams, CertProfile, issue_certificate};
use hanko_pki::{HashAlgorithm, KeyType, SignatureAlgorithm, Signer};
use hanko_seal::{Packaging, RawSealRequest, SealCredential, SealRequest};

const DOC: &[u8] = b"certificate of residence no. 42";
/// id-signingTime, then `SET { UTCTime YYMMDDHHMMSSZ }`: its value's index + 11 is the
/// last digit of the seconds.
const SIGNING_TIME: [u8; 15] = [
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x05, 0x31, 0x0f, 0x17, 0x0d,
];

struct SealFixture {
    root: Certificate,
    cert: Certificate,
    key: Arc<SoftwareSigner>,
    credential: SealCredential,
}

/// A root (P-256) and a seal credential whose key is of `key_type`, signing with `alg`.
async fn seal_fixture(key_type: KeyType, alg: SignatureAlgorithm) -> SealFixture {
    let now = SystemTime::now();
    let (root, root_key) = super::test_root(now).await;
    let name = super::test_name;
    let key = Arc::new(SoftwareSigner::generate(key_type, alg).unwrap());
    let cert = issue_certificate(
        &CertParams::new(
            CertProfile::Seal,
            name("Seal"),
            now - super::DAY,
            now + 10 * super::DAY,
        ),
        key.public_key_der(),
        Some(&root),
        &root_key,
    )
    .await
    .unwrap();
    let signer: Arc<dyn Signer> = key.clone();
    let credential =
        SealCredential::new("test", signer, vec![cert.clone(), root.clone()], now).unwrap();
    SealFixture {
        root,
        cert,
        key,
        credential,
    }
}

async fn seal(f: &SealFixture, packaging: Packaging) -> Vec<u8> {
    let request = SealRequest::check(RawSealRequest {
        packaging,
        ..RawSealRequest::document(DOC)
    })
    .unwrap();
    f.credential
        .seal(&request, SystemTime::now(), None)
        .await
        .unwrap()
        .der
}

/// The index of `needle` in `hay`, which must hold it exactly once.
fn find_once(hay: &[u8], needle: &[u8]) -> usize {
    let at: Vec<usize> = hay
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(at.len(), 1, "expected exactly one occurrence");
    at[0]
}

/// `p7s` after `patch` changed its signed attributes, signed again with `key`, an
/// Ed25519 key: its signatures are always 64 bytes, so no length above them changes.
fn resign(p7s: &[u8], key: &SoftwareSigner, patch: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
    let ci: rasn_cms::ContentInfo = rasn::der::decode(p7s).unwrap();
    let sd: rasn_cms::SignedData = rasn::der::decode(ci.content.as_bytes()).unwrap();
    let si = sd.signer_infos.to_vec()[0].clone();
    let old_sig = si.signature.to_vec();
    let mut attrs_set = rasn::der::encode(si.signed_attrs.as_ref().unwrap()).unwrap();
    let mut implicit = attrs_set.clone();
    implicit[0] = 0xa0;
    let attrs_at = find_once(p7s, &implicit);
    patch(&mut attrs_set);
    let mut out = p7s.to_vec();
    out[attrs_at + 1..attrs_at + attrs_set.len()].copy_from_slice(&attrs_set[1..]);
    let sig_at = find_once(&out, &old_sig);
    let sig = key.sign_now(&attrs_set).unwrap();
    assert_eq!(sig.len(), old_sig.len());
    out[sig_at..sig_at + sig.len()].copy_from_slice(&sig);
    out
}

/// The fixture of the re-signing tests.
async fn ed25519_fixture() -> SealFixture {
    seal_fixture(KeyType::Ed25519, SignatureAlgorithm::Ed25519).await
}

#[tokio::test]
async fn seals_verify_detached_and_enveloping_and_say_what_they_seal() {
    let f = seal_fixture(
        KeyType::EcP256,
        SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256),
    )
    .await;
    let roots = [f.root.clone()];
    let detached = seal(&f, Packaging::Detached).await;
    let v = verify_seal(&detached, Some(DOC), &roots, &roots).unwrap();
    assert_eq!(v.signer_subject, f.cert.subject_string());
    assert_eq!(v.level, "B-B");
    assert!(!v.attached);
    assert_eq!(v.digest_algorithm, HashAlgorithm::Sha256);
    assert_eq!(v.chain, [f.cert.subject_string(), f.root.subject_string()]);
    assert!(v.time_stamp.is_none());
    assert!(v.summary().starts_with("Seal verification: OK\n"));
    assert!(v.summary().contains("CAdES B-B (detached)"));

    let enveloping = seal(&f, Packaging::Enveloping).await;
    let v = verify_seal(&enveloping, None, &roots, &roots).unwrap();
    assert!(v.attached);
    let e = verify_seal(&enveloping, Some(b"other"), &roots, &roots).unwrap_err();
    assert!(matches!(e, Error::AttachedContentDiffers), "{e}");
    let e = verify_seal(&detached, None, &roots, &roots).unwrap_err();
    assert!(matches!(e, Error::DetachedWithoutData), "{e}");
    let e = verify_seal(&detached, Some(b"other"), &roots, &roots).unwrap_err();
    assert!(matches!(e, Error::SealDataMismatch("sha256")), "{e}");
    let e = verify_seal(&detached, Some(DOC), &[], &roots).unwrap_err();
    assert!(matches!(e, Error::NoTrustAnchor), "{e}");
}

#[tokio::test]
async fn the_resigning_helper_keeps_a_good_seal_good() {
    // The control of the tests below: a seal whose attributes were changed and signed
    // again verifies, so their failures come from the patched attribute alone.
    let f = ed25519_fixture().await;
    let roots = [f.root.clone()];
    let p7s = seal(&f, Packaging::Detached).await;
    let again = resign(&p7s, &f.key, |attrs| {
        // The signing time one second later: the attributes differ, and are signed.
        let at = find_once(attrs, &SIGNING_TIME) + SIGNING_TIME.len() + 11;
        attrs[at] = if attrs[at] == b'0' { b'1' } else { b'0' };
    });
    assert_ne!(again, p7s);
    verify_seal(&again, Some(DOC), &roots, &roots).unwrap();
}

#[tokio::test]
async fn a_signing_certificate_v2_for_another_certificate_is_refused() {
    let f = ed25519_fixture().await;
    let roots = [f.root.clone()];
    let p7s = seal(&f, Packaging::Detached).await;
    let cert_hash = HashAlgorithm::Sha256.digest(f.cert.der());
    let broken = resign(&p7s, &f.key, |attrs| {
        let at = find_once(attrs, &cert_hash);
        attrs[at] ^= 1;
    });
    let e = verify_seal(&broken, Some(DOC), &roots, &roots).unwrap_err();
    assert!(matches!(e, Error::EssCertHashMismatch("sha256")), "{e}");
}

#[tokio::test]
async fn an_algorithm_protection_naming_another_digest_is_refused() {
    let f = ed25519_fixture().await;
    let roots = [f.root.clone()];
    let p7s = seal(&f, Packaging::Detached).await;
    // id-aa-CMSAlgorithmProtection, then the first SHA-2 OID after it (2.16.840.1.101.
    // 3.4.2.x): its digestAlgorithm, SHA-512 for Ed25519, made SHA-256.
    let protection_oid = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x34,
    ];
    let sha2_prefix = [0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02];
    let broken = resign(&p7s, &f.key, |attrs| {
        let start = find_once(attrs, &protection_oid);
        let rel = attrs[start..]
            .windows(sha2_prefix.len())
            .position(|w| w == sha2_prefix)
            .unwrap();
        let at = start + rel + sha2_prefix.len();
        assert_eq!(attrs[at], 0x03, "SHA-512");
        attrs[at] = 0x01;
    });
    let e = verify_seal(&broken, Some(DOC), &roots, &roots).unwrap_err();
    assert!(matches!(e, Error::AlgorithmProtectionMismatch), "{e}");
}

#[tokio::test]
async fn a_changed_signing_time_without_a_new_signature_is_a_bad_signature() {
    let f = ed25519_fixture().await;
    let roots = [f.root.clone()];
    let mut p7s = seal(&f, Packaging::Detached).await;
    let at = find_once(&p7s, &SIGNING_TIME) + SIGNING_TIME.len() + 11;
    p7s[at] = if p7s[at] == b'0' { b'1' } else { b'0' };
    let e = verify_seal(&p7s, Some(DOC), &roots, &roots).unwrap_err();
    assert!(matches!(e, Error::SealBadSignature(_)), "{e}");
}
