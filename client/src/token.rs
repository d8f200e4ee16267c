//! A granted TimeStampResp taken apart: the decoded TSTInfo and SignedData, and beside
//! them the bytes that were signed or hashed, as received. Shared by the reply check
//! of `stamp` ([`crate::reply`]) and by offline verification ([`crate::verify`]).
//!
//! Also the few renderings of token fields that the summaries print (serial in hex,
//! genTime as encoded, a refusal's status in words).

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rasn::types::{Integer, ObjectIdentifier};
use rasn_cms::SignedData;
use rasn_cms::tsp::{TimeStampResp, TstInfo};

use crate::Error;
use crate::der;

/// The pieces of a granted TimeStampResp, with the bytes that were signed or hashed
/// taken from the received DER.
pub(crate) struct ParsedToken {
    pub(crate) signed_data: SignedData,
    pub(crate) tst: TstInfo,
    pub(crate) tst_der: Vec<u8>,
    /// SignedData.certificates, each element's original DER.
    pub(crate) certificates: Vec<Vec<u8>>,
    /// The SignerInfo's signed attributes as received, re-tagged as the SET (0x31) that
    /// was signed.
    pub(crate) signed_attrs_set: Vec<u8>,
    /// The SignerInfo's sid as received (full TLV).
    pub(crate) sid_der: Vec<u8>,
}

/// Decodes the token of a granted response; the signed attributes and certificates are
/// taken from the bytes as received.
pub(crate) fn parse(response_der: &[u8]) -> Result<ParsedToken, Error> {
    let bad = |what: &str| Error::MalformedToken(what.to_owned());
    // TimeStampResp ::= SEQUENCE { status, timeStampToken ContentInfo }
    let (resp, _) = der::read(response_der).map_err(|e| bad(&e))?;
    let (_status, rest) = der::read(resp.content).map_err(|e| bad(&e))?;
    let (content_info, _) = der::read(rest).map_err(|_| bad("no timeStampToken"))?;
    // ContentInfo ::= SEQUENCE { contentType, [0] EXPLICIT SignedData }
    let (ct, rest) = der::read(content_info.content).map_err(|e| bad(&e))?;
    let ct: Option<ObjectIdentifier> = rasn::der::decode(ct.full).ok();
    if ct.is_none_or(|ct| ct.to_string() != hanko_pki::cms::OID_SIGNED_DATA) {
        return Err(Error::NotSignedData);
    }
    let (explicit, _) = der::read(rest).map_err(|e| bad(&e))?;
    if explicit.tag != 0xa0 {
        return Err(bad("ContentInfo content"));
    }
    let (sd_tlv, _) = der::read(explicit.content).map_err(|e| bad(&e))?;
    let signed_data: SignedData =
        rasn::der::decode(sd_tlv.full).map_err(|e| Error::MalformedSignedData(e.to_string()))?;

    // SignedData ::= SEQUENCE { version, digestAlgorithms, encapContentInfo,
    //   [0] certificates OPTIONAL, [1] crls OPTIONAL, signerInfos }
    let (_, rest) = der::read(sd_tlv.content).map_err(|e| bad(&e))?;
    let (_, rest) = der::read(rest).map_err(|e| bad(&e))?;
    let (_, mut rest) = der::read(rest).map_err(|e| bad(&e))?;
    let mut certificates = Vec::new();
    let mut signer_infos = None;
    while !rest.is_empty() {
        let (t, r) = der::read(rest).map_err(|e| bad(&e))?;
        match t.tag {
            0xa0 => {
                let mut c = t.content;
                while !c.is_empty() {
                    let (cert, r) = der::read(c).map_err(|e| bad(&e))?;
                    if cert.tag == 0x30 {
                        certificates.push(cert.full.to_vec());
                    }
                    c = r;
                }
            }
            0xa1 => {}
            0x31 => signer_infos = Some(t),
            _ => return Err(bad("unexpected field in SignedData")),
        }
        rest = r;
    }
    let signer_infos = signer_infos.ok_or_else(|| bad("no signerInfos"))?;
    // SignerInfo ::= SEQUENCE { version, sid, digestAlgorithm, [0] signedAttrs, ... }
    let (si, _) = der::read(signer_infos.content).map_err(|_| bad("no SignerInfo"))?;
    let (_, rest) = der::read(si.content).map_err(|e| bad(&e))?;
    let (sid, rest) = der::read(rest).map_err(|e| bad(&e))?;
    let (_, rest) = der::read(rest).map_err(|e| bad(&e))?;
    let (attrs, _) = der::read(rest).map_err(|e| bad(&e))?;
    if attrs.tag != 0xa0 {
        return Err(Error::NoSignedAttributes);
    }
    let mut signed_attrs_set = attrs.full.to_vec();
    signed_attrs_set[0] = 0x31;

    let eci = &signed_data.encap_content_info;
    if eci.content_type.to_string() != hanko_pki::cms::OID_TST_INFO {
        return Err(Error::NotTstInfo(eci.content_type.to_string()));
    }
    let tst_der = eci
        .content
        .as_ref()
        .ok_or_else(|| bad("no eContent"))?
        .to_vec();
    let tst: TstInfo =
        rasn::der::decode(&tst_der).map_err(|e| Error::MalformedTstInfo(e.to_string()))?;
    Ok(ParsedToken {
        signed_data,
        tst,
        tst_der,
        certificates,
        signed_attrs_set,
        sid_der: sid.full.to_vec(),
    })
}

/// The status of a refusal in words: `rejection (badDataFormat): statusString`.
pub(crate) fn describe_status(resp: &TimeStampResp) -> String {
    const NAMES: [(usize, &str); 8] = [
        (0, "badAlg"),
        (2, "badRequest"),
        (5, "badDataFormat"),
        (14, "timeNotAvailable"),
        (15, "unacceptedPolicy"),
        (16, "unacceptedExtension"),
        (17, "addInfoNotAvailable"),
        (25, "systemFailure"),
    ];
    let mut s = format!("{:?}", resp.status.status);
    if let Some(fi) = &resp.status.fail_info {
        let names: Vec<String> = fi
            .iter_ones()
            .map(|bit| {
                NAMES
                    .iter()
                    .find(|(b, _)| *b == bit)
                    .map_or_else(|| format!("bit {bit}"), |(_, n)| (*n).to_owned())
            })
            .collect();
        let _ = write!(s, " ({})", names.join(", "));
    }
    if let Some(text) = &resp.status.status_string {
        let texts: Vec<&str> = text.iter().map(|t| t.as_str()).collect();
        let _ = write!(s, ": {}", texts.join("; "));
    }
    s
}

/// genTime as a [`SystemTime`].
pub(crate) fn gen_time_of(tst: &TstInfo) -> Result<SystemTime, Error> {
    let secs = u64::try_from(tst.gen_time.timestamp()).map_err(|_| Error::GenTimeBefore1970)?;
    Ok(UNIX_EPOCH
        + Duration::from_secs(secs)
        + Duration::from_nanos(u64::from(tst.gen_time.timestamp_subsec_nanos())))
}

/// genTime as its GeneralizedTime text, e.g. `20250101123456.5Z`.
pub(crate) fn gen_time_text(tst: &TstInfo) -> String {
    rasn::der::encode(&tst.gen_time)
        .ok()
        .and_then(|d| der::read(&d).ok().map(|(t, _)| t.content.to_vec()))
        .map(|c| String::from_utf8_lossy(&c).into_owned())
        .unwrap_or_else(|| tst.gen_time.to_rfc3339())
}

/// An INTEGER's content octets in hex (`0x...`).
pub(crate) fn int_hex(i: &Integer) -> String {
    rasn::der::encode(i)
        .ok()
        .and_then(|d| der::read(&d).ok().map(|(t, _)| t.content.to_vec()))
        .map_or_else(|| i.to_string(), |c| format!("0x{}", hex::encode(c)))
}
