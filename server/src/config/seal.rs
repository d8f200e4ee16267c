//! Resolution of the seal settings: each seal credential's `[keys.seal]` metadata
//! (levels, algorithms, display name, image read and checked here) and the `[seal]`
//! section's external TSA.
//!
//! Whether the allowed algorithms fit the key is checked when the credential is built
//! (`hanko_seal::SealCredential::with_metadata`, at start-up): the key type is known
//! only once its certificate is loaded.

use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::time::Duration;

use anyhow::{Context as _, bail};
use hanko_pki::SignatureAlgorithm;
use hanko_pki::alg::DigestSignAlgorithm;
use hanko_pki::cert::{Certificate, load_pem_chain};
use hanko_seal::{Level, SealImage, SealMetadata};

use super::file::{SealKeySection, SealSection};

/// An external RFC 3161 TSA for B-T seals (`[seal]`), resolved.
#[derive(Clone, Debug)]
pub struct ExternalTsaSettings {
    /// Its URL (`http://...` or `https://...`).
    pub url: String,
    /// For https: the TLS trust anchors of its server (`seal.tsa_tls_ca`; default the
    /// public web PKI's roots).
    pub tls: hanko_client::transport::Tls,
    /// Trust anchors its tokens must chain to; empty: tokens are not verified beyond
    /// their imprint and nonce.
    pub trust_anchors: Vec<Certificate>,
    /// The longest one request may take.
    pub timeout: Duration,
    /// The policy OID to ask for (reqPolicy); `None`: the TSA's default.
    pub policy: Option<String>,
}

/// Default of `seal.tsa_timeout_ms`.
pub const DEFAULT_TSA_TIMEOUT: Duration = Duration::from_secs(10);

/// A path relative to `data_dir` made absolute.
pub(super) fn under(data_dir: &Path, p: PathBuf) -> PathBuf {
    if p.is_absolute() { p } else { data_dir.join(p) }
}

/// The `[keys.seal]` of key `label` as [`SealMetadata`], its image read and checked.
pub(super) fn resolve_metadata(
    label: &str,
    s: SealKeySection,
    data_dir: &Path,
) -> anyhow::Result<SealMetadata> {
    let ctx = || format!("key \"{label}\": [keys.seal]");
    let mut m = SealMetadata::default();
    if let Some(levels) = s.levels {
        m.levels = Vec::new();
        for l in &levels {
            let level = Level::from_str(l).with_context(ctx)?;
            if !m.levels.contains(&level) {
                m.levels.push(level);
            }
        }
        if m.levels.is_empty() {
            bail!(
                "{}: levels is empty; leave it out to allow B-B and B-T",
                ctx()
            );
        }
    }
    if let Some(names) = s.algorithms {
        let mut algs = Vec::new();
        for n in &names {
            let alg = SignatureAlgorithm::from_name(n)
                .and_then(DigestSignAlgorithm::from_signature_algorithm)
                .with_context(|| {
                    format!(
                        "{}: algorithms: \"{n}\" is not a digest-signing algorithm \
                         (rsa-pkcs1-sha256, rsa-pss-sha256, ecdsa-sha256, ...)",
                        ctx()
                    )
                })?;
            algs.push(alg);
        }
        if algs.is_empty() {
            bail!("{}: algorithms is empty; leave it out to allow all", ctx());
        }
        m.digest_algorithms = Some(algs);
    }
    m.description = non_empty(s.description, "description", &ctx)?;
    m.display_name = non_empty(s.display_name, "display_name", &ctx)?;
    if let Some(path) = s.image {
        let path = under(data_dir, path);
        let bytes = std::fs::read(&path)
            .with_context(|| format!("{}: cannot read image {}", ctx(), path.display()))?;
        let image = SealImage::from_png(bytes)
            .with_context(|| format!("{}: image {}", ctx(), path.display()))?;
        m.image = Some(image);
    }
    Ok(m)
}

fn non_empty(
    v: Option<String>,
    key: &str,
    ctx: &dyn Fn() -> String,
) -> anyhow::Result<Option<String>> {
    match v {
        Some(t) if t.trim().is_empty() => bail!("{}: {key} is empty", ctx()),
        Some(t) if t.chars().count() > 256 => bail!("{}: {key} is over 256 characters", ctx()),
        other => Ok(other),
    }
}

/// `[seal]`: the external TSA, if one is named.
pub(super) fn resolve_external_tsa(
    s: SealSection,
    data_dir: &Path,
) -> anyhow::Result<Option<ExternalTsaSettings>> {
    let Some(url) = s.tsa_url else {
        if s.tsa_ca.is_some() || s.tsa_timeout_ms.is_some() || s.tsa_tls_ca.is_some() {
            bail!("seal.tsa_ca, seal.tsa_tls_ca and seal.tsa_timeout_ms need seal.tsa_url");
        }
        return Ok(None);
    };
    let endpoint = EndpointSection {
        url,
        tls_ca: s.tsa_tls_ca,
        ca: s.tsa_ca,
        timeout_ms: s.tsa_timeout_ms,
        policy: None,
    };
    resolve_endpoint("seal.tsa_", endpoint, data_dir).map(Some)
}

/// An external RFC 3161 TSA as written: `[seal]`'s `tsa_*` keys, an
/// `[[anchor.external]]` entry.
pub(super) struct EndpointSection {
    pub url: String,
    pub tls_ca: Option<PathBuf>,
    pub ca: Option<PathBuf>,
    pub timeout_ms: Option<u64>,
    pub policy: Option<String>,
}

/// Checks and reads what an external TSA needs; `ctx` prefixes the key names in messages
/// (`seal.tsa_` gives `seal.tsa_url`, `[[anchor.external]] "x"` gives `... url`).
pub(super) fn resolve_endpoint(
    ctx: &str,
    s: EndpointSection,
    data_dir: &Path,
) -> anyhow::Result<ExternalTsaSettings> {
    let key = |k: &str| {
        if ctx.ends_with('_') {
            format!("{ctx}{k}")
        } else {
            format!("{ctx}: {k}")
        }
    };
    let url = s.url;
    let https = url.starts_with("https://") && url.len() > "https://".len();
    if !https && (!url.starts_with("http://") || url.len() <= "http://".len()) {
        bail!("{} {url:?} is not an http:// or https:// URL", key("url"));
    }
    let tls_ca = match s.tls_ca {
        None => None,
        Some(_) if !https => bail!("{} is for an https:// {}", key("tls_ca"), key("url")),
        Some(p) => {
            let p = under(data_dir, p);
            Some(
                std::fs::read(&p)
                    .with_context(|| format!("{}: cannot read {}", key("tls_ca"), p.display()))?,
            )
        }
    };
    let tls = hanko_client::transport::Tls::from_pem(tls_ca.as_deref(), None)
        .with_context(|| key("tls_ca"))?;
    let timeout = match s.timeout_ms {
        None => DEFAULT_TSA_TIMEOUT,
        Some(ms @ 1000..=60_000) => Duration::from_millis(ms),
        Some(ms) => bail!("{} = {ms}: allowed 1000..=60000", key("timeout_ms")),
    };
    let trust_anchors = match s.ca {
        None => Vec::new(),
        Some(p) => {
            let p = under(data_dir, p);
            let pem = std::fs::read_to_string(&p)
                .with_context(|| format!("{}: cannot read {}", key("ca"), p.display()))?;
            let certs =
                load_pem_chain(&pem).with_context(|| format!("{}: {}", key("ca"), p.display()))?;
            if certs.is_empty() {
                bail!("{}: {} holds no certificate", key("ca"), p.display());
            }
            certs
        }
    };
    if let Some(p) = &s.policy
        && hanko_pki::cms::oid(p).is_err()
    {
        bail!("{} {p:?} is not a dotted OID", key("policy"));
    }
    Ok(ExternalTsaSettings {
        url,
        trust_anchors,
        timeout,
        tls,
        policy: s.policy,
    })
}
