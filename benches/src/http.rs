//! The benches' HTTP/1.1 client: one keep-alive connection over a plain `TcpStream`, or
//! over TLS (rustls, ring: the server's own stack) for `--tls`, requests written as
//! pre-built bytes, responses parsed only as far as the status line, `Content-Length` and
//! `Connection` ([`Conn`]). Deliberately cheap, so that the load generator takes as
//! little CPU from the server as it can on a small machine.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Where the load goes: a server address, over TLS when `tls` is set.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) addr: String,
    pub(crate) tls: Option<TlsConnector>,
}

impl Target {
    /// Plain HTTP to `addr`.
    pub(crate) fn plain(addr: &str) -> Self {
        Self {
            addr: addr.to_owned(),
            tls: None,
        }
    }

    /// HTTPS to `addr`, trusting the PEM certificates of `root` (the dev root).
    pub(crate) fn tls(addr: &str, root: &Path) -> anyhow::Result<Self> {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject as _;
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(root)
            .with_context(|| format!("reading {}", root.display()))?
        {
            roots.add(c.context("the dev root")?)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            addr: addr.to_owned(),
            tls: Some(TlsConnector::from(Arc::new(config))),
        })
    }
}

/// A connection's byte stream, plain or TLS.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<S: AsyncRead + AsyncWrite + Unpin + Send> Stream for S {}

/// A complete `POST` request (head and body) to `127.0.0.1`, with `headers` (each
/// `Name: value`, no line end) after `Content-Type`.
pub(crate) fn post(path: &str, content_type: &str, headers: &[&str], body: &[u8]) -> Vec<u8> {
    let mut req =
        format!("POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut req = req.into_bytes();
    req.extend_from_slice(body);
    req
}

/// One keep-alive connection with a read buffer.
pub(crate) struct Conn {
    stream: Box<dyn Stream>,
    buf: Vec<u8>,
}

impl Conn {
    /// A plain connection to `addr`.
    pub(crate) async fn connect(addr: &str) -> std::io::Result<Conn> {
        Self::open(&Target::plain(addr)).await
    }

    /// A connection to `target` (TLS: the handshake done).
    pub(crate) async fn open(target: &Target) -> std::io::Result<Conn> {
        let tcp = TcpStream::connect(&target.addr).await?;
        tcp.set_nodelay(true)?;
        let stream: Box<dyn Stream> = match &target.tls {
            None => Box::new(tcp),
            Some(connector) => {
                let name = rustls_pki_types::ServerName::try_from("127.0.0.1")
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                Box::new(connector.connect(name, tcp).await?)
            }
        };
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(16 * 1024),
        })
    }

    /// Sends `req` and reads one response: (status code, body, server closes).
    pub(crate) async fn exchange(&mut self, req: &[u8]) -> std::io::Result<(u16, Vec<u8>, bool)> {
        self.stream.write_all(req).await?;
        let head_end = loop {
            if let Some(p) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            self.fill().await?;
        };
        let head = std::str::from_utf8(&self.buf[..head_end])
            .map_err(|_| bad("response head is not UTF-8"))?;
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("bad status line"))?;
        let mut length = None;
        let mut close = false;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(bad(
                    "chunked responses are not supported by the bench client",
                ));
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            }
        }
        let length = length.ok_or_else(|| bad("no Content-Length"))?;
        while self.buf.len() < head_end + length {
            self.fill().await?;
        }
        let body = self.buf[head_end..head_end + length].to_vec();
        self.buf.drain(..head_end + length);
        Ok((status, body, close))
    }

    async fn fill(&mut self) -> std::io::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

fn bad(msg: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.to_owned())
}

/// A one-off GET on a fresh connection: (status, body).
pub(crate) async fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
    let mut c = Conn::connect(addr).await?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    let (status, body, _) =
        tokio::time::timeout(Duration::from_secs(10), c.exchange(req.as_bytes()))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "GET timed out"))??;
    Ok((status, body))
}

/// `n` connections, all opened before a measurement starts, so that connection set-up
/// (and the TLS handshake) is not measured.
pub(crate) async fn connect_all(target: &Target, n: usize) -> anyhow::Result<Vec<Conn>> {
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        conns.push(
            Conn::open(target)
                .await
                .context("connecting to the server")?,
        );
    }
    Ok(conns)
}

/// A load client's keep-alive connection, reopened for the next request when the server
/// closed it or it failed.
pub(crate) struct KeepAlive {
    target: Target,
    conn: Option<Conn>,
}

impl KeepAlive {
    pub(crate) fn new(target: &Target, conn: Conn) -> KeepAlive {
        KeepAlive {
            target: target.clone(),
            conn: Some(conn),
        }
    }

    /// Sends `req` and reads one response: (status, body). A connection error (or a
    /// failed reconnect, after a 10 ms pause) is the error; the next call reconnects.
    pub(crate) async fn exchange(&mut self, req: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
        let conn = match self.conn.as_mut() {
            Some(c) => c,
            None => match Conn::open(&self.target).await {
                Ok(c) => self.conn.insert(c),
                Err(e) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    return Err(e);
                }
            },
        };
        match conn.exchange(req).await {
            Ok((status, body, close)) => {
                if close {
                    self.conn = None;
                }
                Ok((status, body))
            }
            Err(e) => {
                self.conn = None;
                Err(e)
            }
        }
    }
}
