//! Software verification of one signature against a SubjectPublicKeyInfo.
//!
//! Used for verify-after-sign (a token that returns a wrong signature must be caught
//! before the signature leaves the process) and by tests. It checks exactly the forms
//! [`crate::Signer`] promises: the PKCS#1 v1.5 block, RSASSA-PSS with MGF1 over the same
//! hash and a salt as long as the hash, a DER `ECDSA-Sig-Value` on P-256 or P-384, and a
//! 64-byte Ed25519 signature (PureEdDSA).
//!
//! [`verify_digest`] checks a signature over a digest the signer was given (the CSC
//! API's `signHash`); [`verify`] hashes the message and takes the same path for every
//! hashed scheme, so both check exactly the same encodings.
//!
//! It does not validate certificates or decide whether a key is trusted; it says whether
//! these bytes are a signature of this message by this key, and nothing more. Backed by
//! RustCrypto (`rsa`, `p256`, `p384`, `ed25519-dalek`); the unit tests cross-check it
//! against signatures made by the `openssl` CLI.

use rsa::PublicKey as RsaPublicKey;
use sha2::{Sha256, Sha384, Sha512};
use signature::hazmat::PrehashVerifier;
use spki::DecodePublicKey;

use crate::alg::{
    DigestSignAlgorithm, HashAlgorithm, KeyType, SignatureAlgorithm, key_type_of_spki,
};

/// Why a signature was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The SubjectPublicKeyInfo could not be parsed, or is a key type Hanko does not use.
    #[error("unusable public key: {0}")]
    BadKey(String),
    /// The algorithm cannot be used with this key (e.g. ECDSA with an RSA key).
    #[error("algorithm {alg} does not fit a {key} key")]
    AlgorithmMismatch {
        /// Requested algorithm.
        alg: SignatureAlgorithm,
        /// The key's type.
        key: KeyType,
    },
    /// The signature bytes are not well-formed for the algorithm (wrong length, not DER).
    #[error("malformed signature: {0}")]
    Malformed(String),
    /// Well-formed, but not a signature of this message by this key.
    #[error("signature does not verify")]
    Invalid,
}

/// Checks that `signature` is a valid `alg` signature of `message` by the key in
/// `spki_der`.
///
/// ```
/// use hanko_pki::verify::{verify, VerifyError};
/// use hanko_pki::SignatureAlgorithm;
/// assert!(matches!(verify(b"junk", SignatureAlgorithm::Ed25519, b"m", &[0; 64]),
///                  Err(VerifyError::BadKey(_))));
/// ```
pub fn verify(
    spki_der: &[u8],
    alg: SignatureAlgorithm,
    message: &[u8],
    signature: &[u8],
) -> Result<(), VerifyError> {
    match DigestSignAlgorithm::from_signature_algorithm(alg) {
        // Every hashed scheme is a signature of the message's digest: one code path.
        Some(prehashed) => verify_digest(
            spki_der,
            prehashed,
            &prehashed.hash().digest(message),
            signature,
        ),
        None => {
            let key = key_type_of(spki_der)?;
            if !alg.fits(key) {
                return Err(VerifyError::AlgorithmMismatch { alg, key });
            }
            let vk = ed25519_key(spki_der)?;
            let sig = ed25519_dalek::Signature::from_slice(signature)
                .map_err(|e| VerifyError::Malformed(e.to_string()))?;
            vk.verify_strict(message, &sig)
                .map_err(|_| VerifyError::Invalid)
        }
    }
}

/// Checks that `signature` is a valid `alg` signature over `digest` (a digest the signer
/// was given, as in the CSC API's `signHash`) by the key in `spki_der`. A digest whose
/// length is not the hash's is [`VerifyError::Invalid`]: no signature of it exists.
pub fn verify_digest(
    spki_der: &[u8],
    alg: DigestSignAlgorithm,
    digest: &[u8],
    signature: &[u8],
) -> Result<(), VerifyError> {
    let key = key_type_of(spki_der)?;
    if !alg.fits(key) {
        return Err(VerifyError::AlgorithmMismatch {
            alg: alg.signature_algorithm(),
            key,
        });
    }
    if !alg.digest_len_fits(digest) {
        return Err(VerifyError::Invalid);
    }
    match alg {
        DigestSignAlgorithm::RsaPkcs1v15(h) => {
            let pk = rsa_key(spki_der)?;
            let sig = rsa::pkcs1v15::Signature::try_from(signature)
                .map_err(|e| VerifyError::Malformed(e.to_string()))?;
            let ok = match h {
                HashAlgorithm::Sha256 => {
                    rsa::pkcs1v15::VerifyingKey::<Sha256>::new(pk).verify_prehash(digest, &sig)
                }
                HashAlgorithm::Sha384 => {
                    rsa::pkcs1v15::VerifyingKey::<Sha384>::new(pk).verify_prehash(digest, &sig)
                }
                HashAlgorithm::Sha512 => {
                    rsa::pkcs1v15::VerifyingKey::<Sha512>::new(pk).verify_prehash(digest, &sig)
                }
            };
            ok.map_err(|_| VerifyError::Invalid)
        }
        DigestSignAlgorithm::RsaPss(h) => {
            let pk = rsa_key(spki_der)?;
            let sig = rsa::pss::Signature::try_from(signature)
                .map_err(|e| VerifyError::Malformed(e.to_string()))?;
            // `new` takes the salt length from the digest size: RFC 4055 as Hanko uses it.
            let ok = match h {
                HashAlgorithm::Sha256 => {
                    rsa::pss::VerifyingKey::<Sha256>::new(pk).verify_prehash(digest, &sig)
                }
                HashAlgorithm::Sha384 => {
                    rsa::pss::VerifyingKey::<Sha384>::new(pk).verify_prehash(digest, &sig)
                }
                HashAlgorithm::Sha512 => {
                    rsa::pss::VerifyingKey::<Sha512>::new(pk).verify_prehash(digest, &sig)
                }
            };
            ok.map_err(|_| VerifyError::Invalid)
        }
        // The hash need not be the curve's "own" one: ECDSA truncates the digest.
        DigestSignAlgorithm::Ecdsa(_) => match key {
            KeyType::EcP256 => {
                let vk = p256::ecdsa::VerifyingKey::from_public_key_der(spki_der)
                    .map_err(|e| VerifyError::BadKey(e.to_string()))?;
                let sig = p256::ecdsa::Signature::from_der(signature)
                    .map_err(|e| VerifyError::Malformed(e.to_string()))?;
                vk.verify_prehash(digest, &sig)
                    .map_err(|_| VerifyError::Invalid)
            }
            KeyType::EcP384 => {
                let vk = p384::ecdsa::VerifyingKey::from_public_key_der(spki_der)
                    .map_err(|e| VerifyError::BadKey(e.to_string()))?;
                let sig = p384::ecdsa::Signature::from_der(signature)
                    .map_err(|e| VerifyError::Malformed(e.to_string()))?;
                vk.verify_prehash(digest, &sig)
                    .map_err(|_| VerifyError::Invalid)
            }
            other => Err(VerifyError::AlgorithmMismatch {
                alg: alg.signature_algorithm(),
                key: other,
            }),
        },
    }
}

fn key_type_of(spki_der: &[u8]) -> Result<KeyType, VerifyError> {
    key_type_of_spki(spki_der)
        .ok_or_else(|| VerifyError::BadKey("not an RSA, P-256, P-384 or Ed25519 key".into()))
}

fn rsa_key(spki_der: &[u8]) -> Result<RsaPublicKey, VerifyError> {
    RsaPublicKey::from_public_key_der(spki_der).map_err(|e| VerifyError::BadKey(e.to_string()))
}

/// An RFC 8410 Ed25519 SubjectPublicKeyInfo.
fn ed25519_key(spki_der: &[u8]) -> Result<ed25519_dalek::VerifyingKey, VerifyError> {
    let raw = crate::alg::ed25519_public_key(spki_der)
        .ok_or_else(|| VerifyError::BadKey("not an RFC 8410 Ed25519 key".into()))?;
    ed25519_dalek::VerifyingKey::from_bytes(raw).map_err(|e| VerifyError::BadKey(e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failure should stop the test loudly

    use super::*;
    use std::path::Path;
    use std::process::Command;

    fn openssl(args: &[&str]) {
        let out = Command::new("openssl").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn s(p: &Path) -> &str {
        p.to_str().unwrap()
    }

    /// Generates a key with `genpkey_args`, signs `message` with `sign_args`, returns the
    /// SPKI DER and the signature.
    fn openssl_sign(
        genpkey_args: &[&str],
        sign_args: &[&str],
        message: &[u8],
    ) -> (Vec<u8>, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        let spki = dir.path().join("pub.der");
        let msg = dir.path().join("msg");
        let sig = dir.path().join("sig");
        std::fs::write(&msg, message).unwrap();
        let mut g = vec!["genpkey"];
        g.extend_from_slice(genpkey_args);
        g.extend_from_slice(&["-out", s(&key)]);
        openssl(&g);
        openssl(&[
            "pkey",
            "-in",
            s(&key),
            "-pubout",
            "-outform",
            "DER",
            "-out",
            s(&spki),
        ]);
        let mut d = vec![
            "pkeyutl",
            "-sign",
            "-inkey",
            s(&key),
            "-rawin",
            "-in",
            s(&msg),
        ];
        d.extend_from_slice(sign_args);
        d.extend_from_slice(&["-out", s(&sig)]);
        openssl(&d);
        (std::fs::read(&spki).unwrap(), std::fs::read(&sig).unwrap())
    }

    fn check(alg: SignatureAlgorithm, spki: &[u8], sig: &[u8]) {
        let msg = b"hanko verify test message";
        assert_eq!(verify(spki, alg, msg, sig), Ok(()), "{alg}");
        assert_eq!(
            verify(spki, alg, b"another message", sig),
            Err(VerifyError::Invalid),
            "{alg}: other message"
        );
        // A flipped bit in the signature must be rejected (as invalid or malformed).
        let mut bad = sig.to_vec();
        let i = bad.len() - 3;
        bad[i] ^= 0x01;
        assert!(verify(spki, alg, msg, &bad).is_err(), "{alg}: flipped bit");
    }

    const MSG: &[u8] = b"hanko verify test message";

    #[test]
    fn rsa_pkcs1_and_pss_from_openssl() {
        let rsa = ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"];
        for (h, name) in [
            (HashAlgorithm::Sha256, "sha256"),
            (HashAlgorithm::Sha384, "sha384"),
            (HashAlgorithm::Sha512, "sha512"),
        ] {
            let (spki, sig) = openssl_sign(&rsa, &["-digest", name], MSG);
            check(SignatureAlgorithm::RsaPkcs1v15(h), &spki, &sig);
            // The PKCS#1 signature is not a PSS signature.
            assert!(verify(&spki, SignatureAlgorithm::RsaPss(h), MSG, &sig).is_err());
            let (spki, sig) = openssl_sign(
                &rsa,
                &[
                    "-digest",
                    name,
                    "-pkeyopt",
                    "rsa_padding_mode:pss",
                    "-pkeyopt",
                    "rsa_pss_saltlen:digest",
                    "-pkeyopt",
                    &format!("rsa_mgf1_md:{name}"),
                ],
                MSG,
            );
            check(SignatureAlgorithm::RsaPss(h), &spki, &sig);
        }
    }

    #[test]
    fn ecdsa_p256_and_p384_from_openssl() {
        let (spki, sig) = openssl_sign(
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            &["-digest", "sha256"],
            MSG,
        );
        check(
            SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256),
            &spki,
            &sig,
        );
        let (spki, sig) = openssl_sign(
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
            &["-digest", "sha384"],
            MSG,
        );
        check(
            SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha384),
            &spki,
            &sig,
        );
        // Wrong hash for the signature.
        assert_eq!(
            verify(
                &spki,
                SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256),
                MSG,
                &sig
            ),
            Err(VerifyError::Invalid)
        );
    }

    #[test]
    fn ed25519_from_openssl() {
        let (spki, sig) = openssl_sign(&["-algorithm", "ED25519"], &[], MSG);
        check(SignatureAlgorithm::Ed25519, &spki, &sig);
    }

    #[test]
    fn mismatched_key_and_algorithm() {
        let (spki, sig) = openssl_sign(&["-algorithm", "ED25519"], &[], MSG);
        assert!(matches!(
            verify(
                &spki,
                SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256),
                MSG,
                &sig
            ),
            Err(VerifyError::AlgorithmMismatch { .. })
        ));
        assert!(matches!(
            verify(&spki[1..], SignatureAlgorithm::Ed25519, MSG, &sig),
            Err(VerifyError::BadKey(_))
        ));
        assert!(matches!(
            verify(&spki, SignatureAlgorithm::Ed25519, MSG, &sig[1..]),
            Err(VerifyError::Malformed(_))
        ));
    }
}
