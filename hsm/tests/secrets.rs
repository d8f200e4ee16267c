//! PINs never leak: a wrong PIN gives a clear error without the PIN in it, and a whole
//! run (token set-up, log-in, key generation, signing, failures) is captured at TRACE
//! level, together with every error string and `Debug` output, and searched for the PINs.
#![allow(clippy::unwrap_used)] // test code: a failure should stop the test loudly

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hanko_hsm::{Error, Hsm, Pin, PoolConfig};
use hanko_pki::{HashAlgorithm, KeyType, SignErrorKind, SignatureAlgorithm, Signer};

use common::{SO_PIN, USER_PIN, module_config, softhsm};

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn wrong_pin_is_clear_and_no_pin_is_ever_printed() {
    use tracing_subscriber::util::SubscriberInitExt;
    let buf = Capture(Arc::new(Mutex::new(Vec::new())));
    let writer = buf.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish()
        .try_init()
        .unwrap();

    let mut seen: Vec<String> = Vec::new();
    softhsm();

    // A wrong PIN, with nobody logged in: the token's own answer.
    let wrong = "wrong-pin-31337";
    let e = Hsm::open(module_config(), Pin::new(wrong.into())).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("C_Login: CKR_PIN_INCORRECT (token \"{}\")", common::TOKEN)
    );
    assert_eq!(e.kind(), SignErrorKind::KeyUnavailable);
    seen.push(e.to_string());
    seen.push(format!("{e:?}"));
    seen.push(hanko_pki::SignError::from(e).to_string());

    // The right PIN works; a wrong one while logged in is refused by our own check.
    let hsm = Hsm::open(module_config(), Pin::new(USER_PIN.into())).unwrap();
    let e = Hsm::open(module_config(), Pin::new(wrong.into())).unwrap_err();
    assert!(matches!(e, Error::PinMismatch(_)), "{e}");
    seen.push(e.to_string());
    seen.push(format!("{e:?}"));
    seen.push(format!("{hsm:?}"));
    seen.push(format!("{:?}", Pin::new(USER_PIN.into())));

    // Key generation, signing, and a failing signer: all logged.
    let spki = hsm
        .generate_key_pair("secret-test", KeyType::EcP256)
        .unwrap();
    let signer = hsm
        .signer(
            "secret-test",
            SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256),
            PoolConfig {
                workers: 2,
                queue_depth: 4,
                call_timeout: Duration::from_secs(10),
                verify_after_sign: true,
                bulk_share: hanko_hsm::DEFAULT_BULK_SHARE,
            },
        )
        .unwrap();
    seen.push(format!("{signer:?}"));
    let sig = signer.sign(b"hello").await.unwrap();
    assert!(!sig.is_empty() && !spki.is_empty());
    let e = hsm
        .signer(
            "secret-test",
            SignatureAlgorithm::Ed25519,
            PoolConfig::default(),
        )
        .unwrap_err();
    seen.push(e.to_string());
    let e = Hsm::init_token(
        &module_config(),
        &Pin::new(SO_PIN.into()),
        &Pin::new("1".into()),
    )
    .unwrap_err();
    seen.push(e.to_string());
    drop(signer);

    let log = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(
        log.contains("logged in to token"),
        "capture is empty?\n{log}"
    );
    assert!(log.contains("signing pool started"));
    for secret in [USER_PIN, SO_PIN, wrong] {
        assert!(!log.contains(secret), "PIN in the log:\n{log}");
        for s in &seen {
            assert!(!s.contains(secret), "PIN in {s}");
        }
    }
}

fn main() {
    common::run(&[("wrong_pin_is_clear_and_no_pin_is_ever_printed", || {
        common::block_on(wrong_pin_is_clear_and_no_pin_is_ever_printed())
    })]);
}
