//! The one error type of `hanko-store`.
//!
//! What it is for: every fallible operation of the crate returns [`Error`]. The server
//! answers a time-stamp request whose record could not be appended with HTTP 200 and a
//! `systemFailure` TimeStampResp (the token is withheld), and a failed read of the log API
//! with HTTP 503 when [`Error::is_retryable`] (else 500); that method also tells the
//! operator's logs whether trying again later can help.
//!
//! What it does not do: it never carries a connection string with its password. Where a
//! target must be named, it is passed through [`crate::redact_url`] first. Database errors are
//! wrapped in an [`Arc`] so that one failed group-commit transaction can hand the same error
//! to every request of its batch ([`Error`] is `Clone`).

use std::sync::Arc;

/// Everything that can go wrong in the issuance log.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL given to [`crate::Store::open`] is not one the store understands (scheme is
    /// neither `sqlite:` nor `postgres:`/`postgresql:`, or the options do not parse).
    /// `target` is the redacted URL.
    #[error("invalid store URL {target}: {reason}")]
    InvalidUrl {
        /// The URL with any password and query string removed.
        target: String,
        /// What is wrong with it.
        reason: String,
    },

    /// Opening the database (connecting, creating the SQLite file) failed.
    #[error("cannot open issuance log at {target}: {source}")]
    Connect {
        /// The URL with any password and query string removed.
        target: String,
        /// The driver's error.
        #[source]
        source: Arc<sqlx::Error>,
    },

    /// Running the embedded schema migrations failed (at [`crate::Store::open`]).
    #[error("issuance log migration failed: {source}")]
    Migrate {
        /// The migrator's error.
        #[source]
        source: Arc<sqlx::migrate::MigrateError>,
    },

    /// A database statement or transaction failed. `op` names what the store was doing
    /// (e.g. `"append batch"`, `"reserve serials"`).
    #[error("issuance log {op} failed: {source}")]
    Database {
        /// The store operation that failed.
        op: &'static str,
        /// The driver's error.
        #[source]
        source: Arc<sqlx::Error>,
    },

    /// A statement on the SQLite log writer's own connection failed (appends and serial
    /// reservations on SQLite run there, see `backend/sqlite_writer.rs`). `op` names what
    /// the store was doing.
    #[error("issuance log {op} failed: {message}")]
    Sqlite {
        /// The store operation that failed.
        op: &'static str,
        /// SQLite's extended result code, when SQLite returned one.
        code: Option<i32>,
        /// SQLite's description of the failure.
        message: String,
    },

    /// The log was opened read-only ([`crate::Store::open_read_only`]): appends and serial
    /// reservations are refused.
    #[error("issuance log is open read-only")]
    ReadOnly,

    /// A read-only open of a SQLite log could not read it with this user's rights: the
    /// file is in WAL mode, its `-shm` index does not exist and cannot be created here,
    /// and a `-wal` file shows the log may hold commits not yet in the main file (or a
    /// server may be writing). `reason` says what to do.
    #[error("cannot read the issuance log at {target}: {reason}")]
    NoReadAccess {
        /// The URL with any password and query string removed.
        target: String,
        /// What is missing and how to get read access.
        reason: String,
    },

    /// A read-only open found a schema other than the one this build reads. `hanko serve`
    /// of the same version migrates the log when it starts.
    #[error(
        "issuance log at {target} has schema {found}; this build reads version {expected} \
         (start the matching `hanko serve` once to migrate it)"
    )]
    Schema {
        /// The URL with any password and query string removed.
        target: String,
        /// What the database holds.
        found: String,
        /// The newest migration version this build embeds.
        expected: i64,
    },

    /// A record with the same kind and serial is already in the log (the unique constraint
    /// on `(kind, serial)` fired). With serials from [`crate::SerialAllocator`] this means a
    /// bug or a tampered counter; the whole batch that contained it was rolled back.
    #[error("issuance log already holds a record with this kind and serial ({detail})")]
    DuplicateSerial {
        /// The database's description of the conflict.
        detail: String,
    },

    /// The record was refused before it reached the database (e.g. `issued_at` before 1970,
    /// a token whose SHA-256 is not `object_hash`, an empty serial).
    #[error("invalid log record: {0}")]
    InvalidRecord(String),

    /// An argument to a store function is out of range (e.g. reserving zero serials).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// The serial counter would pass the largest value the store can hold (2^63 - 1).
    #[error("serial counter {counter:?} is exhausted")]
    SerialsExhausted {
        /// The counter's name.
        counter: String,
    },

    /// A stored row could not be decoded (a column holds a value the schema forbids). This
    /// points at tampering or a schema mismatch; [`crate::Store::verify_chain`] reports such
    /// rows as bad rather than failing.
    #[error("corrupt issuance log row {seq}: {reason}")]
    Corrupt {
        /// Sequence number of the row, 0 when unknown.
        seq: u64,
        /// What is wrong.
        reason: String,
    },

    /// A group-commit transaction did not finish within
    /// [`crate::StoreOptions::commit_timeout`] (the database hangs, or another node holds
    /// the chain lock). The batch's records are not known to be in the log; they may still
    /// become durable if the database finishes later, which is the safe direction (a
    /// record without a delivered token, never a token without a record).
    #[error("issuance log {op} timed out after {after:?}")]
    Timeout {
        /// The store operation that timed out.
        op: &'static str,
        /// The limit that passed.
        after: std::time::Duration,
    },

    /// The log writer has stopped ([`crate::Store::close`] was called, or its task ended):
    /// nothing more can be appended through this `Store`.
    #[error("issuance log writer is closed")]
    Closed,

    /// An anchor batch could not be closed: its range does not start right after the last
    /// closed batch, ends past the chain head, or another batcher closed an overlapping
    /// range first (the tables' constraints refused it). Nothing was written.
    #[error("anchor batch refused: {0}")]
    BatchConflict(String),

    /// A renewal run could not be planned or completed: one of its chains is already in
    /// another run or already has that renewal, or the run is not (or no longer)
    /// planned. Nothing was written.
    #[error("renewal run refused: {0}")]
    RenewalConflict(String),

    /// Writing an export failed.
    #[error("writing the log export failed: {0}")]
    Io(#[source] Arc<std::io::Error>),
}

impl Error {
    /// True when the failure is transient: the same operation may succeed later (the
    /// database was unreachable, busy, a pool timed out, a serialization conflict, the
    /// server is shutting down). False for refusals that will not change by retrying
    /// (constraint violations, invalid records or URLs, corrupt rows, a closed store).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Connect { source, .. } | Error::Database { source, .. } => {
                sqlx_retryable(source)
            }
            Error::Migrate { source } => match source.as_ref() {
                sqlx::migrate::MigrateError::Execute(e) => sqlx_retryable(e),
                _ => false,
            },
            // 5 = SQLITE_BUSY, 6 = SQLITE_LOCKED (the primary code is the low byte).
            Error::Sqlite { code, .. } => code.is_some_and(|c| matches!(c & 0xff, 5 | 6)),
            Error::Timeout { .. } => true,
            Error::InvalidUrl { .. }
            | Error::DuplicateSerial { .. }
            | Error::InvalidRecord(_)
            | Error::InvalidArgument(_)
            | Error::SerialsExhausted { .. }
            | Error::Corrupt { .. }
            | Error::Closed
            | Error::ReadOnly
            | Error::Schema { .. }
            | Error::NoReadAccess { .. }
            | Error::BatchConflict(_)
            | Error::RenewalConflict(_)
            | Error::Io(_) => false,
        }
    }

    /// Wraps a driver error raised while doing `op`, recognising unique violations.
    pub(crate) fn db(op: &'static str, e: sqlx::Error) -> Error {
        if let sqlx::Error::Database(d) = &e {
            // Only the (kind, serial) constraint means a duplicate serial; any other unique
            // violation (e.g. a sequence number) is an ordinary database failure.
            let on_serial = d.constraint() == Some("log_records_kind_serial")
                || d.message().contains("log_records.serial");
            if d.is_unique_violation() && on_serial {
                return Error::DuplicateSerial {
                    detail: d.message().to_owned(),
                };
            }
        }
        Error::Database {
            op,
            source: Arc::new(e),
        }
    }

    /// Wraps an error of the SQLite writer connection raised while doing `op`,
    /// recognising the `(kind, serial)` unique violation as [`Error::db`] does.
    pub(crate) fn sqlite(op: &'static str, e: rusqlite::Error) -> Error {
        let message = e.to_string();
        let code = match &e {
            rusqlite::Error::SqliteFailure(f, _) => Some(f.extended_code),
            _ => None,
        };
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation)
            && message.contains("log_records.serial")
        {
            return Error::DuplicateSerial { detail: message };
        }
        Error::Sqlite { op, code, message }
    }
}

/// Classifies a driver error as transient.
fn sqlx_retryable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(d) => {
            let Some(code) = d.code() else { return false };
            // SQLite reports its (extended) numeric result code; the primary code is the
            // low byte. 5 = SQLITE_BUSY, 6 = SQLITE_LOCKED. (Decided by driver, not by the
            // code's shape: SQLSTATEs such as 57014 are numeric too.)
            if d.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                return code.parse::<i64>().is_ok_and(|n| matches!(n & 0xff, 5 | 6));
            }
            // PostgreSQL SQLSTATE: class 08 connection exception, 40001 serialization
            // failure, 40P01 deadlock, class 53 insufficient resources, 55P03 lock not
            // available, 57014 query canceled (statement_timeout), 57P01..57P03 shutdown /
            // cannot connect now.
            code.starts_with("08")
                || code.starts_with("53")
                || matches!(
                    code.as_ref(),
                    "40001" | "40P01" | "55P03" | "57014" | "57P01" | "57P02" | "57P03"
                )
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert!(!Error::Closed.is_retryable());
        assert!(!Error::InvalidRecord("x".into()).is_retryable());
        let e = Error::Database {
            op: "append batch",
            source: Arc::new(sqlx::Error::PoolTimedOut),
        };
        assert!(e.is_retryable());
        let e = Error::Database {
            op: "append batch",
            source: Arc::new(sqlx::Error::PoolClosed),
        };
        assert!(!e.is_retryable());
        let busy = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(5), None);
        assert!(Error::sqlite("append batch", busy).is_retryable());
        let io = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(10), None);
        assert!(!Error::sqlite("append batch", io).is_retryable());
    }
}
