//! What each signature algorithm asks of PKCS#11: the block the mechanism signs (for a
//! message, or for a digest the caller computed) and the mechanism with its parameters. The one place that maps [`SignatureAlgorithm`] to
//! `CKM_*`.

use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use hanko_pki::{DigestSignAlgorithm, HashAlgorithm, SignatureAlgorithm};

/// The mechanism a signature algorithm needs, and its PKCS#11 name (checked against the
/// token's mechanism list before a pool starts).
pub(crate) fn sign_mechanism(alg: SignatureAlgorithm) -> (MechanismType, &'static str) {
    match alg {
        SignatureAlgorithm::RsaPss(_) => (MechanismType::RSA_PKCS_PSS, "CKM_RSA_PKCS_PSS"),
        SignatureAlgorithm::Ecdsa(_) => (MechanismType::ECDSA, "CKM_ECDSA"),
        SignatureAlgorithm::Ed25519 => (MechanismType::EDDSA, "CKM_EDDSA"),
        // RsaPkcs1v15 and anything added later that is PKCS#1-shaped.
        _ => (MechanismType::RSA_PKCS, "CKM_RSA_PKCS"),
    }
}

/// What the mechanism signs for `alg`: the software hash, wrapped in a DigestInfo for
/// PKCS#1 v1.5; the message itself for Ed25519 (PureEdDSA).
pub(crate) fn block_to_sign(alg: SignatureAlgorithm, message: &[u8]) -> Vec<u8> {
    match DigestSignAlgorithm::from_signature_algorithm(alg) {
        Some(hashed) => digest_block(hashed, &hashed.hash().digest(message)),
        None => message.to_vec(),
    }
}

/// What the mechanism signs for a digest the caller computed: the DER DigestInfo
/// (`pki::alg`'s table) for PKCS#1 v1.5 under `CKM_RSA_PKCS`; the bare digest for
/// `CKM_RSA_PKCS_PSS` (the hash named in its parameters) and `CKM_ECDSA`.
pub(super) fn digest_block(alg: DigestSignAlgorithm, digest: &[u8]) -> Vec<u8> {
    match alg {
        DigestSignAlgorithm::RsaPkcs1v15(h) => h.digest_info(digest),
        DigestSignAlgorithm::RsaPss(_) | DigestSignAlgorithm::Ecdsa(_) => digest.to_vec(),
    }
}

fn hash_mechanisms(h: HashAlgorithm) -> (MechanismType, PkcsMgfType) {
    match h {
        HashAlgorithm::Sha384 => (MechanismType::SHA384, PkcsMgfType::MGF1_SHA384),
        HashAlgorithm::Sha512 => (MechanismType::SHA512, PkcsMgfType::MGF1_SHA512),
        _ => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
    }
}

pub(crate) fn mechanism(alg: SignatureAlgorithm) -> Mechanism<'static> {
    match alg {
        SignatureAlgorithm::RsaPss(h) => {
            let (hash_alg, mgf) = hash_mechanisms(h);
            Mechanism::RsaPkcsPss(PkcsPssParams {
                hash_alg,
                mgf,
                s_len: (h.output_len() as u64).into(),
            })
        }
        SignatureAlgorithm::Ecdsa(_) => Mechanism::Ecdsa,
        SignatureAlgorithm::Ed25519 => {
            Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure))
        }
        _ => Mechanism::RsaPkcs,
    }
}
