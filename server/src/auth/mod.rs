//! The client model: who calls Hanko, and what each client may do, for every route.
//!
//! One `[[clients]]` entry is one client: a name (its identity in logs, in the
//! `client` label of `hanko_client_requests_total` and in every issuance record), how it
//! proves who it is, the routes it may use (scopes), the seal credentials it may use,
//! its own rate limit and its lane. Every route asks the same questions of the same
//! entries: the RFC 3161 route, the seal routes, the log API and the CSC API.
//!
//! ```text
//!   every request ─> identify (http/mod.rs, once, before routing):
//!        Authorization: Bearer <key> ─> SHA-256 ─> compare with EVERY client's api_key_sha256
//!        verified TLS client cert    ─> SHA-256 of its DER ─> every tls_cert_sha256
//!                                    ─> its subject (RFC 4514) ─> every tls_subject
//!                                       (constant time, no early exit)
//!        nothing presented           ─> anonymous
//!        presented, matches no client (or two different ones) ─> 401 on every route
//!   route asks Identity::require(scope):
//!        anonymous                   ─> 401 + WWW-Authenticate: Bearer
//!        known, scope missing        ─> 403 + WWW-Authenticate: Bearer error="insufficient_scope"
//!        known, scope present        ─> handler runs with the client's name as identity
//!   POST /tsa: anonymous allowed while tsa.public (default true), else 401;
//!              a known client needs the scope tsa (403)
//!   seal and CSC routes, then:  credential not configured       ─> 404
//!                               credential not in the client's list ─> 403
//!   admission (http/limits.rs): a known client with its own rate_limit_per_sec is limited
//!              by that (one bucket per client, wherever it connects from); everybody
//!              else by http.rate_limit_per_sec per source address
//! ```
//!
//! The old `[[api_keys]]` entries keep working: each is a client identified by its API
//! key only, with the scopes it lists, `csc` added where it has `seal` (the CSC API used
//! to ride on `seal`) and `tsa` added (the TSA was open to every caller); see
//! `config.rs`. Names are unique across both lists.
//!
//! Why hashes and not an HMAC or a KDF: keys are 256-bit random values, not passwords;
//! a plain SHA-256 of such a key cannot be brute-forced, and it lets the operator check
//! a key against the config with `sha256sum`. A certificate is named by the SHA-256 of
//! its DER (`openssl x509 -noout -fingerprint -sha256`) or by its subject; the subject
//! names every certificate the client CA issues to it (renewals included), the
//! fingerprint exactly one.
//!
//! What it does NOT do: verify certificates (the TLS layer does, against the client CA,
//! before a [`PeerCertificate`] exists), schedule lanes (it names the client's lane;
//! admission and the signing pools act on it), key expiry or rotation (add a second client entry, hand out its key,
//! remove the old entry, restart). It never logs, prints (except once in `api-key new`)
//! or stores a key or a certificate: only the client's name appears in logs and metrics.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::config::RateLimit;
use crate::http::peer::PeerCertificate;
use crate::logging::LogLimiter;

mod config;
mod new_key;
#[cfg(test)]
mod tests;

pub use config::{ApiKeySection, ClientSection};
pub use new_key::{
    ApiKeyArgs, ApiKeyCommand, ApiKeyNewArgs, KEY_PREFIX, api_key_command, generate_key,
    key_digest_hex,
};

/// Time-stamp with the RFC 3161 route (`POST /tsa`, `POST /`); needed only when
/// `tsa.public = false` or by a client that presents credentials.
pub const SCOPE_TSA: &str = "tsa";

/// Read the issuance log: `GET /api/v1/log/{serial}`.
pub const SCOPE_LOG_READ: &str = "log:read";

/// Seal with the credentials the client lists: `POST /api/v1/seal/...`.
pub const SCOPE_SEAL: &str = "seal";

/// The CSC API (`/csc/v1/...`, `/csc/v2/...` except `info`), with the credentials the
/// client lists.
pub const SCOPE_CSC: &str = "csc";

/// Submit object hashes to be anchored: `POST /api/v1/archive/objects`, and renew the
/// evidence records the archive holds: `POST /api/v1/evidence/renew` (issue #16). Their
/// requests always run in the bulk lane, whatever the client's `lane`.
pub const SCOPE_ARCHIVE: &str = "archive";

/// The emergency stop: suspend and resume keys, `POST /api/v1/admin/keys/{label}/...`
/// (issue #18). An operator's client; give it to no client that also issues.
pub const SCOPE_ADMIN: &str = "admin";

/// Every scope a client may be given. Config and `api-key new` refuse others, so a typo
/// fails at start-up instead of silently granting nothing.
pub const SCOPES: &[&str] = &[
    SCOPE_TSA,
    SCOPE_SEAL,
    SCOPE_LOG_READ,
    SCOPE_CSC,
    SCOPE_ARCHIVE,
    SCOPE_ADMIN,
];

/// The lane a client's requests run in (`hanko_hsm::Lane`): the router's `identify`
/// layer puts it on each request of the client, and admission and the signing pools
/// schedule by it (`http/limits.rs`, `hsm.bulk_share`).
pub use hanko_hsm::Lane;

/// One configured client.
pub struct Client {
    name: String,
    /// SHA-256 of its API key.
    api_key: Option<[u8; 32]>,
    /// SHA-256 of its TLS client certificate's DER.
    tls_cert: Option<[u8; 32]>,
    /// Its TLS client certificate's subject, canonical RFC 4514, and that string's
    /// SHA-256 (what is compared).
    tls_subject: Option<(String, [u8; 32])>,
    scopes: Vec<String>,
    credentials: Vec<String>,
    rate: Option<(RateLimit, DefaultDirectRateLimiter)>,
    lane: Lane,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Digests are not secret, but nothing gains from printing them.
        f.debug_struct("Client")
            .field("name", &self.name)
            .field("api_key", &self.api_key.is_some())
            .field("tls_cert", &self.tls_cert.is_some())
            .field("tls_subject", &self.tls_subject.as_ref().map(|(s, _)| s))
            .field("scopes", &self.scopes)
            .field("credentials", &self.credentials)
            .field("rate", &self.rate.as_ref().map(|(r, _)| r))
            .field("lane", &self.lane)
            .finish()
    }
}

impl Client {
    /// The client's name (the identity of its requests).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the client carries `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Whether the client may seal with the credential `name`.
    pub fn may_use(&self, name: &str) -> bool {
        self.credentials.iter().any(|c| c == name)
    }

    /// The seal credentials the client may use, as configured.
    pub fn credentials(&self) -> &[String] {
        &self.credentials
    }

    /// The client's lane.
    pub fn lane(&self) -> Lane {
        self.lane
    }

    /// The client's own rate limit, if it has one.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        self.rate.as_ref().map(|(r, _)| *r)
    }

    /// Takes one request from the client's own bucket: `None` when it has no rate of
    /// its own (the per-address limit applies), `Some(Err(wait))` when it must wait.
    pub fn check_rate(&self) -> Option<Result<(), Duration>> {
        let (_, limiter) = self.rate.as_ref()?;
        Some(
            limiter
                .check()
                .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now())),
        )
    }
}

/// The configured clients, and whether the TSA serves anonymous callers. The default
/// has no client and a public TSA: every protected request gets 401.
#[derive(Clone, Debug)]
pub struct Clients {
    clients: Vec<Arc<Client>>,
    tsa_public: bool,
}

impl Default for Clients {
    fn default() -> Self {
        Clients {
            clients: Vec::new(),
            tsa_public: true,
        }
    }
}

/// Why a request was refused; [`AuthError::into_response`] is the HTTP answer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// No credentials presented, and the route needs a client (401).
    Missing,
    /// An `Authorization` header that is not one bearer token, or a key or certificate
    /// no client matches, or a key and a certificate of two different clients (401).
    Invalid,
    /// A known client without the scope the route needs (403).
    InsufficientScope(&'static str),
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        // RFC 6750 §3: the challenge, with an error code once a token was presented.
        let (status, challenge, body) = match self {
            AuthError::Missing => (
                StatusCode::UNAUTHORIZED,
                "Bearer realm=\"hanko\"".to_owned(),
                "authentication required: send Authorization: Bearer <api key>\n".to_owned(),
            ),
            AuthError::Invalid => (
                StatusCode::UNAUTHORIZED,
                "Bearer realm=\"hanko\", error=\"invalid_token\"".to_owned(),
                "invalid API key or client certificate\n".to_owned(),
            ),
            AuthError::InsufficientScope(scope) => (
                StatusCode::FORBIDDEN,
                format!("Bearer realm=\"hanko\", error=\"insufficient_scope\", scope=\"{scope}\""),
                format!("this client lacks the scope {scope}\n"),
            ),
        };
        let mut r = (status, body).into_response();
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        r
    }
}

/// What a request presents to prove who sent it.
#[derive(Clone, Debug, Default)]
pub struct Presented {
    /// `None`: no bearer token; `Some(Err)`: a malformed `Authorization`; `Some(Ok)`:
    /// the SHA-256 of the bearer token (the token itself is not kept).
    bearer: Option<Result<[u8; 32], AuthError>>,
    /// The verified TLS client certificate of the connection.
    certificate: Option<PeerCertificate>,
}

impl Presented {
    /// The credentials of a request: its `Authorization` header and the verified TLS
    /// client certificate the connection layer attached.
    pub fn of(headers: &HeaderMap, certificate: Option<&PeerCertificate>) -> Presented {
        Presented {
            bearer: bearer_digest(headers),
            certificate: certificate.cloned(),
        }
    }
}

/// The SHA-256 of the bearer token in `headers`: `None` without one (no header, or
/// another scheme), `Err(Invalid)` for a header that is not exactly one token.
fn bearer_digest(headers: &HeaderMap) -> Option<Result<[u8; 32], AuthError>> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return Some(Err(AuthError::Invalid));
    }
    let Ok(value) = value.to_str() else {
        return Some(Err(AuthError::Invalid));
    };
    let Some((scheme, key)) = value.trim().split_once(' ') else {
        return Some(Err(AuthError::Invalid));
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let key = key.trim();
    if key.is_empty() || key.len() > 512 {
        return Some(Err(AuthError::Invalid));
    }
    Some(Ok(Sha256::digest(key.as_bytes()).into()))
}

/// The canonical RFC 4514 form of a subject, the form [`Clients::identify`] compares
/// (white space around the separating commas, as `openssl x509 -subject` prints it,
/// is dropped first).
pub(crate) fn canonical_subject(s: &str) -> Option<String> {
    use std::str::FromStr as _;
    let mut parts: Vec<String> = vec![String::new()];
    let mut escaped = false;
    for ch in s.chars() {
        match ch {
            ',' if !escaped => parts.push(String::new()),
            _ => parts.last_mut()?.push(ch),
        }
        escaped = ch == '\\' && !escaped;
    }
    let joined = parts.iter().map(|p| p.trim()).collect::<Vec<_>>().join(",");
    hanko_pki::x509::Name::from_str(&joined)
        .ok()
        .map(|n| n.to_string())
        .filter(|s| !s.is_empty())
}

/// Compares `want` with every client's `field` in constant time, without stopping at a
/// match; the last match (fields are unique, so the only one).
fn find<'c>(
    clients: &'c [Arc<Client>],
    want: Option<&[u8; 32]>,
    field: impl Fn(&Client) -> Option<&[u8; 32]>,
) -> Option<&'c Arc<Client>> {
    let want = want?;
    let mut found = None;
    for c in clients {
        if let Some(have) = field(c)
            && bool::from(have.ct_eq(want))
        {
            found = Some(c);
        }
    }
    found
}

impl Clients {
    /// Whether `POST /tsa` serves callers that present no credentials (`tsa.public`).
    pub fn tsa_public(&self) -> bool {
        self.tsa_public
    }

    /// The configured clients.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Client>> {
        self.clients.iter()
    }

    /// Number of configured clients.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// True when no client is configured.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// Who presented `p`: `Ok(None)` for nobody (anonymous), `Ok(Some)` for a
    /// configured client, `Err(Invalid)` for a key or certificate no client matches, or
    /// a key and a certificate that name two different clients.
    ///
    /// Each presented value is hashed and compared with every configured digest in
    /// constant time, without stopping at a match, so timing tells nothing about which
    /// or how many bytes matched.
    pub fn identify(&self, p: &Presented) -> Result<Option<Arc<Client>>, AuthError> {
        let key = match &p.bearer {
            None => None,
            Some(Ok(d)) => Some(d),
            Some(Err(e)) => return Err(e.clone()),
        };
        let by_key = find(&self.clients, key, |c| c.api_key.as_ref());
        if key.is_some() && by_key.is_none() {
            return Err(AuthError::Invalid);
        }
        let by_cert = match &p.certificate {
            None => None,
            Some(cert) => {
                let fingerprint: [u8; 32] = Sha256::digest(cert.der()).into();
                let subject: Option<[u8; 32]> = hanko_pki::cert::Certificate::from_der(cert.der())
                    .ok()
                    .and_then(|c| canonical_subject(&c.subject_string()))
                    .map(|s| Sha256::digest(s.as_bytes()).into());
                let by_fingerprint =
                    find(&self.clients, Some(&fingerprint), |c| c.tls_cert.as_ref());
                let by_subject = find(&self.clients, subject.as_ref(), |c| {
                    c.tls_subject.as_ref().map(|(_, d)| d)
                });
                Some(by_fingerprint.or(by_subject).ok_or(AuthError::Invalid)?)
            }
        };
        match (by_key, by_cert) {
            (Some(a), Some(b)) if !Arc::ptr_eq(a, b) => Err(AuthError::Invalid),
            (a, b) => Ok(a.or(b).cloned()),
        }
    }
}

/// Who sent a request, established once per request by the router's `identify` layer
/// (`http/mod.rs`) and read by the routes as a request extension (or extractor). A
/// request that never passed that layer counts as presenting nothing.
#[derive(Clone, Debug)]
pub struct Identity(Result<Option<Arc<Client>>, AuthError>);

impl Identity {
    /// The outcome of [`Clients::identify`].
    pub fn new(outcome: Result<Option<Arc<Client>>, AuthError>) -> Identity {
        Identity(outcome)
    }

    /// The known client, if the request came from one.
    pub fn client(&self) -> Option<&Arc<Client>> {
        self.0.as_ref().ok().and_then(Option::as_ref)
    }

    /// A known client carrying `scope`, or the refusal (counted in
    /// `hanko_api_auth_refused_total{reason}` and logged at most every 10 s).
    pub fn require(&self, scope: &'static str) -> Result<&Arc<Client>, AuthError> {
        match &self.0 {
            Ok(Some(c)) => check_scope(c, scope),
            Ok(None) => {
                refused("missing");
                tracing::debug!("API request refused: no credentials");
                Err(AuthError::Missing)
            }
            Err(e) => Err(refused_invalid(e)),
        }
    }

    /// For `POST /tsa`: the known client (which needs the scope `tsa`), or `None` for
    /// an anonymous caller when the TSA is public.
    pub fn for_tsa(&self, tsa_public: bool) -> Result<Option<&Arc<Client>>, AuthError> {
        match &self.0 {
            Ok(None) if tsa_public => Ok(None),
            _ => self.require(SCOPE_TSA).map(Some),
        }
    }
}

impl Identity {
    /// The identity a request's extensions hold (nothing presented when none).
    pub fn of(extensions: &axum::http::Extensions) -> Identity {
        extensions
            .get::<Identity>()
            .cloned()
            .unwrap_or(Identity(Ok(None)))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Identity {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Identity::of(&parts.extensions))
    }
}

fn refused(reason: &'static str) {
    metrics::counter!("hanko_api_auth_refused_total", "reason" => reason).increment(1);
}

/// Refusals come once per attempt, as many as a client (or an attacker guessing keys)
/// likes: each is counted, and logged at most once per [`REFUSALS_LOGGED_EVERY`] with
/// the number left out (`logging.rs`).
fn refused_invalid(e: &AuthError) -> AuthError {
    static INVALID: LogLimiter = LogLimiter::new(REFUSALS_LOGGED_EVERY);
    refused("invalid");
    if let Some(suppressed) = INVALID.check() {
        tracing::info!(
            suppressed,
            "API request refused: invalid API key or client certificate"
        );
    }
    e.clone()
}

fn check_scope<'c>(c: &'c Arc<Client>, scope: &'static str) -> Result<&'c Arc<Client>, AuthError> {
    static NO_SCOPE: LogLimiter = LogLimiter::new(REFUSALS_LOGGED_EVERY);
    if c.has_scope(scope) {
        tracing::debug!(client = %c.name, scope, "client accepted");
        Ok(c)
    } else {
        refused("scope");
        if let Some(suppressed) = NO_SCOPE.check() {
            tracing::info!(client = %c.name, scope, suppressed, "API request refused: scope missing");
        }
        Err(AuthError::InsufficientScope(scope))
    }
}

/// How often a refused request is logged again (every refusal is counted in
/// `hanko_api_auth_refused_total{reason}`).
const REFUSALS_LOGGED_EVERY: Duration = Duration::from_secs(10);

/// The rate limiter of one client's own bucket.
fn limiter(r: RateLimit) -> DefaultDirectRateLimiter {
    RateLimiter::direct(Quota::per_second(r.per_sec).allow_burst(r.burst))
}
