//! The SignerInfo of a time-stamp token: that there is exactly one, that its signed
//! attributes bind the TSTInfo (content-type, message-digest) and the signer's
//! certificate (ESSCertIDv2), and that its signature verifies over the signed
//! attributes exactly as received.

use hanko_pki::cert::Certificate;
use hanko_pki::der::{Cursor, tag};
use hanko_pki::oid;
use hanko_pki::{HashAlgorithm, SignatureAlgorithm};
use rasn::types::{ObjectIdentifier, OctetString};
use rasn_cms::{SignedData, SignerInfo};
use rasn_pkix::Attribute;

use crate::Error;
use crate::token::is;

/// The token has exactly one SignerInfo.
pub(super) fn the_only_signer_info(sd: &SignedData) -> Result<&SignerInfo, Error> {
    let infos = sd.signer_infos.to_vec();
    let [si] = infos.as_slice() else {
        return Err(Error::SignerInfoCount(infos.len()));
    };
    Ok(si)
}

/// A SignerInfo's signed attributes, looked up by OID.
pub(super) struct SignedAttrs<'a>(Vec<&'a Attribute>);

impl<'a> SignedAttrs<'a> {
    /// The signed attributes of `si`; a SignerInfo without any is refused.
    pub(super) fn of(si: &'a SignerInfo) -> Result<Self, Error> {
        let attrs = si.signed_attrs.as_ref().ok_or(Error::NoSignedAttributes)?;
        Ok(Self(attrs.to_vec()))
    }

    /// The DER of the one value of the one attribute `oid`.
    pub(super) fn value(&self, oid: &oid::ObjectIdentifier) -> Result<Vec<u8>, Error> {
        let found: Vec<&Attribute> = self
            .0
            .iter()
            .copied()
            .filter(|a| is(&a.r#type, oid))
            .collect();
        match found.as_slice() {
            [one] => {
                let values = one.values.to_vec();
                match values.as_slice() {
                    [v] => Ok(v.as_bytes().to_vec()),
                    _ => Err(Error::AttributeValueCount {
                        oid: oid.to_string(),
                        count: values.len(),
                    }),
                }
            }
            [] => Err(Error::AttributeMissing(oid.to_string())),
            _ => Err(Error::AttributeRepeated(oid.to_string())),
        }
    }
}

/// The SignerInfo's digest algorithm is SHA-256/384/512; the content-type attribute is
/// id-ct-TSTInfo and the message-digest attribute is that digest of the TSTInfo as
/// received. Returns the digest algorithm.
pub(super) fn check_content_attributes(
    si: &SignerInfo,
    attrs: &SignedAttrs<'_>,
    tst_der: &[u8],
) -> Result<HashAlgorithm, Error> {
    let digest_alg = digest_algorithm(si)?;
    let ct = content_type(attrs)?;
    if !is(&ct, &oid::TST_INFO) {
        return Err(Error::ContentTypeNotTstInfo(ct.to_string()));
    }
    if message_digest(attrs)? != digest_alg.digest(tst_der) {
        return Err(Error::MessageDigestMismatch(digest_alg.name()));
    }
    Ok(digest_alg)
}

/// The SignerInfo's digest algorithm, SHA-256/384/512.
pub(super) fn digest_algorithm(si: &SignerInfo) -> Result<HashAlgorithm, Error> {
    let digest_oid = si.digest_algorithm.algorithm.to_string();
    HashAlgorithm::from_oid(&digest_oid).map_err(|_| Error::UnsupportedDigestAlgorithm(digest_oid))
}

/// The content-type attribute's value.
pub(super) fn content_type(attrs: &SignedAttrs<'_>) -> Result<ObjectIdentifier, Error> {
    rasn::der::decode(&attrs.value(&oid::CONTENT_TYPE)?)
        .map_err(|e| Error::MalformedContentType(e.to_string()))
}

/// The message-digest attribute's value.
pub(super) fn message_digest(attrs: &SignedAttrs<'_>) -> Result<Vec<u8>, Error> {
    let md: OctetString = rasn::der::decode(&attrs.value(&oid::MESSAGE_DIGEST)?)
        .map_err(|e| Error::MalformedMessageDigest(e.to_string()))?;
    Ok(md.to_vec())
}

/// The certificates to find the signer and build the chain from: the token's own
/// (from their original DER), then `untrusted`.
pub(super) fn certificate_pool(
    token_certificates: &[Vec<u8>],
    untrusted: &[Certificate],
) -> Result<Vec<Certificate>, Error> {
    let mut pool: Vec<Certificate> = Vec::new();
    for der in token_certificates {
        pool.push(Certificate::from_der(der).map_err(Error::TokenCertificate)?);
    }
    pool.extend(untrusted.iter().cloned());
    Ok(pool)
}

/// The certificate in `pool` that the sid names.
pub(super) fn find_signer_certificate(
    sid_der: &[u8],
    pool: &[Certificate],
) -> Result<Certificate, Error> {
    pool.iter()
        .find(|c| sid_matches(sid_der, c))
        .cloned()
        .ok_or(Error::SignerCertificateNotFound)
}

/// The signing-certificate-v2 attribute's first ESSCertIDv2 names `signer`: its
/// certHash is the digest of the signer certificate's whole DER.
pub(super) fn check_ess_cert_id_names(
    attrs: &SignedAttrs<'_>,
    signer: &Certificate,
) -> Result<(), Error> {
    let ess: rasn_smime::ess::SigningCertificateV2 =
        rasn::der::decode(&attrs.value(&oid::SIGNING_CERTIFICATE_V2)?)
            .map_err(|e| Error::MalformedSigningCertificateV2(e.to_string()))?;
    let first = ess.certs.first().ok_or(Error::EssCertIdMissing)?;
    let ess_oid = first.hash_algorithm.algorithm.to_string();
    let ess_alg =
        HashAlgorithm::from_oid(&ess_oid).map_err(|_| Error::UnsupportedEssCertIdHash(ess_oid))?;
    if first.cert_hash.to_vec() != ess_alg.digest(signer.der()) {
        return Err(Error::EssCertHashMismatch(ess_alg.name()));
    }
    Ok(())
}

/// The SignerInfo's signature verifies with `signer`'s key over `signed_attrs_set` (the
/// signed attributes as received, as a SET), with a signature algorithm whose hash is
/// the digest algorithm (Ed25519 has none to compare). Returns the algorithm.
pub(super) fn check_signature(
    si: &SignerInfo,
    digest_alg: HashAlgorithm,
    signer: &Certificate,
    signed_attrs_set: &[u8],
) -> Result<SignatureAlgorithm, Error> {
    let sig_alg_der = rasn::der::encode(&si.signature_algorithm)
        .map_err(|e| Error::SignatureAlgorithmEncoding(e.to_string()))?;
    // A SignerInfo may name rsaEncryption, with the hash in digestAlgorithm.
    let sig_alg = if is(&si.signature_algorithm.algorithm, &oid::RSA_ENCRYPTION) {
        SignatureAlgorithm::RsaPkcs1v15(digest_alg)
    } else {
        SignatureAlgorithm::from_algorithm_identifier_der(&sig_alg_der)
            .map_err(|e| Error::UnsupportedSignatureAlgorithm(e.to_string()))?
    };
    if sig_alg != SignatureAlgorithm::Ed25519 && sig_alg.hash() != digest_alg {
        return Err(Error::SignatureHashMismatch);
    }
    hanko_pki::verify::verify(
        signer.spki_der(),
        sig_alg,
        signed_attrs_set,
        si.signature.as_ref(),
    )
    .map_err(|e| Error::BadSignature(e.to_string()))?;
    Ok(sig_alg)
}

/// Whether the sid (IssuerAndSerialNumber or [0] SubjectKeyIdentifier, as received)
/// names `cert`.
fn sid_matches(sid_der: &[u8], cert: &Certificate) -> bool {
    let Some(sid) = Cursor::new(sid_der, 0..sid_der.len()).next_tlv() else {
        return false;
    };
    let content = |r: std::ops::Range<usize>| sid_der.get(r).unwrap_or_default();
    match sid.tag {
        tag::SEQUENCE => {
            let mut fields = Cursor::new(sid_der, sid.content);
            let (Some(issuer), Some(serial)) = (fields.next_tlv(), fields.next_tlv()) else {
                return false;
            };
            content(issuer.whole) == cert.issuer_der()
                && serial.tag == tag::INTEGER
                && content(serial.content) == cert.serial_der()
        }
        0x80 => cert
            .subject_key_identifier()
            .is_some_and(|ski| ski == content(sid.content)),
        _ => false,
    }
}
