//! `hanko stamp` and `hanko verify`: the command-line face of [`hanko_client`], so that a
//! user can try a time-stamp authority (ours or anyone's) without OpenSSL incantations.
//!
//! ```text
//!   hanko stamp FILE  --hash-->  TimeStampReq (random 64-bit nonce, certReq)
//!                     --HTTP(S) POST application/timestamp-query-->  TSA
//!     https: --ca ROOT.pem (the server's anchor), mTLS: --client-cert/--client-key
//!                     <--TimeStampResp--  check status, imprint, nonce  -->  FILE.tsr
//!
//!   hanko verify FILE.tsr --data FILE --ca ROOT.pem [--untrusted CHAIN.pem] [--query Q.tsq]
//!     -> hanko_client::verify (every check is listed in hanko_client::verify's docs)
//!
//!   hanko seal FILE --credential NAME [--level B-B|B-T] [--attached]
//!     API key from --api-key-file, HANKO_API_KEY_FILE or hanko-data/dev-api-key
//!     --HTTP POST FILE, Authorization: Bearer-->  /api/v1/seal/cades  -->  FILE.p7s
//!   hanko seal FILE.pdf --credential NAME [--level ..] [--visible --page N --rect x,y,w,h]
//!     [--certify]      --HTTP POST-->  /api/v1/seal/pdf  -->  FILE.sealed.pdf (PAdES)
//!
//!   hanko seal-verify FILE.p7s [--data FILE] --ca ROOT.pem [--tsa-ca ROOT.pem] [--attached]
//!     -> hanko_client::verify_seal (every check is listed in its docs)
//!   hanko seal-verify FILE.pdf --ca ROOT.pem [--tsa-ca ROOT.pem]
//!     -> hanko_client::verify_pdf (each signature's byte range, then verify_seal's checks)
//! ```
//!
//! The API key is read from a file, never taken as a flag or printed: a flag's value
//! shows in `ps` and in shell history.
//!
//! This module holds the flags, reads and writes the files, prints and picks the exit
//! code; requests, transport and verification are the library's. `hanko seal` and
//! `hanko seal-verify` are in [`crate::seal_cli`]; what every client command shares (the
//! API key, TLS flags, the exit codes) is here.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use hanko_client::reply::Reply;
use hanko_client::transport::{DEFAULT_SEAL_URL, DEFAULT_URL};
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
    /// The TSA's URL, http:// or https://.
    #[arg(long, value_name = "URL", default_value = DEFAULT_URL)]
    pub url: String,
    /// https: the server's trust anchor and, for mTLS, the client's certificate.
    #[command(flatten)]
    pub tls: TlsArgs,
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

/// How the client commands speak https: whom to trust, and who they are (mTLS).
#[derive(Debug, Args)]
pub struct TlsArgs {
    /// https: PEM file of the server's trust anchor(s), e.g. hanko-data/dev-pki/root.pem
    /// for `hanko serve --dev` [default: the public web PKI's roots].
    #[arg(long, value_name = "ROOT.pem")]
    pub ca: Option<PathBuf>,
    /// https with mTLS: PEM file of this client's certificate (then its issuing CAs).
    #[arg(long, value_name = "CERT.pem", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// https with mTLS: PEM file of the client certificate's private key.
    #[arg(long, value_name = "KEY.pem", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
}

impl TlsArgs {
    /// The files read and parsed.
    pub fn load(&self) -> anyhow::Result<transport::Tls> {
        let ca = self.ca.as_deref().map(read).transpose()?;
        let client = match (&self.client_cert, &self.client_key) {
            (Some(c), Some(k)) => Some((read(c)?, read(k)?)),
            _ => None,
        };
        let client = client.as_ref().map(|(c, k)| (c.as_slice(), k.as_slice()));
        Ok(transport::Tls::from_pem(ca.as_deref(), client)?)
    }
}

/// Where `hanko seal` looks for the API key when neither `--api-key-file` nor
/// `HANKO_API_KEY_FILE` names a file: the dev client's key of `hanko serve --dev`.
pub const DEV_API_KEY_FILE: &str = "hanko-data/dev-api-key";

/// How a client command reaches a Hanko server's API with an API key (`hanko seal`,
/// `hanko archive submit`, `hanko evidence renew`).
#[derive(Debug, Args)]
pub struct ApiArgs {
    /// The server's base URL, http:// or https:// (`hanko serve --dev`:
    /// https://127.0.0.1:3443 with `--ca hanko-data/dev-pki/root.pem`).
    #[arg(long, value_name = "URL", default_value = DEFAULT_SEAL_URL)]
    pub url: String,
    /// https: the server's trust anchor and, for mTLS, the client's certificate.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// File holding the API key of a client with the route's scope (`seal`, `archive`)
    /// [default: hanko-data/dev-api-key when it exists].
    #[arg(long, value_name = "FILE", env = "HANKO_API_KEY_FILE")]
    pub api_key_file: Option<PathBuf>,
    /// HTTP timeout in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub timeout: u64,
}

impl ApiArgs {
    /// The URL checked, the TLS settings loaded and the API key read, in that order.
    pub(crate) fn connect(&self) -> anyhow::Result<(transport::Tls, String)> {
        transport::check_url(&self.url)?;
        let tls = self.tls.load()?;
        let key = read_api_key(self.api_key_file.as_deref())?;
        Ok((tls, key))
    }

    /// The timeout.
    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout)
    }
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

/// Prints a client command's summary (exit 0), or its error: 1 when the server refused
/// the request (an HTTP status, its JSON error printed), 2 for anything else.
pub(crate) fn exit_with(result: anyhow::Result<String>) -> ExitCode {
    match result {
        Ok(summary) => {
            print!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            let refused = e
                .downcast_ref::<hanko_client::Error>()
                .is_some_and(|c| matches!(c, hanko_client::Error::HttpStatus { .. }));
            if refused {
                eprintln!("hanko: the server refused: {e:#}");
                ExitCode::from(1)
            } else {
                eprintln!("hanko: error: {e:#}");
                ExitCode::from(2)
            }
        }
    }
}

/// The API key from `file` (`--api-key-file` / `HANKO_API_KEY_FILE`), else from
/// [`DEV_API_KEY_FILE`] when it exists; trimmed, never empty. The key is never a flag.
pub(crate) fn read_api_key(file: Option<&Path>) -> anyhow::Result<String> {
    let key_file = match file {
        Some(p) => p.to_owned(),
        None if Path::new(DEV_API_KEY_FILE).exists() => PathBuf::from(DEV_API_KEY_FILE),
        None => anyhow::bail!(
            "no API key: give --api-key-file FILE or HANKO_API_KEY_FILE (a file holding the \
             key; never the key itself), or run in the directory of `hanko serve --dev`, \
             whose dev client key is {DEV_API_KEY_FILE}"
        ),
    };
    let key = std::fs::read_to_string(&key_file)
        .with_context(|| format!("cannot read the API key file {}", key_file.display()))?;
    let key = key.trim();
    if key.is_empty() {
        anyhow::bail!("the API key file {} is empty", key_file.display());
    }
    Ok(key.to_owned())
}

enum Stamped {
    Granted(String),
    Refused(String),
}

fn stamp(args: &StampArgs) -> anyhow::Result<Stamped> {
    transport::check_url(&args.url)?;
    let tls = args.tls.load()?;
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
    let body = transport::post(
        &args.url,
        &request_der,
        Duration::from_secs(args.timeout),
        &tls,
    )?;
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

pub(crate) fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

pub(crate) fn read_pem_certs(path: &Path) -> anyhow::Result<Vec<Certificate>> {
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
