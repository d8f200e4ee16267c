//! From request bytes to a [`CheckedRequest`], or a [`Rejection`].
//!
//! Two stages, like ripgrep's lowargs -> hiargs: [`RawTimeStampReq`] is the ASN.1 shape
//! as decoded (anything DER can say), [`CheckedRequest`] is what this TSA is willing to
//! sign (an accepted hash with an imprint of the right length, a resolved policy, a nonce
//! of sane size, no extensions). Code after this module never sees an unchecked request.
//!
//! rasn 0.30's DER decoder accepts some BER (non-minimal lengths and integers, explicit
//! DEFAULT values); a request is therefore accepted only if it re-encodes to exactly the
//! bytes received. That also guarantees the nonce and the imprint are echoed unchanged.
//!
//! Order of checks (the first failure wins): DER shape, version, hash algorithm, imprint
//! length, policy, extensions, nonce size.

use hanko_pki::HashAlgorithm;
use rasn::prelude::*;
use rasn_cms::tsp::MessageImprint;

use crate::config::{PolicyId, TsaConfig};
use crate::rejection::Rejection;

fn default_false() -> bool {
    false
}

/// TimeStampReq (RFC 3161 §2.4.1) as decoded, before any check.
///
/// Own type rather than `rasn_cms::tsp::TimeStampReq` because that one decodes
/// `version` as `u64`: a version such as 2^64 or -1 would fail to decode and come out as
/// badDataFormat instead of badRequest.
#[derive(AsnType, Clone, Debug, Decode, Encode, PartialEq, Eq)]
pub struct RawTimeStampReq {
    /// Must be 1.
    pub version: Integer,
    /// Hash algorithm and hashed message.
    pub message_imprint: MessageImprint,
    /// Requested policy.
    pub req_policy: Option<ObjectIdentifier>,
    /// Nonce to echo.
    pub nonce: Option<Integer>,
    /// Whether the TSA certificate is wanted in the token.
    #[rasn(default = "default_false")]
    pub cert_req: bool,
    /// Request extensions.
    #[rasn(tag(0))]
    pub extensions: Option<rasn_pkix::Extensions>,
}

impl RawTimeStampReq {
    /// Decodes DER, refusing what is not exactly DER.
    pub fn from_der(der: &[u8]) -> Result<Self, Rejection> {
        let req: Self = rasn::der::decode(der).map_err(|_| Rejection::Malformed)?;
        match rasn::der::encode(&req) {
            Ok(again) if again == der => Ok(req),
            _ => Err(Rejection::NotDer),
        }
    }
}

/// A request this TSA will sign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedRequest {
    hash_alg: HashAlgorithm,
    message_imprint: MessageImprint,
    policy: PolicyId,
    nonce: Option<Integer>,
    cert_req: bool,
}

impl CheckedRequest {
    /// Decodes and checks `der` against `config`.
    pub fn parse(der: &[u8], config: &TsaConfig) -> Result<Self, Rejection> {
        Self::check(RawTimeStampReq::from_der(der)?, config)
    }

    /// Checks a decoded request.
    pub fn check(raw: RawTimeStampReq, config: &TsaConfig) -> Result<Self, Rejection> {
        if raw.version != Integer::from(1) {
            return Err(Rejection::UnsupportedVersion);
        }

        let alg_id = &raw.message_imprint.hash_algorithm;
        let hash_alg = HashAlgorithm::from_oid(&alg_id.algorithm.to_string())?;
        // RFC 5754 §2: absent parameters; NULL is what OpenSSL sends. Nothing else.
        match &alg_id.parameters {
            None => {}
            Some(p) if p.as_bytes() == [0x05, 0x00] => {}
            Some(_) => return Err(Rejection::HashParameters),
        }
        if !config.accepted_hashes.contains(&hash_alg) {
            return Err(Rejection::HashNotAccepted(hash_alg));
        }
        let got = raw.message_imprint.hashed_message.len();
        if got != hash_alg.output_len() {
            return Err(Rejection::ImprintLength {
                alg: hash_alg,
                expected: hash_alg.output_len(),
                got,
            });
        }

        let policy = match raw.req_policy {
            None => config.default_policy.clone(),
            Some(oid) => {
                let p = PolicyId::from_oid(oid);
                if !config.accepts_policy(&p) {
                    return Err(Rejection::UnacceptedPolicy { oid: p.to_string() });
                }
                p
            }
        };

        if let Some(exts) = &raw.extensions {
            let Some(first) = exts.first() else {
                return Err(Rejection::EmptyExtensions);
            };
            return Err(Rejection::UnacceptedExtension {
                oid: first.extn_id.to_string(),
                critical: first.critical,
            });
        }

        if let Some(nonce) = &raw.nonce {
            let len = integer_content_len(nonce)
                .map_err(|e| Rejection::Internal(format!("re-encoding the nonce: {e}")))?;
            if len > config.max_nonce_len {
                return Err(Rejection::NonceTooLong {
                    len,
                    max: config.max_nonce_len,
                });
            }
        }

        Ok(Self {
            hash_alg,
            message_imprint: raw.message_imprint,
            policy,
            nonce: raw.nonce,
            cert_req: raw.cert_req,
        })
    }

    /// The imprint's hash algorithm.
    pub fn hash_alg(&self) -> HashAlgorithm {
        self.hash_alg
    }

    /// The hashed message, exactly as received.
    pub fn imprint(&self) -> &[u8] {
        &self.message_imprint.hashed_message
    }

    /// The MessageImprint, to be copied into TSTInfo.
    pub fn message_imprint(&self) -> &MessageImprint {
        &self.message_imprint
    }

    /// The policy the token will carry: the requested one, else the default.
    pub fn policy(&self) -> &PolicyId {
        &self.policy
    }

    /// The nonce to echo.
    pub fn nonce(&self) -> Option<&Integer> {
        self.nonce.as_ref()
    }

    /// Whether the certificates go into the token.
    pub fn cert_req(&self) -> bool {
        self.cert_req
    }
}

/// Content octets of an INTEGER's DER encoding.
fn integer_content_len(i: &Integer) -> Result<usize, rasn::error::EncodeError> {
    let der = rasn::der::encode(i)?;
    // tag, then a short or long length form; the content is the rest.
    let header = match der.get(1) {
        Some(&l) if l < 0x80 => 2,
        Some(&l) => 2 + usize::from(l & 0x7f),
        None => der.len(),
    };
    Ok(der.len().saturating_sub(header))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests

    use super::*;

    #[test]
    fn integer_lengths() {
        assert_eq!(integer_content_len(&Integer::from(0)).unwrap(), 1);
        assert_eq!(integer_content_len(&Integer::from(255)).unwrap(), 2);
        let big: Integer =
            rasn::der::decode(&[&[0x02, 0x81, 0x82][..], &[0x01; 130]].concat()).unwrap();
        assert_eq!(integer_content_len(&big).unwrap(), 130);
    }
}
