//! The emergency stop: no signature with a suspended key, on any node, within a second.
//!
//! `hanko key suspend LABEL` (or `POST /api/v1/admin/keys/{label}/suspend`) writes a row
//! of `key_suspensions` in the issuance log's database, with its `key-suspended` audit
//! record in the same transaction (`hanko_store::audit`). Every node reads the table
//! every [`POLL_EVERY`]; the node that made the change (through the API) applies it at
//! once. The gate is the signer itself: every key is wrapped in a [`GatedSigner`] when
//! the server starts, so every path that signs with it (RFC 3161 tokens, B-T seals'
//! tokens, CAdES and PAdES seals, CSC signHash, the archive time-stamps of anchoring and
//! renewal) is refused in one place, and nothing else needs to know.
//!
//! ```text
//!   hanko key suspend ──┐                          node A        node B
//!   admin API ──────────┤ one transaction          poll 250 ms   poll 250 ms
//!                       v                               |             |
//!   key_suspensions + audit record ──────────────> Suspensions  Suspensions
//!                                                       |             |
//!   sign(message) ─> GatedSigner::check(label) ─> refused: SignErrorKind::Suspended
//!                                            └──> HsmSigner (not suspended)
//! ```
//!
//! What a refusal looks like: a TimeStampResp with status rejection, failInfo
//! `systemFailure` and statusString "signing key suspended by the operator" (RFC 3161
//! has no failInfo for a withdrawn key; `systemFailure` is the one that says "not the
//! request's fault"); a JSON route (seals, CSC) answers 503 `temporarily_unavailable`
//! naming the suspension, without `Retry-After`, since waiting does not help.
//!
//! Fail safe: when the table cannot be read, the last state read stays in force and
//! `/readyz` says since when it is unknown. After [`STALE_AFTER`] without a successful
//! read, every key is refused as if suspended ("suspension state unknown"): a node cut
//! off from the database could otherwise sign on with a key an operator stopped
//! elsewhere. The issuance log is in the same database, so such a node could not record
//! what it issues anyway; the bound costs no availability that the log had not already
//! taken away. The first successful read lifts it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use hanko_pki::alg::{DigestSignAlgorithm, SignatureAlgorithm};
use hanko_pki::{BoxFuture, SignError, SignErrorKind, Signer};
use hanko_store::{KeySuspension, Store};

use crate::state::SigningKey;

/// How often every node reads the suspensions.
pub const POLL_EVERY: Duration = Duration::from_millis(250);
/// How long one read may take before it counts as failed.
const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the last state read stays in force when reads fail; after that every key is
/// refused until a read succeeds again.
pub const STALE_AFTER: Duration = Duration::from_secs(5);

/// What this node knows of the suspensions.
#[derive(Debug, Default)]
struct View {
    /// Suspended keys by label.
    keys: HashMap<String, KeySuspension>,
    /// When the table was last read successfully; `None` for a gate that is not fed from
    /// a database (tests without a log): it is never stale.
    read_at: Option<Instant>,
    /// The last read's error, while reads fail.
    error: Option<String>,
}

/// The suspension state of this node's keys (see the module docs). Shared by every
/// [`GatedSigner`], the poller, the admin API and `/readyz`.
#[derive(Debug, Default)]
pub struct Suspensions {
    view: RwLock<View>,
    /// The configured key labels, for the `hanko_key_suspended` gauge.
    labels: Vec<String>,
}

/// Why a key may not sign now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// An operator suspended it.
    Suspended(KeySuspension),
    /// The suspensions could not be read for longer than [`STALE_AFTER`].
    Unknown {
        /// Since the last successful read.
        since: Duration,
        /// The last read's error.
        error: String,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Suspended(s) => write!(
                f,
                "suspended by {} at {} (issuance log seq {}): {}",
                s.suspended_by,
                crate::http::anchor_api::rfc3339(s.suspended_at),
                s.audit_seq,
                if s.reason.is_empty() {
                    "no reason given"
                } else {
                    &s.reason
                }
            ),
            Refusal::Unknown { since, error } => write!(
                f,
                "suspension state unknown: the issuance log's key_suspensions could not be \
                 read for {:.1} s ({error}); refusing to sign until it can",
                since.as_secs_f64()
            ),
        }
    }
}

impl Suspensions {
    /// Reads the suspensions of `store` once (start-up fails if it cannot) for a server
    /// whose keys are `labels`.
    pub async fn load(store: &Store, labels: Vec<String>) -> anyhow::Result<Arc<Suspensions>> {
        use anyhow::Context as _;
        let list = store
            .key_suspensions()
            .await
            .context("cannot read the key suspensions from the issuance log")?;
        let this = Arc::new(Suspensions {
            view: RwLock::default(),
            labels,
        });
        for s in &list {
            tracing::warn!(key = %s.label, by = %s.suspended_by, reason = %s.reason,
                "key is suspended: nothing is signed with it until `hanko key resume`");
        }
        this.replace(list);
        Ok(this)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, View> {
        self.view.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether key `label` may sign now.
    pub fn check(&self, label: &str) -> Result<(), Refusal> {
        let view = self.read();
        if let Some(s) = view.keys.get(label) {
            return Err(Refusal::Suspended(s.clone()));
        }
        if let Some(at) = view.read_at {
            let since = at.elapsed();
            if since > STALE_AFTER {
                return Err(Refusal::Unknown {
                    since,
                    error: view
                        .error
                        .clone()
                        .unwrap_or_else(|| "no read finished".to_owned()),
                });
            }
        }
        Ok(())
    }

    /// The suspension of `label`, if it has one.
    pub fn get(&self, label: &str) -> Option<KeySuspension> {
        self.read().keys.get(label).cloned()
    }

    /// Every suspension this node knows of, by label.
    pub fn all(&self) -> BTreeMap<String, KeySuspension> {
        self.read()
            .keys
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// A problem reading the state, for `/readyz` (while reads fail, even before the
    /// state goes stale).
    pub fn read_problem(&self) -> Option<String> {
        let view = self.read();
        let error = view.error.as_ref()?;
        let since = view.read_at.map_or(0.0, |t| t.elapsed().as_secs_f64());
        Some(if since > STALE_AFTER.as_secs_f64() {
            format!(
                "key suspensions unreadable for {since:.1} s ({error}): every key refused \
                 until they can be read"
            )
        } else {
            format!(
                "key suspensions unreadable for {since:.1} s ({error}): the last state read \
                 stays in force for up to {} s",
                STALE_AFTER.as_secs()
            )
        })
    }

    /// Installs a freshly read state: logs what changed and sets the gauges.
    pub fn replace(&self, list: Vec<KeySuspension>) {
        let new: HashMap<String, KeySuspension> =
            list.into_iter().map(|s| (s.label.clone(), s)).collect();
        let mut view = self.view.write().unwrap_or_else(|e| e.into_inner());
        for (label, s) in &new {
            if !view.keys.contains_key(label) {
                tracing::warn!(key = %label, by = %s.suspended_by, reason = %s.reason,
                    "key suspended: signing with it stops");
            }
        }
        for label in view.keys.keys() {
            if !new.contains_key(label) {
                tracing::info!(key = %label, "key resumed: signing with it resumes");
            }
        }
        if view.error.take().is_some() {
            tracing::info!("key suspensions readable again");
        }
        view.keys = new;
        view.read_at = Some(Instant::now());
        for label in &self.labels {
            let v = if view.keys.contains_key(label) {
                1.0
            } else {
                0.0
            };
            metrics::gauge!("hanko_key_suspended", "key" => label.clone()).set(v);
        }
    }

    /// Records a failed read; the last state stays.
    fn failed(&self, error: String) {
        let mut view = self.view.write().unwrap_or_else(|e| e.into_inner());
        if view.error.is_none() {
            tracing::error!(error = %error, "cannot read the key suspensions; keeping the last \
                state for up to {} s, then refusing every key", STALE_AFTER.as_secs());
        }
        view.error = Some(error);
    }

    /// Reads the table once and installs what it says.
    pub async fn refresh(&self, store: &Store) {
        match tokio::time::timeout(READ_TIMEOUT, store.key_suspensions()).await {
            Ok(Ok(list)) => self.replace(list),
            Ok(Err(e)) => self.failed(e.to_string()),
            Err(_) => self.failed(format!("no answer within {READ_TIMEOUT:?}")),
        }
    }

    /// Polls `store` every [`POLL_EVERY`] until the returned handle is aborted.
    pub fn spawn_poller(self: &Arc<Self>, store: Store) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(POLL_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                this.refresh(&store).await;
            }
        })
    }
}

/// A signer that asks [`Suspensions`] before every signature (see the module docs).
#[derive(Debug)]
pub struct GatedSigner {
    label: String,
    inner: Arc<dyn Signer>,
    gate: Arc<Suspensions>,
}

impl GatedSigner {
    fn check(&self) -> Result<(), SignError> {
        self.gate.check(&self.label).map_err(|r| {
            SignError::new(
                SignErrorKind::Suspended,
                format!("key \"{}\": {r}", self.label),
            )
        })
    }
}

impl Signer for GatedSigner {
    fn algorithm(&self) -> SignatureAlgorithm {
        self.inner.algorithm()
    }

    fn public_key_der(&self) -> &[u8] {
        self.inner.public_key_der()
    }

    fn sign<'a>(&'a self, message: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, SignError>> {
        match self.check() {
            Ok(()) => self.inner.sign(message),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    fn sign_digest<'a>(
        &'a self,
        alg: DigestSignAlgorithm,
        digest: &'a [u8],
    ) -> BoxFuture<'a, Result<Vec<u8>, SignError>> {
        match self.check() {
            Ok(()) => self.inner.sign_digest(alg, digest),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    fn sign_digests<'a>(
        &'a self,
        alg: DigestSignAlgorithm,
        digests: &'a [Vec<u8>],
    ) -> BoxFuture<'a, Result<Vec<Vec<u8>>, SignError>> {
        match self.check() {
            Ok(()) => self.inner.sign_digests(alg, digests),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    fn is_ready(&self) -> bool {
        self.gate.check(&self.label).is_ok() && self.inner.is_ready()
    }

    fn not_ready_reason(&self) -> Option<String> {
        match self.gate.check(&self.label) {
            Err(r) => Some(r.to_string()),
            Ok(()) => self.inner.not_ready_reason(),
        }
    }
}

/// Puts every key's signer behind `gate`.
pub fn gate_keys(keys: Vec<SigningKey>, gate: &Arc<Suspensions>) -> Vec<SigningKey> {
    keys.into_iter()
        .map(|k| {
            let signer: Arc<dyn Signer> = Arc::new(GatedSigner {
                label: k.label().to_owned(),
                inner: k.signer().clone(),
                gate: gate.clone(),
            });
            k.with_signer(signer)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use std::time::SystemTime;

    use hanko_pki::soft::SoftwareSigner;
    use hanko_pki::{HashAlgorithm, KeyType};

    use super::*;

    fn suspension(label: &str) -> KeySuspension {
        KeySuspension {
            label: label.to_owned(),
            reason: "compromise suspected".to_owned(),
            suspended_by: "cli:root".to_owned(),
            suspended_at: SystemTime::now(),
            node_id: "node-1".to_owned(),
            audit_seq: 7,
        }
    }

    #[tokio::test]
    async fn a_suspended_key_signs_nothing_until_resumed() {
        let gate = Arc::new(Suspensions::default());
        let inner: Arc<dyn Signer> = Arc::new(
            SoftwareSigner::generate(
                KeyType::EcP256,
                SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256),
            )
            .unwrap(),
        );
        let signer = GatedSigner {
            label: "k".into(),
            inner,
            gate: gate.clone(),
        };
        assert!(signer.sign(b"m").await.is_ok());
        gate.replace(vec![suspension("k")]);
        let e = signer.sign(b"m").await.unwrap_err();
        assert_eq!(e.kind(), SignErrorKind::Suspended);
        assert!(e.context().contains("compromise suspected"), "{e}");
        assert!(!signer.is_ready());
        let why = signer.not_ready_reason().unwrap();
        assert!(why.contains("suspended by cli:root"), "{why}");
        // Another key's suspension is not this one's.
        gate.replace(vec![suspension("other")]);
        assert!(signer.sign(b"m").await.is_ok());
        assert!(signer.is_ready());
    }

    #[test]
    fn a_stale_state_refuses_every_key() {
        let gate = Suspensions::default();
        gate.replace(Vec::new());
        assert!(gate.check("k").is_ok());
        gate.failed("connection refused".into());
        // Within the bound: the last state (nothing suspended) holds, readyz says so.
        assert!(gate.check("k").is_ok());
        assert!(gate.read_problem().unwrap().contains("stays in force"));
        gate.view.write().unwrap().read_at = Some(Instant::now() - STALE_AFTER * 2);
        match gate.check("k") {
            Err(Refusal::Unknown { error, .. }) => assert_eq!(error, "connection refused"),
            other => panic!("{other:?}"),
        }
        assert!(gate.read_problem().unwrap().contains("every key refused"));
        gate.replace(Vec::new());
        assert!(gate.check("k").is_ok());
        assert_eq!(gate.read_problem(), None);
    }
}
