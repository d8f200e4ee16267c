//! [`KeyProtection`]: how a private key in the token is protected, in Hanko's words, and
//! the rule a production signing key must meet (CONFORMANCE 39).
//!
//! The token answers with PKCS#11 attributes; this type is the one place that reads them,
//! so that callers (the server's start-up gate, audits, tests) ask "may this key sign in
//! production?" without naming a PKCS#11 type.
//!
//! ```text
//!   Hsm::key_protection(label) ── C_GetAttributeValue ──> KeyProtection
//!   KeyProtection::production_check() ──> Verified | HistoryNotReported | Error
//! ```
//!
//! # The rule
//! The key must be `CKA_SENSITIVE` and not `CKA_EXTRACTABLE` now, and must have been so
//! since it was made (`CKA_ALWAYS_SENSITIVE`, `CKA_NEVER_EXTRACTABLE`): a key that was
//! ever exportable may exist outside the HSM. A token that does not report the two
//! history attributes passes with [`ProtectionHistory::NotReported`], which the caller
//! logs as a warning; a token that reports either as false fails.

use crate::Error;

/// How a private key is protected, as its token reports it. `None`: the token did not
/// report the attribute.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyProtection {
    /// The key's label.
    pub key: String,
    /// `CKA_SENSITIVE`: the secret value cannot be read out in the clear.
    pub sensitive: Option<bool>,
    /// `CKA_EXTRACTABLE`: the key can be wrapped out of the token.
    pub extractable: Option<bool>,
    /// `CKA_ALWAYS_SENSITIVE`: sensitive since it was made.
    pub always_sensitive: Option<bool>,
    /// `CKA_NEVER_EXTRACTABLE`: never extractable since it was made.
    pub never_extractable: Option<bool>,
    /// `CKA_LOCAL`: generated inside the token (not imported).
    pub local: Option<bool>,
    /// `CKA_TOKEN`: a persistent token object (not a session object).
    pub token_object: Option<bool>,
    /// `CKA_PRIVATE`: usable only after login.
    pub private: Option<bool>,
    /// `CKA_SIGN`: may sign.
    pub sign: Option<bool>,
    /// `CKA_DECRYPT`: may decrypt (a signing key should not).
    pub decrypt: Option<bool>,
    /// `CKA_UNWRAP`: may unwrap other keys (a signing key should not).
    pub unwrap: Option<bool>,
    /// `CKA_DERIVE`: may derive other keys (a signing key should not).
    pub derive: Option<bool>,
    /// Whether the token revealed secret key material (`CKA_VALUE` or
    /// `CKA_PRIVATE_EXPONENT`) when asked for it.
    pub secret_readable: bool,
}

/// What [`KeyProtection::production_check`] could establish about a key that passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtectionHistory {
    /// Sensitive and non-extractable now and since it was made.
    Verified,
    /// Sensitive and non-extractable now; the token does not report whether it always
    /// was (`CKA_ALWAYS_SENSITIVE` / `CKA_NEVER_EXTRACTABLE` missing).
    NotReported,
}

impl KeyProtection {
    /// The uses besides signing the token says the key allows (`"decrypt"`, `"unwrap"`,
    /// `"derive"`); empty for a key `Hsm::generate_key_pair` made.
    pub fn other_uses(&self) -> Vec<&'static str> {
        [
            (self.decrypt, "decrypt"),
            (self.unwrap, "unwrap"),
            (self.derive, "derive"),
        ]
        .into_iter()
        .filter(|(v, _)| *v == Some(true))
        .map(|(_, name)| name)
        .collect()
    }

    /// Whether the key meets the production rule (see the module documentation).
    ///
    /// Errors: [`Error::KeyExtractable`] when the key is readable or extractable now,
    /// [`Error::KeyWasExtractable`] when the token says it was at some point.
    pub fn production_check(&self) -> Result<ProtectionHistory, Error> {
        let (always, never) = (self.always_sensitive, self.never_extractable);
        if self.sensitive != Some(true) || self.extractable != Some(false) {
            return Err(Error::KeyExtractable {
                key: self.key.clone(),
                sensitive: self.sensitive,
                extractable: self.extractable,
            });
        }
        match (always, never) {
            (Some(true), Some(true)) => Ok(ProtectionHistory::Verified),
            (Some(false), _) | (_, Some(false)) => Err(Error::KeyWasExtractable {
                key: self.key.clone(),
                always_sensitive: always,
                never_extractable: never,
            }),
            _ => Ok(ProtectionHistory::NotReported),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failure should stop the test loudly
    use super::*;

    fn key(s: Option<bool>, e: Option<bool>, a: Option<bool>, n: Option<bool>) -> KeyProtection {
        KeyProtection {
            key: "tsa".into(),
            sensitive: s,
            extractable: e,
            always_sensitive: a,
            never_extractable: n,
            ..KeyProtection::default()
        }
    }

    #[test]
    fn the_production_rule() {
        let (t, f) = (Some(true), Some(false));
        assert!(matches!(
            key(t, f, t, t).production_check(),
            Ok(ProtectionHistory::Verified)
        ));
        assert!(matches!(
            key(t, f, None, None).production_check(),
            Ok(ProtectionHistory::NotReported)
        ));
        assert!(matches!(
            key(t, f, t, None).production_check(),
            Ok(ProtectionHistory::NotReported)
        ));
        let e = key(t, f, f, t).production_check().unwrap_err();
        assert!(matches!(e, Error::KeyWasExtractable { .. }), "{e}");
        assert!(
            e.to_string().contains("CKA_ALWAYS_SENSITIVE=Some(false)"),
            "{e}"
        );
        assert!(matches!(
            key(t, f, t, f).production_check(),
            Err(Error::KeyWasExtractable { .. })
        ));
        for (s, x) in [(f, f), (t, t), (None, f), (t, None)] {
            let e = key(s, x, t, t).production_check().unwrap_err();
            assert!(matches!(e, Error::KeyExtractable { .. }), "{e}");
            assert!(e.to_string().starts_with("key \"tsa\": "), "{e}");
        }
    }
}
