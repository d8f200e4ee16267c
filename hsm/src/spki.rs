//! SubjectPublicKeyInfo DER for the keys this crate generates, built from the public
//! key's PKCS#11 attributes (`CKA_MODULUS`/`CKA_PUBLIC_EXPONENT`, or
//! `CKA_EC_PARAMS`/`CKA_EC_POINT`).
//!
//! Written out with `hanko_pki::der` and the OIDs of `hanko_pki::oid` because it is three
//! fixed shapes; every output is checked in tests by OpenSSL (`openssl pkey -pubin`) and
//! by `hanko_pki::alg::key_type_of_spki`.
//! `CKA_EC_POINT` is, per PKCS#11, a DER OCTET STRING around the point (SoftHSM does
//! so); a bare point is accepted too, since some tokens return that.

use hanko_pki::alg;
use hanko_pki::der::{self, tag, tlv};
use hanko_pki::oid;

/// The curve as put into `CKA_EC_PARAMS`: the DER OBJECT IDENTIFIER of prime256v1.
pub(crate) fn ec_params_p256() -> Vec<u8> {
    der::oid(&oid::SECP256R1)
}

/// `CKA_EC_PARAMS` of secp384r1.
pub(crate) fn ec_params_p384() -> Vec<u8> {
    der::oid(&oid::SECP384R1)
}

/// id-Ed25519 as `CKA_EC_PARAMS` (the OID form, which SoftHSM 2.6 accepts).
pub(crate) fn ec_params_ed25519() -> Vec<u8> {
    der::oid(&oid::ED25519)
}

/// SPKI of an RSA key from its big-endian modulus and public exponent.
pub(crate) fn rsa(modulus: &[u8], exponent: &[u8]) -> Vec<u8> {
    let key = der::sequence(&[
        &der::unsigned_integer(modulus),
        &der::unsigned_integer(exponent),
    ]);
    let alg = der::sequence(&[&der::oid(&oid::RSA_ENCRYPTION), &der::NULL]);
    alg::spki(&alg, &key)
}

/// SPKI of an EC or Ed25519 key from `CKA_EC_PARAMS` and `CKA_EC_POINT`. `None` if the
/// curve is not one Hanko signs with or the point has the wrong length.
pub(crate) fn ec(params: &[u8], ec_point: &[u8]) -> Option<Vec<u8>> {
    let (alg, point_len) = if params == ec_params_p256() {
        (ec_alg(params), 65)
    } else if params == ec_params_p384() {
        (ec_alg(params), 97)
    } else if params == ec_params_ed25519() || is_edwards25519_name(params) {
        (der::sequence(&[&der::oid(&oid::ED25519)]), 32)
    } else {
        return None;
    };
    let point = unwrap_point(ec_point, point_len)?;
    if point_len != 32 && point.first() != Some(&0x04) {
        return None; // only uncompressed points
    }
    Some(alg::spki(&alg, point))
}

fn is_edwards25519_name(params: &[u8]) -> bool {
    // PrintableString "edwards25519", the other form PKCS#11 3.0 allows.
    params.len() == 14 && params[0] == 0x13 && &params[2..] == b"edwards25519"
}

fn ec_alg(curve: &[u8]) -> Vec<u8> {
    der::sequence(&[&der::oid(&oid::EC_PUBLIC_KEY), curve])
}

/// The point inside `CKA_EC_POINT`: bare, or in a DER OCTET STRING of the right length.
fn unwrap_point(ec_point: &[u8], point_len: usize) -> Option<&[u8]> {
    if ec_point.len() == point_len && (point_len == 32 || ec_point[0] == 0x04) {
        // A bare point. (A DER OCTET STRING around it is always longer.)
        return Some(ec_point);
    }
    let (t, body, rest) = der::read_tlv(ec_point)?;
    (t == tag::OCTET_STRING && body.len() == point_len && rest.is_empty()).then_some(body)
}

/// DER `ECDSA-Sig-Value` from PKCS#11's raw `r || s`.
pub(crate) fn ecdsa_raw_to_der(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return None;
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let mut body = der::unsigned_integer(r);
    body.extend_from_slice(&der::unsigned_integer(s));
    Some(tlv(tag::SEQUENCE, &body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hanko_pki::KeyType;
    use hanko_pki::alg::key_type_of_spki;

    #[test]
    fn ec_params_are_the_bytes_pkcs11_tokens_take() {
        // DER OBJECT IDENTIFIERs as SoftHSM and `pkcs11-tool` write them.
        assert_eq!(
            ec_params_p256(),
            [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]
        );
        assert_eq!(ec_params_p384(), [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22]);
        assert_eq!(ec_params_ed25519(), [0x06, 0x03, 0x2b, 0x65, 0x70]);
    }

    #[test]
    fn ec_point_wrapped_or_bare() {
        let mut point = vec![0x04u8];
        point.extend_from_slice(&[7u8; 64]);
        let wrapped = tlv(0x04, &point);
        let a = ec(&ec_params_p256(), &wrapped);
        let b = ec(&ec_params_p256(), &point);
        assert!(a.is_some());
        assert_eq!(a, b);
        assert_eq!(
            key_type_of_spki(a.as_deref().unwrap_or_default()),
            Some(KeyType::EcP256)
        );
        assert_eq!(ec(&ec_params_p384(), &wrapped), None);
    }

    #[test]
    fn ecdsa_der() {
        let mut raw = vec![0x80u8; 32];
        raw.extend_from_slice(&[0x00, 0x01]);
        raw.extend_from_slice(&[0u8; 30]);
        let der = ecdsa_raw_to_der(&raw).unwrap_or_default();
        assert_eq!(&der[..5], &[0x30, 0x44, 0x02, 0x21, 0x00]);
        assert_eq!(&der[37..40], &[0x02, 0x1f, 0x01]);
        assert_eq!(&der[der.len() - 30..], &[0u8; 30][..]);
        assert_eq!(ecdsa_raw_to_der(&[1, 2, 3]), None);
    }
}
