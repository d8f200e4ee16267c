use hanko_pki::soft::{SoftKeyError, SoftwareSigner};
use hanko_pki::{HashAlgorithm, KeyType, SignatureAlgorithm, Signer};

use crate::common::{block_on, openssl, openssl_key, openssl_ok, pem, write};

const MESSAGE: &[u8] = b"Hanko: the DER of some signed attributes";

/// Has OpenSSL verify `sig` over MESSAGE with the signer's public key and algorithm.
fn openssl_verifies(signer: &SoftwareSigner, sig: &[u8]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "pub.pem",
        pem("PUBLIC KEY", signer.public_key_der()).as_bytes(),
    );
    write(d, "msg", MESSAGE);
    write(d, "sig", sig);
    let alg = signer.algorithm();
    let digest = format!("-{}", alg.hash().name());
    let mut args: Vec<&str> = match alg {
        SignatureAlgorithm::Ed25519 => vec![
            "pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin", "-in", "msg",
            "-sigfile", "sig",
        ],
        _ => vec!["dgst", &digest, "-verify", "pub.pem", "-signature", "sig"],
    };
    if let SignatureAlgorithm::RsaPss(_) = alg {
        args.extend([
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:-1", // salt length = digest length, as RFC 4055 profiles
        ]);
    }
    if !matches!(alg, SignatureAlgorithm::Ed25519) {
        args.push("msg");
    }
    let (ok, out, err) = openssl(d, &args);
    (ok, format!("{}{err}", String::from_utf8_lossy(&out)))
}

fn assert_openssl_verifies(signer: &SoftwareSigner) {
    let sig = block_on(signer.sign(MESSAGE)).unwrap();
    let (ok, out) = openssl_verifies(signer, &sig);
    assert!(ok, "{signer:?}: openssl rejected the signature: {out}");
    // And a flipped bit is rejected, so the check above means something.
    let mut bad = sig.clone();
    let i = bad.len() - 2;
    bad[i] ^= 0x01;
    assert!(
        !openssl_verifies(signer, &bad).0,
        "{signer:?}: corrupt signature accepted"
    );
}

#[test]
fn generated_ec_and_ed25519_keys_sign_and_openssl_verifies() {
    for (kt, alg) in [
        (
            KeyType::EcP256,
            SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256),
        ),
        (
            KeyType::EcP256,
            SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha384),
        ),
        (
            KeyType::EcP384,
            SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha384),
        ),
        (
            KeyType::EcP384,
            SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha512),
        ),
        (KeyType::Ed25519, SignatureAlgorithm::Ed25519),
    ] {
        let s = SoftwareSigner::generate(kt, alg).unwrap();
        assert_eq!(s.key_type(), kt);
        assert_eq!(s.algorithm(), alg);
        assert!(s.is_ready());
        assert_openssl_verifies(&s);
    }
}

#[test]
fn generated_rsa_key_signs_pkcs1_and_pss_and_openssl_verifies() {
    let s = SoftwareSigner::generate(
        KeyType::Rsa { bits: 2048 },
        SignatureAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha256),
    )
    .unwrap();
    assert_eq!(s.key_type(), KeyType::Rsa { bits: 2048 });
    assert_openssl_verifies(&s);
    let s = s
        .with_algorithm(SignatureAlgorithm::RsaPss(HashAlgorithm::Sha384))
        .unwrap();
    assert_openssl_verifies(&s);
}

#[test]
fn openssl_made_keys_load_sign_and_keep_their_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (spec, kt, algs) in [
        (
            "RSA:3072",
            KeyType::Rsa { bits: 3072 },
            vec![
                SignatureAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha256),
                SignatureAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha512),
                SignatureAlgorithm::RsaPss(HashAlgorithm::Sha256),
            ],
        ),
        (
            "P-256",
            KeyType::EcP256,
            vec![SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256)],
        ),
        (
            "P-384",
            KeyType::EcP384,
            vec![SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha384)],
        ),
        (
            "ED25519",
            KeyType::Ed25519,
            vec![SignatureAlgorithm::Ed25519],
        ),
    ] {
        let key_pem = openssl_key(d, spec);
        let file = format!("key-{}.pem", spec.replace(':', "-"));
        let openssl_spki = openssl_ok(d, &["pkey", "-in", &file, "-pubout", "-outform", "DER"]);
        for alg in algs {
            let s = SoftwareSigner::from_pkcs8_pem(&key_pem, alg).unwrap();
            assert_eq!(s.key_type(), kt, "{spec}");
            assert_eq!(
                s.public_key_der(),
                openssl_spki.as_slice(),
                "{spec}: SPKI differs"
            );
            assert_openssl_verifies(&s);
        }
    }
}

#[test]
fn exported_pkcs8_is_read_by_openssl_and_by_us() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (kt, alg) in [
        (
            KeyType::EcP256,
            SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256),
        ),
        (
            KeyType::EcP384,
            SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha384),
        ),
        (KeyType::Ed25519, SignatureAlgorithm::Ed25519),
    ] {
        let s = SoftwareSigner::generate(kt, alg).unwrap();
        let key_pem = s.to_pkcs8_pem().unwrap();
        assert!(key_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        write(d, "k.pem", key_pem.as_bytes());
        let spki = openssl_ok(d, &["pkey", "-in", "k.pem", "-pubout", "-outform", "DER"]);
        assert_eq!(
            spki,
            s.public_key_der(),
            "{kt}: openssl sees another public key"
        );
        let again = SoftwareSigner::from_pkcs8_pem(&key_pem, alg).unwrap();
        assert_eq!(again.public_key_der(), s.public_key_der());
        // Debug output never shows the key.
        let dbg = format!("{s:?}");
        assert!(
            dbg.starts_with("SoftwareSigner {") && !dbg.contains("PRIVATE"),
            "{dbg}"
        );
    }
    // RSA through OpenSSL's key (generation in debug builds is slow).
    let rsa_pem = openssl_key(d, "RSA:2048");
    let s = SoftwareSigner::from_pkcs8_pem(
        &rsa_pem,
        SignatureAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha256),
    )
    .unwrap();
    let out = s.to_pkcs8_pem().unwrap();
    write(d, "r.pem", out.as_bytes());
    let spki = openssl_ok(d, &["pkey", "-in", "r.pem", "-pubout", "-outform", "DER"]);
    assert_eq!(spki, s.public_key_der());
}

#[test]
fn wrong_inputs_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Algorithm that does not fit the key.
    let e = SoftwareSigner::generate(KeyType::EcP256, SignatureAlgorithm::Ed25519).unwrap_err();
    assert!(matches!(e, SoftKeyError::AlgorithmMismatch { .. }), "{e}");
    // RSA below 2048 bits, generated or loaded.
    let e = SoftwareSigner::generate(
        KeyType::Rsa { bits: 1024 },
        SignatureAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha256),
    )
    .unwrap_err();
    assert!(matches!(e, SoftKeyError::UnsupportedKey(_)), "{e}");
    let small = openssl_key(d, "RSA:1024");
    let e = SoftwareSigner::from_pkcs8_pem(
        &small,
        SignatureAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha256),
    )
    .unwrap_err();
    assert!(e.to_string().contains("RSA-1024"), "{e}");
    // Legacy SEC1 form: refused with its label named.
    openssl_ok(
        d,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "sec1.pem",
        ],
    );
    let sec1 = std::fs::read_to_string(d.join("sec1.pem")).unwrap();
    let e = SoftwareSigner::from_pkcs8_pem(&sec1, SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256))
        .unwrap_err();
    assert!(e.to_string().contains("EC PRIVATE KEY"), "{e}");
    // Unsupported curve.
    openssl_ok(
        d,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-521",
            "-out",
            "p521.pem",
        ],
    );
    let p521 = std::fs::read_to_string(d.join("p521.pem")).unwrap();
    let e = SoftwareSigner::from_pkcs8_pem(&p521, SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha512))
        .unwrap_err();
    assert!(matches!(e, SoftKeyError::UnsupportedKey(_)), "{e}");
    // Garbage.
    assert!(matches!(
        SoftwareSigner::from_pkcs8_pem("hello", SignatureAlgorithm::Ed25519),
        Err(SoftKeyError::Pem(_))
    ));
}
