//! `hanko-bench seal`: the CSC API's `signatures/signHash` (and, with `--cades`, the
//! binary CAdES endpoint) over HTTP, as a ratio to the raw HSM signing rate of the same
//! seal key measured in the same run (issue #12).
//!
//! What it does, per server configuration (verify-after-sign on / off):
//!
//! ```text
//!   hanko dev-init (once) ─> open the dev token here too (same PIN, same SOFTHSM2_CONF)
//!   write <data-dir>/bench-seal-verify-<v>.toml ─> hanko serve --dev --config it ─> /readyz
//!   read <data-dir>/dev-api-key (the dev client, allowed both seal credentials)
//!   for each seal key (seal-rsa3072: PKCS#1 v1.5 / SHA-256, seal-p256: ECDSA / SHA-256),
//!   --repeat times:
//!     raw before: hanko_hsm pool on the same key, same workers, same verify, server idle
//!     for each --hashes n, each --clients C:
//!       C keep-alive clients: authorize (numSignatures n) + signHash (n hashes), in a loop
//!       signatures counted over a window of --seconds; some verified after the row
//!     --cades: C clients POST /api/v1/seal/cades?level=B-B of a small document
//!     --pdf: for each --pdf-bytes size, C clients POST /api/v1/seal/pdf?level=B-B of
//!       a PDF of that size (pdf.rs, the same bytes every run); then `sha256sum` of
//!       the same file, timed, for the MB/s comparison
//!     raw after (the rows are compared with the mean of before and after)
//!   SIGTERM the server
//! ```
//!
//! Like `hanko-bench tsa` it builds nothing (it runs `--hanko`, default
//! `target/release/hanko`) and asserts nothing: it prints tables for `RESULTS.md`. The
//! only check that can fail the run is the verification of the kept signatures
//! (`--check-signatures`): a signature that does not verify against the key is a bug,
//! not a figure.
//!
//! The server's `hsm.queue_depth` is raised for the run to hold every client's whole
//! batch (`clients × hashes`, at least the dev config's 128): a signHash call queues one
//! job per hash, all or none, so with the dev default three concurrent calls of 64
//! hashes would already be refused (503) and the bench would measure refusals.
//! `http.csc_max_hashes` is raised likewise when `--hashes` asks for more than it allows.
//!
//! Layout: this file has the options and the run; `load` builds the requests and drives
//! the clients, `report` prints the tables, `pdf` makes the PDFs and times `sha256sum`. The server, the dev token, the CPU split and
//! the HTTP client are shared with `hanko-bench tsa` (`devserver.rs`,
//! `cpu.rs`, `http.rs`).

mod load;
mod pdf;
mod report;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use hanko_hsm::Hsm;
use hanko_pki::{DigestSignAlgorithm, HashAlgorithm, SignatureAlgorithm};

use self::load::{LoadResult, Work, drive};
use self::report::{header, print_round, print_summary};
use crate::cpu::{CpuSplit, CpuTimes, load_average};
use crate::devserver::{
    Both, DevToken, HttpBench, Server, config_text, integer, on_off, set, with_verify,
};
use crate::hsm::{PoolRate, pool_rate};

/// Options of `hanko-bench seal`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The options every HTTP bench has.
    #[command(flatten)]
    pub common: HttpBench,
    /// Hashes per signHash call (and the `numSignatures` of its SAD), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,64",
          value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub hashes: Vec<u64>,
    /// Port the server listens on (127.0.0.1); 0 lets the server pick a free one.
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Verify-after-sign in the server and in the raw measurement: `on`, `off` or
    /// `both` (on, then off; the default).
    #[arg(long, value_enum, default_value_t = Both::Both)]
    pub verify: Both,
    /// Also measure `POST /api/v1/seal/cades?level=B-B` (seals/s; each seal is logged).
    #[arg(long)]
    pub cades: bool,
    /// Size of the documents sealed by the `--cades` rows, bytes.
    #[arg(long, default_value_t = 1024)]
    pub cades_bytes: usize,
    /// Also measure `POST /api/v1/seal/pdf?level=B-B` (PAdES seals/s, each logged) of
    /// PDFs of the `--pdf-bytes` sizes.
    #[arg(long)]
    pub pdf: bool,
    /// Sizes of the PDFs the `--pdf` rows seal, bytes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "100000,5000000")]
    pub pdf_bytes: Vec<usize>,
    /// Signatures per row verified against the key after the row (off the timed path);
    /// 0 checks none.
    #[arg(long, default_value_t = 64)]
    pub check_signatures: usize,
    /// The server's `hsm.queue_depth`. Default: room for every client's whole batch
    /// (largest `--clients` × largest `--hashes`), at least the dev config's.
    #[arg(long)]
    pub queue_depth: Option<usize>,
}

/// What a row's clients call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    /// authorize + signHash of this many hashes.
    SignHash(usize),
    /// One CAdES B-B seal.
    Cades,
    /// One PAdES B-B seal of a PDF of this many bytes.
    Pdf(usize),
}

/// A dev seal credential and its signing scheme.
#[derive(Debug, Clone, Copy)]
struct SealKey {
    name: &'static str,
    /// Key label = credential name in `--dev`.
    label: &'static str,
    /// The `--key` value.
    arg: &'static str,
    /// What the server's key signs with (`keys[].algorithm` of the dev config) and the
    /// raw pool too.
    alg: SignatureAlgorithm,
}

const KEYS: [SealKey; 2] = [
    SealKey {
        name: "RSA-3072",
        label: "seal-rsa3072",
        arg: "rsa3072",
        alg: SignatureAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha256),
    },
    SealKey {
        name: "ECDSA P-256",
        label: "seal-p256",
        arg: "p256",
        alg: SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256),
    },
];

/// The kept signatures of a row: how many, how many verified.
#[derive(Debug, Clone, Copy, Default)]
struct Checked {
    kept: usize,
    ok: usize,
}

/// One row of the table.
#[derive(Debug, Clone)]
struct Row {
    key: SealKey,
    verify: bool,
    call: Call,
    clients: usize,
    round: usize,
    load: LoadResult,
    raw_before: PoolRate,
    raw_after: PoolRate,
    /// Share of the machine used by other processes during the raw measurements (the
    /// larger of the two).
    raw_other: f64,
    cpu: CpuSplit,
    checked: Checked,
    /// `sha256sum` of the row's PDF, MB/s, timed right after the row (PDF rows).
    sha256sum: Option<f64>,
}

/// Runs the benchmark and prints the tables.
pub fn run(args: Args) -> anyhow::Result<()> {
    check(&args)?;
    let (_tmp, hanko, dir) = args.common.prepare("hanko-bench-seal-")?;
    let token = DevToken::open(&dir, &args.common.module)?;
    let queue_depth = queue_depth(&args, &token.base);
    let (raw_rt, client_rt) = crate::devserver::runtimes()?;
    let bench = Bench {
        args: &args,
        hanko,
        dir,
        keys: keys(&args.common.keys),
        queue_depth,
        workers: token.workers,
        raw_rt,
        client_rt,
        token,
        ncpu: std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    println!(
        "hanko-bench seal: {} s per row, server {}, hsm workers {}, queue depth {}, {} CPUs, \
         data dir {}, load average {}",
        args.common.seconds,
        bench.hanko.display(),
        bench.workers,
        bench.queue_depth,
        bench.ncpu,
        bench.dir.display(),
        load_average().unwrap_or_else(|| "?".into())
    );
    println!("{}", header());
    let mut rows = Vec::new();
    for verify in args.verify.values(false) {
        rows.extend(bench.measure_config(verify)?);
    }
    print_summary(&rows, args.common.max_other);
    println!(
        "load average at the end: {}",
        load_average().unwrap_or_else(|| "?".into())
    );
    let bad: usize = rows.iter().map(|r| r.checked.kept - r.checked.ok).sum();
    if bad > 0 {
        bail!("{bad} returned signature(s) did not verify against their key (rows marked BAD)");
    }
    Ok(())
}

/// Refuses options that cannot give a measurement.
fn check(args: &Args) -> anyhow::Result<()> {
    if args.hashes.is_empty() && !args.cades && !args.pdf {
        bail!("nothing to measure: give --hashes, --cades or --pdf");
    }
    if args.cades_bytes == 0 {
        bail!("--cades-bytes must be at least 1");
    }
    if args.pdf && args.pdf_bytes.iter().any(|&b| b < pdf::MIN_BYTES) {
        bail!("--pdf-bytes must each be at least {}", pdf::MIN_BYTES);
    }
    if args.queue_depth == Some(0) {
        bail!("--queue-depth must be at least 1");
    }
    args.common.check()
}

/// The keys asked for (`--key`), all by default, in table order.
fn keys(wanted: &[String]) -> Vec<SealKey> {
    KEYS.iter()
        .copied()
        .filter(|k| wanted.is_empty() || wanted.iter().any(|w| w == k.arg))
        .collect()
}

/// The largest `--hashes`.
fn max_hashes(args: &Args) -> usize {
    args.hashes.iter().copied().max().unwrap_or(1) as usize
}

/// `--queue-depth`, else room for every client's whole batch, at least the dev
/// config's `hsm.queue_depth` (the server's default when it has none).
fn queue_depth(args: &Args, base: &toml::Table) -> usize {
    if let Some(q) = args.queue_depth {
        return q;
    }
    let clients = args.common.clients.iter().copied().max().unwrap_or(1);
    let workers = integer(base, "hsm", "workers").unwrap_or(1);
    let configured = integer(base, "hsm", "queue_depth").unwrap_or(64 * workers);
    configured.max(clients * max_hashes(args))
}

/// The dev config with verify-after-sign set, the queue depth, and
/// `http.csc_max_hashes` raised to the largest `--hashes` when needed.
fn bench_config(
    base: &toml::Table,
    verify: bool,
    queue_depth: usize,
    max_hashes: usize,
) -> anyhow::Result<String> {
    let mut t = with_verify(base, verify)?;
    let int = |n: usize| i64::try_from(n).map(toml::Value::Integer);
    set(&mut t, "hsm", "queue_depth", int(queue_depth)?)?;
    if integer(base, "http", "csc_max_hashes").unwrap_or(64) < max_hashes {
        set(&mut t, "http", "csc_max_hashes", int(max_hashes)?)?;
    }
    config_text("seal", &t)
}

/// Everything a row's measurement needs, set up once.
struct Bench<'a> {
    args: &'a Args,
    hanko: PathBuf,
    dir: PathBuf,
    token: DevToken,
    keys: Vec<SealKey>,
    queue_depth: usize,
    workers: usize,
    raw_rt: tokio::runtime::Runtime,
    client_rt: tokio::runtime::Runtime,
    ncpu: usize,
}

impl Bench<'_> {
    fn hsm(&self) -> &Hsm {
        &self.token.hsm
    }

    /// One server configuration: config, start, every key `--repeat` times, stop.
    fn measure_config(&self, verify: bool) -> anyhow::Result<Vec<Row>> {
        let cfg_path = self
            .dir
            .join(format!("bench-seal-verify-{}.toml", on_off(verify)));
        std::fs::write(
            &cfg_path,
            bench_config(
                &self.token.base,
                verify,
                self.queue_depth,
                max_hashes(self.args),
            )?,
        )?;
        let mut server = Server::start(&self.hanko, &cfg_path, &self.dir, self.args.port, None)?;
        self.client_rt
            .block_on(server.wait_ready(Duration::from_secs(180)))?;
        // Written by `serve --dev` at the latest; never printed.
        let key_path = self.dir.join("dev-api-key");
        let api_key = std::fs::read_to_string(&key_path)
            .with_context(|| format!("reading {}", key_path.display()))?
            .trim()
            .to_owned();
        let mut rows = Vec::new();
        for key in &self.keys {
            let spki = self
                .hsm()
                .public_key(key.label)?
                .with_context(|| format!("no public key {} in the dev token", key.label))?;
            for round in 0..self.args.common.repeat {
                let round_rows =
                    self.measure_round(&server, *key, verify, round, &api_key, &spki)?;
                print_round(&round_rows, self.args.common.max_other);
                rows.extend(round_rows);
            }
        }
        server.stop()?;
        Ok(rows)
    }

    /// The raw rate of `key` with the server idle, and the share of the machine other
    /// processes used meanwhile.
    fn raw(&self, server: &Server, key: SealKey, verify: bool) -> anyhow::Result<(PoolRate, f64)> {
        let c0 = CpuTimes::sample(server.pid());
        let raw = self.raw_rt.block_on(pool_rate(
            self.hsm(),
            key.label,
            key.alg,
            self.workers,
            verify,
            Duration::from_secs_f64(self.args.common.seconds),
        ))?;
        let other = CpuTimes::split(&c0, &CpuTimes::sample(server.pid()), self.ncpu).other;
        Ok((raw, other))
    }

    /// One round on one key: raw, every call kind × client count, raw again.
    fn measure_round(
        &self,
        server: &Server,
        key: SealKey,
        verify: bool,
        round: usize,
        api_key: &str,
        spki: &[u8],
    ) -> anyhow::Result<Vec<Row>> {
        let (raw_before, other_before) = self.raw(server, key, verify)?;
        let dalg = DigestSignAlgorithm::from_signature_algorithm(key.alg)
            .with_context(|| format!("{} signs no digests", key.alg))?;
        let mut calls: Vec<Call> = self
            .args
            .hashes
            .iter()
            .map(|n| Call::SignHash(*n as usize))
            .collect();
        if self.args.cades {
            calls.push(Call::Cades);
        }
        if self.args.pdf {
            calls.extend(self.args.pdf_bytes.iter().map(|&b| Call::Pdf(b)));
        }
        let mut measured = Vec::new();
        for &call in &calls {
            // One PDF for every client of a row (a 5 MB file per client would be the
            // generator's memory, not the server's).
            let pdf = match call {
                Call::Pdf(bytes) => Some(self.pdf_file(bytes)?),
                _ => None,
            };
            for &clients in &self.args.common.clients {
                let work = match &pdf {
                    Some((_, doc)) => {
                        let shared = Arc::new(Work::pdf(key.label, doc, api_key));
                        (0..clients).map(|_| Arc::clone(&shared)).collect()
                    }
                    None => (0..clients)
                        .map(|_| {
                            match call {
                                Call::SignHash(n) => Work::sign_hash(key.label, dalg, n, api_key),
                                _ => Work::cades(key.label, self.args.cades_bytes, api_key),
                            }
                            .map(Arc::new)
                        })
                        .collect::<anyhow::Result<Vec<_>>>()?,
                };
                let c0 = CpuTimes::sample(server.pid());
                let keep = match call {
                    Call::SignHash(_) => self.args.check_signatures,
                    Call::Cades | Call::Pdf(_) => 0,
                };
                let mut load = self.client_rt.block_on(drive(
                    server.addr(),
                    work,
                    Duration::from_secs_f64(self.args.common.seconds),
                    keep,
                ))?;
                let cpu = CpuTimes::split(&c0, &CpuTimes::sample(server.pid()), self.ncpu);
                let checked = check_signatures(spki, dalg, &std::mem::take(&mut load.kept));
                let sha256sum = match &pdf {
                    Some((path, _)) => Some(pdf::sha256sum_rate(path)?),
                    None => None,
                };
                measured.push((call, clients, load, cpu, checked, sha256sum));
            }
        }
        let (raw_after, other_after) = self.raw(server, key, verify)?;
        Ok(measured
            .into_iter()
            .map(|(call, clients, load, cpu, checked, sha256sum)| Row {
                key,
                verify,
                call,
                clients,
                round,
                load,
                raw_before,
                raw_after,
                raw_other: other_before.max(other_after),
                cpu,
                checked,
                sha256sum,
            })
            .collect())
    }

    /// The PDF of `bytes` bytes ([`pdf::padded`]), written to the data directory for
    /// `sha256sum`: (its path, its bytes).
    fn pdf_file(&self, bytes: usize) -> anyhow::Result<(PathBuf, Vec<u8>)> {
        let doc = pdf::padded(bytes);
        let path = self.dir.join(format!("bench-seal-{bytes}.pdf"));
        std::fs::write(&path, &doc).with_context(|| format!("writing {}", path.display()))?;
        Ok((path, doc))
    }
}

/// Verifies each kept (hash, signature) pair against the key.
fn check_signatures(spki: &[u8], alg: DigestSignAlgorithm, kept: &[(Vec<u8>, Vec<u8>)]) -> Checked {
    let ok = kept
        .iter()
        .filter(|(h, s)| hanko_pki::verify::verify_digest(spki, alg, h, s).is_ok())
        .count();
    Checked {
        kept: kept.len(),
        ok,
    }
}

#[cfg(test)]
mod tests;
