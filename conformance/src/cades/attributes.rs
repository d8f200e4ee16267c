//! The signed attributes of a CAdES or PAdES CMS (D.45, D.46; E.56, E.57 for PAdES):
//! content-type, message-digest over the data, signing-time, signing-certificate-v2 and
//! its ESSCertIDv2.

use super::{Names, Profile};
use crate::cert::Cert;
use crate::cms::{self, Ctx, oid};
use crate::crypto::Hash;
use crate::der::{Tlv, tag};
use crate::time;

/// Checks the signed attributes `attrs` of a SignerInfo whose SignedData has
/// `e_content_type`, over `data` (`None`: the message digest says SKIP), its signer
/// `signer` when known. Returns the signing-time attribute's value (CAdES).
#[allow(
    clippy::too_many_arguments,
    reason = "the parts of one SignerInfo, each read once"
)]
pub(super) fn signed_attributes(
    c: &mut Ctx<'_>,
    attrs: &[(String, Vec<Tlv<'_>>)],
    names: &Names,
    profile: Profile,
    e_content_type: &str,
    digest_hash: Option<Hash>,
    data: Option<&[u8]>,
    signer: Option<&Cert>,
) -> Option<i64> {
    let attr_values = |o: &str| values(attrs, o);
    let mut signing_time = None;
    // content-type: equal to eContentType; id-data for PAdES.
    let ct = attr_values(oid::CONTENT_TYPE);
    let (req, name) = names.content_type;
    c.check(
        req,
        name,
        match ct.as_slice() {
            [vals] if vals.len() == 1 => match vals[0].oid() {
                Ok(o) if o != e_content_type => Err(format!(
                    "content-type {o} is not the eContentType {}",
                    e_content_type
                )),
                Ok(o) if matches!(profile, Profile::Pades { .. }) && o != oid::DATA => {
                    Err(format!("content-type {o}, not id-data (EN 319 142-1 §5.2)"))
                }
                Ok(o) if o == oid::DATA => Ok("one content-type, id-data".into()),
                Ok(o) => Ok(format!("one content-type, {o} (the caller's)")),
                Err(e) => Err(format!("content-type: {e}")),
            },
            [_] => Err("a content-type attribute without exactly one value".into()),
            other => Err(format!("{} content-type attributes", other.len())),
        },
    );

    // message-digest over the data.
    let md = attr_values(oid::MESSAGE_DIGEST);
    c.judge(
        "D.45",
        "cades-message-digest",
        cms::message_digest(&md, digest_hash, data, "the signed data"),
    );

    // signing-time: exactly one (CAdES); none (PAdES, /M instead).
    let st = attr_values(oid::SIGNING_TIME);
    let (req, name) = names.signing_time;
    match profile {
        Profile::Cades => {
            if let Some(t) = st
                .first()
                .and_then(|v| v.first())
                .and_then(signing_time_value)
            {
                signing_time = Some(t);
            }
            c.check(
                req,
                name,
                match st.as_slice() {
                    [vals] if vals.len() == 1 => match signing_time_value(&vals[0]) {
                        Some(t) => Ok(format!("one signing-time, {}", time::rfc3339(t))),
                        None => {
                            Err("the signing-time is not a valid UTCTime or GeneralizedTime".into())
                        }
                    },
                    [_] => Err("a signing-time attribute without exactly one value".into()),
                    [] => Err("no signing-time attribute (EN 319 122-1 B-B)".into()),
                    more => Err(format!(
                        "{} signing-time attributes, not exactly one",
                        more.len()
                    )),
                },
            );
        }
        Profile::Pades { m } => c.check(
            req,
            name,
            if st.is_empty() {
                Ok(match m {
                    Some(t) => format!("no CMS signing-time; /M {}", time::rfc3339(t)),
                    None => "no CMS signing-time".into(),
                })
            } else {
                Err(
                    "the CMS carries a signing-time attribute (EN 319 142-1 §5.2.1: /M only)"
                        .into(),
                )
            },
        ),
    }

    // signing-certificate-v2: exactly one, with one value.
    let v2 = attr_values(oid::SIGNING_CERTIFICATE_V2);
    let v1 = attr_values(oid::SIGNING_CERTIFICATE);
    let (req, name) = names.signing_cert;
    c.check(
        req,
        name,
        match v2.as_slice() {
            [vals] if vals.len() == 1 => Ok(if v1.is_empty() {
                "one signing-certificate-v2".into()
            } else {
                "one signing-certificate-v2 (and a signing-certificate v1)".into()
            }),
            [_] => Err("a signing-certificate-v2 attribute without exactly one value".into()),
            [] if !v1.is_empty() => {
                Err("only signing-certificate (ESSCertID, SHA-1): EN 319 122-1 asks for v2".into())
            }
            [] => Err("no signing-certificate-v2 attribute".into()),
            more => Err(format!("{} signing-certificate-v2 attributes", more.len())),
        },
    );
    match (v2.as_slice(), &signer) {
        ([vals], Some(cert)) if vals.len() == 1 => c.check(
            "D.46",
            "cades-ess-cert-id",
            cms::ess_cert_id_v2(&vals[0], cert).map(|id| {
                if id.issuer_serial {
                    // D.46 says Hanko's seals carry no issuerSerial; EN 319 122-1
                    // §5.2.2.3 only says it SHOULD NOT be present (the sid already
                    // names the certificate). A correct issuerSerial from another
                    // producer is therefore conformant and reported, not failed; a
                    // wrong one fails (ess_cert_id_v2 compares it).
                    format!(
                        "{} certHash names the signer certificate; issuerSerial present and consistent (Hanko's profile omits it; EN 319 122-1: SHOULD NOT)",
                        id.hash.name()
                    )
                } else {
                    format!(
                        "{} certHash names the signer certificate; no issuerSerial",
                        id.hash.name()
                    )
                }
            }),
        ),
        ([vals], None) if vals.len() == 1 => c.skip(
            "D.46",
            "cades-ess-cert-id",
            "the signer certificate is unknown",
        ),
        _ => c.skip("D.46", "cades-ess-cert-id", "no single ESSCertIDv2 to check"),
    }
    signing_time
}

/// A signing-time value: UTCTime or GeneralizedTime, Unix seconds.
fn signing_time_value(t: &Tlv<'_>) -> Option<i64> {
    match t.tag {
        tag::UTC_TIME => time::parse_utc(t.value),
        tag::GENERALIZED_TIME => time::parse_generalized(t.value).map(|g| g.unix),
        _ => None,
    }
}

/// The values of every attribute `o` in `attrs`, one list per attribute.
pub(super) fn values<'a>(attrs: &[(String, Vec<Tlv<'a>>)], o: &str) -> Vec<Vec<Tlv<'a>>> {
    attrs
        .iter()
        .filter(|(oid, _)| oid == o)
        .map(|(_, v)| v.clone())
        .collect()
}
