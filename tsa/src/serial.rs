//! Serial numbers: unique per TSA across restarts and crashes (CONFORMANCE B.25).
//!
//! [`SerialSource`] is the seam: the store crate implements it over the issuance log
//! (several nodes, one database); [`FileSerialSource`] is the single-node stand-in
//! until then. A [`Serial`] is a positive INTEGER of at most 160 bits.
//!
//! `FileSerialSource` reserves ranges: the file holds the first serial NOT yet
//! reserved. Before any serial of a new range is handed out, the file is rewritten to
//! the end of that range and made durable (write to a temporary file, fsync, rename,
//! fsync the directory). After a crash the unused rest of a range is skipped, never
//! reused. This is file I/O in a crate that otherwise has none: it is one small,
//! optional part the server may choose, kept here because it exists only to satisfy
//! [`SerialSource`]. One process per file: it does not lock the file.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

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

/// Range-reserving serial source over one small file. See the module docs.
#[derive(Debug)]
pub struct FileSerialSource {
    path: PathBuf,
    range: u64,
    state: Mutex<Range>,
}

#[derive(Debug)]
struct Range {
    next: u64,
    end: u64,
}

const MAGIC: &str = "hanko-serial-v1";

impl FileSerialSource {
    /// Opens (or creates) the reservation file. `range` serials are reserved per fsync.
    pub fn open(path: impl AsRef<Path>, range: u64) -> Result<Self, SerialError> {
        let path = path.as_ref().to_path_buf();
        if range == 0 {
            return Err(SerialError::new("range must be at least 1"));
        }
        let next = match fs::read_to_string(&path) {
            Ok(text) => parse_file(&text).ok_or_else(|| {
                SerialError::new(format!(
                    "{} is not a serial reservation file",
                    path.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                write_durably(&path, 1)?;
                1
            }
            Err(e) => return Err(SerialError::new(format!("{}: {e}", path.display()))),
        };
        Ok(Self {
            path,
            range,
            state: Mutex::new(Range { next, end: next }),
        })
    }

    fn allocate(&self) -> Result<Serial, SerialError> {
        let mut r = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if r.next >= r.end {
            let end = r
                .next
                .checked_add(self.range)
                .ok_or_else(|| SerialError::new("serial space exhausted"))?;
            write_durably(&self.path, end)?;
            r.end = end;
        }
        let serial = Serial::from_u64(r.next)?;
        r.next += 1;
        Ok(serial)
    }
}

impl SerialSource for FileSerialSource {
    fn next_serial(&self) -> BoxFuture<'_, Result<Serial, SerialError>> {
        // The fsync happens once per range, under the lock; it blocks this task for that
        // moment, which is the price of never handing out an unreserved serial.
        Box::pin(async move { self.allocate() })
    }
}

fn parse_file(text: &str) -> Option<u64> {
    let rest = text.strip_prefix(MAGIC)?.trim();
    let v: u64 = rest.parse().ok()?;
    (v > 0).then_some(v)
}

fn write_durably(path: &Path, next: u64) -> Result<(), SerialError> {
    let err =
        |what: &str, e: std::io::Error| SerialError::new(format!("{what} {}: {e}", path.display()));
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp).map_err(|e| err("create", e))?;
    f.write_all(format!("{MAGIC} {next}\n").as_bytes())
        .map_err(|e| err("write", e))?;
    f.sync_all().map_err(|e| err("fsync", e))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| err("rename", e))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| err("fsync directory of", e))?;
    Ok(())
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

    #[test]
    fn restart_never_repeats_and_skips_the_rest_of_a_range() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serial");
        let mut seen = std::collections::HashSet::new();
        let mut last = 0u64;
        for _ in 0..4 {
            let src = FileSerialSource::open(&path, 10).unwrap();
            for _ in 0..3 {
                let s = src.allocate().unwrap();
                let v = u64::from_str_radix(&s.to_hex(), 16).unwrap();
                assert!(v > last, "increasing");
                last = v;
                assert!(seen.insert(s), "never repeated");
            }
            // dropped without a clean shutdown: like a crash
        }
        assert_eq!(seen.len(), 12);
        assert_eq!(last, 33, "each restart starts at the next range");
    }

    #[test]
    fn refuses_garbage_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serial");
        fs::write(&path, "hello").unwrap();
        assert!(FileSerialSource::open(&path, 10).is_err());
        fs::write(&path, "hanko-serial-v1 0\n").unwrap();
        assert!(FileSerialSource::open(&path, 10).is_err());
    }
}
