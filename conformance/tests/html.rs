//! The HTML report is a page an auditor can open and file: headless Chromium (Debian's,
//! installed by ops/dev-setup.sh for the verification page's tests too) loads it, builds
//! the DOM we wrote (verdict, inputs, one row per check), logs no console error and
//! renders it to an image.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::process::Command;

use hanko_conformance::report::{Findings, Input, Outcome};

#[test]
fn the_html_report_renders_in_headless_chromium_without_errors() {
    let mut f = Findings::new();
    f.add("B.18", "signature", Outcome::Pass, "valid");
    f.add(
        "B.26",
        "gen-time",
        Outcome::Fail,
        "genTime \"20261203120000.50Z\": <trailing zero> & more",
    );
    f.add("B.30", "qc-statements", Outcome::Skip, "not claimed");
    let inputs = vec![Input {
        name: "token.tsr".into(),
        sha256: "ab".repeat(32),
    }];
    let report = f.into_report("token token.tsr", "2026-12-03T00:00:00Z".into(), inputs);
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, report.html()).unwrap();
    let url = format!("file://{}", page.display());
    let chromium = |args: &[&str]| {
        Command::new("chromium")
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--enable-logging=stderr",
                "--v=0",
            ])
            .args(args)
            .arg(&url)
            .output()
            .expect("chromium (ops/dev-setup.sh installs it)")
    };
    let dom = chromium(&["--dump-dom"]);
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let html = String::from_utf8_lossy(&dom.stdout);
    assert!(
        html.contains("The subject does not conform: 1 passed, 1 failed, 1 skipped"),
        "{html}"
    );
    assert_eq!(html.matches("<td class=\"o\">").count(), 3, "{html}");
    // Escaped, not interpreted: the detail's markup characters come back as text.
    assert!(html.contains("&lt;trailing zero&gt; &amp; more"), "{html}");
    let stderr = String::from_utf8_lossy(&dom.stderr);
    assert!(!stderr.contains(":CONSOLE"), "console messages: {stderr}");
    let png = dir.path().join("report.png");
    let shot = chromium(&[
        "--window-size=1200,900",
        &format!("--screenshot={}", png.display()),
    ]);
    assert!(
        shot.status.success(),
        "{}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let image = std::fs::read(&png).unwrap();
    assert!(
        image.starts_with(b"\x89PNG") && image.len() > 10_000,
        "{} bytes",
        image.len()
    );
}
