//! Issue #18, the algorithm policy at start-up: a production server refuses an RSA-2048
//! TSA certificate (ETSI TS 119 312; `keys.allow_rsa_2048` is the transition), a chain
//! whose intermediate is not a CA, and an expired intermediate, each with a message
//! naming the defect. The certificates are made here under the dev CA (its DEV-ONLY key
//! files), the RSA-2048 key by `openssl genpkey` in the test's directory.

use std::path::Path;
use std::time::{Duration, SystemTime};

use hanko_pki::cert::{Certificate, load_pem_chain};
use hanko_pki::soft::SoftwareSigner;
use hanko_pki::x509::{CertParams, CertProfile, NameAttr, build_name, issue_certificate};

use crate::common::dev_pki::{ca_key, cert};
use crate::common::{dev_init, hanko, text};

const DAY: Duration = Duration::from_secs(86_400);

fn issue(params: &CertParams, spki: &[u8], issuer: &Certificate, key: &SoftwareSigner) -> String {
    futures_util::FutureExt::now_or_never(issue_certificate(params, spki, Some(issuer), key))
        .expect("software signing does not wait")
        .unwrap()
        .to_pem()
}

/// A production config over the dev token whose TSA key `tsa-p256` uses `chain` (a
/// file in `dir`), with `extra` appended to that key's `[[keys]]` entry.
fn config(dir: &Path, chain: &str, extra: &str) -> std::path::PathBuf {
    let cfg = std::fs::read_to_string(dir.join("hanko.toml"))
        .unwrap()
        .replace("dev = true", "dev = false")
        .replace(
            "chain = \"dev-pki/tsa-p256-chain.pem\"\n",
            &format!("chain = {chain:?}\n{extra}"),
        );
    assert!(
        cfg.contains(chain),
        "the dev config names tsa-p256-chain.pem"
    );
    let path = dir.join("policy.toml");
    std::fs::write(
        &path,
        format!("data_dir = {:?}\n{cfg}", dir.to_str().unwrap()),
    )
    .unwrap();
    path
}

/// Runs `hanko serve` to its refusal; returns what it said.
fn refused(dir: &Path, cfg: &Path) -> String {
    let out = hanko()
        .env("HANKO_PIN_FILE", dir.join("dev-pin"))
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(2), "{msg}");
    assert!(msg.contains("key \"tsa-p256\""), "{msg}");
    msg
}

#[test]
fn start_up_refuses_rsa_2048_a_non_ca_intermediate_and_an_expired_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    dev_init(&dir);
    let root = cert(&dir, "root.pem");
    let root_key = ca_key(&dir, "root.key.DEV-ONLY.pem");
    let inter = cert(&dir, "intermediate.pem");
    let inter_key = ca_key(&dir, "intermediate.key.DEV-ONLY.pem");
    let leaf_pem = std::fs::read_to_string(dir.join("dev-pki/tsa-p256.pem")).unwrap();
    let now = SystemTime::now();

    // 1. An RSA-2048 TSA certificate, otherwise a good one, under the dev intermediate.
    let out = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    std::fs::write(dir.join("rsa2048.key"), &out.stdout).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["pkey", "-in"])
        .arg(dir.join("rsa2048.key"))
        .args(["-pubout", "-outform", "DER"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let params = CertParams::new(
        CertProfile::Tsa {
            non_repudiation: false,
            private_key_usage_period: None,
        },
        build_name(&[
            (NameAttr::Country, "JP"),
            (NameAttr::Organization, "Hanko Dev"),
            (NameAttr::CommonName, "Old TSA RSA-2048"),
        ])
        .unwrap(),
        now - DAY.min(now.duration_since(inter.not_before()).unwrap()),
        now + 30 * DAY,
    );
    let rsa_leaf = issue(&params, &out.stdout, &inter, &inter_key);
    std::fs::write(
        dir.join("rsa2048-chain.pem"),
        format!("{rsa_leaf}{}", inter.to_pem()),
    )
    .unwrap();
    let msg = refused(&dir, &config(&dir, "rsa2048-chain.pem", ""));
    assert!(msg.contains("RSA-2048") && msg.contains("3072"), "{msg}");
    assert!(
        msg.contains("TS 119 312") && msg.contains("allow_rsa_2048"),
        "{msg}"
    );
    // The transition setting lets the policy pass with a warning; start-up then goes on
    // to the next check, which this certificate fails (it is not the token's key).
    let msg = refused(
        &dir,
        &config(&dir, "rsa2048-chain.pem", "allow_rsa_2048 = true\n"),
    );
    assert!(
        msg.contains("allow_rsa_2048: starting with a key below"),
        "{msg}"
    );
    assert!(msg.contains("is not for the token's key"), "{msg}");

    // 2. The dev leaf with an "intermediate" of the same name and key that is not a CA
    //    (an end-entity profile: no basicConstraints cA, no keyCertSign).
    let name = inter.parsed().tbs_certificate().subject().clone();
    let not_ca = CertParams::new(
        CertProfile::Seal,
        name.clone(),
        inter.not_before(),
        inter.not_after(),
    );
    let fake = issue(&not_ca, inter.spki_der(), &root, &root_key);
    std::fs::write(dir.join("not-ca-chain.pem"), format!("{leaf_pem}{fake}")).unwrap();
    // The leaf is still signed by that key: only the CA check can catch it.
    let chain = load_pem_chain(&format!("{leaf_pem}{fake}")).unwrap();
    chain[0].verify_issued_by(&chain[1]).unwrap();
    let msg = refused(&dir, &config(&dir, "not-ca-chain.pem", ""));
    assert!(msg.contains("issuing CA"), "{msg}");
    assert!(msg.contains("is not a CA"), "{msg}");
    assert!(msg.contains("Hanko Dev Issuing CA"), "{msg}");

    // 3. The same intermediate (a CA), expired: valid for a minute after the root began.
    let expired = CertParams::new(
        CertProfile::IntermediateCa { path_len: 0 },
        name,
        root.not_before(),
        root.not_before() + Duration::from_secs(60),
    );
    let old = issue(&expired, inter.spki_der(), &root, &root_key);
    std::fs::write(dir.join("expired-chain.pem"), format!("{leaf_pem}{old}")).unwrap();
    let msg = refused(&dir, &config(&dir, "expired-chain.pem", ""));
    assert!(msg.contains("issuing CA"), "{msg}");
    assert!(msg.contains("certificate expired at"), "{msg}");

    // The dev chain itself passes these checks: the same config with the dev chain starts
    // past them (it is refused later only if the token or the clock says so, which
    // `serve::production_mode_needs_config_and_pin_and_then_serves` covers).
    let good = dir.join("dev-pki/tsa-p256-chain.pem");
    let chain = load_pem_chain(&std::fs::read_to_string(good).unwrap()).unwrap();
    hanko_server::keys::check_issuers(&chain, now).unwrap();
}
