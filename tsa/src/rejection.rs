//! Why a request got no token, and the one mapping from that reason to the wire.
//!
//! Every refusal the TSA can make is a variant of [`Rejection`]. The PKIStatus of a
//! rejection is always `rejection` (2); [`Rejection::failure_info`] is the single place
//! that decides the PKIFailureInfo bit, the way rustls maps its errors to alerts in one
//! function. The statusString is the [`Display`](std::fmt::Display) text: short, in
//! English, and saying what was wrong; for system failures it names the part that failed
//! but never carries device or database messages (those go to the log only).
//!
//! # Interpretive choices (CONFORMANCE A.2, A.8; recorded once, tested in
//! `tests/rejections.rs`)
//! * Anything that is not a DER TimeStampReq (garbage, truncated, trailing bytes,
//!   indefinite or non-minimal lengths, explicit `certReq FALSE`, an empty extensions
//!   SEQUENCE) is `badDataFormat`: the data submitted has the wrong format.
//! * A version other than 1 is `badRequest`: the request is well formed but asks for a
//!   transaction we do not support. It is checked before anything else in the body.
//! * A message imprint whose length does not match its algorithm is `badDataFormat`,
//!   not `badAlg`: the algorithm is fine, the data is not.
//! * Weak (MD5, SHA-1, ...), unknown, not-configured hash algorithms and hash
//!   AlgorithmIdentifiers with parameters other than absent/NULL are `badAlg`.
//! * A nonce longer than the configured maximum (64 octets by default) is `badRequest`:
//!   the nonce is well-formed, but we do not take part in that transaction.
//! * Every request extension is `unacceptedExtension`, critical or not: we recognise
//!   none, and echoing an unknown non-critical extension is not possible either.
//! * The key's or certificate's end of validity, a failed signature, a failed serial
//!   allocation and a failed log write are all `systemFailure`; the clock is
//!   `timeNotAvailable`.

use std::fmt;

use hanko_pki::alg::HashRejection;
use hanko_pki::tsp::failure_info_name;
use hanko_pki::{HashAlgorithm, SignError};

use crate::clock::ClockProblem;
use crate::serial::SerialError;

/// PKIFailureInfo bits a Hanko TSA ever sends (RFC 3161 §2.4.2; CONFORMANCE A.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureInfo {
    /// Unrecognised or unsupported algorithm identifier.
    BadAlg,
    /// Transaction not permitted or supported.
    BadRequest,
    /// The data submitted has the wrong format.
    BadDataFormat,
    /// The TSA's time source is not available.
    TimeNotAvailable,
    /// The requested TSA policy is not supported.
    UnacceptedPolicy,
    /// The requested extension is not supported.
    UnacceptedExtension,
    /// The additional information requested could not be understood or is not
    /// available. Not produced today; listed because it is in the allowed set.
    AddInfoNotAvailable,
    /// The request cannot be handled due to system failure.
    SystemFailure,
}

impl FailureInfo {
    /// The bit number in the PKIFailureInfo BIT STRING.
    pub const fn bit(self) -> usize {
        match self {
            Self::BadAlg => 0,
            Self::BadRequest => 2,
            Self::BadDataFormat => 5,
            Self::TimeNotAvailable => 14,
            Self::UnacceptedPolicy => 15,
            Self::UnacceptedExtension => 16,
            Self::AddInfoNotAvailable => 17,
            Self::SystemFailure => 25,
        }
    }

    /// The RFC's name, for logs and metrics labels (from `hanko_pki::tsp`, the one table
    /// of names, which the client uses too).
    pub const fn name(self) -> &'static str {
        match failure_info_name(self.bit()) {
            Some(name) => name,
            // Unreachable: every variant's bit is in the table (checked at compile time
            // below).
            None => "unknown",
        }
    }

    /// Every value, in bit order.
    pub const ALL: [FailureInfo; 8] = [
        Self::BadAlg,
        Self::BadRequest,
        Self::BadDataFormat,
        Self::TimeNotAvailable,
        Self::UnacceptedPolicy,
        Self::UnacceptedExtension,
        Self::AddInfoNotAvailable,
        Self::SystemFailure,
    ];

    /// Looks a bit number up; `None` for bits Hanko never sends.
    pub fn from_bit(bit: usize) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.bit() == bit)
    }
}

// Every bit the TSA sends has an RFC name.
const _: () = {
    let mut i = 0;
    while i < FailureInfo::ALL.len() {
        assert!(failure_info_name(FailureInfo::ALL[i].bit()).is_some());
        i += 1;
    }
};

impl fmt::Display for FailureInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why no token was issued. Each variant has exactly one failure code
/// ([`Rejection::failure_info`]); its `Display` text is the statusString.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The body is not a TimeStampReq at all: empty, garbage, truncated, wrong types,
    /// trailing bytes. `badDataFormat`.
    #[error("request is not a DER TimeStampReq")]
    Malformed,
    /// The body decodes as a TimeStampReq but is not DER (it does not re-encode to the
    /// same bytes: non-minimal lengths or integers, explicit DEFAULT values, ...).
    /// `badDataFormat`.
    #[error("request is BER, not DER")]
    NotDer,
    /// `extensions` is present but empty, which its SIZE (1..MAX) forbids.
    /// `badDataFormat`.
    #[error("request extensions field is empty")]
    EmptyExtensions,
    /// TimeStampReq.version is not 1. `badRequest`.
    #[error("unsupported request version (only v1)")]
    UnsupportedVersion,
    /// The imprint's hash algorithm is known and too weak (MD5, SHA-1, ...). `badAlg`.
    #[error("hash algorithm {name} is too weak")]
    WeakHash {
        /// The algorithm's common name.
        name: &'static str,
    },
    /// The imprint's hash algorithm OID is not one we know. `badAlg`.
    #[error("unknown hash algorithm {oid}")]
    UnknownHash {
        /// The OID as received.
        oid: String,
    },
    /// A hash algorithm we know but this TSA is not configured to accept. `badAlg`.
    #[error("hash algorithm {0} is not accepted by this TSA")]
    HashNotAccepted(HashAlgorithm),
    /// The hash AlgorithmIdentifier carries parameters other than absent or NULL.
    /// `badAlg`.
    #[error("unexpected hash algorithm parameters")]
    HashParameters,
    /// The imprint length does not match the algorithm. `badDataFormat`.
    #[error("message imprint is {got} bytes, {alg} needs {expected}")]
    ImprintLength {
        /// The declared algorithm.
        alg: HashAlgorithm,
        /// Its output length.
        expected: usize,
        /// The imprint length received.
        got: usize,
    },
    /// reqPolicy names a policy this TSA does not offer. `unacceptedPolicy`.
    #[error("policy {oid} is not supported")]
    UnacceptedPolicy {
        /// The requested policy OID.
        oid: String,
    },
    /// The request carries an extension; we recognise none. `unacceptedExtension`.
    #[error("extension {oid} is not supported")]
    UnacceptedExtension {
        /// OID of the first extension.
        oid: String,
        /// Whether it was marked critical (it makes no difference).
        critical: bool,
    },
    /// The nonce is longer than the configured maximum. `badRequest`.
    #[error("nonce is {len} octets, at most {max} accepted")]
    NonceTooLong {
        /// Content octets of the nonce INTEGER.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The clock guard refuses: unsynchronised, out of accuracy, or after a jump.
    /// `timeNotAvailable`.
    #[error("time source not available: {0}")]
    ClockUnavailable(ClockProblem),
    /// No time-stamping unit is installed for the policy. `systemFailure`.
    #[error("no signing unit for the policy")]
    NoUnit,
    /// The unit's certificate or key is outside its usage period (not yet valid,
    /// expired, privateKeyUsagePeriod over). `systemFailure`.
    #[error("signing key outside its usage period")]
    UnitExpired,
    /// The signer (HSM) failed. The detail goes to the log, not to the client.
    /// `systemFailure`.
    #[error("{}", signer_failed_text(.0))]
    SignerFailed(SignError),
    /// Serial number allocation failed. `systemFailure`.
    #[error("serial number allocation failed")]
    SerialFailed(SerialError),
    /// The caller (the server) could not make the token durable in the issuance log and
    /// withdraws it. `systemFailure`.
    #[error("issuance log unavailable")]
    LogFailed,
    /// An encoder refused a value we built: a bug in Hanko. `systemFailure`.
    #[error("internal error")]
    Internal(String),
}

impl Rejection {
    /// The PKIFailureInfo of this rejection. The one place this mapping lives.
    pub fn failure_info(&self) -> FailureInfo {
        match self {
            Self::Malformed | Self::NotDer | Self::EmptyExtensions => FailureInfo::BadDataFormat,
            Self::ImprintLength { .. } => FailureInfo::BadDataFormat,
            Self::UnsupportedVersion | Self::NonceTooLong { .. } => FailureInfo::BadRequest,
            Self::WeakHash { .. }
            | Self::UnknownHash { .. }
            | Self::HashNotAccepted(_)
            | Self::HashParameters => FailureInfo::BadAlg,
            Self::UnacceptedPolicy { .. } => FailureInfo::UnacceptedPolicy,
            Self::UnacceptedExtension { .. } => FailureInfo::UnacceptedExtension,
            Self::ClockUnavailable(_) => FailureInfo::TimeNotAvailable,
            Self::NoUnit
            | Self::UnitExpired
            | Self::SignerFailed(_)
            | Self::SerialFailed(_)
            | Self::LogFailed
            | Self::Internal(_) => FailureInfo::SystemFailure,
        }
    }

    /// The statusString sent to the client.
    pub fn status_string(&self) -> String {
        self.to_string()
    }
}

/// The statusString of a failed signature: no detail of the device, but a suspended key
/// (the operator's emergency stop) is said as such, so a client knows that retrying
/// will not help until it is lifted.
fn signer_failed_text(e: &SignError) -> &'static str {
    if e.kind() == hanko_pki::SignErrorKind::Suspended {
        "signing key suspended by the operator"
    } else {
        "signing failed"
    }
}

impl From<HashRejection> for Rejection {
    fn from(r: HashRejection) -> Self {
        match r {
            HashRejection::Weak { name, .. } => Self::WeakHash { name },
            HashRejection::Unknown(oid) => Self::UnknownHash { oid },
            // HashRejection is non_exhaustive: a future kind is still a refused algorithm.
            _ => Self::UnknownHash {
                oid: String::from("?"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_rfc3161() {
        let bits: Vec<usize> = FailureInfo::ALL.iter().map(|f| f.bit()).collect();
        assert_eq!(bits, [0, 2, 5, 14, 15, 16, 17, 25]);
        for f in FailureInfo::ALL {
            assert_eq!(FailureInfo::from_bit(f.bit()), Some(f));
        }
        assert_eq!(FailureInfo::from_bit(1), None);
        let names: Vec<&str> = FailureInfo::ALL.iter().map(|f| f.name()).collect();
        assert_eq!(
            names,
            [
                "badAlg",
                "badRequest",
                "badDataFormat",
                "timeNotAvailable",
                "unacceptedPolicy",
                "unacceptedExtension",
                "addInfoNotAvailable",
                "systemFailure"
            ]
        );
    }

    #[test]
    fn system_failures_do_not_leak_details() {
        let r = Rejection::SignerFailed(SignError::new(
            hanko_pki::SignErrorKind::DeviceLost,
            "C_Sign: CKR_DEVICE_REMOVED (token \"secret-label\")",
        ));
        assert_eq!(r.failure_info(), FailureInfo::SystemFailure);
        assert!(!r.status_string().contains("secret-label"));
        let r = Rejection::Internal("rasn said no".into());
        assert_eq!(r.status_string(), "internal error");
    }
}
