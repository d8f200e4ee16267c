//! The token's own signing rate, with nothing of this crate's pool around it: OS threads,
//! a session each, `C_Sign` in a loop. It is the denominator of the benchmarks' ratios
//! ("the raw C_Sign rate of a bare loop"): the pool's queue, hand-offs and
//! verify-after-sign are what those ratios charge to the server, so they must not be in
//! the denominator too.

use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hanko_pki::SignatureAlgorithm;

use crate::error::Error;
use crate::pool::{block_to_sign, mechanism};
use crate::token::Hsm;

/// The message each signature covers: 220 bytes, the size of typical CMS signed
/// attributes (what the pool's callers sign).
const MESSAGE_LEN: usize = 220;

impl Hsm {
    /// Signatures per second that `threads` OS threads sustain with key `key_label`, each
    /// in its own session calling `C_Sign` on the same block in a loop for `duration`:
    /// no queue, no hand-off, no verification. For benchmarks; a signing path uses
    /// [`Hsm::signer`].
    ///
    /// Every thread opens its session, logs in and finds the key before the clock starts.
    /// Any failed call ends the measurement with that error.
    pub fn bare_sign_rate(
        &self,
        key_label: &str,
        alg: SignatureAlgorithm,
        threads: usize,
        duration: Duration,
    ) -> Result<f64, Error> {
        let threads = threads.max(1);
        let token = self.inner.label.as_str();
        let block = block_to_sign(alg, &[0x5a; MESSAGE_LEN]);
        // Every thread ready (session, login, key), then one start for all.
        let start = Barrier::new(threads + 1);
        let failed = AtomicBool::new(false);
        let (counts, elapsed) = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| -> Result<u64, Error> {
                        // A mechanism is not Sync (raw parameter pointers): one each.
                        let mech = mechanism(alg);
                        let state = self.inner.module.read();
                        let prepared = self.inner.open_key_session(&state, key_label);
                        if prepared.is_err() {
                            failed.store(true, Ordering::Relaxed);
                        }
                        start.wait();
                        let (session, key) = prepared?;
                        let until = Instant::now() + duration;
                        let mut signed = 0u64;
                        let result = loop {
                            if Instant::now() >= until || failed.load(Ordering::Relaxed) {
                                break Ok(signed);
                            }
                            match session.sign(&mech, key, &block) {
                                Ok(_) => signed += 1,
                                Err(e) => {
                                    failed.store(true, Ordering::Relaxed);
                                    break Err(Error::from_cryptoki(e, token));
                                }
                            }
                        };
                        let _ = session.close();
                        result
                    })
                })
                .collect();
            start.wait();
            let began = Instant::now();
            let counts: Vec<_> = workers
                .into_iter()
                .map(|w| {
                    w.join().unwrap_or_else(|_| {
                        Err(Error::Config("a bare signing thread panicked".into()))
                    })
                })
                .collect();
            (counts, began.elapsed())
        });
        let mut total = 0u64;
        for c in counts {
            total += c?;
        }
        Ok(total as f64 / elapsed.as_secs_f64().max(1e-9))
    }
}
