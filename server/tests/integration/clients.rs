//! Issue #14: the one client model through the real binary (a client limited to the
//! TSA, `tsa.public = false`, unknown keys, a client's own rate), `X-Request-Id` on the
//! response and on the server's log lines, `GET /openapi.json`, and `hanko config
//! check`.

use std::path::Path;

use hanko_server::auth::key_digest_hex;
use serde_json::Value;

use crate::common::http::{Response, send};
use crate::common::log::{TestDb, dev_config_with, shared_dev_data_dir, start_dev_server};
use crate::common::tsp::{granted, imprint_request};
use crate::common::{hanko, text};

const STAMPER_KEY: &str = "hanko_it-stamper-key";
const AUDITOR_KEY: &str = "hanko_it-auditor-key";

fn client(name: &str, key: &str, scopes: &[&str]) -> toml::Value {
    let mut t = toml::Table::new();
    t.insert("name".into(), name.into());
    t.insert("api_key_sha256".into(), key_digest_hex(key).into());
    t.insert(
        "scopes".into(),
        toml::Value::Array(scopes.iter().map(|s| (*s).into()).collect()),
    );
    toml::Value::Table(t)
}

fn tsa(addr: std::net::SocketAddr, key: Option<&str>, request_id: Option<&str>) -> Response {
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut headers = vec![("Content-Type", "application/timestamp-query")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a));
    }
    if let Some(id) = request_id {
        headers.push(("X-Request-Id", id));
    }
    let req = imprint_request(&[0x14; 32], rand_nonce());
    send(addr, "POST", "/tsa", &headers, &req).unwrap()
}

fn rand_nonce() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}

fn with_key(addr: std::net::SocketAddr, method: &str, path: &str, key: &str) -> Response {
    let auth = format!("Bearer {key}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    let body: &[u8] = if method == "POST" { b"{}" } else { b"" };
    send(addr, method, path, &headers, body).unwrap()
}

/// A client limited to the TSA time-stamps (its name in the log), and gets 403 on the
/// seal, log and CSC routes; with `tsa.public = false` an anonymous caller gets 401;
/// an unknown key 401 everywhere; its own rate limit (1/s, burst 1) gives 429 although
/// no per-address limit is set; its lane (bulk) is where its signature was queued. Every answer carries an X-Request-Id, and a sane
/// client-supplied one is kept and is on the server's log line of that request.
#[test]
fn a_client_limited_to_the_tsa_is_refused_elsewhere_and_rate_limited_by_its_own_bucket() {
    let data_dir = shared_dev_data_dir();
    let tmp = tempfile::tempdir().unwrap();
    let db = TestDb::sqlite();
    let config = dev_config_with(data_dir, &tmp.path().join("clients.toml"), |t| {
        let mut stamper = client("stamper", STAMPER_KEY, &["tsa"]);
        let s = stamper.as_table_mut().unwrap();
        s.insert("rate_limit_per_sec".into(), 1.into());
        s.insert("rate_limit_burst".into(), 1.into());
        s.insert("lane".into(), "bulk".into());
        t.insert(
            "clients".into(),
            toml::Value::Array(vec![stamper, client("auditor", AUDITOR_KEY, &["log:read"])]),
        );
        t.entry("tsa")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .unwrap()
            .insert("public".into(), false.into());
    });
    let server = start_dev_server(data_dir, &db, Some(&config));
    let addr = server.addr;

    // The stamper's first request is granted and recorded under its name.
    let r = tsa(addr, Some(STAMPER_KEY), None);
    assert_eq!(r.status, 200, "{}", r.head);
    let (serial, _) = granted(&r.body).expect("a token");
    let generated = r.header("x-request-id").unwrap().to_owned();
    assert_eq!(generated.len(), 32, "{generated}");
    // Its next one within the second: its own bucket is empty.
    let r = tsa(addr, Some(STAMPER_KEY), None);
    assert_eq!(r.status, 429, "{}", r.head);
    assert!(r.header("retry-after").is_some(), "{}", r.head);

    // Anonymous: the TSA is closed. Unknown key: 401, with the client's request id.
    let r = tsa(addr, None, None);
    assert_eq!(r.status, 401, "{}", r.head);
    assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"hanko\""));
    let r = tsa(addr, Some("hanko_nobody"), Some("it-clients-401"));
    assert_eq!(r.status, 401, "{}", r.head);
    assert_eq!(r.header("x-request-id"), Some("it-clients-401"));
    // An id that is not sane is replaced.
    let r = tsa(addr, Some("hanko_nobody"), Some("bad id\"with quotes"));
    assert_ne!(r.header("x-request-id"), Some("bad id\"with quotes"));
    assert_eq!(r.header("x-request-id").unwrap().len(), 32);

    // The auditor (log:read only) may not stamp; it reads the stamper's record.
    let r = tsa(addr, Some(AUDITOR_KEY), None);
    assert_eq!(r.status, 403, "{}", r.head);
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("insufficient_scope"),
        "{}",
        r.head
    );
    let log_path = format!("/api/v1/log/{serial}");
    let r = with_key(addr, "GET", &log_path, AUDITOR_KEY);
    assert_eq!(r.status, 200, "{}", r.head);
    let record: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(record["client"], "stamper");

    // The stamper on every other route: 403.
    for (method, path) in [
        ("POST", "/api/v1/seal/cades?credential=seal-p256"),
        ("POST", "/api/v1/seal/pdf?credential=seal-p256"),
        ("GET", log_path.as_str()),
        ("POST", "/csc/v2/credentials/list"),
    ] {
        let r = with_key(addr, method, path, STAMPER_KEY);
        assert_eq!(r.status, 403, "{method} {path}: {}", r.head);
        assert!(r.header("x-request-id").is_some());
    }
    // The CSC signing methods refuse it before admission: 403 every time, never 429
    // although its own bucket (1/s) is empty after the first.
    for path in [
        "/csc/v2/signatures/signHash",
        "/csc/v2/signatures/signHash",
        "/csc/v1/signatures/signHash",
        "/csc/v2/signatures/timestamp",
        "/csc/v2/signatures/signDoc",
    ] {
        let r = with_key(addr, "POST", path, STAMPER_KEY);
        assert_eq!(r.status, 403, "POST {path}: {}", r.head);
    }
    // An unknown key on them: 401.
    let r = with_key(addr, "POST", "/csc/v2/signatures/signHash", "hanko_nobody");
    assert_eq!(r.status, 401, "{}", r.head);
    let r = with_key(addr, "GET", &log_path, "hanko_nobody");
    assert_eq!(r.status, 401, "{}", r.head);

    // The stamper's lane is bulk: its requests are counted under it, and its token was
    // signed in the pool's bulk lane (the only bulk work this server did).
    let (_, metrics) = server.get("/metrics");
    let sample = |prefix: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(prefix) && l.contains("lane=\"bulk\""))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
    };
    assert!(
        sample("hanko_client_requests_total{").is_some_and(|v| v >= 1.0)
            && metrics.contains("client=\"stamper\""),
        "{metrics}"
    );
    // Summed over the keys: every pool registers both lanes' counters when it starts.
    let bulk_jobs: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("hanko_hsm_lane_jobs_total{") && l.contains("lane=\"bulk\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(bulk_jobs, 1.0, "{metrics}");

    let (_, out) = server.stop();
    // The refusal of the request with the client's id was logged inside its span.
    assert!(
        out.lines()
            .any(|l| l.contains("it-clients-401") && l.contains("refused")),
        "{out}"
    );
    // No key, digest or its prefix in the output.
    for secret in [STAMPER_KEY, AUDITOR_KEY, "hanko_nobody"] {
        assert!(!out.contains(secret), "{secret} in the log");
    }
    assert!(!out.contains(&key_digest_hex(STAMPER_KEY)));
}

/// `GET /openapi.json` from the running server: OpenAPI 3.1, the routes a client
/// needs, and for the RFC 3161 route every status it answers.
#[test]
fn openapi_json_is_served() {
    let data_dir = shared_dev_data_dir();
    let db = TestDb::sqlite();
    let server = start_dev_server(data_dir, &db, None);
    let r = send(server.addr, "GET", "/openapi.json", &[], b"").unwrap();
    assert_eq!(r.status, 200, "{}", r.head);
    let doc: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for p in [
        "/tsa",
        "/api/v1/seal/cades",
        "/api/v1/log/{serial}",
        "/csc/v2/signatures/signDoc",
    ] {
        assert!(doc["paths"][p].is_object(), "{p}");
    }
    let tsa = &doc["paths"]["/tsa"]["post"]["responses"];
    for s in ["200", "401", "403", "408", "413", "415", "429", "503"] {
        assert!(tsa[s].is_object(), "/tsa {s}");
    }
}

fn check(config: &Path, env: &[(&str, &str)], hsm: bool) -> (bool, String) {
    let mut cmd = hanko();
    cmd.args(["config", "check", config.to_str().unwrap()]);
    if hsm {
        cmd.arg("--hsm");
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{:?}: {}",
        out.status,
        text(&out)
    );
    (out.status.success(), text(&out))
}

/// `hanko config check`: a valid config (exit 0, without and with `--hsm`), and each
/// kind of defect (exit 1, named): a typo'd key, a missing chain file, a client naming
/// a credential that does not exist, `--hsm` without the PIN.
#[test]
fn config_check_validates_without_starting() {
    let data_dir = shared_dev_data_dir();
    let tmp = tempfile::tempdir().unwrap();
    let write = |name: &str, edit: &dyn Fn(&mut toml::Table)| {
        dev_config_with(data_dir, &tmp.path().join(name), |t| {
            t.insert("data_dir".into(), data_dir.to_str().unwrap().into());
            let store = crate::common::log::store_table(t);
            store.insert("node_id".into(), "check".into());
            edit(t);
        })
    };
    let good = write("good.toml", &|_| {});
    let (ok, out) = check(&good, &[], false);
    assert!(ok, "{out}");
    assert!(out.contains("OK") && out.contains("chain"), "{out}");

    let pin_file = data_dir.join("dev-pin");
    let pin_env = [("HANKO_PIN_FILE", pin_file.to_str().unwrap())];
    let (ok, out) = check(&good, &pin_env, true);
    assert!(ok, "{out}");
    assert!(out.contains("in the token"), "{out}");
    let (ok, out) = check(&good, &[], true);
    assert!(!ok && out.contains("HANKO_PIN"), "{out}");

    let typo = write("typo.toml", &|t| {
        t.insert("listne".into(), "127.0.0.1:1".into());
    });
    let (ok, out) = check(&typo, &[], false);
    assert!(!ok && out.contains("listne"), "{out}");

    let no_chain = write("no-chain.toml", &|t| {
        let keys = t["keys"].as_array_mut().unwrap();
        keys[0]
            .as_table_mut()
            .unwrap()
            .insert("chain".into(), "dev-pki/missing-chain.pem".into());
    });
    let (ok, out) = check(&no_chain, &[], false);
    assert!(!ok && out.contains("missing-chain.pem"), "{out}");

    let bad_credential = write("bad-credential.toml", &|t| {
        let mut c = client("issuer", "k", &["seal"]);
        c.as_table_mut().unwrap().insert(
            "credentials".into(),
            toml::Value::Array(vec!["seal-nonexistent".into()]),
        );
        t.insert("clients".into(), toml::Value::Array(vec![c]));
    });
    let (ok, out) = check(&bad_credential, &[], false);
    assert!(
        !ok && out.contains("seal-nonexistent") && out.contains("not a configured seal key"),
        "{out}"
    );
}
