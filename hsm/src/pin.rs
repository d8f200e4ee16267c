//! The PIN type: a `secrecy::SecretString` that never prints.
//!
//! PINs come from `HANKO_PIN` or a file named by `HANKO_PIN_FILE`, never from a flag
//! (flags show up in `ps`). Errors about a PIN source name the variable or path only.

use std::fmt;
use std::path::Path;

use secrecy::{ExposeSecret, SecretString};

use crate::error::{Error, Redacted};

/// A token PIN. `Debug` prints `Pin(<redacted>)`; there is no `Display`.
#[derive(Clone)]
pub struct Pin(SecretString);

impl Pin {
    /// Wraps a PIN.
    pub fn new(s: String) -> Pin {
        Pin(SecretString::from(s))
    }

    /// Reads the PIN from `HANKO_PIN`, else from the file named by `HANKO_PIN_FILE`
    /// (surrounding white space trimmed).
    pub fn from_env() -> Result<Pin, Error> {
        if let Some(v) = std::env::var_os("HANKO_PIN") {
            let s = v
                .into_string()
                .map_err(|_| Error::PinSource("HANKO_PIN is not valid UTF-8".into()))?;
            if s.is_empty() {
                return Err(Error::PinSource("HANKO_PIN is empty".into()));
            }
            return Ok(Pin::new(s));
        }
        match std::env::var_os("HANKO_PIN_FILE") {
            Some(p) => Pin::from_file(Path::new(&p)),
            None => Err(Error::PinSource(
                "neither HANKO_PIN nor HANKO_PIN_FILE is set".into(),
            )),
        }
    }

    /// Reads the PIN from a file (surrounding white space trimmed).
    pub fn from_file(p: &Path) -> Result<Pin, Error> {
        let raw = std::fs::read_to_string(p).map_err(|e| {
            Error::PinSource(format!(
                "cannot read PIN file {}: {}",
                p.display(),
                e.kind()
            ))
        })?;
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(Error::PinSource(format!(
                "PIN file {} is empty",
                p.display()
            )));
        }
        Ok(Pin::new(trimmed.to_owned()))
    }

    /// The secret, for cryptoki's `AuthPin` (which is the same `SecretString` type).
    pub(crate) fn auth_pin(&self) -> &SecretString {
        &self.0
    }

    /// Constant-time comparison (no early exit on the first differing byte).
    pub(crate) fn same_as(&self, other: &Pin) -> bool {
        let (a, b) = (
            self.0.expose_secret().as_bytes(),
            other.0.expose_secret().as_bytes(),
        );
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// Length in bytes, for range checks that must not show the PIN.
    pub(crate) fn len(&self) -> usize {
        self.0.expose_secret().len()
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Pin").field(&Redacted).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let p = Pin::new("1234-secret".into());
        assert_eq!(format!("{p:?}"), "Pin(<redacted>)");
    }

    #[test]
    fn file_is_trimmed_and_errors_name_only_the_path() {
        let dir = std::env::temp_dir().join(format!("hanko-pin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok();
        let f = dir.join("pin");
        std::fs::write(&f, "  s3cr3t-pin\n").ok();
        let p = Pin::from_file(&f);
        assert!(matches!(p, Ok(ref p) if p.auth_pin().expose_secret() == "s3cr3t-pin"));
        let missing = Pin::from_file(&dir.join("nope"));
        assert!(matches!(missing, Err(Error::PinSource(ref m)) if m.contains("nope")));
        std::fs::remove_dir_all(&dir).ok();
    }
}
