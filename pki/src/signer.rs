//! The [`Signer`] trait: the one door every Hanko key signs through.
//!
//! Protocol crates hold an `Arc<dyn Signer>` and never learn whether the key is in a
//! PKCS#11 token or in memory. Errors are classified once, here, into
//! [`SignErrorKind`]; the TSA maps every kind to `systemFailure` (the server answers an
//! admitted request whose signer fails, [`SignErrorKind::Busy`] included, with HTTP 200 and
//! that TimeStampResp; only its admission control, before any work, answers 503 with
//! `Retry-After`), and nobody else inspects PKCS#11 return values.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use crate::alg::{DigestSignAlgorithm, KeyType, SignatureAlgorithm};

/// A boxed, `Send` future: what [`Signer::sign`] returns, so the trait stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A signing key.
///
/// `sign` takes the whole message (for CMS: the DER of the signed attributes) and hashes
/// it with [`SignatureAlgorithm::hash`] itself; the result is in the form the algorithm's
/// AlgorithmIdentifier promises: the PKCS#1 block for RSA, a DER `ECDSA-Sig-Value` for
/// ECDSA, the 64-byte signature for Ed25519.
pub trait Signer: Send + Sync + fmt::Debug {
    /// The algorithm every signature of this signer uses.
    fn algorithm(&self) -> SignatureAlgorithm;

    /// The DER SubjectPublicKeyInfo of the key.
    fn public_key_der(&self) -> &[u8];

    /// Signs `message`.
    fn sign<'a>(&'a self, message: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, SignError>>;

    /// Signs `digest`, a hash the caller computed (the CSC API's `signHash`), with `alg`,
    /// which may differ from [`Signer::algorithm`]: any scheme the key's type allows
    /// ([`DigestSignAlgorithm::fits`]). The result is in the same form as
    /// [`Signer::sign`]'s for the same scheme, and verifies with
    /// [`crate::verify::verify_digest`].
    ///
    /// A scheme the key cannot make, or a digest whose length is not the hash's, is
    /// [`SignErrorKind::BadInput`] ([`check_digest_request`]), never a panic.
    fn sign_digest<'a>(
        &'a self,
        alg: DigestSignAlgorithm,
        digest: &'a [u8],
    ) -> BoxFuture<'a, Result<Vec<u8>, SignError>>;

    /// Signs every digest of `digests` with `alg`: all signatures in the order of
    /// `digests`, or the first error (all or nothing, as a `signHash` answer is). The
    /// whole batch is checked before anything is signed.
    ///
    /// The default signs one digest after the other through [`Signer::sign_digest`];
    /// hanko-hsm's pool spreads a batch over its workers instead.
    fn sign_digests<'a>(
        &'a self,
        alg: DigestSignAlgorithm,
        digests: &'a [Vec<u8>],
    ) -> BoxFuture<'a, Result<Vec<Vec<u8>>, SignError>> {
        Box::pin(async move {
            let key = key_type(self.public_key_der())?;
            for d in digests {
                check_digest_request(key, alg, d)?;
            }
            let mut out = Vec::with_capacity(digests.len());
            for d in digests {
                out.push(self.sign_digest(alg, d).await?);
            }
            Ok(out)
        })
    }

    /// Whether the key can sign right now (token present, logged in, key found; an
    /// implementation may also answer `false` for a while after its recent signatures
    /// failed, as hanko-hsm's pool does). Used by readiness checks; it must not block.
    fn is_ready(&self) -> bool {
        true
    }

    /// Why the key cannot sign right now, in words for an operator (`/readyz`), or
    /// `None` when it can. The default derives it from [`Signer::is_ready`];
    /// implementations that know more (token gone, recent failures) say so.
    fn not_ready_reason(&self) -> Option<String> {
        (!self.is_ready()).then(|| "signer is not ready".to_owned())
    }
}

/// Checks a request to sign `digest` with `alg` on a key of type `key`: the scheme must
/// fit the key type and the digest must be as long as the hash's output. Both refusals
/// are [`SignErrorKind::BadInput`], with a context that names what is wrong. Every
/// [`Signer::sign_digest`] implementation calls this before it signs.
pub fn check_digest_request(
    key: KeyType,
    alg: DigestSignAlgorithm,
    digest: &[u8],
) -> Result<(), SignError> {
    if !alg.fits(key) {
        return Err(SignError::new(
            SignErrorKind::BadInput,
            format!("{alg} cannot be made with a {key} key"),
        ));
    }
    if !alg.digest_len_fits(digest) {
        return Err(SignError::new(
            SignErrorKind::BadInput,
            format!(
                "a {} digest has {} bytes, not {}",
                alg.hash(),
                alg.hash().output_len(),
                digest.len()
            ),
        ));
    }
    Ok(())
}

/// The type of the key in `spki`; a key Hanko does not know is
/// [`SignErrorKind::KeyUnavailable`].
fn key_type(spki: &[u8]) -> Result<KeyType, SignError> {
    crate::alg::key_type_of_spki(spki).ok_or_else(|| {
        SignError::new(
            SignErrorKind::KeyUnavailable,
            "the signer's public key is of no type Hanko knows",
        )
    })
}

/// What kind of failure a signature ran into. Each kind has one meaning for callers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignErrorKind {
    /// The request to sign was malformed (wrong digest length, unsupported mechanism for
    /// the key). Not retryable: the caller has a bug.
    BadInput,
    /// The key (or its certificate) is not available: not found in the token, not yet
    /// loaded, or outside its usage period. Retryable once an operator acts.
    KeyUnavailable,
    /// The signing queue is full. Retryable at once; for an admitted TSA request the
    /// server answers HTTP 200 + `systemFailure` (503 is admission control's answer).
    Busy,
    /// The token went away (device removed, token not present, session handle invalid).
    /// The signer is reconnecting; retryable.
    DeviceLost,
    /// The call did not finish within its deadline; the worker was abandoned. Retryable.
    Timeout,
    /// The token returned a signature that does not verify against the key
    /// (verify-after-sign caught it). Never handed out; retryable.
    BadSignature,
    /// Any other device or library error (CKR_DEVICE_ERROR, CKR_GENERAL_ERROR, ...).
    Device,
    /// An operator suspended the key (the emergency stop, `hanko key suspend`): nothing
    /// is signed with it until the suspension is lifted. Not retryable by waiting.
    Suspended,
}

impl SignErrorKind {
    /// Every kind, in a fixed order (for counters indexed by kind).
    pub const ALL: [SignErrorKind; 8] = [
        Self::BadInput,
        Self::KeyUnavailable,
        Self::Busy,
        Self::DeviceLost,
        Self::Timeout,
        Self::BadSignature,
        Self::Device,
        Self::Suspended,
    ];

    /// Whether the same request may succeed if tried again later (a suspended key only
    /// once an operator lifts the suspension: not by waiting).
    pub fn is_retryable(self) -> bool {
        !matches!(self, Self::BadInput | Self::Suspended)
    }

    /// A stable lower-case label, for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadInput => "bad_input",
            Self::KeyUnavailable => "key_unavailable",
            Self::Busy => "busy",
            Self::DeviceLost => "device_lost",
            Self::Timeout => "timeout",
            Self::BadSignature => "bad_signature",
            Self::Device => "device",
            Self::Suspended => "suspended",
        }
    }
}

impl fmt::Display for SignErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BadInput => "bad input",
            Self::KeyUnavailable => "key unavailable",
            Self::Busy => "signer busy",
            Self::DeviceLost => "device lost",
            Self::Timeout => "signing timed out",
            Self::BadSignature => "signature failed verification",
            Self::Device => "device error",
            Self::Suspended => "key suspended",
        })
    }
}

/// A failed signature: its [`SignErrorKind`] and a context string such as
/// `C_Sign: CKR_DEVICE_REMOVED (token "hanko-dev", key "tsa-rsa")`.
///
/// The context never holds a PIN or key material.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignError {
    kind: SignErrorKind,
    context: String,
}

impl SignError {
    /// A new error of `kind` with a human-readable `context`.
    pub fn new(kind: SignErrorKind, context: impl Into<String>) -> Self {
        Self {
            kind,
            context: context.into(),
        }
    }

    /// The classification.
    pub fn kind(&self) -> SignErrorKind {
        self.kind
    }

    /// The context string.
    pub fn context(&self) -> &str {
        &self.context
    }
}

impl fmt::Display for SignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.context)
    }
}

impl std::error::Error for SignError {}
