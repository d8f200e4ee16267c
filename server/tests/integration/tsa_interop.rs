//! The TSA at SERVER level with real SoftHSM keys: tokens from `hanko serve --dev` for
//! RSA-3072 (default policy) and ECDSA P-256 (policy 1.3.6.1.5.5.7.13.2), SHA-256/384/512
//! imprints, with and without nonce and certReq, each accepted by `openssl ts -verify`,
//! rfc3161-client and `hanko verify`; signed attributes re-encode to the signed bytes;
//! and `hanko verify` refuses other data, a flipped signature byte and a wrong root.
//! One dev server (one key generation) for the whole binary.

use std::collections::HashSet;
use std::path::Path;
use std::process::Output;

use hanko_client::test_support::run_rfc3161_client;
use rasn_cms::SignedData;
use rasn_cms::tsp::TimeStampReq;

use crate::common::tsp::{
    DEFAULT_POLICY, P256_POLICY, dev_server, openssl, openssl_req_new_p256, openssl_ts_verify,
    timestamp, token_of,
};
use crate::common::{hanko, text};

fn hanko_verify(args: &[&str]) -> Output {
    hanko().arg("verify").args(args).output().unwrap()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// B.18: the signed attributes, decoded and re-encoded, are the bytes in the token (as
/// [0] IMPLICIT) and, as a SET, the bytes the signature covers. Returns the signature.
fn signed_attributes_reencode(resp: &[u8]) -> Vec<u8> {
    let (token, _) = token_of(resp);
    let sd: SignedData = rasn::der::decode(token.content.as_bytes()).unwrap();
    let si = sd.signer_infos.to_vec()[0].clone();
    let set = rasn::der::encode(&si.signed_attrs.clone().unwrap()).unwrap();
    assert_eq!(set[0], 0x31);
    let mut implicit = set.clone();
    implicit[0] = 0xa0;
    assert!(
        contains(resp, &implicit),
        "re-encoded signed attributes differ"
    );
    si.signature.to_vec()
}

#[test]
fn openssl_rfc3161_client_and_hanko_verify_accept_softhsm_tokens() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, data) = dev_server(tmp.path());
    let pki = data.join("dev-pki");
    let root = pki.join("root.pem");
    let inter = pki.join("intermediate.pem");
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let doc = work.join("doc.txt");
    std::fs::write(&doc, b"a document worth a time-stamp\n".repeat(100)).unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_owned();

    let mut serials = HashSet::new();
    let mut py_cases = Vec::new();
    let mut first = None;
    for (key, policy) in [("tsa-rsa3072", DEFAULT_POLICY), ("tsa-p256", P256_POLICY)] {
        let chain = pki.join(format!("{key}-chain.pem"));
        let tsa_pem = pki.join(format!("{key}.pem"));
        for hash in ["sha256", "sha384", "sha512"] {
            for nonce in [true, false] {
                for cert_req in [true, false] {
                    let name = format!("{key}-{hash}-nonce{nonce}-cert{cert_req}");
                    let tsq = work.join(format!("{name}.tsq"));
                    let tsr = work.join(format!("{name}.tsr"));
                    let mut args = vec![
                        "ts".to_owned(),
                        "-query".into(),
                        "-data".into(),
                        s(&doc),
                        format!("-{hash}"),
                        "-out".into(),
                        s(&tsq),
                    ];
                    if !nonce {
                        args.push("-no_nonce".into());
                    }
                    if cert_req {
                        args.push("-cert".into());
                    }
                    if policy != DEFAULT_POLICY {
                        args.extend(["-tspolicy".into(), policy.into()]);
                    }
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    openssl(&work, &args);
                    let req = std::fs::read(&tsq).unwrap();
                    let resp = timestamp(server.addr, &req);
                    std::fs::write(&tsr, &resp).unwrap();

                    let (_, tst) = token_of(&resp);
                    assert_eq!(tst.policy.to_string(), policy, "{name}");
                    let raw: TimeStampReq = rasn::der::decode(&req).unwrap();
                    assert_eq!(tst.nonce, raw.nonce, "{name}: nonce echoed");
                    assert_eq!(tst.nonce.is_some(), nonce, "{name}");
                    assert_eq!(tst.message_imprint, raw.message_imprint, "{name}");
                    assert!(
                        serials.insert(tst.serial_number.clone()),
                        "{name}: serial reused"
                    );
                    let signature = signed_attributes_reencode(&resp);

                    // openssl: with certReq the token leads to the root by itself.
                    let untrusted = (!cert_req).then_some(chain.as_path());
                    openssl_ts_verify(&work, &name, &req, &resp, &root, untrusted);

                    // hanko verify, on its own code path.
                    let mut args = vec![
                        tsr.to_str().unwrap(),
                        "--data",
                        doc.to_str().unwrap(),
                        "--ca",
                        root.to_str().unwrap(),
                        "--query",
                        tsq.to_str().unwrap(),
                    ];
                    if !cert_req {
                        args.extend(["--untrusted", chain.to_str().unwrap()]);
                    }
                    let out = hanko_verify(&args);
                    assert!(out.status.success(), "{name}: {}", text(&out));
                    let summary = String::from_utf8_lossy(&out.stdout);
                    assert!(summary.starts_with("Verification: OK"), "{summary}");
                    assert!(summary.contains(policy), "{summary}");
                    assert!(
                        summary.contains(&format!("hash      : {hash}")),
                        "{summary}"
                    );

                    py_cases.push(serde_json::json!({
                        "name": name, "resp": s(&tsr), "data": s(&doc), "root": s(&root),
                        "intermediates": [s(&inter)], "tsa": s(&tsa_pem), "policy": policy,
                        "nonce": raw.nonce.as_ref().map(|n| n.to_string()),
                    }));
                    if first.is_none() && cert_req && nonce {
                        first = Some((tsr.clone(), resp.clone(), signature));
                    }
                }
            }
        }
    }
    assert_eq!(py_cases.len(), 24);
    run_rfc3161_client(&py_cases);

    // hanko verify refuses what is not valid.
    let (tsr, resp, signature) = first.unwrap();
    let other = work.join("other.txt");
    std::fs::write(&other, b"not the document\n").unwrap();
    let out = hanko_verify(&[
        tsr.to_str().unwrap(),
        "--data",
        other.to_str().unwrap(),
        "--ca",
        root.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("data differs"), "{}", text(&out));

    let mut flipped = resp.clone();
    let at = flipped
        .windows(signature.len())
        .position(|w| w == signature.as_slice())
        .unwrap();
    flipped[at + signature.len() / 2] ^= 0x01;
    let bad = work.join("flipped.tsr");
    std::fs::write(&bad, &flipped).unwrap();
    let out = hanko_verify(&[
        bad.to_str().unwrap(),
        "--data",
        doc.to_str().unwrap(),
        "--ca",
        root.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("signature does not verify"),
        "{}",
        text(&out)
    );

    // A root with the dev root's very name but another key: names chain, signatures do not.
    let subject = openssl(
        &work,
        &[
            "x509",
            "-in",
            root.to_str().unwrap(),
            "-noout",
            "-subject",
            "-nameopt",
            "compat",
        ],
    );
    let subject = subject
        .trim()
        .trim_start_matches("subject=")
        .trim()
        .to_owned();
    openssl_req_new_p256(
        &work,
        "fake-root.key",
        &[
            "-x509",
            "-out",
            "fake-root.pem",
            "-days",
            "2",
            "-subj",
            &subject,
        ],
    );
    let fake = work.join("fake-root.pem");
    let out = hanko_verify(&[
        tsr.to_str().unwrap(),
        "--data",
        doc.to_str().unwrap(),
        "--ca",
        fake.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("no chain to the --ca root"),
        "{}",
        text(&out)
    );

    let (exit, log) = server.stop();
    assert!(exit.success(), "{log}");
}
