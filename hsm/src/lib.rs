//! PKCS#11 signing for Hanko through `cryptoki`: the token found by label, keys generated
//! and found by label, a pool of signing workers, one table that classifies PKCS#11 return
//! values, and recovery when the token goes away.
//!
//! # What this crate does not do
//! It builds no ASN.1 beyond the SubjectPublicKeyInfo of its own keys, knows nothing of
//! RFC 3161, CMS or HTTP, and never handles certificates. It implements
//! [`hanko_pki::Signer`] and nothing else reaches into PKCS#11: protocol crates sign through
//! that trait and cannot tell an HSM key from a software one, and the server asks how a
//! key is protected through [`KeyProtection`], not through PKCS#11 attributes. No
//! `cryptoki` type is re-exported.
//!
//! ```text
//!   async caller ── Signer::sign ──> hash in software, build the block to sign
//!            └───── Signer::sign_digest(s) ──> check scheme and length, build the block
//!                                        │ (a batch: one job per digest, all or none)
//!                                        │ queue full -> Busy at once
//!                                        v
//!                 bounded queue ──> worker 1 .. worker N (OS threads, one Session each)
//!                                        │ C_Sign under the module's read lock
//!                                        v
//!                 oneshot reply <── verify-after-sign <── signature
//!                                   (a failed attempt: one retry on a fresh session)
//!
//!   watchdog: a request past its deadline (call_timeout after submission, queued or in
//!             flight) is answered Timeout; a worker stuck past call_timeout is
//!             abandoned and a replacement started.
//!   breaker:  after UNREADY_AFTER_FAILURES requests in a row fail (timeout, device lost,
//!             device error, ...), the signer reports not ready for a cool-down, then
//!             probes; a success closes it. It drives readiness only, never refuses.
//!   supervisor: on device loss (CKR_DEVICE_REMOVED, ... twice in a row) mark not ready,
//!             fail queued jobs, then under the READ lock find the token by label, open a
//!             new login session, log in, find the keys; workers re-open their sessions.
//!             C_Finalize + C_Initialize (write lock, bounded wait) only as a last resort.
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
// The exceptions are the environment changes of `use_softhsm_config` (`set_var`) and
// `Pin::take_from_env` (blanking and removing `HANKO_PIN`), each allowed where it is.

mod bare;
mod breaker;
mod error;
mod keys;
pub mod lane;
pub mod metrics_names;
mod module;
mod pin;
mod pool;
mod protection;
mod spki;
#[cfg(feature = "test-support")]
pub mod test_support;
mod token;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use breaker::UNREADY_AFTER_FAILURES;
pub use error::{Error, Pkcs11Function, ReturnValue};
pub use lane::{Lane, in_lane};
pub use pin::Pin;
pub use pool::{HsmSigner, PoolStats};
pub use protection::{KeyProtection, ProtectionHistory};
pub use token::{Hsm, ReleaseWatch};

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

/// [`PoolConfig::bulk_share`] unless configured.
pub const DEFAULT_BULK_SHARE: f64 = 0.5;

/// [`PoolConfig::workers`] unless configured: sessions (and threads) per key.
///
/// Sized for the HSM, not for the host: a worker waiting in `C_Sign` costs no CPU, and
/// what a pool can sign is `workers / latency of one C_Sign`. A network HSM (Luna,
/// nShield Connect, CloudHSM) answers each call after 1-10 ms but signs many in
/// parallel: with 16 workers a 5 ms HSM serves up to 3,200 signatures a second per key,
/// where one worker per core of a 2-core host would stop at 400. Sixteen sessions per
/// key are well inside what such HSMs allow per client (hundreds). A local, CPU-bound
/// token (SoftHSM, which signs on the host's own cores) gains nothing from more
/// workers than cores and loses the lanes' share to the OS scheduler: `hanko dev-init`
/// writes `hsm.workers = 2`, and production configs with such a token should set the
/// host's core count. The bench `hanko-bench tsa --network-hsm` shows
/// the difference.
pub const DEFAULT_WORKERS: usize = 16;

/// Settings of one signing pool (one per key).
#[derive(Clone, Debug, PartialEq)]
pub struct PoolConfig {
    /// Worker threads, each with its own PKCS#11 session. Default [`DEFAULT_WORKERS`].
    pub workers: usize,
    /// Jobs that may wait for a worker; when full, `sign` fails at once with `Busy`.
    pub queue_depth: usize,
    /// The deadline of a request, counted from `sign`: time in the queue, the PKCS#11
    /// calls and the one retry together. A request not answered by then gets `Timeout`
    /// (within the watchdog's tick of at most 50 ms). A worker whose job has run this
    /// long is abandoned and replaced.
    pub call_timeout: Duration,
    /// Verify each signature in software against the key's SubjectPublicKeyInfo before
    /// handing it out; a signature that fails is never handed out (`BadSignature`,
    /// counted in `hanko_hsm_verify_failures_total`, retried once on a fresh session).
    ///
    /// Default **on for every key type**: a wrong signature from a TSA is only found by
    /// the relying party, after the fact. The verifier is OpenSSL's (`hanko_pki::verify`):
    /// about 40 µs for RSA-3072 (3 % of a SoftHSM signature) and 63 µs for ECDSA P-256, within
    /// 1.3x of `openssl speed` (`hanko-bench verify`, benches/RESULTS.md). Set it to
    /// `false` per pool (each key has its own pool) only for an HSM you trust when that
    /// headroom is needed.
    pub verify_after_sign: bool,
    /// The share of the workers that [`Lane::Bulk`] signatures may occupy while
    /// interactive ones wait (0.0 to 1.0; default 0.5): a free worker takes a bulk job
    /// only while fewer than `max(1, floor(bulk_share × workers))` bulk jobs are being
    /// signed, unless no interactive job waits, in which case bulk takes every worker.
    /// `0.0`: bulk runs only when no interactive job waits. Each lane has its own queue
    /// of `queue_depth` jobs, so a bulk flood never fills the interactive queue.
    pub bulk_share: f64,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            workers: DEFAULT_WORKERS,
            queue_depth: 64 * DEFAULT_WORKERS,
            call_timeout: Duration::from_secs(10),
            verify_after_sign: true,
            bulk_share: DEFAULT_BULK_SHARE,
        }
    }
}
