//! Shared set-up: a PKI made by the openssl CLI (third-party DER: root, intermediate,
//! TSA certificate with a critical timeStamping EKU) and a `Tsa` over `SoftwareSigner`
//! with a synchronised `ManualClock` (the kernel clock here is unsynchronised).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use hanko_pki::cert::Certificate;
use hanko_pki::soft::SoftwareSigner;
use hanko_pki::{HashAlgorithm, SignatureAlgorithm};
use hanko_tsa::{
    ClockGuard, ClockGuardConfig, CountingSerials, ManualClock, TimeStampUnit, Tsa, TsaConfig,
};

/// Which TSA key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Rsa3072,
    P256,
}

/// An openssl-made PKI in a temporary directory.
pub struct Pki {
    pub dir: PathBuf,
    pub kind: Kind,
    pub root_pem: PathBuf,
    pub inter_pem: PathBuf,
    pub tsa_pem: PathBuf,
    /// TSA certificate then intermediate, for `-untrusted`.
    pub chain_pem: PathBuf,
    pub tsa_key_pem: String,
    pub chain: Vec<Certificate>,
    pub common_name: String,
}

impl Pki {
    pub fn signer(&self) -> Arc<SoftwareSigner> {
        let alg = match self.kind {
            Kind::Rsa3072 => SignatureAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha256),
            Kind::P256 => SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256),
        };
        Arc::new(SoftwareSigner::from_pkcs8_pem(&self.tsa_key_pem, alg).unwrap())
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

pub fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The PKI of `kind`, made once per test binary.
pub fn pki(kind: Kind) -> &'static Pki {
    static RSA: OnceLock<Pki> = OnceLock::new();
    static EC: OnceLock<Pki> = OnceLock::new();
    match kind {
        Kind::Rsa3072 => RSA.get_or_init(|| make_pki(kind)),
        Kind::P256 => EC.get_or_init(|| make_pki(kind)),
    }
}

fn make_pki(kind: Kind) -> Pki {
    // Kept for the whole run (the OnceLock never drops), so it lives under cargo's
    // target/tmp rather than /tmp; the previous run's directory of this kind is removed.
    let base = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("hanko-tsa-pki");
    let dir = base.join(format!("{kind:?}-{}", std::process::id()));
    if let Ok(entries) = std::fs::read_dir(&base) {
        for e in entries.flatten() {
            if e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{kind:?}-"))
            {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.as_path();
    std::fs::write(
        d.join("ca.cnf"),
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n\
         subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
    )
    .unwrap();
    std::fs::write(
        d.join("tsa.cnf"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
         extendedKeyUsage=critical,timeStamping\nsubjectKeyIdentifier=hash\n\
         authorityKeyIdentifier=keyid\n",
    )
    .unwrap();
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];
    openssl(
        d,
        &[
            &["req", "-x509", "-nodes"][..],
            &ec,
            &[
                "-keyout",
                "root.key",
                "-subj",
                "/C=JP/O=Hanko Test/CN=Hanko Test Root",
                "-days",
                "3650",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-out",
                "root.pem",
            ],
        ]
        .concat(),
    );
    openssl(
        d,
        &[
            &["req", "-new", "-nodes"][..],
            &ec,
            &[
                "-keyout",
                "inter.key",
                "-subj",
                "/C=JP/O=Hanko Test/CN=Hanko Test Intermediate",
                "-out",
                "inter.csr",
            ],
        ]
        .concat(),
    );
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "inter.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-days",
            "3000",
            "-extfile",
            "ca.cnf",
            "-out",
            "inter.pem",
        ],
    );
    let (keygen, cn): (&[&str], &str) = match kind {
        Kind::Rsa3072 => (
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:3072",
            ],
            "Hanko Test TSA RSA",
        ),
        Kind::P256 => (
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ],
            "Hanko Test TSA P-256",
        ),
    };
    openssl(d, &[keygen, &["-out", "tsa.key"]].concat());
    let subj = format!("/C=JP/O=Hanko Test/CN={cn}");
    openssl(
        d,
        &[
            "req", "-new", "-key", "tsa.key", "-subj", &subj, "-out", "tsa.csr",
        ],
    );
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "tsa.csr",
            "-CA",
            "inter.pem",
            "-CAkey",
            "inter.key",
            "-CAcreateserial",
            "-days",
            "365",
            "-extfile",
            "tsa.cnf",
            "-out",
            "tsa.pem",
        ],
    );
    let tsa_pem = std::fs::read_to_string(d.join("tsa.pem")).unwrap();
    let inter_pem = std::fs::read_to_string(d.join("inter.pem")).unwrap();
    std::fs::write(d.join("chain.pem"), format!("{tsa_pem}{inter_pem}")).unwrap();
    let chain = hanko_pki::cert::load_pem_chain(&format!("{tsa_pem}{inter_pem}")).unwrap();
    Pki {
        root_pem: d.join("root.pem"),
        inter_pem: d.join("inter.pem"),
        tsa_pem: d.join("tsa.pem"),
        chain_pem: d.join("chain.pem"),
        tsa_key_pem: std::fs::read_to_string(d.join("tsa.key")).unwrap(),
        chain,
        // rfc3161-client compares the whole subject in RFC 4514 form.
        common_name: format!("CN={cn},O=Hanko Test,C=JP"),
        kind,
        dir,
    }
}

/// A TSA over `pki` with `config`, a synchronised manual clock at the real time, and
/// serials counted in memory (unique within the test, which is all it needs; durable
/// reservation is the issuance log's, tested in hanko-store and the server).
pub struct TestTsa {
    pub tsa: Tsa,
    pub clock: Arc<ManualClock>,
}

pub fn tsa(pki: &Pki, config: TsaConfig) -> TestTsa {
    tsa_with_guard(pki, config, ClockGuardConfig::for_accuracy)
}

pub fn tsa_with_guard(
    pki: &Pki,
    config: TsaConfig,
    guard: impl FnOnce(Duration) -> ClockGuardConfig,
) -> TestTsa {
    let clock = Arc::new(ManualClock::new(SystemTime::now()));
    let guard = ClockGuard::new(clock.clone(), guard(config.accuracy));
    let serials = Arc::new(CountingSerials::default());
    let policies = config.policies();
    let tsa = Tsa::new(config, guard, serials).unwrap();
    let unit =
        Arc::new(TimeStampUnit::new(pki.signer(), pki.chain.clone(), SystemTime::now()).unwrap());
    for p in &policies {
        tsa.install_unit(p, unit.clone()).unwrap();
    }
    TestTsa { tsa, clock }
}

/// Makes a request with `openssl ts -query` over fresh random data; returns (data path,
/// request path, request DER).
pub fn openssl_query(
    pki: &Pki,
    name: &str,
    hash: &str,
    nonce: bool,
    cert_req: bool,
) -> (PathBuf, PathBuf, Vec<u8>) {
    let data = pki.path(&format!("{name}.data"));
    let mut bytes = vec![0u8; 100];
    getrandom(&mut bytes);
    std::fs::write(&data, &bytes).unwrap();
    let req = pki.path(&format!("{name}.tsq"));
    let mut args = vec![
        "ts".to_owned(),
        "-query".into(),
        "-data".into(),
        data.display().to_string(),
        format!("-{hash}"),
        "-out".into(),
        req.display().to_string(),
    ];
    if !nonce {
        args.push("-no_nonce".into());
    }
    if cert_req {
        args.push("-cert".into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    openssl(&pki.dir, &args);
    let der = std::fs::read(&req).unwrap();
    (data, req, der)
}

fn getrandom(buf: &mut [u8]) {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(buf)
        .unwrap();
}
