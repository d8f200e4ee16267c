//! What an operator can choose about the token profile, with safe defaults.
//!
//! [`TsaConfig`] is plain data (the server fills it from TOML); [`TsaConfig::validate`]
//! is run by [`crate::Tsa::new`], so a `Tsa` never runs with an inconsistent profile.
//! The reasons for each default are in [`crate::manual::_03_defaults`].

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use hanko_pki::HashAlgorithm;
use rasn::types::ObjectIdentifier;

use crate::Error;

/// The ETSI best-practices time-stamp policy, EN 319 421 §5.2, dotted (the table entry
/// is [`hanko_pki::oid::ETSI_BEST_PRACTICES_TS_POLICY`]).
pub use hanko_pki::oid::dotted::ETSI_BEST_PRACTICES_TS_POLICY as ETSI_BEST_PRACTICES_POLICY;

/// A TSA policy OID (TSAPolicyId).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PolicyId(ObjectIdentifier);

impl PolicyId {
    /// The rasn OID.
    pub fn oid(&self) -> &ObjectIdentifier {
        &self.0
    }

    pub(crate) fn from_oid(oid: ObjectIdentifier) -> Self {
        Self(oid)
    }
}

impl FromStr for PolicyId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        hanko_pki::cms::oid(s)
            .map(Self)
            .map_err(|_| Error::InvalidConfig(format!("not an OID: {s:?}")))
    }
}

impl fmt::Display for PolicyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for PolicyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PolicyId({})", self.0)
    }
}

/// The token profile of one TSA.
#[derive(Clone, Debug)]
pub struct TsaConfig {
    /// Policy of tokens whose request names none (CONFORMANCE B.23).
    pub default_policy: PolicyId,
    /// Further policies a request may name; the default policy is always accepted.
    pub accepted_policies: Vec<PolicyId>,
    /// Hash algorithms accepted in a message imprint (SHA-256/384/512 by default).
    pub accepted_hashes: Vec<HashAlgorithm>,
    /// Declared accuracy of genTime: from 1 ms to 1 s, whole milliseconds. It sets both
    /// the TSTInfo accuracy field and the genTime precision ([`Self::fraction_digits`]),
    /// and the clock guard refuses when the clock's error exceeds it.
    pub accuracy: Duration,
    /// Put the TSA's name (directoryName = the TSA certificate's subject) into
    /// TSTInfo.tsa. Off by default: RFC 3161 makes it optional and it only adds bytes.
    pub include_tsa_name: bool,
    /// Add the qcStatements extension with esi4-qtstStatement-1 (EN 319 422 §9.1),
    /// for the EU-qualified profile only.
    pub qualified: bool,
    /// Longest nonce accepted, in content octets of the INTEGER (64 by default;
    /// clients send 8 to 20). Longer ones are refused with badRequest.
    pub max_nonce_len: usize,
    /// Carry issuerSerial in ESSCertIDv2 (RFC 5035 makes it optional). On by default:
    /// it lets a verifier find the certificate when the token carries none.
    pub ess_issuer_serial: bool,
}

impl Default for TsaConfig {
    fn default() -> Self {
        Self {
            default_policy: PolicyId(hanko_pki::oid::to_rasn(
                &hanko_pki::oid::ETSI_BEST_PRACTICES_TS_POLICY,
            )),
            accepted_policies: Vec::new(),
            accepted_hashes: HashAlgorithm::ALL.to_vec(),
            accuracy: Duration::from_secs(1),
            include_tsa_name: false,
            qualified: false,
            max_nonce_len: 64,
            ess_issuer_serial: true,
        }
    }
}

impl TsaConfig {
    /// Checks the profile for consistency.
    pub fn validate(&self) -> Result<(), Error> {
        let ms = self.accuracy.as_millis();
        if !self.accuracy.subsec_nanos().is_multiple_of(1_000_000) || !(1..=1000).contains(&ms) {
            return Err(Error::InvalidConfig(format!(
                "accuracy must be whole milliseconds from 1 ms to 1 s, not {:?}",
                self.accuracy
            )));
        }
        if self.accepted_hashes.is_empty() {
            return Err(Error::InvalidConfig("no hash algorithm accepted".into()));
        }
        if self.max_nonce_len == 0 {
            return Err(Error::InvalidConfig("max_nonce_len must be > 0".into()));
        }
        Ok(())
    }

    /// Whether a request may name `policy`.
    pub fn accepts_policy(&self, policy: &PolicyId) -> bool {
        *policy == self.default_policy || self.accepted_policies.contains(policy)
    }

    /// All policies this TSA issues under, default first, without duplicates.
    pub fn policies(&self) -> Vec<PolicyId> {
        let mut all = vec![self.default_policy.clone()];
        for p in &self.accepted_policies {
            if !all.contains(p) {
                all.push(p.clone());
            }
        }
        all
    }

    /// Fraction digits of genTime: the finest decimal unit not finer than the accuracy
    /// (1 s: none; 100..999 ms: 1; 10..99 ms: 2; 1..9 ms: 3). Fractions are truncated,
    /// never rounded up, and written without trailing zeros.
    pub fn fraction_digits(&self) -> u32 {
        match self.accuracy.as_millis() {
            1000.. => 0,
            100..=999 => 1,
            10..=99 => 2,
            _ => 3,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests

    use super::*;

    #[test]
    fn default_is_valid_and_etsi() {
        let c = TsaConfig::default();
        c.validate().unwrap();
        assert_eq!(c.default_policy.to_string(), ETSI_BEST_PRACTICES_POLICY);
        assert_eq!(c.fraction_digits(), 0);
    }

    #[test]
    fn accuracy_bounds_and_precision() {
        let mut c = TsaConfig::default();
        for (ms, digits) in [(1, 3), (9, 3), (10, 2), (99, 2), (100, 1), (999, 1)] {
            c.accuracy = Duration::from_millis(ms);
            c.validate().unwrap();
            assert_eq!(c.fraction_digits(), digits, "{ms} ms");
        }
        for bad in [
            Duration::ZERO,
            Duration::from_micros(500),
            Duration::from_micros(1500),
            Duration::from_millis(1001),
        ] {
            c.accuracy = bad;
            assert!(c.validate().is_err(), "{bad:?}");
        }
    }
}
