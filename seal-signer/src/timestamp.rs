//! The [`TimeStamper`] trait: how a CAdES B-T seal gets its signature time-stamp, without
//! this crate knowing where the time-stamp authority is.
//!
//! The server implements it twice: over its in-process `hanko_tsa::Tsa` (no HTTP hop,
//! the token is logged like every other) and over an external RFC 3161 TSA named in the
//! configuration. This crate depends on neither: a time-stamp comes in through a trait,
//! not a crate (docs/architecture.md).
//!
//! What comes back is not trusted blindly: [`check_token`] takes it apart far enough to
//! see that it is a SignedData over a TSTInfo whose messageImprint is exactly the one
//! asked for. Its signature is not verified here (no verification in this crate); the
//! TSA's own verify-after-sign and the relying party do that.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hanko_pki::oid::dotted;
use hanko_pki::{BoxFuture, HashAlgorithm};

use crate::error::Error;

/// A source of RFC 3161 time-stamp tokens.
///
/// Object-safe (`Arc<dyn TimeStamper>`), like [`hanko_pki::Signer`].
pub trait TimeStamper: Send + Sync + fmt::Debug {
    /// Returns the DER TimeStampToken (a ContentInfo holding SignedData over TSTInfo)
    /// for `imprint`, the `hash` of the data to stamp. For CAdES B-T the data is the
    /// SignerInfo's signature value.
    fn time_stamp<'a>(
        &'a self,
        hash: HashAlgorithm,
        imprint: &'a [u8],
    ) -> BoxFuture<'a, Result<Vec<u8>, TimeStampError>>;

    /// An upper bound on the DER length of the tokens this TSA returns for `hash`,
    /// when it can know it (its chain and key): a PAdES seal reserves the space for
    /// the token before the token exists. `None` (the default): PAdES reserves
    /// [`crate::pades::DEFAULT_TOKEN_RESERVE`].
    fn max_token_len(&self, hash: HashAlgorithm) -> Option<usize> {
        let _ = hash;
        None
    }
}

/// What kind of failure the time-stamper ran into. Each kind has one meaning for callers
/// (see [`Error::fault`](crate::Error::fault)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimeStampErrorKind {
    /// The TSA cannot be reached or is not ready (connection refused, in-process TSA not
    /// ready, clock unsynchronised). Retryable.
    Unavailable,
    /// The TSA is overloaded (HTTP 503, the signing queue full). Retryable.
    Busy,
    /// The TSA did not answer within the deadline. Retryable.
    Timeout,
    /// The TSA answered with a refusal (a PKIStatus other than granted): it will not
    /// stamp this kind of request (hash algorithm, policy), which an operator must fix.
    Rejected,
    /// The TSA answered with something that is not a time-stamp response.
    BadResponse,
}

impl TimeStampErrorKind {
    /// A stable lower-case label, for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unavailable => "unavailable",
            Self::Busy => "busy",
            Self::Timeout => "timeout",
            Self::Rejected => "rejected",
            Self::BadResponse => "bad_response",
        }
    }
}

impl fmt::Display for TimeStampErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unavailable => "time-stamp authority unavailable",
            Self::Busy => "time-stamp authority busy",
            Self::Timeout => "time-stamp authority timed out",
            Self::Rejected => "time-stamp request rejected",
            Self::BadResponse => "bad time-stamp response",
        })
    }
}

/// A failed time-stamp: its [`TimeStampErrorKind`] and a context such as
/// `POST https://tsa.example/: 503` or `PKIStatus rejection, failInfo badAlg`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeStampError {
    kind: TimeStampErrorKind,
    context: String,
}

impl TimeStampError {
    /// A new error of `kind` with a human-readable `context`.
    pub fn new(kind: TimeStampErrorKind, context: impl Into<String>) -> Self {
        Self {
            kind,
            context: context.into(),
        }
    }

    /// The classification.
    pub fn kind(&self) -> TimeStampErrorKind {
        self.kind
    }

    /// The context string.
    pub fn context(&self) -> &str {
        &self.context
    }
}

impl fmt::Display for TimeStampError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.context)
    }
}

impl std::error::Error for TimeStampError {}

/// Checks that `token_der` is one DER-shaped ContentInfo { id-signedData, SignedData }
/// over a TSTInfo whose messageImprint is (`hash`, `imprint`); returns its genTime.
pub fn check_token(
    token_der: &[u8],
    hash: HashAlgorithm,
    imprint: &[u8],
) -> Result<SystemTime, Error> {
    let bad = |what: &str| Error::TimeStampMismatch(what.to_owned());
    let content_info: rasn_cms::ContentInfo =
        rasn::der::decode(token_der).map_err(|_| bad("not a ContentInfo"))?;
    // The token is embedded as received; it must be one complete TLV, nothing after it.
    match rasn::der::encode(&content_info) {
        Ok(again) if again == token_der => {}
        _ => return Err(bad("not exactly one DER ContentInfo")),
    }
    if content_info.content_type.to_string() != dotted::SIGNED_DATA {
        return Err(bad("not a SignedData"));
    }
    let signed_data: rasn_cms::SignedData = rasn::der::decode(content_info.content.as_bytes())
        .map_err(|_| bad("SignedData does not decode"))?;
    let encap = &signed_data.encap_content_info;
    if encap.content_type.to_string() != dotted::TST_INFO {
        return Err(bad("eContentType is not id-ct-TSTInfo"));
    }
    let econtent = encap
        .content
        .as_ref()
        .ok_or_else(|| bad("TSTInfo is absent"))?;
    let tst: rasn_cms::tsp::TstInfo =
        rasn::der::decode(econtent).map_err(|_| bad("TSTInfo does not decode"))?;
    let mi = &tst.message_imprint;
    if mi.hash_algorithm.algorithm.to_string() != hash.oid() {
        return Err(bad(
            "messageImprint hash algorithm differs from the request",
        ));
    }
    if mi.hashed_message.as_ref() != imprint {
        return Err(bad(
            "messageImprint differs from the signature value's hash",
        ));
    }
    let secs = u64::try_from(tst.gen_time.timestamp()).map_err(|_| bad("genTime before 1970"))?;
    Ok(UNIX_EPOCH
        + Duration::from_secs(secs)
        + Duration::from_nanos(u64::from(tst.gen_time.timestamp_subsec_nanos())))
}
