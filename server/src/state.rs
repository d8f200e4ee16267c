//! [`AppState`]: what every HTTP handler can reach, shared as `Arc<AppState>`.
//!
//! Built once at start-up (`startup/`), after every key passed its checks, and never
//! replaced: the fields are not behind a lock. What changes at run time is asked of its
//! owner, not cached here: the token's and each signer's readiness (`Hsm::is_ready`,
//! `Signer::not_ready_reason`), the clock and the TSU windows (`Tsa::check_ready`), and
//! the admission counters, which [`crate::http::Limits`] keeps itself. The TSA with its
//! issuance log (`issuer`), the log for reads (`store`), API keys and admission control
//! each have a field, as do the seal credentials (`sealer`); a new subsystem adds one here and a route file under `http/`.
//! Dropping the last reference stops the signing pools (`serve::release`).

use std::sync::Arc;

use hanko_hsm::Hsm;
use hanko_pki::Signer;
use hanko_pki::cert::Certificate;
use metrics_exporter_prometheus::PrometheusHandle;

use hanko_store::Store;

use crate::config::KeyUsage;
use crate::issuance::Issuer;
use crate::seal::Sealer;

/// Shared state of a running server.
#[derive(Debug)]
pub struct AppState {
    /// Development mode (`--dev`): relaxed and loud.
    pub dev: bool,
    /// The logged-in token. `None` only in tests that run on software keys.
    pub hsm: Option<Hsm>,
    /// The signing keys, in configuration order; each passed its checks when it was
    /// loaded (at start-up, or by a reload that added a key's successor).
    pub keys: KeyRing,
    /// Renders `/metrics`. `None` when no recorder is installed (tests).
    pub metrics: Option<PrometheusHandle>,
    /// The time-stamp authority and its log; `None` when no TSA key is configured.
    pub issuer: Option<Arc<Issuer>>,
    /// The seal credentials (one per `usage = "seal"` key, named by its label) and
    /// their log; `None` in tests that need no seals.
    pub sealer: Option<Arc<Sealer>>,
    /// The issuance log, for the log API's reads (the TSA appends through `issuer`).
    /// `None` only in tests that need no log.
    pub store: Option<Store>,
    /// The clients and whether the TSA is public (none: every protected request is
    /// refused).
    pub clients: crate::auth::Clients,
    /// Admission control of the signing routes (`[http]`; `Limits::default()` in tests).
    pub limits: Arc<crate::http::Limits>,
    /// What the CSC API's `info` says of the service (`[csc]`).
    pub csc_info: crate::config::CscInfo,
    /// The recipient's verification (`/verify`, `[verify]`): trust anchors, upload
    /// limit, the evidence seam.
    pub verifier: Arc<crate::verify::Verifier>,
    /// Merkle anchoring's settings, for the evidence and batch routes; `None` when
    /// `[anchor]` is disabled (those routes then answer 404).
    pub anchor: Option<crate::config::AnchorSettings>,
    /// Archive submissions (`POST /api/v1/archive/objects`, issue #16); `None` when
    /// anchoring is off or there is no log (the route then answers 404).
    pub archive: Option<Arc<crate::archive::Archive>>,
    /// The evidence routes' closed batches with the trees over their block roots.
    pub batches: Arc<crate::anchor::evidence::BatchCache>,
    /// The renewal of evidence records archives hold (`POST /api/v1/evidence/renew`,
    /// `[renewal]`); `None` without a TSA (the route then answers 404).
    pub renewal: Option<Arc<crate::renewal::Renewer>>,
    /// The emergency stop: which keys are suspended (every key's signer asks it before
    /// signing; the admin API changes it; `/readyz` reports it).
    pub suspensions: Arc<crate::suspension::Suspensions>,
    /// The TSA units' key rollovers (`keys.succeeds`); `None` without a TSA.
    pub rollover: Option<Arc<crate::rollover::Rollover>>,
    /// Configuration reload (SIGHUP, `hanko reload`, `POST /api/v1/admin/reload`);
    /// `None` in tests that run without a configuration file.
    pub reloader: Option<Arc<crate::reload::Reloader>>,
}

impl AppState {
    /// The signing keys now.
    pub fn keys(&self) -> Arc<Vec<SigningKey>> {
        self.keys.snapshot()
    }

    /// The key labelled `label`.
    pub fn key(&self, label: &str) -> Option<SigningKey> {
        self.keys().iter().find(|k| k.label() == label).cloned()
    }

    /// Where key `label` stands in a rollover ([`crate::rollover::KeyPhase::Active`]
    /// without a TSA).
    pub fn key_phase(&self, label: &str) -> crate::rollover::KeyPhase {
        self.rollover
            .as_ref()
            .map_or(crate::rollover::KeyPhase::Active, |r| r.phase(label))
    }
}

/// The loaded keys: fixed at start-up but for the next keys of TSA units that a reload
/// adds (`reload.rs`). Readers take a snapshot; the list only grows.
#[derive(Debug, Default)]
pub struct KeyRing(std::sync::RwLock<Arc<Vec<SigningKey>>>);

impl KeyRing {
    /// A ring of `keys`.
    pub fn new(keys: Vec<SigningKey>) -> Self {
        Self(std::sync::RwLock::new(Arc::new(keys)))
    }

    /// The keys now.
    pub fn snapshot(&self) -> Arc<Vec<SigningKey>> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Adds `more` after the keys there are.
    pub fn extend(&self, more: Vec<SigningKey>) {
        let mut w = self.0.write().unwrap_or_else(|e| e.into_inner());
        let mut keys = Vec::clone(&w);
        keys.extend(more);
        *w = Arc::new(keys);
    }
}

/// One signing key: the signer (HSM pool) and the certificate chain that goes with it.
#[derive(Clone, Debug)]
pub struct SigningKey {
    label: String,
    usage: KeyUsage,
    signer: Arc<dyn Signer>,
    chain: Vec<Certificate>,
}

impl SigningKey {
    /// A key with its chain: `chain[0]` is the key's certificate, then its issuers in
    /// order. Returns `None` for an empty chain. Checks are the caller's job (see
    /// `keys::load_keys`).
    pub fn new(
        label: String,
        usage: KeyUsage,
        signer: Arc<dyn Signer>,
        chain: Vec<Certificate>,
    ) -> Option<SigningKey> {
        if chain.is_empty() {
            return None;
        }
        Some(SigningKey {
            label,
            usage,
            signer,
            chain,
        })
    }

    /// The same key and chain signing through `signer` (the emergency stop's gate,
    /// `suspension::gate_keys`).
    pub fn with_signer(self, signer: Arc<dyn Signer>) -> SigningKey {
        SigningKey { signer, ..self }
    }

    /// The key's `CKA_LABEL`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// TSA or seal.
    pub fn usage(&self) -> KeyUsage {
        self.usage
    }

    /// The signer (an `HsmSigner` in a real server).
    pub fn signer(&self) -> &Arc<dyn Signer> {
        &self.signer
    }

    /// The chain, the key's own certificate first (with original DER).
    pub fn chain(&self) -> &[Certificate] {
        &self.chain
    }

    /// The key's own certificate.
    pub fn certificate(&self) -> &Certificate {
        // `new` refuses an empty chain.
        &self.chain[0]
    }
}

#[cfg(test)]
impl AppState {
    /// A state with nothing in it (no token, key, TSA, seal, log or client), for route
    /// tests; `AppState { field, ..AppState::bare() }` fills in what a test needs.
    pub(crate) fn bare() -> AppState {
        AppState {
            dev: false,
            hsm: None,
            keys: Default::default(),
            metrics: None,
            sealer: None,
            issuer: None,
            store: None,
            clients: Default::default(),
            limits: Default::default(),
            csc_info: Default::default(),
            verifier: Default::default(),
            anchor: None,
            archive: None,
            batches: Default::default(),
            renewal: None,
            suspensions: Default::default(),
            rollover: None,
            reloader: None,
        }
    }
}
