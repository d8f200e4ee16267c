//! The time-stamps of an RFC 4998 evidence record, verified as the record relies on them
//! (RFC 4998 §5.3, CONFORMANCE rule 67): each archive time-stamp's token fully (as
//! [`super::verify_token`]: imprint, signature, timeStamping purpose, chain valid at its
//! own genTime), and its chain also valid at the genTime of the next time-stamp of the
//! record — the one that renewed it — and the last one's valid now.
//!
//! ```text
//!   hanko_anchor::evidence::check (trees: data -> each imprint)   the caller
//!   steps, chain by chain, oldest first:
//!     ATS[i]: verify_token(imprint)  + chain valid at genTime(ATS[i+1])  (or now, the last)
//!     genTime(ATS[i]) <= genTime(ATS[i+1])
//!   -> one VerifiedStep per time-stamp: its TSA, signature algorithm, chain, when relied on
//! ```
//!
//! The record's trees are `hanko-anchor`'s to check (this crate does not depend on it):
//! the caller passes what its check found. No revocation data is consulted (the crate
//! docs), so "valid" means within every certificate's validity period.

use std::fmt::Write as _;
use std::time::SystemTime;

use hanko_pki::HashAlgorithm;
use hanko_pki::cert::Certificate;

use super::{Verified, verify_also_at};
use crate::Error;

/// One archive time-stamp of a checked evidence record.
#[derive(Clone, Debug)]
pub struct EvidenceStep<'a> {
    /// Its chain (0-based).
    pub chain: usize,
    /// Its place in the chain (0-based).
    pub index: usize,
    /// The chain's hash algorithm: the token's imprint algorithm.
    pub hash: HashAlgorithm,
    /// The root the record's tree leads to: the token's imprint must be it.
    pub imprint: &'a [u8],
    /// The TimeStampToken (ContentInfo) DER, as in the record.
    pub token_der: &'a [u8],
}

/// One verified archive time-stamp, and what it was relied on for.
#[derive(Clone, Debug)]
pub struct VerifiedStep {
    /// Its chain (0-based).
    pub chain: usize,
    /// Its place in the chain (0-based).
    pub index: usize,
    /// The token as verified: TSA, genTime, imprint algorithm, signature algorithm, chain.
    pub token: Verified,
    /// When its chain was also found valid: the next time-stamp's genTime, or now.
    pub relied_until: SystemTime,
    /// That time in words: `the genTime of archive time-stamp 1 of chain 0 (...)` or
    /// `now`.
    pub relied_until_text: String,
}

impl VerifiedStep {
    /// One line: which time-stamp, whose, when, with which algorithms and certificates,
    /// valid until when.
    pub fn line(&self) -> String {
        let t = &self.token;
        let mut s = format!(
            "chain {} time-stamp {}: {} at {}; imprint {}, signature {}, chain {}",
            self.chain,
            self.index,
            t.tsa_subject,
            t.gen_time_text,
            t.hash.name(),
            t.signature_algorithm,
            t.chain.join(" <- ")
        );
        let _ = write!(s, "; valid at {}", self.relied_until_text);
        s
    }
}

/// Verifies every archive time-stamp of an evidence record whose trees the caller has
/// checked, in the record's order (chain by chain, oldest first): see the module docs.
/// `now` is the time the last time-stamp is relied on. The first failure is the error,
/// naming the time-stamp ([`Error::ArchiveTimeStamp`]).
pub fn verify_evidence(
    steps: &[EvidenceStep<'_>],
    roots: &[Certificate],
    untrusted: &[Certificate],
    now: SystemTime,
) -> Result<Vec<VerifiedStep>, Error> {
    let mut out: Vec<VerifiedStep> = Vec::with_capacity(steps.len());
    // Each token verified at its own genTime first; the next one's genTime is needed to
    // say until when the one before it is relied on.
    let mut tokens = Vec::with_capacity(steps.len());
    for step in steps {
        let v = verify_also_at(
            &super::granted_response(step.token_der),
            &imprint_of(step),
            None,
            roots,
            untrusted,
            None,
        )
        .map_err(|e| in_step(step, e))?;
        if let Some(before) = tokens.last().map(|(v, _): &(Verified, _)| v.gen_time)
            && v.gen_time < before
        {
            return Err(Error::ArchiveTimeStampsOutOfOrder {
                chain: step.chain,
                index: step.index,
            });
        }
        tokens.push((v, step));
    }
    for (i, (token, step)) in tokens.iter().enumerate() {
        let (until, text) = match tokens.get(i + 1) {
            Some((next, ns)) => (
                next.gen_time,
                format!(
                    "the genTime of archive time-stamp {} of chain {} ({})",
                    ns.index, ns.chain, next.gen_time_text
                ),
            ),
            None => (now, "now".to_owned()),
        };
        verify_also_at(
            &super::granted_response(step.token_der),
            &imprint_of(step),
            None,
            roots,
            untrusted,
            Some((until, &text)),
        )
        .map_err(|e| in_step(step, e))?;
        out.push(VerifiedStep {
            chain: step.chain,
            index: step.index,
            token: token.clone(),
            relied_until: until,
            relied_until_text: text,
        });
    }
    Ok(out)
}

/// The data digest a step's token must carry: the root the record leads to, with the
/// chain's algorithm only.
fn imprint_of<'a>(
    step: &'a EvidenceStep<'_>,
) -> impl Fn(HashAlgorithm) -> Result<Vec<u8>, Error> + 'a {
    move |h| {
        if h == step.hash {
            Ok(step.imprint.to_vec())
        } else {
            Err(Error::UnsupportedImprintHash(h.name()))
        }
    }
}

fn in_step(step: &EvidenceStep<'_>, e: Error) -> Error {
    Error::ArchiveTimeStamp {
        chain: step.chain,
        index: step.index,
        source: Box::new(e),
    }
}
