//! The one hand-written DER encoder and reader in the workspace.
//!
//! Most structures are encoded by `der`/`x509-cert` or rasn. A few are written out by
//! hand because they are fixed shapes that are signed or hashed and must come out
//! byte-exact (AlgorithmIdentifiers, DigestInfo, ESSCertIDv2 around copied certificate
//! bytes, SPKIs built from PKCS#11 attributes, ECDSA-Sig-Value, fixed TSP responses).
//! They all go through [`tlv`], which writes definite, minimal lengths (X.690 §10.1), and
//! read through [`read_tlv`] / [`Cursor`].
//!
//! # What this module does not do
//! Only single-byte tags (tag numbers up to 30), which is every tag Hanko writes. It does
//! not check that contents are valid for their tag: callers build or slice known shapes.

use std::ops::Range;

use const_oid::ObjectIdentifier;

/// Universal and context tags used by the hand-written encoders.
pub mod tag {
    /// INTEGER.
    pub const INTEGER: u8 = 0x02;
    /// BIT STRING.
    pub const BIT_STRING: u8 = 0x03;
    /// OCTET STRING.
    pub const OCTET_STRING: u8 = 0x04;
    /// NULL.
    pub const NULL: u8 = 0x05;
    /// OBJECT IDENTIFIER.
    pub const OID: u8 = 0x06;
    /// UTF8String.
    pub const UTF8_STRING: u8 = 0x0c;
    /// UTCTime.
    pub const UTC_TIME: u8 = 0x17;
    /// GeneralizedTime.
    pub const GENERALIZED_TIME: u8 = 0x18;
    /// SEQUENCE (constructed).
    pub const SEQUENCE: u8 = 0x30;
    /// SET (constructed).
    pub const SET: u8 = 0x31;
}

/// DER NULL: the parameters of rsaEncryption and of the PKCS#1 v1.5 signature algorithms.
pub const NULL: [u8; 2] = [tag::NULL, 0x00];

/// The DER length octets of `len`: short form below 128, else the minimal long form.
pub fn length(len: usize) -> Vec<u8> {
    if len < 0x80 {
        return vec![len as u8];
    }
    let bytes = len.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    let mut out = Vec::with_capacity(1 + bytes.len() - skip);
    out.push(0x80 | (bytes.len() - skip) as u8);
    out.extend_from_slice(&bytes[skip..]);
    out
}

/// Encodes one DER TLV (single-byte tag) with a definite, minimal length.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = length(content.len());
    let mut out = Vec::with_capacity(1 + len.len() + content.len());
    out.push(tag);
    out.extend_from_slice(&len);
    out.extend_from_slice(content);
    out
}

/// A DER OBJECT IDENTIFIER TLV.
pub fn oid(oid: &ObjectIdentifier) -> Vec<u8> {
    tlv(tag::OID, oid.as_bytes())
}

/// A DER SEQUENCE of the concatenated `parts`.
pub fn sequence(parts: &[&[u8]]) -> Vec<u8> {
    tlv(tag::SEQUENCE, &parts.concat())
}

/// DER INTEGER of a non-negative big-endian number: leading zeros dropped, one zero
/// octet added when the high bit is set (X.690 §8.3).
pub fn unsigned_integer(v: &[u8]) -> Vec<u8> {
    let start = v.iter().position(|b| *b != 0).unwrap_or(v.len());
    let mut content = Vec::with_capacity(v.len() - start + 1);
    if v.get(start).is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(&v[start..]);
    tlv(tag::INTEGER, &content)
}

/// Reads one DER TLV with a single-byte tag: `(tag, content, rest)`. Lengths of up to
/// four octets; `None` when the input is shorter than the length says, and for a
/// high-tag-number form (low five bits all set), which this reader cannot walk.
pub fn read_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// One TLV found by a [`Cursor`]: its tag, and where the whole TLV and its content are
/// in the buffer the cursor walks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tlv {
    /// The tag octet.
    pub tag: u8,
    /// Tag, length and content.
    pub whole: Range<usize>,
    /// The content only.
    pub content: Range<usize>,
}

/// Walks the TLVs of a range of a buffer, remembering absolute offsets, so that callers
/// can slice fields out of the ORIGINAL bytes instead of re-encoding them.
#[derive(Debug)]
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor over `buf[range]`.
    pub fn new(buf: &'a [u8], range: Range<usize>) -> Self {
        Cursor {
            buf,
            pos: range.start,
            end: range.end,
        }
    }

    /// The next element, or `None` at the end or on malformed input.
    pub fn next_tlv(&mut self) -> Option<Tlv> {
        let input = self.buf.get(self.pos..self.end)?;
        let (tag, content, rest) = read_tlv(input)?;
        let start = self.pos;
        let whole_len = input.len() - rest.len();
        let header_len = whole_len - content.len();
        self.pos += whole_len;
        Some(Tlv {
            tag,
            whole: start..start + whole_len,
            content: start + header_len..start + whole_len,
        })
    }

    /// Whether nothing is left to walk.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.end
    }

    /// The next element, if it has tag `tag`.
    pub fn next_tagged(&mut self, tag: u8) -> Option<Tlv> {
        let t = self.next_tlv()?;
        (t.tag == tag).then_some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lengths_are_minimal() {
        let v = tlv(0x04, &[0u8; 300]);
        assert_eq!(&v[..4], &[0x04, 0x82, 0x01, 0x2c]);
        let (tag, body, rest) = read_tlv(&v).expect("tlv");
        assert_eq!((tag, body.len(), rest.len()), (0x04, 300, 0));
        assert_eq!(length(127), [0x7f]);
        assert_eq!(length(128), [0x81, 0x80]);
        assert_eq!(length(65_536), [0x83, 0x01, 0x00, 0x00]);
    }

    #[test]
    fn integers_are_minimal_and_positive() {
        assert_eq!(unsigned_integer(&[0, 0, 0x7f]), vec![0x02, 0x01, 0x7f]);
        assert_eq!(unsigned_integer(&[0x80]), vec![0x02, 0x02, 0x00, 0x80]);
        assert_eq!(unsigned_integer(&[0, 0]), vec![0x02, 0x01, 0x00]);
        assert_eq!(
            unsigned_integer(&[0x01, 0x00, 0x01]),
            vec![0x02, 0x03, 1, 0, 1]
        );
    }

    #[test]
    fn truncated_input_is_refused() {
        assert_eq!(read_tlv(&[0x30, 0x03, 0x01]), None);
        assert_eq!(read_tlv(&[0x30, 0x80]), None);
        assert_eq!(read_tlv(&[0x30, 0x85, 1, 1, 1, 1, 1]), None);
        // High tag numbers are refused, not misread as a one-octet tag.
        assert_eq!(read_tlv(&[0x9f, 0x01, 0x00]), None);
    }

    #[test]
    fn cursor_reports_absolute_ranges() {
        let inner = [tlv(0x02, &[5]), tlv(0x04, &[1, 2])].concat();
        let outer = tlv(0x30, &inner);
        let mut top = Cursor::new(&outer, 0..outer.len());
        let seq = top.next_tagged(0x30).expect("sequence");
        assert_eq!(seq.whole, 0..outer.len());
        let mut c = Cursor::new(&outer, seq.content);
        assert_eq!(c.next_tagged(0x02).map(|t| t.content), Some(4..5));
        assert!(!c.is_empty());
        assert_eq!(c.next_tagged(0x02), None); // an OCTET STRING, not an INTEGER
        assert!(c.is_empty());
    }
}
