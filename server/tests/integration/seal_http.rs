//! Issue #12, the binary endpoint: `POST /api/v1/seal/cades` through the real
//! `hanko serve --dev`, every seal checked by openssl (`cms -verify` against the dev
//! root, `ts -verify` of a B-T seal's token over its signature value), the issuance log
//! read back with `hanko log export`, and each refusal with its own status and JSON body.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;

use hanko_pki::HashAlgorithm;
use hanko_pki::oid::dotted;

use crate::common::http::send;
use crate::common::log::{TestDb, start_dev_server};
use crate::common::seal::{assert_json_error, exported, log_records, of_kind, seal, verify_seal};
use crate::common::{
    Server, dev_api_key, dev_init, hanko, metric, run, start_dev_with_extra, text,
};

const SEAL_CREDENTIALS: [&str; 2] = ["seal-rsa3072", "seal-p256"];

#[test]
fn dev_seals_verify_with_openssl_and_each_is_logged_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let d = dir.to_str().unwrap();
    let server = Server::start(hanko(), &["--dev", "--data-dir", d]);
    let key_file = dir.join("dev-api-key");
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let key = dev_api_key(&dir);
    let work = tmp.path();
    let doc: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 251) as u8).collect();
    let doc_path = work.join("doc.bin");
    std::fs::write(&doc_path, &doc).unwrap();

    // (credential, level, attached) -> the seal received
    let mut received: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for credential in SEAL_CREDENTIALS {
        for level in ["B-B", "B-T"] {
            for attached in [false, true] {
                let name = format!("{credential}-{level}-{attached}");
                let (status, head, p7s) = seal(
                    server.addr,
                    &format!("credential={credential}&level={level}&attached={attached}"),
                    Some(&key),
                    &doc,
                );
                assert_eq!(
                    status,
                    200,
                    "{name}: {head}\n{}",
                    String::from_utf8_lossy(&p7s)
                );
                assert!(
                    head.to_ascii_lowercase()
                        .contains("content-type: application/pkcs7-signature"),
                    "{head}"
                );
                let stamps = verify_seal(work, &name, &p7s, (!attached).then_some("doc.bin"), &doc);
                assert_eq!(stamps, usize::from(level == "B-T"), "{name}");
                received.insert(name, p7s);
            }
        }
    }

    // `hanko seal`: the key from --api-key-file, then from ./hanko-data/dev-api-key.
    std::os::unix::fs::symlink(&dir, work.join("hanko-data")).unwrap();
    let url = format!("http://{}", server.addr);
    for (name, key_flag) in [("cli-bt", true), ("cli-bb", false)] {
        let out_path = work.join(format!("{name}.p7s"));
        let mut cmd = hanko();
        cmd.current_dir(work)
            .env_remove("HANKO_API_KEY_FILE")
            .args([
                "seal",
                "doc.bin",
                "--credential",
                "seal-rsa3072",
                "--url",
                &url,
                "--out",
                out_path.to_str().unwrap(),
            ]);
        if key_flag {
            cmd.args([
                "--level",
                "B-T",
                "--api-key-file",
                key_file.to_str().unwrap(),
            ]);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        assert!(text(&out).contains("Sealed ("), "{}", text(&out));
        let p7s = std::fs::read(&out_path).unwrap();
        let stamps = verify_seal(work, name, &p7s, Some("doc.bin"), &doc);
        assert_eq!(stamps, usize::from(key_flag), "{name}");
        received.insert(format!("seal-rsa3072-{name}"), p7s);
    }
    let refused = hanko()
        .current_dir(work)
        .args([
            "seal",
            "doc.bin",
            "--credential",
            "seal-nope",
            "--url",
            &url,
        ])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("no seal credential named"),
        "{}",
        text(&refused)
    );
    assert!(!text(&refused).contains(&key), "the key is never printed");

    // A document larger than the router's default body limit (64 KiB), named by its
    // Content-Type: the mime type is signed into the seal.
    let large: Vec<u8> = (0..1_500_000u32).map(|i| (i % 253) as u8).collect();
    let auth = format!("Bearer {key}");
    let r = send(
        server.addr,
        "POST",
        "/api/v1/seal/cades?credential=seal-p256&level=B-T",
        &[
            ("Content-Type", "application/pdf"),
            ("Authorization", &auth),
        ],
        &large,
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.head);
    let ci: rasn_cms::ContentInfo = rasn::der::decode(&r.body).unwrap();
    let sd: rasn_cms::SignedData = rasn::der::decode(ci.content.as_bytes()).unwrap();
    let signed = sd.signer_infos.to_vec()[0].signed_attrs.clone().unwrap();
    let mime: Vec<_> = signed
        .to_vec()
        .into_iter()
        .filter(|a| a.r#type.to_string() == dotted::MIME_TYPE)
        .flat_map(|a| a.values.to_vec())
        .collect();
    assert_eq!(mime.len(), 1);
    assert!(mime[0].as_bytes().ends_with(b"application/pdf"));
    std::fs::write(work.join("large.bin"), &large).unwrap();
    let stamps = verify_seal(work, "large", &r.body, Some("large.bin"), &large);
    assert_eq!(stamps, 1);
    received.insert("seal-p256-large".to_owned(), r.body);

    // Refusals: each its own status and JSON error, nothing logged.
    let ok_query = "credential=seal-p256";
    let r = seal(server.addr, ok_query, None, &doc);
    assert!(
        r.1.to_ascii_lowercase()
            .contains("www-authenticate: bearer"),
        "{}",
        r.1
    );
    assert_json_error(r, 401, "invalid_request", "authentication required");
    assert_json_error(
        seal(server.addr, ok_query, Some("hanko_not-a-key"), &doc),
        401,
        "invalid_token",
        "invalid API key",
    );
    assert_json_error(
        seal(server.addr, "credential=seal-nope", Some(&key), &doc),
        404,
        "invalid_request",
        "no seal credential named \"seal-nope\"",
    );
    assert_json_error(
        seal(server.addr, "credential=tsa-p256", Some(&key), &doc),
        404,
        "invalid_request",
        "no seal credential named",
    );
    assert_json_error(
        seal(
            server.addr,
            "credential=seal-p256&level=B-LTA",
            Some(&key),
            &doc,
        ),
        400,
        "invalid_request",
        "unknown seal level",
    );
    assert_json_error(
        seal(
            server.addr,
            "credential=seal-p256&levle=B-T",
            Some(&key),
            &doc,
        ),
        400,
        "invalid_request",
        "levle",
    );
    assert_json_error(
        seal(server.addr, "level=B-B", Some(&key), &doc),
        400,
        "invalid_request",
        "credential=NAME is required",
    );
    assert_json_error(
        seal(
            server.addr,
            "credential=seal-p256&commitment=proof-of-nothing",
            Some(&key),
            &doc,
        ),
        400,
        "invalid_request",
        "unknown commitment type",
    );
    // Over the default cap (16 MiB): 413.
    let big = vec![0u8; 16 * 1024 * 1024 + 1];
    assert_json_error(
        seal(server.addr, ok_query, Some(&key), &big),
        413,
        "invalid_request",
        "larger than 16777216 bytes",
    );

    let (_, metrics) = server.get("/metrics");
    assert!(
        metrics
            .contains("hanko_seal_total{credential=\"seal-p256\",form=\"cades\",level=\"B-T\"} 3"),
        "{metrics}"
    );
    let (status, out) = server.stop();
    assert!(status.success(), "{out}");
    assert!(!out.contains(&key), "the API key must never be logged");
    assert!(!out.contains("panicked"), "{out}");

    // Exactly one seal record per seal returned, its object_hash the SHA-256 of the
    // bytes received, its policy the credential, its client the dev client; one token
    // record per B-T seal; nothing for the refusals.
    let records = log_records(&dir);
    let seals = of_kind(&records, "seal");
    assert_eq!(seals.len(), received.len(), "{records:#?}");
    for (name, p7s) in &received {
        // Two seals may be the same bytes: an RSA PKCS#1 v1.5 B-B seal of one document
        // within one second (the signing time's resolution) is. Each still has a record.
        let same = received.values().filter(|other| *other == p7s).count();
        let hash = hex::encode(HashAlgorithm::Sha256.digest(p7s));
        let matching: Vec<_> = seals.iter().filter(|r| r["object_hash"] == hash).collect();
        assert_eq!(matching.len(), same, "{name}");
        let credential = matching[0]["policy"].as_str().unwrap();
        assert!(name.starts_with(&format!("{credential}-")), "{name}");
        assert_eq!(matching[0]["client"], "dev-client");
        let sealed = if name.ends_with("-large") {
            &large
        } else {
            &doc
        };
        assert_eq!(
            matching[0]["request_hash"],
            hex::encode(HashAlgorithm::Sha256.digest(sealed))
        );
    }
    // Five B-T seals over the endpoint, one from the CLI.
    assert_eq!(of_kind(&records, "timestamp").len(), 6, "{records:#?}");
    // Nothing else (`log_records` leaves out the anchor's own archive time-stamps).
    assert_eq!(records.len(), received.len() + 6, "{records:#?}");

    // A second `serve --dev` reuses the key file (same key, still 0600) and the entry.
    let toml_before = std::fs::read_to_string(dir.join("hanko.toml")).unwrap();
    let server = Server::start(hanko(), &["--dev", "--data-dir", d]);
    assert_eq!(dev_api_key(&dir), key);
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("hanko.toml")).unwrap(),
        toml_before
    );
    let (status, _, _) = seal(server.addr, "credential=seal-rsa3072", Some(&key), b"again");
    assert_eq!(status, 200);
    let (status, out) = server.stop();
    assert!(status.success(), "{out}");
}

#[test]
fn clients_are_held_to_their_credentials_and_the_body_cap() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let d = dir.to_str().unwrap();
    let init = run(&["dev-init", "--data-dir", d]);
    assert!(init.status.success(), "{}", text(&init));
    let init_out = String::from_utf8_lossy(&init.stdout).into_owned();
    assert!(
        init_out.contains("dev-api-key (dev client's API key, mode 0600)"),
        "{init_out}"
    );

    // A data directory from before the dev client: no key file, no entry. The next
    // dev-init adds both, and leaves the rest of hanko.toml as it was.
    let config = dir.join("hanko.toml");
    let toml = std::fs::read_to_string(&config).unwrap();
    let (old, _) = toml.split_once("\n# The dev client").unwrap();
    std::fs::write(&config, old).unwrap();
    std::fs::remove_file(dir.join("dev-api-key")).unwrap();
    dev_init(&dir);
    let toml = std::fs::read_to_string(&config).unwrap();
    assert!(toml.starts_with(old), "{toml}");
    assert_eq!(toml.matches("[[api_keys]]").count(), 1, "{toml}");
    let dev_key = dev_api_key(&dir);
    assert!(toml.contains(&hanko_server::auth::key_digest_hex(&dev_key)));
    assert!(!toml.contains(&dev_key), "only the digest is in the config");

    // A custom config: the dev config, a client limited to seal-p256, a client that may
    // only read the log, and a small body cap.
    let p256_only = "hanko_p256-only-client-key";
    let auditor = "hanko_auditor-key";
    let server = start_dev_with_extra(
        &dir,
        &format!(
            "[[api_keys]]\nname = \"billing\"\nsha256 = \"{}\"\nscopes = [\"seal\"]\n\
             credentials = [\"seal-p256\"]\n\n[[api_keys]]\nname = \"auditor\"\n\
             sha256 = \"{}\"\nscopes = [\"log:read\"]\n\n[http]\nmax_seal_body_bytes = 4096\n",
            hanko_server::auth::key_digest_hex(p256_only),
            hanko_server::auth::key_digest_hex(auditor),
        ),
    );
    let doc = vec![7u8; 4096];
    assert_json_error(
        seal(
            server.addr,
            "credential=seal-rsa3072",
            Some(p256_only),
            &doc,
        ),
        403,
        "access_denied",
        "may not use the seal credential \"seal-rsa3072\"",
    );
    assert_json_error(
        seal(server.addr, "credential=seal-p256", Some(auditor), &doc),
        403,
        "access_denied",
        "lacks the scope seal",
    );
    assert_json_error(
        seal(
            server.addr,
            "credential=seal-p256",
            Some(p256_only),
            &[7u8; 4097],
        ),
        413,
        "invalid_request",
        "larger than 4096 bytes",
    );
    let mut received = Vec::new();
    for (key, credential) in [(p256_only, "seal-p256"), (dev_key.as_str(), "seal-rsa3072")] {
        let (status, head, p7s) = seal(
            server.addr,
            &format!("credential={credential}&level=B-B"),
            Some(key),
            &doc,
        );
        assert_eq!(status, 200, "{head}");
        received.push((credential, p7s));
    }
    let (status, out) = server.stop();
    assert!(status.success(), "{out}");
    for key in [p256_only, auditor, dev_key.as_str()] {
        assert!(!out.contains(key), "an API key was logged");
    }

    let records = log_records(&dir);
    assert_eq!(records.len(), 2, "{records:#?}");
    for ((credential, p7s), (record, client)) in received
        .iter()
        .zip(records.iter().zip(["billing", "dev-client"]))
    {
        assert_eq!(record["kind"], "seal");
        assert_eq!(record["policy"], *credential);
        assert_eq!(record["client"], client);
        assert_eq!(
            record["object_hash"],
            hex::encode(HashAlgorithm::Sha256.digest(p7s))
        );
    }
}

#[test]
fn a_client_naming_a_credential_that_does_not_exist_stops_the_start() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let d = dir.to_str().unwrap();
    dev_init(&dir);
    let toml = std::fs::read_to_string(dir.join("hanko.toml")).unwrap();
    let custom = tmp.path().join("custom.toml");
    for (credentials, says) in [
        (
            "[\"seal-p384\"]",
            "credential \"seal-p384\" is not a configured seal key",
        ),
        (
            "[\"tsa-p256\"]",
            "credential \"tsa-p256\" is not a configured seal key",
        ),
        ("[\"*\"]", "no wildcards"),
    ] {
        std::fs::write(
            &custom,
            format!(
                "{toml}\n[[api_keys]]\nname = \"x\"\nsha256 = \"{}\"\nscopes = [\"seal\"]\n\
                 credentials = {credentials}\n",
                hanko_server::auth::key_digest_hex("k")
            ),
        )
        .unwrap();
        let out = run(&[
            "serve",
            "--dev",
            "--data-dir",
            d,
            "--config",
            custom.to_str().unwrap(),
        ]);
        assert!(!out.status.success());
        assert!(text(&out).contains(says), "{}", text(&out));
    }
}

/// A seal whose record cannot be committed is not returned: while a PostgreSQL trigger
/// refuses every row of the log, seals (B-B, and B-T, whose token cannot be logged
/// either) get 503 with `Retry-After` and a JSON error; once the log takes rows again,
/// seals are returned, and the log holds exactly the seals that were.
#[test]
fn a_seal_whose_record_cannot_be_committed_is_not_returned() {
    let Some(db) = TestDb::postgres() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    dev_init(&dir);
    let key = dev_api_key(&dir);
    let server = start_dev_server(&dir, &db, None);
    let doc = b"certificate of residence";
    let mut returned = Vec::new();
    let (status, _, p7s) = seal(server.addr, "credential=seal-p256", Some(&key), doc);
    assert_eq!(status, 200);
    returned.push(p7s);

    db.refuse_log_rows();
    for level in ["B-B", "B-T"] {
        let r = seal(
            server.addr,
            &format!("credential=seal-rsa3072&level={level}"),
            Some(&key),
            doc,
        );
        assert!(
            r.1.to_ascii_lowercase().contains("retry-after: 1"),
            "{}",
            r.1
        );
        let body = String::from_utf8_lossy(&r.2).into_owned();
        assert!(
            !body.contains("refused by the test"),
            "internal text: {body}"
        );
        assert_json_error(r, 503, "temporarily_unavailable", "retry later");
    }
    db.accept_log_rows();
    let (status, _, p7s) = seal(
        server.addr,
        "credential=seal-rsa3072&level=B-T",
        Some(&key),
        doc,
    );
    assert_eq!(status, 200);
    returned.push(p7s);

    let (_, metrics) = server.get("/metrics");
    assert_eq!(
        metric(&metrics, "hanko_seal_failures_total{reason=\"log\"}"),
        Some(1.0),
        "the B-B seal's record; the B-T seal failed earlier, at its token's record"
    );
    let (exit, out) = server.stop();
    assert!(exit.success(), "{out}");

    let log = exported(db.log(&["export"]));
    let seals = of_kind(&log, "seal");
    assert_eq!(seals.len(), returned.len(), "{log:#?}");
    for p7s in &returned {
        let hash = hex::encode(HashAlgorithm::Sha256.digest(p7s));
        assert_eq!(seals.iter().filter(|r| r["object_hash"] == hash).count(), 1);
    }
    // The one B-T seal returned has its token in the log; the refused one has none.
    assert_eq!(of_kind(&log, "timestamp").len(), 1, "{log:#?}");
}
