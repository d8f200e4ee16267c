//! The tables `hanko-bench seal` prints: one line per row at the end of each round (the
//! raw rate is measured before and after the round's loads), then the medians of each
//! configuration over its quiet rounds (and over all rounds when some were noisy), with
//! the acceptance target where the issue sets one.

use std::io::Write as _;

use super::{Call, Row};
use crate::devserver::on_off;
use crate::stats::median;

/// The acceptance target (#12): signHash of 64 hashes per call with the RSA-3072 seal
/// key, at least this share of the raw HSM rate.
pub(super) const RSA_64_TARGET: f64 = 0.95;

/// A rate as a share of a raw rate (0 without a raw rate).
pub(super) fn ratio(rate: f64, raw: f64) -> f64 {
    if raw > 0.0 { rate / raw } else { 0.0 }
}

/// The call column: `signHash/64` or `cades`.
pub(super) fn call_label(c: Call) -> String {
    match c {
        Call::SignHash(n) => format!("signHash/{n}"),
        Call::Cades => "cades".to_owned(),
        Call::Pdf(bytes) if bytes >= 1_000_000 => format!("pdf/{}MB", bytes / 1_000_000),
        Call::Pdf(bytes) => format!("pdf/{}kB", bytes / 1000),
    }
}

/// The acceptance target (#13): PAdES seals of a 100 KB PDF with the RSA-3072 seal key,
/// at least this share of the raw HSM rate (the HSM, not the PDF, is the limit).
pub(super) const RSA_PDF_100K_TARGET: f64 = 0.8;

/// The target of a configuration, if the issue sets one.
pub(super) fn target(label: &str, call: Call) -> Option<f64> {
    match call {
        _ if label != "seal-rsa3072" => None,
        Call::SignHash(64) => Some(RSA_64_TARGET),
        Call::Pdf(bytes) if bytes <= 100_000 => Some(RSA_PDF_100K_TARGET),
        _ => None,
    }
}

impl Row {
    /// The raw rate the row is compared with: the mean of the raw rates measured before
    /// and after the round's loads.
    pub(super) fn raw(&self) -> f64 {
        (self.raw_before.rate + self.raw_after.rate) / 2.0
    }

    pub(super) fn ratio(&self) -> f64 {
        ratio(self.load.rate(), self.raw())
    }

    pub(super) fn quiet(&self, max_other: f64) -> bool {
        self.cpu.other <= max_other && self.raw_other <= max_other
    }
}

pub(super) fn header() -> String {
    format!(
        "{:<12} {:>6} {:>11} {:>7} {:>9} {:>8} {:>8} {:>8} {:>6} {:>9} {:>6} {:>9} {:>15} {:>7}",
        "key",
        "verify",
        "call",
        "clients",
        "sig/s",
        "calls/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "raw sig/s",
        "ratio",
        "checked",
        "cpu srv/gen/oth",
        "raw oth"
    )
}

/// One table line; `checked` is `ok/kept` (`-` when nothing was checked), `BAD` appended
/// when a kept signature did not verify.
pub(super) fn row_line(r: &Row, max_other: f64) -> String {
    let checked = if r.checked.kept == 0 {
        "-".to_owned()
    } else {
        format!("{}/{}", r.checked.ok, r.checked.kept)
    };
    format!(
        "{:<12} {:>6} {:>11} {:>7} {:>9.1} {:>8.1} {:>8.2} {:>8.2} {:>6} {:>9.1} {:>6.3} {:>9} {:>5.0}/{:>2.0}/{:>2.0} % {:>5.0} %{}{}",
        r.key.name,
        on_off(r.verify),
        call_label(r.call),
        r.clients,
        r.load.rate(),
        r.load.call_rate(),
        r.load.calls.quantile_ms(0.50),
        r.load.calls.quantile_ms(0.99),
        r.load.errors(),
        r.raw(),
        r.ratio(),
        checked,
        r.cpu.server * 100.0,
        r.cpu.generator * 100.0,
        r.cpu.other * 100.0,
        r.raw_other * 100.0,
        if r.checked.ok < r.checked.kept {
            "  BAD"
        } else {
            ""
        },
        if r.quiet(max_other) { "" } else { "  NOISY" },
    )
}

/// A PDF row's throughput against `sha256sum` of the same file.
pub(super) fn pdf_line(r: &Row) -> Option<String> {
    let (Call::Pdf(bytes), Some(sum)) = (r.call, r.sha256sum) else {
        return None;
    };
    let sealed = r.load.rate() * bytes as f64 / 1e6;
    Some(format!(
        "  {}: {sealed:.1} MB/s sealed, sha256sum of the same file {sum:.1} MB/s ({:.3} of it)",
        call_label(r.call),
        ratio(sealed, sum)
    ))
}

/// Prints a round's rows, the raw rates they share and the first error, if any.
pub(super) fn print_round(rows: &[Row], max_other: f64) {
    for r in rows {
        println!("{}", row_line(r, max_other));
        if let Some(line) = pdf_line(r) {
            println!("{line}");
        }
        if let Some(e) = &r.load.first_error {
            println!("  first error: {e}");
        }
    }
    if let Some(r) = rows.first() {
        println!(
            "{:<12} round {}: raw sig/s before {:.1} (p50 {:.2} ms), after {:.1} (p50 {:.2} \
             ms), raw errors {}",
            "",
            r.round + 1,
            r.raw_before.rate,
            r.raw_before.p50_ms,
            r.raw_after.rate,
            r.raw_after.p50_ms,
            r.raw_before.errors + r.raw_after.errors
        );
    }
    let _ = std::io::stdout().flush();
}

/// One configuration's medians.
#[derive(Debug, Clone)]
pub(super) struct Median {
    pub(super) label: String,
    pub(super) target: Option<f64>,
    pub(super) rounds: usize,
    pub(super) rate: f64,
    pub(super) raw: f64,
    pub(super) ratio: f64,
}

/// The rows grouped by configuration (key, verify, call, clients), in first-seen order,
/// each group's medians.
pub(super) fn medians<'a>(rows: impl Iterator<Item = &'a Row>) -> Vec<Median> {
    let same = |a: &Row, b: &Row| {
        a.key.label == b.key.label
            && a.verify == b.verify
            && a.call == b.call
            && a.clients == b.clients
    };
    let mut groups: Vec<Vec<&Row>> = Vec::new();
    for r in rows {
        match groups.iter_mut().find(|g| same(g[0], r)) {
            Some(g) => g.push(r),
            None => groups.push(vec![r]),
        }
    }
    groups
        .iter()
        .map(|g| {
            let r = g[0];
            Median {
                label: format!(
                    "{} verify {} {} clients {}",
                    r.key.name,
                    on_off(r.verify),
                    call_label(r.call),
                    r.clients
                ),
                target: target(r.key.label, r.call),
                rounds: g.len(),
                rate: median(g.iter().map(|r| r.load.rate()).collect()),
                raw: median(g.iter().map(|r| r.raw()).collect()),
                ratio: median(g.iter().map(|r| r.ratio()).collect()),
            }
        })
        .collect()
}

/// A median line: rate, raw, ratio and, with a target, the verdict.
pub(super) fn median_line(m: &Median) -> String {
    let verdict = match m.target {
        Some(t) => format!(
            "; target >= {t:.2}: {}",
            if m.ratio >= t { "met" } else { "MISSED" }
        ),
        None => String::new(),
    };
    format!(
        "  {}: {} round(s), {:.1} sig/s, raw {:.1}, ratio {:.3}{verdict}",
        m.label, m.rounds, m.rate, m.raw, m.ratio
    )
}

/// The medians over quiet rounds, and over all rounds when some were noisy.
pub(super) fn print_summary(rows: &[Row], max_other: f64) {
    println!();
    println!(
        "medians over quiet rounds (other processes <= {:.0} % of the machine):",
        max_other * 100.0
    );
    let quiet = medians(rows.iter().filter(|r| r.quiet(max_other)));
    if quiet.is_empty() {
        println!("  none: every round was NOISY; rerun on a quiet machine");
    }
    for m in &quiet {
        println!("{}", median_line(m));
    }
    if rows.iter().any(|r| !r.quiet(max_other)) {
        println!("medians over all rounds, NOISY ones included (not for the targets):");
        for m in medians(rows.iter()) {
            println!("{}", median_line(&m));
        }
    }
}
