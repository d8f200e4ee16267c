//! Every bad input gets a well-formed rejection with the documented failure code, and no
//! token. The interpretive choices (CONFORMANCE A.2, A.8) are pinned here; see
//! `hanko_tsa::rejection` for the reasoning.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hanko_pki::{
    BoxFuture, DigestSignAlgorithm, SignError, SignErrorKind, SignatureAlgorithm, Signer,
};
use hanko_tsa::request::RawTimeStampReq;
use hanko_tsa::{
    ClockProblem, ClockStatus, Error, FailureInfo, Outcome, PolicyId, Rejection, TimeStampUnit,
    Tsa, TsaConfig,
};
use rasn::types::{Integer, ObjectIdentifier, OctetString};
use rasn_cms::tsp::{MessageImprint, PkiStatus, TimeStampResp};
use rasn_pkix::{AlgorithmIdentifier, Extension};

use crate::common::{Kind, TestTsa, openssl, openssl_query, pki, tsa};

const SHA256: &str = "2.16.840.1.101.3.4.2.1";

fn oid(s: &str) -> ObjectIdentifier {
    hanko_pki::cms::oid(s).unwrap()
}

pub fn valid_raw() -> RawTimeStampReq {
    RawTimeStampReq {
        version: Integer::from(1),
        message_imprint: MessageImprint {
            hash_algorithm: AlgorithmIdentifier {
                algorithm: oid(SHA256),
                parameters: None,
            },
            hashed_message: OctetString::from(vec![0x11; 32]),
        },
        req_policy: None,
        nonce: Some(Integer::from(0x1234_5678_9abc_i64)),
        cert_req: true,
        extensions: None,
    }
}

fn der(raw: &RawTimeStampReq) -> Vec<u8> {
    rasn::der::encode(raw).unwrap()
}

/// Checks the response is a DER rejection carrying exactly `fi`, a statusString and no
/// token; returns the rejection.
pub fn assert_rejection_response(resp_der: &[u8], fi: FailureInfo) {
    let resp: TimeStampResp = rasn::der::decode(resp_der).unwrap();
    assert_eq!(
        rasn::der::encode(&resp).unwrap(),
        resp_der,
        "response is DER"
    );
    assert_eq!(resp.status.status, PkiStatus::Rejection);
    assert!(resp.time_stamp_token.is_none());
    let bits = resp.status.fail_info.unwrap();
    assert_eq!(bits.len(), fi.bit() + 1, "no trailing zero bits");
    let set: Vec<usize> = bits.iter_ones().collect();
    assert_eq!(set, vec![fi.bit()]);
    let text = resp.status.status_string.unwrap();
    assert_eq!(text.len(), 1);
    assert!(!text[0].is_empty() && text[0].len() < 80, "{:?}", text[0]);
}

async fn rejected(t: &TestTsa, request: &[u8]) -> Rejection {
    let resp = t.tsa.respond(request).await;
    let Outcome::Rejected(r) = resp.outcome else {
        panic!("granted: {request:02x?}")
    };
    assert_rejection_response(&resp.der, r.failure_info());
    r
}

fn default_tsa() -> TestTsa {
    tsa(pki(Kind::P256), TsaConfig::default())
}

#[tokio::test]
async fn not_a_request_is_bad_data_format() {
    let t = default_tsa();
    let valid = der(&valid_raw());
    let mut trailing = valid.clone();
    trailing.push(0);
    let mut indefinite = valid.clone();
    indefinite[1] = 0x80;
    indefinite.extend_from_slice(&[0, 0]);
    for (name, body) in [
        ("empty", vec![]),
        ("garbage", b"GET / HTTP/1.1\r\n\r\n".to_vec()),
        ("truncated", valid[..valid.len() - 3].to_vec()),
        ("one byte", vec![0x30]),
        ("trailing bytes", trailing),
        ("indefinite length", indefinite),
        ("wrong outer type", {
            let mut v = valid.clone();
            v[0] = 0x31;
            v
        }),
    ] {
        let r = rejected(&t, &body).await;
        assert_eq!(r, Rejection::Malformed, "{name}");
        assert_eq!(r.failure_info(), FailureInfo::BadDataFormat, "{name}");
    }
}

#[tokio::test]
async fn ber_that_is_not_der_is_bad_data_format() {
    let t = default_tsa();
    let valid = der(&valid_raw());
    // Non-minimal length of the outer SEQUENCE.
    let mut long_len = vec![0x30, 0x81, valid[1]];
    long_len.extend_from_slice(&valid[2..]);
    // Explicit certReq FALSE (a DEFAULT value, which DER omits).
    let mut raw = valid_raw();
    raw.cert_req = false;
    let without = der(&raw);
    let body = &without[2..];
    let mut explicit_false = vec![0x30, (body.len() + 3) as u8];
    explicit_false.extend_from_slice(body);
    explicit_false.extend_from_slice(&[0x01, 0x01, 0x00]);
    // Non-minimal INTEGER for the version.
    let mut wide_version = vec![0x30, valid[1] + 1, 0x02, 0x02, 0x00, 0x01];
    wide_version.extend_from_slice(&valid[5..]);
    for (name, body) in [
        ("long length", long_len),
        ("explicit FALSE", explicit_false),
        ("wide version", wide_version),
    ] {
        let r = rejected(&t, &body).await;
        assert!(
            matches!(r, Rejection::NotDer | Rejection::Malformed),
            "{name}: {r:?}"
        );
        assert_eq!(r.failure_info(), FailureInfo::BadDataFormat, "{name}");
    }
}

#[tokio::test]
async fn wrong_version_is_bad_request() {
    let t = default_tsa();
    for v in [
        Integer::from(0),
        Integer::from(2),
        Integer::from(-1),
        rasn::der::decode(&[0x02, 0x09, 0x01, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap(),
    ] {
        let mut raw = valid_raw();
        raw.version = v.clone();
        let r = rejected(&t, &der(&raw)).await;
        assert_eq!(r, Rejection::UnsupportedVersion, "{v}");
        assert_eq!(r.failure_info(), FailureInfo::BadRequest);
    }
}

#[tokio::test]
async fn weak_unknown_and_unaccepted_hashes_are_bad_alg() {
    let t = tsa(
        pki(Kind::P256),
        TsaConfig {
            accepted_hashes: vec![hanko_pki::HashAlgorithm::Sha256],
            ..TsaConfig::default()
        },
    );
    let cases: [(&str, usize, Rejection); 5] = [
        ("1.3.14.3.2.26", 20, Rejection::WeakHash { name: "SHA-1" }),
        (
            "1.2.840.113549.2.5",
            16,
            Rejection::WeakHash { name: "MD5" },
        ),
        (
            "1.2.3.4",
            32,
            Rejection::UnknownHash {
                oid: "1.2.3.4".into(),
            },
        ),
        (
            "2.16.840.1.101.3.4.2.3",
            64,
            Rejection::HashNotAccepted(hanko_pki::HashAlgorithm::Sha512),
        ),
        (
            "2.16.840.1.101.3.4.2.8", // SHA3-256: not in our table
            32,
            Rejection::UnknownHash {
                oid: "2.16.840.1.101.3.4.2.8".into(),
            },
        ),
    ];
    for (alg, len, want) in cases {
        let mut raw = valid_raw();
        raw.message_imprint.hash_algorithm.algorithm = oid(alg);
        raw.message_imprint.hashed_message = OctetString::from(vec![7; len]);
        let r = rejected(&t, &der(&raw)).await;
        assert_eq!(r, want);
        assert_eq!(r.failure_info(), FailureInfo::BadAlg);
    }
    // Parameters other than absent/NULL.
    let mut raw = valid_raw();
    raw.message_imprint.hash_algorithm.parameters =
        Some(rasn::types::Any::new(vec![0x04, 0x01, 0x00]));
    assert_eq!(rejected(&t, &der(&raw)).await, Rejection::HashParameters);
    // NULL parameters are fine (that is what OpenSSL sends).
    raw.message_imprint.hash_algorithm.parameters = Some(rasn::types::Any::new(vec![0x05, 0x00]));
    assert!(matches!(
        t.tsa.respond(&der(&raw)).await.outcome,
        Outcome::Granted(_)
    ));
}

#[tokio::test]
async fn imprint_of_the_wrong_length_is_bad_data_format() {
    let t = default_tsa();
    for len in [0, 20, 31, 33, 64] {
        let mut raw = valid_raw();
        raw.message_imprint.hashed_message = OctetString::from(vec![1; len]);
        let r = rejected(&t, &der(&raw)).await;
        assert_eq!(
            r,
            Rejection::ImprintLength {
                alg: hanko_pki::HashAlgorithm::Sha256,
                expected: 32,
                got: len
            }
        );
        assert_eq!(r.failure_info(), FailureInfo::BadDataFormat);
    }
}

#[tokio::test]
async fn policies() {
    let other: PolicyId = "1.3.6.1.4.1.99999.1.2".parse().unwrap();
    let t = tsa(
        pki(Kind::P256),
        TsaConfig {
            accepted_policies: vec![other.clone()],
            ..TsaConfig::default()
        },
    );
    let mut raw = valid_raw();
    raw.req_policy = Some(oid("1.2.3.4.5"));
    let r = rejected(&t, &der(&raw)).await;
    assert_eq!(
        r,
        Rejection::UnacceptedPolicy {
            oid: "1.2.3.4.5".into()
        }
    );
    assert_eq!(r.failure_info(), FailureInfo::UnacceptedPolicy);
    // The accepted second policy is granted and carried into the token.
    raw.req_policy = Some(other.oid().clone());
    let Outcome::Granted(tok) = t.tsa.respond(&der(&raw)).await.outcome else {
        panic!()
    };
    assert_eq!(tok.policy, other);
    // Explicitly requesting the default policy works too.
    raw.req_policy = Some(oid(hanko_tsa::ETSI_BEST_PRACTICES_POLICY));
    assert!(matches!(
        t.tsa.respond(&der(&raw)).await.outcome,
        Outcome::Granted(_)
    ));
}

#[tokio::test]
async fn any_extension_is_unaccepted() {
    let t = default_tsa();
    for critical in [true, false] {
        let mut raw = valid_raw();
        raw.extensions = Some(
            vec![Extension {
                extn_id: oid("1.2.3.4.99"),
                critical,
                extn_value: OctetString::from(vec![0x05, 0x00]),
            }]
            .into(),
        );
        let r = rejected(&t, &der(&raw)).await;
        assert_eq!(
            r,
            Rejection::UnacceptedExtension {
                oid: "1.2.3.4.99".into(),
                critical
            }
        );
        assert_eq!(r.failure_info(), FailureInfo::UnacceptedExtension);
    }
    // An empty extensions SEQUENCE violates SIZE (1..MAX); rasn will not even encode
    // it, so it is appended by hand.
    let mut body = der(&valid_raw())[2..].to_vec();
    body.extend_from_slice(&[0xa0, 0x00]);
    let mut empty = vec![0x30, body.len() as u8];
    empty.extend_from_slice(&body);
    let r = rejected(&t, &empty).await;
    assert!(
        matches!(r, Rejection::EmptyExtensions | Rejection::Malformed),
        "{r:?}"
    );
    assert_eq!(r.failure_info(), FailureInfo::BadDataFormat);
}

#[tokio::test]
async fn nonce_size_limit() {
    let t = default_tsa();
    let nonce = |len: usize| -> Integer {
        let mut d = vec![0x02, len as u8, 0x7f];
        d.extend(std::iter::repeat_n(0xab, len - 1));
        rasn::der::decode(&d).unwrap()
    };
    let mut raw = valid_raw();
    raw.nonce = Some(nonce(64));
    let resp = t.tsa.respond(&der(&raw)).await;
    assert!(
        matches!(resp.outcome, Outcome::Granted(_)),
        "64 octets accepted"
    );
    raw.nonce = Some(nonce(65));
    let r = rejected(&t, &der(&raw)).await;
    assert_eq!(r, Rejection::NonceTooLong { len: 65, max: 64 });
    assert_eq!(r.failure_info(), FailureInfo::BadRequest);
    raw.nonce = Some(nonce(120));
    assert_eq!(
        rejected(&t, &der(&raw)).await,
        Rejection::NonceTooLong { len: 120, max: 64 }
    );
    // A negative nonce is an INTEGER like any other: echoed unchanged.
    raw.nonce = Some(Integer::from(-5));
    assert!(matches!(
        t.tsa.respond(&der(&raw)).await.outcome,
        Outcome::Granted(_)
    ));
}

#[tokio::test]
async fn clock_problems_are_time_not_available() {
    let t = default_tsa();
    let valid = der(&valid_raw());
    assert!(matches!(
        t.tsa.respond(&valid).await.outcome,
        Outcome::Granted(_)
    ));
    assert!(t.tsa.check_ready().is_ok());

    // What the kernel here reports.
    t.clock.set_status(ClockStatus {
        synchronised: false,
        est_error: Duration::from_secs(16),
        max_error: Duration::from_secs(16),
    });
    let r = rejected(&t, &valid).await;
    assert_eq!(r, Rejection::ClockUnavailable(ClockProblem::Unsynchronised));
    assert_eq!(r.failure_info(), FailureInfo::TimeNotAvailable);
    assert!(matches!(t.tsa.check_ready(), Err(Error::Clock(_))));

    // Synchronised but drifting beyond the declared 1 s.
    t.clock.set_status(ClockStatus {
        synchronised: true,
        est_error: Duration::from_millis(200),
        max_error: Duration::from_millis(1500),
    });
    let r = rejected(&t, &valid).await;
    assert!(matches!(
        r,
        Rejection::ClockUnavailable(ClockProblem::OutOfAccuracy { .. })
    ));

    // Back in sync: issuing resumes.
    t.clock.set_status(ClockStatus {
        synchronised: true,
        est_error: Duration::from_millis(1),
        max_error: Duration::from_millis(20),
    });
    assert!(matches!(
        t.tsa.respond(&valid).await.outcome,
        Outcome::Granted(_)
    ));

    // A backward step: refused until it has settled (60 s of good status).
    t.clock.advance(Duration::from_secs(1));
    t.clock.step_back(Duration::from_secs(5));
    let r = rejected(&t, &valid).await;
    assert!(matches!(
        r,
        Rejection::ClockUnavailable(ClockProblem::BackwardJump { .. })
    ));
    t.clock.advance(Duration::from_secs(59));
    let r = rejected(&t, &valid).await;
    assert!(matches!(
        r,
        Rejection::ClockUnavailable(ClockProblem::Settling { .. })
    ));
    t.clock.advance(Duration::from_secs(1));
    assert!(matches!(
        t.tsa.respond(&valid).await.outcome,
        Outcome::Granted(_)
    ));
}

#[tokio::test]
async fn expired_unit_is_system_failure_and_not_ready() {
    let t = default_tsa();
    let valid = der(&valid_raw());
    // The openssl TSA certificate is valid for 365 days.
    t.clock.advance(Duration::from_secs(366 * 86_400));
    let r = rejected(&t, &valid).await;
    assert_eq!(r, Rejection::UnitExpired);
    assert_eq!(r.failure_info(), FailureInfo::SystemFailure);
    // Readiness asks the same clock (not the system's), so it sees the expiry too.
    assert!(matches!(
        t.tsa.check_ready(),
        Err(Error::UnitNotUsable { .. })
    ));
}

#[tokio::test]
async fn log_failure_response_is_system_failure() {
    let der = Tsa::failure_response(&Rejection::LogFailed);
    assert_rejection_response(&der, FailureInfo::SystemFailure);
    // And openssl reads it the same way.
    let pki = pki(Kind::P256);
    let path = pki.path("logfail.tsr");
    std::fs::write(&path, &der).unwrap();
    let text = openssl(
        &pki.dir,
        &["ts", "-reply", "-in", &path.display().to_string(), "-text"],
    );
    assert!(text.contains("Status: Rejected"), "{text}");
    assert!(text.contains("due to system failure"), "{text}");
    assert!(text.contains("issuance log unavailable"), "{text}");
}

#[tokio::test]
async fn openssl_names_our_failure_bits() {
    let pki = pki(Kind::P256);
    for (fi, text) in [
        (
            Rejection::Malformed,
            "the data submitted has the wrong format",
        ),
        (
            Rejection::UnsupportedVersion,
            "transaction not permitted or supported",
        ),
        (
            Rejection::WeakHash { name: "SHA-1" },
            "unrecognized or unsupported algorithm",
        ),
        (
            Rejection::UnacceptedPolicy { oid: "1.2".into() },
            "the requested tsa policy is not supported",
        ),
        (
            Rejection::UnacceptedExtension {
                oid: "1.2".into(),
                critical: false,
            },
            "the requested extension is not supported",
        ),
        (
            Rejection::ClockUnavailable(ClockProblem::Unsynchronised),
            "time source is not available",
        ),
        (
            Rejection::LogFailed,
            "cannot be handled due to system failure",
        ),
    ] {
        let path = pki.path("fail.tsr");
        std::fs::write(&path, Tsa::failure_response(&fi)).unwrap();
        let out = openssl(
            &pki.dir,
            &["ts", "-reply", "-in", &path.display().to_string(), "-text"],
        );
        assert!(out.to_lowercase().contains(text), "{fi:?}: {out}");
    }
}

/// A signer that has the right key but whose device fails every signature (fault
/// injection for the systemFailure path).
#[derive(Debug)]
struct DeadDevice {
    spki: Vec<u8>,
    alg: SignatureAlgorithm,
}

impl Signer for DeadDevice {
    fn algorithm(&self) -> SignatureAlgorithm {
        self.alg
    }
    fn public_key_der(&self) -> &[u8] {
        &self.spki
    }
    fn sign<'a>(&'a self, _: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, SignError>> {
        Box::pin(async {
            Err(SignError::new(
                SignErrorKind::DeviceLost,
                "C_Sign: CKR_DEVICE_REMOVED (token \"hanko-dev\")",
            ))
        })
    }
    fn sign_digest<'a>(
        &'a self,
        _: DigestSignAlgorithm,
        digest: &'a [u8],
    ) -> BoxFuture<'a, Result<Vec<u8>, SignError>> {
        self.sign(digest)
    }
}

#[tokio::test]
async fn signer_failure_is_system_failure_without_details() {
    let pki = pki(Kind::P256);
    let t = tsa(pki, TsaConfig::default());
    let real = pki.signer();
    let dead = Arc::new(DeadDevice {
        spki: real.public_key_der().to_vec(),
        alg: real.algorithm(),
    });
    let unit = TimeStampUnit::new(dead, pki.chain.clone(), SystemTime::now()).unwrap();
    t.tsa
        .install_unit(&t.tsa.config().default_policy, Arc::new(unit))
        .unwrap();
    let resp = t.tsa.respond(&der(&valid_raw())).await;
    let Outcome::Rejected(r) = resp.outcome else {
        panic!()
    };
    assert!(matches!(r, Rejection::SignerFailed(_)));
    assert_rejection_response(&resp.der, FailureInfo::SystemFailure);
    assert!(!String::from_utf8_lossy(&resp.der).contains("hanko-dev"));
}

#[test]
fn units_with_bad_certificates_or_keys_are_refused() {
    let rsa = pki(Kind::Rsa3072);
    let ec = pki(Kind::P256);
    // Key of another unit.
    let e = TimeStampUnit::new(rsa.signer(), ec.chain.clone(), SystemTime::now()).unwrap_err();
    assert!(matches!(e, Error::Certificate(_)), "{e}");
    // The intermediate CA is not a TSA certificate.
    let e = TimeStampUnit::new(ec.signer(), ec.chain[1..].to_vec(), SystemTime::now()).unwrap_err();
    assert!(matches!(e, Error::Certificate(_)), "{e}");
    // No certificate.
    let e = TimeStampUnit::new(ec.signer(), vec![], SystemTime::now()).unwrap_err();
    assert!(matches!(e, Error::EmptyChain));
    // A certificate without the critical EKU, made by openssl.
    std::fs::write(
        ec.path("noneku.cnf"),
        "basicConstraints=critical,CA:FALSE\nextendedKeyUsage=timeStamping\n",
    )
    .unwrap();
    openssl(
        &ec.dir,
        &[
            "x509",
            "-req",
            "-in",
            "tsa.csr",
            "-CA",
            "inter.pem",
            "-CAkey",
            "inter.key",
            "-CAcreateserial",
            "-days",
            "30",
            "-extfile",
            "noneku.cnf",
            "-out",
            "noneku.pem",
        ],
    );
    let pem = std::fs::read_to_string(ec.path("noneku.pem")).unwrap();
    let chain = hanko_pki::cert::load_pem_chain(&pem).unwrap();
    let e = TimeStampUnit::new(ec.signer(), chain, SystemTime::now()).unwrap_err();
    assert!(e.to_string().contains("not critical"), "{e}");
}

#[tokio::test]
async fn openssl_requests_with_every_hash_are_granted() {
    let pki = pki(Kind::P256);
    let t = tsa(pki, TsaConfig::default());
    for hash in ["sha256", "sha384", "sha512"] {
        let (_, _, req) = openssl_query(pki, &format!("g-{hash}"), hash, true, false);
        assert!(matches!(
            t.tsa.respond(&req).await.outcome,
            Outcome::Granted(_)
        ));
    }
    for hash in ["sha1", "md5"] {
        let (_, _, req) = openssl_query(pki, &format!("w-{hash}"), hash, true, false);
        let r = rejected(&t, &req).await;
        assert!(matches!(r, Rejection::WeakHash { .. }), "{hash}: {r:?}");
    }
}
