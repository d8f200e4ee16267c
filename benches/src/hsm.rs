//! `hanko-bench hsm`: raw signing throughput through `hanko_hsm::HsmSigner`.
//!
//! For each key (RSA-3072 with PKCS#1 v1.5 / SHA-256, P-256 with ECDSA / SHA-256) and
//! each worker count from 1 to `--workers`, it first measures the token alone (verify
//! column `bare`: as many threads, a session each, C_Sign in a loop), then, for each
//! verify-after-sign setting, it starts a
//! fresh signing pool, keeps it saturated with `2 × workers` concurrent async callers
//! for `--seconds`, and prints signatures per second and the p50/p99 latency of one
//! `Signer::sign` call as a caller sees it (queueing included).
//!
//! The token is SoftHSM in a temporary directory unless `--data-dir` names one to reuse
//! (`<data-dir>/softhsm2.conf`, the layout of `hanko dev-init`); keys `bench-rsa3072` and
//! `bench-p256` are generated there if missing. For a token it creates, the bench makes up
//! a random PIN and keeps it in `<data-dir>/bench-pin` (0600); for any other token the
//! PIN comes from `HANKO_PIN` / `HANKO_PIN_FILE`, as for the server.
//!
//! It measures the HSM layer only: no ASN.1, no HTTP, no log writes.
//!
//! With `--digest-batches 1,64` it measures signing digests the caller computed instead
//! (the CSC API's `signHash` path), as a ratio to the raw rate: see [`digest`].

use std::future::Future;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hanko_hsm::{Hsm, HsmSigner, ModuleConfig, Pin, PoolConfig};
use hanko_pki::{HashAlgorithm, KeyType, SignError, SignErrorKind, SignatureAlgorithm, Signer};

use crate::stats::Samples;

pub mod digest;

/// Options of `hanko-bench hsm`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds to measure each configuration.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Largest worker count; every count from 1 up to it is measured. Default: CPU cores.
    #[arg(long)]
    pub workers: Option<usize>,
    /// Measure only with verify-after-sign on (default: both on and off).
    #[arg(long, conflicts_with = "no_verify")]
    pub verify: bool,
    /// Measure only with verify-after-sign off (default: both on and off).
    #[arg(long)]
    pub no_verify: bool,
    /// Directory with `softhsm2.conf` and the token to reuse (created if missing).
    /// Default: a fresh temporary directory, removed afterwards.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Token label.
    #[arg(long, default_value = "hanko-bench")]
    pub token_label: String,
    /// PKCS#11 module.
    #[arg(long, default_value = "/usr/lib/softhsm/libsofthsm2.so")]
    pub module: PathBuf,
    /// Only these key types (`rsa3072`, `p256`); default both.
    #[arg(long = "key", value_parser = ["rsa3072", "p256"])]
    pub keys: Vec<String>,
    /// Instead of the worker scan: signing digests (`Signer::sign_digests`) in batches of
    /// these sizes, e.g. `1,64`, with `--workers` workers, as a ratio to the raw rate of
    /// the same pool (see `hsm/digest.rs`).
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub digest_batches: Vec<u64>,
}

/// One row of the result table.
#[derive(Debug, Clone)]
pub struct Row {
    /// Key type.
    pub key: KeyType,
    /// Worker threads in the pool.
    pub workers: usize,
    /// Verify-after-sign on?
    pub verify: bool,
    /// What the pool did.
    pub pool: PoolRate,
}

/// What a signing pool did in one measurement (`pool_rate`): a row of `hanko-bench hsm`
/// and the raw column of `hanko-bench tsa`.
#[derive(Debug, Clone, Copy)]
pub struct PoolRate {
    /// Signatures per second.
    pub rate: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Failed calls (should be 0).
    pub errors: u64,
}

/// Runs the benchmark and prints the table.
pub fn run(args: Args) -> anyhow::Result<()> {
    if args.seconds.is_nan() || args.seconds <= 0.0 {
        bail!("--seconds must be positive");
    }
    let max_workers = args
        .workers
        .unwrap_or_else(|| PoolConfig::default().workers);
    if max_workers == 0 {
        bail!("--workers must be at least 1");
    }
    // SOFTHSM2_CONF must be set before any thread exists: set up the token first, then
    // start the runtime.
    let (_tmp, dir) = match &args.data_dir {
        Some(d) => (None, d.clone()),
        None => {
            let t = tempfile::Builder::new().prefix("hanko-bench-").tempdir()?;
            let p = t.path().to_owned();
            (Some(t), p)
        }
    };
    let hsm = open_token(&dir, &args)?;
    let keys = bench_keys(&hsm, &args.keys)?;
    let verify_modes: Vec<bool> = match (args.verify, args.no_verify) {
        (true, _) => vec![true],
        (_, true) => vec![false],
        _ => vec![false, true],
    };
    let seconds = Duration::from_secs_f64(args.seconds);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if !args.digest_batches.is_empty() {
        println!(
            "hanko-bench hsm --digest-batches: token \"{}\", {} s per row, {max_workers} workers, \
             callers = 2 x workers",
            hsm.token_label(),
            args.seconds
        );
        let batches: Vec<usize> = args.digest_batches.iter().map(|b| *b as usize).collect();
        digest::run(
            &rt,
            &hsm,
            &keys,
            &verify_modes,
            max_workers,
            &batches,
            seconds,
        )?;
        return Ok(());
    }
    println!(
        "hanko-bench hsm: token \"{}\", {} s per row, callers = 2 x workers",
        hsm.token_label(),
        args.seconds
    );
    println!(
        "{:<12} {:>7} {:>6} {:>10} {:>8} {:>8} {:>6}",
        "key", "workers", "verify", "signs/s", "p50 ms", "p99 ms", "errors"
    );
    let mut rows = Vec::new();
    for (label, kt, alg) in &keys {
        // The token alone first (Hsm::bare_sign_rate: a thread and session per worker,
        // C_Sign in a loop): the pool's rows below are its cost on top.
        for workers in 1..=max_workers {
            let rate = hsm.bare_sign_rate(label, *alg, workers, seconds)?;
            println!(
                "{:<12} {workers:>7} {:>6} {rate:>10.1} {:>8} {:>8} {:>6}",
                kt.to_string(),
                "bare",
                "-",
                "-",
                0
            );
        }
        for &verify in &verify_modes {
            for workers in 1..=max_workers {
                let row = rt.block_on(measure(&hsm, label, *kt, *alg, workers, verify, seconds))?;
                println!(
                    "{} {:>10.1} {:>8.2} {:>8.2} {:>6}",
                    row_head(row.key, row.workers, row.verify),
                    row.pool.rate,
                    row.pool.p50_ms,
                    row.pool.p99_ms,
                    row.pool.errors
                );
                std::io::stdout().flush()?;
                rows.push(row);
            }
        }
    }
    println!();
    print_scaling(&rows, max_workers);
    Ok(())
}

/// A key the bench signs with: label, type, mechanism.
type BenchKey = (&'static str, KeyType, SignatureAlgorithm);

/// The keys asked for (`--key`; default both), generated in the token when missing.
fn bench_keys(hsm: &Hsm, wanted: &[String]) -> anyhow::Result<Vec<BenchKey>> {
    let all: [(&str, BenchKey); 2] = [
        (
            "rsa3072",
            (
                "bench-rsa3072",
                KeyType::Rsa { bits: 3072 },
                SignatureAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha256),
            ),
        ),
        (
            "p256",
            (
                "bench-p256",
                KeyType::EcP256,
                SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256),
            ),
        ),
    ];
    let mut keys = Vec::new();
    for (name, key) in all {
        if !wanted.is_empty() && !wanted.iter().any(|x| x == name) {
            continue;
        }
        let (label, kt, _) = key;
        if hsm.public_key(label)?.is_none() {
            eprintln!("generating {kt} key {label} ...");
            hsm.generate_key_pair(label, kt)?;
        }
        keys.push(key);
    }
    Ok(keys)
}

/// For each key and verify mode: the rate with the most workers over the rate with one.
fn print_scaling(rows: &[Row], max_workers: usize) {
    let mut seen: Vec<(KeyType, bool)> = Vec::new();
    for r in rows {
        if !seen.contains(&(r.key, r.verify)) {
            seen.push((r.key, r.verify));
        }
    }
    for (kt, verify) in seen {
        let of = |w: usize| {
            rows.iter()
                .find(|r| r.key == kt && r.verify == verify && r.workers == w)
                .map(|r| r.pool.rate)
        };
        if let (Some(one), Some(max)) = (of(1), of(max_workers))
            && max_workers > 1
            && one > 0.0
        {
            println!(
                "{kt}, verify {}: {max_workers} workers = {:.2} x 1 worker",
                if verify { "on" } else { "off" },
                max / one
            );
        }
    }
}

async fn measure(
    hsm: &Hsm,
    label: &str,
    key: KeyType,
    alg: SignatureAlgorithm,
    workers: usize,
    verify: bool,
    seconds: Duration,
) -> anyhow::Result<Row> {
    Ok(Row {
        key,
        workers,
        verify,
        pool: pool_rate(hsm, label, alg, workers, verify, seconds).await?,
    })
}

/// The raw rate of a signing pool of `workers` on key `label`: the pool is warmed up (every
/// worker opens its session and finds its key), then driven by 2 × `workers` callers for
/// `seconds` ([`drive_signer`]). The measurement of `hanko-bench hsm` and of the raw column
/// of `hanko-bench tsa`.
pub(crate) async fn pool_rate(
    hsm: &Hsm,
    label: &str,
    alg: SignatureAlgorithm,
    workers: usize,
    verify: bool,
    seconds: Duration,
) -> anyhow::Result<PoolRate> {
    let cfg = PoolConfig {
        workers,
        queue_depth: 4 * workers + 8,
        call_timeout: Duration::from_secs(30),
        verify_after_sign: verify,
        bulk_share: hanko_hsm::DEFAULT_BULK_SHARE,
    };
    let signer = warm_pool(hsm, label, alg, cfg).await?;
    let (all, elapsed) = drive_signer(signer, 2 * workers, seconds).await?;
    Ok(PoolRate {
        rate: all.count() as f64 / elapsed,
        p50_ms: all.quantile_ms(0.50),
        p99_ms: all.quantile_ms(0.99),
        errors: all.errors,
    })
}

/// A signing pool for `label` in which every worker has signed once (sessions open, key
/// handles found), so that a measurement starts in the steady state.
pub(crate) async fn warm_pool(
    hsm: &Hsm,
    label: &str,
    alg: SignatureAlgorithm,
    cfg: PoolConfig,
) -> anyhow::Result<Arc<HsmSigner>> {
    let callers = 2 * cfg.workers;
    let signer = Arc::new(hsm.signer(label, alg, cfg)?);
    let warm: Vec<_> = (0..callers)
        .map(|_| {
            let s = signer.clone();
            tokio::spawn(async move { s.sign(b"warm-up").await })
        })
        .collect();
    for w in warm {
        w.await?.context("warm-up signature")?;
    }
    Ok(signer)
}

/// The first columns of a table row: key, workers, verify-after-sign.
pub(crate) fn row_head(key: KeyType, workers: usize, verify: bool) -> String {
    let verify = if verify { "on" } else { "off" };
    format!("{:<12} {workers:>7} {verify:>6}", key.to_string())
}

/// Keeps `callers` concurrent callers signing a 220-byte message (the size of typical CMS
/// signed attributes) through `signer` for `seconds`; returns their latency samples and
/// the elapsed seconds. The raw HSM rate of both `hanko-bench hsm` and `hanko-bench tsa`.
pub(crate) async fn drive_signer<S: Signer + 'static>(
    signer: Arc<S>,
    callers: usize,
    seconds: Duration,
) -> anyhow::Result<(Samples, f64)> {
    let message: Arc<[u8]> = vec![0x5au8; 220].into();
    let (samples, _, elapsed) = drive(callers, seconds, move || {
        let s = signer.clone();
        let msg = message.clone();
        async move { s.sign(&msg).await.map(|_| 1) }
    })
    .await?;
    Ok((samples, elapsed))
}

/// Keeps `callers` concurrent async callers running `call` one after the other for
/// `seconds`. Returns the latency of every successful call, the signatures the calls
/// reported (a call may make several), and the elapsed seconds. A `Busy` answer yields
/// before the next try; every failure is counted in [`Samples::errors`].
pub(crate) async fn drive<F, Fut>(
    callers: usize,
    seconds: Duration,
    call: F,
) -> anyhow::Result<(Samples, u64, f64)>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<usize, SignError>> + Send,
{
    let start = Instant::now();
    let deadline = start + seconds;
    let mut tasks = Vec::new();
    for _ in 0..callers {
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let mut samples = Samples::default();
            let mut signatures = 0u64;
            while Instant::now() < deadline {
                let t0 = Instant::now();
                match call().await {
                    Ok(n) => {
                        samples.push(t0.elapsed());
                        signatures += n as u64;
                    }
                    Err(e) => {
                        samples.errors += 1;
                        if e.kind() == SignErrorKind::Busy {
                            tokio::task::yield_now().await;
                        }
                    }
                }
            }
            (samples, signatures)
        }));
    }
    let mut all = Samples::default();
    let mut signatures = 0;
    for t in tasks {
        let (samples, n) = t.await?;
        all.merge(samples);
        signatures += n;
    }
    Ok((all, signatures, start.elapsed().as_secs_f64()))
}

/// Opens the token in `dir`, creating config, token and PIN if the directory is new.
fn open_token(dir: &Path, args: &Args) -> anyhow::Result<Hsm> {
    let conf = dir.join("softhsm2.conf");
    let token_dir = dir.join("softhsm");
    let pin_file = dir.join("bench-pin");
    if !conf.exists() {
        std::fs::create_dir_all(&token_dir)?;
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                token_dir.display()
            ),
        )?;
    }
    hanko_hsm::use_softhsm_config(&conf);
    let module = ModuleConfig {
        module_path: args.module.clone(),
        token_label: args.token_label.clone(),
    };
    let pin = if pin_file.exists() {
        Pin::from_file(&pin_file)?
    } else {
        match Pin::from_env() {
            Ok(p) => p,
            Err(_) => {
                // A new bench token: make up the PINs, keep the user PIN for reuse.
                let user = random_hex(16)?;
                let created =
                    Hsm::init_token(&module, &Pin::new(random_hex(16)?), &Pin::new(user.clone()))?;
                if !created {
                    bail!(
                        "token \"{}\" exists in {}; set HANKO_PIN or HANKO_PIN_FILE",
                        args.token_label,
                        dir.display()
                    );
                }
                write_private(&pin_file, &user)?;
                Pin::new(user)
            }
        }
    };
    Ok(Hsm::open(module, pin)?)
}

fn random_hex(bytes: usize) -> anyhow::Result<String> {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

fn write_private(path: &Path, content: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(content.as_bytes())?;
    Ok(())
}
