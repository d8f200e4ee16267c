//! The signer-level reliability suite: SoftHSM behind the fault-injecting
//! `libhanko_pkcs11_mock.so`, every fault under concurrent load.
//!
//! For each scenario the test asserts: no returned signature is invalid (every one is
//! checked with `hanko_pki::verify`, a sample with the `openssl` CLI), no request waits
//! longer than the pool's `call_timeout` plus [`MARGIN`], every error has the
//! [`SignErrorKind`] the fault calls for, the pool's counters match what the mock says it
//! injected, and signing resumes within 5 s of the fault being cleared, in the same
//! process, with the pool at full capacity.
//!
//! Readiness follows: while every request fails (`Always`, `hang all`) the signer is not
//! ready, also when the token itself is present (the pool's breaker), and it is ready
//! again once a request succeeds.
//!
//! Scenarios (run in sequence, one process; pass words to run only scenarios whose name
//! contains one: `cargo test -p hanko-hsm --test faults -- hang unplug`):
//! * `fault <fn> <rv> <mode>`: `C_Sign` and `C_SignInit` returning each of
//!   CKR_DEVICE_ERROR, CKR_GENERAL_ERROR, CKR_FUNCTION_FAILED (kind `Device`) and
//!   CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT, CKR_SESSION_HANDLE_INVALID (kind
//!   `DeviceLost`), on the 3rd call (`nth`: the one retry absorbs it, no error), every 5th
//!   call, with probability 0.1, and always (every request fails, with the right kind);
//!   P-256, plus RSA-3072 with probability 0.1.
//! * `delay below/above deadline`, `hang all`, `hang one`, `hang does not block
//!   recovery`, `corrupt ...` (also over digest batches), `unplug and replug`: see each
//!   function.
#![allow(clippy::unwrap_used)] // test code: a failure should stop the test loudly

mod common;
mod mockenv;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hanko_hsm::{HsmSigner, PoolConfig};
use hanko_pkcs11_mock::{Function, Kind};
use hanko_pki::{
    DigestSignAlgorithm, HashAlgorithm, KeyType, SignErrorKind, SignatureAlgorithm, Signer,
};

use mockenv::{Load, MockEnv, delta, resumes_within};

/// Allowed lateness past `call_timeout` (watchdog tick ≤ 50 ms, scheduling on a shared
/// 2-core machine).
const MARGIN: Duration = Duration::from_millis(750);
/// "Signing resumes within 5 s of the fault being cleared."
const RESUME: Duration = Duration::from_secs(5);

const P256: (&str, SignatureAlgorithm) = ("p256", SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256));
const RSA: (&str, SignatureAlgorithm) = (
    "rsa3072",
    SignatureAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha256),
);

const RVS: [(&str, SignErrorKind); 6] = [
    ("CKR_DEVICE_ERROR", SignErrorKind::Device),
    ("CKR_GENERAL_ERROR", SignErrorKind::Device),
    ("CKR_FUNCTION_FAILED", SignErrorKind::Device),
    ("CKR_DEVICE_REMOVED", SignErrorKind::DeviceLost),
    ("CKR_TOKEN_NOT_PRESENT", SignErrorKind::DeviceLost),
    ("CKR_SESSION_HANDLE_INVALID", SignErrorKind::DeviceLost),
];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Nth,
    Every,
    Prob,
    Always,
}

impl Mode {
    fn text(self) -> &'static str {
        match self {
            Mode::Nth => "mode=nth n=3",
            Mode::Every => "mode=every n=5",
            Mode::Prob => "mode=prob p=0.1",
            Mode::Always => "mode=always",
        }
    }
}

fn pool(call_timeout: Duration, verify_after_sign: bool) -> PoolConfig {
    PoolConfig {
        workers: 2,
        queue_depth: 64,
        call_timeout,
        verify_after_sign,
        bulk_share: hanko_hsm::DEFAULT_BULK_SHARE,
    }
}

async fn signer(
    env: &MockEnv,
    key: (&str, SignatureAlgorithm),
    call_timeout: Duration,
    verify: bool,
) -> Arc<HsmSigner> {
    let s = Arc::new(
        env.hsm
            .signer(key.0, key.1, pool(call_timeout, verify))
            .unwrap(),
    );
    // Both workers open their sessions before any fault.
    let warm: Vec<_> = (0..4).map(|_| s.sign(b"warm up")).collect();
    for w in warm {
        w.await.unwrap();
    }
    s
}

/// Cross-checks the sampled signatures with `openssl pkeyutl -verify`.
fn openssl_check(signer: &HsmSigner, samples: &[(Vec<u8>, Vec<u8>)]) {
    for (msg, sig) in samples {
        assert!(
            common::openssl_verify(signer.public_key_der(), signer.algorithm(), msg, sig),
            "openssl rejects a signature the pool handed out"
        );
    }
}

/// After a fault is cleared: signing resumes within [`RESUME`], then a clean batch at
/// full concurrency has no error at all.
async fn recovered(signer: &Arc<HsmSigner>, what: &str) -> Duration {
    let took = resumes_within(signer, RESUME).await;
    let clean = Load::start(signer, 4, &format!("{what} clean"), Some(40));
    clean.wait_done(40, Duration::from_secs(30)).await;
    let clean = clean.finish().await;
    assert_eq!(clean.ok, 40, "{what}: after recovery: {}", clean.summary());
    assert_eq!(clean.invalid, 0);
    took
}

/// Two workers, each C_Sign delayed by 150 ms (two C_Sign calls per signature): 8
/// requests from 2 clients take ~1.2 s with both workers and ~2.4 s with one. Two
/// clients, one per worker, so that no request waits behind another: with 4, a request
/// queued behind a 300 ms signature came within reach of a 1 s deadline on a loaded CI
/// machine (1035 ms, a `Timeout` that said nothing about the pool's capacity).
async fn assert_full_capacity(env: &MockEnv, signer: &Arc<HsmSigner>, keep: &str) {
    env.set_faults(&format!("{keep}\ndelay fn=C_Sign ms=150\n"));
    let start = Instant::now();
    let l = Load::start(signer, 2, "capacity", Some(8));
    l.wait_done(8, Duration::from_secs(10)).await;
    let out = l.finish().await;
    let took = start.elapsed();
    env.set_faults(keep);
    assert_eq!(out.ok, 8, "{}", out.summary());
    assert!(
        took < Duration::from_millis(2000),
        "8 delayed signatures took {took:?}: the pool lost a worker"
    );
}

async fn fault_matrix(
    env: &MockEnv,
    key: (&str, SignatureAlgorithm),
    f: Function,
    rv: &str,
    expected: SignErrorKind,
    mode: Mode,
) {
    let timeout = Duration::from_secs(2);
    let name = format!("fault {} {} {rv} {mode:?}", key.0, f.name());
    let signer = signer(env, key, timeout, true).await;
    let before = env.stats();
    env.set_faults(&format!(
        "seed 7\nfault fn={} rv={rv} {}\n",
        f.name(),
        mode.text()
    ));
    let n = 120;
    let load = Load::start(&signer, 6, &name, Some(n));
    load.wait_done(n, Duration::from_secs(60)).await;
    let out = load.finish().await;
    let after = env.stats();
    let ps = signer.stats();
    let ready_during = signer.is_ready();
    env.clear_faults();
    let took = recovered(&signer, &name).await;
    // A success closes the readiness breaker (and the token is back).
    assert!(signer.is_ready(), "{name}: not ready after recovery");

    let injected = delta(&before, &after, f, Kind::Fault);
    println!(
        "{name}: injected {injected}, {}; retries {} (ok {}), resumed in {took:?}",
        out.summary(),
        ps.retries,
        ps.retries_succeeded
    );
    assert_eq!(out.sent, n);
    assert_eq!(out.invalid, 0, "{name}: invalid signature handed out");
    out.assert_kinds(&[expected], &name);
    assert!(
        out.max_latency <= timeout + MARGIN,
        "{name}: a request took {:?}",
        out.max_latency
    );
    assert!(injected > 0, "{name}: nothing injected");
    // Every injected fault failed exactly one attempt, of the expected kind.
    assert_eq!(ps.failed_attempts_of(expected), injected, "{name}: {ps:?}");
    assert_eq!(ps.total_failed_attempts(), injected, "{name}: {ps:?}");
    match mode {
        Mode::Nth => {
            assert_eq!(injected, 1);
            assert_eq!(out.errors_total(), 0, "{name}: the retry should absorb it");
            assert_eq!(ps.retries_succeeded, 1);
        }
        Mode::Always => {
            assert_eq!(out.ok, 0, "{name}");
            assert_eq!(out.errors_of(expected), n);
            // No key is usable: not ready. For `Device` only the breaker says so (the
            // token is present); for `DeviceLost` the token's readiness drops too, and
            // its refusals are not counted by the breaker, so it may not have opened.
            assert!(!ready_during, "{name}: ready while every request fails");
            if expected == SignErrorKind::Device {
                assert!(env.hsm.is_ready(), "{name}");
                assert!(ps.breaker_openings >= 1, "{name}: {ps:?}");
            }
        }
        Mode::Every | Mode::Prob => {
            assert!(ps.retries_succeeded > 0, "{name}: {ps:?}");
            assert!(out.ok > 0);
        }
    }
    openssl_check(&signer, &out.samples);
}

/// A delay below the deadline costs latency, not errors.
async fn delay_below_deadline(env: &MockEnv) {
    let timeout = Duration::from_secs(2);
    let signer = signer(env, P256, timeout, true).await;
    let before = env.stats();
    env.set_faults("delay fn=C_Sign ms=100\n");
    let l = Load::start(&signer, 4, "delay below", Some(24));
    // 4 callers, 2 workers held 100 ms each: the others' requests wait in the queue, and
    // `backlog` (the issuance log's hint) sees them.
    let mut most_queued = 0;
    let until = tokio::time::Instant::now() + Duration::from_secs(30);
    while l.done() < 24 && tokio::time::Instant::now() < until {
        most_queued = most_queued.max(signer.backlog());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    l.wait_done(24, Duration::from_secs(30)).await;
    let out = l.finish().await;
    assert!(
        (1..=4).contains(&most_queued),
        "backlog seen: {most_queued}"
    );
    assert_eq!(
        signer.backlog(),
        0,
        "nothing is queued once the load is done"
    );
    let after = env.stats();
    env.clear_faults();
    println!("delay below deadline: {}", out.summary());
    assert_eq!(out.ok, 24, "{}", out.summary());
    assert_eq!(out.invalid, 0);
    assert!(out.max_latency <= timeout + MARGIN);
    assert!(out.max_latency >= Duration::from_millis(200));
    assert!(delta(&before, &after, Function::C_Sign, Kind::Delay) >= 48);
    recovered(&signer, "delay below").await;
}

/// A delay past the deadline: every request is answered `Timeout` on time, stuck workers
/// are abandoned and replaced; when the delay goes, full capacity returns.
async fn delay_above_deadline(env: &MockEnv) {
    let timeout = Duration::from_secs(1);
    let signer = signer(env, P256, timeout, true).await;
    env.set_faults("delay fn=C_SignInit ms=1500\n");
    let l = Load::start(&signer, 4, "delay above", None);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let out = l.finish().await;
    let ps = signer.stats();
    env.clear_faults();
    println!("delay above deadline: {}; {ps:?}", out.summary());
    assert_eq!(out.ok, 0, "{}", out.summary());
    out.assert_kinds(&[SignErrorKind::Timeout], "delay above");
    assert!(out.errors_of(SignErrorKind::Timeout) >= 4);
    assert!(out.max_latency <= timeout + MARGIN, "{:?}", out.max_latency);
    assert!(ps.abandoned_workers >= 2, "{ps:?}");
    let took = recovered(&signer, "delay above").await;
    println!("delay above deadline: resumed in {took:?}");
    assert_full_capacity(env, &signer, "").await;
}

/// Every C_Sign hangs until released: every request gets `Timeout` within the deadline,
/// workers are abandoned (at most `workers` replacements), queued requests expire on
/// time. After the release signing resumes at full capacity.
async fn hang_all(env: &MockEnv) {
    let timeout = Duration::from_secs(1);
    let signer = signer(env, P256, timeout, true).await;
    let before = env.stats();
    env.set_faults("hang fn=C_Sign max_ms=30000\n");
    let l = Load::start(&signer, 6, "hang all", None);
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let out = l.finish().await;
    let ps = signer.stats();
    let hung = delta(&before, &env.stats(), Function::C_Sign, Kind::Hang);
    // The token is present and logged in; only the breaker sees that no key can sign.
    let (ready_during, token_ready_during) = (signer.is_ready(), env.hsm.is_ready());
    env.clear_faults();
    println!("hang all: {} hung calls; {}; {ps:?}", hung, out.summary());
    assert!(!ready_during, "ready during the hang: {ps:?}");
    assert!(token_ready_during);
    assert!(ps.breaker_openings >= 1, "{ps:?}");
    assert_eq!(out.ok, 0);
    out.assert_kinds(&[SignErrorKind::Timeout], "hang all");
    assert!(out.errors_of(SignErrorKind::Timeout) >= 6);
    assert!(out.max_latency <= timeout + MARGIN, "{:?}", out.max_latency);
    // 2 workers hang, 2 replacements hang, then no more threads.
    assert_eq!(ps.abandoned_workers, 4, "{ps:?}");
    assert_eq!(hung, 4);
    assert!(ps.deadline_expired >= out.errors_of(SignErrorKind::Timeout));
    let took = recovered(&signer, "hang all").await;
    println!("hang all: resumed in {took:?} after the release");
    assert!(
        signer.is_ready(),
        "the success after the release closes the breaker"
    );
    assert_full_capacity(env, &signer, "").await;
}

/// One call hangs: only its request times out; a replacement keeps the pool at full
/// capacity while the call is still stuck.
async fn hang_one(env: &MockEnv) {
    let timeout = Duration::from_secs(1);
    let signer = signer(env, P256, timeout, true).await;
    let hang = "hang fn=C_Sign max_ms=30000 mode=nth n=1";
    env.set_faults(hang);
    let l = Load::start(&signer, 4, "hang one", None);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let out = l.finish().await;
    let ps = signer.stats();
    println!("hang one: {}; {ps:?}", out.summary());
    assert_eq!(
        out.errors_of(SignErrorKind::Timeout),
        1,
        "{}",
        out.summary()
    );
    assert_eq!(out.errors_total(), 1);
    assert!(out.ok > 50);
    assert_eq!(out.invalid, 0);
    assert!(out.max_latency <= timeout + MARGIN);
    assert_eq!(ps.abandoned_workers, 1);
    // Still hung (the line is unchanged), yet two workers sign.
    assert_full_capacity(env, &signer, hang).await;
    env.clear_faults();
    recovered(&signer, "hang one").await;
    assert_full_capacity(env, &signer, "").await;
}

/// A call that never returns must not block recovery: with one C_Sign hung (holding the
/// module's read lock), the token is unplugged and replugged, and C_Login fails for a
/// while after the replug (which makes the supervisor want `C_Finalize`, which it cannot
/// have while the call is in flight). Signing must resume within 5 s of the last fault
/// going, while the hung call is still hung.
async fn hang_does_not_block_recovery(env: &MockEnv) {
    let timeout = Duration::from_secs(1);
    let signer = signer(env, P256, timeout, true).await;
    let hang = "hang fn=C_Sign max_ms=60000 mode=nth n=1";
    env.set_faults(hang);
    let e = signer.sign(b"will hang").await.unwrap_err();
    assert_eq!(e.kind(), SignErrorKind::Timeout, "{e}");
    let before = env.stats();
    env.set_faults(&format!("{hang}\nunplug\n"));
    // Requests until one meets the unplug and the token is marked not ready.
    let start = Instant::now();
    let mut seen = Vec::new();
    while signer.is_ready() {
        if let Err(e) = signer.sign(b"during unplug").await {
            seen.push(e.kind());
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "unplug not noticed"
        );
    }
    assert!(
        seen.iter().all(|k| *k == SignErrorKind::DeviceLost),
        "{seen:?}"
    );
    let login_fault = "fault fn=C_Login rv=CKR_GENERAL_ERROR";
    env.set_faults(&format!("{hang}\nunplug\n{login_fault}\n"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    env.set_faults(&format!("{hang}\n{login_fault}\n")); // replugged; login still fails
    env.wait_for(
        &before,
        Function::C_Login,
        Kind::Fault,
        2,
        Duration::from_secs(10),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await; // a re-init attempt or two
    assert!(!signer.is_ready());
    let e = signer.sign(b"still recovering").await.unwrap_err();
    assert_eq!(e.kind(), SignErrorKind::DeviceLost, "{e}");
    env.set_faults(hang); // login works again; the hung call stays hung
    let took = recovered(&signer, "hang + unplug").await;
    let after = env.stats();
    println!(
        "hang does not block recovery: resumed {took:?} after the last fault, with a C_Sign still hung; \
         C_Login faults during recovery: {}",
        delta(&before, &after, Function::C_Login, Kind::Fault)
    );
    assert_eq!(
        after.of(Function::C_Sign, Kind::Hang),
        before.of(Function::C_Sign, Kind::Hang)
    );
    assert_eq!(signer.stats().abandoned_workers, 1);
    env.clear_faults(); // the hung call returns, into a stale session
    tokio::time::sleep(Duration::from_millis(300)).await;
    recovered(&signer, "hang released").await;
    assert_full_capacity(env, &signer, "").await;
}

/// Signatures corrupted by one flipped bit never leave the pool: verify-after-sign
/// catches each (counted), the retry signs again.
async fn corrupt(env: &MockEnv, key: (&str, SignatureAlgorithm), mode: Mode) {
    let timeout = Duration::from_secs(2);
    let name = format!("corrupt {} {mode:?}", key.0);
    let signer = signer(env, key, timeout, true).await;
    let before = env.stats();
    env.set_faults(&format!("seed 11\ncorrupt fn=C_Sign {}\n", mode.text()));
    let n = 80;
    let l = Load::start(&signer, 4, &name, Some(n));
    l.wait_done(n, Duration::from_secs(60)).await;
    let out = l.finish().await;
    let after = env.stats();
    let ps = signer.stats();
    let ready_during = signer.is_ready();
    env.clear_faults();
    let corrupted = delta(&before, &after, Function::C_Sign, Kind::Corrupt);
    println!(
        "{name}: corrupted {corrupted}; {}; verify failures {}, retries ok {}",
        out.summary(),
        ps.verify_failures,
        ps.retries_succeeded
    );
    assert!(corrupted > 0);
    assert_eq!(
        out.invalid, 0,
        "{name}: a corrupted signature was handed out"
    );
    out.assert_kinds(&[SignErrorKind::BadSignature], &name);
    assert_eq!(ps.verify_failures, corrupted, "{ps:?}");
    assert_eq!(
        ps.failed_attempts_of(SignErrorKind::BadSignature),
        corrupted
    );
    assert!(out.max_latency <= timeout + MARGIN);
    match mode {
        Mode::Always => {
            assert_eq!(out.ok, 0);
            assert_eq!(out.errors_of(SignErrorKind::BadSignature), n);
            // A token that only signs wrongly is not usable: the breaker opened.
            assert!(!ready_during && ps.breaker_openings >= 1, "{ps:?}");
        }
        _ => assert!(ps.retries_succeeded > 0),
    }
    openssl_check(&signer, &out.samples);
    recovered(&signer, &name).await;
    assert!(signer.is_ready(), "{name}: not ready after recovery");
}

/// Verify-after-sign covers digests the caller computed too: batches signed while every
/// 5th C_Sign returns a corrupted signature (RSA-3072, PSS over SHA-384 digests, on a pool
/// configured for PKCS#1 v1.5) hand out only signatures that verify; each corruption is
/// caught and signed again.
async fn corrupt_digest_batches(env: &MockEnv) {
    let signer = signer(env, RSA, Duration::from_secs(10), true).await;
    let alg = DigestSignAlgorithm::RsaPss(HashAlgorithm::Sha384);
    let before = env.stats();
    env.set_faults("seed 11\ncorrupt fn=C_Sign mode=every n=5\n");
    let mut signed = Vec::new();
    for round in 0..4u8 {
        let digests: Vec<Vec<u8>> = (0..16u8).map(|i| alg.hash().digest(&[round, i])).collect();
        let sigs = signer.sign_digests(alg, &digests).await.unwrap();
        signed.extend(digests.into_iter().zip(sigs));
    }
    let after = env.stats();
    env.clear_faults();
    let corrupted = delta(&before, &after, Function::C_Sign, Kind::Corrupt);
    let ps = signer.stats();
    println!(
        "corrupt digest batches: corrupted {corrupted}; verify failures {}, retries ok {}",
        ps.verify_failures, ps.retries_succeeded
    );
    assert!(corrupted > 0);
    assert_eq!(ps.verify_failures, corrupted, "{ps:?}");
    assert_eq!(ps.retries_succeeded, corrupted, "{ps:?}");
    let spki = signer.public_key_der();
    for (d, s) in &signed {
        assert_eq!(hanko_pki::verify::verify_digest(spki, alg, d, s), Ok(()));
    }
    for (d, s) in signed.iter().step_by(9) {
        assert!(common::openssl_verify_digest(spki, alg, d, s));
    }
}

/// Negative control: with verify-after-sign off, the corrupted signature does get out,
/// and both verifiers reject it. (This is what the check above protects against.)
async fn corrupt_unchecked(env: &MockEnv) {
    let signer = signer(env, P256, Duration::from_secs(2), false).await;
    env.set_faults("corrupt fn=C_Sign mode=nth n=1\n");
    let l = Load::start(&signer, 2, "corrupt unchecked", Some(20));
    l.wait_done(20, Duration::from_secs(30)).await;
    let out = l.finish().await;
    env.clear_faults();
    println!("corrupt, verify-after-sign off: {}", out.summary());
    assert_eq!(out.invalid, 1);
    assert_eq!(out.errors_total(), 0);
    let (msg, sig) = &out.invalid_samples[0];
    assert!(!common::openssl_verify(
        signer.public_key_der(),
        signer.algorithm(),
        msg,
        sig
    ));
}

/// The token is unplugged under load and replugged: errors are `DeviceLost`, readiness
/// drops, and signing resumes within 5 s of the replug by re-opening sessions.
async fn unplug_and_replug(env: &MockEnv) {
    let timeout = Duration::from_secs(2);
    let signer = signer(env, P256, timeout, true).await;
    let before = env.stats();
    let l = Load::start(&signer, 6, "unplug", None);
    tokio::time::sleep(Duration::from_millis(300)).await;
    env.set_faults("unplug\n");
    let start = Instant::now();
    while signer.is_ready() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "unplug not noticed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(!signer.is_ready());
    assert!(!env.hsm.is_ready());
    env.clear_faults(); // replug
    let took = resumes_within(&signer, RESUME).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let out = l.finish().await;
    let after = env.stats();
    println!(
        "unplug and replug: resumed {took:?} after the replug; refused while unplugged: {}, stale handles after: {}; {}",
        after.total(Kind::Unplug) - before.total(Kind::Unplug),
        after.total(Kind::Stale) - before.total(Kind::Stale),
        out.summary()
    );
    assert!(after.total(Kind::Unplug) > before.total(Kind::Unplug));
    assert_eq!(out.invalid, 0);
    out.assert_kinds(&[SignErrorKind::DeviceLost], "unplug");
    assert!(out.errors_of(SignErrorKind::DeviceLost) > 0);
    assert!(out.max_latency <= timeout + MARGIN, "{:?}", out.max_latency);
    assert!(signer.is_ready() && env.hsm.is_ready());
    recovered(&signer, "unplug").await;
    assert_full_capacity(env, &signer, "").await;
    // Administrative calls work again too.
    assert!(env.hsm.public_key(P256.0).unwrap().is_some());
}

type Scenario = (
    String,
    Box<dyn Fn(&'static MockEnv) -> hanko_pki::BoxFuture<'static, ()>>,
);

fn scenarios() -> Vec<Scenario> {
    let mut v: Vec<Scenario> = Vec::new();
    for f in [Function::C_Sign, Function::C_SignInit] {
        for (rv, kind) in RVS {
            for mode in [Mode::Nth, Mode::Every, Mode::Prob, Mode::Always] {
                v.push((
                    format!("fault p256 {} {rv} {mode:?}", f.name()),
                    Box::new(move |env| Box::pin(fault_matrix(env, P256, f, rv, kind, mode))),
                ));
            }
        }
    }
    for (rv, kind) in RVS {
        v.push((
            format!("fault rsa3072 C_Sign {rv} Prob"),
            Box::new(move |env| {
                Box::pin(fault_matrix(
                    env,
                    RSA,
                    Function::C_Sign,
                    rv,
                    kind,
                    Mode::Prob,
                ))
            }),
        ));
    }
    v.push((
        "delay below deadline".into(),
        Box::new(|e| Box::pin(delay_below_deadline(e))),
    ));
    v.push((
        "delay above deadline".into(),
        Box::new(|e| Box::pin(delay_above_deadline(e))),
    ));
    v.push(("hang all".into(), Box::new(|e| Box::pin(hang_all(e)))));
    v.push(("hang one".into(), Box::new(|e| Box::pin(hang_one(e)))));
    v.push((
        "hang does not block recovery".into(),
        Box::new(|e| Box::pin(hang_does_not_block_recovery(e))),
    ));
    v.push((
        "corrupt rsa3072 Every".into(),
        Box::new(|e| Box::pin(corrupt(e, RSA, Mode::Every))),
    ));
    v.push((
        "corrupt p256 Prob".into(),
        Box::new(|e| Box::pin(corrupt(e, P256, Mode::Prob))),
    ));
    v.push((
        "corrupt p256 Always".into(),
        Box::new(|e| Box::pin(corrupt(e, P256, Mode::Always))),
    ));
    v.push((
        "corrupt digest batches".into(),
        Box::new(|e| Box::pin(corrupt_digest_batches(e))),
    ));
    v.push((
        "corrupt unchecked".into(),
        Box::new(|e| Box::pin(corrupt_unchecked(e))),
    ));
    v.push((
        "unplug and replug".into(),
        Box::new(|e| Box::pin(unplug_and_replug(e))),
    ));
    v
}

fn main() {
    let env: &'static MockEnv = Box::leak(Box::new(MockEnv::setup("faults")));
    mockenv::key(env, P256.0, KeyType::EcP256);
    mockenv::key(env, RSA.0, KeyType::Rsa { bits: 3072 });
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let mut failed = Vec::new();
    let mut ran = 0;
    let started = Instant::now();
    for (name, run) in scenarios() {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        ran += 1;
        let t0 = Instant::now();
        let r = catch_unwind(AssertUnwindSafe(|| rt.block_on(run(env))));
        match r {
            Ok(()) => println!("ok   {name} ({} ms)", t0.elapsed().as_millis()),
            Err(_) => {
                println!("FAIL {name}");
                failed.push(name);
                env.clear_faults();
                std::thread::sleep(Duration::from_secs(2));
            }
        }
    }
    println!(
        "\n{ran} scenarios, {} failed, {:.1} s",
        failed.len(),
        started.elapsed().as_secs_f64()
    );
    env.cleanup();
    if !failed.is_empty() {
        println!("failed: {failed:#?}");
        std::process::exit(1);
    }
}
