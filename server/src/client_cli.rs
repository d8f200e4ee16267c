//! `hanko stamp` and `hanko verify`: the command-line face of [`hanko_client`], so that a
//! user can try a time-stamp authority (ours or anyone's) without OpenSSL incantations.
//!
//! ```text
//!   hanko stamp FILE  --hash-->  TimeStampReq (random 64-bit nonce, certReq)
//!                     --HTTP POST application/timestamp-query-->  TSA
//!                     <--TimeStampResp--  check status, imprint, nonce  -->  FILE.tsr
//!
//!   hanko verify FILE.tsr --data FILE --ca ROOT.pem [--untrusted CHAIN.pem] [--query Q.tsq]
//!     -> hanko_client::verify (every check is listed in hanko_client::verify's docs)
//! ```
//!
//! This module holds the flags, reads and writes the files, prints and picks the exit
//! code; requests, transport and verification are the library's.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use hanko_client::reply::Reply;
use hanko_client::transport::DEFAULT_URL;
use hanko_client::{Verified, reply, request, transport};
use hanko_pki::HashAlgorithm;
use hanko_pki::cert::Certificate;

/// Imprint hash algorithms of `hanko stamp --hash`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum HashArg {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashArg {
    fn alg(self) -> HashAlgorithm {
        match self {
            Self::Sha256 => HashAlgorithm::Sha256,
            Self::Sha384 => HashAlgorithm::Sha384,
            Self::Sha512 => HashAlgorithm::Sha512,
        }
    }
}

/// `hanko stamp`.
#[derive(Debug, Args)]
pub struct StampArgs {
    /// The file to time-stamp. Only its hash leaves this machine.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The TSA's URL (http only in this build).
    #[arg(long, value_name = "URL", default_value = DEFAULT_URL)]
    pub url: String,
    /// Imprint hash algorithm.
    #[arg(long, value_enum, default_value_t = HashArg::Sha256)]
    pub hash: HashArg,
    /// Ask for this TSA policy OID (default: the TSA's default policy).
    #[arg(long, value_name = "OID")]
    pub policy: Option<String>,
    /// Send no nonce (by default a random 64-bit nonce, checked in the reply).
    #[arg(long)]
    pub no_nonce: bool,
    /// Do not ask for the TSA's certificates in the token.
    #[arg(long)]
    pub no_cert_req: bool,
    /// Where to write the TimeStampResp [default: FILE.tsr].
    #[arg(long, value_name = "FILE.tsr")]
    pub out: Option<PathBuf>,
    /// Also write the request sent (for `hanko verify --query` or `openssl ts -verify
    /// -queryfile`).
    #[arg(long, value_name = "FILE.tsq")]
    pub query_out: Option<PathBuf>,
    /// HTTP timeout in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub timeout: u64,
}

/// `hanko verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The TimeStampResp (DER), as written by `hanko stamp` or `openssl ts -reply`.
    #[arg(value_name = "FILE.tsr")]
    pub response: PathBuf,
    /// The time-stamped data.
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,
    /// Trust anchor(s): PEM file with the root certificate(s). Every certificate in it
    /// is trusted as an anchor (like openssl's -partial_chain), so give roots only.
    #[arg(long, value_name = "ROOT.pem")]
    pub ca: PathBuf,
    /// Further certificates to build the chain with (PEM), e.g. the TSA certificate and
    /// intermediates when the token carries none.
    #[arg(long, value_name = "CHAIN.pem")]
    pub untrusted: Option<PathBuf>,
    /// The request (DER) the token answers: its nonce, policy and certReq are checked.
    #[arg(long, value_name = "FILE.tsq")]
    pub query: Option<PathBuf>,
}

/// Runs `hanko stamp`: 0 when a token was received, checked and written; 1 when the TSA
/// refused (its status and failure info are printed); 2 on any other error.
pub fn stamp_main(args: StampArgs) -> ExitCode {
    match stamp(&args) {
        Ok(Stamped::Granted(summary)) => {
            print!("{summary}");
            ExitCode::SUCCESS
        }
        Ok(Stamped::Refused(why)) => {
            eprintln!("hanko: the TSA refused: {why}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("hanko: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs `hanko verify`: prints a summary and exits 0, or prints the reason and exits 1.
pub fn verify_main(args: VerifyArgs) -> ExitCode {
    match verify_files(&args) {
        Ok(v) => {
            print!("{}", v.summary());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hanko: verification FAILED: {e:#}");
            ExitCode::from(1)
        }
    }
}

enum Stamped {
    Granted(String),
    Refused(String),
}

fn stamp(args: &StampArgs) -> anyhow::Result<Stamped> {
    transport::check_url(&args.url)?;
    let hash = args.hash.alg();
    let digest = request::hash_file(&args.file, hash)?;
    let nonce = (!args.no_nonce).then(request::random_nonce);
    let req = request::build(
        hash,
        digest.clone(),
        nonce,
        args.policy.as_deref(),
        !args.no_cert_req,
    )?;
    let request_der = request::encode(&req)?;
    if let Some(q) = &args.query_out {
        std::fs::write(q, &request_der).with_context(|| format!("writing {}", q.display()))?;
    }
    let body = transport::post(&args.url, &request_der, Duration::from_secs(args.timeout))?;
    // The token must answer this request; the full check is `hanko verify`.
    let granted = match reply::check(&body, &req)? {
        Reply::Granted(g) => g,
        Reply::Refused(why) => return Ok(Stamped::Refused(why)),
    };
    let out = args.out.clone().unwrap_or_else(|| {
        let mut s = args.file.clone().into_os_string();
        s.push(".tsr");
        PathBuf::from(s)
    });
    std::fs::write(&out, &body).with_context(|| format!("writing {}", out.display()))?;
    let mut summary = String::new();
    let _ = writeln!(summary, "Time-stamp granted, written to {}", out.display());
    let _ = writeln!(summary, "  serial  : {}", granted.serial);
    let _ = writeln!(summary, "  genTime : {}", granted.gen_time_text);
    let _ = writeln!(summary, "  policy  : {}", granted.policy);
    let _ = writeln!(
        summary,
        "  hash    : {} {}",
        hash.name(),
        hex::encode(&digest)
    );
    let _ = writeln!(
        summary,
        "Check it with: hanko verify {} --data {} --ca ROOT.pem",
        out.display(),
        args.file.display()
    );
    Ok(Stamped::Granted(summary))
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn read_pem_certs(path: &Path) -> anyhow::Result<Vec<Certificate>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    hanko_pki::cert::load_pem_chain(&text).with_context(|| format!("{}", path.display()))
}

fn verify_files(args: &VerifyArgs) -> anyhow::Result<Verified> {
    let response = read(&args.response)?;
    let roots = read_pem_certs(&args.ca)?;
    let untrusted = match &args.untrusted {
        Some(p) => read_pem_certs(p)?,
        None => Vec::new(),
    };
    let query = match &args.query {
        Some(p) => Some(read(p)?),
        None => None,
    };
    let data = &args.data;
    Ok(hanko_client::verify(
        &response,
        &|alg| request::hash_file(data, alg),
        query.as_deref(),
        &roots,
        &untrusted,
    )?)
}
