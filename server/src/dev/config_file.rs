//! The `hanko.toml` that `dev-init` writes for `hanko serve --dev`: the dev token, the
//! four dev keys and two TSA policies, one per TSU key.

use super::paths::write_file;
use super::{DEV_KEYS, DevPaths, Report};
use crate::config;

/// Writes `<data-dir>/hanko.toml` unless it exists: an existing one is the operator's
/// and is never overwritten.
pub(super) fn write_if_missing(paths: &DevPaths, report: &mut Report) -> anyhow::Result<()> {
    if paths.config_file.exists() {
        report.reused(paths.config_file.display());
    } else {
        write_file(&paths.config_file, dev_config(paths).as_bytes(), 0o644)?;
        report.created(paths.config_file.display());
    }
    Ok(())
}

/// A TOML basic string with escapes.
fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// The `hanko.toml` dev-init writes.
fn dev_config(paths: &DevPaths) -> String {
    let mut s = format!(
        "# Written by `hanko dev-init` for `hanko serve --dev`. DEVELOPMENT ONLY.\n\
         # Production: start from ops/hanko.example.toml instead.\n\
         dev = true\n\
         \n\
         [hsm]\n\
         module = {}\n\
         token_label = {}\n\
         softhsm2_conf = {}\n\
         workers = 2\n\
         queue_depth = 128\n\
         call_timeout_ms = 10000\n\
         verify_after_sign = true\n",
        toml_str(config::DEFAULT_MODULE),
        toml_str(config::DEV_TOKEN_LABEL),
        toml_str(&paths.softhsm_conf.display().to_string())
    );
    for k in DEV_KEYS {
        s.push_str(&format!(
            "\n[[keys]]\nlabel = \"{}\"\nusage = \"{}\"\nalgorithm = \"{}\"\nchain = \"dev-pki/{}-chain.pem\"\n",
            k.label,
            k.usage.as_str(),
            k.algorithm().name(),
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
    // Two policies so that both TSU keys serve: the ETSI best-practices policy is signed
    // by the RSA key, a dev-only policy
    // by the P-256 key. Clients choose with reqPolicy (`openssl ts -query -tspolicy`).
    // The dev policy is RFC 7229's id-TEST-certPolicyTwo, an OID reserved for tests.
    s.push_str(&format!(
        "\n[tsa]\nkey = \"tsa-rsa3072\"\naccepted_policies = [{p}]\n\n[tsa.policy_keys]\n{p} = \"tsa-p256\"\n",
        p = toml_str(DEV_ECDSA_POLICY)
    ));
    s
}

/// The organisation a dev seal's visible form names (PAdES).
pub const DEV_SEAL_DISPLAY_NAME: &str = "Hanko 開発市役所 (DEVELOPMENT ONLY)";

/// The description of a dev seal credential; `None` for a key that is not a seal key.
fn dev_seal_description(label: &str) -> Option<&'static str> {
    match label {
        "seal-rsa3072" => Some("Dev seal, RSA-3072: certificates of residence (test data only)"),
        "seal-p256" => Some("Dev seal, ECDSA P-256: invoices and notices (test data only)"),
        _ => None,
    }
}

/// The dev-only policy whose tokens the P-256 key signs (see the generated `hanko.toml`).
pub const DEV_ECDSA_POLICY: &str = "1.3.6.1.5.5.7.13.2";
