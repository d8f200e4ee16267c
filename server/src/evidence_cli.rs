//! `hanko evidence get` and `hanko evidence verify`: RFC 4998 evidence records from the
//! command line (issue #15).
//!
//! ```text
//!   hanko evidence get (--sha256 HEX | --file F | --serial HEX [--kind K]) [--anchor NAME]
//!       [--url BASE] [--ca ROOT.pem ...] -o FILE.ers
//!     GET BASE/api/v1/evidence/sha256/HEX (or /serial/HEX) -> FILE.ers
//!     a 404 prints the server's reason (batch still open: expected by ...; anchor pending)
//!
//!   hanko evidence verify FILE.ers [FILE2.ers ...] --data FILE --ca ROOT.pem
//!     data hash = SHA-256(FILE), or for a time-stamp response FILE.tsr SHA-256 of its token
//!     (and, when the record is not of the token, of the whole .tsr: archives submit files)
//!     anchor::check::verify_records (the verification page's code too):
//!     each record: hanko_anchor::evidence::check_data (tree from the data to every imprint)
//!                  hanko_client::verify_evidence: every archive time-stamp's token
//!                  (signature, timeStamping EKU, chain to --ca valid at its genTime),
//!                  its chain also valid at the next one's genTime, the last one's now
//!                  (RFC 4998 §5.3); one line per time-stamp: TSA, algorithms, chain
//!     "this file existed at 2026-12-02T14:03:07Z, anchored by 2 TSAs (...)"
//!
//!   hanko evidence renew FILE.ers [--data-hash ALG:HEX ...] [--force] [--out FILE]
//!       [--url BASE] [--api-key-file F] [--ca ROOT.pem]        (issue #16)
//!     POST BASE/api/v1/evidence/renew?data_hash=ALG:HEX&force=true (the DER record)
//!     -> the renewed record in --out (default: FILE.ers itself, replaced only on success)
//!     a refusal prints the server's reason (not due: from when; does not verify: why)
//! ```
//!
//! Offline: `verify` reads only its files. Exit codes: `get` 0 written, 1 the server has
//! no record yet (404), 2 error; `verify` 0 valid, 1 not (the reason is printed);
//! `renew` 0 renewed, 1 refused by the server, 2 error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use hanko_client::transport;
use hanko_client::verify::pdf::rfc3339;
use hanko_pki::HashAlgorithm;

use crate::client_cli::{ApiArgs, TlsArgs, read_pem_certs};

/// `hanko evidence`.
#[derive(Debug, Args)]
pub struct EvidenceArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: EvidenceCommand,
}

/// `hanko evidence` subcommands.
#[derive(Debug, Subcommand)]
pub enum EvidenceCommand {
    /// Fetch the evidence record of an issued object from a Hanko server. Exit 0
    /// written, 1 not available yet (the reason is printed), 2 error.
    Get(GetArgs),
    /// Verify evidence records offline against the data and a root certificate. Exit 0
    /// valid, 1 not (the reason is printed).
    Verify(VerifyArgs),
    /// Renew an evidence record you hold through a Hanko server (a new time-stamp, or a
    /// new hash tree with --data-hash under a stronger algorithm). Exit 0 renewed, 1
    /// refused (the reason is printed), 2 error.
    Renew(RenewArgs),
}

/// `hanko evidence renew`.
#[derive(Debug, Args)]
pub struct RenewArgs {
    /// The evidence record (DER), made by Hanko or another RFC 4998 product.
    #[arg(value_name = "FILE.ers")]
    pub record: PathBuf,
    /// The data's hash, `ALG:HEX` (sha256, sha384, sha512): under an algorithm the
    /// record does not use yet it asks for a hash-tree renewal to it; under one it uses,
    /// it lets the server check the record against your data. Repeatable.
    #[arg(long = "data-hash", value_name = "ALG:HEX")]
    pub data_hash: Vec<String>,
    /// Renew even when the server's renewal policy says it is not due.
    #[arg(long)]
    pub force: bool,
    /// Where to write the renewed record [default: FILE.ers, replaced].
    #[arg(long = "out", short = 'o', value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// The server, its TLS trust and the API key (a client with the scope `archive`).
    #[command(flatten)]
    pub api: ApiArgs,
}

/// `hanko evidence get`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("object").required(true).args(["sha256", "file", "serial"])))]
pub struct GetArgs {
    /// The object's SHA-256 (64 hex digits): of the token for a time-stamp, of the
    /// sealed file for a seal.
    #[arg(long, value_name = "HEX")]
    pub sha256: Option<String>,
    /// The object itself: a file whose SHA-256 is looked up (a `.tsr`: its token, then
    /// the whole file, as an archive submits it).
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The record's serial, hexadecimal.
    #[arg(long, value_name = "HEX")]
    pub serial: Option<String>,
    /// With --serial: the record kind (timestamp, seal, archive-stamp, archive-object),
    /// when a serial names several.
    #[arg(long, value_name = "KIND", requires = "serial")]
    pub kind: Option<String>,
    /// Which anchor's record [default: the first done one, the server's own TSA first].
    #[arg(long, value_name = "NAME")]
    pub anchor: Option<String>,
    /// The server's base URL.
    #[arg(long, value_name = "URL", default_value = transport::DEFAULT_SEAL_URL)]
    pub url: String,
    /// https: the server's trust anchor and, for mTLS, the client's certificate.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Where to write the evidence record.
    #[arg(short = 'o', long = "out", value_name = "FILE.ers")]
    pub out: PathBuf,
    /// HTTP timeout in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub timeout: u64,
}

/// `hanko evidence verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The evidence records (one per anchor), DER.
    #[arg(value_name = "FILE.ers", required = true)]
    pub records: Vec<PathBuf>,
    /// The data the records are about: the file that was sealed or time-stamped's token
    /// (a `.tsr` time-stamp response is recognised and its token used; the whole file
    /// when the record is of the file, as archives submit it).
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,
    /// PEM trust anchor(s) of the time-stamping authorities.
    #[arg(long, value_name = "ROOT.pem", required = true)]
    pub ca: Vec<PathBuf>,
    /// PEM intermediate certificates that help build the TSAs' chains.
    #[arg(long, value_name = "CHAIN.pem")]
    pub untrusted: Option<PathBuf>,
}

/// Runs `hanko evidence ...` and returns the exit code.
pub fn evidence_main(args: EvidenceArgs) -> ExitCode {
    match args.command {
        EvidenceCommand::Get(a) => match get(&a) {
            Ok(Got::Written(n)) => {
                println!("evidence record written to {} ({n} bytes)", a.out.display());
                ExitCode::SUCCESS
            }
            Ok(Got::NotYet(why)) => {
                eprintln!("hanko: no evidence record yet: {why}");
                ExitCode::from(1)
            }
            Err(e) => {
                eprintln!("hanko: error: {e:#}");
                ExitCode::from(2)
            }
        },
        EvidenceCommand::Renew(a) => crate::client_cli::exit_with(renew(&a)),
        EvidenceCommand::Verify(a) => match verify(&a) {
            Ok(summary) => {
                print!("{summary}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("hanko: evidence verification FAILED: {e:#}");
                ExitCode::from(1)
            }
        },
    }
}

enum Got {
    Written(usize),
    NotYet(String),
}

fn read(p: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))
}

/// The object a file stands for: a granted TimeStampResp's token, else the file itself.
fn object_of(bytes: Vec<u8>) -> Vec<u8> {
    crate::anchor::check::object_of(&bytes).to_vec()
}

fn get(a: &GetArgs) -> anyhow::Result<Got> {
    let base = a.url.trim_end_matches('/');
    let mut query = Vec::new();
    // A `.tsr` given with --file is looked up by its token, then (if the log has no such
    // object) by the whole file, as an archive may have submitted it.
    let mut whole_file = None;
    let path = if let Some(serial) = &a.serial {
        if let Some(k) = &a.kind {
            query.push(format!("kind={k}"));
        }
        format!("serial/{}", serial.trim())
    } else {
        let hash = match (&a.sha256, &a.file) {
            (Some(h), _) => {
                let h = h.trim().to_ascii_lowercase();
                if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                    bail!("--sha256 must be 64 hexadecimal digits");
                }
                h
            }
            (None, Some(f)) => {
                let bytes = read(f)?;
                let object = object_of(bytes.clone());
                if object != bytes {
                    whole_file = Some(format!(
                        "sha256/{}",
                        hex::encode(HashAlgorithm::Sha256.digest(&bytes))
                    ));
                }
                hex::encode(HashAlgorithm::Sha256.digest(&object))
            }
            (None, None) => bail!("give --sha256, --file or --serial"),
        };
        format!("sha256/{hash}")
    };
    if let Some(n) = &a.anchor {
        query.push(format!("anchor={n}"));
    }
    let with_query = |path: &str| {
        let url = format!("{base}/api/v1/evidence/{path}");
        if query.is_empty() {
            url
        } else {
            format!("{url}?{}", query.join("&"))
        }
    };
    let tls = a.tls.load()?;
    let timeout = Duration::from_secs(a.timeout);
    let mut got = transport::get_evidence(&with_query(&path), timeout, &tls);
    if let (Some(alt), Err(hanko_client::Error::HttpStatus { body, .. })) = (&whole_file, &got)
        && serde_json::from_str::<serde_json::Value>(body).is_ok_and(|v| v["error"] == "not_found")
    {
        got = transport::get_evidence(&with_query(alt), timeout, &tls);
    }
    match got {
        Ok(der) => {
            std::fs::write(&a.out, &der)
                .with_context(|| format!("cannot write {}", a.out.display()))?;
            Ok(Got::Written(der.len()))
        }
        Err(hanko_client::Error::HttpStatus { status, body, .. }) if status.starts_with("404") => {
            let why = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error_description"].as_str().map(str::to_owned))
                .unwrap_or(body);
            Ok(Got::NotYet(why))
        }
        Err(e) => Err(e.into()),
    }
}

fn verify(a: &VerifyArgs) -> anyhow::Result<String> {
    let data = read(&a.data)?;
    let mut roots = Vec::new();
    for ca in &a.ca {
        roots.extend(read_pem_certs(ca)?);
    }
    let untrusted = match &a.untrusted {
        Some(p) => read_pem_certs(p)?,
        None => Vec::new(),
    };
    let records = a
        .records
        .iter()
        .map(|p| read(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let slices: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
    let name = |i: usize| {
        a.records
            .get(i)
            .map_or_else(String::new, |p| p.display().to_string())
    };
    let v =
        crate::anchor::check::verify_records(&slices, &data, &roots, &untrusted).map_err(|e| {
            use crate::anchor::check::EvidenceCheckError as E;
            let file = match &e {
                E::Record { index, .. } | E::TimeStamp { index, .. } => Some(name(*index)),
                E::NoRecords => None,
            };
            let e = anyhow::Error::new(e);
            match file {
                Some(f) => e.context(f),
                None => e,
            }
        })?;
    let Some(first) = v.existed_at() else {
        bail!("no archive time-stamp in the records");
    };
    let anchored = &v.anchored;
    let mut out = format!(
        "Evidence: OK\nthis file existed at {}, anchored by {} TSA{} ({})\n",
        rfc3339(first),
        anchored.len(),
        if anchored.len() == 1 { "" } else { "s" },
        anchored
            .iter()
            .map(|x| format!("{} at {}", x.tsa, rfc3339(x.gen_time)))
            .collect::<Vec<_>>()
            .join("; ")
    );
    for x in anchored {
        out.push_str(&format!(
            "  {}: {} at {}\n",
            name(x.index),
            x.tsa,
            rfc3339(x.gen_time)
        ));
        for step in &x.steps {
            out.push_str(&format!("    {step}\n"));
        }
    }
    Ok(out)
}

fn renew(a: &RenewArgs) -> anyhow::Result<String> {
    let record = read(&a.record)?;
    let mut hashes: Vec<(String, Vec<u8>)> = Vec::new();
    for h in &a.data_hash {
        let Some((alg, hex)) = h.split_once(':') else {
            bail!("--data-hash {h}: write ALG:HEX, e.g. sha512:ab12...");
        };
        let Some(want) = HashAlgorithm::from_name(alg) else {
            bail!("--data-hash {h}: unknown hash algorithm {alg:?} (sha256, sha384, sha512)");
        };
        let bytes =
            hex::decode(hex).with_context(|| format!("--data-hash {h}: not hexadecimal"))?;
        if bytes.len() != want.output_len() {
            bail!(
                "--data-hash {h}: a {} hash is {} hex digits, got {}",
                want.name(),
                2 * want.output_len(),
                hex.len()
            );
        }
        hashes.push((want.name().to_owned(), bytes));
    }
    let (tls, key) = a.api.connect()?;
    let pairs: Vec<(&str, &[u8])> = hashes
        .iter()
        .map(|(alg, h)| (alg.as_str(), h.as_slice()))
        .collect();
    let renewed = transport::post_evidence_renew(
        &a.api.url,
        &key,
        &record,
        &pairs,
        a.force,
        a.api.timeout(),
        &tls,
    )?;
    let out = a.out.as_ref().unwrap_or(&a.record);
    std::fs::write(out, &renewed).with_context(|| format!("cannot write {}", out.display()))?;
    let er = hanko_anchor::evidence::EvidenceRecord::from_der(&renewed)
        .context("the server's answer is not an evidence record")?;
    let chains = er.archive_time_stamp_sequence.len();
    let stamps: usize = er.archive_time_stamp_sequence.iter().map(Vec::len).sum();
    Ok(format!(
        "evidence record renewed: {} ({} bytes; {chains} chain{}, {stamps} archive time-stamps)\n",
        out.display(),
        renewed.len(),
        if chains == 1 { "" } else { "s" }
    ))
}
