//! SignerInfo and SignedData around the signature, and the ContentInfo that carries them.
//!
//! # Why it looks the way it does
//! The pieces whose bytes are fixed (the signed attributes, the sid copied from the
//! certificate, the algorithm identifiers from [`crate::alg`], the certificates) are held
//! as [`Any`] and spliced in as they are, so assembling the SignedData re-encodes
//! nothing that was signed or received. The assembled value is kept in
//! [`SignedDataOutput`] so that unsigned attributes can be added later from the same
//! pieces.

use rasn::types::{Any, Integer, OctetString, SetOf};
use rasn::{AsnType, Encode};

use super::signed_attrs::{SignedAttributesParams, signed_attributes};
use super::{CmsError, Content, SignedDataParams, encode};
use crate::alg::HashAlgorithm;
use crate::der::{tag, tlv};
use crate::oid;
use crate::signer::Signer;

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
    pub(super) signed_data: SignedDataOut,
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
pub(super) fn content_info(signed_data: &SignedDataOut) -> Result<Vec<u8>, CmsError> {
    let content_info = rasn_cms::ContentInfo {
        content_type: oid::to_rasn(&oid::SIGNED_DATA),
        content: Any::new(encode(signed_data)?),
    };
    encode(&content_info)
}

/// The issuer Name and serialNumber INTEGER of a certificate, as complete TLVs borrowed
/// from its original DER.
pub(super) struct CertIds<'a> {
    pub(super) issuer: &'a [u8],
    pub(super) serial: &'a [u8],
}

impl<'a> CertIds<'a> {
    /// Slices issuer and serial out of the certificate's own bytes, located the same way
    /// [`crate::cert::Certificate`] locates them.
    pub(super) fn read(cert_der: &'a [u8]) -> Result<Self, CmsError> {
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
pub(super) struct SignerInfoOut {
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
    pub(super) unsigned_attrs: Option<SetOf<Any>>,
}

/// SignedData with the certificates as their original DER.
#[derive(AsnType, Clone, Debug, Encode, PartialEq, Eq, Hash)]
pub(super) struct SignedDataOut {
    version: Integer,
    digest_algorithms: SetOf<Any>,
    encap_content_info: rasn_cms::EncapsulatedContentInfo,
    #[rasn(tag(0))]
    certificates: Option<SetOf<Any>>,
    pub(super) signer_infos: SetOf<SignerInfoOut>,
}
