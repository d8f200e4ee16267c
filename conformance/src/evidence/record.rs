//! The EvidenceRecord as read (its chains and archive time-stamps, each token's imprint
//! and genTime) and its reduced hash trees recomputed, sorted as RFC 4998 §4.3 says and,
//! for the diagnostic, in tree order: what the checks in `mod.rs` judge.

use crate::crypto::{AlgId, Hash};
use crate::der::{self, Tlv, tag};
use crate::time;

/// At most this many orderings are tried by the unsorted-concatenation diagnostic.
const MAX_ORDERINGS: usize = 1 << 16;

/// One ArchiveTimeStamp as read.
pub(super) struct Ats<'a> {
    /// `[0]` digestAlgorithm's OID, when present.
    pub(super) digest_alg: Option<Result<String, String>>,
    /// `[2]` reducedHashtree: the lists of values.
    pub(super) tree: Option<Vec<Vec<&'a [u8]>>>,
    /// The timeStamp ContentInfo as in the record.
    pub(super) token: &'a [u8],
}

/// One chain: its encoding and its archive time-stamps.
pub(super) struct Chain<'a> {
    pub(super) raw: &'a [u8],
    pub(super) stamps: Vec<Ats<'a>>,
}

/// The EvidenceRecord as read.
pub(super) struct Record<'a> {
    pub(super) version: Result<u64, String>,
    pub(super) digest_algorithms: Vec<String>,
    pub(super) encryption_info: bool,
    pub(super) chains: Vec<Chain<'a>>,
}

pub(super) fn structure(ers: &[u8]) -> Result<Record<'_>, String> {
    let top = der::read_exact(ers)
        .and_then(|t| t.expect(tag::SEQUENCE, "EvidenceRecord"))
        .map_err(|e| format!("EvidenceRecord: {e}"))?;
    let fields = top.children().map_err(|e| format!("EvidenceRecord: {e}"))?;
    let mut it = fields.iter().copied();
    let mut next = |what: &str| {
        it.next()
            .ok_or(format!("EvidenceRecord ends before {what}"))
    };
    let version = next("version")?
        .small_uint()
        .map_err(|e| format!("version: {e}"));
    let algs = next("digestAlgorithms")?
        .expect(tag::SEQUENCE, "digestAlgorithms")
        .and_then(|s| s.children())
        .map_err(|e| e.to_string())?;
    let digest_algorithms = algs
        .iter()
        .map(|a| AlgId::parse(a).map(|a| a.oid))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("digestAlgorithms: {e}"))?;
    let mut f = next("archiveTimeStampSequence")?;
    if f.tag == 0xa0 {
        f = next("archiveTimeStampSequence")?;
    }
    let mut encryption_info = false;
    if f.tag == 0xa1 {
        encryption_info = true;
        f = next("archiveTimeStampSequence")?;
    }
    if let Some(extra) = it.next() {
        return Err(format!(
            "EvidenceRecord: an element with tag 0x{:02x} after archiveTimeStampSequence",
            extra.tag
        ));
    }
    let seq = f
        .expect(tag::SEQUENCE, "archiveTimeStampSequence")
        .and_then(|s| s.children())
        .map_err(|e| e.to_string())?;
    if seq.is_empty() {
        return Err("archiveTimeStampSequence is empty".into());
    }
    let mut chains = Vec::new();
    for (i, c) in seq.iter().enumerate() {
        let stamps = c
            .expect(tag::SEQUENCE, "ArchiveTimeStampChain")
            .and_then(|s| s.children())
            .map_err(|e| format!("chain {}: {e}", i + 1))?;
        if stamps.is_empty() {
            return Err(format!("chain {} is empty", i + 1));
        }
        let stamps = stamps
            .iter()
            .enumerate()
            .map(|(j, a)| {
                archive_time_stamp(a)
                    .map_err(|e| format!("chain {}, time-stamp {}: {e}", i + 1, j + 1))
            })
            .collect::<Result<Vec<_>, _>>()?;
        chains.push(Chain { raw: c.raw, stamps });
    }
    Ok(Record {
        version,
        digest_algorithms,
        encryption_info,
        chains,
    })
}

fn archive_time_stamp<'a>(t: &Tlv<'a>) -> Result<Ats<'a>, String> {
    let fields = t
        .expect(tag::SEQUENCE, "ArchiveTimeStamp")
        .and_then(|s| s.children())
        .map_err(|e| e.to_string())?;
    let mut digest_alg = None;
    let mut tree = None;
    let mut token = None;
    let mut last_tag = 0u8;
    for f in &fields {
        if token.is_some() {
            return Err("an element after timeStamp".into());
        }
        if matches!(f.tag, 0xa0..=0xa2) && f.tag <= last_tag {
            return Err(format!("field [{}] out of order or repeated", f.tag & 0x1f));
        }
        last_tag = f.tag;
        match f.tag {
            // [0] IMPLICIT AlgorithmIdentifier: the SEQUENCE's contents under A0.
            0xa0 => {
                let as_seq = der::tlv(tag::SEQUENCE, f.value);
                digest_alg = Some(
                    der::read_exact(&as_seq)
                        .and_then(|s| AlgId::parse(&s))
                        .map(|a| a.oid)
                        .map_err(|e| format!("digestAlgorithm: {e}")),
                );
            }
            0xa1 => {}
            // [2] IMPLICIT SEQUENCE OF PartialHashtree.
            0xa2 => {
                let mut lists = Vec::new();
                for l in f.children().map_err(|e| format!("reducedHashtree: {e}"))? {
                    let values = l
                        .expect(tag::SEQUENCE, "PartialHashtree")
                        .and_then(|s| s.children())
                        .map_err(|e| format!("reducedHashtree: {e}"))?;
                    let values = values
                        .iter()
                        .map(|v| {
                            v.expect(tag::OCTET_STRING, "a reducedHashtree value")
                                .map(|v| v.value)
                        })
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| e.to_string())?;
                    lists.push(values);
                }
                tree = Some(lists);
            }
            tag::SEQUENCE => token = Some(f.raw),
            other => return Err(format!("unexpected element with tag 0x{other:02x}")),
        }
    }
    Ok(Ats {
        digest_alg,
        tree,
        token: token.ok_or("no timeStamp")?,
    })
}

/// What the checks read of a TimeStampToken: its imprint and genTime.
pub(super) struct TokenInfo {
    pub(super) imprint_alg: String,
    pub(super) imprint: Vec<u8>,
    pub(super) gen_time: Option<time::GenTime>,
}

pub(super) fn token_info(tok: &[u8]) -> Result<TokenInfo, String> {
    let bad = |e: der::DerError| format!("the token does not parse: {e}");
    let ci = der::read_exact(tok).map_err(bad)?;
    let kids = ci.children().map_err(bad)?;
    let sd =
        der::read_exact(kids.get(1).ok_or("a ContentInfo without content")?.value).map_err(bad)?;
    let encap = sd
        .children()
        .map_err(bad)?
        .get(2)
        .ok_or("SignedData without encapContentInfo")?
        .children()
        .map_err(bad)?;
    let econtent = encap.get(1).ok_or("a token without eContent")?;
    let octets = der::read_exact(econtent.value).map_err(bad)?;
    let tst = der::read_exact(octets.value).map_err(bad)?;
    let fields = tst.children().map_err(bad)?;
    let mi = fields
        .get(2)
        .ok_or("TSTInfo without messageImprint")?
        .children()
        .map_err(bad)?;
    let [alg, value] = mi.as_slice() else {
        return Err("malformed messageImprint".into());
    };
    let imprint_alg = AlgId::parse(alg).map_err(bad)?.oid;
    let gen_time = fields
        .get(4)
        .filter(|g| g.tag == tag::GENERALIZED_TIME)
        .and_then(|g| time::parse_generalized(g.value));
    Ok(TokenInfo {
        imprint_alg,
        imprint: value.value.to_vec(),
        gen_time,
    })
}

/// H(the `values` concatenated in binary ascending order).
fn sorted_node(h: Hash, values: &[&[u8]]) -> Vec<u8> {
    let mut v = values.to_vec();
    v.sort();
    h.digest(&v.concat())
}

/// The root a reduced hash tree reaches with sorted concatenation (RFC 4998 §4.3).
pub(super) fn root_sorted(h: Hash, tree: &[Vec<&[u8]>]) -> Option<Vec<u8>> {
    let (first, rest) = tree.split_first()?;
    let mut cur = match first.as_slice() {
        [only] => only.to_vec(),
        values => sorted_node(h, values),
    };
    for list in rest {
        let mut values: Vec<&[u8]> = vec![&cur];
        values.extend_from_slice(list);
        cur = sorted_node(h, &values);
    }
    Some(cur)
}

/// Whether some concatenation in tree order (the values as listed, the running hash
/// before or after them) reaches `want`; `None` when too many orderings would be tried.
pub(super) fn reached_unsorted(h: Hash, tree: &[Vec<&[u8]>], want: &[u8]) -> Option<bool> {
    let (first, rest) = tree.split_first()?;
    let mut candidates: Vec<Vec<u8>> = match first.as_slice() {
        [only] => vec![only.to_vec()],
        values => {
            let mut rev = values.to_vec();
            rev.reverse();
            vec![h.digest(&values.concat()), h.digest(&rev.concat())]
        }
    };
    for list in rest {
        if candidates.len() * 2 > MAX_ORDERINGS {
            return None;
        }
        let tail = list.concat();
        let mut next = Vec::with_capacity(candidates.len() * 2);
        for c in &candidates {
            next.push(h.digest(&[c.as_slice(), &tail].concat()));
            next.push(h.digest(&[tail.as_slice(), c].concat()));
        }
        next.sort();
        next.dedup();
        candidates = next;
    }
    Some(candidates.iter().any(|c| c == want))
}

/// Whether the hashed object `obj` is where the ArchiveTimeStamp needs it: in the first
/// list of its reduced hash tree, or the imprint itself when it has none.
pub(super) fn covers(ats: &Ats<'_>, info: &TokenInfo, obj: &[u8]) -> bool {
    match ats.tree.as_ref().and_then(|t| t.first()) {
        Some(first) => first.contains(&obj),
        None => info.imprint == obj,
    }
}
