//! `hanko-bench lanes`: does a bulk client's flood leave the interactive callers their
//! share of the signing capacity?
//!
//! Lanes (docs/architecture.md, "Lanes"): a `[[clients]]` entry with `lane = "bulk"` has
//! its requests admitted against `http.max_in_flight_bulk` and its signatures queued in
//! the bulk lane of each signing pool, which takes at most `max(1, floor(hsm.bulk_share ×
//! hsm.workers))` workers while interactive work waits. This bench shows what that buys,
//! on one key, against the same flood sent without lanes:
//!
//! ```text
//!   hanko dev-init (once); raw: the signing pool on the key, server idle  (signs/s)
//!   server A: [[clients]] "bench-bulk" (API key), lane = "bulk"
//!     interactive alone : --clients anonymous keep-alive clients POST /tsa
//!     bulk alone        : --bulk-clients clients with the bulk key
//!     mixed             : both at once
//!   server B: the same client with lane = "interactive" (no lanes: the baseline)
//!     mixed             : both at once
//! ```
//!
//! With `--bulk archive` the bulk client is an archive system instead (issue #16): it
//! floods `POST /api/v1/archive/objects` with `--archive-hashes` new SHA-256 hashes a
//! request (the compact binary form), which are always in the bulk lane; anchoring is on
//! (a batch a second). Archive submissions never sign, so what they compete for is
//! admission, the log's group commit and the CPU; there is no lane-less baseline (the
//! route has no other lane), and each phase sends hashes never sent before, so that no
//! request is answered as "existing" without a write.
//!
//! Verdict (per mixed row with lanes): interactive keeps at least `1 - bulk_share` of its
//! rate alone (less 10 % for noise), its p99 stays within `P99_BOUND` times its p99
//! alone, and bulk is not starved (more than 0). The baseline row shows what the
//! interactive callers get without lanes: roughly their share of the connections. It asserts nothing (it is not a test); it prints a table for
//! `RESULTS.md` and says `FAIL` where the property does not hold.

use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use hanko_pki::{HashAlgorithm, SignatureAlgorithm};
use sha2::Digest as _;

use crate::devserver::{DevToken, HttpBench, Server, config_text, scrape_metrics, with_verify};
use crate::hsm::pool_rate;
use crate::http::Target;
use crate::tsa::ECDSA_POLICY;
use crate::tsa::load::{Answer, LoadResult, build_requests, drive, drive_judged, tsa_answer};

/// Options of `hanko-bench lanes`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The options every HTTP bench has (`--clients`: the interactive callers, first
    /// count only; `--key`: the first key named, default `rsa3072`, where a signature is
    /// slow enough for queues to form).
    #[command(flatten)]
    pub common: HttpBench,
    /// Concurrent keep-alive connections of the bulk client.
    #[arg(long, default_value_t = 32)]
    pub bulk_clients: usize,
    /// `hsm.bulk_share` of the server (0.0..=1.0).
    #[arg(long, default_value_t = 0.5)]
    pub bulk_share: f64,
    /// What the bulk client sends: time-stamp requests (`tsa`) or archive submissions
    /// (`archive`).
    #[arg(long, value_enum, default_value_t = BulkKind::Tsa)]
    pub bulk: BulkKind,
    /// Hashes per archive submission (`--bulk archive`).
    #[arg(long, default_value_t = 64)]
    pub archive_hashes: usize,
}

/// What the bulk client floods the server with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BulkKind {
    /// `POST /tsa` with its API key.
    Tsa,
    /// `POST /api/v1/archive/objects` (scope `archive`).
    Archive,
}

/// The bound on the interactive p99 with the bulk flood beside it, as a multiple of its
/// p99 alone.
const P99_BOUND: f64 = 3.0;

/// Pre-built archive submissions per phase (each of `--archive-hashes` fresh hashes).
const ARCHIVE_REQUESTS: usize = 8192;

/// One load phase's two sides (either may be absent).
#[derive(Default)]
struct Phase {
    interactive: Option<LoadResult>,
    bulk: Option<LoadResult>,
}

/// The name and lane of the bench's bulk client in the server's config.
const BULK_CLIENT: &str = "bench-bulk";

/// The server config: the dev config with verify-after-sign, `hsm.bulk_share` and the
/// bench's client (API key digest `key_sha256`) in `lane`.
fn lanes_config(
    base: &toml::Table,
    bulk_share: f64,
    key_sha256: &str,
    lane: &str,
    bulk: BulkKind,
) -> anyhow::Result<toml::Table> {
    let mut t = with_verify(base, true)?;
    crate::devserver::set(&mut t, "hsm", "bulk_share", toml::Value::Float(bulk_share))?;
    let scope = match bulk {
        BulkKind::Tsa => "tsa",
        BulkKind::Archive => {
            // Archive submissions exist only where anchoring runs.
            crate::devserver::set(&mut t, "anchor", "enabled", toml::Value::Boolean(true))?;
            crate::devserver::set(&mut t, "anchor", "interval_secs", toml::Value::Integer(1))?;
            "archive"
        }
    };
    let mut client = toml::Table::new();
    client.insert("name".into(), BULK_CLIENT.into());
    client.insert("api_key_sha256".into(), key_sha256.into());
    client.insert("scopes".into(), toml::Value::Array(vec![scope.into()]));
    client.insert("lane".into(), lane.into());
    let clients = t
        .entry("clients")
        .or_insert_with(|| toml::Value::Array(Vec::new()));
    let Some(clients) = clients.as_array_mut() else {
        bail!("clients in hanko.toml is not an array of tables");
    };
    clients.retain(|c| c.get("name").and_then(|n| n.as_str()) != Some(BULK_CLIENT));
    clients.push(toml::Value::Table(client));
    Ok(t)
}

/// `n` archive submissions of `hashes` fresh random SHA-256 values each, in the compact
/// binary form (`application/octet-stream`, `?alg=sha256`), with the bulk client's key.
fn archive_requests(n: usize, hashes: usize, bearer: &str) -> anyhow::Result<Vec<Vec<u8>>> {
    use std::io::Read as _;
    let mut random = vec![0u8; n * hashes * 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut random)?;
    Ok(random
        .chunks_exact(hashes * 32)
        .map(|body| {
            crate::http::post(
                "/api/v1/archive/objects?alg=sha256",
                "application/octet-stream",
                &[bearer],
                body,
            )
        })
        .collect())
}

/// An archive submission's answer: granted when every hash is logged (new or existing).
fn archive_answer(body: &[u8]) -> Answer {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Answer::Malformed;
    };
    let count = |k: &str| v.get(k).and_then(serde_json::Value::as_u64);
    match (count("new"), count("existing"), v.get("objects")) {
        (Some(n), Some(e), Some(serde_json::Value::Array(o)))
            if n + e == o.len() as u64 && !o.is_empty() =>
        {
            Answer::Granted
        }
        _ => Answer::Malformed,
    }
}

/// A fresh API key (64 hex digits of /dev/urandom) and its SHA-256, as the server
/// compares it.
fn api_key() -> anyhow::Result<(String, String)> {
    use std::io::Read as _;
    let mut raw = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut raw)?;
    let key = format!("hk_bench_{}", hex::encode(raw));
    let digest = hex::encode(sha2::Sha256::digest(key.as_bytes()));
    Ok((key, digest))
}

/// Runs the bench: see the module docs.
pub fn run(args: Args) -> anyhow::Result<()> {
    args.common.check()?;
    if !(0.0..=1.0).contains(&args.bulk_share) {
        bail!("--bulk-share must be between 0.0 and 1.0");
    }
    if args.bulk_clients == 0 || args.archive_hashes == 0 {
        bail!("--bulk-clients and --archive-hashes must be at least 1");
    }
    let (name, label, alg, policy) = match args.common.keys.first().map(String::as_str) {
        Some("p256") => (
            "p256",
            "tsa-p256",
            SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256),
            Some(ECDSA_POLICY),
        ),
        _ => (
            "rsa3072",
            "tsa-rsa3072",
            SignatureAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha256),
            None,
        ),
    };
    let (_tmp, hanko, dir) = args.common.prepare("hanko-bench-lanes-")?;
    let DevToken { hsm, base, workers } = DevToken::open(&dir, &args.common.module)?;
    let (key, key_sha256) = api_key()?;
    let bearer = format!("Authorization: Bearer {key}");
    let interactive_reqs = Arc::new(build_requests(4096, policy, &[])?);
    // Fresh requests for every phase (an archive hash sent twice is not written twice).
    let bulk_reqs = || -> anyhow::Result<Arc<Vec<Vec<u8>>>> {
        Ok(Arc::new(match args.bulk {
            BulkKind::Tsa => build_requests(4096, policy, &[&bearer])?,
            BulkKind::Archive => archive_requests(ARCHIVE_REQUESTS, args.archive_hashes, &bearer)?,
        }))
    };
    let judge = match args.bulk {
        BulkKind::Tsa => tsa_answer,
        BulkKind::Archive => archive_answer,
    };
    let seconds = Duration::from_secs_f64(args.common.seconds);
    let clients = args.common.clients[0];
    let (raw_rt, client_rt) = crate::devserver::runtimes()?;
    let raw = raw_rt
        .block_on(pool_rate(&hsm, label, alg, workers, true, seconds))?
        .rate;
    let bulk_max = ((args.bulk_share * workers as f64).floor() as usize).max(1);
    println!(
        "hanko-bench lanes: key {name}, {} s per phase, {clients} interactive clients, {} bulk \
         clients, hsm workers {workers}, bulk_share {} (bulk takes at most {bulk_max} of {workers} \
         workers while interactive work waits), raw {raw:.0} signs/s, data dir {}",
        args.common.seconds,
        args.bulk_clients,
        args.bulk_share,
        dir.display()
    );
    let mut rows: Vec<(&str, &str, Phase)> = Vec::new();
    let mut lane_jobs = Vec::new();
    let servers: &[(&str, &[&str])] = match args.bulk {
        BulkKind::Tsa => &[
            ("bulk", &["interactive alone", "bulk alone", "mixed"]),
            ("interactive", &["mixed"]),
        ],
        // The archive route is always in the bulk lane: no baseline without lanes.
        BulkKind::Archive => &[("bulk", &["interactive alone", "bulk alone", "mixed"])],
    };
    for &(lane, phases) in servers {
        let config = lanes_config(&base, args.bulk_share, &key_sha256, lane, args.bulk)?;
        let cfg_path = dir.join(format!("bench-lanes-{lane}.toml"));
        std::fs::write(&cfg_path, config_text("lanes", &config)?)?;
        let mut server = Server::start(&hanko, &cfg_path, &dir, 0, None)?;
        client_rt.block_on(server.wait_ready(Duration::from_secs(180)))?;
        let target = Target::plain(server.addr());
        for &phase in phases {
            let with_interactive = phase != "bulk alone";
            let with_bulk = phase != "interactive alone";
            let bulk_reqs = if with_bulk {
                bulk_reqs()?
            } else {
                Arc::new(Vec::new())
            };
            let (i, b) = client_rt.block_on(async {
                let i = async {
                    if with_interactive {
                        Some(drive(&target, interactive_reqs.clone(), clients, seconds).await)
                    } else {
                        None
                    }
                };
                let b = async {
                    if with_bulk {
                        Some(
                            drive_judged(
                                &target,
                                bulk_reqs.clone(),
                                args.bulk_clients,
                                seconds,
                                judge,
                            )
                            .await,
                        )
                    } else {
                        None
                    }
                };
                tokio::join!(i, b)
            });
            rows.push((
                lane,
                phase,
                Phase {
                    interactive: i.transpose()?,
                    bulk: b.transpose()?,
                },
            ));
        }
        // Which lane the pool really queued the signatures in.
        let text = client_rt.block_on(scrape_metrics(server.addr()))?;
        lane_jobs.extend(
            text.lines()
                .filter(|l| l.starts_with("hanko_hsm_lane_jobs_total") && l.contains(label))
                .map(|l| format!("bulk client in lane {lane}: {l}")),
        );
        server.stop()?;
    }
    print_report(&rows, raw, args.bulk_share);
    if args.bulk == BulkKind::Archive {
        println!(
            "(bulk req/s are archive submissions of {} hashes each: {} hashes a second in \
             the mixed row)",
            args.archive_hashes,
            rows.iter()
                .find(|(_, p, _)| *p == "mixed")
                .and_then(|(_, _, r)| r.bulk.as_ref())
                .map_or(0.0, |b| b.rate() * args.archive_hashes as f64)
                .round()
        );
    }
    for l in &lane_jobs {
        println!("{l}");
    }
    Ok(())
}

/// `rate req/s | p50 / p99 ms | errors` of one side, or `—` in each column.
fn side(r: Option<&LoadResult>) -> String {
    match r {
        None => "— | — | —".to_owned(),
        Some(r) => format!(
            "{:.0} | {:.1} / {:.1} | {}",
            r.rate(),
            r.granted.quantile_ms(0.5),
            r.granted.quantile_ms(0.99),
            r.errors()
        ),
    }
}

fn print_report(rows: &[(&str, &str, Phase)], raw: f64, bulk_share: f64) {
    let alone_result = rows
        .iter()
        .find(|(_, p, _)| *p == "interactive alone")
        .and_then(|(_, _, r)| r.interactive.as_ref());
    let alone = alone_result.map(LoadResult::rate).unwrap_or(0.0);
    let alone_p99 = alone_result.map_or(0.0, |r| r.granted.quantile_ms(0.99));
    println!(
        "\n| bulk client's lane | phase | interactive req/s | interactive p50 / p99 ms | \
         interactive errors | bulk req/s | bulk p50 / p99 ms | bulk errors | interactive ÷ \
         alone | (req/s) ÷ raw | verdict |"
    );
    println!("|---|---|---:|---|---:|---:|---|---:|---:|---:|---|");
    for (lane, phase, r) in rows {
        let i = r.interactive.as_ref().map(LoadResult::rate).unwrap_or(0.0);
        let b = r.bulk.as_ref().map(LoadResult::rate).unwrap_or(0.0);
        let share = if alone > 0.0 { i / alone } else { 0.0 };
        let verdict = match (*lane, *phase) {
            ("bulk", "mixed") => {
                let mut fails = Vec::new();
                if share < (1.0 - bulk_share) * 0.9 {
                    fails.push("interactive below its share");
                }
                let p99 = r
                    .interactive
                    .as_ref()
                    .map_or(0.0, |r| r.granted.quantile_ms(0.99));
                if alone_p99 > 0.0 && p99 > P99_BOUND * alone_p99 {
                    fails.push("interactive p99 above 3x its p99 alone");
                }
                if b <= 0.0 && bulk_share > 0.0 {
                    fails.push("bulk starved");
                }
                if fails.is_empty() {
                    "ok".to_owned()
                } else {
                    format!("FAIL: {}", fails.join(", "))
                }
            }
            ("interactive", _) => "baseline (no lanes)".to_owned(),
            _ => "".to_owned(),
        };
        println!(
            "| {lane} | {phase} | {} | {} | {:.2} | {:.2} | {verdict} |",
            side(r.interactive.as_ref()),
            side(r.bulk.as_ref()),
            share,
            (i + b) / raw.max(1e-9),
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn the_bulk_client_is_added_once_in_its_lane() {
        let base: toml::Table = "dev = true\n[hsm]\nworkers = 2\n[[clients]]\nname = \"dev-client\"\napi_key_sha256 = \"00\"\n"
            .parse()
            .unwrap();
        let t = lanes_config(&base, 0.25, "ab", "bulk", BulkKind::Tsa).unwrap();
        let t = lanes_config(&t, 0.25, "cd", "interactive", BulkKind::Tsa).unwrap();
        let clients = t["clients"].as_array().unwrap();
        assert_eq!(clients.len(), 2);
        let bulk = clients[1].as_table().unwrap();
        assert_eq!(bulk["name"].as_str(), Some(BULK_CLIENT));
        assert_eq!(bulk["api_key_sha256"].as_str(), Some("cd"));
        assert_eq!(bulk["lane"].as_str(), Some("interactive"));
        assert_eq!(t["hsm"]["bulk_share"].as_float(), Some(0.25));
        assert_eq!(t["hsm"]["verify_after_sign"].as_bool(), Some(true));
        // An archive bulk client has the scope archive, and anchoring is on.
        let t = lanes_config(&base, 0.25, "ef", "bulk", BulkKind::Archive).unwrap();
        let bulk = t["clients"].as_array().unwrap()[1].as_table().unwrap();
        assert_eq!(
            bulk["scopes"].as_array().unwrap()[0].as_str(),
            Some("archive")
        );
        assert_eq!(t["anchor"]["enabled"].as_bool(), Some(true));
    }

    #[test]
    fn archive_submissions_are_binary_with_fresh_hashes() {
        let reqs = archive_requests(3, 2, "Authorization: Bearer x").unwrap();
        assert_eq!(reqs.len(), 3);
        for r in &reqs {
            assert!(r.starts_with(b"POST /api/v1/archive/objects?alg=sha256 HTTP/1.1\r\n"));
            assert!(r.windows(18).any(|w| w == b"Content-Length: 64"));
        }
        let tail = |r: &Vec<u8>| r[r.len() - 64..].to_vec();
        assert_ne!(tail(&reqs[0]), tail(&reqs[1]));
    }

    #[test]
    fn archive_answers_are_judged_by_their_counts() {
        let ok = br#"{"objects":[{"id":"0a","status":"new"},{"id":"0b","status":"existing"}],"new":1,"existing":1}"#;
        assert_eq!(archive_answer(ok), Answer::Granted);
        let short = br#"{"objects":[{"id":"0a"}],"new":1,"existing":1}"#;
        assert_eq!(archive_answer(short), Answer::Malformed);
        assert_eq!(
            archive_answer(br#"{"objects":[],"new":0,"existing":0}"#),
            Answer::Malformed
        );
        assert_eq!(archive_answer(b"\x30\x03\x02\x01\x00"), Answer::Malformed);
    }

    #[test]
    fn api_keys_are_fresh_and_their_digest_is_of_the_key() {
        let (k1, d1) = api_key().unwrap();
        let (k2, _) = api_key().unwrap();
        assert_ne!(k1, k2);
        assert_eq!(d1, hex::encode(sha2::Sha256::digest(k1.as_bytes())));
        let reqs = build_requests(2, None, &["Authorization: Bearer x"]).unwrap();
        assert!(
            reqs.iter()
                .all(|r| r.windows(23).any(|w| w == b"Authorization: Bearer x"))
        );
    }
}
