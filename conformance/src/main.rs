//! `hanko-conformance`: the auditors' command line. Exit status 0 when every check
//! passed (or was skipped), 1 when any failed, 2 when the inputs could not be read.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use hanko_conformance::report::{Findings, Input, Report};
use hanko_conformance::token::{self, Expect};
use hanko_conformance::{cades, cert, crypto, now_rfc3339, pades, tsa};

/// Checks a time-stamp authority and the artefacts of a trust service (tokens, CAdES and
/// PAdES seals, RFC 4998 evidence records, issuance-log exports) against the requirements
/// of Hanko's docs/requirements.md (RFC 3161/5816, ETSI EN 319 422, EN 319 122-1,
/// EN 319 142-1, RFC 4998), on a code path of its own.
#[derive(Debug, Parser)]
#[command(name = "hanko-conformance", version)]
struct Cli {
    #[command(flatten)]
    out: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct Output {
    /// Print the report as JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Also write a self-contained HTML report to this file.
    #[arg(long, global = true, value_name = "FILE")]
    html: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Probe a running TSA: well-formed requests with every hash, nonce and certReq
    /// combination, and every bad input; check each reply and token.
    Tsa {
        /// The TSA's URL, e.g. http://127.0.0.1:8318/tsa.
        #[arg(long)]
        url: String,
        /// The trust anchor(s) the TSA certificate must chain to (PEM or DER).
        #[arg(long, value_name = "ROOT.pem")]
        ca: PathBuf,
        /// The policy to ask for with reqPolicy (else the one the TSA picks).
        #[arg(long, value_name = "OID")]
        policy: Option<String>,
        /// The TSA claims the EU-qualified profile (qcStatements expected).
        #[arg(long)]
        qualified: bool,
        /// Trust anchors of an https listener (PEM); the web PKI's otherwise.
        #[arg(long, value_name = "PEM")]
        tls_ca: Option<PathBuf>,
        /// Seconds to wait for each reply.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// Check a time-stamp token or TimeStampResp file from any producer.
    Token(TokenArgs),
    /// Check a CAdES signature, detached or enveloping (DER CMS), against EN 319 122-1
    /// B-B and B-T.
    Cades {
        /// The signature file (DER ContentInfo SignedData).
        file: PathBuf,
        /// The signed data (needed for a detached signature; for an enveloping one it must
        /// be the encapsulated content, and may be left out).
        #[arg(long, value_name = "FILE")]
        data: Option<PathBuf>,
        /// Trust anchor(s) for the signer (PEM or DER); without it the chain check is
        /// skipped.
        #[arg(long, value_name = "ROOT.pem")]
        ca: Option<PathBuf>,
    },
    /// Check each signature of a PDF against EN 319 142-1 B-B and B-T.
    Pades {
        /// The signed PDF.
        file: PathBuf,
        /// Trust anchor(s) for the signers (PEM or DER); without it the chain check is
        /// skipped.
        #[arg(long, value_name = "ROOT.pem")]
        ca: Option<PathBuf>,
    },
    /// Check an RFC 4998 evidence record (DER `.ers`) against its data (F.62 to F.67).
    Evidence(EvidenceArgs),
    /// Check an issuance-log export of `hanko log export` (JSON lines; C.38, B.25).
    Log(LogArgs),
}

#[derive(Debug, Args)]
struct TokenArgs {
    /// The `.tsr` (TimeStampResp) or token (ContentInfo) file, DER.
    file: PathBuf,
    /// The time-stamped data: its hash must be the token's imprint.
    #[arg(long, value_name = "FILE")]
    data: Option<PathBuf>,
    /// Trust anchor(s) for the TSA certificate (PEM or DER).
    #[arg(long, value_name = "ROOT.pem")]
    ca: Option<PathBuf>,
    /// The TSA certificate, first, and any intermediates, for a token without
    /// certificates (PEM or DER).
    #[arg(long, value_name = "PEM")]
    cert: Option<PathBuf>,
    /// The request's nonce (hex of the INTEGER's contents); with --no-nonce, none.
    #[arg(long, value_name = "HEX", conflicts_with = "no_nonce")]
    nonce: Option<String>,
    /// The request carried no nonce.
    #[arg(long)]
    no_nonce: bool,
    /// The request's certReq (true or false).
    #[arg(long, value_name = "BOOL")]
    cert_req: Option<bool>,
    /// The policy the token must carry.
    #[arg(long, value_name = "OID")]
    policy: Option<String>,
    /// The EU-qualified profile is claimed (qcStatements expected).
    #[arg(long)]
    qualified: bool,
}

fn read(path: &PathBuf) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn input(path: &Path, bytes: &[u8]) -> Input {
    Input {
        name: path.display().to_string(),
        sha256: crypto::sha256_hex(bytes),
    }
}

fn certificates(path: &PathBuf) -> Result<(Vec<Vec<u8>>, Input), String> {
    let bytes = read(path)?;
    let certs = cert::certificates_from_pem_or_der(&bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((certs, input(path, &bytes)))
}

fn run(cli: &Cli) -> Result<Report, String> {
    let started = now_rfc3339();
    match &cli.command {
        Command::Tsa {
            url,
            ca,
            policy,
            qualified,
            tls_ca,
            timeout,
        } => {
            if let Some(p) = policy {
                hanko_conformance::der::parse_oid(p).map_err(|e| format!("--policy: {e}"))?;
            }
            let (ca_certs, ca_input) = certificates(ca)?;
            let tls_ca = tls_ca.as_ref().map(read).transpose()?;
            let target = tsa::Target {
                url: url.clone(),
                ca: ca_certs,
                policy: policy.clone(),
                qualified: *qualified,
                tls_ca,
                timeout: Duration::from_secs((*timeout).max(1)),
            };
            let findings = tsa::probe(&target)?;
            let inputs = vec![
                Input {
                    name: url.clone(),
                    sha256: String::new(),
                },
                ca_input,
            ];
            Ok(findings.into_report(&format!("tsa {url}"), started, inputs))
        }
        Command::Token(a) => token_report(a, started),
        Command::Evidence(a) => evidence_report(a, started),
        Command::Log(a) => log_report(a, started),
        Command::Cades { file, data, ca } => {
            let p7s = read(file)?;
            let mut inputs = vec![input(file, &p7s)];
            let content = match data {
                Some(d) => {
                    let bytes = read(d)?;
                    inputs.push(input(d, &bytes));
                    Some(bytes)
                }
                None => None,
            };
            let anchors = anchors(ca.as_ref(), &mut inputs)?;
            let mut f = Findings::new();
            cades::check_signature(&p7s, content.as_deref(), &anchors, &mut f);
            Ok(f.into_report(&format!("cades {}", file.display()), started, inputs))
        }
        Command::Pades { file, ca } => {
            let pdf = read(file)?;
            let mut inputs = vec![input(file, &pdf)];
            let anchors = anchors(ca.as_ref(), &mut inputs)?;
            let mut f = Findings::new();
            pades::check(&pdf, &anchors, &mut f);
            Ok(f.into_report(&format!("pades {}", file.display()), started, inputs))
        }
    }
}

/// The trust anchors of `--ca`, if given, recorded among the inputs.
fn anchors(ca: Option<&PathBuf>, inputs: &mut Vec<Input>) -> Result<Vec<Vec<u8>>, String> {
    let Some(path) = ca else {
        return Ok(Vec::new());
    };
    let (certs, i) = certificates(path)?;
    inputs.push(i);
    Ok(certs)
}

fn token_report(a: &TokenArgs, started: String) -> Result<Report, String> {
    let bytes = read(&a.file)?;
    let mut inputs = vec![input(&a.file, &bytes)];
    let tok = token::token_of(&bytes).map_err(|e| format!("{}: {e}", a.file.display()))?;
    let mut expect = Expect {
        policy: a.policy.clone(),
        cert_req: a.cert_req,
        qualified: a.qualified,
        ..Expect::default()
    };
    if a.no_nonce {
        expect.nonce = Some(None);
    } else if let Some(n) = &a.nonce {
        expect.nonce = Some(Some(hex::decode(n).map_err(|e| format!("--nonce: {e}"))?));
    }
    if let Some(ca) = &a.ca {
        let (certs, i) = certificates(ca)?;
        expect.ca = certs;
        inputs.push(i);
    }
    if let Some(c) = &a.cert {
        let (certs, i) = certificates(c)?;
        // The first is the TSA certificate; any others are intermediates.
        let mut certs = certs.into_iter();
        expect.signer_cert = certs.next();
        expect.intermediates = certs.collect();
        inputs.push(i);
    }
    if let Some(d) = &a.data {
        let data = read(d)?;
        inputs.push(input(d, &data));
        // The imprint's algorithm is the token's; the data is hashed with it.
        let alg = token::imprint_alg(tok).ok_or("the token's imprint algorithm is unreadable")?;
        let hash = crypto::Hash::from_oid(&alg).map_err(|e| format!("the token's imprint: {e}"))?;
        expect.imprint = Some((alg, hash.digest(&data)));
    }
    let mut f = Findings::new();
    token::check_token(tok, &expect, "", &mut f);
    Ok(f.into_report(&format!("token {}", a.file.display()), started, inputs))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let report = match run(&cli) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hanko-conformance: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.out.json {
        println!("{}", report.json());
    } else {
        print!("{}", report.text());
    }
    if let Some(path) = &cli.out.html
        && let Err(e) = std::fs::write(path, report.html())
    {
        eprintln!("hanko-conformance: writing {}: {e}", path.display());
        return ExitCode::from(2);
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

#[derive(Debug, Args)]
struct EvidenceArgs {
    /// The evidence record, DER (`.ers`).
    file: PathBuf,
    /// The data object the record is over (hashed with each chain's algorithm).
    #[arg(long, value_name = "FILE")]
    data: Option<PathBuf>,
    /// The data's hash instead of the data, e.g. sha256:HEX (sha256, sha384, sha512 or
    /// a dotted OID); may be repeated, one per algorithm.
    #[arg(long, value_name = "ALG:HEX")]
    data_hash: Vec<String>,
    /// Trust anchor(s) for the archive time-stamps' TSA certificates (PEM or DER).
    #[arg(long, value_name = "ROOT.pem")]
    ca: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct LogArgs {
    /// The export: JSON lines as `hanko log export [--tokens]` writes them.
    file: PathBuf,
    /// Trust anchor(s) for the tokens' TSA certificates (PEM or DER).
    #[arg(long, value_name = "ROOT.pem")]
    ca: Option<PathBuf>,
}

/// `ALG:HEX` of --data-hash as (hash OID, value).
fn data_hash_arg(arg: &str) -> Result<(String, Vec<u8>), String> {
    let (alg, value) = arg
        .split_once(':')
        .ok_or_else(|| format!("--data-hash {arg:?}: expected ALG:HEX, e.g. sha256:ab12..."))?;
    let oid = match alg.to_ascii_lowercase().replace('-', "").as_str() {
        "sha256" => crypto::oid::SHA256.to_owned(),
        "sha384" => crypto::oid::SHA384.to_owned(),
        "sha512" => crypto::oid::SHA512.to_owned(),
        _ => {
            hanko_conformance::der::parse_oid(alg)
                .map_err(|e| format!("--data-hash: unknown algorithm {alg:?} ({e})"))?;
            alg.to_owned()
        }
    };
    let value = hex::decode(value).map_err(|e| format!("--data-hash {arg:?}: {e}"))?;
    if let Ok(h) = crypto::Hash::from_oid(&oid)
        && h.output_len() != value.len()
    {
        return Err(format!(
            "--data-hash {arg:?}: {} octets, a {} has {}",
            value.len(),
            h.name(),
            h.output_len()
        ));
    }
    Ok((oid, value))
}

fn evidence_report(a: &EvidenceArgs, started: String) -> Result<Report, String> {
    let ers = read(&a.file)?;
    let mut inputs = vec![input(&a.file, &ers)];
    let hashes = a
        .data_hash
        .iter()
        .map(|h| data_hash_arg(h))
        .collect::<Result<Vec<_>, _>>()?;
    let data = match &a.data {
        Some(d) => {
            let bytes = read(d)?;
            inputs.push(input(d, &bytes));
            Some(bytes)
        }
        None => None,
    };
    let mut ca = Vec::new();
    if let Some(path) = &a.ca {
        let (certs, i) = certificates(path)?;
        ca = certs;
        inputs.push(i);
    }
    let mut f = Findings::new();
    hanko_conformance::evidence::check(&ers, &hashes, data.as_deref(), &ca, &mut f);
    Ok(f.into_report(&format!("evidence {}", a.file.display()), started, inputs))
}

fn log_report(a: &LogArgs, started: String) -> Result<Report, String> {
    let export = read(&a.file)?;
    let mut inputs = vec![input(&a.file, &export)];
    let mut ca = Vec::new();
    if let Some(path) = &a.ca {
        let (certs, i) = certificates(path)?;
        ca = certs;
        inputs.push(i);
    }
    let mut f = Findings::new();
    hanko_conformance::log::check(&export, &ca, &mut f);
    Ok(f.into_report(&format!("log {}", a.file.display()), started, inputs))
}
