//! `[verify]`: the recipient's verification page and API (`/verify`,
//! `POST /api/v1/verify`, issue #20): its trust anchors and its limits.
//!
//! ```text
//!   trust_anchors = ["roots.pem", ...]   each file's certificates (relative to data_dir)
//!       unset: the server's own roots (the top of each [[keys]] chain, and seal.tsa_ca)
//!   max_upload_bytes  (default 20 MiB, 1 KiB..=1 GiB)   file and data together
//!   max_in_flight     (default 4, 1..=256)              verifications at once
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use hanko_pki::cert::{Certificate, load_pem_chain};
use serde::Deserialize;

use super::seal::under;

/// `[verify]` as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifySection {
    /// `verify.trust_anchors`: PEM files whose certificates the page trusts. Relative
    /// to `data_dir`. Unset: the server's own roots.
    pub trust_anchors: Option<Vec<PathBuf>>,
    /// `verify.max_upload_bytes`: the largest upload (file and data together).
    pub max_upload_bytes: Option<usize>,
    /// `verify.max_in_flight`: verifications at once; more are refused with 503.
    pub max_in_flight: Option<usize>,
}

/// `[verify]`, checked.
#[derive(Clone, Debug)]
pub struct VerifySettings {
    /// The configured anchors; `None`: the server's own roots (decided at start-up,
    /// when the keys' chains are loaded).
    pub trust_anchors: Option<Vec<Certificate>>,
    /// The largest upload, bytes.
    pub max_upload_bytes: usize,
    /// Verifications at once.
    pub max_in_flight: usize,
}

impl Default for VerifySettings {
    fn default() -> Self {
        Self {
            trust_anchors: None,
            max_upload_bytes: crate::verify::DEFAULT_MAX_UPLOAD_BYTES,
            max_in_flight: crate::verify::DEFAULT_MAX_IN_FLIGHT,
        }
    }
}

pub(super) fn resolve_verify(s: VerifySection, data_dir: &Path) -> anyhow::Result<VerifySettings> {
    let max_upload_bytes = match s.max_upload_bytes {
        None => crate::verify::DEFAULT_MAX_UPLOAD_BYTES,
        Some(n @ 1024..=1_073_741_824) => n,
        Some(n) => bail!("verify.max_upload_bytes = {n}: allowed 1024..=1073741824"),
    };
    let max_in_flight = match s.max_in_flight {
        None => crate::verify::DEFAULT_MAX_IN_FLIGHT,
        Some(n @ 1..=256) => n,
        Some(n) => bail!("verify.max_in_flight = {n}: allowed 1..=256"),
    };
    let trust_anchors = match s.trust_anchors {
        None => None,
        Some(files) if files.is_empty() => {
            bail!("verify.trust_anchors is empty: name PEM files, or leave it unset")
        }
        Some(files) => {
            let mut all = Vec::new();
            for p in files {
                let p = under(data_dir, p);
                let pem = std::fs::read_to_string(&p).with_context(|| {
                    format!("verify.trust_anchors: cannot read {}", p.display())
                })?;
                let certs = load_pem_chain(&pem)
                    .with_context(|| format!("verify.trust_anchors: {}", p.display()))?;
                if certs.is_empty() {
                    bail!("verify.trust_anchors: {} holds no certificate", p.display());
                }
                all.extend(certs);
            }
            Some(all)
        }
    };
    Ok(VerifySettings {
        trust_anchors,
        max_upload_bytes,
        max_in_flight,
    })
}
