//! `hanko archive submit`: an archive hands the SHA-256 of its files to a Hanko server to
//! be anchored (issue #16). The files never leave the machine: they are hashed here,
//! read in 1 MiB pieces, and only the digests are sent.
//!
//! ```text
//!   hanko archive submit FILE... [--url BASE] [--api-key-file F] [--ca ROOT.pem]
//!     SHA-256 of each FILE (streamed) ─> POST BASE/api/v1/archive/objects?alg=sha256
//!        (application/octet-stream, the digests concatenated; in requests of at most
//!         --per-request digests)
//!     <─ one id per digest ─> prints "<id>  <sha256>  <new|existing>  <FILE>"
//!        and when the batch is expected to close; then `hanko evidence get --file FILE`
//! ```
//!
//! The API key comes from a file (`--api-key-file`, `HANKO_API_KEY_FILE`, or the dev
//! client's `hanko-data/dev-api-key`), never a flag. Exit codes: 0 every file submitted,
//! 1 the server refused (its JSON error is printed), 2 any other error.

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use hanko_client::transport;
use sha2::{Digest as _, Sha256};

use crate::client_cli::ApiArgs;

/// `hanko archive`.
#[derive(Debug, Args)]
pub struct ArchiveArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ArchiveCommand,
}

/// `hanko archive` subcommands.
#[derive(Debug, Subcommand)]
pub enum ArchiveCommand {
    /// Submit files' SHA-256 hashes to be anchored (the files are hashed here and never
    /// sent); prints each file's id. Exit 0 submitted, 1 refused by the server, 2 error.
    Submit(SubmitArgs),
}

/// `hanko archive submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The files whose hashes to submit.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// The server, its TLS trust and the API key (a client with the scope `archive`).
    #[command(flatten)]
    pub api: ApiArgs,
    /// Most hashes per request (the server's `archive.max_hashes_per_request` must allow
    /// it).
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub per_request: u64,
}

/// Runs `hanko archive ...` and returns the exit code.
pub fn archive_main(args: ArchiveArgs) -> ExitCode {
    match args.command {
        ArchiveCommand::Submit(a) => crate::client_cli::exit_with(submit(&a)),
    }
}

/// SHA-256 of a file, read in pieces.
fn sha256_file(path: &Path) -> anyhow::Result<[u8; 32]> {
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}

fn submit(a: &SubmitArgs) -> anyhow::Result<String> {
    let (tls, key) = a.api.connect()?;
    let hashes = a
        .files
        .iter()
        .map(|f| sha256_file(f))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let per_request = usize::try_from(a.per_request).unwrap_or(1000);
    let mut out = String::new();
    let (mut new, mut existing) = (0usize, 0usize);
    let mut expected_by: Option<String> = None;
    for (files, digests) in a.files.chunks(per_request).zip(hashes.chunks(per_request)) {
        let body = digests.concat();
        let reply =
            transport::post_archive_objects(&a.api.url, &key, &body, a.api.timeout(), &tls)?;
        let v: serde_json::Value =
            serde_json::from_slice(&reply).context("the server's answer is not JSON")?;
        let objects = v["objects"]
            .as_array()
            .filter(|o| o.len() == digests.len())
            .context("the server's answer has not one object per hash")?;
        for ((file, digest), o) in files.iter().zip(digests).zip(objects) {
            let hex = hex::encode(digest);
            if o["hex"].as_str() != Some(hex.as_str()) {
                anyhow::bail!(
                    "the server answered for another hash than {}",
                    file.display()
                );
            }
            let status = o["status"].as_str().unwrap_or("?");
            if status == "new" {
                new += 1;
            } else {
                existing += 1;
            }
            if let Some(t) = o["expected_by"].as_str() {
                expected_by = Some(expected_by.map_or(t.to_owned(), |e| e.max(t.to_owned())));
            }
            let id = o["id"].as_str().unwrap_or("?");
            let _ = writeln!(out, "{id}  {hex}  {status:<8}  {}", file.display());
        }
    }
    let _ = writeln!(
        out,
        "submitted {} hashes ({new} new, {existing} already submitted)",
        new + existing
    );
    if let Some(t) = expected_by {
        let _ = writeln!(out, "their batch is expected to close by {t}");
    }
    let _ = writeln!(
        out,
        "then: hanko evidence get --file FILE --url {} -o FILE.ers",
        a.api.url
    );
    Ok(out)
}
