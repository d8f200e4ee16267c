//! Tokens checked by third-party verifiers (openssl ts -verify, rfc3161-client) and by
//! our own structural decode: signed attributes re-encode to the signed bytes, CMS
//! algorithm protection equals the SignerInfo's algorithms, ESSCertIDv2 names the
//! certificate, certificates present exactly when asked, genTime without trailing zeros.

use std::collections::HashSet;
use std::process::Command;

use hanko_client::test_support::run_rfc3161_client;
use hanko_pki::cms;
use hanko_pki::{HashAlgorithm, Signer};
use hanko_tsa::{Outcome, TsaConfig};
use rasn::types::Any;
use rasn_cms::tsp::{PkiStatus, TimeStampResp, TstInfo};
use rasn_cms::{CertificateChoices, SignedData};
use rasn_pkix::Attribute;

use crate::common::{Kind, Pki, openssl, openssl_query, pki, tsa};

/// What we learn from taking a token apart.
pub struct Decoded {
    pub tst: TstInfo,
    pub tst_der: Vec<u8>,
    pub gen_time_text: String,
}

/// Decodes a granted response and checks every structural promise of the profile.
pub fn check_token(resp_der: &[u8], pki: &Pki, signer: &dyn Signer, cert_req: bool) -> Decoded {
    let resp: TimeStampResp = rasn::der::decode(resp_der).unwrap();
    assert_eq!(resp.status.status, PkiStatus::Granted);
    assert!(resp.status.fail_info.is_none());
    let token = resp.time_stamp_token.unwrap();
    assert_eq!(
        token.content_type.to_string(),
        hanko_pki::oid::dotted::SIGNED_DATA
    );
    let sd: SignedData = rasn::der::decode(token.content.as_bytes()).unwrap();

    // B.15/16: version 3, one SignerInfo v1 with issuerAndSerialNumber.
    assert_eq!(sd.version, 3.into());
    assert_eq!(
        sd.encap_content_info.content_type.to_string(),
        hanko_pki::oid::dotted::TST_INFO
    );
    assert_eq!(sd.signer_infos.len(), 1);
    let si = sd.signer_infos.to_vec()[0].clone();
    assert_eq!(si.version, 1.into());
    assert!(matches!(
        si.sid,
        rasn_cms::SignerIdentifier::IssuerAndSerialNumber(_)
    ));

    // digestAlgorithms is exactly the signer's digest algorithm (B.19).
    let alg = signer.algorithm();
    let digest_alg_der = alg.hash().algorithm_identifier_der();
    let sig_alg_der = alg.algorithm_identifier_der();
    let algs: Vec<Vec<u8>> = sd
        .digest_algorithms
        .to_vec()
        .iter()
        .map(|a| rasn::der::encode(*a).unwrap())
        .collect();
    assert_eq!(algs, vec![digest_alg_der.clone()]);
    assert_eq!(
        rasn::der::encode(&si.digest_algorithm).unwrap(),
        digest_alg_der
    );
    assert_eq!(
        rasn::der::encode(&si.signature_algorithm).unwrap(),
        sig_alg_der
    );

    // B.11: certificates exactly when asked, and then the original DER of the chain.
    match (&sd.certificates, cert_req) {
        (None, false) => {}
        (Some(certs), true) => {
            let got: HashSet<Vec<u8>> = certs
                .to_vec()
                .iter()
                .map(|c| match c {
                    CertificateChoices::Certificate(c) => rasn::der::encode(&**c).unwrap(),
                    other => panic!("unexpected certificate choice {other:?}"),
                })
                .collect();
            let want: HashSet<Vec<u8>> = pki.chain.iter().map(|c| c.der().to_vec()).collect();
            assert_eq!(got, want);
            // And byte-identical in the token (not just equal after re-encoding).
            for c in &pki.chain {
                assert!(
                    contains(resp_der, c.der()),
                    "original certificate DER in token"
                );
            }
        }
        (certs, _) => panic!("certReq {cert_req} but certificates {:?}", certs.is_some()),
    }

    // B.17/18: signed attributes; re-encoding them as a SET gives the signed bytes.
    let attrs = si.signed_attrs.clone().unwrap();
    let set_der = rasn::der::encode(&attrs).unwrap();
    assert_eq!(set_der[0], 0x31);
    let mut implicit = set_der.clone();
    implicit[0] = 0xa0;
    assert!(
        contains(resp_der, &implicit),
        "SignerInfo carries the same bytes"
    );
    hanko_pki::verify::verify(
        signer.public_key_der(),
        alg,
        &set_der,
        si.signature.as_ref(),
    )
    .expect("signature over the re-encoded SET verifies");
    let sorted = {
        let mut elems: Vec<Vec<u8>> = attrs
            .to_vec()
            .iter()
            .map(|a| rasn::der::encode(*a).unwrap())
            .collect();
        let in_order = elems.concat();
        elems.sort();
        (in_order, elems.concat())
    };
    assert!(
        contains(&set_der, &sorted.1),
        "attributes sorted by encoding"
    );

    let attr = |oid: &str| -> Vec<Any> {
        let found: Vec<&Attribute> = attrs
            .to_vec()
            .into_iter()
            .filter(|a| a.r#type.to_string() == oid)
            .collect();
        assert_eq!(found.len(), 1, "exactly one {oid}");
        found[0].values.to_vec().into_iter().cloned().collect()
    };
    let ct = attr(hanko_pki::oid::dotted::CONTENT_TYPE);
    assert_eq!(ct.len(), 1);
    assert_eq!(
        ct[0].as_bytes(),
        hanko_pki::der::oid(&hanko_pki::oid::TST_INFO)
    );
    let tst_der = sd.encap_content_info.content.clone().unwrap().to_vec();
    let md = attr(hanko_pki::oid::dotted::MESSAGE_DIGEST);
    let md: rasn::types::OctetString = rasn::der::decode(md[0].as_bytes()).unwrap();
    assert_eq!(md.to_vec(), alg.hash().digest(&tst_der));

    // B.20: CMSAlgorithmProtection (RFC 6211 OID) equal to the SignerInfo's algorithms.
    let cap = attr(hanko_pki::oid::dotted::CMS_ALGORITHM_PROTECTION);
    let cap: rasn_cms::CmsAlgorithmProtection = rasn::der::decode(cap[0].as_bytes()).unwrap();
    assert_eq!(cap.digest_algorithm, si.digest_algorithm);
    assert_eq!(
        cap.signature_algorithm.as_ref(),
        Some(&si.signature_algorithm)
    );
    assert!(cap.mac_algorithm.is_none());

    // B.21/22: ESSCertIDv2 over the whole original certificate, SHA-256 omitted.
    let sc = attr(hanko_pki::oid::dotted::SIGNING_CERTIFICATE_V2);
    let ess: rasn_smime::ess::SigningCertificateV2 = rasn::der::decode(sc[0].as_bytes()).unwrap();
    let first = &ess.certs[0];
    assert_eq!(
        first.cert_hash.to_vec(),
        HashAlgorithm::Sha256.digest(pki.chain[0].der())
    );
    assert!(
        !contains(
            sc[0].as_bytes(),
            &HashAlgorithm::Sha256.algorithm_identifier_der()
        ),
        "SHA-256 hashAlgorithm is omitted (DEFAULT)"
    );
    assert!(first.issuer_serial.is_some());

    // TSTInfo and genTime text (B.26/27/28).
    let tst: TstInfo = rasn::der::decode(&tst_der).unwrap();
    assert_eq!(tst.version, 1.into());
    assert!(!tst.ordering);
    assert!(tst.accuracy.is_some());
    let gen_time_der = rasn::der::encode(&tst.gen_time).unwrap();
    assert!(contains(&tst_der, &gen_time_der));
    assert_eq!(gen_time_der[0], 0x18);
    let gen_time_text = String::from_utf8(gen_time_der[2..].to_vec()).unwrap();
    assert!(gen_time_text.ends_with('Z'));
    if let Some((_, frac)) = gen_time_text.trim_end_matches('Z').split_once('.') {
        assert!(!frac.ends_with('0'), "no trailing zeros: {gen_time_text}");
        assert!(!frac.is_empty());
    }
    Decoded {
        tst,
        tst_der,
        gen_time_text,
    }
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn openssl_and_rfc3161_client_verify_every_combination() {
    let mut py_cases = Vec::new();
    for kind in [Kind::Rsa3072, Kind::P256] {
        let mut serials = HashSet::new();
        let pki = pki(kind);
        let t = tsa(pki, TsaConfig::default());
        let signer = pki.signer();
        for hash in ["sha256", "sha384", "sha512"] {
            for nonce in [true, false] {
                for cert_req in [true, false] {
                    let name = format!("{kind:?}-{hash}-{nonce}-{cert_req}");
                    let (data, req_path, req) = openssl_query(pki, &name, hash, nonce, cert_req);
                    let resp = t.tsa.respond(&req).await;
                    let Outcome::Granted(token) = &resp.outcome else {
                        panic!("{name}: {:?}", resp.outcome);
                    };
                    assert!(serials.insert(token.serial.clone()), "serials distinct");
                    let resp_path = pki.path(&format!("{name}.tsr"));
                    std::fs::write(&resp_path, &resp.der).unwrap();

                    let decoded = check_token(&resp.der, pki, signer.as_ref(), cert_req);
                    assert_eq!(decoded.tst_der, token.tst_info_der);
                    assert!(contains(&resp.der, &token.token_der));
                    assert_eq!(decoded.tst.nonce.is_some(), nonce);
                    let raw = hanko_tsa::request::RawTimeStampReq::from_der(&req).unwrap();
                    assert_eq!(decoded.tst.nonce, raw.nonce, "nonce echoed");
                    assert_eq!(decoded.tst.message_imprint, raw.message_imprint);
                    assert_eq!(
                        decoded.tst.policy.to_string(),
                        hanko_tsa::ETSI_BEST_PRACTICES_POLICY
                    );
                    assert_eq!(decoded.gen_time_text.len(), "20250101000000Z".len());

                    // openssl: with certReq the token alone must lead to the root
                    // (so the intermediate is in it); without, we supply the chain.
                    let (resp_s, req_s, root_s, chain_s) = (
                        resp_path.display().to_string(),
                        req_path.display().to_string(),
                        pki.root_pem.display().to_string(),
                        pki.chain_pem.display().to_string(),
                    );
                    let mut args = vec![
                        "ts",
                        "-verify",
                        "-in",
                        &resp_s,
                        "-queryfile",
                        &req_s,
                        "-CAfile",
                        &root_s,
                    ];
                    if !cert_req {
                        args.extend(["-untrusted", &chain_s]);
                    }
                    let out = openssl(&pki.dir, &args);
                    assert!(out.contains("Verification: OK"), "{name}: {out}");

                    py_cases.push(serde_json::json!({
                        "resp": resp_s, "req": req_s, "data": data.display().to_string(),
                        "root": root_s, "tsa": pki.tsa_pem.display().to_string(),
                        "intermediates": [pki.inter_pem.display().to_string()],
                        "common_name": pki.common_name,
                    }));
                }
            }
        }
    }
    assert_eq!(py_cases.len(), 24);
    run_rfc3161_client(&py_cases);
}

#[tokio::test]
async fn openssl_prints_algorithm_protection_and_accuracy() {
    let pki = pki(Kind::P256);
    let t = tsa(pki, TsaConfig::default());
    let (_, _, req) = openssl_query(pki, "print", "sha256", true, true);
    let resp = t.tsa.respond(&req).await;
    let Outcome::Granted(token) = resp.outcome else {
        panic!()
    };
    let tok = pki.path("print.token.der");
    std::fs::write(&tok, &token.token_der).unwrap();
    let tok_s = tok.display().to_string();
    let out = openssl(
        &pki.dir,
        &["cms", "-cmsout", "-print", "-inform", "DER", "-in", &tok_s],
    );
    assert!(
        out.contains("id-aa-CMSAlgorithmProtection") || out.contains("1.2.840.113549.1.9.52"),
        "{out}"
    );
    let resp_path = pki.path("print.tsr");
    std::fs::write(&resp_path, &resp.der).unwrap();
    let resp_s = resp_path.display().to_string();
    let text = openssl(&pki.dir, &["ts", "-reply", "-in", &resp_s, "-text"]);
    assert!(text.contains("Status: Granted."), "{text}");
    assert!(text.contains("Accuracy: 0x01 seconds"), "{text}");
    assert!(text.contains("Ordering: no"), "{text}");
    assert!(text.contains("Policy OID: 0.4.0.2023.1.1"), "{text}");
}

#[tokio::test]
async fn millisecond_accuracy_tsa_name_and_qc_statement() {
    let pki = pki(Kind::Rsa3072);
    let config = TsaConfig {
        accuracy: std::time::Duration::from_millis(10),
        include_tsa_name: true,
        qualified: true,
        ..TsaConfig::default()
    };
    let t = tsa(pki, config);
    t.clock.advance(std::time::Duration::from_millis(1234));
    let (data, req_path, req) = openssl_query(pki, "ms", "sha512", true, false);
    let resp = t.tsa.respond(&req).await;
    assert!(
        matches!(resp.outcome, Outcome::Granted(_)),
        "{:?}",
        resp.outcome
    );
    let signer = pki.signer();
    let d = check_token(&resp.der, pki, signer.as_ref(), false);
    let (_, frac) = d
        .gen_time_text
        .trim_end_matches('Z')
        .split_once('.')
        .unwrap_or(("", ""));
    assert!(
        frac.len() <= 2,
        "two digits at most for 10 ms: {}",
        d.gen_time_text
    );
    let acc = d.tst.accuracy.clone().unwrap();
    assert_eq!(acc.millis, Some(10.into()));
    assert!(acc.seconds.is_none());
    // tsa = directoryName(subject of the TSA certificate), byte for byte.
    let mut dn = vec![0xa4];
    dn.extend_from_slice(&hanko_pki::der::length(pki.chain[0].subject_der().len()));
    dn.extend_from_slice(pki.chain[0].subject_der());
    assert!(contains(&d.tst_der, &dn));
    // qcStatements with esi4-qtstStatement-1, non-critical.
    let exts = d.tst.extensions.clone().unwrap();
    assert_eq!(exts.len(), 1);
    assert_eq!(exts[0].extn_id.to_string(), "1.3.6.1.5.5.7.1.3");
    assert!(!exts[0].critical);
    assert_eq!(exts[0].extn_value.to_vec(), qc_value());

    // Third-party verifiers accept it (openssl checks the tsa name against the signer).
    let resp_path = pki.path("ms.tsr");
    std::fs::write(&resp_path, &resp.der).unwrap();
    let (resp_s, req_s, root_s, chain_s) = (
        resp_path.display().to_string(),
        req_path.display().to_string(),
        pki.root_pem.display().to_string(),
        pki.chain_pem.display().to_string(),
    );
    let out = openssl(
        &pki.dir,
        &[
            "ts",
            "-verify",
            "-in",
            &resp_s,
            "-queryfile",
            &req_s,
            "-CAfile",
            &root_s,
            "-untrusted",
            &chain_s,
        ],
    );
    assert!(out.contains("Verification: OK"), "{out}");
    run_rfc3161_client(&[serde_json::json!({
        "resp": resp_s, "req": req_s, "data": data.display().to_string(),
        "root": root_s, "tsa": pki.tsa_pem.display().to_string(),
        "intermediates": [pki.inter_pem.display().to_string()],
        "common_name": pki.common_name,
    })]);
}

/// SEQUENCE { SEQUENCE { OID 0.4.0.19422.1.1 } }, assembled independently of the crate.
fn qc_value() -> Vec<u8> {
    // 0.4 -> 0x04; 0 -> 0x00; 19422 -> 0x81 0x97 0x5e; 1 -> 0x01; 1 -> 0x01
    let oid = [0x06, 0x07, 0x04, 0x00, 0x81, 0x97, 0x5e, 0x01, 0x01];
    let mut stmt = vec![0x30, oid.len() as u8];
    stmt.extend_from_slice(&oid);
    let mut seq = vec![0x30, stmt.len() as u8];
    seq.extend_from_slice(&stmt);
    seq
}

/// `pki::cms` beyond tokens (what the e-seal crate will use): detached id-data content
/// with signing-time gives SignedData version 1 without eContent, and `openssl cms
/// -verify` accepts it against the detached content and the root.
#[tokio::test]
async fn cms_detached_id_data_verifies_with_openssl_cms() {
    for kind in [Kind::Rsa3072, Kind::P256] {
        let pki = pki(kind);
        let signer = pki.signer();
        let content = b"a document to seal\n".repeat(50);
        let digest = signer.algorithm().hash().digest(&content);
        let chain: Vec<&[u8]> = pki.chain.iter().map(|c| c.der()).collect();
        let out = cms::sign_signed_data(
            &cms::SignedDataParams {
                econtent_type: hanko_pki::oid::DATA,
                content: cms::Content::Detached { digest: &digest },
                signer_certificate: pki.chain[0].der(),
                certificates: &chain,
                ess_issuer_serial: false,
                signing_time: Some(std::time::SystemTime::now()),
                extra_signed_attributes: &[],
            },
            signer.as_ref(),
        )
        .await
        .unwrap();
        let ci: rasn_cms::ContentInfo = rasn::der::decode(&out.content_info_der).unwrap();
        let sd: SignedData = rasn::der::decode(ci.content.as_bytes()).unwrap();
        assert_eq!(sd.version, 1.into());
        assert!(sd.encap_content_info.content.is_none());
        let sig_path = pki.path("detached.p7s");
        let data_path = pki.path("detached.txt");
        std::fs::write(&sig_path, &out.content_info_der).unwrap();
        std::fs::write(&data_path, &content).unwrap();
        let (sig_s, data_s, root_s) = (
            sig_path.display().to_string(),
            data_path.display().to_string(),
            pki.root_pem.display().to_string(),
        );
        // -purpose any: the TSA certificate's EKU is timeStamping only.
        let out = Command::new("openssl")
            .args([
                "cms",
                "-verify",
                "-binary",
                "-inform",
                "DER",
                "-in",
                &sig_s,
                "-content",
                &data_s,
                "-CAfile",
                &root_s,
                "-purpose",
                "any",
                "-out",
                "/dev/null",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{kind:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("Verification successful"));
    }
}
