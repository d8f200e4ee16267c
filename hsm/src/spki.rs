//! SubjectPublicKeyInfo DER for the keys this crate generates, built from the public
//! key's PKCS#11 attributes (`CKA_MODULUS`/`CKA_PUBLIC_EXPONENT`, or
//! `CKA_EC_PARAMS`/`CKA_EC_POINT`).
//!
//! Written out by hand because it is three fixed shapes; every output is checked in tests
//! by OpenSSL (`openssl pkey -pubin`) and by `hanko_pki::alg::key_type_of_spki`.
//! `CKA_EC_POINT` is, per PKCS#11, a DER OCTET STRING around the point (SoftHSM does
//! so); a bare point is accepted too, since some tokens return that.

/// rsaEncryption (1.2.840.113549.1.1.1).
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// id-ecPublicKey (1.2.840.10045.2.1).
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// id-Ed25519 (1.3.101.112).
pub(crate) const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
/// DER of the curve OID, as put into `CKA_EC_PARAMS`: prime256v1.
pub(crate) const EC_PARAMS_P256: &[u8] =
    &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// secp384r1.
pub(crate) const EC_PARAMS_P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
/// id-Ed25519 as `CKA_EC_PARAMS` (the OID form, which SoftHSM 2.6 accepts).
pub(crate) const EC_PARAMS_ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

/// SPKI of an RSA key from its big-endian modulus and public exponent.
pub(crate) fn rsa(modulus: &[u8], exponent: &[u8]) -> Vec<u8> {
    let mut key = der_uint(modulus);
    key.extend_from_slice(&der_uint(exponent));
    let key = tlv(0x30, &key);
    let mut alg = tlv(0x06, OID_RSA);
    alg.extend_from_slice(&[0x05, 0x00]);
    assemble(&tlv(0x30, &alg), &key)
}

/// SPKI of an EC or Ed25519 key from `CKA_EC_PARAMS` and `CKA_EC_POINT`. `None` if the
/// curve is not one Hanko signs with or the point has the wrong length.
pub(crate) fn ec(params: &[u8], ec_point: &[u8]) -> Option<Vec<u8>> {
    let (alg, point_len) = if params == EC_PARAMS_P256 {
        (ec_alg(params), 65)
    } else if params == EC_PARAMS_P384 {
        (ec_alg(params), 97)
    } else if params == EC_PARAMS_ED25519 || is_edwards25519_name(params) {
        (tlv(0x30, &tlv(0x06, OID_ED25519)), 32)
    } else {
        return None;
    };
    let point = unwrap_point(ec_point, point_len)?;
    if point_len != 32 && point.first() != Some(&0x04) {
        return None; // only uncompressed points
    }
    Some(assemble(&alg, point))
}

fn is_edwards25519_name(params: &[u8]) -> bool {
    // PrintableString "edwards25519", the other form PKCS#11 3.0 allows.
    params.len() == 14 && params[0] == 0x13 && &params[2..] == b"edwards25519"
}

fn ec_alg(curve: &[u8]) -> Vec<u8> {
    let mut alg = tlv(0x06, OID_EC);
    alg.extend_from_slice(curve);
    tlv(0x30, &alg)
}

fn unwrap_point(ec_point: &[u8], point_len: usize) -> Option<&[u8]> {
    if ec_point.len() == point_len && (point_len == 32 || ec_point[0] == 0x04) {
        // A bare point. (A DER OCTET STRING around it is always longer.)
        return Some(ec_point);
    }
    let (&tag, rest) = ec_point.split_first()?;
    let (&len, body) = rest.split_first()?;
    let (len, body) = match len {
        l if l < 0x80 => (l as usize, body),
        0x81 => {
            let (&l, b) = body.split_first()?;
            (l as usize, b)
        }
        _ => return None,
    };
    (tag == 0x04 && len == point_len && body.len() == len).then_some(body)
}

fn assemble(alg: &[u8], key: &[u8]) -> Vec<u8> {
    let mut bits = vec![0u8];
    bits.extend_from_slice(key);
    let mut body = alg.to_vec();
    body.extend_from_slice(&tlv(0x03, &bits));
    tlv(0x30, &body)
}

/// DER INTEGER of a non-negative big-endian number.
fn der_uint(v: &[u8]) -> Vec<u8> {
    let start = v.iter().position(|b| *b != 0).unwrap_or(v.len());
    let mut content = Vec::with_capacity(v.len() - start + 1);
    if v.get(start).is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(&v[start..]);
    tlv(0x02, &content)
}

pub(crate) use hanko_pki::alg::tlv;

/// DER `ECDSA-Sig-Value` from PKCS#11's raw `r || s`.
pub(crate) fn ecdsa_raw_to_der(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return None;
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let mut body = der_uint(r);
    body.extend_from_slice(&der_uint(s));
    Some(tlv(0x30, &body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hanko_pki::KeyType;
    use hanko_pki::alg::key_type_of_spki;

    #[test]
    fn integers_are_minimal_and_positive() {
        assert_eq!(der_uint(&[0, 0, 0x7f]), vec![0x02, 0x01, 0x7f]);
        assert_eq!(der_uint(&[0x80]), vec![0x02, 0x02, 0x00, 0x80]);
        assert_eq!(der_uint(&[0, 0]), vec![0x02, 0x01, 0x00]);
        assert_eq!(der_uint(&[0x01, 0x00, 0x01]), vec![0x02, 0x03, 1, 0, 1]);
    }

    #[test]
    fn ec_point_wrapped_or_bare() {
        let mut point = vec![0x04u8];
        point.extend_from_slice(&[7u8; 64]);
        let wrapped = tlv(0x04, &point);
        let a = ec(EC_PARAMS_P256, &wrapped);
        let b = ec(EC_PARAMS_P256, &point);
        assert!(a.is_some());
        assert_eq!(a, b);
        assert_eq!(
            key_type_of_spki(a.as_deref().unwrap_or_default()),
            Some(KeyType::EcP256)
        );
        assert_eq!(ec(EC_PARAMS_P384, &wrapped), None);
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
