//! Shared set-up, built once per test process: a PKI under `hanko_pki::test_support`'s
//! two-level CA (P-256 software keys, CA keys only) and two in-process
//! `hanko_tsa::Tsa`s whose keys, RSA-3072 and P-256, are generated inside a private
//! SoftHSM token and sign through `hanko-hsm`'s pool, as the server's TSA does. No
//! private key is written to disk except inside the SoftHSM token.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use hanko_anchor::HashAlg;
use hanko_hsm::PoolConfig;
use hanko_pki::cert::Certificate;
use hanko_pki::test_support::{TestCa, name};
use hanko_pki::x509::{CertParams, CertProfile, issue_certificate};
use hanko_pki::{HashAlgorithm, KeyType, SignatureAlgorithm, Signer};
use hanko_tsa::{
    ClockGuard, ClockGuardConfig, ClockSource as _, CountingSerials, ManualClock, Outcome,
    TimeStampUnit, Tsa, TsaConfig,
};

const TOKEN: &str = "hanko-anchor-test";
const USER_PIN: &str = "user-pin-4711-a";
const SO_PIN: &str = "so-pin-0815-a";

/// Which TSA key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Rsa3072,
    P256,
}

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::Rsa3072, Kind::P256];

    fn label(self) -> &'static str {
        match self {
            Kind::Rsa3072 => "anchor-tsa-rsa3072",
            Kind::P256 => "anchor-tsa-p256",
        }
    }
}

pub struct Fixture {
    pub dir: PathBuf,
    pub root: Certificate,
    tsas: Vec<(Kind, Certificate, Tsa, Arc<ManualClock>)>,
    /// The P-256 key again, in a TSA whose clock runs [`Fixture::LATE`] behind.
    late: (Tsa, Arc<ManualClock>),
}

impl Fixture {
    /// How far the late TSA's clock is behind.
    pub const LATE: Duration = Duration::from_secs(600);

    /// The TSA certificate of `kind`.
    pub fn tsa_cert(&self, kind: Kind) -> &Certificate {
        &self.tsa(kind).1
    }

    fn tsa(&self, kind: Kind) -> &(Kind, Certificate, Tsa, Arc<ManualClock>) {
        self.tsas.iter().find(|t| t.0 == kind).unwrap()
    }

    /// A TimeStampToken (ContentInfo DER) from TSA `kind` over `imprint` (`alg`), its
    /// clock moved forward to the real time first.
    pub fn stamp(&self, kind: Kind, alg: HashAlg, imprint: &[u8]) -> Vec<u8> {
        let (_, _, tsa, clock) = self.tsa(kind);
        stamp(tsa, clock, SystemTime::now(), alg, imprint)
    }

    /// As [`Fixture::stamp`] with the P-256 key, from a TSA whose clock is
    /// [`Fixture::LATE`] behind: a genTime before the tokens just made.
    pub fn stamp_late(&self, alg: HashAlg, imprint: &[u8]) -> Vec<u8> {
        let (tsa, clock) = &self.late;
        stamp(tsa, clock, SystemTime::now() - Self::LATE, alg, imprint)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// A token from `tsa`, its clock moved forward to `at` first.
fn stamp(tsa: &Tsa, clock: &ManualClock, at: SystemTime, alg: HashAlg, imprint: &[u8]) -> Vec<u8> {
    if let Ok(behind) = at.duration_since(clock.now()) {
        clock.advance(behind);
    }
    let req = rasn_cms::tsp::TimeStampReq {
        version: 1,
        message_imprint: rasn_cms::tsp::MessageImprint {
            hash_algorithm: rasn_pkix::AlgorithmIdentifier {
                algorithm: hanko_pki::cms::oid(alg.oid()).unwrap(),
                parameters: None,
            },
            hashed_message: imprint.to_vec().into(),
        },
        req_policy: None,
        nonce: Some(7u8.into()),
        cert_req: true,
        extensions: None,
    };
    let req = rasn::der::encode(&req).unwrap();
    let resp = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(tsa.respond(&req));
    match resp.outcome {
        Outcome::Granted(token) => token.token_der,
        Outcome::Rejected(r) => panic!("the test TSA refused: {r}"),
    }
}

/// An in-process TSA over `signer` and `chain`, its clock at `start`.
fn make_tsa(
    signer: Arc<dyn Signer>,
    chain: Vec<Certificate>,
    start: SystemTime,
) -> (Tsa, Arc<ManualClock>) {
    let config = TsaConfig::default();
    let clock = Arc::new(ManualClock::new(start));
    let guard = ClockGuard::new(
        clock.clone(),
        ClockGuardConfig::for_accuracy(config.accuracy),
    );
    let policies = config.policies();
    let tsa = Tsa::new(config, guard, Arc::new(CountingSerials::default())).unwrap();
    let unit = Arc::new(TimeStampUnit::new(signer, chain, SystemTime::now()).unwrap());
    for p in &policies {
        tsa.install_unit(p, unit.clone()).unwrap();
    }
    (tsa, clock)
}

pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(make_fixture())
    })
}

async fn make_fixture() -> Fixture {
    // Kept for the whole run, under cargo's target/tmp; older runs' directories go.
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hanko-anchor");
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
    } = TestCa::generate("Hanko Anchor Test", from, until, until).await;

    let mut tsas = Vec::new();
    let mut late = None;
    for kind in Kind::ALL {
        let (kt, alg) = match kind {
            Kind::Rsa3072 => (
                KeyType::Rsa { bits: 3072 },
                SignatureAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha256),
            ),
            Kind::P256 => (KeyType::EcP256, ec),
        };
        let spki = hsm.generate_key_pair(kind.label(), kt).unwrap();
        let cert = issue_certificate(
            &CertParams::new(
                CertProfile::Tsa {
                    non_repudiation: false,
                    private_key_usage_period: None,
                },
                name("Hanko Anchor Test", &format!("TSA {}", kind.label())),
                from,
                until,
            ),
            &spki,
            Some(&inter),
            inter_key.as_ref(),
        )
        .await
        .unwrap();
        let signer: Arc<dyn Signer> = Arc::new(
            hsm.signer(kind.label(), alg, PoolConfig::default())
                .unwrap(),
        );
        let chain = vec![cert.clone(), inter.clone()];
        if kind == Kind::P256 {
            late = Some(make_tsa(
                signer.clone(),
                chain.clone(),
                SystemTime::now() - Fixture::LATE,
            ));
        }
        let (tsa, clock) = make_tsa(signer, chain, SystemTime::now());
        tsas.push((kind, cert, tsa, clock));
    }
    std::fs::write(dir.join("root.pem"), root.to_pem()).unwrap();
    Fixture {
        dir,
        root,
        tsas,
        late: late.unwrap(),
    }
}

/// Verifies `token` (ContentInfo DER) with hanko-client, as a granted TimeStampResp
/// over `imprint`, under the fixture's root, with only the certificates in the token.
pub fn verify_token(token: &[u8], imprint: &[u8]) -> Result<(), hanko_client::Error> {
    use hanko_pki::der::{tag, tlv};
    let mut body = tlv(tag::SEQUENCE, &[0x02, 0x01, 0x00]); // PKIStatusInfo { granted }
    body.extend_from_slice(token);
    let resp = tlv(tag::SEQUENCE, &body);
    let f = fixture();
    hanko_client::verify(
        &resp,
        &|_| Ok(imprint.to_vec()),
        None,
        std::slice::from_ref(&f.root),
        &[],
    )
    .map(|_| ())
}
