//! `hanko-bench hsm --digest-batches 1,64`: signing digests the caller computed
//! (`Signer::sign_digests`, what the CSC API's `signHash` calls) as a ratio to the raw
//! rate of the same key, in the same pool, in the same run.
//!
//! For each key and verify-after-sign setting it starts one signing pool with `--workers`
//! workers and measures, `--seconds` each, in this order: the raw rate (`Signer::sign`
//! on a 220-byte message, as `hanko-bench hsm` does), each batch size (`2 × workers`
//! callers, each calling `sign_digests` with that many SHA-256 digests in a loop), and
//! the raw rate again. Every rate is the pool's own count of signatures over a window
//! inside the steady state (see `windowed`). **ratio** = digest signatures/s ÷ the mean
//! of the two raw rates, so a machine whose load drifts during the rows shows it in the
//! two raw figures instead of in the ratio alone.
//!
//! RSA-3072 signs with PKCS#1 v1.5 / SHA-256 in both phases (`CKM_RSA_PKCS` over a
//! DigestInfo), P-256 with ECDSA / SHA-256 (`CKM_ECDSA`): the digest phase differs from
//! the raw phase only in what crosses the `Signer` trait.

use std::future::Future;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hanko_hsm::{Hsm, HsmSigner, PoolConfig};
use hanko_pki::{DigestSignAlgorithm, KeyType, SignatureAlgorithm, Signer};

use super::{drive, drive_signer, row_head, warm_pool};

/// One key and verify setting: the raw rates around the digest rows, and the rows.
#[derive(Debug, Clone)]
pub struct DigestRun {
    /// Key type.
    pub key: KeyType,
    /// Worker threads in the pool.
    pub workers: usize,
    /// Verify-after-sign on?
    pub verify: bool,
    /// Raw signs/s before the digest rows.
    pub raw_before: f64,
    /// Raw signs/s after the digest rows.
    pub raw_after: f64,
    /// One row per batch size.
    pub rows: Vec<DigestRow>,
}

/// One batch size.
#[derive(Debug, Clone)]
pub struct DigestRow {
    /// Digests per `sign_digests` call.
    pub batch: usize,
    /// Signatures per second.
    pub rate: f64,
    /// Median latency of one call (the whole batch), ms.
    pub p50_ms: f64,
    /// 99th percentile latency of one call, ms.
    pub p99_ms: f64,
    /// Failed calls (should be 0).
    pub errors: u64,
}

impl DigestRun {
    /// The raw rate the rows are compared with: the mean of the two raw phases.
    pub fn raw(&self) -> f64 {
        (self.raw_before + self.raw_after) / 2.0
    }
}

/// Measures every key × verify setting and prints the table.
pub(super) fn run(
    rt: &tokio::runtime::Runtime,
    hsm: &Hsm,
    keys: &[(&str, KeyType, SignatureAlgorithm)],
    verify_modes: &[bool],
    workers: usize,
    batches: &[usize],
    seconds: Duration,
) -> anyhow::Result<Vec<DigestRun>> {
    println!(
        "{:<12} {:>7} {:>6} {:>6} {:>10} {:>10} {:>6} {:>8} {:>8} {:>6}",
        "key",
        "workers",
        "verify",
        "batch",
        "signs/s",
        "raw",
        "ratio",
        "p50 ms",
        "p99 ms",
        "errors"
    );
    let mut runs = Vec::new();
    for (label, kt, alg) in keys {
        for &verify in verify_modes {
            let run = rt.block_on(measure(
                hsm, label, *kt, *alg, workers, verify, batches, seconds,
            ))?;
            for row in &run.rows {
                println!(
                    "{} {:>6} {:>10.1} {:>10.1} {:>6.3} {:>8.2} {:>8.2} {:>6}",
                    row_head(run.key, run.workers, run.verify),
                    row.batch,
                    row.rate,
                    run.raw(),
                    row.rate / run.raw(),
                    row.p50_ms,
                    row.p99_ms,
                    row.errors
                );
            }
            println!(
                "{:<12} raw signs/s before {:.1}, after {:.1}",
                "", run.raw_before, run.raw_after
            );
            std::io::stdout().flush()?;
            runs.push(run);
        }
    }
    Ok(runs)
}

/// How long the callers run before the measurement window opens.
const RAMP: Duration = Duration::from_millis(300);

/// Runs `load` (callers that keep the pool saturated for `RAMP + seconds`) and returns
/// the pool's signatures per second over the window `[RAMP, RAMP + seconds]`, read from
/// its own counter, with what `load` returned.
///
/// Why the pool's counter and not the callers' count over their run time: a call of 64
/// RSA-3072 digests takes most of a second under load, so the callers' last calls end
/// one after the other well past the deadline, with idle workers in between, which
/// biased short batch rows low by up to 40 % in the first runs. A window inside the
/// steady state counts what the workers finished in it (a job's signatures count when
/// the job is answered; the phase of the jobs against the window is random, so that
/// rounds out on average).
async fn windowed<T>(
    signer: &HsmSigner,
    seconds: Duration,
    load: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<(f64, T)> {
    let count = async {
        tokio::time::sleep(RAMP).await;
        let start = signer.stats().signatures;
        tokio::time::sleep(seconds).await;
        let done = signer.stats().signatures.saturating_sub(start);
        done as f64 / seconds.as_secs_f64()
    };
    let (rate, out) = tokio::join!(count, load);
    Ok((rate, out?))
}

#[allow(
    clippy::too_many_arguments,
    reason = "one row's settings, all used once"
)]
async fn measure(
    hsm: &Hsm,
    label: &str,
    key: KeyType,
    alg: SignatureAlgorithm,
    workers: usize,
    verify: bool,
    batches: &[usize],
    seconds: Duration,
) -> anyhow::Result<DigestRun> {
    let digest_alg = DigestSignAlgorithm::from_signature_algorithm(alg)
        .with_context(|| format!("{alg} signs no digests"))?;
    let callers = 2 * workers;
    let largest = batches.iter().copied().max().unwrap_or(1);
    let cfg = PoolConfig {
        workers,
        // Room for every caller's whole batch: one queue slot per digest.
        queue_depth: (4 * workers + 8).max(callers * largest),
        call_timeout: Duration::from_secs(30),
        verify_after_sign: verify,
        bulk_share: hanko_hsm::DEFAULT_BULK_SHARE,
    };
    let signer = warm_pool(hsm, label, alg, cfg).await?;
    let load_time = RAMP + seconds;
    let (raw_before, _) = windowed(
        &signer,
        seconds,
        drive_signer(signer.clone(), callers, load_time),
    )
    .await?;
    let mut rows = Vec::new();
    for &batch in batches {
        let digests: Arc<Vec<Vec<u8>>> = Arc::new(
            (0..batch)
                .map(|i| digest_alg.hash().digest(&i.to_be_bytes()))
                .collect(),
        );
        let s = signer.clone();
        let load = drive(callers, load_time, move || {
            let s = s.clone();
            let digests = digests.clone();
            async move { s.sign_digests(digest_alg, &digests).await.map(|v| v.len()) }
        });
        let (rate, (samples, _, _)) = windowed(&signer, seconds, load).await?;
        rows.push(DigestRow {
            batch,
            rate,
            p50_ms: samples.quantile_ms(0.50),
            p99_ms: samples.quantile_ms(0.99),
            errors: samples.errors,
        });
    }
    let (raw_after, _) = windowed(
        &signer,
        seconds,
        drive_signer(signer.clone(), callers, load_time),
    )
    .await?;
    Ok(DigestRun {
        key,
        workers,
        verify,
        raw_before,
        raw_after,
        rows,
    })
}
