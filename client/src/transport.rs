//! The HTTP calls of the client: a TimeStampReq (RFC 3161 §3.4: one POST of
//! `application/timestamp-query`, the reply accepted only as HTTP 200 with
//! `application/timestamp-reply`), a document to seal (`POST /api/v1/seal/cades`
//! with an API key, the reply accepted only as HTTP 200 with
//! `application/pkcs7-signature`), and a PDF to seal (`POST /api/v1/seal/pdf`, the
//! sealed PDF back as `application/pdf`). All read the reply up to a size cap.
//!
//! http and https: ureq with rustls and the ring provider, the TLS stack of the server's
//! own HTTPS listener (one TLS stack in the `hanko` binary). An https server is trusted
//! through the anchors of [`Tls`] (`--ca FILE`: a private PKI such as the dev root), or
//! the public web PKI's roots when none is given; [`Tls`] also carries a client
//! certificate for mTLS.

use std::time::Duration;

use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

use crate::Error;

/// How an https exchange trusts the server and, for mTLS, shows who the client is.
/// The default: the public web PKI's roots, no client certificate. Plain http ignores it.
#[derive(Clone, Debug, Default)]
pub struct Tls {
    /// The server's trust anchors; `None`: the public web PKI's roots.
    roots: Option<Vec<Certificate<'static>>>,
    /// The client certificate chain and key (mTLS).
    client: Option<ClientCert>,
}

impl Tls {
    /// From PEM: `ca`, the server's trust anchor(s) (`--ca`); `client`, the client's
    /// certificate chain and private key (`--client-cert`, `--client-key`).
    pub fn from_pem(ca: Option<&[u8]>, client: Option<(&[u8], &[u8])>) -> Result<Self, Error> {
        let roots = match ca {
            Some(pem) => Some(pem_certificates(pem, "--ca")?),
            None => None,
        };
        let client = match client {
            Some((chain, key)) => {
                let chain = pem_certificates(chain, "--client-cert")?;
                let key = pem_key(key)?;
                Some(ClientCert::new_with_certs(&chain, key))
            }
            None => None,
        };
        Ok(Self { roots, client })
    }

    /// The ureq TLS configuration: rustls (ring), these anchors, this client.
    fn config(&self) -> TlsConfig {
        let roots = match &self.roots {
            Some(certs) => RootCerts::new_with_certs(certs),
            None => RootCerts::WebPki,
        };
        TlsConfig::builder()
            .root_certs(roots)
            .client_cert(self.client.clone())
            .build()
    }
}

/// The certificates of a PEM text, at least one.
fn pem_certificates(pem: &[u8], what: &'static str) -> Result<Vec<Certificate<'static>>, Error> {
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        match item {
            Ok(PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => {
                return Err(Error::TlsFile {
                    what,
                    reason: format!("not PEM: {e}"),
                });
            }
        }
    }
    if certs.is_empty() {
        return Err(Error::TlsFile {
            what,
            reason: "no CERTIFICATE block".into(),
        });
    }
    Ok(certs)
}

/// The one private key of a PEM text.
fn pem_key(pem: &[u8]) -> Result<PrivateKey<'static>, Error> {
    PrivateKey::from_pem(pem).map_err(|e| Error::TlsFile {
        what: "--client-key",
        reason: format!("not a PEM private key: {e}"),
    })
}

/// The default TSA URL of `hanko stamp` (a local `hanko serve`).
pub const DEFAULT_URL: &str = "http://127.0.0.1:3161/tsa";
/// Largest TimeStampResp accepted (a token with a chain is a few KiB).
pub const MAX_RESPONSE_BYTES: u64 = 1 << 20;

/// Refuses a URL that is neither http nor https. Call it before any work whose result
/// would be thrown away.
pub fn check_url(url: &str) -> Result<(), Error> {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Ok(());
    }
    Err(Error::UnsupportedUrl(url.to_owned()))
}

/// POSTs `request_der` to `url` and returns the body of the TSA's reply: HTTP 200 with
/// Content-Type `application/timestamp-reply`, at most [`MAX_RESPONSE_BYTES`]. Any
/// other status is an error quoting the start of the body. `timeout` bounds the whole
/// exchange (at least one second).
pub fn post(url: &str, request_der: &[u8], timeout: Duration, tls: &Tls) -> Result<Vec<u8>, Error> {
    exchange(
        url,
        tls,
        &[("Content-Type", "application/timestamp-query")],
        request_der,
        "application/timestamp-reply",
        MAX_RESPONSE_BYTES,
        timeout,
    )
}

/// The base URL of `hanko seal` (a local `hanko serve`).
pub const DEFAULT_SEAL_URL: &str = "http://127.0.0.1:3161";
/// The media type of a seal (a DER CMS SignedData).
pub const SEAL_TYPE: &str = "application/pkcs7-signature";
/// Largest seal accepted: the largest document a server takes
/// (`http.max_seal_body_bytes` at most 1 GiB), enveloped, plus its chain and token.
pub const MAX_SEAL_BYTES: u64 = (1 << 30) + (1 << 20);

/// What `POST /api/v1/seal/cades` is asked for.
#[derive(Clone, Copy, Debug)]
pub struct SealQuery<'a> {
    /// The seal credential's name.
    pub credential: &'a str,
    /// `B-B` or `B-T`.
    pub level: &'a str,
    /// Enveloping (the document inside the CMS) rather than detached.
    pub attached: bool,
}

/// POSTs `document` to `<base_url>/api/v1/seal/cades` with `api_key` as bearer token
/// and returns the DER CMS: HTTP 200 with `application/pkcs7-signature`. Any other status
/// is an error quoting the start of the body (the server's JSON error). `mime_type`, when
/// given, is sent as the Content-Type (the seal's signed mime-type attribute).
pub fn post_seal(
    base_url: &str,
    api_key: &str,
    query: &SealQuery<'_>,
    mime_type: Option<&str>,
    document: &[u8],
    timeout: Duration,
    tls: &Tls,
) -> Result<Vec<u8>, Error> {
    let url = format!(
        "{}/api/v1/seal/cades?credential={}&level={}&attached={}",
        base_url.trim_end_matches('/'),
        query_escape(query.credential),
        query_escape(query.level),
        query.attached
    );
    let bearer = format!("Bearer {api_key}");
    exchange(
        &url,
        tls,
        &[
            (
                "Content-Type",
                mime_type.unwrap_or("application/octet-stream"),
            ),
            ("Authorization", &bearer),
        ],
        document,
        SEAL_TYPE,
        MAX_SEAL_BYTES,
        timeout,
    )
}

/// The media type of a PDF, sent and expected back by [`post_seal_pdf`].
pub const PDF_TYPE: &str = "application/pdf";

/// What `POST /api/v1/seal/pdf` is asked for.
#[derive(Clone, Copy, Debug)]
pub struct PdfSealQuery<'a> {
    /// The seal credential's name.
    pub credential: &'a str,
    /// `B-B` or `B-T`.
    pub level: &'a str,
    /// The page (1-based) of the signature field; the server's default (1) when `None`.
    pub page: Option<u32>,
    /// A visible seal in this rectangle (`x,y,w,h` in PDF points); invisible if `None`.
    pub rect: Option<&'a str>,
    /// A certification (DocMDP) seal.
    pub certify: bool,
}

/// POSTs the PDF `document` to `<base_url>/api/v1/seal/pdf` with `api_key` as bearer
/// token and returns the sealed PDF (HTTP 200, `application/pdf`); any other status is
/// an error quoting the start of the server's JSON error.
pub fn post_seal_pdf(
    base_url: &str,
    api_key: &str,
    query: &PdfSealQuery<'_>,
    document: &[u8],
    timeout: Duration,
    tls: &Tls,
) -> Result<Vec<u8>, Error> {
    let mut url = format!(
        "{}/api/v1/seal/pdf?credential={}&level={}",
        base_url.trim_end_matches('/'),
        query_escape(query.credential),
        query_escape(query.level),
    );
    if let Some(page) = query.page {
        url.push_str(&format!("&page={page}"));
    }
    if let Some(rect) = query.rect {
        url.push_str(&format!("&visible=true&rect={}", query_escape(rect)));
    }
    if query.certify {
        url.push_str("&certify=true");
    }
    let bearer = format!("Bearer {api_key}");
    exchange(
        &url,
        tls,
        &[("Content-Type", PDF_TYPE), ("Authorization", &bearer)],
        document,
        PDF_TYPE,
        MAX_SEAL_BYTES,
        timeout,
    )
}

/// Largest answer of [`post_archive_objects`] accepted (about 300 bytes of JSON per hash,
/// for 100 000 hashes).
pub const MAX_ARCHIVE_REPLY_BYTES: u64 = 64 << 20;

/// POSTs SHA-256 digests (32 bytes each, concatenated) to
/// `<base_url>/api/v1/archive/objects?alg=sha256` (the binary form) with `api_key` as
/// bearer token and returns the server's JSON answer (HTTP 200, `application/json`): an
/// id per digest, in order. Any other status is an error quoting the start of the
/// server's JSON error. Only the digests leave the machine, never the objects.
pub fn post_archive_objects(
    base_url: &str,
    api_key: &str,
    digests: &[u8],
    timeout: Duration,
    tls: &Tls,
) -> Result<Vec<u8>, Error> {
    let url = format!(
        "{}/api/v1/archive/objects?alg=sha256",
        base_url.trim_end_matches('/')
    );
    let bearer = format!("Bearer {api_key}");
    exchange(
        &url,
        tls,
        &[
            ("Content-Type", "application/octet-stream"),
            ("Authorization", &bearer),
        ],
        digests,
        "application/json",
        MAX_ARCHIVE_REPLY_BYTES,
        timeout,
    )
}

/// POSTs a DER evidence record to `<base_url>/api/v1/evidence/renew` (issue #16) with
/// `api_key` as bearer token, `data_hashes` as `?data_hash=ALG:HEX` (`ALG` as the API
/// names it: sha256, sha384, sha512) and `force`; returns the renewed DER record (HTTP
/// 200, [`EVIDENCE_TYPE`]). Any other status is an error quoting the start of the
/// server's JSON error (not due, does not verify, ...). Only hashes leave the machine.
pub fn post_evidence_renew(
    base_url: &str,
    api_key: &str,
    record: &[u8],
    data_hashes: &[(&str, &[u8])],
    force: bool,
    timeout: Duration,
    tls: &Tls,
) -> Result<Vec<u8>, Error> {
    let mut query: Vec<String> = data_hashes
        .iter()
        .map(|(alg, h)| {
            format!(
                "data_hash={}",
                query_escape(&format!("{alg}:{}", hex::encode(h)))
            )
        })
        .collect();
    if force {
        query.push("force=true".to_owned());
    }
    let mut url = format!("{}/api/v1/evidence/renew", base_url.trim_end_matches('/'));
    if !query.is_empty() {
        url = format!("{url}?{}", query.join("&"));
    }
    let bearer = format!("Bearer {api_key}");
    exchange(
        &url,
        tls,
        &[("Content-Type", EVIDENCE_TYPE), ("Authorization", &bearer)],
        record,
        EVIDENCE_TYPE,
        MAX_EVIDENCE_BYTES,
        timeout,
    )
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One POST: `headers` and `body` out; the reply's body back when it is HTTP 200 of the
/// media type `expected`, at most `limit` bytes.
/// The media type of an RFC 4998 evidence record as a Hanko server sends it (no IANA
/// type exists for DER ERS).
pub const EVIDENCE_TYPE: &str = "application/octet-stream";
/// Largest evidence record accepted (a reduced tree of a batch of 10^7 leaves is a few
/// KiB; tokens a few more).
pub const MAX_EVIDENCE_BYTES: u64 = 1 << 20;

/// GETs an evidence record (`<base>/api/v1/evidence/...`): HTTP 200 with
/// [`EVIDENCE_TYPE`], at most [`MAX_EVIDENCE_BYTES`]. Any other status is an error
/// quoting the start of the body (the server's JSON saying why, e.g. the batch is open).
pub fn get_evidence(url: &str, timeout: Duration, tls: &Tls) -> Result<Vec<u8>, Error> {
    check_url(url)?;
    let reply = agent(tls, timeout)
        .get(url)
        .header("Accept", EVIDENCE_TYPE)
        .call()
        .map_err(|e| Error::Get {
            url: url.to_owned(),
            source: Box::new(e),
        })?;
    read_reply(reply, url, EVIDENCE_TYPE, MAX_EVIDENCE_BYTES)
}

fn agent(tls: &Tls, timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout.max(Duration::from_secs(1))))
        .http_status_as_error(false)
        .tls_config(tls.config())
        .build()
        .into()
}

fn exchange(
    url: &str,
    tls: &Tls,
    headers: &[(&str, &str)],
    body: &[u8],
    expected: &'static str,
    limit: u64,
    timeout: Duration,
) -> Result<Vec<u8>, Error> {
    check_url(url)?;
    let mut request = agent(tls, timeout).post(url).header("Accept", expected);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let reply = request.send(body).map_err(|e| Error::Post {
        // The URL holds no secret: an API key travels in a header.
        url: url.to_owned(),
        source: Box::new(e),
    })?;
    read_reply(reply, url, expected, limit)
}

/// The body of a 200 reply of type `expected`, at most `limit` bytes; any other status
/// an error quoting the start of the body.
fn read_reply(
    mut reply: ureq::http::Response<ureq::Body>,
    url: &str,
    expected: &'static str,
    limit: u64,
) -> Result<Vec<u8>, Error> {
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
        .limit(limit)
        .read_to_vec()
        .map_err(|e| Error::ReadReply(Box::new(e)))?;
    if status.as_u16() != 200 {
        let text = String::from_utf8_lossy(&body);
        return Err(Error::HttpStatus {
            status: status.to_string(),
            url: url.to_owned(),
            body: text.trim().chars().take(300).collect(),
        });
    }
    if !content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(expected))
    {
        return Err(Error::WrongContentType {
            got: content_type,
            expected,
        });
    }
    Ok(body)
}
