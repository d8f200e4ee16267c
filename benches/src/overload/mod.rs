//! `hanko-bench overload`: the TSA offered ten times what it can sign, for a bounded time
//! (or, with `--factor` below 1, a steady load under its capacity: issue #17's "p99 at 80 %
//! of the maximum load within 3× a single request's latency").
//!
//! What a production front must show under overload: the requests it accepts are served
//! with a latency bounded by its queue, the rest are refused fast (503 + `Retry-After`),
//! nothing hangs, memory stays flat, and every token it hands out is valid and in the
//! issuance log.
//!
//! ```text
//!   hanko dev-init (once) ─> hanko serve --dev (log on, verify-after-sign on)
//!   per key:
//!     raw:       hanko_hsm pool on the same key, server idle            (signs/s)
//!     single:    (--factor < 1 only) one client, closed loop, 5 s: one request's latency
//!     capacity:  closed loop, --clients keep-alive clients, --seconds    (C req/s)
//!     overload:  open loop at --factor × C for --seconds: requests fire on schedule
//!                whatever the answers, each on an idle connection of a fixed set
//!                (none idle: counted "not sent", the generator's own limit);
//!                server RSS sampled every 200 ms, before, during and 2 s after
//!     (--slices N: capacity and overload alternate N times, each --seconds / N long,
//!      each open-loop slice at --factor × the capacity just before it: phases.rs)
//!     check:     every 200 verified offline (hanko-client's verifier, dev root);
//!   SIGTERM ─> `hanko log export`: every verified token's serial is in the log
//! ```
//!
//! It asserts nothing (it is not a test): it prints the figures for `RESULTS.md`, and
//! says `FAIL` in the verdict column where a property does not hold.
//!
//! The open loop is what makes this an overload test: a closed loop of N clients offers
//! at most N requests at once and slows down with the server, so it can never offer
//! ten times the capacity. Here a request is sent at its scheduled time unless every
//! connection is busy; connections are capped (`--connections`, under the server's
//! per-source cap of 256) because a real overload comes from many clients each with a
//! few connections, and a refused request frees its connection at once.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use hanko_pki::cert::Certificate;
use hanko_pki::oid::ObjectIdentifier;
use hanko_pki::{HashAlgorithm, SignatureAlgorithm};

use crate::devserver::{
    DevToken, HttpBench, Server, config_text, integer, scrape_metrics, with_verify,
};
use crate::hsm::pool_rate;
use crate::http::post;
use crate::tsa::ECDSA_POLICY;
use crate::tsa::load::time_stamp_req;

mod ideal;
mod open_loop;
mod phases;
use open_loop::{OpenLoop, rss_kib};
use phases::Phases;

/// Options of `hanko-bench overload`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The options every HTTP bench has (`--clients`: the closed loop that measures the
    /// capacity, first count only; `--seconds`: each phase's length).
    #[command(flatten)]
    pub common: HttpBench,
    /// Offered rate as a multiple of the measured capacity (from 0.1; below 1 the run
    /// judges latency under a steady load against a single request's instead of the
    /// overload properties).
    #[arg(long, default_value_t = 10.0)]
    pub factor: f64,
    /// A simulated network HSM (pkcs11-mock in front of SoftHSM): MS milliseconds per
    /// signature, at most K at once (as `hanko-bench tsa --network-hsm`); the server then
    /// runs K signing workers.
    #[arg(long, value_name = "MS:K")]
    pub network_hsm: Option<crate::tsa::network::NetworkHsm>,
    /// The pkcs11-mock module for --network-hsm.
    #[arg(long, default_value = "target/release/libhanko_pkcs11_mock.so")]
    pub mock_so: std::path::PathBuf,
    /// Connections of the open loop (the server allows 256 per source address).
    #[arg(long, default_value_t = 200)]
    pub connections: usize,
    /// Alternate the closed loop that measures the capacity and the open loop this many
    /// times, each phase `--seconds / N` long, every open-loop slice at `--factor` × the
    /// capacity measured just before it (tracks a VM whose speed drifts; see
    /// `overload/phases.rs`). 1: one phase of each.
    #[arg(long, default_value_t = 1)]
    pub slices: usize,
    /// A request unanswered after this many milliseconds counts as hung.
    #[arg(long, default_value_t = 15_000)]
    pub hang_ms: u64,
    /// `hsm.workers` of the server and the raw pool's [default: K with --network-hsm, else
    /// the dev config's]. `--workers 1` on two cores gives SoftHSM a core of its own, as
    /// an HSM has, and leaves the other to the front.
    #[arg(long)]
    pub workers: Option<usize>,
}

/// One key measured.
#[derive(Clone, Copy, Debug)]
struct BenchKey {
    name: &'static str,
    label: &'static str,
    alg: SignatureAlgorithm,
    policy: Option<&'static str>,
}

const KEYS: [BenchKey; 2] = [
    BenchKey {
        name: "rsa3072",
        label: "tsa-rsa3072",
        alg: SignatureAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha256),
        policy: None,
    },
    BenchKey {
        name: "p256",
        label: "tsa-p256",
        alg: SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256),
        policy: Some(ECDSA_POLICY),
    },
];

/// A pre-built request: the HTTP bytes, the DER TimeStampReq and its imprint.
struct Req {
    http: Vec<u8>,
    der: Vec<u8>,
    imprint: Vec<u8>,
}

/// `n` requests with random imprints and nonces.
fn requests(n: usize, policy: Option<&str>) -> anyhow::Result<Vec<Req>> {
    use std::io::Read as _;
    let policy = policy
        .map(|p| p.parse::<ObjectIdentifier>())
        .transpose()
        .map_err(|e| anyhow::anyhow!("bad policy OID: {e}"))?;
    let mut random = vec![0u8; n * 40];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut random)?;
    Ok(random
        .chunks_exact(40)
        .map(|c| {
            let der = time_stamp_req(&c[..32], &c[32..], policy.as_ref());
            Req {
                http: post("/tsa", "application/timestamp-query", &[], &der),
                der,
                imprint: c[..32].to_vec(),
            }
        })
        .collect())
}

/// What one key's run showed.
struct KeyResult {
    key: BenchKey,
    raw: f64,
    capacity: f64,
    /// With `--factor` below 1: one request's median latency alone, ms.
    single_ms: Option<f64>,
    /// Where the CPU went: during the capacity loop, during the open loop.
    cpu: [crate::cpu::CpuSplit; 2],
    max_in_flight: usize,
    /// Signing workers of the key's pool (the servers of the ideal queue).
    workers: usize,
    load: OpenLoop,
    rss_before: u64,
    rss_peak: u64,
    rss_after: u64,
    verified: usize,
    bad_tokens: usize,
    serials: Vec<String>,
    /// Where a granted token's time went in the server during the open loop.
    stages: crate::tsa::config::Stages,
    /// `hanko_hsm_sign_errors_total` and `hanko_hsm_orphaned_jobs_total` lines of the
    /// key, and the server's connection closes on a deadline
    /// (`hanko_http_refused_total{reason="header_timeout"}`,
    /// `hanko_http_idle_closed_total`), after the run (cumulative).
    sign_errors: Vec<String>,
}

/// Runs the bench: see the module docs.
pub fn run(args: Args) -> anyhow::Result<()> {
    args.common.check()?;
    if !(args.factor.is_finite() && args.factor >= 0.1) {
        bail!("--factor must be at least 0.1");
    }
    if args.workers == Some(0) {
        bail!("--workers must be at least 1");
    }
    if args.slices == 0 || args.slices > 600 {
        bail!("--slices must be between 1 and 600");
    }
    if args.connections == 0 || args.connections > 250 {
        bail!("--connections must be between 1 and 250 (the server's per-source cap is 256)");
    }
    let (_tmp, hanko, dir) = args.common.prepare("hanko-bench-overload-")?;
    let module = match args.network_hsm {
        Some(net) => crate::tsa::network::prepare(net, &dir, &args.mock_so, &args.common.module)?,
        None => args.common.module.clone(),
    };
    let DevToken {
        hsm,
        mut base,
        workers,
    } = DevToken::open(&dir, &module)?;
    let workers = match args.network_hsm {
        Some(net) => {
            let k = args
                .workers
                .unwrap_or_else(|| usize::try_from(net.max).unwrap_or(usize::MAX));
            crate::tsa::network::configure(&mut base, &module, k)?;
            println!(
                "network HSM: pkcs11-mock over {}, {} ms per signature, {} at once: {:.0} signs/s",
                args.common.module.display(),
                net.ms,
                net.max,
                net.capacity()
            );
            k
        }
        None => match args.workers {
            Some(w) => {
                crate::devserver::set_workers(&mut base, w)?;
                w
            }
            None => workers,
        },
    };
    let config = with_verify(&base, true)?;
    let pool = hanko_hsm::PoolConfig::default();
    let queue_depth = integer(&config, "hsm", "queue_depth").unwrap_or(pool.queue_depth);
    let max_in_flight = integer(&config, "http", "max_in_flight").unwrap_or(queue_depth);
    let cfg_path = dir.join("bench-overload.toml");
    std::fs::write(&cfg_path, config_text("overload", &config)?)?;
    let roots = vec![Certificate::from_pem(&std::fs::read_to_string(
        dir.join("dev-pki/root.pem"),
    )?)?];
    let (raw_rt, client_rt) = crate::devserver::runtimes()?;
    let seconds = Duration::from_secs_f64(args.common.seconds);
    let clients = args.common.clients[0];
    let mut server = Server::start(&hanko, &cfg_path, &dir, 0, None)?;
    client_rt.block_on(server.wait_ready(Duration::from_secs(180)))?;
    let pid = server.pid().context("no server process")?;
    println!(
        "hanko-bench overload: {} s per phase, factor {}, {} connections, hsm workers {workers}, \
         http.max_in_flight {max_in_flight}, server {} (pid {pid}), data dir {}",
        args.common.seconds,
        args.factor,
        args.connections,
        server.addr(),
        dir.display()
    );
    let mut results = Vec::new();
    for key in KEYS
        .iter()
        .copied()
        .filter(|k| args.common.keys.is_empty() || args.common.keys.iter().any(|x| x == k.name))
    {
        let raw = raw_rt
            .block_on(pool_rate(&hsm, key.label, key.alg, workers, true, seconds))?
            .rate;
        let reqs = Arc::new(requests(4096, key.policy)?);
        let measured = Phases {
            rt: &client_rt,
            addr: server.addr(),
            pid,
            reqs: reqs.clone(),
            clients,
            seconds,
            factor: args.factor,
            slices: args.slices,
            connections: args.connections,
            hang: Duration::from_millis(args.hang_ms),
        }
        .run()?;
        let load = measured.load;
        std::thread::sleep(Duration::from_secs(2));
        let rss_after = rss_kib(pid).unwrap_or(0);
        // Why a 200 granted nothing, if any did: the pool's error counters of this key, and
        // the queued jobs whose caller had gone.
        let sign_errors = client_rt
            .block_on(scrape_metrics(server.addr()))
            .map(|m| {
                m.lines()
                    .filter(|l| {
                        ((l.starts_with("hanko_hsm_sign_errors_total")
                            || l.starts_with("hanko_hsm_orphaned_jobs_total"))
                            && l.contains(&format!("key=\"{}\"", key.label)))
                            // Connections the server closed on a deadline: a connection
                            // error of the open loop may be one of them.
                            || l.starts_with("hanko_http_refused_total{reason=\"header_timeout\"}")
                            || l.starts_with("hanko_http_idle_closed_total")
                    })
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let (mut verified, mut bad_tokens, mut serials) = (0, 0, Vec::new());
        for (i, body) in &load.granted_bodies {
            let req = &reqs[*i];
            let digest = |_: HashAlgorithm| Ok(req.imprint.clone());
            match hanko_client::verify(body, &digest, Some(&req.der), &roots, &[]) {
                Ok(v) => {
                    verified += 1;
                    serials.push(normal_hex(&v.serial));
                }
                Err(e) => {
                    if bad_tokens == 0 {
                        eprintln!("a granted token does not verify: {e}");
                    }
                    bad_tokens += 1;
                }
            }
        }
        results.push(KeyResult {
            key,
            raw,
            capacity: measured.capacity,
            single_ms: measured.single_ms,
            cpu: measured.cpu,
            max_in_flight,
            workers,
            load,
            rss_before: measured.rss_before.max(1),
            rss_peak: measured.rss_peak,
            stages: measured.stages,
            rss_after,
            verified,
            bad_tokens,
            serials,
            sign_errors,
        });
    }
    server.stop()?;
    let logged = logged_serials(&hanko, &dir)?;
    print_report(&results, &logged, args.factor);
    Ok(())
}

/// Lower-case hex without a `0x` prefix or leading zeros (serials are compared in this
/// form: the verifier writes `0x0123`, the log export `0123`).
fn normal_hex(h: &str) -> String {
    let h = h.strip_prefix("0x").unwrap_or(h);
    let t = h.trim_start_matches('0').to_ascii_lowercase();
    if t.is_empty() { "0".to_owned() } else { t }
}

/// The serials of the time-stamp records in the data directory's log (`hanko log export`).
fn logged_serials(hanko: &Path, dir: &Path) -> anyhow::Result<std::collections::HashSet<String>> {
    let export = crate::devserver::stdout_of(
        Command::new(hanko)
            .args(["log", "export", "--data-dir"])
            .arg(dir),
        "hanko log export",
    )?;
    let mut serials = std::collections::HashSet::new();
    for line in export.lines() {
        let v: serde_json::Value = serde_json::from_str(line).context("an export line")?;
        if v["kind"] == "timestamp"
            && let Some(s) = v["serial"].as_str()
        {
            serials.insert(normal_hex(s));
        }
    }
    Ok(serials)
}

fn print_report(results: &[KeyResult], logged: &std::collections::HashSet<String>, factor: f64) {
    println!(
        "\n| key | raw signs/s | capacity req/s | offered req/s | sent | not sent | 200 | 200/s | \
         200 p50 / p99 / max ms | queue bound ms | 503 | 503 p99 / max ms | other | io | hung | \
         RSS before / peak / after MiB | 200 verified | 200 in log | verdict |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in results {
        let l = &r.load;
        let in_log = r.serials.iter().filter(|s| logged.contains(*s)).count();
        // The queue a request can wait in: the in-flight permits, drained at capacity.
        let bound_ms = r.max_in_flight as f64 / r.capacity * 1000.0;
        let p99 = l.granted.quantile_ms(0.99);
        let mib = |k: u64| k as f64 / 1024.0;
        let mut fails = Vec::new();
        if l.hung > 0 {
            fails.push("hung");
        }
        if !l.other.is_empty() {
            fails.push("answers other than 200 and 503");
        }
        if r.bad_tokens > 0 {
            fails.push("bad token");
        }
        if in_log != r.verified {
            fails.push("token not in log");
        }
        match r.single_ms {
            // Under capacity: nothing refused, and the p99 within 3× one request alone.
            Some(single) => {
                if l.refused.count() > 0 {
                    fails.push("503 below capacity");
                }
                if p99 > 3.0 * single {
                    fails.push("200 p99 over 3× a single request");
                }
            }
            // Twice the drain time of the queue, plus one signature's worth of slack.
            None => {
                if p99 > 2.0 * bound_ms + 1000.0 / r.raw.max(1.0) * 2.0 {
                    fails.push("200 p99 over the queue bound");
                }
            }
        }
        if l.refused.quantile_ms(0.99) > 100.0 {
            fails.push("slow 503s");
        }
        if r.rss_after as f64 > r.rss_before as f64 * 1.5 + 32.0 * 1024.0 {
            fails.push("RSS grew");
        }
        let verdict = if fails.is_empty() {
            "ok".to_owned()
        } else {
            format!("FAIL: {}", fails.join(", "))
        };
        println!(
            "| {} | {:.0} | {:.0} | {:.0} (×{factor}) | {} | {} | {} | {:.0} | {:.1} / {:.1} / {:.1} | {:.0} | {} | {:.1} / {:.1} | {} | {} | {} | {:.0} / {:.0} / {:.0} | {}/{} | {}/{} | {} |",
            r.key.name,
            r.raw,
            r.capacity,
            r.capacity * factor,
            l.sent,
            l.not_sent,
            l.granted.count(),
            l.granted.count() as f64 / l.elapsed.max(1e-9),
            l.granted.quantile_ms(0.5),
            p99,
            l.granted.quantile_ms(1.0),
            bound_ms,
            l.refused.count(),
            l.refused.quantile_ms(0.99),
            l.refused.quantile_ms(1.0),
            other(&l.other),
            l.io,
            l.hung,
            mib(r.rss_before),
            mib(r.rss_peak),
            mib(r.rss_after),
            r.verified,
            l.granted.count(),
            in_log,
            r.verified,
            verdict
        );
    }
    for r in results {
        if let Some(e) = &r.load.first_io {
            println!(
                "{}: {} connection error(s) in the open loop, the first: {e}",
                r.key.name, r.load.io
            );
        }
    }
    for r in results {
        let pct = |c: &crate::cpu::CpuSplit| {
            format!(
                "{:.0}/{:.0}/{:.0} %",
                c.server * 100.0,
                c.generator * 100.0,
                c.other * 100.0
            )
        };
        println!(
            "{}: CPU server/generator/other: capacity loop {}, open loop {} (200/s ÷ capacity {:.2})",
            r.key.name,
            pct(&r.cpu[0]),
            pct(&r.cpu[1]),
            r.load.granted.count() as f64 / r.load.elapsed.max(1e-9) / r.capacity.max(1e-9)
        );
        println!("{}: open loop {}", r.key.name, r.stages);
        if r.load.refused.count() > 0 {
            // The HTTP histogram has no status label: its mean is over the quick 503s too,
            // while the stages after it are the granted tokens' only.
            println!(
                "{}: (the request mean is over every POST /tsa, the {} refusals included; \
                 sign and log are over the granted tokens only)",
                r.key.name,
                r.load.refused.count()
            );
        }
        if let Some(single) = r.single_ms {
            let p99 = r.load.granted.quantile_ms(0.99);
            println!(
                "{}: at {:.0} % of capacity, 200 p99 {p99:.1} ms = {:.2} × a single request's \
                 p50 {single:.1} ms (target at most 3)",
                r.key.name,
                factor * 100.0,
                p99 / single.max(1e-9)
            );
            println!(
                "{}: queueing alone: an ideal server with {} signer(s) and no other cost, \
                 fed at random (independent clients) at the same {:.0} %, has a p99 of {:.2} \
                 × a single request (M/D/c; this open loop fires on a fixed schedule)",
                r.key.name,
                r.workers,
                factor * 100.0,
                ideal::md_c_p99(r.workers, factor)
            );
        }
    }
    for r in results {
        for line in &r.sign_errors {
            println!("{}: {line}", r.key.name);
        }
    }
}

/// `none`, or each status with its count (`0`: a TimeStampResp that granted nothing).
fn other(by_status: &std::collections::BTreeMap<u16, u64>) -> String {
    if by_status.is_empty() {
        return "none".to_owned();
    }
    let parts: Vec<String> = by_status.iter().map(|(s, n)| format!("{s}×{n}")).collect();
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn serials_compare_without_leading_zeros_or_case() {
        assert_eq!(normal_hex("00AB01"), "ab01");
        assert_eq!(normal_hex("000"), "0");
        assert_eq!(normal_hex("7f"), "7f");
        assert_eq!(normal_hex("0x00ff"), "ff");
    }

    #[test]
    fn requests_carry_their_imprint_and_der() {
        let reqs = requests(3, Some(ECDSA_POLICY)).unwrap();
        assert_eq!(reqs.len(), 3);
        for r in &reqs {
            assert!(r.http.ends_with(&r.der));
            assert!(r.der.windows(32).any(|w| w == r.imprint.as_slice()));
        }
        assert_ne!(reqs[0].imprint, reqs[1].imprint);
    }
}
