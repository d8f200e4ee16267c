//! HSM faults seen through the whole server: the real `hanko serve` binary with
//! `hsm.module` = the fault-injecting pkcs11-mock (pkcs11-mock/README.md) in front of
//! SoftHSM, under a small concurrent load (8 threads), in three scenarios:
//!
//! 1. `C_Sign` always fails with CKR_DEVICE_ERROR: every reply is HTTP 200, rejection,
//!    failInfo systemFailure (bit 25); no token leaves and none is logged.
//! 2. The token is unplugged: systemFailure and /readyz 503; plugged back in, tokens and
//!    /readyz 200 return within 5 s without a restart.
//! 3. Every third `C_Sign` returns a corrupted signature: every granted token verifies
//!    with `openssl ts -verify`, every granted token is in the log byte for byte, and no
//!    serial repeats.
//!
//! At the end, the log holds exactly the granted tokens. No request may wait longer
//! than `hsm.call_timeout_ms` (2 s here) plus a 2 s margin.
//!
//! The server is `hanko serve --dev` over a dev data directory whose `hanko.toml` names
//! the mock as `hsm.module`: dev mode opens the token through the configured module (and
//! says so in its "loading signing keys" line), and issues on this machine's
//! unsynchronised kernel clock with a warning, so no fake clock source is needed.
#![allow(clippy::unwrap_used, reason = "tests: a panic is a failed assertion")]

#[allow(dead_code, reason = "shared with the other test binaries")]
#[path = "integration/common.rs"]
mod common;
mod tsa_support;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hanko_pki::HashAlgorithm;
use rasn_cms::tsp::PkiStatus;

use crate::common::{Server, hanko, run, text};
use crate::tsa_support::{int_hex, log_records, openssl, post, request_der, status_of, token_of};

const SYSTEM_FAILURE: usize = 25;
const CALL_TIMEOUT_MS: u64 = 2000;
/// No request may take longer than the HSM call timeout plus this margin.
const MARGIN: Duration = Duration::from_secs(2);
const THREADS: usize = 8;

/// The mock's `.so`, built next to this test binary (or `HANKO_MOCK_SO`).
fn mock_so() -> PathBuf {
    if let Some(p) = std::env::var_os("HANKO_MOCK_SO") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let candidates = [
        deps.parent().unwrap().join("libhanko_pkcs11_mock.so"),
        deps.join("libhanko_pkcs11_mock.so"),
    ];
    if let Some(p) = candidates.iter().find(|p| p.exists()) {
        return p.clone();
    }
    let mut args = vec!["build", "-p", "hanko-pkcs11-mock"];
    if !cfg!(debug_assertions) {
        args.push("--release");
    }
    let status = std::process::Command::new(env!("CARGO"))
        .args(&args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(status.success(), "cargo build -p hanko-pkcs11-mock failed");
    candidates.into_iter().find(|p| p.exists()).unwrap()
}

/// Replaces the control file atomically (the mock may read it at any call).
fn set_control(control: &Path, text: &str) {
    let tmp = control.with_extension("new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, control).unwrap();
}

/// Injections of `kind` counted so far in the mock's stats file (all functions).
fn injected(control: &Path, kind: &str) -> u64 {
    let mut stats = control.as_os_str().to_owned();
    stats.push(".stats");
    let Ok(text) = std::fs::read_to_string(PathBuf::from(stats)) else {
        return 0;
    };
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4 && f[1] == kind).then(|| f[f.len() - 1].parse::<u64>().unwrap_or(0))
        })
        .sum()
}

/// One request/reply of a load.
struct Reply {
    req: Vec<u8>,
    resp: Vec<u8>,
}

/// `THREADS` threads x `per_thread` POST /tsa; asserts HTTP 200 and the time bound.
fn load(addr: SocketAddr, tag: &str, per_thread: usize) -> Vec<Reply> {
    let limit = Duration::from_millis(CALL_TIMEOUT_MS) + MARGIN;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                s.spawn(move || {
                    (0..per_thread)
                        .map(|i| {
                            let req = request_der(
                                HashAlgorithm::Sha256,
                                format!("{tag} {t} {i}").as_bytes(),
                                Some((t * 10_000 + i) as u64 + 1),
                                true,
                                None,
                            );
                            let t0 = Instant::now();
                            let (status, headers, resp) =
                                post(addr, "/tsa", "application/timestamp-query", &req);
                            let took = t0.elapsed();
                            assert_eq!(status, 200, "{tag}: {headers}");
                            assert!(took <= limit, "{tag}: a request took {took:?}");
                            Reply { req, resp }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

fn stamp_one(addr: SocketAddr, tag: &str) -> Vec<u8> {
    let req = request_der(HashAlgorithm::Sha256, tag.as_bytes(), None, false, None);
    let (status, _, resp) = post(addr, "/tsa", "application/timestamp-query", &req);
    assert_eq!(status, 200);
    resp
}

/// Waits until /readyz answers `want`; returns how long it took.
fn wait_readyz(server: &Server, want: u16, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let (status, body) = server.get("/readyz");
        if status == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "readyz stayed {status} (want {want}): {body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Granted tokens: serial hex -> token DER; asserts no serial repeats.
type Granted = HashMap<String, Vec<u8>>;

fn grant(granted: &mut Granted, resp: &[u8]) -> String {
    let (token, tst) = token_of(resp);
    let serial = int_hex(&tst.serial_number);
    let der = rasn::der::encode(&token).unwrap();
    assert!(
        granted.insert(serial.clone(), der).is_none(),
        "serial {serial} repeated"
    );
    serial
}

/// Stamps until a token is granted; fails after `within`.
fn resumes_within(addr: SocketAddr, granted: &mut Granted, within: Duration) -> Duration {
    let start = Instant::now();
    let mut i = 0;
    loop {
        i += 1;
        let resp = stamp_one(addr, &format!("resume {i} {:?}", start.elapsed()));
        if status_of(&resp).0 == PkiStatus::Granted {
            grant(granted, &resp);
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "no token within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn assert_all_system_failure(replies: &[Reply], what: &str) {
    for r in replies {
        let (status, bits) = status_of(&r.resp);
        assert_eq!(status, PkiStatus::Rejection, "{what}");
        assert_eq!(bits, vec![SYSTEM_FAILURE], "{what}");
    }
}

#[test]
fn hsm_faults_through_the_server() {
    let t_start = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let out = run(&["dev-init", "--data-dir", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));

    // The dev config, through the mock, with a short call timeout.
    let so = mock_so();
    let cfg: String = std::fs::read_to_string(dir.join("hanko.toml"))
        .unwrap()
        .lines()
        .map(|l| {
            if l.starts_with("module = ") {
                format!("module = {:?}", so.to_str().unwrap())
            } else if l.starts_with("call_timeout_ms = ") {
                format!("call_timeout_ms = {CALL_TIMEOUT_MS}")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(cfg.contains("libhanko_pkcs11_mock.so"), "{cfg}");
    std::fs::write(dir.join("hanko.toml"), cfg).unwrap();

    let control = tmp.path().join("faults");
    std::fs::write(&control, "").unwrap();
    let mut cmd = hanko();
    cmd.env("HANKO_MOCK_REAL_MODULE", "/usr/lib/softhsm/libsofthsm2.so")
        .env("HANKO_MOCK_CONTROL", &control)
        .env_remove("HANKO_MOCK_STATS");
    let server = Server::start(cmd, &["--dev", "--data-dir", dir.to_str().unwrap()]);
    let addr = server.addr;
    wait_readyz(&server, 200, Duration::from_secs(15));
    let mut granted = Granted::new();
    for r in load(addr, "warm-up", 2) {
        grant(&mut granted, &r.resp);
    }

    // 1. C_Sign always fails: systemFailure, nothing granted, nothing logged.
    set_control(
        &control,
        "fault fn=C_Sign rv=CKR_DEVICE_ERROR mode=always phase=data\n",
    );
    let replies = load(addr, "device-error", 6);
    assert_all_system_failure(&replies, "C_Sign CKR_DEVICE_ERROR");
    assert!(injected(&control, "fault") >= replies.len() as u64);
    set_control(&control, "");
    let took = resumes_within(addr, &mut granted, Duration::from_secs(5));
    eprintln!(
        "device error: {} refused, tokens again after {took:?}",
        replies.len()
    );

    // 2. Unplugged: systemFailure and /readyz 503; plugged back in: tokens and 200.
    set_control(&control, "unplug\n");
    let start = Instant::now();
    while injected(&control, "unplug") == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the unplug never took effect"
        );
        // Sent before the unplug took effect, a reply may still be a token: keep it
        // for the final log comparison.
        let resp = stamp_one(addr, "unplugging");
        if status_of(&resp).0 == PkiStatus::Granted {
            grant(&mut granted, &resp);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let replies = load(addr, "unplugged", 4);
    assert_all_system_failure(&replies, "unplugged");
    wait_readyz(&server, 503, Duration::from_secs(5));
    set_control(&control, "");
    let replug = Instant::now();
    resumes_within(addr, &mut granted, Duration::from_secs(5));
    wait_readyz(
        &server,
        200,
        Duration::from_secs(5).saturating_sub(replug.elapsed()),
    );
    eprintln!("unplug: tokens and readyz 200 after {:?}", replug.elapsed());

    // 3. Every third signature corrupted: no bad signature leaves the server.
    set_control(&control, "corrupt fn=C_Sign mode=every n=3\n");
    let replies = load(addr, "corrupt", 8);
    set_control(&control, "");
    assert!(
        injected(&control, "corrupt") > 0,
        "the mock corrupted nothing"
    );
    let root = dir.join("dev-pki/root.pem");
    let work = tmp.path().join("verify");
    std::fs::create_dir_all(&work).unwrap();
    let mut ok = 0;
    for (i, r) in replies.iter().enumerate() {
        let (status, bits) = status_of(&r.resp);
        if status != PkiStatus::Granted {
            assert_eq!(status, PkiStatus::Rejection);
            assert_eq!(bits, vec![SYSTEM_FAILURE]);
            continue;
        }
        grant(&mut granted, &r.resp);
        ok += 1;
        let (tsq, tsr) = (work.join(format!("{i}.tsq")), work.join(format!("{i}.tsr")));
        std::fs::write(&tsq, &r.req).unwrap();
        std::fs::write(&tsr, &r.resp).unwrap();
        let out = openssl(
            &work,
            &[
                "ts",
                "-verify",
                "-in",
                tsr.to_str().unwrap(),
                "-queryfile",
                tsq.to_str().unwrap(),
                "-CAfile",
                root.to_str().unwrap(),
            ],
        );
        assert!(out.contains("Verification: OK"), "{out}");
    }
    assert!(
        ok > replies.len() / 2,
        "corrupt: only {ok} of {} granted",
        replies.len()
    );
    eprintln!("corrupt: {ok} of {} granted, all verify", replies.len());

    let (exit, out) = server.stop();
    assert!(exit.success(), "{out}");
    // Dev mode went through the configured module, and its log line says so.
    let loading = out
        .lines()
        .find(|l| l.contains("loading signing keys"))
        .unwrap_or_else(|| panic!("no \"loading signing keys\" line:\n{out}"));
    assert!(loading.contains(so.to_str().unwrap()), "{loading}");
    assert!(
        out.contains(&format!(
            "reusing token \"hanko-dev\" (through {})",
            so.display()
        )),
        "{out}"
    );

    // The log holds exactly the granted tokens, byte for byte, each serial once.
    let logged = log_records(&dir);
    let serials: HashSet<&String> = logged.iter().map(|(s, _)| s).collect();
    assert_eq!(serials.len(), logged.len(), "a serial is logged twice");
    assert_eq!(logged.len(), granted.len(), "one record per granted token");
    for (serial, token) in &logged {
        let sent = granted
            .get(serial)
            .unwrap_or_else(|| panic!("logged serial {serial} was never granted"));
        assert_eq!(sent, token, "serial {serial}: log and reply differ");
    }
    eprintln!("whole test: {:?}", t_start.elapsed());
}
