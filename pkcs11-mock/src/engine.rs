//! The fault engine: the module's whole mutable state and every decision.
//!
//! It keeps the parsed control file (re-read when it changes), the per-rule
//! call counters, the random generator, the table of session handles it has
//! handed out, the unplug state and the stats. The FFI layer (`ffi.rs`) asks
//! it, for each call, in this order:
//!
//! ```text
//! capacity() -> the in-flight limit to wait for a slot of (ffi.rs keeps the slots)
//! latency()  -> delay to sleep, hang to wait out       (lock released while waiting)
//! admit()    -> refuse (unplug / stale session), fault, or forward with the real handle
//!   ... real call (outside the lock) ...
//! corrupt_bit() -> which output bit to flip, for successful data calls
//! ```
//!
//! It does NOT call the real module: when an unplug needs the real sessions
//! closed, it queues the slots in `pending_close` and the FFI layer closes
//! them. That keeps every real call outside the engine's lock, so a slow or
//! hung real call never blocks the others.
//!
//! # Session handles
//!
//! The engine hands the client its own session handles (a counter that never
//! repeats) and maps them to the real module's. SoftHSM reuses its handle
//! numbers after `C_CloseAllSessions`, so without this a handle from before an
//! unplug could silently name a session opened after it; with it, old handles
//! stay invalid the way they do on a real device that was replugged.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use cryptoki_sys::{CK_RV, CK_SESSION_HANDLE, CK_SLOT_ID};

use crate::control::{ControlFile, Function, FunctionClass, KeyedRule, Phase, Rule, Trigger};
use crate::stats::{Kind, Stats};

/// Whether a call of an output-buffer function is a length query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallPhase {
    /// Output buffer is NULL: the caller asks for the length.
    Query,
    /// Output buffer given (or the function has none).
    Data,
}

/// What `admit` decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Call the real module; `session` is the real handle (for session
    /// functions); `token_absent` is set while unplugged, for the two slot
    /// functions that still answer then.
    Forward {
        session: Option<CK_SESSION_HANDLE>,
        token_absent: bool,
    },
    /// A fault rule fired: end any real operation on `session`, return `rv`.
    Fault {
        rv: CK_RV,
        session: Option<CK_SESSION_HANDLE>,
    },
    /// Return `rv` without touching the real module.
    Refuse(CK_RV),
}

/// A hang that fired: wait until the rule `key` is gone or `max` has passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hang {
    pub key: String,
    pub max: Option<Duration>,
}

/// Identity of the control file's last seen version, to notice changes cheaply.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
    ctime: (i64, i64),
}

#[derive(Debug)]
struct Source {
    path: PathBuf,
    stamp: Option<FileStamp>,
    content: Vec<u8>,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Engine {
    source: Option<Source>,
    stats_path: Option<PathBuf>,
    /// `stats off`: counted, not written.
    stats_off: bool,
    rules: Vec<KeyedRule>,
    counters: HashMap<(String, Function), u64>,
    seed: Option<u64>,
    rng: u64,
    warned: HashSet<String>,
    sessions: HashMap<CK_SESSION_HANDLE, (CK_SESSION_HANDLE, CK_SLOT_ID)>,
    stale: HashSet<CK_SESSION_HANDLE>,
    next_handle: CK_SESSION_HANDLE,
    unplugged: bool,
    /// Bumped on every unplug; a session opened across one is born stale.
    pub epoch: u64,
    /// Slots whose real sessions must be closed (filled by an unplug).
    pub pending_close: Vec<CK_SLOT_ID>,
    stats: Stats,
}

/// A control-file modification this recent is re-read by content, because
/// two writes within one tick of the file system clock can share an mtime
/// and a size (git's "racy clean" problem).
const RACY_WINDOW: Duration = Duration::from_secs(1);

impl Engine {
    /// The engine for this process, configured from the environment.
    pub fn from_env() -> Engine {
        let control = std::env::var_os("HANKO_MOCK_CONTROL")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from);
        Engine::new(control)
    }

    /// An engine reading `control` (None: pure pass-through, no stats).
    pub fn new(control: Option<PathBuf>) -> Engine {
        let stats_path = control.as_deref().map(Stats::path_for);
        let pid = std::process::id();
        // Same process, module loaded again: keep counting (see stats.rs).
        let stats = stats_path
            .as_deref()
            .and_then(|p| Stats::read(p).ok())
            .filter(|s| s.pid == pid)
            .unwrap_or(Stats {
                pid,
                ..Stats::default()
            });
        let time_seed = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Engine {
            source: control.map(|path| Source {
                path,
                stamp: None,
                content: Vec::new(),
            }),
            stats_path,
            stats_off: false,
            rules: Vec::new(),
            counters: HashMap::new(),
            seed: None,
            rng: time_seed ^ (u64::from(pid) << 32),
            warned: HashSet::new(),
            sessions: HashMap::new(),
            stale: HashSet::new(),
            // Far from SoftHSM's small numbers, so a real handle leaking
            // through by mistake would be noticed.
            next_handle: 0x4d00_0001,
            unplugged: false,
            epoch: 0,
            pending_close: Vec::new(),
            stats,
        }
    }

    /// Re-reads the control file if it changed.
    pub fn refresh(&mut self) {
        let Some(src) = self.source.as_mut() else {
            return;
        };
        let stamp = std::fs::metadata(&src.path).ok().map(|m| {
            use std::os::unix::fs::MetadataExt;
            FileStamp {
                len: m.len(),
                modified: m.modified().ok(),
                inode: m.ino(),
                ctime: (m.ctime(), m.ctime_nsec()),
            }
        });
        let racy = stamp
            .as_ref()
            .and_then(|s| s.modified)
            .is_some_and(|t| t.elapsed().map_or(true, |age| age < RACY_WINDOW));
        if stamp == src.stamp && !racy {
            return;
        }
        // A missing or unreadable file is an empty one: pure pass-through.
        let content = std::fs::read(&src.path).unwrap_or_default();
        src.stamp = stamp;
        if content == src.content {
            return;
        }
        let text = String::from_utf8_lossy(&content).into_owned();
        src.content = content;
        self.apply(ControlFile::parse(&text));
    }

    fn apply(&mut self, cf: ControlFile) {
        for e in &cf.errors {
            if self.warned.insert(e.text.clone()) {
                eprintln!("hanko-pkcs11-mock: ignoring control-file {e}");
            }
        }
        let seed = cf.seed();
        if seed.is_some() && seed != self.seed {
            self.rng = seed.unwrap_or(0);
        }
        self.seed = seed;
        let unplug = cf.unplugged();
        self.stats_off = cf.stats_off();
        self.rules = cf.rules;
        let keys: HashSet<&str> = self.rules.iter().map(|r| r.key.as_str()).collect();
        self.counters.retain(|(k, _), _| keys.contains(k.as_str()));
        if unplug && !self.unplugged {
            self.unplug();
        }
        self.unplugged = unplug;
    }

    /// The token vanishes: every open session becomes stale and its slot is
    /// queued for closing in the real module.
    fn unplug(&mut self) {
        self.epoch += 1;
        for (virt, (_, slot)) in self.sessions.drain() {
            self.stale.insert(virt);
            if !self.pending_close.contains(&slot) {
                self.pending_close.push(slot);
            }
        }
    }

    /// Whether a rule with this key is still in the control file.
    pub fn has_rule(&self, key: &str) -> bool {
        self.rules.iter().any(|r| r.key == key)
    }

    fn next_random(&mut self) -> u64 {
        // splitmix64: tiny, good enough for fault probabilities.
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        (self.next_random() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Counts the call for rule `i` and tells whether its trigger fires.
    fn count_and_fire(&mut self, i: usize, f: Function, trigger: Trigger) -> bool {
        let key = (self.rules[i].key.clone(), f);
        let count = self.counters.entry(key).or_insert(0);
        *count += 1;
        let count = *count;
        let random = if matches!(trigger, Trigger::Prob(_)) {
            self.uniform()
        } else {
            0.0
        };
        trigger.fires(count, random)
    }

    fn bump(&mut self, f: Function, kind: Kind, rv: Option<CK_RV>) {
        self.stats.bump(f, kind, rv);
        if let Some(p) = &self.stats_path
            && !self.stats_off
            && let Err(e) = self.stats.write(p)
        {
            let msg = format!("{e}");
            if self.warned.insert(msg.clone()) {
                eprintln!("hanko-pkcs11-mock: cannot write stats: {msg}");
            }
        }
    }

    /// Stage 0: the `capacity` rule that limits this call, if any: its key (the
    /// limit's identity while the line stays) and how many calls it lets run at once.
    pub fn capacity(&mut self, f: Function, phase: CallPhase) -> Option<(String, u64)> {
        self.refresh();
        let is_query = phase == CallPhase::Query;
        self.rules.iter().find_map(|r| match r.rule {
            Rule::Capacity {
                target,
                max,
                phase: want,
            } if target.matches(f) && want.covers(is_query) => Some((r.key.clone(), max)),
            _ => None,
        })
    }

    /// Stage 1: the total delay to add and the hang to wait out, if any.
    pub fn latency(&mut self, f: Function, phase: CallPhase) -> (Duration, Option<Hang>) {
        self.refresh();
        let is_query = phase == CallPhase::Query;
        let mut delay = Duration::ZERO;
        let mut hang = None;
        for i in 0..self.rules.len() {
            match self.rules[i].rule.clone() {
                Rule::Delay {
                    target,
                    ms,
                    trigger,
                    phase: want,
                } if target.matches(f)
                    && want.covers(is_query)
                    && self.count_and_fire(i, f, trigger) =>
                {
                    delay += Duration::from_millis(ms);
                    self.bump(f, Kind::Delay, None);
                }
                Rule::Hang {
                    target,
                    max_ms,
                    trigger,
                } if target.matches(f) && self.count_and_fire(i, f, trigger) && hang.is_none() => {
                    hang = Some(Hang {
                        key: self.rules[i].key.clone(),
                        max: max_ms.map(Duration::from_millis),
                    });
                    self.bump(f, Kind::Hang, None);
                }
                _ => {}
            }
        }
        (delay, hang)
    }

    /// Stage 2: unplug, session translation, fault rules.
    ///
    /// `session` is the client's handle for session functions.
    pub fn admit(
        &mut self,
        f: Function,
        session: Option<CK_SESSION_HANDLE>,
        phase: CallPhase,
    ) -> Admit {
        self.refresh();
        let class = f.class();
        if self.unplugged && class != FunctionClass::General {
            let exempt = matches!(f, Function::C_GetSlotList | Function::C_GetSlotInfo);
            if !exempt {
                let rv = match class {
                    FunctionClass::Session => cryptoki_sys::CKR_DEVICE_REMOVED,
                    _ => cryptoki_sys::CKR_TOKEN_NOT_PRESENT,
                };
                self.bump(f, Kind::Unplug, Some(rv));
                return Admit::Refuse(rv);
            }
        }
        let real = match session {
            None => None,
            Some(virt) => match self.sessions.get(&virt) {
                Some((real, _)) => Some(*real),
                None => {
                    let rv = cryptoki_sys::CKR_SESSION_HANDLE_INVALID;
                    if self.stale.contains(&virt) {
                        self.bump(f, Kind::Stale, Some(rv));
                    }
                    return Admit::Refuse(rv);
                }
            },
        };
        let mut fault = None;
        for i in 0..self.rules.len() {
            if let Rule::Fault {
                target,
                rv,
                trigger,
                phase: want,
            } = self.rules[i].rule.clone()
            {
                let applies = target.matches(f)
                    && match want {
                        Phase::Any => true,
                        Phase::Query => phase == CallPhase::Query,
                        Phase::Data => phase == CallPhase::Data,
                    };
                // Every matching rule counts the call, even after an earlier
                // one fired: counts stay "calls of f since the rule appeared".
                if applies && self.count_and_fire(i, f, trigger) && fault.is_none() {
                    fault = Some(rv);
                }
            }
        }
        match fault {
            Some(rv) => {
                self.bump(f, Kind::Fault, Some(rv));
                Admit::Fault { rv, session: real }
            }
            None => Admit::Forward {
                session: real,
                token_absent: self.unplugged,
            },
        }
    }

    /// Stage 3: for a successful data call with `len` bytes of output, the
    /// bit to flip (index from the start, MSB of byte 0 first), if any.
    pub fn corrupt_bit(&mut self, f: Function, len: usize) -> Option<usize> {
        if len == 0 {
            return None;
        }
        let bits = len.checked_mul(8)?;
        let mut chosen = None;
        for i in 0..self.rules.len() {
            if let Rule::Corrupt {
                target,
                bit,
                trigger,
            } = self.rules[i].rule.clone()
                && target.matches(f)
                && self.count_and_fire(i, f, trigger)
                && chosen.is_none()
            {
                let b = match bit {
                    Some(b) => b,
                    None => self.next_random(),
                };
                chosen = Some((b % bits as u64) as usize);
            }
        }
        if chosen.is_some() {
            self.bump(f, Kind::Corrupt, None);
        }
        chosen
    }

    /// Records a session the real module opened; returns the client's handle.
    /// A session opened while an unplug happened is stale from birth.
    pub fn add_session(
        &mut self,
        real: CK_SESSION_HANDLE,
        slot: CK_SLOT_ID,
        epoch_at_start: u64,
    ) -> CK_SESSION_HANDLE {
        let virt = self.next_handle;
        self.next_handle += 1;
        if epoch_at_start == self.epoch && !self.unplugged {
            let _ = self.sessions.insert(virt, (real, slot));
        } else {
            let _ = self.stale.insert(virt);
            if !self.pending_close.contains(&slot) {
                self.pending_close.push(slot);
            }
        }
        virt
    }

    /// Forgets a session the client closed.
    pub fn remove_session(&mut self, virt: CK_SESSION_HANDLE) {
        let _ = self.sessions.remove(&virt);
    }

    /// Forgets every session of a slot (`C_CloseAllSessions`).
    pub fn remove_slot_sessions(&mut self, slot: CK_SLOT_ID) {
        self.sessions.retain(|_, (_, s)| *s != slot);
    }

    /// Forgets every session (`C_Finalize`).
    pub fn clear_sessions(&mut self) {
        self.sessions.clear();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn engine_with(text: &str) -> (tempfile::TempDir, Engine) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("faults");
        std::fs::write(&path, text).unwrap();
        let mut e = Engine::new(Some(path));
        e.refresh();
        (dir, e)
    }

    #[test]
    fn nth_fault_counts_per_function_with_a_wildcard() {
        let (_d, mut e) = engine_with("fault fn=* rv=CKR_DEVICE_ERROR mode=nth n=2\n");
        let s = e.add_session(1, 0, 0);
        let a = |e: &mut Engine, f| e.admit(f, Some(s), CallPhase::Data);
        assert!(matches!(a(&mut e, Function::C_Sign), Admit::Forward { .. }));
        assert!(matches!(
            a(&mut e, Function::C_Login),
            Admit::Forward { .. }
        ));
        assert!(matches!(
            a(&mut e, Function::C_Sign),
            Admit::Fault {
                rv: 0x30,
                session: Some(1)
            }
        ));
        assert!(matches!(a(&mut e, Function::C_Login), Admit::Fault { .. }));
        assert!(matches!(a(&mut e, Function::C_Sign), Admit::Forward { .. }));
        assert_eq!(e.stats.of(Function::C_Sign, Kind::Fault), 1);
    }

    #[test]
    fn phase_filter_skips_length_queries() {
        let (_d, mut e) =
            engine_with("fault fn=C_Sign rv=CKR_GENERAL_ERROR mode=nth n=1 phase=data\n");
        let s = e.add_session(1, 0, 0);
        assert!(matches!(
            e.admit(Function::C_Sign, Some(s), CallPhase::Query),
            Admit::Forward { .. }
        ));
        assert!(matches!(
            e.admit(Function::C_Sign, Some(s), CallPhase::Data),
            Admit::Fault { .. }
        ));
    }

    #[test]
    fn unplug_stales_sessions_and_queues_their_slots() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("faults");
        let mut e = Engine::new(Some(path.clone()));
        let s = e.add_session(7, 3, 0);
        std::fs::write(&path, "unplug\n").unwrap();
        assert_eq!(
            e.admit(Function::C_Sign, Some(s), CallPhase::Data),
            Admit::Refuse(cryptoki_sys::CKR_DEVICE_REMOVED)
        );
        assert_eq!(e.pending_close, vec![3]);
        assert_eq!(
            e.admit(Function::C_OpenSession, None, CallPhase::Data),
            Admit::Refuse(cryptoki_sys::CKR_TOKEN_NOT_PRESENT)
        );
        assert!(matches!(
            e.admit(Function::C_GetSlotList, None, CallPhase::Data),
            Admit::Forward {
                token_absent: true,
                ..
            }
        ));
        std::fs::write(&path, "").unwrap();
        assert_eq!(
            e.admit(Function::C_Sign, Some(s), CallPhase::Data),
            Admit::Refuse(cryptoki_sys::CKR_SESSION_HANDLE_INVALID)
        );
        assert_eq!(e.stats.of(Function::C_Sign, Kind::Stale), 1);
        assert_eq!(e.stats.of(Function::C_Sign, Kind::Unplug), 1);
        let s2 = e.add_session(7, 3, e.epoch);
        assert_ne!(s, s2);
        assert!(matches!(
            e.admit(Function::C_Sign, Some(s2), CallPhase::Data),
            Admit::Forward {
                session: Some(7),
                token_absent: false
            }
        ));
    }

    #[test]
    fn counters_survive_unrelated_edits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("faults");
        std::fs::write(
            &path,
            "fault fn=C_Sign rv=CKR_DEVICE_ERROR mode=every n=2\n",
        )
        .unwrap();
        let mut e = Engine::new(Some(path.clone()));
        assert!(matches!(
            e.admit(Function::C_Sign, None, CallPhase::Data),
            Admit::Forward { .. }
        ));
        std::fs::write(
            &path,
            "fault fn=C_Sign rv=CKR_DEVICE_ERROR mode=every n=2\ndelay fn=C_Login ms=1\n",
        )
        .unwrap();
        assert!(matches!(
            e.admit(Function::C_Sign, None, CallPhase::Data),
            Admit::Fault { .. }
        ));
    }

    #[test]
    fn seeded_probability_is_reproducible_and_close_to_p() {
        let text = "seed 9\nfault fn=C_GenerateRandom rv=CKR_FUNCTION_FAILED mode=prob p=0.25\n";
        let run = || {
            let (_d, mut e) = engine_with(text);
            (0..4000)
                .filter(|_| {
                    matches!(
                        e.admit(Function::C_GenerateRandom, None, CallPhase::Data),
                        Admit::Fault { .. }
                    )
                })
                .count()
        };
        let n = run();
        assert_eq!(n, run());
        assert!((900..1100).contains(&n), "{n}");
    }

    #[test]
    fn corrupt_picks_the_given_bit_modulo_length() {
        let (_d, mut e) = engine_with("corrupt fn=C_Sign bit=515 mode=nth n=2\n");
        assert_eq!(e.corrupt_bit(Function::C_Sign, 64), None);
        assert_eq!(e.corrupt_bit(Function::C_Sign, 64), Some(3));
        assert_eq!(e.corrupt_bit(Function::C_Sign, 64), None);
    }
}
