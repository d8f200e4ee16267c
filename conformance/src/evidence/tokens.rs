//! The archive time-stamps as tokens: each checked as any token, then the record's
//! genTimes in order (F.64) and each TSA certificate valid when the next time-stamp was
//! made (F.67).

use super::record::Record;
use super::{Infos, label};
use crate::cert::Cert;
use crate::report::Findings;
use crate::time;
use crate::token::{self, Expect};

/// One archive time-stamp as checked: its label, its genTime, its signer certificate.
pub(super) type Fact = (String, Option<time::GenTime>, Option<Vec<u8>>);

/// Checks each archive time-stamp's token as any token (its imprint expected only where
/// its tree reached it).
pub(super) fn check_tokens(
    rec: &Record<'_>,
    infos: &Infos,
    root_ok: &[Vec<bool>],
    ca: &[Vec<u8>],
    f: &mut Findings,
) -> Vec<Fact> {
    let mut facts = Vec::new();
    for (c, chain) in rec.chains.iter().enumerate() {
        for (j, ats) in chain.stamps.iter().enumerate() {
            let imprint = match (&infos[c][j], root_ok[c][j]) {
                (Ok(i), true) => Some((i.imprint_alg.clone(), i.imprint.clone())),
                _ => None,
            };
            let expect = Expect {
                imprint,
                ca: ca.to_vec(),
                ..Expect::default()
            };
            let l = label(c, j);
            let fact = token::check_token(ats.token, &expect, &l, f);
            let gen_t = infos[c][j]
                .as_ref()
                .ok()
                .and_then(|i| i.gen_time.clone())
                .or_else(|| fact.gen_time.clone());
            facts.push((l, gen_t, fact.signer_cert));
        }
    }
    facts
}

/// F.64: genTimes ascending through the whole sequence.
pub(super) fn gen_time_order(facts: &[Fact], f: &mut Findings) {
    let mut order_fails = Vec::new();
    for w in facts.windows(2) {
        if let (Some(a), Some(b)) = (&w[0].1, &w[1].1)
            && (b.unix, b.nanos()) < (a.unix, a.nanos())
        {
            order_fails.push(format!(
                "{} genTime {} is before {}'s {}",
                w[1].0,
                time::rfc3339(b.unix),
                w[0].0,
                time::rfc3339(a.unix)
            ));
        }
    }
    if facts.iter().all(|x| x.1.is_none()) {
        f.skip("F.64", "er-gen-time-order", "no genTime could be read");
    } else if order_fails.is_empty() {
        f.check(
            "F.64",
            "er-gen-time-order",
            Ok(format!(
                "{} genTime(s) in ascending order, chain by chain",
                facts.iter().filter(|x| x.1.is_some()).count()
            )),
        );
    } else {
        for e in order_fails {
            f.check("F.64", "er-gen-time-order", Err(e));
        }
    }
}

/// F.67: each token's signer certificate valid at the next archive time-stamp's genTime
/// (the last one's now).
pub(super) fn validity_at_renewal(facts: &[Fact], f: &mut Findings) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    for (k, (l, _, signer)) in facts.iter().enumerate() {
        let (at, when) = match facts.get(k + 1) {
            Some((next_l, Some(g), _)) => (g.unix, format!("{next_l}'s genTime")),
            Some((next_l, None, _)) => {
                f.skip(
                    "F.67",
                    "er-validity-at-renewal",
                    format!("{l}: {next_l} has no readable genTime"),
                );
                continue;
            }
            None => (now, "now (the last time-stamp)".to_owned()),
        };
        let Some(cert) = signer.as_deref().and_then(|d| Cert::from_der(d).ok()) else {
            f.skip(
                "F.67",
                "er-validity-at-renewal",
                format!("{l}: the signer certificate is unknown"),
            );
            continue;
        };
        f.check(
            "F.67",
            "er-validity-at-renewal",
            if !cert.valid_at(at) {
                Err(format!(
                    "{l}: the TSA certificate ({}) is not valid at {when}, {}: renewed too late",
                    cert.validity(),
                    time::rfc3339(at)
                ))
            } else {
                Ok("each time-stamp's TSA certificate valid when the next was made, the last one now"
                    .into())
            },
        );
    }
}
