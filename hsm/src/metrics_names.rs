//! Names of the metrics this crate records (all `hanko_hsm_` prefixed), in one place so
//! dashboards and alert rules have one list to follow.
//!
//! Counters, one gauge and two histograms; the `metrics` facade is a no-op until the
//! server installs an exporter.

/// Counter: signatures handed out. Labels: `key`.
pub const SIGNATURES: &str = "hanko_hsm_signatures_total";
/// Counter: failed signing jobs. Labels: `key`, `kind` (`SignErrorKind::as_str`).
pub const ERRORS: &str = "hanko_hsm_sign_errors_total";
/// Counter: completed recoveries of a module after a device loss. Labels: `path`
/// (`reopen`: new sessions and login; `reinit`: `C_Finalize` + `C_Initialize` as well).
pub const RECOVERIES: &str = "hanko_hsm_recoveries_total";
/// Counter: signatures that failed verify-after-sign. Labels: `key`.
pub const VERIFY_FAILURES: &str = "hanko_hsm_verify_failures_total";
/// Counter: workers abandoned because a call passed its deadline. Labels: `key`.
pub const ABANDONED_WORKERS: &str = "hanko_hsm_abandoned_workers_total";
/// Counter: signing attempts retried once on a fresh session. Labels: `key`, `kind` (of
/// the failed first attempt).
pub const RETRIES: &str = "hanko_hsm_sign_retries_total";
/// Gauge: 1 while a key's readiness breaker is tripped (opened after failures in a row
/// and not yet closed by a success; `/readyz` is 503 for its cool-down, then the key is
/// probed again), else 0. Labels: `key`.
pub const BREAKER_OPEN: &str = "hanko_hsm_breaker_open";
/// Counter: openings of a key's readiness breaker, re-openings after a failed probe
/// included. Labels: `key`.
pub const BREAKER_OPENINGS: &str = "hanko_hsm_breaker_openings_total";
/// Counter: signing jobs queued, by lane (`interactive`, `bulk`; see `lane.rs`). Labels:
/// `key`, `lane`.
pub const LANE_JOBS: &str = "hanko_hsm_lane_jobs_total";
/// Counter: queued jobs removed because their caller went away before a worker took
/// them (counted when a full queue is purged of them). Labels: `key`.
pub const ORPHANED_JOBS: &str = "hanko_hsm_orphaned_jobs_total";
/// Histogram, seconds: how long a signing job waited in the pool's queue for a worker.
/// Labels: `key`. With [`CALL`], it tells a pool too small for its load (long waits,
/// short calls) from a slow HSM (long calls).
pub const QUEUE_WAIT: &str = "hanko_hsm_queue_wait_seconds";
/// Histogram, seconds: a worker's time on one job: the signing call, verify-after-sign,
/// and a retry on a fresh session if there was one. Labels: `key`.
pub const CALL: &str = "hanko_hsm_call_seconds";
