//! RFC 3161 vocabulary that the issuer (`hanko-tsa`) and the independent verifier
//! (`hanko-client`) both need, so that it is written once: the names of the
//! PKIFailureInfo bits.
//!
//! # What this module does not do
//! It does not decide which refusal gets which bit: that mapping is the TSA's
//! (`hanko_tsa::Rejection::failure_info`). It only names bits, for logs, metrics labels
//! and the client's description of a refusal.

/// The PKIFailureInfo bits RFC 3161 §2.4.2 defines, `(bit, name)` in bit order, named as
/// in the RFC's ASN.1.
pub const FAILURE_INFO_NAMES: [(usize, &str); 8] = [
    (0, "badAlg"),
    (2, "badRequest"),
    (5, "badDataFormat"),
    (14, "timeNotAvailable"),
    (15, "unacceptedPolicy"),
    (16, "unacceptedExtension"),
    (17, "addInfoNotAvailable"),
    (25, "systemFailure"),
];

/// The RFC 3161 name of PKIFailureInfo bit `bit`; `None` for a bit RFC 3161 does not
/// define (RFC 4210 defines more, which a TSA does not send).
pub const fn failure_info_name(bit: usize) -> Option<&'static str> {
    let mut i = 0;
    while i < FAILURE_INFO_NAMES.len() {
        let (b, name) = FAILURE_INFO_NAMES[i];
        if b == bit {
            return Some(name);
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_rfc_bits_in_order() {
        assert_eq!(failure_info_name(5), Some("badDataFormat"));
        assert_eq!(failure_info_name(25), Some("systemFailure"));
        assert_eq!(failure_info_name(1), None);
        assert_eq!(failure_info_name(26), None);
        let bits: Vec<usize> = FAILURE_INFO_NAMES.iter().map(|(b, _)| *b).collect();
        assert!(bits.windows(2).all(|w| w[0] < w[1]), "{bits:?}");
    }
}
