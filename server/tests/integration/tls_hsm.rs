//! Issue #14: the HTTPS listener's private key in the HSM (`tls.key_label`), through the
//! real binary and the dev SoftHSM token, against peers we did not write.
//!
//! Keys `tls-rsa3072`, `tls-p256`, `tls-ed25519` and `tls-p384` are generated in the
//! dev token by hanko-hsm (in a child process: see `token_keys.rs` for why), their
//! certificates issued for 127.0.0.1 / localhost by a test CA made here. For each key,
//! `hanko serve --dev` with `[tls] cert = ..., key_label = ...`:
//!
//! 1. `openssl s_client` over TLS 1.3 and 1.2 verifies the chain against the test CA;
//!    for RSA, TLS 1.3 signs with RSA-PSS and a TLS 1.2 client that offers only
//!    PKCS#1 v1.5 gets PKCS#1 v1.5; curl reads /readyz; `hanko stamp` gets a token over
//!    the listener and `hanko verify` accepts it; the handshakes were signed by the TLS
//!    key's own pool (`hanko_hsm_signatures_total{key}`).
//! 2. A certificate for another key swapped in on disk is not served (counted as a
//!    reload error, the old certificate stays).
//! 3. A start with a certificate that is not for the HSM key is refused with an error
//!    saying so; `hanko config check --hsm` says the same.
//!
//! And through pkcs11-mock: a `C_Sign` that fails during the handshake fails the
//! handshake (never a panic), is counted in `hanko_tls_handshake_failures_total` and
//! `hanko_tls_hsm_sign_failures_total`, and logged; cleared, handshakes work again.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use hanko_pki::soft::SoftwareSigner;
use hanko_pki::x509::{CertParams, CertProfile, NameAttr, build_name, issue_certificate};
use hanko_pki::{HashAlgorithm, KeyType, SignatureAlgorithm, Signer as _};

use crate::common::log::block_on;
use crate::common::mock::{config_through_mock, mock_env, set_control};
use crate::common::{
    Server, dev_init, eventually, hanko, metric, open_dev_token, run_in_child_with_dev_token,
    start_dev_with_extra, start_dev_with_extra_by, text, tls,
};

/// Tells the child which dev data directory to put the keys in.
const DATA_DIR_VAR: &str = "HANKO_TEST_TLS_HSM_DATA_DIR";
const CHILD_TEST: &str = "tls_hsm::make_tls_keys_in_the_dev_token";
/// The keys made, and their types.
const KEYS: [(&str, KeyType); 4] = [
    ("tls-rsa3072", KeyType::Rsa { bits: 3072 }),
    ("tls-p256", KeyType::EcP256),
    ("tls-ed25519", KeyType::Ed25519),
    ("tls-p384", KeyType::EcP384),
];

/// The test PKI of a data directory: the CA's certificate file and each key's chain
/// file (leaf, CA).
struct Pki {
    root: PathBuf,
    chains: Vec<PathBuf>,
}

/// `dev-init` in `dir`, the TLS keys made in its token, their certificates issued.
fn data_dir_with_tls_keys(dir: &Path) -> Pki {
    dev_init(dir);
    run_in_child_with_dev_token(CHILD_TEST, DATA_DIR_VAR, dir);
    block_on(async {
        let now = SystemTime::now();
        let day = Duration::from_secs(86_400);
        let ca_key = SoftwareSigner::generate(
            KeyType::EcP256,
            SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256),
        )
        .unwrap();
        let ca_params = CertParams::new(
            CertProfile::RootCa,
            build_name(&[(NameAttr::CommonName, "TLS HSM test CA")]).unwrap(),
            now - day,
            now + day,
        );
        let ca = issue_certificate(&ca_params, ca_key.public_key_der(), None, &ca_key)
            .await
            .unwrap();
        let root = dir.join("tls-test-ca.pem");
        std::fs::write(&root, ca.to_pem()).unwrap();
        let mut chains = Vec::new();
        for (label, _) in KEYS {
            let spki = std::fs::read(dir.join(format!("{label}.spki.der"))).unwrap();
            let params = CertParams::new(
                CertProfile::TlsServer {
                    dns_names: vec!["localhost".into()],
                    ip_addresses: vec!["127.0.0.1".parse().unwrap()],
                },
                build_name(&[(NameAttr::CommonName, label)]).unwrap(),
                now - day,
                now + day,
            );
            let leaf = issue_certificate(&params, &spki, Some(&ca), &ca_key)
                .await
                .unwrap();
            let chain = dir.join(format!("{label}-chain.pem"));
            std::fs::write(&chain, format!("{}{}", leaf.to_pem(), ca.to_pem())).unwrap();
            chains.push(chain);
        }
        Pki { root, chains }
    })
}

/// Run in a child by [`data_dir_with_tls_keys`]: generates [`KEYS`] in the dev token
/// and writes each SubjectPublicKeyInfo to `<label>.spki.der`.
#[test]
#[ignore = "run in a child process by the tests of this module"]
fn make_tls_keys_in_the_dev_token() {
    let Some(dir) = std::env::var_os(DATA_DIR_VAR) else {
        eprintln!("{DATA_DIR_VAR} is not set: nothing to make");
        return;
    };
    let dir = Path::new(&dir);
    let hsm = open_dev_token(dir);
    for (label, kt) in KEYS {
        let spki = hsm.generate_key_pair(label, kt).unwrap();
        std::fs::write(dir.join(format!("{label}.spki.der")), spki).unwrap();
    }
}

/// The `[tls]` section serving `chain` with the HSM key `label`.
fn tls_section(chain: &Path, label: &str) -> String {
    format!(
        "[tls]\ncert = {:?}\nkey_label = {label:?}\nreload_interval_ms = 1000\n",
        chain.to_str().unwrap()
    )
}

/// A metric of the server's /metrics (0 when absent).
fn metric_of(server: &Server, name: &str) -> f64 {
    let (status, body) = server.get("/metrics");
    assert_eq!(status, 200);
    metric(&body, name).unwrap_or(0.0)
}

#[test]
fn issue_14_tls_key_in_the_hsm_of_each_type_tls13_and_12_stamp_and_refuse_other_certificates() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let pki = data_dir_with_tls_keys(&dir);
    let ca = pki.root.to_str().unwrap();
    for (i, (label, kt)) in KEYS.into_iter().enumerate() {
        let rsa = matches!(kt, KeyType::Rsa { .. });
        let live = dir.join("live-chain.pem");
        std::fs::copy(&pki.chains[i], &live).unwrap();
        let server = start_dev_with_extra(&dir, &tls_section(&live, label));
        let addr = server.tls_addr();
        assert!(
            server.output().contains("TLS key in the HSM"),
            "{}",
            server.output()
        );

        // openssl: TLS 1.3 and 1.2, the chain verified against the test CA; the
        // signature scheme of each.
        let tls13_sig = match kt {
            KeyType::Rsa { .. } => "RSA-PSS",
            KeyType::Ed25519 => "ed25519",
            _ => "ECDSA",
        };
        // A certificate for another of the keys.
        let other = &pki.chains[(i + 1) % KEYS.len()];
        for (flag, want, sig) in [
            ("-tls1_3", "TLSv1.3", tls13_sig),
            ("-tls1_2", "TLSv1.2", tls13_sig),
        ] {
            let out = tls::s_client(addr, &[flag, "-CAfile", ca, "-verify_return_error"]);
            assert_eq!(
                tls::negotiated(&out).as_deref(),
                Some(want),
                "{label}: {}",
                text(&out)
            );
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(stdout.contains("Verify return code: 0 (ok)"), "{stdout}");
            assert!(
                stdout.contains(&format!("Peer signature type: {sig}")),
                "{label} {flag}: {stdout}"
            );
        }
        if rsa {
            // A TLS 1.2 client offering PKCS#1 v1.5 only gets it (CKM_RSA_PKCS).
            let out = tls::s_client(
                addr,
                &[
                    "-tls1_2",
                    "-sigalgs",
                    "RSA+SHA256",
                    "-CAfile",
                    ca,
                    "-verify_return_error",
                ],
            );
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(stdout.contains("Verify return code: 0 (ok)"), "{stdout}");
            assert!(
                stdout.contains("Peer signature type: RSA\n"),
                "{label}: {stdout}"
            );
        }

        // curl by name and by address.
        tls::curl_readyz(addr, ca);

        // A time-stamp over the listener, verified against the dev root.
        let file = tmp.path().join(format!("doc-{label}.txt"));
        std::fs::write(&file, format!("stamped over TLS with {label}")).unwrap();
        let f = file.to_str().unwrap();
        let url = format!("https://127.0.0.1:{}/tsa", addr.port());
        let out = hanko()
            .args(["stamp", f, "--url", &url, "--ca", ca])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{label}: {}", text(&out));
        let dev_root = dir.join("dev-pki/root.pem");
        let out = hanko()
            .args([
                "verify",
                &format!("{f}.tsr"),
                "--data",
                f,
                "--ca",
                dev_root.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{label}: {}", text(&out));

        // The handshakes were signed by the TLS key's pool in the token.
        let signed = metric_of(
            &server,
            &format!("hanko_hsm_signatures_total{{key=\"{label}\"}}"),
        );
        assert!(signed >= 5.0, "{label}: {signed} signatures");

        // The other key's certificate swapped in: refused at reload, the old one stays.
        let serial = tls::served_serial(addr);
        let errors = metric_of(&server, "hanko_tls_reloads_total{result=\"error\"}");
        std::fs::copy(other, &live).unwrap();
        eventually("the mismatching certificate refused", || {
            metric_of(&server, "hanko_tls_reloads_total{result=\"error\"}") > errors
        });
        assert_eq!(tls::served_serial(addr), serial);
        assert!(
            server
                .output()
                .contains("the certificate is not for the HSM key"),
            "{}",
            server.output()
        );
        let (status, out) = server.stop();
        assert!(status.success(), "{out}");
        assert!(
            !out.contains("signing workers still hold the token"),
            "{label}: the TLS pool outlived the shutdown: {out}"
        );

        // A start with the other key's certificate is refused, saying why.
        let custom = dir.join("custom.toml");
        let toml = std::fs::read_to_string(dir.join("hanko.toml")).unwrap();
        std::fs::write(&custom, format!("{toml}\n{}", tls_section(other, label))).unwrap();
        let out = hanko()
            .args(["serve", "--dev", "--data-dir", dir.to_str().unwrap()])
            .args(["--config", custom.to_str().unwrap()])
            .args(["--listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{label}: {}", text(&out));
        assert!(
            text(&out).contains("the certificate is not for the HSM key"),
            "{label}: {}",
            text(&out)
        );
    }

    // `hanko config check --hsm` finds the key and the mismatch too.
    let check = |chain: &Path| {
        let config = crate::common::log::dev_config_with(&dir, &dir.join("check.toml"), |t| {
            t.insert("data_dir".into(), dir.to_str().unwrap().into());
            let store = crate::common::log::store_table(t);
            store.insert("node_id".into(), "check".into());
            let mut tls = toml::Table::new();
            tls.insert("listen".into(), "127.0.0.1:0".into());
            tls.insert("cert".into(), chain.to_str().unwrap().into());
            tls.insert("key_label".into(), "tls-rsa3072".into());
            t.insert("tls".into(), tls.into());
        });
        hanko()
            .args(["config", "check", config.to_str().unwrap(), "--hsm"])
            .env("HANKO_PIN_FILE", dir.join("dev-pin"))
            .output()
            .unwrap()
    };
    let out = check(&pki.chains[0]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("tls.key_label \"tls-rsa3072\": in the token, matches tls.cert"),
        "{}",
        text(&out)
    );
    let out = check(&pki.chains[1]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("is not for the HSM key \"tls-rsa3072\""),
        "{}",
        text(&out)
    );
}

#[test]
fn issue_14_an_hsm_fault_during_the_handshake_fails_it_counted_then_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let pki = data_dir_with_tls_keys(&dir);
    let ca = pki.root.to_str().unwrap();
    config_through_mock(&dir, &[]);
    let control = tmp.path().join("faults");
    std::fs::write(&control, "").unwrap();
    let mut cmd = hanko();
    mock_env(&mut cmd, &control);
    let server = start_dev_with_extra_by(cmd, &dir, &tls_section(&pki.chains[1], "tls-p256"));
    let addr = server.tls_addr();
    // A fresh client each time: a resumed session (a ticket from the last one) would
    // need no signature.
    let served = || {
        tls::connect(addr, &tls::client_config(&pki.root, None))
            .and_then(|mut s| tls::get_keep_alive(&mut s, "/healthz"))
    };
    assert_eq!(served().unwrap().0, 200, "{}", server.output());
    let failures = metric_of(&server, "hanko_tls_handshake_failures_total");

    set_control(
        &control,
        "fault fn=C_Sign rv=CKR_DEVICE_ERROR mode=always phase=data\n",
    );
    let faulty_since = std::time::Instant::now();
    for _ in 0..3 {
        // The server's alert, or (when the socket closes before the client reads it)
        // the end of the connection.
        use std::io::ErrorKind as K;
        let e = served().unwrap_err();
        assert!(
            e.to_string().contains("alert")
                || matches!(
                    e.kind(),
                    K::UnexpectedEof | K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe
                ),
            "{e:?}"
        );
    }
    // openssl sees the server's certificate never arrive.
    let out = tls::s_client(addr, &["-tls1_3", "-CAfile", ca]);
    assert!(
        text(&out).contains("no peer certificate available"),
        "{}",
        text(&out)
    );
    eventually("the failed handshakes counted", || {
        metric_of(&server, "hanko_tls_handshake_failures_total") >= failures + 4.0
    });
    let device = metric_of(
        &server,
        "hanko_tls_hsm_sign_failures_total{kind=\"device\"}",
    );
    assert!(device >= 4.0, "{device}");
    // Logged, but at most once per 10 s (one warning for the four unless this machine
    // is slow), never a panic.
    let out = server.output();
    let warnings = out.matches("the HSM key did not sign").count() as u64;
    let most = 1 + faulty_since.elapsed().as_secs() / 10;
    assert!((1..=most).contains(&warnings), "{warnings} warnings: {out}");
    assert!(!out.contains("panicked"), "{out}");

    set_control(&control, "");
    eventually("handshakes again", || {
        served().is_ok_and(|(status, _)| status == 200)
    });
    let (status, out) = server.stop();
    assert!(status.success(), "{out}");
}
