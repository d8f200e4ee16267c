//! The TSA certificate's purpose (RFC 3161 §2.3) and its chain to a trust anchor at
//! genTime. No revocation (CRL/OCSP), no policy or name constraints: see the crate docs.

use std::time::SystemTime;

use hanko_pki::cert::Certificate;
use hanko_pki::oid::{EXTENDED_KEY_USAGE, KP_TIME_STAMPING};

use crate::Error;

/// Longest chain followed, leaf to anchor.
const MAX_DEPTH: usize = 8;

/// Exactly one extendedKeyUsage, critical, and exactly id-kp-timeStamping (RFC 3161
/// §2.3).
pub(super) fn check_timestamping_eku(cert: &Certificate) -> Result<(), Error> {
    use der::Decode as _;
    let exts: Vec<&x509_cert::ext::Extension> = cert
        .parsed()
        .tbs_certificate()
        .extensions()
        .map(|e| {
            e.iter()
                .filter(|e| e.extn_id == EXTENDED_KEY_USAGE)
                .collect()
        })
        .unwrap_or_default();
    let [eku] = exts.as_slice() else {
        return Err(Error::ExtendedKeyUsageCount(exts.len()));
    };
    if !eku.critical {
        return Err(Error::ExtendedKeyUsageNotCritical);
    }
    let purposes = x509_cert::ext::pkix::ExtendedKeyUsage::from_der(eku.extn_value.as_bytes())
        .map_err(|e| Error::MalformedExtendedKeyUsage(e.to_string()))?;
    if purposes.0 != [KP_TIME_STAMPING] {
        return Err(Error::ExtendedKeyUsageNotTimeStamping);
    }
    Ok(())
}

/// From the TSA certificate up to one of `roots`: each link's signature checked, each
/// issuer a CA, every certificate valid at `at`. Returns the subjects, leaf first.
pub(super) fn build(
    leaf: &Certificate,
    pool: &[Certificate],
    roots: &[Certificate],
    at: SystemTime,
) -> Result<Vec<String>, Error> {
    Ok(path(leaf, pool, roots, at)?
        .iter()
        .map(Certificate::subject_string)
        .collect())
}

/// [`build`]'s certificates, leaf first, the trust anchor last.
pub(super) fn path(
    leaf: &Certificate,
    pool: &[Certificate],
    roots: &[Certificate],
    at: SystemTime,
) -> Result<Vec<Certificate>, Error> {
    let mut path = vec![leaf.clone()];
    check_valid_at(leaf, at)?;
    let mut current = leaf.clone();
    for _ in 0..MAX_DEPTH {
        if let Some(root) = roots.iter().find(|r| current.verify_issued_by(r).is_ok()) {
            check_valid_at(root, at)?;
            path.push(root.clone());
            return Ok(path);
        }
        let issuer = pool
            .iter()
            .filter(|c| c.der() != current.der() && c.is_ca())
            .find(|c| current.verify_issued_by(c).is_ok())
            .ok_or_else(|| Error::NoChain(current.subject_string()))?;
        check_valid_at(issuer, at)?;
        path.push(issuer.clone());
        current = issuer.clone();
    }
    Err(Error::ChainTooLong(MAX_DEPTH))
}

/// `cert` was within its validity period at `t`.
fn check_valid_at(cert: &Certificate, t: SystemTime) -> Result<(), Error> {
    if cert.not_before() <= t && t <= cert.not_after() {
        Ok(())
    } else {
        Err(Error::NotValidAtGenTime(cert.subject_string()))
    }
}
