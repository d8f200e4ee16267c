//! The renewal policy (`[renewal]`, issue #16): when an RFC 4998 evidence record must be
//! renewed, and how (docs/requirements.md, section F, F.65 to F.67).
//!
//! ```text
//!   RecordFacts { last chain's hash algorithm, notAfter of the last time-stamp's chain }
//!     the algorithm is no longer accepted within hash_tree_before   -> Due::HashTree
//!       (or is not in the list at all)
//!     the last time-stamp's chain expires within time_stamp_before  -> Due::TimeStamp
//!     otherwise                                                     -> None (not due)
//! ```
//!
//! A hash-tree renewal comes first: it also makes a new time-stamp, whereas a
//! time-stamp renewal keeps the chain's weakening algorithm (F.65: same algorithm).
//!
//! [`Policy::due`] is pure (facts and a time in, a verdict out), so that the API that
//! renews the records archives hold (`POST /api/v1/evidence/renew`) and a scheduler that
//! renews the records Hanko keeps decide alike. It does not look at records itself: the
//! caller verifies a record first (hanko-client) and passes what it found.
//!
//! # The algorithm list
//! Per hash algorithm, the last day on which it is accepted (after ETSI TS 119 312,
//! which since V1.5.1 gives end dates). The defaults ([`DEFAULT_ALGORITHMS`]) are far
//! dates for SHA-256, SHA-384 and SHA-512, none of which that document ends before 2030;
//! an operator sets the dates of the version in force. An algorithm not in the list is
//! not accepted: a record of it is due for hash-tree renewal at once, and a renewal to
//! it is refused.

use std::fmt;
use std::time::{Duration, SystemTime};

use hanko_anchor::HashAlg;

/// Default lead before the last time-stamp's certificate expires: 12 months.
pub const DEFAULT_TIME_STAMP_BEFORE: Duration = Duration::from_secs(365 * 86_400);
/// Default lead before the chain's hash algorithm stops being accepted: 12 months.
pub const DEFAULT_HASH_TREE_BEFORE: Duration = Duration::from_secs(365 * 86_400);
/// The default algorithm list: (name, the last day it is accepted, UTC).
pub const DEFAULT_ALGORITHMS: [(&str, &str); 3] = [
    ("sha256", "2035-12-31"),
    ("sha384", "2040-12-31"),
    ("sha512", "2040-12-31"),
];

/// The renewal policy, checked (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Renew the time-stamp this long before its chain's first notAfter.
    pub time_stamp_before: Duration,
    /// Renew the hash tree this long before its algorithm stops being accepted.
    pub hash_tree_before: Duration,
    /// Each accepted algorithm and the first instant it is no longer accepted (the day
    /// after its last day, 00:00 UTC).
    pub algorithms: Vec<(HashAlg, SystemTime)>,
}

impl Default for Policy {
    fn default() -> Self {
        let algorithms = DEFAULT_ALGORITHMS
            .iter()
            .filter_map(|(name, day)| Some((alg_by_name(name)?, end_of_day(day).ok()?)))
            .collect();
        Policy {
            time_stamp_before: DEFAULT_TIME_STAMP_BEFORE,
            hash_tree_before: DEFAULT_HASH_TREE_BEFORE,
            algorithms,
        }
    }
}

/// What the policy needs to know of a record: found by verifying it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordFacts {
    /// The hash algorithm of the record's last chain (its current hash tree).
    pub alg: HashAlg,
    /// The earliest notAfter of the chain of the last archive time-stamp's TSA
    /// certificate: after it the last time-stamp cannot be verified.
    pub last_chain_not_after: SystemTime,
}

/// Why a record is due, and for which renewal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Due {
    /// A new archive time-stamp over the last one (F.65).
    TimeStamp {
        /// In words, with the date.
        reason: String,
    },
    /// A new chain with a stronger hash algorithm (F.66); needs the data hashes.
    HashTree {
        /// In words, with the date.
        reason: String,
    },
}

impl Due {
    /// The metric and header label: `time-stamp` or `hash-tree`.
    pub fn kind(&self) -> &'static str {
        match self {
            Due::TimeStamp { .. } => "time-stamp",
            Due::HashTree { .. } => "hash-tree",
        }
    }

    /// The reason in words.
    pub fn reason(&self) -> &str {
        match self {
            Due::TimeStamp { reason } | Due::HashTree { reason } => reason,
        }
    }
}

impl fmt::Display for Due {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} renewal due: {}", self.kind(), self.reason())
    }
}

impl Policy {
    /// Whether a record with `facts` is due for renewal at `now`, and which (see the
    /// module docs); `None`: not due.
    pub fn due(&self, facts: &RecordFacts, now: SystemTime) -> Option<Due> {
        let name = alg_name(facts.alg);
        match self.accepted_until(facts.alg) {
            None => {
                return Some(Due::HashTree {
                    reason: format!(
                        "{name} is not in the accepted algorithms (renewal.algorithms)"
                    ),
                });
            }
            Some(end) if now + self.hash_tree_before >= end => {
                return Some(Due::HashTree {
                    reason: format!(
                        "{name} is accepted until {} (renewal.algorithms), within {} days \
                         (renewal.hash_tree_before_days)",
                        day_text(end),
                        days(self.hash_tree_before)
                    ),
                });
            }
            Some(_) => {}
        }
        if now + self.time_stamp_before >= facts.last_chain_not_after {
            return Some(Due::TimeStamp {
                reason: format!(
                    "the last archive time-stamp's certificate chain expires at {}, within {} \
                     days (renewal.time_stamp_before_days)",
                    rfc3339(facts.last_chain_not_after),
                    days(self.time_stamp_before)
                ),
            });
        }
        None
    }

    /// When a record with `facts` becomes due, in words (for a refusal).
    pub fn not_due_reason(&self, facts: &RecordFacts) -> String {
        let ts = facts
            .last_chain_not_after
            .checked_sub(self.time_stamp_before)
            .map_or_else(|| "now".to_owned(), rfc3339);
        let ht = self
            .accepted_until(facts.alg)
            .and_then(|end| end.checked_sub(self.hash_tree_before))
            .map_or_else(|| "now".to_owned(), rfc3339);
        format!(
            "not due: the last archive time-stamp's certificate chain is valid until {} \
             (time-stamp renewal from {ts}), and {} is accepted until {} (hash-tree renewal \
             from {ht})",
            rfc3339(facts.last_chain_not_after),
            alg_name(facts.alg),
            self.accepted_until(facts.alg)
                .map_or_else(|| "never".to_owned(), day_text)
        )
    }

    /// Whether a new hash tree may use `alg` at `now`: accepted, and not itself due.
    pub fn accepts_new(&self, alg: HashAlg, now: SystemTime) -> Result<(), String> {
        let name = alg_name(alg);
        match self.accepted_until(alg) {
            None => Err(format!(
                "{name} is not in the accepted algorithms (renewal.algorithms)"
            )),
            Some(end) if now + self.hash_tree_before >= end => Err(format!(
                "{name} is accepted only until {}: choose a stronger algorithm",
                day_text(end)
            )),
            Some(_) => Ok(()),
        }
    }

    /// The first instant `alg` is no longer accepted; `None`: not in the list.
    pub fn accepted_until(&self, alg: HashAlg) -> Option<SystemTime> {
        self.algorithms
            .iter()
            .find(|(a, _)| *a == alg)
            .map(|(_, end)| *end)
    }
}

/// A hash algorithm by its name in the config and the API (`sha256`, `sha384`,
/// `sha512`: `hanko_pki`'s names).
pub fn alg_by_name(name: &str) -> Option<HashAlg> {
    hanko_pki::HashAlgorithm::from_name(name).and_then(HashAlg::from_pki)
}

/// [`alg_by_name`]'s name of `alg`.
pub fn alg_name(alg: HashAlg) -> &'static str {
    alg.pki().name()
}

/// The instant after the day `day` (`YYYY-MM-DD`, UTC): 00:00 of the next day.
pub fn end_of_day(day: &str) -> Result<SystemTime, String> {
    let date = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .map_err(|_| format!("{day:?} is not a date YYYY-MM-DD"))?;
    let next = date
        .succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .ok_or_else(|| format!("{day:?} is out of range"))?;
    let secs =
        u64::try_from(next.and_utc().timestamp()).map_err(|_| format!("{day:?} is before 1970"))?;
    Ok(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// The last day before `end` (an [`end_of_day`]), `YYYY-MM-DD`.
fn day_text(end: SystemTime) -> String {
    rfc3339(end - Duration::from_secs(1))
        .get(..10)
        .unwrap_or_default()
        .to_owned()
}

fn days(d: Duration) -> u64 {
    d.as_secs() / 86_400
}

fn rfc3339(t: SystemTime) -> String {
    hanko_client::verify::pdf::rfc3339(t)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn at(day: &str) -> SystemTime {
        end_of_day(day).unwrap() - DAY
    }

    fn facts(alg: HashAlg, expires: &str) -> RecordFacts {
        RecordFacts {
            alg,
            last_chain_not_after: at(expires),
        }
    }

    #[test]
    fn defaults_accept_the_sha2_family_until_far_dates() {
        let p = Policy::default();
        assert_eq!(p.time_stamp_before, 365 * DAY);
        assert_eq!(p.accepted_until(HashAlg::Sha256), Some(at("2036-01-01")));
        assert_eq!(p.accepted_until(HashAlg::Sha512), Some(at("2041-01-01")));
        assert!(p.accepts_new(HashAlg::Sha512, at("2026-12-03")).is_ok());
    }

    #[test]
    fn not_due_while_everything_lasts() {
        let p = Policy::default();
        let f = facts(HashAlg::Sha256, "2029-06-01");
        assert_eq!(p.due(&f, at("2026-12-03")), None);
        let why = p.not_due_reason(&f);
        assert!(why.contains("valid until 2029-06-01T00:00:00Z"), "{why}");
        assert!(why.contains("time-stamp renewal from 2028-06-01"), "{why}");
        assert!(why.contains("sha256 is accepted until 2035-12-31"), "{why}");
    }

    #[test]
    fn a_time_stamp_is_due_within_the_lead_before_its_certificate_expires() {
        let p = Policy::default();
        let f = facts(HashAlg::Sha256, "2027-06-01");
        let due = p.due(&f, at("2026-12-03")).unwrap();
        assert_eq!(due.kind(), "time-stamp");
        assert!(due.reason().contains("2027-06-01T00:00:00Z"), "{due}");
        // The boundary: exactly the lead before is due, a second earlier is not.
        let edge = at("2027-06-01") - p.time_stamp_before;
        assert!(p.due(&f, edge).is_some());
        assert_eq!(p.due(&f, edge - Duration::from_secs(1)), None);
        // Already expired: still due (the caller finds it no longer verifies).
        assert!(p.due(&f, at("2028-01-01")).is_some());
    }

    #[test]
    fn a_weakening_algorithm_asks_for_a_new_hash_tree_first() {
        let p = Policy {
            algorithms: vec![
                (HashAlg::Sha256, end_of_day("2027-03-31").unwrap()),
                (HashAlg::Sha512, end_of_day("2040-12-31").unwrap()),
            ],
            ..Policy::default()
        };
        // Both due: the hash tree wins (it makes a new time-stamp too).
        let f = facts(HashAlg::Sha256, "2027-01-01");
        let due = p.due(&f, at("2026-12-03")).unwrap();
        assert_eq!(due.kind(), "hash-tree");
        assert!(due.reason().contains("accepted until 2027-03-31"), "{due}");
        // Not in the list: due at once, and no new tree may use it.
        let f = facts(HashAlg::Sha384, "2035-01-01");
        let due = p.due(&f, at("2026-12-03")).unwrap();
        assert!(matches!(due, Due::HashTree { .. }), "{due}");
        assert!(due.reason().contains("not in the accepted"), "{due}");
        assert!(p.accepts_new(HashAlg::Sha384, at("2026-12-03")).is_err());
        let weak = p
            .accepts_new(HashAlg::Sha256, at("2026-12-03"))
            .unwrap_err();
        assert!(weak.contains("only until 2027-03-31"), "{weak}");
        assert!(p.accepts_new(HashAlg::Sha512, at("2026-12-03")).is_ok());
    }

    #[test]
    fn dates_are_whole_days_in_utc() {
        assert_eq!(
            end_of_day("1970-01-01").unwrap(),
            SystemTime::UNIX_EPOCH + DAY
        );
        assert!(end_of_day("2030-02-30").is_err());
        assert!(end_of_day("31.12.2030").is_err());
        assert_eq!(day_text(end_of_day("2035-12-31").unwrap()), "2035-12-31");
        assert_eq!(alg_by_name("md5"), None);
        for (name, _) in DEFAULT_ALGORITHMS {
            assert_eq!(alg_name(alg_by_name(name).unwrap()), name);
        }
    }
}
