//! Control of the `hanko serve --dev` child that `hanko-bench tsa` measures: its config
//! for one row configuration (log on / off, linger, verify-after-sign), start, readiness,
//! graceful stop, and the group-commit figures read from its `/metrics`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::load::http_get;

/// The dev config with verify-after-sign set and, for "log off", `store.durability =
/// "none"`, else `store.linger_ms` if given.
pub(super) fn bench_config(
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
pub(super) struct Server {
    child: Option<Child>,
    /// `127.0.0.1:port`; with port 0 the address the server reported once ready.
    addr: String,
    log: PathBuf,
    /// Where this server's lines start in the (appended) log file.
    log_from: u64,
}

impl Server {
    pub(super) fn start(
        hanko: &Path,
        config: &Path,
        dir: &Path,
        port: u16,
        database_url: Option<&str>,
    ) -> anyhow::Result<Server> {
        let addr = format!("127.0.0.1:{port}");
        let log_path = dir.join("bench-server.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let log_from = log.metadata()?.len();
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
            .arg(&addr)
            .env_remove("HANKO_PIN")
            .env_remove("HANKO_PIN_FILE")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting hanko serve")?;
        Ok(Server {
            child: Some(child),
            addr,
            log: log_path,
            log_from,
        })
    }

    /// The address the server listens on (known for port 0 once [`Server::wait_ready`]
    /// has returned).
    pub(super) fn addr(&self) -> &str {
        &self.addr
    }

    /// The address in this server's "listening on" log line, once it is there.
    fn listening_on(&self) -> Option<String> {
        let text = std::fs::read(&self.log).ok()?;
        let from = usize::try_from(self.log_from).ok()?;
        listening_addr(&String::from_utf8_lossy(text.get(from..)?))
    }

    pub(super) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Waits until /readyz answers 200 (learning the address first when the port was 0);
    /// fails when the server exits or is not ready within `limit`.
    pub(super) async fn wait_ready(&mut self, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        let mut port_known = !self.addr.ends_with(":0");
        loop {
            if !port_known && let Some(addr) = self.listening_on() {
                self.addr = addr;
                port_known = true;
            }
            if port_known && let Ok((200, _)) = http_get(&self.addr, "/readyz").await {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!(
                    "hanko serve exited ({status}) before it was ready; see {}",
                    self.log.display()
                );
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
    pub(super) fn stop(mut self) -> anyhow::Result<()> {
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

/// The IPv4 address of the first "listening on ADDR" in a server's log (text or JSON
/// lines).
fn listening_addr(log: &str) -> Option<String> {
    let rest = log.split("listening on ").nth(1)?;
    let addr: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
        .collect();
    addr.parse::<std::net::SocketAddr>().is_ok().then_some(addr)
}

/// Group-commit batches during the load, from `/metrics` deltas.
#[derive(Debug, Clone, Copy)]
pub(super) struct BatchStats {
    pub(super) commits: f64,
    pub(super) records: f64,
    /// Largest batch in the exporter's summary window (quantile 1).
    pub(super) max: Option<f64>,
    /// Mean commit time, ms.
    pub(super) commit_ms: Option<f64>,
}

pub(super) async fn scrape_metrics(addr: &str) -> anyhow::Result<String> {
    let (status, body) = http_get(addr, "/metrics").await?;
    if status != 200 {
        bail!("/metrics answered {status}");
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// The value of the first sample named `name` (with the given label set, or none).
pub(super) fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (key, value) = l.rsplit_once(' ')?;
        (key == name).then(|| value.parse().ok()).flatten()
    })
}

pub(super) fn batch_stats(before: &str, after: &str) -> Option<BatchStats> {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn listening_address_from_the_log() {
        let text =
            "2026-12-02T15:00:00Z  INFO hanko_server: listening on 127.0.0.1:40123 dev=true\n";
        assert_eq!(listening_addr(text).as_deref(), Some("127.0.0.1:40123"));
        let json = r#"{"fields":{"message":"listening on 127.0.0.1:5","dev":true}}"#;
        assert_eq!(listening_addr(json).as_deref(), Some("127.0.0.1:5"));
        assert_eq!(listening_addr("starting\n"), None);
        assert_eq!(listening_addr("listening on nowhere"), None);
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
