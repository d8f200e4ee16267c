//! The checks of an RFC 4998 EvidenceRecord (docs/requirements.md, section F: F.62 to
//! F.67), on the tool's own DER reader and hashes; each archive time-stamp token is
//! checked as any token ([`crate::token::check_token`]).
//!
//! The rules checked, as RFC 4998 and Hanko state them:
//!
//! ```text
//!  chain 1, time-stamp 1:  H(d) in the first list -> reduced tree -> root == token imprint
//!  chain c, time-stamp j>1 (time-stamp renewal, F.65):
//!                          H(DER of time-stamp j-1's timeStamp ContentInfo) in the first list
//!  chain c>1, time-stamp 1 (hash-tree renewal, F.66):
//!                          H(H(d) || H(DER of chains 1..c-1 as an ArchiveTimeStampSequence))
//!                          in the first list, data hash first
//!  a node:                 H(the values concatenated in binary ascending order) (§4.3)
//!  a first list holding one value: that value itself (Bouncy Castle 1.72 writes the data
//!                          hash alone in the first list; docs/requirements.md F.63a)
//!  no reducedHashtree:     the imprint is the hashed object itself
//! ```
//!
//! with one algorithm per chain (each ArchiveTimeStamp's digestAlgorithm, when present,
//! the token's imprint algorithm), every algorithm listed in digestAlgorithms, genTimes
//! ascending through the whole sequence, and each token's signer certificate valid at
//! the genTime of the next archive time-stamp (the last one's now).
//!
//! One defect fails one check: a tree that reaches the imprint only when its values are
//! concatenated in tree order (not sorted) fails `er-sorted-concatenation`, and
//! `er-root` says SKIP for it; renewals that cannot be recomputed because the data does
//! not match the record say SKIP and point at `er-data-hash`.
//!
//! `record.rs` reads the record and recomputes its trees; this file judges its
//! algorithms and trees, `renewal.rs` its renewals, `tokens.rs` its time-stamps as tokens.

mod record;
mod renewal;
mod tokens;

use crate::crypto::Hash;
use crate::report::{Findings, Outcome};
use record::{Record, TokenInfo, covers, reached_unsorted, root_sorted, structure, token_info};

/// Each archive time-stamp's token as read, chain by chain.
type Infos = [Vec<Result<TokenInfo, String>>];
/// Each archive time-stamp's algorithm (an OID), chain by chain; `None` where unknown.
type Algs = [Vec<Option<String>>];
/// [`Algs`], owned.
type AlgRows = Vec<Vec<Option<String>>>;

/// The data's hash as the hash-tree renewals need it.
struct DataHash<'a> {
    /// H(d) with the first chain's algorithm (the data's, or the record's own hashed
    /// object when no data was given); `None` when unknown.
    record: Option<Vec<u8>>,
    /// The data was given and the record is not over it.
    mismatch: bool,
    /// The data's hash with another algorithm, when the data or that hash was given.
    of: &'a dyn Fn(Hash) -> Option<Vec<u8>>,
}

/// Every check of this module, with its requirement: SKIPped together when the record
/// does not parse.
const CHECKS: &[(&str, &str)] = &[
    ("F.62", "er-version"),
    ("F.62", "er-digest-algorithms"),
    ("F.63a", "er-tree-algorithm"),
    ("F.63a", "er-reduced-hashtree-form"),
    ("F.63", "er-data-hash"),
    ("F.63", "er-root"),
    ("F.63", "er-sorted-concatenation"),
    ("F.64", "er-chain-algorithm"),
    ("F.64", "er-gen-time-order"),
    ("F.65", "er-time-stamp-renewal"),
    ("F.66", "er-hash-tree-renewal"),
    ("F.67", "er-validity-at-renewal"),
];

fn label(c: usize, j: usize) -> String {
    format!("chain {}, time-stamp {}", c + 1, j + 1)
}

fn hash_name(oid: &str) -> String {
    Hash::from_oid(oid).map_or_else(|_| oid.to_owned(), |h| h.name().to_owned())
}

/// Checks the DER EvidenceRecord `ers` against docs/requirements.md F.62 to F.67,
/// recording each check in `f`. The data's hashes come from `data` (hashed with each
/// chain's algorithm) or else from `data_hashes` (hash OID, value); checks that need
/// them say SKIP when neither gives one. `ca`: trust anchors (DER) for the tokens.
pub fn check(
    ers: &[u8],
    data_hashes: &[(String, Vec<u8>)],
    data: Option<&[u8]>,
    ca: &[Vec<u8>],
    f: &mut Findings,
) {
    let rec = match structure(ers) {
        Ok(r) => {
            f.check(
                "F.62",
                "er-structure",
                Ok(format!(
                    "DER EvidenceRecord: {} chain(s), {} archive time-stamp(s)",
                    r.chains.len(),
                    r.chains.iter().map(|c| c.stamps.len()).sum::<usize>()
                )),
            );
            r
        }
        Err(e) => {
            f.check("F.62", "er-structure", Err(e));
            for (req, name) in CHECKS {
                f.skip(req, name, "the evidence record does not parse");
            }
            return;
        }
    };
    let data_hash = |h: Hash| -> Option<Vec<u8>> {
        match data {
            Some(d) => Some(h.digest(d)),
            None => data_hashes
                .iter()
                .find(|(o, _)| o == h.oid())
                .map(|(_, v)| v.clone()),
        }
    };

    version(&rec, f);
    // The tokens and the algorithms of every archive time-stamp.
    let infos: Vec<Vec<Result<TokenInfo, String>>> = rec
        .chains
        .iter()
        .map(|c| c.stamps.iter().map(|a| token_info(a.token)).collect())
        .collect();
    let algs = tree_algorithms(&rec, &infos, f);
    digest_algorithms(&rec, &algs, f);
    let chain_algs = chain_algorithms(&algs, f);
    tree_form(&rec, &algs, f);
    let root_ok = roots(&rec, &infos, &algs, f);
    let (record_hd, data_mismatch) = data_hash_check(&rec, &infos, &chain_algs, &data_hash, f);
    renewal::time_stamp_renewals(&rec, &infos, &algs, f);
    renewal::hash_tree_renewals(
        &rec,
        &infos,
        &chain_algs,
        DataHash {
            record: record_hd,
            mismatch: data_mismatch,
            of: &data_hash,
        },
        f,
    );
    let facts = tokens::check_tokens(&rec, &infos, &root_ok, ca, f);
    tokens::gen_time_order(&facts, f);
    tokens::validity_at_renewal(&facts, f);
    // Outcomes a check never recorded (e.g. no tree anywhere) would leave it out.
    for (req, name) in CHECKS {
        if f.outcome(name).is_none() {
            f.add(req, name, Outcome::Skip, "nothing to check in this record");
        }
    }
}

/// F.62: the record's version.
fn version(rec: &Record<'_>, f: &mut Findings) {
    f.check(
        "F.62",
        "er-version",
        match &rec.version {
            Ok(1) => Ok("version 1".into()),
            Ok(v) => Err(format!("version {v}, not 1")),
            Err(e) => Err(e.clone()),
        },
    );
}

/// Each archive time-stamp's algorithm (its digestAlgorithm, else its token's imprint
/// algorithm), checked against F.63a on the way.
fn tree_algorithms(rec: &Record<'_>, infos: &Infos, f: &mut Findings) -> AlgRows {
    // Each archive time-stamp's algorithm: its digestAlgorithm, else the imprint's.
    let mut algs: AlgRows = Vec::new();
    let mut tree_alg_fails = Vec::new();
    let mut tree_alg_seen = 0usize;
    for (c, chain) in rec.chains.iter().enumerate() {
        let mut row = Vec::new();
        for (j, ats) in chain.stamps.iter().enumerate() {
            let info = infos[c][j].as_ref().ok();
            let alg = match (&ats.digest_alg, info) {
                (Some(Err(e)), _) => {
                    tree_alg_fails.push(format!("{}: {e}", label(c, j)));
                    None
                }
                (Some(Ok(a)), Some(i)) if *a != i.imprint_alg => {
                    tree_alg_fails.push(format!(
                        "{}: digestAlgorithm {} is not the token's imprint algorithm {}",
                        label(c, j),
                        hash_name(a),
                        hash_name(&i.imprint_alg)
                    ));
                    Some(a.clone())
                }
                (Some(Ok(a)), _) => Some(a.clone()),
                (None, Some(i)) => Some(i.imprint_alg.clone()),
                (None, None) => None,
            };
            if let Some(a) = &alg {
                tree_alg_seen += 1;
                if let Err(e) = Hash::from_oid(a) {
                    tree_alg_fails.push(format!("{}: {e}", label(c, j)));
                }
            }
            row.push(alg);
        }
        algs.push(row);
    }
    if !tree_alg_fails.is_empty() {
        for e in tree_alg_fails {
            f.check("F.63a", "er-tree-algorithm", Err(e));
        }
    } else if tree_alg_seen == 0 {
        f.skip("F.63a", "er-tree-algorithm", "no token could be read");
    } else {
        f.check(
            "F.63a",
            "er-tree-algorithm",
            Ok("each tree's algorithm is its token's imprint algorithm (SHA-2)".into()),
        );
    }
    algs
}

/// F.62: digestAlgorithms lists every algorithm the record uses.
fn digest_algorithms(rec: &Record<'_>, algs: &Algs, f: &mut Findings) {
    let used: Vec<&String> = {
        let mut u: Vec<&String> = algs.iter().flatten().flatten().collect();
        u.sort();
        u.dedup();
        u
    };
    let missing: Vec<String> = used
        .iter()
        .filter(|a| !rec.digest_algorithms.contains(a))
        .map(|a| hash_name(a))
        .collect();
    f.check(
        "F.62",
        "er-digest-algorithms",
        if rec.encryption_info {
            Err("encryptionInfo present: the record is over encrypted data".into())
        } else if !missing.is_empty() {
            Err(format!(
                "digestAlgorithms ({}) does not list {}",
                rec.digest_algorithms
                    .iter()
                    .map(|a| hash_name(a))
                    .collect::<Vec<_>>()
                    .join(", "),
                missing.join(", ")
            ))
        } else {
            Ok(format!(
                "lists {}",
                rec.digest_algorithms
                    .iter()
                    .map(|a| hash_name(a))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        },
    );
}

/// F.64: one algorithm per chain; returns each chain's (its first readable one).
fn chain_algorithms(algs: &Algs, f: &mut Findings) -> Vec<Option<Hash>> {
    let mut chain_algs: Vec<Option<Hash>> = Vec::new();
    let mut chain_alg_fails = Vec::new();
    let mut chain_alg_desc = Vec::new();
    for (c, row) in algs.iter().enumerate() {
        let known: Vec<&String> = row.iter().flatten().collect();
        let first = known.first().copied();
        if let Some(other) = known.iter().find(|a| Some(**a) != first) {
            chain_alg_fails.push(format!(
                "chain {}: {} and {}",
                c + 1,
                first.map(|a| hash_name(a)).unwrap_or_default(),
                hash_name(other)
            ));
        }
        chain_algs.push(first.and_then(|a| Hash::from_oid(a).ok()));
        chain_alg_desc.push(format!(
            "chain {}: {} ({} time-stamp(s))",
            c + 1,
            first.map_or_else(|| "unknown".to_owned(), |a| hash_name(a)),
            row.len()
        ));
    }
    if chain_alg_fails.is_empty() {
        f.check("F.64", "er-chain-algorithm", Ok(chain_alg_desc.join("; ")));
    } else {
        for e in chain_alg_fails {
            f.check(
                "F.64",
                "er-chain-algorithm",
                Err(format!("two algorithms in one chain: {e}")),
            );
        }
    }
    chain_algs
}

/// F.63a: the form of each reduced hash tree.
fn tree_form(rec: &Record<'_>, algs: &Algs, f: &mut Findings) {
    // F.63a reducedHashtree form: no empty list, every value of the algorithm's length.
    let mut form_fails = Vec::new();
    let mut trees = 0usize;
    for (c, chain) in rec.chains.iter().enumerate() {
        for (j, ats) in chain.stamps.iter().enumerate() {
            let Some(tree) = &ats.tree else { continue };
            trees += 1;
            let want = algs[c][j]
                .as_deref()
                .and_then(|a| Hash::from_oid(a).ok())
                .map(Hash::output_len);
            if tree.is_empty() {
                form_fails.push(format!("{}: an empty reducedHashtree", label(c, j)));
            } else if tree.iter().any(Vec::is_empty) {
                form_fails.push(format!("{}: an empty PartialHashtree", label(c, j)));
            } else if let Some(n) = want
                && let Some(v) = tree.iter().flatten().find(|v| v.len() != n)
            {
                form_fails.push(format!(
                    "{}: a value of {} octets where the algorithm gives {n}",
                    label(c, j),
                    v.len()
                ));
            }
        }
    }
    if !form_fails.is_empty() {
        for e in form_fails {
            f.check("F.63a", "er-reduced-hashtree-form", Err(e));
        }
    } else {
        f.check(
            "F.63a",
            "er-reduced-hashtree-form",
            Ok(format!(
                "{trees} reduced hash tree(s), no empty list, values of the algorithm's length"
            )),
        );
    }
}

/// F.63: each tree's root is its token's imprint (sorted concatenation, or the defect
/// named); returns, per archive time-stamp, whether it was.
fn roots(rec: &Record<'_>, infos: &Infos, algs: &Algs, f: &mut Findings) -> Vec<Vec<bool>> {
    let mut root_ok: Vec<Vec<bool>> = Vec::new();
    for (c, chain) in rec.chains.iter().enumerate() {
        let mut row = Vec::new();
        for (j, ats) in chain.stamps.iter().enumerate() {
            let l = label(c, j);
            let info = match &infos[c][j] {
                Ok(i) => i,
                Err(e) => {
                    f.skip("F.63", "er-root", format!("{l}: {e}"));
                    f.skip("F.63", "er-sorted-concatenation", format!("{l}: {e}"));
                    row.push(false);
                    continue;
                }
            };
            let Some(h) = algs[c][j].as_deref().and_then(|a| Hash::from_oid(a).ok()) else {
                let why = format!("{l}: the algorithm is not one this tool computes");
                f.skip("F.63", "er-root", why.clone());
                f.skip("F.63", "er-sorted-concatenation", why);
                row.push(false);
                continue;
            };
            let Some(tree) = ats.tree.as_ref().filter(|t| !t.is_empty()) else {
                f.check(
                    "F.63",
                    "er-root",
                    Ok("no reduced hash tree: the imprint is the hashed object itself".into()),
                );
                f.skip(
                    "F.63",
                    "er-sorted-concatenation",
                    format!("{l}: no reduced hash tree"),
                );
                row.push(true);
                continue;
            };
            let root = root_sorted(h, tree).unwrap_or_default();
            if root == info.imprint {
                f.check(
                    "F.63",
                    "er-root",
                    Ok(format!(
                        "each reduced hash tree reaches its token's imprint ({})",
                        h.name()
                    )),
                );
                f.check(
                    "F.63",
                    "er-sorted-concatenation",
                    Ok(
                        "nodes hash their children in binary ascending order (RFC 4998 §4.3)"
                            .into(),
                    ),
                );
                row.push(true);
                continue;
            }
            row.push(false);
            match reached_unsorted(h, tree, &info.imprint) {
                Some(true) => {
                    f.skip(
                        "F.63",
                        "er-root",
                        format!(
                            "{l}: the imprint is not reached with sorted concatenation, only in \
                             tree order: see er-sorted-concatenation"
                        ),
                    );
                    f.check(
                        "F.63",
                        "er-sorted-concatenation",
                        Err(format!(
                            "{l}: the tree was built with unsorted concatenation: the imprint \
                             {} is reached only by concatenating in tree order, not in the \
                             binary ascending order of RFC 4998 §4.3",
                            hex::encode(&info.imprint)
                        )),
                    );
                }
                reached => {
                    f.check(
                        "F.63",
                        "er-root",
                        Err(format!(
                            "{l}: the reduced hash tree reaches {}, not the token's imprint {}",
                            hex::encode(&root),
                            hex::encode(&info.imprint)
                        )),
                    );
                    f.skip(
                        "F.63",
                        "er-sorted-concatenation",
                        if reached.is_none() {
                            format!("{l}: too deep a tree to try every ordering")
                        } else {
                            format!("{l}: no order of concatenation reaches the imprint")
                        },
                    );
                }
            }
        }
        root_ok.push(row);
    }
    root_ok
}

/// F.63: the data's hash in the first list of the first archive time-stamp. Returns H(d)
/// with the first chain's algorithm as the renewals may use it (`None` when the data
/// does not match), and whether the data did not match.
fn data_hash_check(
    rec: &Record<'_>,
    infos: &Infos,
    chain_algs: &[Option<Hash>],
    data_hash: &dyn Fn(Hash) -> Option<Vec<u8>>,
    f: &mut Findings,
) -> (Option<Vec<u8>>, bool) {
    let first = &rec.chains[0].stamps[0];
    let first_info = infos[0][0].as_ref().ok();
    let mut record_hd: Option<Vec<u8>> = None;
    let mut data_mismatch = false;
    match (chain_algs[0], first_info) {
        (Some(h), Some(info)) => match data_hash(h) {
            Some(hd) => {
                if covers(first, info, &hd) {
                    f.check(
                        "F.63",
                        "er-data-hash",
                        Ok(format!(
                            "the data's {} {} is the first archive time-stamp's hashed object",
                            h.name(),
                            hex::encode(&hd)
                        )),
                    );
                    record_hd = Some(hd);
                } else {
                    data_mismatch = true;
                    f.check(
                        "F.63",
                        "er-data-hash",
                        Err(format!(
                            "the data's {} {} is not in the first list of chain 1, time-stamp 1 \
                             (nor its imprint): the record is not over this data",
                            h.name(),
                            hex::encode(&hd)
                        )),
                    );
                }
            }
            None => {
                f.skip(
                    "F.63",
                    "er-data-hash",
                    format!(
                        "no data (--data) nor its {} (--data-hash) given: the record is \
                         checked for consistency, not tied to any data",
                        h.name()
                    ),
                );
                // The record's own hashed object: the first value of its first list, or
                // the imprint.
                record_hd = match first.tree.as_ref().and_then(|t| t.first()) {
                    Some(l) => l.first().map(|v| v.to_vec()),
                    None => Some(info.imprint.clone()),
                };
            }
        },
        _ => f.skip(
            "F.63",
            "er-data-hash",
            "the first archive time-stamp's algorithm or token is unreadable",
        ),
    }
    (record_hd, data_mismatch)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn lone_first_value_is_the_leaf_and_nodes_sort() {
        let h = Hash::Sha256;
        let a = [1u8; 32];
        let b = [2u8; 32];
        let c = [3u8; 32];
        let ab = h.digest(&[a, b].concat());
        assert_eq!(root_sorted(h, &[vec![&b, &a]]).unwrap(), ab);
        let abc = if ab.as_slice() <= &c[..] {
            h.digest(&[ab.as_slice(), &c].concat())
        } else {
            h.digest(&[&c[..], &ab].concat())
        };
        assert_eq!(
            root_sorted(h, &[vec![&a], vec![&b], vec![&c]]).unwrap(),
            abc
        );
        // Unsorted: c || H(b || a) is reached only in tree order.
        let ba = h.digest(&[b, a].concat());
        let want = h.digest(&[c.as_slice(), &ba].concat());
        let tree = [vec![&b[..], &a[..]], vec![&c[..]]];
        assert_ne!(root_sorted(h, &tree).unwrap(), want);
        assert_eq!(reached_unsorted(h, &tree, &want), Some(true));
        assert_eq!(reached_unsorted(h, &tree, &[0; 32]), Some(false));
    }

    #[test]
    fn garbage_is_refused_without_panic() {
        for input in [
            &b""[..],
            &[0x30, 0x00],
            &[0x30, 0x03, 0x02, 0x01, 0x01],
            &[0x30, 0x05, 0x02, 0x01, 0x01, 0x30, 0x00],
        ] {
            let mut f = Findings::new();
            check(input, &[], None, &[], &mut f);
            assert_eq!(f.outcome("er-structure"), Some(Outcome::Fail));
            assert_eq!(f.outcome("er-root"), Some(Outcome::Skip));
        }
    }
}
