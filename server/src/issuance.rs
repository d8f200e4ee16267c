//! The issuance pipeline: where a protocol answer meets the issuance log.
//!
//! The one rule this module exists for (docs/architecture.md, "A response is sent only
//! after its log record is durable"):
//!
//! ```text
//!   request DER ─> Tsa::respond ─> Granted(token) ─> Store::append (group commit) ─┐
//!                       │                                  │ durable      │ error │
//!                       └─> Rejected ─> rejection DER      v              v       │
//!                                                   response DER   systemFailure  │
//!                                                                  (token dropped)┘
//! ```
//!
//! B-T seals take the same path: their signature time-stamp comes from [`OwnTsa`], a
//! `hanko_seal::TimeStamper` over [`Issuer::issue`], so it is logged (and counted) like
//! any other token before the seal that carries it is even finished. So do the CSC API's
//! `signatures/timestamp` tokens ([`Issuer::issue_imprint`], the request built
//! in-process from the caller's hash and nonce).
//!
//! A token whose record did not commit is never released: the client gets a
//! `systemFailure` TimeStampResp instead, and its serial is simply never used again
//! (serials are reserved in the log before use, so a lost token cannot cause a reuse).
//! Rejections are not issuance and are not logged; they are counted in metrics.
//! `hanko_tsa_tokens_total` counts tokens sent, so only once their record committed.
//! Failures of ours (signing, serials, the log) are logged at ERROR, at most once per
//! ten seconds with the number left out: they come once per request, and under a fault
//! a line per request would bury everything else.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hanko_pki::{HashAlgorithm, SignErrorKind};
use hanko_seal::{TimeStampError, TimeStampErrorKind, TimeStamper};
use hanko_store::{NewRecord, RecordKind, SerialAllocator, Store};
use hanko_tsa::{
    FailureInfo, IssuedToken, Outcome, Rejection, Serial, SerialError, SerialSource, TimeStampUnit,
    Tsa,
};

use crate::logging::LogLimiter;

/// Serial numbers for the TSA, reserved in blocks from the issuance log (one atomic
/// statement per block, so nodes sharing a PostgreSQL never collide and a crash never
/// leads to reuse: see `hanko_store::serial`).
#[derive(Debug)]
pub struct StoreSerials {
    alloc: SerialAllocator,
}

impl StoreSerials {
    /// Serials from `store`'s counter `counter`, reserved `block` at a time.
    pub fn new(store: &Store, counter: &str, block: u64) -> Self {
        Self {
            alloc: store.serial_allocator(counter, block),
        }
    }
}

impl SerialSource for StoreSerials {
    fn next_serial(&self) -> hanko_pki::BoxFuture<'_, Result<Serial, SerialError>> {
        Box::pin(async move {
            let n = self
                .alloc
                .next()
                .await
                .map_err(|e| SerialError::new(format!("serial reservation: {e}")))?;
            Serial::from_u64(n)
        })
    }
}

/// One policy the TSA serves and the unit that signs it (for `GET /tsa/policy`).
#[derive(Clone, Debug)]
pub struct PolicyUnit {
    /// The policy OID.
    pub policy: hanko_tsa::PolicyId,
    /// The label of the unit's key.
    pub key: String,
    /// The unit.
    pub unit: Arc<TimeStampUnit>,
}

/// Issues time-stamps: the TSA plus the log it must write to before answering.
#[derive(Debug)]
pub struct Issuer {
    /// Which unit signs which policy now, and the units that did before (rollover).
    units: std::sync::RwLock<Units>,
    clock_source: &'static str,
    tsa: Arc<Tsa>,
    store: Store,
    /// False only with the dev-only `store.durability = "none"` (benchmarks).
    log_appends: bool,
    stages: Stages,
}

/// `hanko_tsa_issue_seconds`, by `stage`: where an issued token's time went, registered
/// once. `sign`: the TSA's answer (request checks, serial, the signing pool's queue and
/// call, the token's DER); `log`: from the append until the record is durable and the
/// request runs again. Compare with `hanko_hsm_queue_wait_seconds`,
/// `hanko_hsm_call_seconds`, `hanko_log_queue_seconds` and `hanko_log_commit_seconds`.
#[derive(Debug)]
struct Stages {
    sign: metrics::Histogram,
    log: metrics::Histogram,
}

impl Stages {
    fn register() -> Stages {
        Stages {
            sign: metrics::histogram!("hanko_tsa_issue_seconds", "stage" => "sign"),
            log: metrics::histogram!("hanko_tsa_issue_seconds", "stage" => "log"),
        }
    }
}

/// The policies' units now, and the units that were handed over from.
#[derive(Debug, Default)]
struct Units {
    active: Vec<PolicyUnit>,
    /// Units that signed before a rollover, with their key's label: their certificates
    /// stay in `/tsa/certs` until they expire.
    retired: Vec<(String, Arc<TimeStampUnit>)>,
}

impl Issuer {
    /// An issuer over `tsa`, whose policies are signed as `policy_units` say (each
    /// installed in `tsa` already), that logs to `store`.
    pub fn new(tsa: Arc<Tsa>, policy_units: Vec<PolicyUnit>, store: Store) -> Self {
        Self {
            units: std::sync::RwLock::new(Units {
                active: policy_units,
                retired: Vec::new(),
            }),
            clock_source: "kernel",
            tsa,
            store,
            log_appends: true,
            stages: Stages::register(),
        }
    }

    /// DEVELOPMENT ONLY (`store.durability = "none"`, refused without `--dev`): granted
    /// tokens are sent without being logged, so that benchmarks can measure the log's
    /// cost. Breaks the rule this module exists for; never in production.
    pub fn without_log_appends_dev_only(mut self) -> Self {
        self.log_appends = false;
        self
    }

    /// Records the name of the clock source (`clock.source`) that `GET /tsa/policy`
    /// discloses.
    pub fn with_clock_source(mut self, clock_source: &'static str) -> Self {
        self.clock_source = clock_source;
        self
    }

    /// Records `unit` (key `label`) as one that signed before a rollover already (a
    /// succession whose time had passed when the server started).
    pub fn with_retired(self, label: &str, unit: Arc<TimeStampUnit>) -> Self {
        self.write_units().retired.push((label.to_owned(), unit));
        self
    }

    fn read_units(&self) -> std::sync::RwLockReadGuard<'_, Units> {
        self.units.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_units(&self) -> std::sync::RwLockWriteGuard<'_, Units> {
        self.units.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The policies served, each with the unit that signs it now.
    pub fn policy_units(&self) -> Vec<PolicyUnit> {
        self.read_units().active.clone()
    }

    /// The configured clock source's name (`kernel`, `chrony`).
    pub fn clock_source(&self) -> &'static str {
        self.clock_source
    }

    /// The units that sign now (distinct keys).
    pub fn units(&self) -> Vec<Arc<TimeStampUnit>> {
        let mut out: Vec<Arc<TimeStampUnit>> = Vec::new();
        for pu in &self.read_units().active {
            if !out.iter().any(|u| Arc::ptr_eq(u, &pu.unit)) {
                out.push(pu.unit.clone());
            }
        }
        out
    }

    /// What `/tsa/certs` publishes at `now`: the units that sign now, then those that
    /// signed before a rollover while their certificate has not expired (their tokens
    /// are still verified with it).
    pub fn published_units(&self, now: std::time::SystemTime) -> Vec<Arc<TimeStampUnit>> {
        let mut out = self.units();
        for (_, u) in &self.read_units().retired {
            if u.certificate().not_after() > now && !out.iter().any(|o| Arc::ptr_eq(o, u)) {
                out.push(u.clone());
            }
        }
        out
    }

    /// Key rollover: `unit` (key `successor`) signs every policy key `predecessor`
    /// signed, from now on; requests already past the unit lookup finish on the old
    /// key. Returns the policies handed over (none when `predecessor` signs nothing).
    pub fn hand_over(
        &self,
        predecessor: &str,
        successor: &str,
        unit: &Arc<TimeStampUnit>,
    ) -> Result<Vec<hanko_tsa::PolicyId>, hanko_tsa::Error> {
        let mut units = self.write_units();
        let mut moved = Vec::new();
        let mut old = None;
        for pu in units.active.iter_mut().filter(|pu| pu.key == predecessor) {
            self.tsa.install_unit(&pu.policy, unit.clone())?;
            metrics::gauge!("hanko_tsa_unit_key", "policy" => pu.policy.to_string(), "key" => predecessor.to_owned())
                .set(0.0);
            metrics::gauge!("hanko_tsa_unit_key", "policy" => pu.policy.to_string(), "key" => successor.to_owned())
                .set(1.0);
            old = Some(std::mem::replace(&mut pu.unit, unit.clone()));
            pu.key = successor.to_owned();
            moved.push(pu.policy.clone());
        }
        if let Some(old) = old {
            units.retired.push((predecessor.to_owned(), old));
        }
        Ok(moved)
    }

    /// The TSA (for readiness and certificates).
    pub fn tsa(&self) -> &Tsa {
        &self.tsa
    }

    /// The issuance log.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Answers one RFC 3161 request with a DER TimeStampResp. A granted token is returned
    /// only once its record is durable in the log; otherwise the answer is
    /// `systemFailure`. `client` is the authenticated identity, or `"anonymous"`.
    pub async fn timestamp(&self, request_der: &[u8], client: &str) -> Vec<u8> {
        match self.issue(request_der, client).await {
            Ok(issued) => issued.response_der,
            Err(r) => Tsa::failure_response(&r),
        }
    }

    /// Issues one token for `request_der`: the TSA's answer, then its record made durable
    /// in the log. The one path every token takes, whether it leaves as a TimeStampResp
    /// (`POST /tsa`) or inside a B-T seal ([`OwnTsa`]). `Err` is the rejection to answer
    /// with ([`Rejection::LogFailed`] when the record did not commit: the token is
    /// dropped).
    pub async fn issue(&self, request_der: &[u8], client: &str) -> Result<Issued, Rejection> {
        self.issue_as(request_der, client, RecordKind::Timestamp)
            .await
    }

    /// [`Issuer::issue`], logged as `kind`.
    async fn issue_as(
        &self,
        request_der: &[u8],
        client: &str,
        kind: RecordKind,
    ) -> Result<Issued, Rejection> {
        let started = Instant::now();
        let response = self.tsa.respond(request_der).await;
        self.stages.sign.record(started.elapsed().as_secs_f64());
        let token = match response.outcome {
            Outcome::Granted(token) => token,
            Outcome::Rejected(r) => {
                log_system_failure(&r);
                return Err(r);
            }
        };
        if !self.log_appends {
            count_sent();
            return Ok(Issued {
                response_der: response.der,
                token,
            });
        }
        let record = NewRecord {
            kind,
            serial: token.serial.as_be_bytes().to_vec(),
            object_hash: NewRecord::object_hash_of(&token.token_der),
            request_hash: token.imprint.clone(),
            policy: token.policy.to_string(),
            client: client.to_owned(),
            issued_at: token.gen_time,
            token: Some(token.token_der.clone()),
        };
        let queued = Instant::now();
        let appended = self.store.append(record).await;
        self.stages.log.record(queued.elapsed().as_secs_f64());
        match appended {
            Ok(receipt) => {
                tracing::debug!(serial = %token.serial, seq = receipt.seq, "token logged");
                count_sent();
                Ok(Issued {
                    response_der: response.der,
                    token,
                })
            }
            Err(e) => {
                static LOG_FAILURES: LogLimiter = LogLimiter::new(REPEAT_EVERY);
                metrics::counter!("hanko_tsa_log_failures_total").increment(1);
                if let Some(suppressed) = LOG_FAILURES.check() {
                    tracing::error!(
                        serial = %token.serial,
                        error = %e,
                        retryable = e.is_retryable(),
                        suppressed,
                        "issuance log write failed: token withheld, answering systemFailure"
                    );
                }
                Err(Rejection::LogFailed)
            }
        }
    }

    /// Issues one token over `imprint`, a digest made with `hash`, for `client`: the
    /// request is built here (certReq set; `nonce`, or a random one) and takes
    /// [`Issuer::issue`], so the token is logged before it is returned. Used by B-T
    /// seals ([`OwnTsa`]) and the CSC API's `signatures/timestamp`.
    pub async fn issue_imprint(
        &self,
        hash: HashAlgorithm,
        imprint: &[u8],
        nonce: Option<u64>,
        client: &str,
    ) -> Result<Issued, Rejection> {
        let request = own_request(hash, imprint, nonce)?;
        self.issue(&request, client).await
    }

    /// Issues the archive time-stamp of an anchor over a batch root (`imprint`, made with
    /// `hash`): the same path as every token, logged with kind `archive-stamp` (never an
    /// unlogged token), so it is itself anchored in a later batch.
    pub async fn issue_archive_stamp(
        &self,
        hash: HashAlgorithm,
        imprint: &[u8],
        client: &str,
    ) -> Result<Issued, Rejection> {
        let request = own_request(hash, imprint, None)?;
        self.issue_as(&request, client, RecordKind::ArchiveStamp)
            .await
    }
}

/// A request to our own TSA built in-process (certReq set; `nonce`, or a random one).
fn own_request(
    hash: HashAlgorithm,
    imprint: &[u8],
    nonce: Option<u64>,
) -> Result<Vec<u8>, Rejection> {
    let nonce = nonce.unwrap_or_else(hanko_client::request::random_nonce);
    hanko_client::request::build(hash, imprint.to_vec(), Some(nonce), None, true)
        .and_then(|r| hanko_client::request::encode(&r))
        .map_err(|e| Rejection::Internal(format!("time-stamp request: {e}")))
}

/// A token issued and logged: the TimeStampResp to send and the token's record.
#[derive(Debug)]
pub struct Issued {
    /// The DER TimeStampResp (status granted).
    pub response_der: Vec<u8>,
    /// The token and what was logged of it.
    pub token: IssuedToken,
}

/// The server's own TSA as a [`TimeStamper`] for B-T seals: the signature time-stamp is
/// asked of [`Issuer::issue`] in-process (no HTTP hop), so it gets a serial from the same
/// counter, its record in the same log before the seal goes on, and the same metrics as
/// every token. `client` is the sealing client: the token's record names who caused it.
#[derive(Debug)]
pub struct OwnTsa<'a> {
    /// The issuer.
    pub issuer: &'a Issuer,
    /// The client the seal is made for.
    pub client: &'a str,
}

impl TimeStamper for OwnTsa<'_> {
    fn max_token_len(&self, _hash: HashAlgorithm) -> Option<usize> {
        self.issuer.tsa().max_token_len()
    }

    fn time_stamp<'a>(
        &'a self,
        hash: HashAlgorithm,
        imprint: &'a [u8],
    ) -> hanko_pki::BoxFuture<'a, Result<Vec<u8>, TimeStampError>> {
        Box::pin(async move {
            match self
                .issuer
                .issue_imprint(hash, imprint, None, self.client)
                .await
            {
                Ok(issued) => Ok(issued.token.token_der),
                Err(r) => Err(TimeStampError::new(stamp_error_kind(&r), r.to_string())),
            }
        })
    }
}

/// How a refusal of our own TSA reads to a sealer: what may pass by itself (clock, HSM
/// busy or lost, serials, the log) is retryable; the rest needs an operator.
pub(crate) fn stamp_error_kind(r: &Rejection) -> TimeStampErrorKind {
    match r {
        Rejection::ClockUnavailable(_) | Rejection::SerialFailed(_) | Rejection::LogFailed => {
            TimeStampErrorKind::Unavailable
        }
        Rejection::SignerFailed(e) => match e.kind() {
            SignErrorKind::Busy => TimeStampErrorKind::Busy,
            SignErrorKind::Timeout => TimeStampErrorKind::Timeout,
            SignErrorKind::BadInput | SignErrorKind::BadSignature => TimeStampErrorKind::Rejected,
            // The TSA key is suspended (the emergency stop): waiting does not help.
            SignErrorKind::Suspended => TimeStampErrorKind::Rejected,
            // KeyUnavailable, DeviceLost, Device, and kinds pki may add: the pool's
            // own classification calls these retryable.
            _ => TimeStampErrorKind::Unavailable,
        },
        // A request we built refused, no unit, an expired unit, a bug, and rejections
        // hanko-tsa may add: an operator must look.
        _ => TimeStampErrorKind::Rejected,
    }
}

/// How often a failure that repeats with every request is logged again (each one is
/// counted in metrics; see `logging.rs`).
const REPEAT_EVERY: Duration = Duration::from_secs(10);

/// Counts a granted token that leaves: after its record committed (or, dev only, with
/// the log off). A token withheld after a failed commit is not counted.
fn count_sent() {
    metrics::counter!("hanko_tsa_tokens_total").increment(1);
}

/// Logs a failure of ours (failInfo `systemFailure`: signer, serials, no usable unit, a
/// bug) at ERROR, at most once per [`REPEAT_EVERY`] with the number left out; a client's
/// bad request is not ours to log (the TSA counts every rejection by failInfo).
fn log_system_failure(r: &Rejection) {
    static SYSTEM_FAILURES: LogLimiter = LogLimiter::new(REPEAT_EVERY);
    if r.failure_info() != FailureInfo::SystemFailure {
        return;
    }
    let Some(suppressed) = SYSTEM_FAILURES.check() else {
        return;
    };
    let cause = match r {
        Rejection::SignerFailed(e) => e.to_string(),
        Rejection::SerialFailed(e) => e.to_string(),
        Rejection::Internal(e) => format!("internal error (bug): {e}"),
        other => other.to_string(),
    };
    tracing::error!(rejection = %r, error = %cause, suppressed, "time-stamp failed: answering systemFailure");
}

/// Builds the time-stamp authority: profile, clock guard over the configured source,
/// serials from the issuance log, and one unit per policy (certificate and key checked):
/// the key of the policy's succession (`keys.succeeds`) whose time has come, the first
/// key when none has, as `plan` says (its policies are taken out of it).
pub fn build_issuer(
    cfg: &crate::config::Config,
    settings: &crate::config::TsaSettings,
    plan: &mut crate::rollover::StartPlan,
    store: &hanko_store::Store,
) -> anyhow::Result<Issuer> {
    use anyhow::Context as _;
    use hanko_tsa::{ClockGuard, ClockGuardConfig, Tsa};
    let mut guard = ClockGuardConfig::for_accuracy(settings.profile.accuracy);
    guard.settle = settings.clock_settle;
    guard.dev_mode = cfg.dev;
    let clock = ClockGuard::new(settings.clock_source.start(), guard);
    let serials = Arc::new(StoreSerials::new(
        store,
        &settings.serial_counter,
        cfg.store.serial_block,
    ));
    let tsa = Arc::new(
        Tsa::new(settings.profile.clone(), clock, serials).context("time-stamp authority")?,
    );
    let mut policy_units = Vec::new();
    for (policy, label, unit) in std::mem::take(&mut plan.policies) {
        tsa.install_unit(&policy, unit.clone())
            .with_context(|| format!("TSA policy {policy}"))?;
        tracing::info!(%policy, key = %label, "time-stamp policy served");
        metrics::gauge!("hanko_tsa_unit_key", "policy" => policy.to_string(), "key" => label.clone())
            .set(1.0);
        policy_units.push(PolicyUnit {
            policy,
            key: label,
            unit,
        });
    }
    if let Err(e) = tsa.check_ready() {
        tracing::warn!(error = %e, "the TSA cannot issue yet");
    }
    let mut issuer = Issuer::new(tsa, policy_units, store.clone())
        .with_clock_source(settings.clock_source.name());
    for (label, _, unit) in &plan.retired {
        if let Some(unit) = unit {
            issuer = issuer.with_retired(label, unit.clone());
        }
    }
    if cfg.store.durability == crate::config::Durability::None {
        // resolve() refuses this outside --dev.
        tracing::warn!("==================================================================");
        tracing::warn!("store.durability = \"none\": TOKENS ARE NOT LOGGED (dev/benchmark only)");
        tracing::warn!("==================================================================");
        issuer = issuer.without_log_appends_dev_only();
    }
    Ok(issuer)
}
