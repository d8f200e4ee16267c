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
//! these bytes are a signature of this message by this key, and nothing more.
//!
//! Backends, chosen by measurement (`hanko-bench verify`, benches/RESULTS.md): RSA and
//! ECDSA run on the system's OpenSSL 3 (the `openssl` crate), whose assembly-optimised
//! code verified 5–7× faster on this project's machines than the pure-Rust `rsa` and
//! `p256` crates (RSA-3072: 5,700/s against OpenSSL's 28,000/s; P-256: 2,300/s against
//! 17,000/s), which made verify-after-sign cost 13 % of RSA throughput and 40 % of
//! P-256's (issue #17). `ring` verifies only messages, not the digests the CSC API's
//! `signHash` signs, and `aws-lc-rs` builds a C library from source on every clean build;
//! Debian's OpenSSL 3 is already what the tests check against. Ed25519 stays on
//! `ed25519-dalek` (`verify_strict`), which is faster here than OpenSSL 3.0's.
//! The unit tests cross-check signatures made by the `openssl` CLI.

use openssl::md::{Md, MdRef};
use openssl::pkey::{PKey, Public};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use openssl::sign::RsaPssSaltlen;

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
/// `spki_der` (parses the key: for many signatures of one key, keep a [`VerifyingKey`]).
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
    VerifyingKey::from_spki_der(spki_der)?.verify(alg, message, signature)
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
    VerifyingKey::from_spki_der(spki_der)?.verify_digest(alg, digest, signature)
}

/// A public key parsed once for many verifications (verify-after-sign keeps one per
/// signing key): OpenSSL 3's key decoding costs several times a verification.
pub struct VerifyingKey {
    key_type: KeyType,
    inner: Inner,
}

enum Inner {
    /// RSA and ECDSA keys.
    OpenSsl(PKey<Public>),
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("key_type", &self.key_type)
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// Parses a SubjectPublicKeyInfo of a key type Hanko uses (RSA, P-256, P-384,
    /// Ed25519).
    pub fn from_spki_der(spki_der: &[u8]) -> Result<VerifyingKey, VerifyError> {
        let key_type = key_type_of(spki_der)?;
        let inner = match key_type {
            KeyType::Ed25519 => Inner::Ed25519(ed25519_key(spki_der)?),
            _ => Inner::OpenSsl(
                PKey::public_key_from_der(spki_der)
                    .map_err(|e| VerifyError::BadKey(e.to_string()))?,
            ),
        };
        Ok(VerifyingKey { key_type, inner })
    }

    /// The key's type.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// Checks that `signature` is a valid `alg` signature of `message` by this key.
    pub fn verify(
        &self,
        alg: SignatureAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), VerifyError> {
        if let Some(prehashed) = DigestSignAlgorithm::from_signature_algorithm(alg) {
            // Every hashed scheme is a signature of the message's digest: one code path.
            return self.verify_digest(prehashed, &prehashed.hash().digest(message), signature);
        }
        let key = self.key_type;
        match &self.inner {
            Inner::Ed25519(vk) if alg.fits(key) => {
                let sig = ed25519_dalek::Signature::from_slice(signature)
                    .map_err(|e| VerifyError::Malformed(e.to_string()))?;
                vk.verify_strict(message, &sig)
                    .map_err(|_| VerifyError::Invalid)
            }
            _ => Err(VerifyError::AlgorithmMismatch { alg, key }),
        }
    }

    /// Checks that `signature` is a valid `alg` signature over `digest` by this key (see
    /// [`verify_digest`]).
    pub fn verify_digest(
        &self,
        alg: DigestSignAlgorithm,
        digest: &[u8],
        signature: &[u8],
    ) -> Result<(), VerifyError> {
        let key = self.key_type;
        let pkey = match &self.inner {
            Inner::OpenSsl(pkey) if alg.fits(key) => pkey,
            _ => {
                return Err(VerifyError::AlgorithmMismatch {
                    alg: alg.signature_algorithm(),
                    key,
                });
            }
        };
        if !alg.digest_len_fits(digest) {
            return Err(VerifyError::Invalid);
        }
        openssl_verify(pkey, alg, digest, signature)
    }
}

/// A hashed scheme's signature check on OpenSSL.
fn openssl_verify(
    pkey: &PKey<Public>,
    alg: DigestSignAlgorithm,
    digest: &[u8],
    signature: &[u8],
) -> Result<(), VerifyError> {
    if let DigestSignAlgorithm::RsaPkcs1v15(_) | DigestSignAlgorithm::RsaPss(_) = alg {
        // A signature is exactly as long as the modulus (RFC 8017 8.2.2 step 1).
        if signature.len() != pkey.size() {
            return Err(VerifyError::Malformed(format!(
                "{} bytes for a {}-byte RSA modulus",
                signature.len(),
                pkey.size()
            )));
        }
    }
    // Setting up a context for a parsed key of the checked type fails only if OpenSSL
    // cannot use that key with that algorithm.
    let setup = |e: openssl::error::ErrorStack| VerifyError::BadKey(e.to_string());
    let mut ctx = PkeyCtx::new(pkey).map_err(setup)?;
    ctx.verify_init().map_err(setup)?;
    let md = message_digest(alg.hash());
    match alg {
        DigestSignAlgorithm::RsaPkcs1v15(_) => {
            ctx.set_rsa_padding(Padding::PKCS1).map_err(setup)?;
        }
        DigestSignAlgorithm::RsaPss(_) => {
            // MGF1 over the same hash and a salt as long as the hash: RFC 4055 as Hanko
            // signs it; OpenSSL then accepts no other salt length.
            ctx.set_rsa_padding(Padding::PKCS1_PSS).map_err(setup)?;
            ctx.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)
                .map_err(setup)?;
            ctx.set_rsa_mgf1_md(md).map_err(setup)?;
        }
        // The hash need not be the curve's "own" one: ECDSA truncates the digest.
        // OpenSSL refuses a signature that is not DER (it re-encodes and compares).
        DigestSignAlgorithm::Ecdsa(_) => {}
    }
    ctx.set_signature_md(md).map_err(setup)?;
    match ctx.verify(digest, signature) {
        Ok(true) => Ok(()),
        _ => {
            // A refusal may leave entries on this thread's OpenSSL error queue; drop
            // them so that they are not reported with a later, unrelated failure.
            drop(openssl::error::ErrorStack::get());
            Err(VerifyError::Invalid)
        }
    }
}

/// OpenSSL's digest of `h`.
fn message_digest(h: HashAlgorithm) -> &'static MdRef {
    match h {
        HashAlgorithm::Sha256 => Md::sha256(),
        HashAlgorithm::Sha384 => Md::sha384(),
        HashAlgorithm::Sha512 => Md::sha512(),
    }
}

fn key_type_of(spki_der: &[u8]) -> Result<KeyType, VerifyError> {
    key_type_of_spki(spki_der)
        .ok_or_else(|| VerifyError::BadKey("not an RSA, P-256, P-384 or Ed25519 key".into()))
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
    fn rsa_pss_with_another_salt_length_and_short_signatures_are_refused() {
        let rsa = ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"];
        let alg = SignatureAlgorithm::RsaPss(HashAlgorithm::Sha256);
        // A valid PSS signature, but with a 20-byte salt where Hanko uses the hash's 32.
        let (spki, sig) = openssl_sign(
            &rsa,
            &[
                "-digest",
                "sha256",
                "-pkeyopt",
                "rsa_padding_mode:pss",
                "-pkeyopt",
                "rsa_pss_saltlen:20",
            ],
            MSG,
        );
        assert_eq!(verify(&spki, alg, MSG, &sig), Err(VerifyError::Invalid));
        assert!(matches!(
            verify(&spki, alg, MSG, &sig[1..]),
            Err(VerifyError::Malformed(_))
        ));
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
