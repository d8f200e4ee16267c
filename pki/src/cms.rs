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
//! * The signed attributes are encoded once, with rasn's DER encoder, which sorts the
//!   SET OF. Those exact bytes are signed, and the same bytes (tag 0x31 changed to 0xA0)
//!   become SignerInfo.signedAttrs. Nothing re-encodes them afterwards.
//! * rasn 0.30's constant for id-aa-CMSAlgorithmProtection is wrong and its
//!   `with_signature_algorithm` helper rejects valid input, so the OID is written out
//!   here (RFC 6211: [`crate::oid::CMS_ALGORITHM_PROTECTION`]) and the value is built
//!   field by field.
//! * Algorithm identifiers come from [`crate::alg`] only, OIDs from [`crate::oid`];
//!   there is no second table.
//! * Attributes this module does not know (CAdES mime-type, commitment-type-indication,
//!   a signature time-stamp) come in as complete DER `Attribute`s, each checked to be
//!   exactly one DER Attribute whose type appears once. Unsigned attributes are added
//!   after signing by re-assembling the same pieces
//!   ([`SignedDataOutput::with_unsigned_attributes`]): the signed attributes, the
//!   signature and every other byte the signature covers stay as they were.
//!
//! # What it does not do
//! It does not verify, does not parse CMS it did not build, does not support more than
//! one signer, SubjectKeyIdentifier sids or CRLs.

use std::time::{SystemTime, UNIX_EPOCH};

use const_oid::ObjectIdentifier;
use rasn::types::{Any, Integer, ObjectIdentifier as RasnOid, OctetString, SetOf};
use rasn::{AsnType, Encode};
use rasn_pkix::{AlgorithmIdentifier, Attribute};

use crate::alg::HashAlgorithm;
use crate::der::{tag, tlv};
use crate::oid;
use crate::signer::{SignError, Signer};

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
    /// eContentType: [`oid::TST_INFO`] for a time-stamp token, [`oid::DATA`] for a CAdES
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

/// A finished SignedData and the pieces callers keep for logs and tests.
#[derive(Clone, Debug)]
pub struct SignedDataOutput {
    /// DER ContentInfo { id-signedData, SignedData }.
    pub content_info_der: Vec<u8>,
    /// The DER SET OF (tag 0x31) of the signed attributes: the bytes that were signed.
    pub signed_attributes_der: Vec<u8>,
    /// The signature value.
    pub signature: Vec<u8>,
    /// The assembled SignedData, kept to add unsigned attributes without touching a
    /// signed byte.
    signed_data: SignedDataOut,
}

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

/// Builds and signs a single-signer SignedData.
///
/// The signer's [`crate::SignatureAlgorithm`] decides the digest algorithm of both the
/// content and the signed attributes (CONFORMANCE B.19).
pub async fn sign_signed_data(
    params: &SignedDataParams<'_>,
    signer: &dyn Signer,
) -> Result<SignedDataOutput, CmsError> {
    let sig_alg = signer.algorithm();
    let hash = sig_alg.hash();
    let digest_alg_der = hash.algorithm_identifier_der();
    let sig_alg_der = sig_alg.algorithm_identifier_der();

    let content_digest = content_digest(params.content, hash)?;
    let signed_attributes_der = signed_attributes(&SignedAttributesParams {
        econtent_type: params.econtent_type,
        content_digest: &content_digest,
        signer_certificate: params.signer_certificate,
        ess_issuer_serial: params.ess_issuer_serial,
        digest_algorithm_der: &digest_alg_der,
        signature_algorithm_der: &sig_alg_der,
        signing_time: params.signing_time,
        extra: params.extra_signed_attributes,
    })?;

    let signature = signer.sign(&signed_attributes_der).await?;

    let cert = CertIds::read(params.signer_certificate)?;
    let signer_info = signer_info(
        &cert,
        &digest_alg_der,
        &signed_attributes_der,
        sig_alg_der,
        &signature,
    );
    let signed_data = signed_data(params, digest_alg_der, signer_info);
    Ok(SignedDataOutput {
        content_info_der: content_info(&signed_data)?,
        signed_attributes_der,
        signature,
        signed_data,
    })
}

/// The message-digest value: the hash of encapsulated content, or the caller's digest of
/// detached content after checking its length.
fn content_digest(content: Content<'_>, hash: HashAlgorithm) -> Result<Vec<u8>, CmsError> {
    match content {
        Content::Encapsulated(bytes) => Ok(hash.digest(bytes)),
        Content::Detached { digest } if digest.len() != hash.output_len() => {
            Err(CmsError::DigestLength {
                alg: hash,
                expected: hash.output_len(),
                got: digest.len(),
            })
        }
        Content::Detached { digest } => Ok(digest.to_vec()),
    }
}

/// The SignerInfo around the signature, with sid and signedAttrs spliced in as bytes.
fn signer_info(
    cert: &CertIds<'_>,
    digest_alg_der: &[u8],
    signed_attributes_der: &[u8],
    sig_alg_der: Vec<u8>,
    signature: &[u8],
) -> SignerInfoOut {
    // SignerInfo.signedAttrs is [0] IMPLICIT SET OF: the same bytes, other tag.
    let mut implicit_attrs = signed_attributes_der.to_vec();
    if let Some(first) = implicit_attrs.first_mut() {
        *first = 0xa0;
    }
    SignerInfoOut {
        version: Integer::from(1),
        sid: Any::new(tlv(tag::SEQUENCE, &[cert.issuer, cert.serial].concat())),
        digest_algorithm: Any::new(digest_alg_der.to_vec()),
        signed_attrs: Any::new(implicit_attrs),
        signature_algorithm: Any::new(sig_alg_der),
        signature: OctetString::from(signature.to_vec()),
        unsigned_attrs: None,
    }
}

/// SignedData { version, digestAlgorithms, encapContentInfo, certificates,
/// signerInfos }.
fn signed_data(
    params: &SignedDataParams<'_>,
    digest_alg_der: Vec<u8>,
    signer_info: SignerInfoOut,
) -> SignedDataOut {
    let version = if params.econtent_type == oid::DATA {
        1
    } else {
        3
    };
    let econtent = match params.content {
        Content::Encapsulated(bytes) => Some(OctetString::from(bytes.to_vec())),
        Content::Detached { .. } => None,
    };
    let certificates = (!params.certificates.is_empty()).then(|| {
        SetOf::from_vec(
            params
                .certificates
                .iter()
                .map(|c| Any::new(c.to_vec()))
                .collect(),
        )
    });
    SignedDataOut {
        version: Integer::from(version),
        digest_algorithms: SetOf::from_vec(vec![Any::new(digest_alg_der)]),
        encap_content_info: rasn_cms::EncapsulatedContentInfo {
            content_type: oid::to_rasn(&params.econtent_type),
            content: econtent,
        },
        certificates,
        signer_infos: SetOf::from_vec(vec![signer_info]),
    }
}

/// DER ContentInfo { id-signedData, `signed_data` }.
fn content_info(signed_data: &SignedDataOut) -> Result<Vec<u8>, CmsError> {
    let content_info = rasn_cms::ContentInfo {
        content_type: oid::to_rasn(&oid::SIGNED_DATA),
        content: Any::new(encode(signed_data)?),
    };
    encode(&content_info)
}

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
    /// [`SignedDataParams::extra_signed_attributes`].
    pub extra: &'a [&'a [u8]],
}

/// Encodes the signed attributes as the DER SET OF (tag 0x31) that gets signed.
///
/// Public so that tests and the e-seal crate can compare against it; [`sign_signed_data`]
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

/// One DER `Attribute { attrType, attrValues SET { value } }` with a single value given
/// as complete DER: the form [`SignedDataParams::extra_signed_attributes`] and
/// [`SignedDataOutput::with_unsigned_attributes`] take.
pub fn attribute_der(type_oid: &ObjectIdentifier, value_der: &[u8]) -> Result<Vec<u8>, CmsError> {
    encode(&attribute(type_oid, value_der.to_vec())?)
}

/// Checks caller-made attributes: each exactly one DER `Attribute` (it re-encodes to
/// the same bytes) with at least one value, of a type not in `seen` (which grows).
fn checked_attributes(attrs: &[&[u8]], seen: &mut Vec<RasnOid>) -> Result<Vec<Any>, CmsError> {
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

fn attribute(type_oid: &ObjectIdentifier, value_der: Vec<u8>) -> Result<Attribute, CmsError> {
    Ok(Attribute {
        r#type: oid::to_rasn(type_oid),
        values: SetOf::from_vec(vec![Any::new(value_der)]),
    })
}

/// signing-time: UTCTime for 1950..=2049, GeneralizedTime otherwise (RFC 5652 §11.3),
/// whole seconds.
fn encode_signing_time(t: SystemTime) -> Result<Vec<u8>, CmsError> {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map_err(|_| CmsError::TimeOutOfRange)?
        .as_secs();
    let (y, mo, d, h, mi, s) = civil_from_unix(secs);
    if y > 9999 {
        return Err(CmsError::TimeOutOfRange);
    }
    if y < 2050 {
        let text = format!("{:02}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z", y % 100);
        Ok(tlv(tag::UTC_TIME, text.as_bytes()))
    } else {
        let text = format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z");
        Ok(tlv(tag::GENERALIZED_TIME, text.as_bytes()))
    }
}

/// (year, month, day, hour, minute, second) of a Unix time, proleptic Gregorian, UTC.
/// Howard Hinnant's `civil_from_days`.
fn civil_from_unix(secs: u64) -> (u64, u64, u64, u64, u64, u64) {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d, rem / 3600, (rem % 3600) / 60, rem % 60)
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

/// The issuer Name and serialNumber INTEGER of a certificate, as complete TLVs borrowed
/// from its original DER.
struct CertIds<'a> {
    issuer: &'a [u8],
    serial: &'a [u8],
}

impl<'a> CertIds<'a> {
    /// Slices issuer and serial out of the certificate's own bytes, located the same way
    /// [`crate::cert::Certificate`] locates them.
    fn read(cert_der: &'a [u8]) -> Result<Self, CmsError> {
        let r = crate::cert::locate::locate(cert_der).ok_or(CmsError::BadCertificate(
            "its outline is not Certificate { TBSCertificate, algorithm, signature }",
        ))?;
        let field = |range: std::ops::Range<usize>| {
            cert_der
                .get(range)
                .ok_or(CmsError::BadCertificate("field out of range"))
        };
        Ok(Self {
            issuer: field(r.issuer)?,
            serial: field(r.serial)?,
        })
    }
}

/// SignerInfo with the pieces that must keep their exact bytes held as [`Any`].
#[derive(AsnType, Clone, Debug, Encode, PartialEq, Eq, Hash)]
struct SignerInfoOut {
    version: Integer,
    /// IssuerAndSerialNumber, from the certificate's own bytes.
    sid: Any,
    digest_algorithm: Any,
    /// `[0] IMPLICIT SET OF Attribute`: the signed bytes with the tag changed.
    signed_attrs: Any,
    signature_algorithm: Any,
    signature: OctetString,
    /// `[1] IMPLICIT SET OF Attribute`, each element kept as given.
    #[rasn(tag(1))]
    unsigned_attrs: Option<SetOf<Any>>,
}

/// SignedData with the certificates as their original DER.
#[derive(AsnType, Clone, Debug, Encode, PartialEq, Eq, Hash)]
struct SignedDataOut {
    version: Integer,
    digest_algorithms: SetOf<Any>,
    encap_content_info: rasn_cms::EncapsulatedContentInfo,
    #[rasn(tag(0))]
    certificates: Option<SetOf<Any>>,
    signer_infos: SetOf<SignerInfoOut>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests

    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_unix(0), (1970, 1, 1, 0, 0, 0));
        // 2024-02-29T12:34:56Z
        assert_eq!(civil_from_unix(1_709_210_096), (2024, 2, 29, 12, 34, 56));
        // 2050-01-01T00:00:00Z switches to GeneralizedTime
        let t = UNIX_EPOCH + std::time::Duration::from_secs(2_524_608_000);
        assert_eq!(encode_signing_time(t).unwrap()[0], 0x18);
        let t = UNIX_EPOCH + std::time::Duration::from_secs(2_524_607_999);
        let enc = encode_signing_time(t).unwrap();
        assert_eq!(&enc[2..], b"491231235959Z");
    }

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
