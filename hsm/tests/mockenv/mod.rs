//! The reliability suite's environment: SoftHSM behind `libhanko_pkcs11_mock.so`, a
//! control file to inject faults, the mock's stats, and a concurrent load generator that
//! checks every signature it gets.
//!
//! [`MockEnv::setup`] must run in `main` before any thread starts: it sets
//! `SOFTHSM2_CONF`, `HANKO_MOCK_REAL_MODULE` and `HANKO_MOCK_CONTROL`, which SoftHSM and
//! the mock read once. That is why `faults` and `soak` are `harness = false` tests, each
//! its own process.
//!
//! The mock's `.so` is the one cargo built next to this test binary (`target/<profile>/`,
//! or `deps/`), or `HANKO_MOCK_SO`; if neither exists, `cargo build -p hanko-pkcs11-mock`
//! is run once.
#![allow(dead_code)] // not every binary uses every helper
#![allow(clippy::unwrap_used)] // test code: a failure should stop the test loudly

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hanko_hsm::{Hsm, HsmSigner, ModuleConfig, Pin};
use hanko_pkcs11_mock::{Function, Kind, Stats};
use hanko_pki::{SignErrorKind, Signer};

pub const TOKEN: &str = "hanko-faults";
pub const USER_PIN: &str = "user-pin-4711-x";
pub const SO_PIN: &str = "so-pin-0815-y";

/// SoftHSM behind the mock, one token, logged in.
pub struct MockEnv {
    pub dir: PathBuf,
    pub control: PathBuf,
    pub stats_path: PathBuf,
    pub so: PathBuf,
    pub hsm: Hsm,
}

pub fn mock_so() -> PathBuf {
    hanko_pkcs11_mock::module_for_tests().unwrap()
}

impl MockEnv {
    /// Call first thing in `main`, before any thread exists.
    pub fn setup(tag: &str) -> MockEnv {
        if std::env::var_os("RUST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .try_init();
        }
        let dir = tempfile::Builder::new()
            .prefix(&format!("hanko-hsm-{tag}-"))
            .tempdir()
            .unwrap()
            .keep();
        let conf = hanko_pkcs11_mock::write_softhsm_config(&dir).unwrap();
        let control = dir.join("faults");
        std::fs::write(&control, "").unwrap();
        hanko_hsm::use_softhsm_config(&conf);
        #[allow(unsafe_code)]
        // SAFETY: called from `main` before any other thread is started.
        unsafe {
            // The token under test: HANKO_TEST_PKCS11_MODULE, SoftHSM by default.
            std::env::set_var(
                "HANKO_MOCK_REAL_MODULE",
                hanko_pkcs11_mock::module_under_test(),
            );
            std::env::set_var("HANKO_MOCK_CONTROL", &control);
            std::env::remove_var("HANKO_MOCK_STATS");
        }
        let so = mock_so();
        let module = ModuleConfig {
            module_path: so.clone(),
            token_label: TOKEN.into(),
        };
        let created = Hsm::init_token(
            &module,
            &Pin::new(SO_PIN.into()),
            &Pin::new(USER_PIN.into()),
        )
        .unwrap();
        assert!(created);
        let hsm = Hsm::open(module, Pin::new(USER_PIN.into())).unwrap();
        let stats_path = Stats::path_for(&control);
        MockEnv {
            dir,
            control,
            stats_path,
            so,
            hsm,
        }
    }

    /// Replaces the control file (atomically).
    pub fn set_faults(&self, text: &str) {
        hanko_pkcs11_mock::write_control(&self.control, text).unwrap();
    }

    pub fn clear_faults(&self) {
        self.set_faults("");
    }

    pub fn stats(&self) -> Stats {
        Stats::read(&self.stats_path).unwrap()
    }

    /// Waits until the mock has counted at least `n` injections of `kind` into `f`
    /// (counted from `base`).
    pub async fn wait_for(&self, base: &Stats, f: Function, kind: Kind, n: u64, within: Duration) {
        let start = Instant::now();
        loop {
            let now = self.stats();
            if now.of(f, kind) >= base.of(f, kind) + n {
                return;
            }
            assert!(
                start.elapsed() < within,
                "the mock injected no {} into {f} within {within:?}",
                kind.name()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn cleanup(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Injections of `kind` into `f` between two stats snapshots.
pub fn delta(before: &Stats, after: &Stats, f: Function, kind: Kind) -> u64 {
    after.of(f, kind) - before.of(f, kind)
}

/// What a load run saw.
#[derive(Debug, Default)]
pub struct Outcome {
    pub sent: u64,
    pub ok: u64,
    /// Signatures that failed the test's own check (must stay 0 with verify-after-sign).
    pub invalid: u64,
    pub errors: BTreeMap<&'static str, u64>,
    pub first_error: BTreeMap<&'static str, String>,
    pub max_latency: Duration,
    /// (message, signature) samples for the `openssl` cross-check.
    pub samples: Vec<(Vec<u8>, Vec<u8>)>,
    /// Invalid signatures, for the negative control.
    pub invalid_samples: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Outcome {
    pub fn errors_total(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn errors_of(&self, k: SignErrorKind) -> u64 {
        self.errors.get(k.as_str()).copied().unwrap_or(0)
    }

    /// Every error is of one of `kinds`.
    pub fn assert_kinds(&self, kinds: &[SignErrorKind], what: &str) {
        for (k, n) in &self.errors {
            assert!(
                kinds.iter().any(|x| x.as_str() == *k),
                "{what}: {n} errors of kind {k}, expected only {kinds:?}; first: {:?}",
                self.first_error.get(k)
            );
        }
    }

    pub fn summary(&self) -> String {
        format!(
            "sent {} ok {} invalid {} errors {:?} max latency {} ms",
            self.sent,
            self.ok,
            self.invalid,
            self.errors,
            self.max_latency.as_millis()
        )
    }
}

/// A running load: `tasks` concurrent callers signing unique messages until stopped (or
/// until `limit` requests were sent), each signature checked with `hanko_pki::verify`.
pub struct Load {
    stop: Arc<AtomicBool>,
    handles: Vec<tokio::task::JoinHandle<()>>,
    outcome: Arc<Mutex<Outcome>>,
    pub sent: Arc<AtomicU64>,
}

impl Load {
    pub fn start(signer: &Arc<HsmSigner>, tasks: usize, tag: &str, limit: Option<u64>) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let outcome = Arc::new(Mutex::new(Outcome::default()));
        let sent = Arc::new(AtomicU64::new(0));
        let handles = (0..tasks)
            .map(|_| {
                let (signer, stop, outcome, sent) =
                    (signer.clone(), stop.clone(), outcome.clone(), sent.clone());
                let tag = tag.to_owned();
                tokio::spawn(async move {
                    while !stop.load(Ordering::Acquire) {
                        let i = sent.fetch_add(1, Ordering::AcqRel);
                        if limit.is_some_and(|l| i >= l) {
                            sent.fetch_sub(1, Ordering::AcqRel);
                            break;
                        }
                        let msg = format!("{tag} request {i}").into_bytes();
                        let t0 = Instant::now();
                        let r = signer.sign(&msg).await;
                        let took = t0.elapsed();
                        let valid = match &r {
                            Ok(sig) => hanko_pki::verify::verify(
                                signer.public_key_der(),
                                signer.algorithm(),
                                &msg,
                                sig,
                            )
                            .is_ok(),
                            Err(_) => true,
                        };
                        let failed = r.is_err();
                        {
                            let mut o = outcome.lock().unwrap();
                            o.sent += 1;
                            o.max_latency = o.max_latency.max(took);
                            match r {
                                Ok(sig) if valid => {
                                    o.ok += 1;
                                    if o.ok % 97 == 1 && o.samples.len() < 8 {
                                        o.samples.push((msg, sig));
                                    }
                                }
                                Ok(sig) => {
                                    o.ok += 1;
                                    o.invalid += 1;
                                    if o.invalid_samples.len() < 4 {
                                        o.invalid_samples.push((msg, sig));
                                    }
                                }
                                Err(e) => {
                                    *o.errors.entry(e.kind().as_str()).or_insert(0) += 1;
                                    o.first_error
                                        .entry(e.kind().as_str())
                                        .or_insert_with(|| e.to_string());
                                }
                            }
                        }
                        if failed {
                            // A refusal completes without awaiting anything; a caller
                            // that retried at once would spin and starve the runtime
                            // (its timers included). Real clients back off too.
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            handles,
            outcome,
            sent,
        }
    }

    /// Requests completed so far.
    pub fn done(&self) -> u64 {
        self.outcome.lock().unwrap().sent
    }

    /// Waits until `n` requests completed (or `within` passed).
    pub async fn wait_done(&self, n: u64, within: Duration) {
        let start = Instant::now();
        while self.done() < n && start.elapsed() < within {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub async fn finish(self) -> Outcome {
        self.stop.store(true, Ordering::Release);
        for h in self.handles {
            h.await.unwrap();
        }
        std::mem::take(&mut *self.outcome.lock().unwrap())
    }
}

/// Signs until a signature comes back (and verifies); returns how long that took.
/// Fails the test if it takes longer than `limit`.
pub async fn resumes_within(signer: &HsmSigner, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        match signer.sign(b"after the fault").await {
            Ok(sig) => {
                hanko_pki::verify::verify(
                    signer.public_key_der(),
                    signer.algorithm(),
                    b"after the fault",
                    &sig,
                )
                .unwrap();
                return start.elapsed();
            }
            Err(e) => assert!(
                start.elapsed() < limit,
                "signing did not resume within {limit:?}: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A key pair generated once per process.
pub fn key(env: &MockEnv, label: &str, kt: hanko_pki::KeyType) {
    if env.hsm.public_key(label).unwrap().is_none() {
        env.hsm.generate_key_pair(label, kt).unwrap();
    }
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
