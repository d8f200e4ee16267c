//! Counts of injected faults, and the stats file they are written to.
//!
//! The module counts every fault it injects, per function, kind and return
//! value, and rewrites the stats file (atomically, by rename) after each one,
//! so a soak test can check that the errors its client saw add up to what
//! was injected. Calls that were simply forwarded are not counted: the client
//! knows how many calls it made.
//!
//! File format, one counter per line (`-` when there is no return value):
//!
//! ```text
//! # hanko-pkcs11-mock stats
//! pid 4242
//! C_Sign fault CKR_DEVICE_ERROR 3
//! C_Sign corrupt - 1
//! C_Sign unplug CKR_DEVICE_REMOVED 12
//! ```
//!
//! The `pid` line lets a module that is unloaded and loaded again inside the
//! same process (a client re-initialising after `CKR_DEVICE_REMOVED`) go on
//! counting instead of starting from zero; a new process starts from zero.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use cryptoki_sys::CK_RV;

use crate::Error;
use crate::control::{Function, format_rv, parse_rv};

/// What the mock did to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A `fault` rule returned an error instead of calling the real module.
    Fault,
    /// A `delay` rule slept before the call.
    Delay,
    /// A `hang` rule blocked the call.
    Hang,
    /// A `corrupt` rule flipped one bit of the output.
    Corrupt,
    /// The call was refused because the token is unplugged.
    Unplug,
    /// The call named a session that an unplug invalidated.
    Stale,
}

impl Kind {
    /// The word used in the stats file.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Fault => "fault",
            Kind::Delay => "delay",
            Kind::Hang => "hang",
            Kind::Corrupt => "corrupt",
            Kind::Unplug => "unplug",
            Kind::Stale => "stale",
        }
    }

    fn from_name(s: &str) -> Option<Kind> {
        Some(match s {
            "fault" => Kind::Fault,
            "delay" => Kind::Delay,
            "hang" => Kind::Hang,
            "corrupt" => Kind::Corrupt,
            "unplug" => Kind::Unplug,
            "stale" => Kind::Stale,
            _ => return None,
        })
    }
}

/// One counter's key: function, kind, and the return value injected (if any).
pub type StatKey = (Function, Kind, Option<CK_RV>);

/// Injected-fault counters, as kept by the module and read back by tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Process that wrote the counters (0 when unknown).
    pub pid: u32,
    /// The counters.
    pub counts: BTreeMap<StatKey, u64>,
}

impl Stats {
    /// Where the stats for a control file go: `HANKO_MOCK_STATS` if set,
    /// else the control path with `.stats` appended.
    pub fn path_for(control: &Path) -> PathBuf {
        if let Some(p) = std::env::var_os("HANKO_MOCK_STATS") {
            return PathBuf::from(p);
        }
        let mut s = control.as_os_str().to_owned();
        s.push(".stats");
        PathBuf::from(s)
    }

    /// Reads a stats file. A missing file reads as empty stats (nothing
    /// injected yet).
    pub fn read(path: &Path) -> Result<Stats, Error> {
        match std::fs::read_to_string(path) {
            Ok(text) => Stats::parse(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Stats::default()),
            Err(source) => Err(Error::Io {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Parses stats-file text.
    pub fn parse(text: &str) -> Result<Stats, Error> {
        let mut stats = Stats::default();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = || Error::BadStats {
                line: i + 1,
                text: line.to_owned(),
            };
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["pid", pid] => stats.pid = pid.parse().map_err(|_| bad())?,
                [f, kind, rv, n] => {
                    let f = Function::from_name(f).ok_or_else(bad)?;
                    let kind = Kind::from_name(kind).ok_or_else(bad)?;
                    let rv = match *rv {
                        "-" => None,
                        other => Some(parse_rv(other).ok_or_else(bad)?),
                    };
                    let n: u64 = n.parse().map_err(|_| bad())?;
                    *stats.counts.entry((f, kind, rv)).or_insert(0) += n;
                }
                _ => return Err(bad()),
            }
        }
        Ok(stats)
    }

    /// The stats-file text.
    pub fn to_text(&self) -> String {
        let mut s = String::from("# hanko-pkcs11-mock stats\n");
        let _ = writeln!(s, "pid {}", self.pid);
        for ((f, kind, rv), n) in &self.counts {
            let rv = rv.map(format_rv).unwrap_or_else(|| "-".to_owned());
            let _ = writeln!(s, "{f} {} {rv} {n}", kind.name());
        }
        s
    }

    /// Adds one to a counter.
    pub fn bump(&mut self, f: Function, kind: Kind, rv: Option<CK_RV>) {
        *self.counts.entry((f, kind, rv)).or_insert(0) += 1;
    }

    /// One counter.
    pub fn get(&self, f: Function, kind: Kind, rv: Option<CK_RV>) -> u64 {
        self.counts.get(&(f, kind, rv)).copied().unwrap_or(0)
    }

    /// Everything of one kind injected into one function, over all return values.
    pub fn of(&self, f: Function, kind: Kind) -> u64 {
        self.counts
            .iter()
            .filter(|((g, k, _), _)| *g == f && *k == kind)
            .map(|(_, n)| n)
            .sum()
    }

    /// Everything of one kind, over all functions.
    pub fn total(&self, kind: Kind) -> u64 {
        self.counts
            .iter()
            .filter(|((_, k, _), _)| *k == kind)
            .map(|(_, n)| n)
            .sum()
    }

    /// Errors returned to the client instead of a real result, for one
    /// function: faults, unplugged and stale-session refusals.
    pub fn errors_returned(&self, f: Function) -> u64 {
        self.of(f, Kind::Fault) + self.of(f, Kind::Unplug) + self.of(f, Kind::Stale)
    }

    /// Writes the file atomically (temporary file, then rename).
    pub fn write(&self, path: &Path) -> Result<(), Error> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".tmp.{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let io = |source| Error::Io {
            path: path.to_owned(),
            source,
        };
        std::fs::write(&tmp, self.to_text()).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn round_trips() {
        let mut s = Stats {
            pid: 7,
            ..Stats::default()
        };
        s.bump(Function::C_Sign, Kind::Fault, Some(0x30));
        s.bump(Function::C_Sign, Kind::Fault, Some(0x30));
        s.bump(Function::C_Sign, Kind::Corrupt, None);
        s.bump(Function::C_Login, Kind::Unplug, Some(0x32));
        s.bump(Function::C_Sign, Kind::Fault, Some(0x1234));
        let back = Stats::parse(&s.to_text()).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.of(Function::C_Sign, Kind::Fault), 3);
        assert_eq!(back.total(Kind::Unplug), 1);
        assert_eq!(back.errors_returned(Function::C_Sign), 3);
    }

    #[test]
    fn rejects_garbage() {
        assert!(Stats::parse("C_Sign fault CKR_DEVICE_ERROR x\n").is_err());
        assert!(Stats::parse("C_Nope fault - 1\n").is_err());
        assert!(Stats::parse("hello\n").is_err());
    }
}
