//! The tool's own DER reader and writer (X.690 §10), kept apart from Hanko's codecs so a
//! defect there cannot hide a defect here.
//!
//! The reader is strict: definite lengths in their shortest form, single-octet tags (all
//! the structures audited use tag numbers below 31). Every node keeps its raw bytes, so
//! the checks can hash, compare and re-sort encodings exactly as they were received.
//!
//! The writer builds the requests the `tsa` subcommand sends, well formed or broken on
//! purpose, and the artefacts of the tests' broken corpus.

use std::fmt;

/// Universal tags used by the checks.
pub mod tag {
    pub const BOOLEAN: u8 = 0x01;
    pub const INTEGER: u8 = 0x02;
    pub const BIT_STRING: u8 = 0x03;
    pub const OCTET_STRING: u8 = 0x04;
    pub const NULL: u8 = 0x05;
    pub const OID: u8 = 0x06;
    pub const UTF8_STRING: u8 = 0x0c;
    pub const PRINTABLE_STRING: u8 = 0x13;
    pub const IA5_STRING: u8 = 0x16;
    pub const UTC_TIME: u8 = 0x17;
    pub const GENERALIZED_TIME: u8 = 0x18;
    pub const SEQUENCE: u8 = 0x30;
    pub const SET: u8 = 0x31;
}

/// Why bytes are not the DER expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DerError {
    /// The input ends inside a tag, length or value.
    Truncated,
    /// Indefinite length (BER only).
    Indefinite,
    /// A length in long form where the short one fits, or with a leading zero octet.
    NonMinimalLength,
    /// A tag number of 31 or more.
    HighTag,
    /// Bytes after the outermost value.
    Trailing(usize),
    /// A value of the wrong kind where a structure element was expected.
    Unexpected(String),
}

impl fmt::Display for DerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("truncated DER"),
            Self::Indefinite => f.write_str("indefinite length (BER, not DER)"),
            Self::NonMinimalLength => f.write_str("length not in its shortest form (not DER)"),
            Self::HighTag => f.write_str("tag number of 31 or more"),
            Self::Trailing(n) => write!(f, "{n} bytes after the value"),
            Self::Unexpected(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for DerError {}

/// One TLV: its tag octet, its whole encoding and its contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The identifier octet.
    pub tag: u8,
    /// Tag, length and value as received.
    pub raw: &'a [u8],
    /// The contents octets.
    pub value: &'a [u8],
}

/// Reads one TLV from the start of `input`; returns it and the bytes after it.
pub fn read(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), DerError> {
    let (&tag, rest) = input.split_first().ok_or(DerError::Truncated)?;
    if tag & 0x1f == 0x1f {
        return Err(DerError::HighTag);
    }
    let (&first, mut rest) = rest.split_first().ok_or(DerError::Truncated)?;
    let len = if first < 0x80 {
        usize::from(first)
    } else if first == 0x80 {
        return Err(DerError::Indefinite);
    } else {
        let n = usize::from(first & 0x7f);
        if n > 4 || rest.len() < n {
            return Err(DerError::Truncated);
        }
        let (octets, after) = rest.split_at(n);
        if octets[0] == 0 {
            return Err(DerError::NonMinimalLength);
        }
        let len = octets
            .iter()
            .fold(0usize, |a, &b| (a << 8) | usize::from(b));
        if len < 0x80 {
            return Err(DerError::NonMinimalLength);
        }
        rest = after;
        len
    };
    if rest.len() < len {
        return Err(DerError::Truncated);
    }
    let header = input.len() - rest.len();
    let raw = &input[..header + len];
    Ok((
        Tlv {
            tag,
            raw,
            value: &rest[..len],
        },
        &rest[len..],
    ))
}

/// Reads exactly one TLV: trailing bytes are an error.
pub fn read_exact(input: &[u8]) -> Result<Tlv<'_>, DerError> {
    let (tlv, rest) = read(input)?;
    if rest.is_empty() {
        Ok(tlv)
    } else {
        Err(DerError::Trailing(rest.len()))
    }
}

impl<'a> Tlv<'a> {
    /// The TLVs inside a constructed value, in order.
    pub fn children(&self) -> Result<Vec<Tlv<'a>>, DerError> {
        let mut out = Vec::new();
        let mut rest = self.value;
        while !rest.is_empty() {
            let (tlv, after) = read(rest)?;
            out.push(tlv);
            rest = after;
        }
        Ok(out)
    }

    /// This value, which must carry `tag`.
    pub fn expect(self, tag: u8, what: &str) -> Result<Self, DerError> {
        if self.tag == tag {
            Ok(self)
        } else {
            Err(DerError::Unexpected(format!(
                "{what}: tag 0x{:02x} where 0x{tag:02x} was expected",
                self.tag
            )))
        }
    }

    /// An OBJECT IDENTIFIER in dotted form.
    pub fn oid(&self) -> Result<String, DerError> {
        if self.tag != tag::OID {
            return Err(DerError::Unexpected(format!(
                "tag 0x{:02x} where an OBJECT IDENTIFIER was expected",
                self.tag
            )));
        }
        oid_to_string(self.value)
    }

    /// An INTEGER's contents, checked for the minimal two's-complement form.
    pub fn integer(&self) -> Result<&'a [u8], DerError> {
        if self.tag != tag::INTEGER {
            return Err(DerError::Unexpected(format!(
                "tag 0x{:02x} where an INTEGER was expected",
                self.tag
            )));
        }
        let v = self.value;
        match v {
            [] => Err(DerError::Unexpected("empty INTEGER".into())),
            [0x00, b, ..] if b & 0x80 == 0 => Err(DerError::Unexpected(
                "INTEGER with a redundant leading 00".into(),
            )),
            [0xff, b, ..] if b & 0x80 != 0 => Err(DerError::Unexpected(
                "INTEGER with a redundant leading ff".into(),
            )),
            _ => Ok(v),
        }
    }

    /// A small non-negative INTEGER (a version number).
    pub fn small_uint(&self) -> Result<u64, DerError> {
        let v = self.integer()?;
        if v[0] & 0x80 != 0 || v.len() > 8 {
            return Err(DerError::Unexpected("INTEGER out of range".into()));
        }
        Ok(v.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b)))
    }
}

/// The dotted form of an OBJECT IDENTIFIER's contents.
pub fn oid_to_string(value: &[u8]) -> Result<String, DerError> {
    if value.is_empty() || value.last().is_some_and(|b| b & 0x80 != 0) {
        return Err(DerError::Unexpected("malformed OBJECT IDENTIFIER".into()));
    }
    let mut arcs: Vec<u128> = Vec::new();
    let mut cur: u128 = 0;
    let mut first_octet = true;
    for &b in value {
        if first_octet && b == 0x80 {
            return Err(DerError::Unexpected(
                "OBJECT IDENTIFIER arc with a leading 80".into(),
            ));
        }
        first_octet = false;
        cur = cur
            .checked_mul(128)
            .and_then(|c| c.checked_add(u128::from(b & 0x7f)))
            .ok_or_else(|| DerError::Unexpected("OBJECT IDENTIFIER arc too large".into()))?;
        if b & 0x80 == 0 {
            arcs.push(cur);
            cur = 0;
            first_octet = true;
        }
    }
    let mut out = String::new();
    for (i, arc) in arcs.iter().enumerate() {
        if i == 0 {
            let (a, b) = match arc {
                0..40 => (0, *arc),
                40..80 => (1, arc - 40),
                _ => (2, arc - 80),
            };
            out.push_str(&format!("{a}.{b}"));
        } else {
            out.push_str(&format!(".{arc}"));
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Writer

/// Tag, length and `content`.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let octets: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0x80 | octets.len() as u8);
        out.extend_from_slice(&octets);
    }
    out.extend_from_slice(content);
    out
}

/// A constructed value of the concatenated `parts`.
pub fn cons(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    tlv(tag, &parts.concat())
}

/// A SEQUENCE of `parts`.
pub fn seq(parts: &[&[u8]]) -> Vec<u8> {
    cons(tag::SEQUENCE, parts)
}

/// A SET OF `elements`, sorted as DER requires (X.690 §11.6).
pub fn set_of(elements: &[&[u8]]) -> Vec<u8> {
    let mut sorted: Vec<&[u8]> = elements.to_vec();
    sorted.sort();
    cons(tag::SET, &sorted)
}

/// An OBJECT IDENTIFIER from its dotted form; `Err` says why it is not one.
pub fn parse_oid(dotted: &str) -> Result<Vec<u8>, String> {
    let arcs = dotted
        .split('.')
        .map(|a| {
            if a.is_empty() || !a.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("{dotted:?} is not a dotted OID"));
            }
            a.parse::<u128>()
                .map_err(|_| format!("{dotted:?}: an arc is too large"))
        })
        .collect::<Result<Vec<u128>, String>>()?;
    let [first, second, rest @ ..] = arcs.as_slice() else {
        return Err(format!("{dotted:?} has fewer than two arcs"));
    };
    if *first > 2 || (*first < 2 && *second >= 40) {
        return Err(format!("{dotted:?}: first arcs out of range"));
    }
    let mut content = Vec::new();
    let mut push = |mut v: u128| {
        let mut bytes = vec![(v & 0x7f) as u8];
        v >>= 7;
        while v > 0 {
            bytes.push(0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
        bytes.reverse();
        content.extend_from_slice(&bytes);
    };
    push(first * 40 + second);
    for &a in rest {
        push(a);
    }
    Ok(tlv(tag::OID, &content))
}

/// An OBJECT IDENTIFIER from its dotted form, for the tool's own constants and for OIDs
/// already checked with [`parse_oid`].
///
/// # Panics
/// On a malformed dotted string.
#[allow(clippy::expect_used, reason = "constants and checked input only")]
pub fn oid(dotted: &str) -> Vec<u8> {
    parse_oid(dotted).expect("a well-formed OID")
}

/// A non-negative INTEGER from big-endian magnitude bytes.
pub fn uint(magnitude: &[u8]) -> Vec<u8> {
    let trimmed: &[u8] = {
        let start = magnitude
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(magnitude.len());
        &magnitude[start..]
    };
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(trimmed);
    tlv(tag::INTEGER, &content)
}

/// A non-negative INTEGER.
pub fn uint_u64(v: u64) -> Vec<u8> {
    uint(&v.to_be_bytes())
}

/// An OCTET STRING.
pub fn octets(v: &[u8]) -> Vec<u8> {
    tlv(tag::OCTET_STRING, v)
}

/// An AlgorithmIdentifier with absent parameters.
pub fn alg_id(dotted: &str) -> Vec<u8> {
    seq(&[&oid(dotted)])
}

/// Whether the elements of a SET OF are in DER order: by their encodings, as octet
/// strings, shorter first where one is a prefix of the other (X.690 §11.6).
pub fn is_sorted_set(elements: &[Tlv<'_>]) -> bool {
    elements.windows(2).all(|w| w[0].raw <= w[1].raw)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn reads_what_it_writes_and_refuses_ber() {
        let v = seq(&[
            &uint_u64(300),
            &oid("1.2.840.113549.1.9.16.1.4"),
            &octets(&[0; 200]),
        ]);
        let t = read_exact(&v).unwrap();
        let c = t.children().unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].small_uint().unwrap(), 300);
        assert_eq!(c[1].oid().unwrap(), "1.2.840.113549.1.9.16.1.4");
        assert_eq!(c[2].value.len(), 200);
        assert_eq!(read_exact(&[0x30, 0x80, 0, 0]), Err(DerError::Indefinite));
        assert_eq!(
            read_exact(&[0x04, 0x81, 0x01, 0]),
            Err(DerError::NonMinimalLength)
        );
        assert_eq!(read_exact(&[0x04, 0x01, 0, 0]), Err(DerError::Trailing(1)));
        assert_eq!(read_exact(&[0x04, 0x02, 0]), Err(DerError::Truncated));
        let padded = read_exact(&[0x02, 0x02, 0x00, 0x01]).unwrap();
        assert!(padded.integer().is_err());
        let negative_ok = read_exact(&[0x02, 0x02, 0x00, 0x80]).unwrap();
        assert_eq!(negative_ok.integer().unwrap(), &[0x00, 0x80]);
    }

    #[test]
    fn oids_round_trip_and_sets_sort() {
        for o in [
            "2.5.4.3",
            "1.3.6.1.5.5.7.3.8",
            "2.16.840.1.101.3.4.2.1",
            "0.4.0.2023.1.1",
        ] {
            let enc = oid(o);
            assert_eq!(read_exact(&enc).unwrap().oid().unwrap(), o);
        }
        let a = octets(&[2]);
        let b = octets(&[1, 1]);
        let s = set_of(&[&b, &a]);
        let kids = read_exact(&s).unwrap().children().unwrap();
        assert!(is_sorted_set(&kids));
        assert_eq!(kids[0].raw, a.as_slice());
        let unsorted = cons(tag::SET, &[&b, &a]);
        assert!(!is_sorted_set(
            &read_exact(&unsorted).unwrap().children().unwrap()
        ));
    }
}
