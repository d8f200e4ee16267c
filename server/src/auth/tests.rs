#![allow(clippy::unwrap_used, reason = "tests")]

use std::time::{Duration, SystemTime};

use axum::http::HeaderMap;
use hanko_pki::cert::Certificate;
use hanko_pki::soft::SoftwareSigner;
use hanko_pki::x509::{CertParams, CertProfile, NameAttr, build_name, issue_certificate};
use hanko_pki::{HashAlgorithm, KeyType, SignatureAlgorithm, Signer as _};
use serde::Deserialize;

use super::new_key::new_key_text;
use super::*;

fn section(name: &str, key: &str, scopes: &[&str]) -> ClientSection {
    ClientSection {
        name: name.to_owned(),
        api_key_sha256: Some(key_digest_hex(key)),
        scopes: scopes.iter().map(|x| (*x).to_owned()).collect(),
        ..ClientSection::default()
    }
}

fn clients(entries: &[(&str, &str, &[&str])]) -> anyhow::Result<Clients> {
    let s: Vec<ClientSection> = entries.iter().map(|(n, k, sc)| section(n, k, sc)).collect();
    Clients::from_config(&s, &[], true)
}

fn bearer(v: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
    h
}

/// The identity of a request with these headers and no certificate.
fn id(c: &Clients, headers: &HeaderMap) -> Identity {
    Identity::new(c.identify(&Presented::of(headers, None)))
}

fn id_cert(c: &Clients, headers: &HeaderMap, cert: &Certificate) -> Identity {
    let peer = PeerCertificate(cert.der().into());
    Identity::new(c.identify(&Presented::of(headers, Some(&peer))))
}

#[test]
fn keys_are_checked_against_digests_and_scopes() {
    let k = clients(&[("auditor", "k-audit", &["log:read"]), ("x", "k-x", &[])]).unwrap();
    assert_eq!(
        id(&k, &bearer("Bearer k-x"))
            .require(SCOPE_LOG_READ)
            .unwrap_err(),
        AuthError::InsufficientScope(SCOPE_LOG_READ)
    );
    assert_eq!(
        id(&k, &HeaderMap::new())
            .require(SCOPE_LOG_READ)
            .unwrap_err(),
        AuthError::Missing
    );
    assert_eq!(
        id(&k, &bearer("Bearer nope"))
            .require(SCOPE_LOG_READ)
            .unwrap_err(),
        AuthError::Invalid
    );
    // Another scheme presents nothing.
    assert_eq!(
        id(&k, &bearer("Basic azphdWRpdA=="))
            .require(SCOPE_LOG_READ)
            .unwrap_err(),
        AuthError::Missing
    );
    assert_eq!(
        id(&k, &bearer("Bearer"))
            .require(SCOPE_LOG_READ)
            .unwrap_err(),
        AuthError::Invalid
    );
    assert_eq!(
        id(&k, &bearer("bearer k-audit"))
            .require(SCOPE_LOG_READ)
            .unwrap()
            .name(),
        "auditor"
    );
}

#[test]
fn the_tsa_is_public_unless_closed_and_known_clients_need_its_scope() {
    let entries = [
        section("stamper", "k-tsa", &["tsa"]),
        section("auditor", "k-audit", &["log:read"]),
    ];
    let open = Clients::from_config(&entries, &[], true).unwrap();
    let closed = Clients::from_config(&entries, &[], false).unwrap();
    let none = HeaderMap::new();
    assert!(id(&open, &none).for_tsa(true).unwrap().is_none());
    assert_eq!(
        id(&closed, &none).for_tsa(false).unwrap_err(),
        AuthError::Missing
    );
    for c in [&open, &closed] {
        let tsa = c.tsa_public();
        assert_eq!(
            id(c, &bearer("Bearer k-tsa"))
                .for_tsa(tsa)
                .unwrap()
                .unwrap()
                .name(),
            "stamper"
        );
        // A client limited to the log is not a TSA client; unknown keys are refused
        // even where the TSA is public.
        assert_eq!(
            id(c, &bearer("Bearer k-audit")).for_tsa(tsa).unwrap_err(),
            AuthError::InsufficientScope(SCOPE_TSA)
        );
        assert_eq!(
            id(c, &bearer("Bearer k-wrong")).for_tsa(tsa).unwrap_err(),
            AuthError::Invalid
        );
    }
}

/// A root and two leaf certificates issued by it (software keys).
async fn test_pki() -> (Certificate, Certificate) {
    let now = SystemTime::now();
    let alg = SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256);
    let ca_key = SoftwareSigner::generate(KeyType::EcP256, alg).unwrap();
    let name = |cn: &str| {
        build_name(&[
            (NameAttr::Country, "JP"),
            (NameAttr::Organization, "Example"),
            (NameAttr::CommonName, cn),
        ])
        .unwrap()
    };
    let validity = (
        now - Duration::from_secs(60),
        now + Duration::from_secs(86_400),
    );
    let root = issue_certificate(
        &CertParams::new(
            CertProfile::RootCa,
            name("Client CA"),
            validity.0,
            validity.1,
        ),
        ca_key.public_key_der(),
        None,
        &ca_key,
    )
    .await
    .unwrap();
    let mut leaves = Vec::new();
    for cn in ["billing", "archive"] {
        let key = SoftwareSigner::generate(KeyType::EcP256, alg).unwrap();
        let leaf = issue_certificate(
            &CertParams::new(CertProfile::Seal, name(cn), validity.0, validity.1),
            key.public_key_der(),
            Some(&root),
            &ca_key,
        )
        .await
        .unwrap();
        leaves.push(leaf);
    }
    let archive = leaves.pop().unwrap();
    (leaves.pop().unwrap(), archive)
}

#[tokio::test]
async fn tls_client_certificates_map_by_fingerprint_or_subject() {
    let (billing, archive) = test_pki().await;
    let fingerprint = hex::encode(billing.fingerprint(HashAlgorithm::Sha256));
    // As `openssl x509 -fingerprint -sha256` prints it: colons, upper case.
    let openssl_style = fingerprint
        .to_ascii_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(":");
    let entries = [
        ClientSection {
            name: "billing".into(),
            tls_cert_sha256: Some(openssl_style),
            api_key_sha256: Some(key_digest_hex("k-billing")),
            scopes: vec!["tsa".into()],
            ..ClientSection::default()
        },
        ClientSection {
            name: "archive".into(),
            // Spacing differs from the certificate's own rendering.
            tls_subject: Some("CN=archive, O=Example, C=JP".into()),
            scopes: vec!["log:read".into()],
            lane: Some("bulk".into()),
            ..ClientSection::default()
        },
        section("auditor", "k-audit", &["log:read"]),
    ];
    let c = Clients::from_config(&entries, &[], true).unwrap();
    let none = HeaderMap::new();
    let b = id_cert(&c, &none, &billing);
    assert_eq!(b.require(SCOPE_TSA).unwrap().name(), "billing");
    assert_eq!(
        b.require(SCOPE_LOG_READ).unwrap_err(),
        AuthError::InsufficientScope(SCOPE_LOG_READ)
    );
    let a = id_cert(&c, &none, &archive);
    let client = a.require(SCOPE_LOG_READ).unwrap();
    assert_eq!((client.name(), client.lane()), ("archive", Lane::Bulk));
    // The certificate's key and its API key name the same client: accepted; a key of
    // another client with it: refused.
    let both = id_cert(&c, &bearer("Bearer k-billing"), &billing);
    assert_eq!(both.require(SCOPE_TSA).unwrap().name(), "billing");
    let mixed = id_cert(&c, &bearer("Bearer k-audit"), &billing);
    assert_eq!(mixed.require(SCOPE_TSA).unwrap_err(), AuthError::Invalid);

    // A certificate that verified (the TLS layer's job) but names no client: 401, even
    // on the public TSA.
    let only_audit = Clients::from_config(&entries[2..], &[], true).unwrap();
    let stranger = id_cert(&only_audit, &none, &billing);
    assert_eq!(stranger.for_tsa(true).unwrap_err(), AuthError::Invalid);
    // Bytes that are not a certificate match no subject either.
    let junk = PeerCertificate(vec![0x30, 0x00].into());
    assert_eq!(
        c.identify(&Presented::of(&none, Some(&junk))).unwrap_err(),
        AuthError::Invalid
    );
    // The client's Debug shows neither digest.
    let debug = format!("{c:?}");
    assert!(!debug.contains(&fingerprint) && !debug.contains(&key_digest_hex("k-audit")));
}

#[test]
fn a_clients_own_rate_is_its_own_bucket() {
    let mut s = section("bulk", "k", &["tsa"]);
    s.rate_limit_per_sec = Some(1);
    s.rate_limit_burst = Some(2);
    let c = Clients::from_config(&[s, section("free", "k2", &["tsa"])], &[], true).unwrap();
    let bulk = c.iter().find(|c| c.name() == "bulk").unwrap();
    assert_eq!(bulk.check_rate(), Some(Ok(())));
    assert_eq!(bulk.check_rate(), Some(Ok(())));
    let wait = bulk.check_rate().unwrap().unwrap_err();
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_secs(1),
        "{wait:?}"
    );
    let free = c.iter().find(|c| c.name() == "free").unwrap();
    assert_eq!(
        free.check_rate(),
        None,
        "no own rate: the per-address limit applies"
    );
}

#[test]
fn config_refuses_typos_duplicates_and_clients_without_identity() {
    let e = clients(&[("a", "k", &["log:raed"])]).unwrap_err();
    assert!(e.to_string().contains("unknown scope"), "{e}");
    let e = clients(&[("a", "k", &["log:read"]), ("a", "k2", &["log:read"])]).unwrap_err();
    assert!(e.to_string().contains("twice"), "{e}");
    let e = clients(&[("a", "k", &["log:read"]), ("b", "k", &["log:read"])]).unwrap_err();
    assert!(e.to_string().contains("two clients"), "{e}");
    let no_id = ClientSection {
        name: "ghost".into(),
        scopes: vec!["tsa".into()],
        ..ClientSection::default()
    };
    let e = Clients::from_config(&[no_id], &[], true).unwrap_err();
    assert!(e.to_string().contains("no identity"), "{e}");
    let mut bad = section("a", "k", &["tsa"]);
    bad.api_key_sha256 = Some("hanko_notahash".into());
    let e = Clients::from_config(&[bad], &[], true).unwrap_err();
    assert!(e.to_string().contains("64 hex digits"), "{e}");
    assert!(!e.to_string().contains("hanko_notahash"), "{e}");
    let mut bad = section("a", "k", &["tsa"]);
    bad.tls_subject = Some("not a name".into());
    let e = Clients::from_config(&[bad], &[], true).unwrap_err();
    assert!(e.to_string().contains("RFC 4514"), "{e}");
    let mut bad = section("a", "k", &["tsa"]);
    bad.lane = Some("fast".into());
    let e = Clients::from_config(&[bad], &[], true).unwrap_err();
    assert!(e.to_string().contains("\"interactive\" or \"bulk\""), "{e}");
    let mut bad = section("a", "k", &["tsa"]);
    bad.rate_limit_burst = Some(3);
    let e = Clients::from_config(&[bad], &[], true).unwrap_err();
    assert!(e.to_string().contains("rate_limit_per_sec is not"), "{e}");
    let seal = |creds: &[&str], scopes: &[&str]| {
        let mut s = section("issuer", "k", scopes);
        s.credentials = creds.iter().map(|x| (*x).to_owned()).collect();
        Clients::from_config(&[s], &[], true)
    };
    let e = seal(&["*"], &["seal"]).unwrap_err();
    assert!(e.to_string().contains("no wildcards"), "{e}");
    let e = seal(&[], &["csc"]).unwrap_err();
    assert!(e.to_string().contains("needs credentials"), "{e}");
    let e = seal(&["seal-p256"], &["log:read"]).unwrap_err();
    assert!(e.to_string().contains("neither the scope"), "{e}");
    let e = seal(&["a", "a"], &["seal"]).unwrap_err();
    assert!(e.to_string().contains("twice"), "{e}");
    let k = seal(&["seal-p256"], &["seal"]).unwrap();
    k.check_credentials_exist(&["seal-p256"]).unwrap();
    let e = k.check_credentials_exist(&["seal-rsa3072"]).unwrap_err();
    assert!(e.to_string().contains("not a configured seal key"), "{e}");
}

/// `[[api_keys]]` entries are clients: same name, key, scopes and credentials, with
/// `csc` beside `seal` and `tsa`; a name is unique across both lists.
#[test]
fn api_keys_entries_are_mapped_onto_clients() {
    let old = ApiKeySection {
        name: "issuer".into(),
        sha256: key_digest_hex("k-old"),
        scopes: vec!["seal".into()],
        credentials: vec!["seal-p256".into()],
    };
    let c = Clients::from_config(&[], std::slice::from_ref(&old), true).unwrap();
    let i = id(&c, &bearer("Bearer k-old"));
    let client = i.require(SCOPE_SEAL).unwrap();
    assert!(client.has_scope(SCOPE_CSC) && client.has_scope(SCOPE_TSA));
    assert!(client.may_use("seal-p256") && !client.may_use("seal-rsa3072"));
    assert_eq!(client.lane(), Lane::Interactive);
    let e =
        Clients::from_config(&[section("issuer", "k-new", &["tsa"])], &[old], true).unwrap_err();
    assert!(e.to_string().contains("twice"), "{e}");
}

#[test]
fn generated_keys_are_fresh_and_their_snippet_parses() {
    let a = generate_key();
    assert_ne!(a, generate_key());
    assert!(
        a.starts_with(KEY_PREFIX) && a.len() == KEY_PREFIX.len() + 43,
        "{a}"
    );
    let s = ClientSection {
        name: "auditor \"x\"".into(),
        api_key_sha256: Some(key_digest_hex(&a)),
        scopes: vec!["log:read".into(), "seal".into()],
        credentials: vec!["seal-p256".into()],
        ..ClientSection::default()
    };
    let text = new_key_text(&a, &s);
    let snippet = text.split_once("[[clients]]").unwrap().1;
    #[derive(Deserialize)]
    struct F {
        clients: Vec<ClientSection>,
    }
    let f: F = toml::from_str(&format!("[[clients]]{snippet}")).unwrap();
    let k = Clients::from_config(&f.clients, &[], true).unwrap();
    assert!(
        k.iter()
            .all(|k| k.may_use("seal-p256") && !k.may_use("seal-rsa3072"))
    );
    assert_eq!(
        id(&k, &bearer(&format!("Bearer {a}")))
            .require(SCOPE_SEAL)
            .unwrap()
            .name(),
        "auditor \"x\""
    );
    assert_eq!(
        text.matches(&a).count(),
        1,
        "the key is printed exactly once"
    );
}
