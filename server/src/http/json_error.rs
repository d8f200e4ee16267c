//! JSON errors of the API routes that speak JSON (`/api/v1/seal/...`, `/csc/v1/...`,
//! `/csc/v2/...`):
//! `{"error": "...", "error_description": "..."}`, the format of the Cloud Signature
//! Consortium API (itself OAuth 2.0's, RFC 6749 §5.2), with its vocabulary.
//!
//! `ApiError::parts` is the one table from what went wrong to status, error code and
//! description; it has no `_` arm, so a new kind of failure must be placed in it. The
//! descriptions are written for the caller and say what to change; they never carry an
//! internal error's text (no key labels beyond the credential the caller named, no
//! PKCS#11 codes, no SQL), which goes to the server log instead.
//!
//! | status | error | when |
//! |---|---|---|
//! | 400 | `invalid_request` | bad query parameter, bad body, a seal request `hanko_seal` calls the caller's fault, a CSC SAD missing / expired / reused / not this client's, credential's or hashes', a CSC time-stamp request the TSA refuses (hash algorithm not accepted, ...) |
//! | 401 | `invalid_request` / `invalid_token` | no API key / an API key no entry matches (with `WWW-Authenticate`) |
//! | 403 | `access_denied` | the key lacks the route's scope, or may not use the credential |
//! | 404 | `invalid_request` | no credential of that name; no key of that label (admin API); archive submissions while anchoring is off |
//! | 408, 429, 503 | `invalid_request`, `too_many_requests`, `temporarily_unavailable` | admission control (`Refusal`), with `Retry-After` where it helps |
//! | 413 | `invalid_request` | body over its limit (`http.max_seal_body_bytes`), more archive hashes than `archive.max_hashes_per_request` |
//! | 409 | `invalid_request` | an evidence record not due for renewal (`force` renews it anyway) |
//! | 415 | `invalid_request` | an archive submission neither JSON nor `application/octet-stream` |
//! | 422 | `invalid_request` | an archive hash algorithm the trees do not use yet (SHA-384, SHA-512) |
//! | 500 | `server_error` | a system fault an operator must fix (for a time-stamp: no unit, unit expired, a bug) |
//! | 503 | `temporarily_unavailable` | a retryable system fault (seal or time-stamp), the log write failed (also an archive submission's), the clock is not synchronised (`Retry-After`); the seal credential's key is suspended (`hanko key suspend`; no `Retry-After`: waiting does not help) |

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hanko_seal::Fault;

use hanko_seal::TimeStampErrorKind;
use hanko_tsa::{FailureInfo, Rejection};

use super::Refusal;
use crate::auth::AuthError;
use crate::issuance::stamp_error_kind;
use crate::seal::SealFailure;

/// `Retry-After` of a retryable system fault, in seconds.
const RETRY_AFTER_SECS: u64 = 1;

/// Everything a JSON route answers with besides success.
#[derive(Debug)]
pub enum ApiError {
    /// Authentication or the scope failed.
    Auth(AuthError),
    /// No credential of this name is configured.
    UnknownCredential(String),
    /// No key of this label is configured on this node (the admin API).
    UnknownKey(String),
    /// The credential exists but the client may not use it.
    ForeignCredential(String),
    /// A query parameter or the body is wrong; the text says which and why.
    BadRequest(String),
    /// A CSC Signature Activation Data that is missing, unknown, expired, already used,
    /// another client's or credential's, or not for these hashes; the text says which.
    InvalidSad(&'static str),
    /// The body is larger than `limit` bytes.
    BodyTooLarge {
        /// The route's limit.
        limit: usize,
    },
    /// Admission control refused the request before any work.
    Refused(Refusal),
    /// The seal was not made or not logged.
    Seal(SealFailure),
    /// The server's own TSA gave no token for a CSC `signatures/timestamp`.
    TimeStamp(Rejection),
    /// A well-formed request this server does not serve (an archive hash algorithm the
    /// trees do not use yet); the text says why.
    Unprocessable(String),
    /// The body's `Content-Type` is not one the route reads; the text names those it does.
    UnsupportedMediaType(String),
    /// The request asks for more than the route takes at once (e.g. more hashes than
    /// `archive.max_hashes_per_request`); the text says the limit.
    TooMuch(String),
    /// The route needs a part of the server that is not enabled (e.g. archive
    /// submissions without anchoring); the text says which.
    NotEnabled(String),
    /// The request conflicts with the state of what it names (an evidence record not
    /// due for renewal); the text says why and what would do.
    Conflict(String),
    /// The issuance log could not record or read what the request needs: `retryable`
    /// when trying later can help (503 with `Retry-After`), else 500.
    LogUnavailable {
        /// Trying later can help.
        retryable: bool,
    },
}

impl ApiError {
    /// The one table: status, CSC/OAuth error code, description.
    fn parts(&self) -> (StatusCode, &'static str, String) {
        match self {
            Self::Auth(AuthError::Missing) => (
                StatusCode::UNAUTHORIZED,
                "invalid_request",
                "authentication required: send Authorization: Bearer <api key>".to_owned(),
            ),
            Self::Auth(AuthError::Invalid) => (
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "invalid API key or client certificate".to_owned(),
            ),
            Self::Auth(AuthError::InsufficientScope(scope)) => (
                StatusCode::FORBIDDEN,
                "access_denied",
                format!("this client lacks the scope {scope}"),
            ),
            Self::UnknownCredential(name) => (
                StatusCode::NOT_FOUND,
                "invalid_request",
                format!("no seal credential named {name:?}"),
            ),
            Self::UnknownKey(label) => (
                StatusCode::NOT_FOUND,
                "invalid_request",
                format!("no key labelled {label:?} on this node"),
            ),
            Self::Seal(SealFailure::Seal(e)) if is_suspension(e) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the seal credential's key is suspended by the operator (emergency stop): \
                 no seal is made with it until the suspension is lifted; retrying before \
                 then will not help"
                    .to_owned(),
            ),
            Self::ForeignCredential(name) => (
                StatusCode::FORBIDDEN,
                "access_denied",
                format!("this API key may not use the seal credential {name:?}"),
            ),
            Self::BadRequest(why) => (StatusCode::BAD_REQUEST, "invalid_request", why.clone()),
            Self::InvalidSad(why) => (
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("invalid SAD: {why}"),
            ),
            Self::BodyTooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request",
                format!("the document is larger than {limit} bytes; seal a digest of it instead"),
            ),
            Self::Refused(r) => {
                let code = match r {
                    Refusal::RateLimited { .. } => "too_many_requests",
                    Refusal::Overloaded | Refusal::Connections | Refusal::ConnectionsPerSource => {
                        "temporarily_unavailable"
                    }
                    Refusal::BodyTimeout | Refusal::HeaderTimeout | Refusal::HandshakeTimeout => {
                        "invalid_request"
                    }
                };
                (r.status(), code, r.body().trim_end().to_owned())
            }
            Self::Seal(SealFailure::Seal(e)) => match e.fault() {
                Fault::Caller => (StatusCode::BAD_REQUEST, "invalid_request", e.to_string()),
                Fault::Retryable => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "the seal could not be made now; retry later".to_owned(),
                ),
                // `Fault` is non_exhaustive (another crate): what it may add is treated
                // as the fault that needs an operator.
                _ => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "the seal could not be made; the operator has been told".to_owned(),
                ),
            },
            Self::Seal(SealFailure::ClockUnavailable(_)) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the server's clock is not synchronised; no seal is made until it is; \
                 retry later"
                    .to_owned(),
            ),
            Self::Seal(SealFailure::LogFailed(_)) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the seal could not be recorded in the issuance log and was not released; \
                 retry later"
                    .to_owned(),
            ),
            Self::TimeStamp(r) if time_stamp_is_callers(r) => (
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("time-stamp refused: {r}"),
            ),
            Self::TimeStamp(Rejection::LogFailed) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the time-stamp could not be recorded in the issuance log and was not \
                 released; retry later"
                    .to_owned(),
            ),
            Self::TimeStamp(r) if time_stamp_is_retryable(r) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the time-stamp could not be made now; retry later".to_owned(),
            ),
            Self::TimeStamp(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "the time-stamp could not be made; the operator has been told".to_owned(),
            ),
            Self::Unprocessable(why) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                why.clone(),
            ),
            Self::UnsupportedMediaType(why) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid_request",
                why.clone(),
            ),
            Self::TooMuch(why) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request",
                why.clone(),
            ),
            Self::NotEnabled(why) => (StatusCode::NOT_FOUND, "invalid_request", why.clone()),
            Self::Conflict(why) => (StatusCode::CONFLICT, "invalid_request", why.clone()),
            Self::LogUnavailable { retryable: true } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the issuance log cannot record this now; retry later".to_owned(),
            ),
            Self::LogUnavailable { retryable: false } => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "the issuance log failed; the operator has been told".to_owned(),
            ),
        }
    }

    /// `Retry-After` seconds, where retrying can help.
    fn retry_after(&self) -> Option<u64> {
        match self {
            Self::Refused(r) => r.retry_after_secs(),
            // No Retry-After: only an operator's resume ends a suspension.
            Self::Seal(SealFailure::Seal(e)) if is_suspension(e) => None,
            Self::Seal(SealFailure::Seal(e)) if e.is_retryable() => Some(RETRY_AFTER_SECS),
            Self::Seal(SealFailure::LogFailed(_) | SealFailure::ClockUnavailable(_)) => {
                Some(RETRY_AFTER_SECS)
            }
            Self::TimeStamp(r) if time_stamp_is_retryable(r) => Some(RETRY_AFTER_SECS),
            Self::LogUnavailable { retryable: true } => Some(RETRY_AFTER_SECS),
            Self::Unprocessable(_)
            | Self::UnsupportedMediaType(_)
            | Self::TooMuch(_)
            | Self::NotEnabled(_)
            | Self::Conflict(_)
            | Self::LogUnavailable { retryable: false } => None,
            Self::Auth(_)
            | Self::TimeStamp(_)
            | Self::UnknownCredential(_)
            | Self::UnknownKey(_)
            | Self::ForeignCredential(_)
            | Self::BadRequest(_)
            | Self::InvalidSad(_)
            | Self::BodyTooLarge { .. }
            | Self::Seal(SealFailure::Seal(_)) => None,
        }
    }
}

/// Whether a seal failed because its key is suspended (the emergency stop, see
/// `suspension.rs`): 503 naming it, without `Retry-After`.
fn is_suspension(e: &hanko_seal::Error) -> bool {
    matches!(e, hanko_seal::Error::Signer(s) if s.kind() == hanko_pki::SignErrorKind::Suspended)
}

/// Whether the TSA refused the caller's request itself (its hash algorithm, its
/// length, ...), not for a fault of the server's.
fn time_stamp_is_callers(r: &Rejection) -> bool {
    !matches!(
        r.failure_info(),
        FailureInfo::SystemFailure | FailureInfo::TimeNotAvailable
    )
}

/// Whether a failure of the TSA may pass by itself (clock, HSM busy or lost, serials,
/// the log): the classification B-T seals use.
fn time_stamp_is_retryable(r: &Rejection) -> bool {
    !time_stamp_is_callers(r) && stamp_error_kind(r) != TimeStampErrorKind::Rejected
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        Self::Auth(e)
    }
}

impl From<SealFailure> for ApiError {
    fn from(e: SealFailure) -> Self {
        Self::Seal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Refused(r) = &self {
            r.count();
        }
        let (status, error, description) = self.parts();
        let body = serde_json::json!({ "error": error, "error_description": description });
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(secs) = self.retry_after() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        // RFC 6750 §3: the bearer challenge, with the error code once a key was sent.
        let challenge = match &self {
            Self::Auth(AuthError::Missing) => Some("Bearer realm=\"hanko\""),
            Self::Auth(AuthError::Invalid) => {
                Some("Bearer realm=\"hanko\", error=\"invalid_token\"")
            }
            _ => None,
        };
        if let Some(c) = challenge {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(c));
        }
        if let Self::Refused(r) = &self
            && r.closes()
        {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn statuses_and_codes() {
        let p = |e: ApiError| {
            let (s, c, _) = e.parts();
            (s.as_u16(), c)
        };
        assert_eq!(p(AuthError::Missing.into()), (401, "invalid_request"));
        assert_eq!(p(AuthError::Invalid.into()), (401, "invalid_token"));
        assert_eq!(
            p(AuthError::InsufficientScope("seal").into()),
            (403, "access_denied")
        );
        assert_eq!(
            p(ApiError::UnknownCredential("x".into())),
            (404, "invalid_request")
        );
        assert_eq!(
            p(ApiError::ForeignCredential("x".into())),
            (403, "access_denied")
        );
        assert_eq!(
            p(ApiError::BodyTooLarge { limit: 1 }),
            (413, "invalid_request")
        );
        let caller = hanko_seal::Error::UnknownLevel("B-X".into());
        assert_eq!(p(ApiError::Seal(caller.into())), (400, "invalid_request"));
        let retry = hanko_seal::Error::Signer(hanko_pki::SignError::new(
            hanko_pki::SignErrorKind::Busy,
            "C_Sign: CKR_DEVICE_ERROR (slot 3)",
        ));
        let e = ApiError::Seal(retry.into());
        assert_eq!(e.retry_after(), Some(1));
        let (status, code, description) = e.parts();
        assert_eq!((status.as_u16(), code), (503, "temporarily_unavailable"));
        assert!(!description.contains("CKR_"), "{description}");
        let clock = ApiError::Seal(SealFailure::ClockUnavailable(
            hanko_tsa::ClockProblem::Unsynchronised,
        ));
        assert_eq!(clock.retry_after(), Some(1));
        let (status, code, description) = clock.parts();
        assert_eq!((status.as_u16(), code), (503, "temporarily_unavailable"));
        assert!(
            description.contains("clock is not synchronised"),
            "{description}"
        );
        let system = hanko_seal::Error::NoTimeStamper;
        assert_eq!(p(ApiError::Seal(system.into())), (500, "server_error"));
        let weak = Rejection::HashNotAccepted(hanko_pki::HashAlgorithm::Sha512);
        assert_eq!(p(ApiError::TimeStamp(weak)), (400, "invalid_request"));
        for retryable in [
            Rejection::LogFailed,
            Rejection::ClockUnavailable(hanko_tsa::ClockProblem::Unsynchronised),
        ] {
            let e = ApiError::TimeStamp(retryable);
            assert_eq!(e.retry_after(), Some(1));
            assert_eq!(p(e), (503, "temporarily_unavailable"));
        }
        let e = ApiError::TimeStamp(Rejection::NoUnit);
        assert_eq!(e.retry_after(), None);
        assert_eq!(p(e), (500, "server_error"));
        // Archive submissions (issue #16).
        assert_eq!(
            p(ApiError::Unprocessable("x".into())),
            (422, "invalid_request")
        );
        assert_eq!(
            p(ApiError::UnsupportedMediaType("x".into())),
            (415, "invalid_request")
        );
        assert_eq!(p(ApiError::TooMuch("x".into())), (413, "invalid_request"));
        assert_eq!(
            p(ApiError::NotEnabled("x".into())),
            (404, "invalid_request")
        );
        // Evidence renewal (issue #16).
        assert_eq!(p(ApiError::Conflict("x".into())), (409, "invalid_request"));
        let e = ApiError::LogUnavailable { retryable: true };
        assert_eq!(e.retry_after(), Some(1));
        assert_eq!(p(e), (503, "temporarily_unavailable"));
        let e = ApiError::LogUnavailable { retryable: false };
        assert_eq!(e.retry_after(), None);
        assert_eq!(p(e), (500, "server_error"));
        // The emergency stop (issue #18): 503 naming it, no Retry-After.
        let suspended = hanko_seal::Error::Signer(hanko_pki::SignError::new(
            hanko_pki::SignErrorKind::Suspended,
            "key \"seal-p256\": suspended by cli:ops: compromise suspected",
        ));
        let e = ApiError::Seal(suspended.into());
        assert_eq!(e.retry_after(), None);
        let (status, code, description) = e.parts();
        assert_eq!((status.as_u16(), code), (503, "temporarily_unavailable"));
        assert!(description.contains("suspended"), "{description}");
        assert!(!description.contains("compromise"), "{description}");
        assert_eq!(
            p(ApiError::UnknownKey("x".into())),
            (404, "invalid_request")
        );
    }
}
