//! The HTTP load of `hanko-bench seal`: closed-loop keep-alive clients, each doing one
//! call after the other, a call being either
//!
//! * CSC v2 `credentials/authorize` (`numSignatures` = hashes per call) then
//!   `signatures/signHash` with that many SHA-256 hashes and the SAD just issued, or
//! * `POST /api/v1/seal/cades?level=B-B` of a small document (`--cades`), or
//! * `POST /api/v1/seal/pdf?level=B-B` of a PDF (`--pdf`; the same request for every
//!   client of the row).
//!
//! Requests are built before the run (random hashes, JSON bodies split around the SAD),
//! so the generator only splices in the SAD and parses the replies. A call counts only
//! when every reply was 200 and well-formed: the SAD present, exactly as many base64
//! signatures as hashes (signHash), a DER SEQUENCE (CAdES), the PDF followed by
//! an update (PAdES). Some signatures of each row
//! are kept to be verified against the key after the row (`--check-signatures`), off the
//! timed path.
//!
//! The rate is counted over a window inside the steady state, as `hsm --digest-batches`
//! does: the clients start together, the window opens [`RAMP`] later and lasts
//! `--seconds`; a call counts when its last reply arrives inside the window, and the
//! clients send no new call after it closes. A call of 64 RSA-3072 hashes takes a good
//! fraction of a second under load, so counting every call over the clients' whole run
//! would let the last, staggered calls leave the signers idle at the end.

use std::io::Read as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hanko_pki::DigestSignAlgorithm;

use crate::http::{KeepAlive, Target, connect_all, post};
use crate::stats::Samples;

/// How long the clients run before the measurement window opens.
pub(super) const RAMP: Duration = Duration::from_millis(300);

/// Distinct hash lists (or documents) pre-built per client.
const VARIANTS: usize = 4;

/// What the clients saw inside the window (errors: over the whole run).
#[derive(Debug, Clone, Default)]
pub(super) struct LoadResult {
    /// Latency of each counted call (authorize + signHash, or one CAdES request).
    pub(super) calls: Samples,
    /// Signatures in the counted calls.
    pub(super) signatures: u64,
    /// Replies other than 200.
    pub(super) refused: u64,
    /// 200 replies that were not what was asked (no SAD, wrong count, not base64, not DER).
    pub(super) malformed: u64,
    /// Connection errors (each followed by a reconnect).
    pub(super) io_errors: u64,
    /// The first refusal or malformed reply, for the report (status and start of body).
    pub(super) first_error: Option<String>,
    /// Length of the window, seconds.
    pub(super) window: f64,
    /// (hash, signature) pairs kept for verification after the row.
    pub(super) kept: Vec<(Vec<u8>, Vec<u8>)>,
}

impl LoadResult {
    /// Signatures per second in the window.
    pub(super) fn rate(&self) -> f64 {
        if self.window > 0.0 {
            self.signatures as f64 / self.window
        } else {
            0.0
        }
    }

    /// Calls per second in the window.
    pub(super) fn call_rate(&self) -> f64 {
        if self.window > 0.0 {
            self.calls.count() as f64 / self.window
        } else {
            0.0
        }
    }

    pub(super) fn errors(&self) -> u64 {
        self.refused + self.malformed + self.io_errors + self.calls.errors
    }

    fn merge(&mut self, other: LoadResult) {
        self.calls.merge(other.calls);
        self.signatures += other.signatures;
        self.refused += other.refused;
        self.malformed += other.malformed;
        self.io_errors += other.io_errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.kept.extend(other.kept);
    }
}

/// What one client sends, pre-built.
#[derive(Debug)]
pub(super) enum Work {
    /// authorize + signHash.
    SignHash {
        /// The `credentials/authorize` request (the same every call).
        authorize: Vec<u8>,
        /// Authorization header line, for the signHash request built per call.
        auth_header: String,
        /// The hash lists: (hashes, the signHash body before the SAD, after it).
        variants: Vec<(Vec<Vec<u8>>, String, String)>,
    },
    /// One `POST /api/v1/seal/cades` per call: the complete requests.
    Cades(Vec<Vec<u8>>),
    /// One `POST /api/v1/seal/pdf` per call: the complete request, and the PDF's length.
    Pdf(Vec<u8>, usize),
}

/// `Authorization: Bearer KEY`.
fn bearer(api_key: &str) -> String {
    format!("Authorization: Bearer {api_key}")
}

/// `n` random bytes.
fn random(n: usize) -> anyhow::Result<Vec<u8>> {
    let mut v = vec![0u8; n];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut v)?;
    Ok(v)
}

impl Work {
    /// authorize + signHash of `batch` SHA-256 hashes with `credential` (`alg`).
    pub(super) fn sign_hash(
        credential: &str,
        alg: DigestSignAlgorithm,
        batch: usize,
        api_key: &str,
    ) -> anyhow::Result<Work> {
        let auth_header = bearer(api_key);
        let authorize = post(
            "/csc/v2/credentials/authorize",
            "application/json",
            &[&auth_header],
            format!(r#"{{"credentialID":"{credential}","numSignatures":{batch}}}"#).as_bytes(),
        );
        let len = alg.hash().output_len();
        let mut variants = Vec::with_capacity(VARIANTS);
        for _ in 0..VARIANTS {
            let raw = random(batch * len)?;
            let hashes: Vec<Vec<u8>> = raw.chunks_exact(len).map(<[u8]>::to_vec).collect();
            let (before, after) = sign_hash_body(credential, alg, &hashes);
            variants.push((hashes, before, after));
        }
        Ok(Work::SignHash {
            authorize,
            auth_header,
            variants,
        })
    }

    /// CAdES B-B seals of random `bytes`-byte documents with `credential`.
    pub(super) fn cades(credential: &str, bytes: usize, api_key: &str) -> anyhow::Result<Work> {
        let auth = bearer(api_key);
        let path = format!("/api/v1/seal/cades?credential={credential}&level=B-B");
        let mut reqs = Vec::with_capacity(VARIANTS);
        for _ in 0..VARIANTS {
            reqs.push(post(
                &path,
                "application/octet-stream",
                &[&auth],
                &random(bytes)?,
            ));
        }
        Ok(Work::Cades(reqs))
    }
}

impl Work {
    /// PAdES B-B seals of `pdf` with `credential`.
    pub(super) fn pdf(credential: &str, pdf: &[u8], api_key: &str) -> Work {
        let path = format!("/api/v1/seal/pdf?credential={credential}&level=B-B");
        Work::Pdf(
            post(&path, "application/pdf", &[&bearer(api_key)], pdf),
            pdf.len(),
        )
    }
}

/// The signHash JSON body around the SAD: (everything before the SAD's value, after it).
pub(super) fn sign_hash_body(
    credential: &str,
    alg: DigestSignAlgorithm,
    hashes: &[Vec<u8>],
) -> (String, String) {
    let list: Vec<String> = hashes
        .iter()
        .map(|h| format!("\"{}\"", STANDARD.encode(h)))
        .collect();
    let before = format!(r#"{{"credentialID":"{credential}","SAD":""#);
    let after = format!(
        r#"","hashes":[{}],"hashAlgorithmOID":"{}","signAlgo":"{}"}}"#,
        list.join(","),
        alg.hash().oid(),
        alg.sign_algo_oid()
    );
    (before, after)
}

/// The SAD of an authorize reply.
pub(super) fn parse_sad(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get("SAD")?.as_str().map(str::to_owned)
}

/// The signatures of a signHash reply, decoded; `None` unless there are exactly `n`, all
/// base64 and non-empty.
pub(super) fn parse_signatures(body: &[u8], n: usize) -> Option<Vec<Vec<u8>>> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let list = v.get("signatures")?.as_array()?;
    if list.len() != n {
        return None;
    }
    list.iter()
        .map(|s| STANDARD.decode(s.as_str()?).ok().filter(|d| !d.is_empty()))
        .collect()
}

/// The measurement window: calls whose last reply arrives in `[open, close]` count.
#[derive(Debug, Clone, Copy)]
pub(super) struct Window {
    pub(super) open: Instant,
    pub(super) close: Instant,
}

impl Window {
    pub(super) fn starting(start: Instant, ramp: Duration, length: Duration) -> Window {
        let open = start + ramp;
        Window {
            open,
            close: open + length,
        }
    }

    pub(super) fn contains(&self, t: Instant) -> bool {
        self.open <= t && t <= self.close
    }
}

/// `clients` connections doing `work` until the window of `seconds` (opening [`RAMP`]
/// after they start) closes; each keeps up to `keep` (hash, signature) pairs.
pub(super) async fn drive(
    addr: &str,
    work: Vec<Arc<Work>>,
    seconds: Duration,
    keep: usize,
) -> anyhow::Result<LoadResult> {
    let clients = work.len();
    let target = Target::plain(addr);
    let conns = connect_all(&target, clients).await?;
    let window = Window::starting(Instant::now(), RAMP, seconds);
    let per_client = keep.div_ceil(clients.max(1));
    let mut tasks = tokio::task::JoinSet::new();
    for (conn, work) in conns.into_iter().zip(work) {
        let client = Client {
            work,
            keep: per_client,
        };
        tasks.spawn(client.run(KeepAlive::new(&target, conn), window));
    }
    let mut all = LoadResult::default();
    while let Some(r) = tasks.join_next().await {
        all.merge(r?);
    }
    all.kept.truncate(keep);
    all.window = seconds.as_secs_f64();
    Ok(all)
}

/// Why a call did not count.
enum Failure {
    /// A reply other than 200: its status and the start of its body.
    Refused(String),
    /// A 200 reply that was not what was asked.
    Malformed(String),
    Io,
}

/// One closed-loop client of [`drive`] on one keep-alive connection.
struct Client {
    work: Arc<Work>,
    /// Pairs to keep for verification.
    keep: usize,
}

impl Client {
    async fn run(self, mut conn: KeepAlive, window: Window) -> LoadResult {
        let mut r = LoadResult::default();
        let mut next = 0usize;
        while Instant::now() < window.close {
            let t0 = Instant::now();
            let result = self.call(&mut conn, next).await;
            let done = Instant::now();
            next += 1;
            match result {
                Ok(pairs) => {
                    if window.contains(done) {
                        r.signatures += pairs.len() as u64;
                        r.calls.push(done - t0);
                        let room = self.keep.saturating_sub(r.kept.len());
                        r.kept.extend(pairs.into_iter().take(room));
                    }
                }
                Err(f) => {
                    let text = match f {
                        Failure::Refused(t) => {
                            r.refused += 1;
                            Some(t)
                        }
                        Failure::Malformed(t) => {
                            r.malformed += 1;
                            Some(t)
                        }
                        Failure::Io => {
                            r.io_errors += 1;
                            None
                        }
                    };
                    if r.first_error.is_none() {
                        r.first_error = text;
                    }
                }
            }
        }
        r
    }

    /// One call; its (hash, signature) pairs (for CAdES: the seal, no hash).
    async fn call(&self, c: &mut KeepAlive, n: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>, Failure> {
        match &*self.work {
            Work::SignHash {
                authorize,
                auth_header,
                variants,
            } => {
                let body = exchange(c, authorize).await?;
                let sad = parse_sad(&body)
                    .ok_or_else(|| Failure::Malformed(excerpt("authorize: no SAD", &body)))?;
                let (hashes, before, after) = &variants[n % variants.len()];
                let json = format!("{before}{sad}{after}");
                let req = post(
                    "/csc/v2/signatures/signHash",
                    "application/json",
                    &[auth_header],
                    json.as_bytes(),
                );
                let body = exchange(c, &req).await?;
                let sigs = parse_signatures(&body, hashes.len()).ok_or_else(|| {
                    Failure::Malformed(excerpt("signHash: not as many signatures", &body))
                })?;
                Ok(hashes.iter().cloned().zip(sigs).collect())
            }
            Work::Cades(reqs) => {
                let body = exchange(c, &reqs[n % reqs.len()]).await?;
                if body.first() != Some(&0x30) {
                    return Err(Failure::Malformed(excerpt("cades: not DER", &body)));
                }
                Ok(vec![(Vec::new(), body)])
            }
            Work::Pdf(req, len) => {
                let body = exchange(c, req).await?;
                if !body.starts_with(b"%PDF-") || body.len() <= *len {
                    return Err(Failure::Malformed(excerpt("pdf: not a sealed PDF", &body)));
                }
                Ok(vec![(Vec::new(), Vec::new())])
            }
        }
    }
}

/// Sends `req`, returns the body of a 200 reply.
async fn exchange(c: &mut KeepAlive, req: &[u8]) -> Result<Vec<u8>, Failure> {
    match c.exchange(req).await {
        Ok((200, body)) => Ok(body),
        Ok((status, body)) => Err(Failure::Refused(excerpt(&status.to_string(), &body))),
        Err(_) => Err(Failure::Io),
    }
}

/// `what: ` and the first 200 characters of a body.
fn excerpt(what: &str, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let cut: String = text.chars().take(200).collect();
    format!("{what}: {cut}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use hanko_pki::HashAlgorithm;

    const HASH: HashAlgorithm = HashAlgorithm::Sha256;

    #[test]
    fn sign_hash_body_is_the_csc_request() {
        let alg = DigestSignAlgorithm::Ecdsa(HASH);
        let hashes = vec![vec![1u8; 32], vec![2u8; 32]];
        let (before, after) = sign_hash_body("seal-p256", alg, &hashes);
        let v: serde_json::Value =
            serde_json::from_str(&format!("{before}SAD-VALUE{after}")).unwrap();
        assert_eq!(v["credentialID"], "seal-p256");
        assert_eq!(v["SAD"], "SAD-VALUE");
        assert_eq!(v["hashAlgorithmOID"], "2.16.840.1.101.3.4.2.1");
        assert_eq!(v["signAlgo"], "1.2.840.10045.4.3.2");
        let list = v["hashes"].as_array().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(
            STANDARD.decode(list[1].as_str().unwrap()).unwrap(),
            [2u8; 32]
        );
        let rsa = DigestSignAlgorithm::RsaPkcs1v15(HASH);
        let (_, after) = sign_hash_body("seal-rsa3072", rsa, &hashes);
        assert!(
            after.contains(r#""signAlgo":"1.2.840.113549.1.1.11""#),
            "{after}"
        );
    }

    #[test]
    fn work_is_built_before_the_run() {
        let alg = DigestSignAlgorithm::Ecdsa(HASH);
        let Work::SignHash {
            authorize,
            variants,
            ..
        } = Work::sign_hash("seal-p256", alg, 64, "k3y").unwrap()
        else {
            panic!("not signHash work");
        };
        let text = String::from_utf8(authorize).unwrap();
        assert!(text.starts_with("POST /csc/v2/credentials/authorize HTTP/1.1\r\n"));
        assert!(text.contains("Authorization: Bearer k3y\r\n"));
        assert!(text.ends_with(r#"{"credentialID":"seal-p256","numSignatures":64}"#));
        assert_eq!(variants.len(), VARIANTS);
        assert!(
            variants
                .iter()
                .all(|(h, _, _)| h.len() == 64 && h[0].len() == 32)
        );
        assert_ne!(variants[0].0, variants[1].0, "random hashes");
        let Work::Cades(reqs) = Work::cades("seal-p256", 100, "k3y").unwrap() else {
            panic!("not CAdES work");
        };
        let head = String::from_utf8_lossy(&reqs[0]);
        assert!(
            head.starts_with("POST /api/v1/seal/cades?credential=seal-p256&level=B-B HTTP/1.1\r\n")
        );
        assert!(head.contains("Content-Length: 100\r\n"));
    }

    #[test]
    fn replies_count_only_when_complete() {
        assert_eq!(
            parse_sad(br#"{"SAD":"abc","expiresIn":300}"#).as_deref(),
            Some("abc")
        );
        assert_eq!(parse_sad(br#"{"error":"invalid_request"}"#), None);
        assert_eq!(parse_sad(b"not json"), None);
        let two = br#"{"signatures":["AQI=","AwQ="]}"#;
        assert_eq!(parse_signatures(two, 2), Some(vec![vec![1, 2], vec![3, 4]]));
        assert_eq!(parse_signatures(two, 3), None, "fewer than asked");
        assert_eq!(
            parse_signatures(br#"{"signatures":["AQI=","!!"]}"#, 2),
            None
        );
        assert_eq!(parse_signatures(br#"{"signatures":["AQI=",""]}"#, 2), None);
        assert_eq!(parse_signatures(br#"{"signatures":"AQI="}"#, 1), None);
    }

    #[test]
    fn the_window_counts_inside_only() {
        let start = Instant::now();
        let w = Window::starting(start, RAMP, Duration::from_secs(2));
        assert!(!w.contains(start));
        assert!(w.contains(start + RAMP));
        assert!(w.contains(start + RAMP + Duration::from_secs(1)));
        assert!(w.contains(start + RAMP + Duration::from_secs(2)));
        assert!(!w.contains(start + RAMP + Duration::from_millis(2001)));
    }

    #[test]
    fn rates_over_the_window() {
        let mut r = LoadResult {
            signatures: 640,
            window: 2.0,
            ..LoadResult::default()
        };
        for _ in 0..10 {
            r.calls.push(Duration::from_millis(5));
        }
        r.refused = 1;
        r.io_errors = 2;
        assert_eq!(r.rate(), 320.0);
        assert_eq!(r.call_rate(), 5.0);
        assert_eq!(r.errors(), 3);
        assert_eq!(LoadResult::default().rate(), 0.0);
    }
}
