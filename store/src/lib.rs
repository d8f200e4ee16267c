//! Hanko's issuance log: every time-stamp token and e-seal, recorded durably before the
//! client receives it, on SQLite (the embedded default) or PostgreSQL (several nodes).
//!
//! The log is the single source of truth (docs/architecture.md): the audit trail auditors
//! inspect, the guarantee that serials never repeat, and the queue Merkle anchoring reads
//! are the same rows.
//!
//! ```text
//!  tsa / seal / anchor                          hanko-store
//!  -------------------    NewRecord     +--------------------------------+
//!  issued bytes + record ------------> | Store::append                  |
//!                                      |   -> queue -> log writer       |   one transaction
//!                                      |      (group commit, max_batch) | ----------------> SQLite (WAL; the
//!  response released  <-------------- |   <- Receipt {seq, chain_hash} |   per batch       syncer fsyncs it)
//!                                      |                                |                   or PostgreSQL
//!                         durable      +--------------------------------+
//!  SerialAllocator::next() ----------> serial_counters (one atomic statement per block)
//!  verify_chain / export / get_by_serial / read_range -> auditors, API, anchoring
//! ```
//!
//! What it stores per row: sequence number (gapless from 1), kind, serial, SHA-256 of the
//! issued object, the request's hash, policy or credential, client identity, issue time,
//! node id, the token bytes (unless [`StoreOptions::keep_tokens`] is off) and a chained
//! hash committing to the previous row ([`chain`] defines it exactly), so that editing or
//! deleting a row is detected by [`Store::verify_chain`].
//!
//! What it does NOT do: parse or sign anything (it never looks inside a token), speak
//! HTTP, or decide status codes: any [`Error`] from [`Store::append`] means "no durable
//! record", which the server answers with a `systemFailure` TimeStampResp (HTTP 200, token
//! withheld). It does not anchor the
//! chain itself either: it stores the batches and anchors the server's batcher computes
//! with hanko-anchor ([`anchoring`]).
//!
//! The log writer is a thread of its own on SQLite (statements run back to back on one
//! connection) and a tokio task on PostgreSQL (one round trip per statement anyway).
//!
//! Layout: `backend` (private) holds the one storage trait and its SQLite and
//! PostgreSQL implementations with their own embedded migrations (`migrations/sqlite`,
//! `migrations/postgres`, run at [`Store::open`]); `writer` is the group commit; [`chain`]
//! the hash chain and verifier; `serial` the range reservation; `export` the auditor
//! tools.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use hanko_store::{NewRecord, RecordKind, Store, StoreOptions};
//! let dir = tempfile::tempdir()?;
//! let store = Store::open_sqlite(&dir.path().join("log.sqlite"), StoreOptions::default()).await?;
//! let serials = store.serial_allocator("timestamp", 1000);
//! let token = b"DER bytes of the TimeStampResp".to_vec();
//! let receipt = store
//!     .append(NewRecord {
//!         kind: RecordKind::Timestamp,
//!         serial: serials.next_bytes().await?,
//!         object_hash: NewRecord::object_hash_of(&token),
//!         request_hash: vec![0xab; 32],
//!         policy: "1.3.6.1.4.1.99999.1".into(),
//!         client: "anonymous".into(),
//!         issued_at: std::time::SystemTime::now(),
//!         token: Some(token),
//!     })
//!     .await?; // durable now: release the response
//! assert_eq!(receipt.seq, 1);
//! assert!(store.verify_chain().await?.is_ok());
//! store.close().await;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod anchoring;
pub mod audit;
mod backend;
pub mod chain;
mod error;
mod export;
mod failure_log;
mod record;
pub mod renewal;
mod serial;
mod syncer;
mod writer;

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::backend::LogBackend;
use crate::backend::postgres::PgBackend;
use crate::backend::sqlite::SqliteBackend;
use crate::record::PreparedRecord;
use crate::writer::{Job, LingerGate, StatsInner, WriterConfig, WriterHandle};

pub use crate::anchoring::{
    Anchor, AnchorState, Batch, BatcherLock, NewBatch, ObjectHashes, OpenRange, PendingAnchor,
};
pub use crate::audit::{AuditEvent, AuditEventType, KeyStateChange, KeySuspension};
pub use crate::chain::{BadReason, BadRow, ChainHead, VerifyReport};
pub use crate::error::Error;
pub use crate::export::{ExportOptions, ExportRange};
pub use crate::record::{
    MAX_CLIENT_LEN, MAX_POLICY_LEN, MAX_REQUEST_HASH_LEN, MAX_SERIAL_LEN, NewRecord, Receipt,
    RecordKind, StoredRecord, normalize_serial, serial_to_bytes,
};
pub use crate::renewal::{
    ChainOrigin, EvidenceChain, NewRun, PlannedChain, PlannedHashTree, RenewalKind, RenewalRun,
    RenewalStats, StoredRenewal, UnindexedAnchor,
};
pub use crate::serial::{DEFAULT_BLOCK, MAX_BLOCK, SerialAllocator, SerialRange};
pub use crate::writer::{Upstream, WriterStats};

/// The file name the server uses for the SQLite log under its data directory.
pub const SQLITE_FILE_NAME: &str = "issuance-log.sqlite";

/// Settings of a [`Store`]. The defaults suit one node with the embedded SQLite log.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StoreOptions {
    /// This node's name, written into every record (and into serial reservations). Must be
    /// distinct per node when several share one PostgreSQL. Default `"node-1"`.
    pub node_id: String,
    /// Keep the issued token bytes (auditors, re-delivery). Operators who must not keep
    /// them set this to false: only their SHA-256 (`object_hash`) is stored. Default true.
    pub keep_tokens: bool,
    /// Most records per group-commit transaction. Default 256.
    pub max_batch: usize,
    /// How long the writer holds a batch smaller than `max_batch` open for more records.
    /// Without [`StoreOptions::upstream`] it always waits this long after the first
    /// record; with one, this is the upper bound and it waits only while the upstream is
    /// busy. Default 0.5 ms (the best fixed wait measured on a 2-core machine for both
    /// RSA-3072 and P-256; with an upstream the server uses 2 ms, see benches/RESULTS.md).
    /// Every commit costs a fixed ~0.1 ms of CPU (mostly the fsync), so fewer, larger
    /// commits leave more to the signers. Zero commits at once (batches then grow only
    /// from what queued during the previous commit).
    pub linger: Duration,
    /// What feeds the log (the server: its signing pools), if known. With it, `linger`
    /// becomes an upper bound: the writer holds a batch open only while the upstream is
    /// [`Upstream::busy`] and commits as soon as it is not, so a lightly loaded server
    /// adds no wait and a saturated one gets large batches. Default none.
    pub upstream: Option<Arc<dyn Upstream>>,
    /// Appends that may wait for the writer before `append` itself waits (backpressure).
    /// Default 4096.
    pub queue_depth: usize,
    /// Database connections (one is the writer's, the rest serve readers and serial
    /// reservations). Default 8 (at least 2).
    pub max_connections: u32,
    /// How long to wait for a free connection before failing. Default 10 s.
    pub acquire_timeout: Duration,
    /// SQLite only: how long a statement waits for another process's lock. Default 5 s
    /// (below `commit_timeout`, so a lock wait ends with a clean SQLITE_BUSY rollback).
    pub busy_timeout: Duration,
    /// Longest a group-commit transaction may take before its waiters get
    /// [`Error::Timeout`] (a hung database must become a prompt `systemFailure`, not hung
    /// requests);
    /// also the longest [`Store::append`] waits for its record, queueing included.
    /// On PostgreSQL, `lock_timeout` and `statement_timeout` are set to 3/4 of it, so the
    /// server normally aborts first and the transaction rolls back cleanly. Default 10 s.
    pub commit_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            node_id: "node-1".to_owned(),
            keep_tokens: true,
            max_batch: 256,
            linger: Duration::from_micros(500),
            upstream: None,
            queue_depth: 4096,
            max_connections: 8,
            acquire_timeout: Duration::from_secs(10),
            busy_timeout: Duration::from_secs(5),
            commit_timeout: Duration::from_secs(10),
        }
    }
}

impl StoreOptions {
    /// Default options with this node id.
    pub fn with_node_id(node_id: impl Into<String>) -> StoreOptions {
        StoreOptions {
            node_id: node_id.into(),
            ..StoreOptions::default()
        }
    }
}

/// Which database a [`Store`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendKind {
    /// An SQLite file.
    Sqlite,
    /// A PostgreSQL database.
    Postgres,
}

/// The issuance log. Cheap to clone (all clones share one pool and one log writer).
///
/// Dropping the last clone stops the writer after it has written what is queued; call
/// [`Store::close`] to wait for that and close the pool.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Arc<dyn LogBackend>,
    kind: BackendKind,
    /// Redacted URL, for Debug and logs.
    target: String,
    node_id: Arc<str>,
    keep_tokens: bool,
    /// Opened by [`Store::open_read_only`]: no writer.
    read_only: bool,
    /// How long `append` waits for its record's transaction.
    commit_timeout: Duration,
    /// Taken (and dropped) by `close`, which lets the writer drain and stop.
    sender: Mutex<Option<mpsc::Sender<Job>>>,
    task: Mutex<Option<WriterHandle>>,
    stats: Arc<StatsInner>,
    /// With an upstream hint: ends the writer thread's linger once the upstream is idle.
    linger: Option<(Arc<dyn Upstream>, Arc<LingerGate>)>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.inner.kind)
            .field("target", &self.inner.target)
            .field("node_id", &self.inner.node_id)
            .field("keep_tokens", &self.inner.keep_tokens)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the log at `url`, runs the migrations and starts the log writer on the
    /// current tokio runtime.
    ///
    /// `url` is `sqlite://path/to/file.sqlite?mode=rwc` (also `sqlite:path`; the file is
    /// created if missing) or `postgres://user[:password]@host[:port]/db` (`postgresql://`
    /// too). The password never appears in errors or Debug output.
    pub async fn open(url: &str, opts: StoreOptions) -> Result<Store, Error> {
        let target = redact_url(url);
        if Scheme::of(url, &target)? == Scheme::Sqlite {
            let o = SqliteBackend::options_from_url(url).map_err(|e| Error::InvalidUrl {
                target: target.clone(),
                reason: e.to_string(),
            })?;
            let b = SqliteBackend::open(
                o,
                &target,
                opts.max_connections,
                opts.acquire_timeout,
                opts.busy_timeout,
            )
            .await?;
            Store::start(Arc::new(b), BackendKind::Sqlite, target, opts)
        } else {
            let o = PgBackend::options_from_url(url).map_err(|e| Error::InvalidUrl {
                target: target.clone(),
                reason: e.to_string(),
            })?;
            let b = PgBackend::open(
                o,
                &target,
                opts.max_connections,
                opts.acquire_timeout,
                opts.commit_timeout * 3 / 4,
            )
            .await?;
            Store::start(Arc::new(b), BackendKind::Postgres, target, opts)
        }
    }

    /// Opens an existing log for reading only: what auditors' tools (`hanko log verify`,
    /// `hanko log export`) use, so that a role or file permission that allows only reading
    /// is enough. Runs no migrations and starts no writer; the schema must be exactly the
    /// one this build reads ([`Error::Schema`] otherwise). [`Store::append`] and serial
    /// reservations return [`Error::ReadOnly`]. Of `opts`, only the timeouts are used.
    pub async fn open_read_only(url: &str, opts: StoreOptions) -> Result<Store, Error> {
        let target = redact_url(url);
        let scheme = Scheme::of(url, &target)?;
        let backend: Arc<dyn LogBackend> = match scheme {
            Scheme::Sqlite => {
                let o = SqliteBackend::options_from_url(url).map_err(|e| Error::InvalidUrl {
                    target: target.clone(),
                    reason: e.to_string(),
                })?;
                Arc::new(
                    SqliteBackend::open_read_only(
                        o,
                        &target,
                        opts.acquire_timeout,
                        opts.busy_timeout,
                    )
                    .await?,
                )
            }
            Scheme::Postgres => {
                let o = PgBackend::options_from_url(url).map_err(|e| Error::InvalidUrl {
                    target: target.clone(),
                    reason: e.to_string(),
                })?;
                Arc::new(
                    PgBackend::open_read_only(
                        o,
                        &target,
                        opts.acquire_timeout,
                        opts.commit_timeout * 3 / 4,
                    )
                    .await?,
                )
            }
        };
        Ok(Store {
            inner: Arc::new(Inner {
                backend,
                kind: match scheme {
                    Scheme::Sqlite => BackendKind::Sqlite,
                    Scheme::Postgres => BackendKind::Postgres,
                },
                target,
                node_id: opts.node_id.into(),
                keep_tokens: opts.keep_tokens,
                read_only: true,
                commit_timeout: opts.commit_timeout,
                sender: Mutex::new(None),
                task: Mutex::new(None),
                stats: Arc::new(StatsInner::default()),
                linger: None,
            }),
        })
    }

    /// Opens (creating it and its parent directories if missing) the SQLite log at `path`;
    /// the server uses `<data-dir>/`[`SQLITE_FILE_NAME`]. Avoids URL-escaping of paths.
    pub async fn open_sqlite(path: &Path, opts: StoreOptions) -> Result<Store, Error> {
        let target = format!("sqlite:{}", path.display());
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::Connect {
                target: target.clone(),
                source: Arc::new(sqlx::Error::Io(e)),
            })?;
        }
        let o = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
        let b = SqliteBackend::open(
            o,
            &target,
            opts.max_connections,
            opts.acquire_timeout,
            opts.busy_timeout,
        )
        .await?;
        Store::start(Arc::new(b), BackendKind::Sqlite, target, opts)
    }

    fn start(
        backend: Arc<dyn LogBackend>,
        kind: BackendKind,
        target: String,
        opts: StoreOptions,
    ) -> Result<Store, Error> {
        let stats = Arc::new(StatsInner::default());
        let (tx, task, gate) = writer::spawn(
            backend.clone(),
            WriterConfig {
                max_batch: opts.max_batch,
                linger: opts.linger,
                upstream: opts.upstream.clone(),
                queue_depth: opts.queue_depth,
                commit_timeout: opts.commit_timeout,
            },
            stats.clone(),
        )?;
        Ok(Store {
            inner: Arc::new(Inner {
                backend,
                kind,
                target,
                node_id: opts.node_id.into(),
                keep_tokens: opts.keep_tokens,
                read_only: false,
                commit_timeout: opts.commit_timeout,
                sender: Mutex::new(Some(tx)),
                task: Mutex::new(Some(task)),
                stats,
                linger: opts.upstream.map(|u| (u, gate)),
            }),
        })
    }

    pub(crate) fn backend(&self) -> &dyn LogBackend {
        self.inner.backend.as_ref()
    }

    /// Opened by [`Store::open_read_only`].
    pub(crate) fn inner_read_only(&self) -> bool {
        self.inner.read_only
    }

    /// The database this store runs on.
    pub fn backend_kind(&self) -> BackendKind {
        self.inner.kind
    }

    /// This node's id, as written into records.
    pub fn node_id(&self) -> &str {
        &self.inner.node_id
    }

    /// Appends a record through the group-commit writer. Returns once the record is
    /// durable (its transaction committed): only then may the response be released. Any
    /// error means the record is not known to be in the log: withhold the token and answer
    /// `systemFailure`.
    ///
    /// Invalid records (see [`Error::InvalidRecord`]) are refused before they reach the
    /// writer, so they never fail other requests' batches.
    pub async fn append(&self, record: NewRecord) -> Result<Receipt, Error> {
        if self.inner.read_only {
            return Err(Error::ReadOnly);
        }
        let rec = PreparedRecord::new(record, self.inner.node_id.clone(), self.inner.keep_tokens)?;
        let sender = self
            .inner
            .sender
            .lock()
            .map_err(|_| Error::Closed)?
            .clone()
            .ok_or(Error::Closed)?;
        let (reply, rx) = oneshot::channel();
        sender
            .send(Job {
                rec,
                reply,
                queued: std::time::Instant::now(),
            })
            .await
            .map_err(|_| Error::Closed)?;
        if let Some((upstream, gate)) = &self.inner.linger {
            gate.after_send(upstream.as_ref(), sender.max_capacity() - sender.capacity());
        }
        drop(sender);
        // Bounded wait: a database that hangs (also in an fsync the writer thread cannot
        // abandon) becomes a prompt, retryable error. A record whose waiter gave up is
        // not committed if the writer has not reached COMMIT yet.
        match tokio::time::timeout(self.inner.commit_timeout, rx).await {
            Ok(reply) => reply.map_err(|_| Error::Closed)?,
            Err(_) => Err(Error::Timeout {
                op: "append",
                after: self.inner.commit_timeout,
            }),
        }
    }

    /// The writer's counters (batches, records, largest batch, failures).
    pub fn writer_stats(&self) -> WriterStats {
        self.inner.stats.snapshot()
    }

    /// The chain head (last sequence number and its chained hash).
    pub async fn head(&self) -> Result<ChainHead, Error> {
        self.backend().head().await
    }

    /// Recomputes the chain from row 1 to the current head and reports the first bad row
    /// (see [`chain`]). Runs alongside appends; rows appended meanwhile are not checked.
    pub async fn verify_chain(&self) -> Result<VerifyReport, Error> {
        chain::verify(self.backend()).await
    }

    /// Stops accepting appends, waits until the writer has committed everything queued,
    /// then closes the pool. Other clones of this `Store` get [`Error::Closed`] afterwards.
    pub async fn close(&self) {
        let sender = self.inner.sender.lock().ok().and_then(|mut s| s.take());
        drop(sender);
        let task = self.inner.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            task.join().await;
        }
        if let Err(e) = self.inner.backend.close().await {
            tracing::warn!(error = %e, "closing the issuance log pool failed");
        }
    }
}

/// The two kinds of URL [`Store::open`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Sqlite,
    Postgres,
}

impl Scheme {
    fn of(url: &str, target: &str) -> Result<Scheme, Error> {
        let invalid = |reason: &str| Error::InvalidUrl {
            target: target.to_owned(),
            reason: reason.to_owned(),
        };
        if url.starts_with("sqlite:") {
            // The log must outlive the process (and the writer thread's connection could
            // not see an in-memory database of the reader pool).
            let query = url.split_once('?').map_or("", |(_, q)| q);
            if url.contains(":memory:") || query.split('&').any(|p| p == "mode=memory") {
                return Err(invalid(
                    "the issuance log needs a file, not an in-memory database",
                ));
            }
            Ok(Scheme::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Scheme::Postgres)
        } else {
            Err(invalid("expected a sqlite: or postgres:// URL"))
        }
    }
}

/// A URL without its password and query string (which may carry one), for messages.
///
/// `postgres://hanko:secret@db:5432/log?sslmode=require` becomes
/// `postgres://hanko:***@db:5432/log`.
pub fn redact_url(url: &str) -> String {
    let base = url.split(['?', '#']).next().unwrap_or("");
    let Some((scheme, rest)) = base.split_once("://") else {
        return base.to_owned();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    format!("{scheme}://{authority}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction() {
        assert_eq!(
            redact_url("postgres://hanko:s3cret@db:5432/log?sslmode=require&password=x"),
            "postgres://hanko:***@db:5432/log"
        );
        assert_eq!(
            redact_url("postgres://hanko@db/log"),
            "postgres://hanko@db/log"
        );
        assert_eq!(redact_url("postgres://a:b:c@h"), "postgres://a:***@h");
        assert_eq!(
            redact_url("sqlite://data/log.sqlite?mode=rwc"),
            "sqlite://data/log.sqlite"
        );
        assert!(!redact_url("postgres://u:p%40ss@h/d").contains("p%40ss"));
    }
}
