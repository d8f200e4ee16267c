//! Hashes and signature verification in software (RustCrypto), from the DER of a
//! SubjectPublicKeyInfo and an AlgorithmIdentifier: nothing of Hanko's signing or
//! verification path (which runs on the system's OpenSSL) is used.

use sha2::Digest as _;

use crate::der::{self, tag};

/// OIDs the checks name.
pub mod oid {
    pub const MD5: &str = "1.2.840.113549.2.5";
    pub const SHA1: &str = "1.3.14.3.2.26";
    pub const SHA224: &str = "2.16.840.1.101.3.4.2.4";
    pub const SHA256: &str = "2.16.840.1.101.3.4.2.1";
    pub const SHA384: &str = "2.16.840.1.101.3.4.2.2";
    pub const SHA512: &str = "2.16.840.1.101.3.4.2.3";
    pub const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
    pub const RSA_PSS: &str = "1.2.840.113549.1.1.10";
    pub const SHA256_RSA: &str = "1.2.840.113549.1.1.11";
    pub const SHA384_RSA: &str = "1.2.840.113549.1.1.12";
    pub const SHA512_RSA: &str = "1.2.840.113549.1.1.13";
    pub const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
    pub const ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
    pub const ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";
    pub const ECDSA_SHA512: &str = "1.2.840.10045.4.3.4";
    pub const ED25519: &str = "1.3.101.112";
    pub const P256: &str = "1.2.840.10045.3.1.7";
    pub const P384: &str = "1.3.132.0.34";
    pub const P521: &str = "1.3.132.0.35";
}

/// A signature algorithm's name for the report (its OID when unknown).
pub fn signature_algorithm_name(oid: &str) -> String {
    match oid {
        oid::RSA_ENCRYPTION => "rsaEncryption (PKCS #1 v1.5)".into(),
        oid::RSA_PSS => "RSASSA-PSS".into(),
        oid::SHA256_RSA => "sha256WithRSAEncryption".into(),
        oid::SHA384_RSA => "sha384WithRSAEncryption".into(),
        oid::SHA512_RSA => "sha512WithRSAEncryption".into(),
        oid::ECDSA_SHA256 => "ecdsa-with-SHA256".into(),
        oid::ECDSA_SHA384 => "ecdsa-with-SHA384".into(),
        oid::ECDSA_SHA512 => "ecdsa-with-SHA512".into(),
        oid::ED25519 => "Ed25519".into(),
        other => other.to_owned(),
    }
}

/// The hashes of ETSI TS 119 312 the checks compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    /// From an OID; `Err` names a weak or unknown one.
    pub fn from_oid(oid: &str) -> Result<Self, String> {
        match oid {
            oid::SHA256 => Ok(Self::Sha256),
            oid::SHA384 => Ok(Self::Sha384),
            oid::SHA512 => Ok(Self::Sha512),
            oid::MD5 => Err("MD5 (broken)".into()),
            oid::SHA1 => Err("SHA-1 (not for new signatures, ETSI TS 119 312)".into()),
            oid::SHA224 => Err("SHA-224 (not in ETSI TS 119 312)".into()),
            other => Err(format!("unknown hash {other}")),
        }
    }

    /// The OID.
    pub fn oid(self) -> &'static str {
        match self {
            Self::Sha256 => oid::SHA256,
            Self::Sha384 => oid::SHA384,
            Self::Sha512 => oid::SHA512,
        }
    }

    /// The digest length in octets.
    pub fn output_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    /// The name, e.g. `SHA-256`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "SHA-256",
            Self::Sha384 => "SHA-384",
            Self::Sha512 => "SHA-512",
        }
    }

    /// The digest of `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Self::Sha384 => sha2::Sha384::digest(data).to_vec(),
            Self::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }
}

/// SHA-256 of `data`, hex (the report's input hashes).
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

/// An AlgorithmIdentifier: its OID and its parameters' encoding (`None` when absent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlgId {
    /// The algorithm.
    pub oid: String,
    /// The parameters' TLV, if present.
    pub params: Option<Vec<u8>>,
}

impl AlgId {
    /// Reads an AlgorithmIdentifier SEQUENCE.
    pub fn parse(t: &der::Tlv<'_>) -> Result<Self, der::DerError> {
        let kids = t.expect(tag::SEQUENCE, "AlgorithmIdentifier")?.children()?;
        let oid = kids
            .first()
            .ok_or_else(|| der::DerError::Unexpected("empty AlgorithmIdentifier".into()))?
            .oid()?;
        if kids.len() > 2 {
            return Err(der::DerError::Unexpected(
                "AlgorithmIdentifier with more than two elements".into(),
            ));
        }
        Ok(Self {
            oid,
            params: kids.get(1).map(|p| p.raw.to_vec()),
        })
    }

    /// Whether the parameters are absent or NULL.
    pub fn params_absent_or_null(&self) -> bool {
        matches!(self.params.as_deref(), None | Some([0x05, 0x00]))
    }
}

/// What a SubjectPublicKeyInfo holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA with this modulus size in bits.
    Rsa(usize),
    /// ECDSA on P-256.
    P256,
    /// ECDSA on P-384.
    P384,
    /// ECDSA on P-521 (described, not verified by this tool).
    P521,
    /// Ed25519.
    Ed25519,
}

impl std::fmt::Display for KeyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rsa(bits) => write!(f, "RSA-{bits}"),
            Self::P256 => f.write_str("ECDSA P-256"),
            Self::P384 => f.write_str("ECDSA P-384"),
            Self::P521 => f.write_str("ECDSA P-521"),
            Self::Ed25519 => f.write_str("Ed25519"),
        }
    }
}

/// The key type and size of a SubjectPublicKeyInfo.
pub fn key_kind(spki: &[u8]) -> Result<KeyKind, String> {
    let t = der::read_exact(spki).map_err(|e| format!("SubjectPublicKeyInfo: {e}"))?;
    let kids = t.children().map_err(|e| e.to_string())?;
    let [alg, bits] = kids.as_slice() else {
        return Err("SubjectPublicKeyInfo is not a SEQUENCE of two".into());
    };
    let alg = AlgId::parse(alg).map_err(|e| e.to_string())?;
    match alg.oid.as_str() {
        oid::RSA_ENCRYPTION => {
            let key = bits.value.get(1..).ok_or("empty RSA key")?;
            let seq = der::read_exact(key).map_err(|e| format!("RSAPublicKey: {e}"))?;
            let parts = seq.children().map_err(|e| e.to_string())?;
            let n = parts
                .first()
                .ok_or("RSAPublicKey without a modulus")?
                .integer()
                .map_err(|e| e.to_string())?;
            let n = n.strip_prefix(&[0]).unwrap_or(n);
            let lead = n.first().map_or(0, |b| 8 - b.leading_zeros() as usize);
            Ok(KeyKind::Rsa((n.len().saturating_sub(1)) * 8 + lead))
        }
        oid::EC_PUBLIC_KEY => {
            let curve = alg
                .params
                .as_deref()
                .and_then(|p| der::read_exact(p).ok()?.oid().ok())
                .ok_or("EC key without a named curve")?;
            match curve.as_str() {
                oid::P256 => Ok(KeyKind::P256),
                oid::P384 => Ok(KeyKind::P384),
                oid::P521 => Ok(KeyKind::P521),
                other => Err(format!("EC key on curve {other}")),
            }
        }
        oid::ED25519 => Ok(KeyKind::Ed25519),
        other => Err(format!("public key algorithm {other}")),
    }
}

/// Verifies `signature` over `message` with the key of `spki`, under `sig_alg`. Where
/// the signature algorithm names no hash (CMS's rsaEncryption), `digest_alg` gives it.
pub fn verify(
    spki: &[u8],
    sig_alg: &AlgId,
    digest_alg: Option<Hash>,
    message: &[u8],
    signature: &[u8],
) -> Result<(), String> {
    use ecdsa::signature::hazmat::PrehashVerifier as _;
    let kind = key_kind(spki)?;
    let hash_of = |h: Option<Hash>| h.ok_or_else(|| format!("{} names no hash", sig_alg.oid));
    let (scheme, hash) = match sig_alg.oid.as_str() {
        oid::RSA_ENCRYPTION => ("pkcs1", hash_of(digest_alg)?),
        oid::SHA256_RSA => ("pkcs1", Hash::Sha256),
        oid::SHA384_RSA => ("pkcs1", Hash::Sha384),
        oid::SHA512_RSA => ("pkcs1", Hash::Sha512),
        oid::RSA_PSS => ("pss", pss_hash(sig_alg)?),
        oid::ECDSA_SHA256 => ("ecdsa", Hash::Sha256),
        oid::ECDSA_SHA384 => ("ecdsa", Hash::Sha384),
        oid::ECDSA_SHA512 => ("ecdsa", Hash::Sha512),
        oid::ED25519 => ("ed25519", Hash::Sha512),
        other => {
            return Err(format!(
                "signature algorithm {other} is not one this tool verifies"
            ));
        }
    };
    let bad = |e: &dyn std::fmt::Display| format!("the signature does not verify ({e})");
    match (scheme, kind) {
        ("pkcs1", KeyKind::Rsa(_)) => {
            use rsa::pkcs8::DecodePublicKey as _;
            let key = rsa::PublicKey::from_public_key_der(spki).map_err(|e| e.to_string())?;
            let info = der::seq(&[
                &der::seq(&[&der::oid(hash.oid()), &[0x05, 0x00]]),
                &der::octets(&hash.digest(message)),
            ]);
            key.verify(rsa::Pkcs1v15Sign::new_unprefixed(), &info, signature)
                .map_err(|e| bad(&e))
        }
        ("pss", KeyKind::Rsa(_)) => {
            use rsa::pkcs8::DecodePublicKey as _;
            let key = rsa::PublicKey::from_public_key_der(spki).map_err(|e| e.to_string())?;
            let digest = hash.digest(message);
            let r = match hash {
                Hash::Sha256 => key.verify(rsa::Pss::<sha2::Sha256>::new(), &digest, signature),
                Hash::Sha384 => key.verify(rsa::Pss::<sha2::Sha384>::new(), &digest, signature),
                Hash::Sha512 => key.verify(rsa::Pss::<sha2::Sha512>::new(), &digest, signature),
            };
            r.map_err(|e| bad(&e))
        }
        ("ecdsa", KeyKind::P256) => {
            use p256::pkcs8::DecodePublicKey as _;
            let key =
                p256::ecdsa::VerifyingKey::from_public_key_der(spki).map_err(|e| e.to_string())?;
            let sig = p256::ecdsa::Signature::from_der(signature).map_err(|e| bad(&e))?;
            key.verify_prehash(&hash.digest(message), &sig)
                .map_err(|e| bad(&e))
        }
        ("ecdsa", KeyKind::P384) => {
            use p384::pkcs8::DecodePublicKey as _;
            let key =
                p384::ecdsa::VerifyingKey::from_public_key_der(spki).map_err(|e| e.to_string())?;
            let sig = p384::ecdsa::Signature::from_der(signature).map_err(|e| bad(&e))?;
            key.verify_prehash(&hash.digest(message), &sig)
                .map_err(|e| bad(&e))
        }
        ("ed25519", KeyKind::Ed25519) => {
            use ed25519_dalek::pkcs8::DecodePublicKey as _;
            let key = ed25519_dalek::VerifyingKey::from_public_key_der(spki)
                .map_err(|e| e.to_string())?;
            let sig = ed25519_dalek::Signature::from_slice(signature).map_err(|e| bad(&e))?;
            key.verify_strict(message, &sig).map_err(|e| bad(&e))
        }
        (_, KeyKind::P521) => Err("P-521 signatures are not verified by this tool".into()),
        (scheme, kind) => Err(format!(
            "signature algorithm {} ({scheme}) does not fit a {kind} key",
            sig_alg.oid
        )),
    }
}

/// The hash of RSASSA-PSS parameters (RFC 4055 §3.1; absent means SHA-1, refused).
fn pss_hash(alg: &AlgId) -> Result<Hash, String> {
    let params = alg
        .params
        .as_deref()
        .ok_or("RSASSA-PSS without parameters (SHA-1)")?;
    let seq = der::read_exact(params).map_err(|e| e.to_string())?;
    for field in seq.children().map_err(|e| e.to_string())? {
        if field.tag == 0xa0 {
            let inner = der::read_exact(field.value).map_err(|e| e.to_string())?;
            return Hash::from_oid(&AlgId::parse(&inner).map_err(|e| e.to_string())?.oid);
        }
    }
    Err("RSASSA-PSS parameters without a hash (SHA-1)".into())
}
