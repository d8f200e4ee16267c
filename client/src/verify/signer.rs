//! The SignerInfo of a time-stamp token: that there is exactly one, that its signed
//! attributes bind the TSTInfo (content-type, message-digest) and the signer's
//! certificate (ESSCertIDv2), and that its signature verifies over the signed
//! attributes exactly as received.

use anyhow::{Context as _, anyhow, bail, ensure};
use hanko_pki::cert::Certificate;
use hanko_pki::{HashAlgorithm, SignatureAlgorithm};
use rasn::types::{ObjectIdentifier, OctetString};
use rasn_cms::{SignedData, SignerInfo};
use rasn_pkix::Attribute;

use crate::der;

/// rsaEncryption: a SignerInfo may name it with the hash in digestAlgorithm.
const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";

/// The token has exactly one SignerInfo.
pub(super) fn the_only_signer_info(sd: &SignedData) -> anyhow::Result<&SignerInfo> {
    let infos = sd.signer_infos.to_vec();
    let [si] = infos.as_slice() else {
        bail!("the token has {} SignerInfos, not one", infos.len());
    };
    Ok(si)
}

/// A SignerInfo's signed attributes, looked up by OID.
pub(super) struct SignedAttrs<'a>(Vec<&'a Attribute>);

impl<'a> SignedAttrs<'a> {
    /// The signed attributes of `si`; a SignerInfo without any is refused.
    pub(super) fn of(si: &'a SignerInfo) -> anyhow::Result<Self> {
        let attrs = si
            .signed_attrs
            .as_ref()
            .ok_or_else(|| anyhow!("the SignerInfo has no signed attributes"))?;
        Ok(Self(attrs.to_vec()))
    }

    /// The DER of the one value of the one attribute `oid`.
    fn value(&self, oid: &str) -> anyhow::Result<Vec<u8>> {
        let found: Vec<&Attribute> = self
            .0
            .iter()
            .copied()
            .filter(|a| a.r#type.to_string() == oid)
            .collect();
        match found.as_slice() {
            [one] => {
                let values = one.values.to_vec();
                match values.as_slice() {
                    [v] => Ok(v.as_bytes().to_vec()),
                    _ => bail!("attribute {oid} has {} values, not one", values.len()),
                }
            }
            [] => bail!("signed attribute {oid} is missing"),
            _ => bail!("signed attribute {oid} appears more than once"),
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
) -> anyhow::Result<HashAlgorithm> {
    let digest_oid = si.digest_algorithm.algorithm.to_string();
    let digest_alg = HashAlgorithm::from_oid(&digest_oid)
        .map_err(|_| anyhow!("SignerInfo digest algorithm {digest_oid} is not SHA-256/384/512"))?;
    let ct: ObjectIdentifier = rasn::der::decode(&attrs.value(hanko_pki::cms::OID_CONTENT_TYPE)?)
        .map_err(|e| anyhow!("content-type attribute: {e}"))?;
    ensure!(
        ct.to_string() == hanko_pki::cms::OID_TST_INFO,
        "content-type attribute is {ct}, not id-ct-TSTInfo"
    );
    let md: OctetString = rasn::der::decode(&attrs.value(hanko_pki::cms::OID_MESSAGE_DIGEST)?)
        .map_err(|e| anyhow!("message-digest attribute: {e}"))?;
    ensure!(
        md.to_vec() == digest_alg.digest(tst_der),
        "the message-digest attribute is not the {} of the TSTInfo",
        digest_alg.name()
    );
    Ok(digest_alg)
}

/// The certificates to find the signer and build the chain from: the token's own
/// (from their original DER), then `untrusted`.
pub(super) fn certificate_pool(
    token_certificates: &[Vec<u8>],
    untrusted: &[Certificate],
) -> anyhow::Result<Vec<Certificate>> {
    let mut pool: Vec<Certificate> = Vec::new();
    for der in token_certificates {
        let c = Certificate::from_der(der).context("a certificate in the token")?;
        pool.push(c);
    }
    pool.extend(untrusted.iter().cloned());
    Ok(pool)
}

/// The certificate in `pool` that the sid names.
pub(super) fn find_signer_certificate(
    sid_der: &[u8],
    pool: &[Certificate],
) -> anyhow::Result<Certificate> {
    pool.iter()
        .find(|c| sid_matches(sid_der, c))
        .cloned()
        .ok_or_else(|| {
            anyhow!(
                "the signer's certificate is neither in the token nor in --untrusted \
                 (stamp with certReq, or pass the TSA certificate with --untrusted)"
            )
        })
}

/// The signing-certificate-v2 attribute's first ESSCertIDv2 names `signer`: its
/// certHash is the digest of the signer certificate's whole DER.
pub(super) fn check_ess_cert_id_names(
    attrs: &SignedAttrs<'_>,
    signer: &Certificate,
) -> anyhow::Result<()> {
    let ess: rasn_smime::ess::SigningCertificateV2 =
        rasn::der::decode(&attrs.value(hanko_pki::cms::OID_SIGNING_CERTIFICATE_V2)?)
            .map_err(|e| anyhow!("signing-certificate-v2 attribute: {e}"))?;
    let first = ess
        .certs
        .first()
        .ok_or_else(|| anyhow!("signing-certificate-v2 names no certificate"))?;
    let ess_oid = first.hash_algorithm.algorithm.to_string();
    let ess_alg = HashAlgorithm::from_oid(&ess_oid)
        .map_err(|_| anyhow!("ESSCertIDv2 hash algorithm {ess_oid} is not SHA-256/384/512"))?;
    ensure!(
        first.cert_hash.to_vec() == ess_alg.digest(signer.der()),
        "ESSCertIDv2 certHash is not the {} of the signer's certificate",
        ess_alg.name()
    );
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
) -> anyhow::Result<SignatureAlgorithm> {
    let sig_alg_der = rasn::der::encode(&si.signature_algorithm)
        .map_err(|e| anyhow!("signature algorithm: {e}"))?;
    let sig_alg = if si.signature_algorithm.algorithm.to_string() == OID_RSA_ENCRYPTION {
        SignatureAlgorithm::RsaPkcs1v15(digest_alg)
    } else {
        SignatureAlgorithm::from_algorithm_identifier_der(&sig_alg_der)
            .map_err(|e| anyhow!("unsupported signature algorithm: {e}"))?
    };
    if sig_alg != SignatureAlgorithm::Ed25519 {
        ensure!(
            sig_alg.hash() == digest_alg,
            "the signature algorithm's hash differs from the SignerInfo's digest algorithm"
        );
    }
    hanko_pki::verify::verify(
        signer.spki_der(),
        sig_alg,
        signed_attrs_set,
        si.signature.as_ref(),
    )
    .map_err(|e| anyhow!("the token's signature does not verify with the TSA certificate: {e}"))?;
    Ok(sig_alg)
}

/// Whether the sid (IssuerAndSerialNumber or [0] SubjectKeyIdentifier, as received)
/// names `cert`.
fn sid_matches(sid_der: &[u8], cert: &Certificate) -> bool {
    let Ok((sid, _)) = der::read(sid_der) else {
        return false;
    };
    match sid.tag {
        0x30 => {
            let Ok((issuer, rest)) = der::read(sid.content) else {
                return false;
            };
            let Ok((serial, _)) = der::read(rest) else {
                return false;
            };
            issuer.full == cert.issuer_der()
                && serial.tag == 0x02
                && serial.content == cert.serial_der()
        }
        0x80 => cert
            .subject_key_identifier()
            .is_some_and(|ski| ski == sid.content),
        _ => false,
    }
}
