//! `[[clients]]` and the older `[[api_keys]]` as written, and their checks: every entry
//! becomes one [`Client`]; a typo, a duplicate or a missing identity stops the start-up.
//!
//! Why `[[api_keys]]` keeps working rather than being refused: every deployment that
//! seals or reads the log has one, and its meaning maps onto a client without a guess
//! (an API-key-only client, same name, same scopes, same credentials). The two
//! additions are the two things the old model granted implicitly: `csc` with `seal`
//! (the CSC API was authorised by `seal`) and `tsa` (the TSA served every caller).

use std::num::NonZeroU32;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::{
    Client, Clients, Lane, SCOPE_CSC, SCOPE_SEAL, SCOPE_TSA, SCOPES, canonical_subject, limiter,
};
use crate::config::RateLimit;

/// `[[clients]]` as written in the config file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSection {
    /// `clients.name`: who the client is; logged, a metric label, and recorded as the
    /// client identity of its tokens and seals.
    pub name: String,
    /// `clients.api_key_sha256`: hex SHA-256 of the client's API key (`hanko api-key
    /// new` prints it; `printf %s KEY | sha256sum` gives the same).
    pub api_key_sha256: Option<String>,
    /// `clients.tls_cert_sha256`: hex SHA-256 of the DER of the client's TLS
    /// certificate (colons allowed, as `openssl x509 -fingerprint -sha256` prints it).
    pub tls_cert_sha256: Option<String>,
    /// `clients.tls_subject`: the subject of the client's TLS certificates, RFC 4514
    /// (`CN=billing,O=Example,C=JP`), as `openssl x509 -noout -subject -nameopt RFC2253`
    /// prints it.
    pub tls_subject: Option<String>,
    /// `clients.scopes`: the routes the client may use: `tsa`, `seal`, `log:read`, `csc`,
    /// `archive`.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// `clients.credentials`: the seal credentials (key labels) it may use with `seal`
    /// and `csc`; needed by either. No wildcard: each is named, and each must exist.
    #[serde(default)]
    pub credentials: Vec<String>,
    /// `clients.rate_limit_per_sec`: the client's own rate on the signing routes,
    /// instead of `http.rate_limit_per_sec` per address. Unset: the per-address limit.
    pub rate_limit_per_sec: Option<u32>,
    /// `clients.rate_limit_burst`: the burst of that rate (default the rate).
    pub rate_limit_burst: Option<u32>,
    /// `clients.lane`: `interactive` (default) or `bulk`; recorded and exposed only.
    pub lane: Option<String>,
}

/// `[[api_keys]]` as written in older config files: a client identified by an API key
/// only (see the module documentation for how it maps).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeySection {
    /// `api_keys.name`: as `clients.name`.
    pub name: String,
    /// `api_keys.sha256`: as `clients.api_key_sha256`.
    pub sha256: String,
    /// `api_keys.scopes`: as `clients.scopes`.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// `api_keys.credentials`: as `clients.credentials`.
    #[serde(default)]
    pub credentials: Vec<String>,
}

impl ApiKeySection {
    /// The `[[clients]]` entry this one stands for.
    pub fn to_client(&self) -> ClientSection {
        let mut scopes = self.scopes.clone();
        let mut add = |s: &str| {
            if !scopes.iter().any(|x| x == s) {
                scopes.push(s.to_owned());
            }
        };
        if self.scopes.iter().any(|s| s == SCOPE_SEAL) {
            add(SCOPE_CSC);
        }
        add(SCOPE_TSA);
        ClientSection {
            name: self.name.clone(),
            api_key_sha256: Some(self.sha256.clone()),
            scopes,
            credentials: self.credentials.clone(),
            ..ClientSection::default()
        }
    }
}

/// 32 bytes of hex (colons and white space ignored).
fn digest(client: &str, key: &str, hex_text: &str, what: &str) -> anyhow::Result<[u8; 32]> {
    let clean: String = hex_text
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .collect();
    hex::decode(clean)
        .ok()
        .and_then(|d| d.try_into().ok())
        .with_context(|| format!("client \"{client}\": {key} must be 64 hex digits ({what})"))
}

impl Clients {
    /// Checks `[[clients]]` and `[[api_keys]]` together: names non-empty and unique,
    /// each with at least one identity, every digest and subject unique, scopes known,
    /// credentials as their scopes need, rate and lane valid.
    pub fn from_config(
        clients: &[ClientSection],
        api_keys: &[ApiKeySection],
        tsa_public: bool,
    ) -> anyhow::Result<Clients> {
        let mut out: Vec<Arc<Client>> = Vec::with_capacity(clients.len() + api_keys.len());
        let legacy: Vec<ClientSection> = api_keys.iter().map(ApiKeySection::to_client).collect();
        for s in clients.iter().chain(&legacy) {
            let c = client(s)?;
            let name = &c.name;
            if out.iter().any(|o| &o.name == name) {
                bail!("clients: name \"{name}\" is configured twice");
            }
            let same = |f: fn(&Client) -> Option<[u8; 32]>| {
                f(&c).is_some() && out.iter().any(|o| f(o) == f(&c))
            };
            if same(|c| c.api_key) {
                bail!("client \"{name}\": the same API key is configured for two clients");
            }
            if same(|c| c.tls_cert) {
                bail!("client \"{name}\": the same certificate is configured for two clients");
            }
            if same(|c| c.tls_subject.as_ref().map(|(_, d)| *d)) {
                bail!("client \"{name}\": the same tls_subject is configured for two clients");
            }
            out.push(Arc::new(c));
        }
        Ok(Clients {
            clients: out,
            tsa_public,
        })
    }

    /// Checks that every credential a client lists is one of `known` (the configured
    /// seal keys' labels): called at start-up, so a client naming a credential that does
    /// not exist stops the server.
    pub fn check_credentials_exist(&self, known: &[&str]) -> anyhow::Result<()> {
        for c in &self.clients {
            for cred in &c.credentials {
                if !known.contains(&cred.as_str()) {
                    bail!(
                        "client \"{}\": credential \"{cred}\" is not a configured seal key \
                         (seal keys: {known:?})",
                        c.name
                    );
                }
            }
        }
        Ok(())
    }
}

/// One entry, checked.
fn client(s: &ClientSection) -> anyhow::Result<Client> {
    let name = s.name.trim();
    if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
        bail!(
            "clients: name {:?} must be 1..=128 printable characters",
            s.name
        );
    }
    let api_key = s
        .api_key_sha256
        .as_deref()
        .map(|h| {
            digest(
                name,
                "api_key_sha256",
                h,
                "the SHA-256 of the key, never the key itself; `hanko api-key new` prints it",
            )
        })
        .transpose()?;
    let tls_cert = s
        .tls_cert_sha256
        .as_deref()
        .map(|h| {
            digest(
                name,
                "tls_cert_sha256",
                h,
                "the SHA-256 of the certificate's DER: openssl x509 -noout -fingerprint -sha256",
            )
        })
        .transpose()?;
    let tls_subject = match s.tls_subject.as_deref() {
        None => None,
        Some(text) => {
            let canonical = canonical_subject(text).with_context(|| {
                format!(
                    "client \"{name}\": tls_subject {text:?} is not an RFC 4514 name \
                     (e.g. \"CN=billing,O=Example,C=JP\")"
                )
            })?;
            let d: [u8; 32] = Sha256::digest(canonical.as_bytes()).into();
            Some((canonical, d))
        }
    };
    if api_key.is_none() && tls_cert.is_none() && tls_subject.is_none() {
        bail!("client \"{name}\": no identity: set api_key_sha256, tls_cert_sha256 or tls_subject");
    }
    for scope in &s.scopes {
        if !SCOPES.contains(&scope.as_str()) {
            bail!("client \"{name}\": unknown scope \"{scope}\" (known: {SCOPES:?})");
        }
    }
    check_credentials(name, s)?;
    let rate = match (
        s.rate_limit_per_sec.map(NonZeroU32::new),
        s.rate_limit_burst,
    ) {
        (None, None) => None,
        (None, Some(_)) => {
            bail!("client \"{name}\": rate_limit_burst is set but rate_limit_per_sec is not")
        }
        (Some(None), _) => bail!("client \"{name}\": rate_limit_per_sec must be greater than 0"),
        (Some(Some(per_sec)), burst) => {
            let burst = match burst {
                None => per_sec,
                Some(b) => NonZeroU32::new(b).with_context(|| {
                    format!("client \"{name}\": rate_limit_burst must be greater than 0")
                })?,
            };
            let r = RateLimit { per_sec, burst };
            Some((r, limiter(r)))
        }
    };
    let lane = match s.lane.as_deref() {
        None => Lane::default(),
        Some(l) => Lane::from_name(l).with_context(|| {
            format!("client \"{name}\": lane \"{l}\" is not \"interactive\" or \"bulk\"")
        })?,
    };
    Ok(Client {
        name: name.to_owned(),
        api_key,
        tls_cert,
        tls_subject,
        scopes: s.scopes.clone(),
        credentials: s.credentials.clone(),
        rate,
        lane,
    })
}

/// The `credentials` of one entry: only with the scope `seal` or `csc` (either needs
/// at least one), no wildcard, no name twice.
fn check_credentials(name: &str, s: &ClientSection) -> anyhow::Result<()> {
    let signs = s.scopes.iter().any(|x| x == SCOPE_SEAL || x == SCOPE_CSC);
    if signs && s.credentials.is_empty() {
        bail!(
            "client \"{name}\": scope \"seal\" or \"csc\" needs credentials = [...], the seal \
             credentials (key labels) this client may use"
        );
    }
    if !signs && !s.credentials.is_empty() {
        bail!(
            "client \"{name}\": credentials are given but neither the scope \"seal\" nor \"csc\""
        );
    }
    for (i, c) in s.credentials.iter().enumerate() {
        if c.contains('*') {
            bail!("client \"{name}\": credential \"{c}\": no wildcards, name each credential");
        }
        if s.credentials[..i].contains(c) {
            bail!("client \"{name}\": credential \"{c}\" is listed twice");
        }
    }
    Ok(())
}
