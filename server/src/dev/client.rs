//! The dev client: an API key that may seal with every dev seal credential, so that a
//! newcomer can seal at once:
//!
//! ```text
//! curl -H "Authorization: Bearer $(cat hanko-data/dev-api-key)" --data-binary @doc.pdf \
//!      "127.0.0.1:3161/api/v1/seal/cades?credential=seal-p256" -o doc.p7s
//! ```
//!
//! The key is in `<data-dir>/dev-api-key` (0600), made once and reused like the dev PIN;
//! `hanko.toml` holds only its SHA-256, in an `[[api_keys]]` entry named [`DEV_CLIENT`]
//! with the scopes `seal` and `archive` (archive submissions, issue #16) and the dev seal
//! credentials that config has. A data directory
//! made before the dev client existed gets it on its next `dev-init` / `serve --dev`:
//! the entry is appended to its `hanko.toml` (nothing else in the file changes). A
//! `dev-api-key` deleted by hand is made again, and the entry's digest follows it.

use std::fs;

use anyhow::Context as _;

use super::paths::{check_private, replace_file, write_file};
use super::{DevKey, DevPaths, Report};
use crate::auth::{SCOPE_ARCHIVE, SCOPE_SEAL, generate_key, key_digest_hex};
use crate::config::{FileConfig, KeyUsage};

/// The name of the dev client's `[[api_keys]]` entry (its identity in the log).
pub const DEV_CLIENT: &str = "dev-client";

/// Makes or reuses `dev-api-key` and the dev client's entry in `hanko.toml`, which names
/// the seal keys among `keys` that the file configures.
pub(super) fn ensure(paths: &DevPaths, keys: &[DevKey], report: &mut Report) -> anyhow::Result<()> {
    let key = dev_api_key(paths, report)?;
    let digest = key_digest_hex(&key);
    let text = fs::read_to_string(&paths.config_file)
        .with_context(|| format!("cannot read {}", paths.config_file.display()))?;
    let file: FileConfig = toml::from_str(&text)
        .with_context(|| format!("config file {}", paths.config_file.display()))?;
    let what = format!(
        "[[api_keys]] \"{DEV_CLIENT}\" in {}",
        paths.config_file.display()
    );
    let updated = match file.api_keys.iter().find(|k| k.name == DEV_CLIENT) {
        Some(entry) if entry.sha256.trim().eq_ignore_ascii_case(&digest) => {
            report.reused(what);
            return Ok(());
        }
        // The key file was made again: the entry's digest follows it (a digest is 64 hex
        // digits, found nowhere else in the file).
        Some(entry) => text.replace(entry.sha256.trim(), &digest),
        None => {
            let credentials: Vec<String> = keys
                .iter()
                .filter(|k| k.usage == KeyUsage::Seal)
                .filter(|k| {
                    file.keys
                        .iter()
                        .any(|c| c.label == k.label && c.usage == KeyUsage::Seal)
                })
                .map(|k| toml::Value::String(k.label.to_owned()).to_string())
                .collect();
            if credentials.is_empty() {
                report.reused(format!(
                    "{} (no dev seal key configured: no dev client)",
                    paths.config_file.display()
                ));
                return Ok(());
            }
            let mut t = text.clone();
            if !t.ends_with('\n') {
                t.push('\n');
            }
            t.push_str(&format!(
                "\n# The dev client (`hanko dev-init`): its key is in dev-api-key.\n\
                 [[api_keys]]\n\
                 name = \"{DEV_CLIENT}\"\n\
                 sha256 = \"{digest}\"\n\
                 scopes = [\"{SCOPE_SEAL}\", \"{SCOPE_ARCHIVE}\"]\n\
                 credentials = [{}]\n",
                credentials.join(", ")
            ));
            t
        }
    };
    // What is written must still be a config the server accepts.
    toml::from_str::<FileConfig>(&updated)
        .with_context(|| format!("adding the dev client to {}", paths.config_file.display()))?;
    let mode = fs::metadata(&paths.config_file)
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
        .unwrap_or(0o644);
    replace_file(&paths.config_file, updated.as_bytes(), mode)?;
    report.created(what);
    Ok(())
}

/// The key from `<data-dir>/dev-api-key`, made (0600) when missing.
fn dev_api_key(paths: &DevPaths, report: &mut Report) -> anyhow::Result<String> {
    let path = &paths.api_key_file;
    if path.exists() {
        check_private(path)?;
        let key =
            fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let key = key.trim();
        if !key.is_empty() {
            report.reused(path.display());
            return Ok(key.to_owned());
        }
        fs::remove_file(path).with_context(|| format!("cannot replace {}", path.display()))?;
    }
    let key = generate_key();
    write_file(path, format!("{key}\n").as_bytes(), 0o600)?;
    report.created(format!(
        "{} (dev client's API key, mode 0600)",
        path.display()
    ));
    Ok(key)
}
