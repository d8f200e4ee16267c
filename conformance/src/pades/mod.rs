//! The checks of each signature of a PDF against ETSI EN 319 142-1 baselines B-B and
//! B-T, as requirements E.54 to E.58 of docs/requirements.md state them, then the CAdES
//! checks of [`crate::cades`] on its CMS over the bytes its /ByteRange names.
//!
//! The PDF is read by a minimal scanner of its own, not a PDF library (`pdf.rs`).
//!
//! With several signatures, each check is one line over all of them (FAIL if any
//! failed); every FAIL detail names the signature (`signature 2 (object 14)`).

use crate::cades::{self, Profile};
use crate::cms::Ctx;
use crate::der;
use crate::report::Findings;
use crate::time;
use crate::token::{self, Expect};

mod pdf;

use pdf::{Obj, SigDict, byte_range, covered, pdf_date, signature_dicts};

/// Checks every signature of `pdf`, the signers chained to the DER trust anchors `ca`
/// (none: the chain check says SKIP).
pub fn check(pdf: &[u8], ca: &[Vec<u8>], f: &mut Findings) {
    if !pdf.starts_with(b"%PDF-") {
        f.add(
            "E.54",
            "pades-signatures",
            crate::report::Outcome::Fail,
            "not a PDF: the file does not start with %PDF-",
        );
        return;
    }
    let dicts = signature_dicts(pdf);
    let ok: Vec<&SigDict> = dicts.iter().filter_map(|d| d.as_ref().ok()).collect();
    let errors: Vec<&String> = dicts.iter().filter_map(|d| d.as_ref().err()).collect();
    f.check(
        "E.54",
        "pades-signatures",
        if let Some(e) = errors.first() {
            Err((*e).clone())
        } else if ok.is_empty() {
            Err("no signature dictionary (/ByteRange) in the file".into())
        } else {
            Ok(format!(
                "{} signature dictionar{}",
                ok.len(),
                if ok.len() == 1 { "y" } else { "ies" }
            ))
        },
    );
    // The signature whose ByteRange reaches furthest is the last one.
    let last = ok
        .iter()
        .enumerate()
        .filter_map(|(i, d)| {
            byte_range(d.get("ByteRange"))
                .ok()
                .map(|[_, _, c, l]| (c.saturating_add(l), i))
        })
        .max()
        .map(|(_, i)| i);
    for (i, d) in ok.iter().enumerate() {
        let label = match d.object {
            Some(n) => format!("signature {} (object {n})", i + 1),
            None => format!("signature {}", i + 1),
        };
        let mut c = Ctx { f, label: &label };
        check_one(&mut c, pdf, d, Some(i) == last, ca);
    }
}

fn check_one(c: &mut Ctx<'_>, pdf: &[u8], d: &SigDict, is_last: bool, ca: &[Vec<u8>]) {
    let name = |key: &str| match d.get(key) {
        Some(Obj::Name(n)) => Ok(n.clone()),
        Some(other) => Err(format!("/{key} is {}, not a name", other.kind())),
        None => Err(format!("no /{key}")),
    };
    // E.54: Filter, SubFilter, Contents.
    c.check(
        "E.54",
        "pades-filter",
        match name("Filter") {
            Ok(n) if n == "Adobe.PPKLite" => Ok("/Filter /Adobe.PPKLite".into()),
            Ok(n) => Err(format!("/Filter /{n}, not /Adobe.PPKLite")),
            Err(e) => Err(e),
        },
    );
    let sub_filter = name("SubFilter");
    let doc_time_stamp = sub_filter.as_deref() == Ok("ETSI.RFC3161");
    c.check(
        "E.54",
        "pades-sub-filter",
        match &sub_filter {
            Ok(n) if n == "ETSI.CAdES.detached" => Ok("/SubFilter /ETSI.CAdES.detached".into()),
            Ok(n) if n == "ETSI.RFC3161" => {
                Ok("/SubFilter /ETSI.RFC3161 (a document time-stamp)".into())
            }
            Ok(n) => Err(format!(
                "/SubFilter /{n}, not /ETSI.CAdES.detached (EN 319 142-1 §5.3)"
            )),
            Err(e) => Err(e.clone()),
        },
    );
    let contents = match d.get("Contents") {
        Some(Obj::Hex(bytes, start, end)) => Ok((bytes.as_slice(), *start, *end)),
        Some(other) => Err(format!("/Contents is {}, not a hex string", other.kind())),
        None => Err("no /Contents".into()),
    };
    let cms: Option<&[u8]> = match &contents {
        Ok((bytes, _, _)) => match der::read(bytes) {
            Ok((tlv, rest)) => {
                c.check(
                    "E.54",
                    "pades-contents",
                    if let Some(p) = rest.iter().position(|&b| b != 0) {
                        Err(format!(
                            "/Contents has a non-zero byte {} bytes after the {}-byte CMS",
                            p,
                            tlv.raw.len()
                        ))
                    } else {
                        Ok(format!(
                            "a {}-byte DER value, then {} bytes of zero padding",
                            tlv.raw.len(),
                            rest.len()
                        ))
                    },
                );
                Some(tlv.raw)
            }
            Err(e) => {
                c.fail("E.54", "pades-contents", format!("/Contents: {e}"));
                None
            }
        },
        Err(e) => {
            c.fail("E.54", "pades-contents", e);
            None
        }
    };

    // E.55: ByteRange.
    let br = byte_range(d.get("ByteRange"));
    let data = br.as_ref().ok().and_then(|&r| covered(pdf, r));
    c.check(
        "E.55",
        "pades-byte-range",
        match (&br, &contents) {
            (Err(e), _) => Err(e.clone()),
            (Ok(_), Err(_)) => Err("no /Contents hex string to exclude".into()),
            (Ok([s, a, b, l]), Ok((_, start, end))) => {
                let end_of_revision = b.saturating_add(*l);
                if *s != 0 {
                    Err(format!("/ByteRange starts at {s}, not 0"))
                } else if a != start || b != end {
                    Err(format!(
                        "/ByteRange [0 {a} {b} {l}] does not exclude exactly the /Contents hex string (bytes {start} to {end})"
                    ))
                } else if data.is_none() {
                    Err(format!(
                        "/ByteRange [0 {a} {b} {l}] reaches past the end of the file ({} bytes)",
                        pdf.len()
                    ))
                } else if !pdf[..end_of_revision]
                    .trim_ascii_end()
                    .ends_with(b"%%EOF")
                {
                    Err(format!(
                        "the revision /ByteRange covers (to byte {end_of_revision}) does not end with %%EOF"
                    ))
                } else {
                    Ok(format!(
                        "[0 {a} {b} {l}]: the revision to byte {end_of_revision} except exactly /Contents"
                    ))
                }
            }
        },
    );
    match &br {
        Ok([_, _, b, l]) => {
            let end = b.saturating_add(*l);
            c.check(
                "E.55",
                "pades-whole-file",
                if !is_last {
                    Ok(format!(
                        "an earlier signature: covers {end} of {} bytes, later incremental updates follow",
                        pdf.len()
                    ))
                } else if end == pdf.len() {
                    Ok(format!("the last signature covers the file to its end ({end} bytes)"))
                } else if end < pdf.len() {
                    Err(format!(
                        "{} bytes after the last signature's /ByteRange (it ends at {end} of {})",
                        pdf.len() - end,
                        pdf.len()
                    ))
                } else {
                    Err(format!("/ByteRange ends at {end}, past the end of the file ({})", pdf.len()))
                },
            );
        }
        Err(_) => c.skip("E.55", "pades-whole-file", "no readable /ByteRange"),
    }

    // E.56: /M.
    let m = match d.get("M") {
        Some(Obj::Str(s)) => pdf_date(s),
        Some(other) => Err(format!("/M is {}, not a string", other.kind())),
        None => Err("no /M (EN 319 142-1 §5.2.1: the signing time)".into()),
    };
    c.check(
        "E.56",
        "pades-m",
        match &m {
            Ok(t) => Ok(format!("/M {}", time::rfc3339(*t))),
            // ISO 32000-2 §12.8.5: a document time-stamp's time is its token's genTime.
            Err(_) if doc_time_stamp && d.get("M").is_none() => {
                Ok("no /M: a document time-stamp, timed by its token".into())
            }
            Err(e) => Err(e.clone()),
        },
    );

    if doc_time_stamp {
        // A document time-stamp (E.58): a token over the ByteRange bytes.
        match cms {
            Some(tok) => {
                let imprint = data.as_deref().and_then(|data| {
                    let alg = crate::token::imprint_alg(tok)?;
                    let h = crate::crypto::Hash::from_oid(&alg).ok()?;
                    Some((alg, h.digest(data)))
                });
                let expect = Expect {
                    imprint,
                    ca: ca.to_vec(),
                    ..Expect::default()
                };
                let label = format!("{}, document time-stamp", c.label);
                token::check_token(tok, &expect, &label, c.f);
                c.check(
                    "E.58",
                    "pades-level",
                    Ok("a document time-stamp (B-T for the signatures before it)".into()),
                );
            }
            None => c.skip("E.58", "pades-level", "/Contents holds no DER value"),
        }
        c.skip("E.57", "pades-reason", "a document time-stamp");
        return;
    }

    // The CMS, with the CAdES checks over the ByteRange bytes.
    let profile = Profile::Pades { m: m.ok() };
    let Some(cms) = cms else {
        cades::skip_all(c, profile, "/Contents holds no DER value");
        c.skip("E.57", "pades-reason", "/Contents holds no DER value");
        c.skip("E.58", "pades-level", "/Contents holds no DER value");
        return;
    };
    let facts = cades::check_cms(c, cms, data.as_deref(), ca, profile);
    if facts.parsed {
        let reason = d.get("Reason").is_some();
        c.check(
            "E.57",
            "pades-reason",
            match (reason, facts.commitment_type) {
                (true, true) => Err(
                    "/Reason together with a commitment-type-indication (EN 319 142-1 §5.2)".into(),
                ),
                (true, false) => Ok("/Reason, no commitment-type-indication".into()),
                (false, true) => Ok("commitment-type-indication, no /Reason".into()),
                (false, false) => Ok("neither /Reason nor a commitment type".into()),
            },
        );
        c.check(
            "E.58",
            "pades-level",
            Ok(if facts.time_stamps > 0 {
                format!(
                    "B-T: {} signature-time-stamp token{}",
                    facts.time_stamps,
                    if facts.time_stamps == 1 { "" } else { "s" }
                )
            } else {
                "B-B (no signature-time-stamp)".into()
            }),
        );
    } else {
        c.skip("E.57", "pades-reason", "the CMS does not parse");
        c.skip("E.58", "pades-level", "the CMS does not parse");
    }
}
