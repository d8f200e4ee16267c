//! [`SoftwareSigner`]: a [`Signer`] whose private key lives in process memory.
//!
//! **Development and tests only.** Hanko's TSA and e-seal keys are generated and used
//! inside a PKCS#11 token (CONFORMANCE 39) through `hanko-hsm`. This signer exists for
//! two jobs where an HSM would be in the way:
//!
//! - the dev CA of `hanko dev-init` (root and intermediate, saved as PKCS#8 PEM files
//!   whose names say `DEV-ONLY`), which certifies the token's keys;
//! - tests that need many keys of every type without a token.
//!
//! It is not hardened: the key is zeroised on drop by the underlying RustCrypto types,
//! and [`SoftwareSigner::to_pkcs8_pem`] returns a zeroising string, but nothing keeps the
//! key out of swap or core dumps. Never load a production key through it.
//!
//! Signatures follow the [`Signer`] contract: the message is hashed with
//! [`SignatureAlgorithm::hash`]; RSA gives the PKCS#1 v1.5 block (DigestInfo from
//! [`crate::alg`], the same table the HSM uses) or PSS with salt = hash length; ECDSA a
//! DER `ECDSA-Sig-Value` (RFC 6979 deterministic nonces); Ed25519 the 64-byte PureEdDSA
//! signature.
//!
//! ```
//! use hanko_pki::{HashAlgorithm, KeyType, SignatureAlgorithm, Signer};
//! use hanko_pki::soft::SoftwareSigner;
//!
//! let alg = SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256);
//! let signer = SoftwareSigner::generate(KeyType::EcP256, alg).unwrap();
//! let sig = signer.sign_now(b"hello").unwrap();
//! assert_eq!(sig[0], 0x30); // DER SEQUENCE { r, s }
//! let pem = signer.to_pkcs8_pem().unwrap();
//! let again = SoftwareSigner::from_pkcs8_pem(&pem, alg).unwrap();
//! assert_eq!(again.public_key_der(), signer.public_key_der());
//! ```

use std::fmt;

use der::pem::LineEnding;
use der::zeroize::{Zeroize, Zeroizing};
use der::{Decode, SecretDocument};
use ed25519_dalek::pkcs8::DecodePrivateKey as _;
use p256::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _};
use rand::Rng as _;
use rsa::Generate as _;

use crate::alg::{
    DigestSignAlgorithm, HashAlgorithm, KeyType, SignatureAlgorithm, ed25519_spki, key_type_of_spki,
};
use crate::oid;
use crate::signer::{BoxFuture, SignError, SignErrorKind, Signer, check_digest_request};

/// The smallest RSA modulus [`SoftwareSigner`] generates or loads.
pub const MIN_RSA_BITS: usize = 2048;

/// Why a software key could not be generated, loaded or exported.
///
/// No variant carries key material; PEM parse errors say where, not what.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SoftKeyError {
    /// The signature algorithm cannot be used with the key type (e.g. ECDSA with RSA).
    #[error("signature algorithm {alg} does not fit a {key} key")]
    AlgorithmMismatch {
        /// The requested algorithm.
        alg: SignatureAlgorithm,
        /// The key's type.
        key: KeyType,
    },
    /// The key type is not supported (e.g. an RSA modulus below [`MIN_RSA_BITS`], or a
    /// key type this crate does not know).
    #[error("unsupported key: {0}")]
    UnsupportedKey(String),
    /// The PEM text is not a single `PRIVATE KEY` (PKCS#8) block.
    #[error("not a PKCS#8 PEM private key: {0}")]
    Pem(String),
    /// The PKCS#8 structure or the key inside it is malformed.
    #[error("malformed PKCS#8 private key: {0}")]
    Pkcs8(String),
    /// Key generation failed (random source or arithmetic).
    #[error("key generation failed: {0}")]
    Generate(String),
    /// Encoding the key failed.
    #[error("encoding the key failed: {0}")]
    Encode(String),
}

/// The in-memory key. Each variant's type zeroises itself on drop.
enum SoftKey {
    Rsa(Box<rsa::PrivateKey>),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

/// A [`Signer`] over a private key held in memory. Dev CA and tests only: see the
/// [module documentation](self).
pub struct SoftwareSigner {
    key: SoftKey,
    key_type: KeyType,
    alg: SignatureAlgorithm,
    spki: Vec<u8>,
}

impl fmt::Debug for SoftwareSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key: only what it is.
        f.debug_struct("SoftwareSigner")
            .field("key_type", &self.key_type)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// DER prefix of an RFC 8410 Ed25519 PKCS#8 v1 key: SEQUENCE { INTEGER 0, SEQUENCE { OID
/// id-Ed25519 }, OCTET STRING { OCTET STRING (32 bytes) } }. OpenSSL writes this form.
/// Written out (not built with [`crate::der`]) so that the seed is only ever copied into
/// a zeroising buffer; a test checks it against the encoder.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

impl SoftwareSigner {
    /// Generates a fresh key of type `kt` that will sign with `alg`.
    ///
    /// RSA keys use public exponent 65537 and must have at least [`MIN_RSA_BITS`] bits.
    /// RSA generation is slow in unoptimised builds (seconds per 3072-bit key); tests that
    /// need many RSA keys can load OpenSSL-made keys with
    /// [`SoftwareSigner::from_pkcs8_pem`] instead.
    pub fn generate(kt: KeyType, alg: SignatureAlgorithm) -> Result<Self, SoftKeyError> {
        check_fits(alg, kt)?;
        let mut rng = rand::rng();
        let key = match kt {
            KeyType::Rsa { bits } => {
                if bits < MIN_RSA_BITS {
                    return Err(SoftKeyError::UnsupportedKey(format!(
                        "RSA-{bits} (at least {MIN_RSA_BITS} bits)"
                    )));
                }
                let key = rsa::PrivateKey::new(&mut rng, bits)
                    .map_err(|e| SoftKeyError::Generate(e.to_string()))?;
                SoftKey::Rsa(Box::new(key))
            }
            KeyType::EcP256 => SoftKey::P256(p256::ecdsa::SigningKey::generate_from_rng(&mut rng)),
            KeyType::EcP384 => SoftKey::P384(p384::ecdsa::SigningKey::generate_from_rng(&mut rng)),
            KeyType::Ed25519 => {
                let mut seed = Zeroizing::new([0u8; 32]);
                rng.fill_bytes(seed.as_mut());
                SoftKey::Ed25519(Box::new(ed25519_dalek::SigningKey::from_bytes(&seed)))
            }
        };
        Self::from_key(key, alg)
    }

    /// Loads a PKCS#8 `PRIVATE KEY` PEM block (as written by `openssl genpkey` or by
    /// [`SoftwareSigner::to_pkcs8_pem`]) that will sign with `alg`.
    ///
    /// Accepted keys: RSA (rsaEncryption), EC on P-256 or P-384 (id-ecPublicKey with a
    /// named curve), Ed25519. Encrypted PKCS#8 and the legacy `RSA PRIVATE KEY` /
    /// `EC PRIVATE KEY` forms are refused with [`SoftKeyError::Pem`]; convert them with
    /// `openssl pkcs8 -topk8 -nocrypt`.
    pub fn from_pkcs8_pem(pem: &str, alg: SignatureAlgorithm) -> Result<Self, SoftKeyError> {
        let (label, doc) = SecretDocument::from_pem(pem.trim())
            .map_err(|e| SoftKeyError::Pem(format!("cannot decode PEM: {e}")))?;
        if label != "PRIVATE KEY" {
            return Err(SoftKeyError::Pem(format!(
                "PEM label is {label:?}, expected \"PRIVATE KEY\" (unencrypted PKCS#8)"
            )));
        }
        Self::from_pkcs8_der(doc.as_bytes(), alg)
    }

    /// Loads a DER PKCS#8 PrivateKeyInfo; see [`SoftwareSigner::from_pkcs8_pem`].
    pub fn from_pkcs8_der(der: &[u8], alg: SignatureAlgorithm) -> Result<Self, SoftKeyError> {
        let pkcs8_err = |e: &dyn fmt::Display| SoftKeyError::Pkcs8(e.to_string());
        let info = p256::pkcs8::PrivateKeyInfoRef::from_der(der).map_err(|e| pkcs8_err(&e))?;
        let key = match info.algorithm.oid {
            o if o == oid::RSA_ENCRYPTION => {
                use rsa::pkcs8::DecodePrivateKey as _;
                let key = rsa::PrivateKey::from_pkcs8_der(der).map_err(|e| pkcs8_err(&e))?;
                SoftKey::Rsa(Box::new(key))
            }
            o if o == oid::EC_PUBLIC_KEY => {
                let curve = info
                    .algorithm
                    .parameters_oid()
                    .map_err(|e| pkcs8_err(&format!("EC key without a named curve: {e}")))?;
                match curve {
                    c if c == oid::SECP256R1 => {
                        use p256::pkcs8::DecodePrivateKey as _;
                        SoftKey::P256(
                            p256::ecdsa::SigningKey::from_pkcs8_der(der)
                                .map_err(|e| pkcs8_err(&e))?,
                        )
                    }
                    c if c == oid::SECP384R1 => {
                        use p384::pkcs8::DecodePrivateKey as _;
                        SoftKey::P384(
                            p384::ecdsa::SigningKey::from_pkcs8_der(der)
                                .map_err(|e| pkcs8_err(&e))?,
                        )
                    }
                    other => {
                        return Err(SoftKeyError::UnsupportedKey(format!(
                            "EC curve {other} (P-256 and P-384 only)"
                        )));
                    }
                }
            }
            o if o == oid::ED25519 => SoftKey::Ed25519(Box::new(
                ed25519_dalek::SigningKey::from_pkcs8_der(der).map_err(|e| pkcs8_err(&e))?,
            )),
            other => {
                return Err(SoftKeyError::UnsupportedKey(format!(
                    "key algorithm {other}"
                )));
            }
        };
        Self::from_key(key, alg)
    }

    fn from_key(key: SoftKey, alg: SignatureAlgorithm) -> Result<Self, SoftKeyError> {
        let enc = |e: &dyn fmt::Display| SoftKeyError::Encode(e.to_string());
        let spki = match &key {
            SoftKey::Rsa(k) => {
                use rsa::pkcs8::EncodePublicKey as _;
                k.to_public_key()
                    .to_public_key_der()
                    .map_err(|e| enc(&e))?
                    .into_vec()
            }
            SoftKey::P256(k) => k
                .verifying_key()
                .to_public_key_der()
                .map_err(|e| enc(&e))?
                .into_vec(),
            SoftKey::P384(k) => {
                use p384::pkcs8::EncodePublicKey as _;
                k.verifying_key()
                    .to_public_key_der()
                    .map_err(|e| enc(&e))?
                    .into_vec()
            }
            SoftKey::Ed25519(k) => ed25519_spki(k.verifying_key().as_bytes()),
        };
        let key_type = key_type_of_spki(&spki)
            .ok_or_else(|| SoftKeyError::UnsupportedKey("unreadable public key".into()))?;
        if let KeyType::Rsa { bits } = key_type
            && bits < MIN_RSA_BITS
        {
            return Err(SoftKeyError::UnsupportedKey(format!(
                "RSA-{bits} (at least {MIN_RSA_BITS} bits)"
            )));
        }
        check_fits(alg, key_type)?;
        Ok(Self {
            key,
            key_type,
            alg,
            spki,
        })
    }

    /// The key's type, read from its public key.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The same key with another signature algorithm (e.g. PSS instead of PKCS#1 v1.5).
    pub fn with_algorithm(self, alg: SignatureAlgorithm) -> Result<Self, SoftKeyError> {
        check_fits(alg, self.key_type)?;
        Ok(Self { alg, ..self })
    }

    /// The private key as an unencrypted PKCS#8 `PRIVATE KEY` PEM block.
    ///
    /// This is secret: the string is zeroised when dropped. Write it only to a file with
    /// mode 0600 whose name says it is for development.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, SoftKeyError> {
        let enc = |e: &dyn fmt::Display| SoftKeyError::Encode(e.to_string());
        let doc: SecretDocument = match &self.key {
            SoftKey::Rsa(k) => {
                use rsa::pkcs8::EncodePrivateKey as _;
                k.to_pkcs8_der().map_err(|e| enc(&e))?
            }
            SoftKey::P256(k) => k.to_pkcs8_der().map_err(|e| enc(&e))?,
            SoftKey::P384(k) => {
                use p384::pkcs8::EncodePrivateKey as _;
                k.to_pkcs8_der().map_err(|e| enc(&e))?
            }
            SoftKey::Ed25519(k) => {
                // ed25519-dalek encodes PKCS#8 only with its `alloc` feature; the v1
                // structure is fixed, so write it out (RFC 8410 §7).
                let mut der = Zeroizing::new(Vec::with_capacity(48));
                der.extend_from_slice(&ED25519_PKCS8_PREFIX);
                let mut seed = k.to_bytes();
                der.extend_from_slice(&seed);
                seed.zeroize();
                SecretDocument::try_from(der.as_slice()).map_err(|e| enc(&e))?
            }
        };
        doc.to_pem("PRIVATE KEY", LineEnding::LF)
            .map_err(|e| enc(&e))
    }

    /// Signs `message` synchronously (the work is done on the calling thread either way;
    /// [`Signer::sign`] wraps this).
    pub fn sign_now(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        match (
            &self.key,
            DigestSignAlgorithm::from_signature_algorithm(self.alg),
        ) {
            // Every hashed scheme signs the message's digest: one code path.
            (_, Some(alg)) => self.sign_digest_now(alg, &alg.hash().digest(message)),
            (SoftKey::Ed25519(k), None) => {
                use ed25519_dalek::Signer as _;
                let sig = k.try_sign(message).map_err(|e| self.failed(&e))?;
                Ok(sig.to_bytes().to_vec())
            }
            (_, None) => Err(SignError::new(
                SignErrorKind::BadInput,
                format!("{} does not fit a {} key", self.alg, self.key_type),
            )),
        }
    }

    /// Signs `digest`, computed by the caller, with `alg` synchronously
    /// ([`Signer::sign_digest`] wraps this). Checked first with
    /// [`check_digest_request`]: the scheme must fit the key type, the digest the hash.
    pub fn sign_digest_now(
        &self,
        alg: DigestSignAlgorithm,
        digest: &[u8],
    ) -> Result<Vec<u8>, SignError> {
        check_digest_request(self.key_type, alg, digest)?;
        let fail = |e: &dyn fmt::Display| self.failed(e);
        match (&self.key, alg) {
            (SoftKey::Rsa(k), DigestSignAlgorithm::RsaPkcs1v15(h)) => k
                .sign(rsa::Pkcs1v15Sign::new_unprefixed(), &h.digest_info(digest))
                .map_err(|e| fail(&e)),
            (SoftKey::Rsa(k), DigestSignAlgorithm::RsaPss(h)) => {
                let r = match h {
                    HashAlgorithm::Sha256 => k.sign(rsa::Pss::<sha2::Sha256>::new(), digest),
                    HashAlgorithm::Sha384 => k.sign(rsa::Pss::<sha2::Sha384>::new(), digest),
                    HashAlgorithm::Sha512 => k.sign(rsa::Pss::<sha2::Sha512>::new(), digest),
                };
                r.map_err(|e| fail(&e))
            }
            (SoftKey::P256(k), DigestSignAlgorithm::Ecdsa(_)) => {
                use p256::ecdsa::signature::hazmat::PrehashSigner as _;
                let sig: p256::ecdsa::DerSignature =
                    k.sign_prehash(digest).map_err(|e| fail(&e))?;
                Ok(sig.as_bytes().to_vec())
            }
            (SoftKey::P384(k), DigestSignAlgorithm::Ecdsa(_)) => {
                use p384::ecdsa::signature::hazmat::PrehashSigner as _;
                let sig: p384::ecdsa::DerSignature =
                    k.sign_prehash(digest).map_err(|e| fail(&e))?;
                Ok(sig.as_bytes().to_vec())
            }
            // check_digest_request refused every other pair; a new key type would land here.
            (
                SoftKey::Rsa(_) | SoftKey::P256(_) | SoftKey::P384(_) | SoftKey::Ed25519(_),
                DigestSignAlgorithm::RsaPkcs1v15(_)
                | DigestSignAlgorithm::RsaPss(_)
                | DigestSignAlgorithm::Ecdsa(_),
            ) => Err(SignError::new(
                SignErrorKind::BadInput,
                format!("{alg} cannot be made with a {} key", self.key_type),
            )),
        }
    }

    fn failed(&self, e: &dyn fmt::Display) -> SignError {
        SignError::new(
            SignErrorKind::Device,
            format!("software {} signature: {e}", self.alg),
        )
    }
}

impl Signer for SoftwareSigner {
    fn algorithm(&self) -> SignatureAlgorithm {
        self.alg
    }

    fn public_key_der(&self) -> &[u8] {
        &self.spki
    }

    fn sign<'a>(&'a self, message: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, SignError>> {
        Box::pin(async move { self.sign_now(message) })
    }

    fn sign_digest<'a>(
        &'a self,
        alg: DigestSignAlgorithm,
        digest: &'a [u8],
    ) -> BoxFuture<'a, Result<Vec<u8>, SignError>> {
        Box::pin(async move { self.sign_digest_now(alg, digest) })
    }
}

fn check_fits(alg: SignatureAlgorithm, key: KeyType) -> Result<(), SoftKeyError> {
    if alg.fits(key) {
        Ok(())
    } else {
        Err(SoftKeyError::AlgorithmMismatch { alg, key })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failure should stop the test loudly

    use super::*;
    use crate::der::{self, tag, tlv};
    use crate::verify::{verify, verify_digest};

    /// An RSA-2048 key from `openssl genpkey` (RustCrypto's generation is slow unoptimised).
    fn openssl_rsa(alg: SignatureAlgorithm) -> SoftwareSigner {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        let out = std::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ])
            .arg("-out")
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        SoftwareSigner::from_pkcs8_pem(&std::fs::read_to_string(&path).unwrap(), alg).unwrap()
    }

    #[test]
    fn every_digest_scheme_of_every_key_type_verifies_and_matches_sign() {
        let msg = b"a document the client hashed itself";
        let signers = [
            openssl_rsa(SignatureAlgorithm::RsaPss(HashAlgorithm::Sha384)),
            SoftwareSigner::generate(
                KeyType::EcP256,
                SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256),
            )
            .unwrap(),
            SoftwareSigner::generate(
                KeyType::EcP384,
                SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha512),
            )
            .unwrap(),
        ];
        for signer in signers {
            let spki = signer.public_key_der().to_vec();
            for alg in DigestSignAlgorithm::for_key(signer.key_type()) {
                let digest = alg.hash().digest(msg);
                let sig = signer.sign_digest_now(alg, &digest).unwrap();
                assert_eq!(verify_digest(&spki, alg, &digest, &sig), Ok(()), "{alg}");
                // A signature over the digest is the algorithm's signature of the message.
                assert_eq!(
                    verify(&spki, alg.signature_algorithm(), msg, &sig),
                    Ok(()),
                    "{alg}"
                );
                let other = alg.hash().digest(b"another document");
                assert!(verify_digest(&spki, alg, &other, &sig).is_err(), "{alg}");
            }
        }
    }

    #[test]
    fn wrong_lengths_and_foreign_schemes_are_bad_input() {
        let p256 = SoftwareSigner::generate(
            KeyType::EcP256,
            SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256),
        )
        .unwrap();
        let ecdsa = DigestSignAlgorithm::Ecdsa(HashAlgorithm::Sha384);
        for len in [0, 32, 47, 49, 64] {
            let e = p256.sign_digest_now(ecdsa, &vec![1; len]).unwrap_err();
            assert_eq!(e.kind(), SignErrorKind::BadInput, "{len}: {e}");
        }
        let pkcs1 = DigestSignAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha256);
        let e = p256.sign_digest_now(pkcs1, &[1; 32]).unwrap_err();
        assert_eq!(e.kind(), SignErrorKind::BadInput, "{e}");
        let ed = SoftwareSigner::generate(KeyType::Ed25519, SignatureAlgorithm::Ed25519).unwrap();
        assert!(DigestSignAlgorithm::for_key(ed.key_type()).is_empty());
        let e = ed
            .sign_digest_now(DigestSignAlgorithm::Ecdsa(HashAlgorithm::Sha256), &[1; 32])
            .unwrap_err();
        assert_eq!(e.kind(), SignErrorKind::BadInput, "{e}");
    }

    #[test]
    fn the_default_batch_checks_everything_before_signing() {
        let p256 = SoftwareSigner::generate(
            KeyType::EcP256,
            SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256),
        )
        .unwrap();
        let alg = DigestSignAlgorithm::Ecdsa(HashAlgorithm::Sha256);
        // The software signer never waits: one poll finishes the future.
        let run = |digests: Vec<Vec<u8>>| {
            let mut fut = p256.sign_digests(alg, &digests);
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            match fut.as_mut().poll(&mut cx) {
                std::task::Poll::Ready(r) => r,
                std::task::Poll::Pending => panic!("the software signer waited"),
            }
        };
        let sigs = run(vec![vec![1; 32], vec![2; 32]]).unwrap();
        assert_eq!(sigs.len(), 2);
        assert_eq!(
            verify_digest(p256.public_key_der(), alg, &[2; 32], &sigs[1]),
            Ok(())
        );
        let e = run(vec![vec![1; 32], vec![2; 31]]).unwrap_err();
        assert_eq!(e.kind(), SignErrorKind::BadInput);
    }

    #[test]
    fn ed25519_pkcs8_prefix_is_what_the_encoder_writes() {
        let seed = [0x5au8; 32];
        let built = der::sequence(&[
            &tlv(tag::INTEGER, &[0]),
            &der::sequence(&[&der::oid(&oid::ED25519)]),
            &tlv(tag::OCTET_STRING, &tlv(tag::OCTET_STRING, &seed)),
        ]);
        assert_eq!(built[..16], ED25519_PKCS8_PREFIX);
        assert_eq!(built[16..], seed);
    }
}
