//! `hanko api-key new`: makes a key for the operator to hand out, and prints the
//! `[[clients]]` entry (with only the key's SHA-256) for the server's config.

use base64::Engine as _;
use clap::{Args, Subcommand};
use sha2::{Digest as _, Sha256};

use super::{ClientSection, Clients};

/// Prefix of keys made by `hanko api-key new` (recognisable in secret scanners).
pub const KEY_PREFIX: &str = "hanko_";

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
    /// Make a new random API key: prints the key once, and the `[[clients]]` entry
    /// (with only the key's SHA-256) to add to the server's config.
    New(ApiKeyNewArgs),
}

/// `hanko api-key new`.
#[derive(Debug, Args)]
pub struct ApiKeyNewArgs {
    /// Who gets the key (e.g. "auditor"); its requests are logged under this name.
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// A scope the key grants; repeat for several. Known: tsa, seal, log:read, csc, archive.
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// A seal credential (key label) the key may use, with `--scope seal` or `--scope
    /// csc`; repeat for several.
    #[arg(long = "credential", value_name = "NAME")]
    pub credentials: Vec<String>,
}

/// Runs `hanko api-key ...`: prints to stdout, touches no file and no HSM.
pub fn api_key_command(args: ApiKeyArgs) -> anyhow::Result<()> {
    match args.command {
        ApiKeyCommand::New(a) => {
            let key = generate_key();
            let section = ClientSection {
                name: a.name,
                api_key_sha256: Some(key_digest_hex(&key)),
                scopes: a.scopes,
                credentials: a.credentials,
                ..ClientSection::default()
            };
            // Same checks as the server's config, before anything is printed.
            Clients::from_config(std::slice::from_ref(&section), &[], true)?;
            print!("{}", new_key_text(&key, &section));
            Ok(())
        }
    }
}

/// What `api-key new` prints: the key once, then the config entry.
pub(super) fn new_key_text(key: &str, s: &ClientSection) -> String {
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
         [[clients]]\n\
         name = {name_toml}\n\
         api_key_sha256 = \"{sha}\"\n\
         scopes = [{scopes}]\n\
         {credentials}",
        name = s.name,
        name_toml = toml_str(&s.name),
        sha = s.api_key_sha256.as_deref().unwrap_or_default(),
        scopes = list(&s.scopes),
    )
}
