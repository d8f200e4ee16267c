//! Issue #20: the recipient's verification page (`/verify`) and `POST /api/v1/verify`
//! through the real `hanko serve --dev`, with inputs made by that server (a PAdES seal,
//! a CAdES seal, an RFC 3161 token) and by pyHanko (a PDF signed under a root the
//! server does not trust).
//!
//! - In a real browser: Debian's headless Chromium, driven over WebDriver
//!   (chromedriver) with plain HTTP + JSON: it loads `/verify`, uploads each input
//!   through the form, and the verdict shown is asserted; a screenshot of each verdict
//!   (genuine, changed, untrusted, unknown: a seal that cannot be read; an `.ers` with its
//!   `.tsr`; a time-stamp not yet anchored) is saved under `$CARGO_TARGET_TMPDIR/verify-screenshots/`; axe-core (vendored,
//!   `tests/fixtures/axe/`) finds no serious or critical violation on the form, on
//!   each report and on a refusal; the page in Japanese; and the basic case again with
//!   JavaScript switched off (the form's plain POST answered with HTML).
//! - The JSON report agrees with `hanko seal-verify` (PDF and `.p7s`) and `hanko verify`
//!   (`.tsr`) on the same inputs: the same outcome, chain and failure reason.
//! - Anchoring (#15): a `.tsr`'s report says "not yet anchored, expected by ..." while
//!   its batch is open and shows its batch and anchors once anchored; its `.ers` (from
//!   `hanko evidence get`) uploaded with the `.tsr` is checked as `hanko evidence verify`
//!   checks it (same outcome, time, TSA, failure reason), in the browser too.
//! - Bad input gets its plain-language message: an empty upload, a file of the wrong
//!   type, a PDF without a signature, a time-stamp without its document; a 50 MB upload
//!   over the 20 MB limit is refused before it is read to the end (announced by
//!   Content-Length, and streamed chunked without one).

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::common::http::send;
use crate::common::seal::{seal, seal_pdf};
use crate::common::{Server, dev_api_key, dev_init, hanko, load_turn, start_dev_with_extra, text};
use crate::seal_pdf::fixture;

/// The inputs of every test: made once per test by its own server.
struct Inputs {
    dir: PathBuf,
    sealed: PathBuf,
    visible: PathBuf,
    tampered: PathBuf,
    broken: PathBuf,
    untrusted: PathBuf,
    unsigned: PathBuf,
    p7s: PathBuf,
    tsr: PathBuf,
    doc: PathBuf,
    root: PathBuf,
}

/// Seals `gs-14.pdf` (PAdES B-T, P-256), changes one byte of the sealed copy, seals a
/// text detached (CAdES B-T) and time-stamps it with `hanko stamp`.
fn inputs(server: &Server, data_dir: &Path, dir: &Path) -> Inputs {
    let key = dev_api_key(data_dir);
    let original = fixture("gs-14.pdf");
    let (status, head, sealed) = seal_pdf(
        server.addr,
        "credential=seal-p256&level=B-T",
        &key,
        &original,
    );
    assert_eq!(status, 200, "{head}");
    let (status, head, visible) = seal_pdf(
        server.addr,
        "credential=seal-p256&level=B-T&visible=true&page=1&rect=350,650,200,90",
        &key,
        &original,
    );
    assert_eq!(status, 200, "{head}");
    let mut tampered = sealed.clone();
    // One byte inside the first page's content stream, which the seal covers.
    let at = find(&tampered, b"stream").unwrap() + 12;
    tampered[at] ^= 0x01;
    // The seal itself unreadable: its CMS (in /Contents, outside what it signs) no
    // longer starts with a SEQUENCE.
    let mut broken = sealed.clone();
    let contents = find(&broken, b"/Contents<").unwrap() + b"/Contents<".len();
    assert_eq!(&broken[contents..contents + 2], b"30");
    broken[contents..contents + 2].copy_from_slice(b"31");
    let doc = b"Certificate of residence: Taro Yamada, 1-2-3 Chiyoda, Tokyo\n".to_vec();
    let (status, head, p7s) = seal(
        server.addr,
        "credential=seal-rsa3072&level=B-T",
        Some(&key),
        &doc,
    );
    assert_eq!(status, 200, "{head}");
    let w = |name: &str, bytes: &[u8]| -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let i = Inputs {
        sealed: w("sealed.pdf", &sealed),
        visible: w("visible.pdf", &visible),
        tampered: w("tampered.pdf", &tampered),
        broken: w("broken.pdf", &broken),
        untrusted: w("untrusted.pdf", &fixture("signed-pyhanko.pdf")),
        unsigned: w("unsigned.pdf", &original),
        p7s: w("residence.txt.p7s", &p7s),
        doc: w("residence.txt", &doc),
        tsr: dir.join("residence.txt.tsr"),
        root: data_dir.join("dev-pki/root.pem"),
        dir: dir.to_owned(),
    };
    let out = hanko()
        .current_dir(dir)
        .args(["stamp", "residence.txt", "--url"])
        .arg(format!("http://{}/tsa", server.addr))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(i.tsr.exists());
    i
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn start(dir: &Path) -> (Server, PathBuf) {
    let data_dir = dir.join("data");
    dev_init(&data_dir);
    (start_dev_with_extra(&data_dir, ""), data_dir)
}

/// A multipart/form-data body of `(field, file name, bytes)` parts.
fn multipart(parts: &[(&str, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "hanko-test-boundary-7d1f";
    let mut body = Vec::new();
    for (field, name, bytes) in parts {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; \
                 filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// `POST /api/v1/verify` with `file` (and `data`): (status, JSON).
fn api(addr: SocketAddr, file: &Path, data: Option<&Path>) -> (u16, Value) {
    let file_bytes = std::fs::read(file).unwrap();
    let data_bytes = data.map(|d| std::fs::read(d).unwrap());
    let mut parts = vec![("file", "f", file_bytes.as_slice())];
    if let Some(d) = &data_bytes {
        parts.push(("data", "d", d.as_slice()));
    }
    post(addr, &parts)
}

fn post(addr: SocketAddr, parts: &[(&str, &str, &[u8])]) -> (u16, Value) {
    let (ct, body) = multipart(parts);
    let r = send(
        addr,
        "POST",
        "/api/v1/verify",
        &[("Content-Type", &ct)],
        &body,
    )
    .unwrap();
    let v = serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", r.head, String::from_utf8_lossy(&r.body)));
    (r.status, v)
}

// --- WebDriver ----------------------------------------------------------------------

/// The key of a WebDriver element reference (W3C WebDriver §12.1).
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process and one headless Chromium session in it.
struct Browser {
    child: Child,
    base: String,
    agent: ureq::Agent,
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium session, with
    /// JavaScript on or off.
    fn start(javascript: bool) -> Browser {
        let driver = Path::new("/usr/bin/chromedriver");
        assert!(
            driver.exists(),
            "chromedriver not found: run ops/dev-setup.sh (Debian's chromium and chromium-driver)"
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        let mut b = Browser {
            child,
            base: format!("http://127.0.0.1:{port}"),
            agent,
        };
        let started = Instant::now();
        loop {
            if let Ok(mut r) = b.agent.get(format!("{}/status", b.base)).call()
                && let Ok(s) = r.body_mut().read_to_string()
                && s.contains("\"ready\":true")
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut options = json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1000,1250", "--lang=en-US"],
        });
        if !javascript {
            options["prefs"] = json!({"profile.managed_default_content_settings.javascript": 2});
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "goog:chromeOptions": options}}});
        let v = b.raw("POST", "/session", Some(caps));
        let id = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v:#}"))
            .to_owned();
        b.base = format!("{}/session/{id}", b.base);
        b.cmd(
            "POST",
            "/timeouts",
            json!({"script": 120_000, "pageLoad": 60_000}),
        );
        b
    }

    fn raw(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let mut r = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, b) => self
                .agent
                .post(&url)
                .header("Content-Type", "application/json")
                .send(b.unwrap_or(json!({})).to_string()),
        }
        .unwrap();
        let text = r
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_string()
            .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// A command of the session; panics with WebDriver's error.
    fn cmd(&self, method: &str, path: &str, body: Value) -> Value {
        let v = self.raw(method, path, Some(body));
        assert!(
            v["value"].get("error").is_none(),
            "{method} {path}: {:#}",
            v["value"]
        );
        v["value"].clone()
    }

    fn goto(&self, url: &str) {
        self.cmd("POST", "/url", json!({"url": url}));
    }

    fn find(&self, css: &str) -> Option<String> {
        let v = self.raw(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        );
        v["value"]
            .as_array()
            .and_then(|a| a.first())
            .and_then(|e| e[ELEMENT].as_str())
            .map(str::to_owned)
    }

    /// The element matching `css`, waiting up to 60 s for it (a submitted form's
    /// answer loads after the click returns).
    fn element(&self, css: &str) -> String {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if let Some(e) = self.find(css) {
                return e;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.find(css).unwrap_or_else(|| {
            let source = self.raw("GET", "/source", None);
            let found = self.raw(
                "POST",
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            );
            panic!("no element {css} on the page ({found}):\n{source:.2000}")
        })
    }

    fn upload(&self, css: &str, path: &Path) {
        let e = self.element(css);
        self.cmd(
            "POST",
            &format!("/element/{e}/value"),
            json!({"text": path.to_str().unwrap()}),
        );
    }

    fn click(&self, css: &str) {
        let e = self.element(css);
        self.cmd("POST", &format!("/element/{e}/click"), json!({}));
    }

    fn text(&self, css: &str) -> String {
        let e = self.element(css);
        let v = self.raw("GET", &format!("/element/{e}/text"), None);
        v["value"].as_str().unwrap_or_default().to_owned()
    }

    fn screenshot(&self, to: &Path) {
        self.save_png(self.raw("GET", "/screenshot", None), to);
    }

    /// A screenshot of the element matching `css` only.
    fn element_screenshot(&self, css: &str, to: &Path) {
        let e = self.element(css);
        self.save_png(
            self.raw("GET", &format!("/element/{e}/screenshot"), None),
            to,
        );
    }

    fn save_png(&self, v: Value, to: &Path) {
        let png = base64::engine::general_purpose::STANDARD
            .decode(v["value"].as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{}", to.display());
        std::fs::write(to, png).unwrap();
    }

    /// axe-core's violations on the current page whose impact is serious or critical
    /// (each as "id (impact): help, N nodes"), and the number of all violations.
    fn axe(&self) -> (Vec<String>, usize) {
        let src = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/axe/axe.min.js"),
        )
        .unwrap();
        let loaded = self.cmd(
            "POST",
            "/execute/sync",
            json!({"script": format!("{src}\n;return typeof window.axe;"), "args": []}),
        );
        assert_eq!(loaded, "object", "axe-core did not load");
        let v = self.cmd(
            "POST",
            "/execute/async",
            json!({"script": "var done = arguments[arguments.length - 1];\
                axe.run(document).then(function (r) { done(r.violations.map(function (v) {\
                  return {id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length};\
                })); }, function (e) { done('axe failed: ' + e); });",
                   "args": []}),
        );
        let all = v.as_array().unwrap_or_else(|| panic!("{v}"));
        let bad = all
            .iter()
            .filter(|x| matches!(x["impact"].as_str(), Some("serious" | "critical")))
            .map(|x| {
                format!(
                    "{} ({}): {}, {} nodes",
                    x["id"], x["impact"], x["help"], x["nodes"]
                )
            })
            .collect();
        (bad, all.len())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.raw("DELETE", "", None);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn screenshots() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("verify-screenshots");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Uploads `file` (and `data`) through the form at `/verify?lang=LANG` and returns the
/// verdict's words as shown.
fn check_in_browser(
    b: &Browser,
    addr: SocketAddr,
    lang: &str,
    file: &Path,
    data: Option<&Path>,
) -> String {
    b.goto(&format!("http://{addr}/verify?lang={lang}"));
    b.upload("#file", file);
    if let Some(d) = data {
        b.upload("#data", d);
    }
    b.click("button[type=submit]");
    b.text("#verdict")
}

/// Prints the page shown (WebDriver's print, Chromium's PDF) to `to` and checks with
/// poppler's `pdftotext` that the report is there with its checks unfolded, and the form
/// is not.
fn assert_printed(b: &Browser, to: &Path) {
    let pdf = b.cmd("POST", "/print", json!({}));
    let pdf = base64::engine::general_purpose::STANDARD
        .decode(pdf.as_str().unwrap())
        .unwrap();
    std::fs::write(to, &pdf).unwrap();
    let out = Command::new("pdftotext").arg(to).arg("-").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Genuine"), "{text}");
    assert!(text.contains("integrity"), "the checks are printed: {text}");
    assert!(
        !text.contains("Choose the file"),
        "the form is not printed: {text}"
    );
}

#[test]
fn the_verification_page_in_a_real_browser() {
    let _turn = load_turn();
    let dir = tempfile::tempdir().unwrap();
    let (server, data_dir) = start(dir.path());
    let i = inputs(&server, &data_dir, dir.path());
    let shots = screenshots();
    let b = Browser::start(true);

    // The empty page: the form, the privacy note, the script ran, no serious
    // accessibility violation.
    b.goto(&format!("http://{}/verify?lang=en", server.addr));
    assert!(
        b.text("main")
            .contains("Nothing you upload is stored or logged")
    );
    assert!(b.find("html.js").is_some(), "verify.js did not run");
    let (bad, n) = b.axe();
    assert!(
        bad.is_empty(),
        "axe on the form ({n} violations in all): {bad:#?}"
    );
    b.screenshot(&shots.join("form.png"));

    let cases: [(&str, &Path, Option<&Path>, &str); 5] = [
        ("genuine", &i.sealed, None, "Genuine"),
        ("changed", &i.tampered, None, "Changed"),
        ("untrusted", &i.untrusted, None, "Not trusted"),
        ("unknown", &i.broken, None, "Cannot tell"),
        ("timestamp", &i.tsr, Some(&i.doc), "Genuine"),
    ];
    for (name, file, data, want) in cases {
        let shown = check_in_browser(&b, server.addr, "en", file, data);
        assert_eq!(shown, want, "{name}");
        b.screenshot(&shots.join(format!("{name}.png")));
        b.element_screenshot(".report", &shots.join(format!("{name}-report.png")));
        let (bad, n) = b.axe();
        assert!(
            bad.is_empty(),
            "axe on the {name} report ({n} in all): {bad:#?}"
        );
    }
    // An evidence record with its time-stamp: checked, and the report shows the anchor.
    let ers = evidence_of(&server, &i.tsr);
    assert_eq!(
        check_in_browser(&b, server.addr, "en", &ers, Some(&i.tsr)),
        "Genuine"
    );
    let details = b.text(".details");
    assert!(
        details.contains("Anchored: batch") && details.contains("this server's TSA"),
        "{details}"
    );
    assert!(details.contains("Hanko Dev TSA"), "{details}");
    b.screenshot(&shots.join("evidence.png"));
    b.element_screenshot(".report", &shots.join("evidence-report.png"));
    let (bad, _) = b.axe();
    assert!(bad.is_empty(), "axe on an evidence report: {bad:#?}");
    // ... and against the document instead of the time-stamp it is about: changed.
    assert_eq!(
        check_in_browser(&b, server.addr, "en", &ers, Some(&i.doc)),
        "Changed"
    );
    // A time-stamp just issued (everything before it is anchored): its batch is open,
    // and the report says by when it is expected. The open batch may hold the last
    // anchor's archive time-stamp, whose interval can end a moment after the new token
    // (seen in CI: anchored, or its anchor pending, a second later); a new token is
    // stamped then, at most thrice.
    let mut details = String::new();
    for attempt in 0..3 {
        std::fs::write(
            i.dir.join("fresh.txt"),
            format!("issued a moment ago ({attempt})\n"),
        )
        .unwrap();
        let out = hanko()
            .current_dir(&i.dir)
            .args(["stamp", "fresh.txt", "--url"])
            .arg(format!("http://{}/tsa", server.addr))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        let fresh = (i.dir.join("fresh.txt.tsr"), i.dir.join("fresh.txt"));
        assert_eq!(
            check_in_browser(&b, server.addr, "en", &fresh.0, Some(&fresh.1)),
            "Genuine"
        );
        details = b.text(".details");
        if details.contains("Not yet anchored") {
            break;
        }
    }
    assert!(
        details.contains("Not yet anchored, expected by"),
        "{details}"
    );
    b.element_screenshot(".report", &shots.join("timestamp-open-report.png"));

    // A visible seal: its picture beside the verdict, decoded by the browser.
    assert_eq!(
        check_in_browser(&b, server.addr, "en", &i.visible, None),
        "Genuine"
    );
    let width = b.cmd(
        "POST",
        "/execute/sync",
        json!({"script": "var i = document.querySelector('.seal-picture img'); \
                          return i && i.complete ? i.naturalWidth : 0;", "args": []}),
    );
    assert!(
        width.as_u64().is_some_and(|w| w > 0),
        "no seal picture shown: {width}"
    );
    b.element_screenshot(".report", &shots.join("genuine-visible-report.png"));
    let (bad, _) = b.axe();
    assert!(bad.is_empty(), "axe on a report with a picture: {bad:#?}");

    // The details a person reads, and the technical checks folded away.
    check_in_browser(&b, server.addr, "en", &i.sealed, None);
    let details = b.text(".details");
    assert!(details.contains("Hanko Dev Seal ECDSA P-256"), "{details}");
    assert!(
        details.contains("Hanko Dev Root CA (DEV ONLY)"),
        "{details}"
    );
    assert!(details.contains("(by the time-stamp)"), "{details}");
    assert!(
        details.contains("Yes, unchanged since it was sealed"),
        "{details}"
    );
    assert!(b.find("details.checks:not([open])").is_some());
    // Printed: the report with its checks, without the form.
    let pdf = b.cmd("POST", "/print", json!({}));
    let pdf = base64::engine::general_purpose::STANDARD
        .decode(pdf.as_str().unwrap())
        .unwrap();
    let printed = shots.join("genuine-print.pdf");
    std::fs::write(&printed, &pdf).unwrap();
    let out = Command::new("pdftotext")
        .arg(&printed)
        .arg("-")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Genuine"), "{text}");
    assert!(text.contains("integrity"), "the checks are printed: {text}");
    assert!(
        !text.contains("Choose the file"),
        "the form is not printed: {text}"
    );

    // A refusal in plain language, and the page in Japanese.
    let shown = {
        b.goto(&format!("http://{}/verify?lang=en", server.addr));
        b.upload("#file", &i.unsigned);
        b.click("button[type=submit]");
        b.text("[role=alert]")
    };
    assert!(
        shown.contains("This PDF carries no seal or signature"),
        "{shown}"
    );
    b.screenshot(&shots.join("refused.png"));
    let (bad, _) = b.axe();
    assert!(bad.is_empty(), "axe on a refusal: {bad:#?}");
    assert_eq!(
        check_in_browser(&b, server.addr, "ja", &i.sealed, None),
        "本物です"
    );
    b.screenshot(&shots.join("genuine-ja.png"));
    assert_eq!(
        check_in_browser(&b, server.addr, "ja", &i.tampered, None),
        "変更されています"
    );
    let (bad, _) = b.axe();
    assert!(bad.is_empty(), "axe on the Japanese report: {bad:#?}");
    drop(b);

    // JavaScript off: the same form, a plain POST, an HTML report.
    let nojs = Browser::start(false);
    nojs.goto(&format!("http://{}/verify?lang=en", server.addr));
    assert!(nojs.find("html.js").is_none(), "JavaScript was not off");
    assert_eq!(
        check_in_browser(&nojs, server.addr, "en", &i.sealed, None),
        "Genuine"
    );
    assert_eq!(
        check_in_browser(&nojs, server.addr, "en", &i.tampered, None),
        "Changed"
    );
    nojs.screenshot(&shots.join("genuine-nojs.png"));
    check_in_browser(&nojs, server.addr, "en", &i.sealed, None);
    assert_printed(&nojs, &shots.join("genuine-print-nojs.pdf"));
    drop(nojs);

    let (_, out) = server.stop();
    // Nothing uploaded reaches the log but its hash: not the document's text, not a
    // file name.
    assert!(out.contains("verified an upload"), "{out}");
    for secret in ["Taro Yamada", "residence.txt", "sealed.pdf"] {
        assert!(!out.contains(secret), "{secret} in the log:\n{out}");
    }
}

/// The evidence record of the time-stamp `tsr` from `hanko evidence get`, once its
/// batch is anchored by the server's own TSA (`--dev`: every 5 s): `tsr` + `.ers`.
fn evidence_of(server: &Server, tsr: &Path) -> PathBuf {
    let ers = tsr.with_extension("tsr.ers");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let out = hanko()
            .args(["evidence", "get", "--url"])
            .arg(format!("http://{}", server.addr))
            .arg("--file")
            .arg(tsr)
            .arg("-o")
            .arg(&ers)
            .output()
            .unwrap();
        match out.status.code() {
            Some(0) => return ers,
            Some(1) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(500)),
            _ => panic!("hanko evidence get: {}", text(&out)),
        }
    }
}

/// `hanko seal-verify`/`hanko verify` on `file`: (succeeded, what it printed).
fn cli(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = hanko().current_dir(dir).args(args).output().unwrap();
    (out.status.success(), text(&out))
}

/// (what, the API's answer, the CLI's, the verdict expected).
type Case<'a> = (&'a str, (u16, Value), (bool, String), &'a str);

#[test]
fn the_json_report_agrees_with_hanko_verify_and_seal_verify() {
    let dir = tempfile::tempdir().unwrap();
    let (server, data_dir) = start(dir.path());
    let i = inputs(&server, &data_dir, dir.path());
    let root = i.root.to_str().unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let cases: Vec<Case<'_>> = vec![
        (
            "sealed PDF",
            api(server.addr, &i.sealed, None),
            cli(&i.dir, &["seal-verify", &s(&i.sealed), "--ca", root]),
            "genuine",
        ),
        (
            "tampered PDF",
            api(server.addr, &i.tampered, None),
            cli(&i.dir, &["seal-verify", &s(&i.tampered), "--ca", root]),
            "changed",
        ),
        (
            "untrusted PDF",
            api(server.addr, &i.untrusted, None),
            cli(&i.dir, &["seal-verify", &s(&i.untrusted), "--ca", root]),
            "untrusted",
        ),
        (
            "PDF with a broken seal",
            api(server.addr, &i.broken, None),
            cli(&i.dir, &["seal-verify", &s(&i.broken), "--ca", root]),
            "unknown",
        ),
        (
            "CAdES seal",
            api(server.addr, &i.p7s, Some(&i.doc)),
            cli(
                &i.dir,
                &[
                    "seal-verify",
                    &s(&i.p7s),
                    "--data",
                    &s(&i.doc),
                    "--ca",
                    root,
                ],
            ),
            "genuine",
        ),
        (
            "CAdES seal over another document",
            api(server.addr, &i.p7s, Some(&i.tampered)),
            cli(
                &i.dir,
                &[
                    "seal-verify",
                    &s(&i.p7s),
                    "--data",
                    &s(&i.tampered),
                    "--ca",
                    root,
                ],
            ),
            "changed",
        ),
        (
            "time-stamp",
            api(server.addr, &i.tsr, Some(&i.doc)),
            cli(
                &i.dir,
                &["verify", &s(&i.tsr), "--data", &s(&i.doc), "--ca", root],
            ),
            "genuine",
        ),
        (
            "time-stamp of another document",
            api(server.addr, &i.tsr, Some(&i.sealed)),
            cli(
                &i.dir,
                &["verify", &s(&i.tsr), "--data", &s(&i.sealed), "--ca", root],
            ),
            "changed",
        ),
    ];
    // The picture of a visible seal is in the JSON; an invisible seal has none.
    let (_, visible) = api(server.addr, &i.visible, None);
    assert_eq!(visible["verdict"], "genuine");
    let picture = visible["seal_picture"].as_str().unwrap();
    let png = base64::engine::general_purpose::STANDARD
        .decode(picture.strip_prefix("data:image/png;base64,").unwrap())
        .unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    for (name, (_, report), _, _) in &cases {
        assert!(report.get("seal_picture").is_none(), "{name}");
    }
    for (name, (status, report), (ok, printed), verdict) in cases {
        assert_eq!(status, 200, "{name}: {report:#}");
        assert_eq!(report["verdict"], verdict, "{name}: {report:#}");
        assert_eq!(ok, verdict == "genuine", "{name}: the CLI says {printed}");
        if ok {
            let chain: Vec<&str> = report["chain"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap())
                .collect();
            let line = format!("chain     : {}", chain.join(" <- "));
            assert!(
                printed.contains(&line),
                "{name}: {line:?} not in\n{printed}"
            );
            assert_eq!(
                report["trust_anchor"],
                "CN=Hanko Dev Root CA (DEV ONLY),O=Hanko Dev,C=JP"
            );
            let serial_or_signer = match &report["time_stamp"] {
                Value::Null => report["signer"]["subject"].as_str().unwrap().to_owned(),
                ts => ts["tsa"].as_str().unwrap().to_owned(),
            };
            assert!(printed.contains(&serial_or_signer), "{name}: {printed}");
        } else {
            // The same reason, from the same verifier.
            let why = report["summary"].as_str().unwrap();
            assert!(printed.contains(why), "{name}: {why:?} not in\n{printed}");
        }
    }
    server.stop();
}

#[test]
fn bad_input_gets_a_plain_message_and_large_uploads_are_refused_early() {
    let dir = tempfile::tempdir().unwrap();
    let (server, data_dir) = start(dir.path());
    let i = inputs(&server, &data_dir, dir.path());
    let a = server.addr;
    let expect = |got: (u16, Value), status: u16, reason: &str, says: &str| {
        assert_eq!(got.0, status, "{:#}", got.1);
        assert_eq!(got.1["reason"], reason, "{:#}", got.1);
        let d = got.1["error_description"].as_str().unwrap();
        assert!(d.contains(says), "{d}");
    };
    expect(
        post(a, &[("file", "empty.pdf", b"")]),
        400,
        "empty",
        "the file is empty",
    );
    expect(post(a, &[]), 400, "empty", "No file was chosen");
    expect(
        post(a, &[("file", "photo.jpg", b"\xff\xd8\xff\xe0 not a seal")]),
        415,
        "unknown_type",
        "not one this page can check",
    );
    expect(
        api(a, &i.unsigned, None),
        400,
        "pdf_not_signed",
        "carries no seal",
    );
    expect(
        api(a, &i.tsr, None),
        400,
        "data_missing",
        "Also choose the document",
    );
    let r = send(
        a,
        "POST",
        "/api/v1/verify",
        &[("Content-Type", "text/plain")],
        b"hi",
    )
    .unwrap();
    assert_eq!(r.status, 400);
    assert!(String::from_utf8_lossy(&r.body).contains("could not be read"));
    // The HTML form's refusal is a page, in the language asked for.
    let (ct, body) = multipart(&[("file", "x.pdf", &std::fs::read(&i.unsigned).unwrap())]);
    let r = send(
        a,
        "POST",
        "/verify?lang=ja",
        &[("Content-Type", &ct)],
        &body,
    )
    .unwrap();
    assert_eq!(r.status, 400);
    let page = String::from_utf8_lossy(&r.body);
    assert!(
        page.contains("このPDFには電子印（電子署名）がありません"),
        "{page}"
    );
    assert!(page.contains("<html lang=\"ja\">"));

    // 50 MB over the 20 MB limit, announced: refused after at most a few MB sent.
    let (status, sent) = upload_large(a, true);
    assert_eq!(status, 413);
    assert!(
        sent < 20 * 1024 * 1024,
        "{sent} bytes sent before the refusal"
    );
    // Streamed without a length: cut at the limit, long before 50 MB.
    let (status, sent) = upload_large(a, false);
    assert_eq!(status, 413);
    assert!(
        sent < 40 * 1024 * 1024,
        "{sent} bytes sent before the refusal"
    );
    server.stop();
}

#[test]
fn the_page_is_rate_limited_like_the_other_routes_and_its_upload_limit_is_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    dev_init(&data_dir);
    let server = start_dev_with_extra(
        &data_dir,
        "[http]\nrate_limit_per_sec = 1\nrate_limit_burst = 3\n\
         [verify]\nmax_upload_bytes = 1048576\n",
    );
    let a = server.addr;
    let big = vec![b'%'; 2 * 1024 * 1024];
    let (status, v) = post(a, &[("file", "big.pdf", &big)]);
    assert_eq!(status, 413, "{v:#}");
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("up to 1 MB"),
        "{v:#}"
    );
    let (status, _) = post(a, &[("file", "x.bin", b"not a seal")]);
    assert_eq!(status, 415);
    let (ct, body) = multipart(&[("file", "x.bin", b"not a seal")]);
    let r = send(
        a,
        "POST",
        "/verify?lang=en",
        &[("Content-Type", &ct)],
        &body,
    )
    .unwrap();
    assert_eq!(r.status, 415);
    // The burst is spent: the API and the page answer 429 with Retry-After.
    let (status, v) = post(a, &[("file", "x.bin", b"not a seal")]);
    assert_eq!(status, 429, "{v:#}");
    let r = send(
        a,
        "POST",
        "/verify?lang=en",
        &[("Content-Type", &ct)],
        &body,
    )
    .unwrap();
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some(), "{}", r.head);
    let page = String::from_utf8_lossy(&r.body);
    assert!(page.contains("The service is busy"), "{page}");
    // The page itself (a GET) is not a verification and is not counted.
    assert_eq!(server.get("/verify").0, 200);
    server.stop();
}

/// Sends a 50 MB multipart upload (with Content-Length, or chunked) until the server
/// answers or stops reading, the answer read by a thread of its own meanwhile: (the
/// status, the bytes sent).
fn upload_large(addr: SocketAddr, announced: bool) -> (u16, usize) {
    const TOTAL: usize = 50 * 1024 * 1024;
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut reader = s.try_clone().unwrap();
    reader
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = answered.clone();
    let read = std::thread::spawn(move || {
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        while find(&answer, b"\r\n\r\n").is_none() {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
        String::from_utf8_lossy(&answer).into_owned()
    });
    let framing = if announced {
        format!("Content-Length: {TOTAL}")
    } else {
        "Transfer-Encoding: chunked".to_owned()
    };
    write!(
        s,
        "POST /api/v1/verify HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: multipart/form-data; boundary=b0undary\r\n{framing}\r\n\r\n"
    )
    .unwrap();
    let mut first = b"--b0undary\r\nContent-Disposition: form-data; name=\"file\"; \
                      filename=\"big.pdf\"\r\n\r\n%PDF-1.7\n"
        .to_vec();
    first.resize(256 * 1024, b'0');
    let rest = vec![b'0'; 256 * 1024];
    let mut sent = 0;
    while sent < TOTAL && !answered.load(std::sync::atomic::Ordering::SeqCst) {
        let chunk = if sent == 0 { &first } else { &rest };
        let piece = if announced {
            chunk.clone()
        } else {
            let mut p = format!("{:x}\r\n", chunk.len()).into_bytes();
            p.extend_from_slice(chunk);
            p.extend_from_slice(b"\r\n");
            p
        };
        if s.write_all(&piece).is_err() {
            break;
        }
        sent += chunk.len();
    }
    let head = read.join().unwrap();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no answer after {sent} bytes: {head:?}"));
    (status, sent)
}

#[test]
fn evidence_records_agree_with_hanko_evidence_verify_and_the_report_shows_the_anchoring() {
    let dir = tempfile::tempdir().unwrap();
    let (server, data_dir) = start(dir.path());
    let d = dir.path();
    let doc = d.join("notice.txt");
    std::fs::write(&doc, b"Notice of assessment 2026-117\n").unwrap();
    let out = hanko()
        .current_dir(d)
        .args(["stamp", "notice.txt", "--url"])
        .arg(format!("http://{}/tsa", server.addr))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let tsr = d.join("notice.txt.tsr");
    // Just issued: its batch is open (the dev interval is 5 s), and the report says when
    // it is expected.
    let (status, open) = api(server.addr, &tsr, Some(&doc));
    assert_eq!(status, 200, "{open:#}");
    assert_eq!(open["verdict"], "genuine");
    assert_eq!(open["evidence"]["state"], "open", "{open:#}");
    assert!(
        open["evidence"]["expected_by"].as_str().is_some(),
        "{open:#}"
    );

    let ers = evidence_of(&server, &tsr);
    let root = data_dir.join("dev-pki/root.pem");
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    let verify = |data: &Path| {
        cli(
            d,
            &[
                "evidence",
                "verify",
                &s(&ers),
                "--data",
                &s(data),
                "--ca",
                &s(&root),
            ],
        )
    };

    // Anchored now: the .tsr's report names the batch and its done anchor.
    let (_, anchored) = api(server.addr, &tsr, Some(&doc));
    let e = &anchored["evidence"];
    assert_eq!(e["state"], "anchored", "{anchored:#}");
    assert_eq!(e["anchor"], "self", "{anchored:#}");
    assert!(
        e["record_url"]
            .as_str()
            .unwrap()
            .ends_with(anchored["object_hash"].as_str().unwrap())
    );
    assert_eq!(e["batch"]["anchors"][0]["state"], "done", "{anchored:#}");

    // The record with its time-stamp: the same answer as hanko evidence verify.
    let (status, report) = api(server.addr, &ers, Some(&tsr));
    assert_eq!(status, 200, "{report:#}");
    let (ok, printed) = verify(&tsr);
    assert!(ok, "{printed}");
    assert_eq!(report["verdict"], "genuine", "{report:#}");
    assert_eq!(report["kind"], "evidence_record");
    assert_eq!(report["time_source"], "evidence-record");
    assert_eq!(report["object_hash"], anchored["object_hash"]);
    assert_eq!(report["evidence"]["state"], "anchored");
    let at = report["sealed_at"].as_str().unwrap();
    assert!(
        printed.contains(&format!("this file existed at {at}, anchored by 1 TSA")),
        "{at:?} not in\n{printed}"
    );
    let tsa = report["time_stamp"]["tsa"].as_str().unwrap();
    assert!(printed.contains(tsa), "{tsa:?} not in\n{printed}");
    assert_eq!(
        report["trust_anchor"],
        "CN=Hanko Dev Root CA (DEV ONLY),O=Hanko Dev,C=JP"
    );

    // Against the document rather than the token it is about: changed, for the same
    // reason the CLI gives.
    let (_, wrong) = api(server.addr, &ers, Some(&doc));
    let (ok, printed) = verify(&doc);
    assert!(!ok, "{printed}");
    assert_eq!(wrong["verdict"], "changed", "{wrong:#}");
    assert_eq!(wrong["reason"], "digest_mismatch");
    let why = wrong["summary"].as_str().unwrap();
    assert!(printed.contains(why), "{why:?} not in\n{printed}");

    // A record with one byte of its tree changed: the CLI refuses it, the page does not
    // say genuine.
    let mut bytes = std::fs::read(&ers).unwrap();
    let at = bytes.len() / 3;
    bytes[at] ^= 0x01;
    let bent = d.join("bent.ers");
    std::fs::write(&bent, &bytes).unwrap();
    let (_, bent_report) = api(server.addr, &bent, Some(&tsr));
    assert_ne!(bent_report["verdict"], "genuine", "{bent_report:#}");
    let out = cli(
        d,
        &[
            "evidence",
            "verify",
            &s(&bent),
            "--data",
            &s(&tsr),
            "--ca",
            &s(&root),
        ],
    );
    assert!(!out.0, "{}", out.1);
    server.stop();
}
