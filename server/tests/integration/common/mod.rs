//! What every module of the integration binary shares: running the `hanko` binary
//! (`hanko`, `run`, [`Server`]), its output and /metrics, and the turn taken by tests that
//! load the machine. Submodules hold the rest, one concern each.
//!
//! The tests of this one binary run in parallel threads, so nothing here touches
//! process-wide state: each test works in its own temporary directory, servers listen on
//! port 0, and settings reach the `hanko` child processes through `Command::env`, never
//! through this process's environment.

/// Bouncy Castle's org.bouncycastle.tsp over time-stamp responses (tests/java).
pub mod bc;
/// The CSC API's JSON calls and errors.
pub mod csc;
/// The dev CA's certificates and keys, for certificates issued by tests.
pub mod dev_pki;
/// The one HTTP/1.1 client.
pub mod http;
/// Issuance-log databases (SQLite, PostgreSQL), the shared dev data directory, load.
pub mod log;
/// The fault-injecting pkcs11-mock in front of SoftHSM.
pub mod mock;
/// Seal requests and their JSON errors; the issuance log read back; seals verified with
/// openssl.
pub mod seal;
/// The HTTPS listener's clients (rustls, openssl s_client, curl) and test PKIs made
/// with openssl.
pub mod tls;
/// RFC 3161 requests and responses, the SQLite log through sqlite3, openssl.
pub mod tsp;

use std::io::{BufRead as _, BufReader, Read as _};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A `chronyc -c tracking` line: synchronised; offset 10 us, root delay 2 ms, root
/// dispersion 1 ms (for fake chronyc scripts).
pub const CHRONYC_SYNCED: &str = "A29FC87B,162.159.200.123,3,1700000000.000000000,0.000010000,0.000002000,0.000010000,-5.000,0.001,0.020,0.002000000,0.001000000,64.0,Normal\n";

/// The `hanko` binary with a clean environment (no PIN, no SoftHSM config, plain logs).
pub fn hanko() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hanko"));
    c.env_remove("HANKO_PIN")
        .env_remove("HANKO_PIN_FILE")
        .env_remove("SOFTHSM2_CONF")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null());
    c
}

/// Runs `hanko args..` to completion.
pub fn run(args: &[&str]) -> Output {
    hanko().args(args).output().unwrap()
}

/// A sample's value in a /metrics text: the line starting with `name` (labels included,
/// e.g. `hanko_http_refused_total{reason="overload"}`) followed by a space.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// Runs `each(t, i)` for `i` in `0..per_thread` in a row on each of `threads` threads
/// (`t`), all threads starting together; every result, thread after thread.
pub fn on_threads<T: Send>(
    threads: usize,
    per_thread: usize,
    each: impl Fn(usize, usize) -> T + Sync,
) -> Vec<T> {
    let start = Barrier::new(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (start, each) = (&start, &each);
                s.spawn(move || {
                    start.wait();
                    (0..per_thread).map(|i| each(t, i)).collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

/// `hanko dev-init --data-dir dir`, asserting success (with its output when it fails).
pub fn dev_init(dir: &Path) {
    let out = run(&["dev-init", "--data-dir", dir.to_str().unwrap()]);
    // The status is printed whole (exit code or signal): twice in CI, dev-init printed its
    // "dev set-up ready" summary and still did not exit 0, not reproduced alone (12 runs).
    assert!(
        out.status.success(),
        "dev-init {} ended with {:?}: {}",
        dir.display(),
        out.status,
        text(&out)
    );
}

/// stdout + stderr as one string.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The dev PIN of a data directory.
pub fn dev_pin(data_dir: &Path) -> String {
    std::fs::read_to_string(data_dir.join("dev-pin"))
        .unwrap()
        .trim()
        .to_owned()
}

/// The dev client's API key of a data directory (`<data-dir>/dev-api-key`).
pub fn dev_api_key(data_dir: &Path) -> String {
    std::fs::read_to_string(data_dir.join("dev-api-key"))
        .unwrap()
        .trim()
        .to_owned()
}

/// Waits (at most 15 s) until `check` holds.
pub fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < Duration::from_secs(15), "never: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The dev token of an initialised data directory, opened with its dev PIN through the
/// module under test (`HANKO_TEST_PKCS11_MODULE`). SoftHSM finds the token through
/// `SOFTHSM2_CONF`: call it in a child process given that variable (see
/// `token_keys.rs`), never by changing this process's environment.
pub fn open_dev_token(data_dir: &Path) -> hanko_hsm::Hsm {
    hanko_hsm::Hsm::open(
        hanko_hsm::ModuleConfig {
            module_path: hanko_pkcs11_mock::module_under_test(),
            token_label: "hanko-dev".into(),
        },
        hanko_hsm::Pin::from_file(&data_dir.join("dev-pin")).unwrap(),
    )
    .unwrap()
}

/// Runs the ignored test `test` of this binary in a child process whose
/// `SOFTHSM2_CONF` finds the dev token of `data_dir` (named to it in the variable `var`),
/// so that this process's environment never changes; asserts that it passed.
pub fn run_in_child_with_dev_token(test: &str, var: &str, data_dir: &Path) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--ignored", "--nocapture"])
        .env("SOFTHSM2_CONF", data_dir.join("softhsm2.conf"))
        .env(var, data_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success() && text(&out).contains("1 passed"),
        "{}",
        text(&out)
    );
}

/// Starts `hanko serve --dev` on the initialised data directory `data_dir` with its
/// `hanko.toml` followed by `extra` (TOML), written to `<data-dir>/custom.toml`.
pub fn start_dev_with_extra(data_dir: &Path, extra: &str) -> Server {
    start_dev_with_extra_by(hanko(), data_dir, extra)
}

/// [`start_dev_with_extra`] with a prepared command (e.g. pointed at pkcs11-mock).
pub fn start_dev_with_extra_by(cmd: Command, data_dir: &Path, extra: &str) -> Server {
    let toml = std::fs::read_to_string(data_dir.join("hanko.toml")).unwrap();
    let custom = data_dir.join("custom.toml");
    std::fs::write(&custom, format!("{toml}\n{extra}")).unwrap();
    let d = data_dir.to_str().unwrap();
    Server::start(
        cmd,
        &[
            "--dev",
            "--data-dir",
            d,
            "--config",
            custom.to_str().unwrap(),
        ],
    )
}

/// A running `hanko serve`, its address and everything it printed.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    /// The HTTPS listener's address, once announced ("serving TLS on ADDR").
    tls_addr: Arc<Mutex<Option<SocketAddr>>>,
    output: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `hanko serve <args> --listen 127.0.0.1:0` (and, with `--dev`,
    /// `--tls-listen 127.0.0.1:0` unless `args` name one: never the fixed dev port) and
    /// waits for its "listening on" log line (or its exit, which fails the test with its
    /// output).
    pub fn start(mut cmd: Command, args: &[&str]) -> Server {
        let tls: &[&str] = if args.contains(&"--dev") && !args.contains(&"--tls-listen") {
            &["--tls-listen", "127.0.0.1:0"]
        } else {
            &[]
        };
        let mut child = cmd
            .arg("serve")
            .args(args)
            .args(tls)
            .args(["--listen", "127.0.0.1:0", "--log-format", "text"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let output = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel::<SocketAddr>();
        let stderr = child.stderr.take().unwrap();
        let out = output.clone();
        let tls_addr = Arc::new(Mutex::new(None));
        let tls_seen = tls_addr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("serving TLS on ").nth(1)
                    && let Some(addr) = rest.split_whitespace().next()
                    && let Ok(addr) = addr.parse()
                {
                    *tls_seen.lock().unwrap() = Some(addr);
                }
                if let Some(rest) = line.split("listening on ").nth(1)
                    && let Some(addr) = rest.split_whitespace().next()
                    && let Ok(addr) = addr.parse()
                {
                    let _ = tx.send(addr);
                }
                out.lock().unwrap().push_str(&line);
                out.lock().unwrap().push('\n');
            }
        });
        let mut stdout = child.stdout.take().unwrap();
        let out = output.clone();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            out.lock().unwrap().push_str(&s);
        });
        match rx.recv_timeout(Duration::from_secs(180)) {
            Ok(addr) => Server {
                child,
                addr,
                tls_addr,
                output,
            },
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(200));
                panic!("server did not start; output:\n{}", output.lock().unwrap());
            }
        }
    }

    /// The server process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The HTTPS listener's address (announced right after the plain one).
    pub fn tls_addr(&self) -> SocketAddr {
        let start = Instant::now();
        loop {
            if let Some(a) = *self.tls_addr.lock().unwrap() {
                return a;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "no \"serving TLS on\" line:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything the server printed so far.
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// HTTP GET `path`: (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        http::get(self.addr, path)
    }

    /// Waits until /readyz answers `want` (fails after `within`); how long it took and
    /// the body.
    pub fn wait_readyz(&self, want: u16, within: Duration) -> (Duration, String) {
        let start = Instant::now();
        loop {
            let (status, body) = self.get("/readyz");
            if status == want {
                return (start.elapsed(), body);
            }
            assert!(
                start.elapsed() < within,
                "readyz stayed {status} (want {want}): {body}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends SIGTERM and waits for the exit; returns the status and all output.
    pub fn stop(mut self) -> (ExitStatus, String) {
        let pid = self.child.id().to_string();
        // The shell's builtin `kill`: minimal images lack procps' /usr/bin/kill.
        let killed = Command::new("sh")
            .args(["-c", &format!("kill -TERM {pid}")])
            .status()
            .unwrap();
        assert!(killed.success());
        let mut status = None;
        for _ in 0..300 {
            if let Some(s) = self.child.try_wait().unwrap() {
                status = Some(s);
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let status = status.unwrap_or_else(|| {
            let _ = self.child.kill();
            panic!("server did not stop within 30 s of SIGTERM");
        });
        // Let the reader threads drain the pipes.
        std::thread::sleep(Duration::from_millis(300));
        let out = self.output.lock().unwrap().clone();
        (status, out)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // A failing test shows what its servers said (libtest prints a failed test's
        // captured output): a dev certificate replaced under it, a fault, a refusal.
        if std::thread::panicking() {
            std::thread::sleep(Duration::from_millis(200));
            let out = self.output.lock().unwrap_or_else(|e| e.into_inner());
            eprintln!(
                "--- output of the server on {} (the test failed) ---\n{}",
                self.addr,
                last_lines(&out, 200)
            );
        }
    }
}

/// The last `n` lines of `text`, with how many were left out.
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let skip = lines.len().saturating_sub(n);
    let mut out = String::new();
    if skip > 0 {
        out.push_str(&format!("[{skip} earlier lines left out]\n"));
    }
    out.push_str(&lines[skip..].join("\n"));
    out
}

/// Tests that put the machine under load, or assert how long requests take, take turns:
/// the tests of this binary run in parallel threads on a machine of two cores, and a
/// deadline measured beside another test's load would measure that load.
pub fn load_turn() -> MutexGuard<'static, ()> {
    static LOAD: Mutex<()> = Mutex::new(());
    LOAD.lock().unwrap_or_else(|e| e.into_inner())
}
