//! CMS SignedData (RFC 5652) for exactly one signer, as RFC 3161 tokens and CAdES
//! signatures need it.
//!
//! What it builds:
//!
//! ```text
//! ContentInfo { id-signedData, SignedData {
//!   version            3 (eContentType other than id-data) or 1 (id-data)
//!   digestAlgorithms   { the signer's digest algorithm }
//!   encapContentInfo   { eContentType, eContent (absent when detached) }
//!   certificates [0]   original DER of the given certificates (field absent when none)
//!   signerInfos        { SignerInfo {
//!     version 1, sid issuerAndSerialNumber (copied from the certificate's own bytes)
//!     digestAlgorithm
//!     signedAttrs [0]  content-type, message-digest, signing-certificate-v2,
//!                      cms-algorithm-protection, optional signing-time,
//!                      the caller's extra attributes (pre-encoded DER)
//!     signatureAlgorithm   from SignatureAlgorithm::algorithm_identifier_der
//!     signature        Signer::sign over the DER SET OF (0x31) of the signed attributes
//!     unsignedAttrs [1]    absent; SignedDataOutput::with_unsigned_attributes adds them } } } }
//! ```
//!
//! # Why it looks the way it does
//! * Bytes copied from a certificate (the whole certificate, its issuer name, its serial)
//!   are spliced in as they were received, never decoded and re-encoded: re-encoding a
//!   decoded certificate is not always byte-identical (an explicit `critical FALSE`
//!   disappears; see [`crate::cert`]), and ESSCertIDv2's certHash is over the original
//!   DER.
//! * Algorithm identifiers come from [`crate::alg`] only, OIDs from [`crate::oid`];
//!   there is no second table.
//!
//! The rest of the reasoning stands with the code it explains:
//! * `signed_attrs`: the signed attributes, encoded once and signed as they are, and why
//!   CMSAlgorithmProtection is built by hand;
//! * `signed_data`: SignerInfo and SignedData around the signature, every signed byte
//!   spliced in, never re-encoded;
//! * `attributes`: attributes callers bring (CAdES), checked, and unsigned attributes
//!   added after signing;
//! * `signing_time`: the signing-time attribute's UTCTime / GeneralizedTime.
//!
//! # What it does not do
//! It does not verify, does not parse CMS it did not build, does not support more than
//! one signer, SubjectKeyIdentifier sids or CRLs.

mod attributes;
mod signed_attrs;
mod signed_data;
mod signing_time;

use std::time::SystemTime;

use const_oid::ObjectIdentifier;
use rasn::Encode;
use rasn::types::ObjectIdentifier as RasnOid;

use crate::alg::HashAlgorithm;
use crate::signer::SignError;

pub use attributes::attribute_der;
pub use signed_attrs::{SignedAttributesParams, signed_attributes};
pub use signed_data::{SignedDataOutput, sign_signed_data};

/// Why a SignedData could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CmsError {
    /// The signer failed; the [`SignError`] says how (its kind decides retryability).
    #[error("signing failed: {0}")]
    Sign(#[from] SignError),
    /// The signing certificate's DER could not be read far enough to find its issuer
    /// and serial number.
    #[error("signing certificate is not a DER X.509 certificate: {0}")]
    BadCertificate(&'static str),
    /// A dotted OID given by the caller is not a valid OID.
    #[error("invalid object identifier {0:?}")]
    BadOid(String),
    /// An attribute given by the caller is not exactly one DER `Attribute` with at least
    /// one value, or its type appears twice (or is one this module writes itself).
    #[error("bad attribute: {0}")]
    BadAttribute(String),
    /// A detached content digest does not have the length of the signer's hash.
    #[error("detached content digest is {got} bytes, {alg} needs {expected}")]
    DigestLength {
        /// The signer's hash algorithm.
        alg: HashAlgorithm,
        /// Its output length.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// The signing time is before 1950 or after 9999 (not encodable).
    #[error("signing time out of range")]
    TimeOutOfRange,
    /// The ASN.1 encoder refused a value: a bug in this module.
    #[error("CMS encoding failed (bug): {0}")]
    Encode(String),
}

/// The content a SignedData signs.
#[derive(Clone, Copy, Debug)]
pub enum Content<'a> {
    /// eContent is present and holds these bytes; they are hashed here.
    Encapsulated(&'a [u8]),
    /// eContent is absent (a detached signature). `digest` is the hash of the external
    /// content with the signer's hash algorithm ([`crate::SignatureAlgorithm::hash`]).
    Detached {
        /// Hash of the external content.
        digest: &'a [u8],
    },
}

/// Everything [`sign_signed_data`] needs besides the signer.
#[derive(Clone, Debug)]
pub struct SignedDataParams<'a> {
    /// eContentType: [`crate::oid::TST_INFO`] for a time-stamp token, [`crate::oid::DATA`] for a CAdES
    /// signature over a document.
    pub econtent_type: ObjectIdentifier,
    /// The signed content.
    pub content: Content<'a>,
    /// Original DER of the signing certificate (sid, ESSCertIDv2).
    pub signer_certificate: &'a [u8],
    /// Original DER of the certificates to put into SignedData.certificates, leaf first
    /// by convention (DER sorts the SET anyway). Empty: the field is absent.
    pub certificates: &'a [&'a [u8]],
    /// Whether ESSCertIDv2 carries issuerSerial (optional per RFC 5035).
    pub ess_issuer_serial: bool,
    /// A signing-time attribute, when wanted (CAdES; never in RFC 3161 tokens).
    pub signing_time: Option<SystemTime>,
    /// Further signed attributes, each one complete DER `Attribute` (made with
    /// [`attribute_der`]), e.g. CAdES mime-type or commitment-type-indication. Their
    /// types must differ from each other and from the attributes written here. Empty
    /// for RFC 3161 tokens.
    pub extra_signed_attributes: &'a [&'a [u8]],
}

/// Parses a dotted OID (configuration values such as policy OIDs).
pub fn oid(dotted: &str) -> Result<RasnOid, CmsError> {
    let bad = || CmsError::BadOid(dotted.to_owned());
    let arcs = dotted
        .split('.')
        .map(|a| {
            if a.is_empty() || (a.len() > 1 && a.starts_with('0')) {
                return None;
            }
            a.parse::<u32>().ok()
        })
        .collect::<Option<Vec<u32>>>()
        .ok_or_else(bad)?;
    if arcs.len() < 2 || (arcs[0] < 2 && arcs[1] >= 40) {
        return Err(bad());
    }
    RasnOid::new(arcs).ok_or_else(bad)
}

fn encode<T: Encode>(value: &T) -> Result<Vec<u8>, CmsError> {
    rasn::der::encode(value).map_err(|e| CmsError::Encode(e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests

    use super::*;

    #[test]
    fn oids_parse_strictly() {
        assert_eq!(
            oid(crate::oid::dotted::CMS_ALGORITHM_PROTECTION)
                .unwrap()
                .to_string(),
            "1.2.840.113549.1.9.52"
        );
        for bad in ["", "1", "1..2", "1.02", "3.1", "1.40", "a.b"] {
            assert!(oid(bad).is_err(), "{bad}");
        }
    }
}
