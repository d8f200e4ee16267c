//! The tests' one HTTP/1.1 client: a raw request over a fresh TCP connection with
//! `Connection: close` (what `curl -sS` would send), so that the tests see exactly the
//! status line, headers and body bytes the server wrote, and a reply cut short (a killed
//! server) is an error rather than a response.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A complete HTTP response.
pub struct Response {
    pub status: u16,
    /// The status line and the header lines, as sent.
    pub head: String,
    pub body: Vec<u8>,
}

impl Response {
    /// The value of the first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Sends `method path` with `headers` and `body`; the response once the server has closed
/// the connection. A response whose body is shorter than its `Content-Length` is an error.
/// The server may answer (e.g. 413) and close before it has read all of a large body: a
/// failed write is an error only when no complete response came back.
pub fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: */*\r\n\
         Content-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut all = req.into_bytes();
    all.extend_from_slice(body);
    let wrote = s.write_all(&all);
    let mut raw = Vec::new();
    let read = s.read_to_end(&mut raw);
    let failed = |what: &str| {
        let cause = read
            .as_ref()
            .err()
            .or(wrote.as_ref().err())
            .map(|e| format!(" ({e})"))
            .unwrap_or_default();
        std::io::Error::other(format!("{what}{cause}"))
    };
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| failed("no complete HTTP header"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| failed("no HTTP status line"))?;
    let mut response = Response {
        status,
        head,
        body: raw[split + 4..].to_vec(),
    };
    if let Some(len) = response.header("content-length") {
        let len: usize = len.parse().map_err(std::io::Error::other)?;
        if response.body.len() < len {
            return Err(failed("truncated body"));
        }
        response.body.truncate(len);
    }
    Ok(response)
}

/// GET `path`: (status, body as text).
pub fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let r = send(addr, "GET", path, &[], b"").unwrap();
    (r.status, String::from_utf8_lossy(&r.body).into_owned())
}

/// POST `body` as `content_type`: (status, status line and headers, body).
pub fn post(
    addr: SocketAddr,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let r = send(addr, "POST", path, &[("Content-Type", content_type)], body).unwrap();
    (r.status, r.head, r.body)
}
