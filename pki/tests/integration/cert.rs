use std::path::Path;
use std::time::{Duration, SystemTime};

use hanko_pki::cert::{
    CertError, Certificate, check_issuing_ca, check_key_matches, check_seal_certificate,
    check_signing_key_policy, check_tsa_certificate, load_pem_chain,
};
use hanko_pki::soft::SoftwareSigner;
use hanko_pki::x509::{
    CertParams, CertProfile, CertRequest, NameAttr, build_name, issue_certificate, make_csr,
};
use hanko_pki::{HashAlgorithm, KeyType, SignatureAlgorithm, Signer};

use crate::common::{block_on, openssl, openssl_key, openssl_ok, write};

const DAY: Duration = Duration::from_secs(86_400);

fn ecdsa(h: HashAlgorithm) -> SignatureAlgorithm {
    SignatureAlgorithm::Ecdsa(h)
}

fn now() -> SystemTime {
    SystemTime::now()
}

struct Chain {
    root: Certificate,
    root_key: SoftwareSigner,
    inter: Certificate,
    inter_key: SoftwareSigner,
}

/// Root (P-384) and intermediate (pathLen 0) signed by `root_alg`/`inter_alg` keys.
fn make_ca(root_key: SoftwareSigner, inter_key: SoftwareSigner) -> Chain {
    let start = now() - DAY;
    let root_params = CertParams::new(
        CertProfile::RootCa,
        build_name(&[
            (NameAttr::Country, "JP"),
            (NameAttr::Organization, "Hanko Test"),
            (NameAttr::CommonName, "Hanko Test Root CA"),
        ])
        .unwrap(),
        start,
        start + 3650 * DAY,
    );
    let root = block_on(issue_certificate(
        &root_params,
        root_key.public_key_der(),
        None,
        &root_key,
    ))
    .unwrap();
    let inter_params = CertParams::new(
        CertProfile::IntermediateCa { path_len: 0 },
        build_name(&[
            (NameAttr::Country, "JP"),
            (NameAttr::Organization, "Hanko Test"),
            (NameAttr::CommonName, "Hanko Test Issuing CA"),
        ])
        .unwrap(),
        start,
        start + 1825 * DAY,
    );
    let inter = block_on(issue_certificate(
        &inter_params,
        inter_key.public_key_der(),
        Some(&root),
        &root_key,
    ))
    .unwrap();
    Chain {
        root,
        root_key,
        inter,
        inter_key,
    }
}

fn tsa_params(cn: &str) -> CertParams {
    let start = now() - DAY;
    CertParams::new(
        CertProfile::Tsa {
            non_repudiation: false,
            private_key_usage_period: Some((start, start + 365 * DAY)),
        },
        build_name(&[
            (NameAttr::Country, "JP"),
            (NameAttr::Organization, "Hanko Test"),
            (NameAttr::CommonName, cn),
        ])
        .unwrap(),
        start,
        start + 730 * DAY,
    )
}

fn seal_params() -> CertParams {
    let start = now() - DAY;
    CertParams::new(
        CertProfile::Seal,
        build_name(&[
            (NameAttr::Country, "JP"),
            (NameAttr::Organization, "Hanko Test"),
            (NameAttr::OrganizationIdentifier, "NTRJP-1234567890123"),
            (NameAttr::CommonName, "Hanko Test Seal"),
        ])
        .unwrap(),
        start,
        start + 730 * DAY,
    )
}

fn write_chain(d: &Path, chain: &Chain, leaf: &Certificate) {
    write(d, "root.pem", chain.root.to_pem().as_bytes());
    write(d, "inter.pem", chain.inter.to_pem().as_bytes());
    write(d, "leaf.pem", leaf.to_pem().as_bytes());
}

fn openssl_verify(d: &Path, extra: &[&str]) -> (bool, String) {
    let mut args = vec!["verify", "-CAfile", "root.pem", "-untrusted", "inter.pem"];
    args.extend_from_slice(extra);
    args.push("leaf.pem");
    let (ok, out, err) = openssl(d, &args);
    (ok, format!("{}{err}", String::from_utf8_lossy(&out)))
}

#[test]
fn issued_tsa_chain_passes_openssl_verify_and_our_checks() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let chain = make_ca(
        SoftwareSigner::generate(KeyType::EcP384, ecdsa(HashAlgorithm::Sha384)).unwrap(),
        SoftwareSigner::generate(KeyType::EcP256, ecdsa(HashAlgorithm::Sha256)).unwrap(),
    );
    // The TSA key: RSA-3072 made by OpenSSL (stands in for the HSM's key).
    let tsa_key = SoftwareSigner::from_pkcs8_pem(
        &openssl_key(d, "RSA:3072"),
        SignatureAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha256),
    )
    .unwrap();
    let leaf = block_on(issue_certificate(
        &tsa_params("Hanko Test TSA"),
        tsa_key.public_key_der(),
        Some(&chain.inter),
        &chain.inter_key,
    ))
    .unwrap();
    write_chain(d, &chain, &leaf);

    let (ok, out) = openssl_verify(d, &[]);
    assert!(ok && out.contains("leaf.pem: OK"), "{out}");
    // OpenSSL's own time-stamping purpose check (critical EKU with timeStamping only).
    let (ok, out) = openssl_verify(d, &["-purpose", "timestampsign"]);
    assert!(ok, "{out}");
    let (ok, out) = openssl_verify(d, &["-purpose", "codesign"]);
    assert!(
        !ok,
        "a TSA certificate must not pass as code signing: {out}"
    );

    let text = String::from_utf8(openssl_ok(
        d,
        &["x509", "-in", "leaf.pem", "-noout", "-text"],
    ))
    .unwrap();
    assert!(
        text.contains("X509v3 Extended Key Usage: critical\n                Time Stamping\n"),
        "{text}"
    );
    assert!(
        text.contains("X509v3 Key Usage: critical\n                Digital Signature\n"),
        "{text}"
    );
    assert!(
        text.contains("Subject: C = JP, O = Hanko Test, CN = Hanko Test TSA"),
        "{text}"
    );
    assert!(text.contains("X509v3 Private Key Usage Period"), "{text}");
    assert!(text.contains("X509v3 Subject Key Identifier"), "{text}");
    assert!(text.contains("X509v3 Authority Key Identifier"), "{text}");
    assert!(
        text.contains("Signature Algorithm: ecdsa-with-SHA256"),
        "{text}"
    );

    let root_text = String::from_utf8(openssl_ok(
        d,
        &["x509", "-in", "root.pem", "-noout", "-text"],
    ))
    .unwrap();
    assert!(root_text.contains("X509v3 Basic Constraints: critical\n                CA:TRUE\n"));
    assert!(
        root_text
            .contains("X509v3 Key Usage: critical\n                Certificate Sign, CRL Sign\n")
    );
    let inter_text = String::from_utf8(openssl_ok(
        d,
        &["x509", "-in", "inter.pem", "-noout", "-text"],
    ))
    .unwrap();
    assert!(inter_text.contains("CA:TRUE, pathlen:0"), "{inter_text}");

    check_tsa_certificate(&leaf, now()).unwrap();
    check_key_matches(&leaf, tsa_key.public_key_der()).unwrap();
    leaf.verify_issued_by(&chain.inter).unwrap();
    chain.inter.verify_issued_by(&chain.root).unwrap();
    chain.root.verify_issued_by(&chain.root).unwrap();
    assert!(leaf.verify_issued_by(&chain.root).is_err());
    // AKI of the leaf = SKI of the intermediate.
    assert!(chain.inter.subject_key_identifier().is_some());
    // The der we hold is what OpenSSL reads.
    let openssl_der = openssl_ok(d, &["x509", "-in", "leaf.pem", "-outform", "DER"]);
    assert_eq!(openssl_der, leaf.der());
    assert_eq!(Certificate::from_der(&openssl_der).unwrap(), leaf);
    assert_eq!(leaf.issuer_der(), chain.inter.subject_der());
    let _ = &chain.root_key;
}

#[test]
fn issued_seal_chain_with_rsa_pss_and_ed25519_passes_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root_key = SoftwareSigner::from_pkcs8_pem(
        &openssl_key(d, "RSA:2048"),
        SignatureAlgorithm::RsaPss(HashAlgorithm::Sha256),
    )
    .unwrap();
    let chain = make_ca(
        root_key,
        SoftwareSigner::generate(KeyType::Ed25519, SignatureAlgorithm::Ed25519).unwrap(),
    );
    let seal_key = SoftwareSigner::generate(KeyType::EcP256, ecdsa(HashAlgorithm::Sha256)).unwrap();
    let leaf = block_on(issue_certificate(
        &seal_params(),
        seal_key.public_key_der(),
        Some(&chain.inter),
        &chain.inter_key,
    ))
    .unwrap();
    write_chain(d, &chain, &leaf);
    let (ok, out) = openssl_verify(d, &[]);
    assert!(ok, "{out}");
    let text = String::from_utf8(openssl_ok(
        d,
        &["x509", "-in", "inter.pem", "-noout", "-text"],
    ))
    .unwrap();
    assert!(text.contains("Signature Algorithm: rsassaPss"), "{text}");
    let text = String::from_utf8(openssl_ok(
        d,
        &["x509", "-in", "leaf.pem", "-noout", "-text"],
    ))
    .unwrap();
    assert!(
        text.contains(
            "X509v3 Key Usage: critical\n                Digital Signature, Non Repudiation\n"
        ),
        "{text}"
    );
    assert!(!text.contains("Extended Key Usage"), "{text}");
    check_seal_certificate(&leaf, now()).unwrap();
    // A seal certificate is not a TSA certificate, and the other way round.
    assert!(matches!(
        check_tsa_certificate(&leaf, now()),
        Err(CertError::MissingExtendedKeyUsage)
    ));
    leaf.verify_issued_by(&chain.inter).unwrap();
    chain.inter.verify_issued_by(&chain.root).unwrap();
}

#[test]
fn check_tsa_certificate_refuses_expiry_and_ended_key_usage_period() {
    let chain = make_ca(
        SoftwareSigner::generate(KeyType::EcP256, ecdsa(HashAlgorithm::Sha256)).unwrap(),
        SoftwareSigner::generate(KeyType::EcP256, ecdsa(HashAlgorithm::Sha256)).unwrap(),
    );
    let key = SoftwareSigner::generate(KeyType::EcP256, ecdsa(HashAlgorithm::Sha256)).unwrap();
    let leaf = block_on(issue_certificate(
        &tsa_params("Hanko Test TSA"),
        key.public_key_der(),
        Some(&chain.inter),
        &chain.inter_key,
    ))
    .unwrap();
    let e = check_tsa_certificate(&leaf, leaf.not_after() + DAY).unwrap_err();
    assert!(matches!(e, CertError::Expired(_)), "{e}");
    let e = check_tsa_certificate(&leaf, leaf.not_before() - DAY).unwrap_err();
    assert!(matches!(e, CertError::NotYetValid(_)), "{e}");
    // The private key usage period (one year) ends before the certificate (two years).
    let e = check_tsa_certificate(&leaf, now() + 400 * DAY).unwrap_err();
    assert!(matches!(e, CertError::KeyUsagePeriodEnded(_)), "{e}");
    assert!(
        e.to_string()
            .starts_with("private key usage period ended at "),
        "{e}"
    );
    // A different key is not this certificate's key.
    let other = SoftwareSigner::generate(KeyType::EcP256, ecdsa(HashAlgorithm::Sha256)).unwrap();
    assert!(matches!(
        check_key_matches(&leaf, other.public_key_der()),
        Err(CertError::KeyMismatch)
    ));
    assert!(matches!(
        check_key_matches(&chain.inter, key.public_key_der()),
        Err(CertError::KeyMismatch)
    ));
}

#[test]
fn issuing_refuses_wrong_signer_non_ca_issuer_and_bad_validity() {
    let chain = make_ca(
        SoftwareSigner::generate(KeyType::EcP256, ecdsa(HashAlgorithm::Sha256)).unwrap(),
        SoftwareSigner::generate(KeyType::EcP256, ecdsa(HashAlgorithm::Sha256)).unwrap(),
    );
    let key = SoftwareSigner::generate(KeyType::EcP256, ecdsa(HashAlgorithm::Sha256)).unwrap();
    // The root's key cannot sign as the intermediate.
    let e = block_on(issue_certificate(
        &tsa_params("x"),
        key.public_key_der(),
        Some(&chain.inter),
        &chain.root_key,
    ))
    .unwrap_err();
    assert!(matches!(e, CertError::SignerNotIssuer), "{e}");
    // An end-entity certificate cannot issue.
    let leaf = block_on(issue_certificate(
        &tsa_params("x"),
        key.public_key_der(),
        Some(&chain.inter),
        &chain.inter_key,
    ))
    .unwrap();
    let e = block_on(issue_certificate(
        &tsa_params("y"),
        key.public_key_der(),
        Some(&leaf),
        &key,
    ))
    .unwrap_err();
    assert!(matches!(e, CertError::IssuerNotCa(_)), "{e}");
    // Outside the issuer's validity.
    let mut p = tsa_params("z");
    p.not_after = chain.inter.not_after() + DAY;
    let e = block_on(issue_certificate(
        &p,
        key.public_key_der(),
        Some(&chain.inter),
        &chain.inter_key,
    ))
    .unwrap_err();
    assert!(matches!(e, CertError::BadValidity(_)), "{e}");
    // A self-signed TSA certificate is refused.
    let e = block_on(issue_certificate(
        &tsa_params("w"),
        key.public_key_der(),
        None,
        &key,
    ))
    .unwrap_err();
    assert!(matches!(e, CertError::IssuerNotCa(_)), "{e}");
    // Names: countryName must be two letters.
    assert!(matches!(
        build_name(&[(NameAttr::Country, "Japan")]),
        Err(CertError::BadName(_))
    ));
}

/// Writes a minimal openssl config and makes a self-signed certificate with exactly the
/// `-addext` extensions given, for a fresh P-256 key.
fn openssl_cert(d: &Path, name: &str, subj: &str, exts: &[&str]) -> Certificate {
    write(
        d,
        "min.cnf",
        b"[req]\ndistinguished_name = dn\nx509_extensions = none\nprompt = no\n[dn]\n[none]\n",
    );
    if !d.join("ec.pem").exists() {
        openssl_ok(
            d,
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                "ec.pem",
            ],
        );
    }
    let out = format!("{name}.pem");
    let mut args = vec![
        "req", "-x509", "-new", "-config", "min.cnf", "-key", "ec.pem", "-sha256", "-days", "30",
        "-subj", subj, "-out", &out,
    ];
    for e in exts {
        args.extend(["-addext", e]);
    }
    openssl_ok(d, &args);
    let pem = std::fs::read_to_string(d.join(&out)).unwrap();
    Certificate::from_pem(&pem).unwrap()
}

/// (file name, subject, -addext values, the error expected).
type Case<'a> = (&'a str, &'a str, Vec<&'a str>, fn(&CertError) -> bool);

#[test]
fn openssl_made_certificates_load_byte_exactly_and_checks_name_each_defect() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good_subj = "/C=JP/O=Third Party/CN=Third Party TSA";
    let ku = "keyUsage=critical,digitalSignature,nonRepudiation";
    let eku = "extendedKeyUsage=critical,timeStamping";

    let good = openssl_cert(
        d,
        "good",
        good_subj,
        &[ku, eku, "subjectKeyIdentifier=hash"],
    );
    check_tsa_certificate(&good, now()).unwrap();
    // Byte-exact: the DER we hold, the serial, the names.
    let der = openssl_ok(d, &["x509", "-in", "good.pem", "-outform", "DER"]);
    assert_eq!(good.der(), der.as_slice());
    let serial = String::from_utf8(openssl_ok(
        d,
        &["x509", "-in", "good.pem", "-noout", "-serial"],
    ))
    .unwrap();
    let serial = serial
        .trim()
        .trim_start_matches("serial=")
        .to_ascii_lowercase();
    assert_eq!(
        hex::encode(good.serial_der()).trim_start_matches("00"),
        serial.trim_start_matches("00")
    );
    assert_eq!(good.subject_der(), good.issuer_der());
    assert!(
        good.der()
            .windows(good.spki_der().len())
            .any(|w| w == good.spki_der())
    );
    let pubkey = openssl_ok(d, &["pkey", "-in", "ec.pem", "-pubout", "-outform", "DER"]);
    check_key_matches(&good, &pubkey).unwrap();
    assert_eq!(good.spki_der(), pubkey.as_slice());
    let text = String::from_utf8(openssl_ok(
        d,
        &["x509", "-in", "good.pem", "-noout", "-text"],
    ))
    .unwrap();
    let ski_line = text
        .lines()
        .skip_while(|l| !l.contains("Subject Key Identifier"))
        .nth(1)
        .unwrap()
        .trim()
        .replace(':', "")
        .to_ascii_lowercase();
    assert_eq!(
        hex::encode(good.subject_key_identifier().unwrap()),
        ski_line
    );
    good.verify_issued_by(&good).unwrap();

    let cases: &[Case] = &[
        (
            "eku-not-critical",
            good_subj,
            vec![ku, "extendedKeyUsage=timeStamping"],
            |e| matches!(e, CertError::ExtendedKeyUsageNotCritical),
        ),
        (
            "eku-extra-purpose",
            good_subj,
            vec![ku, "extendedKeyUsage=critical,timeStamping,codeSigning"],
            |e| matches!(e, CertError::ExtendedKeyUsagePurposes(p) if p.len() == 2),
        ),
        (
            "eku-wrong-purpose",
            good_subj,
            vec![ku, "extendedKeyUsage=critical,codeSigning"],
            |e| matches!(e, CertError::ExtendedKeyUsagePurposes(p) if p == &["1.3.6.1.5.5.7.3.3"]),
        ),
        ("no-eku", good_subj, vec![ku], |e| {
            matches!(e, CertError::MissingExtendedKeyUsage)
        }),
        ("no-o", "/C=JP/CN=Third Party TSA", vec![ku, eku], |e| {
            matches!(e, CertError::MissingSubjectAttribute("organizationName"))
        }),
        (
            "no-c",
            "/O=Third Party/CN=Third Party TSA",
            vec![ku, eku],
            |e| matches!(e, CertError::MissingSubjectAttribute("countryName")),
        ),
        ("no-cn", "/C=JP/O=Third Party", vec![ku, eku], |e| {
            matches!(e, CertError::MissingSubjectAttribute("commonName"))
        }),
        (
            "ku-encipher",
            good_subj,
            vec!["keyUsage=critical,keyEncipherment", eku],
            |e| matches!(e, CertError::KeyUsageNotForSigning),
        ),
        (
            "is-ca",
            good_subj,
            vec![ku, eku, "basicConstraints=critical,CA:TRUE"],
            |e| matches!(e, CertError::IsCa),
        ),
        (
            "unknown-critical",
            good_subj,
            vec![ku, eku, "1.2.3.4=critical,DER:0500"],
            |e| matches!(e, CertError::UnknownCriticalExtension(o) if o == "1.2.3.4"),
        ),
    ];
    for (name, subj, exts, expected) in cases {
        let cert = openssl_cert(d, name, subj, exts);
        let e = check_tsa_certificate(&cert, now()).unwrap_err();
        assert!(expected(&e), "{name}: unexpected error {e:?}");
        // Every error names the defect in words.
        assert!(!e.to_string().is_empty());
    }
    let e = check_tsa_certificate(
        &openssl_cert(
            d,
            "msg",
            good_subj,
            &[ku, "extendedKeyUsage=critical,timeStamping,codeSigning"],
        ),
        now(),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "TSA certificate's extendedKeyUsage must be exactly id-kp-timeStamping (1.3.6.1.5.5.7.3.8), found [1.3.6.1.5.5.7.3.8, 1.3.6.1.5.5.7.3.3]"
    );

    // Seal checks.
    let seal_subj = "/C=JP/O=Third Party/CN=Third Party Seal";
    let seal = openssl_cert(d, "seal", seal_subj, &[ku]);
    check_seal_certificate(&seal, now()).unwrap();
    let e = check_seal_certificate(
        &openssl_cert(
            d,
            "seal-ds",
            seal_subj,
            &["keyUsage=critical,digitalSignature"],
        ),
        now(),
    )
    .unwrap_err();
    assert!(matches!(e, CertError::KeyUsageLacks(_)), "{e}");
    let e =
        check_seal_certificate(&openssl_cert(d, "seal-noku", seal_subj, &[]), now()).unwrap_err();
    assert!(matches!(e, CertError::MissingKeyUsage), "{e}");
    let e = check_seal_certificate(&openssl_cert(d, "seal-no-o", "/C=JP/CN=x", &[ku]), now())
        .unwrap_err();
    assert!(
        matches!(e, CertError::MissingSubjectAttribute("organizationName")),
        "{e}"
    );
    // A seal is a legal person's: its country is required (EN 319 412-3).
    let e = check_seal_certificate(
        &openssl_cert(d, "seal-no-c", "/O=Third Party/CN=Third Party Seal", &[ku]),
        now(),
    )
    .unwrap_err();
    assert!(matches!(e, CertError::LegalPersonWithoutCountry(_)), "{e}");
    assert_eq!(
        e.to_string(),
        "e-seal certificate subject has no valid countryName (C): EN 319 412-3 requires \
         the two-letter country code of the legal person"
    );
    let e = check_seal_certificate(
        &openssl_cert(
            d,
            "seal-bad-c",
            "/C=jp/O=Third Party/CN=Third Party Seal",
            &[ku],
        ),
        now(),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .ends_with("(the one given is not two upper-case letters)"),
        "{e}"
    );
}

#[test]
fn pem_chains_load_in_order_and_reject_other_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let chain = make_ca(
        SoftwareSigner::generate(KeyType::EcP256, ecdsa(HashAlgorithm::Sha256)).unwrap(),
        SoftwareSigner::generate(KeyType::EcP256, ecdsa(HashAlgorithm::Sha256)).unwrap(),
    );
    let text = format!(
        "subject=intermediate\n{}\n# comment\n{}",
        chain.inter.to_pem(),
        chain.root.to_pem()
    );
    let loaded = load_pem_chain(&text).unwrap();
    assert_eq!(loaded, vec![chain.inter.clone(), chain.root.clone()]);
    assert!(matches!(
        load_pem_chain("nothing here"),
        Err(CertError::NoCertificate)
    ));
    let key_pem = chain.inter_key.to_pkcs8_pem().unwrap();
    let mixed = format!("{}{}", chain.root.to_pem(), &*key_pem);
    assert!(matches!(load_pem_chain(&mixed), Err(CertError::Pem(_))));
    assert!(
        Certificate::from_pem(&text).is_err(),
        "two certificates are not one"
    );
    // Truncated DER is refused.
    let der = chain.root.der();
    assert!(matches!(
        Certificate::from_der(&der[..der.len() - 1]),
        Err(CertError::Malformed { .. })
    ));
    let mut trailing = der.to_vec();
    trailing.push(0);
    assert!(Certificate::from_der(&trailing).is_err());
    let _ = d;
}

#[test]
fn csrs_we_make_pass_openssl_and_openssl_csrs_pass_us() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let subject = build_name(&[
        (NameAttr::Country, "JP"),
        (NameAttr::Organization, "Hanko Test"),
        (NameAttr::CommonName, "Hanko Test TSA"),
    ])
    .unwrap();
    let rsa = SoftwareSigner::from_pkcs8_pem(
        &openssl_key(d, "RSA:3072"),
        SignatureAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha256),
    )
    .unwrap();
    let p256 = SoftwareSigner::generate(KeyType::EcP256, ecdsa(HashAlgorithm::Sha256)).unwrap();
    let ed = SoftwareSigner::generate(KeyType::Ed25519, SignatureAlgorithm::Ed25519).unwrap();
    for signer in [&rsa as &dyn Signer, &p256, &ed] {
        let csr = block_on(make_csr(&subject, signer)).unwrap();
        write(d, "csr.der", &csr);
        let (ok, out, err) = openssl(
            d,
            &[
                "req", "-inform", "DER", "-in", "csr.der", "-verify", "-noout", "-subject",
            ],
        );
        let out = String::from_utf8_lossy(&out);
        assert!(ok, "{signer:?}: {err}");
        assert!(
            err.contains("verify OK") || out.contains("verify OK"),
            "{out}{err}"
        );
        assert!(
            out.contains("subject=C = JP, O = Hanko Test, CN = Hanko Test TSA"),
            "{out}"
        );
        let req = CertRequest::from_der(&csr).unwrap();
        req.verify().unwrap();
        assert_eq!(req.spki_der(), signer.public_key_der());
        assert_eq!(req.algorithm(), signer.algorithm());
        assert_eq!(req.subject(), &subject);
        // Tampering with the signed part breaks the proof of possession.
        let mut bad = csr.clone();
        let pos = bad.windows(5).position(|w| w == b"Hanko").unwrap();
        bad[pos] = b'h';
        let bad = CertRequest::from_der(&bad).unwrap();
        assert!(matches!(bad.verify(), Err(CertError::BadSignature(_))));
    }
    // A CSR made by OpenSSL.
    write(
        d,
        "min.cnf",
        b"[req]\ndistinguished_name = dn\nprompt = no\n[dn]\n",
    );
    openssl_ok(
        d,
        &[
            "req",
            "-new",
            "-config",
            "min.cnf",
            "-key",
            "key-RSA-3072.pem",
            "-subj",
            "/C=JP/O=Other/CN=Other TSA",
            "-out",
            "o.csr",
        ],
    );
    let req = CertRequest::from_pem(&std::fs::read_to_string(d.join("o.csr")).unwrap()).unwrap();
    req.verify().unwrap();
    assert_eq!(req.spki_der(), rsa.public_key_der());
}

/// A signatureValue whose BIT STRING claims unused bits is not a certificate: a
/// signature is whole octets, and a verifier that skipped the count would accept a
/// changed byte that no signature covers (found by hanko-anchor's bit-flip test).
#[test]
fn a_signature_value_with_unused_bits_is_refused() {
    let chain = make_ca(
        SoftwareSigner::generate(KeyType::EcP256, ecdsa(HashAlgorithm::Sha256)).unwrap(),
        SoftwareSigner::generate(KeyType::EcP256, ecdsa(HashAlgorithm::Sha256)).unwrap(),
    );
    let der = chain.inter.der().to_vec();
    // The signatureValue BIT STRING is the certificate's last element.
    let cert = hanko_pki::der::Cursor::new(&der, 0..der.len())
        .next_tlv()
        .unwrap();
    let mut fields = hanko_pki::der::Cursor::new(&der, cert.content);
    let mut sig = None;
    while let Some(t) = fields.next_tlv() {
        sig = Some(t);
    }
    let sig = sig.unwrap();
    assert_eq!((sig.tag, der[sig.content.start]), (0x03, 0));
    Certificate::from_der(&der).unwrap();
    for unused in 1..=7u8 {
        let mut bad = der.clone();
        bad[sig.content.start] = unused;
        assert!(Certificate::from_der(&bad).is_err(), "{unused} unused bits");
    }
}

/// #18: the issuing CAs of a signing key's chain are checked as CAs, each defect named.
#[test]
fn issuing_ca_check_names_each_defect() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let subj = "/C=JP/O=Third Party/CN=Third Party CA";
    let bc = "basicConstraints=critical,CA:TRUE";
    let ku = "keyUsage=critical,keyCertSign,cRLSign";
    let good = openssl_cert(d, "ca", subj, &[bc, ku]);
    check_issuing_ca(&good, now(), 0).unwrap();
    check_issuing_ca(&good, now(), 3).unwrap();

    let cases: [(&str, Vec<&str>, usize, &str); 5] = [
        ("no-bc", vec![ku], 0, "no basicConstraints"),
        (
            "ca-false",
            vec!["basicConstraints=critical,CA:FALSE", ku],
            0,
            "cA FALSE",
        ),
        ("no-ku", vec![bc], 0, "no keyUsage"),
        (
            "no-certsign",
            vec![bc, "keyUsage=critical,digitalSignature,cRLSign"],
            0,
            "keyCertSign",
        ),
        (
            "pathlen",
            vec!["basicConstraints=critical,CA:TRUE,pathlen:0", ku],
            1,
            "pathLenConstraint is 0 but 1",
        ),
    ];
    for (name, exts, below, says) in cases {
        let cert = openssl_cert(d, name, subj, &exts);
        let e = check_issuing_ca(&cert, now(), below).unwrap_err();
        assert!(e.to_string().contains(says), "{name}: {e}");
    }
    // Validity, as for a leaf.
    let e = check_issuing_ca(&good, good.not_after() + DAY, 0).unwrap_err();
    assert!(matches!(e, CertError::Expired(_)), "{e}");
    let e = check_issuing_ca(&good, good.not_before() - DAY, 0).unwrap_err();
    assert!(matches!(e, CertError::NotYetValid(_)), "{e}");
}

/// #18: a key to sign with must be RSA-3072 or more (or EC / Ed25519); RSA-2048 still
/// passes the profile check every certificate meets (verification of older tokens).
#[test]
fn signing_key_policy_refuses_rsa_2048_only_for_our_own_units() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "min.cnf",
        b"[req]\ndistinguished_name = dn\nx509_extensions = none\nprompt = no\n[dn]\n[none]\n",
    );
    let make = |bits: &str| {
        let out = format!("rsa{bits}.pem");
        openssl_ok(
            d,
            &[
                "req",
                "-x509",
                "-new",
                "-config",
                "min.cnf",
                "-newkey",
                &format!("rsa:{bits}"),
                "-nodes",
                "-keyout",
                "/dev/null",
                "-sha256",
                "-days",
                "30",
                "-subj",
                "/C=JP/O=Old City/CN=Old City TSA",
                "-addext",
                "extendedKeyUsage=critical,timeStamping",
                "-addext",
                "keyUsage=critical,digitalSignature",
                "-out",
                &out,
            ],
        );
        Certificate::from_pem(&std::fs::read_to_string(d.join(&out)).unwrap()).unwrap()
    };
    let old = make("2048");
    check_tsa_certificate(&old, now()).unwrap();
    let e = check_signing_key_policy(&old).unwrap_err();
    assert!(matches!(e, CertError::WeakKey(_)), "{e}");
    assert!(
        e.to_string().contains("RSA-2048") && e.to_string().contains("3072"),
        "{e}"
    );
    check_signing_key_policy(&make("3072")).unwrap();
    let ec = openssl_cert(d, "ec-leaf", "/C=JP/O=City/CN=City TSA", &[]);
    check_signing_key_policy(&ec).unwrap();
}
