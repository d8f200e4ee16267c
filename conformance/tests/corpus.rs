//! The broken corpus: tokens made by a reference producer written here (its own DER,
//! signed by software keys generated for the run), first well formed, then each with one
//! defect. The well-formed token passes every check; each broken one fails exactly the
//! check its defect breaks and no other, so a check that fires on everything, or never,
//! is found out.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hanko_conformance::der::{self, tag};
use hanko_conformance::report::{Findings, Outcome};
use hanko_conformance::token::{self, Expect};
use hanko_conformance::{crypto, time};
use hanko_pki::soft::SoftwareSigner;
use hanko_pki::test_support::{TestCa, name};
use hanko_pki::x509::{CertParams, CertProfile, issue_certificate};
use hanko_pki::{HashAlgorithm, KeyType, SignatureAlgorithm, Signer as _};

const POLICY: &str = "1.3.6.1.4.1.99999.1.1";
const ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
const SHA256: &str = "2.16.840.1.101.3.4.2.1";

const YEAR: Duration = Duration::from_secs(365 * 86_400);

/// One defect of the corpus (or none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Defect {
    None,
    WrongMessageDigest,
    UnsortedSignedAttributes,
    NoEssCertIdV2,
    EssCertIdOfAnotherCertificate,
    TrailingZeroInGenTime,
    NonceNotEchoed,
    CertificatesWithoutCertReq,
    NonCriticalEku,
    ExpiredSigner,
    TamperedSignature,
}

/// The check each defect must fail, alone.
fn check_broken_by(d: Defect) -> Option<&'static str> {
    Some(match d {
        Defect::None => return None,
        Defect::WrongMessageDigest => "message-digest",
        Defect::UnsortedSignedAttributes => "signed-attributes-sorted",
        Defect::NoEssCertIdV2 => "signing-certificate",
        Defect::EssCertIdOfAnotherCertificate => "ess-cert-id",
        Defect::TrailingZeroInGenTime => "gen-time",
        Defect::NonceNotEchoed => "nonce",
        Defect::CertificatesWithoutCertReq => "certificates-certreq",
        Defect::NonCriticalEku => "tsa-certificate-eku",
        Defect::ExpiredSigner => "tsa-certificate-validity",
        Defect::TamperedSignature => "signature",
    })
}

struct Producer {
    ca: TestCa,
    /// A TSA certificate valid now, one with a non-critical EKU (re-signed by the
    /// intermediate), one that expired a year ago, and an unrelated one.
    cert: Vec<u8>,
    cert_non_critical_eku: Vec<u8>,
    cert_expired: Vec<u8>,
    other_cert: Vec<u8>,
    key: SoftwareSigner,
    expired_key: SoftwareSigner,
}

fn ec() -> SignatureAlgorithm {
    SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256)
}

async fn tsa_cert(
    ca: &TestCa,
    key: &SoftwareSigner,
    cn: &str,
    from: SystemTime,
    until: SystemTime,
) -> Vec<u8> {
    let params = CertParams::new(
        CertProfile::Tsa {
            non_repudiation: false,
            private_key_usage_period: None,
        },
        name("Corpus TSA", cn),
        from,
        until,
    );
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

/// `cert` with its extendedKeyUsage made non-critical, re-signed by the intermediate.
fn without_critical_eku(cert: &[u8], issuer_key: &Arc<SoftwareSigner>) -> Vec<u8> {
    let top = der::read_exact(cert).unwrap();
    let parts = top.children().unwrap();
    let tbs = parts[0];
    let mut fields: Vec<Vec<u8>> = Vec::new();
    for f in tbs.children().unwrap() {
        if f.tag != 0xa3 {
            fields.push(f.raw.to_vec());
            continue;
        }
        let list = der::read_exact(f.value).unwrap();
        let mut exts: Vec<Vec<u8>> = Vec::new();
        for e in list.children().unwrap() {
            let k = e.children().unwrap();
            if k[0].oid().unwrap() == "2.5.29.37" {
                assert_eq!(k.len(), 3, "the profile makes EKU critical");
                exts.push(der::seq(&[k[0].raw, k[2].raw]));
            } else {
                exts.push(e.raw.to_vec());
            }
        }
        let refs: Vec<&[u8]> = exts.iter().map(Vec::as_slice).collect();
        fields.push(der::tlv(0xa3, &der::seq(&refs)));
    }
    let refs: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
    let new_tbs = der::seq(&refs);
    let sig = issuer_key.sign_now(&new_tbs).unwrap();
    let mut bits = vec![0u8];
    bits.extend_from_slice(&sig);
    der::seq(&[&new_tbs, parts[1].raw, &der::tlv(tag::BIT_STRING, &bits)])
}

impl Producer {
    async fn new() -> Self {
        let now = SystemTime::now();
        let ca = TestCa::generate("Corpus", now - 5 * YEAR, now + 5 * YEAR, now + 5 * YEAR).await;
        let key = SoftwareSigner::generate(KeyType::EcP256, ec()).unwrap();
        let expired_key = SoftwareSigner::generate(KeyType::EcP256, ec()).unwrap();
        let cert = tsa_cert(&ca, &key, "Corpus TSA 1", now - YEAR, now + YEAR).await;
        let cert_expired = tsa_cert(
            &ca,
            &expired_key,
            "Corpus TSA old",
            now - 3 * YEAR,
            now - YEAR,
        )
        .await;
        let other_cert = tsa_cert(&ca, &expired_key, "Corpus TSA 2", now - YEAR, now + YEAR).await;
        let cert_non_critical_eku = without_critical_eku(&cert, &ca.inter_key);
        Self {
            ca,
            cert,
            cert_non_critical_eku,
            cert_expired,
            other_cert,
            key,
            expired_key,
        }
    }

    /// A token over `imprint` with `nonce`, carrying the TSA certificate and the
    /// intermediate, with `defect`.
    fn token(&self, imprint: &[u8], nonce: &[u8], defect: Defect) -> Vec<u8> {
        let (cert, key) = match defect {
            Defect::NonCriticalEku => (&self.cert_non_critical_eku, &self.key),
            Defect::ExpiredSigner => (&self.cert_expired, &self.expired_key),
            _ => (&self.cert, &self.key),
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let (y, mo, d, h, mi, s) = time::civil_from_unix(now);
        let (gen_time, accuracy) = if defect == Defect::TrailingZeroInGenTime {
            (
                format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}.500Z"),
                der::seq(&[&der::tlv(0x80, &[0x01, 0xf4])]), // millis 500
            )
        } else {
            (
                format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z"),
                der::seq(&[&der::uint_u64(1)]),
            )
        };
        let mut tst_parts: Vec<Vec<u8>> = vec![
            der::uint_u64(1),
            der::oid(POLICY),
            der::seq(&[&der::alg_id(SHA256), &der::octets(imprint)]),
            der::uint(&now.to_be_bytes()),
            der::tlv(tag::GENERALIZED_TIME, gen_time.as_bytes()),
            accuracy,
        ];
        if defect != Defect::NonceNotEchoed {
            tst_parts.push(der::uint(nonce));
        }
        let refs: Vec<&[u8]> = tst_parts.iter().map(Vec::as_slice).collect();
        let tst = der::seq(&refs);

        let c = hanko_conformance::cert::Cert::from_der(cert).unwrap();
        let mut digest = crypto::Hash::Sha256.digest(&tst);
        if defect == Defect::WrongMessageDigest {
            digest[0] ^= 0x01;
        }
        let attr = |oid: &str, value: &[u8]| der::seq(&[&der::oid(oid), &der::set_of(&[value])]);
        let mut attrs = vec![
            attr("1.2.840.113549.1.9.3", &der::oid(token::oid::TST_INFO)),
            attr("1.2.840.113549.1.9.4", &der::octets(&digest)),
            attr(
                token::oid::ALGORITHM_PROTECTION,
                &der::seq(&[
                    &der::alg_id(SHA256),
                    &der::tlv(0xa1, &der::oid(ECDSA_SHA256)),
                ]),
            ),
        ];
        if defect != Defect::NoEssCertIdV2 {
            let named = if defect == Defect::EssCertIdOfAnotherCertificate {
                &self.other_cert
            } else {
                cert
            };
            let id = der::seq(&[&der::octets(&crypto::Hash::Sha256.digest(named))]);
            attrs.push(attr(
                token::oid::SIGNING_CERTIFICATE_V2,
                &der::seq(&[&der::seq(&[&id])]),
            ));
        }
        attrs.sort();
        if defect == Defect::UnsortedSignedAttributes {
            attrs.reverse();
        }
        let attrs_content = attrs.concat();
        let mut signed = der::tlv(tag::SET, &attrs_content);
        let mut sig = key.sign_now(&signed).unwrap();
        if defect == Defect::TamperedSignature {
            let last = sig.len() - 1;
            sig[last] ^= 0x01;
        }
        signed[0] = 0xa0;
        let signer_info = der::seq(&[
            &der::uint_u64(1),
            &der::seq(&[&c.issuer, &der::tlv(tag::INTEGER, &c.serial)]),
            &der::alg_id(SHA256),
            &signed,
            &der::alg_id(ECDSA_SHA256),
            &der::octets(&sig),
        ]);
        let certs = der::set_of(&[cert, self.ca.inter.der()]);
        let signed_data = der::seq(&[
            &der::uint_u64(3),
            &der::set_of(&[&der::alg_id(SHA256)]),
            &der::seq(&[
                &der::oid(token::oid::TST_INFO),
                &der::tlv(0xa0, &der::octets(&tst)),
            ]),
            &der::tlv(0xa0, der::read_exact(&certs).unwrap().value),
            &der::set_of(&[&signer_info]),
        ]);
        der::seq(&[
            &der::oid(token::oid::SIGNED_DATA),
            &der::tlv(0xa0, &signed_data),
        ])
    }

    fn expect(&self, imprint: &[u8], nonce: &[u8], defect: Defect) -> Expect {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        Expect {
            imprint: Some((SHA256.into(), imprint.to_vec())),
            nonce: Some(Some(
                der::read_exact(&der::uint(nonce)).unwrap().value.to_vec(),
            )),
            cert_req: Some(defect != Defect::CertificatesWithoutCertReq),
            policy: Some(POLICY.into()),
            sent_received: Some((now - 1.0, now + 1.0)),
            signer_cert: None,
            ca: vec![self.ca.root.der().to_vec()],
            intermediates: Vec::new(),
            qualified: false,
        }
    }
}

fn failed(f: &Findings) -> BTreeSet<&'static str> {
    f.checks(Some(Outcome::Fail))
}

fn skipped(f: &Findings) -> BTreeSet<&'static str> {
    f.checks(Some(Outcome::Skip))
}

#[tokio::test(flavor = "current_thread")]
async fn each_defect_fails_its_own_check_and_no_other() {
    let p = Producer::new().await;
    let imprint = crypto::Hash::Sha256.digest(b"the corpus document");
    let nonce = [0x3c, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77];

    let mut good = Findings::new();
    token::check_token(
        &p.token(&imprint, &nonce, Defect::None),
        &p.expect(&imprint, &nonce, Defect::None),
        "",
        &mut good,
    );
    assert!(
        failed(&good).is_empty(),
        "the well-formed token fails: {:#?}",
        good.list()
    );
    assert_eq!(
        skipped(&good),
        BTreeSet::from(["qc-statements"]),
        "{:#?}",
        good.list()
    );
    let baseline_checks: BTreeSet<_> = good.list().iter().map(|x| x.check).collect();
    assert!(baseline_checks.len() >= 28, "{baseline_checks:?}");

    for defect in [
        Defect::WrongMessageDigest,
        Defect::UnsortedSignedAttributes,
        Defect::NoEssCertIdV2,
        Defect::EssCertIdOfAnotherCertificate,
        Defect::TrailingZeroInGenTime,
        Defect::NonceNotEchoed,
        Defect::CertificatesWithoutCertReq,
        Defect::NonCriticalEku,
        Defect::ExpiredSigner,
        Defect::TamperedSignature,
    ] {
        let mut f = Findings::new();
        let tok = p.token(&imprint, &nonce, defect);
        token::check_token(&tok, &p.expect(&imprint, &nonce, defect), "", &mut f);
        let want = check_broken_by(defect).unwrap();
        assert_eq!(
            failed(&f),
            BTreeSet::from([want]),
            "{defect:?} must fail {want} alone: {:#?}",
            f.list()
        );
        let mut expected_skips = BTreeSet::from(["qc-statements"]);
        if defect == Defect::NoEssCertIdV2 {
            // Nothing to compare once the attribute is missing: a SKIP, not a second FAIL.
            expected_skips.insert("ess-cert-id");
        }
        assert_eq!(skipped(&f), expected_skips, "{defect:?}: {:#?}", f.list());
        let all: BTreeSet<_> = f.list().iter().map(|x| x.check).collect();
        assert_eq!(all, baseline_checks, "{defect:?} ran another set of checks");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_command_line_reports_text_json_html_and_exit_status() {
    let p = Producer::new().await;
    let dir = tempfile::tempdir().unwrap();
    let data = b"a document an archive keeps";
    let imprint = crypto::Hash::Sha256.digest(data);
    let nonce = [0x01, 0x02, 0x03];
    std::fs::write(dir.path().join("doc.txt"), data).unwrap();
    std::fs::write(
        dir.path().join("good.tst"),
        p.token(&imprint, &nonce, Defect::None),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("tampered.tst"),
        p.token(&imprint, &nonce, Defect::TamperedSignature),
    )
    .unwrap();
    let pem = {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(p.ca.root.der());
        format!("-----BEGIN CERTIFICATE-----\n{b64}\n-----END CERTIFICATE-----\n")
    };
    std::fs::write(dir.path().join("root.pem"), pem).unwrap();
    let run = |file: &str, extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_hanko-conformance"))
            .current_dir(dir.path())
            .args([
                "token",
                file,
                "--data",
                "doc.txt",
                "--ca",
                "root.pem",
                "--nonce",
                "010203",
                "--cert-req",
                "true",
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let ok = run("good.tst", &["--html", "report.html"]);
    let text = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(ok.status.code(), Some(0), "{text}");
    assert!(text.contains("PASS B.24   message-imprint"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("input good.tst sha256:")),
        "{text}"
    );
    assert!(text.trim_end().ends_with("0 failed, 2 skipped"), "{text}");
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(
        html.contains("The subject conforms") && !html.contains("<script"),
        "{html}"
    );

    let bad = run("tampered.tst", &["--json"]);
    assert_eq!(bad.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&bad.stdout).unwrap();
    let fails: Vec<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["outcome"] == "FAIL")
        .map(|f| f["check"].as_str().unwrap())
        .collect();
    assert_eq!(fails, ["signature"]);
    assert_eq!(json["summary"]["failed"], 1);

    // The wrong data: the imprint check alone fails.
    std::fs::write(dir.path().join("doc.txt"), b"another document").unwrap();
    let other = run("good.tst", &[]);
    let text = String::from_utf8_lossy(&other.stdout);
    assert_eq!(other.status.code(), Some(1), "{text}");
    assert!(text.contains("FAIL B.24   message-imprint"), "{text}");

    let missing = Command::new(env!("CARGO_BIN_EXE_hanko-conformance"))
        .args(["token", "/nonexistent.tst"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent.tst"));
}
