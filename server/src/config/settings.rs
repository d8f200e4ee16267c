//! The checked configuration: what the server runs with, after every value was
//! validated and every default filled in (by `resolve.rs`).
//!
//! Code after start-up takes these types, never the raw file sections: a value here is
//! known to be in range.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use hanko_hsm::{ModuleConfig, PoolConfig};
use hanko_pki::SignatureAlgorithm;

use super::{KeyUsage, LogFormat};

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
    /// Interactive-lane signing requests served at once (at least 1).
    pub max_in_flight: usize,
    /// Bulk-lane signing requests served at once (at least 1).
    pub max_in_flight_bulk: usize,
    /// Largest document `POST /api/v1/seal/cades` accepts, in bytes.
    pub max_seal_body_bytes: usize,
    /// Largest PDF `POST /api/v1/seal/pdf` accepts, in bytes.
    pub max_seal_pdf_body_bytes: usize,
    /// Lifetime of a CSC Signature Activation Data.
    pub csc_sad_lifetime: Duration,
    /// Most hashes per CSC `signatures/signHash` call.
    pub csc_max_hashes: usize,
    /// The per-client rate limit, if on.
    pub rate_limit: Option<RateLimit>,
    /// Longest time to receive a request head.
    pub header_timeout: Duration,
    /// Longest time to receive a request body, from the end of its head.
    pub body_timeout: Duration,
    /// Longest idle time of a kept-alive connection between requests.
    pub keepalive_timeout: Duration,
    /// Open connections in all.
    pub max_connections: usize,
    /// Open connections per client address (IPv6 by /64).
    pub max_connections_per_source: usize,
    /// Threads of the async runtime; `None`: one per core.
    pub threads: Option<usize>,
}

/// `http.header_timeout_ms` when not set (see
/// [`HttpSection::header_timeout_ms`](super::HttpSection::header_timeout_ms)).
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// `http.body_timeout_ms` when not set (see
/// [`HttpSection::body_timeout_ms`](super::HttpSection::body_timeout_ms)).
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// `http.keepalive_timeout_ms` when not set (see
/// [`HttpSection::keepalive_timeout_ms`](super::HttpSection::keepalive_timeout_ms)).
pub const DEFAULT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(75);
/// `http.max_seal_body_bytes` when not set (see
/// [`HttpSection::max_seal_body_bytes`](super::HttpSection::max_seal_body_bytes)).
pub const DEFAULT_MAX_SEAL_BODY_BYTES: usize = 16 * 1024 * 1024;
/// `http.max_seal_pdf_body_bytes` when not set (see
/// [`HttpSection::max_seal_pdf_body_bytes`](super::HttpSection::max_seal_pdf_body_bytes)).
pub const DEFAULT_MAX_SEAL_PDF_BODY_BYTES: usize = 64 * 1024 * 1024;
/// Largest `http.max_seal_body_bytes` (and `http.max_seal_pdf_body_bytes`) accepted: the document is held in memory while
/// it is hashed (and, attached, copied into the CMS).
pub const MAX_SEAL_BODY_BYTES_LIMIT: usize = 1024 * 1024 * 1024;
/// `http.csc_sad_lifetime_secs` when not set (see
/// [`HttpSection::csc_sad_lifetime_secs`](super::HttpSection::csc_sad_lifetime_secs)).
pub const DEFAULT_CSC_SAD_LIFETIME: Duration = Duration::from_secs(300);
/// `http.csc_max_hashes` when not set (see
/// [`HttpSection::csc_max_hashes`](super::HttpSection::csc_max_hashes)).
pub const DEFAULT_CSC_MAX_HASHES: usize = 64;
/// `http.max_connections` when not set (see
/// [`HttpSection::max_connections`](super::HttpSection::max_connections)).
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// `http.max_connections_per_source` when not set (see
/// [`HttpSection::max_connections_per_source`](super::HttpSection::max_connections_per_source)).
pub const DEFAULT_MAX_CONNECTIONS_PER_SOURCE: usize = 256;

impl HttpSettings {
    /// The defaults of every `[http]` key but `max_in_flight` (for tests and for states
    /// built by hand).
    pub fn with_max_in_flight(max_in_flight: usize) -> HttpSettings {
        HttpSettings {
            max_in_flight,
            max_in_flight_bulk: max_in_flight,
            max_seal_body_bytes: DEFAULT_MAX_SEAL_BODY_BYTES,
            max_seal_pdf_body_bytes: DEFAULT_MAX_SEAL_PDF_BODY_BYTES,
            csc_sad_lifetime: DEFAULT_CSC_SAD_LIFETIME,
            csc_max_hashes: DEFAULT_CSC_MAX_HASHES,
            rate_limit: None,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            keepalive_timeout: DEFAULT_KEEPALIVE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_source: DEFAULT_MAX_CONNECTIONS_PER_SOURCE,
            threads: None,
        }
    }
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
    /// A seal key's credential metadata (`[keys.seal]`, defaults when absent); `None`
    /// for a TSA key.
    pub seal: Option<hanko_seal::SealMetadata>,
    /// `keys.allow_rsa_2048`: warn instead of refusing an RSA key below 3072 bits.
    pub allow_rsa_2048: bool,
    /// `keys.allow_unreported_protection`: accept a key whose token does not report its
    /// protection history.
    pub allow_unreported_protection: bool,
    /// `keys.succeeds` and `keys.activate_at`: the key this one takes over from, and
    /// when (key rollover).
    pub succession: Option<Succession>,
}

/// A key's place in a rollover: it takes over from `predecessor` at `activate_at`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Succession {
    /// The label of the key it succeeds.
    pub predecessor: String,
    /// When it takes over.
    pub activate_at: std::time::SystemTime,
}

/// `[csc]`, resolved: what the CSC API's `info` says of this service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CscInfo {
    /// `name`.
    pub name: String,
    /// `logo`: a URI, or empty.
    pub logo: String,
    /// `region`: ISO 3166-1 alpha-2, or empty.
    pub region: String,
    /// `lang`: an RFC 5646 language tag.
    pub lang: String,
    /// `description`.
    pub description: String,
}

impl Default for CscInfo {
    fn default() -> Self {
        Self {
            name: "Hanko".to_owned(),
            logo: String::new(),
            region: String::new(),
            lang: "en-US".to_owned(),
            description: "Hanko organisational e-seal service".to_owned(),
        }
    }
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
    /// The clients (`[[clients]]`, `[[api_keys]]`) and whether the TSA is public.
    pub clients: crate::auth::Clients,
    /// What the CSC API's `info` says of the service.
    pub csc: CscInfo,
    /// The external TSA of B-T seals (`[seal]`); `None`: the server's own TSA.
    pub seal_tsa: Option<super::ExternalTsaSettings>,
    /// `seal.font`, made absolute; `None`: the Debian default (visible seals' text).
    pub seal_font: Option<std::path::PathBuf>,
    /// The HTTPS listener (`[tls]`, `--tls-listen`, or `--dev`'s); `None`: plain HTTP only.
    pub tls: Option<super::TlsSettings>,
    /// The verification page (`[verify]`).
    pub verify: super::VerifySettings,
    /// Merkle anchoring (`[anchor]`).
    pub anchor: super::AnchorSettings,
    /// Archive submissions (`[archive]`).
    pub archive: super::ArchiveSettings,
    /// The renewal policy of evidence records (`[renewal]`).
    pub renewal: super::RenewalSettings,
}
