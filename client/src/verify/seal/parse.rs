//! A CAdES seal (DER ContentInfo { id-signedData, SignedData }) taken apart: the decoded
//! SignedData and, beside it, every byte string a check needs exactly as received (the
//! signed attributes as the SET that was signed, the certificates, the sid, the
//! SignerInfo's algorithm identifiers, the encapsulated content).

use hanko_pki::der::tag;
use hanko_pki::oid;
use rasn::types::ObjectIdentifier;
use rasn_cms::SignedData;

use crate::Error;
use crate::token::{Received, is};

/// The pieces of a seal.
pub(super) struct ParsedSeal {
    pub(super) signed_data: SignedData,
    /// eContent, when the seal is enveloping (attached).
    pub(super) econtent: Option<Vec<u8>>,
    /// SignedData.certificates, each element's original DER.
    pub(super) certificates: Vec<Vec<u8>>,
    /// The SignerInfo's signed attributes as received, re-tagged as the SET (0x31).
    pub(super) signed_attrs_set: Vec<u8>,
    /// The SignerInfo's sid (full TLV).
    pub(super) sid_der: Vec<u8>,
    /// The SignerInfo's digestAlgorithm (full TLV).
    pub(super) digest_alg_der: Vec<u8>,
    /// The SignerInfo's signatureAlgorithm (full TLV).
    pub(super) signature_alg_der: Vec<u8>,
}

/// Walks `der` with the DER cursor and decodes the SignedData.
pub(super) fn parse(der: &[u8]) -> Result<ParsedSeal, Error> {
    let r = Received {
        bytes: der,
        malformed: Error::MalformedSeal,
    };
    let ci = r.next(&mut r.cursor(), "ContentInfo")?;
    let mut fields = r.within(&ci);
    let ct = r.next(&mut fields, "ContentInfo contentType")?;
    let ct: Option<ObjectIdentifier> = rasn::der::decode(r.whole(&ct)).ok();
    if ct.is_none_or(|ct| !is(&ct, &oid::SIGNED_DATA)) {
        return Err(Error::SealNotSignedData);
    }
    let explicit = r.next(&mut fields, "ContentInfo content")?;
    if explicit.tag != 0xa0 {
        return Err(Error::MalformedSeal(
            "ContentInfo content is not [0]".into(),
        ));
    }
    if !fields.is_empty() || ci.whole.end != der.len() {
        return Err(Error::MalformedSeal(
            "bytes after the ContentInfo".to_owned(),
        ));
    }
    let sd = r.next(&mut r.within(&explicit), "SignedData")?;
    let signed_data: SignedData = rasn::der::decode(r.whole(&sd))
        .map_err(|e| Error::MalformedSeal(format!("SignedData: {e}")))?;

    let mut fields = r.within(&sd);
    r.next(&mut fields, "SignedData version")?;
    r.next(&mut fields, "SignedData digestAlgorithms")?;
    r.next(&mut fields, "SignedData encapContentInfo")?;
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
            _ => {
                return Err(Error::MalformedSeal(
                    "unexpected field in SignedData".into(),
                ));
            }
        }
    }
    let signer_infos =
        signer_infos.ok_or_else(|| Error::MalformedSeal("no signerInfos".to_owned()))?;
    let mut infos = r.within(&signer_infos);
    let si = r.next(&mut infos, "SignerInfo")?;
    let mut fields = r.within(&si);
    r.next(&mut fields, "SignerInfo version")?;
    let sid = r.next(&mut fields, "SignerInfo sid")?;
    let digest_alg = r.next(&mut fields, "SignerInfo digestAlgorithm")?;
    let attrs = r.next(&mut fields, "SignerInfo signedAttrs")?;
    if attrs.tag != 0xa0 {
        return Err(Error::NoSignedAttributes);
    }
    let signature_alg = r.next(&mut fields, "SignerInfo signatureAlgorithm")?;
    let mut signed_attrs_set = r.whole(&attrs).to_vec();
    if let Some(first) = signed_attrs_set.first_mut() {
        *first = tag::SET;
    }
    let econtent = signed_data
        .encap_content_info
        .content
        .as_ref()
        .map(|c| c.to_vec());
    Ok(ParsedSeal {
        signed_data,
        econtent,
        certificates,
        signed_attrs_set,
        sid_der: r.whole(&sid).to_vec(),
        digest_alg_der: r.whole(&digest_alg).to_vec(),
        signature_alg_der: r.whole(&signature_alg).to_vec(),
    })
}
