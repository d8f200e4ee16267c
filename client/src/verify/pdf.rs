//! Offline verification of a sealed PDF (PAdES, ETSI EN 319 142-1, or any
//! `adbe.pkcs7.detached` signature): each signature dictionary found, its CMS verified
//! by the CAdES path ([`super::seal`]) over the bytes its `/ByteRange` names.
//!
//! ```text
//!   PDF bytes ─> every "/ByteRange [a b c d]" (signature dictionaries are never
//!                compressed: the range is patched in after writing)
//!     for each: a = 0, a+b < c, c+d <= len; the gap [b, c) is "<hex>"  -> /Contents
//!               the DER in the hex (zero padding after it dropped)     -> CMS
//!               /M "D:YYYYMMDDHHmmSS+hh'mm'" in the same dictionary    -> claimed time
//!               seal::verify_cms(CMS, bytes[a..a+b] ‖ bytes[c..c+d], /M)
//!   appended = len − (c+d) of the signature reaching furthest: bytes a later
//!              incremental update added after every seal
//! ```
//!
//! The PDF is not otherwise parsed: what a signature protects is exactly its byte
//! range, and the page a viewer shows is not judged here (a later revision is reported
//! as bytes after the seal, not interpreted).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hanko_pki::cert::Certificate;

use super::seal::{self, VerifiedSeal};
use crate::Error;

/// The most signatures looked at in one file.
const MAX_SIGNATURES: usize = 32;

/// One signature dictionary of a PDF, as found.
#[derive(Clone, Debug)]
pub struct PdfSignature {
    /// `/ByteRange [a b c d]`.
    pub byte_range: [usize; 4],
    /// The CMS in `/Contents`, without its zero padding.
    pub cms: Vec<u8>,
    /// `/M`, the claimed signing time, when present and readable.
    pub claimed_time: Option<SystemTime>,
}

impl PdfSignature {
    /// The bytes the signature covers: `[a, a+b)` then `[c, c+d)`.
    pub fn signed_bytes(&self, pdf: &[u8]) -> Vec<u8> {
        let [a, b, c, d] = self.byte_range;
        let mut out = Vec::with_capacity(b + d);
        out.extend_from_slice(&pdf[a..a + b]);
        out.extend_from_slice(&pdf[c..c + d]);
        out
    }

    /// The offset just after the last byte the signature covers.
    pub fn end(&self) -> usize {
        self.byte_range[2] + self.byte_range[3]
    }
}

/// What a verified PDF says.
#[derive(Clone, Debug)]
pub struct VerifiedPdf {
    /// Each signature, in file order, verified.
    pub seals: Vec<VerifiedSeal>,
    /// Bytes after the furthest signature's range: a later revision (0: none).
    pub appended: usize,
}

impl VerifiedPdf {
    /// The short human summary `hanko seal-verify FILE.pdf` prints: each seal's, then
    /// what was added after the last one.
    pub fn summary(&self) -> String {
        let mut s = format!("PDF: {} signature(s)\n", self.seals.len());
        for seal in &self.seals {
            s.push_str(&seal.summary());
        }
        if self.appended == 0 {
            s.push_str("  after     : nothing added after the last seal\n");
        } else {
            s.push_str(&format!(
                "  after     : {} bytes added after the last seal (a later revision)\n",
                self.appended
            ));
        }
        s
    }
}

/// Every signature dictionary of `pdf`, in file order. An error when a `/ByteRange`
/// is malformed or does not fit the file; an empty list when the PDF is not signed.
pub fn signatures(pdf: &[u8]) -> Result<Vec<PdfSignature>, Error> {
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(pos) = find(&pdf[at..], b"/ByteRange") {
        let start = at + pos + b"/ByteRange".len();
        at = start;
        if found.len() == MAX_SIGNATURES {
            return Err(Error::MalformedPdfSignature(format!(
                "more than {MAX_SIGNATURES} signatures"
            )));
        }
        let byte_range = parse_byte_range(&pdf[start..])?;
        let [a, b, c, d] = byte_range;
        let fits =
            a == 0 && b < c && c.checked_add(d).is_some_and(|end| end <= pdf.len()) && c - b >= 2;
        if !fits {
            return Err(Error::MalformedPdfSignature(format!(
                "/ByteRange [{a} {b} {c} {d}] does not fit a file of {} bytes",
                pdf.len()
            )));
        }
        let gap = &pdf[b..c];
        if gap.first() != Some(&b'<') || gap.last() != Some(&b'>') {
            return Err(Error::MalformedPdfSignature(
                "the /ByteRange gap is not the /Contents hex string".to_owned(),
            ));
        }
        let cms = der_of_hex(&gap[1..gap.len() - 1])?;
        let claimed_time = dictionary_around(pdf, b, c)
            .and_then(|dict| find(dict, b"/M").map(|p| &dict[p + 2..]))
            .and_then(parse_pdf_date);
        found.push(PdfSignature {
            byte_range,
            cms,
            claimed_time,
        });
    }
    Ok(found)
}

/// Verifies every signature of `pdf` (see the module docs): the first that fails is
/// the error; [`Error::PdfNotSigned`] when there is none.
pub fn verify_pdf(
    pdf: &[u8],
    roots: &[Certificate],
    tsa_roots: &[Certificate],
) -> Result<VerifiedPdf, Error> {
    let sigs = signatures(pdf)?;
    if sigs.is_empty() {
        return Err(Error::PdfNotSigned);
    }
    let mut seals = Vec::with_capacity(sigs.len());
    for sig in &sigs {
        let signed = sig.signed_bytes(pdf);
        seals.push(seal::verify_cms(
            &sig.cms,
            Some(&signed),
            roots,
            tsa_roots,
            Some(sig.claimed_time.unwrap_or_else(SystemTime::now)),
        )?);
    }
    let furthest = sigs.iter().map(PdfSignature::end).max().unwrap_or(0);
    Ok(VerifiedPdf {
        seals,
        appended: pdf.len().saturating_sub(furthest),
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `[a b c d]` after optional white space.
fn parse_byte_range(s: &[u8]) -> Result<[usize; 4], Error> {
    let bad = || Error::MalformedPdfSignature("/ByteRange is not [a b c d]".to_owned());
    let s = s.get(..s.len().min(128)).ok_or_else(bad)?;
    let open = s.iter().position(|&c| c == b'[').ok_or_else(bad)?;
    if !s[..open].iter().all(u8::is_ascii_whitespace) {
        return Err(bad());
    }
    let close = s.iter().position(|&c| c == b']').ok_or_else(bad)?;
    let inner = std::str::from_utf8(s.get(open + 1..close).ok_or_else(bad)?).map_err(|_| bad())?;
    let nums: Vec<usize> = inner
        .split_ascii_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    nums.try_into().map_err(|_| bad())
}

/// The hex of `/Contents` decoded, and cut after the DER element it holds (the rest
/// is the zero padding reserved for it).
fn der_of_hex(hex_text: &[u8]) -> Result<Vec<u8>, Error> {
    let clean: Vec<u8> = hex_text
        .iter()
        .copied()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let bytes = hex::decode(&clean)
        .map_err(|e| Error::MalformedPdfSignature(format!("/Contents is not hex: {e}")))?;
    let (_, _, rest) = hanko_pki::der::read_tlv(&bytes).ok_or_else(|| {
        Error::MalformedPdfSignature("/Contents does not hold a DER element".to_owned())
    })?;
    if rest.iter().any(|&b| b != 0) {
        return Err(Error::MalformedPdfSignature(
            "/Contents holds bytes after its CMS".to_owned(),
        ));
    }
    let len = bytes.len() - rest.len();
    Ok(bytes[..len].to_vec())
}

/// The dictionary `<< ... >>` around the gap `[b, c)`: from the last `<<` before it
/// to the first `>>` after it (signature dictionaries hold no nested dictionary
/// around /Contents in practice; /M is a plain string).
fn dictionary_around(pdf: &[u8], b: usize, c: usize) -> Option<&[u8]> {
    let before = &pdf[b.saturating_sub(4096)..b];
    let open = before.windows(2).rposition(|w| w == b"<<")?;
    let start = b.saturating_sub(4096) + open;
    let after = &pdf[c..pdf.len().min(c + 4096)];
    let close = find(after, b">>")?;
    Some(&pdf[start..c + close])
}

/// A PDF date string `(D:YYYYMMDDHHmmSS[Z|+hh'mm'|-hh'mm'])` (ISO 32000-1 §7.9.4)
/// at the start of `s` (after white space), as a time; `None` when unreadable.
fn parse_pdf_date(s: &[u8]) -> Option<SystemTime> {
    let s = std::str::from_utf8(&s[..s.len().min(40)]).ok()?;
    let s = s.trim_start().strip_prefix('(')?;
    let s = s.strip_prefix("D:").unwrap_or(s);
    let digits = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let year = digits(0..4)?;
    let month = digits(4..6).unwrap_or(1);
    let day = digits(6..8).unwrap_or(1);
    let hour = digits(8..10).unwrap_or(0);
    let minute = digits(10..12).unwrap_or(0);
    let second = digits(12..14).unwrap_or(0);
    let offset = match s.get(14..15) {
        Some(sign @ ("+" | "-")) => {
            let h = digits(15..17)?;
            let m = s
                .get(18..20)
                .and_then(|t| t.parse::<i64>().ok())
                .unwrap_or(0);
            let v = (h * 60 + m) * 60;
            if sign == "-" { -v } else { v }
        }
        _ => 0,
    };
    let local = chrono::NaiveDate::from_ymd_opt(
        i32::try_from(year).ok()?,
        u32::try_from(month).ok()?,
        u32::try_from(day).ok()?,
    )?
    .and_hms_opt(
        u32::try_from(hour).ok()?,
        u32::try_from(minute).ok()?,
        u32::try_from(second).ok()?,
    )?
    .and_utc()
    .timestamp();
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(local - offset).ok()?))
}

/// `t` as RFC 3339 UTC text, whole seconds (`2026-12-03T05:17:00Z`).
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    chrono::DateTime::from_timestamp(secs, 0).map_or_else(
        || format!("{secs} seconds after 1970"),
        |d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn pdf_dates_read_with_their_offset() {
        let t = parse_pdf_date(b"(D:20261203141500+09'00')").unwrap();
        assert_eq!(rfc3339(t), "2026-12-03T05:15:00Z");
        let z = parse_pdf_date(b" (D:20240229235959Z)").unwrap();
        assert_eq!(rfc3339(z), "2024-02-29T23:59:59Z");
        assert!(parse_pdf_date(b"(D:2026130112)").is_none());
        assert!(parse_pdf_date(b"garbage").is_none());
    }

    #[test]
    fn byte_ranges_must_be_four_numbers_in_brackets() {
        assert_eq!(parse_byte_range(b" [0 10 20 30]").unwrap(), [0, 10, 20, 30]);
        assert!(parse_byte_range(b" [0 10 20]").is_err());
        assert!(parse_byte_range(b"x [0 1 2 3]").is_err());
        assert!(parse_byte_range(b" [0 a 2 3]").is_err());
    }

    #[test]
    fn an_unsigned_pdf_has_no_signature_and_a_bad_range_is_an_error() {
        assert!(
            signatures(b"%PDF-1.7\n1 0 obj << >> endobj\n%%EOF")
                .unwrap()
                .is_empty()
        );
        assert!(matches!(
            verify_pdf(b"%PDF-1.7\n%%EOF", &[], &[]),
            Err(Error::PdfNotSigned)
        ));
        let bad = b"%PDF-1.7\n<< /ByteRange [0 10 5000 10] /Contents <00> >>";
        assert!(matches!(
            signatures(bad),
            Err(Error::MalformedPdfSignature(_))
        ));
    }
}
