//! Soak: two signing pools (RSA-3072 and ECDSA P-256, verify-after-sign on) under
//! concurrent load for `HANKO_SOAK_SECS` seconds (default 20), with random faults on
//! 1 % of the `C_Sign` and 1 % of the `C_SignInit` calls: each of the six device errors,
//! and one flipped signature bit. Seeded (`seed 4242`, or `HANKO_SOAK_SEED`), so a run repeats.
//!
//! It prints a report (requests served, faults injected from the mock's stats, errors
//! by class, retries) and asserts that the counts add up:
//! * requests sent = signatures + errors (caller side), and the pools count the same;
//! * faults injected into signing calls = failed attempts (`Device` + `DeviceLost`),
//!   flipped bits = `BadSignature` attempts = verify-after-sign failures;
//! * errors = failed attempts − retries + refusals (+ deadline expiries), and fewer
//!   than 0.2 % of requests fail after a retry (refusals during recoveries are reported);
//! * no invalid signature was handed out, no request waited past its deadline + margin.
//!
//! `cargo test -p hanko-hsm --release --test soak` (`HANKO_SOAK_SECS=120` for the long
//! run recorded in benches/RESULTS.md).
#![allow(clippy::unwrap_used)] // test code: a failure should stop the test loudly

mod mockenv;

use std::sync::Arc;
use std::time::{Duration, Instant};

use hanko_hsm::{HsmSigner, PoolConfig, PoolStats};
use hanko_pkcs11_mock::{Function, Kind, Stats};
use hanko_pki::{HashAlgorithm, KeyType, SignErrorKind, SignatureAlgorithm};

use mockenv::{Load, MockEnv, Outcome};

const TIMEOUT: Duration = Duration::from_secs(2);
const MARGIN: Duration = Duration::from_millis(750);

fn faults(seed: u64) -> String {
    // 1 % of the C_Sign calls and 1 % of the C_SignInit calls (probabilities are per
    // call and per rule; cryptoki makes one C_SignInit and two C_Sign calls, the length
    // query and the data call, per attempt, so ~3 % of attempts meet a fault).
    format!(
        "seed {seed}\n\
         fault fn=C_Sign rv=CKR_DEVICE_ERROR mode=prob p=0.003\n\
         fault fn=C_Sign rv=CKR_GENERAL_ERROR mode=prob p=0.002\n\
         fault fn=C_Sign rv=CKR_SESSION_HANDLE_INVALID mode=prob p=0.002\n\
         fault fn=C_Sign rv=CKR_TOKEN_NOT_PRESENT mode=prob p=0.001\n\
         corrupt fn=C_Sign mode=prob p=0.002\n\
         fault fn=C_SignInit rv=CKR_FUNCTION_FAILED mode=prob p=0.006\n\
         fault fn=C_SignInit rv=CKR_DEVICE_REMOVED mode=prob p=0.004\n"
    )
}

struct Run {
    name: &'static str,
    out: Outcome,
    ps: PoolStats,
}

fn main() {
    let env = MockEnv::setup("soak");
    let secs: u64 = std::env::var("HANKO_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("HANKO_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4242);
    mockenv::key(&env, "soak-p256", KeyType::EcP256);
    mockenv::key(&env, "soak-rsa3072", KeyType::Rsa { bits: 3072 });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let runs = rt.block_on(async {
        let pool = PoolConfig {
            workers: 2,
            queue_depth: 64,
            call_timeout: TIMEOUT,
            verify_after_sign: true,
            bulk_share: hanko_hsm::DEFAULT_BULK_SHARE,
        };
        let mk = |label: &str, alg| -> Arc<HsmSigner> {
            Arc::new(env.hsm.signer(label, alg, pool.clone()).unwrap())
        };
        let p256 = mk(
            "soak-p256",
            SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256),
        );
        let rsa = mk(
            "soak-rsa3072",
            SignatureAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha256),
        );
        let before = env.stats();
        env.set_faults(&faults(seed));
        let start = Instant::now();
        let lp = Load::start(&p256, 6, "soak p256", None);
        let lr = Load::start(&rsa, 2, "soak rsa", None);
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let (op, or) = (lp.finish().await, lr.finish().await);
        let elapsed = start.elapsed();
        env.clear_faults();
        let after = env.stats();
        let runs = vec![
            Run {
                name: "ECDSA P-256",
                out: op,
                ps: p256.stats(),
            },
            Run {
                name: "RSA-3072",
                out: or,
                ps: rsa.stats(),
            },
        ];
        report(&runs, &before, &after, elapsed, seed);
        for s in [&p256, &rsa] {
            mockenv::resumes_within(s, Duration::from_secs(5)).await;
        }
        runs
    });
    drop(runs);
    env.cleanup();
}

fn injected(before: &Stats, after: &Stats, kind: Kind) -> u64 {
    [Function::C_Sign, Function::C_SignInit]
        .iter()
        .map(|f| after.of(*f, kind) - before.of(*f, kind))
        .sum()
}

fn report(runs: &[Run], before: &Stats, after: &Stats, elapsed: Duration, seed: u64) {
    let faults = injected(before, after, Kind::Fault);
    let corrupt = injected(before, after, Kind::Corrupt);
    println!(
        "\n## Reliability soak: {:.0} s, seed {seed}\n",
        elapsed.as_secs_f64()
    );
    println!("Injected by the mock (from its stats file):\n");
    println!("| function | kind | rv | count |\n|---|---|---|--:|");
    for ((f, kind, rv), n) in &after.counts {
        let n = n - before.counts.get(&(*f, *kind, *rv)).copied().unwrap_or(0);
        if n > 0 && matches!(kind, Kind::Fault | Kind::Corrupt) {
            let rv = rv
                .map(hanko_pkcs11_mock::control::format_rv)
                .unwrap_or_else(|| "-".into());
            println!("| {f} | {} | {rv} | {n} |", kind.name());
        }
    }
    println!("| **total** | | | **{}** |\n", faults + corrupt);
    println!(
        "| pool | requests | signed | signs/s | errors | device | device_lost | bad_signature | timeout | other | failed attempts | retries (ok) | verify failures | refused | max ms |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    let mut failed_attempts = 0;
    let mut verify_failures = 0;
    for r in runs {
        let (o, p) = (&r.out, &r.ps);
        let other = o.errors_total()
            - o.errors_of(SignErrorKind::Device)
            - o.errors_of(SignErrorKind::DeviceLost)
            - o.errors_of(SignErrorKind::BadSignature)
            - o.errors_of(SignErrorKind::Timeout);
        println!(
            "| {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} ({}) | {} | {} | {} |",
            r.name,
            o.sent,
            o.ok,
            o.ok as f64 / elapsed.as_secs_f64(),
            o.errors_total(),
            o.errors_of(SignErrorKind::Device),
            o.errors_of(SignErrorKind::DeviceLost),
            o.errors_of(SignErrorKind::BadSignature),
            o.errors_of(SignErrorKind::Timeout),
            other,
            p.total_failed_attempts(),
            p.retries,
            p.retries_succeeded,
            p.verify_failures,
            p.refused,
            o.max_latency.as_millis()
        );
        // Caller and pool agree, request by request.
        assert_eq!(o.invalid, 0, "{}: invalid signature handed out", r.name);
        assert_eq!(o.sent, o.ok + o.errors_total(), "{}", r.name);
        assert_eq!(p.signatures, o.ok, "{}", r.name);
        for k in SignErrorKind::ALL {
            assert_eq!(p.errors_of(k), o.errors_of(k), "{} {k:?}", r.name);
        }
        // Errors = failed attempts that were not retried away + refusals + expiries.
        if p.deadline_expired == 0 {
            assert_eq!(
                p.total_errors(),
                p.total_failed_attempts() - p.retries + p.refused,
                "{}: {p:?}",
                r.name
            );
        }
        assert!(
            o.max_latency <= TIMEOUT + MARGIN,
            "{}: {:?}",
            r.name,
            o.max_latency
        );
        assert!(o.ok > 0);
        failed_attempts += p.failed_attempts_of(SignErrorKind::Device)
            + p.failed_attempts_of(SignErrorKind::DeviceLost);
        verify_failures += p.verify_failures;
        assert_eq!(
            p.failed_attempts_of(SignErrorKind::BadSignature),
            p.verify_failures,
            "{}",
            r.name
        );
    }
    let sent: u64 = runs.iter().map(|r| r.out.sent).sum();
    let errors: u64 = runs.iter().map(|r| r.out.errors_total()).sum();
    let refused: u64 = runs.iter().map(|r| r.ps.refused).sum();
    let expired: u64 = runs.iter().map(|r| r.ps.deadline_expired).sum();
    let retries_ok: u64 = runs.iter().map(|r| r.ps.retries_succeeded).sum();
    println!(
        "\nInjected {faults} faults + {corrupt} flipped bits = {} failed attempts + {} withheld signatures; \
         {retries_ok} requests saved by the retry; {errors} of {sent} requests failed ({:.3} %).",
        failed_attempts,
        verify_failures,
        100.0 * errors as f64 / sent.max(1) as f64
    );
    assert!(faults + corrupt > 0, "nothing injected");
    assert_eq!(faults, failed_attempts, "device faults vs failed attempts");
    assert_eq!(corrupt, verify_failures, "flipped bits vs verify failures");
    // Refusals (`DeviceLost` at once while a recovery runs) come in bursts whose size
    // depends on how fast the callers retry; they are reported, not bounded. Failures
    // that came out of attempts must be rare: both the attempt and its retry failed.
    let from_attempts = errors - refused - expired;
    println!(
        "Errors: {from_attempts} after a failed retry, {refused} refused while recovering, \
         {expired} past the deadline."
    );
    assert!(
        from_attempts * 500 < sent,
        "more than 0.2 % of requests failed after a retry: {from_attempts} of {sent}"
    );
}
