//! What a token does NOT carry, which the interop tests cannot see by verifying it: no
//! ESSCertID v1 (CONFORMANCE B.21) and nothing about the requester beyond the profile's
//! echo of the nonce (CONFORMANCE A.12). The tests walk the DER with `hanko_pki::der`,
//! so a field no decoder expects is still seen.

use hanko_pki::der::{Cursor, tag};
use hanko_pki::oid;
use hanko_tsa::request::RawTimeStampReq;
use hanko_tsa::{Outcome, TsaConfig};
use rasn::types::Integer;
use rasn_cms::SignedData;
use rasn_cms::tsp::{TimeStampResp, TstInfo};

use crate::common::{Kind, TestTsa, pki, tsa};
use crate::interop::contains;
use crate::rejections::valid_raw;

/// Issues a token for `raw`; returns the response DER and the TSTInfo DER.
async fn issue(t: &TestTsa, raw: &RawTimeStampReq) -> (Vec<u8>, Vec<u8>) {
    let resp = t.tsa.respond(&rasn::der::encode(raw).unwrap()).await;
    let Outcome::Granted(token) = resp.outcome else {
        panic!("{:?}", resp.outcome)
    };
    (resp.der, token.tst_info_der)
}

/// The tags of the elements of the SEQUENCE that `der` is, in order.
fn field_tags(der: &[u8]) -> Vec<u8> {
    let seq = Cursor::new(der, 0..der.len())
        .next_tagged(tag::SEQUENCE)
        .unwrap();
    let mut fields = Cursor::new(der, seq.content);
    let mut tags = Vec::new();
    while !fields.is_empty() {
        tags.push(fields.next_tlv().unwrap().tag);
    }
    tags
}

/// The SignedData of a granted response.
fn signed_data(resp_der: &[u8]) -> SignedData {
    let resp: TimeStampResp = rasn::der::decode(resp_der).unwrap();
    let token = resp.time_stamp_token.unwrap();
    rasn::der::decode(token.content.as_bytes()).unwrap()
}

/// The signed attribute types of the one SignerInfo, sorted; asserts there are no
/// unsigned attributes.
fn signed_attribute_types(sd: &SignedData) -> Vec<String> {
    let infos = sd.signer_infos.to_vec();
    let [si] = infos.as_slice() else {
        panic!("{} SignerInfos", infos.len())
    };
    assert!(si.unsigned_attrs.is_none(), "unsigned attributes");
    let mut types: Vec<String> = si
        .signed_attrs
        .as_ref()
        .unwrap()
        .to_vec()
        .iter()
        .map(|a| a.r#type.to_string())
        .collect();
    types.sort();
    types
}

/// CONFORMANCE B.21: for both key types, with and without issuerSerial and
/// certificates, the token's signed attributes are exactly content-type,
/// message-digest, CMSAlgorithmProtection and signing-certificate-v2; the OID of
/// signing-certificate (ESSCertID v1) appears nowhere in the response.
#[tokio::test]
async fn tokens_carry_no_ess_cert_id_v1() {
    let v1 = hanko_pki::der::oid(&oid::SIGNING_CERTIFICATE);
    let mut want = [
        oid::CONTENT_TYPE,
        oid::MESSAGE_DIGEST,
        oid::CMS_ALGORITHM_PROTECTION,
        oid::SIGNING_CERTIFICATE_V2,
    ]
    .map(|o| o.to_string())
    .to_vec();
    want.sort();
    for kind in [Kind::Rsa3072, Kind::P256] {
        for ess_issuer_serial in [true, false] {
            let t = tsa(
                pki(kind),
                TsaConfig {
                    ess_issuer_serial,
                    ..TsaConfig::default()
                },
            );
            for cert_req in [true, false] {
                let mut raw = valid_raw();
                raw.cert_req = cert_req;
                let (resp, _) = issue(&t, &raw).await;
                let case = format!("{kind:?} issuerSerial {ess_issuer_serial} certReq {cert_req}");
                assert!(!contains(&resp, &v1), "{case}: ESSCertID v1 OID present");
                assert_eq!(signed_attribute_types(&signed_data(&resp)), want, "{case}");
            }
        }
    }
}

/// CONFORMANCE A.12: requests that differ in everything a requester chooses besides the
/// imprint (nonce or none, certReq) get TSTInfos with exactly the profile's fields (a
/// nonce only when one was sent, tsa only when configured, never extensions), equal
/// once serial, genTime and nonce are set aside: nothing else in a token depends on who
/// asked. The TSA core is never given a client identity at all (`Tsa::respond` takes the
/// request bytes only).
#[tokio::test]
async fn the_token_says_nothing_about_the_requester() {
    const VERSION_POLICY_IMPRINT_SERIAL_TIME_ACCURACY: [u8; 6] = [
        tag::INTEGER,
        tag::OID,
        tag::SEQUENCE,
        tag::INTEGER,
        tag::GENERALIZED_TIME,
        tag::SEQUENCE,
    ];
    let pki = pki(Kind::P256);
    for include_tsa_name in [false, true] {
        let t = tsa(
            pki,
            TsaConfig {
                include_tsa_name,
                ..TsaConfig::default()
            },
        );
        let mut normalised: Option<TstInfo> = None;
        for (nonce, cert_req) in [
            (Some(Integer::from(1)), true),
            (Some(Integer::from(0x7fff_ffff_ffff_ffff_i64)), false),
            (None, true),
            (None, false),
        ] {
            let mut raw = valid_raw();
            raw.nonce = nonce.clone();
            raw.cert_req = cert_req;
            let (resp, tst_der) = issue(&t, &raw).await;
            let case = format!("tsa name {include_tsa_name} nonce {nonce:?} certReq {cert_req}");

            // Exactly the profile's fields, in order: no ordering (DEFAULT FALSE), no
            // extensions ([1]).
            let mut want = VERSION_POLICY_IMPRINT_SERIAL_TIME_ACCURACY.to_vec();
            if nonce.is_some() {
                want.push(tag::INTEGER);
            }
            if include_tsa_name {
                want.push(0xa0);
            }
            assert_eq!(field_tags(&tst_der), want, "{case}");
            let mut tst: TstInfo = rasn::der::decode(&tst_der).unwrap();
            assert!(tst.extensions.is_none(), "{case}");
            assert_eq!(tst.nonce, nonce, "{case}");
            if include_tsa_name {
                // The TSA's own name: its certificate's subject, not the requester's.
                let Some(rasn_pkix::GeneralName::DirectoryName(name)) = &tst.tsa else {
                    panic!("{case}: {:?}", tst.tsa)
                };
                assert_eq!(rasn::der::encode(name).unwrap(), pki.chain[0].subject_der());
            }

            // Everything else is the same for every requester.
            tst.serial_number = Integer::from(0);
            tst.nonce = None;
            let first = normalised.get_or_insert_with(|| tst.clone());
            tst.gen_time = first.gen_time;
            assert_eq!(&tst, first, "{case}");

            // The SignedData around it differs only in the certificates asked for.
            let sd = signed_data(&resp);
            assert_eq!(sd.certificates.is_some(), cert_req, "{case}");
            assert!(sd.crls.is_none(), "{case}");
        }
    }
}
