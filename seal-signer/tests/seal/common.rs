//! Shared set-up, built once per test process.
//!
//! The PKI is made under `hanko_pki::test_support::TestCa` (with `hanko_pki::x509`, what
//! `hanko dev-init` uses): a P-256 root and intermediate as software keys (CA keys
//! only), the two seal keys (`seal-rsa3072`, `seal-p256`) generated inside a private
//! SoftHSM token and signing through `hanko-hsm`'s pool, and a TSA key (software) for the in-process `hanko_tsa::Tsa`
//! that stamps B-T seals through [`InProcessTsa`], the `TimeStamper` the server will
//! also build. No private key is written to disk except inside the SoftHSM token.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use hanko_hsm::{Hsm, PoolConfig};
use hanko_pki::cert::Certificate;
use hanko_pki::soft::SoftwareSigner;
use hanko_pki::test_support::TestCa;
use hanko_pki::x509::{CertParams, CertProfile, issue_certificate};
use hanko_pki::{BoxFuture, HashAlgorithm, KeyType, SignatureAlgorithm, Signer};
use hanko_seal::{Seal, SealCredential, TimeStampError, TimeStampErrorKind, TimeStamper};
use hanko_tsa::{
    ClockGuard, ClockGuardConfig, CountingSerials, ManualClock, Outcome, TimeStampUnit, Tsa,
    TsaConfig,
};
use rasn_cms::{SignedData, SignerInfo};

const TOKEN: &str = "hanko-seal-test";
const USER_PIN: &str = "user-pin-4711-x";
const SO_PIN: &str = "so-pin-0815-y";

/// Which seal key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Rsa3072,
    P256,
}

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::Rsa3072, Kind::P256];

    pub fn label(self) -> &'static str {
        match self {
            Kind::Rsa3072 => "seal-rsa3072",
            Kind::P256 => "seal-p256",
        }
    }

    pub fn algorithm(self) -> SignatureAlgorithm {
        match self {
            Kind::Rsa3072 => SignatureAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha256),
            Kind::P256 => SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256),
        }
    }
}

/// Everything the tests share.
pub struct Fixture {
    pub dir: PathBuf,
    pub hsm: Hsm,
    pub root_pem: PathBuf,
    /// The TSA certificate and the intermediate, for `openssl ts -verify -untrusted`.
    pub tsa_chain_pem: PathBuf,
    pub inter: Certificate,
    pub inter_key: Arc<SoftwareSigner>,
    /// (seal certificate, credential) per kind.
    pub rsa: (Certificate, SealCredential),
    pub p256: (Certificate, SealCredential),
    pub tsa_cert: Certificate,
    pub tsa_key: Arc<SoftwareSigner>,
    pub tsa: InProcessTsa,
}

impl Fixture {
    /// Another in-process TSA with the fixture's TSA key and chain, its clock `offset`
    /// ahead of the real time.
    pub fn tsa_ahead(&self, offset: Duration) -> InProcessTsa {
        InProcessTsa::new(
            self.tsa_key.clone(),
            vec![self.tsa_cert.clone(), self.inter.clone()],
            offset,
        )
    }

    pub fn credential(&self, kind: Kind) -> &SealCredential {
        match kind {
            Kind::Rsa3072 => &self.rsa.1,
            Kind::P256 => &self.p256.1,
        }
    }

    pub fn seal_cert(&self, kind: Kind) -> &Certificate {
        match kind {
            Kind::Rsa3072 => &self.rsa.0,
            Kind::P256 => &self.p256.0,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Another signing pool over the SoftHSM key `label`, with its own algorithm and
    /// settings.
    pub fn hsm_signer(
        &self,
        label: &str,
        alg: SignatureAlgorithm,
        pool: PoolConfig,
    ) -> Arc<dyn Signer> {
        Arc::new(self.hsm.signer(label, alg, pool).unwrap())
    }
}

/// The process's fixture. Built on its own thread with its own runtime, because the
/// first caller is already inside a `#[tokio::test]` runtime.
pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        std::thread::spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(make_fixture())
        })
        .join()
        .unwrap()
    })
}

/// A credential `name` over `signer`, with a seal certificate from the test
/// intermediate (subject CN = `name`) valid from a minute ago for `lifetime`.
pub async fn extra_credential(
    name: &str,
    signer: Arc<dyn Signer>,
    lifetime: Duration,
) -> SealCredential {
    let f = fixture();
    let now = SystemTime::now();
    let params = CertParams::new(
        CertProfile::Seal,
        self::name(name),
        now - Duration::from_secs(60),
        now + lifetime,
    );
    let cert = issue_certificate(
        &params,
        signer.public_key_der(),
        Some(&f.inter),
        f.inter_key.as_ref(),
    )
    .await
    .unwrap();
    SealCredential::new(name, signer, vec![cert, f.inter.clone()], now).unwrap()
}

pub fn name(cn: &str) -> hanko_pki::x509::Name {
    hanko_pki::test_support::name("Hanko Seal Test City", cn)
}

async fn make_fixture() -> Fixture {
    // Kept for the whole run, under cargo's target/tmp; older runs' directories go.
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hanko-seal");
    let (dir, hsm) = hanko_hsm::test_support::private_token(&base, TOKEN, SO_PIN, USER_PIN);

    let now = SystemTime::now();
    let from = now - Duration::from_secs(3600);
    let until = now + Duration::from_secs(365 * 86_400);
    let ec = SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256);

    let TestCa {
        root,
        inter,
        inter_key,
        ..
    } = TestCa::generate(
        "Hanko Seal Test City",
        from,
        until,
        until - Duration::from_secs(86_400),
    )
    .await;
    let leaf_until = until - Duration::from_secs(2 * 86_400);

    let mut creds = Vec::new();
    for kind in Kind::ALL {
        let kt = match kind {
            Kind::Rsa3072 => KeyType::Rsa { bits: 3072 },
            Kind::P256 => KeyType::EcP256,
        };
        let spki = hsm.generate_key_pair(kind.label(), kt).unwrap();
        let cert = issue_certificate(
            &CertParams::new(
                CertProfile::Seal,
                name(&format!("Hanko Seal Test {}", kind.label())),
                from,
                leaf_until,
            ),
            &spki,
            Some(&inter),
            inter_key.as_ref(),
        )
        .await
        .unwrap();
        let signer: Arc<dyn Signer> = Arc::new(
            hsm.signer(kind.label(), kind.algorithm(), PoolConfig::default())
                .unwrap(),
        );
        // The intermediate twice: the credential keeps it once.
        let chain = vec![cert.clone(), inter.clone(), inter.clone()];
        let cred = SealCredential::new(kind.label(), signer, chain, now).unwrap();
        creds.push((cert, cred));
    }
    let p256 = creds.pop().unwrap();
    let rsa = creds.pop().unwrap();

    let tsa_key = Arc::new(SoftwareSigner::generate(KeyType::EcP256, ec).unwrap());
    let tsa_cert = issue_certificate(
        &CertParams::new(
            CertProfile::Tsa {
                non_repudiation: false,
                private_key_usage_period: None,
            },
            name("Hanko Seal Test TSA"),
            from,
            leaf_until,
        ),
        tsa_key.public_key_der(),
        Some(&inter),
        inter_key.as_ref(),
    )
    .await
    .unwrap();
    let tsa = InProcessTsa::new(
        tsa_key.clone(),
        vec![tsa_cert.clone(), inter.clone()],
        Duration::ZERO,
    );

    let root_pem = dir.join("root.pem");
    std::fs::write(&root_pem, root.to_pem()).unwrap();
    std::fs::write(dir.join("tsa.pem"), tsa_cert.to_pem()).unwrap();
    std::fs::write(dir.join("inter.pem"), inter.to_pem()).unwrap();
    let tsa_chain_pem = dir.join("tsa-chain.pem");
    std::fs::write(
        &tsa_chain_pem,
        format!("{}{}", tsa_cert.to_pem(), inter.to_pem()),
    )
    .unwrap();
    Fixture {
        dir,
        hsm,
        root_pem,
        tsa_chain_pem,
        inter,
        inter_key,
        rsa,
        p256,
        tsa_cert,
        tsa_key,
        tsa,
    }
}

/// The `TimeStamper` over an in-process `hanko_tsa::Tsa`: an RFC 3161 request with
/// certReq and a nonce, the granted token or the rejection as `Rejected`.
///
/// Its synchronised manual clock is moved to the real time plus `offset` before each
/// token (forward only, wall and monotonic together: no jump for the clock guard).
/// [`InProcessTsa::stamping_another_imprint`] makes it a faulty TSA.
#[derive(Debug)]
pub struct InProcessTsa {
    tsa: Tsa,
    clock: Arc<ManualClock>,
    offset: Duration,
    other_imprint: bool,
    /// What `max_token_len` says instead of the TSA's own bound.
    token_len_hint: Option<Option<usize>>,
}

impl InProcessTsa {
    pub fn new(signer: Arc<SoftwareSigner>, chain: Vec<Certificate>, offset: Duration) -> Self {
        let config = TsaConfig::default();
        let clock = Arc::new(ManualClock::new(SystemTime::now() + offset));
        let guard = ClockGuard::new(
            clock.clone(),
            ClockGuardConfig::for_accuracy(config.accuracy),
        );
        let serials = Arc::new(CountingSerials::default());
        let policies = config.policies();
        let tsa = Tsa::new(config, guard, serials).unwrap();
        let unit = Arc::new(TimeStampUnit::new(signer, chain, SystemTime::now()).unwrap());
        for p in &policies {
            tsa.install_unit(p, unit.clone()).unwrap();
        }
        Self {
            tsa,
            clock,
            offset,
            other_imprint: false,
            token_len_hint: None,
        }
    }

    /// The same TSA answering with a real token over another imprint (the hash of the
    /// one asked for): a TSA bug, or an answer to someone else's request.
    pub fn stamping_another_imprint(mut self) -> Self {
        self.other_imprint = true;
        self
    }

    /// The same TSA telling PAdES its tokens are at most `len` bytes (`None`: that it
    /// cannot say).
    pub fn claiming_token_len(mut self, len: Option<usize>) -> Self {
        self.token_len_hint = Some(len);
        self
    }
}

/// DER TimeStampReq { v1, imprint, nonce, certReq }.
pub fn time_stamp_request(hash: HashAlgorithm, imprint: &[u8], nonce: u64) -> Vec<u8> {
    let req = rasn_cms::tsp::TimeStampReq {
        version: 1,
        message_imprint: rasn_cms::tsp::MessageImprint {
            hash_algorithm: rasn_pkix::AlgorithmIdentifier {
                algorithm: hanko_pki::cms::oid(hash.oid()).unwrap(),
                parameters: None,
            },
            hashed_message: imprint.to_vec().into(),
        },
        req_policy: None,
        nonce: Some(nonce.into()),
        cert_req: true,
        extensions: None,
    };
    rasn::der::encode(&req).unwrap()
}

impl TimeStamper for InProcessTsa {
    fn max_token_len(&self, _hash: HashAlgorithm) -> Option<usize> {
        self.token_len_hint
            .unwrap_or_else(|| self.tsa.max_token_len())
    }

    fn time_stamp<'a>(
        &'a self,
        hash: HashAlgorithm,
        imprint: &'a [u8],
    ) -> BoxFuture<'a, Result<Vec<u8>, TimeStampError>> {
        Box::pin(async move {
            use hanko_tsa::ClockSource as _;
            let behind = (SystemTime::now() + self.offset).duration_since(self.clock.now());
            if let Ok(d) = behind {
                self.clock.advance(d);
            }
            let nonce = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64;
            let other;
            let imprint = if self.other_imprint {
                other = hash.digest(imprint);
                &other
            } else {
                imprint
            };
            let resp = self
                .tsa
                .respond(&time_stamp_request(hash, imprint, nonce))
                .await;
            match resp.outcome {
                Outcome::Granted(token) => Ok(token.token_der),
                Outcome::Rejected(r) => Err(TimeStampError::new(
                    TimeStampErrorKind::Rejected,
                    r.to_string(),
                )),
            }
        })
    }
}

/// Runs `openssl` in `dir`; returns (success, stdout, stderr).
pub fn openssl(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI must be installed (ops/dev-setup.sh)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Like [`openssl`], panicking with stderr on failure; returns stdout.
pub fn openssl_ok(dir: &Path, args: &[&str]) -> String {
    let (ok, out, err) = openssl(dir, args);
    assert!(ok, "openssl {args:?} failed:\n{out}\n{err}");
    out
}

/// `openssl cms -verify -binary` of the DER seal at `p7s` against the root, detached
/// when `data` is given. Returns the content openssl wrote out, or its stderr.
pub fn cms_verify(p7s: &Path, data: Option<&Path>) -> Result<Vec<u8>, String> {
    let f = fixture();
    let out = p7s.with_extension("out");
    let path = |p: &Path| p.to_str().unwrap().to_owned();
    let mut args = vec![
        "cms".to_owned(),
        "-verify".into(),
        "-binary".into(),
        "-inform".into(),
        "DER".into(),
        "-in".into(),
        path(p7s),
        "-CAfile".into(),
        path(&f.root_pem),
        "-out".into(),
        path(&out),
    ];
    if let Some(d) = data {
        args.extend(["-content".into(), path(d)]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, stdout, stderr) = openssl(&f.dir, &args);
    if !ok || !stderr.contains("Verification successful") {
        return Err(format!("openssl cms -verify refused:\n{stdout}\n{stderr}"));
    }
    Ok(std::fs::read(out).unwrap())
}

/// A seal taken apart with rasn (a decoder we did not write).
pub struct Decoded {
    pub signed_data: SignedData,
    pub signer_info: SignerInfo,
}

pub fn decode(seal: &Seal) -> Decoded {
    let ci: rasn_cms::ContentInfo = rasn::der::decode(&seal.der).unwrap();
    assert_eq!(
        ci.content_type.to_string(),
        hanko_pki::oid::dotted::SIGNED_DATA
    );
    let signed_data: SignedData = rasn::der::decode(ci.content.as_bytes()).unwrap();
    assert_eq!(signed_data.signer_infos.len(), 1);
    let signer_info = signed_data.signer_infos.to_vec()[0].clone();
    Decoded {
        signed_data,
        signer_info,
    }
}

impl Decoded {
    /// The values of signed attribute `oid` (dotted), as DER.
    pub fn signed_attr(&self, oid: &str) -> Vec<Vec<u8>> {
        attr_values(self.signer_info.signed_attrs.as_ref().unwrap(), oid)
    }

    /// The values of unsigned attribute `oid`, as DER.
    pub fn unsigned_attr(&self, oid: &str) -> Vec<Vec<u8>> {
        match &self.signer_info.unsigned_attrs {
            Some(attrs) => attr_values(attrs, oid),
            None => Vec::new(),
        }
    }
}

fn attr_values(attrs: &rasn::types::SetOf<rasn_pkix::Attribute>, oid: &str) -> Vec<Vec<u8>> {
    attrs
        .to_vec()
        .iter()
        .filter(|a| a.r#type.to_string() == oid)
        .flat_map(|a| {
            a.values
                .to_vec()
                .into_iter()
                .map(|v| v.as_bytes().to_vec())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Pseudo-random bytes of `len` (no RNG crate needed: the content only has to vary).
pub fn document(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
