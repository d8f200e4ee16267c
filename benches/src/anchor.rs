//! `hanko-bench anchor`: Merkle anchoring of the issuance log (issue #15, acceptance item
//! 4): closing a large batch, looking up evidence in it, and what anchoring costs the
//! signing path.
//!
//! ```text
//!   hanko dev-init (once)
//!   close:   per --leaves N: a fresh SQLite log <data-dir>/bench-anchor-N.sqlite, N
//!            records appended through Store::append (group commit, --in-flight at once),
//!            then the batcher's close of 1..=N timed: hanko_server::anchor::tree_of (the
//!            leaves read block by block) + Store::close_batch, with this process's RSS
//!            before and its peak (VmHWM, reset just before) during the close
//!   lookup:  hanko serve --dev on the largest log, anchoring on (target self): waits until
//!            the batch is anchored, then --clients keep-alive clients GET
//!            /api/v1/evidence/sha256/{hex} of random leaves; EVERY answer is checked with
//!            hanko_anchor::evidence::check against its leaf and the batch root
//!   signing: hanko serve --dev on the dev log, [anchor] enabled (interval 1 s) vs
//!            disabled, alternating per round (--repeat): TSA throughput per key (the
//!            `tsa` bench's load), ratio on/off against 0.97; and the server's CPU time
//!            per token (utime + stime of all its threads, batcher included, from
//!            /proc), ratio on/off against 1.03: on a host that steals CPU the
//!            throughput swings with the steal, the CPU per token hardly does
//! ```
//!
//! The leaves are synthetic: leaf i's object hash is SHA-256("hanko-bench-anchor" || i),
//! or with `--token-bytes N` the SHA-256 of an N-byte token derived from i and kept in the
//! record as a production log keeps its tokens, so any leaf can be looked up again
//! without keeping a million hashes in memory. Memory
//! is bounded when the close's peak RSS growth does not scale with the leaves (compare
//! the rows). It asserts nothing (it is not a test); it prints tables for `RESULTS.md`
//! and says `FAIL` where a target is missed.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use hanko_store::{NewBatch, NewRecord, RecordKind, Store, StoreOptions};
use sha2::Digest as _;

use crate::cpu::CpuTimes;
use crate::devserver::{HttpBench, Server, config_text, metric, scrape_metrics, set, with_verify};
use crate::http::{Conn, KeepAlive, Target, http_get};
use crate::stats::{Samples, median};
use crate::tsa::ECDSA_POLICY;
use crate::tsa::load::{build_requests, drive};

/// Options of `hanko-bench anchor`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The options every HTTP bench has (`--seconds` per signing row, `--clients` for the
    /// lookups and the signing load (first count only), `--repeat` signing rounds).
    #[command(flatten)]
    pub common: HttpBench,
    /// Batch sizes to synthesise and close (comma-separated); the largest is looked up.
    #[arg(long, value_delimiter = ',', default_value = "100000,1000000")]
    pub leaves: Vec<u64>,
    /// Appends in flight while synthesising the log (the group commit's batches).
    #[arg(long, default_value_t = 2048)]
    pub in_flight: usize,
    /// Evidence lookups (random leaves of the largest batch), every answer checked.
    #[arg(long, default_value_t = 20_000)]
    pub lookups: usize,
    /// Distinct time-stamp requests pre-built per key for the signing rows.
    #[arg(long, default_value_t = 1024)]
    pub requests: usize,
    /// Bytes of token kept with each synthetic record (0: none). A production log keeps
    /// each TimeStampToken (2-6 KB with its certificates) beside its object hash, so the
    /// close's and the lookups' reads pass over, or must avoid, those bytes.
    #[arg(long, default_value_t = 0)]
    pub token_bytes: usize,
    /// `anchor.interval_secs` of the servers started (the lookups' and the signing
    /// comparison's). 1 closes a batch every second, far more often than production's
    /// default 60, so the on/off comparison sees every per-batch cost many times over;
    /// 60 measures the signing path as deployed.
    #[arg(long, default_value_t = 1)]
    pub interval: u64,
}

/// The targets (issue #15): close under 2 s, lookup p99 under 5 ms, on/off at least 0.97.
const CLOSE_TARGET_S: f64 = 2.0;
const LOOKUP_P99_MS: f64 = 5.0;
const SIGNING_RATIO: f64 = 0.97;
/// The same target read on the server's CPU time per token (on ÷ off at most 1.03): what
/// anchoring takes from the signing path, without the host's steal in it.
const CPU_RATIO: f64 = 1.03;

/// Runs the bench: see the module docs.
pub fn run(args: Args) -> anyhow::Result<()> {
    args.common.check()?;
    if args.leaves.is_empty() || args.leaves.contains(&0) {
        bail!("--leaves must be at least 1");
    }
    if args.interval == 0 {
        bail!("--interval must be at least 1 (anchor.interval_secs)");
    }
    if args.in_flight == 0 || args.lookups == 0 || args.requests == 0 {
        bail!("--in-flight, --lookups and --requests must be at least 1");
    }
    let (_tmp, hanko, dir) = args.common.prepare("hanko-bench-anchor-")?;
    let dev_config = dir.join("hanko.toml");
    let base: toml::Table = std::fs::read_to_string(&dev_config)?
        .parse()
        .with_context(|| format!("parsing {}", dev_config.display()))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    println!(
        "hanko-bench anchor: leaves {:?}, {} token bytes a record, {} appends in flight, {} \
         lookups, {} clients, {} s per signing row, {} rounds, data dir {}",
        args.leaves,
        args.token_bytes,
        args.in_flight,
        args.lookups,
        args.common.clients[0],
        args.common.seconds,
        args.common.repeat,
        dir.display()
    );

    println!("\n## close (SQLite)\n");
    println!(
        "| leaves | append records/s | close s | blocks | RSS before MiB | peak in close MiB | growth MiB | verdict | anon/file after MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut largest = None;
    for &n in &args.leaves {
        let path = dir.join(format!("bench-anchor-{n}.sqlite"));
        let closed = rt.block_on(close_one(&path, n, args.in_flight, args.token_bytes))?;
        println!(
            "| {n} | {:.0} | {:.3} | {} | {:.1} | {:.1} | {:.1} | {} | {:.1}/{:.1} |",
            n as f64 / closed.append_s,
            closed.close_s,
            closed.blocks,
            mib(closed.rss_before),
            mib(closed.peak),
            mib(closed.peak.saturating_sub(closed.rss_before)),
            if closed.close_s < CLOSE_TARGET_S {
                "PASS"
            } else {
                "FAIL"
            },
            mib(closed.anon_after),
            mib(closed.file_after),
        );
        if largest.as_ref().is_none_or(|(m, _, _)| *m < n) {
            largest = Some((n, path, closed));
        }
    }
    let Some((n, path, closed)) = largest else {
        bail!("no batch closed");
    };

    println!("\n## lookup ({n} leaves, batch {})\n", closed.batch_id);
    let serve = Serve {
        hanko: &hanko,
        dir: &dir,
        base: &base,
        rt: &client_rt,
        interval: args.interval,
    };
    let lookup = lookup_phase(&args, &serve, &path, n, &closed)?;
    println!(
        "lookups {}, checked {} of {}, failed {}, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms: p99 \
         target < {LOOKUP_P99_MS} ms: {}",
        args.lookups,
        lookup.count(),
        args.lookups,
        lookup.errors,
        lookup.quantile_ms(0.50),
        lookup.quantile_ms(0.99),
        lookup.quantile_ms(1.0),
        if lookup.quantile_ms(0.99) < LOOKUP_P99_MS && lookup.errors == 0 {
            "PASS"
        } else {
            "FAIL"
        }
    );

    println!("\n## signing path (TSA throughput, anchoring on vs off)\n");
    signing_phase(&args, &serve)
}

/// What closing one synthetic batch measured.
struct Closed {
    batch_id: u64,
    root: Vec<u8>,
    append_s: f64,
    close_s: f64,
    blocks: usize,
    /// VmRSS just before the close, bytes.
    rss_before: u64,
    /// VmHWM after the close (reset just before it), bytes.
    peak: u64,
    /// RssAnon and RssFile (+ RssShmem) right after the close, bytes: what the peak
    /// was made of (the heap, or SQLite's mapped files).
    anon_after: u64,
    file_after: u64,
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Record `i`'s token (`token_bytes` of them, none for 0) and object hash (its leaf):
/// SHA-256 of the token, or of ("hanko-bench-anchor" || i) without one. The token's bytes
/// are a SHA-256 stream, so they do not compress (as a token's signature and keys do not).
fn synthetic(i: u64, token_bytes: usize) -> (Option<Vec<u8>>, [u8; 32]) {
    let seed = |k: u64| {
        let mut h = sha2::Sha256::new();
        h.update(b"hanko-bench-anchor");
        h.update(i.to_be_bytes());
        if k > 0 {
            h.update(k.to_be_bytes());
        }
        <[u8; 32]>::from(h.finalize())
    };
    if token_bytes == 0 {
        return (None, seed(0));
    }
    let mut token = Vec::with_capacity(token_bytes + 32);
    let mut k = 1;
    while token.len() < token_bytes {
        token.extend_from_slice(&seed(k));
        k += 1;
    }
    token.truncate(token_bytes);
    let hash = sha2::Sha256::digest(&token).into();
    (Some(token), hash)
}

/// A fresh SQLite log at `path` with `n` synthetic records, closed as one batch the
/// batcher's way; the store is closed again afterwards.
async fn close_one(
    path: &Path,
    n: u64,
    in_flight: usize,
    token_bytes: usize,
) -> anyhow::Result<Closed> {
    for ext in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(ext);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).context("removing an old bench log"),
        }
    }
    let mut opts = StoreOptions::with_node_id("hanko-bench");
    opts.max_batch = 1024;
    let store = Store::open_sqlite(path, opts).await?;
    let started = Instant::now();
    synthesise(&store, n, in_flight, token_bytes).await?;
    let append_s = started.elapsed().as_secs_f64();
    let Some(open) = store.open_range().await? else {
        bail!("no open range after appending {n} records");
    };
    if open.len() != n {
        bail!("the open range holds {} records, not {n}", open.len());
    }
    let rss_before = proc_status_kib("VmRSS")? * 1024;
    reset_peak_rss()?;
    let started = Instant::now();
    // The batcher's close (server/src/anchor/batcher.rs, close_range): its tree, then
    // the store's close with one pending anchor for the target `self`.
    let (root, block_roots) =
        hanko_server::anchor::tree_of(&store, open.first_seq, open.head_seq).await?;
    let blocks = block_roots.len();
    let batch = store
        .close_batch(&NewBatch {
            first_seq: open.first_seq,
            last_seq: open.head_seq,
            hash_alg: hanko_server::anchor::TREE_ALG_NAME.to_owned(),
            root,
            block_roots,
            closed_at: SystemTime::now(),
            targets: vec!["self".to_owned()],
        })
        .await?;
    let close_s = started.elapsed().as_secs_f64();
    let peak = proc_status_kib("VmHWM")? * 1024;
    let anon_after = proc_status_kib("RssAnon")? * 1024;
    let file_after = (proc_status_kib("RssFile")? + proc_status_kib("RssShmem")?) * 1024;
    store.close().await;
    Ok(Closed {
        batch_id: batch.id,
        root: batch.root,
        append_s,
        close_s,
        blocks,
        rss_before,
        peak,
        anon_after,
        file_after,
    })
}

/// Appends records 0..n (object hash [`leaf`]) with `in_flight` appends at a time.
async fn synthesise(
    store: &Store,
    n: u64,
    in_flight: usize,
    token_bytes: usize,
) -> anyhow::Result<()> {
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..in_flight {
        let store = store.clone();
        let next = next.clone();
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return Ok::<(), hanko_store::Error>(());
                }
                // Serials far above any the server allocates (its counter starts at 1).
                let mut serial = vec![0x7e];
                serial.extend_from_slice(&i.to_be_bytes());
                let (token, object_hash) = synthetic(i, token_bytes);
                store
                    .append(NewRecord {
                        kind: RecordKind::Timestamp,
                        serial,
                        object_hash,
                        request_hash: object_hash.to_vec(),
                        policy: "1.3.6.1.4.1.99999.1".to_owned(),
                        client: "hanko-bench".to_owned(),
                        issued_at: SystemTime::now(),
                        token,
                    })
                    .await?;
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.context("an append task panicked")??;
    }
    Ok(())
}

/// A `/proc/self/status` field in KiB.
fn proc_status_kib(field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/self/status"))
}

/// Resets this process's VmHWM to its current RSS (Linux: `5` to `clear_refs`).
fn reset_peak_rss() -> anyhow::Result<()> {
    std::fs::write("/proc/self/clear_refs", "5").context("resetting VmHWM (/proc/self/clear_refs)")
}

/// The row config: the dev config with verify-after-sign and `[anchor]` on (interval
/// 1 s) or off, on `database` (SQLite file) when given.
fn anchor_config(
    base: &toml::Table,
    anchoring: bool,
    database: Option<&Path>,
    interval: u64,
) -> anyhow::Result<toml::Table> {
    let mut t = with_verify(base, true)?;
    set(&mut t, "anchor", "enabled", toml::Value::Boolean(anchoring))?;
    let interval = i64::try_from(interval).unwrap_or(i64::MAX);
    set(
        &mut t,
        "anchor",
        "interval_secs",
        toml::Value::Integer(interval),
    )?;
    if let Some(db) = database {
        let url = format!("sqlite://{}", db.display());
        set(&mut t, "store", "database_url", toml::Value::String(url))?;
    }
    Ok(t)
}

/// What starting a server for the lookup and signing parts needs.
struct Serve<'a> {
    hanko: &'a Path,
    dir: &'a Path,
    /// The data directory's `hanko.toml`.
    base: &'a toml::Table,
    /// The clients' runtime (one thread).
    rt: &'a tokio::runtime::Runtime,
    /// `anchor.interval_secs` (`--interval`).
    interval: u64,
}

impl Serve<'_> {
    /// Starts `hanko serve --dev` with `config` written to `<dir>/name` and waits until
    /// it is ready.
    fn start(&self, name: &str, config: &toml::Table) -> anyhow::Result<Server> {
        let path = self.dir.join(name);
        std::fs::write(&path, config_text("anchor", config)?)?;
        let mut server = Server::start(self.hanko, &path, self.dir, 0, None)?;
        self.rt
            .block_on(server.wait_ready(Duration::from_secs(180)))?;
        Ok(server)
    }
}

/// Serves the largest log with anchoring on, waits for its batch's anchor, and looks up
/// random leaves; every answer is checked.
fn lookup_phase(
    args: &Args,
    serve: &Serve<'_>,
    db: &Path,
    n: u64,
    closed: &Closed,
) -> anyhow::Result<Samples> {
    let rt = serve.rt;
    let config = anchor_config(serve.base, true, Some(db), serve.interval)?;
    let server = serve.start("bench-anchor-lookup.toml", &config)?;
    let addr = server.addr().to_owned();
    let waited = Instant::now();
    rt.block_on(wait_anchored(&addr, closed.batch_id))?;
    println!(
        "batch {} anchored by self {:.1} s after the server was ready",
        closed.batch_id,
        waited.elapsed().as_secs_f64()
    );
    let samples = rt.block_on(lookups(
        &addr,
        args.common.clients[0],
        args.lookups,
        n,
        args.token_bytes,
        Arc::new(closed.root.clone()),
    ))?;
    server.stop()?;
    Ok(samples)
}

/// Polls `/api/v1/batches/{id}` until every anchor of the batch is done (2 minutes).
async fn wait_anchored(addr: &str, id: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, body) = http_get(addr, &format!("/api/v1/batches/{id}")).await?;
        if status == 200 {
            let v: serde_json::Value = serde_json::from_slice(&body)?;
            let anchors = v["anchors"].as_array().cloned().unwrap_or_default();
            if !anchors.is_empty() && anchors.iter().all(|a| a["state"] == "done") {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!(
                "batch {id} not anchored within 2 minutes: {status} {}",
                String::from_utf8_lossy(&body)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `lookups` GETs of random leaves over `clients` keep-alive connections; an answer counts
/// only once it is a 200 whose evidence record checks against the leaf and leads to
/// `root`; anything else is an error.
async fn lookups(
    addr: &str,
    clients: usize,
    lookups: usize,
    n: u64,
    token_bytes: usize,
    root: Arc<Vec<u8>>,
) -> anyhow::Result<Samples> {
    let target = Target::plain(addr);
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let share = lookups / clients + usize::from(c < lookups % clients);
        let conn = Conn::open(&target).await?;
        let mut ka = KeepAlive::new(&target, conn);
        let root = root.clone();
        // A different xorshift stream per client, seeded from the clock.
        let mut x = SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64)
            ^ ((c as u64 + 1) << 32)
            | 1;
        tasks.spawn(async move {
            let mut s = Samples::default();
            for _ in 0..share {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let (_, hash) = synthetic(x % n, token_bytes);
                let req = format!(
                    "GET /api/v1/evidence/sha256/{} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                    hex::encode(hash)
                );
                let t = Instant::now();
                let answer = ka.exchange(req.as_bytes()).await;
                let took = t.elapsed();
                let ok = match answer {
                    Ok((200, body)) => hanko_anchor::evidence::check(&body, &hash)
                        .is_ok_and(|c| c.root == *root && !c.time_stamps.is_empty()),
                    _ => false,
                };
                if ok {
                    s.push(took);
                } else {
                    s.errors += 1;
                }
            }
            s
        });
    }
    let mut all = Samples::default();
    while let Some(s) = tasks.join_next().await {
        all.merge(s.context("a lookup client panicked")?);
    }
    Ok(all)
}

/// TSA throughput with anchoring on and off, alternating per round; the ratio per key.
fn signing_phase(args: &Args, serve: &Serve<'_>) -> anyhow::Result<()> {
    let rt = serve.rt;
    let keys: Vec<(&str, Option<&str>)> = [("RSA-3072", None), ("ECDSA P-256", Some(ECDSA_POLICY))]
        .into_iter()
        .filter(|(name, _)| {
            args.common.keys.is_empty()
                || args
                    .common
                    .keys
                    .iter()
                    .any(|k| (k == "rsa3072") == (*name == "RSA-3072"))
        })
        .collect();
    let mut reqs = Vec::new();
    for (_, policy) in &keys {
        reqs.push(Arc::new(build_requests(args.requests, *policy, &[])?));
    }
    let seconds = Duration::from_secs_f64(args.common.seconds);
    let clients = args.common.clients[0];
    println!(
        "| round | anchoring | key | clients | req/s | p50 ms | p99 ms | errors | batches closed | server CPU ms/req |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    // rates[key][on as usize], and the server's CPU per granted request
    let mut rates = vec![[Vec::new(), Vec::new()]; keys.len()];
    let mut cpu = vec![[Vec::new(), Vec::new()]; keys.len()];
    for round in 0..args.common.repeat {
        let order = if round % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for on in order {
            let config = anchor_config(serve.base, on, None, serve.interval)?;
            let name = format!("bench-anchor-{}.toml", crate::devserver::on_off(on));
            let server = serve.start(&name, &config)?;
            let target = Target::plain(server.addr());
            for (k, (name, _)) in keys.iter().enumerate() {
                let before = CpuTimes::sample(server.pid());
                let load = rt.block_on(drive(&target, reqs[k].clone(), clients, seconds))?;
                let after = CpuTimes::sample(server.pid());
                // utime + stime of every server thread (the batcher's and the anchor
                // target's included), per token: the host's steal does not count in it,
                // which it does in req/s.
                let granted = load.granted.count().max(1) as f64;
                let cpu_ms = after.server.saturating_sub(before.server) as f64 * 10.0 / granted;
                let metrics = rt.block_on(scrape_metrics(server.addr())).ok();
                let batches = metrics
                    .as_deref()
                    .and_then(|m| metric(m, "hanko_anchor_batches_total"))
                    .unwrap_or(0.0);
                println!(
                    "| {round} | {} | {name} | {clients} | {:.1} | {:.2} | {:.2} | {} | {batches:.0} | {cpu_ms:.3} |",
                    crate::devserver::on_off(on),
                    load.rate(),
                    load.granted.quantile_ms(0.50),
                    load.granted.quantile_ms(0.99),
                    load.errors(),
                );
                rates[k][usize::from(on)].push(load.rate());
                cpu[k][usize::from(on)].push(cpu_ms);
            }
            server.stop()?;
        }
    }
    println!();
    for (k, (name, _)) in keys.iter().enumerate() {
        let off = median(rates[k][0].clone());
        let on = median(rates[k][1].clone());
        let ratio = if off > 0.0 { on / off } else { 0.0 };
        println!(
            "{name}: anchoring on {on:.1} req/s, off {off:.1} req/s (medians of {} rounds): \
             ratio {ratio:.3}, target >= {SIGNING_RATIO}: {}",
            args.common.repeat,
            if ratio >= SIGNING_RATIO {
                "PASS"
            } else {
                "FAIL"
            }
        );
        let cpu_off = median(cpu[k][0].clone());
        let cpu_on = median(cpu[k][1].clone());
        let cpu_ratio = if cpu_off > 0.0 { cpu_on / cpu_off } else { 0.0 };
        println!(
            "{name}: server CPU per token on {cpu_on:.3} ms, off {cpu_off:.3} ms (medians): \
             ratio {cpu_ratio:.3}, target <= {CPU_RATIO}: {}",
            if cpu_ratio > 0.0 && cpu_ratio <= CPU_RATIO {
                "PASS"
            } else {
                "FAIL"
            }
        );
    }
    Ok(())
}
