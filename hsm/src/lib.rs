//! PKCS#11 signing for Hanko through `cryptoki`: the token found by label, keys generated
//! and found by label, a pool of signing workers, one table that classifies PKCS#11 return
//! values, and recovery when the token goes away.
//!
//! # What this crate does not do
//! It builds no ASN.1 beyond the SubjectPublicKeyInfo of its own keys, knows nothing of
//! RFC 3161, CMS or HTTP, and never handles certificates. It implements
//! [`hanko_pki::Signer`] and nothing else reaches into PKCS#11: protocol crates sign through
//! that trait and cannot tell an HSM key from a software one.
//!
//! ```text
//!   async caller ── Signer::sign ──> hash in software, build the block to sign
//!                                        │ try_send (queue full -> Busy at once)
//!                                        v
//!                 bounded queue ──> worker 1 .. worker N (OS threads, one Session each)
//!                                        │ C_Sign under the module's read lock
//!                                        v
//!                 oneshot reply <── verify-after-sign (optional) <── signature
//!
//!   watchdog: a worker stuck past `call_timeout` is abandoned, its job answered with
//!             Timeout, a replacement worker started.
//!   supervisor: on device loss (CKR_DEVICE_REMOVED, ...) mark not ready, fail queued jobs,
//!             C_Finalize + C_Initialize under the write lock, find the token by label,
//!             log in, check the keys; workers re-open their sessions by themselves.
//! ```
//!
//! # Why these choices
//! * PKCS#11 calls block, sometimes for seconds; they run on dedicated OS threads so the
//!   tokio runtime never waits on a device.
//! * A `Session` is not `Sync` (PKCS#11 forbids concurrent use of one session), so every
//!   worker owns one; the login state is per application and token, so one extra
//!   "login session" is kept open per token to hold it.
//! * Slot ids move when tokens are added (SoftHSM reassigns them), so the token is always
//!   found by its label, and keys by their `CKA_LABEL`.
//! * PINs are [`Pin`]s (`secrecy`): never printed, never in an error, never logged.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use hanko_hsm::{Hsm, ModuleConfig, Pin, PoolConfig};
//! use hanko_pki::{KeyType, SignatureAlgorithm, HashAlgorithm, Signer};
//! let module = ModuleConfig {
//!     module_path: "/usr/lib/softhsm/libsofthsm2.so".into(),
//!     token_label: "hanko-dev".into(),
//! };
//! let hsm = Hsm::open(module, Pin::from_env()?)?;
//! let spki = hsm.generate_key_pair("tsa-p256", KeyType::EcP256)?;
//! let signer = hsm.signer("tsa-p256", SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256),
//!                         PoolConfig::default())?;
//! let sig = signer.sign(b"to be signed").await?;
//! hanko_pki::verify::verify(&spki, signer.algorithm(), b"to be signed", &sig)?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]
// `unsafe_code` stays denied (workspace lint): all FFI goes through cryptoki's safe API.
// The one exception is `std::env::set_var` in `use_softhsm_config`, allowed there.

mod error;
pub mod metrics_names;
mod module;
mod pin;
mod pool;
mod spki;
mod token;

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The `cryptoki` version this crate speaks (its attribute types appear in
/// [`Hsm::private_key_attributes`]).
pub use cryptoki;
pub use error::Error;
pub use pin::Pin;
pub use pool::{HsmSigner, PoolStats};
pub use token::Hsm;

/// Points SoftHSM at a configuration file by setting `SOFTHSM2_CONF`.
///
/// Call it before any thread is spawned and before the first [`Hsm`] is opened: SoftHSM
/// reads the variable once, in `C_Initialize`, and changing the environment of a running
/// multi-threaded process is not sound.
pub fn use_softhsm_config(conf: &Path) {
    // `set_var` is `unsafe` in edition 2024 because of concurrent readers of the
    // environment.
    #[allow(unsafe_code)]
    // SAFETY: documented precondition: called before any other thread is started.
    unsafe {
        std::env::set_var("SOFTHSM2_CONF", conf);
    }
}

/// Which PKCS#11 module to load and which token in it to use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleConfig {
    /// Path of the PKCS#11 shared library, e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module_path: PathBuf,
    /// `CKA_LABEL` of the token (slot ids are not stable, labels are).
    pub token_label: String,
}

/// Settings of one signing pool (one per key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// Worker threads, each with its own PKCS#11 session. Default: the number of CPU cores.
    pub workers: usize,
    /// Jobs that may wait for a worker; when full, `sign` fails at once with `Busy`.
    pub queue_depth: usize,
    /// Longest time one PKCS#11 signing call may take before its worker is abandoned and
    /// the job answered with `Timeout`.
    pub call_timeout: Duration,
    /// Verify each signature in software against the key's SubjectPublicKeyInfo before
    /// handing it out (catches faulty hardware; costs a verification per signature).
    pub verify_after_sign: bool,
}

impl Default for PoolConfig {
    fn default() -> Self {
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        Self {
            workers,
            queue_depth: 64 * workers,
            call_timeout: Duration::from_secs(10),
            verify_after_sign: true,
        }
    }
}
