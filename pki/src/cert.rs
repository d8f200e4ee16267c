//! Certificates as Hanko holds them, and the checks a TSA or e-seal certificate must pass
//! before Hanko signs anything with its key.
//!
//! A [`Certificate`] keeps the ORIGINAL DER it was read from next to the parsed
//! `x509-cert` structure. Re-encoding a decoded certificate is not always byte-identical
//! (an explicit `critical FALSE` disappears, see shared/DESIGN.md), and every place that
//! puts a certificate on the wire or hashes it (SignedData.certificates, ESSCertIDv2
//! certHash, IssuerAndSerialNumber) needs the issuer's exact bytes. So the accessors
//! [`Certificate::subject_der`], [`Certificate::issuer_der`], [`Certificate::spki_der`]
//! and [`Certificate::serial_der`] return slices of that original DER, never a re-encoding.
//!
//! The checks are the start-up gate of CONFORMANCE items 31, 32 and 40:
//!
//! ```text
//!   PEM/DER --from_der--> Certificate --check_tsa_certificate(now)--> ok | CertError
//!                                     --check_seal_certificate(now)-> ok | CertError
//!                                     --check_key_matches(HSM SPKI)--> ok | CertError
//! ```
//!
//! # What this module does not do
//! It does not build chains to a trust anchor, fetch or check revocation, or verify the
//! issuer's signature: the operator installs the chain, and relying parties validate. It
//! checks that the certificate Hanko is about to sign under says what the standards
//! require, and that it belongs to the key in the token. Building certificates is
//! [`crate::x509`].

use std::fmt;
use std::ops::Range;
use std::time::SystemTime;

use der::asn1::ObjectIdentifier;
use der::pem::LineEnding;
use der::{Decode, Encode, Tagged as _};
use x509_cert::ext::pkix::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, PrivateKeyUsagePeriod, SubjectKeyIdentifier,
};

use crate::alg::{self, HashAlgorithm, KeyType, SignatureAlgorithm};
use crate::signer::SignError;

/// id-kp-timeStamping (RFC 3161 §2.3).
pub const OID_KP_TIME_STAMPING: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.8");
/// extendedKeyUsage extension (RFC 5280 §4.2.1.12).
pub const OID_EXTENDED_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");
/// keyUsage extension.
pub const OID_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
/// basicConstraints extension.
pub const OID_BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
/// subjectKeyIdentifier extension.
pub const OID_SUBJECT_KEY_IDENTIFIER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.14");
/// authorityKeyIdentifier extension.
pub const OID_AUTHORITY_KEY_IDENTIFIER: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.5.29.35");
/// privateKeyUsagePeriod extension (RFC 3280 §4.2.1.4; EN 319 422 recommends it).
pub const OID_PRIVATE_KEY_USAGE_PERIOD: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.5.29.16");
/// countryName.
pub const OID_COUNTRY_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.6");
/// organizationName.
pub const OID_ORGANIZATION_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.10");
/// organizationalUnitName.
pub const OID_ORGANIZATIONAL_UNIT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.11");
/// commonName.
pub const OID_COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
/// organizationIdentifier (EN 319 412-1 §5.1.4).
pub const OID_ORGANIZATION_IDENTIFIER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.97");
/// serialNumber (the subject attribute, not the certificate serial).
pub const OID_SERIAL_NUMBER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.5");

/// Extensions an end-entity certificate may mark critical and still be used by Hanko.
/// Any other critical extension is refused (RFC 5280 §4.2: a user of the certificate
/// must reject a critical extension it does not process).
const KNOWN_CRITICAL: [&str; 5] = [
    "2.5.29.15", // keyUsage
    "2.5.29.37", // extendedKeyUsage
    "2.5.29.19", // basicConstraints
    "2.5.29.17", // subjectAltName
    "2.5.29.32", // certificatePolicies
];

/// What is wrong with a certificate, a chain or a request to build one.
///
/// Each check variant names exactly one defect, in the words an operator can act on; the
/// start-up gate prints it and refuses to serve.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// The bytes are not a DER certificate (or CSR) that parses.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being parsed ("certificate", "certificate request", ...).
        what: &'static str,
        /// The parser's complaint.
        reason: String,
    },
    /// The PEM text is not a sequence of `CERTIFICATE` blocks.
    #[error("bad PEM: {0}")]
    Pem(String),
    /// A PEM chain held no certificate at all.
    #[error("no certificate found in the PEM text")]
    NoCertificate,
    /// An extension appears more than once (RFC 5280 §4.2 forbids it).
    #[error("extension {0} appears more than once")]
    DuplicateExtension(String),
    /// An extension's value does not parse.
    #[error("extension {oid} is malformed: {reason}")]
    BadExtension {
        /// The extension's OID.
        oid: String,
        /// The parser's complaint.
        reason: String,
    },
    /// A critical extension Hanko does not process.
    #[error("unsupported critical extension {0}")]
    UnknownCriticalExtension(String),
    /// The TSA certificate has no extendedKeyUsage extension (CONFORMANCE 31).
    #[error("TSA certificate has no extendedKeyUsage extension (RFC 3161 §2.3 requires one)")]
    MissingExtendedKeyUsage,
    /// The extendedKeyUsage extension is not marked critical (CONFORMANCE 31).
    #[error("TSA certificate's extendedKeyUsage extension is not critical (RFC 3161 §2.3)")]
    ExtendedKeyUsageNotCritical,
    /// The extendedKeyUsage extension lists something other than exactly
    /// id-kp-timeStamping (CONFORMANCE 31).
    #[error(
        "TSA certificate's extendedKeyUsage must be exactly id-kp-timeStamping (1.3.6.1.5.5.7.3.8), found [{}]",
        .0.join(", ")
    )]
    ExtendedKeyUsagePurposes(Vec<String>),
    /// The subject lacks an attribute the profile requires (CONFORMANCE 32).
    #[error("certificate subject has no {0}")]
    MissingSubjectAttribute(&'static str),
    /// The certificate has no keyUsage extension but the profile requires one.
    #[error("certificate has no keyUsage extension")]
    MissingKeyUsage,
    /// keyUsage lacks a bit the profile requires.
    #[error("certificate keyUsage lacks {0}")]
    KeyUsageLacks(&'static str),
    /// keyUsage allows none of the signing uses a TSA needs.
    #[error("TSA certificate keyUsage allows neither digitalSignature nor nonRepudiation")]
    KeyUsageNotForSigning,
    /// An end-entity certificate says it is a CA (basicConstraints cA TRUE).
    #[error("certificate is a CA certificate (basicConstraints cA TRUE), not an end entity")]
    IsCa,
    /// The current time is before notBefore.
    #[error("certificate is not valid before {0}")]
    NotYetValid(String),
    /// The current time is after notAfter.
    #[error("certificate expired at {0}")]
    Expired(String),
    /// The current time is before the privateKeyUsagePeriod's notBefore.
    #[error("private key usage period starts at {0}")]
    KeyUsagePeriodNotStarted(String),
    /// The current time is after the privateKeyUsagePeriod's notAfter (CONFORMANCE 41).
    #[error("private key usage period ended at {0}")]
    KeyUsagePeriodEnded(String),
    /// The key is too weak for the profile (CONFORMANCE 33).
    #[error("certificate key {0} is too weak")]
    WeakKey(String),
    /// The key type or signature algorithm is not one Hanko knows.
    #[error("unsupported key or algorithm: {0}")]
    Unsupported(String),
    /// The certificate's public key is not the given key (CONFORMANCE 40).
    #[error("certificate public key does not match the signing key")]
    KeyMismatch,
    /// The signer offered to sign a certificate is not the issuer's key.
    #[error("the signer's key is not the issuer certificate's key")]
    SignerNotIssuer,
    /// The issuer certificate is not a CA (no basicConstraints cA TRUE, or no
    /// keyCertSign).
    #[error("issuer certificate is not a CA: {0}")]
    IssuerNotCa(&'static str),
    /// The requested validity does not fit the issuer's, or ends before it starts.
    #[error("bad validity: {0}")]
    BadValidity(String),
    /// A name could not be built.
    #[error("bad name: {0}")]
    BadName(String),
    /// Encoding a structure failed.
    #[error("encoding failed: {0}")]
    Encode(String),
    /// The signer failed.
    #[error("signing failed: {0}")]
    Sign(#[from] SignError),
    /// A signature does not verify (a CSR's proof of possession, a certificate's issuer
    /// signature).
    #[error("signature does not verify: {0}")]
    BadSignature(String),
}

/// An X.509 certificate with its original DER.
#[derive(Clone)]
pub struct Certificate {
    der: Vec<u8>,
    parsed: x509_cert::Certificate,
    /// Byte ranges of fields inside `der`.
    ranges: Ranges,
}

#[derive(Clone, Debug)]
struct Ranges {
    tbs: Range<usize>,
    serial_content: Range<usize>,
    issuer: Range<usize>,
    subject: Range<usize>,
    spki: Range<usize>,
    signature_algorithm: Range<usize>,
    signature_bits: Range<usize>,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject_string())
            .field(
                "issuer",
                &self.parsed.tbs_certificate().issuer().to_string(),
            )
            .field("serial", &hex::encode(self.serial_der()))
            .finish()
    }
}

impl PartialEq for Certificate {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}
impl Eq for Certificate {}

/// A cursor over DER that remembers absolute offsets.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
}

/// One TLV: its tag, the range of the whole TLV and of its content.
struct Tlv {
    tag: u8,
    whole: Range<usize>,
    content: Range<usize>,
}

impl<'a> Cursor<'a> {
    fn new(buf: &'a [u8], range: Range<usize>) -> Self {
        Cursor {
            buf,
            pos: range.start,
            end: range.end,
        }
    }

    fn next(&mut self) -> Option<Tlv> {
        let input = self.buf.get(self.pos..self.end)?;
        let (tag, content, rest) = alg::read_tlv(input)?;
        let start = self.pos;
        let whole_len = input.len() - rest.len();
        let header_len = whole_len - content.len();
        self.pos += whole_len;
        Some(Tlv {
            tag,
            whole: start..start + whole_len,
            content: start + header_len..start + whole_len,
        })
    }

    /// The next element, if it has tag `tag`.
    fn next_tagged(&mut self, tag: u8) -> Option<Tlv> {
        let t = self.next()?;
        (t.tag == tag).then_some(t)
    }
}

fn locate(der: &[u8]) -> Option<Ranges> {
    let mut top = Cursor::new(der, 0..der.len());
    let cert = top.next_tagged(0x30)?;
    if cert.whole.end != der.len() {
        return None;
    }
    let mut c = Cursor::new(der, cert.content);
    let tbs = c.next_tagged(0x30)?;
    let signature_algorithm = c.next_tagged(0x30)?.whole;
    let sig = c.next_tagged(0x03)?;
    let signature_bits = (sig.content.start + 1)..sig.content.end;
    if signature_bits.start > signature_bits.end {
        return None;
    }
    let mut t = Cursor::new(der, tbs.content.clone());
    let mut field = t.next()?;
    if field.tag == 0xa0 {
        field = t.next()?;
    }
    if field.tag != 0x02 {
        return None;
    }
    let serial_content = field.content;
    let _signature = t.next_tagged(0x30)?;
    let issuer = t.next_tagged(0x30)?.whole;
    let _validity = t.next_tagged(0x30)?;
    let subject = t.next_tagged(0x30)?.whole;
    let spki = t.next_tagged(0x30)?.whole;
    Some(Ranges {
        tbs: tbs.whole,
        serial_content,
        issuer,
        subject,
        spki,
        signature_algorithm,
        signature_bits,
    })
}

impl Certificate {
    /// Parses a DER certificate and keeps its bytes.
    pub fn from_der(der: &[u8]) -> Result<Self, CertError> {
        let malformed = |reason: String| CertError::Malformed {
            what: "certificate",
            reason,
        };
        let parsed = x509_cert::Certificate::from_der(der).map_err(|e| malformed(e.to_string()))?;
        let ranges = locate(der).ok_or_else(|| malformed("unexpected structure".into()))?;
        Ok(Certificate {
            der: der.to_vec(),
            parsed,
            ranges,
        })
    }

    /// Parses exactly one PEM `CERTIFICATE` block.
    pub fn from_pem(pem: &str) -> Result<Self, CertError> {
        let mut all = load_pem_chain(pem)?;
        if all.len() != 1 {
            return Err(CertError::Pem(format!(
                "expected one certificate, found {}",
                all.len()
            )));
        }
        all.pop().ok_or(CertError::NoCertificate)
    }

    /// The original DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The parsed structure (for reading; never re-encode it for the wire).
    pub fn parsed(&self) -> &x509_cert::Certificate {
        &self.parsed
    }

    /// PEM of the original DER.
    pub fn to_pem(&self) -> String {
        // Encoding a byte slice as PEM cannot fail except for absurd lengths.
        der::pem::encode_string("CERTIFICATE", LineEnding::LF, &self.der).unwrap_or_default()
    }

    /// The DER TBSCertificate, the bytes the issuer signed.
    pub fn tbs_der(&self) -> &[u8] {
        &self.der[self.ranges.tbs.clone()]
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.der[self.ranges.spki.clone()]
    }

    /// The DER subject Name (SEQUENCE, tag and length included).
    pub fn subject_der(&self) -> &[u8] {
        &self.der[self.ranges.subject.clone()]
    }

    /// The DER issuer Name (SEQUENCE, tag and length included).
    pub fn issuer_der(&self) -> &[u8] {
        &self.der[self.ranges.issuer.clone()]
    }

    /// The serial number's INTEGER content octets, exactly as in the certificate.
    pub fn serial_der(&self) -> &[u8] {
        &self.der[self.ranges.serial_content.clone()]
    }

    /// The outer signatureAlgorithm, DER.
    pub fn signature_algorithm_der(&self) -> &[u8] {
        &self.der[self.ranges.signature_algorithm.clone()]
    }

    /// The outer signature algorithm, if Hanko knows it.
    pub fn signature_algorithm(&self) -> Result<SignatureAlgorithm, CertError> {
        SignatureAlgorithm::from_algorithm_identifier_der(self.signature_algorithm_der())
            .map_err(|e| CertError::Unsupported(e.to_string()))
    }

    /// The signature value (the BIT STRING's bytes).
    pub fn signature_value(&self) -> &[u8] {
        &self.der[self.ranges.signature_bits.clone()]
    }

    /// The key type, read from the SubjectPublicKeyInfo.
    pub fn key_type(&self) -> Option<KeyType> {
        alg::key_type_of_spki(self.spki_der())
    }

    /// notBefore.
    pub fn not_before(&self) -> SystemTime {
        self.parsed
            .tbs_certificate()
            .validity()
            .not_before
            .to_system_time()
    }

    /// notAfter.
    pub fn not_after(&self) -> SystemTime {
        self.parsed
            .tbs_certificate()
            .validity()
            .not_after
            .to_system_time()
    }

    /// The subject in RFC 4514 form, for logs.
    pub fn subject_string(&self) -> String {
        self.parsed.tbs_certificate().subject().to_string()
    }

    /// The subjectKeyIdentifier, if the certificate has exactly one that parses.
    pub fn subject_key_identifier(&self) -> Option<Vec<u8>> {
        match self
            .parsed
            .tbs_certificate()
            .get_extension::<SubjectKeyIdentifier>()
        {
            Ok(Some((_, ski))) => Some(ski.0.as_bytes().to_vec()),
            _ => None,
        }
    }

    /// Whether basicConstraints says cA TRUE.
    pub fn is_ca(&self) -> bool {
        matches!(
            self.parsed.tbs_certificate().get_extension::<BasicConstraints>(),
            Ok(Some((_, bc))) if bc.ca
        )
    }

    /// The keyUsage extension, if present and well formed.
    pub fn key_usage(&self) -> Option<KeyUsage> {
        match self.parsed.tbs_certificate().get_extension::<KeyUsage>() {
            Ok(Some((_, ku))) => Some(ku),
            _ => None,
        }
    }

    /// The hash of the whole original DER (ESSCertIDv2 certHash, fingerprints).
    pub fn fingerprint(&self, h: HashAlgorithm) -> Vec<u8> {
        h.digest(&self.der)
    }

    /// Checks that `issuer`'s key signed this certificate (the signature over the TBS
    /// bytes, with the certificate's own signatureAlgorithm) and that the names chain.
    /// Not a path validation: no validity, policy or revocation checks on the issuer.
    pub fn verify_issued_by(&self, issuer: &Certificate) -> Result<(), CertError> {
        if self.issuer_der() != issuer.subject_der() {
            return Err(CertError::BadSignature(format!(
                "issuer name {:?} is not the subject of {:?}",
                self.parsed.tbs_certificate().issuer().to_string(),
                issuer.subject_string()
            )));
        }
        crate::verify::verify(
            issuer.spki_der(),
            self.signature_algorithm()?,
            self.tbs_der(),
            self.signature_value(),
        )
        .map_err(|e| CertError::BadSignature(e.to_string()))
    }

    /// `(oid, critical, value)` of every extension, in order.
    fn extensions(&self) -> impl Iterator<Item = &x509_cert::ext::Extension> {
        self.parsed
            .tbs_certificate()
            .extensions()
            .map(|e| e.as_slice())
            .unwrap_or(&[])
            .iter()
    }
}

/// Parses every PEM `CERTIFICATE` block in `pem`, in order, keeping each one's DER.
/// Text outside the blocks (comments, `subject=` lines from openssl) is ignored.
pub fn load_pem_chain(pem: &str) -> Result<Vec<Certificate>, CertError> {
    const BEGIN: &str = "-----BEGIN ";
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(BEGIN) {
        let block = &rest[start..];
        let label_end = block[BEGIN.len()..]
            .find("-----")
            .ok_or_else(|| CertError::Pem("unterminated BEGIN line".into()))?;
        let label = &block[BEGIN.len()..BEGIN.len() + label_end];
        let end_marker = format!("-----END {label}-----");
        let end = block
            .find(&end_marker)
            .ok_or_else(|| CertError::Pem(format!("no {end_marker:?}")))?
            + end_marker.len();
        if label != "CERTIFICATE" {
            return Err(CertError::Pem(format!(
                "unexpected PEM block {label:?} in a certificate chain"
            )));
        }
        let (_, der) = der::pem::decode_vec(&block.as_bytes()[..end])
            .map_err(|e| CertError::Pem(e.to_string()))?;
        out.push(Certificate::from_der(&der)?);
        rest = &block[end..];
    }
    if out.is_empty() {
        return Err(CertError::NoCertificate);
    }
    Ok(out)
}

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
        let oid = ext.extn_id.to_string();
        if ext.critical && !KNOWN_CRITICAL.contains(&oid.as_str()) {
            return Err(CertError::UnknownCriticalExtension(oid));
        }
        let value = ext.extn_value.as_bytes();
        let bad = |reason: String| CertError::BadExtension {
            oid: oid.clone(),
            reason,
        };
        let parsed = match ext.extn_id {
            x if x == OID_KEY_USAGE => KeyUsage::from_der(value).map(drop),
            x if x == OID_EXTENDED_KEY_USAGE => ExtendedKeyUsage::from_der(value).map(drop),
            x if x == OID_BASIC_CONSTRAINTS => BasicConstraints::from_der(value).map(drop),
            x if x == OID_PRIVATE_KEY_USAGE_PERIOD => {
                PrivateKeyUsagePeriod::from_der(value).map(drop)
            }
            x if x == OID_SUBJECT_KEY_IDENTIFIER => SubjectKeyIdentifier::from_der(value).map(drop),
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
        .find(|e| e.extn_id == OID_PRIVATE_KEY_USAGE_PERIOD)
    {
        let p = PrivateKeyUsagePeriod::from_der(ext.extn_value.as_bytes()).map_err(|e| {
            CertError::BadExtension {
                oid: OID_PRIVATE_KEY_USAGE_PERIOD.to_string(),
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
        .filter(|e| e.extn_id == OID_EXTENDED_KEY_USAGE)
        .collect();
    let eku = match ekus.as_slice() {
        [] => return Err(CertError::MissingExtendedKeyUsage),
        [one] => *one,
        _ => {
            return Err(CertError::DuplicateExtension(
                OID_EXTENDED_KEY_USAGE.to_string(),
            ));
        }
    };
    if !eku.critical {
        return Err(CertError::ExtendedKeyUsageNotCritical);
    }
    let purposes = ExtendedKeyUsage::from_der(eku.extn_value.as_bytes()).map_err(|e| {
        CertError::BadExtension {
            oid: OID_EXTENDED_KEY_USAGE.to_string(),
            reason: e.to_string(),
        }
    })?;
    if purposes.0 != [OID_KP_TIME_STAMPING] {
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
            (OID_COUNTRY_NAME, "countryName"),
            (OID_ORGANIZATION_NAME, "organizationName"),
            (OID_COMMON_NAME, "commonName"),
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
/// - subject has organizationName and commonName (EN 319 412-3);
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
    check_subject(
        cert,
        &[
            (OID_ORGANIZATION_NAME, "organizationName"),
            (OID_COMMON_NAME, "commonName"),
        ],
    )?;
    check_key_strength(cert)?;
    check_times(cert, now)
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
