//! Resolution: command-line flags over the TOML file over defaults, checked once.
//!
//! [`FileConfig::resolve`] is the only place a configuration value is validated, so a
//! flag and its config key can never be checked differently. Each section has its own
//! step (`resolve_http`, `resolve_tsa`, `resolve_store`, ...).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use hanko_hsm::{ModuleConfig, PoolConfig};
use hanko_pki::SignatureAlgorithm;

use super::{
    ClockSection, Config, CscInfo, CscSection, DEFAULT_BODY_TIMEOUT, DEFAULT_CSC_MAX_HASHES,
    DEFAULT_CSC_SAD_LIFETIME, DEFAULT_DATA_DIR, DEFAULT_HEADER_TIMEOUT, DEFAULT_KEEPALIVE_TIMEOUT,
    DEFAULT_LINGER, DEFAULT_LISTEN, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_SOURCE,
    DEFAULT_MAX_SEAL_BODY_BYTES, DEFAULT_MAX_SEAL_PDF_BODY_BYTES, DEFAULT_MODULE, DEV_TOKEN_LABEL,
    Durability, FileConfig, HsmSection, HttpSection, HttpSettings, KeySection, KeySpec, KeyUsage,
    LogFormat, MAX_SEAL_BODY_BYTES_LIMIT, RateLimit, StoreSection, StoreSettings, TsaSection,
    TsaSettings,
};

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
    /// `--tls-listen`.
    pub tls_listen: Option<SocketAddr>,
    /// Not a flag: the dev TLS certificate chain and key that `--dev` made, used when
    /// `[tls]` names no files of its own.
    pub dev_tls_files: Option<(PathBuf, PathBuf)>,
}

impl FileConfig {
    /// Applies the flags and defaults and validates everything.
    pub fn resolve(self, o: &Overrides) -> anyhow::Result<Config> {
        let clients = crate::auth::Clients::from_config(
            &self.clients,
            &self.api_keys,
            self.tsa.public.unwrap_or(true),
        )?;
        let dev = o.dev || self.dev.unwrap_or(false);
        let listen = match o.listen.or(self.listen) {
            Some(a) => a,
            None => DEFAULT_LISTEN.parse().context("default listen address")?,
        };
        let data_dir = resolve_data_dir(o, self.data_dir);
        let log_format = o.log_format.or(self.log.format).unwrap_or_default();
        let log_filter = self.log.filter.unwrap_or_else(|| "info".to_owned());
        let pool = resolve_pool(&self.hsm)?;
        let http = resolve_http(&self.http, &pool)?;
        let module = resolve_module(&self.hsm, dev)?;
        let keys = resolve_keys(self.keys, &data_dir)?;
        let seal_font = self
            .seal
            .font
            .clone()
            .map(|p| super::seal::under(&data_dir, p));
        let seal_tsa = super::seal::resolve_external_tsa(self.seal, &data_dir)?;
        let verify = super::verify::resolve_verify(self.verify, &data_dir)?;
        let tls =
            super::tls::resolve_tls(self.tls, o.tls_listen, &data_dir, o.dev_tls_files.clone())?;
        let seal_keys: Vec<&str> = keys
            .iter()
            .filter(|k| k.usage == KeyUsage::Seal)
            .map(|k| k.label.as_str())
            .collect();
        clients.check_credentials_exist(&seal_keys)?;
        let tsa = resolve_tsa(self.tsa, self.clock, &keys)?;
        let anchor = super::anchor::resolve_anchor(self.anchor, &data_dir, dev, tsa.is_some())?;
        let archive = super::anchor::resolve_archive(&self.archive)?;
        let renewal = super::renewal::resolve_renewal(self.renewal, &data_dir)?;
        let node_id = resolve_node_id(self.store.node_id.clone(), read_host_name(), dev)?;
        let store = resolve_store(self.store, o, &data_dir, node_id)?;
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
            module,
            softhsm2_conf: self.hsm.softhsm2_conf,
            pool,
            http,
            keys,
            tsa,
            store,
            clients,
            csc: resolve_csc(self.csc)?,
            seal_tsa,
            seal_font,
            tls,
            verify,
            anchor,
            archive,
            renewal,
        })
    }

    /// The data directory and the issuance log's settings only, for tools that read the
    /// log (`hanko log ...`): no HSM, key or TSA setting is needed or checked, and no node
    /// id either (a read-only open writes no record; see [`READ_ONLY_NODE_ID`]).
    pub fn resolve_store_only(self, o: &Overrides) -> anyhow::Result<(PathBuf, StoreSettings)> {
        let data_dir = resolve_data_dir(o, self.data_dir);
        let node_id = self
            .store
            .node_id
            .clone()
            .unwrap_or_else(|| READ_ONLY_NODE_ID.to_owned());
        let store = resolve_store(self.store, o, &data_dir, node_id)?;
        Ok((data_dir, store))
    }
}

/// The node id of a read-only open of the log (`hanko log ...`) when `store.node_id` is
/// not set: it is never written anywhere, since such an open appends nothing.
pub const READ_ONLY_NODE_ID: &str = "read-only";

/// The node id `--dev` falls back to when neither `store.node_id` nor a host name is
/// there: a dev server is one node on its own log.
pub const DEV_NODE_ID: &str = "hanko-dev";

fn resolve_data_dir(o: &Overrides, file: Option<PathBuf>) -> PathBuf {
    o.data_dir
        .clone()
        .or(file)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
}

/// `[csc]`: each value printable text of at most 255 characters; `region` two capital
/// letters (ISO 3166-1 alpha-2) or empty; `lang` a language tag (letters, digits and
/// hyphens, starting with a letter).
fn resolve_csc(c: CscSection) -> anyhow::Result<CscInfo> {
    let d = CscInfo::default();
    let text = |key: &str, v: Option<String>, default: String| -> anyhow::Result<String> {
        let v = v.unwrap_or(default);
        if v.chars().count() > 255 || v.chars().any(char::is_control) {
            bail!("csc.{key} must be at most 255 characters, without control characters");
        }
        Ok(v)
    };
    let info = CscInfo {
        name: text("name", c.name, d.name)?,
        logo: text("logo", c.logo, d.logo)?,
        region: text("region", c.region, d.region)?,
        lang: text("lang", c.lang, d.lang)?,
        description: text("description", c.description, d.description)?,
    };
    if !(info.region.is_empty()
        || (info.region.len() == 2 && info.region.bytes().all(|b| b.is_ascii_uppercase())))
    {
        bail!(
            "csc.region = {:?}: an ISO 3166-1 alpha-2 code such as \"JP\", or empty",
            info.region
        );
    }
    let tag_ok = info.lang.len() <= 35
        && info.lang.starts_with(|c: char| c.is_ascii_alphabetic())
        && info
            .lang
            .split('-')
            .all(|p| !p.is_empty() && p.len() <= 8 && p.bytes().all(|b| b.is_ascii_alphanumeric()));
    if !tag_ok {
        bail!(
            "csc.lang = {:?}: a language tag such as \"en-US\" or \"ja-JP\"",
            info.lang
        );
    }
    Ok(info)
}

fn resolve_pool(h: &HsmSection) -> anyhow::Result<PoolConfig> {
    let defaults = PoolConfig::default();
    let pool = PoolConfig {
        workers: h.workers.unwrap_or(defaults.workers),
        queue_depth: h.queue_depth.unwrap_or(defaults.queue_depth),
        call_timeout: h
            .call_timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(defaults.call_timeout),
        verify_after_sign: h.verify_after_sign.unwrap_or(defaults.verify_after_sign),
        bulk_share: h.bulk_share.unwrap_or(defaults.bulk_share),
    };
    if pool.workers == 0 || pool.queue_depth == 0 || pool.call_timeout.is_zero() {
        bail!("hsm.workers, hsm.queue_depth and hsm.call_timeout_ms must be greater than 0");
    }
    if !(0.0..=1.0).contains(&pool.bulk_share) {
        bail!(
            "hsm.bulk_share = {}: a share of the workers, from 0.0 to 1.0",
            pool.bulk_share
        );
    }
    Ok(pool)
}

/// `hsm.module` and `hsm.token_label`: required in production; `--dev` defaults to
/// SoftHSM and the dev token.
fn resolve_module(h: &HsmSection, dev: bool) -> anyhow::Result<ModuleConfig> {
    let token_label = match (&h.token_label, dev) {
        (Some(l), _) => l.clone(),
        (None, true) => DEV_TOKEN_LABEL.to_owned(),
        (None, false) => bail!("hsm.token_label is not set"),
    };
    let module_path = match (&h.module, dev) {
        (Some(m), _) => m.clone(),
        (None, true) => PathBuf::from(DEFAULT_MODULE),
        (None, false) => bail!("hsm.module is not set (e.g. {DEFAULT_MODULE})"),
    };
    Ok(ModuleConfig {
        module_path,
        token_label,
    })
}

fn resolve_keys(sections: Vec<KeySection>, data_dir: &Path) -> anyhow::Result<Vec<KeySpec>> {
    let mut keys = Vec::new();
    for k in sections {
        let algorithm = SignatureAlgorithm::from_name(&k.algorithm).with_context(|| {
            format!(
                "key \"{}\": unknown algorithm \"{}\" (rsa-pkcs1-sha256, rsa-pss-sha256, ecdsa-sha256, ecdsa-sha384, ed25519, ...)",
                k.label, k.algorithm
            )
        })?;
        if keys.iter().any(|s: &KeySpec| s.label == k.label) {
            bail!("key \"{}\" is configured twice", k.label);
        }
        let succession = super::rollover::parse(&k)?;
        let chain = if k.chain.is_absolute() {
            k.chain
        } else {
            data_dir.join(k.chain)
        };
        let seal = match (k.usage, k.seal) {
            (KeyUsage::Seal, Some(s)) => {
                Some(super::seal::resolve_metadata(&k.label, s, data_dir)?)
            }
            (KeyUsage::Seal, None) => Some(hanko_seal::SealMetadata::default()),
            (KeyUsage::Tsa, Some(_)) => bail!(
                "key \"{}\": [keys.seal] is only for keys with usage = \"seal\"",
                k.label
            ),
            (KeyUsage::Tsa, None) => None,
        };
        keys.push(KeySpec {
            label: k.label,
            usage: k.usage,
            algorithm,
            chain,
            seal,
            allow_rsa_2048: k.allow_rsa_2048,
            allow_unreported_protection: k.allow_unreported_protection,
            succession,
        });
    }
    if keys.is_empty() {
        bail!("no [[keys]] configured: Hanko has nothing to sign with");
    }
    super::rollover::check(&keys)?;
    Ok(keys)
}

/// `http.threads`, checked: `None` is one runtime thread per core.
pub(crate) fn runtime_threads(h: &HttpSection) -> anyhow::Result<Option<usize>> {
    match h.threads {
        Some(n) if !(1..=1024).contains(&n) => {
            bail!("http.threads = {n} is out of range (1..=1024)")
        }
        other => Ok(other),
    }
}

fn resolve_http(h: &HttpSection, pool: &PoolConfig) -> anyhow::Result<HttpSettings> {
    use std::num::NonZeroU32;
    let threads = runtime_threads(h)?;
    let max_in_flight = match h.max_in_flight {
        Some(0) => bail!("http.max_in_flight must be greater than 0"),
        Some(n) => n,
        // The pool's queue alone holds a job for every admitted request: a worker that
        // has just answered one is not holding the next yet, so the workers are no room.
        None => pool.queue_depth,
    };
    let max_in_flight_bulk = match h.max_in_flight_bulk {
        Some(0) => bail!("http.max_in_flight_bulk must be greater than 0"),
        Some(n) => n,
        None => pool.queue_depth,
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
    let millis = |key: &str, v: Option<u64>, default: Duration, max_ms: u64| match v {
        None => Ok(default),
        Some(ms) if (100..=max_ms).contains(&ms) => Ok(Duration::from_millis(ms)),
        Some(ms) => bail!("http.{key} = {ms} is out of range (100..={max_ms})"),
    };
    let header_timeout = millis(
        "header_timeout_ms",
        h.header_timeout_ms,
        DEFAULT_HEADER_TIMEOUT,
        300_000,
    )?;
    let body_timeout = millis(
        "body_timeout_ms",
        h.body_timeout_ms,
        DEFAULT_BODY_TIMEOUT,
        300_000,
    )?;
    let keepalive_timeout = millis(
        "keepalive_timeout_ms",
        h.keepalive_timeout_ms,
        DEFAULT_KEEPALIVE_TIMEOUT,
        3_600_000,
    )?;
    let max_connections = h.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS);
    if !(1..=1_000_000).contains(&max_connections) {
        bail!("http.max_connections = {max_connections} is out of range (1..=1000000)");
    }
    let max_connections_per_source = h
        .max_connections_per_source
        .unwrap_or(DEFAULT_MAX_CONNECTIONS_PER_SOURCE.min(max_connections));
    if !(1..=max_connections).contains(&max_connections_per_source) {
        bail!(
            "http.max_connections_per_source = {max_connections_per_source} is out of range \
             (1..=http.max_connections = {max_connections})"
        );
    }
    let max_seal_body_bytes = h.max_seal_body_bytes.unwrap_or(DEFAULT_MAX_SEAL_BODY_BYTES);
    if !(1..=MAX_SEAL_BODY_BYTES_LIMIT).contains(&max_seal_body_bytes) {
        bail!(
            "http.max_seal_body_bytes = {max_seal_body_bytes} is out of range \
             (1..={MAX_SEAL_BODY_BYTES_LIMIT})"
        );
    }
    let max_seal_pdf_body_bytes = h
        .max_seal_pdf_body_bytes
        .unwrap_or(DEFAULT_MAX_SEAL_PDF_BODY_BYTES);
    if !(1..=MAX_SEAL_BODY_BYTES_LIMIT).contains(&max_seal_pdf_body_bytes) {
        bail!(
            "http.max_seal_pdf_body_bytes = {max_seal_pdf_body_bytes} is out of range \
             (1..={MAX_SEAL_BODY_BYTES_LIMIT})"
        );
    }
    let csc_sad_lifetime_secs = h
        .csc_sad_lifetime_secs
        .unwrap_or(DEFAULT_CSC_SAD_LIFETIME.as_secs());
    if !(1..=3600).contains(&csc_sad_lifetime_secs) {
        bail!("http.csc_sad_lifetime_secs = {csc_sad_lifetime_secs} is out of range (1..=3600)");
    }
    let csc_max_hashes = h.csc_max_hashes.unwrap_or(DEFAULT_CSC_MAX_HASHES);
    if !(1..=1024).contains(&csc_max_hashes) {
        bail!("http.csc_max_hashes = {csc_max_hashes} is out of range (1..=1024)");
    }
    Ok(HttpSettings {
        max_in_flight,
        max_in_flight_bulk,
        max_seal_body_bytes,
        max_seal_pdf_body_bytes,
        csc_sad_lifetime: Duration::from_secs(csc_sad_lifetime_secs),
        csc_max_hashes,
        rate_limit,
        header_timeout,
        body_timeout,
        keepalive_timeout,
        max_connections,
        max_connections_per_source,
        threads,
    })
}

fn resolve_tsa(
    t: TsaSection,
    c: ClockSection,
    keys: &[KeySpec],
) -> anyhow::Result<Option<TsaSettings>> {
    use hanko_tsa::PolicyId;
    let tsa_keys: Vec<&KeySpec> = keys.iter().filter(|k| k.usage == KeyUsage::Tsa).collect();
    // A successor takes over at its time (`keys.succeeds`); [tsa] names the first key.
    let names_a_successor = |what: &str, label: &str| -> anyhow::Result<()> {
        match tsa_keys
            .iter()
            .find(|k| k.label == label)
            .and_then(|k| k.succession.as_ref())
        {
            Some(s) => bail!(
                "{what} = \"{label}\" names a key that succeeds \"{}\": name the first key of \
                 the succession; \"{label}\" takes over at its keys.activate_at",
                s.predecessor
            ),
            None => Ok(()),
        }
    };
    let first = tsa_keys.iter().find(|k| k.succession.is_none());
    let key = match (&t.key, first) {
        (Some(label), _) => {
            if !tsa_keys.iter().any(|k| &k.label == label) {
                bail!("tsa.key = \"{label}\" is not a [[keys]] entry with usage = \"tsa\"");
            }
            names_a_successor("tsa.key", label)?;
            label.clone()
        }
        (None, Some(first)) => first.label.clone(),
        (None, None) => return Ok(None),
    };
    let profile = resolve_tsa_profile(&t)?;
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
        names_a_successor(&format!("tsa.policy_keys \"{oid}\""), label)?;
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

/// The `[tsa]` profile: policies, hashes, accuracy and token options, checked.
fn resolve_tsa_profile(t: &TsaSection) -> anyhow::Result<hanko_tsa::TsaConfig> {
    use hanko_tsa::PolicyId;
    let mut profile = hanko_tsa::TsaConfig::default();
    if let Some(p) = &t.default_policy {
        profile.default_policy = p
            .parse::<PolicyId>()
            .map_err(|e| anyhow::anyhow!("tsa.default_policy \"{p}\": {e}"))?;
    }
    for p in t.accepted_policies.iter().flatten() {
        let id = p
            .parse::<PolicyId>()
            .map_err(|e| anyhow::anyhow!("tsa.accepted_policies \"{p}\": {e}"))?;
        profile.accepted_policies.push(id);
    }
    if let Some(hashes) = &t.accepted_hashes {
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
    Ok(profile)
}

fn resolve_store(
    s: StoreSection,
    o: &Overrides,
    data_dir: &Path,
    node_id: String,
) -> anyhow::Result<StoreSettings> {
    let database_url = match o.database_url.clone().or(s.database_url) {
        Some(url) => url,
        None => format!(
            "sqlite://{}?mode=rwc",
            data_dir.join(hanko_store::SQLITE_FILE_NAME).display()
        ),
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

/// This node's name in the issuance log: `store.node_id`, else the host name. Several
/// nodes may share one PostgreSQL log, and each must write under its own name, so a
/// production server with neither refuses to start rather than guess one (a guess such as
/// a fixed "node-1" would be the same on every node). `--dev` falls back to
/// [`DEV_NODE_ID`]: a dev server is alone on its log.
pub(super) fn resolve_node_id(
    configured: Option<String>,
    host_name: Option<String>,
    dev: bool,
) -> anyhow::Result<String> {
    if let Some(n) = configured {
        if n.trim().is_empty() {
            bail!("store.node_id is empty: set it to this node's unique name");
        }
        return Ok(n);
    }
    match (host_name, dev) {
        (Some(h), _) => Ok(h),
        (None, true) => Ok(DEV_NODE_ID.to_owned()),
        (None, false) => bail!(
            "no node id: store.node_id is not set and this machine has no host name \
             (/etc/hostname is missing or empty); set store.node_id to a name unique among \
             the nodes that share the issuance log"
        ),
    }
}

/// The host name from `/etc/hostname`, if it holds one.
pub(crate) fn read_host_name() -> Option<String> {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}
