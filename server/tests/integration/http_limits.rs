//! Admission control of the signing routes through the real binary (`http/limits.rs`):
//! `hanko serve --dev` on a fresh data directory whose token is made and used through
//! pkcs11-mock (`hsm.module` = the mock, so `C_Sign` can be slowed down and requests
//! really overlap), with `http.max_in_flight = 4`.
//!
//! 1. Overload: 12 threads send at once against signatures slowed to >= 200 ms. Some
//!    requests are refused with 503, `Retry-After: 1` and a text body, each counted in
//!    `hanko_http_refused_total{reason="overload"}`; every 200 is a granted token that
//!    `openssl ts -verify` accepts. A refused request's connection stays usable (its
//!    small body is read and dropped, even one that comes late), or the 503 says
//!    `Connection: close` (a body too large to read for a refusal). Then, at exactly `max_in_flight` concurrent clients,
//!    nothing is refused.
//! 2. Per-client rate (restart with `http.rate_limit_per_sec = 1`, burst 3): a quick run
//!    of requests gets its burst, then 429 with `Retry-After`; after waiting that long the
//!    client is served again.
//! 3. The other side of the split (`http/mod.rs`, "Refused, or failed"): with
//!    `max_in_flight` above what the signing pool holds, the pool's own `Busy` comes after
//!    admission and is answered HTTP 200 with a systemFailure TimeStampResp.
//!
//! At the end the issuance log holds exactly the granted tokens, byte for byte: a refused
//! request leaves nothing behind.

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use hanko_pki::HashAlgorithm;
use rasn_cms::tsp::PkiStatus;

use crate::common::http::post;
use crate::common::mock::{injected, mock_env, mock_so, set_control};
use crate::common::tsp::{
    assert_log_holds_exactly, openssl_ts_verify, request_der, serial_hex, status_of, token_of,
};
use crate::common::{Server, hanko, load_turn, metric, on_threads};

const QUERY: &str = "application/timestamp-query";
const SYSTEM_FAILURE: usize = 25;
const MAX_IN_FLIGHT: usize = 4;
const THREADS: usize = 12;
const PER_THREAD: usize = 4;

/// One request and what came back.
struct Exchange {
    req: Vec<u8>,
    status: u16,
    headers: String,
    body: Vec<u8>,
    took: Duration,
}

fn exchange(addr: SocketAddr, data: &str) -> Exchange {
    let req = request_der(HashAlgorithm::Sha256, data.as_bytes(), Some(7), true, None);
    let t0 = Instant::now();
    let (status, headers, body) = post(addr, "/tsa", QUERY, &req);
    Exchange {
        req,
        status,
        headers: headers.to_ascii_lowercase(),
        body,
        took: t0.elapsed(),
    }
}

/// `threads` x `per_thread` requests, all threads starting together.
fn burst(addr: SocketAddr, tag: &str, threads: usize, per_thread: usize) -> Vec<Exchange> {
    on_threads(threads, per_thread, |t, i| {
        exchange(addr, &format!("{tag} {t} {i}"))
    })
}

/// Signing requests in flight now (`hanko_http_in_flight`).
fn in_flight(server: &Server) -> u64 {
    let (status, text) = server.get("/metrics");
    assert_eq!(status, 200);
    metric(&text, "hanko_http_in_flight").map_or(0, |v| v as u64)
}

/// One response from a kept-alive connection: (status, head in lower case); its body
/// (by `Content-Length`) is read and dropped.
fn read_response(c: &mut TcpStream) -> (u16, String) {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        let n = c.read(&mut byte).unwrap();
        assert_eq!(
            n, 1,
            "the connection closed before a response head: {raw:?}"
        );
        raw.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&raw).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut body = vec![0u8; len];
    c.read_exact(&mut body).unwrap();
    (status, head)
}

/// The value of `hanko_http_refused_total{reason="..."}` in /metrics (0 when absent).
fn refused_metric(server: &Server, reason: &str) -> u64 {
    let (status, text) = server.get("/metrics");
    assert_eq!(status, 200);
    let name = format!("hanko_http_refused_total{{reason=\"{reason}\"}}");
    metric(&text, &name).map_or(0, |v| v as u64)
}

/// Serial hex -> token DER of every granted token; asserts no serial repeats.
type Granted = HashMap<String, Vec<u8>>;

/// Records a granted reply and checks it with `openssl ts -verify`.
fn grant_verified(granted: &mut Granted, x: &Exchange, work: &Path, root: &Path) {
    assert_eq!(x.status, 200, "{}", x.headers);
    let (status, bits) = status_of(&x.body);
    assert_eq!(status, PkiStatus::Granted, "failInfo {bits:?}");
    let (token, tst) = token_of(&x.body);
    let serial = serial_hex(&tst.serial_number);
    let der = rasn::der::encode(&token).unwrap();
    assert!(
        granted.insert(serial.clone(), der).is_none(),
        "serial {serial} repeated"
    );
    openssl_ts_verify(work, &serial, &x.req, &x.body, root, None);
}

fn retry_after(headers: &str) -> u64 {
    headers
        .lines()
        .find_map(|l| l.strip_prefix("retry-after:"))
        .unwrap_or_else(|| panic!("no Retry-After: {headers}"))
        .trim()
        .parse()
        .unwrap()
}

/// A dev config with one TSA key (P-256: cheap to sign, so the mock's delay dominates),
/// through the mock.
fn config(so: &Path, http: &str) -> String {
    config_with_pool(so, 2, 16, http)
}

fn config_with_pool(so: &Path, workers: usize, queue_depth: usize, http: &str) -> String {
    format!(
        "dev = true\n\n[hsm]\nmodule = {so:?}\nworkers = {workers}\nqueue_depth = {queue_depth}\n\n\
         [[keys]]\nlabel = \"tsa-p256\"\nusage = \"tsa\"\nalgorithm = \"ecdsa-sha256\"\n\
         chain = \"dev-pki/tsa-p256-chain.pem\"\n\n[http]\n{http}"
    )
}

fn serve(dir: &Path, cfg: &Path, control: &Path) -> Server {
    let mut cmd = hanko();
    mock_env(&mut cmd, control);
    let server = Server::start(
        cmd,
        &[
            "--dev",
            "--data-dir",
            dir.to_str().unwrap(),
            "--config",
            cfg.to_str().unwrap(),
        ],
    );
    server.wait_readyz(200, Duration::from_secs(15));
    server
}

#[test]
fn overload_gets_503_with_retry_after_and_clients_over_their_rate_429() {
    let _turn = load_turn();
    let t_start = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let work = tmp.path().join("verify");
    std::fs::create_dir_all(&work).unwrap();
    let root = dir.join("dev-pki/root.pem");
    let so = mock_so();
    let control = tmp.path().join("faults");
    std::fs::write(&control, "").unwrap();
    let cfg = tmp.path().join("limits.toml");
    std::fs::write(
        &cfg,
        config(&so, &format!("max_in_flight = {MAX_IN_FLIGHT}\n")),
    )
    .unwrap();
    let mut granted = Granted::new();

    // A fresh data directory: dev-init makes the token through the mock.
    let server = serve(&dir, &cfg, &control);
    let addr = server.addr;
    grant_verified(&mut granted, &exchange(addr, "warm-up"), &work, &root);

    // 1. Overload: each signature takes >= 200 ms (two C_Sign calls of 100 ms each).
    set_control(&control, "delay fn=C_Sign ms=100\n");
    let replies = burst(addr, "overload", THREADS, PER_THREAD);
    assert!(injected(&control, "delay") > 0, "the mock delayed nothing");
    set_control(&control, "");
    let (mut ok, mut refused) = (0, 0);
    for x in &replies {
        match x.status {
            200 => {
                grant_verified(&mut granted, x, &work, &root);
                ok += 1;
            }
            503 => {
                refused += 1;
                assert_eq!(retry_after(&x.headers), 1, "{}", x.headers);
                assert!(
                    x.headers.contains("content-type: text/plain"),
                    "{}",
                    x.headers
                );
                let body = String::from_utf8_lossy(&x.body);
                assert!(body.contains("retry in 1 s"), "{body}");
                // Refused before any work: not after a signature's worth of waiting.
                assert!(x.took < Duration::from_secs(2), "a 503 took {:?}", x.took);
            }
            other => panic!("unexpected HTTP {other}: {}", x.headers),
        }
    }
    eprintln!(
        "overload: {ok} granted, {refused} refused with 503 of {}",
        replies.len()
    );
    assert!(refused > 0, "nothing refused: the requests did not overlap");
    assert!(ok >= MAX_IN_FLIGHT, "only {ok} granted");
    assert_eq!(refused_metric(&server, "overload"), refused as u64);

    // A refusal leaves its connection usable, or says it does not: with every permit
    // held by slow signatures, a request whose body comes 100 ms after its head is
    // refused, its body read and dropped, and the next request on the same connection
    // answered; a body too large to read for a refusal gets `Connection: close`.
    set_control(&control, "delay fn=C_Sign ms=400\n");
    std::thread::scope(|s| {
        let holders: Vec<_> = (0..MAX_IN_FLIGHT)
            .map(|i| s.spawn(move || exchange(addr, &format!("holder {i}"))))
            .collect();
        let deadline = Instant::now() + Duration::from_secs(5);
        while in_flight(&server) < MAX_IN_FLIGHT as u64 {
            assert!(
                Instant::now() < deadline,
                "the holders were never all admitted"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let req = request_der(HashAlgorithm::Sha256, b"late body", None, true, None);
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let head = format!(
            "POST /tsa HTTP/1.1\r\nHost: x\r\nContent-Type: {QUERY}\r\nContent-Length: {}\r\n\r\n",
            req.len()
        );
        c.write_all(head.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        c.write_all(&req).unwrap();
        let (status, headers) = read_response(&mut c);
        assert_eq!(status, 503, "{headers}");
        assert!(!headers.contains("connection: close"), "{headers}");
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let (status, headers) = read_response(&mut c);
        assert_eq!(
            status, 200,
            "the kept-alive connection after a 503: {headers}"
        );
        refused += 1;

        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let head = format!(
            "POST /tsa HTTP/1.1\r\nHost: x\r\nContent-Type: {QUERY}\r\nContent-Length: 100000\r\n\r\n"
        );
        c.write_all(head.as_bytes()).unwrap();
        let (status, headers) = read_response(&mut c);
        assert_eq!(status, 503, "{headers}");
        assert!(headers.contains("connection: close"), "{headers}");
        refused += 1;
        for h in holders {
            grant_verified(&mut granted, &h.join().unwrap(), &work, &root);
        }
    });
    set_control(&control, "");
    assert_eq!(refused_metric(&server, "overload"), refused as u64);
    // Answered before the router (`http/shed.rs`) or by it, a refusal is counted as a
    // request of its route.
    let (_, text) = server.get("/metrics");
    let counted = metric(
        &text,
        r#"hanko_http_requests_total{route="/tsa",method="POST",status="503"}"#,
    );
    assert_eq!(counted, Some(refused as f64), "{text}");

    // At exactly max_in_flight concurrent clients nothing is refused (a permit is
    // returned before its response is sent), slow signatures or not.
    set_control(&control, "delay fn=C_Sign ms=50\n");
    let replies = burst(addr, "at the limit", MAX_IN_FLIGHT, 3);
    set_control(&control, "");
    for x in &replies {
        grant_verified(&mut granted, x, &work, &root);
    }
    assert_eq!(refused_metric(&server, "overload"), refused as u64);
    let (exit, out) = server.stop();
    assert!(exit.success(), "{out}");
    let made = format!("created token \"hanko-dev\" (through {})", so.display());
    assert!(
        out.contains(&made),
        "the token was not made through the configured module:\n{out}"
    );

    // 2. Per-client rate: 1/s, burst 3. Requests from one client in quick succession.
    std::fs::write(
        &cfg,
        config(
            &so,
            "max_in_flight = 64\nrate_limit_per_sec = 1\nrate_limit_burst = 3\n",
        ),
    )
    .unwrap();
    let server = serve(&dir, &cfg, &control);
    let addr = server.addr;
    let mut statuses = Vec::new();
    let mut limited = None;
    for i in 0..8 {
        let x = exchange(addr, &format!("rate {i}"));
        statuses.push(x.status);
        match x.status {
            200 => grant_verified(&mut granted, &x, &work, &root),
            429 => {
                let body = String::from_utf8_lossy(&x.body).into_owned();
                assert!(body.contains("too many requests"), "{body}");
                limited.get_or_insert(retry_after(&x.headers));
            }
            other => panic!("unexpected HTTP {other}: {}", x.headers),
        }
    }
    eprintln!("rate: {statuses:?}");
    assert_eq!(statuses[..3], [200, 200, 200], "the burst is served");
    let wait = limited.unwrap_or_else(|| panic!("never rate-limited: {statuses:?}"));
    assert!((1..=2).contains(&wait), "Retry-After: {wait}");
    let n429 = statuses.iter().filter(|s| **s == 429).count() as u64;
    assert_eq!(refused_metric(&server, "rate_limit"), n429);
    std::thread::sleep(Duration::from_secs(wait));
    grant_verified(&mut granted, &exchange(addr, "rate after"), &work, &root);
    let (exit, out) = server.stop();
    assert!(exit.success(), "{out}");

    // 3. After admission, a full signing queue is a protocol answer: with max_in_flight
    // above what the pool holds (1 worker, 1 queued), the pool's own Busy reaches the
    // client as HTTP 200 + systemFailure, not as an HTTP error.
    std::fs::write(&cfg, config_with_pool(&so, 1, 1, "max_in_flight = 64\n")).unwrap();
    let server = serve(&dir, &cfg, &control);
    set_control(&control, "delay fn=C_Sign ms=100\n");
    let replies = burst(server.addr, "busy pool", 8, 2);
    set_control(&control, "");
    let mut busy = 0;
    for x in &replies {
        assert_eq!(x.status, 200, "{}", x.headers);
        match status_of(&x.body) {
            (PkiStatus::Granted, _) => grant_verified(&mut granted, x, &work, &root),
            (PkiStatus::Rejection, bits) => {
                assert_eq!(bits, vec![SYSTEM_FAILURE]);
                busy += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    eprintln!("busy pool: {busy} systemFailure of {}", replies.len());
    assert!(busy > 0, "the pool was never full");
    assert_eq!(refused_metric(&server, "overload"), 0);
    let (exit, out) = server.stop();
    assert!(exit.success(), "{out}");

    // The log holds exactly the granted tokens.
    assert_log_holds_exactly(&dir, &granted);
    eprintln!("whole test: {:?}", t_start.elapsed());
}
