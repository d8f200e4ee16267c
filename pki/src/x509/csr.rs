//! PKCS#10 certification requests (RFC 2986): making one for a key behind a [`Signer`]
//! (the proof of possession is that key's signature), and reading one with the exact
//! bytes its signature covers.

use der::{Decode, Encode};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::name::Name;
use x509_cert::request::{CertReq, CertReqInfo};

use super::assemble_signed;
use crate::alg::SignatureAlgorithm;
use crate::cert::CertError;
use crate::der::{Cursor, Tlv, tag};
use crate::signer::Signer;

/// Makes a PKCS#10 certification request for `subject` over the signer's key, signed by
/// it (the proof of possession). No attributes: the CA decides the extensions.
pub async fn make_csr(subject: &Name, signer: &dyn Signer) -> Result<Vec<u8>, CertError> {
    let public_key = SubjectPublicKeyInfoOwned::from_der(signer.public_key_der()).map_err(|e| {
        CertError::Malformed {
            what: "subject public key info",
            reason: e.to_string(),
        }
    })?;
    let info = CertReqInfo {
        version: Default::default(),
        subject: subject.clone(),
        public_key,
        attributes: Default::default(),
    };
    let info_der = info
        .to_der()
        .map_err(|e| CertError::Encode(e.to_string()))?;
    let signature = signer.sign(&info_der).await?;
    assemble_signed(&info_der, signer.algorithm(), &signature)
}

/// A parsed PKCS#10 request, with the exact bytes its signature covers.
#[derive(Clone, Debug)]
pub struct CertRequest {
    parsed: CertReq,
    info_der: Vec<u8>,
    spki_der: Vec<u8>,
    algorithm: SignatureAlgorithm,
    signature: Vec<u8>,
}

impl CertRequest {
    /// Parses a DER CertificationRequest. The signature is NOT checked here: call
    /// [`CertRequest::verify`] before trusting it.
    pub fn from_der(der: &[u8]) -> Result<Self, CertError> {
        let malformed = |reason: String| CertError::Malformed {
            what: "certificate request",
            reason,
        };
        let parsed = CertReq::from_der(der).map_err(|e| malformed(e.to_string()))?;
        // The signed bytes: the first element of the outer SEQUENCE, as received; then
        // the signature algorithm, also as received.
        let outer = Cursor::new(der, 0..der.len())
            .next_tagged(tag::SEQUENCE)
            .filter(|t| t.whole.end == der.len())
            .ok_or_else(|| malformed("not a single SEQUENCE".into()))?;
        let mut fields = Cursor::new(der, outer.content);
        let (info, alg) = (
            fields.next_tagged(tag::SEQUENCE),
            fields.next_tagged(tag::SEQUENCE),
        );
        let slice = |t: Option<Tlv>, what: &str| {
            t.and_then(|t| der.get(t.whole))
                .ok_or_else(|| malformed(format!("no {what}")))
        };
        let info_der = slice(info, "request info")?.to_vec();
        let alg_der = slice(alg, "signature algorithm")?;
        let algorithm = SignatureAlgorithm::from_algorithm_identifier_der(alg_der)
            .map_err(|e| CertError::Unsupported(e.to_string()))?;
        let spki_der = parsed
            .info
            .public_key
            .to_der()
            .map_err(|e| CertError::Encode(e.to_string()))?;
        let signature = parsed
            .signature
            .as_bytes()
            .ok_or_else(|| malformed("signature has unused bits".into()))?
            .to_vec();
        Ok(CertRequest {
            parsed,
            info_der,
            spki_der,
            algorithm,
            signature,
        })
    }

    /// Parses a PEM `CERTIFICATE REQUEST`.
    pub fn from_pem(pem: &str) -> Result<Self, CertError> {
        let (label, der) = der::pem::decode_vec(pem.trim().as_bytes())
            .map_err(|e| CertError::Pem(e.to_string()))?;
        if label != "CERTIFICATE REQUEST" {
            return Err(CertError::Pem(format!(
                "PEM label is {label:?}, expected \"CERTIFICATE REQUEST\""
            )));
        }
        Self::from_der(&der)
    }

    /// Checks the proof of possession: the request is signed by the key it names.
    pub fn verify(&self) -> Result<(), CertError> {
        crate::verify::verify(
            &self.spki_der,
            self.algorithm,
            &self.info_der,
            &self.signature,
        )
        .map_err(|e| CertError::BadSignature(format!("certificate request: {e}")))
    }

    /// The requested subject.
    pub fn subject(&self) -> &Name {
        &self.parsed.info.subject
    }

    /// The DER SubjectPublicKeyInfo of the key the request is for.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The DER CertificationRequestInfo: the bytes the signature covers.
    pub fn info_der(&self) -> &[u8] {
        &self.info_der
    }

    /// The signature algorithm.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    /// The signature value.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }
}
