//! A CAdES seal (DER ContentInfo { id-signedData, SignedData }) taken apart: the decoded
//! SignedData and, beside it, every byte string a check needs exactly as received (the
//! signed attributes as the SET that was signed, the certificates, the sid, the
//! SignerInfo's algorithm identifiers, the encapsulated content).

use hanko_pki::oid;
use rasn::types::ObjectIdentifier;
use rasn_cms::SignedData;

use crate::Error;
use crate::token::{Received, SignedDataBytes, is, signed_data_bytes};

/// The pieces of a seal.
pub(super) struct ParsedSeal {
    pub(super) signed_data: SignedData,
    /// eContent, when the seal is enveloping (attached).
    pub(super) econtent: Option<Vec<u8>>,
    /// The certificates and the SignerInfo's fields, as received.
    pub(super) parts: SignedDataBytes,
}

/// Walks `der` with the DER cursor and decodes the SignedData.
pub(super) fn parse(der: &[u8]) -> Result<ParsedSeal, Error> {
    let r = Received {
        bytes: der,
        malformed: Error::MalformedSeal,
    };
    let ci = r.next(&mut r.cursor(), "ContentInfo")?;
    if ci.tag != 0x30 {
        return Err(Error::MalformedSeal(
            "ContentInfo is not a SEQUENCE".to_owned(),
        ));
    }
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

    let parts = signed_data_bytes(&r, &sd)?;
    let econtent = signed_data
        .encap_content_info
        .content
        .as_ref()
        .map(|c| c.to_vec());
    Ok(ParsedSeal {
        signed_data,
        econtent,
        parts,
    })
}
