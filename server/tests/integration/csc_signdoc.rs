//! Issues #12 and #13, CSC v2 `signatures/signDoc` through the real `hanko serve --dev`:
//! CAdES B-B and B-T seals of documents (attached and detached) and of digests for both
//! dev seal credentials, each verified by `openssl cms -verify` (and its time-stamp by
//! `openssl ts -verify`); PAdES seals of PDFs (`signature_format` "P"), each checked by
//! pyHanko's validator, `pdfsig` and `qpdf --check`; the log holding exactly one record
//! per seal returned; every refusal (PDFs the PDF route refuses included) with its own
//! CSC error and nothing logged; a seal whose record cannot be committed is not
//! returned.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hanko_pki::HashAlgorithm;
use hanko_pki::oid::dotted;
use serde_json::{Value, json};

use crate::common::csc::{Csc, assert_error, b64, billing_client};
use crate::common::http::send;
use crate::common::log::{TestDb, start_dev_server};
use crate::common::seal::{issued, log_records, of_kind, verify_seal};
use crate::common::{Server, dev_api_key, dev_init, start_dev_with_extra};
use crate::seal_pdf::{assert_sealed, fixture, fixtures};

const V: Csc = Csc::V2;

fn sha256(b: &[u8]) -> Vec<u8> {
    HashAlgorithm::Sha256.digest(b)
}

/// A `documents` entry.
fn document(doc: &[u8], sign_algo: &str, level: Option<&str>, envelope: Option<&str>) -> Value {
    let mut d = json!({ "document": b64(doc), "signature_format": "C", "signAlgo": sign_algo });
    if let Some(l) = level {
        d["conformance_level"] = json!(l);
    }
    if let Some(e) = envelope {
        d["signed_envelope_property"] = json!(e);
    }
    d
}

/// A `documents` entry sealing the PDF `pdf` (PAdES) at `level`, with `envelope` as its
/// `signed_envelope_property`.
fn pdf_document(pdf: &[u8], sign_algo: &str, level: &str, envelope: Option<&str>) -> Value {
    let mut d = document(pdf, sign_algo, Some(level), envelope);
    d["signature_format"] = json!("P");
    d
}

/// A `documentDigests` entry over SHA-256 `hashes`.
fn digest_entry(hashes: &[Vec<u8>], sign_algo: &str, level: &str) -> Value {
    json!({
        "hashes": hashes.iter().map(|d| b64(d)).collect::<Vec<_>>(),
        "hashAlgorithmOID": dotted::SHA256,
        "signature_format": "C",
        "conformance_level": level,
        "signAlgo": sign_algo,
    })
}

fn decoded(v: &Value) -> Vec<Vec<u8>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| STANDARD.decode(s.as_str().unwrap()).unwrap())
        .collect()
}

/// `serve --dev` on `<tmp>/data`: the temporary directory, the data directory, the dev
/// client's API key, the server.
fn dev_server() -> (tempfile::TempDir, PathBuf, String, Server) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    dev_init(&dir);
    let key = dev_api_key(&dir);
    let server = start_dev_with_extra(&dir, "");
    (tmp, dir, key, server)
}

/// Stops `server` (its output must not hold the API key `key`) and checks the log of
/// `dir`: one seal record of the dev client per object in `returned` (by SHA-256), and
/// no other seal. Returns every record.
fn stop_and_check_seals(server: Server, dir: &Path, key: &str, returned: &[Vec<u8>]) -> Vec<Value> {
    let (status, out) = server.stop();
    assert!(status.success(), "{out}");
    assert!(!out.contains(key), "the API key was logged");
    let records = log_records(dir);
    let seals = of_kind(&records, "seal");
    assert_eq!(seals.len(), returned.len(), "{records:#?}");
    for object in returned {
        let hash = hex::encode(sha256(object));
        let r: Vec<_> = seals.iter().filter(|r| r["object_hash"] == hash).collect();
        assert_eq!(r.len(), 1, "{records:#?}");
        assert_eq!(r[0]["client"], "dev-client");
    }
    records
}

/// A signDoc call by `key` with (credential, SAD) over `documents` and `digests`
/// that must succeed: its answer.
fn sign_doc(
    addr: SocketAddr,
    key: &str,
    (credential, sad): (&str, &str),
    documents: Value,
    digests: Value,
) -> Value {
    let (status, v) = V.call(
        addr,
        "signatures/signDoc",
        Some(key),
        &json!({ "credentialID": credential, "SAD": sad, "documents": documents,
                 "documentDigests": digests }),
    );
    assert_eq!(status, 200, "{credential}: {v}");
    v
}

const CASES: [(&str, &str); 2] = [
    ("seal-rsa3072", dotted::SHA256_WITH_RSA_ENCRYPTION),
    ("seal-p256", dotted::ECDSA_WITH_SHA256),
];

#[test]
fn sign_doc_seals_verify_with_openssl_and_each_is_logged_once() {
    let (tmp, dir, key, server) = dev_server();
    let work = tmp.path();
    let addr = server.addr;
    let (a, b, c) = (
        b"certificate of residence".as_slice(),
        b"invoice 2026-0042".as_slice(),
        b"archived report".as_slice(),
    );
    for (name, bytes) in [("a.bin", a), ("b.bin", b), ("c.bin", c)] {
        std::fs::write(work.join(name), bytes).unwrap();
    }
    let mut returned = Vec::new();
    let mut tokens = 0;
    for (i, (credential, sign_algo)) in CASES.into_iter().enumerate() {
        // The first credential's SAD counts seals; the second's is bound to the
        // digests (a document by its SHA-256).
        let bound = [sha256(a), sha256(b), sha256(c)];
        let sad = V.authorize(addr, &key, credential, 3, (i == 1).then_some(&bound[..]));
        let v = sign_doc(
            addr,
            &key,
            (credential, &sad),
            json!([
                document(a, sign_algo, None, None),
                document(b, sign_algo, Some("Ades-B-T"), Some("Detached")),
            ]),
            json!([digest_entry(&[sha256(c)], sign_algo, "AdES-B-T")]),
        );
        let attached = decoded(&v["DocumentWithSignature"]);
        let detached = decoded(&v["SignatureObject"]);
        assert_eq!((attached.len(), detached.len()), (1, 2), "{v}");
        let stamps = [
            verify_seal(work, &format!("{credential}-a"), &attached[0], None, a),
            verify_seal(
                work,
                &format!("{credential}-b"),
                &detached[0],
                Some("b.bin"),
                b,
            ),
            verify_seal(
                work,
                &format!("{credential}-c"),
                &detached[1],
                Some("c.bin"),
                c,
            ),
        ];
        assert_eq!(stamps, [0, 1, 1], "B-B by default, B-T when asked");
        tokens += 2;
        returned.extend(attached.into_iter().chain(detached));
    }
    let records = stop_and_check_seals(server, &dir, &key, &returned);
    assert_eq!(of_kind(&records, "timestamp").len(), tokens, "{records:#?}");
    assert_eq!(records.len(), returned.len() + tokens);
}

/// PAdES through signDoc: for both credentials, one call with a PDF at B-B, a CAdES
/// document between, and a PDF signed before at B-T; then a certification seal. Each
/// sealed PDF starts with the original bytes and passes pyHanko, pdfsig and qpdf; each
/// is logged once under the hash of the file returned and counted as PAdES.
#[test]
fn sign_doc_pades_seals_verify_with_pyhanko_pdfsig_and_qpdf_and_each_is_logged_once() {
    let (tmp, dir, key, server) = dev_server();
    let work = tmp.path();
    let addr = server.addr;
    let roots = [
        dir.join("dev-pki/root.pem"),
        fixtures().join("signed-pyhanko-cert.pem"),
    ];
    let roots = roots.each_ref().map(|p| p.as_path());
    let (table, signed) = (fixture("gs-table.pdf"), fixture("signed-pyhanko.pdf"));
    let doc = b"certificate of residence".as_slice();
    let mut pdfs: Vec<Vec<u8>> = Vec::new();
    let mut cms = Vec::new();
    for (credential, sign_algo) in CASES {
        let sad = V.authorize(addr, &key, credential, 3, None);
        let v = sign_doc(
            addr,
            &key,
            (credential, &sad),
            json!([
                pdf_document(&table, sign_algo, "Ades-B-B", None),
                document(doc, sign_algo, None, None),
                pdf_document(&signed, sign_algo, "Ades-B-T", Some("Revision")),
            ]),
            json!([]),
        );
        assert!(v.get("SignatureObject").is_none(), "{v}");
        let out = decoded(&v["DocumentWithSignature"]);
        assert_eq!(out.len(), 3, "in the order of documents: {v}");
        for (i, (original, level, signatures)) in [(&table, "B-B", 1), (&signed, "B-T", 2)]
            .into_iter()
            .enumerate()
        {
            let sealed = &out[i * 2];
            assert!(sealed.starts_with(original), "{credential}: original kept");
            let path = work.join(format!("{credential}-{i}.pdf"));
            std::fs::write(&path, sealed).unwrap();
            assert_sealed(&path, &roots, signatures, level);
        }
        verify_seal(work, &format!("{credential}-cades"), &out[1], None, doc);
        pdfs.extend([out[0].clone(), out[2].clone()]);
        cms.push(out[1].clone());
    }
    // Certification: a DocMDP seal, pyHanko and pdfsig still see modification none.
    let (credential, sign_algo) = CASES[1];
    let sad = V.authorize(addr, &key, credential, 1, Some(&[sha256(&table)]));
    let v = sign_doc(
        addr,
        &key,
        (credential, &sad),
        json!([pdf_document(
            &table,
            sign_algo,
            "Ades-B-T",
            Some("Certification")
        )]),
        json!([]),
    );
    let certified = decoded(&v["DocumentWithSignature"]).remove(0);
    let path = work.join("certified.pdf");
    std::fs::write(&path, &certified).unwrap();
    assert_sealed(&path, &roots, 1, "B-T");
    let update = String::from_utf8_lossy(&certified[table.len()..]);
    assert!(
        update.contains("/DocMDP") && update.contains("/Perms"),
        "a certification seal: {update}"
    );
    pdfs.push(certified);

    let (_, metrics) = server.get("/metrics");
    for (credential, n) in [("seal-rsa3072", 1), ("seal-p256", 1)] {
        let line = format!(
            "hanko_seal_total{{credential=\"{credential}\",form=\"pades\",level=\"B-B\"}} {n}"
        );
        assert!(metrics.contains(&line), "{line}: {metrics}");
    }
    assert!(
        metrics
            .contains("hanko_seal_total{credential=\"seal-p256\",form=\"pades\",level=\"B-T\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("hanko_seal_total{credential=\"seal-p256\",form=\"cades\",level=\"B-B\"} 1"),
        "{metrics}"
    );
    pdfs.extend(cms);
    let records = stop_and_check_seals(server, &dir, &key, &pdfs);
    // Three B-T PDF seals, each with its token logged.
    assert_eq!(of_kind(&records, "timestamp").len(), 3, "{records:#?}");
}

#[test]
fn sign_doc_refusals_each_with_its_error_and_nothing_logged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    dev_init(&dir);
    let key = dev_api_key(&dir);
    let billing = "hanko_csc-signdoc-billing-client-key";
    let server = start_dev_with_extra(
        &dir,
        &format!(
            "{}[http]\nmax_seal_body_bytes = 100000\ncsc_max_hashes = 3\n",
            billing_client(billing)
        ),
    );
    let addr = server.addr;
    let (p256, ecdsa) = CASES[1];
    let doc = b"a document".as_slice();
    let sad = V.authorize(addr, &key, p256, 2, None);
    let req = |documents: Value, digests: Value| {
        json!({ "credentialID": p256, "SAD": sad, "documents": documents,
                "documentDigests": digests })
    };
    let refused = |who: &str, body: &Value, status: u16, error: &str, says: &str| {
        assert_error(
            V.call(addr, "signatures/signDoc", Some(who), body),
            status,
            error,
            says,
        );
    };
    let one_doc = |d: Value| req(json!([d]), json!([]));
    let one_digest = |d: Value| req(json!([]), json!([d]));

    // PDFs the PDF route refuses (PAdES), and PAdES shapes not served.
    let table = fixture("gs-table.pdf");
    let pdf_refusals: [(&str, Vec<u8>, Option<&str>, &str); 6] = [
        ("garbage", vec![0x5a; 5000], None, "does not parse"),
        (
            "truncated",
            table[..table.len() / 2].to_vec(),
            None,
            "does not parse",
        ),
        ("encrypted", fixture("encrypted.pdf"), None, "encrypted"),
        (
            "DocMDP P=1",
            fixture("docmdp-nochanges.pdf"),
            None,
            "DocMDP P=1",
        ),
        (
            "certify a signed file",
            fixture("signed-pyhanko.pdf"),
            Some("Certification"),
            "first signature",
        ),
        (
            "a CAdES envelope",
            table.clone(),
            Some("Detached"),
            "signed_envelope_property \"Detached\" is not supported for PAdES",
        ),
    ];
    for (what, pdf, envelope, says) in pdf_refusals {
        eprintln!("PAdES refusal: {what}");
        // The bad PDF second: the good one before it is not sealed either.
        let body = req(
            json!([
                pdf_document(&table, ecdsa, "Ades-B-B", None),
                pdf_document(&pdf, ecdsa, "Ades-B-T", envelope)
            ]),
            json!([]),
        );
        let (status, v) = V.call(addr, "signatures/signDoc", Some(&key), &body);
        assert_eq!(status, 400, "{what}: {v}");
        assert_eq!(v["error"], "invalid_request", "{what}: {v}");
        let description = v["error_description"].as_str().unwrap();
        assert!(description.starts_with("documents[1]: "), "{what}: {v}");
        assert!(description.contains(says), "{what}: {v}");
        assert!(!description.contains("CAdES level"), "{what}: {v}");
    }
    let mut pades_digest = digest_entry(&[sha256(doc)], ecdsa, "Ades-B-B");
    pades_digest["signature_format"] = json!("P");
    refused(
        &key,
        &one_digest(pades_digest),
        400,
        "invalid_request",
        "documentDigests[0]: signature_format \"P\" (PAdES) seals documents, not digests",
    );
    // Formats and levels not served.
    let mut xades = document(doc, ecdsa, None, None);
    xades["signature_format"] = json!("X");
    refused(
        &key,
        &one_doc(xades),
        400,
        "invalid_request",
        "signature_format \"X\" is not supported",
    );
    let mut none = document(doc, ecdsa, None, None);
    none.as_object_mut().unwrap().remove("signature_format");
    refused(
        &key,
        &one_doc(none),
        400,
        "invalid_request",
        "missing string parameter signature_format",
    );
    refused(
        &key,
        &one_doc(document(doc, ecdsa, Some("Ades-B-LT"), None)),
        400,
        "invalid_request",
        "conformance_level \"Ades-B-LT\" is not supported",
    );
    refused(
        &key,
        &one_doc(document(doc, ecdsa, Some("B-Q"), None)),
        400,
        "invalid_request",
        "unknown conformance_level \"B-Q\"",
    );
    refused(
        &key,
        &one_doc(document(doc, ecdsa, None, Some("Enveloped"))),
        400,
        "invalid_request",
        "signed_envelope_property \"Enveloped\" is not supported",
    );
    let mut props = document(doc, ecdsa, None, None);
    props["signed_props"] = json!([{ "attribute_name": "x", "attribute_value": "y" }]);
    refused(
        &key,
        &one_doc(props),
        400,
        "invalid_request",
        "signed_props are not supported",
    );
    // Algorithms: unknown, another than the credential seals with, a hash that
    // contradicts it.
    refused(
        &key,
        &one_doc(document(doc, "1.2.3.4", None, None)),
        400,
        "invalid_request",
        "unknown or unsupported signature algorithm 1.2.3.4",
    );
    refused(
        &key,
        &one_doc(document(doc, dotted::ECDSA_WITH_SHA384, None, None)),
        400,
        "invalid_request",
        "credential \"seal-p256\" seals with",
    );
    let mut sha384 = digest_entry(&[vec![1; 48]], ecdsa, "Ades-B-B");
    sha384["hashAlgorithmOID"] = json!(dotted::SHA384);
    refused(
        &key,
        &one_digest(sha384),
        400,
        "invalid_request",
        "contradicts",
    );
    // Content: malformed base64, a hash of the wrong length, an empty hash list, an
    // enveloping seal of a digest, nothing at all, too many seals.
    let mut bad64 = document(doc, ecdsa, None, None);
    bad64["document"] = json!("not base64!");
    refused(
        &key,
        &one_doc(bad64),
        400,
        "invalid_request",
        "documents[0].document is not valid base64",
    );
    refused(
        &key,
        &one_digest(digest_entry(&[vec![1; 20]], ecdsa, "Ades-B-B")),
        400,
        "invalid_request",
        "documentDigests[0]: hashes[0] is 20 bytes; a SHA-256 hash is 32",
    );
    refused(
        &key,
        &one_digest(digest_entry(&[], ecdsa, "Ades-B-B")),
        400,
        "invalid_request",
        "documentDigests[0]: hashes is empty",
    );
    let mut enveloping = digest_entry(&[sha256(doc)], ecdsa, "Ades-B-B");
    enveloping["signed_envelope_property"] = json!("Attached");
    refused(
        &key,
        &one_digest(enveloping),
        400,
        "invalid_request",
        "an enveloping seal needs the document",
    );
    refused(
        &key,
        &req(json!([]), json!([])),
        400,
        "invalid_request",
        "nothing to seal",
    );
    refused(
        &key,
        &one_digest(digest_entry(
            &[sha256(b"1"), sha256(b"2"), sha256(b"3"), sha256(b"4")],
            ecdsa,
            "Ades-B-B",
        )),
        400,
        "invalid_request",
        "4 seals asked; at most 3",
    );
    let mut qualifier = one_doc(document(doc, ecdsa, None, None));
    qualifier.as_object_mut().unwrap().remove("credentialID");
    qualifier["signatureQualifier"] = json!("eu_eidas_aes");
    refused(
        &key,
        &qualifier,
        400,
        "invalid_request",
        "signatureQualifier is not served",
    );
    let mut async_mode = one_doc(document(doc, ecdsa, None, None));
    async_mode["operationMode"] = json!("A");
    refused(
        &key,
        &async_mode,
        400,
        "invalid_request",
        "only operationMode \"S\"",
    );
    // Credentials and clients.
    let mut unknown = one_doc(document(doc, ecdsa, None, None));
    unknown["credentialID"] = json!("seal-nope");
    refused(
        &key,
        &unknown,
        400,
        "invalid_request",
        "invalid parameter credentialID",
    );
    let mut foreign = one_doc(document(doc, CASES[0].1, None, None));
    foreign["credentialID"] = json!(CASES[0].0);
    refused(
        billing,
        &foreign,
        403,
        "access_denied",
        "may not use the seal credential",
    );
    assert_error(
        V.call(
            addr,
            "signatures/signDoc",
            None,
            &one_doc(document(doc, ecdsa, None, None)),
        ),
        401,
        "invalid_request",
        "authentication required",
    );
    // The body limit is http.max_seal_body_bytes.
    let big = one_doc(document(&vec![7u8; 120_000], ecdsa, None, None));
    refused(
        &key,
        &big,
        413,
        "invalid_request",
        "larger than 100000 bytes",
    );
    // SADs: another client's, one for other hashes, too few signatures, missing.
    refused(
        billing,
        &one_doc(document(doc, ecdsa, None, None)),
        400,
        "invalid_request",
        "issued for another client",
    );
    let bound = V.authorize(addr, &key, p256, 1, Some(&[sha256(b"other")]));
    let mut other = one_doc(document(doc, ecdsa, None, None));
    other["SAD"] = json!(bound);
    refused(
        &key,
        &other,
        400,
        "invalid_request",
        "not issued for these hashes",
    );
    let small = V.authorize(addr, &key, p256, 1, None);
    let mut two = req(
        json!([document(doc, ecdsa, None, None)]),
        json!([digest_entry(&[sha256(doc)], ecdsa, "Ades-B-B")]),
    );
    two["SAD"] = json!(small);
    refused(
        &key,
        &two,
        400,
        "invalid_request",
        "more hashes than it authorises",
    );
    let mut missing = one_doc(document(doc, ecdsa, None, None));
    missing.as_object_mut().unwrap().remove("SAD");
    refused(
        &key,
        &missing,
        400,
        "invalid_request",
        "invalid SAD: missing",
    );

    // The first SAD survived every refusal above.
    let (status, v) = V.call(
        addr,
        "signatures/signDoc",
        Some(&key),
        &one_doc(document(doc, ecdsa, None, None)),
    );
    assert_eq!(status, 200, "{v}");
    let (status, out) = server.stop();
    assert!(status.success(), "{out}");
    assert!(!out.contains("panicked"), "{out}");
    let records = log_records(&dir);
    assert_eq!(records.len(), 1, "only the seal returned: {records:#?}");
    assert_eq!(of_kind(&records, "seal").len(), 1);
}

/// POSTs `body` to `/csc/{method}`: (status, raw head, JSON).
fn with_head(addr: SocketAddr, method: &str, key: &str, body: &Value) -> (u16, String, Value) {
    let auth = format!("Bearer {key}");
    let r = send(
        addr,
        "POST",
        &format!("/csc/{method}"),
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &auth),
        ],
        body.to_string().as_bytes(),
    )
    .unwrap();
    (r.status, r.head, serde_json::from_slice(&r.body).unwrap())
}

/// While a PostgreSQL trigger refuses every row of the log, signDoc (B-B, and B-T, whose
/// token cannot be logged either) and signatures/timestamp answer 503 with
/// `Retry-After` and return nothing; once the log takes rows again they are served, and
/// the log holds exactly what was returned.
#[test]
fn a_sign_doc_seal_or_csc_token_whose_record_cannot_be_committed_is_not_returned() {
    let Some(db) = TestDb::postgres() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    dev_init(&dir);
    let key = dev_api_key(&dir);
    let server = start_dev_server(&dir, &db, None);
    let addr = server.addr;
    let (p256, ecdsa) = CASES[1];
    let doc = b"certificate of residence";
    let sign_doc = |level: &str| {
        let sad = V.authorize(addr, &key, p256, 1, None);
        with_head(
            addr,
            "v2/signatures/signDoc",
            &key,
            &json!({ "credentialID": p256, "SAD": sad,
                     "documents": [document(doc, ecdsa, Some(level), None)] }),
        )
    };
    let stamp = || {
        with_head(
            addr,
            "v1/signatures/timestamp",
            &key,
            &json!({ "hash": b64(&sha256(doc)), "hashAlgo": dotted::SHA256 }),
        )
    };
    db.refuse_log_rows();
    for (what, (status, head, v)) in [
        ("B-B", sign_doc("Ades-B-B")),
        ("B-T", sign_doc("Ades-B-T")),
        ("timestamp", stamp()),
    ] {
        assert_eq!(status, 503, "{what}: {v}");
        assert!(
            head.to_ascii_lowercase().contains("retry-after: 1"),
            "{head}"
        );
        assert_eq!(v["error"], "temporarily_unavailable", "{v}");
        let description = v["error_description"].as_str().unwrap();
        assert!(description.contains("retry later"), "{v}");
        assert!(!description.contains("refused by the test"), "{v}");
        assert!(v.get("DocumentWithSignature").is_none() && v.get("timestamp").is_none());
    }
    db.accept_log_rows();
    let (status, _, v) = sign_doc("Ades-B-T");
    assert_eq!(status, 200, "{v}");
    let seal = STANDARD
        .decode(v["DocumentWithSignature"][0].as_str().unwrap())
        .unwrap();
    let (status, _, v) = stamp();
    assert_eq!(status, 200, "{v}");
    let token = STANDARD.decode(v["timestamp"].as_str().unwrap()).unwrap();
    let (exit, out) = server.stop();
    assert!(exit.success(), "{out}");

    let log = issued(db.log(&["export"]));
    let seals = of_kind(&log, "seal");
    assert_eq!(seals.len(), 1, "{log:#?}");
    assert_eq!(seals[0]["object_hash"], hex::encode(sha256(&seal)));
    // The B-T seal's own token and the CSC token.
    let tokens = of_kind(&log, "timestamp");
    assert_eq!(tokens.len(), 2, "{log:#?}");
    let token_hash = hex::encode(sha256(&token));
    assert_eq!(
        tokens
            .iter()
            .filter(|r| r["object_hash"] == token_hash)
            .count(),
        1
    );
    assert_eq!(log.len(), 3);
}
