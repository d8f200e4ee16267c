//! The start-up checks of a certificate Hanko is about to sign under: the TSA profile
//! (RFC 3161 §2.3, CONFORMANCE 31-32), the e-seal profile (EN 319 412-3), the key match
//! with the token (CONFORMANCE 40), and what both profiles share (extensions, validity,
//! privateKeyUsagePeriod, subject attributes, key strength).
//!
//! Each check returns the first [`CertError`] that names the defect; none of them
//! builds chains or looks at revocation (see the [parent module](super)).

use std::time::SystemTime;

use der::asn1::ObjectIdentifier;
use der::{Decode, Encode, Tagged as _};
use x509_cert::ext::pkix::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, PrivateKeyUsagePeriod, SubjectKeyIdentifier,
};

use super::{CertError, Certificate};
use crate::alg::KeyType;
use crate::oid;

/// Extensions an end-entity certificate may mark critical and still be used by Hanko.
/// Any other critical extension is refused (RFC 5280 §4.2: a user of the certificate
/// must reject a critical extension it does not process).
const KNOWN_CRITICAL: [ObjectIdentifier; 5] = [
    oid::KEY_USAGE,
    oid::EXTENDED_KEY_USAGE,
    oid::BASIC_CONSTRAINTS,
    oid::SUBJECT_ALT_NAME,
    oid::CERTIFICATE_POLICIES,
];

fn fmt_time(t: &x509_cert::time::Time) -> String {
    t.to_string()
}

/// Checks that no extension appears twice, every extension Hanko reads parses, and no
/// unknown extension is critical.
fn check_extensions(cert: &Certificate) -> Result<(), CertError> {
    let mut seen: Vec<&ObjectIdentifier> = Vec::new();
    for ext in cert.extensions() {
        if seen.contains(&&ext.extn_id) {
            return Err(CertError::DuplicateExtension(ext.extn_id.to_string()));
        }
        seen.push(&ext.extn_id);
        let id = ext.extn_id.to_string();
        if ext.critical && !KNOWN_CRITICAL.contains(&ext.extn_id) {
            return Err(CertError::UnknownCriticalExtension(id));
        }
        let value = ext.extn_value.as_bytes();
        let bad = |reason: String| CertError::BadExtension {
            oid: id.clone(),
            reason,
        };
        let parsed = match ext.extn_id {
            x if x == oid::KEY_USAGE => KeyUsage::from_der(value).map(drop),
            x if x == oid::EXTENDED_KEY_USAGE => ExtendedKeyUsage::from_der(value).map(drop),
            x if x == oid::BASIC_CONSTRAINTS => BasicConstraints::from_der(value).map(drop),
            x if x == oid::PRIVATE_KEY_USAGE_PERIOD => {
                PrivateKeyUsagePeriod::from_der(value).map(drop)
            }
            x if x == oid::SUBJECT_KEY_IDENTIFIER => {
                SubjectKeyIdentifier::from_der(value).map(drop)
            }
            _ => Ok(()),
        };
        parsed.map_err(|e| bad(e.to_string()))?;
    }
    Ok(())
}

/// Checks validity and privateKeyUsagePeriod against `now`.
fn check_times(cert: &Certificate, now: SystemTime) -> Result<(), CertError> {
    let validity = cert.parsed.tbs_certificate().validity();
    if now < cert.not_before() {
        return Err(CertError::NotYetValid(fmt_time(&validity.not_before)));
    }
    if now > cert.not_after() {
        return Err(CertError::Expired(fmt_time(&validity.not_after)));
    }
    if let Some(ext) = cert
        .extensions()
        .find(|e| e.extn_id == oid::PRIVATE_KEY_USAGE_PERIOD)
    {
        let p = PrivateKeyUsagePeriod::from_der(ext.extn_value.as_bytes()).map_err(|e| {
            CertError::BadExtension {
                oid: oid::PRIVATE_KEY_USAGE_PERIOD.to_string(),
                reason: e.to_string(),
            }
        })?;
        if let Some(nb) = p.not_before
            && now < nb.to_system_time()
        {
            return Err(CertError::KeyUsagePeriodNotStarted(
                nb.to_date_time().to_string(),
            ));
        }
        if let Some(na) = p.not_after
            && now > na.to_system_time()
        {
            return Err(CertError::KeyUsagePeriodEnded(
                na.to_date_time().to_string(),
            ));
        }
    }
    Ok(())
}

/// Checks that the subject has every attribute in `required` with a non-empty value.
fn check_subject(
    cert: &Certificate,
    required: &[(ObjectIdentifier, &'static str)],
) -> Result<(), CertError> {
    let subject = cert.parsed.tbs_certificate().subject();
    for (oid, name) in required {
        let present = subject
            .iter()
            .any(|atv| atv.oid == *oid && !atv.value.value().is_empty());
        if !present {
            return Err(CertError::MissingSubjectAttribute(name));
        }
    }
    Ok(())
}

/// Refuses RSA below 2048 bits and unknown key types.
fn check_key_strength(cert: &Certificate) -> Result<(), CertError> {
    match cert.key_type() {
        Some(KeyType::Rsa { bits }) if bits < 2048 => {
            Err(CertError::WeakKey(format!("RSA-{bits}")))
        }
        Some(_) => Ok(()),
        None => Err(CertError::Unsupported(
            "subject public key type is not RSA, EC P-256/P-384 or Ed25519".into(),
        )),
    }
}

/// Fewest RSA bits of a key Hanko signs new tokens and seals with: ETSI TS 119 312
/// (cryptographic suites) gives RSA-2048 no future beyond the transition; 3072 bits is
/// the floor for keys in use from now on. Verification still accepts 2048 (old tokens
/// and third parties' certificates), see `check_key_strength`.
pub const MIN_SIGNING_RSA_BITS: usize = 3072;

/// The algorithm policy for a key Hanko is to sign with (TS 119 312): RSA below
/// [`MIN_SIGNING_RSA_BITS`] is refused with [`CertError::WeakKey`]; EC P-256, P-384 and
/// Ed25519 pass. Called on a TSA or seal unit's own certificate at start-up, beside its
/// profile check (which keeps the 2048-bit floor every certificate must meet).
pub fn check_signing_key_policy(cert: &Certificate) -> Result<(), CertError> {
    match cert.key_type() {
        Some(KeyType::Rsa { bits }) if bits < MIN_SIGNING_RSA_BITS => {
            Err(CertError::WeakKey(format!(
                "RSA-{bits} (ETSI TS 119 312: new tokens and seals need RSA of at least \
                 {MIN_SIGNING_RSA_BITS} bits, or EC P-256 / P-384, or Ed25519)"
            )))
        }
        _ => Ok(()),
    }
}

/// The check of an issuing CA certificate in a signing key's chain (RFC 5280 §4.2.1.9,
/// §4.2.1.3, §6.1.4), `below` being how many CA certificates stand between it and the
/// leaf (0 for the leaf's own issuer):
///
/// - extensions: none twice, none unknown and critical, all parse;
/// - basicConstraints present with cA TRUE, and its pathLenConstraint (when present) at
///   least `below`;
/// - keyUsage present with keyCertSign;
/// - `now` within notBefore..notAfter.
///
/// The chain's signatures are checked apart (`Certificate::verify_issued_by`).
pub fn check_issuing_ca(
    cert: &Certificate,
    now: SystemTime,
    below: usize,
) -> Result<(), CertError> {
    check_extensions(cert)?;
    let bc = match cert
        .parsed
        .tbs_certificate()
        .get_extension::<BasicConstraints>()
    {
        Ok(Some((_, bc))) => bc,
        Ok(None) => {
            return Err(CertError::IssuerNotCa(
                "it has no basicConstraints extension",
            ));
        }
        Err(e) => {
            return Err(CertError::BadExtension {
                oid: oid::BASIC_CONSTRAINTS.to_string(),
                reason: e.to_string(),
            });
        }
    };
    if !bc.ca {
        return Err(CertError::IssuerNotCa("its basicConstraints say cA FALSE"));
    }
    if let Some(len) = bc.path_len_constraint
        && usize::from(len) < below
    {
        return Err(CertError::PathLenExceeded {
            path_len: len,
            below,
        });
    }
    let ku = cert
        .key_usage()
        .ok_or(CertError::IssuerNotCa("it has no keyUsage extension"))?;
    if !ku.key_cert_sign() {
        return Err(CertError::IssuerNotCa("its keyUsage lacks keyCertSign"));
    }
    check_times(cert, now)
}

/// The start-up check of a TSA (TSU) certificate: CONFORMANCE 31 and 32, plus validity.
///
/// - extensions: none twice, none unknown and critical, all parse;
/// - extendedKeyUsage present, critical, and exactly `{ id-kp-timeStamping }`;
/// - keyUsage, when present, allows digitalSignature or nonRepudiation;
/// - not a CA;
/// - subject has countryName, organizationName and commonName;
/// - `now` within notBefore..notAfter and within privateKeyUsagePeriod when present;
/// - a key type Hanko signs with (RSA of at least 2048 bits, P-256, P-384, Ed25519).
pub fn check_tsa_certificate(cert: &Certificate, now: SystemTime) -> Result<(), CertError> {
    check_extensions(cert)?;
    let ekus: Vec<_> = cert
        .extensions()
        .filter(|e| e.extn_id == oid::EXTENDED_KEY_USAGE)
        .collect();
    let eku = match ekus.as_slice() {
        [] => return Err(CertError::MissingExtendedKeyUsage),
        [one] => *one,
        _ => {
            return Err(CertError::DuplicateExtension(
                oid::EXTENDED_KEY_USAGE.to_string(),
            ));
        }
    };
    if !eku.critical {
        return Err(CertError::ExtendedKeyUsageNotCritical);
    }
    let purposes = ExtendedKeyUsage::from_der(eku.extn_value.as_bytes()).map_err(|e| {
        CertError::BadExtension {
            oid: oid::EXTENDED_KEY_USAGE.to_string(),
            reason: e.to_string(),
        }
    })?;
    if purposes.0 != [oid::KP_TIME_STAMPING] {
        return Err(CertError::ExtendedKeyUsagePurposes(
            purposes.0.iter().map(|o| o.to_string()).collect(),
        ));
    }
    if let Some(ku) = cert.key_usage()
        && !ku.digital_signature()
        && !ku.non_repudiation()
    {
        return Err(CertError::KeyUsageNotForSigning);
    }
    if cert.is_ca() {
        return Err(CertError::IsCa);
    }
    check_subject(
        cert,
        &[
            (oid::COUNTRY_NAME, "countryName"),
            (oid::ORGANIZATION_NAME, "organizationName"),
            (oid::COMMON_NAME, "commonName"),
        ],
    )?;
    check_key_strength(cert)?;
    check_times(cert, now)
}

/// The start-up check of an organisational e-seal certificate.
///
/// - extensions: none twice, none unknown and critical, all parse;
/// - keyUsage present with nonRepudiation (contentCommitment) and digitalSignature;
/// - not a CA;
/// - subject has countryName (two letters), organizationName and commonName: the
///   subject of a seal is a legal person (EN 319 412-3 §4.2.1);
/// - `now` within the validity and privateKeyUsagePeriod;
/// - a key type Hanko signs with.
pub fn check_seal_certificate(cert: &Certificate, now: SystemTime) -> Result<(), CertError> {
    check_extensions(cert)?;
    let ku = cert.key_usage().ok_or(CertError::MissingKeyUsage)?;
    if !ku.non_repudiation() {
        return Err(CertError::KeyUsageLacks(
            "nonRepudiation (contentCommitment)",
        ));
    }
    if !ku.digital_signature() {
        return Err(CertError::KeyUsageLacks("digitalSignature"));
    }
    if cert.is_ca() {
        return Err(CertError::IsCa);
    }
    check_legal_person_country(cert)?;
    check_subject(
        cert,
        &[
            (oid::ORGANIZATION_NAME, "organizationName"),
            (oid::COMMON_NAME, "commonName"),
        ],
    )?;
    check_key_strength(cert)?;
    check_times(cert, now)
}

/// The subject of a legal person's certificate has exactly one countryName, a
/// PrintableString of two upper-case letters (EN 319 412-1 §5.1.4, EN 319 412-3
/// §4.2.1; X.520 fixes its size at 2).
fn check_legal_person_country(cert: &Certificate) -> Result<(), CertError> {
    let subject = cert.parsed.tbs_certificate().subject();
    let countries: Vec<&[u8]> = subject
        .iter()
        .filter(|atv| atv.oid == oid::COUNTRY_NAME)
        .map(|atv| atv.value.value())
        .collect();
    match countries.as_slice() {
        [] => Err(CertError::LegalPersonWithoutCountry("")),
        [c] if c.len() == 2 && c.iter().all(u8::is_ascii_uppercase) => Ok(()),
        [_] => Err(CertError::LegalPersonWithoutCountry(
            " (the one given is not two upper-case letters)",
        )),
        _ => Err(CertError::LegalPersonWithoutCountry(
            " (the subject names more than one)",
        )),
    }
}

/// Checks that the certificate certifies the key whose SubjectPublicKeyInfo is
/// `spki_der` (e.g. read from the HSM): CONFORMANCE 40.
///
/// The comparison is on the decoded algorithm OID, its parameters and the key bits, so
/// an RSA SPKI with absent instead of NULL parameters still matches.
pub fn check_key_matches(cert: &Certificate, spki_der: &[u8]) -> Result<(), CertError> {
    if spki_equal(cert.spki_der(), spki_der)? {
        Ok(())
    } else {
        Err(CertError::KeyMismatch)
    }
}

/// Whether two DER SubjectPublicKeyInfos hold the same key.
pub(crate) fn spki_equal(a: &[u8], b: &[u8]) -> Result<bool, CertError> {
    if a == b {
        return Ok(true);
    }
    let parse = |d: &[u8]| {
        spki::SubjectPublicKeyInfoOwned::from_der(d).map_err(|e| CertError::Malformed {
            what: "subject public key info",
            reason: e.to_string(),
        })
    };
    let (a, b) = (parse(a)?, parse(b)?);
    let params = |p: &Option<der::Any>| -> Result<Option<Vec<u8>>, CertError> {
        match p {
            None => Ok(None),
            Some(any) if any.tag() == der::Tag::Null => Ok(None),
            Some(any) => any
                .to_der()
                .map(Some)
                .map_err(|e| CertError::Encode(e.to_string())),
        }
    };
    Ok(a.algorithm.oid == b.algorithm.oid
        && params(&a.algorithm.parameters)? == params(&b.algorithm.parameters)?
        && a.subject_public_key == b.subject_public_key)
}
