//! The control file: what faults to inject, parsed from a small line format.
//!
//! This module is pure: it turns text into [`Rule`]s and [`ParseError`]s and
//! decides whether a [`Trigger`] fires for a given call count. It does no I/O,
//! so the grammar can be tested without loading a PKCS#11 module, and a test
//! harness can build control files from these types
//! ([`ControlFile::to_text`]) instead of formatting strings by hand.
//!
//! It does NOT know about sessions, the real module or the clock: the engine
//! (`engine.rs`) applies the rules.
//!
//! # Grammar
//!
//! One directive per line; `#` starts a comment; blank lines are ignored;
//! `key=value` pairs may come in any order.
//!
//! ```text
//! fault    fn=FN rv=RV [TRIGGER] [phase=any|query|data]
//! delay    fn=FN ms=MS [TRIGGER] [phase=any|query|data]
//! capacity fn=FN max=K [phase=any|query|data]
//! hang    fn=FN [max_ms=MS] [TRIGGER]
//! corrupt fn=FN [bit=K] [TRIGGER]
//! unplug
//! seed    N
//! stats   off
//!
//! FN      = a PKCS#11 v2.40 function name (C_Sign, C_Login, ...) or * (every function)
//! RV      = a CKR_ name (CKR_DEVICE_ERROR, ...) or a number (48, 0x30)
//! TRIGGER = mode=always            (the default)
//!         | mode=nth   n=N         only the Nth counted call
//!         | mode=every n=N         calls N, 2N, 3N, ...
//!         | mode=after n=N         call N and every call after it
//!         | mode=prob  p=P         each call with probability P (0.0..=1.0)
//! ```
//!
//! `capacity` lets at most K calls of FN (in the phase) run at once, from the start of
//! their delay to the end of the real call; the others wait their turn. With `delay`
//! it simulates a network HSM: each signature takes MS, K of them in parallel
//! (`delay fn=C_Sign ms=5 phase=data` + `capacity fn=C_Sign max=64 phase=data`:
//! 12,800 signatures/s at most). `phase=data` leaves the length query (the NULL
//! output buffer call most clients make first) fast, as a real HSM answers it
//! locally.
//!
//! `stats off` stops the stats file's updates (by default rewritten at every injected
//! fault or delay): a benchmark that delays every signature would otherwise be bound
//! by writing that file.
//!
//! A line that does not parse is ignored as a whole (the engine warns once on
//! stderr); the other lines still apply.

use std::fmt;

use cryptoki_sys::CK_RV;

macro_rules! functions {
    ($($name:ident => $class:ident,)*) => {
        /// Every function of the PKCS#11 v2.40 function list, in list order.
        #[allow(non_camel_case_types, reason = "the variants are the C function names, so control files and stats read like the spec")]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Function {
            $(
                #[doc = concat!("`", stringify!($name), "`")]
                $name,
            )*
        }

        impl Function {
            /// All functions, in the order of `CK_FUNCTION_LIST`.
            pub const ALL: &'static [Function] = &[$(Function::$name,)*];

            /// The C name, e.g. `"C_Sign"`.
            pub fn name(self) -> &'static str {
                match self {
                    $(Function::$name => stringify!($name),)*
                }
            }

            /// The function with this C name.
            pub fn from_name(name: &str) -> Option<Function> {
                match name {
                    $(stringify!($name) => Some(Function::$name),)*
                    _ => None,
                }
            }

            /// How the function behaves while the token is unplugged.
            pub fn class(self) -> FunctionClass {
                match self {
                    $(Function::$name => FunctionClass::$class,)*
                }
            }
        }
    };
}

functions! {
    C_Initialize => General,
    C_Finalize => General,
    C_GetInfo => General,
    C_GetFunctionList => General,
    C_GetSlotList => Slot,
    C_GetSlotInfo => Slot,
    C_GetTokenInfo => Slot,
    C_GetMechanismList => Slot,
    C_GetMechanismInfo => Slot,
    C_InitToken => Slot,
    C_InitPIN => Session,
    C_SetPIN => Session,
    C_OpenSession => Slot,
    C_CloseSession => Session,
    C_CloseAllSessions => Slot,
    C_GetSessionInfo => Session,
    C_GetOperationState => Session,
    C_SetOperationState => Session,
    C_Login => Session,
    C_Logout => Session,
    C_CreateObject => Session,
    C_CopyObject => Session,
    C_DestroyObject => Session,
    C_GetObjectSize => Session,
    C_GetAttributeValue => Session,
    C_SetAttributeValue => Session,
    C_FindObjectsInit => Session,
    C_FindObjects => Session,
    C_FindObjectsFinal => Session,
    C_EncryptInit => Session,
    C_Encrypt => Session,
    C_EncryptUpdate => Session,
    C_EncryptFinal => Session,
    C_DecryptInit => Session,
    C_Decrypt => Session,
    C_DecryptUpdate => Session,
    C_DecryptFinal => Session,
    C_DigestInit => Session,
    C_Digest => Session,
    C_DigestUpdate => Session,
    C_DigestKey => Session,
    C_DigestFinal => Session,
    C_SignInit => Session,
    C_Sign => Session,
    C_SignUpdate => Session,
    C_SignFinal => Session,
    C_SignRecoverInit => Session,
    C_SignRecover => Session,
    C_VerifyInit => Session,
    C_Verify => Session,
    C_VerifyUpdate => Session,
    C_VerifyFinal => Session,
    C_VerifyRecoverInit => Session,
    C_VerifyRecover => Session,
    C_DigestEncryptUpdate => Session,
    C_DecryptDigestUpdate => Session,
    C_SignEncryptUpdate => Session,
    C_DecryptVerifyUpdate => Session,
    C_GenerateKey => Session,
    C_GenerateKeyPair => Session,
    C_WrapKey => Session,
    C_UnwrapKey => Session,
    C_DeriveKey => Session,
    C_SeedRandom => Session,
    C_GenerateRandom => Session,
    C_GetFunctionStatus => Session,
    C_CancelFunction => Session,
    C_WaitForSlotEvent => General,
}

impl Function {
    /// Whether `corrupt` may target this function: it returns its result in a
    /// caller buffer (`pOut`, `pulOutLen`) or fills one (`C_GenerateRandom`).
    pub fn has_output_buffer(self) -> bool {
        matches!(
            self,
            Function::C_Sign
                | Function::C_SignFinal
                | Function::C_SignRecover
                | Function::C_Encrypt
                | Function::C_EncryptFinal
                | Function::C_Decrypt
                | Function::C_DecryptFinal
                | Function::C_Digest
                | Function::C_DigestFinal
                | Function::C_VerifyRecover
                | Function::C_GenerateRandom
        )
    }
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a function answers while the token is unplugged (see the crate docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionClass {
    /// Library-level calls (`C_Initialize`, `C_Finalize`, `C_GetInfo`,
    /// `C_GetFunctionList`, `C_WaitForSlotEvent`): always forwarded.
    General,
    /// Calls naming a slot: `CKR_TOKEN_NOT_PRESENT` while unplugged
    /// (`C_GetSlotList` and `C_GetSlotInfo` instead report no token).
    Slot,
    /// Calls naming a session: `CKR_DEVICE_REMOVED` while unplugged.
    Session,
}

/// `CKR_*` names the control file and the stats file understand.
const RV_NAMES: &[(&str, CK_RV)] = &[
    ("CKR_OK", cryptoki_sys::CKR_OK),
    ("CKR_HOST_MEMORY", cryptoki_sys::CKR_HOST_MEMORY),
    ("CKR_SLOT_ID_INVALID", cryptoki_sys::CKR_SLOT_ID_INVALID),
    ("CKR_GENERAL_ERROR", cryptoki_sys::CKR_GENERAL_ERROR),
    ("CKR_FUNCTION_FAILED", cryptoki_sys::CKR_FUNCTION_FAILED),
    ("CKR_ARGUMENTS_BAD", cryptoki_sys::CKR_ARGUMENTS_BAD),
    ("CKR_DATA_INVALID", cryptoki_sys::CKR_DATA_INVALID),
    ("CKR_DATA_LEN_RANGE", cryptoki_sys::CKR_DATA_LEN_RANGE),
    ("CKR_DEVICE_ERROR", cryptoki_sys::CKR_DEVICE_ERROR),
    ("CKR_DEVICE_MEMORY", cryptoki_sys::CKR_DEVICE_MEMORY),
    ("CKR_DEVICE_REMOVED", cryptoki_sys::CKR_DEVICE_REMOVED),
    ("CKR_FUNCTION_CANCELED", cryptoki_sys::CKR_FUNCTION_CANCELED),
    (
        "CKR_FUNCTION_NOT_SUPPORTED",
        cryptoki_sys::CKR_FUNCTION_NOT_SUPPORTED,
    ),
    (
        "CKR_KEY_HANDLE_INVALID",
        cryptoki_sys::CKR_KEY_HANDLE_INVALID,
    ),
    ("CKR_MECHANISM_INVALID", cryptoki_sys::CKR_MECHANISM_INVALID),
    (
        "CKR_OBJECT_HANDLE_INVALID",
        cryptoki_sys::CKR_OBJECT_HANDLE_INVALID,
    ),
    ("CKR_OPERATION_ACTIVE", cryptoki_sys::CKR_OPERATION_ACTIVE),
    (
        "CKR_OPERATION_NOT_INITIALIZED",
        cryptoki_sys::CKR_OPERATION_NOT_INITIALIZED,
    ),
    ("CKR_PIN_INCORRECT", cryptoki_sys::CKR_PIN_INCORRECT),
    ("CKR_PIN_LOCKED", cryptoki_sys::CKR_PIN_LOCKED),
    ("CKR_SESSION_CLOSED", cryptoki_sys::CKR_SESSION_CLOSED),
    ("CKR_SESSION_COUNT", cryptoki_sys::CKR_SESSION_COUNT),
    (
        "CKR_SESSION_HANDLE_INVALID",
        cryptoki_sys::CKR_SESSION_HANDLE_INVALID,
    ),
    ("CKR_SIGNATURE_INVALID", cryptoki_sys::CKR_SIGNATURE_INVALID),
    ("CKR_TOKEN_NOT_PRESENT", cryptoki_sys::CKR_TOKEN_NOT_PRESENT),
    (
        "CKR_TOKEN_NOT_RECOGNIZED",
        cryptoki_sys::CKR_TOKEN_NOT_RECOGNIZED,
    ),
    (
        "CKR_USER_NOT_LOGGED_IN",
        cryptoki_sys::CKR_USER_NOT_LOGGED_IN,
    ),
    ("CKR_BUFFER_TOO_SMALL", cryptoki_sys::CKR_BUFFER_TOO_SMALL),
    (
        "CKR_CRYPTOKI_NOT_INITIALIZED",
        cryptoki_sys::CKR_CRYPTOKI_NOT_INITIALIZED,
    ),
];

/// The `CKR_*` name of a return value, or `None` for one not in the table.
pub fn rv_name(rv: CK_RV) -> Option<&'static str> {
    RV_NAMES.iter().find(|(_, v)| *v == rv).map(|(n, _)| *n)
}

/// Parses `CKR_DEVICE_ERROR`, `48` or `0x30`.
pub fn parse_rv(text: &str) -> Option<CK_RV> {
    if let Some((_, v)) = RV_NAMES.iter().find(|(n, _)| *n == text) {
        return Some(*v);
    }
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        return CK_RV::from_str_radix(hex, 16).ok();
    }
    text.parse().ok()
}

/// Formats a return value by name when known, else as hex.
pub fn format_rv(rv: CK_RV) -> String {
    match rv_name(rv) {
        Some(name) => name.to_owned(),
        None => format!("0x{rv:x}"),
    }
}

/// When a rule fires, given how many calls it has counted (1-based).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Trigger {
    /// Every counted call.
    Always,
    /// Only the Nth counted call.
    Nth(u64),
    /// Calls N, 2N, 3N, ...
    Every(u64),
    /// Call N and every call after it (a device that dies for good).
    After(u64),
    /// Each call independently with this probability.
    Prob(f64),
}

impl Trigger {
    /// Whether the rule fires on counted call number `count` (1-based);
    /// `random` is a uniform draw from `[0, 1)`, used only by [`Trigger::Prob`].
    pub fn fires(self, count: u64, random: f64) -> bool {
        match self {
            Trigger::Always => true,
            Trigger::Nth(n) => count == n,
            Trigger::Every(n) => n != 0 && count.is_multiple_of(n),
            Trigger::After(n) => count >= n,
            Trigger::Prob(p) => random < p,
        }
    }

    fn to_text(self) -> String {
        match self {
            Trigger::Always => "mode=always".to_owned(),
            Trigger::Nth(n) => format!("mode=nth n={n}"),
            Trigger::Every(n) => format!("mode=every n={n}"),
            Trigger::After(n) => format!("mode=after n={n}"),
            Trigger::Prob(p) => format!("mode=prob p={p}"),
        }
    }
}

/// Which calls of an output-buffer function a `fault` counts and hits.
///
/// PKCS#11 clients usually call `C_Sign` twice per signature: once with a
/// NULL buffer to learn the length (the *query*), then with the buffer (the
/// *data* call). For functions without an output buffer every call is a data
/// call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Every call (the default).
    Any,
    /// Only length queries (NULL output buffer).
    Query,
    /// Only calls with an output buffer.
    Data,
}

impl Phase {
    /// Whether a call of `phase` (query or data) is one this phase counts.
    pub fn covers(self, is_query: bool) -> bool {
        match self {
            Phase::Any => true,
            Phase::Query => is_query,
            Phase::Data => !is_query,
        }
    }

    /// The ` phase=...` suffix of a control-file line (empty for the default).
    fn to_text(self) -> &'static str {
        match self {
            Phase::Any => "",
            Phase::Query => " phase=query",
            Phase::Data => " phase=data",
        }
    }
}

/// Which function(s) a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// `fn=*`: every function (counted separately per function).
    All,
    /// One function.
    One(Function),
}

impl Target {
    /// Whether the rule applies to `f`.
    pub fn matches(self, f: Function) -> bool {
        match self {
            Target::All => true,
            Target::One(g) => f == g,
        }
    }

    fn to_text(self) -> &'static str {
        match self {
            Target::All => "*",
            Target::One(f) => f.name(),
        }
    }
}

/// One directive of the control file.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// Return `rv` instead of calling the real module.
    Fault {
        /// The function(s) that fail.
        target: Target,
        /// The value returned.
        rv: CK_RV,
        /// Which calls count.
        trigger: Trigger,
        /// Length queries, data calls or both.
        phase: Phase,
    },
    /// Sleep before the call.
    Delay {
        /// The slow function(s).
        target: Target,
        /// Added latency in milliseconds.
        ms: u64,
        /// Which calls are slowed.
        trigger: Trigger,
        /// Length queries, data calls or both.
        phase: Phase,
    },
    /// At most `max` calls in flight at once (delay and real call); the rest wait.
    Capacity {
        /// The limited function(s) (one limit shared by all of them).
        target: Target,
        /// Calls in flight at once (at least 1).
        max: u64,
        /// Length queries, data calls or both.
        phase: Phase,
    },
    /// Block the call until this line is removed from the file (or `max_ms`).
    Hang {
        /// The function(s) that hang.
        target: Target,
        /// Upper bound in milliseconds, so a forgotten rule cannot hang a
        /// test run forever. `None`: no bound.
        max_ms: Option<u64>,
        /// Which calls hang.
        trigger: Trigger,
    },
    /// Flip one bit of the output of a successful call.
    Corrupt {
        /// The function(s) whose output is corrupted (output-buffer functions only).
        target: Target,
        /// Bit index from the start of the output, most significant bit of
        /// byte 0 first, taken modulo the output length. `None`: a random bit.
        bit: Option<u64>,
        /// Which successful data calls are corrupted.
        trigger: Trigger,
    },
    /// The token vanishes until this line is removed (see the crate docs).
    Unplug,
    /// Seed of the random generator used by `mode=prob` and random bits.
    Seed(u64),
    /// `stats off`: the stats file is not written while this line is present.
    StatsOff,
}

impl Rule {
    /// The control-file line for this rule.
    pub fn to_text(&self) -> String {
        match self {
            Rule::Fault {
                target,
                rv,
                trigger,
                phase,
            } => {
                let mut s = format!(
                    "fault fn={} rv={} {}",
                    target.to_text(),
                    format_rv(*rv),
                    trigger.to_text()
                );
                s.push_str(phase.to_text());
                s
            }
            Rule::Delay {
                target,
                ms,
                trigger,
                phase,
            } => format!(
                "delay fn={} ms={ms} {}{}",
                target.to_text(),
                trigger.to_text(),
                phase.to_text()
            ),
            Rule::Capacity { target, max, phase } => format!(
                "capacity fn={} max={max}{}",
                target.to_text(),
                phase.to_text()
            ),
            Rule::Hang {
                target,
                max_ms,
                trigger,
            } => {
                let mut s = format!("hang fn={} {}", target.to_text(), trigger.to_text());
                if let Some(m) = max_ms {
                    s.push_str(&format!(" max_ms={m}"));
                }
                s
            }
            Rule::Corrupt {
                target,
                bit,
                trigger,
            } => {
                let mut s = format!("corrupt fn={} {}", target.to_text(), trigger.to_text());
                if let Some(b) = bit {
                    s.push_str(&format!(" bit={b}"));
                }
                s
            }
            Rule::Unplug => "unplug".to_owned(),
            Rule::Seed(n) => format!("seed {n}"),
            Rule::StatsOff => "stats off".to_owned(),
        }
    }
}

/// A rule together with its identity in the file.
///
/// The key is the normalised line text plus its occurrence number, so a rule
/// keeps its call counters when other lines change, and a `hang` knows it has
/// been released when its key disappears.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyedRule {
    /// Normalised text, with `#n` appended for the n-th duplicate.
    pub key: String,
    /// The parsed rule.
    pub rule: Rule,
}

/// A line the parser rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// The offending line, trimmed.
    pub text: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {} ({:?})", self.line, self.reason, self.text)
    }
}

/// A parsed control file: the rules that apply and the lines that were ignored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ControlFile {
    /// Rules in file order.
    pub rules: Vec<KeyedRule>,
    /// Rejected lines (each ignored as a whole).
    pub errors: Vec<ParseError>,
}

impl ControlFile {
    /// Parses control-file text; never fails as a whole.
    pub fn parse(text: &str) -> ControlFile {
        let mut out = ControlFile::default();
        let mut seen: Vec<String> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            match parse_line(line) {
                Ok(rule) => {
                    let norm = line.split_whitespace().collect::<Vec<_>>().join(" ");
                    let dup = seen.iter().filter(|s| **s == norm).count();
                    seen.push(norm.clone());
                    let key = if dup == 0 {
                        norm
                    } else {
                        format!("{norm} #{dup}")
                    };
                    out.rules.push(KeyedRule { key, rule });
                }
                Err(reason) => out.errors.push(ParseError {
                    line: i + 1,
                    text: line.to_owned(),
                    reason,
                }),
            }
        }
        out
    }

    /// Control-file text for these rules, one per line.
    pub fn to_text(rules: &[Rule]) -> String {
        let mut s = String::new();
        for r in rules {
            s.push_str(&r.to_text());
            s.push('\n');
        }
        s
    }

    /// The `seed` directive, if any (the last one wins).
    pub fn seed(&self) -> Option<u64> {
        self.rules.iter().rev().find_map(|r| match r.rule {
            Rule::Seed(n) => Some(n),
            _ => None,
        })
    }

    /// Whether a `stats off` line is present.
    pub fn stats_off(&self) -> bool {
        self.rules.iter().any(|r| r.rule == Rule::StatsOff)
    }

    /// Whether an `unplug` line is present.
    pub fn unplugged(&self) -> bool {
        self.rules.iter().any(|r| r.rule == Rule::Unplug)
    }
}

fn parse_line(line: &str) -> Result<Rule, String> {
    let mut words = line.split_whitespace();
    let verb = words.next().unwrap_or("");
    let rest: Vec<&str> = words.collect();
    match verb {
        "unplug" => {
            if rest.is_empty() {
                Ok(Rule::Unplug)
            } else {
                Err("unplug takes no arguments".to_owned())
            }
        }
        "stats" => match rest.as_slice() {
            ["off"] => Ok(Rule::StatsOff),
            _ => Err("stats takes one word: off".to_owned()),
        },
        "seed" => match rest.as_slice() {
            [n] => n
                .parse()
                .map(Rule::Seed)
                .map_err(|_| format!("bad seed {n:?}")),
            _ => Err("seed takes one number".to_owned()),
        },
        "fault" | "delay" | "hang" | "corrupt" | "capacity" => {
            let mut kv = Pairs::new(&rest)?;
            let target = match kv.take("fn") {
                Some("*") => Target::All,
                Some(name) => Target::One(
                    Function::from_name(name)
                        .ok_or_else(|| format!("unknown function {name:?}"))?,
                ),
                None => return Err("missing fn=".to_owned()),
            };
            let trigger = parse_trigger(&mut kv)?;
            let mut phase = || -> Result<Phase, String> {
                let phase = match kv.take("phase") {
                    None | Some("any") => Phase::Any,
                    Some("query") => Phase::Query,
                    Some("data") => Phase::Data,
                    Some(p) => return Err(format!("bad phase {p:?}")),
                };
                if let Target::One(f) = target
                    && phase != Phase::Any
                    && !f.has_output_buffer()
                {
                    return Err(format!("{f} has no length query; phase= does not apply"));
                }
                Ok(phase)
            };
            let rule = match verb {
                "fault" => {
                    let phase = phase()?;
                    let rv = kv.take("rv").ok_or("missing rv=")?;
                    let rv = parse_rv(rv).ok_or_else(|| format!("unknown rv {rv:?}"))?;
                    if rv == cryptoki_sys::CKR_OK {
                        return Err("rv=CKR_OK is not a fault".to_owned());
                    }
                    Rule::Fault {
                        target,
                        rv,
                        trigger,
                        phase,
                    }
                }
                "delay" => {
                    let phase = phase()?;
                    let ms = kv.number("ms")?.ok_or("missing ms=")?;
                    Rule::Delay {
                        target,
                        ms,
                        trigger,
                        phase,
                    }
                }
                "capacity" => {
                    let phase = phase()?;
                    if trigger != Trigger::Always {
                        return Err("capacity limits every call; mode= does not apply".to_owned());
                    }
                    let max = kv.number("max")?.ok_or("missing max=")?;
                    if max == 0 {
                        return Err("max must be at least 1".to_owned());
                    }
                    Rule::Capacity { target, max, phase }
                }
                "hang" => Rule::Hang {
                    target,
                    max_ms: kv.number("max_ms")?,
                    trigger,
                },
                _ => {
                    if let Target::One(f) = target
                        && !f.has_output_buffer()
                    {
                        return Err(format!("{f} has no output buffer to corrupt"));
                    }
                    Rule::Corrupt {
                        target,
                        bit: kv.number("bit")?,
                        trigger,
                    }
                }
            };
            kv.finish()?;
            Ok(rule)
        }
        _ => Err(format!("unknown directive {verb:?}")),
    }
}

fn parse_trigger(kv: &mut Pairs<'_>) -> Result<Trigger, String> {
    let mode = kv.take("mode");
    let trigger = match mode {
        None | Some("always") => Trigger::Always,
        Some("nth") | Some("every") | Some("after") => {
            let n = kv.number("n")?.ok_or("missing n=")?;
            if n == 0 {
                return Err("n must be at least 1".to_owned());
            }
            match mode {
                Some("nth") => Trigger::Nth(n),
                Some("every") => Trigger::Every(n),
                _ => Trigger::After(n),
            }
        }
        Some("prob") => {
            let p = kv.take("p").ok_or("missing p=")?;
            let p: f64 = p.parse().map_err(|_| format!("bad p {p:?}"))?;
            if !(0.0..=1.0).contains(&p) {
                return Err("p must be within 0..=1".to_owned());
            }
            Trigger::Prob(p)
        }
        Some(m) => return Err(format!("unknown mode {m:?}")),
    };
    Ok(trigger)
}

/// `key=value` words of one line, consumed one by one so leftovers are errors.
struct Pairs<'a> {
    pairs: Vec<(&'a str, &'a str)>,
}

impl<'a> Pairs<'a> {
    fn new(words: &[&'a str]) -> Result<Self, String> {
        let mut pairs = Vec::new();
        for w in words {
            let (k, v) = w
                .split_once('=')
                .ok_or_else(|| format!("expected key=value, got {w:?}"))?;
            if pairs.iter().any(|(pk, _)| *pk == k) {
                return Err(format!("duplicate key {k:?}"));
            }
            pairs.push((k, v));
        }
        Ok(Pairs { pairs })
    }

    fn take(&mut self, key: &str) -> Option<&'a str> {
        let i = self.pairs.iter().position(|(k, _)| *k == key)?;
        Some(self.pairs.remove(i).1)
    }

    fn number(&mut self, key: &str) -> Result<Option<u64>, String> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| format!("bad {key}={v:?}")),
        }
    }

    fn finish(self) -> Result<(), String> {
        match self.pairs.first() {
            None => Ok(()),
            Some((k, _)) => Err(format!("unknown key {k:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_directive() {
        let cf = ControlFile::parse(
            "# comment\n\
             fault fn=C_Sign rv=CKR_DEVICE_REMOVED mode=nth n=3\n\
             fault fn=C_Sign rv=0x30 mode=every n=10 phase=data\n\
             fault fn=* rv=6 mode=prob p=0.01\n\
             fault fn=C_Login rv=CKR_GENERAL_ERROR   # always\n\
             delay fn=C_Sign ms=200\n\
             hang fn=C_SignInit max_ms=5000 mode=after n=2\n\
             corrupt fn=C_Sign bit=7 mode=nth n=1\n\
             unplug\n\
             seed 42\n",
        );
        assert!(cf.errors.is_empty(), "{:?}", cf.errors);
        let rules: Vec<Rule> = cf.rules.iter().map(|r| r.rule.clone()).collect();
        assert_eq!(
            rules,
            vec![
                Rule::Fault {
                    target: Target::One(Function::C_Sign),
                    rv: cryptoki_sys::CKR_DEVICE_REMOVED,
                    trigger: Trigger::Nth(3),
                    phase: Phase::Any,
                },
                Rule::Fault {
                    target: Target::One(Function::C_Sign),
                    rv: cryptoki_sys::CKR_DEVICE_ERROR,
                    trigger: Trigger::Every(10),
                    phase: Phase::Data,
                },
                Rule::Fault {
                    target: Target::All,
                    rv: cryptoki_sys::CKR_FUNCTION_FAILED,
                    trigger: Trigger::Prob(0.01),
                    phase: Phase::Any,
                },
                Rule::Fault {
                    target: Target::One(Function::C_Login),
                    rv: cryptoki_sys::CKR_GENERAL_ERROR,
                    trigger: Trigger::Always,
                    phase: Phase::Any,
                },
                Rule::Delay {
                    target: Target::One(Function::C_Sign),
                    ms: 200,
                    trigger: Trigger::Always,
                    phase: Phase::Any,
                },
                Rule::Hang {
                    target: Target::One(Function::C_SignInit),
                    max_ms: Some(5000),
                    trigger: Trigger::After(2),
                },
                Rule::Corrupt {
                    target: Target::One(Function::C_Sign),
                    bit: Some(7),
                    trigger: Trigger::Nth(1),
                },
                Rule::Unplug,
                Rule::Seed(42),
            ]
        );
        assert!(cf.unplugged());
        assert_eq!(cf.seed(), Some(42));
    }

    #[test]
    fn delay_phases_and_capacity_parse_and_print_back() {
        let text = "delay fn=C_Sign ms=5 phase=data\ncapacity fn=C_Sign max=64 phase=data\ncapacity fn=* max=3\nstats off\n";
        let cf = ControlFile::parse(text);
        assert!(cf.errors.is_empty(), "{:?}", cf.errors);
        let rules: Vec<Rule> = cf.rules.iter().map(|r| r.rule.clone()).collect();
        assert_eq!(
            rules,
            vec![
                Rule::Delay {
                    target: Target::One(Function::C_Sign),
                    ms: 5,
                    trigger: Trigger::Always,
                    phase: Phase::Data,
                },
                Rule::Capacity {
                    target: Target::One(Function::C_Sign),
                    max: 64,
                    phase: Phase::Data,
                },
                Rule::Capacity {
                    target: Target::All,
                    max: 3,
                    phase: Phase::Any,
                },
                Rule::StatsOff,
            ]
        );
        assert!(cf.stats_off());
        assert_eq!(
            ControlFile::parse(&ControlFile::to_text(&rules))
                .rules
                .len(),
            4
        );
        for bad in [
            "capacity fn=C_Sign",
            "capacity fn=C_Sign max=0",
            "capacity fn=C_Sign max=2 mode=nth n=1",
            "capacity fn=C_Login max=2 phase=data",
            "delay fn=C_Login ms=1 phase=query",
            "hang fn=C_Sign phase=data",
            "stats on",
        ] {
            assert_eq!(ControlFile::parse(bad).errors.len(), 1, "{bad}");
        }
    }

    #[test]
    fn bad_lines_are_reported_and_skipped() {
        let cf = ControlFile::parse(
            "fault fn=C_Sgn rv=CKR_DEVICE_ERROR\n\
             fault fn=C_Sign rv=CKR_NOPE\n\
             fault fn=C_Sign rv=CKR_OK\n\
             fault fn=C_Sign\n\
             delay fn=C_Sign ms=fast\n\
             fault fn=C_Sign rv=CKR_DEVICE_ERROR mode=nth\n\
             fault fn=C_Sign rv=CKR_DEVICE_ERROR mode=nth n=0\n\
             fault fn=C_Sign rv=CKR_DEVICE_ERROR mode=prob p=1.5\n\
             fault fn=C_Sign rv=CKR_DEVICE_ERROR colour=red\n\
             fault fn=C_Sign rv=CKR_DEVICE_ERROR rv=CKR_DEVICE_ERROR\n\
             corrupt fn=C_Login\n\
             fault fn=C_SignInit rv=CKR_DEVICE_ERROR phase=query\n\
             unplug now\n\
             explode\n\
             delay fn=C_Sign ms=5\n",
        );
        assert_eq!(cf.errors.len(), 14, "{:?}", cf.errors);
        assert_eq!(cf.rules.len(), 1);
        assert_eq!(cf.errors[0].line, 1);
    }

    #[test]
    fn duplicate_lines_get_distinct_keys_and_whitespace_is_normalised() {
        let cf = ControlFile::parse("delay  fn=C_Sign ms=1\ndelay fn=C_Sign   ms=1\n");
        assert_eq!(cf.rules[0].key, "delay fn=C_Sign ms=1");
        assert_eq!(cf.rules[1].key, "delay fn=C_Sign ms=1 #1");
    }

    #[test]
    fn to_text_round_trips() {
        let rules = vec![
            Rule::Fault {
                target: Target::One(Function::C_Sign),
                rv: cryptoki_sys::CKR_DEVICE_ERROR,
                trigger: Trigger::Every(4),
                phase: Phase::Query,
            },
            Rule::Hang {
                target: Target::All,
                max_ms: Some(10),
                trigger: Trigger::Prob(0.5),
            },
            Rule::Corrupt {
                target: Target::One(Function::C_SignFinal),
                bit: None,
                trigger: Trigger::Always,
            },
            Rule::Unplug,
        ];
        let cf = ControlFile::parse(&ControlFile::to_text(&rules));
        assert!(cf.errors.is_empty(), "{:?}", cf.errors);
        let back: Vec<Rule> = cf.rules.into_iter().map(|r| r.rule).collect();
        assert_eq!(back, rules);
    }

    #[test]
    fn triggers_fire_on_the_right_counts() {
        let fired = |t: Trigger| -> Vec<u64> { (1..=12).filter(|c| t.fires(*c, 0.5)).collect() };
        assert_eq!(fired(Trigger::Nth(3)), vec![3]);
        assert_eq!(fired(Trigger::Every(4)), vec![4, 8, 12]);
        assert_eq!(fired(Trigger::After(11)), vec![11, 12]);
        assert_eq!(fired(Trigger::Always).len(), 12);
        assert!(Trigger::Prob(0.6).fires(1, 0.5));
        assert!(!Trigger::Prob(0.4).fires(1, 0.5));
    }

    #[test]
    fn every_function_name_round_trips() {
        assert_eq!(Function::ALL.len(), 68);
        for f in Function::ALL {
            assert_eq!(Function::from_name(f.name()), Some(*f));
        }
        assert_eq!(parse_rv("CKR_DEVICE_REMOVED"), Some(0x32));
        assert_eq!(format_rv(0x32), "CKR_DEVICE_REMOVED");
        assert_eq!(format_rv(0x9999), "0x9999");
    }
}
