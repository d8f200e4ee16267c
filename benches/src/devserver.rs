//! The `hanko serve --dev` child that the HTTP benches (`tsa`, `seal`) measure, and what
//! they share around it: the data directory and its one-time `hanko dev-init`, the dev
//! token opened in the bench process too (for the raw HSM rate of the same keys), the
//! per-row config written from the dev `hanko.toml`, start, readiness, graceful stop, and
//! `/metrics`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hanko_hsm::{Hsm, ModuleConfig, Pin, PoolConfig};

use crate::http::http_get;

/// Token label of the dev token.
const DEV_TOKEN: &str = "hanko-dev";

/// The options every HTTP bench has (`tsa`, `seal`), flattened into its `Args`.
#[derive(Debug, clap::Args)]
pub struct HttpBench {
    /// The `hanko` binary to run (build it first; the bench builds nothing).
    #[arg(long, default_value = "target/release/hanko")]
    pub hanko: PathBuf,
    /// Seconds of HTTP load per row (the raw HSM rate is measured as long).
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Concurrent keep-alive clients; several counts separated by commas (`8,32`).
    #[arg(long, value_delimiter = ',', default_value = "16")]
    pub clients: Vec<usize>,
    /// Data directory of the dev server (made by `hanko dev-init` if it has no token).
    /// Default: a fresh temporary directory, removed afterwards (key generation ~15 s).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Only these keys (`rsa3072`, `p256`); default both.
    #[arg(long = "key", value_parser = ["rsa3072", "p256"])]
    pub keys: Vec<String>,
    /// Measure each key this many times per server configuration (raw, then the loads),
    /// to have quiet rows on a shared machine.
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// A row whose raw or load phase saw more than this share of the machine used by
    /// other processes is marked NOISY.
    #[arg(long, default_value_t = 0.05)]
    pub max_other: f64,
    /// PKCS#11 module (for the raw measurement; the server uses its config's).
    #[arg(long, default_value = "/usr/lib/softhsm/libsofthsm2.so")]
    pub module: PathBuf,
}

impl HttpBench {
    /// Refuses options that cannot give a measurement, and a missing `hanko` binary.
    pub(crate) fn check(&self) -> anyhow::Result<()> {
        if self.seconds.is_nan() || self.seconds <= 0.0 {
            bail!("--seconds must be positive");
        }
        if self.clients.is_empty() || self.clients.contains(&0) {
            bail!("--clients must be at least 1");
        }
        if self.repeat == 0 {
            bail!("--repeat must be at least 1");
        }
        if !self.hanko.is_file() {
            bail!(
                "no hanko binary at {} (build it first: `cargo build --release -p hanko-server \
                 -p hanko-bench`, or pass --hanko PATH)",
                self.hanko.display()
            );
        }
        Ok(())
    }

    /// The `hanko` binary's full path and the data directory (`--data-dir`, or a fresh
    /// temporary one named `prefix...`, removed when the returned guard drops), with
    /// `hanko dev-init` run in it unless it already holds a dev config.
    pub(crate) fn prepare(
        &self,
        prefix: &str,
    ) -> anyhow::Result<(Option<tempfile::TempDir>, PathBuf, PathBuf)> {
        let hanko = std::fs::canonicalize(&self.hanko)?;
        let (tmp, dir) = data_dir(self.data_dir.as_deref(), prefix)?;
        dev_init_once(&hanko, &dir)?;
        Ok((tmp, hanko, dir))
    }
}

/// On, off, or both in turn (a server setting the bench compares).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Both {
    /// Only on.
    On,
    /// Only off.
    Off,
    /// Both, in the order the option's help names.
    Both,
}

impl Both {
    /// The settings to run: off first when `off_first`, else on first.
    pub(crate) fn values(self, off_first: bool) -> Vec<bool> {
        match (self, off_first) {
            (Both::On, _) => vec![true],
            (Both::Off, _) => vec![false],
            (Both::Both, true) => vec![false, true],
            (Both::Both, false) => vec![true, false],
        }
    }
}

/// `on` or `off`.
pub(crate) fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// The data directory: `given` (created when missing), or a fresh temporary one named
/// `prefix...`, removed when the returned guard drops.
fn data_dir(
    given: Option<&Path>,
    prefix: &str,
) -> anyhow::Result<(Option<tempfile::TempDir>, PathBuf)> {
    if let Some(d) = given {
        std::fs::create_dir_all(d)?;
        return Ok((None, std::fs::canonicalize(d)?));
    }
    let t = tempfile::Builder::new().prefix(prefix).tempdir()?;
    let p = t.path().to_owned();
    Ok((Some(t), p))
}

/// `hanko dev-init` in `dir`, unless it already holds a dev config and PIN.
fn dev_init_once(hanko: &Path, dir: &Path) -> anyhow::Result<()> {
    if dir.join("hanko.toml").exists() && dir.join("dev-pin").exists() {
        return Ok(());
    }
    eprintln!("hanko dev-init --data-dir {} ...", dir.display());
    let log_path = dir.join("bench-dev-init.log");
    let log = std::fs::File::create(&log_path)?;
    let status = Command::new(hanko)
        .arg("dev-init")
        .arg("--data-dir")
        .arg(dir)
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .context("running hanko dev-init")?;
    if !status.success() {
        bail!(
            "hanko dev-init failed ({status}); see {}",
            log_path.display()
        );
    }
    Ok(())
}

/// The dev token of a data directory, opened in the bench process (same PIN, same
/// `SOFTHSM2_CONF`; SoftHSM lets a second process use a token directory), with the dev
/// `hanko.toml` every row's config starts from.
pub(crate) struct DevToken {
    pub(crate) hsm: Hsm,
    /// The data directory's `hanko.toml`.
    pub(crate) base: toml::Table,
    /// The server's `hsm.workers`; the raw pool gets as many.
    pub(crate) workers: usize,
}

impl DevToken {
    /// Opens the dev token of `dir` through `module` and reads its config. Call it before
    /// any other thread exists (SoftHSM reads SOFTHSM2_CONF in C_Initialize).
    pub(crate) fn open(dir: &Path, module: &Path) -> anyhow::Result<DevToken> {
        hanko_hsm::use_softhsm_config(&dir.join("softhsm2.conf"));
        let hsm = Hsm::open(
            ModuleConfig {
                module_path: module.to_owned(),
                token_label: DEV_TOKEN.to_owned(),
            },
            Pin::from_file(&dir.join("dev-pin"))?,
        )
        .context("opening the dev token for the raw measurement")?;
        let dev_config = dir.join("hanko.toml");
        let base: toml::Table = std::fs::read_to_string(&dev_config)?
            .parse()
            .with_context(|| format!("parsing {}", dev_config.display()))?;
        let workers =
            integer(&base, "hsm", "workers").unwrap_or_else(|| PoolConfig::default().workers);
        Ok(DevToken { hsm, base, workers })
    }
}

/// `[section] key` of a config as a positive integer, when it is one.
pub(crate) fn integer(t: &toml::Table, section: &str, key: &str) -> Option<usize> {
    t.get(section)
        .and_then(|s| s.get(key))
        .and_then(|v| v.as_integer())
        .and_then(|v| usize::try_from(v).ok())
}

/// Sets `hsm.workers` in `t` (the server's signing workers per key).
pub(crate) fn set_workers(t: &mut toml::Table, workers: usize) -> anyhow::Result<()> {
    set(
        t,
        "hsm",
        "workers",
        toml::Value::Integer(i64::try_from(workers).unwrap_or(i64::MAX)),
    )
}

/// Sets `[section] key = value` in a config, creating the section when missing.
pub(crate) fn set(
    t: &mut toml::Table,
    section: &str,
    key: &str,
    value: toml::Value,
) -> anyhow::Result<()> {
    let s = t
        .entry(section)
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let Some(s) = s.as_table_mut() else {
        bail!("[{section}] in hanko.toml is not a table");
    };
    s.insert(key.into(), value);
    Ok(())
}

/// The dev config with `hsm.verify_after_sign` set: where every row configuration of the
/// HTTP benches starts.
pub(crate) fn with_verify(base: &toml::Table, verify: bool) -> anyhow::Result<toml::Table> {
    let mut t = base.clone();
    set(
        &mut t,
        "hsm",
        "verify_after_sign",
        toml::Value::Boolean(verify),
    )?;
    Ok(t)
}

/// The two runtimes of an HTTP bench: a multi-threaded one for the raw signing pool (as
/// the server's) and the load generator's ([`client_runtime`]).
pub(crate) fn runtimes() -> std::io::Result<(tokio::runtime::Runtime, tokio::runtime::Runtime)> {
    let raw = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    Ok((raw, client_runtime()?))
}

/// The load generator's runtime: a single thread, as cheap as a client can be.
pub(crate) fn client_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// The standard output of `cmd` (`what` names it in errors); a failure to start it or a
/// non-zero exit is an error carrying its standard error.
pub(crate) fn stdout_of(cmd: &mut Command, what: &str) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!("{what} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A row configuration's `hanko.toml`, marked as written by `bench`.
pub(crate) fn config_text(bench: &str, t: &toml::Table) -> anyhow::Result<String> {
    Ok(format!(
        "# Written by hanko-bench {bench}: DEVELOPMENT ONLY.\n{}",
        toml::to_string(t)?
    ))
}

/// The `hanko serve --dev` child process; killed if dropped without [`Server::stop`].
pub(crate) struct Server {
    child: Option<Child>,
    /// `127.0.0.1:port`; with port 0 the address the server reported once ready.
    addr: String,
    log: PathBuf,
    /// Where this server's lines start in the (appended) log file.
    log_from: u64,
}

impl Server {
    pub(crate) fn start(
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
            // Never the fixed dev HTTPS port: several benches and tests run at once.
            .arg("--tls-listen")
            .arg("127.0.0.1:0")
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
    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    /// The HTTPS listener's address ("serving TLS on ADDR" in the server's log; it
    /// follows the plain one, so it is there once [`Server::wait_ready`] returned).
    pub(crate) fn tls_addr(&self) -> Option<String> {
        let text = std::fs::read(&self.log).ok()?;
        let from = usize::try_from(self.log_from).ok()?;
        let log = String::from_utf8_lossy(text.get(from..)?).into_owned();
        let rest = log.split("serving TLS on ").nth(1)?;
        listening_addr(&format!("listening on {rest}"))
    }

    /// The address in this server's "listening on" log line, once it is there.
    fn listening_on(&self) -> Option<String> {
        let text = std::fs::read(&self.log).ok()?;
        let from = usize::try_from(self.log_from).ok()?;
        listening_addr(&String::from_utf8_lossy(text.get(from..)?))
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Waits until /readyz answers 200 (learning the address first when the port was 0);
    /// fails when the server exits or is not ready within `limit`.
    pub(crate) async fn wait_ready(&mut self, limit: Duration) -> anyhow::Result<()> {
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
    pub(crate) fn stop(mut self) -> anyhow::Result<()> {
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

pub(crate) async fn scrape_metrics(addr: &str) -> anyhow::Result<String> {
    let (status, body) = http_get(addr, "/metrics").await?;
    if status != 200 {
        bail!("/metrics answered {status}");
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// The value of the first sample named `name` (with the given label set, or none).
pub(crate) fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (key, value) = l.rsplit_once(' ')?;
        (key == name).then(|| value.parse().ok()).flatten()
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
    fn metrics_lookup() {
        let text = "# TYPE x summary\nhanko_log_batch_size{quantile=\"1\"} 17\nhanko_log_batch_size_sum 120\nhanko_log_batch_size_count 10\n";
        assert_eq!(metric(text, "hanko_log_batch_size_count"), Some(10.0));
        assert_eq!(
            metric(text, "hanko_log_batch_size{quantile=\"1\"}"),
            Some(17.0)
        );
        assert_eq!(metric(text, "hanko_log_batch_size"), None);
    }

    #[test]
    fn config_edits() {
        let mut t: toml::Table = "dev = true\n[hsm]\nworkers = 3\n".parse().unwrap();
        assert_eq!(integer(&t, "hsm", "workers"), Some(3));
        assert_eq!(integer(&t, "hsm", "queue_depth"), None);
        set(&mut t, "hsm", "queue_depth", toml::Value::Integer(9)).unwrap();
        set(&mut t, "http", "csc_max_hashes", toml::Value::Integer(5)).unwrap();
        let back: toml::Table = config_text("x", &t).unwrap().parse().unwrap();
        assert_eq!(integer(&back, "hsm", "queue_depth"), Some(9));
        assert_eq!(integer(&back, "hsm", "workers"), Some(3));
        assert_eq!(integer(&back, "http", "csc_max_hashes"), Some(5));
        let mut bad: toml::Table = "hsm = 1\n".parse().unwrap();
        assert!(set(&mut bad, "hsm", "workers", toml::Value::Integer(1)).is_err());
        assert_eq!(Both::Both.values(true), [false, true]);
        assert_eq!(Both::Both.values(false), [true, false]);
        assert_eq!(Both::Off.values(false), [false]);
    }
}
