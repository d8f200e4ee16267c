//! The one table of algorithms Hanko knows.
//!
//! Every algorithm's OID (from [`crate::oid`]), DigestInfo prefix and AlgorithmIdentifier
//! encoding is chosen here, so that the TSA, the seal signer, the HSM layer and the
//! verifiers can never disagree about them. Encodings are written out as DER bytes with
//! [`crate::der`] (not derived through an ASN.1 library) because they are part of what
//! gets signed: tests compare them against OpenSSL's output.
//!
//! [`prehashed`] holds the digest-signing side of the same table: which scheme and hash
//! a client's OIDs name when it sends a digest it computed itself (the CSC API).

use std::fmt;

use sha2::Digest;

pub mod prehashed;

pub use prehashed::{DigestSignAlgorithm, SignAlgoRejection};

use crate::der::{self, read_tlv, tag, tlv};
use crate::oid::{self, dotted};

/// A hash algorithm Hanko signs with or accepts in a message imprint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HashAlgorithm {
    /// SHA-256 (2.16.840.1.101.3.4.2.1)
    Sha256,
    /// SHA-384 (2.16.840.1.101.3.4.2.2)
    Sha384,
    /// SHA-512 (2.16.840.1.101.3.4.2.3)
    Sha512,
}

/// Why a hash OID is not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HashRejection {
    /// A known algorithm that is too weak to accept (MD5, SHA-1, ...): ETSI TS 119 312.
    #[error("hash algorithm {name} ({oid}) is too weak")]
    Weak {
        /// Common name of the algorithm.
        name: &'static str,
        /// The OID as received.
        oid: String,
    },
    /// An OID this table does not know.
    #[error("unknown hash algorithm {0}")]
    Unknown(String),
}

/// Weak hash algorithms, recognised only in order to refuse them by name.
const WEAK_HASHES: &[(&str, &str)] = &[
    (dotted::MD5, "MD5"),
    (dotted::MD2, "MD2"),
    (dotted::SHA1, "SHA-1"),
    (dotted::RIPEMD160, "RIPEMD-160"),
    (dotted::SHA224, "SHA-224"),
];

impl HashAlgorithm {
    /// All hash algorithms, strongest last.
    pub const ALL: [HashAlgorithm; 3] = [Self::Sha256, Self::Sha384, Self::Sha512];

    /// Dotted OID.
    pub const fn oid(self) -> &'static str {
        match self {
            Self::Sha256 => dotted::SHA256,
            Self::Sha384 => dotted::SHA384,
            Self::Sha512 => dotted::SHA512,
        }
    }

    /// Content octets of the OID (without tag and length).
    pub const fn oid_der_content(self) -> &'static [u8] {
        match self {
            Self::Sha256 => oid::SHA256.as_bytes(),
            Self::Sha384 => oid::SHA384.as_bytes(),
            Self::Sha512 => oid::SHA512.as_bytes(),
        }
    }

    /// Digest length in bytes.
    pub const fn output_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    /// Short lower-case name as used in configuration and on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }

    /// Parses a configuration name (`sha256`, `SHA-256`, ...).
    pub fn from_name(name: &str) -> Option<Self> {
        let n: String = name
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .collect::<String>()
            .to_ascii_lowercase();
        Self::ALL.into_iter().find(|h| h.name() == n)
    }

    /// Looks up a dotted OID; weak algorithms are named in the rejection.
    pub fn from_oid(oid: &str) -> Result<Self, HashRejection> {
        if let Some(h) = Self::ALL.into_iter().find(|h| h.oid() == oid) {
            return Ok(h);
        }
        if let Some((_, name)) = WEAK_HASHES.iter().find(|(o, _)| *o == oid) {
            return Err(HashRejection::Weak {
                name,
                oid: oid.to_owned(),
            });
        }
        Err(HashRejection::Unknown(oid.to_owned()))
    }

    /// Hashes `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Self::Sha384 => sha2::Sha384::digest(data).to_vec(),
            Self::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }

    /// Hashes the concatenation of `parts` without building it: a PDF's ByteRange
    /// (everything but `/Contents`) is hashed where it lies, not copied.
    pub fn digest_parts(self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<D: sha2::Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut d = D::new();
            for p in parts {
                d.update(p);
            }
            d.finalize().to_vec()
        }
        match self {
            Self::Sha256 => run::<sha2::Sha256>(parts),
            Self::Sha384 => run::<sha2::Sha384>(parts),
            Self::Sha512 => run::<sha2::Sha512>(parts),
        }
    }

    /// DER AlgorithmIdentifier with absent parameters, the form RFC 5754 asks for in
    /// CMS digestAlgorithms and ESS.
    pub fn algorithm_identifier_der(self) -> Vec<u8> {
        tlv(tag::SEQUENCE, &tlv(tag::OID, self.oid_der_content()))
    }

    /// DER AlgorithmIdentifier with NULL parameters (the form inside PSS parameters and
    /// DigestInfo, and the one OpenSSL writes into a TimeStampReq's messageImprint).
    pub fn algorithm_identifier_null_der(self) -> Vec<u8> {
        let mut body = tlv(tag::OID, self.oid_der_content());
        body.extend_from_slice(&der::NULL);
        tlv(tag::SEQUENCE, &body)
    }

    /// The DER DigestInfo prefix for RSA PKCS#1 v1.5 (RFC 8017 §9.2 note 1): prepend it to
    /// the digest to get the block `CKM_RSA_PKCS` signs.
    pub fn digest_info(self, digest: &[u8]) -> Vec<u8> {
        let mut body = self.algorithm_identifier_null_der();
        body.extend_from_slice(&tlv(tag::OCTET_STRING, digest));
        tlv(tag::SEQUENCE, &body)
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sha256 => "SHA-256",
            Self::Sha384 => "SHA-384",
            Self::Sha512 => "SHA-512",
        })
    }
}

/// The type of a key pair, as read from its SubjectPublicKeyInfo.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyType {
    /// RSA with the modulus size in bits.
    Rsa {
        /// Modulus length in bits.
        bits: usize,
    },
    /// ECDSA on NIST P-256 (secp256r1).
    EcP256,
    /// ECDSA on NIST P-384 (secp384r1).
    EcP384,
    /// Ed25519 (RFC 8410).
    Ed25519,
}

impl KeyType {
    /// The longest signature value this key makes, in bytes: the modulus length for
    /// RSA, a DER ECDSA-Sig-Value with both integers at their longest for ECDSA (what
    /// CMS carries), 64 for Ed25519. Space reserved from it always fits.
    pub fn max_signature_len(self) -> usize {
        // ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }: each integer at most
        // the field size plus a leading zero, with 2 bytes of tag and length.
        let ecdsa = |field: usize| 3 + 2 * (2 + field + 1);
        match self {
            Self::Rsa { bits } => bits.div_ceil(8),
            Self::EcP256 => ecdsa(32),
            Self::EcP384 => ecdsa(48),
            Self::Ed25519 => 64,
        }
    }

    /// The signature algorithm Hanko uses by default for this key type.
    pub fn default_signature_algorithm(self) -> SignatureAlgorithm {
        match self {
            Self::Rsa { .. } => SignatureAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha256),
            Self::EcP256 => SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256),
            Self::EcP384 => SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha384),
            Self::Ed25519 => SignatureAlgorithm::Ed25519,
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rsa { bits } => write!(f, "RSA-{bits}"),
            Self::EcP256 => f.write_str("ECDSA P-256"),
            Self::EcP384 => f.write_str("ECDSA P-384"),
            Self::Ed25519 => f.write_str("Ed25519"),
        }
    }
}

/// A signature algorithm: the scheme and, where it has one, its hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureAlgorithm {
    /// RSASSA-PKCS1-v1_5 (RFC 8017 §8.2).
    RsaPkcs1v15(HashAlgorithm),
    /// RSASSA-PSS with MGF1 over the same hash and a salt as long as the hash (RFC 4055).
    RsaPss(HashAlgorithm),
    /// ECDSA; the signature is a DER `ECDSA-Sig-Value` (RFC 5480 / RFC 5758).
    Ecdsa(HashAlgorithm),
    /// Ed25519 (RFC 8410); PureEdDSA, so the message is not pre-hashed.
    Ed25519,
}

/// Why an AlgorithmIdentifier could not be mapped to a [`SignatureAlgorithm`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unsupported signature algorithm: {0}")]
pub struct UnsupportedAlgorithm(pub String);

impl SignatureAlgorithm {
    /// The hash the signature is computed over. Ed25519 hashes internally with SHA-512;
    /// that is what CMS uses as its digest algorithm (RFC 8419).
    pub const fn hash(self) -> HashAlgorithm {
        match self {
            Self::RsaPkcs1v15(h) | Self::RsaPss(h) | Self::Ecdsa(h) => h,
            Self::Ed25519 => HashAlgorithm::Sha512,
        }
    }

    /// Dotted OID of the signature algorithm.
    pub const fn oid(self) -> &'static str {
        match self {
            Self::RsaPkcs1v15(HashAlgorithm::Sha256) => dotted::SHA256_WITH_RSA_ENCRYPTION,
            Self::RsaPkcs1v15(HashAlgorithm::Sha384) => dotted::SHA384_WITH_RSA_ENCRYPTION,
            Self::RsaPkcs1v15(HashAlgorithm::Sha512) => dotted::SHA512_WITH_RSA_ENCRYPTION,
            Self::RsaPss(_) => dotted::RSASSA_PSS,
            Self::Ecdsa(HashAlgorithm::Sha256) => dotted::ECDSA_WITH_SHA256,
            Self::Ecdsa(HashAlgorithm::Sha384) => dotted::ECDSA_WITH_SHA384,
            Self::Ecdsa(HashAlgorithm::Sha512) => dotted::ECDSA_WITH_SHA512,
            Self::Ed25519 => dotted::ED25519,
        }
    }

    const fn oid_der_content(self) -> &'static [u8] {
        match self {
            Self::RsaPkcs1v15(HashAlgorithm::Sha256) => oid::SHA256_WITH_RSA_ENCRYPTION.as_bytes(),
            Self::RsaPkcs1v15(HashAlgorithm::Sha384) => oid::SHA384_WITH_RSA_ENCRYPTION.as_bytes(),
            Self::RsaPkcs1v15(HashAlgorithm::Sha512) => oid::SHA512_WITH_RSA_ENCRYPTION.as_bytes(),
            Self::RsaPss(_) => oid::RSASSA_PSS.as_bytes(),
            Self::Ecdsa(HashAlgorithm::Sha256) => oid::ECDSA_WITH_SHA256.as_bytes(),
            Self::Ecdsa(HashAlgorithm::Sha384) => oid::ECDSA_WITH_SHA384.as_bytes(),
            Self::Ecdsa(HashAlgorithm::Sha512) => oid::ECDSA_WITH_SHA512.as_bytes(),
            Self::Ed25519 => oid::ED25519.as_bytes(),
        }
    }

    /// Whether this algorithm can be used with a key of type `key`.
    pub fn fits(self, key: KeyType) -> bool {
        matches!(
            (self, key),
            (Self::RsaPkcs1v15(_) | Self::RsaPss(_), KeyType::Rsa { .. })
                | (Self::Ecdsa(_), KeyType::EcP256 | KeyType::EcP384)
                | (Self::Ed25519, KeyType::Ed25519)
        )
    }

    /// The DER AlgorithmIdentifier for signatureAlgorithm fields: NULL parameters for
    /// PKCS#1 v1.5 (RFC 8017 A.2.4), absent for ECDSA and Ed25519 (RFC 5758, RFC 8410),
    /// explicit RSASSA-PSS-params for PSS (RFC 4055 §3.1, salt length = hash length).
    pub fn algorithm_identifier_der(self) -> Vec<u8> {
        let mut body = tlv(tag::OID, self.oid_der_content());
        match self {
            Self::RsaPkcs1v15(_) => body.extend_from_slice(&der::NULL),
            Self::RsaPss(h) => body.extend_from_slice(&pss_params_der(h)),
            Self::Ecdsa(_) | Self::Ed25519 => {}
        }
        tlv(tag::SEQUENCE, &body)
    }

    /// Maps a DER AlgorithmIdentifier back to the algorithm. PSS is accepted only in the
    /// one parameter set Hanko produces (MGF1 with the same hash, salt = hash length).
    pub fn from_algorithm_identifier_der(der: &[u8]) -> Result<Self, UnsupportedAlgorithm> {
        let unsupported = || UnsupportedAlgorithm(hex::encode(der));
        let (t, body, rest) = read_tlv(der).ok_or_else(unsupported)?;
        if t != tag::SEQUENCE || !rest.is_empty() {
            return Err(unsupported());
        }
        let (t, alg_oid, params) = read_tlv(body).ok_or_else(unsupported)?;
        if t != tag::OID {
            return Err(unsupported());
        }
        for h in HashAlgorithm::ALL {
            for alg in [Self::RsaPkcs1v15(h), Self::Ecdsa(h)] {
                if alg_oid == alg.oid_der_content() {
                    let ok = match alg {
                        Self::RsaPkcs1v15(_) => params.is_empty() || params == der::NULL,
                        _ => params.is_empty(),
                    };
                    return if ok { Ok(alg) } else { Err(unsupported()) };
                }
            }
            if alg_oid == oid::RSASSA_PSS.as_bytes() && params == pss_params_der(h).as_slice() {
                return Ok(Self::RsaPss(h));
            }
        }
        if alg_oid == oid::ED25519.as_bytes() && params.is_empty() {
            return Ok(Self::Ed25519);
        }
        Err(unsupported())
    }

    /// Parses a configuration name: `rsa-pkcs1-sha256`, `rsa-pss-sha384`,
    /// `ecdsa-sha256`, `ed25519`.
    pub fn from_name(name: &str) -> Option<Self> {
        let n = name.to_ascii_lowercase();
        if n == "ed25519" {
            return Some(Self::Ed25519);
        }
        let (scheme, hash) = n.rsplit_once('-')?;
        let h = HashAlgorithm::from_name(hash)?;
        match scheme {
            "rsa-pkcs1" | "rsa" => Some(Self::RsaPkcs1v15(h)),
            "rsa-pss" => Some(Self::RsaPss(h)),
            "ecdsa" => Some(Self::Ecdsa(h)),
            _ => None,
        }
    }

    /// The configuration name, the inverse of [`SignatureAlgorithm::from_name`].
    pub fn name(self) -> String {
        match self {
            Self::RsaPkcs1v15(h) => format!("rsa-pkcs1-{}", h.name()),
            Self::RsaPss(h) => format!("rsa-pss-{}", h.name()),
            Self::Ecdsa(h) => format!("ecdsa-{}", h.name()),
            Self::Ed25519 => "ed25519".to_owned(),
        }
    }
}

impl fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

fn pss_params_der(h: HashAlgorithm) -> Vec<u8> {
    let hash = h.algorithm_identifier_null_der();
    let mgf = der::sequence(&[&der::oid(&oid::MGF1), &hash]);
    let salt = tlv(tag::INTEGER, &[h.output_len() as u8]);
    // RSASSA-PSS-params: [0] hashAlgorithm, [1] maskGenAlgorithm, [2] saltLength.
    let mut body = tlv(0xa0, &hash);
    body.extend_from_slice(&tlv(0xa1, &mgf));
    body.extend_from_slice(&tlv(0xa2, &salt));
    tlv(tag::SEQUENCE, &body)
}

/// A DER SubjectPublicKeyInfo: `SEQUENCE { algorithm, BIT STRING { 0 unused bits, key } }`
/// (RFC 5280 §4.1.2.7), from a DER AlgorithmIdentifier and the key's encoding.
pub fn spki(algorithm_identifier: &[u8], key: &[u8]) -> Vec<u8> {
    let mut bits = Vec::with_capacity(key.len() + 1);
    bits.push(0);
    bits.extend_from_slice(key);
    der::sequence(&[algorithm_identifier, &tlv(tag::BIT_STRING, &bits)])
}

/// The AlgorithmIdentifier of an Ed25519 key: the OID, parameters absent (RFC 8410 §3).
fn ed25519_algorithm_identifier() -> Vec<u8> {
    der::sequence(&[&der::oid(&oid::ED25519)])
}

/// The SubjectPublicKeyInfo of a 32-byte Ed25519 public key (RFC 8410 §4).
pub fn ed25519_spki(public_key: &[u8]) -> Vec<u8> {
    spki(&ed25519_algorithm_identifier(), public_key)
}

/// The 32-byte public key of an RFC 8410 Ed25519 SubjectPublicKeyInfo, `None` for any
/// other SPKI.
pub fn ed25519_public_key(spki_der: &[u8]) -> Option<&[u8; 32]> {
    let (t, body, rest) = read_tlv(spki_der)?;
    let (t_alg, alg, after) = read_tlv(body)?;
    let (t_bits, bits, end) = read_tlv(after)?;
    let ok = t == tag::SEQUENCE
        && rest.is_empty()
        && t_alg == tag::SEQUENCE
        && tlv(tag::SEQUENCE, alg) == ed25519_algorithm_identifier()
        && t_bits == tag::BIT_STRING
        && end.is_empty();
    if !ok {
        return None;
    }
    bits.strip_prefix(&[0])?.try_into().ok()
}

/// Reads the key type from a DER SubjectPublicKeyInfo.
pub fn key_type_of_spki(spki: &[u8]) -> Option<KeyType> {
    let (t, body, rest) = read_tlv(spki)?;
    if t != tag::SEQUENCE || !rest.is_empty() {
        return None;
    }
    let (t, alg, bits) = read_tlv(body)?;
    if t != tag::SEQUENCE {
        return None;
    }
    let (t, key_oid, params) = read_tlv(alg)?;
    if t != tag::OID {
        return None;
    }
    if key_oid == oid::RSA_ENCRYPTION.as_bytes() {
        // BIT STRING { 00 | RSAPublicKey SEQUENCE { modulus INTEGER, exponent INTEGER } }
        let (_, bitstring, _) = read_tlv(bits)?;
        let (_, rsa_key, _) = read_tlv(bitstring.get(1..)?)?;
        let (_, modulus, _) = read_tlv(rsa_key)?;
        let significant = match modulus.iter().position(|b| *b != 0) {
            Some(i) => &modulus[i..],
            None => return None,
        };
        let bits = significant.len() * 8 - significant[0].leading_zeros() as usize;
        return Some(KeyType::Rsa { bits });
    }
    if key_oid == oid::EC_PUBLIC_KEY.as_bytes() {
        let (_, curve, _) = read_tlv(params)?;
        return match curve {
            c if c == oid::SECP256R1.as_bytes() => Some(KeyType::EcP256),
            c if c == oid::SECP384R1.as_bytes() => Some(KeyType::EcP384),
            _ => None,
        };
    }
    if key_oid == oid::ED25519.as_bytes() {
        return Some(KeyType::Ed25519);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_parts_is_the_digest_of_the_concatenation() {
        for h in HashAlgorithm::ALL {
            assert_eq!(
                h.digest_parts(&[b"%PDF-1.7 ", b"", b"<< /ByteRange >>"]),
                h.digest(b"%PDF-1.7 << /ByteRange >>")
            );
        }
    }

    #[test]
    fn pss_sha512_matches_openssl_encoding() {
        // Taken from `openssl req -x509 -sigopt rsa_padding_mode:pss -sigopt
        // rsa_pss_saltlen:digest -sha512` (OpenSSL 3.0.19).
        let openssl = "304106092a864886f70d01010a3034a00f300d06096086480165030402030500a11c301a06092a864886f70d010108300d06096086480165030402030500a203020140";
        let ours = SignatureAlgorithm::RsaPss(HashAlgorithm::Sha512).algorithm_identifier_der();
        assert_eq!(hex::encode(&ours), openssl);
        assert_eq!(
            SignatureAlgorithm::from_algorithm_identifier_der(&ours),
            Ok(SignatureAlgorithm::RsaPss(HashAlgorithm::Sha512))
        );
    }

    #[test]
    fn every_algorithm_round_trips_through_its_identifier_and_name() {
        let mut all = vec![SignatureAlgorithm::Ed25519];
        for h in HashAlgorithm::ALL {
            all.extend([
                SignatureAlgorithm::RsaPkcs1v15(h),
                SignatureAlgorithm::RsaPss(h),
                SignatureAlgorithm::Ecdsa(h),
            ]);
        }
        for alg in all {
            let der = alg.algorithm_identifier_der();
            assert_eq!(
                SignatureAlgorithm::from_algorithm_identifier_der(&der),
                Ok(alg)
            );
            assert_eq!(SignatureAlgorithm::from_name(&alg.name()), Some(alg));
        }
    }

    #[test]
    fn digest_info_prefix_is_rfc8017() {
        let di = HashAlgorithm::Sha256.digest_info(&[0u8; 32]);
        assert_eq!(
            hex::encode(&di[..19]),
            "3031300d060960864801650304020105000420"
        );
        let di = HashAlgorithm::Sha512.digest_info(&[0u8; 64]);
        assert_eq!(
            hex::encode(&di[..19]),
            "3051300d060960864801650304020305000440"
        );
    }

    #[test]
    fn weak_hashes_are_named() {
        assert_eq!(
            HashAlgorithm::from_oid("1.3.14.3.2.26"),
            Err(HashRejection::Weak {
                name: "SHA-1",
                oid: "1.3.14.3.2.26".into()
            })
        );
        assert!(matches!(
            HashAlgorithm::from_oid("1.2.3.4"),
            Err(HashRejection::Unknown(_))
        ));
        assert_eq!(
            HashAlgorithm::from_oid("2.16.840.1.101.3.4.2.2"),
            Ok(HashAlgorithm::Sha384)
        );
    }
}
