//! The renewals of an evidence record (F.65, F.66): each recomputed from what it must
//! cover and found as its archive time-stamp's hashed object.

use super::record::{Record, covers};
use super::{Algs, DataHash, Infos, label};
use crate::crypto::Hash;
use crate::der;
use crate::report::Findings;

/// F.65: each time-stamp renewal covers H(DER of the previous time-stamp's ContentInfo).
pub(super) fn time_stamp_renewals(rec: &Record<'_>, infos: &Infos, algs: &Algs, f: &mut Findings) {
    let mut renewals = 0usize;
    for (c, chain) in rec.chains.iter().enumerate() {
        for j in 1..chain.stamps.len() {
            renewals += 1;
            let l = label(c, j);
            let (Some(h), Ok(info)) = (
                algs[c][j].as_deref().and_then(|a| Hash::from_oid(a).ok()),
                &infos[c][j],
            ) else {
                f.skip(
                    "F.65",
                    "er-time-stamp-renewal",
                    format!("{l}: algorithm or token unreadable"),
                );
                continue;
            };
            let want = h.digest(chain.stamps[j - 1].token);
            f.check(
                "F.65",
                "er-time-stamp-renewal",
                if covers(&chain.stamps[j], info, &want) {
                    Ok(
                        "each renewal covers H(DER of the previous time-stamp's ContentInfo)"
                            .into(),
                    )
                } else {
                    Err(format!(
                        "{l}: {} of the previous time-stamp's ContentInfo ({}) is not its \
                         hashed object",
                        h.name(),
                        hex::encode(&want)
                    ))
                },
            );
        }
    }
    if renewals == 0 {
        f.skip(
            "F.65",
            "er-time-stamp-renewal",
            "no time-stamp renewal in the record",
        );
    }
}

/// F.66: each new chain covers H(H(d) || H(DER of the chains before it)).
pub(super) fn hash_tree_renewals(
    rec: &Record<'_>,
    infos: &Infos,
    chain_algs: &[Option<Hash>],
    data: DataHash<'_>,
    f: &mut Findings,
) {
    let DataHash {
        record: record_hd,
        mismatch: data_mismatch,
        of: data_hash,
    } = data;
    if rec.chains.len() == 1 {
        f.skip(
            "F.66",
            "er-hash-tree-renewal",
            "no hash-tree renewal in the record",
        );
    }
    for c in 1..rec.chains.len() {
        let l = label(c, 0);
        let (Some(h), Ok(info)) = (chain_algs[c], &infos[c][0]) else {
            f.skip(
                "F.66",
                "er-hash-tree-renewal",
                format!("{l}: algorithm or token unreadable"),
            );
            continue;
        };
        if data_mismatch {
            f.skip(
                "F.66",
                "er-hash-tree-renewal",
                format!("{l}: not recomputed: the data does not match the record (er-data-hash)"),
            );
            continue;
        }
        let hd = if Some(h) == chain_algs[0] {
            record_hd.clone()
        } else {
            data_hash(h)
        };
        let Some(hd) = hd else {
            f.skip(
                "F.66",
                "er-hash-tree-renewal",
                format!(
                    "{l}: the data's {} is needed (--data, or --data-hash {}:HEX)",
                    h.name(),
                    h.name().to_ascii_lowercase().replace('-', "")
                ),
            );
            continue;
        };
        let previous: Vec<&[u8]> = rec.chains[..c].iter().map(|ch| ch.raw).collect();
        let ha = h.digest(&der::seq(&previous));
        let want = h.digest(&[hd.as_slice(), &ha].concat());
        f.check(
            "F.66",
            "er-hash-tree-renewal",
            if covers(&rec.chains[c].stamps[0], info, &want) {
                Ok("each new chain covers H(H(d) || H(DER of the ArchiveTimeStampSequence before it))"
                    .into())
            } else {
                Err(format!(
                    "{l}: H(H(d) || H(DER of chains 1..{c})) = {} is not its hashed object",
                    hex::encode(&want)
                ))
            },
        );
    }
}
