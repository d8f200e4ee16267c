//! The `hanko.toml` that `dev-init` writes for `hanko serve --dev`: the dev token, the
//! dev keys and one TSA policy per TSU key.

use super::paths::write_file;
use super::{DevKey, DevPaths, Report};
use crate::config::{self, FileConfig, KeyUsage};

/// Writes `<data-dir>/hanko.toml` with `keys` unless it exists: an existing one is the
/// operator's and is never overwritten (the report names the keys it lacks).
pub(super) fn write_if_missing(
    paths: &DevPaths,
    keys: &[DevKey],
    report: &mut Report,
) -> anyhow::Result<()> {
    if !paths.config_file.exists() {
        write_file(
            &paths.config_file,
            dev_config(paths, keys).as_bytes(),
            0o644,
        )?;
        report.created(paths.config_file.display());
        return Ok(());
    }
    let file = FileConfig::load(&paths.config_file)?;
    let missing: Vec<&str> = keys
        .iter()
        .filter(|k| !file.keys.iter().any(|c| c.label == k.label))
        .map(|k| k.label)
        .collect();
    if missing.is_empty() {
        report.reused(paths.config_file.display());
    } else {
        report.reused(format!(
            "{} (kept as it is: it does not configure the token keys {}; delete it to have \
             dev-init write one with every key)",
            paths.config_file.display(),
            missing.join(", ")
        ));
    }
    Ok(())
}

/// A TOML basic string with escapes.
fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// The `hanko.toml` dev-init writes, with `keys`.
fn dev_config(paths: &DevPaths, keys: &[DevKey]) -> String {
    let mut s = format!(
        "# Written by `hanko dev-init` for `hanko serve --dev`. DEVELOPMENT ONLY.\n\
         # Production: start from ops/hanko.example.toml instead.\n\
         dev = true\n\
         \n\
         [hsm]\n\
         module = {}\n\
         token_label = {}\n\
         softhsm2_conf = {}\n\
         # SoftHSM signs on this host's cores: few workers, not the network-HSM default (16).\n\
         workers = 2\n\
         queue_depth = 128\n\
         call_timeout_ms = 10000\n\
         verify_after_sign = true\n",
        toml_str(config::DEFAULT_MODULE),
        toml_str(config::DEV_TOKEN_LABEL),
        toml_str(&paths.softhsm_conf.display().to_string())
    );
    for k in keys {
        s.push_str(&format!(
            "\n[[keys]]\nlabel = \"{}\"\nusage = \"{}\"\nalgorithm = \"{}\"\nchain = \"dev-pki/{}-chain.pem\"\n",
            k.label,
            k.usage.as_str(),
            k.algorithm.name(),
            k.label
        ));
        if let Some(description) = dev_seal_description(k.label) {
            // The credential's metadata (docs/configuration.md, [keys.seal]).
            s.push_str(&format!(
                "\n[keys.seal]\ndescription = {}\nlevels = [\"B-B\", \"B-T\"]\ndisplay_name = {}\nimage = \"dev-pki/{}\"\n",
                toml_str(description),
                toml_str(DEV_SEAL_DISPLAY_NAME),
                super::seal_image::DEV_SEAL_IMAGE
            ));
        }
    }
    // One policy per TSU key, so that every one serves: the ETSI best-practices policy
    // (the default) is signed by the RSA key, each other TSU key signs a dev-only policy
    // of its own. Clients choose with reqPolicy (`openssl ts -query -tspolicy`). The
    // dev policies are RFC 7229's id-TEST-certPolicyTwo.., OIDs reserved for tests.
    let tsu: Vec<&DevKey> = keys.iter().filter(|k| k.usage == KeyUsage::Tsa).collect();
    let default_key = tsu
        .iter()
        .find(|k| k.policy.is_none())
        .map_or("", |k| k.label);
    let policies: Vec<(String, &str)> = tsu
        .iter()
        .filter_map(|k| Some((toml_str(k.policy?), k.label)))
        .collect();
    let accepted: Vec<&str> = policies.iter().map(|(p, _)| p.as_str()).collect();
    s.push_str(&format!(
        "\n[tsa]\nkey = {}\naccepted_policies = [{}]\n\n[tsa.policy_keys]\n",
        toml_str(default_key),
        accepted.join(", ")
    ));
    for (p, label) in &policies {
        s.push_str(&format!("{p} = {}\n", toml_str(label)));
    }
    s
}

/// `http.threads` of `serve --dev` when its configuration sets none: SoftHSM's signing
/// threads keep the cores busy, and each extra runtime thread adds wake-ups that preempt
/// them (`http.threads` in docs/configuration.md). Not written into the dev config, whose
/// `[http]` section stays the user's (and the tests') to add.
pub const DEV_RUNTIME_THREADS: usize = 1;

/// The organisation a dev seal's visible form names (PAdES).
pub const DEV_SEAL_DISPLAY_NAME: &str = "Hanko 開発市役所 (DEVELOPMENT ONLY)";

/// The description of a dev seal credential; `None` for a key that is not a seal key.
fn dev_seal_description(label: &str) -> Option<&'static str> {
    match label {
        "seal-rsa3072" => Some("Dev seal, RSA-3072: certificates of residence (test data only)"),
        "seal-p256" => Some("Dev seal, ECDSA P-256: invoices and notices (test data only)"),
        "seal-rsa3072-pss" => Some("Dev seal, RSA-3072 PSS (test data only)"),
        "seal-p384" => Some("Dev seal, ECDSA P-384 (test data only)"),
        "seal-ed25519" => Some("Dev seal, Ed25519 (test data only)"),
        _ => None,
    }
}

/// The dev-only policy whose tokens the P-256 key signs (see the generated `hanko.toml`).
pub const DEV_ECDSA_POLICY: &str = "1.3.6.1.5.5.7.13.2";
/// The dev-only policy of the RSA-PSS TSU key (`dev-init --all-key-types`).
pub const DEV_RSA_PSS_POLICY: &str = "1.3.6.1.5.5.7.13.3";
/// The dev-only policy of the ECDSA P-384 TSU key (`dev-init --all-key-types`).
pub const DEV_P384_POLICY: &str = "1.3.6.1.5.5.7.13.4";
/// The dev-only policy of the Ed25519 TSU key (`dev-init --all-key-types`).
pub const DEV_ED25519_POLICY: &str = "1.3.6.1.5.5.7.13.5";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn the_dev_config_parses_and_leaves_http_to_the_user() {
        let paths = DevPaths::new(std::path::Path::new("/nonexistent/hanko-dev")).unwrap();
        let text = dev_config(&paths, &super::super::DEV_KEYS);
        let file: crate::config::FileConfig = toml::from_str(&text).unwrap();
        assert_eq!(file.hsm.workers, Some(2));
        // Users and tests append their own [http]; a second one would not parse.
        assert!(!text.contains("[http]"), "{text}");
        assert_eq!(crate::config::runtime_threads(&file.http).unwrap(), None);
    }
}
