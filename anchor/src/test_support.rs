//! Bouncy Castle as the third-party checker of evidence records, for the tests of the
//! crates that make them (`hanko-anchor`'s own over the library, `hanko-server`'s over
//! what the running binary serves). Compiled only with the `test-support` feature,
//! which those crates enable from their `[dev-dependencies]`; no production build
//! contains it.
//!
//! [`bouncy_castle`] compiles `tests/java/ErsCheck.java` with `javac` against Debian's
//! Bouncy Castle jars (libbcprov-java, libbcpkix-java, libbcutil-java; ops/dev-setup.sh
//! installs them and default-jdk-headless) and runs it over the cases; the file's header
//! describes what it checks. [`bouncy_castle_make`] runs `tests/java/ErsMake.java`, which
//! PRODUCES records as another product would (issue #16's import): its own TSA, keys
//! generated at each run and never written, one hash tree over the given files.
//!
//! # What it does not do
//! It does not check anything itself: the verdicts are Bouncy Castle 1.72's
//! `org.bouncycastle.tsp.ers`, independent of this crate's ASN.1 and hashing. The suites
//! write the records they check themselves and name them in [`BcCase`].

use std::path::{Path, PathBuf};
use std::process::Command;

/// Bouncy Castle's jars where Debian installs them.
pub const BC_JARS: [&str; 3] = [
    "/usr/share/java/bcprov.jar",
    "/usr/share/java/bcpkix.jar",
    "/usr/share/java/bcutil.jar",
];

/// One evidence record for Bouncy Castle, all as files.
#[derive(Debug, Clone)]
pub struct BcCase {
    /// Its name in the verdicts (no tab or newline).
    pub name: String,
    /// The DER EvidenceRecord.
    pub record: PathBuf,
    /// The data object it is evidence for.
    pub data: PathBuf,
    /// The PEM certificate of the TSA whose time-stamps it holds.
    pub tsa_cert: PathBuf,
}

/// Bouncy Castle's verdicts on one [`BcCase`], each `valid` or `invalid: <reason>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BcVerdict {
    /// The case's name.
    pub name: String,
    /// `validatePresent` with the data.
    pub right: String,
    /// `validate` with a verifier over the TSA certificate: the time-stamp signatures.
    pub sig: String,
    /// `validatePresent` with the data with one byte changed.
    pub wrong: String,
}

impl BcVerdict {
    /// Valid for the data and its time-stamp signatures, invalid for the data changed.
    pub fn accepts(&self) -> bool {
        self.right == "valid" && self.sig == "valid" && self.wrong.starts_with("invalid")
    }
}

/// Compiles `tests/java/<class>.java` into `<work>/bc-classes`; the class path to run it.
fn compile(work: &Path, class: &str) -> String {
    let src = format!("{}/tests/java/{class}.java", env!("CARGO_MANIFEST_DIR"));
    compile_java(work, Path::new(&src))
}

/// Compiles the Java source `src` against [`BC_JARS`] into `<work>/bc-classes`; the
/// class path to run it with (those classes, then the jars). Other suites' Bouncy
/// Castle checkers use it too (hanko-server's `tests/java/TspCheck.java`).
///
/// # Panics
/// When javac cannot be started or fails: this is an assertion for tests.
pub fn compile_java(work: &Path, src: &Path) -> String {
    let cp = BC_JARS.join(":");
    let classes = work.join("bc-classes");
    let out = Command::new("javac")
        .args(["-cp", &cp, "-d"])
        .arg(&classes)
        .arg(src)
        .output()
        .unwrap_or_else(|e| panic!("javac (default-jdk-headless; ops/dev-setup.sh): {e}"));
    assert!(
        out.status.success(),
        "javac: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!("{}:{cp}", classes.display())
}

/// What [`bouncy_castle_make`] wrote.
#[derive(Debug, Clone)]
pub struct BcMade {
    /// The DER evidence record of each data file, in the order given.
    pub records: Vec<PathBuf>,
    /// The PEM root certificate of Bouncy Castle's TSA.
    pub root: PathBuf,
    /// The PEM certificate of Bouncy Castle's TSA.
    pub tsa_cert: PathBuf,
}

/// Bouncy Castle as another product making evidence records: compiles and runs
/// `tests/java/ErsMake.java`, which time-stamps one hash tree over `data` (files) with a
/// TSA whose keys it generates anew and never writes, and writes each file's record
/// into `out` (see its header).
///
/// # Panics
/// When javac or java cannot be started or fail: this is an assertion for tests.
pub fn bouncy_castle_make(work: &Path, out: &Path, data: &[PathBuf]) -> BcMade {
    let cp = compile(work, "ErsMake");
    std::fs::create_dir_all(out).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
    let run = Command::new("java")
        .arg("-cp")
        .arg(cp)
        .arg("ErsMake")
        .arg(out)
        .args(data)
        .output()
        .unwrap_or_else(|e| panic!("java: {e}"));
    assert!(
        run.status.success(),
        "java ErsMake: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let records = data
        .iter()
        .map(|d| {
            let name = d.file_name().map(|n| n.to_string_lossy().into_owned());
            out.join(format!("{}.ers", name.unwrap_or_default()))
        })
        .collect();
    BcMade {
        records,
        root: out.join("root.pem"),
        tsa_cert: out.join("tsa.pem"),
    }
}

/// Compiles ErsCheck.java into `<work>/bc-classes` and runs it on `cases` (listed in
/// `<work>/bc-cases.tsv`); the verdicts, in the order of `cases`.
///
/// # Panics
/// When javac or java cannot be started or fail, or the output is not one verdict per
/// case in order: this is an assertion for tests.
pub fn bouncy_castle(work: &Path, cases: &[BcCase]) -> Vec<BcVerdict> {
    let cp = compile(work, "ErsCheck");
    let manifest: String = cases
        .iter()
        .map(|c| {
            format!(
                "{}\t{}\t{}\t{}\n",
                c.name,
                c.record.display(),
                c.data.display(),
                c.tsa_cert.display()
            )
        })
        .collect();
    let list = work.join("bc-cases.tsv");
    std::fs::write(&list, manifest).unwrap_or_else(|e| panic!("{}: {e}", list.display()));
    let out = Command::new("java")
        .arg("-cp")
        .arg(cp)
        .arg("ErsCheck")
        .arg(&list)
        .output()
        .unwrap_or_else(|e| panic!("java: {e}"));
    assert!(
        out.status.success(),
        "java: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let verdicts: Vec<BcVerdict> = stdout
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let [name, right, sig, wrong] = f[..] else {
                panic!("not a verdict: {l}");
            };
            let field = |v: &str, key: &str| {
                v.strip_prefix(key)
                    .unwrap_or_else(|| panic!("{key}... expected: {l}"))
                    .to_owned()
            };
            BcVerdict {
                name: name.to_owned(),
                right: field(right, "right="),
                sig: field(sig, "sig="),
                wrong: field(wrong, "wrong="),
            }
        })
        .collect();
    assert_eq!(verdicts.len(), cases.len(), "{stdout}");
    for (c, v) in cases.iter().zip(&verdicts) {
        assert_eq!(c.name, v.name, "{stdout}");
    }
    verdicts
}

/// [`bouncy_castle`], and panics unless it [accepts](BcVerdict::accepts) every case,
/// listing those it does not.
pub fn assert_bouncy_castle_accepts(work: &Path, cases: &[BcCase]) {
    let bad: Vec<String> = bouncy_castle(work, cases)
        .iter()
        .filter(|v| !v.accepts())
        .map(|v| {
            format!(
                "{}: right={} sig={} wrong={}",
                v.name, v.right, v.sig, v.wrong
            )
        })
        .collect();
    assert!(
        bad.is_empty(),
        "Bouncy Castle disagrees:\n{}",
        bad.join("\n")
    );
}
