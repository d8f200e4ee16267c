//! The Signature Activation Data store: what `credentials/authorize` hands out and
//! `signatures/signHash` / `signatures/signDoc` take back, once.
//!
//! A SAD is 256 random bits, base64url. Only its SHA-256 is kept ([`Sads`]), with its
//! [`Grant`]: the client, the credential, `numSignatures` and, when the client named
//! them (SCAL 2), the hashes. A SAD expires after `http.csc_sad_lifetime_secs` and is
//! used once: [`Sads::take`] removes it before anything is signed, whether the signing
//! then succeeds or not. A SAD of another client or credential is refused without being
//! spent, so that a leaked SAD cannot be burnt by someone else. The SADs live in memory:
//! a restart voids them, and a cluster needs its clients to stick to one node between
//! `authorize` and the signing call.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hanko_pki::HashAlgorithm;
use sha2::{Digest as _, Sha256};

use crate::http::Refusal;
use crate::http::json_error::ApiError;

/// Most SADs outstanding at once; beyond it `authorize` answers 503 until some expire
/// or are used (bounds the memory a client can make the server hold).
const MAX_OUTSTANDING_SADS: usize = 100_000;

/// The hashes a SAD is bound to (SCAL 2).
#[derive(Debug)]
pub(super) struct BoundHashes {
    /// Their algorithm: named in v2 (`hashAlgorithmOID`); v1's `credentials/authorize`
    /// has no such parameter, so there it is `None` and the hashes alone must match.
    pub alg: Option<HashAlgorithm>,
    /// The hashes.
    pub hashes: Vec<Vec<u8>>,
}

/// One SAD's bindings.
#[derive(Debug)]
pub(super) struct Grant {
    pub client: String,
    pub credential: String,
    pub num_signatures: usize,
    /// SCAL 2: the hashes the SAD is for.
    pub hashes: Option<BoundHashes>,
    pub expires: Instant,
}

impl Grant {
    /// Whether this grant covers signatures over `hashes`, each made with `alg`: no more
    /// of them than authorised and, for a SAD bound to hashes, only those.
    pub fn covers(&self, alg: HashAlgorithm, hashes: &[Vec<u8>]) -> Result<(), ApiError> {
        if hashes.len() > self.num_signatures {
            return Err(ApiError::InvalidSad("more hashes than it authorises"));
        }
        if let Some(bound) = &self.hashes
            && (bound.alg.is_some_and(|a| a != alg)
                || !hashes.iter().all(|d| bound.hashes.contains(d)))
        {
            return Err(ApiError::InvalidSad("not issued for these hashes"));
        }
        Ok(())
    }
}

/// The outstanding SADs, by the SHA-256 of the SAD.
#[derive(Debug, Default)]
pub(super) struct Sads(Mutex<HashMap<[u8; 32], Grant>>);

impl Sads {
    fn digest(sad: &str) -> [u8; 32] {
        Sha256::digest(sad.as_bytes()).into()
    }

    /// Stores `grant` under a fresh SAD and returns the SAD.
    pub fn issue(&self, grant: Grant) -> Result<String, ApiError> {
        use rand::Rng as _;
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        let sad = URL_SAFE_NO_PAD.encode(raw);
        let now = Instant::now();
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_OUTSTANDING_SADS {
            map.retain(|_, g| g.expires > now);
            if map.len() >= MAX_OUTSTANDING_SADS {
                return Err(ApiError::Refused(Refusal::Overloaded));
            }
        }
        map.insert(Self::digest(&sad), grant);
        Ok(sad)
    }

    /// Takes the SAD for `client` on `credential`: refused (and kept) if it is another
    /// client's or credential's, refused (and dropped) if expired.
    pub fn take(&self, sad: &str, client: &str, credential: &str) -> Result<Grant, ApiError> {
        let key = Self::digest(sad);
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let grant = map
            .get(&key)
            .ok_or(ApiError::InvalidSad("unknown or already used"))?;
        if grant.client != client || grant.credential != credential {
            return Err(ApiError::InvalidSad(
                "issued for another client or credential",
            ));
        }
        let expired = grant.expires <= Instant::now();
        let grant = map
            .remove(&key)
            .ok_or(ApiError::InvalidSad("unknown or already used"))?;
        if expired {
            return Err(ApiError::InvalidSad("expired"));
        }
        Ok(grant)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use std::time::Duration;

    use super::*;

    fn grant(lifetime: Duration) -> Grant {
        Grant {
            client: "a".into(),
            credential: "c".into(),
            num_signatures: 1,
            hashes: None,
            expires: Instant::now() + lifetime,
        }
    }

    #[test]
    fn a_sad_is_kept_as_a_digest_used_once_and_not_spent_by_a_stranger() {
        let sads = Sads::default();
        let sad = sads.issue(grant(Duration::from_secs(60))).unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(&sad).unwrap().len(), 32);
        let stored: [u8; 32] = Sha256::digest(sad.as_bytes()).into();
        assert!(sads.0.lock().unwrap().contains_key(&stored));
        assert!(matches!(
            sads.take(&sad, "b", "c"),
            Err(ApiError::InvalidSad(_))
        ));
        assert!(matches!(
            sads.take(&sad, "a", "d"),
            Err(ApiError::InvalidSad(_))
        ));
        assert_eq!(sads.take(&sad, "a", "c").unwrap().num_signatures, 1);
        assert!(matches!(
            sads.take(&sad, "a", "c"),
            Err(ApiError::InvalidSad("unknown or already used"))
        ));
    }

    #[test]
    fn an_expired_sad_is_refused_and_dropped() {
        let sads = Sads::default();
        let sad = sads.issue(grant(Duration::ZERO)).unwrap();
        assert!(matches!(
            sads.take(&sad, "a", "c"),
            Err(ApiError::InvalidSad("expired"))
        ));
        assert!(sads.0.lock().unwrap().is_empty());
    }

    #[test]
    fn a_grant_covers_its_count_and_its_hashes_only() {
        let h = |b: u8| vec![b; 32];
        let mut g = grant(Duration::from_secs(60));
        g.num_signatures = 2;
        assert!(g.covers(HashAlgorithm::Sha256, &[h(1), h(2)]).is_ok());
        assert!(matches!(
            g.covers(HashAlgorithm::Sha256, &[h(1), h(2), h(3)]),
            Err(ApiError::InvalidSad("more hashes than it authorises"))
        ));
        // v1: bound to the bytes alone.
        g.hashes = Some(BoundHashes {
            alg: None,
            hashes: vec![h(1), h(2)],
        });
        assert!(g.covers(HashAlgorithm::Sha256, &[h(2)]).is_ok());
        assert!(g.covers(HashAlgorithm::Sha256, &[h(3)]).is_err());
        // v2: and to their algorithm.
        g.hashes = Some(BoundHashes {
            alg: Some(HashAlgorithm::Sha384),
            hashes: vec![h(1)],
        });
        assert!(g.covers(HashAlgorithm::Sha256, &[h(1)]).is_err());
    }
}
