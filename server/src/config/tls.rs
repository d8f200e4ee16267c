//! `[tls]`: the HTTPS listener beside the plain HTTP one (`http/tls.rs` serves it).
//!
//! The files are only named here; they are read, checked and reloaded by
//! `http::tls::TlsServer`, so that start-up and every reload check them the same way.
//!
//! The private key is a PEM file (`tls.key`) or a key in the HSM token (`tls.key_label`,
//! its `CKA_LABEL`), never both. The HSM key is named in `[tls]` and not as a `[[keys]]`
//! entry: a `[[keys]]` entry is a key that signs tokens or seals, with one configured
//! algorithm, a chain whose profile is checked once at start-up, and a place in
//! `/readyz` and in the TSA's and sealer's key lists; a TLS key has none of these (rustls
//! picks the scheme per handshake, its chain is `tls.cert`, reloaded with the files, and
//! nothing but the listener may use it), so each consumer of `[[keys]]` would have had
//! to learn to skip it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::bail;
use serde::Deserialize;

use super::seal::under;

/// `[tls]` as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// `tls.listen`: socket address of the HTTPS listener. Flag `--tls-listen`. Unset: no
    /// TLS listener (except `--dev`, which listens on 127.0.0.1:3443 with a dev
    /// certificate).
    pub listen: Option<SocketAddr>,
    /// `tls.cert`: PEM file, the server certificate first, then its issuing CAs (the
    /// root may be left out). Relative to `data_dir`.
    pub cert: Option<PathBuf>,
    /// `tls.key`: PEM file of the certificate's private key (PKCS#8, SEC1 or PKCS#1).
    /// Relative to `data_dir`. Keep it 0600, readable by the service user only.
    pub key: Option<PathBuf>,
    /// `tls.key_label`: instead of `key`, the `CKA_LABEL` of the certificate's private
    /// key in the `[hsm]` token (RSA, ECDSA P-256/P-384 or Ed25519); it never leaves the
    /// token, the handshakes sign through a signing pool of its own.
    pub key_label: Option<String>,
    /// `tls.client_ca`: PEM file of the CA certificate(s) that client certificates must
    /// chain to (mTLS). Relative to `data_dir`.
    pub client_ca: Option<PathBuf>,
    /// `tls.client_auth`: `required` (a client without a certificate from `client_ca`
    /// fails the handshake), `optional` (one without a certificate is served, one with a
    /// certificate that does not verify is refused) or `off`. Default: `required` when
    /// `client_ca` is set, else `off`.
    pub client_auth: Option<String>,
    /// `tls.handshake_timeout_ms`: how long a client has to complete the TLS handshake
    /// from its connection; then the connection is closed. Default 10 000 (as
    /// `http.header_timeout_ms`: a handshake is two round trips); 100..=300 000.
    pub handshake_timeout_ms: Option<u64>,
    /// `tls.reload_interval_ms`: how often the certificate, key and client CA files are
    /// read to see whether they changed (SIGHUP reloads at once). Default 5 000;
    /// 1 000..=3 600 000.
    pub reload_interval_ms: Option<u64>,
}

/// Whether, and how, clients present certificates (`tls.client_auth`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate is asked for.
    Off,
    /// Asked for; a connection without one is served, one that does not verify is not.
    Optional,
    /// Asked for and needed: a handshake without a verifying one fails.
    Required,
}

/// `[tls]`, resolved.
#[derive(Clone, Debug)]
pub struct TlsSettings {
    /// The HTTPS listener's address.
    pub listen: SocketAddr,
    /// Certificate chain PEM.
    pub cert: PathBuf,
    /// The private key: a PEM file or a key in the HSM.
    pub key: TlsKey,
    /// Client CA PEM (mTLS); `Some` exactly when `client_auth` is not `Off`.
    pub client_ca: Option<PathBuf>,
    /// How client certificates are asked for.
    pub client_auth: ClientAuth,
    /// The handshake's deadline, from the accept.
    pub handshake_timeout: Duration,
    /// How often the files are checked for a change.
    pub reload_interval: Duration,
}

/// Where the listener's private key is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsKey {
    /// `tls.key`: a PEM file, reloaded with the certificate.
    File(PathBuf),
    /// `tls.key_label`: the label of a key in the `[hsm]` token.
    Hsm(String),
}

impl TlsKey {
    /// How the key is named in messages: its file, or `HSM key "label"`.
    pub fn describe(&self) -> String {
        match self {
            Self::File(p) => p.display().to_string(),
            Self::Hsm(label) => format!("HSM key \"{label}\""),
        }
    }
}

/// `tls.listen` when only `--dev` asks for TLS.
pub const DEFAULT_DEV_TLS_LISTEN: &str = "127.0.0.1:3443";
/// Default of `tls.handshake_timeout_ms`.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default of `tls.reload_interval_ms`.
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(5);

impl TlsSection {
    /// Whether the section names anything at all.
    fn is_empty(&self) -> bool {
        self.listen.is_none()
            && self.cert.is_none()
            && self.key.is_none()
            && self.key_label.is_none()
            && self.client_ca.is_none()
            && self.client_auth.is_none()
            && self.handshake_timeout_ms.is_none()
            && self.reload_interval_ms.is_none()
    }
}

/// `[tls]` (and `--tls-listen`) resolved: `None` when neither asks for TLS. `dev_files`
/// are the dev certificate and key, used when `--dev` and the section names none.
pub(super) fn resolve_tls(
    s: TlsSection,
    tls_listen: Option<SocketAddr>,
    data_dir: &Path,
    dev_files: Option<(PathBuf, PathBuf)>,
) -> anyhow::Result<Option<TlsSettings>> {
    if s.is_empty() && tls_listen.is_none() && dev_files.is_none() {
        return Ok(None);
    }
    let listen = match tls_listen.or(s.listen) {
        Some(a) => a,
        None if dev_files.is_some() => DEFAULT_DEV_TLS_LISTEN.parse()?,
        None => bail!("[tls]: listen is missing (the HTTPS address, e.g. \"0.0.0.0:443\")"),
    };
    let key = match (s.key, s.key_label) {
        (Some(_), Some(_)) => bail!(
            "[tls]: key and key_label are both set: the private key is either a PEM file \
             (key) or a key in the HSM token (key_label), not both"
        ),
        (Some(k), None) => Some(TlsKey::File(under(data_dir, k))),
        (None, Some(label)) if label.trim().is_empty() => bail!("[tls]: key_label is empty"),
        (None, Some(label)) => Some(TlsKey::Hsm(label)),
        (None, None) => None,
    };
    let (cert, key) = match (s.cert, key, dev_files) {
        (Some(c), Some(k), _) => (under(data_dir, c), k),
        (None, None, Some((cert, key))) => (cert, TlsKey::File(key)),
        (Some(_), None, _) => bail!("[tls]: cert is set but key (or key_label) is missing"),
        (None, Some(TlsKey::Hsm(_)), _) => bail!(
            "[tls]: key_label is set but cert is missing (the PEM certificate chain of the \
             HSM key)"
        ),
        (None, Some(_), _) => bail!("[tls]: key is set but cert is missing"),
        (None, None, None) => bail!(
            "[tls]: cert and key are missing (PEM files of the server certificate chain and \
             its private key, or key_label for a key in the HSM)"
        ),
    };
    let client_ca = s.client_ca.map(|p| under(data_dir, p));
    let client_auth = match (s.client_auth.as_deref(), &client_ca) {
        (None, Some(_)) | (Some("required"), Some(_)) => ClientAuth::Required,
        (Some("optional"), Some(_)) => ClientAuth::Optional,
        (None, None) | (Some("off"), None) => ClientAuth::Off,
        (Some("off"), Some(_)) => bail!(
            "[tls]: client_auth = \"off\" with client_ca set: remove client_ca, or set \
             client_auth to \"required\" or \"optional\""
        ),
        (Some("required" | "optional"), None) => {
            bail!("[tls]: client_auth asks for client certificates but client_ca is not set")
        }
        (Some(other), _) => bail!(
            "[tls]: client_auth = \"{other}\" is not one of \"required\", \"optional\", \"off\""
        ),
    };
    let client_ca = (client_auth != ClientAuth::Off)
        .then_some(client_ca)
        .flatten();
    let handshake_timeout = millis(
        "tls.handshake_timeout_ms",
        s.handshake_timeout_ms,
        DEFAULT_HANDSHAKE_TIMEOUT,
        100..=300_000,
    )?;
    let reload_interval = millis(
        "tls.reload_interval_ms",
        s.reload_interval_ms,
        DEFAULT_RELOAD_INTERVAL,
        1_000..=3_600_000,
    )?;
    Ok(Some(TlsSettings {
        listen,
        cert,
        key,
        client_ca,
        client_auth,
        handshake_timeout,
        reload_interval,
    }))
}

/// A millisecond setting within `range`, or its default.
fn millis(
    key: &str,
    value: Option<u64>,
    default: Duration,
    range: std::ops::RangeInclusive<u64>,
) -> anyhow::Result<Duration> {
    match value {
        None => Ok(default),
        Some(ms) if range.contains(&ms) => Ok(Duration::from_millis(ms)),
        Some(ms) => bail!(
            "{key} = {ms} is out of range {}..={}",
            range.start(),
            range.end()
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn section(toml: &str) -> TlsSection {
        toml::from_str(toml).unwrap()
    }

    #[test]
    fn client_auth_follows_client_ca_and_refuses_contradictions() {
        let dir = Path::new("/data");
        let base = "listen = \"127.0.0.1:0\"\ncert = \"c.pem\"\nkey = \"k.pem\"\n";
        let t = resolve_tls(section(base), None, dir, None)
            .unwrap()
            .unwrap();
        assert_eq!(t.client_auth, ClientAuth::Off);
        assert_eq!(t.cert, Path::new("/data/c.pem"));
        let t = resolve_tls(
            section(&format!("{base}client_ca = \"ca.pem\"")),
            None,
            dir,
            None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(t.client_auth, ClientAuth::Required);
        assert_eq!(t.client_ca.as_deref(), Some(Path::new("/data/ca.pem")));
        for (extra, says) in [
            ("client_auth = \"optional\"", "client_ca is not set"),
            (
                "client_ca = \"ca.pem\"\nclient_auth = \"off\"",
                "remove client_ca",
            ),
            (
                "client_ca = \"ca.pem\"\nclient_auth = \"maybe\"",
                "\"maybe\" is not one of",
            ),
            ("handshake_timeout_ms = 5", "out of range"),
        ] {
            let e = resolve_tls(section(&format!("{base}{extra}")), None, dir, None).unwrap_err();
            assert!(e.to_string().contains(says), "{extra}: {e}");
        }
        let e = resolve_tls(section("cert = \"c.pem\""), None, dir, None).unwrap_err();
        assert!(e.to_string().contains("listen is missing"), "{e}");
    }

    #[test]
    fn the_key_is_a_file_or_an_hsm_label_never_both() {
        let dir = Path::new("/data");
        let base = "listen = \"127.0.0.1:0\"\ncert = \"c.pem\"\n";
        let t = resolve_tls(
            section(&format!("{base}key_label = \"tls-server\"")),
            None,
            dir,
            None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(t.key, TlsKey::Hsm("tls-server".into()));
        assert_eq!(t.key.describe(), "HSM key \"tls-server\"");
        let t = resolve_tls(section(&format!("{base}key = \"k.pem\"")), None, dir, None)
            .unwrap()
            .unwrap();
        assert_eq!(t.key, TlsKey::File("/data/k.pem".into()));
        for (toml, says) in [
            (
                format!("{base}key = \"k.pem\"\nkey_label = \"tls-server\""),
                "not both",
            ),
            (format!("{base}key_label = \" \""), "key_label is empty"),
            (
                "listen = \"127.0.0.1:0\"\nkey_label = \"tls-server\"".to_owned(),
                "key_label is set but cert is missing",
            ),
            (base.to_owned(), "key (or key_label) is missing"),
        ] {
            let e = resolve_tls(section(&toml), None, dir, None).unwrap_err();
            assert!(e.to_string().contains(says), "{toml}: {e}");
        }
        // In --dev, an HSM key with its own certificate replaces the dev files.
        let dev = (PathBuf::from("/d/c"), PathBuf::from("/d/k"));
        let t = resolve_tls(
            section("cert = \"c.pem\"\nkey_label = \"tls-server\""),
            None,
            dir,
            Some(dev),
        )
        .unwrap()
        .unwrap();
        assert_eq!(t.key, TlsKey::Hsm("tls-server".into()));
        assert_eq!(t.cert, Path::new("/data/c.pem"));
    }

    #[test]
    fn dev_falls_back_to_its_own_files_and_port() {
        let dev = (PathBuf::from("/d/c"), PathBuf::from("/d/k"));
        let dir = Path::new("/data");
        let t = resolve_tls(TlsSection::default(), None, dir, Some(dev.clone()))
            .unwrap()
            .unwrap();
        assert_eq!(t.listen.to_string(), DEFAULT_DEV_TLS_LISTEN);
        assert_eq!(t.cert, dev.0);
        assert!(
            resolve_tls(TlsSection::default(), None, dir, None)
                .unwrap()
                .is_none()
        );
        let flag: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let e = resolve_tls(TlsSection::default(), Some(flag), dir, None).unwrap_err();
        assert!(e.to_string().contains("cert and key are missing"), "{e}");
    }
}
