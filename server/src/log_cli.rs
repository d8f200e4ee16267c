//! `hanko log verify` and `hanko log export`: the auditor's tools over the issuance log.
//!
//! What it is for: an auditor (or a cron job) checks that nobody edited or deleted a row
//! of the log, and takes records out of it, with the same binary and configuration as the
//! server but without its secrets: these commands open the database only, never the HSM,
//! and need no PIN. They are thin wrappers over `hanko_store::Store::verify_chain` and
//! `Store::export`, which define the chain and the export format (store/README.md).
//!
//! ```text
//!   --database-url URL  >  [store] database_url of --config FILE  >  SQLite file
//!                                                  <data-dir>/issuance-log.sqlite
//!   (--data-dir DIR  >  data_dir of the config  >  ./hanko-data; without --config,
//!    <data-dir>/hanko.toml is read when present, as `hanko serve --dev` does)
//!
//!   verify: exit 0  "chain intact: N rows, head seq S hash H"
//!                   "batches intact: B batches cover seq 1..=L (roots recomputed); ..."
//!           exit 1  "first bad row: seq N: <reason>" or "first bad batch: id B: <reason>"
//!           exit 2  the log cannot be read (no file, no database, bad flags)
//!   export: JSON lines on stdout, one per record, in sequence order (exit 0 / 2);
//!           with --batches, then one per anchor batch wholly within those records
//! ```
//!
//! What it does NOT do: repair anything, or create a log. A missing SQLite file is an
//! error (exit 2), not an empty log that verifies: an auditor pointed at the wrong
//! directory must notice. The log is opened read-only (`Store::open_read_only`): no
//! migrations run and nothing is written, so a SELECT-only role or a read-only file is
//! enough; a schema other than the one this build reads is an error (exit 2), never
//! upgraded.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use hanko_store::{BadReason, BadRow, ExportOptions, ExportRange, Store};

use crate::config::{self, FileConfig, Overrides};

/// `hanko log`.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: LogCommand,
}

/// `hanko log` subcommands.
#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Recompute the hash chain from row 1 to the head. Exit 0 when intact, 1 with the
    /// first bad row (`first bad row: seq N: <reason>`), 2 when the log cannot be read.
    Verify(LogDbArgs),
    /// Write records as JSON lines on stdout, in sequence order (format: store/README.md;
    /// `tools/verify_export.py` checks an export independently).
    Export(LogExportArgs),
}

/// Where the log is: the same settings `hanko serve` uses.
#[derive(Debug, Clone, Args)]
pub struct LogDbArgs {
    /// The server's TOML configuration; only `data_dir` and `[store]` are read.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory [default: ./hanko-data]; the SQLite log is
    /// `<DIR>/issuance-log.sqlite` unless a database URL is given.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Issuance log database: `postgres://...` or `sqlite://...`. Prefer the environment
    /// variable when the URL holds a password. Config key: `store.database_url`.
    #[arg(
        long,
        value_name = "URL",
        env = "HANKO_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
}

/// `hanko log export`.
#[derive(Debug, Args)]
pub struct LogExportArgs {
    /// First record: a sequence number (e.g. 1) or an RFC 3339 time
    /// (e.g. 2026-11-24T00:00:00Z) matched against the issue time. Inclusive.
    #[arg(long, value_name = "SEQ|RFC3339")]
    pub from: Option<String>,
    /// Last record, like --from (the same kind of bound). Inclusive.
    #[arg(long, value_name = "SEQ|RFC3339")]
    pub to: Option<String>,
    /// Include the issued tokens (base64), where the log keeps them.
    #[arg(long)]
    pub tokens: bool,
    /// After the records, a line per anchor batch wholly within them: range, algorithm,
    /// root and anchors (their tokens too with --tokens), for auditors who recompute the
    /// roots (`hanko-conformance log`).
    #[arg(long)]
    pub batches: bool,
    /// Where the log is.
    #[command(flatten)]
    pub db: LogDbArgs,
}

/// One end of an export range as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bound {
    Seq(u64),
    Time(SystemTime),
}

fn parse_bound(flag: &str, s: &str) -> anyhow::Result<Bound> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let n = s
            .parse::<u64>()
            .with_context(|| format!("{flag} {s}: sequence number out of range"))?;
        return Ok(Bound::Seq(n));
    }
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .with_context(|| {
            format!(
                "{flag} {s:?}: expected a sequence number or an RFC 3339 time such as \
                 2026-11-24T00:00:00Z"
            )
        })?;
    Ok(Bound::Time(SystemTime::from(t)))
}

/// The range `--from` / `--to` ask for (missing ends are open).
fn export_range(from: Option<&str>, to: Option<&str>) -> anyhow::Result<ExportRange> {
    let from = from.map(|s| parse_bound("--from", s)).transpose()?;
    let to = to.map(|s| parse_bound("--to", s)).transpose()?;
    Ok(match (from, to) {
        (None, None) => ExportRange::All,
        (Some(Bound::Seq(a)), None) => ExportRange::Seq {
            from: a,
            // The largest sequence number the log can hold.
            to: i64::MAX as u64,
        },
        (None, Some(Bound::Seq(b))) => ExportRange::Seq { from: 1, to: b },
        (Some(Bound::Seq(a)), Some(Bound::Seq(b))) => ExportRange::Seq { from: a, to: b },
        (Some(Bound::Time(a)), None) => ExportRange::Time {
            from: a,
            // Beyond any issue time the log can hold (i64 nanoseconds end in 2262).
            to: SystemTime::UNIX_EPOCH + std::time::Duration::from_nanos(i64::MAX as u64),
        },
        (None, Some(Bound::Time(b))) => ExportRange::Time {
            from: SystemTime::UNIX_EPOCH,
            to: b,
        },
        (Some(Bound::Time(a)), Some(Bound::Time(b))) => ExportRange::Time { from: a, to: b },
        _ => bail!("--from and --to must both be sequence numbers or both be times"),
    })
}

/// Where the log is, as the flags and config say, and the keys the config names.
pub(crate) struct Located {
    /// The database URL.
    pub url: String,
    /// The store options (node id, timeouts).
    pub options: hanko_store::StoreOptions,
    /// The `[[keys]]` labels of the configuration read (none without one).
    pub key_labels: Vec<String>,
}

/// The database URL and store options the flags and config select.
pub(crate) fn locate(db: &LogDbArgs) -> anyhow::Result<Located> {
    let overrides = Overrides {
        data_dir: db.data_dir.clone(),
        database_url: db.database_url.clone(),
        ..Overrides::default()
    };
    let file = match &db.config {
        Some(path) => FileConfig::load(path)?,
        None => {
            // As `hanko serve --dev` does: the data directory's own hanko.toml.
            let dir = db
                .data_dir
                .clone()
                .unwrap_or_else(|| config::DEFAULT_DATA_DIR.into());
            let dev_file = dir.join(config::DEV_CONFIG_FILE);
            if dev_file.is_file() {
                FileConfig::load(&dev_file)?
            } else {
                FileConfig::default()
            }
        }
    };
    let key_labels = file.keys.iter().map(|k| k.label.clone()).collect();
    let (_, store) = file.resolve_store_only(&overrides)?;
    Ok(Located {
        url: store.database_url,
        options: store.options,
        key_labels,
    })
}

/// The file behind a `sqlite:` URL, when it names one.
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split(['?', '#']).next().unwrap_or("");
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(PathBuf::from(path))
}

/// Refuses an SQLite URL whose file does not exist: these tools never create a log.
pub(crate) fn require_existing_log(url: &str) -> anyhow::Result<()> {
    if url.starts_with("sqlite:") {
        match sqlite_path(url) {
            Some(p) if p.is_file() => {}
            Some(p) => bail!(
                "no issuance log at {} (give --data-dir, --config or --database-url)",
                p.display()
            ),
            None => bail!("{} names no SQLite file", hanko_store::redact_url(url)),
        }
    }
    Ok(())
}

/// Opens the log read-only (no migrations, no writer: a SELECT-only role or a read-only
/// file is enough); refuses to create a missing SQLite file.
async fn open_store(db: &LogDbArgs) -> anyhow::Result<Store> {
    let Located { url, options, .. } = locate(db)?;
    require_existing_log(&url)?;
    let shown = hanko_store::redact_url(&url);
    Store::open_read_only(&url, options)
        .await
        .with_context(|| format!("cannot open the issuance log at {shown}"))
}

/// The reason of a bad row without its "row N:" prefix.
fn reason_text(bad: &BadRow) -> String {
    match &bad.reason {
        BadReason::ChainHashMismatch => {
            "chained hash does not match the row's contents (row edited, or its stored hash)"
                .to_owned()
        }
        BadReason::Missing {
            next_present: Some(n),
        } => format!("missing (deleted?); the next row present is seq {n}"),
        BadReason::Missing { next_present: None } => {
            "missing (deleted?); the chain head says it exists".to_owned()
        }
        BadReason::TokenMismatch => "stored token does not hash to object_hash".to_owned(),
        BadReason::HeadMismatch => "the chain head record does not match this last row".to_owned(),
        BadReason::Malformed(r) => format!("malformed: {r}"),
        other => {
            let full = BadRow {
                seq: bad.seq,
                reason: other.clone(),
            }
            .to_string();
            let prefix = format!("row {}: ", bad.seq);
            full.strip_prefix(&prefix)
                .map(str::to_owned)
                .unwrap_or(full)
        }
    }
}

/// What `verify` found.
enum Verdict {
    Intact,
    Bad,
}

async fn verify(db: &LogDbArgs) -> anyhow::Result<Verdict> {
    let store = open_store(db).await?;
    let report = store.verify_chain().await;
    let batches = match &report {
        Ok(r) if r.first_bad.is_none() => Some(verify_batches(&store).await),
        _ => None,
    };
    store.close().await;
    let report = report.context("reading the issuance log")?;
    match &report.first_bad {
        None => {
            println!(
                "chain intact: {} rows, head seq {} hash {}",
                report.rows_checked,
                report.head.seq,
                hex::encode(report.head.hash)
            );
            match batches.context("reading the anchor batches")?? {
                BatchReport::Intact { batches, last_seq } => {
                    println!(
                        "batches intact: {batches} batches cover seq 1..={last_seq} \
                         (roots recomputed); open: {} records",
                        report.head.seq.saturating_sub(last_seq)
                    );
                    Ok(Verdict::Intact)
                }
                BatchReport::Bad { id, reason } => {
                    println!("first bad batch: id {id}: {reason}");
                    Ok(Verdict::Bad)
                }
            }
        }
        Some(bad) => {
            println!("first bad row: seq {}: {}", bad.seq, reason_text(bad));
            println!(
                "({} rows before it verified; head seq {})",
                report.rows_checked, report.head.seq
            );
            Ok(Verdict::Bad)
        }
    }
}

/// What the walk over the anchor batches found.
enum BatchReport {
    /// Batches 1..=`batches` tile seq 1..=`last_seq`, each root recomputed.
    Intact { batches: u64, last_seq: u64 },
    /// The first batch that is not what the log says.
    Bad { id: u64, reason: String },
}

/// Walks the batches oldest first: each starts right after the one before (the first at
/// seq 1) and ends at or before the head, so every record up to the last batch is in
/// exactly one; and its root and block roots are recomputed from the log's object hashes.
async fn verify_batches(store: &Store) -> anyhow::Result<BatchReport> {
    // Read now, not at the chain check: a batch may have closed since.
    let head = store.head().await?.seq;
    let mut expected_first = 1u64;
    let mut count = 0u64;
    let mut after = 0u64;
    loop {
        let page = store.batches_ascending(after, 100).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for b in page {
            let bad = |reason: String| Ok(BatchReport::Bad { id: b.id, reason });
            if b.first_seq != expected_first {
                return bad(format!(
                    "starts at seq {}, but the batch before ends at seq {}",
                    b.first_seq,
                    expected_first - 1
                ));
            }
            if b.last_seq < b.first_seq || b.last_seq > head {
                return bad(format!(
                    "range {}..={} is empty or past the head {head}",
                    b.first_seq, b.last_seq
                ));
            }
            if b.leaf_count != b.last_seq - b.first_seq + 1 {
                return bad(format!(
                    "leaf count {} does not fit its range",
                    b.leaf_count
                ));
            }
            if b.hash_alg != crate::anchor::TREE_ALG_NAME {
                return bad(format!("unknown tree hash algorithm {:?}", b.hash_alg));
            }
            let (root, blocks) = crate::anchor::tree_of(store, b.first_seq, b.last_seq).await?;
            if blocks != b.block_roots {
                return bad("stored block roots differ from the log's object hashes".into());
            }
            if root != b.root {
                return bad(format!(
                    "stored root {} differs from the root {} recomputed from the log",
                    hex::encode(&b.root),
                    hex::encode(&root)
                ));
            }
            expected_first = b.last_seq + 1;
            count += 1;
        }
    }
    Ok(BatchReport::Intact {
        batches: count,
        last_seq: expected_first - 1,
    })
}

async fn export(args: &LogExportArgs) -> anyhow::Result<()> {
    let range = export_range(args.from.as_deref(), args.to.as_deref())?;
    let store = open_store(&args.db).await?;
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout());
    let options = ExportOptions::new(args.tokens, args.batches);
    let result = store.export_with(range, options, &mut out).await;
    store.close().await;
    match result {
        Ok(n) => {
            out.flush().context("writing to stdout")?;
            tracing::info!(records = n, "export written");
            Ok(())
        }
        // `hanko log export | head`: the reader has what it wanted.
        Err(hanko_store::Error::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e).context("exporting the issuance log"),
    }
}

/// Runs `hanko log ...` and returns the process's exit code (0 ok, 1 the chain is
/// broken, 2 error). Logs go to stderr at `warn` unless `RUST_LOG` says otherwise, so
/// stdout carries only the result.
pub fn log_command(args: LogArgs) -> ExitCode {
    crate::entry::init_logging(config::LogFormat::Text, "warn");
    let outcome = crate::entry::runtime().and_then(|rt| {
        rt.block_on(async {
            match &args.command {
                LogCommand::Verify(db) => verify(db).await,
                LogCommand::Export(a) => export(a).await.map(|()| Verdict::Intact),
            }
        })
    });
    match outcome {
        Ok(Verdict::Intact) => ExitCode::SUCCESS,
        Ok(Verdict::Bad) => ExitCode::from(1),
        Err(e) => {
            eprintln!("hanko: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn bounds_parse_as_seq_or_time() {
        assert_eq!(export_range(None, None).unwrap(), ExportRange::All);
        assert_eq!(
            export_range(Some("3"), Some("7")).unwrap(),
            ExportRange::Seq { from: 3, to: 7 }
        );
        let ExportRange::Time { from, to } = export_range(
            Some("2026-11-24T00:00:00Z"),
            Some("2026-11-24T01:00:00.5+01:00"),
        )
        .unwrap() else {
            panic!("not a time range");
        };
        assert_eq!(to.duration_since(from).unwrap().as_millis(), 500);
        let e = export_range(Some("1"), Some("2026-11-24T00:00:00Z")).unwrap_err();
        assert!(e.to_string().contains("both"), "{e}");
        let e = export_range(Some("yesterday"), None).unwrap_err();
        assert!(e.to_string().contains("RFC 3339"), "{e}");
        assert!(export_range(Some("-1"), None).is_err());
    }

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_path("sqlite:///d/issuance-log.sqlite?mode=rwc"),
            Some(PathBuf::from("/d/issuance-log.sqlite"))
        );
        assert_eq!(sqlite_path("sqlite:rel.db"), Some(PathBuf::from("rel.db")));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://h/db"), None);
    }
}
