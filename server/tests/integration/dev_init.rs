use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;

use crate::common::{dev_init, dev_pin, run, text};

const PEMS: [&str; 12] = [
    "root.pem",
    "intermediate.pem",
    "tsa-rsa3072.pem",
    "tsa-rsa3072-chain.pem",
    "tsa-p256.pem",
    "tsa-p256-chain.pem",
    "seal-rsa3072.pem",
    "seal-rsa3072-chain.pem",
    "seal-p256.pem",
    "seal-p256-chain.pem",
    "root.key.DEV-ONLY.pem",
    "intermediate.key.DEV-ONLY.pem",
];

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn dev_init_creates_then_reuses_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let d = dir.to_str().unwrap();

    let first = run(&["dev-init", "--data-dir", d]);
    assert!(first.status.success(), "{}", text(&first));
    let first_out = String::from_utf8_lossy(&first.stdout).into_owned();
    assert!(
        first_out.contains("created  token \"hanko-dev\""),
        "{first_out}"
    );
    assert!(first_out.contains("dev set-up ready."), "{first_out}");
    let pki = dir.join("dev-pki");
    let before: Vec<Vec<u8>> = PEMS
        .iter()
        .map(|f| std::fs::read(pki.join(f)).unwrap())
        .collect();

    let second = run(&["dev-init", "--data-dir", d]);
    assert!(second.status.success(), "{}", text(&second));
    let second_out = String::from_utf8_lossy(&second.stdout).into_owned();
    assert!(
        second_out.contains("nothing to do: everything already exists and was reused."),
        "{second_out}"
    );
    assert!(!second_out.contains("created"), "{second_out}");
    for (f, old) in PEMS.iter().zip(&before) {
        assert_eq!(
            &std::fs::read(pki.join(f)).unwrap(),
            old,
            "{f} changed on the second run"
        );
    }

    // Secrets are private, and the PIN never shows up in any output.
    let pin = dev_pin(&dir);
    assert!(pin.len() >= 16);
    for out in [text(&first), text(&second)] {
        assert!(!out.contains(&pin), "the PIN leaked into the output");
    }
    assert_eq!(mode(&dir.join("dev-pin")), 0o600);
    assert_eq!(mode(&pki.join("root.key.DEV-ONLY.pem")), 0o600);
    assert_eq!(mode(&pki.join("intermediate.key.DEV-ONLY.pem")), 0o600);
    let root_key = std::fs::read_to_string(pki.join("root.key.DEV-ONLY.pem")).unwrap();
    assert!(root_key.starts_with("# DEV-ONLY"), "{root_key}");
    assert!(dir.join("softhsm2.conf").is_file());
    assert!(dir.join("hanko.toml").is_file());

    // The chains verify with OpenSSL, with the time-stamping purpose for TSA keys.
    for (leaf, purpose) in [
        ("tsa-rsa3072", Some("timestampsign")),
        ("tsa-p256", Some("timestampsign")),
        ("seal-rsa3072", None),
        ("seal-p256", None),
    ] {
        let mut c = Command::new("openssl");
        c.current_dir(&pki).args([
            "verify",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "intermediate.pem",
        ]);
        if let Some(p) = purpose {
            c.args(["-purpose", p]);
        }
        let out = c.arg(format!("{leaf}.pem")).output().unwrap();
        assert!(out.status.success(), "{leaf}: {}", text(&out));
        // The chain file is the leaf, then the intermediate.
        let chain = std::fs::read_to_string(pki.join(format!("{leaf}-chain.pem"))).unwrap();
        let leaf_pem = std::fs::read_to_string(pki.join(format!("{leaf}.pem"))).unwrap();
        let inter_pem = std::fs::read_to_string(pki.join("intermediate.pem")).unwrap();
        assert_eq!(chain, format!("{leaf_pem}{inter_pem}"));
    }
    let text_out = Command::new("openssl")
        .current_dir(&pki)
        .args([
            "x509",
            "-in",
            "tsa-p256.pem",
            "-noout",
            "-subject",
            "-ext",
            "extendedKeyUsage",
        ])
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&text_out.stdout);
    assert!(
        s.contains("subject=C = JP, O = Hanko Dev, CN = Hanko Dev TSA ECDSA P-256"),
        "{s}"
    );
    assert!(
        s.contains("X509v3 Extended Key Usage: critical\n    Time Stamping"),
        "{s}"
    );
}

#[test]
fn dev_init_refuses_a_token_store_without_its_pin() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let d = dir.to_str().unwrap();
    dev_init(&dir);
    std::fs::remove_file(dir.join("dev-pin")).unwrap();
    let out = run(&["dev-init", "--data-dir", d]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("dev-pin is missing"), "{}", text(&out));
}
