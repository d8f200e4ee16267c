//! Offline verification of a CAdES seal (ETSI EN 319 122-1 B-B or B-T, detached or
//! enveloping), one step per function, in this order (the first failing step is the
//! error):
//!
//! ```text
//!   ContentInfo { id-signedData } -> SignedData, exactly one SignerInfo     parse
//!   the content: eContent (attached) or the data given (detached)          content_of
//!   content-type = eContentType; message-digest = H(content)               check_content
//!   exactly one signing-time                                               signing_time
//!   CMS algorithm protection = the SignerInfo's algorithms (RFC 6211)      check_algorithm_protection
//!   the signer certificate named by sid; ESSCertIDv2 certHash = H(its DER) signer::*
//!   the signature over the signed attributes, as received                  signer::check_signature
//!   keyUsage allows signing; chain to a root, each link's signature
//!   checked, each certificate valid at the signing time                    chain::build
//!   B-T: the signature-time-stamp verifies (crate::verify) over H(signature
//!   value), and its genTime is not before the signing time                 check_time_stamp
//! ```
//!
//! Like the token verifier, this shares no code with the seal builder (`hanko-seal`
//! and `hanko_pki::cms`): bytes are taken from the DER as received, decoded with
//! `rasn` types, and only `hanko_pki`'s vocabulary, signature primitive and certificate
//! accessors are used. No revocation checking (see the crate docs).

mod parse;

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hanko_pki::cert::Certificate;
use hanko_pki::oid;
use hanko_pki::{HashAlgorithm, SignatureAlgorithm};
use rasn_cms::SignerInfo;
use rasn_pkix::AlgorithmIdentifier;

use super::signer::{self, SignedAttrs};
use super::{Verified, chain};
use crate::Error;
use crate::token::is;

/// How long a time-stamp's genTime may precede the signing time: none, beyond the
/// signing time's whole seconds (Hanko truncates it; a TSA keeps fractions).
const GEN_TIME_SLACK: Duration = Duration::from_secs(1);

/// What a verified seal says.
#[derive(Clone, Debug)]
pub struct VerifiedSeal {
    /// The seal certificate's subject (RFC 4514).
    pub signer_subject: String,
    /// The signing-time attribute.
    pub signing_time: SystemTime,
    /// The signing time as RFC 3339 text.
    pub signing_time_text: String,
    /// `B-B` or `B-T`.
    pub level: &'static str,
    /// Whether the document is inside the CMS (enveloping) rather than beside it.
    pub attached: bool,
    /// The message-digest algorithm.
    pub digest_algorithm: HashAlgorithm,
    /// The signature algorithm.
    pub signature_algorithm: SignatureAlgorithm,
    /// Subjects from the seal certificate up to the trust anchor.
    pub chain: Vec<String>,
    /// The signature time-stamp, verified (B-T only).
    pub time_stamp: Option<Verified>,
    /// The seal certificate itself (issuer, validity, organisation for a report).
    pub signer_certificate: Certificate,
}

impl VerifiedSeal {
    /// The short human summary `hanko seal-verify` prints.
    pub fn summary(&self) -> String {
        let mut s = String::from("Seal verification: OK\n");
        let _ = writeln!(s, "  signer    : {}", self.signer_subject);
        let _ = writeln!(s, "  signed at : {}", self.signing_time_text);
        let _ = writeln!(
            s,
            "  level     : CAdES {} ({})",
            self.level,
            if self.attached {
                "enveloping"
            } else {
                "detached"
            }
        );
        let _ = writeln!(
            s,
            "  signature : {} over {}",
            self.signature_algorithm,
            self.digest_algorithm.name()
        );
        if let Some(ts) = &self.time_stamp {
            let _ = writeln!(
                s,
                "  time-stamp: {} by {}",
                ts.gen_time_text, ts.tsa_subject
            );
        }
        let _ = writeln!(s, "  chain     : {}", self.chain.join(" <- "));
        s
    }
}

/// Verifies the DER CMS `seal`: see the module docs for every check. `data` is the
/// sealed document (required for a detached seal; for an enveloping one, when given, it
/// must be the eContent); `roots` are the trust anchors of the seal certificate and
/// `tsa_roots` those of a B-T time-stamp.
pub fn verify_seal(
    seal: &[u8],
    data: Option<&[u8]>,
    roots: &[Certificate],
    tsa_roots: &[Certificate],
) -> Result<VerifiedSeal, Error> {
    verify_cms(seal, data, roots, tsa_roots, None)
}

/// The seal certificate a CMS names, found without verifying anything: who *claims*
/// to have sealed, for a report that must say so even when the seal does not verify.
/// `None` when the CMS cannot be parsed or does not carry the certificate.
pub fn claimed_signer(seal: &[u8]) -> Option<Certificate> {
    let p = parse::parse(seal).ok()?;
    let pool = signer::certificate_pool(&p.parts.certificates, &[]).ok()?;
    signer::find_signer_certificate(&p.parts.sid_der, &pool).ok()
}

/// [`verify_seal`] with, for a CMS without a signing-time attribute (PAdES, EN 319
/// 142-1 §5.2 forbids it), `claimed_time` in its place: the signature dictionary's `/M`.
pub(crate) fn verify_cms(
    seal: &[u8],
    data: Option<&[u8]>,
    roots: &[Certificate],
    tsa_roots: &[Certificate],
    claimed_time: Option<SystemTime>,
) -> Result<VerifiedSeal, Error> {
    if roots.is_empty() {
        return Err(Error::NoTrustAnchor);
    }
    let p = parse::parse(seal)?;
    let si = the_only_signer_info(&p.signed_data)?;
    let content = content_of(&p, data)?;
    let attrs = SignedAttrs::of(si)?;
    let digest_alg = check_content(si, &attrs, &p, content)?;
    let (signing_time, signing_time_text) = match (signing_time(&attrs), claimed_time) {
        (Err(Error::AttributeMissing(_)), Some(t)) => (t, super::pdf::rfc3339(t)),
        (other, _) => other?,
    };
    check_algorithm_protection(&attrs, &p)?;

    let pool = signer::certificate_pool(&p.parts.certificates, &[])?;
    let signer = signer::find_signer_certificate(&p.parts.sid_der, &pool)
        .map_err(|_| Error::SealSignerCertificateNotFound)?;
    signer::check_ess_cert_id_names(&attrs, &signer)?;
    let sig_alg = signer::check_signature(si, digest_alg, &signer, &p.parts.signed_attrs_set)
        .map_err(|e| match e {
            Error::BadSignature(why) => Error::SealBadSignature(why),
            other => other,
        })?;
    if let Some(ku) = signer.key_usage()
        && !ku.digital_signature()
        && !ku.non_repudiation()
    {
        return Err(Error::SealKeyUsage);
    }
    let chain = chain::build(&signer, &pool, roots, signing_time).map_err(|e| match e {
        Error::NotValidAtGenTime(subject) => Error::NotValidAtSigningTime(subject),
        other => other,
    })?;
    let time_stamp = check_time_stamp(si, signing_time, tsa_roots, &pool)?;
    Ok(VerifiedSeal {
        signer_subject: signer.subject_string(),
        signing_time,
        signing_time_text,
        level: if time_stamp.is_some() { "B-T" } else { "B-B" },
        attached: p.econtent.is_some(),
        digest_algorithm: digest_alg,
        signature_algorithm: sig_alg,
        chain,
        time_stamp,
        signer_certificate: signer,
    })
}

/// A seal has exactly one SignerInfo.
fn the_only_signer_info(sd: &rasn_cms::SignedData) -> Result<&SignerInfo, Error> {
    signer::the_only_signer_info(sd).map_err(|e| match e {
        Error::SignerInfoCount(n) => Error::SealSignerInfoCount(n),
        other => other,
    })
}

/// The sealed bytes: the eContent of an enveloping seal (equal to `data` when that is
/// given too), else `data`.
fn content_of<'a>(p: &'a parse::ParsedSeal, data: Option<&'a [u8]>) -> Result<&'a [u8], Error> {
    match (&p.econtent, data) {
        (Some(inside), Some(given)) if inside.as_slice() != given => {
            Err(Error::AttachedContentDiffers)
        }
        (Some(inside), _) => Ok(inside),
        (None, Some(given)) => Ok(given),
        (None, None) => Err(Error::DetachedWithoutData),
    }
}

/// The digest algorithm is SHA-256/384/512, the content-type attribute is the
/// eContentType, and the message-digest attribute is that digest of the content.
fn check_content(
    si: &SignerInfo,
    attrs: &SignedAttrs<'_>,
    p: &parse::ParsedSeal,
    content: &[u8],
) -> Result<HashAlgorithm, Error> {
    let digest_alg = signer::digest_algorithm(si)?;
    let ct = signer::content_type(attrs)?;
    let econtent_type = &p.signed_data.encap_content_info.content_type;
    if ct != *econtent_type {
        return Err(Error::SealContentTypeDiffers {
            attribute: ct.to_string(),
            econtent: econtent_type.to_string(),
        });
    }
    if signer::message_digest(attrs)? != digest_alg.digest(content) {
        return Err(Error::SealDataMismatch(digest_alg.name()));
    }
    Ok(digest_alg)
}

/// The one signing-time attribute (CAdES requires it), as a time and as text.
fn signing_time(attrs: &SignedAttrs<'_>) -> Result<(SystemTime, String), Error> {
    let t: rasn_pkix::Time = rasn::der::decode(&attrs.value(&oid::SIGNING_TIME)?)
        .map_err(|e| Error::MalformedSigningTime(e.to_string()))?;
    let utc = match t {
        rasn_pkix::Time::Utc(u) => u,
        rasn_pkix::Time::General(g) => g.to_utc(),
    };
    let secs = u64::try_from(utc.timestamp())
        .map_err(|_| Error::MalformedSigningTime("before 1970".to_owned()))?;
    let at = UNIX_EPOCH
        + Duration::from_secs(secs)
        + Duration::from_nanos(u64::from(utc.timestamp_subsec_nanos()));
    Ok((at, utc.to_rfc3339()))
}

/// RFC 6211: the CMSAlgorithmProtection attribute names the SignerInfo's own digest
/// and signature algorithms (NULL parameters and absent ones count as the same).
fn check_algorithm_protection(attrs: &SignedAttrs<'_>, p: &parse::ParsedSeal) -> Result<(), Error> {
    let value = attrs.value(&oid::CMS_ALGORITHM_PROTECTION)?;
    let protection: rasn_cms::CmsAlgorithmProtection = rasn::der::decode(&value)
        .map_err(|e| Error::MalformedAlgorithmProtection(e.to_string()))?;
    let decode = |der: &[u8]| -> Result<AlgorithmIdentifier, Error> {
        rasn::der::decode(der).map_err(|e| Error::MalformedSeal(e.to_string()))
    };
    let digest = decode(&p.parts.digest_alg_der)?;
    let signature = decode(&p.parts.signature_alg_der)?;
    let same_sig = protection
        .signature_algorithm
        .as_ref()
        .is_some_and(|s| same_algorithm(s, &signature));
    if !same_algorithm(&protection.digest_algorithm, &digest) || !same_sig {
        return Err(Error::AlgorithmProtectionMismatch);
    }
    Ok(())
}

fn same_algorithm(a: &AlgorithmIdentifier, b: &AlgorithmIdentifier) -> bool {
    let params = |x: &AlgorithmIdentifier| -> Option<Vec<u8>> {
        x.parameters
            .as_ref()
            .map(|p| p.as_bytes().to_vec())
            .filter(|p| p.as_slice() != [0x05, 0x00])
    };
    a.algorithm == b.algorithm && params(a) == params(b)
}

/// B-T: the unsigned signature-time-stamp attribute, if any, verified as a token over
/// the digest of the signature value (with the token's own imprint algorithm), by a TSA
/// under `tsa_roots`, at or after the signing time.
fn check_time_stamp(
    si: &SignerInfo,
    signing_time: SystemTime,
    tsa_roots: &[Certificate],
    pool: &[Certificate],
) -> Result<Option<Verified>, Error> {
    let Some(unsigned) = &si.unsigned_attrs else {
        return Ok(None);
    };
    let stamps: Vec<_> = unsigned
        .to_vec()
        .into_iter()
        .filter(|a| is(&a.r#type, &oid::SIGNATURE_TIME_STAMP_TOKEN))
        .collect();
    let token = match stamps.as_slice() {
        [] => return Ok(None),
        [one] => match one.values.to_vec().as_slice() {
            [v] => v.as_bytes().to_vec(),
            other => {
                return Err(Error::TimeStampAttributeValues(other.len()));
            }
        },
        more => return Err(Error::TimeStampAttributeValues(more.len())),
    };
    if tsa_roots.is_empty() {
        return Err(Error::NoTrustAnchor);
    }
    let signature = si.signature.to_vec();
    let verified = super::verify_token(
        &token,
        &|h: HashAlgorithm| Ok(h.digest(&signature)),
        tsa_roots,
        pool,
    )
    .map_err(|e| Error::SealTimeStamp(Box::new(e)))?;
    if verified.gen_time + GEN_TIME_SLACK < signing_time {
        return Err(Error::TimeStampBeforeSigningTime);
    }
    Ok(Some(verified))
}
