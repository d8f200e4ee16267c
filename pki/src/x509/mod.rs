//! Building certificates and certification requests (PKCS#10) signed through any
//! [`Signer`]: the dev CA of `hanko dev-init`, CSRs for keys that live in the HSM, and
//! test fixtures.
//!
//! ```text
//!   CertParams + subject SPKI --x509-cert CertificateBuilder (our profile)--> TBS DER
//!        --Signer::sign (async: HSM pool or software)--> signature
//!        --assemble: SEQUENCE { TBS DER, alg.algorithm_identifier_der(), BIT STRING }--> Certificate
//! ```
//!
//! The TBSCertificate comes from `x509-cert`'s builder with a Hanko [`CertProfile`] (the
//! stock profiles cannot make a critical extendedKeyUsage). The outer structure is put
//! together here from the exact TBS bytes that were signed and the algorithm identifier
//! from [`crate::alg`], so what the signer saw is what the certificate carries.
//!
//! # What this module does not do
//! It is not a CA: no revocation, no database of issued serials, no policy beyond the
//! four profiles. Production TSA and e-seal certificates come from a real CA; Hanko only
//! makes their CSRs ([`make_csr`]) and checks what comes back ([`crate::cert`]).
//!
//! Certification requests (making and reading them) are in `csr.rs`.

mod csr;

use std::time::SystemTime;

pub use csr::{CertRequest, make_csr};
use der::asn1::{BitString, GeneralizedTime, OctetString};
use der::{Decode, Encode};
use spki::{
    AlgorithmIdentifierOwned, DynSignatureAlgorithmIdentifier, EncodePublicKey,
    SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef,
};
use x509_cert::TbsCertificate;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    PrivateKeyUsagePeriod, SubjectAltName, SubjectKeyIdentifier,
};
pub use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

use crate::alg::{HashAlgorithm, SignatureAlgorithm};
use crate::cert::{self, CertError, Certificate};
use crate::der::{tag, tlv};
use crate::oid;
use crate::signer::Signer;

/// A subject attribute Hanko puts into names it builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameAttr {
    /// countryName (2.5.4.6), two letters, PrintableString.
    Country,
    /// organizationName (2.5.4.10), UTF8String.
    Organization,
    /// organizationalUnitName (2.5.4.11), UTF8String.
    OrganizationalUnit,
    /// organizationIdentifier (2.5.4.97), e.g. `NTRJP-1234567890123` (EN 319 412-1).
    OrganizationIdentifier,
    /// serialNumber (2.5.4.5), PrintableString.
    SerialNumber,
    /// commonName (2.5.4.3), UTF8String.
    CommonName,
}

/// Builds a Name with one attribute per RDN, in the order given (put Country first and
/// CommonName last, as `openssl x509 -subject` prints them).
///
/// ```
/// use hanko_pki::x509::{build_name, NameAttr};
/// let n = build_name(&[
///     (NameAttr::Country, "JP"),
///     (NameAttr::Organization, "Hanko Dev"),
///     (NameAttr::CommonName, "Hanko Dev TSA"),
/// ]).unwrap();
/// assert_eq!(n.to_string(), "CN=Hanko Dev TSA,O=Hanko Dev,C=JP");
/// ```
pub fn build_name(attrs: &[(NameAttr, &str)]) -> Result<Name, CertError> {
    let mut rdns = Vec::new();
    for (attr, value) in attrs {
        let printable = |v: &str| {
            v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(&b))
        };
        let (oid, tag) = match attr {
            NameAttr::Country => {
                if value.len() != 2 || !value.bytes().all(|b| b.is_ascii_uppercase()) {
                    return Err(CertError::BadName(format!(
                        "countryName must be two upper-case letters (ISO 3166), got {value:?}"
                    )));
                }
                (oid::COUNTRY_NAME, 0x13)
            }
            NameAttr::SerialNumber => {
                if !printable(value) {
                    return Err(CertError::BadName(format!(
                        "serialNumber must be a PrintableString, got {value:?}"
                    )));
                }
                (oid::SERIAL_NUMBER, 0x13)
            }
            NameAttr::Organization => (oid::ORGANIZATION_NAME, 0x0c),
            NameAttr::OrganizationalUnit => (oid::ORGANIZATIONAL_UNIT_NAME, 0x0c),
            NameAttr::OrganizationIdentifier => (oid::ORGANIZATION_IDENTIFIER, 0x0c),
            NameAttr::CommonName => (oid::COMMON_NAME, 0x0c),
        };
        if value.is_empty() || value.len() > 64 {
            return Err(CertError::BadName(format!(
                "{attr:?} must be 1 to 64 characters, got {} bytes",
                value.len()
            )));
        }
        let oid_der = oid.to_der().map_err(|e| CertError::Encode(e.to_string()))?;
        let mut atv = oid_der;
        atv.extend_from_slice(&tlv(tag, value.as_bytes()));
        rdns.extend_from_slice(&tlv(0x31, &tlv(0x30, &atv)));
    }
    Name::from_der(&tlv(0x30, &rdns)).map_err(|e| CertError::BadName(e.to_string()))
}

/// What kind of certificate to issue. Each profile fixes the extensions completely.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertProfile {
    /// A self-signed root CA: basicConstraints cA (critical), keyUsage keyCertSign +
    /// cRLSign (critical), subjectKeyIdentifier, authorityKeyIdentifier (= its own).
    RootCa,
    /// An intermediate CA: as the root but with pathLenConstraint and the issuer's
    /// authorityKeyIdentifier.
    IntermediateCa {
        /// pathLenConstraint; 0 means it issues only end-entity certificates.
        path_len: u8,
    },
    /// A TSA (TSU) certificate (RFC 3161 §2.3, EN 319 422 §6): extendedKeyUsage exactly
    /// `{ id-kp-timeStamping }`, critical; keyUsage digitalSignature (and nonRepudiation
    /// when asked), critical; SKI, AKI; optional privateKeyUsagePeriod.
    Tsa {
        /// Also set keyUsage nonRepudiation.
        non_repudiation: bool,
        /// privateKeyUsagePeriod (notBefore, notAfter): the key signs only inside it.
        private_key_usage_period: Option<(SystemTime, SystemTime)>,
    },
    /// An organisational e-seal certificate: keyUsage nonRepudiation + digitalSignature,
    /// critical; SKI, AKI. No extendedKeyUsage.
    Seal,
    /// A TLS server certificate (RFC 5280, CA/Browser Forum shape): keyUsage
    /// digitalSignature, critical; extendedKeyUsage `{ id-kp-serverAuth }`;
    /// subjectAltName with the DNS names and IP addresses clients connect to (at least
    /// one); SKI, AKI.
    TlsServer {
        /// dNSName entries, e.g. `localhost`.
        dns_names: Vec<String>,
        /// iPAddress entries, e.g. `127.0.0.1`.
        ip_addresses: Vec<std::net::IpAddr>,
    },
}

/// Everything about a certificate to issue except the keys.
#[derive(Clone, Debug)]
pub struct CertParams {
    /// The profile (extensions).
    pub profile: CertProfile,
    /// The subject name; see [`build_name`].
    pub subject: Name,
    /// notBefore (whole seconds are kept).
    pub not_before: SystemTime,
    /// notAfter (whole seconds are kept).
    pub not_after: SystemTime,
    /// The serial number as unsigned big-endian bytes (at most 20). `None`: 16 random
    /// bytes (RFC 5280 wants unpredictable serials).
    pub serial: Option<Vec<u8>>,
}

impl CertParams {
    /// Parameters with a random serial.
    pub fn new(
        profile: CertProfile,
        subject: Name,
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Self {
        CertParams {
            profile,
            subject,
            not_before,
            not_after,
            serial: None,
        }
    }
}

/// The key identifier Hanko puts into SKI/AKI: RFC 7093 §2 method 1, the leftmost 160
/// bits of the SHA-256 hash of the subjectPublicKey BIT STRING's value.
pub fn key_identifier(spki_der: &[u8]) -> Result<Vec<u8>, CertError> {
    let spki = SubjectPublicKeyInfoRef::from_der(spki_der).map_err(|e| CertError::Malformed {
        what: "subject public key info",
        reason: e.to_string(),
    })?;
    let mut id = HashAlgorithm::Sha256.digest(spki.subject_public_key.raw_bytes());
    id.truncate(20);
    Ok(id)
}

fn ext<T: Encode>(
    oid: der::asn1::ObjectIdentifier,
    critical: bool,
    value: &T,
) -> Result<Extension, CertError> {
    let bytes = value
        .to_der()
        .map_err(|e| CertError::Encode(e.to_string()))?;
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(bytes).map_err(|e| CertError::Encode(e.to_string()))?,
    })
}

/// subjectAltName of DNS names and IP addresses; refused when empty (a TLS client
/// matches the name it connected to against these, never against the subject's CN).
fn subject_alt_name(
    dns_names: &[String],
    ip_addresses: &[std::net::IpAddr],
) -> Result<SubjectAltName, CertError> {
    use x509_cert::ext::pkix::name::GeneralName;
    if dns_names.is_empty() && ip_addresses.is_empty() {
        return Err(CertError::Encode(
            "a TLS server certificate needs at least one DNS name or IP address".into(),
        ));
    }
    let mut names = Vec::new();
    for d in dns_names {
        let ia5 = der::asn1::Ia5String::new(d)
            .map_err(|e| CertError::Encode(format!("DNS name {d:?}: {e}")))?;
        names.push(GeneralName::DnsName(ia5));
    }
    for ip in ip_addresses {
        let bytes = match ip {
            std::net::IpAddr::V4(a) => a.octets().to_vec(),
            std::net::IpAddr::V6(a) => a.octets().to_vec(),
        };
        names.push(GeneralName::IpAddress(octets(bytes)?));
    }
    Ok(SubjectAltName(names))
}

fn octets(bytes: Vec<u8>) -> Result<OctetString, CertError> {
    OctetString::new(bytes).map_err(|e| CertError::Encode(e.to_string()))
}

/// The x509-cert builder profile: fixed subject, issuer and extension list.
struct FixedProfile {
    subject: Name,
    issuer: Name,
    extensions: Vec<Extension>,
}

impl BuilderProfile for FixedProfile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        _spk: SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: SubjectPublicKeyInfoRef<'_>,
        _tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        Ok(self.extensions.clone())
    }
}

/// A public key as raw SPKI DER, to satisfy `EncodePublicKey`.
#[derive(Clone, Debug)]
struct SpkiBytes(Vec<u8>);

impl EncodePublicKey for SpkiBytes {
    fn to_public_key_der(&self) -> spki::Result<der::Document> {
        Ok(der::Document::try_from(self.0.as_slice())?)
    }
}

/// Lets the x509-cert builder ask a Hanko [`Signer`] for its key and algorithm; the
/// signature itself is made by [`Signer::sign`] outside the builder (it is async).
struct SignerInfoAdapter<'a> {
    signer: &'a dyn Signer,
}

impl signature::Keypair for SignerInfoAdapter<'_> {
    type VerifyingKey = SpkiBytes;

    fn verifying_key(&self) -> SpkiBytes {
        SpkiBytes(self.signer.public_key_der().to_vec())
    }
}

impl DynSignatureAlgorithmIdentifier for SignerInfoAdapter<'_> {
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        Ok(AlgorithmIdentifierOwned::from_der(
            &self.signer.algorithm().algorithm_identifier_der(),
        )?)
    }
}

/// `SEQUENCE { body DER, algorithm, BIT STRING signature }`: the outer form shared by
/// Certificate and CertificationRequest.
fn assemble_signed(
    body_der: &[u8],
    alg: SignatureAlgorithm,
    signature: &[u8],
) -> Result<Vec<u8>, CertError> {
    let bits = BitString::from_bytes(signature)
        .and_then(|b| b.to_der())
        .map_err(|e| CertError::Encode(e.to_string()))?;
    let mut content = body_der.to_vec();
    content.extend_from_slice(&alg.algorithm_identifier_der());
    content.extend_from_slice(&bits);
    Ok(tlv(tag::SEQUENCE, &content))
}

fn to_time(t: SystemTime) -> Result<Time, CertError> {
    Time::try_from(t).map_err(|e| CertError::BadValidity(format!("time out of range: {e}")))
}

/// `t` without its fraction of a second (times before 1970 are kept as they are).
fn whole_seconds(t: SystemTime) -> SystemTime {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(d.as_secs()),
        Err(_) => t,
    }
}

fn to_generalized(t: SystemTime) -> Result<GeneralizedTime, CertError> {
    GeneralizedTime::from_system_time(t)
        .map_err(|e| CertError::BadValidity(format!("time out of range: {e}")))
}

fn random_serial() -> Vec<u8> {
    use rand::Rng as _;
    let mut s = vec![0u8; 16];
    rand::rng().fill_bytes(&mut s);
    // Positive and exactly 16 octets when encoded.
    s[0] = (s[0] & 0x7f) | 0x40;
    s
}

/// Issues a certificate for the key `subject_spki` under `issuer` (or self-signed when
/// `issuer` is `None`), signed by `signer`, which must hold the issuer's key (or, for a
/// self-signed root, the subject key).
///
/// Refuses: a signer whose public key is not the issuer's; an issuer that is not a CA;
/// a validity that ends before it starts or outside the issuer's; a self-signed
/// end-entity profile.
///
/// The steps: check the validity, then the issuer (`issuer_name_and_key_id`), build
/// the profile's extensions (`profile_extensions`), then let the x509-cert builder
/// encode the TBSCertificate, sign it with [`Signer::sign`] and assemble the result.
pub async fn issue_certificate(
    params: &CertParams,
    subject_spki: &[u8],
    issuer: Option<&Certificate>,
    signer: &dyn Signer,
) -> Result<Certificate, CertError> {
    let spki =
        SubjectPublicKeyInfoOwned::from_der(subject_spki).map_err(|e| CertError::Malformed {
            what: "subject public key info",
            reason: e.to_string(),
        })?;
    // Certificates carry whole seconds: compare what will be encoded.
    let not_before = whole_seconds(params.not_before);
    let not_after = whole_seconds(params.not_after);
    if not_after <= not_before {
        return Err(CertError::BadValidity(
            "notAfter is not after notBefore".into(),
        ));
    }
    let ski = key_identifier(subject_spki)?;
    let validity = (not_before, not_after);
    let (issuer_name, aki) =
        issuer_name_and_key_id(params, subject_spki, &ski, validity, issuer, signer)?;
    let extensions = profile_extensions(&params.profile, ski, aki)?;

    let serial = match &params.serial {
        Some(s) => s.clone(),
        None => random_serial(),
    };
    let serial =
        SerialNumber::new(&serial).map_err(|e| CertError::Encode(format!("serial number: {e}")))?;
    let validity = Validity::new(to_time(not_before)?, to_time(not_after)?);
    let profile = FixedProfile {
        subject: params.subject.clone(),
        issuer: issuer_name,
        extensions,
    };
    let mut builder = CertificateBuilder::new(profile, serial, validity, spki)
        .map_err(|e| CertError::Encode(e.to_string()))?;
    let adapter = SignerInfoAdapter { signer };
    let tbs = builder
        .finalize(&adapter)
        .map_err(|e| CertError::Encode(e.to_string()))?;
    let signature = signer.sign(&tbs).await?;
    let der = assemble_signed(&tbs, signer.algorithm(), &signature)?;
    Certificate::from_der(&der)
}

/// The issuer Name and the authorityKeyIdentifier of a new certificate, after checking
/// that the issuer may issue it: a CA with keyCertSign whose key the signer holds and
/// whose validity covers `validity`; or, self-signed, a root whose own key signs.
fn issuer_name_and_key_id(
    params: &CertParams,
    subject_spki: &[u8],
    ski: &[u8],
    (not_before, not_after): (SystemTime, SystemTime),
    issuer: Option<&Certificate>,
    signer: &dyn Signer,
) -> Result<(Name, Vec<u8>), CertError> {
    let Some(ca) = issuer else {
        if params.profile != CertProfile::RootCa {
            return Err(CertError::IssuerNotCa(
                "only the RootCa profile may be self-signed",
            ));
        }
        if !cert::spki_equal(subject_spki, signer.public_key_der())? {
            return Err(CertError::SignerNotIssuer);
        }
        return Ok((params.subject.clone(), ski.to_vec()));
    };
    if !ca.is_ca() {
        return Err(CertError::IssuerNotCa("basicConstraints cA is not TRUE"));
    }
    if let Some(ku) = ca.key_usage()
        && !ku.key_cert_sign()
    {
        return Err(CertError::IssuerNotCa("keyUsage lacks keyCertSign"));
    }
    if !cert::spki_equal(ca.spki_der(), signer.public_key_der())? {
        return Err(CertError::SignerNotIssuer);
    }
    if not_before < ca.not_before() || not_after > ca.not_after() {
        return Err(CertError::BadValidity(
            "the validity is not inside the issuer's".into(),
        ));
    }
    let aki = match ca.subject_key_identifier() {
        Some(id) => id,
        None => key_identifier(ca.spki_der())?,
    };
    Ok((ca.parsed().tbs_certificate().subject().clone(), aki))
}

/// The extensions of a profile, then subjectKeyIdentifier and authorityKeyIdentifier.
fn profile_extensions(
    profile: &CertProfile,
    ski: Vec<u8>,
    aki: Vec<u8>,
) -> Result<Vec<Extension>, CertError> {
    let mut exts = Vec::new();
    let ca_key_usage = KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign);
    match profile {
        CertProfile::RootCa => {
            let bc = BasicConstraints {
                ca: true,
                path_len_constraint: None,
            };
            exts.push(ext(oid::BASIC_CONSTRAINTS, true, &bc)?);
            exts.push(ext(oid::KEY_USAGE, true, &ca_key_usage)?);
        }
        CertProfile::IntermediateCa { path_len } => {
            let bc = BasicConstraints {
                ca: true,
                path_len_constraint: Some(*path_len),
            };
            exts.push(ext(oid::BASIC_CONSTRAINTS, true, &bc)?);
            exts.push(ext(oid::KEY_USAGE, true, &ca_key_usage)?);
        }
        CertProfile::Tsa {
            non_repudiation,
            private_key_usage_period,
        } => {
            let ku = if *non_repudiation {
                KeyUsages::DigitalSignature | KeyUsages::NonRepudiation
            } else {
                KeyUsages::DigitalSignature.into()
            };
            exts.push(ext(oid::KEY_USAGE, true, &KeyUsage(ku))?);
            let eku = ExtendedKeyUsage(vec![oid::KP_TIME_STAMPING]);
            exts.push(ext(oid::EXTENDED_KEY_USAGE, true, &eku)?);
            if let Some((nb, na)) = private_key_usage_period {
                if na <= nb {
                    return Err(CertError::BadValidity(
                        "privateKeyUsagePeriod ends before it starts".into(),
                    ));
                }
                let p = PrivateKeyUsagePeriod {
                    not_before: Some(to_generalized(whole_seconds(*nb))?),
                    not_after: Some(to_generalized(whole_seconds(*na))?),
                };
                exts.push(ext(oid::PRIVATE_KEY_USAGE_PERIOD, false, &p)?);
            }
        }
        CertProfile::Seal => {
            let ku = KeyUsage(KeyUsages::DigitalSignature | KeyUsages::NonRepudiation);
            exts.push(ext(oid::KEY_USAGE, true, &ku)?);
        }
        CertProfile::TlsServer {
            dns_names,
            ip_addresses,
        } => {
            let ku = KeyUsage(KeyUsages::DigitalSignature.into());
            exts.push(ext(oid::KEY_USAGE, true, &ku)?);
            let eku = ExtendedKeyUsage(vec![oid::KP_SERVER_AUTH]);
            exts.push(ext(oid::EXTENDED_KEY_USAGE, false, &eku)?);
            exts.push(ext(
                oid::SUBJECT_ALT_NAME,
                false,
                &subject_alt_name(dns_names, ip_addresses)?,
            )?);
        }
    }
    exts.push(ext(
        oid::SUBJECT_KEY_IDENTIFIER,
        false,
        &SubjectKeyIdentifier(octets(ski)?),
    )?);
    let aki = AuthorityKeyIdentifier {
        key_identifier: Some(octets(aki)?),
        ..Default::default()
    };
    exts.push(ext(oid::AUTHORITY_KEY_IDENTIFIER, false, &aki)?);
    Ok(exts)
}
