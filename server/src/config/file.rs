//! The configuration file as written: every key optional, unknown keys refused.
//!
//! These types mirror the TOML one to one and check nothing but syntax; what a value
//! means and whether it is allowed is decided once, in `resolve.rs`, which turns them into
//! the checked [`super::Config`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;

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
    /// `[[clients]]`: who may call which route (only digests; see [`crate::auth`]).
    #[serde(default)]
    pub clients: Vec<crate::auth::ClientSection>,
    /// `[[api_keys]]`: the older form of API-key-only clients, still read (see
    /// [`crate::auth`]).
    #[serde(default)]
    pub api_keys: Vec<crate::auth::ApiKeySection>,
    /// `[csc]`: how the CSC API's `info` describes this service.
    #[serde(default)]
    pub csc: CscSection,
    /// `[seal]`: what all seal credentials share (the external TSA of B-T seals).
    #[serde(default)]
    pub seal: SealSection,
    /// `[tls]`: the HTTPS listener (certificate files, mTLS, reload).
    #[serde(default)]
    pub tls: super::TlsSection,
    /// `[verify]`: the recipient's verification page (trust anchors, upload limit).
    #[serde(default)]
    pub verify: super::VerifySection,
    /// `[anchor]`: Merkle anchoring of the log and its targets.
    #[serde(default)]
    pub anchor: super::AnchorSection,
    /// `[archive]`: archive systems submitting object hashes to be anchored.
    #[serde(default)]
    pub archive: super::ArchiveSection,
    /// `[renewal]`: the renewal policy of evidence records.
    #[serde(default)]
    pub renewal: super::RenewalSection,
}

/// `[csc]`: what the CSC API's `info` method (`/csc/v1/info`, `/csc/v2/info`) says of
/// this service; every key optional.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CscSection {
    /// `csc.name`: the service's name (default `Hanko`).
    pub name: Option<String>,
    /// `csc.logo`: URI of the service's logo image (default: none, `""`).
    pub logo: Option<String>,
    /// `csc.region`: ISO 3166-1 alpha-2 code of the country the service is in, e.g.
    /// `JP` (default: none, `""`).
    pub region: Option<String>,
    /// `csc.lang`: the language of `name` and `description` and of the API's answers,
    /// an RFC 5646 tag such as `en-US` or `ja-JP` (default `en-US`).
    pub lang: Option<String>,
    /// `csc.description`: a description of the service (default `Hanko organisational
    /// e-seal service`).
    pub description: Option<String>,
}

/// `[seal]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealSection {
    /// `seal.tsa_url`: an external RFC 3161 TSA (`http://...` or `https://...`) that
    /// stamps every B-T seal instead of this server's own TSA. Unset: the own TSA
    /// (`[tsa]`), in-process.
    pub tsa_url: Option<String>,
    /// `seal.tsa_tls_ca`: PEM file of the trust anchor(s) of an https `tsa_url`'s TLS
    /// server certificate. Relative to `data_dir`. Unset: the public web PKI's roots.
    pub tsa_tls_ca: Option<PathBuf>,
    /// `seal.tsa_ca`: PEM file of the external TSA's trust anchor(s); each token is then
    /// verified (signature, timeStamping purpose, chain valid at genTime) before it is
    /// embedded. Relative to `data_dir`. Unset: only the imprint and nonce are checked.
    pub tsa_ca: Option<PathBuf>,
    /// `seal.tsa_timeout_ms`: the longest one request to the external TSA may take,
    /// 1000..=60000 (default 10000).
    pub tsa_timeout_ms: Option<u64>,
    /// `seal.font`: the TrueType font of the visible seals' text (display name, date).
    /// Relative to `data_dir`. Unset: IPAex Gothic from Debian's `fonts-ipaexfont-gothic`.
    pub font: Option<PathBuf>,
}

/// `[keys.seal]`: what a seal credential (a `[[keys]]` entry with `usage = "seal"`)
/// carries beyond its key and chain.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealKeySection {
    /// `keys.seal.description`: what the credential is for (CSC `credentials/info`).
    pub description: Option<String>,
    /// `keys.seal.levels`: the levels it may make (CAdES and PAdES), `["B-B", "B-T"]` (the default).
    pub levels: Option<Vec<String>>,
    /// `keys.seal.algorithms`: the digest-signing algorithms CSC `signHash` may use,
    /// e.g. `["rsa-pss-sha256"]`. Default: every one that fits the key.
    pub algorithms: Option<Vec<String>>,
    /// `keys.seal.display_name`: the organisation's name on a visible (PDF) seal.
    pub display_name: Option<String>,
    /// `keys.seal.image`: PNG of the seal for a visible (PDF) seal, at most 1 MiB and
    /// 4096x4096 pixels. Relative to `data_dir`.
    pub image: Option<PathBuf>,
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
    /// `tsa.public`: whether `POST /tsa` serves callers without credentials (default
    /// true); `false` restricts it to `[[clients]]` with the scope `tsa`.
    pub public: Option<bool>,
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
    /// `store.node_id`: this node's name in the log, unique among the nodes that share
    /// it (default: the host name from `/etc/hostname`; without one, a production server
    /// refuses to start and `--dev` uses `hanko-dev`).
    pub node_id: Option<String>,
    /// `store.keep_tokens`: keep the issued bytes in the log (default true).
    pub keep_tokens: Option<bool>,
    /// `store.max_batch`: most records per group commit (default 256).
    pub max_batch: Option<usize>,
    /// `store.linger_ms`: the longest the log writer holds a batch smaller than
    /// `max_batch` open for more records (0..=100, fractions allowed; default 5; 0: commit
    /// at once). It holds one open only while a signing pool has at least a worker's worth
    /// of requests queued (the signers lose nothing by it), at most a quarter of the time
    /// that queue will take, and commits as soon as none has, so a lightly loaded server
    /// adds no wait. Bigger batches cost less per record. See benches/RESULTS.md for
    /// measured effects.
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
    /// with 503 and `Retry-After: 1`, never queued. Default `hsm.queue_depth`
    /// (what one key's signing pool queue holds: beyond it the pool would answer `Busy`, a
    /// systemFailure, after the request was read and decoded).
    pub max_in_flight: Option<usize>,
    /// `http.max_in_flight_bulk`: the same bound for bulk-lane requests, counted apart so
    /// that bulk traffic never takes the interactive lane's permits. Default as
    /// `http.max_in_flight`'s (`hsm.queue_depth`: each lane has its own queue in the
    /// signing pool).
    pub max_in_flight_bulk: Option<usize>,
    /// `http.max_seal_body_bytes`: largest document `POST /api/v1/seal/cades` accepts;
    /// a larger one is refused with 413 (JSON) once that many bytes arrived, or at once
    /// when its `Content-Length` says so. The document is held in memory while it is
    /// sealed, so this bounds the memory of each seal request in flight (at most
    /// `max_in_flight` of them). Default 16 MiB (16777216); 1..=1 GiB. Larger documents:
    /// hash them and seal the digest (the CSC API's `signDoc`).
    pub max_seal_body_bytes: Option<usize>,
    /// `http.max_seal_pdf_body_bytes`: largest PDF `POST /api/v1/seal/pdf` accepts; a
    /// larger one is refused with 413 (JSON). The PDF is held in memory and parsed
    /// while it is sealed (the sealed file is sent as the original bytes followed by the
    /// update, not copied). Default 64 MiB (67108864); 1..=1 GiB.
    pub max_seal_pdf_body_bytes: Option<usize>,
    /// `http.csc_sad_lifetime_secs`: how long a Signature Activation Data issued by the
    /// CSC API's `credentials/authorize` stays usable (`expiresIn`). Default 300; 1..=3600.
    pub csc_sad_lifetime_secs: Option<u64>,
    /// `http.csc_max_hashes`: most hashes one CSC `signatures/signHash` call (and one
    /// SAD's `numSignatures`) may carry; the `multisign` of `credentials/info`. Default
    /// 64; 1..=1024.
    pub csc_max_hashes: Option<usize>,
    /// `http.rate_limit_per_sec`: signing requests per second per client (peer IP address;
    /// IPv6 by /64; never a forwarded header). Over it: 429 with `Retry-After`. Unset or
    /// 0: off (the default; `max_in_flight` still bounds the load).
    pub rate_limit_per_sec: Option<u32>,
    /// `http.rate_limit_burst`: requests a client may send at once before the rate applies
    /// (default: `rate_limit_per_sec`, one second's worth).
    pub rate_limit_burst: Option<u32>,
    /// `http.header_timeout_ms`: how long a client has to send a whole request head, from
    /// its connection (or, on a kept-alive connection, from the first byte of the next
    /// request); then the connection is closed (`http/conn.rs`). Default 10 000: a head is
    /// a few hundred bytes, one round trip on any network; 10 s survives several TCP
    /// retransmissions (1 + 2 + 4 s) on a lossy link, while a client that trickles its head
    /// (slowloris) holds a connection for 10 s at most. 100..=300 000.
    pub header_timeout_ms: Option<u64>,
    /// `http.body_timeout_ms`: how long a client has to send a request body, from the end
    /// of its head; then 408 and the connection is closed. A signing request holds no
    /// admission permit while its body arrives. Default 10 000, for the same reasons as
    /// the head (a time-stamp request is under 8 KiB and usually comes in the head's
    /// segment). 100..=300 000.
    pub body_timeout_ms: Option<u64>,
    /// `http.keepalive_timeout_ms`: how long a kept-alive connection may sit idle between
    /// requests before it is closed. Default 75 000: longer than the idle timeout of the
    /// usual reverse proxies and load balancers in front (nginx upstream keep-alive and
    /// AWS ALB: 60 s), so that they close first and never send a request on a connection
    /// this server is closing; nginx's own default. 100..=3 600 000.
    pub keepalive_timeout_ms: Option<u64>,
    /// `http.max_connections`: open client connections in all; one more is answered 503
    /// and closed at once. Default 1024. Keep it below the process's open-file limit
    /// (`LimitNOFILE` in ops/hanko.service), or accept fails with EMFILE first.
    /// 1..=1 000 000.
    pub max_connections: Option<usize>,
    /// `http.max_connections_per_source`: open connections per client address (IPv6 by
    /// /64, the rate limit's key); one more is answered 503 and closed at once. Default
    /// 256: one source, such as a reverse proxy or a batch client, can still use every
    /// admission permit (`max_in_flight`, 128 with the dev pool) and keep as many
    /// idle kept-alive connections besides, while four sources are needed to take
    /// every connection. 1..=`max_connections`.
    pub max_connections_per_source: Option<usize>,
    /// `http.threads`: threads of the async runtime, which reads and answers every HTTP
    /// request, assembles tokens and seals around their signatures and waits on the
    /// log; the signatures themselves run on `hsm.workers` threads of their own. Default
    /// one per core. Fewer pays where the signatures are computed on this host's cores
    /// (SoftHSM): those threads keep every core busy, and each extra runtime thread adds
    /// wake-ups that preempt them (one instead of two on two cores: RSA-3072 +4 %, P-256
    /// with the log off +14 %, the rest unchanged; benches/RESULTS.md 2026-12-04).
    /// `serve --dev` defaults to 1. 1..=1024.
    pub threads: Option<usize>,
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
    /// `hsm.bulk_share`: the share of each key's workers that bulk-lane signatures may
    /// occupy while interactive ones wait (0.0..=1.0, default 0.5; see `hanko_hsm::lane`).
    pub bulk_share: Option<f64>,
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
    /// `[keys.seal]`: a seal credential's metadata (only with `usage = "seal"`).
    pub seal: Option<SealKeySection>,
    /// `keys.allow_rsa_2048`: the transition setting for an existing RSA-2048 unit
    /// (ETSI TS 119 312 asks for 3072 bits or more): start with a warning, and the
    /// metric `hanko_key_weak_algorithm`, instead of refusing. Default false.
    #[serde(default)]
    pub allow_rsa_2048: bool,
    /// `keys.allow_unreported_protection`: start even though the token does not report
    /// whether the private key was always sensitive and never extractable
    /// (`CKA_ALWAYS_SENSITIVE`, `CKA_NEVER_EXTRACTABLE`). Default false: such a key
    /// is refused, as nobody can show it never left the HSM.
    #[serde(default)]
    pub allow_unreported_protection: bool,
    /// `keys.succeeds`: this key is the next key of the time-stamping unit whose key is
    /// labelled so (key rollover, issue #18): at `activate_at` it takes over every
    /// policy that key signs, on every node with this configuration; the old key then
    /// signs nothing more, and its certificate stays in `/tsa/certs` until it expires.
    /// Only for `usage = "tsa"`; needs `activate_at`. Added to a running server with
    /// `hanko reload` (or SIGHUP).
    pub succeeds: Option<String>,
    /// `keys.activate_at`: when the key named by `succeeds` hands over, RFC 3339
    /// (`2027-04-01T00:00:00Z`). Choose a time after every node has reloaded; a time
    /// already past at start-up or reload means at once.
    pub activate_at: Option<String>,
}

impl FileConfig {
    /// Reads and parses a TOML file.
    pub fn load(path: &Path) -> anyhow::Result<FileConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("config file {}", path.display()))
    }
}
