//! The signed attributes: the DER SET OF that the signer signs.
//!
//! content-type, message-digest, signing-certificate-v2 (RFC 5035),
//! cms-algorithm-protection (RFC 6211), signing-time when asked for, and the caller's
//! extra attributes (see the `attributes` module).
//!
//! # Why it looks the way it does
//! * The signed attributes are encoded once, with rasn's DER encoder, which sorts the
//!   SET OF. Those exact bytes are signed, and the same bytes (tag 0x31 changed to 0xA0)
//!   become SignerInfo.signedAttrs. Nothing re-encodes them afterwards.
//! * rasn 0.30's constant for id-aa-CMSAlgorithmProtection is wrong and its
//!   `with_signature_algorithm` helper rejects valid input, so the OID is written out
//!   here (RFC 6211: [`crate::oid::CMS_ALGORITHM_PROTECTION`]) and the value is built
//!   field by field.

use std::time::SystemTime;

use const_oid::ObjectIdentifier;
use rasn::types::{Any, ObjectIdentifier as RasnOid, SetOf};
use rasn_pkix::AlgorithmIdentifier;

use super::attributes::{attribute, checked_attributes};
use super::signed_data::CertIds;
use super::signing_time::encode_signing_time;
use super::{CmsError, encode};
use crate::alg::HashAlgorithm;
use crate::der::{tag, tlv};
use crate::oid;

/// Inputs of [`signed_attributes`].
#[derive(Clone, Debug)]
pub struct SignedAttributesParams<'a> {
    /// eContentType (the content-type attribute's value).
    pub econtent_type: ObjectIdentifier,
    /// The message-digest attribute's value.
    pub content_digest: &'a [u8],
    /// Original DER of the signing certificate.
    pub signer_certificate: &'a [u8],
    /// Whether ESSCertIDv2 carries issuerSerial.
    pub ess_issuer_serial: bool,
    /// DER AlgorithmIdentifier of the digest algorithm.
    pub digest_algorithm_der: &'a [u8],
    /// DER AlgorithmIdentifier of the signature algorithm.
    pub signature_algorithm_der: &'a [u8],
    /// Optional signing-time.
    pub signing_time: Option<SystemTime>,
    /// Further attributes, each one complete DER `Attribute`; see
    /// [`super::SignedDataParams::extra_signed_attributes`].
    pub extra: &'a [&'a [u8]],
}

/// Encodes the signed attributes as the DER SET OF (tag 0x31) that gets signed.
///
/// Public so that tests and the e-seal crate can compare against it; [`super::sign_signed_data`]
/// calls it.
pub fn signed_attributes(p: &SignedAttributesParams<'_>) -> Result<Vec<u8>, CmsError> {
    let cert = CertIds::read(p.signer_certificate)?;
    let mut own = vec![
        attribute(&oid::CONTENT_TYPE, encode(&oid::to_rasn(&p.econtent_type))?)?,
        attribute(
            &oid::MESSAGE_DIGEST,
            tlv(tag::OCTET_STRING, p.content_digest),
        )?,
        attribute(
            &oid::SIGNING_CERTIFICATE_V2,
            signing_certificate_v2(p.signer_certificate, &cert, p.ess_issuer_serial),
        )?,
        attribute(
            &oid::CMS_ALGORITHM_PROTECTION,
            cms_algorithm_protection(p.digest_algorithm_der, p.signature_algorithm_der)?,
        )?,
    ];
    if let Some(t) = p.signing_time {
        own.push(attribute(&oid::SIGNING_TIME, encode_signing_time(t)?)?);
    }
    let mut seen: Vec<RasnOid> = own.iter().map(|a| a.r#type.clone()).collect();
    let mut attrs = own
        .iter()
        .map(|a| encode(a).map(Any::new))
        .collect::<Result<Vec<Any>, CmsError>>()?;
    attrs.extend(checked_attributes(p.extra, &mut seen)?);
    // rasn's DER encoder sorts the elements of a SET OF by their encodings (X.690 §11.6).
    encode(&SetOf::from_vec(attrs))
}

/// SigningCertificateV2 ::= SEQUENCE { certs SEQUENCE OF ESSCertIDv2 } with one
/// ESSCertIDv2 { certHash = SHA-256 of the whole DER certificate, hashAlgorithm omitted
/// (it is the DEFAULT), issuerSerial optional }.
///
/// Written with [`tlv`] because issuerSerial's GeneralNames wraps the issuer Name bytes
/// copied from the certificate, which must not pass through a decoder.
fn signing_certificate_v2(cert_der: &[u8], ids: &CertIds<'_>, issuer_serial: bool) -> Vec<u8> {
    let mut ess_cert_id = tlv(tag::OCTET_STRING, &HashAlgorithm::Sha256.digest(cert_der));
    if issuer_serial {
        // IssuerSerial { issuer GeneralNames { [4] directoryName (EXPLICIT: Name is a
        // CHOICE) }, serialNumber }
        let general_names = tlv(tag::SEQUENCE, &tlv(0xa4, ids.issuer));
        ess_cert_id.extend_from_slice(&tlv(
            tag::SEQUENCE,
            &[&general_names[..], ids.serial].concat(),
        ));
    }
    let certs = tlv(tag::SEQUENCE, &tlv(tag::SEQUENCE, &ess_cert_id));
    tlv(tag::SEQUENCE, &certs)
}

/// CMSAlgorithmProtection { digestAlgorithm, signatureAlgorithm [1] IMPLICIT }.
fn cms_algorithm_protection(digest_alg: &[u8], sig_alg: &[u8]) -> Result<Vec<u8>, CmsError> {
    let value = rasn_cms::CmsAlgorithmProtection {
        digest_algorithm: decode_alg(digest_alg)?,
        signature_algorithm: Some(decode_alg(sig_alg)?),
        mac_algorithm: None,
    };
    encode(&value)
}

fn decode_alg(der: &[u8]) -> Result<AlgorithmIdentifier, CmsError> {
    let alg: AlgorithmIdentifier =
        rasn::der::decode(der).map_err(|e| CmsError::Encode(e.to_string()))?;
    // The table's identifiers are DER; make sure the round trip kept every byte.
    if encode(&alg)? != der {
        return Err(CmsError::Encode(
            "algorithm identifier does not round-trip".into(),
        ));
    }
    Ok(alg)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests

    use super::*;

    #[test]
    fn algorithm_protection_is_rfc6211() {
        let d = HashAlgorithm::Sha256.algorithm_identifier_der();
        let s = crate::SignatureAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha256)
            .algorithm_identifier_der();
        let v = cms_algorithm_protection(&d, &s).unwrap();
        // SEQUENCE { digestAlgorithm, [1] IMPLICIT AlgorithmIdentifier }
        let mut expect = d.clone();
        expect.extend_from_slice(&tlv(0xa1, &s[2..]));
        assert_eq!(v, tlv(0x30, &expect));
    }
}
