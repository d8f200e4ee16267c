//! Issue #14: the HTTPS listener of the real binary, against peers we did not write
//! (`openssl s_client`, curl) and a rustls client with keep-alive under the test's
//! control.
//!
//! 1. `serve --dev` on HTTPS: TLS 1.3 and 1.2 handshakes with the dev root as anchor,
//!    TLS 1.1 and a CBC (non-AEAD) suite refused; `curl --cacert root.pem` reads
//!    /readyz; `hanko stamp` and `hanko seal` over https with `--ca`, refused without it.
//! 2. A certificate swapped on disk is served to new connections without a restart
//!    while a kept-alive connection made before keeps working; a broken file keeps the
//!    old certificate and is counted; SIGHUP reloads at once.
//! 3. mTLS (`client_auth = "required"`): a client certificate from the configured
//!    client CA is served; one from another CA, or none, is refused in the handshake.
//!
//! The slow-client tests over TLS (handshake, head, body deadlines, caps) are in
//! `slow_clients.rs`.

use std::path::Path;
use std::process::Command;

use crate::common::tls::{self, client_config, connect, get_keep_alive, issue, make_ca};
use crate::common::{
    Server, dev_api_key, dev_init, eventually, hanko, metric, start_dev_with_extra, text,
};

/// `openssl x509 -noout -serial` of a certificate file.
fn file_serial(pem: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-serial", "-in", pem.to_str().unwrap()])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn reloads(server: &Server, result: &str) -> u64 {
    let (status, text) = server.get("/metrics");
    assert_eq!(status, 200);
    metric(
        &text,
        &format!("hanko_tls_reloads_total{{result=\"{result}\"}}"),
    )
    .map_or(0, |v| v as u64)
}

#[test]
fn issue_14_dev_https_tls13_and_12_only_curl_stamp_and_seal_with_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let server = Server::start(hanko(), &["--dev", "--data-dir", dir.to_str().unwrap()]);
    let addr = server.tls_addr();
    let root = dir.join("dev-pki/root.pem");
    let ca = root.to_str().unwrap();

    for (flag, want) in [("-tls1_3", Some("TLSv1.3")), ("-tls1_2", Some("TLSv1.2"))] {
        let out = tls::s_client(addr, &[flag, "-CAfile", ca, "-verify_return_error"]);
        assert_eq!(tls::negotiated(&out).as_deref(), want, "{}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("Verify return code: 0 (ok)"), "{stdout}");
    }
    // TLS 1.2 negotiates ECDHE with an AEAD cipher.
    let out = tls::s_client(addr, &["-tls1_2", "-CAfile", ca]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Cipher is ECDHE-ECDSA-AES256-GCM-SHA384"),
        "{stdout}"
    );
    // Refused: TLS 1.1 (openssl 3 needs security level 0 to even offer it), and a CBC
    // suite over TLS 1.2.
    let out = tls::s_client(addr, &["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"]);
    assert_eq!(tls::negotiated(&out), None, "{}", text(&out));
    let out = tls::s_client(addr, &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"]);
    assert_eq!(tls::negotiated(&out), None, "{}", text(&out));

    // curl, trusting the dev root, by IP address and by name.
    tls::curl_readyz(addr, ca);

    // hanko stamp over https: with --ca granted and verified; without, the dev root is
    // unknown and nothing is sent.
    let file = tmp.path().join("doc.txt");
    std::fs::write(&file, b"stamped over TLS").unwrap();
    let url = format!("https://127.0.0.1:{}/tsa", addr.port());
    let f = file.to_str().unwrap();
    let out = hanko()
        .args(["stamp", f, "--url", &url, "--ca", ca])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let tsr = format!("{f}.tsr");
    let out = hanko()
        .args(["verify", &tsr, "--data", f, "--ca", ca])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = hanko()
        .args(["stamp", f, "--url", &url, "--out", &format!("{f}.2.tsr")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("UnknownIssuer"), "{}", text(&out));

    // hanko seal over https.
    let key_file = dir.join("dev-api-key");
    assert!(!dev_api_key(&dir).is_empty());
    let out = hanko()
        .args([
            "seal",
            f,
            "--credential",
            "seal-p256",
            "--url",
            &format!("https://localhost:{}", addr.port()),
            "--ca",
            ca,
            "--api-key-file",
            key_file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(Path::new(&format!("{f}.p7s")).exists());
    let (status, out) = server.stop();
    assert!(status.success(), "{out}");
}

#[test]
fn issue_14_a_certificate_swapped_on_disk_reaches_new_connections_old_ones_stay() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = tmp.path().join("pki");
    std::fs::create_dir_all(&pki).unwrap();
    let root = make_ca(&pki, "swap-ca");
    let (cert1, key1) = issue(&pki, "swap-ca", "server-one", true);
    let (cert2, key2) = issue(&pki, "swap-ca", "server-two", true);
    let (live_cert, live_key) = (pki.join("live.pem"), pki.join("live.key"));
    std::fs::copy(&cert1, &live_cert).unwrap();
    std::fs::copy(&key1, &live_key).unwrap();
    let dir = tmp.path().join("data");
    dev_init(&dir);
    let server = start_dev_with_extra(
        &dir,
        &format!(
            "[tls]\ncert = {:?}\nkey = {:?}\nreload_interval_ms = 1000\n",
            live_cert.to_str().unwrap(),
            live_key.to_str().unwrap()
        ),
    );
    let addr = server.tls_addr();
    let (one, two) = (file_serial(&cert1), file_serial(&cert2));
    assert_ne!(one, two);
    assert_eq!(tls::served_serial(addr), one);

    // A kept-alive connection made with the first certificate.
    let config = client_config(&root, None);
    let mut old = connect(addr, &config).unwrap();
    assert_eq!(get_keep_alive(&mut old, "/healthz").unwrap().0, 200);

    // The swap: key first, then the certificate (a poll in between sees a mismatch and
    // keeps the first one; the next sees both).
    let ok_before = reloads(&server, "ok");
    std::fs::copy(&key2, &live_key).unwrap();
    std::fs::copy(&cert2, &live_cert).unwrap();
    eventually("the new certificate served", || {
        tls::served_serial(addr) == two
    });
    assert!(reloads(&server, "ok") > ok_before);
    let mut fresh = connect(addr, &config).unwrap();
    assert_eq!(get_keep_alive(&mut fresh, "/healthz").unwrap().0, 200);
    // The old connection was not dropped.
    assert_eq!(get_keep_alive(&mut old, "/healthz").unwrap().0, 200);

    // A broken certificate file: logged, counted, the second certificate stays.
    let errors = reloads(&server, "error");
    std::fs::write(&live_cert, "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
    eventually("the broken file counted", || {
        reloads(&server, "error") > errors
    });
    assert_eq!(tls::served_serial(addr), two);
    assert!(
        server.output().contains("TLS files not reloaded"),
        "{}",
        server.output()
    );

    // SIGHUP with the first pair back: reloaded at once (no wait for a poll).
    std::fs::copy(&key1, &live_key).unwrap();
    std::fs::copy(&cert1, &live_cert).unwrap();
    let hup = Command::new("sh")
        .args(["-c", &format!("kill -HUP {}", server.pid())])
        .status()
        .unwrap();
    assert!(hup.success());
    eventually("SIGHUP reloaded", || tls::served_serial(addr) == one);
    assert!(
        server.output().contains("SIGHUP received"),
        "{}",
        server.output()
    );
    assert_eq!(get_keep_alive(&mut old, "/healthz").unwrap().0, 200);
    assert_eq!(get_keep_alive(&mut fresh, "/healthz").unwrap().0, 200);
    let (status, out) = server.stop();
    assert!(status.success(), "{out}");
}

#[test]
fn issue_14_mtls_serves_known_client_certificates_and_refuses_unknown_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = tmp.path().join("pki");
    std::fs::create_dir_all(&pki).unwrap();
    let client_ca = make_ca(&pki, "client-ca");
    let _other_ca = make_ca(&pki, "other-ca");
    let known = issue(&pki, "client-ca", "known-client", false);
    let unknown = issue(&pki, "other-ca", "unknown-client", false);
    let dir = tmp.path().join("data");
    dev_init(&dir);
    let server = start_dev_with_extra(
        &dir,
        &format!(
            "[tls]\nclient_ca = {:?}\nclient_auth = \"required\"\n",
            client_ca.to_str().unwrap()
        ),
    );
    let addr = server.tls_addr();
    let root = dir.join("dev-pki/root.pem");

    let config = client_config(&root, Some((&known.0, &known.1)));
    let mut s = connect(addr, &config).unwrap();
    assert_eq!(get_keep_alive(&mut s, "/healthz").unwrap().0, 200);

    // Over TLS 1.3 the client's handshake completes before the server has judged its
    // certificate: the refusal shows on the first exchange, as an alert.
    for (who, config) in [
        (
            "unknown CA",
            client_config(&root, Some((&unknown.0, &unknown.1))),
        ),
        ("no certificate", client_config(&root, None)),
    ] {
        let served = connect(addr, &config).and_then(|mut s| get_keep_alive(&mut s, "/healthz"));
        assert!(served.is_err(), "{who}: served {served:?}");
    }
    // openssl agrees, with the unknown client's certificate: the server's alert says why.
    let out = tls::s_client(
        addr,
        &[
            "-CAfile",
            root.to_str().unwrap(),
            "-cert",
            unknown.0.to_str().unwrap(),
            "-key",
            unknown.1.to_str().unwrap(),
            "-tls1_2",
        ],
    );
    assert!(text(&out).contains("alert unknown ca"), "{}", text(&out));
    let (status, out) = server.stop();
    assert!(status.success(), "{out}");
}
