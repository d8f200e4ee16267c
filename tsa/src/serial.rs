//! Serial numbers: unique per TSA across restarts, crashes and nodes (CONFORMANCE B.25).
//!
//! [`SerialSource`] is the seam: the TSA asks it for the next [`Serial`] and never
//! learns where serials come from. The server implements it over the issuance log,
//! which reserves ranges atomically in the database (`hanko-store`'s serial module), so
//! nodes sharing one log never collide and a crash only skips the rest of a range. This
//! crate holds no allocator of its own: that would be I/O.
//!
//! A [`Serial`] is a positive INTEGER of at most 160 bits (RFC 3161 §2.4.2), kept as
//! minimal big-endian bytes.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use hanko_pki::BoxFuture;
use rasn::types::Integer;

/// A positive serial number of at most 160 bits, as minimal big-endian bytes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Serial(Vec<u8>);

impl Serial {
    /// Largest size in bytes (RFC 3161 §2.4.2: clients must handle 160 bits).
    pub const MAX_LEN: usize = 20;

    /// From a non-zero `u64`.
    pub fn from_u64(v: u64) -> Result<Self, SerialError> {
        Self::from_be_bytes(&v.to_be_bytes())
    }

    /// From big-endian magnitude bytes (leading zeros allowed); zero and values over
    /// 160 bits are refused.
    pub fn from_be_bytes(bytes: &[u8]) -> Result<Self, SerialError> {
        let start = bytes
            .iter()
            .position(|b| *b != 0)
            .ok_or_else(|| SerialError::new("serial number must be positive"))?;
        let magnitude = &bytes[start..];
        if magnitude.len() > Self::MAX_LEN {
            return Err(SerialError::new("serial number longer than 160 bits"));
        }
        Ok(Self(magnitude.to_vec()))
    }

    /// Minimal big-endian magnitude.
    pub fn as_be_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Lower-case hex of the magnitude (how logs and the store show it).
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }

    /// As an ASN.1 INTEGER.
    pub(crate) fn to_integer(&self) -> Result<Integer, rasn::error::DecodeError> {
        let mut content = Vec::with_capacity(self.0.len() + 1);
        if self.0.first().is_some_and(|b| b & 0x80 != 0) {
            content.push(0);
        }
        content.extend_from_slice(&self.0);
        let mut der = vec![0x02, content.len() as u8];
        der.extend_from_slice(&content);
        rasn::der::decode(&der)
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Serial({})", self.to_hex())
    }
}

/// A serial number could not be allocated. The TSA answers systemFailure.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("serial allocation: {0}")]
pub struct SerialError(String);

impl SerialError {
    /// A new error with a context message (no secrets: it is logged).
    pub fn new(context: impl Into<String>) -> Self {
        Self(context.into())
    }

    /// The context message.
    pub fn context(&self) -> &str {
        &self.0
    }
}

/// Hands out serial numbers that are never repeated for this TSA.
pub trait SerialSource: Send + Sync + fmt::Debug {
    /// The next serial. Once returned it is consumed, whether or not a token is issued.
    fn next_serial(&self) -> BoxFuture<'_, Result<Serial, SerialError>>;
}

/// Serials 1, 2, 3, ... counted in memory, for tests and simulations (the sibling of
/// [`crate::ManualClock`]). Unique within one process only: never wire it into a
/// server, whose serials must survive restarts (the issuance log reserves them).
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct CountingSerials(AtomicU64);

impl SerialSource for CountingSerials {
    fn next_serial(&self) -> BoxFuture<'_, Result<Serial, SerialError>> {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        Box::pin(async move { Serial::from_u64(n) })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests

    use super::*;

    #[test]
    fn serial_bounds() {
        assert!(Serial::from_u64(0).is_err());
        assert_eq!(Serial::from_u64(1).unwrap().as_be_bytes(), [1]);
        assert_eq!(
            Serial::from_be_bytes(&[0, 0, 0x80]).unwrap().as_be_bytes(),
            [0x80]
        );
        assert!(Serial::from_be_bytes(&[0xff; 20]).is_ok());
        assert!(Serial::from_be_bytes(&[0x01; 21]).is_err());
        let i = Serial::from_be_bytes(&[0xff; 20])
            .unwrap()
            .to_integer()
            .unwrap();
        assert_eq!(rasn::der::encode(&i).unwrap()[..3], [0x02, 21, 0x00]);
    }
}
