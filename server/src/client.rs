//! `hanko stamp` and `hanko verify`: a small RFC 3161 client, so that a user can try a
//! time-stamp authority (ours or anyone's) without OpenSSL incantations.
//!
//! ```text
//!   hanko stamp FILE  --hash-->  TimeStampReq (random 64-bit nonce, certReq)
//!                     --HTTP POST application/timestamp-query-->  TSA
//!                     <--TimeStampResp--  check status, imprint, nonce  -->  FILE.tsr
//!
//!   hanko verify FILE.tsr --data FILE --ca ROOT.pem [--untrusted CHAIN.pem] [--query Q.tsq]
//!     TimeStampResp granted -> SignedData (one SignerInfo) -> TSTInfo
//!     imprint = H(data); nonce/policy = the query's; content-type and message-digest
//!     attributes; signature over the signed attributes (their bytes as received);
//!     ESSCertIDv2 certHash = H(signer certificate DER); signer certificate has exactly
//!     one, critical extendedKeyUsage = {timeStamping}; chain to --ca, each signature
//!     checked and each certificate valid at genTime.
//! ```
//!
//! `verify` is deliberately an independent path: it shares nothing with `hanko-tsa`'s
//! token builder. It decodes with `rasn` types, takes the signed-attribute and
//! certificate bytes straight from the received DER (never a re-encoding), and uses only
//! `hanko_pki`'s signature primitive (`verify::verify`) and certificate accessors
//! (`Certificate::verify_issued_by`). A bug in the builder therefore cannot hide itself
//! here.
//!
//! What it does not do: no revocation checking (CRL/OCSP), no https (the HTTP client is
//! `ureq` without TLS, to keep the binary free of a second TLS stack before the TLS issue
//! lands: put the TSA behind http on localhost or use openssl/curl for https), no
//! ESSCertID v1 (SHA-1) tokens, and no policy constraints or name constraints of the
//! chain. It answers "did this TSA, certified under this root, time-stamp these bytes at
//! that time", which is what a user trying the service wants to know.

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, anyhow, bail, ensure};
use clap::{Args, ValueEnum};
use hanko_pki::cert::{Certificate, OID_EXTENDED_KEY_USAGE, OID_KP_TIME_STAMPING};
use hanko_pki::{HashAlgorithm, SignatureAlgorithm};
use rasn::types::{Integer, ObjectIdentifier, OctetString};
use rasn_cms::SignedData;
use rasn_cms::tsp::{MessageImprint, PkiStatus, TimeStampReq, TimeStampResp, TstInfo};
use rasn_pkix::{AlgorithmIdentifier, Attribute};

/// The default TSA URL of `hanko stamp` (a local `hanko serve`).
pub const DEFAULT_URL: &str = "http://127.0.0.1:3161/tsa";
/// Largest TimeStampResp `stamp` accepts (a token with a chain is a few KiB).
const MAX_RESPONSE_BYTES: u64 = 1 << 20;
const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";

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
    if args.url.starts_with("https://") {
        bail!(
            "this build of `hanko stamp` speaks plain http only; use an http:// URL \
             (e.g. {DEFAULT_URL}) or openssl ts + curl for https"
        );
    }
    let hash = args.hash.alg();
    let digest = hash_file(&args.file, hash)?;
    let nonce = (!args.no_nonce).then(random_nonce);
    let policy = match &args.policy {
        Some(p) => {
            Some(hanko_pki::cms::oid(p).map_err(|_| anyhow!("--policy {p:?} is not an OID"))?)
        }
        None => None,
    };
    let request = TimeStampReq {
        version: 1,
        message_imprint: MessageImprint {
            // RFC 5754 §2: SHA-2 parameters absent.
            hash_algorithm: AlgorithmIdentifier {
                algorithm: hanko_pki::cms::oid(hash.oid()).map_err(|e| anyhow!("hash OID: {e}"))?,
                parameters: None,
            },
            hashed_message: OctetString::from(digest.clone()),
        },
        req_policy: policy.clone(),
        nonce: nonce.map(Integer::from),
        cert_req: !args.no_cert_req,
        extensions: None,
    };
    let request_der =
        rasn::der::encode(&request).map_err(|e| anyhow!("encoding the request: {e}"))?;
    if let Some(q) = &args.query_out {
        std::fs::write(q, &request_der).with_context(|| format!("writing {}", q.display()))?;
    }

    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(args.timeout.max(1))))
        .http_status_as_error(false)
        .build()
        .into();
    let mut reply = agent
        .post(&args.url)
        .header("Content-Type", "application/timestamp-query")
        .header("Accept", "application/timestamp-reply")
        .send(&request_der[..])
        .with_context(|| format!("POST {}", args.url))?;
    let status = reply.status();
    let content_type = reply
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = reply
        .body_mut()
        .with_config()
        .limit(MAX_RESPONSE_BYTES)
        .read_to_vec()
        .context("reading the reply")?;
    if status.as_u16() != 200 {
        let text = String::from_utf8_lossy(&body);
        bail!(
            "HTTP {status} from {}: {}",
            args.url,
            text.trim().chars().take(300).collect::<String>()
        );
    }
    if !content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/timestamp-reply"))
    {
        bail!("the reply's Content-Type is {content_type:?}, not application/timestamp-reply");
    }
    let resp: TimeStampResp = rasn::der::decode(&body)
        .map_err(|e| anyhow!("the reply is not a DER TimeStampResp: {e}"))?;
    if !matches!(
        resp.status.status,
        PkiStatus::Granted | PkiStatus::GrantedWithMods
    ) {
        return Ok(Stamped::Refused(describe_status(&resp)));
    }
    // The token must answer this request; the full check is `hanko verify`.
    let parsed = parse_token(&body)?;
    let tst = &parsed.tst;
    ensure!(
        tst.message_imprint == request.message_imprint,
        "the token's messageImprint is not the one sent"
    );
    ensure!(
        tst.nonce == request.nonce,
        "the token's nonce is not the one sent"
    );
    if let Some(p) = &policy {
        ensure!(
            &tst.policy == p,
            "the token's policy {} is not the one asked for",
            tst.policy
        );
    }
    let out = args.out.clone().unwrap_or_else(|| {
        let mut s = args.file.clone().into_os_string();
        s.push(".tsr");
        PathBuf::from(s)
    });
    std::fs::write(&out, &body).with_context(|| format!("writing {}", out.display()))?;
    let mut summary = String::new();
    let _ = writeln!(summary, "Time-stamp granted, written to {}", out.display());
    let _ = writeln!(summary, "  serial  : {}", int_hex(&tst.serial_number));
    let _ = writeln!(summary, "  genTime : {}", gen_time_text(tst));
    let _ = writeln!(summary, "  policy  : {}", tst.policy);
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

fn random_nonce() -> u64 {
    use rand::Rng as _;
    let mut b = [0u8; 8];
    rand::rng().fill_bytes(&mut b);
    // Never zero, so that the nonce always has content to compare.
    u64::from_be_bytes(b).max(1)
}

/// The status of a refusal in words: `rejection (badDataFormat): statusString`.
fn describe_status(resp: &TimeStampResp) -> String {
    const NAMES: [(usize, &str); 8] = [
        (0, "badAlg"),
        (2, "badRequest"),
        (5, "badDataFormat"),
        (14, "timeNotAvailable"),
        (15, "unacceptedPolicy"),
        (16, "unacceptedExtension"),
        (17, "addInfoNotAvailable"),
        (25, "systemFailure"),
    ];
    let mut s = format!("{:?}", resp.status.status);
    if let Some(fi) = &resp.status.fail_info {
        let names: Vec<String> = fi
            .iter_ones()
            .map(|bit| {
                NAMES
                    .iter()
                    .find(|(b, _)| *b == bit)
                    .map_or_else(|| format!("bit {bit}"), |(_, n)| (*n).to_owned())
            })
            .collect();
        let _ = write!(s, " ({})", names.join(", "));
    }
    if let Some(text) = &resp.status.status_string {
        let texts: Vec<&str> = text.iter().map(|t| t.as_str()).collect();
        let _ = write!(s, ": {}", texts.join("; "));
    }
    s
}

fn hash_file(path: &Path, alg: HashAlgorithm) -> anyhow::Result<Vec<u8>> {
    fn run<D: sha2::Digest>(mut f: std::fs::File) -> std::io::Result<Vec<u8>> {
        let mut h = D::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                return Ok(h.finalize().to_vec());
            }
            h.update(&buf[..n]);
        }
    }
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let d = match alg {
        HashAlgorithm::Sha256 => run::<sha2::Sha256>(f),
        HashAlgorithm::Sha384 => run::<sha2::Sha384>(f),
        HashAlgorithm::Sha512 => run::<sha2::Sha512>(f),
        other => bail!("{} is not supported for imprints", other.name()),
    };
    d.with_context(|| format!("cannot read {}", path.display()))
}

// ---------------------------------------------------------------------------------------
// Verification

/// What a verified token says.
#[derive(Clone, Debug)]
pub struct Verified {
    /// TSTInfo.serialNumber, hex.
    pub serial: String,
    /// genTime.
    pub gen_time: SystemTime,
    /// genTime as encoded (GeneralizedTime text).
    pub gen_time_text: String,
    /// TSTInfo.policy.
    pub policy: String,
    /// The TSA certificate's subject (RFC 4514).
    pub tsa_subject: String,
    /// The imprint's hash algorithm.
    pub hash: HashAlgorithm,
    /// The imprint.
    pub imprint: Vec<u8>,
    /// The nonce, hex, if any.
    pub nonce: Option<String>,
    /// The signature algorithm.
    pub signature_algorithm: SignatureAlgorithm,
    /// Subjects from the TSA certificate up to the trust anchor.
    pub chain: Vec<String>,
}

impl Verified {
    /// The short human summary `hanko verify` prints.
    pub fn summary(&self) -> String {
        let mut s = String::from("Verification: OK\n");
        let _ = writeln!(s, "  serial    : {}", self.serial);
        let _ = writeln!(s, "  genTime   : {}", self.gen_time_text);
        let _ = writeln!(s, "  policy    : {}", self.policy);
        let _ = writeln!(s, "  TSA       : {}", self.tsa_subject);
        let _ = writeln!(
            s,
            "  hash      : {} {}",
            self.hash.name(),
            hex::encode(&self.imprint)
        );
        if let Some(n) = &self.nonce {
            let _ = writeln!(s, "  nonce     : {n}");
        }
        let _ = writeln!(s, "  signature : {}", self.signature_algorithm);
        let _ = writeln!(s, "  chain     : {}", self.chain.join(" <- "));
        s
    }
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
    verify(
        &response,
        &|alg| hash_file(data, alg),
        query.as_deref(),
        &roots,
        &untrusted,
    )
}

/// The pieces of a granted TimeStampResp, with the bytes that were signed or hashed
/// taken from the received DER.
struct ParsedToken {
    signed_data: SignedData,
    tst: TstInfo,
    tst_der: Vec<u8>,
    /// SignedData.certificates, each element's original DER.
    certificates: Vec<Vec<u8>>,
    /// The SignerInfo's signed attributes as received, re-tagged as the SET (0x31) that
    /// was signed.
    signed_attrs_set: Vec<u8>,
    /// The SignerInfo's sid as received (full TLV).
    sid_der: Vec<u8>,
}

/// Verifies a DER TimeStampResp: see the module docs for every check. `data_digest`
/// hashes the time-stamped data with the token's algorithm; `query` is the DER request
/// if at hand; `roots` are the trust anchors; `untrusted` helps build the chain.
pub fn verify(
    response_der: &[u8],
    data_digest: &dyn Fn(HashAlgorithm) -> anyhow::Result<Vec<u8>>,
    query: Option<&[u8]>,
    roots: &[Certificate],
    untrusted: &[Certificate],
) -> anyhow::Result<Verified> {
    ensure!(!roots.is_empty(), "no trust anchor given (--ca)");
    let resp: TimeStampResp =
        rasn::der::decode(response_der).map_err(|e| anyhow!("not a DER TimeStampResp: {e}"))?;
    if !matches!(
        resp.status.status,
        PkiStatus::Granted | PkiStatus::GrantedWithMods
    ) {
        bail!("the response carries no token: {}", describe_status(&resp));
    }
    let p = parse_token(response_der)?;
    let sd = &p.signed_data;
    let tst = &p.tst;

    // TSTInfo basics and the imprint.
    ensure!(tst.version == Integer::from(1), "TSTInfo version is not 1");
    let imprint_alg_oid = tst.message_imprint.hash_algorithm.algorithm.to_string();
    let hash = HashAlgorithm::from_oid(&imprint_alg_oid)
        .map_err(|_| anyhow!("imprint hash algorithm {imprint_alg_oid} is not SHA-256/384/512"))?;
    let imprint = tst.message_imprint.hashed_message.to_vec();
    let digest = data_digest(hash)?;
    ensure!(
        imprint == digest,
        "the token's messageImprint is not the {} of the data: the data differs from what was time-stamped",
        hash.name()
    );

    // The request, when at hand.
    if let Some(q) = query {
        let req: TimeStampReq =
            rasn::der::decode(q).map_err(|e| anyhow!("--query is not a DER TimeStampReq: {e}"))?;
        ensure!(
            req.message_imprint == tst.message_imprint,
            "the token's messageImprint differs from the request's"
        );
        ensure!(
            req.nonce == tst.nonce,
            "the token's nonce differs from the request's"
        );
        if let Some(pol) = &req.req_policy {
            ensure!(
                *pol == tst.policy,
                "the token's policy {} is not the requested {pol}",
                tst.policy
            );
        }
        if req.cert_req {
            ensure!(
                !p.certificates.is_empty(),
                "the request set certReq but the token carries no certificate"
            );
        }
    }

    // One SignerInfo; its digest algorithm; content-type and message-digest attributes.
    let infos = sd.signer_infos.to_vec();
    let [si] = infos.as_slice() else {
        bail!("the token has {} SignerInfos, not one", infos.len());
    };
    let digest_oid = si.digest_algorithm.algorithm.to_string();
    let digest_alg = HashAlgorithm::from_oid(&digest_oid)
        .map_err(|_| anyhow!("SignerInfo digest algorithm {digest_oid} is not SHA-256/384/512"))?;
    let attrs = si
        .signed_attrs
        .as_ref()
        .ok_or_else(|| anyhow!("the SignerInfo has no signed attributes"))?;
    let attr = |oid: &str| -> anyhow::Result<Vec<u8>> {
        let found: Vec<&Attribute> = attrs
            .to_vec()
            .into_iter()
            .filter(|a| a.r#type.to_string() == oid)
            .collect();
        match found.as_slice() {
            [one] => {
                let values = one.values.to_vec();
                match values.as_slice() {
                    [v] => Ok(v.as_bytes().to_vec()),
                    _ => bail!("attribute {oid} has {} values, not one", values.len()),
                }
            }
            [] => bail!("signed attribute {oid} is missing"),
            _ => bail!("signed attribute {oid} appears more than once"),
        }
    };
    let ct: ObjectIdentifier = rasn::der::decode(&attr(hanko_pki::cms::OID_CONTENT_TYPE)?)
        .map_err(|e| anyhow!("content-type attribute: {e}"))?;
    ensure!(
        ct.to_string() == hanko_pki::cms::OID_TST_INFO,
        "content-type attribute is {ct}, not id-ct-TSTInfo"
    );
    let md: OctetString = rasn::der::decode(&attr(hanko_pki::cms::OID_MESSAGE_DIGEST)?)
        .map_err(|e| anyhow!("message-digest attribute: {e}"))?;
    ensure!(
        md.to_vec() == digest_alg.digest(&p.tst_der),
        "the message-digest attribute is not the {} of the TSTInfo",
        digest_alg.name()
    );

    // The signer certificate: named by sid, and by ESSCertIDv2 over its whole DER.
    let mut pool: Vec<Certificate> = Vec::new();
    for der in &p.certificates {
        let c = Certificate::from_der(der).context("a certificate in the token")?;
        pool.push(c);
    }
    pool.extend(untrusted.iter().cloned());
    let signer = pool
        .iter()
        .find(|c| sid_matches(&p.sid_der, c))
        .cloned()
        .ok_or_else(|| {
            anyhow!(
                "the signer's certificate is neither in the token nor in --untrusted \
                 (stamp with certReq, or pass the TSA certificate with --untrusted)"
            )
        })?;
    let ess: rasn_smime::ess::SigningCertificateV2 =
        rasn::der::decode(&attr(hanko_pki::cms::OID_SIGNING_CERTIFICATE_V2)?)
            .map_err(|e| anyhow!("signing-certificate-v2 attribute: {e}"))?;
    let first = ess
        .certs
        .first()
        .ok_or_else(|| anyhow!("signing-certificate-v2 names no certificate"))?;
    let ess_oid = first.hash_algorithm.algorithm.to_string();
    let ess_alg = HashAlgorithm::from_oid(&ess_oid)
        .map_err(|_| anyhow!("ESSCertIDv2 hash algorithm {ess_oid} is not SHA-256/384/512"))?;
    ensure!(
        first.cert_hash.to_vec() == ess_alg.digest(signer.der()),
        "ESSCertIDv2 certHash is not the {} of the signer's certificate",
        ess_alg.name()
    );

    // The signature over the signed attributes, as received.
    let sig_alg_der = rasn::der::encode(&si.signature_algorithm)
        .map_err(|e| anyhow!("signature algorithm: {e}"))?;
    let sig_alg = if si.signature_algorithm.algorithm.to_string() == OID_RSA_ENCRYPTION {
        SignatureAlgorithm::RsaPkcs1v15(digest_alg)
    } else {
        SignatureAlgorithm::from_algorithm_identifier_der(&sig_alg_der)
            .map_err(|e| anyhow!("unsupported signature algorithm: {e}"))?
    };
    if sig_alg != SignatureAlgorithm::Ed25519 {
        ensure!(
            sig_alg.hash() == digest_alg,
            "the signature algorithm's hash differs from the SignerInfo's digest algorithm"
        );
    }
    hanko_pki::verify::verify(
        signer.spki_der(),
        sig_alg,
        &p.signed_attrs_set,
        si.signature.as_ref(),
    )
    .map_err(|e| anyhow!("the token's signature does not verify with the TSA certificate: {e}"))?;

    // The TSA certificate's purpose, and the chain at genTime.
    let gen_time = gen_time_of(tst)?;
    check_timestamping_eku(&signer)?;
    let chain = build_chain(&signer, &pool, roots, gen_time)?;

    Ok(Verified {
        serial: int_hex(&tst.serial_number),
        gen_time,
        gen_time_text: gen_time_text(tst),
        policy: tst.policy.to_string(),
        tsa_subject: signer.subject_string(),
        hash,
        imprint,
        nonce: tst.nonce.as_ref().map(int_hex),
        signature_algorithm: sig_alg,
        chain,
    })
}

/// Whether the sid (IssuerAndSerialNumber or [0] SubjectKeyIdentifier, as received)
/// names `cert`.
fn sid_matches(sid_der: &[u8], cert: &Certificate) -> bool {
    let Ok((sid, _)) = der_read(sid_der) else {
        return false;
    };
    match sid.tag {
        0x30 => {
            let Ok((issuer, rest)) = der_read(sid.content) else {
                return false;
            };
            let Ok((serial, _)) = der_read(rest) else {
                return false;
            };
            issuer.full == cert.issuer_der()
                && serial.tag == 0x02
                && serial.content == cert.serial_der()
        }
        0x80 => cert
            .subject_key_identifier()
            .is_some_and(|ski| ski == sid.content),
        _ => false,
    }
}

/// Exactly one extendedKeyUsage, critical, and exactly id-kp-timeStamping (RFC 3161
/// §2.3).
fn check_timestamping_eku(cert: &Certificate) -> anyhow::Result<()> {
    use der::Decode as _;
    let exts: Vec<&x509_cert::ext::Extension> = cert
        .parsed()
        .tbs_certificate()
        .extensions()
        .map(|e| {
            e.iter()
                .filter(|e| e.extn_id == OID_EXTENDED_KEY_USAGE)
                .collect()
        })
        .unwrap_or_default();
    let [eku] = exts.as_slice() else {
        bail!(
            "the TSA certificate has {} extendedKeyUsage extensions, not one",
            exts.len()
        );
    };
    ensure!(
        eku.critical,
        "the TSA certificate's extendedKeyUsage is not critical (RFC 3161 §2.3)"
    );
    let purposes = x509_cert::ext::pkix::ExtendedKeyUsage::from_der(eku.extn_value.as_bytes())
        .map_err(|e| anyhow!("the TSA certificate's extendedKeyUsage: {e}"))?;
    ensure!(
        purposes.0 == [OID_KP_TIME_STAMPING],
        "the TSA certificate's extendedKeyUsage is not exactly id-kp-timeStamping"
    );
    Ok(())
}

fn valid_at(cert: &Certificate, t: SystemTime) -> anyhow::Result<()> {
    ensure!(
        cert.not_before() <= t && t <= cert.not_after(),
        "certificate {} was not valid at genTime",
        cert.subject_string()
    );
    Ok(())
}

/// From the TSA certificate up to one of `roots`: each link's signature checked, each
/// issuer a CA, every certificate valid at `at`. Returns the subjects, leaf first.
fn build_chain(
    leaf: &Certificate,
    pool: &[Certificate],
    roots: &[Certificate],
    at: SystemTime,
) -> anyhow::Result<Vec<String>> {
    const MAX_DEPTH: usize = 8;
    let mut subjects = vec![leaf.subject_string()];
    valid_at(leaf, at)?;
    let mut current = leaf.clone();
    for _ in 0..MAX_DEPTH {
        if let Some(root) = roots.iter().find(|r| current.verify_issued_by(r).is_ok()) {
            valid_at(root, at)?;
            subjects.push(root.subject_string());
            return Ok(subjects);
        }
        let issuer = pool
            .iter()
            .filter(|c| c.der() != current.der() && c.is_ca())
            .find(|c| current.verify_issued_by(c).is_ok())
            .ok_or_else(|| {
                anyhow!(
                    "no chain to the --ca root: nothing given signed {} (wrong --ca, or \
                     pass the intermediates with --untrusted)",
                    current.subject_string()
                )
            })?;
        valid_at(issuer, at)?;
        subjects.push(issuer.subject_string());
        current = issuer.clone();
    }
    bail!("the chain is longer than {MAX_DEPTH} certificates")
}

fn gen_time_of(tst: &TstInfo) -> anyhow::Result<SystemTime> {
    let secs =
        u64::try_from(tst.gen_time.timestamp()).map_err(|_| anyhow!("genTime is before 1970"))?;
    Ok(UNIX_EPOCH
        + Duration::from_secs(secs)
        + Duration::from_nanos(u64::from(tst.gen_time.timestamp_subsec_nanos())))
}

/// genTime as its GeneralizedTime text, e.g. `20250101123456.5Z`.
fn gen_time_text(tst: &TstInfo) -> String {
    rasn::der::encode(&tst.gen_time)
        .ok()
        .and_then(|d| der_read(&d).ok().map(|(t, _)| t.content.to_vec()))
        .map(|c| String::from_utf8_lossy(&c).into_owned())
        .unwrap_or_else(|| tst.gen_time.to_rfc3339())
}

/// An INTEGER's content octets in hex (`0x...`).
fn int_hex(i: &Integer) -> String {
    rasn::der::encode(i)
        .ok()
        .and_then(|d| der_read(&d).ok().map(|(t, _)| t.content.to_vec()))
        .map_or_else(|| i.to_string(), |c| format!("0x{}", hex::encode(c)))
}

/// Decodes the token of a granted response; the signed attributes and certificates are
/// taken from the bytes as received.
fn parse_token(response_der: &[u8]) -> anyhow::Result<ParsedToken> {
    let bad = |what: &str| anyhow!("malformed token: {what}");
    // TimeStampResp ::= SEQUENCE { status, timeStampToken ContentInfo }
    let (resp, _) = der_read(response_der).map_err(|e| bad(&e))?;
    let (_status, rest) = der_read(resp.content).map_err(|e| bad(&e))?;
    let (content_info, _) = der_read(rest).map_err(|_| bad("no timeStampToken"))?;
    // ContentInfo ::= SEQUENCE { contentType, [0] EXPLICIT SignedData }
    let (ct, rest) = der_read(content_info.content).map_err(|e| bad(&e))?;
    ensure!(
        ct.full == oid_der(hanko_pki::cms::OID_SIGNED_DATA)?.as_slice(),
        "the token is not a SignedData"
    );
    let (explicit, _) = der_read(rest).map_err(|e| bad(&e))?;
    ensure!(explicit.tag == 0xa0, "malformed token: ContentInfo content");
    let (sd_tlv, _) = der_read(explicit.content).map_err(|e| bad(&e))?;
    let signed_data: SignedData =
        rasn::der::decode(sd_tlv.full).map_err(|e| anyhow!("malformed SignedData: {e}"))?;

    // SignedData ::= SEQUENCE { version, digestAlgorithms, encapContentInfo,
    //   [0] certificates OPTIONAL, [1] crls OPTIONAL, signerInfos }
    let (_, rest) = der_read(sd_tlv.content).map_err(|e| bad(&e))?;
    let (_, rest) = der_read(rest).map_err(|e| bad(&e))?;
    let (_, mut rest) = der_read(rest).map_err(|e| bad(&e))?;
    let mut certificates = Vec::new();
    let mut signer_infos = None;
    while !rest.is_empty() {
        let (t, r) = der_read(rest).map_err(|e| bad(&e))?;
        match t.tag {
            0xa0 => {
                let mut c = t.content;
                while !c.is_empty() {
                    let (cert, r) = der_read(c).map_err(|e| bad(&e))?;
                    if cert.tag == 0x30 {
                        certificates.push(cert.full.to_vec());
                    }
                    c = r;
                }
            }
            0xa1 => {}
            0x31 => signer_infos = Some(t),
            _ => bail!("malformed token: unexpected field in SignedData"),
        }
        rest = r;
    }
    let signer_infos = signer_infos.ok_or_else(|| bad("no signerInfos"))?;
    // SignerInfo ::= SEQUENCE { version, sid, digestAlgorithm, [0] signedAttrs, ... }
    let (si, _) = der_read(signer_infos.content).map_err(|_| bad("no SignerInfo"))?;
    let (_, rest) = der_read(si.content).map_err(|e| bad(&e))?;
    let (sid, rest) = der_read(rest).map_err(|e| bad(&e))?;
    let (_, rest) = der_read(rest).map_err(|e| bad(&e))?;
    let (attrs, _) = der_read(rest).map_err(|e| bad(&e))?;
    ensure!(attrs.tag == 0xa0, "the SignerInfo has no signed attributes");
    let mut signed_attrs_set = attrs.full.to_vec();
    signed_attrs_set[0] = 0x31;

    let eci = &signed_data.encap_content_info;
    ensure!(
        eci.content_type.to_string() == hanko_pki::cms::OID_TST_INFO,
        "eContentType is {}, not id-ct-TSTInfo",
        eci.content_type
    );
    let tst_der = eci
        .content
        .as_ref()
        .ok_or_else(|| bad("no eContent"))?
        .to_vec();
    let tst: TstInfo =
        rasn::der::decode(&tst_der).map_err(|e| anyhow!("malformed TSTInfo: {e}"))?;
    Ok(ParsedToken {
        signed_data,
        tst,
        tst_der,
        certificates,
        signed_attrs_set,
        sid_der: sid.full.to_vec(),
    })
}

fn oid_der(dotted: &str) -> anyhow::Result<Vec<u8>> {
    let oid = hanko_pki::cms::oid(dotted).map_err(|e| anyhow!("{e}"))?;
    rasn::der::encode(&oid).map_err(|e| anyhow!("{e}"))
}

/// One DER TLV: its tag byte, content, and the whole encoding.
#[derive(Debug)]
struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
    full: &'a [u8],
}

/// Reads one DER TLV (single-byte tags, definite lengths) and returns it with the rest.
fn der_read(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), String> {
    let (&tag, rest) = input.split_first().ok_or("unexpected end of data")?;
    if tag & 0x1f == 0x1f {
        return Err("multi-byte tags are not expected here".into());
    }
    let (&first, rest) = rest.split_first().ok_or("unexpected end of data")?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return Err("bad length".into());
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err("truncated".into());
    }
    let header = input.len() - rest.len();
    Ok((
        Tlv {
            tag,
            content: &rest[..len],
            full: &input[..header + len],
        },
        &rest[len..],
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn der_reader_takes_tlvs_apart_and_refuses_truncation() {
        let (t, rest) = der_read(&[0x30, 0x03, 0x02, 0x01, 0x05, 0xff]).unwrap();
        assert_eq!(t.tag, 0x30);
        assert_eq!(t.content, &[0x02, 0x01, 0x05]);
        assert_eq!(t.full.len(), 5);
        assert_eq!(rest, &[0xff]);
        let mut long = vec![0x04, 0x81, 0x80];
        long.extend([0u8; 0x80]);
        assert_eq!(der_read(&long).unwrap().0.content.len(), 0x80);
        assert!(der_read(&[0x30, 0x05, 0x00]).is_err());
        assert!(der_read(&[0x30]).is_err());
        assert!(der_read(&[0x30, 0x85, 0, 0, 0, 0, 1]).is_err());
    }

    #[test]
    fn garbage_is_not_a_token() {
        let root_less: [Certificate; 0] = [];
        let e = verify(b"junk", &|_| Ok(vec![]), None, &root_less, &[]).unwrap_err();
        assert!(e.to_string().contains("trust anchor"), "{e}");
    }
}
