//! The report: one line per check, each naming its requirement in docs/requirements.md,
//! as text, JSON or a self-contained HTML page an auditor can file.

use std::fmt::Write as _;

use serde::Serialize;

/// A check's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Outcome {
    /// The artefact meets the requirement.
    Pass,
    /// It does not; the detail says where.
    Fail,
    /// The check could not be made (the detail says what is missing).
    Skip,
}

impl Outcome {
    /// `PASS`, `FAIL` or `SKIP`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Fail => "FAIL",
            Self::Skip => "SKIP",
        }
    }
}

/// The short title of each requirement of docs/requirements.md (its summary table).
const TITLES: &[(&str, &str)] = &[
    (
        "A.1",
        "Accept DER TimeStampReq v1 with reqPolicy, nonce, certReq",
    ),
    (
        "A.2",
        "Imprint length must fit its hash, else badDataFormat",
    ),
    ("A.3", "Weak or unknown hash gives badAlg"),
    ("A.4", "Unsupported policy gives unacceptedPolicy"),
    ("A.5", "Any request extension gives unacceptedExtension"),
    ("A.6", "Bad clock gives timeNotAvailable"),
    ("A.7", "HSM or storage fault gives systemFailure"),
    (
        "A.8",
        "Malformed gives badDataFormat; wrong version gives badRequest",
    ),
    (
        "A.9",
        "Token only when granted; failInfo from the allowed set",
    ),
    ("A.10", "Nonce echoed unchanged"),
    ("A.11", "certReq controls SignedData.certificates"),
    ("A.12", "Token identifies nothing about the requester"),
    ("A.13", "HTTP transport rules"),
    ("A.14", "HTTP and HTTPS"),
    (
        "B.15",
        "ContentInfo(signedData), id-ct-TSTInfo, one SignerInfo",
    ),
    ("B.16", "SignedData v3, SignerInfo v1"),
    (
        "B.17",
        "Signed attributes: one content-type, one message-digest",
    ),
    (
        "B.18",
        "Signature over the sorted DER SET of signed attributes",
    ),
    ("B.19", "One digest algorithm for content and attributes"),
    ("B.20", "CMSAlgorithmProtection present and consistent"),
    (
        "B.21",
        "signing-certificate-v2 identifies the TSA certificate",
    ),
    ("B.22", "ESSCertIDv2 details"),
    ("B.23", "TSTInfo v1; policy rules; configurable default"),
    ("B.24", "messageImprint byte-identical"),
    ("B.25", "Unique serials (at most 160 bits)"),
    ("B.26", "genTime encoding"),
    (
        "B.27",
        "Accuracy present, at most 1 s, consistent precision",
    ),
    ("B.28", "No ordering, no critical extension"),
    ("B.29", "tsa field equals the certificate subject"),
    ("B.30", "qcStatements for the EU-qualified profile"),
    ("B.31", "TSA certificate EKU profile; refuse to start"),
    ("B.32", "TSU subject C, O, CN"),
    ("B.33", "TS 119 312 algorithms"),
    ("C.35", "Clock within the declared accuracy"),
    ("C.36", "Detect drift or jumps; stop issuing"),
    ("C.37", "Leap seconds handled and logged"),
    ("C.38", "Log key, certificate and clock events"),
    ("C.39", "Key generated and kept in the HSM"),
    (
        "C.40",
        "One active key per TSU; certificate checked against the key",
    ),
    ("C.41", "No issuance outside the key's period; rollover"),
    (
        "C.43",
        "Nothing issued after compromise or lost calibration",
    ),
    ("C.44", "Publish hashes, accuracy, policies"),
    ("D.45", "CAdES B-B attributes, exactly one signing-time"),
    (
        "D.46",
        "Chain included without duplicates; no issuerSerial; content-hints or mime-type",
    ),
    ("D.47", "No MD5; cms-algorithm-protection"),
    ("D.48", "B-T signature-time-stamp over the signature value"),
    (
        "E.54",
        "PAdES: SubFilter ETSI.CAdES.detached, DER CMS in /Contents",
    ),
    (
        "E.55",
        "ByteRange over all but /Contents; incremental update keeping the original bytes",
    ),
    ("E.56", "/M the signing time; no CMS signing-time"),
    (
        "E.57",
        "content-type id-data, signing certificate and signing-certificate-v2; no /Reason with commitment-type-indication",
    ),
    ("E.58", "B-T: signature time-stamp"),
    ("F.62", "EvidenceRecord v1, digestAlgorithms"),
    ("F.63", "Node hashing; the root is the time-stamped hash"),
    ("F.63a", "Leaves, binary trees, reducedHashtree form"),
    ("F.64", "Chain and sequence ordering"),
    ("F.65", "Time-stamp renewal"),
    ("F.66", "Hash-tree renewal"),
    ("F.67", "Validity chain and timely renewal"),
    ("G.68", "CSC v1 and v2 under their own prefixes"),
    ("G.69", "CSC `info`"),
    (
        "G.70",
        "Credentials per client; `credentials/list` and `credentials/info`",
    ),
    ("G.71", "`credentials/authorize` SAD binding"),
    ("G.72", "`signatures/signHash` algorithms"),
    ("G.73", "JSON error bodies"),
    ("G.74", "`signatures/timestamp`"),
    ("G.75", "v2 `signatures/signDoc`"),
    ("D.49", "CAdES B-LT revocation data and certificates"),
    ("D.50", "CAdES B-LTA archive-time-stamp-v3"),
    ("D.51", "ATSv3 imprint computation"),
    ("D.52", "One ats-hash-index-v3"),
    ("D.53", "Later attributes keep earlier ATSv3 valid"),
    ("E.59", "PAdES B-LT DSS"),
    ("E.60", "PAdES B-LTA document time-stamp"),
];

/// The short title of requirement `id`, e.g. `B.18`.
pub fn requirement_title(id: &str) -> &'static str {
    TITLES
        .iter()
        .find(|(i, _)| *i == id)
        .map_or("", |(_, t)| *t)
}

/// Sort key of a requirement id: its section letter, then its number.
fn requirement_order(id: &str) -> (char, u32, String) {
    let mut chars = id.chars();
    let section = chars.next().unwrap_or('Z');
    let rest: String = chars.skip(1).collect();
    let number: String = rest.chars().take_while(char::is_ascii_digit).collect();
    (section, number.parse().unwrap_or(0), rest)
}

/// One check's result.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// The requirement's id in docs/requirements.md, e.g. `B.18`.
    pub requirement: &'static str,
    /// The requirement's short title.
    pub title: &'static str,
    /// The check's name, unique in the report, e.g. `signed-attributes-sorted`.
    pub check: &'static str,
    /// The outcome.
    pub outcome: Outcome,
    /// What was seen; for a FAIL, where and why.
    pub detail: String,
}

/// One input the report is about, with its SHA-256.
#[derive(Clone, Debug, Serialize)]
pub struct Input {
    /// What it is: a file name or a URL.
    pub name: String,
    /// SHA-256 of its bytes, hex; empty for a URL.
    pub sha256: String,
}

/// A whole report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// `hanko-conformance <version>`.
    pub tool: String,
    /// The subcommand, e.g. `tsa` or `token`.
    pub subject: String,
    /// When the run started (RFC 3339, UTC).
    pub started: String,
    /// The inputs and their hashes.
    pub inputs: Vec<Input>,
    /// The checks, in the order made.
    pub findings: Vec<Finding>,
    /// Passed, failed, skipped.
    pub summary: Summary,
}

/// The counts.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

/// Findings as the checks make them, merged per check: one check run over many
/// artefacts (the `tsa` subcommand's replies) is one line, FAIL if any failed.
#[derive(Debug, Default)]
pub struct Findings {
    list: Vec<Finding>,
}

impl Findings {
    /// No findings yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an outcome of `check`. A later outcome of the same check merges with the
    /// earlier: FAIL wins over PASS wins over SKIP; FAIL details accumulate (the first
    /// five are kept, then a count).
    pub fn add(
        &mut self,
        requirement: &'static str,
        check: &'static str,
        outcome: Outcome,
        detail: impl Into<String>,
    ) {
        let detail = detail.into();
        let Some(f) = self.list.iter_mut().find(|f| f.check == check) else {
            self.list.push(Finding {
                requirement,
                title: requirement_title(requirement),
                check,
                outcome,
                detail,
            });
            return;
        };
        match (f.outcome, outcome) {
            (Outcome::Fail, Outcome::Fail) => {
                let shown = f.detail.matches("; ").count() + 1;
                if shown < 5 {
                    f.detail.push_str("; ");
                    f.detail.push_str(&detail);
                } else if !f.detail.ends_with("(more)") {
                    f.detail.push_str("; … (more)");
                }
            }
            (Outcome::Fail, _) | (Outcome::Pass, Outcome::Skip | Outcome::Pass) => {}
            (_, Outcome::Fail) | (Outcome::Skip, Outcome::Pass) => {
                f.outcome = outcome;
                f.detail = detail;
            }
            (Outcome::Skip, Outcome::Skip) => {}
        }
    }

    /// Shorthand: PASS or FAIL from a result.
    pub fn check(
        &mut self,
        requirement: &'static str,
        check: &'static str,
        result: Result<String, String>,
    ) {
        match result {
            Ok(d) => self.add(requirement, check, Outcome::Pass, d),
            Err(d) => self.add(requirement, check, Outcome::Fail, d),
        }
    }

    /// Shorthand: SKIP with the reason.
    pub fn skip(&mut self, requirement: &'static str, check: &'static str, why: impl Into<String>) {
        self.add(requirement, check, Outcome::Skip, why);
    }

    /// The findings so far.
    pub fn list(&self) -> &[Finding] {
        &self.list
    }

    /// The names of the checks with `outcome` (every check when `None`).
    pub fn checks(&self, outcome: Option<Outcome>) -> std::collections::BTreeSet<&'static str> {
        self.list
            .iter()
            .filter(|f| outcome.is_none_or(|o| f.outcome == o))
            .map(|f| f.check)
            .collect()
    }

    /// The outcome of `check`, if it was made.
    pub fn outcome(&self, check: &str) -> Option<Outcome> {
        self.list
            .iter()
            .find(|f| f.check == check)
            .map(|f| f.outcome)
    }

    /// Into a report, the checks in the order of the requirements list.
    pub fn into_report(mut self, subject: &str, started: String, inputs: Vec<Input>) -> Report {
        self.list
            .sort_by_cached_key(|f| requirement_order(f.requirement));
        let mut summary = Summary::default();
        for f in &self.list {
            match f.outcome {
                Outcome::Pass => summary.passed += 1,
                Outcome::Fail => summary.failed += 1,
                Outcome::Skip => summary.skipped += 1,
            }
        }
        Report {
            tool: format!("hanko-conformance {}", env!("CARGO_PKG_VERSION")),
            subject: subject.to_owned(),
            started,
            inputs,
            findings: self.list,
            summary,
        }
    }
}

impl Report {
    /// Whether nothing failed.
    pub fn passed(&self) -> bool {
        self.summary.failed == 0
    }

    /// The text report: a header, one line per check, the summary line.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{} — {} — {}", self.tool, self.subject, self.started);
        for i in &self.inputs {
            if i.sha256.is_empty() {
                let _ = writeln!(out, "input {}", i.name);
            } else {
                let _ = writeln!(out, "input {} sha256:{}", i.name, i.sha256);
            }
        }
        for f in &self.findings {
            let _ = writeln!(
                out,
                "{} {:<6} {:<34} {}",
                f.outcome.label(),
                f.requirement,
                f.check,
                f.detail
            );
        }
        let _ = writeln!(out, "{}", self.summary_line());
        out
    }

    /// `N passed, N failed, N skipped`.
    pub fn summary_line(&self) -> String {
        format!(
            "{} passed, {} failed, {} skipped",
            self.summary.passed, self.summary.failed, self.summary.skipped
        )
    }

    /// The JSON report.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// A self-contained HTML page: no script, no external resource.
    pub fn html(&self) -> String {
        let mut rows = String::new();
        for f in &self.findings {
            let _ = writeln!(
                rows,
                "<tr class=\"{cls}\"><td class=\"o\">{o}</td><td class=\"r\"><b>{r}</b> {t}</td><td class=\"c\"><code>{c}</code></td><td>{d}</td></tr>",
                cls = f.outcome.label().to_ascii_lowercase(),
                o = f.outcome.label(),
                r = escape(f.requirement),
                t = escape(f.title),
                c = escape(f.check),
                d = escape(&f.detail),
            );
        }
        let mut inputs = String::new();
        for i in &self.inputs {
            let _ = writeln!(
                inputs,
                "<tr><td>{}</td><td><code>{}</code></td></tr>",
                escape(&i.name),
                if i.sha256.is_empty() {
                    "—".to_owned()
                } else {
                    escape(&i.sha256)
                }
            );
        }
        let verdict = if self.passed() {
            "conforms"
        } else {
            "does not conform"
        };
        let verdict_class = if self.passed() { "pass" } else { "fail" };
        format!(
            r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Conformance report: {subject}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #1b1b1b; }}
h1 {{ font-size: 1.4rem; margin-bottom: 0.2rem; }}
.meta {{ color: #555; margin-top: 0; }}
.verdict {{ font-size: 1.1rem; padding: 0.6rem 1rem; border-radius: 4px; display: inline-block; }}
.verdict.pass {{ background: #e3f4e6; color: #17612a; }}
.verdict.fail {{ background: #fbe4e4; color: #8d1c1c; }}
table {{ border-collapse: collapse; width: 100%; margin: 1rem 0; font-size: 0.9rem; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 0.35rem 0.5rem; text-align: left; vertical-align: top; }}
th {{ background: #f3f3f3; }}
td.o {{ font-weight: bold; width: 3.5rem; }}
td.r {{ width: 18rem; }}
td.c {{ white-space: nowrap; }}
tr.pass td.o {{ color: #17612a; }}
tr.fail td.o {{ color: #b01c1c; }}
tr.fail {{ background: #fff5f5; }}
tr.skip td.o {{ color: #777; }}
code {{ font-family: ui-monospace, monospace; word-break: break-all; }}
footer {{ color: #777; font-size: 0.8rem; margin-top: 2rem; }}
</style>
</head>
<body>
<h1>Conformance report: <code>{subject}</code></h1>
<p class="meta">{tool} · started {started}</p>
<p class="verdict {verdict_class}">The subject {verdict}: {summary}</p>
<h2>Inputs</h2>
<table><tr><th>Input</th><th>SHA-256</th></tr>
{inputs}</table>
<h2>Checks</h2>
<table><tr><th>Result</th><th>Requirement</th><th>Check</th><th>Detail</th></tr>
{rows}</table>
<footer>Requirement ids refer to docs/requirements.md of Hanko. Generated by {tool}; verification by its own DER parser and RustCrypto.</footer>
</body>
</html>
"#,
            subject = escape(&self.subject),
            tool = escape(&self.tool),
            started = escape(&self.started),
            summary = escape(&self.summary_line()),
        )
    }
}

/// HTML text escaping.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn fail_wins_and_details_accumulate() {
        let mut f = Findings::new();
        f.add("B.18", "signature", Outcome::Skip, "no cert");
        f.add("B.18", "signature", Outcome::Pass, "ok");
        f.add("B.18", "signature", Outcome::Fail, "request 2: bad");
        f.add("B.18", "signature", Outcome::Pass, "ok");
        f.add("B.18", "signature", Outcome::Fail, "request 3: bad");
        assert_eq!(f.list().len(), 1);
        assert_eq!(f.outcome("signature"), Some(Outcome::Fail));
        assert_eq!(f.list()[0].detail, "request 2: bad; request 3: bad");
        let r = f.into_report("token", "now".into(), vec![]);
        assert!(!r.passed());
        assert!(r.text().ends_with("0 passed, 1 failed, 0 skipped\n"));
        assert!(r.html().contains("<td class=\"o\">FAIL</td>"));
        assert_eq!(escape("<a href='x'>&"), "&lt;a href=&#39;x&#39;&gt;&amp;");
    }
}
