//! One DER `Attribute`, and the attributes callers bring: extra signed ones and unsigned
//! ones added after signing.
//!
//! # Why it looks the way it does
//! Attributes this module does not know (CAdES mime-type, commitment-type-indication, a
//! signature time-stamp) come in as complete DER `Attribute`s, each checked to be exactly
//! one DER Attribute whose type appears once. Unsigned attributes are added after
//! signing by re-assembling the same pieces
//! ([`SignedDataOutput::with_unsigned_attributes`]): the signed attributes, the
//! signature and every other byte the signature covers stay as they were.

use const_oid::ObjectIdentifier;
use rasn::types::{Any, ObjectIdentifier as RasnOid, SetOf};
use rasn_pkix::Attribute;

use super::signed_data::{SignedDataOutput, content_info};
use super::{CmsError, encode};
use crate::oid;

impl SignedDataOutput {
    /// The DER ContentInfo of the same SignedData with `unsigned` as the SignerInfo's
    /// unsignedAttrs (`[1] IMPLICIT SET OF Attribute`, sorted by DER), e.g. a CAdES
    /// signature-time-stamp. Each element is one complete DER `Attribute` (see
    /// [`attribute_der`]); types must not repeat. Everything else, the signed
    /// attributes and the signature included, is the same bytes as in
    /// [`SignedDataOutput::content_info_der`]. An empty slice gives that encoding back.
    pub fn with_unsigned_attributes(&self, unsigned: &[&[u8]]) -> Result<Vec<u8>, CmsError> {
        let mut signed_data = self.signed_data.clone();
        let attrs = checked_attributes(unsigned, &mut Vec::new())?;
        let mut infos = signed_data.signer_infos.to_vec().into_iter().cloned();
        let (Some(mut signer_info), None) = (infos.next(), infos.next()) else {
            return Err(CmsError::Encode(
                "SignedData has not exactly one signer".into(),
            ));
        };
        signer_info.unsigned_attrs = (!attrs.is_empty()).then(|| SetOf::from_vec(attrs));
        signed_data.signer_infos = SetOf::from_vec(vec![signer_info]);
        content_info(&signed_data)
    }
}

/// One DER `Attribute { attrType, attrValues SET { value } }` with a single value given
/// as complete DER: the form [`super::SignedDataParams::extra_signed_attributes`] and
/// [`SignedDataOutput::with_unsigned_attributes`] take.
pub fn attribute_der(type_oid: &ObjectIdentifier, value_der: &[u8]) -> Result<Vec<u8>, CmsError> {
    encode(&attribute(type_oid, value_der.to_vec())?)
}

/// Checks caller-made attributes: each exactly one DER `Attribute` (it re-encodes to
/// the same bytes) with at least one value, of a type not in `seen` (which grows).
pub(super) fn checked_attributes(
    attrs: &[&[u8]],
    seen: &mut Vec<RasnOid>,
) -> Result<Vec<Any>, CmsError> {
    let mut out = Vec::with_capacity(attrs.len());
    for der in attrs {
        let attr: Attribute = rasn::der::decode(der)
            .map_err(|e| CmsError::BadAttribute(format!("not a DER Attribute: {e}")))?;
        if encode(&attr)? != *der {
            return Err(CmsError::BadAttribute(format!(
                "{} is not exactly one DER Attribute",
                attr.r#type
            )));
        }
        if attr.values.is_empty() {
            return Err(CmsError::BadAttribute(format!(
                "{} has no value",
                attr.r#type
            )));
        }
        if seen.contains(&attr.r#type) {
            return Err(CmsError::BadAttribute(format!(
                "{} appears twice",
                attr.r#type
            )));
        }
        seen.push(attr.r#type);
        out.push(Any::new(der.to_vec()));
    }
    Ok(out)
}

/// An `Attribute` with one value given as complete DER.
pub(super) fn attribute(
    type_oid: &ObjectIdentifier,
    value_der: Vec<u8>,
) -> Result<Attribute, CmsError> {
    Ok(Attribute {
        r#type: oid::to_rasn(type_oid),
        values: SetOf::from_vec(vec![Any::new(value_der)]),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests

    use super::*;
    use crate::der::{tag, tlv};

    #[test]
    fn caller_attributes_are_checked() {
        let mime =
            attribute_der(&oid::MIME_TYPE, &tlv(tag::UTF8_STRING, b"application/pdf")).unwrap();
        let content_type = || oid::to_rasn(&oid::CONTENT_TYPE);
        let mut seen = vec![content_type()];
        assert_eq!(checked_attributes(&[&mime], &mut seen).unwrap().len(), 1);
        // Twice, or a type this module writes itself.
        let again = checked_attributes(&[&mime], &mut seen);
        assert!(matches!(again, Err(CmsError::BadAttribute(_))));
        let ct = attribute_der(
            &oid::CONTENT_TYPE,
            &encode(&oid::to_rasn(&oid::DATA)).unwrap(),
        )
        .unwrap();
        let r = checked_attributes(&[&ct], &mut vec![content_type()]);
        assert!(matches!(r, Err(CmsError::BadAttribute(_))));
        // Trailing bytes, a long-form length where the short form fits, no value.
        let mut trailing = mime.clone();
        trailing.push(0);
        let mut long_len = vec![0x30, 0x81, mime[1]];
        long_len.extend_from_slice(&mime[2..]);
        let mime_oid = encode(&oid::to_rasn(&oid::MIME_TYPE)).unwrap();
        let no_value = tlv(tag::SEQUENCE, &[&mime_oid[..], &[0x31, 0x00]].concat());
        for bad in [trailing, long_len, no_value, vec![0x04, 0x00]] {
            let r = checked_attributes(&[&bad], &mut Vec::new());
            assert!(
                matches!(r, Err(CmsError::BadAttribute(_))),
                "{}",
                hex::encode(&bad)
            );
        }
    }
}
