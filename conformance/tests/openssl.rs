//! `hanko-conformance tsa` against a reference TSA that is not Hanko: `openssl ts -reply`
//! with a file key made for the run (tests/py/openssl_tsa.py puts it behind HTTP). The
//! tool must not pass everything: the test asserts OpenSSL's known differences from the
//! requirements, check by check, and that everything else passes, so the tool is shown
//! to discriminate rather than to agree with whatever it is given.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::collections::BTreeSet;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hanko_conformance::report::{Findings, Outcome};
use hanko_conformance::{cert, tsa};

/// The shim, killed when dropped.
struct ReferenceTsa {
    child: Child,
    url: String,
}

impl Drop for ReferenceTsa {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A P-256 root and an RSA-3072 TSA certificate (critical timeStamping EKU), keys in
/// files of the temporary directory, and a tsa.cnf with two sections: `tuned` (SHA-256
/// ESSCertIDv2, accuracy 1 s) and `defaults` (what OpenSSL does when not told).
fn reference_pki(dir: &Path) {
    std::fs::write(
        dir.join("ca.cnf"),
        "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nC = JP\nO = Reference TSA\nCN = Reference Root\n\
         [v3_ca]\nbasicConstraints = critical, CA:TRUE\nkeyUsage = critical, keyCertSign, cRLSign\nsubjectKeyIdentifier = hash\n\
         [v3_tsa]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\n\
         extendedKeyUsage = critical, timeStamping\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "root.key",
            "-out",
            "root.pem",
            "-days",
            "30",
            "-config",
            "ca.cnf",
            "-extensions",
            "v3_ca",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:3072",
            "-nodes",
            "-keyout",
            "tsa.key",
            "-out",
            "tsa.csr",
            "-subj",
            "/C=JP/O=Reference TSA/CN=Reference TSA 1",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "tsa.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-out",
            "tsa.pem",
            "-days",
            "20",
            "-extfile",
            "ca.cnf",
            "-extensions",
            "v3_tsa",
        ],
    );
    std::fs::write(dir.join("serial"), "01\n").unwrap();
    let common = "serial = ./serial\nsigner_cert = ./tsa.pem\ncerts = ./root.pem\nsigner_key = ./tsa.key\n\
                  signer_digest = sha256\ndefault_policy = 1.3.6.1.4.1.99999.5.1\ndigests = sha256, sha384, sha512\n";
    std::fs::write(
        dir.join("tsa.cnf"),
        format!(
            "[tuned]\n{common}accuracy = secs:1\nordering = no\ntsa_name = no\ness_cert_id_chain = no\ness_cert_id_alg = sha256\n\
             [defaults]\n{common}"
        ),
    )
    .unwrap();
}

fn start(dir: &Path, section: &str) -> ReferenceTsa {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/openssl_tsa.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(dir)
        .arg(section)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().parse().unwrap();
    ReferenceTsa {
        child,
        url: format!("http://127.0.0.1:{port}/tsa"),
    }
}

fn with(f: &Findings, outcome: Outcome) -> BTreeSet<&'static str> {
    f.checks(Some(outcome))
}

#[test]
fn openssl_ts_reply_differs_where_it_is_known_to_and_passes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    reference_pki(dir.path());
    let root =
        cert::certificates_from_pem_or_der(&std::fs::read(dir.path().join("root.pem")).unwrap())
            .unwrap();
    let target = |url: &str| tsa::Target {
        url: url.to_owned(),
        ca: root.clone(),
        policy: None,
        qualified: false,
        tls_ca: None,
        timeout: Duration::from_secs(30),
    };
    // What OpenSSL does however it is configured: it decodes BER and ignores what follows
    // the request (A.8), it writes the certificates in the order configured rather than
    // as a DER SET (B.15), and it has no CMS algorithm protection (B.20, a SHOULD).
    let always = [
        "malformed-request",
        "trailing-bytes",
        "certificates-der-set",
        "algorithm-protection",
    ];

    let tuned = start(dir.path(), "tuned");
    let f = tsa::probe(&target(&tuned.url)).unwrap();
    assert_eq!(
        with(&f, Outcome::Fail),
        BTreeSet::from(always),
        "{:#?}",
        f.list()
    );
    assert_eq!(with(&f, Outcome::Skip), BTreeSet::from(["qc-statements"]));
    let malformed = f
        .list()
        .iter()
        .find(|x| x.check == "malformed-request")
        .unwrap();
    assert!(
        malformed
            .detail
            .contains("a non-minimal length: a token was issued"),
        "{}",
        malformed.detail
    );

    // Left to its defaults, it also signs with ESSCertID v1 (SHA-1) and gives no accuracy.
    let defaults = start(dir.path(), "defaults");
    let f = tsa::probe(&target(&defaults.url)).unwrap();
    let mut expected = BTreeSet::from(always);
    expected.extend(["signing-certificate", "accuracy"]);
    assert_eq!(with(&f, Outcome::Fail), expected, "{:#?}", f.list());
    assert_eq!(
        with(&f, Outcome::Skip),
        BTreeSet::from(["qc-statements", "ess-cert-id"])
    );
    let v1 = f
        .list()
        .iter()
        .find(|x| x.check == "signing-certificate")
        .unwrap();
    assert!(
        v1.detail
            .contains("only signing-certificate (ESSCertID, SHA-1)"),
        "{}",
        v1.detail
    );
}
