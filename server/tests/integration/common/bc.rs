//! Bouncy Castle's `org.bouncycastle.tsp` over the server's time-stamp responses:
//! `tests/java/TspCheck.java` (its header says what "valid" means), compiled with
//! `hanko_anchor::test_support::compile_java` against Debian's jars.

use std::path::{Path, PathBuf};
use std::process::Command;

use hanko_anchor::test_support::compile_java;

/// One response for Bouncy Castle, all as files.
#[derive(Debug, Clone)]
pub struct TspCase {
    /// Its name in the verdicts (no tab or newline).
    pub name: String,
    /// The DER TimeStampResp.
    pub resp: PathBuf,
    /// The time-stamped data.
    pub data: PathBuf,
    /// The PEM certificate of the TSA.
    pub tsa: PathBuf,
    /// The PEM root.
    pub root: PathBuf,
    /// The PEM intermediate between them.
    pub intermediate: PathBuf,
}

/// Bouncy Castle's verdict on each case, in order: `Ok(signature algorithm OID)` or
/// `Err(reason)`.
pub fn bouncy_castle_tsp(work: &Path, cases: &[TspCase]) -> Vec<Result<String, String>> {
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/java/TspCheck.java");
    let cp = compile_java(work, Path::new(src));
    let list = work.join("bc-tsp-cases.tsv");
    let lines: String = cases
        .iter()
        .map(|c| {
            let files = [&c.resp, &c.data, &c.tsa, &c.root, &c.intermediate];
            let files: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
            format!("{}\t{}\n", c.name, files.join("\t"))
        })
        .collect();
    std::fs::write(&list, lines).unwrap();
    let out = Command::new("java")
        .arg("-cp")
        .arg(cp)
        .arg("TspCheck")
        .arg(&list)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "java TspCheck: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdicts: Vec<Result<String, String>> = stdout
        .lines()
        .zip(cases)
        .map(|(l, c)| {
            let rest = l
                .strip_prefix(&format!("{}\t", c.name))
                .unwrap_or_else(|| panic!("not the verdict on {}: {l}", c.name));
            match rest.strip_prefix("valid\t") {
                Some(oid) => Ok(oid.to_owned()),
                None => Err(rest.to_owned()),
            }
        })
        .collect();
    assert_eq!(verdicts.len(), cases.len(), "{stdout}");
    verdicts
}
