//! `hanko seal` and `hanko seal-verify`: e-seals from the command line, through a Hanko
//! server's API with an API key (see [`crate::client_cli`] for the diagram, the key's
//! lookup and the exit codes they share).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use hanko_client::transport;
use hanko_client::transport::{PdfSealQuery, SealQuery};
use hanko_pki::HashAlgorithm;

use crate::client_cli::{ApiArgs, exit_with, read, read_pem_certs};

/// Levels of `hanko seal --level` (CAdES, or PAdES for a .pdf).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LevelArg {
    /// B-B: the signature and its signed attributes.
    #[value(name = "B-B")]
    BB,
    /// B-T: B-B plus a time-stamp over the signature value from the server's TSA.
    #[value(name = "B-T")]
    BT,
}

impl LevelArg {
    fn name(self) -> &'static str {
        match self {
            Self::BB => "B-B",
            Self::BT => "B-T",
        }
    }
}

/// `hanko seal`.
#[derive(Debug, Args)]
pub struct SealArgs {
    /// The file to seal. It is sent whole to the server.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The seal credential (in `--dev`: seal-rsa3072 or seal-p256).
    #[arg(long, value_name = "NAME")]
    pub credential: String,
    /// Seal level (CAdES, or PAdES for a .pdf).
    #[arg(long, value_enum, default_value_t = LevelArg::BB)]
    pub level: LevelArg,
    /// Enveloping: the file goes inside the .p7s (for small files); detached otherwise.
    #[arg(long)]
    pub attached: bool,
    /// The file's mime type, signed into the seal (e.g. application/pdf).
    #[arg(long, value_name = "TYPE")]
    pub mime_type: Option<String>,
    /// Where to write the seal [default: FILE.p7s; for a PDF, FILE.sealed.pdf].
    #[arg(long, value_name = "FILE.p7s")]
    pub out: Option<PathBuf>,
    /// A PDF (`.pdf`) is sealed as PAdES, into the PDF: visible, drawn in `--rect`.
    #[arg(long, requires = "rect")]
    pub visible: bool,
    /// PDF only: the page of the seal (1-based) [default: 1].
    #[arg(long, value_name = "N")]
    pub page: Option<u32>,
    /// PDF only: the visible seal's rectangle, in PDF points from the page's
    /// lower-left corner.
    #[arg(long, value_name = "x,y,w,h", requires = "visible")]
    pub rect: Option<String>,
    /// PDF only: a certification (DocMDP) seal; later changes other than form filling
    /// and signatures are flagged by viewers.
    #[arg(long)]
    pub certify: bool,
    /// The server, its TLS trust and the API key.
    #[command(flatten)]
    pub api: ApiArgs,
}

/// `hanko seal-verify`.
#[derive(Debug, Args)]
pub struct SealVerifyArgs {
    /// The seal (DER CMS), as written by `hanko seal`, or a sealed PDF (PAdES).
    #[arg(value_name = "FILE.p7s|FILE.pdf")]
    pub seal: PathBuf,
    /// The sealed document: required for a detached seal; for an enveloping one, when
    /// given, it must be the seal's content.
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// Trust anchor(s) of the seal certificate: PEM file with the root certificate(s).
    #[arg(long, value_name = "ROOT.pem")]
    pub ca: PathBuf,
    /// Trust anchor(s) of a B-T seal's time-stamp [default: --ca].
    #[arg(long, value_name = "ROOT.pem")]
    pub tsa_ca: Option<PathBuf>,
    /// The seal must be enveloping (the document inside); without it, detached.
    #[arg(long)]
    pub attached: bool,
}

/// Runs `hanko seal-verify`: prints a summary and exits 0, or prints the reason and
/// exits 1.
pub fn seal_verify_main(args: SealVerifyArgs) -> ExitCode {
    match seal_verify_files(&args) {
        Ok(summary) => {
            print!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hanko: seal verification FAILED: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn seal_verify_files(args: &SealVerifyArgs) -> anyhow::Result<String> {
    let seal = read(&args.seal)?;
    let roots = read_pem_certs(&args.ca)?;
    let tsa_roots = match &args.tsa_ca {
        Some(p) => read_pem_certs(p)?,
        None => roots.clone(),
    };
    if seal.starts_with(b"%PDF-") {
        if args.data.is_some() || args.attached {
            anyhow::bail!("a sealed PDF carries its document: --data and --attached are for .p7s");
        }
        return Ok(hanko_client::verify_pdf(&seal, &roots, &tsa_roots)?.summary());
    }
    let data = match &args.data {
        Some(p) => Some(read(p)?),
        None => None,
    };
    let v = hanko_client::verify_seal(&seal, data.as_deref(), &roots, &tsa_roots)?;
    if v.attached != args.attached {
        let name = |attached| if attached { "enveloping" } else { "detached" };
        return Err(hanko_client::Error::SealPackaging {
            found: name(v.attached),
            expected: name(args.attached),
        }
        .into());
    }
    Ok(v.summary())
}

/// Runs `hanko seal`: 0 when the seal was received and written; 1 when the server
/// refused (its JSON error is printed); 2 on any other error.
pub fn seal_main(args: SealArgs) -> ExitCode {
    exit_with(seal(&args))
}

fn seal(args: &SealArgs) -> anyhow::Result<String> {
    let (tls, key) = args.api.connect()?;
    let key = key.as_str();
    let document = read(&args.file)?;
    let is_pdf = args
        .file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("pdf"));
    if is_pdf {
        return seal_pdf(args, key, &document, &tls);
    }
    if args.visible || args.page.is_some() || args.certify {
        anyhow::bail!("--visible, --page, --rect and --certify are for PDF files (FILE.pdf)");
    }
    let query = SealQuery {
        credential: &args.credential,
        level: args.level.name(),
        attached: args.attached,
    };
    let p7s = transport::post_seal(
        &args.api.url,
        key,
        &query,
        args.mime_type.as_deref(),
        &document,
        args.api.timeout(),
        &tls,
    )?;
    let out = args.out.clone().unwrap_or_else(|| {
        let mut s = args.file.clone().into_os_string();
        s.push(".p7s");
        PathBuf::from(s)
    });
    std::fs::write(&out, &p7s).with_context(|| format!("writing {}", out.display()))?;
    let mut summary = String::new();
    let _ = writeln!(
        summary,
        "Sealed ({}, {}), written to {}",
        args.level.name(),
        if args.attached {
            "attached"
        } else {
            "detached"
        },
        out.display()
    );
    let _ = writeln!(summary, "  credential : {}", args.credential);
    let _ = writeln!(
        summary,
        "  sha256     : {} (the log's object_hash)",
        hex::encode(HashAlgorithm::Sha256.digest(&p7s))
    );
    let content = if args.attached {
        String::new()
    } else {
        format!(" -content {}", args.file.display())
    };
    let _ = writeln!(
        summary,
        "Check it with: openssl cms -verify -binary -inform DER -in {}{content} -CAfile ROOT.pem -out /dev/null",
        out.display()
    );
    Ok(summary)
}

/// `hanko seal FILE.pdf`: PAdES through `POST /api/v1/seal/pdf`.
fn seal_pdf(
    args: &SealArgs,
    key: &str,
    document: &[u8],
    tls: &transport::Tls,
) -> anyhow::Result<String> {
    if args.attached || args.mime_type.is_some() {
        anyhow::bail!("--attached and --mime-type are for CAdES; a PDF is sealed into itself");
    }
    let query = PdfSealQuery {
        credential: &args.credential,
        level: args.level.name(),
        page: args.page,
        rect: args.rect.as_deref().filter(|_| args.visible),
        certify: args.certify,
    };
    let sealed = transport::post_seal_pdf(
        &args.api.url,
        key,
        &query,
        document,
        args.api.timeout(),
        tls,
    )?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.file.with_extension("sealed.pdf"));
    std::fs::write(&out, &sealed).with_context(|| format!("writing {}", out.display()))?;
    let mut summary = String::new();
    let _ = writeln!(
        summary,
        "Sealed (PAdES {}, {}), written to {}",
        args.level.name(),
        if args.visible { "visible" } else { "invisible" },
        out.display()
    );
    let _ = writeln!(summary, "  credential : {}", args.credential);
    let _ = writeln!(
        summary,
        "  sha256     : {} (the log's object_hash)",
        hex::encode(HashAlgorithm::Sha256.digest(&sealed))
    );
    let _ = writeln!(
        summary,
        "Check it with: pdfsig {} (or pyHanko's validator, trusting ROOT.pem)",
        out.display()
    );
    Ok(summary)
}
