//! Where the fields of a certificate are inside its original DER.
//!
//! `x509-cert` parses the certificate, but what goes on the wire or into a hash must be
//! the bytes as received (see the [parent module](super)). So the DER is walked once more
//! with [`crate::der::Cursor`], which keeps absolute offsets, and the ranges of the
//! fields Hanko copies are remembered. A certificate whose outline does not match
//! (trailing bytes, a missing field) is refused as malformed.

use std::ops::Range;

use crate::der::{Cursor, tag};

/// Byte ranges of the fields Hanko copies, inside the certificate's original DER.
#[derive(Clone, Debug)]
pub(crate) struct Ranges {
    pub(crate) tbs: Range<usize>,
    /// The serialNumber INTEGER, tag and length included.
    pub(crate) serial: Range<usize>,
    /// Its content octets.
    pub(crate) serial_content: Range<usize>,
    pub(crate) issuer: Range<usize>,
    pub(crate) subject: Range<usize>,
    pub(crate) spki: Range<usize>,
    pub(crate) signature_algorithm: Range<usize>,
    pub(crate) signature_bits: Range<usize>,
}

/// The ranges of the fields of the certificate `der`, `None` if its outline is not
/// Certificate { TBSCertificate { [0] version?, serial, signature, issuer, validity,
/// subject, subjectPublicKeyInfo, ... }, signatureAlgorithm, signatureValue }.
pub(crate) fn locate(der: &[u8]) -> Option<Ranges> {
    let mut top = Cursor::new(der, 0..der.len());
    let cert = top.next_tagged(tag::SEQUENCE)?;
    if cert.whole.end != der.len() {
        return None;
    }
    let mut c = Cursor::new(der, cert.content);
    let tbs = c.next_tagged(tag::SEQUENCE)?;
    let signature_algorithm = c.next_tagged(tag::SEQUENCE)?.whole;
    let sig = c.next_tagged(tag::BIT_STRING)?;
    // The first content octet counts the unused bits: a signature is whole octets.
    if der.get(sig.content.start) != Some(&0) {
        return None;
    }
    let signature_bits = (sig.content.start + 1)..sig.content.end;
    let mut t = Cursor::new(der, tbs.content.clone());
    let mut field = t.next_tlv()?;
    if field.tag == 0xa0 {
        field = t.next_tlv()?;
    }
    if field.tag != tag::INTEGER {
        return None;
    }
    let (serial, serial_content) = (field.whole, field.content);
    let _signature = t.next_tagged(tag::SEQUENCE)?;
    let issuer = t.next_tagged(tag::SEQUENCE)?.whole;
    let _validity = t.next_tagged(tag::SEQUENCE)?;
    let subject = t.next_tagged(tag::SEQUENCE)?.whole;
    let spki = t.next_tagged(tag::SEQUENCE)?.whole;
    Some(Ranges {
        tbs: tbs.whole,
        serial,
        serial_content,
        issuer,
        subject,
        spki,
        signature_algorithm,
        signature_bits,
    })
}
