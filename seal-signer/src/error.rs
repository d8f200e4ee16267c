//! The one error type of the crate, and the one table that sorts every error into the
//! caller's fault, a system fault worth retrying, or a system fault an operator must fix.
//!
//! The server maps [`Fault`] to its answer (a 4xx with the CSC error, a 503 with
//! `Retry-After`, a 500) in one place; nothing else in the server looks inside
//! [`Error`] to decide that. Messages never carry document bytes, PINs or key material.

use std::time::SystemTime;

use hanko_pki::alg::HashRejection;
use hanko_pki::cert::CertError;
use hanko_pki::cms::CmsError;
use hanko_pki::{HashAlgorithm, SignError, SignErrorKind};

use crate::pades::PdfError;
use crate::request::Level;
use crate::timestamp::{TimeStampError, TimeStampErrorKind};

/// Everything that can go wrong between a raw request and a finished seal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The level name is not `B-B` or `B-T` (CAdES and PAdES seals alike).
    #[error("unknown seal level {0:?} (B-B or B-T)")]
    UnknownLevel(String),
    /// The commitment type name or OID is not one of RFC 5126's six.
    #[error("unknown commitment type {0:?}")]
    UnknownCommitmentType(String),
    /// The caller's digest was computed with a hash algorithm Hanko does not accept
    /// (MD5, SHA-1, SHA-224, an unknown OID).
    #[error("digest algorithm refused: {0}")]
    UnsupportedHash(HashRejection),
    /// The caller's digest does not have the length of its hash algorithm.
    #[error("digest is {got} bytes, {alg} gives {expected}")]
    DigestLength {
        /// The hash algorithm the caller named.
        alg: HashAlgorithm,
        /// Its output length.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// The caller's digest algorithm is not the one the credential's key signs with.
    /// CMS hashes the content and the signed attributes with one algorithm, so the
    /// digest must be made with the credential's.
    #[error("digest made with {given}, but this credential signs with {required}")]
    DigestAlgorithmMismatch {
        /// The algorithm of the caller's digest.
        given: HashAlgorithm,
        /// The algorithm the credential needs.
        required: HashAlgorithm,
    },
    /// Enveloping (attached) packaging was asked for a digest: an enveloping seal
    /// carries the document, which the caller did not send.
    #[error("an enveloping seal needs the document, not its digest")]
    EnvelopingNeedsDocument,
    /// The mime type is not `type/subtype` of RFC 6838 restricted names, optionally
    /// followed by `;` parameters of printable ASCII, at most 255 bytes.
    #[error("bad mime type {0:?}")]
    BadMimeType(String),
    /// The content description is empty, longer than 255 bytes or contains control
    /// characters.
    #[error("bad content description: {0}")]
    BadContentDescription(&'static str),
    /// Both a mime type and a content description were given; a seal carries one of
    /// the mime-type and content-hints attributes.
    #[error("give either a mime type or a content description, not both")]
    MimeTypeAndDescription,
    /// A credential was given no certificate.
    #[error("seal credential {0:?} has an empty certificate chain")]
    EmptyChain(String),
    /// The credential's certificate fails the e-seal profile check or does not certify
    /// its key.
    #[error("seal certificate of credential {credential:?} refused: {source}")]
    Certificate {
        /// The credential.
        credential: String,
        /// What is wrong.
        source: CertError,
    },
    /// The seal certificate is not valid at the signing time (expired or not yet
    /// valid), or had expired by the signature time-stamp's genTime: the credential
    /// needs a new certificate.
    #[error("seal certificate is not valid at {at:?}")]
    CertificateNotValid {
        /// The signing time or the time-stamp's genTime.
        at: SystemTime,
    },
    /// The credential's metadata does not allow the level asked for.
    #[error("credential {credential:?} does not allow level {level} (allowed: {allowed})")]
    LevelNotAllowed {
        /// The credential.
        credential: String,
        /// The level asked for.
        level: Level,
        /// The levels it allows, comma-separated.
        allowed: String,
    },
    /// The credential's metadata does not allow this digest-signing algorithm (or it
    /// does not fit the key).
    #[error("credential {credential:?} does not allow signature algorithm {algorithm}")]
    AlgorithmNotAllowed {
        /// The credential.
        credential: String,
        /// The algorithm asked for.
        algorithm: String,
    },
    /// The credential's metadata does not fit its key (a configuration error).
    #[error("seal credential {credential:?}: {why}")]
    Metadata {
        /// The credential.
        credential: String,
        /// What is wrong.
        why: String,
    },
    /// A B-T seal was asked of a sealer that was given no time-stamper.
    #[error("B-T requested but no time-stamp authority is configured")]
    NoTimeStamper,
    /// The key failed to sign; the [`SignError`]'s kind says whether it may work later.
    #[error("signing failed: {0}")]
    Signer(SignError),
    /// The time-stamp authority gave no token; its kind says whether it may work later.
    #[error("time-stamping failed: {0}")]
    TimeStamp(TimeStampError),
    /// The time-stamp authority returned a token that is not a time-stamp token for the
    /// signature value it was asked to stamp. It is never embedded.
    #[error("time-stamp token refused: {0}")]
    TimeStampMismatch(String),
    /// CMS assembly failed on input this crate checked: a bug.
    #[error("CMS assembly failed (bug): {0}")]
    Cms(CmsError),
    /// A PDF could not be sealed (PAdES); its [`PdfError::fault`] says whose fault.
    #[error(transparent)]
    Pdf(#[from] PdfError),
}

/// Whose fault an [`Error`] is, and whether trying again can help.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Fault {
    /// The request is wrong; the same request will always fail (HTTP 400, CSC
    /// `invalid_request`).
    Caller,
    /// A system part (key, token, time-stamp authority) failed; the same request may
    /// succeed later (HTTP 503 with `Retry-After`).
    Retryable,
    /// A system fault that does not go away by itself: configuration or a bug (HTTP
    /// 500; an operator must look).
    System,
}

impl Error {
    /// The one mapping from error to [`Fault`]. No `_` arm: a new variant must be
    /// sorted here.
    pub fn fault(&self) -> Fault {
        match self {
            Self::UnknownLevel(_)
            | Self::UnknownCommitmentType(_)
            | Self::UnsupportedHash(_)
            | Self::DigestLength { .. }
            | Self::DigestAlgorithmMismatch { .. }
            | Self::EnvelopingNeedsDocument
            | Self::BadMimeType(_)
            | Self::BadContentDescription(_)
            | Self::MimeTypeAndDescription
            | Self::LevelNotAllowed { .. }
            | Self::AlgorithmNotAllowed { .. } => Fault::Caller,
            // The signer's BadInput means the bytes this crate handed it were wrong.
            Self::Signer(e) if e.kind() == SignErrorKind::BadInput => Fault::System,
            // An operator suspended the key: waiting does not help, lifting it does.
            Self::Signer(e) if e.kind() == SignErrorKind::Suspended => Fault::System,
            // Every other signer kind is retryable by pki's own classification
            // (KeyUnavailable once an operator acts, the rest at once).
            Self::Signer(_) => Fault::Retryable,
            Self::CertificateNotValid { .. } => Fault::Retryable,
            Self::TimeStamp(e) => match e.kind() {
                TimeStampErrorKind::Unavailable
                | TimeStampErrorKind::Busy
                | TimeStampErrorKind::Timeout => Fault::Retryable,
                TimeStampErrorKind::Rejected | TimeStampErrorKind::BadResponse => Fault::System,
            },
            Self::EmptyChain(_)
            | Self::Certificate { .. }
            | Self::Metadata { .. }
            | Self::NoTimeStamper
            | Self::TimeStampMismatch(_)
            | Self::Cms(_) => Fault::System,
            Self::Pdf(e) => e.fault(),
        }
    }

    /// Whether the same request may succeed later ([`Fault::Retryable`]).
    pub fn is_retryable(&self) -> bool {
        self.fault() == Fault::Retryable
    }

    /// A stable lower-case label, for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::UnknownLevel(_) => "unknown_level",
            Self::UnknownCommitmentType(_) => "unknown_commitment_type",
            Self::UnsupportedHash(_) => "unsupported_hash",
            Self::DigestLength { .. } => "digest_length",
            Self::DigestAlgorithmMismatch { .. } => "digest_algorithm_mismatch",
            Self::EnvelopingNeedsDocument => "enveloping_needs_document",
            Self::BadMimeType(_) => "bad_mime_type",
            Self::BadContentDescription(_) => "bad_content_description",
            Self::MimeTypeAndDescription => "mime_type_and_description",
            Self::LevelNotAllowed { .. } => "level_not_allowed",
            Self::AlgorithmNotAllowed { .. } => "algorithm_not_allowed",
            Self::Metadata { .. } => "metadata",
            Self::EmptyChain(_) => "empty_chain",
            Self::Certificate { .. } => "certificate",
            Self::CertificateNotValid { .. } => "certificate_not_valid",
            Self::NoTimeStamper => "no_time_stamper",
            Self::Signer(_) => "signer",
            Self::TimeStamp(_) => "time_stamp",
            Self::TimeStampMismatch(_) => "time_stamp_mismatch",
            Self::Cms(_) => "cms",
            Self::Pdf(e) => e.label(),
        }
    }
}

impl From<CmsError> for Error {
    fn from(e: CmsError) -> Self {
        match e {
            CmsError::Sign(s) => Self::Signer(s),
            other => Self::Cms(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_signer_fault_but_bad_input_and_suspension_is_retryable() {
        for kind in SignErrorKind::ALL {
            let e = Error::from(CmsError::Sign(SignError::new(kind, "test")));
            let expected = match kind {
                SignErrorKind::BadInput | SignErrorKind::Suspended => Fault::System,
                _ => Fault::Retryable,
            };
            assert_eq!(e.fault(), expected, "{kind:?}");
            assert_eq!(e.is_retryable(), expected == Fault::Retryable);
        }
    }

    #[test]
    fn time_stamp_kinds() {
        let f = |k| Error::TimeStamp(TimeStampError::new(k, "tsa")).fault();
        assert_eq!(f(TimeStampErrorKind::Unavailable), Fault::Retryable);
        assert_eq!(f(TimeStampErrorKind::Busy), Fault::Retryable);
        assert_eq!(f(TimeStampErrorKind::Timeout), Fault::Retryable);
        assert_eq!(f(TimeStampErrorKind::Rejected), Fault::System);
        assert_eq!(f(TimeStampErrorKind::BadResponse), Fault::System);
    }
}
