//! A granted TimeStampResp taken apart: the decoded TSTInfo and SignedData, and beside
//! them the bytes that were signed or hashed, as received. Shared by the reply check
//! of `stamp` ([`crate::reply`]) and by offline verification ([`crate::verify`]).
//!
//! Also the few renderings of token fields that the summaries print (serial in hex,
//! genTime as encoded, a refusal's status in words).

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hanko_pki::der::{Cursor, Tlv, read_tlv, tag};
use hanko_pki::oid;
use hanko_pki::tsp::failure_info_name;
use rasn::types::{Integer, ObjectIdentifier};
use rasn_cms::SignedData;
use rasn_cms::tsp::{TimeStampResp, TstInfo};

use crate::Error;

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
    let received = Received {
        bytes: response_der,
        malformed: Error::MalformedToken,
    };
    // TimeStampResp ::= SEQUENCE { status, timeStampToken ContentInfo }
    let resp = received.next(&mut received.cursor(), "TimeStampResp")?;
    let mut fields = received.within(&resp);
    received.next(&mut fields, "PKIStatusInfo")?;
    let content_info = received.next(&mut fields, "timeStampToken")?;
    // ContentInfo ::= SEQUENCE { contentType, [0] EXPLICIT SignedData }
    let mut fields = received.within(&content_info);
    let ct = received.next(&mut fields, "ContentInfo contentType")?;
    let ct: Option<ObjectIdentifier> = rasn::der::decode(received.whole(&ct)).ok();
    if ct.is_none_or(|ct| !is(&ct, &oid::SIGNED_DATA)) {
        return Err(Error::NotSignedData);
    }
    let explicit = received.next(&mut fields, "ContentInfo content")?;
    if explicit.tag != 0xa0 {
        return Err(bad("ContentInfo content"));
    }
    let sd_tlv = received.next(&mut received.within(&explicit), "SignedData")?;
    let signed_data: SignedData = rasn::der::decode(received.whole(&sd_tlv))
        .map_err(|e| Error::MalformedSignedData(e.to_string()))?;

    let parts = signed_data_bytes(&received, &sd_tlv)?;

    let eci = &signed_data.encap_content_info;
    if !is(&eci.content_type, &oid::TST_INFO) {
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
        certificates: parts.certificates,
        signed_attrs_set: parts.signed_attrs_set,
        sid_der: parts.sid_der,
    })
}

/// What verifiers take from a SignedData as received (never re-encoded).
pub(crate) struct SignedDataBytes {
    /// SignedData.certificates, each element's original DER.
    pub(crate) certificates: Vec<Vec<u8>>,
    /// The (first) SignerInfo's sid (full TLV).
    pub(crate) sid_der: Vec<u8>,
    /// Its digestAlgorithm (full TLV).
    pub(crate) digest_alg_der: Vec<u8>,
    /// Its signed attributes, re-tagged as the SET (0x31) that was signed.
    pub(crate) signed_attrs_set: Vec<u8>,
    /// Its signatureAlgorithm (full TLV).
    pub(crate) signature_alg_der: Vec<u8>,
}

/// Walks the SignedData `sd_tlv` of `r`: its certificates and its first SignerInfo's
/// fields, as received. A SignerInfo without signed attributes is refused.
pub(crate) fn signed_data_bytes(r: &Received<'_>, sd_tlv: &Tlv) -> Result<SignedDataBytes, Error> {
    let bad = |what: &str| (r.malformed)(what.to_owned());
    // SignedData ::= SEQUENCE { version, digestAlgorithms, encapContentInfo,
    //   [0] certificates OPTIONAL, [1] crls OPTIONAL, signerInfos }
    let mut fields = r.within(sd_tlv);
    for what in [
        "SignedData version",
        "SignedData digestAlgorithms",
        "SignedData encapContentInfo",
    ] {
        r.next(&mut fields, what)?;
    }
    let mut certificates = Vec::new();
    let mut signer_infos = None;
    while !fields.is_empty() {
        let t = r.next(&mut fields, "SignedData")?;
        match t.tag {
            0xa0 => {
                let mut choices = r.within(&t);
                while !choices.is_empty() {
                    let cert = r.next(&mut choices, "SignedData certificates")?;
                    if cert.tag == tag::SEQUENCE {
                        certificates.push(r.whole(&cert).to_vec());
                    }
                }
            }
            0xa1 => {}
            tag::SET => signer_infos = Some(t),
            _ => return Err(bad("unexpected field in SignedData")),
        }
    }
    let signer_infos = signer_infos.ok_or_else(|| bad("no signerInfos"))?;
    // SignerInfo ::= SEQUENCE { version, sid, digestAlgorithm, [0] signedAttrs,
    //   signatureAlgorithm, signature, [1] unsignedAttrs OPTIONAL }
    let si = r.next(&mut r.within(&signer_infos), "SignerInfo")?;
    let mut fields = r.within(&si);
    r.next(&mut fields, "SignerInfo version")?;
    let sid = r.next(&mut fields, "SignerInfo sid")?;
    let digest_alg = r.next(&mut fields, "SignerInfo digestAlgorithm")?;
    let attrs = r.next(&mut fields, "SignerInfo signedAttrs")?;
    if attrs.tag != 0xa0 {
        return Err(Error::NoSignedAttributes);
    }
    let signature_alg = r.next(&mut fields, "SignerInfo signatureAlgorithm")?;
    // The signature is over the same bytes with the SET tag (RFC 5652 §5.4).
    let mut signed_attrs_set = r.whole(&attrs).to_vec();
    if let Some(first) = signed_attrs_set.first_mut() {
        *first = tag::SET;
    }
    Ok(SignedDataBytes {
        certificates,
        sid_der: r.whole(&sid).to_vec(),
        digest_alg_der: r.whole(&digest_alg).to_vec(),
        signed_attrs_set,
        signature_alg_der: r.whole(&signature_alg).to_vec(),
    })
}

/// Whether a decoded (rasn) OID is the table's `want`.
pub(crate) fn is(oid: &ObjectIdentifier, want: &oid::ObjectIdentifier) -> bool {
    *oid == oid::to_rasn(want)
}

/// DER bytes as received (a response, a seal), walked with `hanko_pki`'s DER cursor:
/// every TLV the cursor returns lies within these bytes, so slicing by its ranges cannot
/// fail. A missing or truncated field is `malformed("<what>: missing or truncated")`.
pub(crate) struct Received<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) malformed: fn(String) -> Error,
}

impl<'a> Received<'a> {
    /// A cursor over all of the bytes.
    pub(crate) fn cursor(&self) -> Cursor<'a> {
        Cursor::new(self.bytes, 0..self.bytes.len())
    }

    /// A cursor over the content of `t`.
    pub(crate) fn within(&self, t: &Tlv) -> Cursor<'a> {
        Cursor::new(self.bytes, t.content.clone())
    }

    /// The next TLV of `c`; `what` names the field in the error when there is none.
    pub(crate) fn next(&self, c: &mut Cursor<'a>, what: &str) -> Result<Tlv, Error> {
        c.next_tlv()
            .ok_or_else(|| (self.malformed)(format!("{what}: missing or truncated")))
    }

    /// The whole encoding of `t` (tag, length, content) as received.
    pub(crate) fn whole(&self, t: &Tlv) -> &'a [u8] {
        self.bytes.get(t.whole.clone()).unwrap_or_default()
    }
}

/// The status of a refusal in words: `rejection (badDataFormat): statusString`.
pub(crate) fn describe_status(resp: &TimeStampResp) -> String {
    let mut s = format!("{:?}", resp.status.status);
    if let Some(fi) = &resp.status.fail_info {
        let names: Vec<String> = fi
            .iter_ones()
            .map(|bit| failure_info_name(bit).map_or_else(|| format!("bit {bit}"), str::to_owned))
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
        .and_then(|d| read_tlv(&d).map(|(_, content, _)| content.to_vec()))
        .map(|c| String::from_utf8_lossy(&c).into_owned())
        .unwrap_or_else(|| tst.gen_time.to_rfc3339())
}

/// An INTEGER's content octets in hex (`0x...`).
pub(crate) fn int_hex(i: &Integer) -> String {
    rasn::der::encode(i)
        .ok()
        .and_then(|d| read_tlv(&d).map(|(_, content, _)| content.to_vec()))
        .map_or_else(|| i.to_string(), |c| format!("0x{}", hex::encode(c)))
}
