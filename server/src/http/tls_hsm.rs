//! The HTTPS listener's private key in the HSM (`tls.key_label`): a rustls
//! [`SigningKey`] over a hanko-hsm signing pool of its own.
//!
//! ```text
//!   start-up: public key by label ─> protection check (CONFORMANCE 39) ─> pool started
//!             ─> probe signature verified ─> every certificate load (start, reload)
//!                checks the leaf's key is this key (a mismatch: refused / old kept)
//!   handshake task ─> rustls: choose_scheme(offered) ─> SchemeSigner::sign(message)
//!        ─ block_in_place ─> hash in software ─> HsmSigner::sign_digest (interactive lane)
//!        ─> pool worker thread: C_Sign ─> r||s to DER ─> verify-after-sign ─> signature
//! ```
//!
//! # Which schemes
//! RSA: RSA-PSS (`rsa_pss_rsae_sha256/384/512`, the only RSA schemes TLS 1.3 allows)
//! first, then PKCS#1 v1.5 (TLS 1.2 clients without PSS), each only where the token
//! offers the mechanism. A token without `CKM_RSA_PKCS_PSS` is refused at start-up:
//! TLS 1.3 could not use the key (SoftHSM2 offers it). ECDSA: the curve's own scheme
//! (P-256 with SHA-256, P-384 with SHA-384, as TLS 1.3 demands); the token's `r || s`
//! is turned into the DER that TLS carries by the pool, as for every ECDSA signature
//! Hanko makes. Ed25519: `ed25519`, over the message itself.
//!
//! # Why `block_in_place`
//! rustls's `Signer::sign` is synchronous and runs inside the handshake's future, on a
//! runtime worker thread, while the signature is made on a pool worker thread (a
//! PKCS#11 call blocks: about a millisecond on SoftHSM, 1-10 ms on a network HSM, up to
//! the deadline when a device hangs). Waiting for it on a runtime worker unannounced
//! would stall every task queued behind the handshake on that worker (other
//! connections' requests, their deadlines) for as long.
//! [`tokio::task::block_in_place`] tells the multi-thread runtime first, which moves the
//! worker's other tasks to another thread; then the wait blocks this handshake only.
//! (`spawn_blocking` does not help: rustls needs the answer before `sign` returns.) On
//! a current-thread runtime `block_in_place` would panic, and outside a runtime there is
//! nothing to hand over: there the wait simply blocks the thread (a park/unpark loop;
//! the pool answers from its own threads, so it cannot deadlock), bounded by the pool's
//! deadline. `hanko serve` always runs the multi-thread runtime.
//!
//! # Deadline
//! While the handshake task is blocked in `sign`, its `tls.handshake_timeout_ms` timer
//! cannot fire, so the pool's deadline bounds the wait: the TLS pool's `call_timeout`
//! is the smaller of `hsm.call_timeout_ms` and `tls.handshake_timeout_ms`. A signature
//! not made by then fails the handshake; the handshake deadline applies as before to
//! everything else (a slow ClientHello, a slow client Finished).
//!
//! # A pool of its own, sharing the token
//! A pool belongs to one key (its sessions find the key, it has its own queues, breaker
//! and metrics labelled with the key), so the TLS key has its own: its workers and its
//! queue are not the TSA's or the seals'. A handshake never takes a place in a TSA
//! key's queue or one of its workers; what the pools share is the token's capacity and
//! the host's CPU. To bound that share, the TLS pool has `max(1, hsm.workers / 2)`
//! workers: a handshake flood keeps at most that many of the token's sessions busy
//! while every TSA pool keeps all of its own (and `http.max_connections` bounds the
//! handshakes in progress, each waiting for one signature at a time). Its signatures
//! run in the interactive lane, set explicitly because a handshake runs outside any
//! request's lane; no bulk work shares this pool.
//!
//! Each handshake waiting for its signature holds a thread (`block_in_place` turns the
//! runtime worker into a blocking thread and starts another worker). So the TLS pool's
//! queue is short: at most [`QUEUE_PER_WORKER`] per worker (and no more than
//! `hsm.queue_depth`). A handshake beyond it fails at once (`Busy`, counted like any
//! failure), instead of another thread waiting: at most `workers + queue_depth`
//! threads wait, however many clients connect at once, and the last in a full queue
//! waits for 16 signatures (about 160 ms on an HSM taking 10 ms each). A resumed TLS
//! session needs no signature at all.
//!
//! # Faults
//! A failed signature (device error, timeout, queue full, a bad signature caught by
//! verify-after-sign, the pool closed at shutdown) fails the handshake with a rustls
//! error: the client gets an alert, the connection is closed and counted in
//! `hanko_tls_handshake_failures_total` as any failed handshake, and in
//! `hanko_tls_hsm_sign_failures_total{kind}`; a warning is logged at most every
//! [`WARN_EVERY`] (a handshake flood against a broken token must not flood the log). The
//! pool's own metrics (`hanko_hsm_errors_total{key}`) and breaker see the failures as
//! for any key. Never a panic.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use hanko_hsm::{Hsm, HsmSigner, Lane, PoolConfig};
use hanko_pki::cert::{CertError, Certificate, check_key_matches};
use hanko_pki::{
    DigestSignAlgorithm, HashAlgorithm, KeyType, SignError, SignatureAlgorithm, Signer as _,
};
use rustls::SignatureScheme;
use rustls::sign::{Signer, SigningKey};
use rustls_pki_types::SubjectPublicKeyInfoDer;

/// At most one warning per this long about failed handshake signatures.
pub const WARN_EVERY: Duration = Duration::from_secs(10);

/// How a scheme is signed: a digest with this algorithm, or (Ed25519) the message.
type Method = Option<DigestSignAlgorithm>;

/// The RSA schemes in the order offered, and the digest algorithm of each.
const RSA_SCHEMES: [(SignatureScheme, DigestSignAlgorithm); 6] = [
    (
        SignatureScheme::RSA_PSS_SHA256,
        DigestSignAlgorithm::RsaPss(HashAlgorithm::Sha256),
    ),
    (
        SignatureScheme::RSA_PSS_SHA384,
        DigestSignAlgorithm::RsaPss(HashAlgorithm::Sha384),
    ),
    (
        SignatureScheme::RSA_PSS_SHA512,
        DigestSignAlgorithm::RsaPss(HashAlgorithm::Sha512),
    ),
    (
        SignatureScheme::RSA_PKCS1_SHA256,
        DigestSignAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha256),
    ),
    (
        SignatureScheme::RSA_PKCS1_SHA384,
        DigestSignAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha384),
    ),
    (
        SignatureScheme::RSA_PKCS1_SHA512,
        DigestSignAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha512),
    ),
];

/// The pool's configured algorithm for a key type (the mechanism checked when the pool
/// starts, and the probe's) and the TLS schemes the key can serve in the order offered,
/// before the token's mechanisms are known.
fn plan(key_type: KeyType) -> Option<(SignatureAlgorithm, Vec<(SignatureScheme, Method)>)> {
    Some(match key_type {
        KeyType::Rsa { .. } => (
            SignatureAlgorithm::RsaPss(HashAlgorithm::Sha256),
            RSA_SCHEMES.iter().map(|(s, a)| (*s, Some(*a))).collect(),
        ),
        KeyType::EcP256 => (
            SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256),
            vec![(
                SignatureScheme::ECDSA_NISTP256_SHA256,
                Some(DigestSignAlgorithm::Ecdsa(HashAlgorithm::Sha256)),
            )],
        ),
        KeyType::EcP384 => (
            SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha384),
            vec![(
                SignatureScheme::ECDSA_NISTP384_SHA384,
                Some(DigestSignAlgorithm::Ecdsa(HashAlgorithm::Sha384)),
            )],
        ),
        KeyType::Ed25519 => (
            SignatureAlgorithm::Ed25519,
            vec![(SignatureScheme::ED25519, None)],
        ),
        _ => return None,
    })
}

/// Handshakes that may wait per TLS pool worker (see the module docs).
pub const QUEUE_PER_WORKER: usize = 16;

/// The TLS pool's settings from the signing pools' (see the module docs).
pub fn pool_config(pool: &PoolConfig, handshake_timeout: Duration) -> PoolConfig {
    let workers = (pool.workers / 2).max(1);
    PoolConfig {
        workers,
        queue_depth: pool.queue_depth.min(QUEUE_PER_WORKER * workers),
        call_timeout: pool.call_timeout.min(handshake_timeout),
        ..pool.clone()
    }
}

/// The listener's key in the HSM; see the module documentation.
pub struct HsmTlsKey {
    label: String,
    key_type: KeyType,
    spki: Vec<u8>,
    /// The schemes this key serves, in the order offered.
    schemes: Vec<(SignatureScheme, Method)>,
    /// `None` once [`HsmTlsKey::close`]d: the pool is stopped, handshakes fail.
    signer: RwLock<Option<Arc<HsmSigner>>>,
    /// When the last warning about a failed signature was logged, and how many failures
    /// went unlogged since.
    warned: Mutex<Option<Instant>>,
    unlogged: AtomicU64,
}

impl std::fmt::Debug for HsmTlsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HsmTlsKey")
            .field("label", &self.label)
            .field("key_type", &self.key_type)
            .field(
                "schemes",
                &self.schemes.iter().map(|s| s.0).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl HsmTlsKey {
    /// Finds the key labelled `label` in the token, checks that it is kept as a signing
    /// key must be (CONFORMANCE 39), starts its pool and proves it with a probe
    /// signature. Blocks on PKCS#11 calls (start-up only).
    pub async fn load(hsm: &Hsm, label: &str, pool: PoolConfig) -> anyhow::Result<Arc<Self>> {
        let spki = hsm.public_key(label)?.with_context(|| {
            format!(
                "tls.key_label: no public key labelled \"{label}\" in token \"{}\"",
                hsm.token_label()
            )
        })?;
        let plan = hanko_pki::alg::key_type_of_spki(&spki).and_then(|kt| Some((kt, plan(kt)?)));
        let Some((key_type, (alg, schemes))) = plan else {
            bail!(
                "tls.key_label: key \"{label}\" is of a type TLS cannot use here \
                 (RSA, ECDSA P-256/P-384 or Ed25519)"
            );
        };
        crate::keys::check_private_key_protection(hsm, label, true)
            .with_context(|| format!("tls.key_label: key \"{label}\""))?;
        let signer = hsm.signer(label, alg, pool).with_context(|| {
            format!(
                "tls.key_label: key \"{label}\" ({key_type}) cannot sign with {alg}{}",
                if matches!(key_type, KeyType::Rsa { .. }) {
                    ", which TLS 1.3 needs for an RSA key"
                } else {
                    ""
                }
            )
        })?;
        let offered = signer.digest_algorithms().to_vec();
        let schemes: Vec<_> = schemes
            .into_iter()
            .filter(|(_, m)| m.is_none_or(|a| offered.contains(&a)))
            .collect();
        let probe = b"hanko TLS key start-up probe";
        let sig = signer
            .sign(probe)
            .await
            .with_context(|| format!("tls.key_label: key \"{label}\": probe signature"))?;
        hanko_pki::verify::verify(&spki, alg, probe, &sig).with_context(|| {
            format!("tls.key_label: key \"{label}\": the probe signature does not verify")
        })?;
        let key = Arc::new(Self {
            label: label.to_owned(),
            key_type,
            spki,
            schemes,
            signer: RwLock::new(Some(Arc::new(signer))),
            warned: Mutex::new(None),
            unlogged: AtomicU64::new(0),
        });
        tracing::info!(key = label, key_type = %key_type, schemes = ?key.scheme_list(),
            "TLS key in the HSM: key non-extractable, probe signature verified");
        Ok(key)
    }

    /// The key's label in the token.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The TLS signature schemes it serves, in the order offered.
    pub fn scheme_list(&self) -> Vec<SignatureScheme> {
        self.schemes.iter().map(|s| s.0).collect()
    }

    /// Whether `leaf` certifies this key.
    pub fn check_certificate(&self, leaf: &Certificate) -> Result<(), CertError> {
        check_key_matches(leaf, &self.spki)
    }

    /// Stops the pool (at shutdown, after the drain): its workers leave the token, and a
    /// handshake still trying fails.
    pub fn close(&self) {
        let signer = self
            .signer
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        drop(signer);
    }

    fn pool(&self) -> Option<Arc<HsmSigner>> {
        self.signer
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Signs `message` for `method`, waiting for the pool (see the module docs).
    fn sign_now(&self, method: Method, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let Some(pool) = self.pool() else {
            return Err(SignError::new(
                hanko_pki::SignErrorKind::KeyUnavailable,
                "the TLS key's signing pool is stopped (shutting down)",
            ));
        };
        let signed = async {
            match method {
                Some(alg) => {
                    let digest = alg.hash().digest(message);
                    pool.sign_digest(alg, &digest).await
                }
                None => pool.sign(message).await,
            }
        };
        wait(hanko_hsm::in_lane(Lane::Interactive, signed))
    }

    /// Counts a failed signature and warns, at most once per [`WARN_EVERY`].
    fn report_failure(&self, scheme: SignatureScheme, e: &SignError) {
        metrics::counter!("hanko_tls_hsm_sign_failures_total", "kind" => e.kind().as_str())
            .increment(1);
        let now = Instant::now();
        let mut warned = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        if warned.is_some_and(|t| now.duration_since(t) < WARN_EVERY) {
            self.unlogged.fetch_add(1, Ordering::Relaxed);
            return;
        }
        *warned = Some(now);
        drop(warned);
        let unlogged = self.unlogged.swap(0, Ordering::Relaxed);
        tracing::warn!(key = %self.label, ?scheme, error = %e, unlogged,
            "TLS handshake failed: the HSM key did not sign (further failures within {} s \
             are counted, not logged)", WARN_EVERY.as_secs());
    }
}

/// What rustls holds of the key: its signers outlive the `&self` of
/// [`SigningKey::choose_scheme`], so they share the key through the `Arc`.
#[derive(Debug)]
pub struct TlsSigningKey(pub Arc<HsmTlsKey>);

impl SigningKey for TlsSigningKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        let (scheme, method) = *self.0.schemes.iter().find(|(s, _)| offered.contains(s))?;
        Some(Box::new(SchemeSigner {
            key: self.0.clone(),
            scheme,
            method,
        }))
    }

    fn public_key(&self) -> Option<SubjectPublicKeyInfoDer<'_>> {
        Some(SubjectPublicKeyInfoDer::from(self.0.spki.as_slice()))
    }

    fn algorithm(&self) -> rustls::SignatureAlgorithm {
        match self.0.key_type {
            KeyType::Rsa { .. } => rustls::SignatureAlgorithm::RSA,
            KeyType::Ed25519 => rustls::SignatureAlgorithm::ED25519,
            _ => rustls::SignatureAlgorithm::ECDSA,
        }
    }
}

/// One handshake's signer: the key and the scheme rustls chose.
#[derive(Debug)]
struct SchemeSigner {
    key: Arc<HsmTlsKey>,
    scheme: SignatureScheme,
    method: Method,
}

impl Signer for SchemeSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        self.key.sign_now(self.method, message).map_err(|e| {
            self.key.report_failure(self.scheme, &e);
            rustls::Error::General(format!(
                "the HSM key \"{}\" did not sign: {e}",
                self.key.label
            ))
        })
    }

    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }
}

/// Runs `fut` to completion from synchronous code inside a handshake; see the module
/// docs ("Why `block_in_place`").
fn wait<F: Future>(fut: F) -> F::Output {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| h.block_on(fut))
        }
        _ => park_until_done(fut),
    }
}

/// Wakes the waiting thread.
struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `fut` on this thread, parking it between polls. Only for futures that are
/// completed by other threads (the pool answers through a oneshot from its workers).
fn park_until_done<F: Future>(fut: F) -> F::Output {
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    /// A future another thread completes after a while, as the pool's answer is.
    fn answered_later(value: u32) -> tokio::sync::oneshot::Receiver<u32> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            let _ = tx.send(value);
        });
        rx
    }

    #[test]
    fn wait_completes_outside_a_runtime_and_on_a_current_thread_one() {
        assert_eq!(wait(answered_later(1)).unwrap(), 1);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        // Inside a task of a current-thread runtime, where block_in_place would panic.
        let got = rt.block_on(async { wait(answered_later(2)) });
        assert_eq!(got.unwrap(), 2);
    }

    #[test]
    fn wait_hands_the_worker_over_on_a_multi_thread_runtime() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            // With the only worker blocked in `wait`, another task still runs: the
            // runtime moved it off the blocked thread.
            let (tx, rx) = tokio::sync::oneshot::channel();
            let other = tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                tx.send(()).unwrap();
            });
            let waited = tokio::spawn(async move { wait(rx) }).await.unwrap();
            assert!(waited.is_ok(), "the other task ran while one waited");
            other.await.unwrap();
        });
    }

    #[test]
    fn the_tls_pool_has_half_the_workers_and_the_handshake_deadline() {
        let base = PoolConfig {
            workers: 8,
            queue_depth: 64,
            call_timeout: Duration::from_secs(10),
            verify_after_sign: true,
            bulk_share: 0.5,
        };
        let p = pool_config(&base, Duration::from_secs(3));
        assert_eq!((p.workers, p.call_timeout), (4, Duration::from_secs(3)));
        assert_eq!(p.queue_depth, 4 * QUEUE_PER_WORKER);
        let short = PoolConfig {
            queue_depth: 8,
            ..base.clone()
        };
        assert_eq!(pool_config(&short, Duration::from_secs(3)).queue_depth, 8);
        let one = PoolConfig {
            workers: 1,
            ..base.clone()
        };
        let p = pool_config(&one, Duration::from_secs(30));
        assert_eq!((p.workers, p.call_timeout), (1, Duration::from_secs(10)));
    }

    #[test]
    fn every_key_type_has_schemes_and_rsa_offers_pss_first() {
        let (alg, schemes) = plan(KeyType::Rsa { bits: 3072 }).unwrap();
        assert_eq!(alg, SignatureAlgorithm::RsaPss(HashAlgorithm::Sha256));
        assert_eq!(schemes[0].0, SignatureScheme::RSA_PSS_SHA256);
        assert_eq!(schemes.len(), 6);
        let (_, schemes) = plan(KeyType::EcP256).unwrap();
        assert_eq!(
            schemes,
            [(
                SignatureScheme::ECDSA_NISTP256_SHA256,
                Some(DigestSignAlgorithm::Ecdsa(HashAlgorithm::Sha256))
            )]
        );
        let (_, schemes) = plan(KeyType::Ed25519).unwrap();
        assert_eq!(schemes, [(SignatureScheme::ED25519, None)]);
    }
}
