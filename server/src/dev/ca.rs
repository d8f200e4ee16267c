//! The dev PKI: a root and an issuing CA whose keys are FILES (DEV ONLY), and the
//! enrolment of each token key (CSR signed in the token, proof of possession checked,
//! certificate issued), reusing whatever still fits.

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use hanko_hsm::{Hsm, PoolConfig};
use hanko_pki::cert::{
    Certificate, check_key_matches, check_seal_certificate, check_tsa_certificate, load_pem_chain,
};
use hanko_pki::soft::SoftwareSigner;
use hanko_pki::x509::{
    CertParams, CertProfile, CertRequest, Name, NameAttr, build_name, issue_certificate, make_csr,
};
use hanko_pki::{HashAlgorithm, KeyType, SignatureAlgorithm, Signer};

use super::paths::{check_private, replace_file};
use super::{DevKey, DevPaths, Report};
use crate::config::KeyUsage;

const DAY: Duration = Duration::from_secs(86_400);
/// Certificates start this much in the past, to tolerate clock differences.
const BACKDATE: Duration = Duration::from_secs(3_600);
/// Reissue a dev certificate when less than this is left of it.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 86_400);

/// The dev CA (root and issuing CA) and a certificate and chain file for each of the
/// `keys` whose public keys are `spkis` (same order), reusing what still fits.
pub(super) async fn certify(
    paths: &DevPaths,
    hsm: &Hsm,
    keys: &[DevKey],
    spkis: &[Vec<u8>],
    now: SystemTime,
    report: &mut Report,
) -> anyhow::Result<()> {
    let (root, root_key, root_new) = dev_root(paths, now, report)?;
    let (inter, inter_key, inter_new) =
        dev_intermediate(paths, &root, &root_key, root_new, now, report).await?;
    for (k, spki) in keys.iter().zip(spkis) {
        let cert_path = paths.pki(&format!("{}.pem", k.label));
        let chain_path = paths.pki(&format!("{}-chain.pem", k.label));
        let existing = if inter_new {
            None
        } else {
            reusable_leaf(&cert_path, k, spki, &inter, now)
        };
        let leaf = match existing {
            Some(c) => {
                report.reused(cert_path.display());
                c
            }
            None => {
                let c = enrol(hsm, k, &inter, &inter_key, now).await?;
                replace_file(&cert_path, c.to_pem().as_bytes(), 0o644)?;
                report.created(format!("{} ({})", cert_path.display(), c.subject_string()));
                c
            }
        };
        let chain_pem = format!("{}{}", leaf.to_pem(), inter.to_pem());
        if fs::read_to_string(&chain_path).ok().as_deref() == Some(chain_pem.as_str()) {
            report.reused(chain_path.display());
        } else {
            replace_file(&chain_path, chain_pem.as_bytes(), 0o644)?;
            report.created(chain_path.display());
        }
    }
    tls_server(paths, &inter, &inter_key, inter_new, now, report)
}

/// The names the dev TLS certificate is for: what `curl https://localhost:3443` and
/// `https://127.0.0.1:3443` connect to.
const DEV_TLS_DNS: &str = "localhost";
const DEV_TLS_IPS: [std::net::IpAddr; 2] = [
    std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
    std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
];

/// The dev HTTPS listener's certificate and key ([`DevPaths::tls_server_files`]),
/// reused while they still fit. The key is a FILE (P-256, 0600), not a token key: a TLS
/// server key signs handshakes, not tokens or seals, and rustls needs it in memory.
fn tls_server(
    paths: &DevPaths,
    inter: &Certificate,
    inter_key: &SoftwareSigner,
    inter_new: bool,
    now: SystemTime,
    report: &mut Report,
) -> anyhow::Result<()> {
    const ALG: SignatureAlgorithm = SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256);
    let (chain_path, key_path) = paths.tls_server_files();
    let existing = (!inter_new)
        .then(|| {
            let key =
                SoftwareSigner::from_pkcs8_pem(&fs::read_to_string(&key_path).ok()?, ALG).ok()?;
            let leaf = load_pem_chain(&fs::read_to_string(&chain_path).ok()?)
                .ok()?
                .into_iter()
                .next()?;
            let fits = check_key_matches(&leaf, key.public_key_der()).is_ok()
                && leaf.verify_issued_by(inter).is_ok()
                && now + RENEW_BEFORE < leaf.not_after();
            fits.then_some(())
        })
        .flatten();
    if existing.is_some() {
        check_private(&key_path)?;
        report.reused(chain_path.display());
        return Ok(());
    }
    let key = SoftwareSigner::generate(KeyType::EcP256, ALG)?;
    let start = (now - BACKDATE).max(inter.not_before());
    let end = (now + 365 * DAY).min(inter.not_after());
    let profile = CertProfile::TlsServer {
        dns_names: vec![DEV_TLS_DNS.to_owned()],
        ip_addresses: DEV_TLS_IPS.to_vec(),
    };
    let params = CertParams::new(profile, dev_name("localhost")?, start, end);
    let leaf = futures_ready(issue_certificate(
        &params,
        key.public_key_der(),
        Some(inter),
        inter_key,
    ))?;
    replace_file(
        &key_path,
        dev_key_file(&key, "dev TLS server")?.as_bytes(),
        0o600,
    )?;
    let chain_pem = format!("{}{}", leaf.to_pem(), inter.to_pem());
    replace_file(&chain_path, chain_pem.as_bytes(), 0o644)?;
    report.created(format!("{} (software key, DEV ONLY)", key_path.display()));
    report.created(format!(
        "{} (TLS server: localhost, 127.0.0.1, ::1)",
        chain_path.display()
    ));
    Ok(())
}

fn dev_name(cn: &str) -> anyhow::Result<Name> {
    Ok(build_name(&[
        (NameAttr::Country, "JP"),
        (NameAttr::Organization, "Hanko Dev"),
        (NameAttr::CommonName, cn),
    ])?)
}

const CA_ALG: SignatureAlgorithm = SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha384);

/// Loads a dev CA certificate and its DEV-ONLY key if both exist, match and stay valid
/// for a while.
fn load_ca(
    cert_path: &Path,
    key_path: &Path,
    now: SystemTime,
) -> Option<(Certificate, SoftwareSigner)> {
    let pem = fs::read_to_string(cert_path).ok()?;
    let cert = Certificate::from_pem(&pem).ok()?;
    let key_pem = fs::read_to_string(key_path).ok()?;
    let key = SoftwareSigner::from_pkcs8_pem(&key_pem, CA_ALG).ok()?;
    let fresh = now + RENEW_BEFORE < cert.not_after() && now >= cert.not_before();
    if check_key_matches(&cert, key.public_key_der()).is_err() || !cert.is_ca() || !fresh {
        tracing::warn!(path = %cert_path.display(), "dev CA certificate unusable; making a new one");
        return None;
    }
    Some((cert, key))
}

/// PEM of a DEV-ONLY key file: a warning header, then the key.
fn dev_key_file(signer: &SoftwareSigner, what: &str) -> anyhow::Result<String> {
    let pem = signer.to_pkcs8_pem()?;
    Ok(format!(
        "# DEV-ONLY private key of the Hanko {what}, written by `hanko dev-init`.\n\
         # Anyone holding this file can issue certificates trusted by dev set-ups.\n\
         # Never use it, or anything it signed, outside development.\n{}",
        pem.as_str()
    ))
}

fn dev_root(
    paths: &DevPaths,
    now: SystemTime,
    report: &mut Report,
) -> anyhow::Result<(Certificate, SoftwareSigner, bool)> {
    let cert_path = paths.pki("root.pem");
    let key_path = paths.pki("root.key.DEV-ONLY.pem");
    if let Some((cert, key)) = load_ca(&cert_path, &key_path, now) {
        check_private(&key_path)?;
        report.reused(cert_path.display());
        return Ok((cert, key, false));
    }
    let key = SoftwareSigner::generate(KeyType::EcP384, CA_ALG)?;
    let params = CertParams::new(
        CertProfile::RootCa,
        dev_name("Hanko Dev Root CA (DEV ONLY)")?,
        now - BACKDATE,
        now + 3650 * DAY,
    );
    let cert = futures_ready(issue_certificate(&params, key.public_key_der(), None, &key))?;
    save_ca(&key_path, &key, &cert_path, &cert, "dev root CA", report)?;
    Ok((cert, key, true))
}

/// Writes a new dev CA: its DEV-ONLY key file (0600) and its certificate.
fn save_ca(
    key_path: &Path,
    key: &SoftwareSigner,
    cert_path: &Path,
    cert: &Certificate,
    what: &str,
    report: &mut Report,
) -> anyhow::Result<()> {
    replace_file(key_path, dev_key_file(key, what)?.as_bytes(), 0o600)?;
    replace_file(cert_path, cert.to_pem().as_bytes(), 0o644)?;
    report.created(format!("{} (software key, DEV ONLY)", key_path.display()));
    report.created(cert_path.display());
    Ok(())
}

async fn dev_intermediate(
    paths: &DevPaths,
    root: &Certificate,
    root_key: &SoftwareSigner,
    root_new: bool,
    now: SystemTime,
    report: &mut Report,
) -> anyhow::Result<(Certificate, SoftwareSigner, bool)> {
    let cert_path = paths.pki("intermediate.pem");
    let key_path = paths.pki("intermediate.key.DEV-ONLY.pem");
    if !root_new
        && let Some((cert, key)) = load_ca(&cert_path, &key_path, now)
        && cert.verify_issued_by(root).is_ok()
    {
        check_private(&key_path)?;
        report.reused(cert_path.display());
        return Ok((cert, key, false));
    }
    let key = SoftwareSigner::generate(KeyType::EcP384, CA_ALG)?;
    let not_after = (now + 1825 * DAY).min(root.not_after());
    let params = CertParams::new(
        CertProfile::IntermediateCa { path_len: 0 },
        dev_name("Hanko Dev Issuing CA (DEV ONLY)")?,
        (now - BACKDATE).max(root.not_before()),
        not_after,
    );
    let cert = issue_certificate(&params, key.public_key_der(), Some(root), root_key).await?;
    save_ca(&key_path, &key, &cert_path, &cert, "dev issuing CA", report)?;
    Ok((cert, key, true))
}

/// An existing leaf certificate that still fits: same key as the token, issued by the
/// current intermediate, passes its profile check and is not about to expire.
fn reusable_leaf(
    path: &Path,
    k: &DevKey,
    spki: &[u8],
    inter: &Certificate,
    now: SystemTime,
) -> Option<Certificate> {
    let cert = load_pem_chain(&fs::read_to_string(path).ok()?)
        .ok()?
        .into_iter()
        .next()?;
    let checked = match k.usage {
        KeyUsage::Tsa => check_tsa_certificate(&cert, now + RENEW_BEFORE),
        KeyUsage::Seal => check_seal_certificate(&cert, now + RENEW_BEFORE),
    };
    let ok = checked.is_ok()
        && check_key_matches(&cert, spki).is_ok()
        && cert.verify_issued_by(inter).is_ok();
    if !ok {
        tracing::warn!(path = %path.display(), "dev certificate unusable; issuing a new one");
    }
    ok.then_some(cert)
}

/// A production-shaped enrolment: CSR signed in the token, proof of possession checked,
/// certificate issued by the dev intermediate for the key the CSR names.
async fn enrol(
    hsm: &Hsm,
    k: &DevKey,
    inter: &Certificate,
    inter_key: &SoftwareSigner,
    now: SystemTime,
) -> anyhow::Result<Certificate> {
    let pool = PoolConfig {
        workers: 1,
        queue_depth: 4,
        call_timeout: Duration::from_secs(30),
        verify_after_sign: true,
        bulk_share: hanko_hsm::DEFAULT_BULK_SHARE,
    };
    let signer = hsm.signer(k.label, k.algorithm, pool)?;
    let csr_der = make_csr(&dev_name(k.common_name)?, &signer).await?;
    drop(signer);
    let csr = CertRequest::from_der(&csr_der)?;
    csr.verify()
        .with_context(|| format!("CSR for key \"{}\": proof of possession", k.label))?;
    let start = (now - BACKDATE).max(inter.not_before());
    let end = (now + 730 * DAY).min(inter.not_after());
    let profile = match k.usage {
        KeyUsage::Tsa => CertProfile::Tsa {
            non_repudiation: false,
            // The key signs for one year; its certificate lives on for verification.
            private_key_usage_period: Some((start, (now + 365 * DAY).min(end))),
        },
        KeyUsage::Seal => CertProfile::Seal,
    };
    let params = CertParams::new(profile, csr.subject().clone(), start, end);
    let cert = issue_certificate(&params, csr.spki_der(), Some(inter), inter_key).await?;
    match k.usage {
        KeyUsage::Tsa => check_tsa_certificate(&cert, now)?,
        KeyUsage::Seal => check_seal_certificate(&cert, now)?,
    }
    Ok(cert)
}

/// Polls a future that is ready at once (software signing).
fn futures_ready<F: std::future::Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}
