//! Keys in the token: generating a key pair, reading a public key as a
//! SubjectPublicKeyInfo, and reading how a private key is protected.
//!
//! Each operation opens a short-lived session of its own through
//! `HsmInner::with_session` (see `token.rs`): they are rare, and a session per call cannot be
//! left in a half-finished operation state.
//!
//! # What generation promises
//! Both halves carry the label and one random `CKA_ID`; the private half is
//! `CKA_SENSITIVE`, not `CKA_EXTRACTABLE`, `CKA_TOKEN`, `CKA_PRIVATE` and `CKA_SIGN`, so
//! the token marks it `CKA_ALWAYS_SENSITIVE` and `CKA_NEVER_EXTRACTABLE`, which is what
//! [`crate::KeyProtection::production_check`] asks for. A signing key does nothing else:
//! `CKA_DECRYPT`, `CKA_UNWRAP` and `CKA_DERIVE` are false on the private half,
//! `CKA_ENCRYPT` and `CKA_WRAP` on the public one (a token's defaults differ: SoftHSM's
//! RSA keys may decrypt unless told otherwise). RSA keys are 3072 to 8192 bits (ETSI TS
//! 119 312 gives RSA-2048 no future for new keys).

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType as CkKeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use hanko_pki::KeyType;

use crate::error::Error;
use crate::protection::KeyProtection;
use crate::token::find_private_key;
use crate::{Hsm, spki};

/// Generation attempts when SoftHSM fails one with `CKR_GENERAL_ERROR` (see
/// [`generate_with_retry`]).
const KEYGEN_ATTEMPTS: u32 = 3;

impl Hsm {
    /// Whether the token offers the mechanism to generate keys of type `kt`.
    pub fn offers_key_type(&self, kt: KeyType) -> Result<bool, Error> {
        let (mech, _) = keygen_mechanism(kt);
        self.offers(mech)
    }

    /// Generates a key pair labelled `label` (see the module documentation for its
    /// attributes). Returns the SubjectPublicKeyInfo DER. Fails if any object already
    /// carries the label, or if the token does not offer the mechanism.
    pub fn generate_key_pair(&self, label: &str, kt: KeyType) -> Result<Vec<u8>, Error> {
        let token = self.inner.label.clone();
        let (mechanism, mut public) = keygen_template(label, kt)?;
        let (mech_type, mech_name) = keygen_mechanism(kt);
        if !self.offers(mech_type)? {
            return Err(Error::MechanismNotOffered {
                token,
                mechanism: mech_name,
            });
        }
        self.inner.with_session(true, |s| {
            let ck = |e| Error::from_cryptoki(e, &token);
            let existing = s
                .find_objects(&[Attribute::Label(label.as_bytes().to_vec())])
                .map_err(ck)?;
            if !existing.is_empty() {
                return Err(Error::KeyExists {
                    token: token.clone(),
                    key: label.to_owned(),
                });
            }
            let id = s.generate_random_vec(16).map_err(ck)?;
            let common = [
                Attribute::Token(true),
                Attribute::Label(label.as_bytes().to_vec()),
                Attribute::Id(id),
            ];
            public.extend_from_slice(&common);
            public.extend([
                Attribute::Private(false),
                Attribute::Verify(true),
                Attribute::Encrypt(false),
                Attribute::Wrap(false),
            ]);
            let mut private = common.to_vec();
            private.extend([
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Sign(true),
                Attribute::Decrypt(false),
                Attribute::Unwrap(false),
                Attribute::Derive(false),
            ]);
            let pub_handle = generate_with_retry(s, &token, label, &mechanism, &public, &private)?;
            let spki = read_spki(s, pub_handle, &token, label)?;
            tracing::info!(token = %token, key = label, key_type = %kt, "key pair generated");
            Ok(spki)
        })
    }

    /// The SubjectPublicKeyInfo DER of the public key labelled `label`, or `None` if the
    /// token holds no public key with that label.
    pub fn public_key(&self, label: &str) -> Result<Option<Vec<u8>>, Error> {
        let token = self.inner.label.clone();
        self.inner.with_session(false, |s| {
            let found = s
                .find_objects(&[
                    Attribute::Class(ObjectClass::PUBLIC_KEY),
                    Attribute::Label(label.as_bytes().to_vec()),
                ])
                .map_err(|e| Error::from_cryptoki(e, &token))?;
            match found.as_slice() {
                [] => Ok(None),
                [one] => read_spki(s, *one, &token, label).map(Some),
                many => Err(Error::UnsupportedKey {
                    key: label.to_owned(),
                    reason: format!("{} public keys carry this label", many.len()),
                }),
            }
        })
    }

    /// How the private key labelled `label` is protected: its sensitivity and
    /// extractability now and since it was made, where it was generated, and whether
    /// its secret value can be read. Attributes the token does not report stay `None`.
    pub fn key_protection(&self, label: &str) -> Result<KeyProtection, Error> {
        let token = self.inner.label.clone();
        let attrs = self.inner.with_session(false, |s| {
            let key = find_private_key(s, &token, label)?;
            s.get_attributes(
                key,
                &[
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                    AttributeType::AlwaysSensitive,
                    AttributeType::NeverExtractable,
                    AttributeType::Local,
                    AttributeType::Token,
                    AttributeType::Private,
                    AttributeType::Sign,
                    AttributeType::Decrypt,
                    AttributeType::Unwrap,
                    AttributeType::Derive,
                    // Asked for so that a token that reveals them is caught; a
                    // conforming one refuses (CKR_ATTRIBUTE_SENSITIVE) and cryptoki
                    // leaves them out.
                    AttributeType::Value,
                    AttributeType::PrivateExponent,
                ],
            )
            .map_err(|e| Error::from_cryptoki(e, &token))
        })?;
        let mut p = KeyProtection {
            key: label.to_owned(),
            ..KeyProtection::default()
        };
        for a in attrs {
            match a {
                Attribute::Sensitive(v) => p.sensitive = Some(v),
                Attribute::Extractable(v) => p.extractable = Some(v),
                Attribute::AlwaysSensitive(v) => p.always_sensitive = Some(v),
                Attribute::NeverExtractable(v) => p.never_extractable = Some(v),
                Attribute::Local(v) => p.local = Some(v),
                Attribute::Token(v) => p.token_object = Some(v),
                Attribute::Private(v) => p.private = Some(v),
                Attribute::Sign(v) => p.sign = Some(v),
                Attribute::Decrypt(v) => p.decrypt = Some(v),
                Attribute::Unwrap(v) => p.unwrap = Some(v),
                Attribute::Derive(v) => p.derive = Some(v),
                Attribute::Value(_) | Attribute::PrivateExponent(_) => p.secret_readable = true,
                _ => {}
            }
        }
        Ok(p)
    }
}

/// The generation mechanism for `kt` and the public template's key-specific part.
fn keygen_template(
    label: &str,
    kt: KeyType,
) -> Result<(Mechanism<'static>, Vec<Attribute>), Error> {
    Ok(match kt {
        KeyType::Rsa { bits } if (3072..=8192).contains(&bits) => (
            Mechanism::RsaPkcsKeyPairGen,
            vec![
                Attribute::ModulusBits((bits as u64).into()),
                Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
            ],
        ),
        KeyType::Rsa { bits } => {
            return Err(Error::UnsupportedKey {
                key: label.to_owned(),
                reason: format!("RSA-{bits}: new keys are 3072 to 8192 bits (ETSI TS 119 312)"),
            });
        }
        KeyType::EcP256 => (
            Mechanism::EccKeyPairGen,
            vec![Attribute::EcParams(spki::ec_params_p256())],
        ),
        KeyType::EcP384 => (
            Mechanism::EccKeyPairGen,
            vec![Attribute::EcParams(spki::ec_params_p384())],
        ),
        KeyType::Ed25519 => (
            Mechanism::EccEdwardsKeyPairGen,
            vec![Attribute::EcParams(spki::ec_params_ed25519())],
        ),
        other => {
            return Err(Error::UnsupportedKey {
                key: label.to_owned(),
                reason: format!("key type {other} is not supported"),
            });
        }
    })
}

/// `C_GenerateKeyPair`, tried again (at most [`KEYGEN_ATTEMPTS`] in all) when it fails
/// with `CKR_GENERAL_ERROR` or `CKR_FUNCTION_FAILED` and left nothing behind. Returns the
/// public key's handle.
///
/// SoftHSM 2.6.1 on OpenSSL 3 now and then fails an EC key generation with
/// CKR_GENERAL_ERROR (seen once in a CI run of hsm/tests/sign.rs). A failed
/// C_GenerateKeyPair creates no object (PKCS#11 v2.40 §5.14), which is checked below
/// before trying again, so a bounded retry is safe; a real fault fails every attempt and
/// is reported.
fn generate_with_retry(
    s: &Session,
    token: &str,
    label: &str,
    mechanism: &Mechanism<'_>,
    public: &[Attribute],
    private: &[Attribute],
) -> Result<ObjectHandle, Error> {
    let ck = |e| Error::from_cryptoki(e, token);
    let mut attempt = 0;
    loop {
        attempt += 1;
        match s.generate_key_pair(mechanism, public, private) {
            Ok((public_handle, _private)) => return Ok(public_handle),
            Err(e @ CkError::Pkcs11(RvError::GeneralError | RvError::FunctionFailed, _))
                if attempt < KEYGEN_ATTEMPTS =>
            {
                let left = s
                    .find_objects(&[Attribute::Label(label.as_bytes().to_vec())])
                    .map_err(ck)?;
                if !left.is_empty() {
                    return Err(ck(e));
                }
                tracing::warn!(token = %token, key = label, attempt, error = %e,
                    "key generation failed and left nothing behind; trying again");
            }
            Err(e) => return Err(ck(e)),
        }
    }
}

pub(crate) fn keygen_mechanism(kt: KeyType) -> (MechanismType, &'static str) {
    match kt {
        KeyType::EcP256 | KeyType::EcP384 => {
            (MechanismType::ECC_KEY_PAIR_GEN, "CKM_EC_KEY_PAIR_GEN")
        }
        KeyType::Ed25519 => (
            MechanismType::ECC_EDWARDS_KEY_PAIR_GEN,
            "CKM_EC_EDWARDS_KEY_PAIR_GEN",
        ),
        _ => (
            MechanismType::RSA_PKCS_KEY_PAIR_GEN,
            "CKM_RSA_PKCS_KEY_PAIR_GEN",
        ),
    }
}

/// Builds the SPKI from a public key object's attributes.
fn read_spki(s: &Session, h: ObjectHandle, token: &str, label: &str) -> Result<Vec<u8>, Error> {
    let ck = |e| Error::from_cryptoki(e, token);
    let unsupported = |reason: &str| Error::UnsupportedKey {
        key: label.to_owned(),
        reason: reason.to_owned(),
    };
    let kt = s
        .get_attributes(h, &[AttributeType::KeyType])
        .map_err(ck)?
        .into_iter()
        .find_map(|a| match a {
            Attribute::KeyType(k) => Some(k),
            _ => None,
        })
        .ok_or_else(|| unsupported("no CKA_KEY_TYPE"))?;
    if kt == CkKeyType::RSA {
        let attrs = s
            .get_attributes(h, &[AttributeType::Modulus, AttributeType::PublicExponent])
            .map_err(ck)?;
        let (mut n, mut e) = (None, None);
        for a in attrs {
            match a {
                Attribute::Modulus(v) => n = Some(v),
                Attribute::PublicExponent(v) => e = Some(v),
                _ => {}
            }
        }
        match (n, e) {
            (Some(n), Some(e)) => Ok(spki::rsa(&n, &e)),
            _ => Err(unsupported("RSA public key without modulus or exponent")),
        }
    } else if kt == CkKeyType::EC || kt == CkKeyType::EC_EDWARDS {
        let attrs = s
            .get_attributes(h, &[AttributeType::EcParams, AttributeType::EcPoint])
            .map_err(ck)?;
        let (mut params, mut point) = (None, None);
        for a in attrs {
            match a {
                Attribute::EcParams(v) => params = Some(v),
                Attribute::EcPoint(v) => point = Some(v),
                _ => {}
            }
        }
        match (params, point) {
            (Some(params), Some(point)) => spki::ec(&params, &point)
                .ok_or_else(|| unsupported("curve not supported or malformed CKA_EC_POINT")),
            _ => Err(unsupported(
                "EC public key without CKA_EC_PARAMS or CKA_EC_POINT",
            )),
        }
    } else {
        Err(unsupported(&format!("key type {kt} is not supported")))
    }
}
