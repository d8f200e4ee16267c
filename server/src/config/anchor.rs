//! `[anchor]`: Merkle anchoring of the issuance log (issue #15; `server/src/anchor/` runs
//! it): how often a batch closes, how large it may grow, and the targets that time-stamp
//! each batch root: the server's own TSA (`self`) and `[[anchor.external]]` RFC 3161 TSAs.
//!
//! The external targets' URL, TLS trust and token trust anchors are resolved exactly as
//! `seal.tsa_url` is ([`super::seal::resolve_endpoint`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::bail;
use serde::Deserialize;

use super::ExternalTsaSettings;

/// `[anchor]` as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchorSection {
    /// `anchor.enabled`: batch and anchor the log (default true).
    pub enabled: Option<bool>,
    /// `anchor.interval_secs`: how long the oldest unbatched record waits before its batch
    /// closes, 1..=86400 (default 60; 5 with `--dev`).
    pub interval_secs: Option<u64>,
    /// `anchor.max_leaves`: a batch closes as soon as this many records wait, and never
    /// holds more, 1..=10 000 000 (default 100 000).
    pub max_leaves: Option<u64>,
    /// `anchor.self`: the server's own TSA time-stamps every batch root (default true
    /// when `[tsa]` is configured).
    #[serde(rename = "self")]
    pub self_target: Option<bool>,
    /// `anchor.retry_max_secs`: the longest wait between two attempts of a failing target
    /// (back-off doubles from 1 s up to this), 1..=86400 (default 300; 10 with `--dev`).
    pub retry_max_secs: Option<u64>,
    /// `[[anchor.external]]`: external RFC 3161 TSAs, each anchoring every batch on its own.
    #[serde(default)]
    pub external: Vec<ExternalAnchorSection>,
}

/// `[[anchor.external]]` as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalAnchorSection {
    /// `name`: how the batch API and `?anchor=` name it: 1..=64 of `A-Z a-z 0-9 . _ -`,
    /// not `self`, unique.
    pub name: String,
    /// `url`: the TSA (`http://...` or `https://...`).
    pub url: String,
    /// `tls_ca`: PEM trust anchor(s) of an https `url`'s server certificate. Relative to
    /// `data_dir`. Unset: the public web PKI's roots.
    pub tls_ca: Option<PathBuf>,
    /// `ca`: PEM trust anchor(s) its tokens must chain to; each token is verified before
    /// it is stored. Relative to `data_dir`.
    pub ca: Option<PathBuf>,
    /// `policy`: the TSA policy OID to ask for (reqPolicy). Unset: the TSA's default.
    pub policy: Option<String>,
    /// `timeout_ms`: the longest one request may take, 1000..=60000 (default 10000).
    pub timeout_ms: Option<u64>,
}

/// `[anchor]`, checked.
#[derive(Clone, Debug)]
pub struct AnchorSettings {
    /// Batch and anchor at all.
    pub enabled: bool,
    /// Age of the oldest unbatched record at which its batch closes.
    pub interval: Duration,
    /// Most records per batch; a batch closes at once when this many wait.
    pub max_leaves: u64,
    /// The own TSA is a target (named `self`).
    pub self_target: bool,
    /// Longest back-off between two attempts of one target.
    pub retry_max: Duration,
    /// The external targets, in configuration order.
    pub external: Vec<ExternalAnchor>,
}

impl AnchorSettings {
    /// The targets' names in configuration order, `self` first: the order in which an
    /// evidence request without `?anchor=` picks the first done anchor.
    pub fn target_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        if self.self_target {
            names.push(SELF_TARGET.to_owned());
        }
        names.extend(self.external.iter().map(|e| e.name.clone()));
        names
    }
}

/// One external anchor target.
#[derive(Clone, Debug)]
pub struct ExternalAnchor {
    /// Its name.
    pub name: String,
    /// Where and how to reach it.
    pub tsa: ExternalTsaSettings,
}

/// `[archive]` as written: archive systems submitting object hashes (issue #16).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveSection {
    /// `archive.max_hashes_per_request`: most hashes one `POST /api/v1/archive/objects`
    /// may carry, 1..=100 000 (default 10 000).
    pub max_hashes_per_request: Option<usize>,
}

/// `[archive]`, checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArchiveSettings {
    /// Most hashes per submission.
    pub max_hashes_per_request: usize,
}

impl Default for ArchiveSettings {
    fn default() -> Self {
        ArchiveSettings {
            max_hashes_per_request: DEFAULT_ARCHIVE_MAX_HASHES,
        }
    }
}

impl ArchiveSettings {
    /// The body limit of a submission: room for `max_hashes_per_request` entries of the
    /// JSON form with the longest digest (SHA-512, about 160 bytes each), pretty-printed,
    /// plus 4 KiB. The binary form is far smaller; a body over it is a 413.
    pub fn max_body_bytes(&self) -> usize {
        self.max_hashes_per_request
            .saturating_mul(ARCHIVE_BYTES_PER_HASH)
            .saturating_add(4096)
    }
}

/// Default of `archive.max_hashes_per_request`.
pub const DEFAULT_ARCHIVE_MAX_HASHES: usize = 10_000;
/// Largest `archive.max_hashes_per_request`.
pub const MAX_ARCHIVE_MAX_HASHES: usize = 100_000;
/// Body bytes allowed per hash of a submission (see [`ArchiveSettings::max_body_bytes`]).
pub const ARCHIVE_BYTES_PER_HASH: usize = 256;

/// Resolves `[archive]`.
pub(super) fn resolve_archive(s: &ArchiveSection) -> anyhow::Result<ArchiveSettings> {
    let max_hashes_per_request = match s.max_hashes_per_request {
        None => DEFAULT_ARCHIVE_MAX_HASHES,
        Some(v @ 1..=MAX_ARCHIVE_MAX_HASHES) => v,
        Some(v) => {
            bail!("archive.max_hashes_per_request = {v}: allowed 1..={MAX_ARCHIVE_MAX_HASHES}")
        }
    };
    Ok(ArchiveSettings {
        max_hashes_per_request,
    })
}

/// The own TSA's target name.
pub const SELF_TARGET: &str = "self";
/// Default of `anchor.interval_secs`.
pub const DEFAULT_ANCHOR_INTERVAL: Duration = Duration::from_secs(60);
/// Default of `anchor.interval_secs` with `--dev`.
pub const DEV_ANCHOR_INTERVAL: Duration = Duration::from_secs(5);
/// Default of `anchor.max_leaves`.
pub const DEFAULT_MAX_LEAVES: u64 = 100_000;

/// Resolves `[anchor]`; `has_tsa`: a `[tsa]` is configured (the `self` target needs it).
pub(super) fn resolve_anchor(
    s: AnchorSection,
    data_dir: &Path,
    dev: bool,
    has_tsa: bool,
) -> anyhow::Result<AnchorSettings> {
    let interval = match s.interval_secs {
        None if dev => DEV_ANCHOR_INTERVAL,
        None => DEFAULT_ANCHOR_INTERVAL,
        Some(v @ 1..=86_400) => Duration::from_secs(v),
        Some(v) => bail!("anchor.interval_secs = {v}: allowed 1..=86400"),
    };
    let max_leaves = match s.max_leaves {
        None => DEFAULT_MAX_LEAVES,
        Some(v @ 1..=10_000_000) => v,
        Some(v) => bail!("anchor.max_leaves = {v}: allowed 1..=10000000"),
    };
    let retry_max = match s.retry_max_secs {
        None if dev => Duration::from_secs(10),
        None => Duration::from_secs(300),
        Some(v @ 1..=86_400) => Duration::from_secs(v),
        Some(v) => bail!("anchor.retry_max_secs = {v}: allowed 1..=86400"),
    };
    let self_target = match s.self_target {
        Some(true) if !has_tsa => {
            bail!("anchor.self = true needs the server's own TSA ([tsa] with a TSA key)")
        }
        Some(v) => v,
        None => has_tsa,
    };
    let mut external = Vec::new();
    for e in s.external {
        let ctx = format!("[[anchor.external]] {:?}", e.name);
        let valid_name = (1..=64).contains(&e.name.len())
            && e.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !valid_name || e.name == SELF_TARGET {
            bail!("{ctx}: name must be 1..=64 of A-Z a-z 0-9 . _ - and not \"self\"");
        }
        if external.iter().any(|x: &ExternalAnchor| x.name == e.name) {
            bail!("{ctx}: name used twice");
        }
        let tsa = super::seal::resolve_endpoint(
            &ctx,
            super::seal::EndpointSection {
                url: e.url,
                tls_ca: e.tls_ca,
                ca: e.ca,
                timeout_ms: e.timeout_ms,
                policy: e.policy,
            },
            data_dir,
        )?;
        external.push(ExternalAnchor { name: e.name, tsa });
    }
    let has_target = self_target || !external.is_empty();
    // Without any target (no [tsa], no external TSA) there is nothing to anchor with:
    // off unless asked for explicitly, which is an error.
    let enabled = s.enabled.unwrap_or(has_target);
    if enabled && !has_target {
        bail!(
            "[anchor] is enabled but has no target: configure [tsa] (the own TSA anchors as \
             \"self\"), add [[anchor.external]], or set anchor.enabled = false"
        );
    }
    Ok(AnchorSettings {
        enabled,
        interval,
        max_leaves,
        self_target,
        retry_max,
        external,
    })
}
