//! Signing digests the caller computed (the CSC API's signHash).
//!
//! # What is checked
//! `sign_digest` takes the scheme and hash per request ([`DigestSignAlgorithm`]): any
//! scheme the key's *type* allows, not only the pool's configured algorithm, so an RSA
//! pool configured for PKCS#1 v1.5 also makes PSS signatures for a CSC client. Which of
//! those the token offers a mechanism for is asked once, when the pool starts. The
//! request is checked before it is queued (scheme fits the key, digest as long as the
//! hash, mechanism offered: `BadInput` otherwise, counted as a refusal), then built into
//! the same block `sign` would have built from the message's digest: the DigestInfo for
//! `CKM_RSA_PKCS`, the bare digest for `CKM_RSA_PKCS_PSS` (hash and MGF1 named in its
//! parameters, salt = hash length) and `CKM_ECDSA`. The worker signs it like any other
//! job (same DER conversion of ECDSA, same retry) and verify-after-sign checks it
//! against the digest (`hanko_pki::verify::verify_digest`).
//!
//! # Batches of digests
//! `sign_digests` checks the whole batch first (a batch larger than `queue_depth` could
//! never be queued: `BadInput`), then queues one job per digest, all or none (`Busy` if
//! the queue lacks room for all of them), and joins the answers in order; the first
//! failure fails the batch. So one request of 64 digests spreads over every worker, each
//! signature has its own retry and deadline, and verify-after-sign checks each.
//!
//! One job per digest was measured against the alternatives, each on the 2-core shared
//! machine of benches/RESULTS.md (2026-12-02, load average 9-12, `hanko-bench hsm
//! --digest-batches 64 --workers 2 --seconds 2 --no-verify`, 4-5 alternating rounds,
//! median of digest signs/s ÷ raw signs/s of the same pool): one job per digest
//! RSA-3072 0.91, P-256 0.93; at most `workers` jobs of consecutive digests RSA-3072 0.57,
//! P-256 1.07; the whole batch in one job (one queue slot) RSA-3072 0.45, P-256 1.29.
//! Long jobs amortise the hand-off, which matters for P-256 (~50 µs a signature), but
//! for RSA-3072 they lost about half the rate in every round on that loaded machine, for
//! a reason not established there (the call latencies agree with the lower rate, so it
//! is not the counting). A real HSM's 1-10 ms per call makes every signature cost like
//! RSA-3072 here, and spreading a batch over many sessions is what its latency asks for;
//! the RSA-3072 figure is also the one the CSC API's target is set on.

use std::sync::atomic::Ordering;

use hanko_pki::signer::check_digest_request;
use hanko_pki::{DigestSignAlgorithm, SignError, SignErrorKind};

use super::{Check, HsmSigner, Item, mechanism, sign_mechanism};
use crate::error::Error;

impl HsmSigner {
    pub(super) async fn sign_digest_inner(
        &self,
        alg: DigestSignAlgorithm,
        digest: &[u8],
    ) -> Result<Vec<u8>, SignError> {
        let item = self.digest_item(alg, digest)?;
        self.submit_one(item).await
    }

    /// A batch: checked whole first, then one job per digest, all queued at once or none
    /// (see the module docs, "Batches of digests"); the answers joined in order.
    pub(super) async fn sign_digests_inner(
        &self,
        alg: DigestSignAlgorithm,
        digests: &[Vec<u8>],
    ) -> Result<Vec<Vec<u8>>, SignError> {
        let sh = &self.shared;
        if digests.len() > sh.cfg.queue_depth {
            let se = SignError::new(
                SignErrorKind::BadInput,
                format!(
                    "a batch of {} digests is larger than key \"{}\"'s signing queue ({})",
                    digests.len(),
                    sh.key.label,
                    sh.cfg.queue_depth
                ),
            );
            sh.counters.refused.fetch_add(1, Ordering::Relaxed);
            sh.count::<()>(&Err(se.clone()));
            return Err(se);
        }
        let mut items = Vec::with_capacity(digests.len());
        for d in digests {
            items.push(self.digest_item(alg, d)?);
        }
        let answers = self.submit(items)?;
        let mut out = Vec::with_capacity(digests.len());
        for answer in answers {
            out.push(self.await_answer(answer).await?);
        }
        Ok(out)
    }

    /// The work item of one digest, after the checks every `sign_digest` makes: the
    /// scheme fits the key type, the digest the hash, and the token offers the mechanism
    /// (all `BadInput`, refused before the queue, counted as refusals).
    fn digest_item(&self, alg: DigestSignAlgorithm, digest: &[u8]) -> Result<Item, SignError> {
        let sh = &self.shared;
        let checked = check_digest_request(sh.key.key_type, alg, digest).and_then(|()| {
            if sh.key.digest_algs.contains(&alg) {
                return Ok(());
            }
            let (_, mechanism) = sign_mechanism(alg.signature_algorithm());
            Err(sh.error(&Error::MechanismNotOffered {
                token: sh.hsm.label.clone(),
                mechanism,
            }))
        });
        if let Err(se) = checked {
            sh.counters.refused.fetch_add(1, Ordering::Relaxed);
            sh.count::<()>(&Err(se.clone()));
            return Err(se);
        }
        Ok(Item {
            alg: alg.signature_algorithm(),
            data: mechanism::digest_block(alg, digest),
            check: Check::Digest(alg, digest.to_vec()),
        })
    }
}
