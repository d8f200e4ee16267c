use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::process::Command;
use std::task::{Context, Poll, Waker};

use der::pem::LineEnding;

/// Drives a future that needs no reactor (the software signer's futures are ready at
/// once) without pulling an async runtime into hanko-pki's dev-dependencies.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}

/// Runs `openssl` with `args` in `dir`; returns (success, stdout, stderr).
pub fn openssl(dir: &Path, args: &[&str]) -> (bool, Vec<u8>, String) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI must be installed (ops/dev-setup.sh)");
    (
        out.status.success(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Like [`openssl`] but panics with stderr when it fails; returns stdout.
pub fn openssl_ok(dir: &Path, args: &[&str]) -> Vec<u8> {
    let (ok, stdout, stderr) = openssl(dir, args);
    assert!(ok, "openssl {args:?} failed: {stderr}");
    stdout
}

/// Writes `bytes` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// PEM-encodes `der` under `label`.
pub fn pem(label: &str, der: &[u8]) -> String {
    der::pem::encode_string(label, LineEnding::LF, der).unwrap()
}

/// An OpenSSL-generated PKCS#8 PEM private key: `spec` is e.g. `RSA:3072`, `P-256`,
/// `P-384`, `ED25519`.
pub fn openssl_key(dir: &Path, spec: &str) -> String {
    let file = format!("key-{}.pem", spec.replace(':', "-"));
    let mut args = vec!["genpkey", "-out", &file];
    let bits;
    match spec.split_once(':') {
        Some(("RSA", b)) => {
            bits = format!("rsa_keygen_bits:{b}");
            args.extend(["-algorithm", "RSA", "-pkeyopt", &bits]);
        }
        _ if spec.starts_with("P-") => {
            args.extend(["-algorithm", "EC", "-pkeyopt"]);
            args.push(if spec == "P-256" {
                "ec_paramgen_curve:P-256"
            } else {
                "ec_paramgen_curve:P-384"
            });
        }
        _ => args.extend(["-algorithm", spec]),
    }
    openssl_ok(dir, &args);
    std::fs::read_to_string(dir.join(file)).unwrap()
}
