//! `hanko-conformance tsa`: probes a running RFC 3161 TSA over HTTP(S) with requests the
//! tool builds itself, well formed (SHA-256/384/512, with and without nonce and certReq,
//! with reqPolicy) and broken on purpose (every bad input of requirements A.2–A.13), and
//! checks each reply.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::Digest as _;

use crate::crypto::{self, Hash};
use crate::der::{self, tag};
use crate::report::{Findings, Outcome};
use crate::token::{self, Expect};

/// The failInfo bits of RFC 3161 §2.4.2 a TSA may send.
pub const ALLOWED_FAIL_BITS: [usize; 8] = [0, 2, 5, 14, 15, 16, 17, 25];

/// failInfo names, by bit.
pub fn fail_bit_name(bit: usize) -> &'static str {
    match bit {
        0 => "badAlg",
        2 => "badRequest",
        5 => "badDataFormat",
        14 => "timeNotAvailable",
        15 => "unacceptedPolicy",
        16 => "unacceptedExtension",
        17 => "addInfoNotAvailable",
        25 => "systemFailure",
        _ => "not an RFC 3161 bit",
    }
}

/// How to reach the TSA and what to expect of it.
#[derive(Clone, Debug)]
pub struct Target {
    /// The TSA's URL (http or https).
    pub url: String,
    /// DER trust anchors for the tokens' signer chains.
    pub ca: Vec<Vec<u8>>,
    /// The policy to ask for with reqPolicy; else the one the first token carries.
    pub policy: Option<String>,
    /// Whether the EU-qualified profile is claimed.
    pub qualified: bool,
    /// Trust anchors for an https listener (PEM); `None`: the web PKI.
    pub tls_ca: Option<Vec<u8>>,
    /// Per-request timeout.
    pub timeout: Duration,
}

/// One HTTP exchange's result.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// Content-Type, without parameters.
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
}

/// The HTTP side, kept to what the probe needs: POST a body with a content type, GET.
#[derive(Debug)]
struct Http {
    agent: ureq::Agent,
    url: String,
}

impl Http {
    fn new(target: &Target) -> Result<Self, String> {
        use ureq::tls::{PemItem, RootCerts, TlsConfig};
        let roots = match &target.tls_ca {
            Some(pem) => {
                let certs: Vec<_> = ureq::tls::parse_pem(pem)
                    .filter_map(|i| match i {
                        Ok(PemItem::Certificate(c)) => Some(c),
                        _ => None,
                    })
                    .collect();
                if certs.is_empty() {
                    return Err("--tls-ca holds no CERTIFICATE".into());
                }
                RootCerts::new_with_certs(&certs)
            }
            None => RootCerts::WebPki,
        };
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(target.timeout))
            .http_status_as_error(false)
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .build()
            .into();
        Ok(Self {
            agent,
            url: target.url.clone(),
        })
    }

    fn read(mut r: ureq::http::Response<ureq::Body>) -> Result<Reply, String> {
        let status = r.status().as_u16();
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let body = r
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(|e| format!("reading the reply: {e}"))?;
        Ok(Reply {
            status,
            content_type,
            body,
        })
    }

    fn post(&self, content_type: &str, body: &[u8]) -> Result<Reply, String> {
        let r = self
            .agent
            .post(&self.url)
            .header("Content-Type", content_type)
            .send(body)
            .map_err(|e| format!("POST {}: {e}", self.url))?;
        Self::read(r)
    }

    fn get(&self) -> Result<Reply, String> {
        let r = self
            .agent
            .get(&self.url)
            .call()
            .map_err(|e| format!("GET {}: {e}", self.url))?;
        Self::read(r)
    }
}

/// A TimeStampReq's parts; [`Request::der`] encodes it.
#[derive(Clone, Debug)]
pub struct Request {
    /// version (1).
    pub version: u64,
    /// The imprint's hash OID and value.
    pub hash_oid: String,
    /// The imprint.
    pub imprint: Vec<u8>,
    /// reqPolicy.
    pub policy: Option<String>,
    /// nonce (positive, big-endian magnitude).
    pub nonce: Option<Vec<u8>>,
    /// certReq TRUE (FALSE is the DEFAULT, omitted).
    pub cert_req: bool,
    /// Extensions, already encoded (each an Extension SEQUENCE).
    pub extensions: Vec<Vec<u8>>,
}

impl Request {
    /// A well-formed request over fresh data with `hash`.
    pub fn new(hash: Hash, nonce: bool, cert_req: bool) -> Self {
        Self {
            version: 1,
            hash_oid: hash.oid().to_owned(),
            imprint: hash.digest(&fresh_bytes(b"imprint")),
            policy: None,
            nonce: nonce.then(|| {
                let mut n = fresh_bytes(b"nonce")[..8].to_vec();
                n[0] = (n[0] & 0x7f) | 0x01;
                n
            }),
            cert_req,
            extensions: Vec::new(),
        }
    }

    /// DER.
    pub fn der(&self) -> Vec<u8> {
        let mi = der::seq(&[&der::alg_id(&self.hash_oid), &der::octets(&self.imprint)]);
        let mut parts: Vec<Vec<u8>> = vec![der::uint_u64(self.version), mi];
        if let Some(p) = &self.policy {
            parts.push(der::oid(p));
        }
        if let Some(n) = &self.nonce {
            parts.push(der::uint(n));
        }
        if self.cert_req {
            parts.push(der::tlv(tag::BOOLEAN, &[0xff]));
        }
        if !self.extensions.is_empty() {
            parts.push(der::tlv(0xa0, &self.extensions.concat()));
        }
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        der::seq(&refs)
    }

    /// The nonce as the token must echo it (the INTEGER's contents).
    fn nonce_contents(&self) -> Option<Vec<u8>> {
        self.nonce.as_ref().map(|n| {
            let enc = der::uint(n);
            der::read_exact(&enc)
                .map(|t| t.value.to_vec())
                .unwrap_or_default()
        })
    }

    fn label(&self, i: usize) -> String {
        let hash = Hash::from_oid(&self.hash_oid).map_or("?", Hash::name);
        let mut l = format!("request {i} ({hash}");
        if self.nonce.is_some() {
            l.push_str(", nonce");
        }
        if self.cert_req {
            l.push_str(", certReq");
        }
        if self.policy.is_some() {
            l.push_str(", reqPolicy");
        }
        l.push(')');
        l
    }
}

/// Bytes no earlier call returned: SHA-256 of the time, a counter and `tag`.
fn fresh_bytes(tag: &[u8]) -> Vec<u8> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut h = sha2::Sha256::new();
    h.update(tag);
    h.update(n.to_be_bytes());
    h.update(t.to_be_bytes());
    h.update(std::process::id().to_be_bytes());
    h.finalize().to_vec()
}

fn now_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Runs the whole probe; every check lands in the returned findings. `Err` when the TSA
/// cannot be reached at all (nothing to audit).
pub fn probe(target: &Target) -> Result<Findings, String> {
    let mut f = Findings::new();
    let http = Http::new(target)?;

    // Well-formed requests: certReq first, so the later ones without certificates can be
    // checked against the TSA certificate already seen.
    let mut requests = Vec::new();
    for cert_req in [true, false] {
        for hash in [Hash::Sha256, Hash::Sha384, Hash::Sha512] {
            for nonce in [true, false] {
                requests.push(Request::new(hash, nonce, cert_req));
            }
        }
    }
    if let Some(p) = &target.policy {
        for r in &mut requests {
            r.policy = Some(p.clone());
        }
    }
    let mut signer_cert: Option<Vec<u8>> = None;
    let mut intermediates: Vec<Vec<u8>> = Vec::new();
    let mut policy_seen: Option<String> = None;
    let mut serials: Vec<(Vec<u8>, String)> = Vec::new();
    let with_policy = {
        let mut r = Request::new(Hash::Sha256, true, true);
        r.policy = target.policy.clone();
        r
    };
    let total = requests.len() + 1;
    for (i, mut req) in requests.into_iter().chain([with_policy]).enumerate() {
        let i = i + 1;
        if i == total && req.policy.is_none() {
            // reqPolicy naming the policy the TSA chose itself.
            req.policy = policy_seen.clone();
        }
        let label = req.label(i);
        let sent = now_f64();
        let reply = match http.post("application/timestamp-query", &req.der()) {
            Ok(r) => r,
            Err(e) if i == 1 => return Err(format!("the TSA cannot be reached: {e}")),
            Err(e) => {
                f.add(
                    "A.13",
                    "http-media-types",
                    Outcome::Fail,
                    format!("{label}: {e}"),
                );
                continue;
            }
        };
        let received = now_f64();
        f.check(
            "A.13",
            "http-media-types",
            if reply.status == 200 && reply.content_type == "application/timestamp-reply" {
                Ok("HTTP 200, application/timestamp-reply".into())
            } else {
                Err(format!(
                    "{label}: HTTP {} with {:?}",
                    reply.status, reply.content_type
                ))
            },
        );
        if reply.status != 200 {
            let text = String::from_utf8_lossy(&reply.body);
            f.add(
                "A.9",
                "granted",
                Outcome::Fail,
                format!(
                    "{label}: HTTP {}: {}",
                    reply.status,
                    text.trim().chars().take(120).collect::<String>()
                ),
            );
            continue;
        }
        let resp = match token::parse_response(&reply.body) {
            Ok(r) => r,
            Err(e) => {
                f.add("A.9", "granted", Outcome::Fail, format!("{label}: {e}"));
                continue;
            }
        };
        let Some(tok) = resp.token.filter(|_| resp.status <= 1) else {
            f.add(
                "A.9",
                "granted",
                Outcome::Fail,
                format!(
                    "{label}: status {}, failInfo {:?}, {:?}",
                    resp.status,
                    resp.fail_bits
                        .iter()
                        .map(|b| fail_bit_name(*b))
                        .collect::<Vec<_>>(),
                    resp.status_strings
                ),
            );
            continue;
        };
        f.check(
            "A.9",
            "granted",
            if resp.status == 0 && resp.fail_bits.is_empty() {
                Ok("every well-formed request granted (status 0) with a token".into())
            } else {
                Err(format!(
                    "{label}: status {} (grantedWithMods) or failInfo set",
                    resp.status
                ))
            },
        );
        let expect = Expect {
            imprint: Some((req.hash_oid.clone(), req.imprint.clone())),
            nonce: Some(req.nonce_contents()),
            cert_req: Some(req.cert_req),
            policy: req.policy.clone(),
            sent_received: Some((sent, received)),
            signer_cert: signer_cert.clone(),
            ca: target.ca.clone(),
            intermediates: intermediates.clone(),
            qualified: target.qualified,
        };
        let facts = token::check_token(tok, &expect, &label, &mut f);
        if signer_cert.is_none() {
            signer_cert = facts.signer_cert.clone();
        }
        for c in facts.certificates {
            if !intermediates.contains(&c) {
                intermediates.push(c);
            }
        }
        if policy_seen.is_none() {
            policy_seen = tst_policy(tok);
        }
        if let Some(s) = facts.serial {
            serials.push((s, label));
        }
    }
    // B.25 uniqueness across this run's tokens.
    let mut dup = None;
    for (i, (s, l)) in serials.iter().enumerate() {
        if let Some((_, first)) = serials[..i].iter().find(|(t, _)| t == s) {
            dup = Some(format!("serial {} in {first} and {l}", hex::encode(s)));
            break;
        }
    }
    f.check(
        "B.25",
        "serial-unique",
        match dup {
            Some(d) => Err(d),
            None if serials.is_empty() => Err("no token to compare".into()),
            None => Ok(format!(
                "{} tokens, {} distinct serials",
                serials.len(),
                serials.len()
            )),
        },
    );

    bad_inputs(
        &http,
        &mut f,
        policy_seen.as_deref(),
        target.policy.as_deref(),
    );
    Ok(f)
}

/// The policy OID of a token's TSTInfo.
fn tst_policy(tok: &[u8]) -> Option<String> {
    token::tst_info_fields(tok)?.get(1)?.oid().ok()
}

/// Sends each bad input and checks it is refused as requirements A.2–A.13 say.
fn bad_inputs(http: &Http, f: &mut Findings, policy: Option<&str>, asked: Option<&str>) {
    // Every bad input asks for the audited policy (when one was named), so the
    // rejections come from that policy's path.
    let base = || {
        let mut r = Request::new(Hash::Sha256, true, false);
        r.policy = asked.map(str::to_owned);
        r
    };
    let sha256 = |imprint_len: usize| {
        let mut r = base();
        r.imprint.resize(imprint_len, 0x5a);
        r
    };
    let with_hash = |oid: &str, len: usize| {
        let mut r = base();
        r.hash_oid = oid.to_owned();
        r.imprint = fresh_bytes(b"weak")[..len.min(32)].to_vec();
        r.imprint.resize(len, 0x11);
        r
    };
    let good = base().der();

    rejected(
        http,
        f,
        "A.2",
        "imprint-length",
        &[("a SHA-256 imprint of 20 octets", sha256(20).der())],
        5,
    );
    rejected(
        http,
        f,
        "A.3",
        "weak-or-unknown-hash",
        &[
            ("SHA-1", with_hash(crypto::oid::SHA1, 20).der()),
            ("MD5", with_hash(crypto::oid::MD5, 16).der()),
            ("an unknown hash OID", with_hash("1.2.3.4.5.6", 32).der()),
        ],
        0,
    );
    let mut unknown_policy = Request::new(Hash::Sha256, true, false);
    unknown_policy.policy = Some("1.3.6.1.4.1.99999.42.1".into());
    if policy == Some("1.3.6.1.4.1.99999.42.1") {
        unknown_policy.policy = Some("1.3.6.1.4.1.99999.42.2".into());
    }
    rejected(
        http,
        f,
        "A.4",
        "unaccepted-policy",
        &[("an unknown reqPolicy", unknown_policy.der())],
        15,
    );
    let mut ext = base();
    ext.extensions = vec![der::seq(&[
        &der::oid("1.3.6.1.4.1.99999.7"),
        &der::octets(&[0x05, 0x00]),
    ])];
    rejected(
        http,
        f,
        "A.5",
        "request-extension",
        &[("a non-critical extension", ext.der())],
        16,
    );
    let mut v2 = base();
    v2.version = 2;
    rejected(
        http,
        f,
        "A.8",
        "request-version",
        &[("version 2", v2.der())],
        2,
    );
    let mut non_minimal = vec![0x30, 0x81, good.len() as u8 - 2];
    non_minimal.extend_from_slice(&good[2..]);
    rejected(
        http,
        f,
        "A.8",
        "malformed-request",
        &[
            ("garbage", b"this is not DER".to_vec()),
            ("an empty body", Vec::new()),
            ("a truncated request", good[..good.len() - 3].to_vec()),
            ("a non-minimal length", non_minimal),
        ],
        5,
    );
    let mut trailing = good.clone();
    trailing.extend_from_slice(&[0x00, 0x00]);
    rejected(
        http,
        f,
        "A.8",
        "trailing-bytes",
        &[("two bytes after the request", trailing)],
        5,
    );

    // A.13 HTTP: a wrong media type gets 415 and a GET 405, no token.
    let media = http
        .post("application/octet-stream", &good)
        .map(|r| r.status);
    let get = http.get().map(|r| r.status);
    f.check(
        "A.13",
        "http-errors",
        match (media, get) {
            (Ok(415), Ok(405)) => Ok("415 for a wrong Content-Type, 405 for GET".into()),
            (m, g) => Err(format!(
                "a wrong Content-Type got {}, GET got {} (415 and 405 expected)",
                m.map_or_else(|e| e, |s| format!("HTTP {s}")),
                g.map_or_else(|e| e, |s| format!("HTTP {s}"))
            )),
        },
    );
}

/// Each of `inputs` must get HTTP 200, a TimeStampResp with status rejection, no token,
/// and failInfo `bit` alone (A.9 checks the form of every rejection).
fn rejected(
    http: &Http,
    f: &mut Findings,
    req: &'static str,
    check: &'static str,
    inputs: &[(&str, Vec<u8>)],
    bit: usize,
) {
    for (what, body) in inputs {
        let reply = match http.post("application/timestamp-query", body) {
            Ok(r) => r,
            Err(e) => {
                f.add(req, check, Outcome::Fail, format!("{what}: {e}"));
                continue;
            }
        };
        let resp = match token::parse_response(&reply.body) {
            Ok(r) if reply.status == 200 => r,
            Ok(_) | Err(_) => {
                f.add(
                    req,
                    check,
                    Outcome::Fail,
                    format!("{what}: HTTP {} and no TimeStampResp", reply.status),
                );
                continue;
            }
        };
        let names: Vec<&str> = resp.fail_bits.iter().map(|b| fail_bit_name(*b)).collect();
        // The form of a rejection (a grant is the specific check's failure alone).
        if resp.status >= 2 {
            let form_ok = resp.status == 2
                && resp.token.is_none()
                && resp.fail_bits.len() == 1
                && resp.fail_bits.iter().all(|b| ALLOWED_FAIL_BITS.contains(b));
            f.check(
                "A.9",
                "rejection-form",
                if form_ok {
                    Ok("every rejection: status 2, no token, one RFC 3161 failInfo bit".into())
                } else {
                    Err(format!(
                        "{what}: status {}, token {}, failInfo {names:?}",
                        resp.status,
                        if resp.token.is_some() {
                            "present"
                        } else {
                            "absent"
                        }
                    ))
                },
            );
        }
        f.check(
            req,
            check,
            if resp.status == 2 && resp.token.is_none() && resp.fail_bits == [bit] {
                Ok(format!("rejected with {}", fail_bit_name(bit)))
            } else if resp.token.is_some() {
                Err(format!(
                    "{what}: a token was issued (status {})",
                    resp.status
                ))
            } else {
                Err(format!(
                    "{what}: status {}, failInfo {names:?}, not {}",
                    resp.status,
                    fail_bit_name(bit)
                ))
            },
        );
    }
}
