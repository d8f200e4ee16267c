//! Configuration: one TOML file, overridden by command-line flags, over safe defaults.
//!
//! Every flag has a config key (shared/DESIGN.md); the PIN has neither: it comes from
//! `HANKO_PIN` or `HANKO_PIN_FILE` only (in `--dev`, from `<data-dir>/dev-pin` when both
//! are unset), because flags and config files end up in `ps`, shell history and backups.
//!
//! ```text
//!   defaults  <  TOML file (--config)  <  flags (--listen, --data-dir, --dev, --log-format)
//!        \__________________ FileConfig (raw, all Option) ______________/
//!                                   | resolve(): validate, fill defaults
//!                                   v
//!                                 Config (checked; what the server runs with)
//! ```
//!
//! The raw [`FileConfig`] rejects unknown keys, so a typo fails at start-up instead of
//! being ignored. Relative paths in `[[keys]]` are relative to `data_dir`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use hanko_hsm::{ModuleConfig, PoolConfig};
use hanko_pki::SignatureAlgorithm;
use serde::Deserialize;

/// Default listen address (RFC 3161 has no registered port; 3161 is our convention).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:3161";
/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "./hanko-data";
/// Debian's SoftHSM2 module.
pub const DEFAULT_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// Token label of the dev token.
pub const DEV_TOKEN_LABEL: &str = "hanko-dev";
/// Name of the config file `dev-init` writes into the data directory.
pub const DEV_CONFIG_FILE: &str = "hanko.toml";
/// `store.linger_ms` when not set: the upper bound of the log writer's wait for more
/// records while the signers are backlogged (benches/RESULTS.md, 2026-11-25).
pub const DEFAULT_LINGER: Duration = Duration::from_millis(2);

/// The TOML file as written: every key optional, unknown keys refused.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `listen`: socket address to serve HTTP on. Flag `--listen`.
    pub listen: Option<SocketAddr>,
    /// `data_dir`: SoftHSM token store (dev), issuance log, dev PKI. Flag `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `dev`: development mode (relaxed, loud). Flag `--dev`.
    pub dev: Option<bool>,
    /// `drain_timeout_ms`: how long shutdown waits for requests in flight.
    pub drain_timeout_ms: Option<u64>,
    /// `[log]`.
    #[serde(default)]
    pub log: LogSection,
    /// `[hsm]`.
    #[serde(default)]
    pub hsm: HsmSection,
    /// `[http]`: what the HTTP front admits to the signing routes.
    #[serde(default)]
    pub http: HttpSection,
    /// `[[keys]]`: the signing keys to load.
    #[serde(default)]
    pub keys: Vec<KeySection>,
    /// `[tsa]`: the time-stamp authority's profile.
    #[serde(default)]
    pub tsa: TsaSection,
    /// `[clock]`: where the clock's quality comes from.
    #[serde(default)]
    pub clock: ClockSection,
    /// `[store]`: the issuance log.
    #[serde(default)]
    pub store: StoreSection,
    /// `[[api_keys]]`: who may call `/api/v1/...` (only digests; see [`crate::auth`]).
    #[serde(default)]
    pub api_keys: Vec<crate::auth::ApiKeySection>,
}

/// `[tsa]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TsaSection {
    /// `tsa.key`: label of the active TSU key (a `[[keys]]` entry with `usage = "tsa"`).
    /// Default: the first TSA key. Changing it and restarting is the key rollover.
    pub key: Option<String>,
    /// `tsa.default_policy`: policy OID of tokens whose request names none. Default the
    /// ETSI best-practices policy 0.4.0.2023.1.1.
    pub default_policy: Option<String>,
    /// `tsa.accepted_policies`: further policy OIDs a request may name.
    pub accepted_policies: Option<Vec<String>>,
    /// `tsa.accepted_hashes`: imprint hash algorithms, e.g. `["sha256", "sha384",
    /// "sha512"]` (the default). SHA-1 and MD5 are always refused.
    pub accepted_hashes: Option<Vec<String>>,
    /// `tsa.accuracy_ms`: declared accuracy, 1..=1000 ms (default 1000).
    pub accuracy_ms: Option<u64>,
    /// `tsa.include_tsa_name`: put the TSA certificate's subject into TSTInfo.tsa.
    pub include_tsa_name: Option<bool>,
    /// `tsa.qualified`: add qcStatements/esi4-qtstStatement-1 (EU qualified profile).
    pub qualified: Option<bool>,
    /// `tsa.policy_keys`: policy OID -> key label, for policies signed by another TSU key
    /// than `tsa.key` (e.g. an ECDSA key for one policy, RSA for the default).
    pub policy_keys: Option<std::collections::BTreeMap<String, String>>,
    /// `tsa.serial_counter`: name of the serial counter in the issuance log. Nodes of one
    /// TSA share it (default `"tsa"`).
    pub serial_counter: Option<String>,
}

/// `[clock]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockSection {
    /// `clock.source`: `kernel` (adjtimex; the default) or `chrony` (`chronyc -c
    /// tracking`, polled; see [`crate::clock`]).
    pub source: Option<String>,
    /// `clock.chronyc`: the chronyc program for `source = "chrony"` (default `chronyc`
    /// from `PATH`).
    pub chronyc: Option<PathBuf>,
    /// `clock.poll_ms`: how often chrony is asked, 10..=60000 (default 1000).
    pub poll_ms: Option<u64>,
    /// `clock.settle_ms`: how long the clock must stay good after a jump before issuing
    /// resumes (default 60000).
    pub settle_ms: Option<u64>,
}

/// `[store]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// `store.database_url`: `postgres://...` or `sqlite://...`. Default: SQLite at
    /// `<data_dir>/issuance-log.sqlite`. Also `HANKO_DATABASE_URL` (preferred for URLs
    /// with a password) and the flag `--database-url`.
    pub database_url: Option<String>,
    /// `store.node_id`: this node's name in the log (default: the host name).
    pub node_id: Option<String>,
    /// `store.keep_tokens`: keep the issued bytes in the log (default true).
    pub keep_tokens: Option<bool>,
    /// `store.max_batch`: most records per group commit (default 256).
    pub max_batch: Option<usize>,
    /// `store.linger_ms`: the longest the log writer holds a batch smaller than
    /// `max_batch` open for more records (0..=100, fractions allowed; default 2; 0: commit
    /// at once). It holds one open only while a signing pool has at least a worker's worth
    /// of requests queued (the signers lose nothing by it) and commits as soon as none has,
    /// so a lightly loaded server adds no wait. Bigger batches cost less per record. See
    /// benches/RESULTS.md for measured effects.
    pub linger_ms: Option<f64>,
    /// `store.serial_block`: serials reserved per round trip (default 1000).
    pub serial_block: Option<u64>,
    /// `store.durability`: `"full"` (the default: a token is sent only once its record
    /// is committed) or `"none"`: DEVELOPMENT ONLY, accepted only with `--dev`; tokens are
    /// sent without being logged. It exists so that benchmarks can measure what the log
    /// costs (`hanko-bench tsa --log off`).
    pub durability: Option<String>,
}

/// `[http]`: admission control of the signing routes (`POST /tsa`, `POST /`); see
/// `http/limits.rs`. A request refused here gets an HTTP error with `Retry-After` before
/// any work is done; one admitted gets a TimeStampResp whatever happens next.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// `http.max_in_flight`: signing requests served at once; one more is refused at once
    /// with 503 and `Retry-After: 1`, never queued. Default `hsm.workers +
    /// hsm.queue_depth` (what one key's signing pool can hold: beyond it the pool would
    /// answer `Busy`, a systemFailure, after the request was read and decoded).
    pub max_in_flight: Option<usize>,
    /// `http.rate_limit_per_sec`: signing requests per second per client (peer IP address;
    /// IPv6 by /64; never a forwarded header). Over it: 429 with `Retry-After`. Unset or
    /// 0: off (the default; `max_in_flight` still bounds the load).
    pub rate_limit_per_sec: Option<u32>,
    /// `http.rate_limit_burst`: requests a client may send at once before the rate applies
    /// (default: `rate_limit_per_sec`, one second's worth).
    pub rate_limit_burst: Option<u32>,
}

/// `[log]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// `log.format`: `text` (default) or `json`. Flag `--log-format`.
    pub format: Option<LogFormat>,
    /// `log.filter`: a tracing filter such as `info,hanko_hsm=debug`. `RUST_LOG`
    /// overrides it.
    pub filter: Option<String>,
}

/// Log line format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[hsm]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HsmSection {
    /// `hsm.module`: path of the PKCS#11 library.
    pub module: Option<PathBuf>,
    /// `hsm.token_label`: the token's label.
    pub token_label: Option<String>,
    /// `hsm.softhsm2_conf`: when set, `SOFTHSM2_CONF` is pointed at this file before the
    /// module is loaded (SoftHSM only).
    pub softhsm2_conf: Option<PathBuf>,
    /// `hsm.workers`: signing threads (one PKCS#11 session each) per key.
    pub workers: Option<usize>,
    /// `hsm.queue_depth`: signatures that may wait per key; beyond that the pool answers
    /// `Busy` at once (a TSA request then gets systemFailure; `http.max_in_flight`
    /// refuses with 503 before it comes to that).
    pub queue_depth: Option<usize>,
    /// `hsm.call_timeout_ms`: longest single `C_Sign` before its worker is abandoned.
    pub call_timeout_ms: Option<u64>,
    /// `hsm.verify_after_sign`: check each signature in software before using it.
    pub verify_after_sign: Option<bool>,
}

/// What a key is for; decides which certificate checks apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyUsage {
    /// A TSA (TSU) key: RFC 3161 tokens. Certificate checked per CONFORMANCE 31-32.
    Tsa,
    /// An organisational e-seal key.
    Seal,
}

impl KeyUsage {
    /// `tsa` or `seal`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tsa => "tsa",
            Self::Seal => "seal",
        }
    }
}

/// `[[keys]]`: one signing key in the token and its certificate chain.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySection {
    /// `keys.label`: the key's `CKA_LABEL` in the token.
    pub label: String,
    /// `keys.usage`: `tsa` or `seal`.
    pub usage: KeyUsage,
    /// `keys.algorithm`: e.g. `rsa-pkcs1-sha256`, `rsa-pss-sha256`, `ecdsa-sha256`.
    pub algorithm: String,
    /// `keys.chain`: PEM file, the key's certificate first, then its issuers (the root
    /// may be left out). Relative to `data_dir`.
    pub chain: PathBuf,
}

/// Flags given on the command line; each overrides its config key.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--dev` (only ever turns dev mode on).
    pub dev: bool,
    /// `--log-format`.
    pub log_format: Option<LogFormat>,
    /// `--database-url` (or `HANKO_DATABASE_URL`).
    pub database_url: Option<String>,
}

/// The time-stamp authority's settings, resolved.
#[derive(Clone, Debug)]
pub struct TsaSettings {
    /// The profile.
    pub profile: hanko_tsa::TsaConfig,
    /// Label of the active TSU key of each policy (every accepted policy has one).
    pub units: Vec<(hanko_tsa::PolicyId, String)>,
    /// Serial counter name.
    pub serial_counter: String,
    /// Clock settle time after a jump.
    pub clock_settle: Duration,
    /// Where the clock's quality comes from (`clock.source`).
    pub clock_source: crate::clock::ClockSourceConfig,
}

/// `[http]`, resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpSettings {
    /// Signing requests served at once (at least 1).
    pub max_in_flight: usize,
    /// The per-client rate limit, if on.
    pub rate_limit: Option<RateLimit>,
}

/// A per-client rate: `per_sec` requests per second, `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_sec: std::num::NonZeroU32,
    /// Requests allowed at once.
    pub burst: std::num::NonZeroU32,
}

/// The issuance log's settings, resolved.
#[derive(Clone, Debug)]
pub struct StoreSettings {
    /// Database URL (may hold a password: never log it unredacted).
    pub database_url: String,
    /// Store options.
    pub options: hanko_store::StoreOptions,
    /// Serials reserved per round trip.
    pub serial_block: u64,
    /// Whether granted tokens are logged before they are sent.
    pub durability: Durability,
}

/// `store.durability`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Every granted token is committed to the log before it is sent (the only
    /// production setting).
    Full,
    /// Tokens are not logged at all. Development and benchmarks only (`--dev`).
    None,
}

/// One key to load, resolved.
#[derive(Clone, Debug)]
pub struct KeySpec {
    /// `CKA_LABEL`.
    pub label: String,
    /// TSA or seal.
    pub usage: KeyUsage,
    /// The signature algorithm.
    pub algorithm: SignatureAlgorithm,
    /// Absolute (or data-dir-relative resolved) path of the PEM chain.
    pub chain: PathBuf,
}

/// The checked configuration the server runs with.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The data directory.
    pub data_dir: PathBuf,
    /// Development mode.
    pub dev: bool,
    /// Shutdown drain limit.
    pub drain_timeout: Duration,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter (before `RUST_LOG`).
    pub log_filter: String,
    /// Module and token.
    pub module: ModuleConfig,
    /// `SOFTHSM2_CONF` to set, if any.
    pub softhsm2_conf: Option<PathBuf>,
    /// Signing pool settings, per key.
    pub pool: PoolConfig,
    /// Admission control of the signing routes.
    pub http: HttpSettings,
    /// Keys to load.
    pub keys: Vec<KeySpec>,
    /// The TSA, when a TSA key is configured.
    pub tsa: Option<TsaSettings>,
    /// The issuance log.
    pub store: StoreSettings,
    /// API keys for `/api/v1/...`.
    pub api_keys: crate::auth::ApiKeys,
}

impl FileConfig {
    /// Reads and parses a TOML file.
    pub fn load(path: &Path) -> anyhow::Result<FileConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("config file {}", path.display()))
    }

    /// Applies the flags and defaults and validates everything.
    pub fn resolve(self, o: &Overrides) -> anyhow::Result<Config> {
        let api_keys = crate::auth::ApiKeys::from_config(&self.api_keys)?;
        let dev = o.dev || self.dev.unwrap_or(false);
        let listen = match o.listen.or(self.listen) {
            Some(a) => a,
            None => DEFAULT_LISTEN.parse().context("default listen address")?,
        };
        let data_dir = o
            .data_dir
            .clone()
            .or(self.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let log_format = o.log_format.or(self.log.format).unwrap_or_default();
        let log_filter = self.log.filter.unwrap_or_else(|| "info".to_owned());

        let defaults = PoolConfig::default();
        let h = self.hsm;
        let pool = PoolConfig {
            workers: h.workers.unwrap_or(defaults.workers),
            queue_depth: h.queue_depth.unwrap_or(defaults.queue_depth),
            call_timeout: h
                .call_timeout_ms
                .map(Duration::from_millis)
                .unwrap_or(defaults.call_timeout),
            verify_after_sign: h.verify_after_sign.unwrap_or(defaults.verify_after_sign),
        };
        if pool.workers == 0 || pool.queue_depth == 0 || pool.call_timeout.is_zero() {
            bail!("hsm.workers, hsm.queue_depth and hsm.call_timeout_ms must be greater than 0");
        }
        let http = resolve_http(&self.http, &pool)?;
        let token_label = match (h.token_label, dev) {
            (Some(l), _) => l,
            (None, true) => DEV_TOKEN_LABEL.to_owned(),
            (None, false) => bail!("hsm.token_label is not set"),
        };
        let module_path = match (h.module, dev) {
            (Some(m), _) => m,
            (None, true) => PathBuf::from(DEFAULT_MODULE),
            (None, false) => bail!("hsm.module is not set (e.g. {DEFAULT_MODULE})"),
        };

        let mut keys = Vec::new();
        for k in self.keys {
            let algorithm = SignatureAlgorithm::from_name(&k.algorithm).with_context(|| {
                format!(
                    "key \"{}\": unknown algorithm \"{}\" (rsa-pkcs1-sha256, rsa-pss-sha256, ecdsa-sha256, ecdsa-sha384, ed25519, ...)",
                    k.label, k.algorithm
                )
            })?;
            if keys.iter().any(|s: &KeySpec| s.label == k.label) {
                bail!("key \"{}\" is configured twice", k.label);
            }
            let chain = if k.chain.is_absolute() {
                k.chain
            } else {
                data_dir.join(k.chain)
            };
            keys.push(KeySpec {
                label: k.label,
                usage: k.usage,
                algorithm,
                chain,
            });
        }
        if keys.is_empty() {
            bail!("no [[keys]] configured: Hanko has nothing to sign with");
        }
        let tsa = resolve_tsa(self.tsa, self.clock, &keys)?;
        let store = resolve_store(self.store, o, &data_dir)?;
        if store.durability == Durability::None && !dev {
            bail!(
                "store.durability = \"none\" (tokens not logged) is accepted only with --dev; \
                 production always logs every token before sending it"
            );
        }
        Ok(Config {
            listen,
            data_dir,
            dev,
            drain_timeout: Duration::from_millis(self.drain_timeout_ms.unwrap_or(10_000)),
            log_format,
            log_filter,
            module: ModuleConfig {
                module_path,
                token_label,
            },
            softhsm2_conf: h.softhsm2_conf,
            pool,
            http,
            keys,
            tsa,
            store,
            api_keys,
        })
    }

    /// The data directory and the issuance log's settings only, for tools that read the
    /// log (`hanko log ...`): no HSM, key or TSA setting is needed or checked.
    pub fn resolve_store_only(self, o: &Overrides) -> anyhow::Result<(PathBuf, StoreSettings)> {
        let data_dir = o
            .data_dir
            .clone()
            .or(self.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let store = resolve_store(self.store, o, &data_dir)?;
        Ok((data_dir, store))
    }
}

fn resolve_http(h: &HttpSection, pool: &PoolConfig) -> anyhow::Result<HttpSettings> {
    use std::num::NonZeroU32;
    let max_in_flight = match h.max_in_flight {
        Some(0) => bail!("http.max_in_flight must be greater than 0"),
        Some(n) => n,
        None => pool.workers.saturating_add(pool.queue_depth),
    };
    let rate_limit = match h.rate_limit_per_sec.and_then(NonZeroU32::new) {
        None => {
            if h.rate_limit_burst.is_some() {
                bail!("http.rate_limit_burst is set but http.rate_limit_per_sec is not");
            }
            None
        }
        Some(per_sec) => {
            let burst = match h.rate_limit_burst {
                None => per_sec,
                Some(b) => {
                    NonZeroU32::new(b).context("http.rate_limit_burst must be greater than 0")?
                }
            };
            Some(RateLimit { per_sec, burst })
        }
    };
    Ok(HttpSettings {
        max_in_flight,
        rate_limit,
    })
}

fn resolve_tsa(
    t: TsaSection,
    c: ClockSection,
    keys: &[KeySpec],
) -> anyhow::Result<Option<TsaSettings>> {
    use hanko_tsa::PolicyId;
    let tsa_keys: Vec<&KeySpec> = keys.iter().filter(|k| k.usage == KeyUsage::Tsa).collect();
    let key = match (&t.key, tsa_keys.first()) {
        (Some(label), _) => {
            if !tsa_keys.iter().any(|k| &k.label == label) {
                bail!("tsa.key = \"{label}\" is not a [[keys]] entry with usage = \"tsa\"");
            }
            label.clone()
        }
        (None, Some(first)) => first.label.clone(),
        (None, None) => return Ok(None),
    };
    let mut profile = hanko_tsa::TsaConfig::default();
    if let Some(p) = t.default_policy {
        profile.default_policy = p
            .parse::<PolicyId>()
            .map_err(|e| anyhow::anyhow!("tsa.default_policy \"{p}\": {e}"))?;
    }
    for p in t.accepted_policies.unwrap_or_default() {
        let id = p
            .parse::<PolicyId>()
            .map_err(|e| anyhow::anyhow!("tsa.accepted_policies \"{p}\": {e}"))?;
        profile.accepted_policies.push(id);
    }
    if let Some(hashes) = t.accepted_hashes {
        profile.accepted_hashes = hashes
            .iter()
            .map(|h| {
                hanko_pki::HashAlgorithm::from_name(h).with_context(|| {
                    format!("tsa.accepted_hashes: \"{h}\" is not sha256, sha384 or sha512")
                })
            })
            .collect::<anyhow::Result<_>>()?;
    }
    let accuracy_ms = t.accuracy_ms.unwrap_or(1000);
    if !(1..=1000).contains(&accuracy_ms) {
        bail!("tsa.accuracy_ms must be between 1 and 1000 (CONFORMANCE 27), got {accuracy_ms}");
    }
    profile.accuracy = Duration::from_millis(accuracy_ms);
    profile.include_tsa_name = t.include_tsa_name.unwrap_or(false);
    profile.qualified = t.qualified.unwrap_or(false);
    profile
        .validate()
        .map_err(|e| anyhow::anyhow!("[tsa]: {e}"))?;
    let policy_keys = t.policy_keys.unwrap_or_default();
    for (oid, label) in &policy_keys {
        let id = oid
            .parse::<PolicyId>()
            .map_err(|e| anyhow::anyhow!("tsa.policy_keys \"{oid}\": {e}"))?;
        if !profile.accepts_policy(&id) {
            bail!(
                "tsa.policy_keys names policy {oid}, which is not the default policy nor in tsa.accepted_policies"
            );
        }
        if !tsa_keys.iter().any(|k| &k.label == label) {
            bail!("tsa.policy_keys: \"{label}\" is not a [[keys]] entry with usage = \"tsa\"");
        }
    }
    let units = profile
        .policies()
        .into_iter()
        .map(|p| {
            let label = policy_keys.get(&p.to_string()).unwrap_or(&key).clone();
            (p, label)
        })
        .collect();
    let clock_source =
        crate::clock::ClockSourceConfig::from_settings(c.source.as_deref(), c.chronyc, c.poll_ms)?;
    Ok(Some(TsaSettings {
        profile,
        units,
        serial_counter: t.serial_counter.unwrap_or_else(|| "tsa".to_owned()),
        clock_settle: Duration::from_millis(c.settle_ms.unwrap_or(60_000)),
        clock_source,
    }))
}

fn resolve_store(s: StoreSection, o: &Overrides, data_dir: &Path) -> anyhow::Result<StoreSettings> {
    let database_url = match o.database_url.clone().or(s.database_url) {
        Some(url) => url,
        None => format!(
            "sqlite://{}?mode=rwc",
            data_dir.join(hanko_store::SQLITE_FILE_NAME).display()
        ),
    };
    let node_id = match s.node_id {
        Some(n) => n,
        None => default_node_id(),
    };
    let mut options = hanko_store::StoreOptions::with_node_id(node_id);
    // The server passes its signing pools as the log's upstream (lib.rs), so the linger is
    // an upper bound that is only reached while the signers are backlogged.
    options.linger = DEFAULT_LINGER;
    if let Some(k) = s.keep_tokens {
        options.keep_tokens = k;
    }
    if let Some(b) = s.max_batch {
        if b == 0 {
            bail!("store.max_batch must be greater than 0");
        }
        options.max_batch = b;
    }
    if let Some(ms) = s.linger_ms {
        if !(0.0..=100.0).contains(&ms) {
            bail!("store.linger_ms must be between 0 and 100, got {ms}");
        }
        options.linger = Duration::from_secs_f64(ms / 1000.0);
    }
    let serial_block = s.serial_block.unwrap_or(hanko_store::DEFAULT_BLOCK);
    if serial_block == 0 || serial_block > hanko_store::MAX_BLOCK {
        bail!(
            "store.serial_block must be between 1 and {}",
            hanko_store::MAX_BLOCK
        );
    }
    let durability = match s.durability.as_deref() {
        None | Some("full") => Durability::Full,
        Some("none") => Durability::None,
        Some(other) => {
            bail!("store.durability = \"{other}\": expected \"full\" or \"none\" (dev only)")
        }
    };
    Ok(StoreSettings {
        database_url,
        options,
        serial_block,
        durability,
    })
}

/// The host name, as the default node id (one log, several nodes: each must differ).
fn default_node_id() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "node-1".to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn example_config_parses_and_flags_win() {
        let text = include_str!("../../ops/hanko.example.toml");
        let raw: FileConfig = toml::from_str(text).unwrap();
        let cfg = raw
            .clone()
            .resolve(&Overrides {
                listen: Some("0.0.0.0:8080".parse().unwrap()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(cfg.listen.to_string(), "0.0.0.0:8080");
        assert!(!cfg.dev);
        assert!(!cfg.keys.is_empty());
        let cfg = raw.resolve(&Overrides::default()).unwrap();
        assert_ne!(cfg.listen.to_string(), "0.0.0.0:8080");
    }

    #[test]
    fn durability_none_only_in_dev() {
        let text = "[hsm]\nmodule = \"/x.so\"\ntoken_label = \"t\"\n\
                    [[keys]]\nlabel = \"k\"\nusage = \"tsa\"\nalgorithm = \"ecdsa-sha256\"\nchain = \"k.pem\"\n\
                    [store]\ndurability = \"none\"\n";
        let raw: FileConfig = toml::from_str(text).unwrap();
        let e = raw.clone().resolve(&Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("only with --dev"), "{e}");
        let dev = Overrides {
            dev: true,
            ..Default::default()
        };
        let cfg = raw.resolve(&dev).unwrap();
        assert_eq!(cfg.store.durability, Durability::None);
        let raw: FileConfig = toml::from_str(&text.replace("\"none\"", "\"fast\"")).unwrap();
        assert!(raw.resolve(&dev).is_err());
    }

    #[test]
    fn linger_ms_is_bounded() {
        let base = "[hsm]\nmodule = \"/x.so\"\ntoken_label = \"t\"\n\
                    [[keys]]\nlabel = \"k\"\nusage = \"tsa\"\nalgorithm = \"ecdsa-sha256\"\nchain = \"k.pem\"\n\
                    [store]\n";
        let cfg = |linger: &str| {
            toml::from_str::<FileConfig>(&format!("{base}linger_ms = {linger}\n"))
                .unwrap()
                .resolve(&Overrides::default())
        };
        let ok = cfg("2.5").unwrap();
        assert_eq!(ok.store.options.linger, Duration::from_micros(2500));
        let unset = toml::from_str::<FileConfig>(base)
            .unwrap()
            .resolve(&Overrides::default())
            .unwrap();
        assert_eq!(unset.store.options.linger, DEFAULT_LINGER);
        assert_eq!(cfg("0").unwrap().store.options.linger, Duration::ZERO);
        assert!(cfg("150").is_err());
        assert!(cfg("-1.0").is_err());
    }

    #[test]
    fn http_limits_default_to_the_pool_and_are_checked() {
        let base = "[hsm]\nmodule = \"/x.so\"\ntoken_label = \"t\"\nworkers = 3\nqueue_depth = 40\n\
                    [[keys]]\nlabel = \"k\"\nusage = \"tsa\"\nalgorithm = \"ecdsa-sha256\"\nchain = \"k.pem\"\n";
        let cfg = |http: &str| {
            toml::from_str::<FileConfig>(&format!("{base}[http]\n{http}"))
                .unwrap()
                .resolve(&Overrides::default())
        };
        let c = cfg("").unwrap();
        assert_eq!(c.http.max_in_flight, 43, "hsm.workers + hsm.queue_depth");
        assert_eq!(c.http.rate_limit, None, "off by default");
        let c = cfg("max_in_flight = 8\nrate_limit_per_sec = 50\n").unwrap();
        assert_eq!(c.http.max_in_flight, 8);
        let r = c.http.rate_limit.unwrap();
        assert_eq!((r.per_sec.get(), r.burst.get()), (50, 50));
        let r = cfg("rate_limit_per_sec = 5\nrate_limit_burst = 20\n")
            .unwrap()
            .http
            .rate_limit
            .unwrap();
        assert_eq!((r.per_sec.get(), r.burst.get()), (5, 20));
        assert_eq!(
            cfg("rate_limit_per_sec = 0\n").unwrap().http.rate_limit,
            None
        );
        assert!(cfg("max_in_flight = 0\n").is_err());
        assert!(cfg("rate_limit_per_sec = 5\nrate_limit_burst = 0\n").is_err());
        assert!(cfg("rate_limit_burst = 5\n").is_err());
        let typo = toml::from_str::<FileConfig>(&format!("{base}[http]\nmax_inflight = 5\n"));
        assert!(typo.is_err(), "a typo is refused");
    }

    #[test]
    fn typos_and_missing_keys_are_refused() {
        let e = toml::from_str::<FileConfig>("lisen = \"127.0.0.1:1\"").unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
        let raw: FileConfig = toml::from_str("[hsm]\nmodule = \"/x.so\"\n").unwrap();
        let e = raw.resolve(&Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("token_label"), "{e}");
        let raw: FileConfig =
            toml::from_str("[hsm]\nmodule = \"/x.so\"\ntoken_label = \"t\"\n").unwrap();
        let e = raw.resolve(&Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("no [[keys]]"), "{e}");
    }
}
