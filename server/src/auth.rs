//! API keys: who may call the protected parts of the HTTP API (`/api/v1/...`), and
//! `hanko api-key new`, which makes a key for the operator to hand out.
//!
//! What it is for: auditors and operators' tools call `GET /api/v1/log/{serial}`, and
//! issuance systems (the clients that seal, `POST /api/v1/seal/cades`) call the seal
//! routes, each with `Authorization: Bearer <key>`. The configuration holds only the SHA-256 of each key
//! (`[[api_keys]] sha256 = "..."`), so a leaked config file, backup or `ps` listing gives
//! nobody a usable key, and the key is shown exactly once, when it is made.
//!
//! ```text
//!   Authorization: Bearer <key> ─> SHA-256 ─> compare with EVERY configured digest
//!                                             (constant time, no early exit)
//!        none / malformed / unknown ─> 401 + WWW-Authenticate: Bearer
//!        known, scope missing       ─> 403 + WWW-Authenticate: Bearer error="insufficient_scope"
//!        known, scope present       ─> handler runs with the key's name as client identity
//!   seal routes, then:  credential not configured       ─> 404
//!                       credential not in the key's list ─> 403
//! ```
//!
//! # The client model
//! One `[[api_keys]]` entry is one client: a name (its identity in logs and in every
//! issuance record), the digest of its key, its scopes, and for the `seal` scope the seal
//! credentials it may use, by name. There is no wildcard: a client is allowed exactly the
//! credentials its entry lists, and start-up fails when a listed credential does not
//! exist, so a typo is found then and not as a 404 in production. The HTTP routes decide
//! nothing themselves: they ask [`ApiKeys::require`] and [`ApiKey::may_use`]; the CSC
//! API will ask the same questions of the same entries (and mTLS identities will become
//! another way to name the same clients).
//!
//! Why hashes and not an HMAC or a KDF: keys are 256-bit random values, not passwords;
//! a plain SHA-256 of such a key cannot be brute-forced, and it lets the operator check
//! a key against the config with `sha256sum`.
//!
//! What it does NOT do: rate limiting (a separate layer, keyed by client), TLS client
//! certificates (the TLS issue), key expiry or rotation (add a new `[[api_keys]]` entry,
//! hand out its key, remove the old entry, restart). It never logs, prints (except once
//! in `api-key new`) or stores a key: only its name appears in logs.

use std::fmt;

use anyhow::{Context as _, bail};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use clap::{Args, Subcommand};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::logging::LogLimiter;

/// Read the issuance log: `GET /api/v1/log/{serial}`.
pub const SCOPE_LOG_READ: &str = "log:read";

/// Seal with the credentials the key lists: `POST /api/v1/seal/...`.
pub const SCOPE_SEAL: &str = "seal";

/// Every scope a key may be given. Config and `api-key new` refuse others, so a typo
/// fails at start-up instead of silently granting nothing.
pub const SCOPES: &[&str] = &[SCOPE_LOG_READ, SCOPE_SEAL];

/// Prefix of keys made by `hanko api-key new` (recognisable in secret scanners).
pub const KEY_PREFIX: &str = "hanko_";

/// `[[api_keys]]` as written in the config file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeySection {
    /// `api_keys.name`: who holds the key; logged, and recorded as the client identity.
    pub name: String,
    /// `api_keys.sha256`: lowercase or uppercase hex of the SHA-256 of the key (as
    /// `hanko api-key new` prints it; `printf %s KEY | sha256sum` gives the same).
    pub sha256: String,
    /// `api_keys.scopes`: what the key may do, e.g. `["log:read"]`. A key without
    /// scopes only identifies its holder (every protected route answers it 403).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// `api_keys.credentials`: the seal credentials (their names, the key labels) the
    /// key may seal with; needs the scope `seal`, and the scope `seal` needs at least
    /// one. No wildcard: each is named, and each must exist.
    #[serde(default)]
    pub credentials: Vec<String>,
}

/// One configured key: its holder, the digest of the key, its scopes and the seal
/// credentials it may use.
#[derive(Clone)]
pub struct ApiKey {
    name: String,
    digest: [u8; 32],
    scopes: Vec<String>,
    credentials: Vec<String>,
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The digest is not secret, but nothing gains from printing it.
        f.debug_struct("ApiKey")
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl ApiKey {
    /// The holder's name (the client identity of its requests).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the key carries `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Whether the key may seal with the credential `name`.
    pub fn may_use(&self, name: &str) -> bool {
        self.credentials.iter().any(|c| c == name)
    }

    /// The seal credentials the key may use, as configured.
    pub fn credentials(&self) -> &[String] {
        &self.credentials
    }
}

/// The configured API keys. The default has none: every protected request gets 401.
#[derive(Clone, Debug, Default)]
pub struct ApiKeys {
    keys: Vec<ApiKey>,
}

/// Why a request was refused; [`AuthError::into_response`] is the HTTP answer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// No `Authorization: Bearer` header (401).
    Missing,
    /// A header that is not one bearer token, or a key no entry matches (401).
    Invalid,
    /// A valid key without the scope the route needs (403).
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
                "invalid API key\n".to_owned(),
            ),
            AuthError::InsufficientScope(scope) => (
                StatusCode::FORBIDDEN,
                format!("Bearer realm=\"hanko\", error=\"insufficient_scope\", scope=\"{scope}\""),
                format!("this API key lacks the scope {scope}\n"),
            ),
        };
        let mut r = (status, body).into_response();
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        r
    }
}

impl ApiKeys {
    /// Checks the `[[api_keys]]` entries: names non-empty and unique, digests 32 bytes of
    /// hex and unique, scopes known.
    pub fn from_config(sections: &[ApiKeySection]) -> anyhow::Result<ApiKeys> {
        let mut keys: Vec<ApiKey> = Vec::with_capacity(sections.len());
        for s in sections {
            let name = s.name.trim();
            if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
                bail!(
                    "api_keys: name {:?} must be 1..=128 printable characters",
                    s.name
                );
            }
            let digest: [u8; 32] = hex::decode(s.sha256.trim())
                .ok()
                .and_then(|d| d.try_into().ok())
                .with_context(|| {
                    format!(
                        "api_keys \"{name}\": sha256 must be 64 hex digits (the SHA-256 of the \
                         key, never the key itself; `hanko api-key new` prints it)"
                    )
                })?;
            for scope in &s.scopes {
                if !SCOPES.contains(&scope.as_str()) {
                    bail!("api_keys \"{name}\": unknown scope \"{scope}\" (known: {SCOPES:?})");
                }
            }
            check_credentials(name, s)?;
            if keys.iter().any(|k| k.name == name) {
                bail!("api_keys: name \"{name}\" is configured twice");
            }
            if keys.iter().any(|k| k.digest == digest) {
                bail!("api_keys \"{name}\": the same key is configured under two names");
            }
            keys.push(ApiKey {
                name: name.to_owned(),
                digest,
                scopes: s.scopes.clone(),
                credentials: s.credentials.clone(),
            });
        }
        Ok(ApiKeys { keys })
    }

    /// Checks that every credential a key lists is one of `known` (the configured seal
    /// keys' labels): called at start-up, so a key naming a credential that does not
    /// exist stops the server.
    pub fn check_credentials_exist(&self, known: &[&str]) -> anyhow::Result<()> {
        for k in &self.keys {
            for c in &k.credentials {
                if !known.contains(&c.as_str()) {
                    bail!(
                        "api_keys \"{}\": credential \"{c}\" is not a configured seal key \
                         (seal keys: {known:?})",
                        k.name
                    );
                }
            }
        }
        Ok(())
    }

    /// The configured keys.
    pub fn iter(&self) -> impl Iterator<Item = &ApiKey> {
        self.keys.iter()
    }

    /// Number of configured keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no key is configured.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key presented in `headers`, if it is a configured one.
    ///
    /// The presented key is hashed and its digest compared with every configured digest
    /// in constant time, without stopping at a match, so timing tells nothing about which
    /// or how many bytes matched.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<&ApiKey, AuthError> {
        let mut values = headers.get_all(header::AUTHORIZATION).iter();
        let value = values.next().ok_or(AuthError::Missing)?;
        if values.next().is_some() {
            return Err(AuthError::Invalid);
        }
        let value = value.to_str().map_err(|_| AuthError::Invalid)?;
        let (scheme, key) = value.trim().split_once(' ').ok_or(AuthError::Invalid)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::Missing);
        }
        let key = key.trim();
        if key.is_empty() || key.len() > 512 {
            return Err(AuthError::Invalid);
        }
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let mut found: Option<&ApiKey> = None;
        for k in &self.keys {
            // Every entry is compared; digests are unique, so at most one matches.
            if bool::from(k.digest.ct_eq(&digest)) {
                found = Some(k);
            }
        }
        found.ok_or(AuthError::Invalid)
    }

    /// [`ApiKeys::authenticate`], then checks that the key carries `scope`.
    pub fn require(&self, headers: &HeaderMap, scope: &'static str) -> Result<&ApiKey, AuthError> {
        // Refusals come once per attempt, as many as a client (or an attacker guessing
        // keys) likes: each is counted, and logged at most once per REFUSALS_LOGGED_EVERY
        // with the number left out (`logging.rs`).
        static INVALID: LogLimiter = LogLimiter::new(REFUSALS_LOGGED_EVERY);
        static NO_SCOPE: LogLimiter = LogLimiter::new(REFUSALS_LOGGED_EVERY);
        let refused = |reason: &'static str| {
            metrics::counter!("hanko_api_auth_refused_total", "reason" => reason).increment(1);
        };
        let key = self.authenticate(headers).inspect_err(|e| match e {
            AuthError::Missing => {
                refused("missing");
                tracing::debug!("API request refused: no API key");
            }
            _ => {
                refused("invalid");
                if let Some(suppressed) = INVALID.check() {
                    tracing::info!(suppressed, "API request refused: invalid API key");
                }
            }
        })?;
        if key.has_scope(scope) {
            tracing::debug!(api_key = %key.name, scope, "API key accepted");
            Ok(key)
        } else {
            refused("scope");
            if let Some(suppressed) = NO_SCOPE.check() {
                tracing::info!(api_key = %key.name, scope, suppressed, "API request refused: scope missing");
            }
            Err(AuthError::InsufficientScope(scope))
        }
    }
}

/// The `credentials` of one `[[api_keys]]` entry: only with the scope `seal` (which needs
/// at least one), no wildcard, no name twice.
fn check_credentials(name: &str, s: &ApiKeySection) -> anyhow::Result<()> {
    let seal = s.scopes.iter().any(|x| x == SCOPE_SEAL);
    if seal && s.credentials.is_empty() {
        bail!(
            "api_keys \"{name}\": scope \"seal\" needs credentials = [...], the seal \
             credentials (key labels) this client may use"
        );
    }
    if !seal && !s.credentials.is_empty() {
        bail!("api_keys \"{name}\": credentials are given but the scope \"seal\" is not");
    }
    for (i, c) in s.credentials.iter().enumerate() {
        if c.contains('*') {
            bail!("api_keys \"{name}\": credential \"{c}\": no wildcards, name each credential");
        }
        if s.credentials[..i].contains(c) {
            bail!("api_keys \"{name}\": credential \"{c}\" is listed twice");
        }
    }
    Ok(())
}

/// How often a refused API key is logged again (every refusal is counted in
/// `hanko_api_auth_refused_total{reason}`).
const REFUSALS_LOGGED_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// The SHA-256 of a key as the config wants it (lowercase hex).
pub fn key_digest_hex(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A fresh key: [`KEY_PREFIX`] and 32 random bytes in unpadded base64url (256 bits from
/// the operating system's generator through `rand`'s thread RNG).
pub fn generate_key() -> String {
    use rand::Rng as _;
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    format!(
        "{KEY_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    )
}

/// `hanko api-key`.
#[derive(Debug, Args)]
pub struct ApiKeyArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ApiKeyCommand,
}

/// `hanko api-key` subcommands.
#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Make a new random API key: prints the key once, and the `[[api_keys]]` snippet
    /// (with only the key's SHA-256) to add to the server's config.
    New(ApiKeyNewArgs),
}

/// `hanko api-key new`.
#[derive(Debug, Args)]
pub struct ApiKeyNewArgs {
    /// Who gets the key (e.g. "auditor"); its requests are logged under this name.
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// A scope the key grants; repeat for several. Known: log:read, seal.
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// A seal credential (key label) the key may use, with `--scope seal`; repeat for
    /// several.
    #[arg(long = "credential", value_name = "NAME")]
    pub credentials: Vec<String>,
}

/// Runs `hanko api-key ...`: prints to stdout, touches no file and no HSM.
pub fn api_key_command(args: ApiKeyArgs) -> anyhow::Result<()> {
    match args.command {
        ApiKeyCommand::New(a) => {
            let key = generate_key();
            let digest = key_digest_hex(&key);
            let section = ApiKeySection {
                name: a.name,
                sha256: digest.clone(),
                scopes: a.scopes,
                credentials: a.credentials,
            };
            // Same checks as the server's config, before anything is printed.
            ApiKeys::from_config(std::slice::from_ref(&section))?;
            print!("{}", new_key_text(&key, &section));
            Ok(())
        }
    }
}

/// What `api-key new` prints: the key once, then the config snippet.
fn new_key_text(key: &str, s: &ApiKeySection) -> String {
    let toml_str = |v: &str| toml::Value::String(v.to_owned()).to_string();
    let list = |v: &[String]| v.iter().map(|x| toml_str(x)).collect::<Vec<_>>().join(", ");
    let credentials = if s.credentials.is_empty() {
        String::new()
    } else {
        format!("credentials = [{}]\n", list(&s.credentials))
    };
    format!(
        "API key for {name} (shown only now; give it to its holder over a secure channel):\n\
         \n\
         {key}\n\
         \n\
         Add to the server's config file (it holds only the key's SHA-256) and restart:\n\
         \n\
         [[api_keys]]\n\
         name = {name_toml}\n\
         sha256 = \"{sha}\"\n\
         scopes = [{scopes}]\n\
         {credentials}",
        name = s.name,
        name_toml = toml_str(&s.name),
        sha = s.sha256,
        scopes = list(&s.scopes),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn keys(entries: &[(&str, &str, &[&str])]) -> anyhow::Result<ApiKeys> {
        let s: Vec<ApiKeySection> = entries
            .iter()
            .map(|(n, k, sc)| ApiKeySection {
                name: (*n).to_owned(),
                sha256: key_digest_hex(k),
                scopes: sc.iter().map(|x| (*x).to_owned()).collect(),
                credentials: Vec::new(),
            })
            .collect();
        ApiKeys::from_config(&s)
    }

    fn bearer(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn keys_are_checked_against_digests_and_scopes() {
        let k = keys(&[("auditor", "k-audit", &["log:read"]), ("x", "k-x", &[])]).unwrap();
        assert_eq!(
            k.require(&bearer("Bearer k-x"), SCOPE_LOG_READ)
                .unwrap_err(),
            AuthError::InsufficientScope(SCOPE_LOG_READ)
        );
        assert_eq!(
            k.require(&HeaderMap::new(), SCOPE_LOG_READ).unwrap_err(),
            AuthError::Missing
        );
        assert_eq!(
            k.require(&bearer("Bearer nope"), SCOPE_LOG_READ)
                .unwrap_err(),
            AuthError::Invalid
        );
        assert_eq!(
            k.require(&bearer("Basic azphdWRpdA=="), SCOPE_LOG_READ)
                .unwrap_err(),
            AuthError::Missing
        );
        assert_eq!(
            k.require(&bearer("Bearer"), SCOPE_LOG_READ).unwrap_err(),
            AuthError::Invalid
        );
        assert_eq!(
            k.require(&bearer("bearer k-audit"), SCOPE_LOG_READ)
                .unwrap()
                .name(),
            "auditor"
        );
    }

    #[test]
    fn config_refuses_typos_and_duplicates() {
        let e = keys(&[("a", "k", &["log:raed"])]).unwrap_err();
        assert!(e.to_string().contains("unknown scope"), "{e}");
        let e = keys(&[("a", "k", &["log:read"]), ("a", "k2", &["log:read"])]).unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
        let e = keys(&[("a", "k", &["log:read"]), ("b", "k", &["log:read"])]).unwrap_err();
        assert!(e.to_string().contains("two names"), "{e}");
        let e = ApiKeys::from_config(&[ApiKeySection {
            name: "a".into(),
            sha256: "hanko_notahash".into(),
            scopes: vec!["log:read".into()],
            credentials: Vec::new(),
        }])
        .unwrap_err();
        assert!(e.to_string().contains("64 hex digits"), "{e}");
        let seal = |creds: &[&str], scopes: &[&str]| {
            ApiKeys::from_config(&[ApiKeySection {
                name: "issuer".into(),
                sha256: key_digest_hex("k"),
                scopes: scopes.iter().map(|x| (*x).to_owned()).collect(),
                credentials: creds.iter().map(|x| (*x).to_owned()).collect(),
            }])
        };
        let e = seal(&["*"], &["seal"]).unwrap_err();
        assert!(e.to_string().contains("no wildcards"), "{e}");
        let e = seal(&[], &["seal"]).unwrap_err();
        assert!(e.to_string().contains("needs credentials"), "{e}");
        let e = seal(&["seal-p256"], &["log:read"]).unwrap_err();
        assert!(e.to_string().contains("scope \"seal\" is not"), "{e}");
        let e = seal(&["a", "a"], &["seal"]).unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
        let k = seal(&["seal-p256"], &["seal"]).unwrap();
        k.check_credentials_exist(&["seal-p256"]).unwrap();
        let e = k.check_credentials_exist(&["seal-rsa3072"]).unwrap_err();
        assert!(e.to_string().contains("not a configured seal key"), "{e}");
        assert!(!e.to_string().contains("hanko_notahash"), "{e}");
    }

    #[test]
    fn generated_keys_are_fresh_and_their_snippet_parses() {
        let a = generate_key();
        assert_ne!(a, generate_key());
        assert!(
            a.starts_with(KEY_PREFIX) && a.len() == KEY_PREFIX.len() + 43,
            "{a}"
        );
        let s = ApiKeySection {
            name: "auditor \"x\"".into(),
            sha256: key_digest_hex(&a),
            scopes: vec!["log:read".into(), "seal".into()],
            credentials: vec!["seal-p256".into()],
        };
        let text = new_key_text(&a, &s);
        let snippet = text.split_once("[[api_keys]]").unwrap().1;
        #[derive(Deserialize)]
        struct F {
            api_keys: Vec<ApiKeySection>,
        }
        let f: F = toml::from_str(&format!("[[api_keys]]{snippet}")).unwrap();
        let k = ApiKeys::from_config(&f.api_keys).unwrap();
        assert!(
            k.iter()
                .all(|k| k.may_use("seal-p256") && !k.may_use("seal-rsa3072"))
        );
        assert_eq!(
            k.authenticate(&bearer(&format!("Bearer {a}")))
                .unwrap()
                .name(),
            "auditor \"x\""
        );
        assert_eq!(
            text.matches(&a).count(),
            1,
            "the key is printed exactly once"
        );
    }
}
