//! Issue #18, key rollover without a restart: a time-stamping unit's next key, made in
//! the token and certified, is added to the running server's configuration with
//! `keys.succeeds` and `keys.activate_at`, and `hanko reload` (SIGHUP) loads it; it takes
//! over at that time while a continuous load runs.
//!
//! - No request fails across the switch; tokens before it carry the old key's
//!   ESSCertIDv2, after it the new one's (genTime at or after `activate_at`); every one
//!   verifies (hanko's verifier for all, `openssl ts -verify` for one of each).
//! - `/tsa/certs` lists both certificates; `/readyz` stays ready; the admin key list
//!   says which key is retired.
//! - Reloads refused as a whole, each naming why, with the old configuration going on:
//!   a bad `activate_at`, a changed `[http]`, a new key that succeeds nothing.
//! - The audit records, in order: config-reloaded (the file's SHA-256), key-loaded of
//!   the new key, key-activated, key-retired; `hanko log verify` passes.
//! - A restart after the switch starts on the new key, and `/tsa/certs` still has both.
//! - A seal credential: its successor added by reload is `pending` (the old key seals),
//!   then seals under the old credential name, with the audit events; and after a
//!   restart too.
//! - Two nodes sharing one PostgreSQL log, each reloaded through the admin API, switch
//!   at the same time under load: no failed request on either, each records its own
//!   `key-activated`, and no token of either carries the old key after the time.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use hanko_pki::cert::Certificate;
use hanko_pki::x509::{CertParams, CertProfile, NameAttr, build_name, issue_certificate};
use hanko_pki::{HashAlgorithm, KeyType};
use serde_json::Value;

use crate::common::dev_pki::{ca_key, cert};
use crate::common::log::{Load, TestDb, block_on, dev_config_with, start_dev_server, store_table};
use crate::common::seal::exported;
use crate::common::tsp::{openssl_ts_verify, post_timestamp, request_der, token_of};
use crate::common::{Server, dev_init, hanko, open_dev_token, run_in_child_with_dev_token, text};
use crate::log_server::new_api_key;

const DATA_DIR_VAR: &str = "HANKO_TEST_ROLLOVER_DATA_DIR";
const CHILD_TEST: &str = "key_rollover::make_the_next_key_in_the_dev_token";
/// The dev key that signs the default policy, and its successor made here.
const OLD_KEY: &str = "tsa-rsa3072";
const NEW_KEY: &str = "tsa-next-p256";
/// The dev seal credential rolled over, and its successor made here.
const OLD_SEAL: &str = "seal-p256";
const NEW_SEAL: &str = "seal-next-p256";

/// Run in a child by the test: generates [`NEW_KEY`] and [`NEW_SEAL`] in the dev token
/// and writes each SubjectPublicKeyInfo to `<label>.spki.der`.
#[test]
#[ignore = "run in a child process by the tests of this module"]
fn make_the_next_key_in_the_dev_token() {
    let Some(dir) = std::env::var_os(DATA_DIR_VAR) else {
        eprintln!("{DATA_DIR_VAR} is not set: nothing to make");
        return;
    };
    let dir = Path::new(&dir);
    let hsm = open_dev_token(dir);
    for label in [NEW_KEY, NEW_SEAL] {
        let spki = hsm.generate_key_pair(label, KeyType::EcP256).unwrap();
        std::fs::write(dir.join(format!("{label}.spki.der")), spki).unwrap();
    }
}

/// The next keys in the token ([`NEW_KEY`], [`NEW_SEAL`]), each certified by the dev
/// intermediate; the TSU's chain file (leaf, intermediate) under `dev-pki/`.
fn certify_next_key(dir: &Path) -> (PathBuf, Certificate) {
    run_in_child_with_dev_token(CHILD_TEST, DATA_DIR_VAR, dir);
    certify(
        dir,
        NEW_SEAL,
        CertProfile::Seal,
        "Hanko Dev Seal 2 (rollover test)",
    );
    certify(
        dir,
        NEW_KEY,
        CertProfile::Tsa {
            non_repudiation: false,
            private_key_usage_period: None,
        },
        "Hanko Dev TSU 2 (rollover test)",
    )
}

/// Key `label`'s certificate of `profile` from the dev intermediate: its chain file
/// `dev-pki/<label>-chain.pem` and the certificate.
fn certify(dir: &Path, label: &str, profile: CertProfile, cn: &str) -> (PathBuf, Certificate) {
    let spki = std::fs::read(dir.join(format!("{label}.spki.der"))).unwrap();
    let inter = cert(dir, "intermediate.pem");
    let inter_key = ca_key(dir, "intermediate.key.DEV-ONLY.pem");
    let now = SystemTime::now();
    let params = CertParams::new(
        profile,
        build_name(&[
            (NameAttr::Country, "JP"),
            (NameAttr::Organization, "Hanko Dev"),
            (NameAttr::CommonName, cn),
        ])
        .unwrap(),
        now - Duration::from_secs(3600).min(now.duration_since(inter.not_before()).unwrap()),
        now + Duration::from_secs(30 * 86_400),
    );
    let leaf = block_on(issue_certificate(&params, &spki, Some(&inter), &inter_key)).unwrap();
    std::fs::write(dir.join(format!("dev-pki/{label}.pem")), leaf.to_pem()).unwrap();
    let chain = dir.join(format!("dev-pki/{label}-chain.pem"));
    std::fs::write(&chain, format!("{}{}", leaf.to_pem(), inter.to_pem())).unwrap();
    (chain, leaf)
}

/// RFC 3339 in UTC, whole seconds (the test crate has no chrono: `date` formats it).
fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    let out = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{secs}"), "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A whole second `secs` seconds or a little more from now.
fn seconds_from_now(secs: u64) -> SystemTime {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap();
    SystemTime::UNIX_EPOCH + Duration::from_secs(now.as_secs() + 1 + secs)
}

/// `hanko reload` of the server on `dir`: (exit code, output).
fn reload(dir: &Path) -> (i32, String) {
    let out = hanko()
        .args([
            "reload",
            "--data-dir",
            dir.to_str().unwrap(),
            "--wait",
            "60",
        ])
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), text(&out))
}

/// The next key's `[[keys]]` entry.
fn next_key_entry(chain: &Path, succeeds: Option<&str>, at: &str) -> String {
    let succeeds = succeeds.map_or(String::new(), |s| format!("succeeds = \"{s}\"\n"));
    format!(
        "\n[[keys]]\nlabel = \"{NEW_KEY}\"\nusage = \"tsa\"\nalgorithm = \"ecdsa-sha256\"\nchain = {:?}\n{succeeds}activate_at = \"{at}\"\n",
        chain.to_str().unwrap()
    )
}

/// The token's signer certificate (what its sid and ESSCertIDv2 name: the verifier
/// checks that they agree) and genTime, after verifying it against the dev root.
fn check_token(token: &[u8], root: &Certificate) -> (Vec<u8>, SystemTime) {
    // TimeStampResp { status granted, token }.
    let mut body = vec![0x30, 0x03, 0x02, 0x01, 0x00];
    body.extend_from_slice(token);
    let resp = hanko_pki::der::tlv(hanko_pki::der::tag::SEQUENCE, &body);
    let (_, tst) = token_of(&resp);
    let imprint = tst.message_imprint.hashed_message.to_vec();
    hanko_client::verify::verify_token(
        token,
        &|_| Ok(imprint.clone()),
        std::slice::from_ref(root),
        &[],
    )
    .unwrap_or_else(|e| panic!("token does not verify: {e}"));
    let signer = hanko_client::verify::claimed_tsa(token).unwrap();
    let millis = u64::try_from(tst.gen_time.timestamp_millis()).unwrap();
    let gen_time = SystemTime::UNIX_EPOCH + Duration::from_millis(millis);
    (signer.der().to_vec(), gen_time)
}

/// Sleeps until 2 s past the switch at `at`.
fn past_the_switch(at: SystemTime) {
    while SystemTime::now() < at + Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Stops `load` and checks its tokens across a switch at `at`: no failed request; each
/// verifies; the old key's only before the switch (or in flight at it), the new key's
/// only from `at` on; some of each.
fn assert_switched(
    load: Load,
    root: &Certificate,
    (old_leaf, new_leaf): (&Certificate, &Certificate),
    at: SystemTime,
    who: &str,
) {
    let failures = load.failures.load(std::sync::atomic::Ordering::Relaxed);
    let grants = load.finish();
    assert_eq!(failures, 0, "{who}: requests failed across the switch");
    let (mut old, mut new) = (0, 0);
    for (_, token) in &grants {
        let (signer, gen_time) = check_token(token, root);
        if signer == old_leaf.der() {
            old += 1;
            // In flight at the switch at most: looked its unit up before it.
            assert!(
                gen_time < at + Duration::from_secs(1),
                "{who}: old key after the switch"
            );
        } else {
            assert_eq!(signer, new_leaf.der(), "{who}: a token of neither key");
            new += 1;
            assert!(
                gen_time + Duration::from_millis(1) >= at,
                "{who}: new key before its time"
            );
        }
    }
    assert!(old > 0 && new > 0, "{who}: old {old}, new {new}");
}

fn admin_keys(server: &Server, api_key: &str) -> Value {
    let r = crate::common::http::send(
        server.addr,
        "GET",
        "/api/v1/admin/keys",
        &[("Authorization", &format!("Bearer {api_key}"))],
        b"",
    )
    .unwrap();
    let body = String::from_utf8_lossy(&r.body).into_owned();
    assert_eq!(r.status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn audit_events(db: &TestDb) -> Vec<(String, Value)> {
    exported(db.log(&["export"]))
        .into_iter()
        .filter(|v| v["kind"] == "audit")
        .map(|v| {
            (
                v["event"]["type"].as_str().unwrap().to_owned(),
                v["event"]["fields"].clone(),
            )
        })
        .collect()
}

#[test]
fn rollover_under_load_after_a_reload_no_request_fails_and_both_keys_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    dev_init(&dir);
    let (chain, new_leaf) = certify_next_key(&dir);
    let old_leaf = cert(&dir, &format!("{OLD_KEY}.pem"));
    let root = cert(&dir, "root.pem");
    let db = TestDb::sqlite();
    let config = dir.join("rollover.toml");
    let (api_key, admin) = new_api_key(&["--name", "ops", "--scope", "admin"]);
    dev_config_with(&dir, &config, |t| {
        t.insert(
            "clients".into(),
            toml::Value::Array(vec![toml::Value::Table(admin)]),
        );
    });
    let base = std::fs::read_to_string(&config).unwrap();
    let server = start_dev_server(&dir, &db, Some(&config));

    // One token of the old key, for openssl.
    let req_old = request_der(HashAlgorithm::Sha256, b"before", Some(1), true, None);
    let (_, _, resp_old) = post_timestamp(server.addr, &req_old).unwrap();

    let load = Load::start(server.addr, 4, 0x18);
    load.wait_for(50, Duration::from_secs(30));

    // Refused reloads: nothing changes, each names why.
    std::fs::write(
        &config,
        format!(
            "{base}{}",
            next_key_entry(&chain, Some(OLD_KEY), "tomorrow")
        ),
    )
    .unwrap();
    let (code, out) = reload(&dir);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("refused") && out.contains("activate_at") && out.contains("RFC 3339"),
        "{out}"
    );
    std::fs::write(&config, format!("{base}\n[http]\nmax_in_flight = 7\n")).unwrap();
    let (code, out) = reload(&dir);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("[http]") && out.contains("restart"), "{out}");
    let at = seconds_from_now(4);
    std::fs::write(
        &config,
        format!("{base}{}", next_key_entry(&chain, None, &rfc3339(at))),
    )
    .unwrap();
    let (code, out) = reload(&dir);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("keys.activate_at needs keys.succeeds"),
        "{out}"
    );

    // The good one: the next key takes over in a few seconds (time enough for the
    // reload on a loaded machine: the key must still be pending when listed below).
    let at = seconds_from_now(8);
    let good = format!(
        "{base}{}",
        next_key_entry(&chain, Some(OLD_KEY), &rfc3339(at))
    );
    std::fs::write(&config, &good).unwrap();
    let (code, out) = reload(&dir);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("key \"{NEW_KEY}\" added: succeeds \"{OLD_KEY}\"")),
        "{out}"
    );
    let keys = admin_keys(&server, &api_key);
    let phase = |keys: &Value, label: &str| {
        keys["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["label"] == label)
            .map(|k| k["phase"].as_str().unwrap().to_owned())
    };
    assert_eq!(phase(&keys, NEW_KEY).as_deref(), Some("pending"), "{keys}");
    let (status, body) = server.get("/readyz");
    assert_eq!(status, 200, "{body}");

    // Through the switch under load.
    past_the_switch(at);
    let seen_after = load.grants.lock().unwrap().len();
    load.wait_for(seen_after + 50, Duration::from_secs(30));
    assert_switched(load, &root, (&old_leaf, &new_leaf), at, "one node");

    // One of each through openssl.
    let req_new = request_der(HashAlgorithm::Sha256, b"after", Some(2), true, None);
    let (_, _, resp_new) = post_timestamp(server.addr, &req_new).unwrap();
    let root_pem = dir.join("dev-pki/root.pem");
    openssl_ts_verify(tmp.path(), "old", &req_old, &resp_old, &root_pem, None);
    openssl_ts_verify(tmp.path(), "new", &req_new, &resp_new, &root_pem, None);

    // Both certificates published; ready; the old key retired.
    let (status, certs) = server.get("/tsa/certs");
    assert_eq!(status, 200);
    assert!(
        certs.contains(&new_leaf.to_pem()) && certs.contains(&old_leaf.to_pem()),
        "{certs}"
    );
    assert!(
        certs.find(&new_leaf.to_pem()) < certs.find(&old_leaf.to_pem()),
        "signing unit first"
    );
    let (status, body) = server.get("/readyz");
    assert_eq!(status, 200, "{body}");
    let keys = admin_keys(&server, &api_key);
    assert_eq!(phase(&keys, OLD_KEY).as_deref(), Some("retired"), "{keys}");
    assert_eq!(phase(&keys, NEW_KEY).as_deref(), Some("active"), "{keys}");
    let (_, policy) = server.get("/tsa/policy");
    assert!(policy.contains(NEW_KEY), "{policy}");
    let (status, out) = server.stop();
    assert!(status.success(), "{out}");

    // The audit trail, in order, with its fields.
    let events = audit_events(&db);
    let pos = |ty: &str, key: Option<&str>| {
        events
            .iter()
            .position(|(t, f)| t == ty && key.is_none_or(|k| f["key"] == k))
            .unwrap_or_else(|| panic!("no {ty} {key:?} in {events:?}"))
    };
    let reloaded = pos("config-reloaded", None);
    let loaded = pos("key-loaded", Some(NEW_KEY));
    let activated = pos("key-activated", Some(NEW_KEY));
    let retired = pos("key-retired", Some(OLD_KEY));
    assert!(
        loaded < reloaded && reloaded < activated && activated < retired,
        "{events:?}"
    );
    use sha2::Digest as _;
    let sha = hex::encode(sha2::Sha256::digest(good.as_bytes()));
    assert_eq!(events[reloaded].1["sha256"], sha.as_str());
    assert!(
        events[reloaded].1["changes"]
            .as_str()
            .unwrap()
            .contains(NEW_KEY)
    );
    assert_eq!(events[activated].1["succeeds"], OLD_KEY);
    assert_eq!(events[activated].1["activate_at"], rfc3339(at).as_str());
    assert_eq!(events[retired].1["succeeded_by"], NEW_KEY);
    assert_eq!(
        events
            .iter()
            .filter(|(t, _)| t == "config-reloaded")
            .count(),
        1,
        "refused reloads are not recorded: {events:?}"
    );
    db.assert_verifies();

    // A restart after the switch starts on the new key; both certificates published.
    let server = start_dev_server(&dir, &db, Some(&config));
    let (_, token, _) = post_timestamp(
        server.addr,
        &request_der(HashAlgorithm::Sha256, b"restart", Some(3), true, None),
    )
    .unwrap();
    assert_eq!(check_token(&token, &root).0, new_leaf.der());
    let (_, certs) = server.get("/tsa/certs");
    assert!(
        certs.contains(&new_leaf.to_pem()) && certs.contains(&old_leaf.to_pem()),
        "{certs}"
    );
    let (status, out) = server.stop();
    assert!(status.success(), "{out}");
}

/// `POST /api/v1/admin/reload` on `server`: (status, body).
fn admin_reload(server: &Server, api_key: &str) -> (u16, String) {
    let r = crate::common::http::send(
        server.addr,
        "POST",
        "/api/v1/admin/reload",
        &[("Authorization", &format!("Bearer {api_key}"))],
        b"",
    )
    .unwrap();
    (r.status, String::from_utf8_lossy(&r.body).into_owned())
}

#[test]
fn two_nodes_on_one_postgres_switch_together_under_load() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    dev_init(&dir);
    let (chain, new_leaf) = certify_next_key(&dir);
    let old_leaf = cert(&dir, &format!("{OLD_KEY}.pem"));
    let root = cert(&dir, "root.pem");
    let (api_key, admin) = new_api_key(&["--name", "ops", "--scope", "admin"]);
    let nodes = ["node-a", "node-b"];
    let configs: Vec<PathBuf> = nodes
        .iter()
        .map(|node| {
            let admin = admin.clone();
            dev_config_with(&dir, &dir.join(format!("{node}.toml")), move |t| {
                store_table(t).insert("node_id".into(), (*node).into());
                t.insert(
                    "clients".into(),
                    toml::Value::Array(vec![toml::Value::Table(admin)]),
                );
            })
        })
        .collect();
    let start = |config: &Path| start_dev_server(&dir, &db, Some(config));
    let servers: Vec<Server> = configs.iter().map(|c| start(c)).collect();
    let loads: Vec<Load> = servers
        .iter()
        .enumerate()
        .map(|(i, s)| Load::start(s.addr, 2, 0x20 + i as u8))
        .collect();
    for l in &loads {
        l.wait_for(20, Duration::from_secs(30));
    }
    let at = seconds_from_now(8);
    for (server, config) in servers.iter().zip(&configs) {
        let base = std::fs::read_to_string(config).unwrap();
        std::fs::write(
            config,
            format!(
                "{base}{}",
                next_key_entry(&chain, Some(OLD_KEY), &rfc3339(at))
            ),
        )
        .unwrap();
        let (status, body) = admin_reload(server, &api_key);
        assert_eq!(status, 200, "{body}");
        assert!(body.contains(NEW_KEY), "{body}");
        // The same file again: applied, nothing changed.
        let (status, body) = admin_reload(server, &api_key);
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"changes\":[]"), "{body}");
    }
    past_the_switch(at);
    for l in &loads {
        let n = l.grants.lock().unwrap().len();
        l.wait_for(n + 20, Duration::from_secs(30));
    }
    for (i, l) in loads.into_iter().enumerate() {
        assert_switched(l, &root, (&old_leaf, &new_leaf), at, nodes[i]);
    }
    for s in servers {
        let (status, out) = s.stop();
        assert!(status.success(), "{out}");
    }
    let activated: Vec<String> = exported(db.log(&["export"]))
        .into_iter()
        .filter(|v| v["kind"] == "audit" && v["event"]["type"] == "key-activated")
        .map(|v| v["event"]["fields"]["node"].as_str().unwrap().to_owned())
        .collect();
    let mut sorted = activated.clone();
    sorted.sort();
    assert_eq!(
        sorted, nodes,
        "each node records its own switch: {activated:?}"
    );
    db.assert_verifies();
}

/// The signer certificate (PEM) of a CAdES seal, verified by `openssl cms -verify`
/// against the dev root over `data`.
fn seal_signer(dir: &Path, name: &str, p7s: &[u8], data: &Path) -> String {
    let p7s_path = dir.join(format!("{name}.p7s"));
    let signer = dir.join(format!("{name}.signer.pem"));
    std::fs::write(&p7s_path, p7s).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["cms", "-verify", "-binary", "-inform", "DER", "-in"])
        .arg(&p7s_path)
        .arg("-content")
        .arg(data)
        .arg("-CAfile")
        .arg(dir.join("data/dev-pki/root.pem"))
        .args(["-out", "/dev/null", "-signer"])
        .arg(&signer)
        .output()
        .unwrap();
    assert!(out.status.success(), "{name}: {}", text(&out));
    std::fs::read_to_string(signer).unwrap()
}

#[test]
fn a_seal_credential_rolls_over_and_keeps_its_name() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    dev_init(&dir);
    certify_next_key(&dir);
    let new_seal = cert(&dir, &format!("{NEW_SEAL}.pem"));
    let old_seal = cert(&dir, &format!("{OLD_SEAL}.pem"));
    let db = TestDb::sqlite();
    let config = dir.join("seal-rollover.toml");
    // The issuance system's client, configured for the credential it has always used
    // (and an operator's admin scope, to read the keys' phases).
    let (key, client) = new_api_key(&[
        "--name",
        "registry",
        "--scope",
        "seal",
        "--scope",
        "admin",
        "--credential",
        OLD_SEAL,
    ]);
    dev_config_with(&dir, &config, |t| {
        t.insert(
            "clients".into(),
            toml::Value::Array(vec![toml::Value::Table(client)]),
        );
    });
    let base = std::fs::read_to_string(&config).unwrap();
    let server = start_dev_server(&dir, &db, Some(&config));
    let doc = tmp.path().join("doc.txt");
    std::fs::write(&doc, b"certificate of residence").unwrap();
    let body = std::fs::read(&doc).unwrap();
    let query = format!("credential={OLD_SEAL}");
    let sealed = |name: &str| {
        let (status, _, p7s) = crate::common::seal::seal(server.addr, &query, Some(&key), &body);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&p7s));
        seal_signer(tmp.path(), name, &p7s, &doc)
    };
    assert_eq!(sealed("before"), old_seal.to_pem());

    // The successor, with its own metadata; not a credential before its time.
    let at = seconds_from_now(8);
    let entry = format!(
        "\n[[keys]]\nlabel = \"{NEW_SEAL}\"\nusage = \"seal\"\nalgorithm = \"ecdsa-sha256\"\n\
         chain = \"dev-pki/{NEW_SEAL}-chain.pem\"\nsucceeds = \"{OLD_SEAL}\"\nactivate_at = \"{}\"\n\
         [keys.seal]\ndescription = \"the 2027 seal\"\n",
        rfc3339(at)
    );
    std::fs::write(&config, format!("{base}{entry}")).unwrap();
    let (code, out) = reload(&dir);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("key \"{NEW_SEAL}\" added")), "{out}");
    let phases = |server: &Server| -> Vec<(String, String)> {
        admin_keys(server, &key)["keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["label"] == OLD_SEAL || k["label"] == NEW_SEAL)
            .map(|k| {
                (
                    k["label"].as_str().unwrap().to_owned(),
                    k["phase"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let pending = [
        (OLD_SEAL.to_owned(), "active".to_owned()),
        (NEW_SEAL.to_owned(), "pending".to_owned()),
    ];
    assert_eq!(phases(&server), pending);
    assert_eq!(sealed("pending"), old_seal.to_pem());
    let (status, body_ready) = server.get("/readyz");
    assert_eq!(status, 200, "{body_ready}");

    past_the_switch(at);
    // The name the client has always used is served by the new key.
    assert_eq!(sealed("after"), new_seal.to_pem());
    let switched = [
        (OLD_SEAL.to_owned(), "retired".to_owned()),
        (NEW_SEAL.to_owned(), "active".to_owned()),
    ];
    assert_eq!(phases(&server), switched);
    let (status, body_ready) = server.get("/readyz");
    assert_eq!(status, 200, "{body_ready}");
    let (status, out) = server.stop();
    assert!(status.success(), "{out}");
    let activated: Vec<(String, Value)> = audit_events(&db)
        .into_iter()
        .filter(|(t, _)| t == "key-activated" || t == "key-retired")
        .collect();
    assert_eq!(activated.len(), 2, "{activated:?}");
    assert_eq!(activated[0].1["key"], NEW_SEAL);
    assert_eq!(activated[0].1["credentials"], OLD_SEAL);
    assert_eq!(activated[1].1["key"], OLD_SEAL);
    db.assert_verifies();

    // A restart after the switch: the old name is the new key's from the start.
    let server = start_dev_server(&dir, &db, Some(&config));
    let (status, _, p7s) = crate::common::seal::seal(server.addr, &query, Some(&key), &body);
    assert_eq!(status, 200);
    assert_eq!(
        seal_signer(tmp.path(), "restart", &p7s, &doc),
        new_seal.to_pem()
    );
    let (status, out) = server.stop();
    assert!(status.success(), "{out}");
}
