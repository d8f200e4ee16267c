//! Signatures over a digest the caller computed: the scheme-and-hash vocabulary
//! ([`DigestSignAlgorithm`]) and the one table that maps the OIDs a client names (the
//! Cloud Signature Consortium API's `signAlgo`, `hashAlgo` and `signAlgoParams`) to it.
//!
//! A client of `signatures/signHash` hashes its document itself and sends only the
//! digest, so the algorithm cannot be "whatever the key is configured with": it is named
//! per request, by OID, in one of the spellings the CSC specification allows
//! (`sha256WithRSAEncryption`; or `rsaEncryption` plus a `hashAlgo`; or `id-RSASSA-PSS`
//! plus DER RSASSA-PSS-params; `ecdsa-with-SHA256`; or `id-ecPublicKey` plus a
//! `hashAlgo`). [`DigestSignAlgorithm::from_oids`] turns that raw triple into the checked
//! type once, at the edge, and refuses exactly: an OID not in the table, a `hashAlgo`
//! that contradicts the `signAlgo`, parameters where the algorithm takes none, or PSS
//! parameters other than the one set Hanko signs with (MGF1 over the same hash, salt as
//! long as the hash, trailer field 1).
//!
//! # What this module does not do
//! It does not decide which key may use which scheme beyond the key type
//! ([`DigestSignAlgorithm::fits`]), does not decode base64 or JSON (the API layer does),
//! and does not check a digest against a document: a digest of the right length is all a
//! signer can check.

use std::fmt;

use super::{HashAlgorithm, HashRejection, KeyType, SignatureAlgorithm, pss_params_der};
use crate::der::{self, read_tlv, tag};
use crate::oid::{self, dotted};

/// A signature scheme with its hash, for signing a digest the caller computed.
///
/// The same schemes as [`SignatureAlgorithm`] minus Ed25519, which (PureEdDSA) signs the
/// message itself and so cannot sign a digest.
///
/// Deliberately not `#[non_exhaustive]`: a new scheme must break every match on it (the
/// HSM's mechanism table, the software signer), so that each decides how to make it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DigestSignAlgorithm {
    /// RSASSA-PKCS1-v1_5 over the DER DigestInfo of the digest (RFC 8017 §8.2, §9.2).
    RsaPkcs1v15(HashAlgorithm),
    /// RSASSA-PSS with MGF1 over the same hash and a salt as long as the hash (RFC 4055).
    RsaPss(HashAlgorithm),
    /// ECDSA over the digest; the signature is a DER `ECDSA-Sig-Value`.
    Ecdsa(HashAlgorithm),
}

/// Why a `signAlgo` / `hashAlgo` / `signAlgoParams` triple was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignAlgoRejection {
    /// `signAlgo` is not an OID Hanko signs digests with.
    #[error("unknown or unsupported signature algorithm {0}")]
    UnknownSignAlgo(String),
    /// `hashAlgo` is unknown or too weak.
    #[error(transparent)]
    Hash(#[from] HashRejection),
    /// `signAlgo` names no hash (`rsaEncryption`, `id-ecPublicKey`) and no `hashAlgo`
    /// was given.
    #[error("signature algorithm {sign_algo} needs a hashAlgo")]
    HashAlgoMissing {
        /// The `signAlgo` as received.
        sign_algo: String,
    },
    /// `hashAlgo` names another hash than `signAlgo` (or its PSS parameters) does.
    #[error("hashAlgo {hash_algo} contradicts the signature algorithm's {implied}")]
    HashMismatch {
        /// The hash the signature algorithm names.
        implied: HashAlgorithm,
        /// The hash `hashAlgo` names.
        hash_algo: HashAlgorithm,
    },
    /// Parameters were given for an algorithm that takes none (only NULL is accepted for
    /// the RSA PKCS#1 v1.5 OIDs).
    #[error("signature algorithm {sign_algo} takes no parameters")]
    UnexpectedParams {
        /// The `signAlgo` as received.
        sign_algo: String,
    },
    /// `id-RSASSA-PSS` without parameters: the hash and salt are not determined.
    #[error("RSASSA-PSS needs signAlgoParams")]
    PssParamsMissing,
    /// RSASSA-PSS parameters that are not DER, or not the one set Hanko signs with
    /// (SHA-2 hash, MGF1 over the same hash, salt = hash length, trailer field 1).
    #[error("unsupported RSASSA-PSS parameters: {0}")]
    UnsupportedPssParams(String),
}

/// What a `signAlgo` OID says by itself.
#[derive(Clone, Copy, Debug)]
enum SignAlgoOid {
    /// rsaEncryption: PKCS#1 v1.5, hash from `hashAlgo`.
    RsaEncryption,
    /// shaXWithRSAEncryption.
    RsaPkcs1v15(HashAlgorithm),
    /// id-RSASSA-PSS: hash from the parameters.
    RsaPss,
    /// id-ecPublicKey: ECDSA, hash from `hashAlgo`.
    EcPublicKey,
    /// ecdsa-with-SHAX.
    Ecdsa(HashAlgorithm),
}

/// Every `signAlgo` Hanko accepts for a digest, once.
const SIGN_ALGOS: [(&str, SignAlgoOid); 9] = [
    (dotted::RSA_ENCRYPTION, SignAlgoOid::RsaEncryption),
    (
        dotted::SHA256_WITH_RSA_ENCRYPTION,
        SignAlgoOid::RsaPkcs1v15(HashAlgorithm::Sha256),
    ),
    (
        dotted::SHA384_WITH_RSA_ENCRYPTION,
        SignAlgoOid::RsaPkcs1v15(HashAlgorithm::Sha384),
    ),
    (
        dotted::SHA512_WITH_RSA_ENCRYPTION,
        SignAlgoOid::RsaPkcs1v15(HashAlgorithm::Sha512),
    ),
    (dotted::RSASSA_PSS, SignAlgoOid::RsaPss),
    (dotted::EC_PUBLIC_KEY, SignAlgoOid::EcPublicKey),
    (
        dotted::ECDSA_WITH_SHA256,
        SignAlgoOid::Ecdsa(HashAlgorithm::Sha256),
    ),
    (
        dotted::ECDSA_WITH_SHA384,
        SignAlgoOid::Ecdsa(HashAlgorithm::Sha384),
    ),
    (
        dotted::ECDSA_WITH_SHA512,
        SignAlgoOid::Ecdsa(HashAlgorithm::Sha512),
    ),
];

impl DigestSignAlgorithm {
    /// The hash the digest must have been computed with.
    pub const fn hash(self) -> HashAlgorithm {
        match self {
            Self::RsaPkcs1v15(h) | Self::RsaPss(h) | Self::Ecdsa(h) => h,
        }
    }

    /// The same algorithm as a [`SignatureAlgorithm`] (for its OID, AlgorithmIdentifier
    /// and name): a signature over the digest of a message is that algorithm's signature
    /// of the message.
    pub const fn signature_algorithm(self) -> SignatureAlgorithm {
        match self {
            Self::RsaPkcs1v15(h) => SignatureAlgorithm::RsaPkcs1v15(h),
            Self::RsaPss(h) => SignatureAlgorithm::RsaPss(h),
            Self::Ecdsa(h) => SignatureAlgorithm::Ecdsa(h),
        }
    }

    /// The digest-signing form of `alg`, or `None` for Ed25519 (which signs messages
    /// only).
    pub const fn from_signature_algorithm(alg: SignatureAlgorithm) -> Option<Self> {
        match alg {
            SignatureAlgorithm::RsaPkcs1v15(h) => Some(Self::RsaPkcs1v15(h)),
            SignatureAlgorithm::RsaPss(h) => Some(Self::RsaPss(h)),
            SignatureAlgorithm::Ecdsa(h) => Some(Self::Ecdsa(h)),
            SignatureAlgorithm::Ed25519 => None,
        }
    }

    /// Whether a key of type `key` can make this signature: PKCS#1 v1.5 and PSS with an
    /// RSA key, ECDSA with a P-256 or P-384 key. Follows from the key type, not from the
    /// algorithm a signer is configured with.
    pub fn fits(self, key: KeyType) -> bool {
        self.signature_algorithm().fits(key)
    }

    /// Every digest-signing algorithm a key of type `key` can make (what the CSC API's
    /// `credentials/info` offers), in a fixed order: PKCS#1 v1.5 then PSS for RSA, each
    /// with SHA-256, SHA-384, SHA-512; ECDSA with the same hashes for EC keys; nothing
    /// for Ed25519.
    pub fn for_key(key: KeyType) -> Vec<Self> {
        let mut all = Vec::with_capacity(9);
        for scheme in [Self::RsaPkcs1v15, Self::RsaPss, Self::Ecdsa] {
            all.extend(HashAlgorithm::ALL.map(scheme));
        }
        all.retain(|a| a.fits(key));
        all
    }

    /// Whether `digest` has the length of [`DigestSignAlgorithm::hash`]'s output.
    pub fn digest_len_fits(self, digest: &[u8]) -> bool {
        digest.len() == self.hash().output_len()
    }

    /// The dotted `signAlgo` OID that names this algorithm most exactly: the
    /// `shaXWithRSAEncryption` / `ecdsa-with-SHAX` OID, or `id-RSASSA-PSS` (with
    /// [`DigestSignAlgorithm::sign_algo_params_der`]).
    pub const fn sign_algo_oid(self) -> &'static str {
        self.signature_algorithm().oid()
    }

    /// The DER `signAlgoParams` that go with [`DigestSignAlgorithm::sign_algo_oid`]: the
    /// RSASSA-PSS-params for PSS, none otherwise.
    pub fn sign_algo_params_der(self) -> Option<Vec<u8>> {
        match self {
            Self::RsaPss(h) => Some(pss_params_der(h)),
            Self::RsaPkcs1v15(_) | Self::Ecdsa(_) => None,
        }
    }

    /// Maps a client's `signAlgo` (dotted OID), optional `hashAlgo` (dotted OID) and
    /// optional DER `signAlgoParams` to the algorithm, refusing anything not exactly
    /// determined (see [`SignAlgoRejection`]).
    ///
    /// ```
    /// use hanko_pki::alg::{DigestSignAlgorithm, SignAlgoRejection};
    /// use hanko_pki::HashAlgorithm;
    /// let a = DigestSignAlgorithm::from_oids("1.2.840.113549.1.1.1",
    ///                                        Some("2.16.840.1.101.3.4.2.2"), None);
    /// assert_eq!(a, Ok(DigestSignAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha384)));
    /// let b = DigestSignAlgorithm::from_oids("1.2.840.10045.4.3.2",
    ///                                        Some("2.16.840.1.101.3.4.2.3"), None);
    /// assert!(matches!(b, Err(SignAlgoRejection::HashMismatch { .. })));
    /// ```
    pub fn from_oids(
        sign_algo: &str,
        hash_algo: Option<&str>,
        params: Option<&[u8]>,
    ) -> Result<Self, SignAlgoRejection> {
        let (_, entry) = SIGN_ALGOS
            .iter()
            .find(|(o, _)| *o == sign_algo)
            .ok_or_else(|| SignAlgoRejection::UnknownSignAlgo(sign_algo.to_owned()))?;
        let hash_algo = hash_algo.map(HashAlgorithm::from_oid).transpose()?;
        let needs_hash = || SignAlgoRejection::HashAlgoMissing {
            sign_algo: sign_algo.to_owned(),
        };
        let unexpected = || SignAlgoRejection::UnexpectedParams {
            sign_algo: sign_algo.to_owned(),
        };
        let agree = |implied: HashAlgorithm| match hash_algo {
            Some(h) if h != implied => Err(SignAlgoRejection::HashMismatch {
                implied,
                hash_algo: h,
            }),
            _ => Ok(implied),
        };
        // RFC 8017 A.2.4: the PKCS#1 v1.5 OIDs carry NULL parameters; accept them
        // absent too, as RFC 4055 §5 asks of verifiers.
        let null_or_none = params.is_none_or(|p| p == der::NULL);
        match *entry {
            SignAlgoOid::RsaEncryption if null_or_none => {
                Ok(Self::RsaPkcs1v15(hash_algo.ok_or_else(needs_hash)?))
            }
            SignAlgoOid::RsaPkcs1v15(h) if null_or_none => Ok(Self::RsaPkcs1v15(agree(h)?)),
            SignAlgoOid::RsaEncryption | SignAlgoOid::RsaPkcs1v15(_) => Err(unexpected()),
            SignAlgoOid::RsaPss => {
                let params = params.ok_or(SignAlgoRejection::PssParamsMissing)?;
                Ok(Self::RsaPss(agree(pss_params_hash(params)?)?))
            }
            SignAlgoOid::EcPublicKey if params.is_none() => {
                Ok(Self::Ecdsa(hash_algo.ok_or_else(needs_hash)?))
            }
            SignAlgoOid::Ecdsa(h) if params.is_none() => Ok(Self::Ecdsa(agree(h)?)),
            SignAlgoOid::EcPublicKey | SignAlgoOid::Ecdsa(_) => Err(unexpected()),
        }
    }
}

impl fmt::Display for DigestSignAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.signature_algorithm().fmt(f)
    }
}

/// The hash of DER RSASSA-PSS-params (RFC 4055 §3.1) in the one form Hanko signs with:
/// `[0]` a SHA-2 hash, `[1]` MGF1 over the same hash, `[2]` salt length = hash length,
/// no `[3]` trailer field (its only value, 1, is the DEFAULT, which DER omits). Hash
/// AlgorithmIdentifiers may carry NULL parameters or none (RFC 4055 §2.1).
fn pss_params_hash(params: &[u8]) -> Result<HashAlgorithm, SignAlgoRejection> {
    let bad = |why: &str| SignAlgoRejection::UnsupportedPssParams(why.to_owned());
    let (t, body, rest) = read_tlv(params).ok_or_else(|| bad("not DER"))?;
    if t != tag::SEQUENCE || !rest.is_empty() {
        return Err(bad("not one DER SEQUENCE"));
    }
    let (t, hash_field, body) = read_tlv(body).ok_or_else(|| bad("no hashAlgorithm"))?;
    if t != 0xa0 {
        return Err(bad("no hashAlgorithm (the SHA-1 default is refused)"));
    }
    let hash = hash_identifier(hash_field)?;
    let (t, mgf_field, body) = read_tlv(body).ok_or_else(|| bad("no maskGenAlgorithm"))?;
    if t != 0xa1 {
        return Err(bad("no maskGenAlgorithm (MGF1 with SHA-1 is refused)"));
    }
    let (t, mgf, rest) = read_tlv(mgf_field).ok_or_else(|| bad("maskGenAlgorithm not DER"))?;
    if t != tag::SEQUENCE || !rest.is_empty() {
        return Err(bad("maskGenAlgorithm not one SEQUENCE"));
    }
    let (t, mgf_oid, mgf_hash) = read_tlv(mgf).ok_or_else(|| bad("maskGenAlgorithm not DER"))?;
    if t != tag::OID || mgf_oid != oid::MGF1.as_bytes() {
        return Err(bad("mask generation function is not MGF1"));
    }
    if hash_identifier(mgf_hash)? != hash {
        return Err(bad("MGF1 hash differs from the message hash"));
    }
    let (t, salt_field, rest) = read_tlv(body).ok_or_else(|| bad("no saltLength"))?;
    if t != 0xa2 {
        return Err(bad("no saltLength (the default 20 is refused)"));
    }
    if !rest.is_empty() {
        return Err(bad("trailerField or trailing bytes"));
    }
    let (t, salt, rest) = read_tlv(salt_field).ok_or_else(|| bad("saltLength not DER"))?;
    let want = u8::try_from(hash.output_len()).map_err(|_| bad("salt length"))?;
    if t != tag::INTEGER || !rest.is_empty() || salt != [want] {
        return Err(bad("salt length differs from the hash length"));
    }
    Ok(hash)
}

/// A SHA-2 hash AlgorithmIdentifier, parameters NULL or absent.
fn hash_identifier(der: &[u8]) -> Result<HashAlgorithm, SignAlgoRejection> {
    let bad = || SignAlgoRejection::UnsupportedPssParams("hash AlgorithmIdentifier".into());
    let (t, body, rest) = read_tlv(der).ok_or_else(bad)?;
    if t != tag::SEQUENCE || !rest.is_empty() {
        return Err(bad());
    }
    let (t, hash_oid, params) = read_tlv(body).ok_or_else(bad)?;
    if t != tag::OID || !(params.is_empty() || params == der::NULL) {
        return Err(bad());
    }
    HashAlgorithm::ALL
        .into_iter()
        .find(|h| h.oid_der_content() == hash_oid)
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::der::tlv;

    const SHA256: &str = "2.16.840.1.101.3.4.2.1";
    const SHA384: &str = "2.16.840.1.101.3.4.2.2";
    const SHA512: &str = "2.16.840.1.101.3.4.2.3";

    fn all() -> Vec<DigestSignAlgorithm> {
        let mut v = DigestSignAlgorithm::for_key(KeyType::Rsa { bits: 3072 });
        v.extend(DigestSignAlgorithm::for_key(KeyType::EcP256));
        v
    }

    #[test]
    fn every_algorithm_round_trips_through_its_oid_and_params() {
        let all = all();
        assert_eq!(all.len(), 9);
        for a in all {
            let params = a.sign_algo_params_der();
            assert_eq!(
                DigestSignAlgorithm::from_oids(a.sign_algo_oid(), None, params.as_deref()),
                Ok(a),
                "{a}"
            );
            // The matching hashAlgo is accepted too.
            assert_eq!(
                DigestSignAlgorithm::from_oids(
                    a.sign_algo_oid(),
                    Some(a.hash().oid()),
                    params.as_deref()
                ),
                Ok(a),
                "{a}"
            );
            assert_eq!(
                DigestSignAlgorithm::from_signature_algorithm(a.signature_algorithm()),
                Some(a)
            );
        }
    }

    #[test]
    fn the_csc_spellings_map_to_scheme_and_hash() {
        use DigestSignAlgorithm::*;
        use HashAlgorithm::*;
        let cases: [(&str, Option<&str>, DigestSignAlgorithm); 9] = [
            ("1.2.840.113549.1.1.11", None, RsaPkcs1v15(Sha256)),
            ("1.2.840.113549.1.1.12", None, RsaPkcs1v15(Sha384)),
            ("1.2.840.113549.1.1.13", None, RsaPkcs1v15(Sha512)),
            ("1.2.840.113549.1.1.1", Some(SHA256), RsaPkcs1v15(Sha256)),
            ("1.2.840.113549.1.1.1", Some(SHA512), RsaPkcs1v15(Sha512)),
            ("1.2.840.10045.4.3.2", None, Ecdsa(Sha256)),
            ("1.2.840.10045.4.3.3", Some(SHA384), Ecdsa(Sha384)),
            ("1.2.840.10045.4.3.4", None, Ecdsa(Sha512)),
            ("1.2.840.10045.2.1", Some(SHA384), Ecdsa(Sha384)),
        ];
        for (sign_algo, hash_algo, want) in cases {
            assert_eq!(
                DigestSignAlgorithm::from_oids(sign_algo, hash_algo, None),
                Ok(want),
                "{sign_algo}"
            );
        }
        // NULL parameters are the PKCS#1 v1.5 OIDs' own (RFC 8017 A.2.4).
        assert_eq!(
            DigestSignAlgorithm::from_oids("1.2.840.113549.1.1.11", None, Some(&der::NULL)),
            Ok(RsaPkcs1v15(Sha256))
        );
    }

    #[test]
    fn pss_params_as_openssl_writes_them_and_with_absent_hash_parameters() {
        // The parameters of `openssl req -sigopt rsa_padding_mode:pss -sigopt
        // rsa_pss_saltlen:digest -sha512` (see alg.rs's test), after the OID.
        let openssl = hex::decode(
            "3034a00f300d06096086480165030402030500a11c301a06092a864886f70d010108300d06096086480165030402030500a203020140",
        )
        .unwrap_or_default();
        assert_eq!(
            DigestSignAlgorithm::from_oids("1.2.840.113549.1.1.10", None, Some(&openssl)),
            Ok(DigestSignAlgorithm::RsaPss(HashAlgorithm::Sha512))
        );
        // The same without the NULLs in the hash identifiers (RFC 4055 §2.1 allows both).
        let h = tlv(tag::SEQUENCE, &der::oid(&oid::SHA384));
        let mgf = der::sequence(&[&der::oid(&oid::MGF1), &h]);
        let params = der::sequence(&[
            &tlv(0xa0, &h),
            &tlv(0xa1, &mgf),
            &tlv(0xa2, &tlv(tag::INTEGER, &[48])),
        ]);
        assert_eq!(
            DigestSignAlgorithm::from_oids("1.2.840.113549.1.1.10", Some(SHA384), Some(&params)),
            Ok(DigestSignAlgorithm::RsaPss(HashAlgorithm::Sha384))
        );
    }

    fn pss(hash: &[u8], mgf_hash: &[u8], salt: u8, extra: &[u8]) -> Vec<u8> {
        let mgf = der::sequence(&[&der::oid(&oid::MGF1), mgf_hash]);
        der::sequence(&[
            &tlv(0xa0, hash),
            &tlv(0xa1, &mgf),
            &tlv(0xa2, &tlv(tag::INTEGER, &[salt])),
            extra,
        ])
    }

    #[test]
    fn unknown_weak_and_contradicting_oids_are_refused_by_name() {
        use SignAlgoRejection as R;
        let from = DigestSignAlgorithm::from_oids;
        // Unknown signAlgo (sha1WithRSAEncryption, Ed25519, junk).
        for o in ["1.2.840.113549.1.1.5", "1.3.101.112", "1.2.3", ""] {
            assert_eq!(
                from(o, None, None),
                Err(R::UnknownSignAlgo(o.into())),
                "{o}"
            );
        }
        // Weak and unknown hashAlgo.
        assert!(matches!(
            from("1.2.840.113549.1.1.1", Some("1.3.14.3.2.26"), None),
            Err(R::Hash(HashRejection::Weak { .. }))
        ));
        assert!(matches!(
            from("1.2.840.113549.1.1.11", Some("1.2.3.4"), None),
            Err(R::Hash(HashRejection::Unknown(_)))
        ));
        // A hash is needed and missing.
        assert!(matches!(
            from("1.2.840.113549.1.1.1", None, None),
            Err(R::HashAlgoMissing { .. })
        ));
        assert!(matches!(
            from("1.2.840.10045.2.1", None, None),
            Err(R::HashAlgoMissing { .. })
        ));
        // hashAlgo contradicts signAlgo.
        assert_eq!(
            from("1.2.840.113549.1.1.11", Some(SHA512), None),
            Err(R::HashMismatch {
                implied: HashAlgorithm::Sha256,
                hash_algo: HashAlgorithm::Sha512
            })
        );
        // Parameters where none are taken.
        assert!(matches!(
            from("1.2.840.10045.4.3.2", None, Some(&der::NULL)),
            Err(R::UnexpectedParams { .. })
        ));
        let pss384 = DigestSignAlgorithm::RsaPss(HashAlgorithm::Sha384)
            .sign_algo_params_der()
            .unwrap_or_default();
        assert!(matches!(
            from("1.2.840.113549.1.1.11", None, Some(&pss384)),
            Err(R::UnexpectedParams { .. })
        ));
        // PSS: parameters missing, hash contradicting them.
        assert_eq!(
            from("1.2.840.113549.1.1.10", Some(SHA256), None),
            Err(R::PssParamsMissing)
        );
        assert!(matches!(
            from("1.2.840.113549.1.1.10", Some(SHA256), Some(&pss384)),
            Err(R::HashMismatch { .. })
        ));
    }

    #[test]
    fn pss_params_other_than_hankos_set_are_refused() {
        let sha256 = &HashAlgorithm::Sha256.algorithm_identifier_null_der();
        let sha384 = HashAlgorithm::Sha384.algorithm_identifier_null_der();
        let ok = pss(sha256, sha256, 32, &[]);
        let from =
            |p: &[u8]| DigestSignAlgorithm::from_oids("1.2.840.113549.1.1.10", None, Some(p));
        assert_eq!(
            from(&ok),
            Ok(DigestSignAlgorithm::RsaPss(HashAlgorithm::Sha256))
        );
        let trailer = tlv(0xa3, &tlv(tag::INTEGER, &[1]));
        let sha1 = der::sequence(&[&tlv(tag::OID, oid::SHA1.as_bytes()), &der::NULL]);
        let bad: [(&str, Vec<u8>); 8] = [
            ("salt 20", pss(sha256, sha256, 20, &[])),
            ("MGF1 hash differs", pss(sha256, &sha384, 32, &[])),
            ("SHA-1", pss(&sha1, &sha1, 20, &[])),
            ("explicit trailer field", pss(sha256, sha256, 32, &trailer)),
            ("empty (all defaults: SHA-1)", der::sequence(&[])),
            ("trailing bytes", [ok.as_slice(), &[0]].concat()),
            ("truncated", ok[..ok.len() - 1].to_vec()),
            ("not a SEQUENCE", der::NULL.to_vec()),
        ];
        for (why, p) in bad {
            assert!(
                matches!(from(&p), Err(SignAlgoRejection::UnsupportedPssParams(_))),
                "{why}: {:?}",
                from(&p)
            );
        }
    }

    #[test]
    fn schemes_follow_the_key_type() {
        let rsa = DigestSignAlgorithm::for_key(KeyType::Rsa { bits: 2048 });
        assert_eq!(rsa.len(), 6);
        assert!(
            rsa.iter()
                .all(|a| !matches!(a, DigestSignAlgorithm::Ecdsa(_)))
        );
        for ec in [KeyType::EcP256, KeyType::EcP384] {
            let algs = DigestSignAlgorithm::for_key(ec);
            assert_eq!(
                algs,
                HashAlgorithm::ALL.map(DigestSignAlgorithm::Ecdsa).to_vec()
            );
        }
        assert!(DigestSignAlgorithm::for_key(KeyType::Ed25519).is_empty());
        assert!(
            DigestSignAlgorithm::Ecdsa(HashAlgorithm::Sha512).digest_len_fits(&[0; 64])
                && !DigestSignAlgorithm::Ecdsa(HashAlgorithm::Sha512).digest_len_fits(&[0; 32])
        );
    }
}
