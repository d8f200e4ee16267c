//! HSM faults seen through the whole server: the real `hanko serve` binary with
//! `hsm.module` = the fault-injecting pkcs11-mock (pkcs11-mock/README.md) in front of
//! SoftHSM, under a small concurrent load (8 threads), in five scenarios:
//!
//! 1. `C_Sign` always fails with CKR_DEVICE_ERROR: every reply is HTTP 200, rejection,
//!    failInfo systemFailure (bit 25); no token leaves and none is logged; /readyz is 503
//!    (the signing pool's breaker: requests in a row failed, though the token is present)
//!    and 200 again once a token is granted after the fault is cleared.
//! 2. The token is unplugged: systemFailure and /readyz 503; plugged back in, tokens and
//!    /readyz 200 return within 5 s without a restart.
//! 3. Every third `C_Sign` returns a corrupted signature: every granted token verifies
//!    with `openssl ts -verify`, every granted token is in the log byte for byte, and no
//!    serial repeats.
//! 4. `C_Sign` hangs: every request is answered within the deadline with systemFailure
//!    (the pool abandons the stuck workers), /readyz keeps answering at once, and says
//!    503 after a few timed-out requests (the pool's breaker; the token itself is still
//!    present, so nothing else would), so a load balancer stops sending traffic; released,
//!    tokens return within 5 s and /readyz is 200 again within 5 s, without a restart.
//! 5. `C_Sign` is slow (300 ms per call, two calls per signature): every request is
//!    granted within the deadline, every token verifies, no serial repeats.
//!
//! At the end, the log holds exactly the granted tokens: nothing for a request that got
//! systemFailure. No request may wait longer than `hsm.call_timeout_ms` (2 s here) plus a
//! 2 s margin. `hsm.workers` is 8, one per client thread, so that in scenario 5 no
//! request waits in the queue for others' slow signatures past its deadline (with 2
//! workers, 8 clients and 600 ms per signature, the fourth in line would).
//!
//! The server is `hanko serve --dev` over a dev data directory whose `hanko.toml` names
//! the mock as `hsm.module`: dev mode opens the token through the configured module (and
//! says so in its "loading signing keys" line), and issues on this machine's
//! unsynchronised kernel clock with a warning, so no fake clock source is needed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use hanko_pki::HashAlgorithm;
use rasn_cms::tsp::PkiStatus;

use crate::common::http::post;
use crate::common::mock::{config_through_mock, injected, mock_env, mock_so, set_control};
use crate::common::tsp::{
    assert_log_holds_exactly, openssl_ts_verify, request_der, serial_hex, status_of, token_of,
};
use crate::common::{Server, dev_init, hanko, load_turn, on_threads};

const SYSTEM_FAILURE: usize = 25;
const CALL_TIMEOUT_MS: u64 = 2000;
/// No request may take longer than the HSM call timeout plus this margin.
const MARGIN: Duration = Duration::from_secs(2);
const THREADS: usize = 8;

/// One request/reply of a load.
struct Reply {
    req: Vec<u8>,
    resp: Vec<u8>,
    took: Duration,
}

/// `THREADS` threads x `per_thread` POST /tsa, starting together; asserts HTTP 200 and the time bound.
fn load(addr: SocketAddr, tag: &str, per_thread: usize) -> Vec<Reply> {
    let limit = Duration::from_millis(CALL_TIMEOUT_MS) + MARGIN;
    on_threads(THREADS, per_thread, |t, i| {
        let req = request_der(
            HashAlgorithm::Sha256,
            format!("{tag} {t} {i}").as_bytes(),
            Some((t * 10_000 + i) as u64 + 1),
            true,
            None,
        );
        let t0 = Instant::now();
        let (status, headers, resp) = post(addr, "/tsa", "application/timestamp-query", &req);
        let took = t0.elapsed();
        assert_eq!(status, 200, "{tag}: {headers}");
        assert!(took <= limit, "{tag}: a request took {took:?}");
        Reply { req, resp, took }
    })
}

fn stamp_one(addr: SocketAddr, tag: &str) -> Vec<u8> {
    let req = request_der(HashAlgorithm::Sha256, tag.as_bytes(), None, false, None);
    let (status, _, resp) = post(addr, "/tsa", "application/timestamp-query", &req);
    assert_eq!(status, 200);
    resp
}

/// Granted tokens: serial hex -> token DER; asserts no serial repeats.
type Granted = HashMap<String, Vec<u8>>;

fn grant(granted: &mut Granted, resp: &[u8]) -> String {
    let (token, tst) = token_of(resp);
    let serial = serial_hex(&tst.serial_number);
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

/// `openssl ts -verify` of `r` against its request and the dev root (files `name.ts[qr]`).
fn verify_with_openssl(work: &Path, name: &str, r: &Reply, root: &Path) {
    openssl_ts_verify(work, name, &r.req, &r.resp, root, None);
}

fn assert_all_system_failure(replies: &[Reply], what: &str) {
    for r in replies {
        let (status, bits) = status_of(&r.resp);
        assert_eq!(status, PkiStatus::Rejection, "{what}");
        assert_eq!(bits, vec![SYSTEM_FAILURE], "{what}");
    }
}

/// A /readyz body that says the key is not ready because its signatures failed in a row
/// (the pool's breaker), not because the token is gone.
fn assert_breaker_open(body: &str) {
    assert!(body.contains("signer is not ready"), "{body}");
    assert!(body.contains("signatures in a row failed"), "{body}");
    assert!(!body.contains("is not reachable"), "{body}");
}

#[test]
fn hsm_faults_through_the_server() {
    let _turn = load_turn();
    let t_start = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    dev_init(&dir);

    // The dev config, through the mock, with a short call timeout and a worker per
    // client thread.
    let so = mock_so();
    config_through_mock(
        &dir,
        &[
            ("call_timeout_ms = ", CALL_TIMEOUT_MS.to_string()),
            ("workers = ", THREADS.to_string()),
        ],
    );

    let control = tmp.path().join("faults");
    std::fs::write(&control, "").unwrap();
    let mut cmd = hanko();
    mock_env(&mut cmd, &control);
    let server = Server::start(cmd, &["--dev", "--data-dir", dir.to_str().unwrap()]);
    let addr = server.addr;
    server.wait_readyz(200, Duration::from_secs(15));
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
    // Every request failed twice (attempt and retry): the key is not usable, so not ready,
    // although the token is there.
    let (_, body) = server.wait_readyz(503, Duration::from_secs(2));
    assert_breaker_open(&body);
    set_control(&control, "");
    let clear = Instant::now();
    let took = resumes_within(addr, &mut granted, Duration::from_secs(5));
    // The first token closed the breaker.
    server.wait_readyz(200, Duration::from_secs(5).saturating_sub(clear.elapsed()));
    eprintln!(
        "device error: {} refused, /readyz 503 during it; tokens again after {took:?}, \
         readyz 200 after {:?}",
        replies.len(),
        clear.elapsed()
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
    server.wait_readyz(503, Duration::from_secs(5));
    set_control(&control, "");
    let replug = Instant::now();
    resumes_within(addr, &mut granted, Duration::from_secs(5));
    server.wait_readyz(200, Duration::from_secs(5).saturating_sub(replug.elapsed()));
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
        verify_with_openssl(&work, &format!("corrupt-{i}"), r, &root);
    }
    assert!(
        ok > replies.len() / 2,
        "corrupt: only {ok} of {} granted",
        replies.len()
    );
    eprintln!("corrupt: {ok} of {} granted, all verify", replies.len());

    // 4. C_Sign hangs (until the line is removed; max_ms only guards against a test that
    // dies before removing it): every request gets systemFailure within the deadline.
    set_control(&control, "hang fn=C_Sign max_ms=60000\n");
    let replies = load(addr, "hang", 2);
    assert_all_system_failure(&replies, "C_Sign hangs");
    assert!(injected(&control, "hang") > 0, "the mock hung nothing");
    // Readiness never waits on a signature: it answers at once, whatever the signing
    // workers are stuck in.
    let t0 = Instant::now();
    let (status, _) = server.get("/readyz");
    let readyz_took = t0.elapsed();
    assert!(
        readyz_took < Duration::from_secs(1),
        "/readyz took {readyz_took:?} during the hang"
    );
    // And it says 503: the token is still present and logged in, but every request timed
    // out, so the pool's breaker reports the key not ready (for max(2 x call timeout,
    // 5 s) after the last failure, which was just now).
    let (readyz_503_after, body) = server.wait_readyz(503, Duration::from_secs(2));
    assert_breaker_open(&body);
    set_control(&control, "");
    let release = Instant::now();
    resumes_within(addr, &mut granted, Duration::from_secs(5));
    server.wait_readyz(
        200,
        Duration::from_secs(5).saturating_sub(release.elapsed()),
    );
    eprintln!(
        "hang: {} systemFailure (slowest {:?}), /readyz {status} in {readyz_took:?} during it \
         (503 after {readyz_503_after:?}); tokens and readyz 200 after {:?}",
        replies.len(),
        replies.iter().map(|r| r.took).max().unwrap(),
        release.elapsed()
    );

    // 5. Slow token: 300 ms per C_Sign call. Every request is granted in time.
    set_control(&control, "delay fn=C_Sign ms=300\n");
    let replies = load(addr, "latency", 3);
    set_control(&control, "");
    assert!(
        injected(&control, "delay") >= 2 * replies.len() as u64,
        "the mock did not slow every signature"
    );
    for (i, r) in replies.iter().enumerate() {
        let (status, bits) = status_of(&r.resp);
        assert_eq!(status, PkiStatus::Granted, "latency: failInfo {bits:?}");
        // Two delayed C_Sign calls per signature: the delay was really in the path.
        assert!(r.took >= Duration::from_millis(600), "{:?}", r.took);
        grant(&mut granted, &r.resp);
        verify_with_openssl(&work, &format!("latency-{i}"), r, &root);
    }
    eprintln!(
        "latency: {} granted, slowest {:?}",
        replies.len(),
        replies.iter().map(|r| r.took).max().unwrap()
    );

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
    assert_log_holds_exactly(&dir, &granted);
    eprintln!("whole test: {:?}", t_start.elapsed());
}
