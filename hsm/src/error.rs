//! The crate's one error type and the one table that classifies PKCS#11 return values.
//!
//! Every failure of a PKCS#11 call becomes [`Error::Pkcs11`], which keeps the function,
//! the `CKR_*` value and the token label, and reads like
//! `C_Sign: CKR_DEVICE_REMOVED (token "hanko-dev")`. [`Error::kind`] maps every variant to
//! a [`SignErrorKind`]; [`Error::is_device_lost`] says which return values start a
//! recovery. Nothing else in Hanko inspects a `CK_RV`.
//!
//! No variant carries a PIN: PIN sources report only the variable name or path.

use std::fmt;
use std::path::PathBuf;

use cryptoki::context::Function;
use cryptoki::error::RvError;
use hanko_pki::{KeyType, SignError, SignErrorKind, SignatureAlgorithm};

/// Everything that can go wrong in `hanko-hsm`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A PKCS#11 function returned an error value.
    #[error("{function}: {rv} (token \"{token}\")")]
    Pkcs11 {
        /// The `C_*` function that failed.
        function: Pkcs11Function,
        /// Its return value.
        rv: ReturnValue,
        /// Label of the token it was called for (empty before a token is known).
        token: String,
    },
    /// The PKCS#11 library could not be loaded or used (not a `CK_RV` error: missing
    /// file, missing symbol, bad conversion in cryptoki).
    #[error("PKCS#11 module {}: {reason}", .path.display())]
    Module {
        /// Path of the module.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// No slot holds an initialised token with this label.
    #[error("no token with label \"{0}\"")]
    TokenNotFound(String),
    /// `init_token` found no slot with an uninitialised token.
    #[error("no free slot to initialise token \"{0}\"")]
    NoFreeSlot(String),
    /// No private key with this label in the token.
    #[error("no private key with label \"{key}\" (token \"{token}\")")]
    KeyNotFound {
        /// Token label.
        token: String,
        /// Key label.
        key: String,
    },
    /// `generate_key_pair` was asked for a label that is already used.
    #[error("a key with label \"{key}\" already exists (token \"{token}\")")]
    KeyExists {
        /// Token label.
        token: String,
        /// Key label.
        key: String,
    },
    /// The token does not offer a mechanism the operation needs.
    #[error("mechanism {mechanism} is not offered by token \"{token}\"")]
    MechanismNotOffered {
        /// Token label.
        token: String,
        /// PKCS#11 name of the mechanism, e.g. `CKM_EC_EDWARDS_KEY_PAIR_GEN`.
        mechanism: &'static str,
    },
    /// The signature algorithm does not fit the key.
    #[error("algorithm {alg} does not fit key \"{key}\" ({key_type})")]
    AlgorithmMismatch {
        /// Key label.
        key: String,
        /// Type of the key.
        key_type: KeyType,
        /// Requested algorithm.
        alg: SignatureAlgorithm,
    },
    /// The key type or its public attributes are not something Hanko signs with.
    #[error("key \"{key}\": {reason}")]
    UnsupportedKey {
        /// Key label.
        key: String,
        /// Why.
        reason: String,
    },
    /// A PIN could not be read (the PIN itself is never part of the message).
    #[error("PIN: {0}")]
    PinSource(String),
    /// The token is already logged in by this process with a different PIN. PKCS#11
    /// login state is per process, so the token would answer
    /// `CKR_USER_ALREADY_LOGGED_IN` without checking the PIN; this check stands in for it.
    #[error("PIN does not match the one token \"{0}\" is logged in with")]
    PinMismatch(String),
    /// A pool setting is out of range.
    #[error("invalid pool configuration: {0}")]
    Config(String),
    /// The token is being recovered after a device loss; try again later.
    #[error("token \"{0}\" is not ready (recovering from a device loss)")]
    NotReady(String),
    /// A key that the pool had found stopped being visible: its handle turned invalid, or
    /// a search by label finds nothing, within the same module generation. SoftHSM does this when its token directory goes
    /// away, and keeps the objects lost even after the files return, until the module is
    /// re-initialised; so it is handled like a device loss.
    #[error("key \"{key}\" vanished from token \"{token}\" ({rv} for a key found before)")]
    KeyVanished {
        /// Token label.
        token: String,
        /// Key label.
        key: String,
        /// What the signing call returned.
        rv: ReturnValue,
    },
    /// The signing queue is full.
    #[error("signing queue for key \"{0}\" is full")]
    Busy(String),
    /// The request was not answered within the pool's `call_timeout` (its signing call,
    /// and a retry if one was made, had not finished).
    #[error("C_Sign did not return within {timeout_ms} ms (key \"{key}\")")]
    Timeout {
        /// Key label.
        key: String,
        /// The deadline in milliseconds.
        timeout_ms: u128,
    },
    /// A request waited in the queue past its deadline: every worker was busy or stuck
    /// in a call that had not returned (a hung token).
    #[error("no signing worker for key \"{key}\" within {timeout_ms} ms (all busy or stuck)")]
    QueueTimeout {
        /// Key label.
        key: String,
        /// The deadline in milliseconds.
        timeout_ms: u128,
    },
    /// The token returned a signature that does not verify against the key.
    #[error("signature by key \"{key}\" failed verify-after-sign: {reason}")]
    BadSignature {
        /// Key label.
        key: String,
        /// The verifier's reason.
        reason: String,
    },
    /// The private key can be read or exported now (not `CKA_SENSITIVE`, or
    /// `CKA_EXTRACTABLE`): not fit to sign in production (CONFORMANCE 39).
    #[error(
        "key \"{key}\": private key must be CKA_SENSITIVE and not CKA_EXTRACTABLE \
         (found sensitive={sensitive:?}, extractable={extractable:?})"
    )]
    KeyExtractable {
        /// Key label.
        key: String,
        /// `CKA_SENSITIVE` as reported.
        sensitive: Option<bool>,
        /// `CKA_EXTRACTABLE` as reported.
        extractable: Option<bool>,
    },
    /// The private key is protected now but the token says it was not at some point
    /// (`CKA_ALWAYS_SENSITIVE` or `CKA_NEVER_EXTRACTABLE` false): it may exist outside
    /// the HSM (CONFORMANCE 39).
    #[error(
        "key \"{key}\": private key was extractable or not sensitive at some point \
         (CKA_ALWAYS_SENSITIVE={always_sensitive:?}, CKA_NEVER_EXTRACTABLE={never_extractable:?}); \
         a signing key must be generated inside the HSM"
    )]
    KeyWasExtractable {
        /// Key label.
        key: String,
        /// `CKA_ALWAYS_SENSITIVE` as reported.
        always_sensitive: Option<bool>,
        /// `CKA_NEVER_EXTRACTABLE` as reported.
        never_extractable: Option<bool>,
    },
    /// The signing pool has shut down (its worker threads are gone).
    #[error("signing pool for key \"{0}\" is shut down")]
    PoolClosed(String),
}

impl Error {
    /// Wraps a cryptoki error for a call made on `token`.
    pub(crate) fn from_cryptoki(e: cryptoki::error::Error, token: &str) -> Self {
        match e {
            cryptoki::error::Error::Pkcs11(rv, function) => Error::Pkcs11 {
                function: Pkcs11Function(function),
                rv: ReturnValue(rv),
                token: token.to_owned(),
            },
            other => Error::Module {
                path: PathBuf::new(),
                reason: other.to_string(),
            },
        }
    }

    /// The `CK_RV` if this is a PKCS#11 error.
    pub fn rv(&self) -> Option<ReturnValue> {
        match self {
            Error::Pkcs11 { rv, .. } => Some(*rv),
            _ => None,
        }
    }

    /// Whether this error means the token, its sessions or the library state are gone, so
    /// that the module must be re-initialised before signing can resume.
    pub fn is_device_lost(&self) -> bool {
        if matches!(self, Error::KeyVanished { .. }) {
            return true;
        }
        matches!(
            self.rv().map(|r| r.0),
            Some(
                RvError::DeviceRemoved
                    | RvError::SessionHandleInvalid
                    | RvError::TokenNotPresent
                    | RvError::SessionClosed
                    | RvError::UserNotLoggedIn
                    | RvError::CryptokiNotInitialized
                    | RvError::TokenNotRecognized
            )
        )
    }

    /// The classification every caller sees: the one table from `CK_RV` to
    /// [`SignErrorKind`].
    pub fn kind(&self) -> SignErrorKind {
        if self.is_device_lost() {
            return SignErrorKind::DeviceLost;
        }
        match self {
            Error::Pkcs11 { rv, .. } => match rv.0 {
                RvError::DataInvalid
                | RvError::DataLenRange
                | RvError::ArgumentsBad
                | RvError::MechanismInvalid
                | RvError::MechanismParamInvalid
                | RvError::KeyTypeInconsistent
                | RvError::KeySizeRange
                | RvError::AttributeValueInvalid
                | RvError::AttributeTypeInvalid
                | RvError::TemplateIncomplete
                | RvError::TemplateInconsistent => SignErrorKind::BadInput,
                RvError::KeyHandleInvalid
                | RvError::ObjectHandleInvalid
                | RvError::KeyFunctionNotPermitted
                | RvError::PinIncorrect
                | RvError::PinLocked
                | RvError::PinExpired
                | RvError::PinLenRange
                | RvError::UserPinNotInitialized => SignErrorKind::KeyUnavailable,
                _ => SignErrorKind::Device,
            },
            Error::KeyNotFound { .. }
            | Error::PinSource(_)
            | Error::PinMismatch(_)
            | Error::KeyExtractable { .. }
            | Error::KeyWasExtractable { .. } => SignErrorKind::KeyUnavailable,
            Error::TokenNotFound(_) | Error::NotReady(_) => SignErrorKind::DeviceLost,
            Error::AlgorithmMismatch { .. }
            | Error::UnsupportedKey { .. }
            | Error::MechanismNotOffered { .. }
            | Error::Config(_) => SignErrorKind::BadInput,
            Error::Busy(_) => SignErrorKind::Busy,
            Error::Timeout { .. } | Error::QueueTimeout { .. } => SignErrorKind::Timeout,
            Error::BadSignature { .. } => SignErrorKind::BadSignature,
            Error::Module { .. }
            | Error::NoFreeSlot(_)
            | Error::KeyExists { .. }
            | Error::PoolClosed(_) => SignErrorKind::Device,
            Error::KeyVanished { .. } => SignErrorKind::DeviceLost,
        }
    }
}

impl From<Error> for SignError {
    fn from(e: Error) -> Self {
        SignError::new(e.kind(), e.to_string())
    }
}

/// A PKCS#11 return value (`CK_RV`), as the crate's errors carry it. Opaque outside
/// this crate (no `cryptoki` type leaks); it displays as its PKCS#11 name, e.g.
/// `CKR_DEVICE_REMOVED`, and [`Error::kind`] is its classification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReturnValue(pub(crate) RvError);

impl fmt::Display for ReturnValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&rv_name(self.0))
    }
}

/// The PKCS#11 function a failure came from. Opaque outside this crate; displays as
/// `C_Sign`, `C_OpenSession`, ...
#[derive(Clone, Copy, Debug)]
pub struct Pkcs11Function(pub(crate) Function);

impl fmt::Display for Pkcs11Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&function_name(self.0))
    }
}

/// `Function::Sign` -> `C_Sign`.
pub(crate) fn function_name(f: Function) -> String {
    format!("C_{f:?}")
}

/// `RvError::DeviceRemoved` -> `CKR_DEVICE_REMOVED` (derived from cryptoki's variant
/// names, which follow the `CKR_*` names one to one).
pub(crate) fn rv_name(rv: RvError) -> String {
    match rv {
        RvError::VendorDefined(code) => return format!("CKR_VENDOR_DEFINED({code:#x})"),
        RvError::UnknownErrorCode(code) => return format!("CKR_UNKNOWN({code:#x})"),
        _ => {}
    }
    let camel = format!("{rv:?}");
    let mut out = String::from("CKR");
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// Shown by `Debug` of types that must not reveal a value.
pub(crate) struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_function_rv_and_token() {
        let e = Error::Pkcs11 {
            function: Pkcs11Function(Function::Sign),
            rv: ReturnValue(RvError::DeviceRemoved),
            token: "hanko-dev".into(),
        };
        assert_eq!(
            e.to_string(),
            "C_Sign: CKR_DEVICE_REMOVED (token \"hanko-dev\")"
        );
        assert_eq!(e.kind(), SignErrorKind::DeviceLost);
    }

    #[test]
    fn rv_names_follow_pkcs11() {
        assert_eq!(
            rv_name(RvError::SessionHandleInvalid),
            "CKR_SESSION_HANDLE_INVALID"
        );
        assert_eq!(rv_name(RvError::PinIncorrect), "CKR_PIN_INCORRECT");
        assert_eq!(
            rv_name(RvError::CryptokiNotInitialized),
            "CKR_CRYPTOKI_NOT_INITIALIZED"
        );
    }

    #[test]
    fn classification_table() {
        let pk = |rv| Error::Pkcs11 {
            function: Pkcs11Function(Function::Sign),
            rv: ReturnValue(rv),
            token: String::new(),
        };
        assert_eq!(pk(RvError::DataLenRange).kind(), SignErrorKind::BadInput);
        assert_eq!(
            pk(RvError::KeyHandleInvalid).kind(),
            SignErrorKind::KeyUnavailable
        );
        assert_eq!(
            pk(RvError::TokenNotPresent).kind(),
            SignErrorKind::DeviceLost
        );
        assert_eq!(pk(RvError::DeviceError).kind(), SignErrorKind::Device);
        assert_eq!(Error::Busy("k".into()).kind(), SignErrorKind::Busy);
    }
}
