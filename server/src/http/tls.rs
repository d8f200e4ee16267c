//! The HTTPS listener's TLS: which versions and suites, the certificate and key files,
//! client certificates (mTLS), and reloading the files without a restart.
//!
//! ```text
//!   start-up: TlsServer::load(settings, HSM key) ── files unreadable or wrong ──> refuse to start
//!   accept (http/conn.rs) ─> acceptor(): the config current NOW ─> handshake (deadline)
//!        ─> the verified client leaf as PeerCertificate in every request's extensions
//!   reload: every tls.reload_interval_ms (files changed?) and on SIGHUP
//!        ─> read + check all files ─ ok ──> swap: new connections get the new config
//!                                    └ bad ─> keep the old one, log an error, count it
//! ```
//!
//! Only TLS 1.3 and 1.2, and only ECDHE key exchange with AEAD ciphers: the TLS 1.3
//! suites (AES-GCM, ChaCha20-Poly1305) and their TLS 1.2 ECDHE_ECDSA / ECDHE_RSA
//! counterparts ([`SUITES`]). rustls implements nothing older or weaker, so the list
//! is as much documentation as restriction. ALPN offers `http/1.1` only (the connection
//! layer's deadlines are per connection, not per HTTP/2 stream).
//!
//! The crypto provider is rustls's `ring`, not `aws-lc-rs`: the client side (ureq,
//! `hanko stamp`, the external TSA of seals) already brings ring, so one provider serves
//! both; ring builds with a C compiler alone where aws-lc-rs needs cmake and minutes more
//! of a 2-core CI; and it has every suite above. (Its FIPS mode would be aws-lc-rs's
//! reason to exist; Hanko does not claim FIPS.)
//!
//! A swap never touches open connections: each holds the `Arc<ServerConfig>` it was
//! accepted with. The files are polled (their contents, compared by SHA-256) rather
//! than watched with inotify: no extra dependency, and polling sees every way a
//! certificate gets replaced (rename over, a Kubernetes secret's symlink flip, a write
//! in place, a network file system) where inotify watches need care per case; reading a
//! few KiB every few seconds costs nothing. A bad file is logged once per content
//! (not at every poll) and counted in `hanko_tls_reloads_total{result="error"}`.
//!
//! The private key may instead be a key in the HSM (`tls.key_label`, see
//! [`super::tls_hsm`]): then only the certificate chain (and client CA) files are read
//! and reloaded, and every load checks that the leaf certifies the HSM key, so a
//! certificate for another key refuses the start or is not swapped in, like a key file
//! that does not match.

use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::crypto::ring::cipher_suite as cs;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest as _, Sha256};
use tokio_rustls::TlsAcceptor;

use super::tls_hsm::{HsmTlsKey, TlsSigningKey};
use crate::config::{ClientAuth, TlsKey, TlsSettings};

/// The cipher suites offered: ECDHE + AEAD only, strongest first.
pub const SUITES: &[rustls::SupportedCipherSuite] = &[
    cs::TLS13_AES_256_GCM_SHA384,
    cs::TLS13_AES_128_GCM_SHA256,
    cs::TLS13_CHACHA20_POLY1305_SHA256,
    cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
];

/// The provider of the listener: ring with [`SUITES`] and its default groups (X25519,
/// P-256, P-384).
pub fn provider() -> Arc<CryptoProvider> {
    let mut p = rustls::crypto::ring::default_provider();
    p.cipher_suites = SUITES.to_vec();
    Arc::new(p)
}

/// Why the TLS files could not be used; names the file, never its contents.
#[derive(Debug, thiserror::Error)]
pub enum TlsFileError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// Which file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not what it should be.
    #[error("{path}: {reason}")]
    Bad {
        /// Which file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The certificate and key do not make a server configuration (e.g. the key is not
    /// the certificate's).
    #[error("certificate {cert} and key {key}: {reason}")]
    Config {
        /// The chain file.
        cert: String,
        /// The key file, or `HSM key "label"`.
        key: String,
        /// rustls's reason.
        reason: String,
    },
    /// `tls.key_label` is set but the HSM key was not loaded (a start-up bug, not a
    /// configuration one).
    #[error("tls.key_label = \"{0}\": the HSM key is not loaded")]
    HsmKeyMissing(String),
}

/// The TLS side of the HTTPS listener: the current configuration and what it was
/// loaded from.
#[derive(Debug)]
pub struct TlsServer {
    settings: TlsSettings,
    /// The key in the HSM, with `tls.key_label`.
    hsm_key: Option<Arc<HsmTlsKey>>,
    current: RwLock<Arc<ServerConfig>>,
    /// SHA-256 of the files' contents last tried (loaded or refused): a poll that finds
    /// the same contents does nothing.
    last_tried: Mutex<[u8; 32]>,
}

/// What asked for a reload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// The periodic check: acts only when the files' contents changed.
    Poll,
    /// SIGHUP: always reads, checks and (if good) swaps.
    Signal,
}

impl TlsServer {
    /// Loads the files of `settings` (and with `tls.key_label`, `hsm_key`, loaded by
    /// [`HsmTlsKey::load`]); an error stops the start-up.
    pub fn load(
        settings: &TlsSettings,
        hsm_key: Option<Arc<HsmTlsKey>>,
    ) -> Result<Arc<Self>, TlsFileError> {
        let hsm_key = match &settings.key {
            TlsKey::File(_) => None,
            TlsKey::Hsm(label) => Some(
                hsm_key
                    .filter(|k| k.label() == label)
                    .ok_or_else(|| TlsFileError::HsmKeyMissing(label.clone()))?,
            ),
        };
        let files = Files::read(settings)?;
        let config = build(settings, &files, hsm_key.as_ref())?;
        report_loaded(&files, settings);
        Ok(Arc::new(Self {
            settings: settings.clone(),
            hsm_key,
            current: RwLock::new(config),
            last_tried: Mutex::new(files.digest()),
        }))
    }

    /// The settings it was built from.
    pub fn settings(&self) -> &TlsSettings {
        &self.settings
    }

    /// An acceptor with the configuration current now.
    pub fn acceptor(&self) -> TlsAcceptor {
        let config = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        TlsAcceptor::from(config)
    }

    /// Reads the files again and swaps them in when they are good; `Ok(false)` when a
    /// poll found nothing changed. A bad file leaves the current configuration alone.
    pub fn reload(&self, trigger: Trigger) -> Result<bool, TlsFileError> {
        let outcome = self.try_reload(trigger);
        match &outcome {
            Ok(true) => {
                metrics::counter!("hanko_tls_reloads_total", "result" => "ok").increment(1);
                tracing::info!(?trigger, cert = %self.settings.cert.display(),
                    "TLS certificate reloaded: new connections use it");
            }
            Ok(false) => {}
            Err(e) => {
                metrics::counter!("hanko_tls_reloads_total", "result" => "error").increment(1);
                tracing::error!(?trigger, error = %e,
                    "TLS files not reloaded: the previous certificate stays in use");
            }
        }
        outcome
    }

    fn try_reload(&self, trigger: Trigger) -> Result<bool, TlsFileError> {
        let files = Files::read(&self.settings);
        // An unreadable file (mid-rename, say) is tried again at the next poll, and
        // logged only when the same failure is new.
        let files = match files {
            Ok(f) => f,
            Err(e) => {
                let digest = Sha256::digest(e.to_string().as_bytes()).into();
                let mut last = self.last_tried.lock().unwrap_or_else(|e| e.into_inner());
                if trigger == Trigger::Poll && *last == digest {
                    return Ok(false);
                }
                *last = digest;
                return Err(e);
            }
        };
        let digest = files.digest();
        {
            let mut last = self.last_tried.lock().unwrap_or_else(|e| e.into_inner());
            if trigger == Trigger::Poll && *last == digest {
                return Ok(false);
            }
            *last = digest;
        }
        let config = build(&self.settings, &files, self.hsm_key.as_ref())?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = config;
        report_loaded(&files, &self.settings);
        Ok(true)
    }

    /// Reloads every `tls.reload_interval_ms` (when the files changed) and on SIGHUP,
    /// for as long as the process runs. Registers for SIGHUP before it returns.
    pub fn spawn_reloader(self: &Arc<Self>) -> anyhow::Result<()> {
        use anyhow::Context as _;
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(this.settings.reload_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                let trigger = tokio::select! {
                    _ = tick.tick() => Trigger::Poll,
                    Some(()) = hup.recv() => {
                        tracing::info!("SIGHUP received: reloading the TLS files");
                        Trigger::Signal
                    }
                };
                let me = this.clone();
                // File reads and key parsing: off the runtime's threads.
                let _ = tokio::task::spawn_blocking(move || me.reload(trigger)).await;
            }
        });
        Ok(())
    }
}

/// The bytes of the files, as read together.
struct Files {
    cert: Vec<u8>,
    /// The key file; `None` for a key in the HSM.
    key: Option<Vec<u8>>,
    client_ca: Option<Vec<u8>>,
}

impl Files {
    fn read(s: &TlsSettings) -> Result<Self, TlsFileError> {
        Ok(Self {
            cert: read(&s.cert)?,
            key: match &s.key {
                TlsKey::File(path) => Some(read(path)?),
                TlsKey::Hsm(_) => None,
            },
            client_ca: s.client_ca.as_deref().map(read).transpose()?,
        })
    }

    fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        for part in [Some(&self.cert), self.key.as_ref(), self.client_ca.as_ref()] {
            let bytes = part.map(Vec::as_slice).unwrap_or_default();
            h.update((bytes.len() as u64).to_be_bytes());
            h.update(bytes);
        }
        h.finalize().into()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsFileError> {
    std::fs::read(path).map_err(|source| TlsFileError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn bad(path: &Path, reason: impl Into<String>) -> TlsFileError {
    TlsFileError::Bad {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// The certificates of a PEM file, at least one.
fn certificates(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(path, format!("not a PEM certificate list: {e}")))?;
    if certs.is_empty() {
        return Err(bad(path, "no CERTIFICATE block"));
    }
    Ok(certs)
}

/// The server configuration from the files: versions, suites, ALPN, client verifier,
/// chain and key (the key, file or HSM, must be the leaf's, the leaf valid now).
fn build(
    s: &TlsSettings,
    files: &Files,
    hsm_key: Option<&Arc<HsmTlsKey>>,
) -> Result<Arc<ServerConfig>, TlsFileError> {
    let chain = certificates(&s.cert, &files.cert)?;
    let leaf = hanko_pki::cert::Certificate::from_der(&chain[0])
        .map_err(|e| bad(&s.cert, format!("the first certificate: {e}")))?;
    let now = std::time::SystemTime::now();
    if now < leaf.not_before() || now > leaf.not_after() {
        return Err(bad(
            &s.cert,
            "the server certificate is not valid now (see its notBefore and notAfter)",
        ));
    }
    let key = match (&s.key, &files.key, hsm_key) {
        (TlsKey::File(path), Some(pem), _) => Key::File(
            PrivateKeyDer::from_pem_slice(pem)
                .map_err(|e| bad(path, format!("not a PEM private key: {e}")))?,
        ),
        (TlsKey::Hsm(_), _, Some(k)) => {
            k.check_certificate(&leaf)
                .map_err(|e| TlsFileError::Config {
                    cert: s.cert.display().to_string(),
                    key: s.key.describe(),
                    reason: format!("the certificate is not for the HSM key ({e})"),
                })?;
            Key::Hsm(k.clone())
        }
        (TlsKey::Hsm(label), _, None) => return Err(TlsFileError::HsmKeyMissing(label.clone())),
        (TlsKey::File(path), None, _) => return Err(bad(path, "not read")),
    };
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| bad(&s.cert, e.to_string()))?;
    let builder = match (&s.client_ca, &files.client_ca, s.client_auth) {
        (Some(path), Some(pem), auth @ (ClientAuth::Required | ClientAuth::Optional)) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in certificates(path, pem)? {
                roots
                    .add(c)
                    .map_err(|e| bad(path, format!("not a usable CA certificate: {e}")))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if auth == ClientAuth::Optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier.build().map_err(|e| bad(path, e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = match key {
        Key::File(key) => {
            builder
                .with_single_cert(chain, key)
                .map_err(|e| TlsFileError::Config {
                    cert: s.cert.display().to_string(),
                    key: s.key.describe(),
                    reason: e.to_string(),
                })?
        }
        Key::Hsm(k) => {
            let certified = rustls::sign::CertifiedKey::new(chain, Arc::new(TlsSigningKey(k)));
            builder.with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified)))
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The private key of a configuration being built.
enum Key {
    File(PrivateKeyDer<'static>),
    Hsm(Arc<HsmTlsKey>),
}

/// Logs and exports what was loaded: the leaf's subject and expiry
/// (`hanko_tls_certificate_not_after_seconds`, for an alert before it expires).
fn report_loaded(files: &Files, s: &TlsSettings) {
    let Some(leaf) = CertificateDer::pem_slice_iter(&files.cert)
        .next()
        .and_then(Result::ok)
        .and_then(|c| hanko_pki::cert::Certificate::from_der(&c).ok())
    else {
        return;
    };
    let not_after = leaf
        .not_after()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    metrics::gauge!("hanko_tls_certificate_not_after_seconds").set(not_after);
    tracing::info!(subject = %leaf.subject_string(), cert = %s.cert.display(),
        key = %s.key.describe(), client_auth = ?s.client_auth, "TLS certificate loaded");
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use std::path::PathBuf;
    use std::time::{Duration, SystemTime};

    use axum::Router;
    use axum::routing::get;
    use hanko_pki::soft::SoftwareSigner;
    use hanko_pki::x509::{CertParams, CertProfile, NameAttr, build_name, issue_certificate};
    use hanko_pki::{HashAlgorithm, KeyType, SignatureAlgorithm, Signer as _};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;
    use crate::config::HttpSettings;
    use crate::http::conn::{self, Listener};
    use crate::http::peer::PeerCertificate;

    const ALG: SignatureAlgorithm = SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256);
    const DAY: Duration = Duration::from_secs(86_400);

    /// A software key and the certificate `profile` for it, issued by `ca` (or
    /// self-signed); both as PEM.
    async fn issue(
        cn: &str,
        profile: CertProfile,
        ca: Option<(&hanko_pki::cert::Certificate, &SoftwareSigner)>,
    ) -> (hanko_pki::cert::Certificate, SoftwareSigner) {
        let key = SoftwareSigner::generate(KeyType::EcP256, ALG).unwrap();
        let now = SystemTime::now();
        let params = CertParams::new(
            profile,
            build_name(&[(NameAttr::CommonName, cn)]).unwrap(),
            now - DAY,
            now + DAY,
        );
        let cert = match ca {
            Some((c, k)) => issue_certificate(&params, key.public_key_der(), Some(c), k).await,
            None => issue_certificate(&params, key.public_key_der(), None, &key).await,
        };
        (cert.unwrap(), key)
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// GET /peer over TLS, with the client certificate when given: the body.
    async fn get_peer(
        addr: std::net::SocketAddr,
        root: &hanko_pki::cert::Certificate,
        client: Option<(&hanko_pki::cert::Certificate, &SoftwareSigner)>,
    ) -> String {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(root.der().to_vec()))
            .unwrap();
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let config = match client {
            None => builder.with_no_client_auth(),
            Some((c, k)) => {
                let key = PrivateKeyDer::from_pem_slice(k.to_pkcs8_pem().unwrap().as_bytes());
                builder
                    .with_client_auth_cert(
                        vec![CertificateDer::from(c.der().to_vec())],
                        key.unwrap(),
                    )
                    .unwrap()
            }
        };
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let mut s = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .unwrap();
        s.write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out).await;
        let text = String::from_utf8_lossy(&out).into_owned();
        text.split_once("\r\n\r\n").unwrap().1.to_owned()
    }

    /// The seam of issue #14 with the client model: a client certificate verified by the
    /// listener reaches the route as `PeerCertificate` (the leaf's DER); a client
    /// without one (client_auth optional) gets none.
    #[tokio::test]
    async fn the_verified_client_leaf_reaches_the_route_as_peer_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (ca, ca_key) = issue("test CA", CertProfile::RootCa, None).await;
        let server_profile = CertProfile::TlsServer {
            dns_names: vec![],
            ip_addresses: vec!["127.0.0.1".parse().unwrap()],
        };
        let (leaf, leaf_key) = issue("server", server_profile, Some((&ca, &ca_key))).await;
        // A client certificate without extendedKeyUsage (any purpose, for webpki).
        let (client, client_key) = issue("client", CertProfile::Seal, Some((&ca, &ca_key))).await;
        let settings = TlsSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            cert: write(d, "chain.pem", &format!("{}{}", leaf.to_pem(), ca.to_pem())),
            key: TlsKey::File(write(
                d,
                "key.pem",
                leaf_key.to_pkcs8_pem().unwrap().as_str(),
            )),
            client_ca: Some(write(d, "ca.pem", &ca.to_pem())),
            client_auth: ClientAuth::Optional,
            handshake_timeout: Duration::from_secs(5),
            reload_interval: Duration::from_secs(5),
        };
        let tls = TlsServer::load(&settings, None).unwrap();
        let router = Router::new().route(
            "/peer",
            get(
                |peer: Option<axum::Extension<PeerCertificate>>| async move {
                    peer.map_or("none".to_owned(), |p| hex::encode(p.der()))
                },
            ),
        );
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let listeners = vec![Listener {
                tcp,
                tls: Some(tls),
            }];
            let http = HttpSettings::with_max_in_flight(4);
            conn::serve(
                listeners,
                router,
                None,
                &http,
                async { stopped.await.unwrap_or(()) },
                Duration::from_secs(1),
            )
            .await;
        });
        let with = get_peer(addr, &ca, Some((&client, &client_key))).await;
        assert_eq!(with, hex::encode(client.der()));
        assert_eq!(get_peer(addr, &ca, None).await, "none");
        stop.send(()).unwrap();
        server.await.unwrap();
    }
}
