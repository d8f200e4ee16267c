//! Certificates as Hanko holds them, and the checks a TSA or e-seal certificate must pass
//! before Hanko signs anything with its key.
//!
//! A [`Certificate`] keeps the ORIGINAL DER it was read from next to the parsed
//! `x509-cert` structure. Re-encoding a decoded certificate is not always byte-identical
//! (an explicit `critical FALSE` disappears), and every place that
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
//!
//! Layout: this file holds the type and its accessors; `locate` finds the byte ranges
//! of the fields inside the original DER; `profile` holds the start-up checks.

pub(crate) mod locate;
mod profile;

use std::fmt;
use std::time::SystemTime;

use der::Decode;
use der::pem::LineEnding;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, SubjectKeyIdentifier};

use crate::alg::{self, HashAlgorithm, KeyType, SignatureAlgorithm};
use crate::signer::SignError;
use locate::Ranges;

pub(crate) use profile::spki_equal;
pub use profile::{
    MIN_SIGNING_RSA_BITS, check_issuing_ca, check_key_matches, check_seal_certificate,
    check_signing_key_policy, check_tsa_certificate,
};

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
    /// An e-seal certificate's subject has no countryName (C), or one that is not a
    /// two-letter ISO 3166 code: the subject of a seal is a legal person, whose country
    /// EN 319 412-3 §4.2.1 (with EN 319 412-1 §5.1.4) requires.
    #[error(
        "e-seal certificate subject has no valid countryName (C): EN 319 412-3 requires the \
         two-letter country code of the legal person{0}"
    )]
    LegalPersonWithoutCountry(&'static str),
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
    /// A CA certificate's pathLenConstraint allows fewer CA certificates below it than
    /// the chain has (RFC 5280 §4.2.1.9).
    #[error(
        "CA certificate's pathLenConstraint is {path_len} but {below} CA certificate(s) \
         stand below it in the chain"
    )]
    PathLenExceeded {
        /// The constraint.
        path_len: u8,
        /// CA certificates between it and the leaf.
        below: usize,
    },
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

impl Certificate {
    /// Parses a DER certificate and keeps its bytes.
    pub fn from_der(der: &[u8]) -> Result<Self, CertError> {
        let malformed = |reason: String| CertError::Malformed {
            what: "certificate",
            reason,
        };
        let parsed = x509_cert::Certificate::from_der(der).map_err(|e| malformed(e.to_string()))?;
        let ranges = locate::locate(der).ok_or_else(|| malformed("unexpected structure".into()))?;
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
