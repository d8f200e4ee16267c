//! The seal pipeline: where a checked seal request meets its credential, the server's
//! own TSA (for B-T) and the issuance log.
//!
//! The rule is the TSA's (docs/architecture.md, "A response is sent only after its log
//! record is durable"), applied to seals:
//!
//! ```text
//!   clock guard ─> now (refused: SealFailure::ClockUnavailable, nothing signed)
//!        v
//!   SealRequest ─> SealCredential::seal(now, OwnTsa for B-T) ─> Seal { der, record }
//!                        │ B-T: Issuer::issue ─> token logged ─> embedded
//!                        v
//!                  serial from the log's "seal" counter ─> Store::append (group commit)
//!                        │ durable                     │ error
//!                        v                             v
//!                  der released                 SealFailure::LogFailed (seal dropped)
//! ```
//!
//! The credentials are built at start-up from the `[[keys]]` with `usage = "seal"`,
//! each named by its key label ([`Sealer::with_options`]); `hanko_seal::SealCredential::new` runs
//! the e-seal certificate profile check and the key match again, so a bad credential
//! stops the start. Seals are logged whatever `store.durability` says: that dev-only
//! switch exists to measure the TSA without its log.
//!
//! The signing time comes from the TSA's clock guard (the same `now` a token gets), so
//! a seal is refused on an unsynchronised clock exactly when a token is ("no clock ->
//! no token", docs/requirements.md); in `--dev` the guard issues with a warning. A
//! server without `[tsa]` guards the kernel clock at 1 s accuracy.
//!
//! Who may use which credential is decided before this module is reached (`auth.rs`,
//! `http/seal.rs`); the client's name arrives here only to be recorded. What a
//! credential itself allows (`[keys.seal]`: its levels, its CSC algorithms) is its
//! metadata, given with [`SealerOptions`] and enforced by `hanko_seal::SealCredential`
//! for every route: a level it does not allow is the caller's error (400).
//!
//! B-T seals are stamped by the server's own TSA in-process, or, when `seal.tsa_url`
//! names one, by an external RFC 3161 TSA ([`crate::external_tsa::ExternalTsa`]); its
//! failures are retryable (503) and leave nothing in the log.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use hanko_seal::pades::Appearance;

use crate::visible_seal::VisibleSeals;
use hanko_seal::pades::appearance::VisibleSeal;
use hanko_seal::{
    CheckedPdf, Fault, Level, PdfSealRequest, Seal, SealCredential, SealMetadata, SealRecord,
    SealRequest, SealedPdf, TimeStamper,
};
use hanko_store::{NewRecord, RecordKind, SerialAllocator, Store};
use hanko_tsa::{ClockGuard, ClockGuardConfig, ClockProblem};

use crate::config::KeyUsage;
use crate::issuance::{Issuer, OwnTsa};
use crate::logging::LogLimiter;
use crate::state::SigningKey;

/// The serial counter of seal records in the issuance log (TSA tokens use
/// `tsa.serial_counter`): each seal record gets the next number, so seals are unique
/// per kind across nodes sharing one log, like tokens.
pub const SEAL_SERIAL_COUNTER: &str = "seal";

/// The seal credentials of a server, the log their seals go to, and the TSA that
/// stamps B-T seals.
#[derive(Debug)]
pub struct Sealer {
    /// Every loaded seal key's credential, named by its label (a rollover's next key
    /// too, before it takes over).
    credentials: RwLock<Vec<Arc<SealCredential>>>,
    /// Which credential serves each name clients use: a key serves its own label; after
    /// a rollover (`keys.succeeds`) the next key serves the old key's name as well, so
    /// the credential ID issuance systems are configured with keeps working. A key
    /// still to come serves nothing.
    serving: RwLock<HashMap<String, String>>,
    store: Store,
    serials: SerialAllocator,
    issuer: Option<Arc<Issuer>>,
    /// The clock of a server without a TSA (with one, the TSA's guard is used).
    own_clock: Option<ClockGuard>,
    /// The external TSA of B-T seals (`seal.tsa_url`), used instead of `issuer`.
    external_tsa: Option<Arc<dyn TimeStamper>>,
    /// The credentials' visible PDF seals (those with a seal image).
    visible: RwLock<VisibleSeals>,
}

/// What [`Sealer::with_options`] takes beyond the keys: credential metadata, an external TSA.
#[derive(Debug, Default)]
pub struct SealerOptions {
    /// Each credential's metadata, by key label; a credential not named here gets the
    /// default (every level, every algorithm that fits its key).
    pub metadata: std::collections::HashMap<String, SealMetadata>,
    /// The TSA of B-T seals instead of the server's own.
    pub external_tsa: Option<Arc<dyn TimeStamper>>,
    /// Key rollover: the keys still to come, with the time each certificate is checked
    /// for (its activation), and which key serves each name now (default: each key its
    /// own label).
    pub rollover: Option<SealRollover>,
}

/// The seal keys' rollover state at start-up (`rollover::StartPlan`).
#[derive(Debug, Default, Clone)]
pub struct SealRollover {
    /// Keys still to come, with their activation time.
    pub pending: HashMap<String, SystemTime>,
    /// Name -> the label of the key serving it now.
    pub serving: HashMap<String, String>,
}

/// The credential of seal key `key`, named by its label, its certificate checked for
/// `at`.
pub fn credential_of(
    key: &SigningKey,
    metadata: SealMetadata,
    at: SystemTime,
) -> anyhow::Result<Arc<SealCredential>> {
    let credential =
        SealCredential::new(key.label(), key.signer().clone(), key.chain().to_vec(), at)
            .and_then(|c| c.with_metadata(metadata))
            .with_context(|| format!("seal credential \"{}\"", key.label()))?;
    Ok(Arc::new(credential))
}

/// Why a seal was not released.
#[derive(Debug, thiserror::Error)]
pub enum SealFailure {
    /// The seal itself failed; [`hanko_seal::Error::fault`] says whose fault.
    #[error(transparent)]
    Seal(#[from] hanko_seal::Error),
    /// The clock guard refuses the clock: nothing was signed, the client may retry.
    #[error("clock: {0}")]
    ClockUnavailable(ClockProblem),
    /// The seal was made but its record did not commit (or no serial could be
    /// reserved for it): it is dropped, the client may retry.
    #[error("issuance log write failed: {0}")]
    LogFailed(hanko_store::Error),
}

impl SealFailure {
    /// The metric label (`hanko_seal_failures_total{reason}`).
    pub fn label(&self) -> &'static str {
        match self {
            Self::Seal(e) => e.label(),
            Self::ClockUnavailable(_) => "clock",
            Self::LogFailed(_) => "log",
        }
    }
}

impl Sealer {
    /// One credential per key of usage `seal`, named by its label, checked at `now`;
    /// B-T seals are stamped by `issuer` (none: B-T is refused as a system fault), and
    /// signing times come from its clock guard (none: a guard over the kernel clock,
    /// relaxed when `dev`); `options` carry the credentials' metadata and an external TSA.
    pub fn with_options(
        keys: &[SigningKey],
        store: Store,
        issuer: Option<Arc<Issuer>>,
        serial_block: u64,
        now: SystemTime,
        dev: bool,
        mut options: SealerOptions,
    ) -> anyhow::Result<Sealer> {
        let mut credentials = Vec::new();
        let rollover = options.rollover.take();
        for key in keys.iter().filter(|k| k.usage() == KeyUsage::Seal) {
            let metadata = options.metadata.remove(key.label()).unwrap_or_default();
            // A key still to come is checked for the time it takes over.
            let at = rollover
                .as_ref()
                .and_then(|r| r.pending.get(key.label()))
                .map_or(now, |at| (*at).max(now));
            let credential = credential_of(key, metadata, at)?;
            let m = credential.metadata();
            tracing::info!(
                credential = %key.label(),
                subject = %key.certificate().subject_string(),
                alg = %key.signer().algorithm(),
                levels = %m.levels_text(),
                description = m.description.as_deref().unwrap_or(""),
                "seal credential ready"
            );
            credentials.push(credential);
        }
        let serving = match rollover {
            Some(r) => r.serving,
            None => credentials
                .iter()
                .map(|c| (c.name().to_owned(), c.name().to_owned()))
                .collect(),
        };
        let serials = store.serial_allocator(SEAL_SERIAL_COUNTER, serial_block);
        let own_clock = match (&issuer, credentials.is_empty()) {
            (None, false) => {
                let mut config = ClockGuardConfig::for_accuracy(Duration::from_secs(1));
                config.dev_mode = dev;
                Some(ClockGuard::new(
                    crate::clock::ClockSourceConfig::Kernel.start(),
                    config,
                ))
            }
            _ => None,
        };
        Ok(Sealer {
            credentials: RwLock::new(credentials),
            serving: RwLock::new(serving),
            store,
            serials,
            issuer,
            own_clock,
            external_tsa: options.external_tsa,
            visible: RwLock::new(VisibleSeals::default()),
        })
    }

    /// The credentials' visible PDF seals, built at start-up
    /// ([`VisibleSeals::build`]).
    pub fn with_visible_seals(self, visible: VisibleSeals) -> Self {
        *self.visible.write().unwrap_or_else(|e| e.into_inner()) = visible;
        self
    }

    /// What draws `credential`'s visible seal; `None` when it has no seal image.
    pub fn visible_seal(&self, credential: &str) -> Option<Arc<VisibleSeal>> {
        self.visible
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(credential)
            .cloned()
    }

    /// The credential that serves the name `name` now: the key of that label, or the
    /// key that took over from it; `None` for an unknown name or a key still to come.
    pub fn credential(&self, name: &str) -> Option<Arc<SealCredential>> {
        let label = self
            .serving
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)?
            .clone();
        self.loaded(&label)
    }

    /// The loaded credential of key `label`, whether it serves or not.
    fn loaded(&self, label: &str) -> Option<Arc<SealCredential>> {
        self.credentials
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|c| c.name() == label)
            .cloned()
    }

    /// The credentials that serve now, in configuration order (not a key still to come,
    /// nor one a rollover retired).
    pub fn credentials(&self) -> Vec<Arc<SealCredential>> {
        let serving = self.serving.read().unwrap_or_else(|e| e.into_inner());
        self.credentials
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|c| serving.get(c.name()).is_some_and(|l| l == c.name()))
            .cloned()
            .collect()
    }

    /// The names clients may ask for now, in configuration order: each serving key's
    /// label and the labels of the keys it took over from (CSC `credentials/list`).
    pub fn names(&self) -> Vec<String> {
        let serving = self.serving.read().unwrap_or_else(|e| e.into_inner());
        self.credentials
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|c| serving.contains_key(c.name()))
            .map(|c| c.name().to_owned())
            .collect()
    }

    /// Every loaded credential, those still to come and retired ones too (the visible
    /// seals are built for each).
    pub fn loaded_credentials(&self) -> Vec<Arc<SealCredential>> {
        self.credentials
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A reload's next key: its credential (serving nothing until its rollover) and its
    /// visible seal, if it has one.
    pub fn add(&self, credential: Arc<SealCredential>, visible: VisibleSeals) {
        self.credentials
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(credential);
        self.visible
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .extend(visible);
    }

    /// Key rollover: the credential of `successor` serves every name `predecessor`
    /// served, and its own. Returns the names handed over.
    pub fn hand_over(&self, predecessor: &str, successor: &str) -> Vec<String> {
        let mut serving = self.serving.write().unwrap_or_else(|e| e.into_inner());
        let mut moved = Vec::new();
        for (name, label) in serving.iter_mut() {
            if label == predecessor {
                *label = successor.to_owned();
                moved.push(name.clone());
            }
        }
        serving.insert(successor.to_owned(), successor.to_owned());
        moved.sort();
        moved
    }

    /// The clock guard signing times come from: the TSA's, else the server's own.
    fn clock(&self) -> Option<&ClockGuard> {
        match &self.issuer {
            Some(issuer) => Some(issuer.tsa().clock()),
            None => self.own_clock.as_ref(),
        }
    }

    /// Why the server's own clock (there is no TSA) refuses seals now, for `/readyz`;
    /// none with a TSA (its readiness reports the shared guard) or in `--dev`.
    pub fn own_clock_problem(&self) -> Option<ClockProblem> {
        let report = self.own_clock.as_ref()?.report();
        if report.dev_mode {
            None
        } else {
            report.problem
        }
    }

    /// Seals `request` with `credential` for `client` and returns the DER CMS once its
    /// record is durable. Counted in `hanko_seal_total{credential,form="cades",level}`
    /// after the commit, failures in `hanko_seal_failures_total{reason}`.
    pub async fn seal(
        &self,
        credential: &SealCredential,
        request: &SealRequest<'_>,
        client: &str,
    ) -> Result<Vec<u8>, SealFailure> {
        let result = async {
            let own = self.own_tsa(client);
            let stamper = self.stamper(own.as_ref());
            let now = self.now()?;
            let Seal { der, record, .. } = credential.seal(request, now, stamper).await?;
            self.log(&record, Some(der.clone()), client).await?;
            Ok(der)
        }
        .await;
        count(credential, Form::Cades, request.level(), &result);
        result
    }

    /// Seals `pdf` (PAdES) with `credential` for `client`; the sealed file is `pdf`
    /// followed by the returned [`SealedPdf::update`], released once its record is
    /// durable. The record's object hash is the SHA-256 of the whole sealed file; the
    /// file itself is not kept in the log (it may be large), only its hash and the
    /// ByteRange digest. `appearance` draws a visible seal. Counted like [`Sealer::seal`],
    /// with `form="pades"`.
    pub async fn seal_pdf(
        &self,
        credential: &SealCredential,
        pdf: &[u8],
        request: &PdfSealRequest,
        client: &str,
        appearance: Option<&dyn Appearance>,
    ) -> Result<SealedPdf, SealFailure> {
        match CheckedPdf::new(pdf, request) {
            Ok(checked) => {
                self.seal_checked_pdf(credential, checked, client, appearance)
                    .await
            }
            Err(e) => {
                let failed = Err(SealFailure::Seal(e));
                count(credential, Form::Pades, request.level, &failed);
                failed
            }
        }
    }

    /// [`Sealer::seal_pdf`] of a file already checked ([`CheckedPdf::new`]), for a
    /// caller that judges a batch before sealing any of it (CSC `signDoc`).
    pub async fn seal_checked_pdf(
        &self,
        credential: &SealCredential,
        checked: CheckedPdf<'_>,
        client: &str,
        appearance: Option<&dyn Appearance>,
    ) -> Result<SealedPdf, SealFailure> {
        let level = checked.request().level;
        let result = async {
            let own = self.own_tsa(client);
            let stamper = self.stamper(own.as_ref());
            let now = self.now()?;
            let sealed = credential
                .seal_checked_pdf(checked, now, stamper, appearance)
                .await?;
            self.log(&sealed.record, None, client).await?;
            Ok(sealed)
        }
        .await;
        count(credential, Form::Pades, level, &result);
        result
    }

    /// The server's own TSA as a B-T time-stamper, for `client`.
    fn own_tsa<'a>(&'a self, client: &'a str) -> Option<OwnTsa<'a>> {
        self.issuer
            .as_deref()
            .map(|issuer| OwnTsa { issuer, client })
    }

    /// The B-T time-stamper of CAdES and PAdES seals alike: the external TSA when
    /// `[seal] tsa_url` names one, else `own` (the server's own TSA).
    fn stamper<'a>(&'a self, own: Option<&'a OwnTsa<'a>>) -> Option<&'a dyn TimeStamper> {
        match &self.external_tsa {
            Some(external) => Some(external.as_ref()),
            None => own.map(|s| s as &dyn TimeStamper),
        }
    }

    /// The signing time. No clock, no seal: the guard's refusal stops it before
    /// anything is signed.
    fn now(&self) -> Result<SystemTime, SealFailure> {
        match self.clock() {
            Some(clock) => clock.now().map_err(SealFailure::ClockUnavailable),
            // Unreachable: a Sealer with credentials always has a clock.
            None => Err(SealFailure::ClockUnavailable(ClockProblem::Unsynchronised)),
        }
    }

    /// Makes `record` durable under the next seal serial; `token` is the issued bytes
    /// when the log keeps them (their SHA-256 is the record's object hash).
    async fn log(
        &self,
        record: &SealRecord,
        token: Option<Vec<u8>>,
        client: &str,
    ) -> Result<(), SealFailure> {
        let object_hash: [u8; 32] = record.object_hash.as_slice().try_into().map_err(|_| {
            // SealRecord::object_hash is a SHA-256 by construction.
            SealFailure::Seal(hanko_seal::Error::Cms(hanko_pki::cms::CmsError::Encode(
                "object hash is not a SHA-256".into(),
            )))
        })?;
        let serial = self
            .serials
            .next_bytes()
            .await
            .map_err(SealFailure::LogFailed)?;
        let new = NewRecord {
            kind: RecordKind::Seal,
            serial,
            object_hash,
            request_hash: record.content_digest.clone(),
            policy: record.credential.clone(),
            client: client.to_owned(),
            issued_at: record.signing_time,
            token,
        };
        let receipt = self
            .store
            .append(new)
            .await
            .map_err(SealFailure::LogFailed)?;
        tracing::debug!(
            credential = %record.credential,
            level = %record.level,
            seq = receipt.seq,
            "seal logged"
        );
        Ok(())
    }
}

/// The form of a seal, the `form` label of `hanko_seal_total`.
#[derive(Clone, Copy, Debug)]
enum Form {
    /// A CMS (CAdES) seal: `POST /api/v1/seal/cades`, CSC `signDoc` format "C".
    Cades,
    /// A sealed PDF (PAdES): `POST /api/v1/seal/pdf`, CSC `signDoc` format "P".
    Pades,
}

impl Form {
    fn label(self) -> &'static str {
        match self {
            Self::Cades => "cades",
            Self::Pades => "pades",
        }
    }
}

/// Counts a seal after its commit in `hanko_seal_total{credential,form,level}`, a
/// failure in `hanko_seal_failures_total{reason}` (and logs ours).
fn count<T>(
    credential: &SealCredential,
    form: Form,
    level: Level,
    result: &Result<T, SealFailure>,
) {
    match result {
        Ok(_) => {
            metrics::counter!("hanko_seal_total",
                "credential" => credential.name().to_owned(),
                "form" => form.label(),
                "level" => level.name())
            .increment(1);
        }
        Err(e) => {
            metrics::counter!("hanko_seal_failures_total", "reason" => e.label()).increment(1);
            log_failure(e);
        }
    }
}

/// How often a failure that repeats with every request is logged again (each one is
/// counted in metrics; see `logging.rs`).
const REPEAT_EVERY: Duration = Duration::from_secs(10);

/// Logs a failure of ours (not the caller's) at ERROR, at most once per
/// [`REPEAT_EVERY`] with the number left out.
fn log_failure(e: &SealFailure) {
    static FAILURES: LogLimiter = LogLimiter::new(REPEAT_EVERY);
    let retryable = match e {
        SealFailure::Seal(s) => match s.fault() {
            Fault::Caller => return,
            Fault::Retryable => true,
            // Fault is non_exhaustive: a fault hanko-seal adds is an operator's to see.
            _ => false,
        },
        SealFailure::ClockUnavailable(_) => true,
        SealFailure::LogFailed(l) => l.is_retryable(),
    };
    if let Some(suppressed) = FAILURES.check() {
        tracing::error!(error = %e, retryable, suppressed, "seal failed: not released");
    }
}
