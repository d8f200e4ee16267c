//! The checks of a token's TSTInfo (RFC 3161 §2.4.2, ETSI EN 319 422 §5): version,
//! policy, imprint, serial, genTime, accuracy, ordering, nonce, tsa name, extensions.

use super::{Expect, Facts, oid};
use crate::cert::{self, Cert};
use crate::cms::Ctx;
use crate::crypto::AlgId;
use crate::der::{self, Tlv, tag};
use crate::time;

/// Checks the TSTInfo `tst` of a token signed by `signer` (when known) against `expect`,
/// recording what it read in `facts`.
pub(super) fn tst_info_checks(
    c: &mut Ctx<'_>,
    tst: &Tlv<'_>,
    expect: &Expect,
    signer: Option<&Cert>,
    facts: &mut Facts,
) {
    let fields = match tst.children() {
        Ok(f) => f,
        Err(e) => {
            c.fail("B.23", "tstinfo-version-policy", format!("TSTInfo: {e}"));
            return;
        }
    };
    let mut it = fields.iter().copied().peekable();
    let version = it.next().map(|t| t.small_uint());
    let policy = it.next().map(|t| t.oid());
    c.check(
        "B.23",
        "tstinfo-version-policy",
        match (version, policy) {
            (Some(Ok(1)), Some(Ok(p))) => match &expect.policy {
                Some(want) if want != &p => Err(format!("policy {p}, expected {want}")),
                Some(_) => Ok(format!("v1, policy {p} as asked")),
                None => Ok(format!("v1, policy {p}")),
            },
            (Some(Ok(v)), _) if v != 1 => Err(format!("TSTInfo version {v}")),
            _ => Err("TSTInfo version or policy malformed".into()),
        },
    );
    // messageImprint
    match it.next().map(|t| t.children()) {
        Some(Ok(mi)) if mi.len() == 2 => {
            let alg = AlgId::parse(&mi[0]).map(|a| a.oid).unwrap_or_default();
            let value = mi[1].value;
            match &expect.imprint {
                Some((want_alg, want)) => c.check(
                    "B.24",
                    "message-imprint",
                    if &alg == want_alg && value == want.as_slice() {
                        Ok("equal to the imprint asked for".into())
                    } else {
                        Err(format!(
                            "imprint {alg}:{} is not {want_alg}:{}",
                            hex::encode(value),
                            hex::encode(want)
                        ))
                    },
                ),
                None => c.skip(
                    "B.24",
                    "message-imprint",
                    "no data or request to compare with",
                ),
            }
        }
        _ => c.fail("B.24", "message-imprint", "malformed messageImprint"),
    }
    // serialNumber
    match it.next().map(|t| t.integer().map(<[u8]>::to_vec)) {
        Some(Ok(s)) => {
            c.check(
                "B.25",
                "serial-number",
                if s[0] & 0x80 != 0 || s.iter().all(|&b| b == 0) {
                    Err("serialNumber is not positive".into())
                } else if s.len() > 21 || (s.len() == 21 && s[0] != 0) {
                    Err(format!(
                        "serialNumber of {} octets (more than 160 bits)",
                        s.len()
                    ))
                } else {
                    Ok("positive, at most 160 bits".into())
                },
            );
            facts.serial = Some(s);
        }
        _ => c.fail("B.25", "serial-number", "malformed serialNumber"),
    }
    // genTime
    let gen_tlv = it.next();
    match gen_tlv.map(|g| (g.tag, time::parse_generalized(g.value))) {
        Some((tag::GENERALIZED_TIME, Some(g))) => {
            c.check(
                "B.26",
                "gen-time",
                match &g.profile_defect {
                    Some(d) => Err(format!(
                        "genTime {:?}: {d}",
                        String::from_utf8_lossy(gen_tlv.map_or(&[][..], |t| t.value))
                    )),
                    None => Ok(format!(
                        "{} (GeneralizedTime, Z{})",
                        time::rfc3339(g.unix),
                        if g.fraction.is_empty() {
                            ""
                        } else {
                            ", fraction without trailing zeros"
                        }
                    )),
                },
            );
            facts.gen_time = Some(g);
        }
        _ => c.fail("B.26", "gen-time", "genTime is not a GeneralizedTime"),
    }
    // Optional fields in order: accuracy, ordering, nonce, [0] tsa, [1] extensions.
    let mut accuracy_secs: Option<f64> = None;
    let mut accuracy: Result<String, String> = Err("accuracy absent (EN 319 422 §5.2.2)".into());
    let mut ordering = false;
    let mut nonce: Option<Vec<u8>> = None;
    let mut tsa_name: Option<Tlv<'_>> = None;
    let mut extensions: Option<Tlv<'_>> = None;
    for t in it {
        match t.tag {
            tag::SEQUENCE => {
                let (a, secs) = read_accuracy(&t);
                accuracy = a;
                accuracy_secs = secs;
            }
            tag::BOOLEAN => ordering = t.value != [0x00],
            tag::INTEGER => nonce = Some(t.value.to_vec()),
            0xa0 => tsa_name = Some(t),
            0xa1 => extensions = Some(t),
            other => c.fail(
                "B.28",
                "ordering-extensions",
                format!("unexpected TSTInfo field with tag 0x{other:02x}"),
            ),
        }
    }
    c.check("B.27", "accuracy", accuracy);
    // Clock sanity: within the accuracy (and 2 s of network and clock slack).
    match (&facts.gen_time, expect.sent_received) {
        (Some(g), Some((sent, received))) => {
            let acc = accuracy_secs.unwrap_or(1.0);
            let t = g.as_secs_f64();
            c.check(
                "B.26",
                "gen-time-clock",
                if t + acc + 2.0 >= sent && t - acc - 2.0 <= received {
                    Ok(format!(
                        "within {:.3} s of this machine's clock",
                        (t - (sent + received) / 2.0).abs()
                    ))
                } else {
                    Err(format!(
                        "genTime {} is {:.1} s from this machine's clock (accuracy {acc} s)",
                        time::rfc3339(g.unix),
                        t - (sent + received) / 2.0
                    ))
                },
            );
        }
        _ => c.skip(
            "B.26",
            "gen-time-clock",
            "not checked against a clock (files only)",
        ),
    }
    // B.28: ordering FALSE (absent: DER omits the DEFAULT) and no critical extension.
    let mut critical = Vec::new();
    let mut qc = false;
    if let Some(ext) = &extensions {
        for e in ext.children().unwrap_or_default() {
            let k = e.children().unwrap_or_default();
            let o = k.first().and_then(|o| o.oid().ok()).unwrap_or_default();
            if k.len() == 3 && k[1].tag == tag::BOOLEAN && k[1].value == [0xff] {
                critical.push(o.clone());
            }
            if o == cert::oid::QC_STATEMENTS
                && k.last().is_some_and(|v| {
                    let needle = der::oid(oid::ESI4_QTST_STATEMENT_1);
                    v.value
                        .windows(needle.len())
                        .any(|w| w == needle.as_slice())
                })
            {
                qc = true;
            }
        }
    }
    c.check(
        "B.28",
        "ordering-extensions",
        if ordering {
            Err("ordering is TRUE".into())
        } else if !critical.is_empty() {
            Err(format!(
                "critical TSTInfo extensions: {}",
                critical.join(", ")
            ))
        } else {
            Ok("ordering absent, no critical extension".into())
        },
    );
    if expect.qualified {
        c.check(
            "B.30",
            "qc-statements",
            if qc {
                Ok("qcStatements with esi4-qtstStatement-1".into())
            } else {
                Err("the EU-qualified profile was claimed but no esi4-qtstStatement-1".into())
            },
        );
    } else {
        c.skip(
            "B.30",
            "qc-statements",
            "the qualified profile was not claimed (--qualified)",
        );
    }
    // A.10 nonce.
    match &expect.nonce {
        Some(Some(want)) => c.check(
            "A.10",
            "nonce",
            match &nonce {
                Some(n) if n == want => Ok("the request's nonce, byte for byte".into()),
                Some(n) => Err(format!(
                    "nonce {} is not the request's {}",
                    hex::encode(n),
                    hex::encode(want)
                )),
                None => Err("the request's nonce is not echoed".into()),
            },
        ),
        Some(None) => c.check(
            "A.10",
            "nonce",
            if nonce.is_none() {
                Ok("no nonce asked, none given".into())
            } else {
                Err("a nonce the request did not carry".into())
            },
        ),
        None => c.skip("A.10", "nonce", "the request is unknown"),
    }
    // B.29 tsa name.
    match (&tsa_name, signer) {
        (None, _) => c.check("B.29", "tsa-name", Ok("absent".into())),
        (Some(t), Some(cert)) => c.check(
            "B.29",
            "tsa-name",
            match der::read_exact(t.value) {
                Ok(g) if g.tag == 0xa4 && g.value == cert.subject.as_slice() => {
                    Ok("equal to the TSA certificate's subject".into())
                }
                _ => Err("the tsa field is not the TSA certificate's subject".into()),
            },
        ),
        (Some(_), None) => c.skip("B.29", "tsa-name", "the signer certificate is unknown"),
    }
}

/// Accuracy: present, at most 1 s, millis and micros within 1..=999.
fn read_accuracy(t: &Tlv<'_>) -> (Result<String, String>, Option<f64>) {
    let mut secs = 0u64;
    let mut millis = 0u64;
    let mut micros = 0u64;
    for f in t.children().unwrap_or_default() {
        let v = match f.tag {
            tag::INTEGER => f.small_uint(),
            0x80 | 0x81 => {
                let mut as_int = f.raw.to_vec();
                as_int[0] = tag::INTEGER;
                der::read_exact(&as_int).and_then(|i| i.small_uint())
            }
            _ => Ok(u64::MAX),
        };
        let Ok(v) = v else {
            return (Err("malformed accuracy".into()), None);
        };
        match f.tag {
            tag::INTEGER => secs = v,
            0x80 if (1..=999).contains(&v) => millis = v,
            0x81 if (1..=999).contains(&v) => micros = v,
            0x80 | 0x81 => return (Err(format!("accuracy field {v} outside 1..999")), None),
            _ => return (Err("unexpected accuracy field".into()), None),
        }
    }
    let total = secs as f64 + millis as f64 / 1e3 + micros as f64 / 1e6;
    if total > 1.0 {
        (
            Err(format!(
                "accuracy {total} s exceeds 1 s (EN 319 422 §5.2.2)"
            )),
            Some(total),
        )
    } else if total == 0.0 {
        (Err("accuracy of zero".into()), Some(total))
    } else {
        (Ok(format!("{total} s")), Some(total))
    }
}
