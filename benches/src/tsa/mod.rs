//! `hanko-bench tsa`: the whole time-stamp authority over HTTP, as a ratio to the raw
//! HSM signing rate measured in the same run.
//!
//! What it does, per server configuration (issuance log on / off × verify-after-sign):
//!
//! ```text
//!   hanko dev-init (once) ─> open the dev token here too (same PIN, same SOFTHSM2_CONF)
//!   write <data-dir>/bench-<log>-<verify>.toml ─> hanko serve --dev --config it ─> /readyz
//!   for each key (RSA-3072 on the default policy, P-256 on policy 1.3.6.1.5.5.7.13.2):
//!     raw:  hanko_hsm pool on the same key, same workers, same verify, server idle
//!     load: C keep-alive HTTP/1.1 clients POST /tsa for S seconds; only granted
//!           TimeStampResps count; /metrics and CPU times sampled before and after
//!   SIGTERM the server
//! ```
//!
//! It builds nothing: it runs an existing `hanko` binary (`--hanko`, default
//! `target/release/hanko`; build it with `cargo build --release -p hanko-server -p
//! hanko-bench`). It asserts nothing either: it prints a table for `RESULTS.md`.
//!
//! The load generator is deliberately cheap: one thread (a current-thread tokio runtime),
//! hand-written HTTP/1.1 over `TcpStream`, requests DER-encoded once before the run. On a
//! 2-core machine it still competes with the server for CPU; the CPU split (server,
//! generator, everything else on the machine) is printed with each row so the reader can
//! see how much of the machine the generator took.
//!
//! "Log off" is the server's dev-only `store.durability = "none"` (the append to the
//! issuance log is skipped; serials still come from the log), refused outside `--dev`.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hanko_hsm::{Hsm, ModuleConfig, Pin, PoolConfig};
use hanko_pki::der::{self, tag};
use hanko_pki::oid::ObjectIdentifier;
use hanko_pki::{HashAlgorithm, SignatureAlgorithm, Signer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::stats::Samples;

/// The dev policy signed by the P-256 key (`hanko dev-init`'s `hanko.toml`).
pub const ECDSA_POLICY: &str = "1.3.6.1.5.5.7.13.2";
/// Token label of the dev token.
const DEV_TOKEN: &str = "hanko-dev";

/// Options of `hanko-bench tsa`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The `hanko` binary to run (build it first; the bench builds nothing).
    #[arg(long, default_value = "target/release/hanko")]
    pub hanko: PathBuf,
    /// Seconds of HTTP load per row (the raw HSM rate is measured as long).
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Concurrent keep-alive clients; several counts separated by commas (`8,32`).
    #[arg(long, value_delimiter = ',', default_value = "16")]
    pub clients: Vec<usize>,
    /// Port the server listens on (127.0.0.1).
    #[arg(long, default_value_t = 3930)]
    pub port: u16,
    /// Data directory of the dev server (made by `hanko dev-init` if it has no token).
    /// Default: a fresh temporary directory, removed afterwards (key generation ~15 s).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Only these keys (`rsa3072`, `p256`); default both.
    #[arg(long = "key", value_parser = ["rsa3072", "p256"])]
    pub keys: Vec<String>,
    /// Issuance log: `on` (durable, group commit), `off` (dev-only durability = "none"),
    /// or `both`.
    #[arg(long, value_enum, default_value_t = Both::Both)]
    pub log: Both,
    /// Verify-after-sign in the server and in the raw measurement: `on` (the dev
    /// default), `off` or `both`.
    #[arg(long, value_enum, default_value_t = Both::On)]
    pub verify: Both,
    /// `store.linger_ms` values for the log-on configurations (comma-separated; one
    /// server run each). Default: the server's default (no key written).
    #[arg(long, value_delimiter = ',')]
    pub linger_ms: Vec<f64>,
    /// Issuance log database for the server (`postgres://...`), passed to it as
    /// `HANKO_DATABASE_URL`. Default: the dev SQLite file in the data directory.
    #[arg(long, env = "HANKO_BENCH_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Measure each key this many times per server configuration (raw, then the loads),
    /// to have quiet rows on a shared machine.
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// A row whose raw or load phase saw more than this share of the machine used by
    /// other processes is marked NOISY.
    #[arg(long, default_value_t = 0.05)]
    pub max_other: f64,
    /// Distinct requests (random imprints and nonces) pre-built per key.
    #[arg(long, default_value_t = 1024)]
    pub requests: usize,
    /// PKCS#11 module (for the raw measurement; the server uses its config's).
    #[arg(long, default_value = "/usr/lib/softhsm/libsofthsm2.so")]
    pub module: PathBuf,
}

/// On, off, or both in turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Both {
    /// Only on.
    On,
    /// Only off.
    Off,
    /// Off first, then on (for `--log`); on, then off (for `--verify`).
    Both,
}

impl Both {
    fn values(self, off_first: bool) -> Vec<bool> {
        match (self, off_first) {
            (Both::On, _) => vec![true],
            (Both::Off, _) => vec![false],
            (Both::Both, true) => vec![false, true],
            (Both::Both, false) => vec![true, false],
        }
    }
}

/// A key the dev server signs with, and how to ask for it.
#[derive(Debug, Clone, Copy)]
struct BenchKey {
    name: &'static str,
    label: &'static str,
    alg: SignatureAlgorithm,
    /// `reqPolicy`, or the default policy when `None`.
    policy: Option<&'static str>,
    /// The acceptance target: TSA rate ÷ raw HSM rate.
    target: f64,
}

const KEYS: [BenchKey; 2] = [
    BenchKey {
        name: "RSA-3072",
        label: "tsa-rsa3072",
        alg: SignatureAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha256),
        policy: None,
        target: 0.90,
    },
    BenchKey {
        name: "ECDSA P-256",
        label: "tsa-p256",
        alg: SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256),
        policy: Some(ECDSA_POLICY),
        target: 0.75,
    },
];

/// One row of the table.
#[derive(Debug, Clone)]
struct Row {
    key: BenchKey,
    log: bool,
    /// `store.linger_ms`, when the bench set it.
    linger: Option<f64>,
    verify: bool,
    clients: usize,
    load: LoadResult,
    raw: RawResult,
    /// Share of the machine used by other processes during the raw measurement.
    raw_other: f64,
    /// Repetition number (`--repeat`).
    round: usize,
    batches: Option<BatchStats>,
    cpu: CpuSplit,
}

/// The raw signing rate of the pool on the same key.
#[derive(Debug, Clone, Copy)]
struct RawResult {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

/// What the HTTP clients saw.
#[derive(Debug, Clone, Default)]
struct LoadResult {
    /// Latencies of granted responses.
    granted: Samples,
    /// TimeStampResps with a status other than granted / grantedWithMods.
    rejected: u64,
    /// HTTP statuses other than 200, unparsable bodies.
    http_errors: u64,
    /// Connection errors (each followed by a reconnect).
    io_errors: u64,
    elapsed: f64,
}

impl LoadResult {
    fn rate(&self) -> f64 {
        if self.elapsed > 0.0 {
            self.granted.count() as f64 / self.elapsed
        } else {
            0.0
        }
    }
    fn errors(&self) -> u64 {
        self.rejected + self.http_errors + self.io_errors + self.granted.errors
    }
}

/// Group-commit batches during the load, from `/metrics` deltas.
#[derive(Debug, Clone, Copy)]
struct BatchStats {
    commits: f64,
    records: f64,
    /// Largest batch in the exporter's summary window (quantile 1).
    max: Option<f64>,
    /// Mean commit time, ms.
    commit_ms: Option<f64>,
}

/// CPU seconds used during the load, as shares of the machine (`nproc` × wall time).
#[derive(Debug, Clone, Copy, Default)]
struct CpuSplit {
    server: f64,
    generator: f64,
    other: f64,
}

/// Runs the benchmark and prints the table.
pub fn run(args: Args) -> anyhow::Result<()> {
    if args.seconds.is_nan() || args.seconds <= 0.0 {
        bail!("--seconds must be positive");
    }
    if args.clients.is_empty() || args.clients.contains(&0) {
        bail!("--clients must be at least 1");
    }
    if args.repeat == 0 {
        bail!("--repeat must be at least 1");
    }
    if args.requests == 0 {
        bail!("--requests must be at least 1");
    }
    if !args.hanko.is_file() {
        bail!(
            "no hanko binary at {} (build it first: `cargo build --release -p hanko-server -p \
             hanko-bench`, or pass --hanko PATH)",
            args.hanko.display()
        );
    }
    let hanko = std::fs::canonicalize(&args.hanko)?;
    let (_tmp, dir) = match &args.data_dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            (None, std::fs::canonicalize(d)?)
        }
        None => {
            let t = tempfile::Builder::new()
                .prefix("hanko-bench-tsa-")
                .tempdir()?;
            let p = t.path().to_owned();
            (Some(t), p)
        }
    };
    let dev_config = dir.join("hanko.toml");
    if !dev_config.exists() || !dir.join("dev-pin").exists() {
        eprintln!("hanko dev-init --data-dir {} ...", dir.display());
        let log = std::fs::File::create(dir.join("bench-dev-init.log"))?;
        let status = Command::new(&hanko)
            .arg("dev-init")
            .arg("--data-dir")
            .arg(&dir)
            .stdout(log.try_clone()?)
            .stderr(log)
            .status()
            .context("running hanko dev-init")?;
        if !status.success() {
            bail!(
                "hanko dev-init failed ({status}); see {}",
                dir.join("bench-dev-init.log").display()
            );
        }
    }
    // Before any thread exists: SoftHSM reads SOFTHSM2_CONF in C_Initialize.
    hanko_hsm::use_softhsm_config(&dir.join("softhsm2.conf"));
    let hsm = Hsm::open(
        ModuleConfig {
            module_path: args.module.clone(),
            token_label: DEV_TOKEN.to_owned(),
        },
        Pin::from_file(&dir.join("dev-pin"))?,
    )
    .context("opening the dev token for the raw measurement")?;
    let base: toml::Table = std::fs::read_to_string(&dev_config)?
        .parse()
        .with_context(|| format!("parsing {}", dev_config.display()))?;
    let workers = base
        .get("hsm")
        .and_then(|h| h.get("workers"))
        .and_then(|w| w.as_integer())
        .and_then(|w| usize::try_from(w).ok())
        .unwrap_or_else(|| PoolConfig::default().workers);

    let wanted = |k: &BenchKey| {
        args.keys.is_empty()
            || args
                .keys
                .iter()
                .any(|x| (x == "rsa3072") == (k.label == "tsa-rsa3072"))
    };
    let keys: Vec<BenchKey> = KEYS.iter().copied().filter(wanted).collect();
    let mut requests = Vec::new();
    for k in &keys {
        requests.push(Arc::new(build_requests(args.requests, k.policy)?));
    }

    let raw_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let addr = format!("127.0.0.1:{}", args.port);
    let seconds = Duration::from_secs_f64(args.seconds);
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);

    println!(
        "hanko-bench tsa: {} s per row, server {} on {addr}, hsm workers {workers}, {ncpu} CPUs, data dir {}, log in {}",
        args.seconds,
        hanko.display(),
        dir.display(),
        if args.database_url.is_some() {
            "the given database"
        } else {
            "SQLite"
        }
    );
    print_header();
    let mut rows = Vec::new();
    if args.linger_ms.iter().any(|l| !(0.0..=100.0).contains(l)) {
        bail!("--linger-ms values must be between 0 and 100");
    }
    let mut log_configs: Vec<(bool, Option<f64>)> = Vec::new();
    for log in args.log.values(true) {
        if log && !args.linger_ms.is_empty() {
            log_configs.extend(args.linger_ms.iter().map(|l| (true, Some(*l))));
        } else {
            log_configs.push((log, None));
        }
    }
    for (log, linger) in log_configs {
        for verify in args.verify.values(false) {
            let cfg_path = dir.join(format!(
                "bench-log-{}-verify-{}.toml",
                on_off(log),
                on_off(verify)
            ));
            std::fs::write(&cfg_path, bench_config(&base, log, linger, verify)?)?;
            let server =
                Server::start(&hanko, &cfg_path, &dir, &addr, args.database_url.as_deref())?;
            client_rt.block_on(server.wait_ready(Duration::from_secs(180)))?;
            for (k, reqs) in keys.iter().zip(&requests) {
                for round in 0..args.repeat {
                    // The server is idle now: measure the token alone, same pool shape.
                    let r0 = CpuTimes::sample(server.pid());
                    let raw = raw_rt
                        .block_on(raw_rate(&hsm, k.label, k.alg, workers, verify, seconds))?;
                    let raw_other =
                        CpuTimes::split(&r0, &CpuTimes::sample(server.pid()), ncpu).other;
                    for &clients in &args.clients {
                        let m0 = client_rt.block_on(scrape_metrics(&addr)).ok();
                        let c0 = CpuTimes::sample(server.pid());
                        let load =
                            client_rt.block_on(drive(&addr, reqs.clone(), clients, seconds))?;
                        let c1 = CpuTimes::sample(server.pid());
                        let m1 = client_rt.block_on(scrape_metrics(&addr)).ok();
                        let batches = match (log, m0, m1) {
                            (true, Some(a), Some(b)) => batch_stats(&a, &b),
                            _ => None,
                        };
                        let row = Row {
                            key: *k,
                            log,
                            linger,
                            verify,
                            clients,
                            cpu: CpuTimes::split(&c0, &c1, ncpu),
                            load,
                            raw,
                            raw_other,
                            round,
                            batches,
                        };
                        print_row(&row, args.max_other);
                        rows.push(row);
                    }
                }
            }
            server.stop()?;
        }
    }
    print_summary(&rows, args.max_other);
    Ok(())
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// The log column: `off`, `on`, or `on/1.0ms` (with `store.linger_ms`).
fn log_label(log: bool, linger: Option<f64>) -> String {
    match (log, linger) {
        (true, Some(ms)) => format!("on/{ms}ms"),
        _ => on_off(log).to_owned(),
    }
}

/// The dev config with verify-after-sign set and, for "log off", `store.durability =
/// "none"`, else `store.linger_ms` if given.
fn bench_config(
    base: &toml::Table,
    log: bool,
    linger: Option<f64>,
    verify: bool,
) -> anyhow::Result<String> {
    let mut t = base.clone();
    let hsm = t
        .entry("hsm")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let Some(hsm) = hsm.as_table_mut() else {
        bail!("[hsm] in hanko.toml is not a table");
    };
    hsm.insert("verify_after_sign".into(), toml::Value::Boolean(verify));
    let store_setting = match (log, linger) {
        (false, _) => Some(("durability", toml::Value::String("none".into()))),
        (true, Some(ms)) => Some(("linger_ms", toml::Value::Float(ms))),
        (true, None) => None,
    };
    if let Some((name, value)) = store_setting {
        let store = t
            .entry("store")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let Some(store) = store.as_table_mut() else {
            bail!("[store] in hanko.toml is not a table");
        };
        store.insert(name.into(), value);
    }
    Ok(format!(
        "# Written by hanko-bench tsa: DEVELOPMENT ONLY.\n{}",
        toml::to_string(&t)?
    ))
}

/// The `hanko serve --dev` child process; killed if dropped without [`Server::stop`].
struct Server {
    child: Option<Child>,
    addr: String,
    log: PathBuf,
}

impl Server {
    fn start(
        hanko: &Path,
        config: &Path,
        dir: &Path,
        addr: &str,
        database_url: Option<&str>,
    ) -> anyhow::Result<Server> {
        let log_path = dir.join("bench-server.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let mut cmd = Command::new(hanko);
        match database_url {
            Some(url) => cmd.env("HANKO_DATABASE_URL", url),
            None => cmd.env_remove("HANKO_DATABASE_URL"),
        };
        let child = cmd
            .arg("serve")
            .arg("--dev")
            .arg("--config")
            .arg(config)
            .arg("--data-dir")
            .arg(dir)
            .arg("--listen")
            .arg(addr)
            .env_remove("HANKO_PIN")
            .env_remove("HANKO_PIN_FILE")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting hanko serve")?;
        Ok(Server {
            child: Some(child),
            addr: addr.to_owned(),
            log: log_path,
        })
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    async fn wait_ready(&self, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok((200, _)) = http_get(&self.addr, "/readyz").await {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the server at {} was not ready within {limit:?}; see {}",
                    self.addr,
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// SIGTERM (graceful drain), then wait up to 30 s, then SIGKILL.
    fn stop(mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        // std has no SIGTERM; the shell builtin needs no extra package.
        let _ = Command::new("sh")
            .args(["-c", "kill -TERM \"$1\"", "sh", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait()? {
                if !status.success() {
                    eprintln!("warning: hanko serve exited with {status}");
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                eprintln!("warning: hanko serve ignored SIGTERM for 30 s; killing it");
                child.kill()?;
                child.wait()?;
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `n` complete HTTP/1.1 requests (header and DER body) for `POST /tsa`.
fn build_requests(n: usize, policy: Option<&str>) -> anyhow::Result<Vec<Vec<u8>>> {
    let policy = match policy {
        Some(p) => Some(
            p.parse::<ObjectIdentifier>()
                .map_err(|e| anyhow::anyhow!("bad OID {p}: {e}"))?,
        ),
        None => None,
    };
    let mut random = vec![0u8; n * 40];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut random)?;
    let mut out = Vec::with_capacity(n);
    for chunk in random.chunks_exact(40) {
        let body = time_stamp_req(&chunk[..32], &chunk[32..40], policy.as_ref());
        let mut req = format!(
            "POST /tsa HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/timestamp-query\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(&body);
        out.push(req);
    }
    Ok(out)
}

/// DER TimeStampReq (RFC 3161 §2.4.1): v1, SHA-256 imprint (NULL parameters, as
/// OpenSSL writes them), optional reqPolicy, an 8-byte positive nonce, certReq TRUE.
fn time_stamp_req(imprint: &[u8], nonce: &[u8], policy: Option<&ObjectIdentifier>) -> Vec<u8> {
    let imprint = der::sequence(&[
        &HashAlgorithm::Sha256.algorithm_identifier_null_der(),
        &der::tlv(tag::OCTET_STRING, imprint),
    ]);
    // Positive and minimal: first byte in 0x40..=0x7f.
    let mut nonce = nonce.to_vec();
    if let Some(first) = nonce.first_mut() {
        *first = (*first & 0x3f) | 0x40;
    }
    let mut content = [der::tlv(tag::INTEGER, &[1]), imprint].concat();
    if let Some(oid) = policy {
        content.extend_from_slice(&der::oid(oid));
    }
    content.extend_from_slice(&der::tlv(tag::INTEGER, &nonce));
    content.extend_from_slice(&[0x01, 0x01, 0xff]); // certReq BOOLEAN TRUE
    der::tlv(tag::SEQUENCE, &content)
}

/// PKIStatus of a TimeStampResp, and whether a token follows the status.
fn tsa_status(resp: &[u8]) -> Option<(u64, bool)> {
    let (t, body, rest) = der::read_tlv(resp)?;
    if t != tag::SEQUENCE || !rest.is_empty() {
        return None;
    }
    let (t, status_info, after_status) = der::read_tlv(body)?;
    if t != tag::SEQUENCE {
        return None;
    }
    let (t, status, _) = der::read_tlv(status_info)?;
    if t != tag::INTEGER || status.is_empty() || status.len() > 8 {
        return None;
    }
    let status = status.iter().fold(0u64, |a, &b| (a << 8) | b as u64);
    Some((status, !after_status.is_empty()))
}

/// One keep-alive connection with a read buffer.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn connect(addr: &str) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(16 * 1024),
        })
    }

    /// Sends `req` and reads one response: (status code, body, server closes).
    async fn exchange(&mut self, req: &[u8]) -> std::io::Result<(u16, Vec<u8>, bool)> {
        self.stream.write_all(req).await?;
        let head_end = loop {
            if let Some(p) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            self.fill().await?;
        };
        let head = std::str::from_utf8(&self.buf[..head_end])
            .map_err(|_| bad("response head is not UTF-8"))?;
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("bad status line"))?;
        let mut length = None;
        let mut close = false;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(bad(
                    "chunked responses are not supported by the bench client",
                ));
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            }
        }
        let length = length.ok_or_else(|| bad("no Content-Length"))?;
        while self.buf.len() < head_end + length {
            self.fill().await?;
        }
        let body = self.buf[head_end..head_end + length].to_vec();
        self.buf.drain(..head_end + length);
        Ok((status, body, close))
    }

    async fn fill(&mut self) -> std::io::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

fn bad(msg: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.to_owned())
}

/// A one-off GET on a fresh connection: (status, body).
async fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
    let mut c = Conn::connect(addr).await?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    let (status, body, _) =
        tokio::time::timeout(Duration::from_secs(10), c.exchange(req.as_bytes()))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "GET timed out"))??;
    Ok((status, body))
}

/// `clients` connections posting `reqs` round-robin for `seconds`.
async fn drive(
    addr: &str,
    reqs: Arc<Vec<Vec<u8>>>,
    clients: usize,
    seconds: Duration,
) -> anyhow::Result<LoadResult> {
    // Connect everyone first so that connection set-up is not measured.
    let mut conns = Vec::with_capacity(clients);
    for _ in 0..clients {
        conns.push(
            Conn::connect(addr)
                .await
                .context("connecting to the server")?,
        );
    }
    let start = Instant::now();
    let deadline = start + seconds;
    let mut tasks = tokio::task::JoinSet::new();
    for (i, conn) in conns.into_iter().enumerate() {
        let reqs = reqs.clone();
        let addr = addr.to_owned();
        tasks.spawn(async move {
            let mut r = LoadResult::default();
            let mut conn = Some(conn);
            let mut next = i;
            while Instant::now() < deadline {
                let c = match conn.as_mut() {
                    Some(c) => c,
                    None => match Conn::connect(&addr).await {
                        Ok(c) => conn.insert(c),
                        Err(_) => {
                            r.io_errors += 1;
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    },
                };
                let req = &reqs[next % reqs.len()];
                next += clients;
                let t0 = Instant::now();
                match c.exchange(req).await {
                    Ok((200, body, close)) => {
                        match tsa_status(&body) {
                            Some((0 | 1, true)) => r.granted.push(t0.elapsed()),
                            Some(_) => r.rejected += 1,
                            None => r.http_errors += 1,
                        }
                        if close {
                            conn = None;
                        }
                    }
                    Ok((_, _, close)) => {
                        r.http_errors += 1;
                        if close {
                            conn = None;
                        }
                    }
                    Err(_) => {
                        r.io_errors += 1;
                        conn = None;
                    }
                }
            }
            r
        });
    }
    let mut all = LoadResult::default();
    while let Some(r) = tasks.join_next().await {
        let r = r?;
        all.granted.merge(r.granted);
        all.rejected += r.rejected;
        all.http_errors += r.http_errors;
        all.io_errors += r.io_errors;
    }
    all.elapsed = start.elapsed().as_secs_f64();
    Ok(all)
}

/// The raw rate of the signing pool on `label`: the same measurement as `hanko-bench
/// hsm` (2 × workers async callers, 220-byte messages), on the server's token and key.
async fn raw_rate(
    hsm: &Hsm,
    label: &str,
    alg: SignatureAlgorithm,
    workers: usize,
    verify: bool,
    seconds: Duration,
) -> anyhow::Result<RawResult> {
    let signer = Arc::new(hsm.signer(
        label,
        alg,
        PoolConfig {
            workers,
            queue_depth: 4 * workers + 8,
            call_timeout: Duration::from_secs(30),
            verify_after_sign: verify,
        },
    )?);
    for _ in 0..2 * workers {
        signer.sign(b"warm-up").await.context("warm-up signature")?;
    }
    let (all, elapsed) = crate::hsm::drive_signer(signer, 2 * workers, seconds).await?;
    Ok(RawResult {
        rate: all.count() as f64 / elapsed,
        p50_ms: all.quantile_ms(0.50),
        p99_ms: all.quantile_ms(0.99),
        errors: all.errors,
    })
}

async fn scrape_metrics(addr: &str) -> anyhow::Result<String> {
    let (status, body) = http_get(addr, "/metrics").await?;
    if status != 200 {
        bail!("/metrics answered {status}");
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// The value of the first sample named `name` (with the given label set, or none).
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (key, value) = l.rsplit_once(' ')?;
        (key == name).then(|| value.parse().ok()).flatten()
    })
}

fn batch_stats(before: &str, after: &str) -> Option<BatchStats> {
    let d = |name: &str| Some(metric(after, name)? - metric(before, name).unwrap_or(0.0));
    let commits = d("hanko_log_batch_size_count")?;
    let records = d("hanko_log_batch_size_sum")?;
    let commit_ms = match (
        d("hanko_log_commit_seconds_sum"),
        d("hanko_log_commit_seconds_count"),
    ) {
        (Some(s), Some(n)) if n > 0.0 => Some(s / n * 1000.0),
        _ => None,
    };
    Some(BatchStats {
        commits,
        records,
        max: metric(after, "hanko_log_batch_size{quantile=\"1\"}"),
        commit_ms,
    })
}

/// Clock ticks of the server, of this process and of the whole machine.
#[derive(Debug, Clone, Copy, Default)]
struct CpuTimes {
    server: u64,
    me: u64,
    busy: u64,
    at: Option<Instant>,
}

/// Linux reports `/proc` times in USER_HZ, which is 100 on every architecture Rust
/// supports for Linux userspace.
const TICKS_PER_SECOND: f64 = 100.0;

impl CpuTimes {
    fn sample(server: Option<u32>) -> CpuTimes {
        CpuTimes {
            server: server.and_then(|p| proc_ticks(&p.to_string())).unwrap_or(0),
            me: proc_ticks("self").unwrap_or(0),
            busy: machine_busy_ticks().unwrap_or(0),
            at: Some(Instant::now()),
        }
    }

    fn split(a: &CpuTimes, b: &CpuTimes, ncpu: usize) -> CpuSplit {
        let wall = match (a.at, b.at) {
            (Some(x), Some(y)) => y.duration_since(x).as_secs_f64(),
            _ => 0.0,
        };
        let cap = wall * ncpu as f64;
        if cap <= 0.0 {
            return CpuSplit::default();
        }
        let secs = |x: u64, y: u64| y.saturating_sub(x) as f64 / TICKS_PER_SECOND;
        let server = secs(a.server, b.server);
        let me = secs(a.me, b.me);
        let busy = secs(a.busy, b.busy);
        CpuSplit {
            server: server / cap,
            generator: me / cap,
            other: (busy - server - me).max(0.0) / cap,
        }
    }
}

/// utime + stime of a process (all its threads).
fn proc_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the comm field: f[0] is field 3 (state); utime is field 14, stime 15.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// All non-idle ticks of the machine (first line of /proc/stat, without idle and iowait).
fn machine_busy_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 5 {
        return None;
    }
    Some(v.iter().sum::<u64>() - v[3] - v[4])
}

fn print_header() {
    println!(
        "{:<12} {:>9} {:>6} {:>7} {:>8} {:>7} {:>7} {:>6} {:>9} {:>6} {:>11} {:>15} {:>7}",
        "key",
        "log",
        "verify",
        "clients",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "raw sig/s",
        "ratio",
        "batch avg/max",
        "cpu srv/gen/oth",
        "raw oth"
    );
}

impl Row {
    fn quiet(&self, max_other: f64) -> bool {
        self.cpu.other <= max_other && self.raw_other <= max_other
    }
}

fn print_row(r: &Row, max_other: f64) {
    let batch = match r.batches {
        Some(b) if b.commits > 0.0 => format!(
            "{:.1}/{}",
            b.records / b.commits,
            b.max
                .map(|m| format!("{m:.0}"))
                .unwrap_or_else(|| "?".into())
        ),
        _ => "-".into(),
    };
    let ratio = if r.raw.rate > 0.0 {
        r.load.rate() / r.raw.rate
    } else {
        0.0
    };
    println!(
        "{:<12} {:>9} {:>6} {:>7} {:>8.1} {:>7.2} {:>7.2} {:>6} {:>9.1} {:>6.3} {:>11} {:>5.0}/{:>2.0}/{:>2.0} % {:>5.0} %{}",
        r.key.name,
        log_label(r.log, r.linger),
        on_off(r.verify),
        r.clients,
        r.load.rate(),
        r.load.granted.quantile_ms(0.50),
        r.load.granted.quantile_ms(0.99),
        r.load.errors(),
        r.raw.rate,
        ratio,
        batch,
        r.cpu.server * 100.0,
        r.cpu.generator * 100.0,
        r.cpu.other * 100.0,
        r.raw_other * 100.0,
        if r.quiet(max_other) { "" } else { "  NOISY" },
    );
    let _ = std::io::stdout().flush();
}

fn print_summary(rows: &[Row], max_other: f64) {
    println!();
    for r in rows {
        let noisy = if r.quiet(max_other) { "" } else { " [NOISY]" };
        let ratio = if r.raw.rate > 0.0 {
            r.load.rate() / r.raw.rate
        } else {
            0.0
        };
        println!(
            "{} log {} verify {} clients {} round {}: {:.1} req/s = {:.3} x raw {:.1} signs/s \
             (raw p50 {:.2} ms, p99 {:.2} ms, raw errors {}); target {:.2}: {}{noisy}",
            r.key.name,
            log_label(r.log, r.linger),
            on_off(r.verify),
            r.clients,
            r.round + 1,
            r.load.rate(),
            ratio,
            r.raw.rate,
            r.raw.p50_ms,
            r.raw.p99_ms,
            r.raw.errors,
            r.key.target,
            if ratio >= r.key.target {
                "met"
            } else {
                "MISSED"
            }
        );
        if r.load.errors() > 0 {
            println!(
                "  errors: {} rejected, {} HTTP/parse, {} connection",
                r.load.rejected, r.load.http_errors, r.load.io_errors
            );
        }
        if let Some(b) = r.batches {
            println!(
                "  log: {:.0} records in {:.0} commits (mean batch {:.2}, max {}), mean commit {} ms",
                b.records,
                b.commits,
                if b.commits > 0.0 {
                    b.records / b.commits
                } else {
                    0.0
                },
                b.max
                    .map(|m| format!("{m:.0}"))
                    .unwrap_or_else(|| "?".into()),
                b.commit_ms
                    .map(|m| format!("{m:.2}"))
                    .unwrap_or_else(|| "?".into())
            );
        }
    }
    // Medians over the quiet rounds of each configuration.
    let same = |a: &Row, b: &Row| {
        a.key.label == b.key.label
            && a.log == b.log
            && a.linger == b.linger
            && a.verify == b.verify
            && a.clients == b.clients
    };
    let mut groups: Vec<Vec<&Row>> = Vec::new();
    for r in rows.iter().filter(|r| r.quiet(max_other)) {
        match groups.iter_mut().find(|g| same(g[0], r)) {
            Some(g) => g.push(r),
            None => groups.push(vec![r]),
        }
    }
    println!();
    println!(
        "medians over quiet rounds (other processes <= {:.0} % of the machine):",
        max_other * 100.0
    );
    // (row, req/s, ratio to raw, server share of the machine)
    let mut medians: Vec<(&Row, f64, f64, f64)> = Vec::new();
    for g in &groups {
        let rate = median(g.iter().map(|r| r.load.rate()).collect());
        let server_cpu = median(g.iter().map(|r| r.cpu.server).collect());
        let ratio = median(
            g.iter()
                .map(|r| {
                    if r.raw.rate > 0.0 {
                        r.load.rate() / r.raw.rate
                    } else {
                        0.0
                    }
                })
                .collect(),
        );
        let r = g[0];
        println!(
            "  {} log {} verify {} clients {}: {} quiet round(s), {:.1} req/s, ratio {:.3}; target {:.2}: {}",
            r.key.name,
            log_label(r.log, r.linger),
            on_off(r.verify),
            r.clients,
            g.len(),
            rate,
            ratio,
            r.key.target,
            if ratio >= r.key.target {
                "met"
            } else {
                "MISSED"
            }
        );
        medians.push((r, rate, ratio, server_cpu));
    }
    for (on, on_rate, _, on_cpu) in medians.iter().filter(|(r, ..)| r.log) {
        if let Some((_, off_rate, _, off_cpu)) = medians.iter().find(|(o, ..)| {
            !o.log
                && o.key.label == on.key.label
                && o.verify == on.verify
                && o.clients == on.clients
        }) && *off_rate > 0.0
        {
            let q = on_rate / off_rate;
            // A throughput comparison needs both servers saturated; with too few
            // closed-loop clients the log-on row measures the commit's added latency.
            let unsaturated = q < 0.90 && *on_cpu < SATURATED_SERVER_SHARE;
            println!(
                "  {} verify {} clients {}: log {} / log off = {:.3} ({:.1} / {:.1} req/s, \
                 server CPU {:.0} / {:.0} %); target >= 0.90: {}{}",
                on.key.name,
                on_off(on.verify),
                on.clients,
                log_label(true, on.linger),
                q,
                on_rate,
                off_rate,
                on_cpu * 100.0,
                off_cpu * 100.0,
                if q >= 0.90 { "met" } else { "MISSED" },
                if unsaturated {
                    " (log-on server not saturated: latency-bound with this many clients)"
                } else {
                    ""
                }
            );
        }
    }
}

/// Server share of the machine above which a row counts as saturated (the 2-core dev
/// machine: log off runs at 92-94 %, the load generator takes most of the rest).
const SATURATED_SERVER_SHARE: f64 = 0.88;

/// The median (mean of the middle two for an even count); 0 for none.
fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn request_encoding() {
        let oid: ObjectIdentifier = ECDSA_POLICY.parse().unwrap();
        let der = time_stamp_req(&[7u8; 32], &[0xff; 8], Some(&oid));
        let (tag, _, rest) = der::read_tlv(&der).unwrap();
        assert_eq!((tag, rest.len()), (0x30, 0));
        assert!(
            der.windows(10)
                .any(|w| w == [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x0d, 0x02])
        );
        assert!(der.windows(15).any(|w| w
            == [
                0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
                0x00
            ]));
        // Nonce stays positive and minimal.
        let nonce_at = der.len() - 3 - 8;
        assert_eq!(der[nonce_at - 2..nonce_at], [0x02, 0x08]);
        assert_eq!(der[nonce_at], 0x7f);
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![]), 0.0);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn status_parsing() {
        // status granted, then a (fake) token.
        let granted = [
            0x30, 0x09, 0x30, 0x03, 0x02, 0x01, 0x00, 0x30, 0x02, 0x05, 0x00,
        ];
        assert_eq!(tsa_status(&granted), Some((0, true)));
        let rejected = [0x30, 0x05, 0x30, 0x03, 0x02, 0x01, 0x02];
        assert_eq!(tsa_status(&rejected), Some((2, false)));
        assert_eq!(tsa_status(&[0x30, 0x05, 0x30]), None);
    }

    #[test]
    fn metrics_lookup_and_config() {
        let text = "# TYPE x summary\nhanko_log_batch_size{quantile=\"1\"} 17\nhanko_log_batch_size_sum 120\nhanko_log_batch_size_count 10\n";
        assert_eq!(metric(text, "hanko_log_batch_size_count"), Some(10.0));
        assert_eq!(
            metric(text, "hanko_log_batch_size{quantile=\"1\"}"),
            Some(17.0)
        );
        let base: toml::Table = "dev = true\n[hsm]\nworkers = 2\nverify_after_sign = true\n"
            .parse()
            .unwrap();
        let off: toml::Table = bench_config(&base, false, None, false)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(off["hsm"]["verify_after_sign"].as_bool(), Some(false));
        assert_eq!(off["store"]["durability"].as_str(), Some("none"));
        let on: toml::Table = bench_config(&base, true, None, true)
            .unwrap()
            .parse()
            .unwrap();
        assert!(on.get("store").is_none());
        let on: toml::Table = bench_config(&base, true, Some(0.5), true)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(on["store"]["linger_ms"].as_float(), Some(0.5));
    }
}
