//! The parts of `hanko-bench anchor` against a running `hanko serve --dev`: evidence
//! lookups in the closed batch (every answer checked), and what anchoring costs the
//! signing path (throughput and CPU per token, anchoring on against off).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};

use crate::cpu::CpuTimes;
use crate::devserver::{Server, config_text, metric, scrape_metrics, set, with_verify};
use crate::http::{Conn, KeepAlive, Target, http_get};
use crate::stats::{Samples, median};
use crate::tsa::ECDSA_POLICY;
use crate::tsa::load::{build_requests, drive};

use super::{Args, CPU_RATIO, Closed, SIGNING_RATIO, synthetic};

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
pub(super) struct Serve<'a> {
    pub(super) hanko: &'a Path,
    pub(super) dir: &'a Path,
    /// The data directory's `hanko.toml`.
    pub(super) base: &'a toml::Table,
    /// The clients' runtime (one thread).
    pub(super) rt: &'a tokio::runtime::Runtime,
    /// `anchor.interval_secs` (`--interval`).
    pub(super) interval: u64,
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
pub(super) fn lookup_phase(
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
pub(super) fn signing_phase(args: &Args, serve: &Serve<'_>) -> anyhow::Result<()> {
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
