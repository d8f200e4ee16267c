//! A minimal DER TLV reader, so that verification can take bytes that were signed or
//! hashed (signed attributes, certificates, the sid) straight from the received
//! encoding instead of re-encoding a decoded structure.
//!
//! It reads single-byte tags and definite lengths only (all that RFC 3161 and CMS use
//! at the levels walked here) and refuses anything truncated. Decoding into types is
//! `rasn`'s job; this only finds the boundaries.

/// One DER TLV: its tag byte, content, and the whole encoding.
#[derive(Debug)]
pub(crate) struct Tlv<'a> {
    pub(crate) tag: u8,
    pub(crate) content: &'a [u8],
    pub(crate) full: &'a [u8],
}

/// Reads one DER TLV (single-byte tags, definite lengths) and returns it with the rest.
pub(crate) fn read(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), String> {
    let (&tag, rest) = input.split_first().ok_or("unexpected end of data")?;
    if tag & 0x1f == 0x1f {
        return Err("multi-byte tags are not expected here".into());
    }
    let (&first, rest) = rest.split_first().ok_or("unexpected end of data")?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return Err("bad length".into());
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err("truncated".into());
    }
    let header = input.len() - rest.len();
    Ok((
        Tlv {
            tag,
            content: &rest[..len],
            full: &input[..header + len],
        },
        &rest[len..],
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn der_reader_takes_tlvs_apart_and_refuses_truncation() {
        let (t, rest) = read(&[0x30, 0x03, 0x02, 0x01, 0x05, 0xff]).unwrap();
        assert_eq!(t.tag, 0x30);
        assert_eq!(t.content, &[0x02, 0x01, 0x05]);
        assert_eq!(t.full.len(), 5);
        assert_eq!(rest, &[0xff]);
        let mut long = vec![0x04, 0x81, 0x80];
        long.extend([0u8; 0x80]);
        assert_eq!(read(&long).unwrap().0.content.len(), 0x80);
        assert!(read(&[0x30, 0x05, 0x00]).is_err());
        assert!(read(&[0x30]).is_err());
        assert!(read(&[0x30, 0x85, 0, 0, 0, 0, 1]).is_err());
    }
}
