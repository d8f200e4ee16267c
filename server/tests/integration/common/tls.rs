//! Clients of the HTTPS listener: rustls (the same library as the server, but the
//! client side, with keep-alive under the test's control), `openssl s_client` and curl
//! (third-party peers), and small PKIs made with the openssl command line (a test CA,
//! server and client certificates), so that the server is checked against certificates
//! it did not make.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::tsp::{openssl, openssl_req_new_p256};

/// A TLS connection of the test (rustls client over a blocking socket).
pub type Stream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A client configuration trusting `root` (PEM), with a client certificate when given
/// (`(chain PEM, key PEM)`).
pub fn client_config(root: &Path, client: Option<(&Path, &Path)>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(root).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some((chain, key)) => {
            let chain = CertificateDer::pem_file_iter(chain)
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let key = PrivateKeyDer::from_pem_file(key).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
    };
    Arc::new(config)
}

/// A connection to `addr` for the name `127.0.0.1`, handshake done (or its error).
pub fn connect(addr: SocketAddr, config: &Arc<rustls::ClientConfig>) -> std::io::Result<Stream> {
    let sock = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    sock.set_read_timeout(Some(Duration::from_secs(30)))?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(config.clone(), name).unwrap();
    let mut stream = rustls::StreamOwned::new(conn, sock);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}

/// `GET path` on a kept-alive connection: (status, body). Reads exactly the response
/// (by its Content-Length), so the connection can carry the next request.
pub fn get_keep_alive(stream: &mut Stream, path: &str) -> std::io::Result<(u16, String)> {
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    stream.write_all(req.as_bytes())?;
    stream.flush()?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::Error::other("closed before a response"));
        }
        raw.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&raw).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            if body.len() >= len {
                let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
                return Ok((status, body.to_owned()));
            }
        }
    }
}

/// curl GET /readyz over https at `addr`, by IP address and by name, trusting `ca`
/// (a PEM file): asserts it succeeds and says ready.
pub fn curl_readyz(addr: SocketAddr, ca: &str) {
    for host in ["127.0.0.1", "localhost"] {
        let url = format!("https://{host}:{}/readyz", addr.port());
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "20", "--cacert", ca, &url])
            .output()
            .unwrap();
        assert!(out.status.success(), "{url}: {}", super::text(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("\"status\":\"ready\""),
            "{}",
            super::text(&out)
        );
    }
}

/// `openssl s_client` with `args` against `addr` (stdin closed at once): its output.
pub fn s_client(addr: SocketAddr, args: &[&str]) -> Output {
    Command::new("timeout")
        .arg("20")
        .arg("openssl")
        .args(["s_client", "-connect", &addr.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The protocol `openssl s_client` negotiated ("TLSv1.3"), if a handshake completed.
pub fn negotiated(out: &Output) -> Option<String> {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with("New, "))?;
    let proto = line.strip_prefix("New, ")?.split(',').next()?.trim();
    (proto != "(NONE)").then(|| proto.to_owned())
}

/// `openssl x509 -noout -serial` of the certificate a server presents to a new
/// connection.
pub fn served_serial(addr: SocketAddr) -> String {
    let out = s_client(addr, &["-showcerts"]);
    let pem = String::from_utf8_lossy(&out.stdout).to_string();
    let leaf = pem
        .split("-----END CERTIFICATE-----")
        .next()
        .and_then(|s| s.split_once("-----BEGIN CERTIFICATE-----"))
        .map(|(_, b64)| format!("-----BEGIN CERTIFICATE-----{b64}-----END CERTIFICATE-----\n"))
        .unwrap_or_else(|| panic!("no certificate served:\n{pem}"));
    let mut x509 = Command::new("openssl")
        .args(["x509", "-noout", "-serial"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    x509.stdin
        .take()
        .unwrap()
        .write_all(leaf.as_bytes())
        .unwrap();
    let out = x509.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A serial of its own for each leaf name (openssl's -CAcreateserial file would be
/// shared by the tests running at once).
fn serial(name: &str) -> u64 {
    use std::hash::{Hash as _, Hasher as _};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    std::process::id().hash(&mut h);
    h.finish() >> 1
}

/// A test CA made by openssl in `dir`: `<name>.pem` and `<name>.key`.
pub fn make_ca(dir: &Path, name: &str) -> PathBuf {
    let (pem, key) = (format!("{name}.pem"), format!("{name}.key"));
    let subject = format!("/CN={name}");
    openssl_req_new_p256(
        dir,
        &key,
        &[
            "-x509",
            "-out",
            &pem,
            "-days",
            "30",
            "-subj",
            &subject,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    dir.join(pem)
}

/// A leaf issued by CA `ca` (made by [`make_ca`]) in `dir`: `<name>.pem`, `<name>.key`
/// (mode 0600). `server`: for 127.0.0.1 with serverAuth; else a client certificate.
pub fn issue(dir: &Path, ca: &str, name: &str, server: bool) -> (PathBuf, PathBuf) {
    let (pem, key, csr) = (
        format!("{name}.pem"),
        format!("{name}.key"),
        format!("{name}.csr"),
    );
    let subject = format!("/CN={name}");
    openssl_req_new_p256(dir, &key, &["-out", &csr, "-subj", &subject]);
    let ext = dir.join(format!("{name}.ext"));
    let text = if server {
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n\
         keyUsage=critical,digitalSignature\n"
    } else {
        "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n"
    };
    std::fs::write(&ext, text).unwrap();
    let _ = openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-days",
            "7",
            "-set_serial",
            &format!("0x{:x}", serial(name)),
            "-out",
            &pem,
            "-extfile",
            ext.to_str().unwrap(),
        ],
    );
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(dir.join(&key), std::fs::Permissions::from_mode(0o600)).unwrap();
    (dir.join(pem), dir.join(key))
}
