//! The load `hanko-bench tsa` measures: keep-alive HTTP/1.1 clients posting pre-built
//! TimeStampReqs to the server ([`drive`]) (the raw rate beside it is the token's bare
//! C_Sign loop, `hanko_hsm::Hsm::bare_sign_rate`). The client is
//! deliberately cheap (one current-thread tokio runtime, the HTTP client of
//! [`crate::http`], requests encoded once before the run), so that on a small machine it
//! takes as little CPU from the server as it can.

use std::io::Read as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hanko_pki::HashAlgorithm;
use hanko_pki::der::{self, tag};
use hanko_pki::oid::ObjectIdentifier;

use crate::http::{KeepAlive, Target, connect_all, post};
use crate::stats::Samples;

/// What the HTTP clients saw.
#[derive(Debug, Clone, Default)]
pub(crate) struct LoadResult {
    /// Latencies of granted responses.
    pub(crate) granted: Samples,
    /// TimeStampResps with a status other than granted / grantedWithMods.
    pub(crate) rejected: u64,
    /// HTTP statuses other than 200, unparsable bodies.
    pub(crate) http_errors: u64,
    /// Connection errors (each followed by a reconnect).
    pub(crate) io_errors: u64,
    pub(crate) elapsed: f64,
}

impl LoadResult {
    pub(crate) fn rate(&self) -> f64 {
        if self.elapsed > 0.0 {
            self.granted.count() as f64 / self.elapsed
        } else {
            0.0
        }
    }
    pub(crate) fn errors(&self) -> u64 {
        self.rejected + self.http_errors + self.io_errors + self.granted.errors
    }
}

/// `n` complete HTTP/1.1 requests (header and DER body) for `POST /tsa`, each with
/// `headers` (`Name: value`).
pub(crate) fn build_requests(
    n: usize,
    policy: Option<&str>,
    headers: &[&str],
) -> anyhow::Result<Vec<Vec<u8>>> {
    let policy = match policy {
        Some(p) => Some(
            p.parse::<ObjectIdentifier>()
                .map_err(|e| anyhow::anyhow!("bad OID {p}: {e}"))?,
        ),
        None => None,
    };
    let mut random = vec![0u8; n * 40];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut random)?;
    let mut out = Vec::with_capacity(n);
    for chunk in random.chunks_exact(40) {
        let body = time_stamp_req(&chunk[..32], &chunk[32..40], policy.as_ref());
        out.push(post("/tsa", "application/timestamp-query", headers, &body));
    }
    Ok(out)
}

/// DER TimeStampReq (RFC 3161 §2.4.1): v1, SHA-256 imprint (NULL parameters, as
/// OpenSSL writes them), optional reqPolicy, an 8-byte positive nonce, certReq TRUE.
pub(crate) fn time_stamp_req(
    imprint: &[u8],
    nonce: &[u8],
    policy: Option<&ObjectIdentifier>,
) -> Vec<u8> {
    let imprint = der::sequence(&[
        &HashAlgorithm::Sha256.algorithm_identifier_null_der(),
        &der::tlv(tag::OCTET_STRING, imprint),
    ]);
    // Positive and minimal: first byte in 0x40..=0x7f.
    let mut nonce = nonce.to_vec();
    if let Some(first) = nonce.first_mut() {
        *first = (*first & 0x3f) | 0x40;
    }
    let mut content = [der::tlv(tag::INTEGER, &[1]), imprint].concat();
    if let Some(oid) = policy {
        content.extend_from_slice(&der::oid(oid));
    }
    content.extend_from_slice(&der::tlv(tag::INTEGER, &nonce));
    content.extend_from_slice(&[0x01, 0x01, 0xff]); // certReq BOOLEAN TRUE
    der::tlv(tag::SEQUENCE, &content)
}

/// PKIStatus of a TimeStampResp, and whether a token follows the status.
pub(crate) fn tsa_status(resp: &[u8]) -> Option<(u64, bool)> {
    let (t, body, rest) = der::read_tlv(resp)?;
    if t != tag::SEQUENCE || !rest.is_empty() {
        return None;
    }
    let (t, status_info, after_status) = der::read_tlv(body)?;
    if t != tag::SEQUENCE {
        return None;
    }
    let (t, status, _) = der::read_tlv(status_info)?;
    if t != tag::INTEGER || status.is_empty() || status.len() > 8 {
        return None;
    }
    let status = status.iter().fold(0u64, |a, &b| (a << 8) | b as u64);
    Some((status, !after_status.is_empty()))
}

/// What a 200 answer's body says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Granted (a token, a receipt).
    Granted,
    /// A well-formed refusal (a TimeStampResp with status rejection or waiting).
    Rejected,
    /// Not the answer the route promises.
    Malformed,
}

/// A TimeStampResp's verdict: granted / grantedWithMods with a token is granted.
pub(crate) fn tsa_answer(body: &[u8]) -> Answer {
    match tsa_status(body) {
        Some((0 | 1, true)) => Answer::Granted,
        Some(_) => Answer::Rejected,
        None => Answer::Malformed,
    }
}

/// `clients` connections to `target` posting `reqs` round-robin for `seconds`; a 200 is
/// granted when its body is a granted TimeStampResp.
pub(crate) async fn drive(
    target: &Target,
    reqs: Arc<Vec<Vec<u8>>>,
    clients: usize,
    seconds: Duration,
) -> anyhow::Result<LoadResult> {
    drive_judged(target, reqs, clients, seconds, tsa_answer).await
}

/// [`drive`] for any route: `judge` says what each 200 answer's body is.
pub(crate) async fn drive_judged(
    target: &Target,
    reqs: Arc<Vec<Vec<u8>>>,
    clients: usize,
    seconds: Duration,
    judge: fn(&[u8]) -> Answer,
) -> anyhow::Result<LoadResult> {
    let conns = connect_all(target, clients).await?;
    let start = Instant::now();
    let deadline = start + seconds;
    let mut tasks = tokio::task::JoinSet::new();
    for (i, conn) in conns.into_iter().enumerate() {
        let client = Client {
            reqs: reqs.clone(),
            first: i,
            stride: clients,
            judge,
        };
        tasks.spawn(client.run(KeepAlive::new(target, conn), deadline));
    }
    let mut all = LoadResult::default();
    while let Some(r) = tasks.join_next().await {
        let r = r?;
        all.granted.merge(r.granted);
        all.rejected += r.rejected;
        all.http_errors += r.http_errors;
        all.io_errors += r.io_errors;
    }
    all.elapsed = start.elapsed().as_secs_f64();
    Ok(all)
}

/// One closed-loop client of [`drive`]: request `first`, `first + stride`, ... of
/// `reqs`, round-robin, on one keep-alive connection.
struct Client {
    reqs: Arc<Vec<Vec<u8>>>,
    first: usize,
    stride: usize,
    judge: fn(&[u8]) -> Answer,
}

impl Client {
    /// Sends until `deadline`; counts only 200 answers `judge` grants as granted.
    async fn run(self, mut conn: KeepAlive, deadline: Instant) -> LoadResult {
        let mut r = LoadResult::default();
        let mut next = self.first;
        while Instant::now() < deadline {
            let req = &self.reqs[next % self.reqs.len()];
            next += self.stride;
            let t0 = Instant::now();
            match conn.exchange(req).await {
                Ok((200, body)) => match (self.judge)(&body) {
                    Answer::Granted => r.granted.push(t0.elapsed()),
                    Answer::Rejected => r.rejected += 1,
                    Answer::Malformed => r.http_errors += 1,
                },
                Ok(_) => r.http_errors += 1,
                Err(_) => r.io_errors += 1,
            }
        }
        r
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use crate::tsa::ECDSA_POLICY;

    #[test]
    fn request_encoding() {
        let oid: ObjectIdentifier = ECDSA_POLICY.parse().unwrap();
        let der = time_stamp_req(&[7u8; 32], &[0xff; 8], Some(&oid));
        let (tag, _, rest) = der::read_tlv(&der).unwrap();
        assert_eq!((tag, rest.len()), (0x30, 0));
        assert!(
            der.windows(10)
                .any(|w| w == [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x0d, 0x02])
        );
        assert!(der.windows(15).any(|w| w
            == [
                0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
                0x00
            ]));
        // Nonce stays positive and minimal.
        let nonce_at = der.len() - 3 - 8;
        assert_eq!(der[nonce_at - 2..nonce_at], [0x02, 0x08]);
        assert_eq!(der[nonce_at], 0x7f);
    }

    #[test]
    fn status_parsing() {
        // status granted, then a (fake) token.
        let granted = [
            0x30, 0x09, 0x30, 0x03, 0x02, 0x01, 0x00, 0x30, 0x02, 0x05, 0x00,
        ];
        assert_eq!(tsa_status(&granted), Some((0, true)));
        let rejected = [0x30, 0x05, 0x30, 0x03, 0x02, 0x01, 0x02];
        assert_eq!(tsa_status(&rejected), Some((2, false)));
        assert_eq!(tsa_status(&[0x30, 0x05, 0x30]), None);
    }
}
