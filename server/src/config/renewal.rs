//! `[renewal]`: the renewal policy of RFC 4998 evidence records (issue #16; what it
//! means is [`crate::renewal::policy`]) and the roots trusted for records made by other
//! TSAs (`POST /api/v1/evidence/renew`).
//!
//! ```text
//!   time_stamp_before_days = 365    renew a time-stamp this long before its chain expires
//!   hash_tree_before_days  = 365    renew a hash tree this long before its algorithm ends
//!   trust_anchors = ["x.pem", ...]  roots of other TSAs, besides the own TSA chains' roots
//!   [renewal.algorithms]            the last day each hash algorithm is accepted
//!   sha256 = "2035-12-31"           (replaces the whole default list when given)
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use hanko_pki::cert::{Certificate, load_pem_chain};
use serde::Deserialize;

use super::seal::under;
use crate::renewal::policy::{self, Policy};

/// `[renewal]` as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenewalSection {
    /// `renewal.time_stamp_before_days`: renew a record's time-stamp this many days
    /// before the certificate chain of its last archive time-stamp expires, 1..=3650
    /// (default 365).
    pub time_stamp_before_days: Option<u64>,
    /// `renewal.hash_tree_before_days`: renew a record's hash tree this many days before
    /// its hash algorithm stops being accepted, 1..=3650 (default 365).
    pub hash_tree_before_days: Option<u64>,
    /// `renewal.trust_anchors`: PEM files of the roots of other TSAs whose records may be
    /// renewed (imported records). Relative to `data_dir`. The own TSA chains' roots are
    /// always trusted.
    pub trust_anchors: Option<Vec<PathBuf>>,
    /// `[renewal.algorithms]`: hash algorithm name (`sha256`, `sha384`, `sha512`) = the
    /// last day it is accepted, `"YYYY-MM-DD"` (UTC). When given it replaces the whole
    /// default list; an algorithm left out is not accepted.
    pub algorithms: Option<BTreeMap<String, String>>,
}

/// `[renewal]`, checked.
#[derive(Clone, Debug, Default)]
pub struct RenewalSettings {
    /// The policy.
    pub policy: Policy,
    /// The configured roots of other TSAs (the own TSA's roots are added at start-up).
    pub trust_anchors: Vec<Certificate>,
}

/// Largest `*_before_days`.
const MAX_DAYS: u64 = 3650;

/// Resolves `[renewal]`.
pub(super) fn resolve_renewal(
    s: RenewalSection,
    data_dir: &Path,
) -> anyhow::Result<RenewalSettings> {
    let days = |key: &str, v: Option<u64>, default: Duration| match v {
        None => Ok(default),
        Some(d @ 1..=MAX_DAYS) => Ok(Duration::from_secs(d * 86_400)),
        Some(d) => bail!("renewal.{key} = {d}: allowed 1..={MAX_DAYS}"),
    };
    let mut p = Policy {
        time_stamp_before: days(
            "time_stamp_before_days",
            s.time_stamp_before_days,
            policy::DEFAULT_TIME_STAMP_BEFORE,
        )?,
        hash_tree_before: days(
            "hash_tree_before_days",
            s.hash_tree_before_days,
            policy::DEFAULT_HASH_TREE_BEFORE,
        )?,
        ..Policy::default()
    };
    if let Some(list) = s.algorithms {
        if list.is_empty() {
            bail!("[renewal.algorithms] is empty: name at least one algorithm, or leave it out");
        }
        p.algorithms = list
            .iter()
            .map(|(name, day)| {
                let alg = policy::alg_by_name(name).ok_or_else(|| {
                    anyhow::anyhow!("renewal.algorithms.{name}: unknown (sha256, sha384, sha512)")
                })?;
                let end = policy::end_of_day(day)
                    .map_err(|e| anyhow::anyhow!("renewal.algorithms.{name}: {e}"))?;
                Ok((alg, end))
            })
            .collect::<anyhow::Result<_>>()?;
    }
    let mut trust_anchors = Vec::new();
    for f in s.trust_anchors.unwrap_or_default() {
        let f = under(data_dir, f);
        let pem = std::fs::read_to_string(&f)
            .with_context(|| format!("renewal.trust_anchors: cannot read {}", f.display()))?;
        let certs = load_pem_chain(&pem)
            .with_context(|| format!("renewal.trust_anchors: {}", f.display()))?;
        if certs.is_empty() {
            bail!(
                "renewal.trust_anchors: {} holds no certificate",
                f.display()
            );
        }
        trust_anchors.extend(certs);
    }
    Ok(RenewalSettings {
        policy: p,
        trust_anchors,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use hanko_anchor::HashAlg;

    fn resolve(toml: &str) -> anyhow::Result<RenewalSettings> {
        let s: RenewalSection = toml::from_str(toml)?;
        resolve_renewal(s, Path::new("/nonexistent"))
    }

    #[test]
    fn defaults_and_settings() {
        let d = resolve("").unwrap();
        assert_eq!(d.policy, Policy::default());
        assert!(d.trust_anchors.is_empty());
        let s = resolve(
            "time_stamp_before_days = 30\nhash_tree_before_days = 90\n\
             [algorithms]\nsha512 = \"2045-12-31\"\n",
        )
        .unwrap();
        assert_eq!(s.policy.time_stamp_before, Duration::from_secs(30 * 86_400));
        assert_eq!(s.policy.hash_tree_before, Duration::from_secs(90 * 86_400));
        assert_eq!(s.policy.accepted_until(HashAlg::Sha256), None);
        assert_eq!(
            s.policy.accepted_until(HashAlg::Sha512),
            Some(policy::end_of_day("2045-12-31").unwrap())
        );
    }

    #[test]
    fn refusals_name_the_key() {
        let err = |t: &str| format!("{:#}", resolve(t).unwrap_err());
        assert!(err("time_stamp_before_days = 0").contains("renewal.time_stamp_before_days = 0"));
        assert!(err("hash_tree_before_days = 9999").contains("allowed 1..=3650"));
        assert!(err("[algorithms]\nmd5 = \"2030-01-01\"").contains("renewal.algorithms.md5"));
        assert!(err("[algorithms]\nsha256 = \"soon\"").contains("not a date"));
        assert!(err("[algorithms]\n").contains("is empty"));
        assert!(err("trust_anchors = [\"missing.pem\"]").contains("cannot read"));
        assert!(err("typo = 1").contains("unknown field"));
    }
}
