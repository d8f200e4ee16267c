//! Every bad input and misconfiguration: the exact error, its fault class, no panic,
//! no seal.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hanko_pki::HashAlgorithm;
use hanko_pki::alg::HashRejection;
use hanko_seal::{
    Error, Fault, Level, Packaging, RawSealRequest, SealCredential, SealRequest, TimeStamper,
};

use crate::common::{Kind, extra_credential, fixture};

#[test]
fn digest_of_the_wrong_length() {
    for (alg, len) in [
        (HashAlgorithm::Sha256, 31),
        (HashAlgorithm::Sha256, 33),
        (HashAlgorithm::Sha256, 0),
        (HashAlgorithm::Sha384, 32),
        (HashAlgorithm::Sha512, 48),
    ] {
        let digest = vec![7u8; len];
        let e = SealRequest::check(RawSealRequest::digest(alg.oid(), &digest)).unwrap_err();
        assert!(
            matches!(e, Error::DigestLength { alg: a, expected, got }
                if a == alg && expected == alg.output_len() && got == len),
            "{e:?}"
        );
        assert_eq!(e.fault(), Fault::Caller);
    }
}

#[test]
fn weak_and_unknown_hashes() {
    for (oid, weak) in [
        ("1.3.14.3.2.26", true),           // SHA-1
        ("1.2.840.113549.2.5", true),      // MD5
        ("2.16.840.1.101.3.4.2.4", true),  // SHA-224
        ("2.16.840.1.101.3.4.2.8", false), // SHA3-256: not accepted
        ("not an oid", false),
    ] {
        let e = SealRequest::check(RawSealRequest::digest(oid, &[0u8; 20])).unwrap_err();
        match (&e, weak) {
            (Error::UnsupportedHash(HashRejection::Weak { .. }), true)
            | (Error::UnsupportedHash(HashRejection::Unknown(_)), false) => {}
            _ => panic!("{oid}: {e:?}"),
        }
        assert_eq!(e.fault(), Fault::Caller);
    }
}

#[test]
fn enveloping_needs_the_document() {
    let digest = HashAlgorithm::Sha256.digest(b"x");
    let raw = RawSealRequest {
        packaging: Packaging::Enveloping,
        ..RawSealRequest::digest(HashAlgorithm::Sha256.oid(), &digest)
    };
    let e = SealRequest::check(raw).unwrap_err();
    assert!(matches!(e, Error::EnvelopingNeedsDocument), "{e:?}");
    assert_eq!(e.fault(), Fault::Caller);
}

#[test]
fn bad_hints() {
    for (mime, desc) in [
        (Some("pdf"), None),
        (Some("application/pdf\n"), None),
        (None, Some("")),
        (None, Some("line\nbreak")),
        (Some("application/pdf"), Some("both")),
    ] {
        let raw = RawSealRequest {
            mime_type: mime,
            content_description: desc,
            ..RawSealRequest::document(b"doc")
        };
        let e = SealRequest::check(raw).unwrap_err();
        assert!(
            matches!(
                e,
                Error::BadMimeType(_)
                    | Error::BadContentDescription(_)
                    | Error::MimeTypeAndDescription
            ),
            "{e:?}"
        );
        assert_eq!(e.fault(), Fault::Caller);
    }
    let long = "a".repeat(256);
    let raw = RawSealRequest {
        content_description: Some(&long),
        ..RawSealRequest::document(b"doc")
    };
    assert!(matches!(
        SealRequest::check(raw),
        Err(Error::BadContentDescription(_))
    ));
}

/// A SHA-384 digest for a key that signs with SHA-256: CMS has one digest algorithm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_algorithm_must_be_the_keys() {
    let f = fixture();
    let digest = HashAlgorithm::Sha384.digest(b"doc");
    let req =
        SealRequest::check(RawSealRequest::digest(HashAlgorithm::Sha384.oid(), &digest)).unwrap();
    let e = f
        .credential(Kind::P256)
        .seal(&req, SystemTime::now(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::DigestAlgorithmMismatch {
                given: HashAlgorithm::Sha384,
                required: HashAlgorithm::Sha256
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.fault(), Fault::Caller);
}

/// A B-T seal of a small document with the P-256 credential that must fail.
async fn seal_b_t(time_stamper: Option<&dyn TimeStamper>) -> Error {
    let req = SealRequest::check(RawSealRequest {
        level: Level::BT,
        ..RawSealRequest::document(b"doc")
    })
    .unwrap();
    fixture()
        .credential(Kind::P256)
        .seal(&req, SystemTime::now(), time_stamper)
        .await
        .unwrap_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b_t_without_a_time_stamper_is_a_system_fault() {
    let e = seal_b_t(None).await;
    assert!(matches!(e, Error::NoTimeStamper), "{e:?}");
    assert_eq!(e.fault(), Fault::System);
}

/// Signing after the certificate's notAfter (or before notBefore) is refused, before
/// the key is used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_outside_its_validity() {
    let f = fixture();
    let req = SealRequest::check(RawSealRequest::document(b"doc")).unwrap();
    let cred = f.credential(Kind::Rsa3072);
    for at in [
        cred.certificate().not_after() + Duration::from_secs(1),
        cred.certificate().not_before() - Duration::from_secs(1),
    ] {
        let e = cred.seal(&req, at, None).await.unwrap_err();
        assert!(matches!(e, Error::CertificateNotValid { .. }), "{e:?}");
        assert_eq!(e.fault(), Fault::Retryable);
    }
}

#[test]
fn credentials_are_checked() {
    let f = fixture();
    let now = SystemTime::now();
    let p256 = f.credential(Kind::P256).signer().clone();
    // Empty chain.
    let e = SealCredential::new("x", p256.clone(), Vec::new(), now).unwrap_err();
    assert!(matches!(e, Error::EmptyChain(_)), "{e:?}");
    // The RSA certificate for the P-256 key.
    let e = SealCredential::new(
        "x",
        p256.clone(),
        vec![f.seal_cert(Kind::Rsa3072).clone()],
        now,
    )
    .unwrap_err();
    assert!(matches!(e, Error::Certificate { .. }), "{e:?}");
    // A TSA certificate is not a seal certificate (no nonRepudiation).
    let e = SealCredential::new("x", p256.clone(), vec![f.tsa_cert.clone()], now).unwrap_err();
    assert!(matches!(e, Error::Certificate { .. }), "{e:?}");
    // A CA certificate neither.
    let e = SealCredential::new("x", p256, vec![f.inter.clone()], now).unwrap_err();
    assert!(matches!(e, Error::Certificate { .. }), "{e:?}");
    assert_eq!(e.fault(), Fault::System);
}

/// A TSA that returns a real token over another imprint (a TSA bug, or an answer to
/// someone else's request): the token is never embedded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_for_another_imprint_is_refused() {
    let tsa = fixture()
        .tsa_ahead(Duration::ZERO)
        .stamping_another_imprint();
    let e = seal_b_t(Some(&tsa)).await;
    assert!(matches!(e, Error::TimeStampMismatch(_)), "{e:?}");
    assert_eq!(e.fault(), Fault::System);
}

/// CONFORMANCE D.48: the time-stamp must be made while the seal certificate is valid.
/// A certificate that expires in two minutes and a TSA whose clock is an hour ahead:
/// the signature is made in time, its time-stamp is not, and no seal comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_stamp_after_the_certificate_expired_is_refused() {
    let f = fixture();
    let now = SystemTime::now();
    let p256 = f.credential(Kind::P256).signer().clone();
    let short = extra_credential("short-lived", p256, Duration::from_secs(120)).await;
    let not_after = short.certificate().not_after();
    let late = f.tsa_ahead(Duration::from_secs(3600));
    let req = SealRequest::check(RawSealRequest {
        level: Level::BT,
        ..RawSealRequest::document(b"doc")
    })
    .unwrap();
    let e = short.seal(&req, now, Some(&late)).await.unwrap_err();
    assert!(
        matches!(e, Error::CertificateNotValid { at } if at > not_after),
        "{e:?}"
    );
    assert_eq!(e.fault(), Fault::Retryable);
    // The same credential with the punctual TSA seals.
    assert!(short.seal(&req, now, Some(&f.tsa)).await.is_ok());
}

/// A credential is usable through an `Arc` from many tasks (what the server holds).
#[test]
fn credential_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<SealCredential>();
    check::<Arc<dyn TimeStamper>>();
}
