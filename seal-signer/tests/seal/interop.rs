//! Seals checked by third parties: `openssl cms -verify` (detached with `-content`,
//! enveloping without), the signed attributes as `openssl cms -cmsout -print` lists
//! them, and the B-T time-stamp token with `openssl ts -verify` over the SHA-256 of the
//! signature value and with rfc3161-client (`tests/py/verify_rfc3161.py`) over the signature
//! value itself. Then the structure with rasn: ESSCertIDv2, exactly one
//! signing-time, the chain without duplicates, unsigned attributes only in B-T.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::sync::Arc;

use hanko_client::test_support::run_rfc3161_client;
use hanko_hsm::PoolConfig;
use hanko_pki::der::{self, tlv};
use hanko_pki::oid::{self, dotted};
use hanko_pki::soft::SoftwareSigner;
use hanko_pki::{HashAlgorithm, KeyType, SignatureAlgorithm};
use hanko_seal::{
    CommitmentType, Level, Packaging, RawSealRequest, Seal, SealCredential, SealRequest,
};
use rasn_cms::CertificateChoices;

use crate::common::{
    Decoded, Kind, cms_verify, contains, decode, document, extra_credential, fixture, openssl,
    openssl_ok,
};

/// The optional attributes of a seal: mime-type, content description, commitment.
type Extras<'a> = (Option<&'a str>, Option<&'a str>, Option<CommitmentType>);

/// No optional attribute.
const NO_EXTRAS: Extras<'static> = (None, None, None);

/// Seals `doc` with `kind` at `level`/`packaging`, with the optional attributes.
async fn seal(
    kind: Kind,
    doc: &[u8],
    level: Level,
    packaging: Packaging,
    extras: Extras<'_>,
) -> Seal {
    let f = fixture();
    let req = SealRequest::check(RawSealRequest {
        level,
        packaging,
        mime_type: extras.0,
        content_description: extras.1,
        commitment: extras.2,
        ..RawSealRequest::document(doc)
    })
    .unwrap();
    f.credential(kind)
        .seal(&req, SystemTime::now(), Some(&f.tsa))
        .await
        .unwrap()
}

/// Writes the seal and the document; returns their paths.
fn files(name: &str, seal: &Seal, doc: &[u8]) -> (PathBuf, PathBuf) {
    let f = fixture();
    let p7s = f.path(&format!("{name}.p7s"));
    let data = f.path(&format!("{name}.data"));
    std::fs::write(&p7s, &seal.der).unwrap();
    std::fs::write(&data, doc).unwrap();
    (p7s, data)
}

/// Writes `sealed` (a seal of `doc` by `kind`) as `<name>.p7s`, has `openssl cms -verify`
/// accept it (detached: against `doc`; enveloping: its content must be `doc`) and checks
/// its structure ([`check_structure`]); returns the file and the decoding.
fn verified(name: &str, kind: Kind, sealed: &Seal, doc: &[u8]) -> (PathBuf, Decoded) {
    let (p7s, data) = files(name, sealed, doc);
    match sealed.record.packaging {
        Packaging::Detached => {
            cms_verify(&p7s, Some(&data)).unwrap();
        }
        _ => assert_eq!(cms_verify(&p7s, None).unwrap(), doc),
    }
    let d = decode(sealed);
    check_structure(fixture().credential(kind), sealed, &d, Some(doc));
    (p7s, d)
}

fn s(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

/// The OIDs of the attributes `openssl cms -cmsout -print` lists under `section`
/// (`signedAttrs` or `unsignedAttrs`), sorted. OpenSSL prints `name (dotted OID)`; the
/// names differ between OpenSSL versions (3.0 calls RFC 6211's attribute `undefined`),
/// the OIDs do not.
fn printed_attributes(p7s: &std::path::Path, section: &str) -> Vec<String> {
    let f = fixture();
    let text = openssl_ok(
        &f.dir,
        &["cms", "-cmsout", "-print", "-inform", "DER", "-in", s(p7s)],
    );
    let mut oids = Vec::new();
    let mut inside = false;
    let mut indent = 0;
    for line in text.lines() {
        let trimmed = line.trim_start();
        let depth = line.len() - trimmed.len();
        // A field of the structure (`name:`), not a line of an asn1parse dump.
        let is_field = trimmed.split_once(':').is_some_and(|(k, _)| {
            !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphabetic() || b == b'.')
        });
        if trimmed.starts_with(&format!("{section}:")) {
            inside = !trimmed.contains("<ABSENT>") && !trimmed.contains("<EMPTY>");
            indent = depth;
            continue;
        }
        if inside && is_field && depth <= indent {
            inside = false;
        }
        if inside && let Some(obj) = trimmed.strip_prefix("object: ") {
            let oid = obj
                .rsplit_once('(')
                .and_then(|(_, o)| o.strip_suffix(')'))
                .unwrap_or(obj);
            oids.push(oid.to_owned());
        }
    }
    oids.sort();
    oids
}

fn sorted(oids: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = oids.iter().map(|n| n.to_string()).collect();
    v.sort();
    v
}

/// The five attributes of every seal.
const BASE: [&str; 5] = [
    dotted::CONTENT_TYPE,
    dotted::MESSAGE_DIGEST,
    dotted::SIGNING_TIME,
    dotted::SIGNING_CERTIFICATE_V2,
    dotted::CMS_ALGORITHM_PROTECTION,
];

/// Structural promises of every seal.
fn check_structure(cred: &SealCredential, seal: &Seal, d: &Decoded, doc: Option<&[u8]>) {
    let f = fixture();
    let cert = cred.certificate();
    // Exactly one signing-time, the record's; message-digest = hash of the document.
    let times = d.signed_attr(dotted::SIGNING_TIME);
    assert_eq!(times.len(), 1);
    let secs = seal
        .record
        .signing_time
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(
        seal.record.signing_time,
        UNIX_EPOCH + Duration::from_secs(secs)
    );
    if let Some(doc) = doc {
        let digest = cred.hash_algorithm().digest(doc);
        assert_eq!(
            d.signed_attr(dotted::MESSAGE_DIGEST),
            vec![tlv(0x04, &digest)]
        );
        assert_eq!(seal.record.content_digest, digest);
    }
    // content-type id-data.
    assert_eq!(
        d.signed_attr(dotted::CONTENT_TYPE),
        vec![der::oid(&oid::DATA)]
    );
    // ESSCertIDv2: certHash over the whole DER certificate, no hashAlgorithm (SHA-256 is
    // the DEFAULT), no issuerSerial.
    let ess = tlv(
        0x30,
        &tlv(
            0x30,
            &tlv(0x30, &tlv(0x04, &HashAlgorithm::Sha256.digest(cert.der()))),
        ),
    );
    assert_eq!(d.signed_attr(dotted::SIGNING_CERTIFICATE_V2), vec![ess]);
    // The signed attributes re-encode to the signed bytes, which are in the CMS as
    // [0] IMPLICIT.
    let reencoded = rasn::der::encode(d.signer_info.signed_attrs.as_ref().unwrap()).unwrap();
    assert_eq!(reencoded, seal.signed_attributes_der);
    let mut implicit = seal.signed_attributes_der.clone();
    implicit[0] = 0xa0;
    assert!(contains(&seal.der, &implicit));
    // The chain: the seal certificate and the intermediate, once each (the credential
    // was given the intermediate twice).
    let certs: BTreeSet<Vec<u8>> = d
        .signed_data
        .certificates
        .as_ref()
        .unwrap()
        .to_vec()
        .iter()
        .map(|c| match c {
            CertificateChoices::Certificate(c) => rasn::der::encode(&**c).unwrap(),
            other => panic!("unexpected certificate choice {other:?}"),
        })
        .collect();
    assert_eq!(d.signed_data.certificates.as_ref().unwrap().len(), 2);
    assert_eq!(
        certs,
        BTreeSet::from([cert.der().to_vec(), f.inter.der().to_vec()])
    );
    // Version 1 (id-data), the record.
    assert_eq!(d.signed_data.version, 1.into());
    assert_eq!(
        seal.record.object_hash,
        HashAlgorithm::Sha256.digest(&seal.der)
    );
    assert_eq!(seal.record.credential, cred.name());
    assert_eq!(seal.record.signature_algorithm, cred.signer().algorithm());
    assert_eq!(
        seal.record.certificate_sha256,
        cert.fingerprint(HashAlgorithm::Sha256)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b_b_detached_and_enveloping_verify_with_openssl() {
    for kind in Kind::ALL {
        let doc = [
            b"certificate of residence\r\n\x00\xff".as_slice(),
            &document(3000, 7),
        ]
        .concat();

        let detached = seal(kind, &doc, Level::BB, Packaging::Detached, NO_EXTRAS).await;
        let (p7s, d) = verified(&format!("bb-detached-{kind:?}"), kind, &detached, &doc);
        assert!(d.signed_data.encap_content_info.content.is_none());
        assert!(d.signer_info.unsigned_attrs.is_none());
        assert_eq!(printed_attributes(&p7s, "signedAttrs"), sorted(&BASE));
        assert!(printed_attributes(&p7s, "unsignedAttrs").is_empty());

        // A changed document fails.
        let mut other = doc.clone();
        other[0] ^= 1;
        let (_, changed) = files(&format!("bb-detached-{kind:?}-changed"), &detached, &other);
        assert!(
            cms_verify(&p7s, Some(&changed)).is_err(),
            "openssl accepted a seal over another document"
        );

        let attached = seal(kind, &doc, Level::BB, Packaging::Enveloping, NO_EXTRAS).await;
        let (p7s, d) = verified(&format!("bb-attached-{kind:?}"), kind, &attached, &doc);
        assert_eq!(
            d.signed_data.encap_content_info.content.as_deref(),
            Some(doc.as_slice())
        );
        assert_eq!(printed_attributes(&p7s, "signedAttrs"), sorted(&BASE));
        assert_eq!(attached.record.level, Level::BB);
        assert_eq!(attached.record.packaging, Packaging::Enveloping);
        assert!(attached.record.time_stamp_time.is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optional_attributes_are_exactly_the_ones_asked_for() {
    let doc = b"%PDF-1.7 invoice 2026-0042".to_vec();
    for kind in Kind::ALL {
        let with_mime = seal(
            kind,
            &doc,
            Level::BB,
            Packaging::Detached,
            (
                Some("application/pdf"),
                None,
                Some(CommitmentType::ProofOfOrigin),
            ),
        )
        .await;
        let (p7s, d) = verified(&format!("mime-{kind:?}"), kind, &with_mime, &doc);
        let mut expect = BASE.to_vec();
        expect.extend([dotted::MIME_TYPE, dotted::COMMITMENT_TYPE_INDICATION]);
        assert_eq!(printed_attributes(&p7s, "signedAttrs"), sorted(&expect));
        assert_eq!(
            d.signed_attr(dotted::MIME_TYPE),
            vec![tlv(0x0c, b"application/pdf")]
        );
        let cti = tlv(0x30, &der::oid(&oid::CTI_PROOF_OF_ORIGIN));
        assert_eq!(d.signed_attr(dotted::COMMITMENT_TYPE_INDICATION), vec![cti]);

        let with_hint = seal(
            kind,
            &doc,
            Level::BB,
            Packaging::Enveloping,
            (None, Some("住民票の写し"), None),
        )
        .await;
        let (p7s, d) = verified(&format!("hint-{kind:?}"), kind, &with_hint, &doc);
        let mut expect = BASE.to_vec();
        expect.push(dotted::CONTENT_HINTS);
        assert_eq!(printed_attributes(&p7s, "signedAttrs"), sorted(&expect));
        let hint = tlv(
            0x30,
            &[tlv(0x0c, "住民票の写し".as_bytes()), der::oid(&oid::DATA)].concat(),
        );
        assert_eq!(d.signed_attr(dotted::CONTENT_HINTS), vec![hint]);
    }
}

/// An archive sends the SHA-256 it computed; the detached seal verifies against the
/// document it never saw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_request_verifies_against_the_document() {
    let f = fixture();
    let doc = document(10_000, 11);
    let digest = HashAlgorithm::Sha256.digest(&doc);
    for kind in Kind::ALL {
        for level in [Level::BB, Level::BT] {
            let req = SealRequest::check(RawSealRequest {
                level,
                ..RawSealRequest::digest(HashAlgorithm::Sha256.oid(), &digest)
            })
            .unwrap();
            let sealed = f
                .credential(kind)
                .seal(&req, SystemTime::now(), Some(&f.tsa))
                .await
                .unwrap();
            verified(&format!("digest-{kind:?}-{level}"), kind, &sealed, &doc);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b_t_verifies_and_its_token_stamps_the_signature_value() {
    let f = fixture();
    let mut py_cases = Vec::new();
    for kind in Kind::ALL {
        for packaging in [Packaging::Detached, Packaging::Enveloping] {
            let doc = document(500, 3);
            let sealed = seal(kind, &doc, Level::BT, packaging, NO_EXTRAS).await;
            let name = format!("bt-{kind:?}-{}", packaging.name());
            let (p7s, d) = verified(&name, kind, &sealed, &doc);
            assert_eq!(printed_attributes(&p7s, "signedAttrs"), sorted(&BASE));
            assert_eq!(
                printed_attributes(&p7s, "unsignedAttrs"),
                vec![dotted::SIGNATURE_TIME_STAMP_TOKEN.to_owned()]
            );

            // The token, as embedded, verifies with openssl ts over SHA-256 of the
            // signature value's octets.
            let tokens = d.unsigned_attr(dotted::SIGNATURE_TIME_STAMP_TOKEN);
            assert_eq!(tokens.len(), 1);
            let token_path = f.path(&format!("{name}.tst"));
            std::fs::write(&token_path, &tokens[0]).unwrap();
            let ts_verify = |over: &[u8]| {
                let imprint = hex::encode(HashAlgorithm::Sha256.digest(over));
                openssl(
                    &f.dir,
                    &[
                        "ts",
                        "-verify",
                        "-digest",
                        &imprint,
                        "-token_in",
                        "-in",
                        s(&token_path),
                        "-CAfile",
                        s(&f.root_pem),
                        "-untrusted",
                        s(&f.tsa_chain_pem),
                    ],
                )
            };
            let (ok, out, err) = ts_verify(&d.signer_info.signature);
            assert!(ok && out.contains("Verification: OK"), "{out}\n{err}");
            // Over anything else it does not.
            assert!(!ts_verify(&sealed.signed_attributes_der).0);
            // rfc3161-client, over the signature value itself (it hashes the data); it
            // reads responses, so the token goes into a granted TimeStampResp.
            let resp = tlv(
                0x30,
                &[&tlv(0x30, &tlv(0x02, &[0]))[..], &tokens[0]].concat(),
            );
            let resp_path = f.path(&format!("{name}.tsr"));
            let sig_path = f.path(&format!("{name}.sig"));
            std::fs::write(&resp_path, resp).unwrap();
            std::fs::write(&sig_path, &d.signer_info.signature).unwrap();
            py_cases.push(serde_json::json!({
                "resp": resp_path,
                "data": sig_path,
                "root": f.root_pem,
                "tsa": f.path("tsa.pem"),
                "intermediates": [f.path("inter.pem")],
                "common_name": "CN=Hanko Seal Test TSA,O=Hanko Seal Test City,C=JP",
            }));
            // Stamped after the signing time (whole seconds), and soon after.
            let stamped = sealed.record.time_stamp_time.unwrap();
            let after = stamped.duration_since(sealed.record.signing_time).unwrap();
            assert!(after < Duration::from_secs(60), "{after:?}");
            assert_eq!(sealed.record.level, Level::BT);
        }
    }
    run_rfc3161_client(&py_cases);
}

/// Beyond the two dev keys: RSA-PSS on the SoftHSM RSA key, ECDSA P-384 with SHA-384 in
/// SoftHSM, Ed25519 in software (RFC 8419: SHA-512 digests). Each B-B and B-T seal
/// verifies with openssl, except Ed25519: OpenSSL's CMS cannot verify Ed25519 with
/// signed attributes at all (openssl/openssl issue 11915, open again as 32248), so its
/// signature is checked with `hanko_pki::verify` against the certificate's key. The
/// message-digest always uses the key's hash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_algorithms_verify() {
    const DAY: Duration = Duration::from_secs(86_400);
    let f = fixture();
    // A credential over a key of the fixture token.
    let on_token = |name, label, alg| {
        extra_credential(name, f.hsm_signer(label, alg, PoolConfig::default()), DAY)
    };
    f.hsm
        .generate_key_pair("seal-p384", KeyType::EcP384)
        .unwrap();
    let creds = [
        on_token(
            "seal-rsa3072-pss",
            Kind::Rsa3072.label(),
            SignatureAlgorithm::RsaPss(HashAlgorithm::Sha256),
        )
        .await,
        on_token(
            "seal-p384",
            "seal-p384",
            SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha384),
        )
        .await,
        extra_credential(
            "seal-ed25519",
            Arc::new(
                SoftwareSigner::generate(KeyType::Ed25519, SignatureAlgorithm::Ed25519).unwrap(),
            ),
            DAY,
        )
        .await,
    ];
    let doc = document(700, 5);
    for cred in &creds {
        for (level, packaging) in [
            (Level::BB, Packaging::Detached),
            (Level::BT, Packaging::Enveloping),
        ] {
            let req = SealRequest::check(RawSealRequest {
                level,
                packaging,
                ..RawSealRequest::document(&doc)
            })
            .unwrap();
            let sealed = cred
                .seal(&req, SystemTime::now(), Some(&f.tsa))
                .await
                .unwrap();
            let (p7s, data) = files(&format!("{}-{level}", cred.name()), &sealed, &doc);
            let d = decode(&sealed);
            if cred.signer().algorithm() == SignatureAlgorithm::Ed25519 {
                hanko_pki::verify::verify(
                    cred.certificate().spki_der(),
                    SignatureAlgorithm::Ed25519,
                    &sealed.signed_attributes_der,
                    &d.signer_info.signature,
                )
                .unwrap();
                assert_eq!(
                    rasn::der::encode(&d.signer_info.digest_algorithm).unwrap(),
                    HashAlgorithm::Sha512.algorithm_identifier_der()
                );
            } else {
                let content = cms_verify(
                    &p7s,
                    Some(data.as_path()).filter(|_| packaging == Packaging::Detached),
                )
                .unwrap();
                if packaging == Packaging::Enveloping {
                    assert_eq!(content, doc);
                }
            }
            check_structure(cred, &sealed, &d, Some(&doc));
        }
    }
}
