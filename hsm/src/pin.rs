//! The PIN type: a `secrecy::SecretString` that never prints.
//!
//! PINs come from `HANKO_PIN`, a file named by `HANKO_PIN_FILE` or the systemd
//! credential `pin` (`LoadCredential=pin:/etc/hanko/pin`, read from
//! `$CREDENTIALS_DIRECTORY`), never from a flag (flags show up in `ps`). Errors about a PIN source name the variable or path only.
//!
//! A server takes the PIN out of its environment once it has read it
//! ([`Pin::take_from_env`]): otherwise every child process (`chronyc`, ...) would inherit
//! it, and it would stay readable in `/proc/<pid>/environ` for the process's lifetime.

use std::fmt;
use std::path::Path;

use secrecy::{ExposeSecret, SecretString};

use crate::error::{Error, Redacted};

/// A token PIN. `Debug` prints `Pin(<redacted>)`; there is no `Display`.
#[derive(Clone)]
pub struct Pin(SecretString);

impl Pin {
    /// The environment variables a PIN may come from. Whoever spawns a child process
    /// removes them from its environment (`Command::env_remove`), whatever the parent's.
    pub const ENV_VARS: [&'static str; 2] = ["HANKO_PIN", "HANKO_PIN_FILE"];

    /// Wraps a PIN.
    pub fn new(s: String) -> Pin {
        Pin(SecretString::from(s))
    }

    /// The name of the systemd credential holding the PIN (`LoadCredential=pin:...`),
    /// read from `$CREDENTIALS_DIRECTORY` when neither variable is set.
    pub const CREDENTIAL: &'static str = "pin";

    /// Reads the PIN from `HANKO_PIN`, else from the file named by `HANKO_PIN_FILE`,
    /// else from the systemd credential [`Pin::CREDENTIAL`] in `$CREDENTIALS_DIRECTORY`
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
        match (
            std::env::var_os("HANKO_PIN_FILE"),
            std::env::var_os("CREDENTIALS_DIRECTORY"),
        ) {
            (Some(p), _) => Pin::from_file(Path::new(&p)),
            (None, Some(dir)) => Pin::from_file(&Path::new(&dir).join(Pin::CREDENTIAL)),
            (None, None) => Err(Error::PinSource(
                "neither HANKO_PIN nor HANKO_PIN_FILE is set (nor a systemd credential \
                 directory)"
                    .into(),
            )),
        }
    }

    /// Reads the PIN like [`Pin::from_env`], then removes [`Pin::ENV_VARS`] from the
    /// process environment, whatever the outcome. `HANKO_PIN`'s value is overwritten with
    /// zero bytes where it lies first, so that it is gone from `/proc/<pid>/environ` too
    /// (which shows the environment block the process started with, not the current
    /// `environ`), and no child process started later can inherit it.
    ///
    /// Call it first thing in `main`, before any other thread is started: changing the
    /// environment while another thread may read it is not sound (the reason `set_var`
    /// and `remove_var` are `unsafe` in edition 2024).
    pub fn take_from_env() -> Result<Pin, Error> {
        let pin = Pin::from_env();
        blank_and_remove(c"HANKO_PIN");
        blank_and_remove(c"HANKO_PIN_FILE");
        pin
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

/// Overwrites the value of the environment variable `name` with zero bytes in place, then
/// removes the variable. See [`Pin::take_from_env`] for the precondition.
fn blank_and_remove(name: &std::ffi::CStr) {
    #[allow(unsafe_code)]
    // SAFETY: documented precondition of `take_from_env`: no other thread exists, so
    // nothing reads or changes the environment meanwhile. `getenv` returns null or a
    // pointer to the NUL-terminated value inside the "NAME=value" string of the
    // environment: the block the kernel copied onto the process's stack, or a string
    // `setenv` allocated, both writable. `strlen` bytes from it are the value; zeroing
    // them leaves the terminator in place. `remove_var` then takes the entry out of
    // `environ` (the precondition is the same).
    unsafe {
        let value = libc::getenv(name.as_ptr());
        if !value.is_null() {
            std::ptr::write_bytes(value, 0, libc::strlen(value));
        }
        if let Ok(name) = name.to_str() {
            std::env::remove_var(name);
        }
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
