//! Device loss and recovery with real SoftHSM 2.6.1, under a running pool.
//!
//! What SoftHSM can actually be made to do (investigated, see the crate report): it never
//! returns `CKR_DEVICE_REMOVED` or `CKR_TOKEN_NOT_PRESENT` for its file-backed tokens.
//! When the token directory disappears under open sessions, the next `C_SignInit` returns
//! `CKR_OBJECT_HANDLE_INVALID`, searches find nothing, and the objects stay lost even
//! after the directory comes back, until `C_Finalize` + `C_Initialize` reload the store.
//! The pool treats "a key found before is gone" as a device loss (`Error::KeyVanished`),
//! which drives the same supervisor as `CKR_DEVICE_REMOVED`. The test below moves the
//! token directory away, checks that signing fails with `DeviceLost` and readiness drops,
//! restores the directory and checks that the same signer recovers by itself.
//!
//! The `CK_RV` values themselves (`CKR_DEVICE_REMOVED`, `CKR_SESSION_HANDLE_INVALID`, ...)
//! are injected by the pkcs11-mock module in the reliability suite.
//!
//! This binary finalises and re-initialises SoftHSM, so it runs alone in its process; its
//! tests take a lock so they do not pull the token from under each other.
#![allow(clippy::unwrap_used)] // test code: a failure should stop the test loudly

mod common;

use std::time::{Duration, Instant};

use hanko_hsm::{HsmSigner, PoolConfig};
use hanko_pki::{HashAlgorithm, KeyType, SignErrorKind, SignatureAlgorithm, Signer};
use tokio::sync::Mutex;

use common::token;

static SERIAL: Mutex<()> = Mutex::const_new(());

const ALG: SignatureAlgorithm = SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256);

fn signer(label: &str, workers: usize) -> HsmSigner {
    let t = token();
    if t.hsm.public_key(label).unwrap().is_none() {
        t.hsm.generate_key_pair(label, KeyType::EcP256).unwrap();
    }
    t.hsm
        .signer(
            label,
            ALG,
            PoolConfig {
                workers,
                queue_depth: 32,
                call_timeout: Duration::from_secs(10),
                verify_after_sign: true,
                bulk_share: hanko_hsm::DEFAULT_BULK_SHARE,
            },
        )
        .unwrap()
}

/// Signs until it works again (the supervisor backs off up to 5 s between attempts).
async fn wait_until_signing_works(signer: &HsmSigner, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        match signer.sign(b"after recovery").await {
            Ok(sig) => {
                hanko_pki::verify::verify(signer.public_key_der(), ALG, b"after recovery", &sig)
                    .unwrap();
                return start.elapsed();
            }
            Err(e) => {
                assert_eq!(e.kind(), SignErrorKind::DeviceLost, "{e}");
                assert!(
                    start.elapsed() < within,
                    "no recovery within {within:?}: {e}"
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn token_directory_removed_and_restored() {
    let _serial = SERIAL.lock().await;
    let t = token();
    let signer = signer("lost-dir-p256", 2);
    // Both workers have their sessions and key handles.
    let warm: Vec<_> = (0..8).map(|_| signer.sign(b"warm up")).collect();
    for f in warm {
        f.await.unwrap();
    }
    assert!(signer.is_ready());

    let away = t.dir.join("tokens-away");
    std::fs::rename(&t.token_dir, &away).unwrap();

    // The first signature after the loss fails with DeviceLost, and readiness drops.
    let e = signer.sign(b"during loss").await.unwrap_err();
    assert_eq!(e.kind(), SignErrorKind::DeviceLost, "{e}");
    assert!(e.context().contains("lost-dir-p256"), "{e}");
    assert!(!signer.is_ready());
    assert!(!t.hsm.is_ready());

    // While the token is away, every request (queued or new) fails at once.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let start = Instant::now();
    let burst: Vec<_> = (0..16).map(|_| signer.sign(b"during loss")).collect();
    for f in burst {
        let e = f.await.unwrap_err();
        assert_eq!(e.kind(), SignErrorKind::DeviceLost, "{e}");
    }
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(!signer.is_ready(), "ready although the token is gone");

    std::fs::rename(&away, &t.token_dir).unwrap();
    let took = wait_until_signing_works(&signer, Duration::from_secs(15)).await;
    println!("signing resumed {took:?} after the token directory came back");
    assert!(signer.is_ready());
    assert!(t.hsm.is_ready());
    // Administrative calls work again as well.
    assert!(t.hsm.public_key("lost-dir-p256").unwrap().is_some());
}

async fn logged_out_underneath() {
    let _serial = SERIAL.lock().await;
    // One worker, so the job after the logout meets the session that has a key handle.
    let signer = signer("lost-login-p256", 1);
    signer.sign(b"before").await.unwrap();
    // Another handle on the same library logs the application out, as a token reset would:
    // the private key is no longer visible to the pool's sessions.
    let p = cryptoki::context::Pkcs11::new(hanko_pkcs11_mock::module_under_test()).unwrap();
    let slot = p
        .get_slots_with_initialized_token()
        .unwrap()
        .into_iter()
        .find(|s| p.get_token_info(*s).unwrap().label() == common::TOKEN)
        .unwrap();
    p.open_ro_session(slot).unwrap().logout().unwrap();

    // The worker's session lost the key with the login; the pool retries once on a fresh
    // session, which logs in again, so the request is served and nothing is reported.
    let before = signer.stats();
    let sig = signer.sign(b"logged out").await.unwrap();
    hanko_pki::verify::verify(signer.public_key_der(), ALG, b"logged out", &sig).unwrap();
    let after = signer.stats();
    assert_eq!(after.retries, before.retries + 1, "{after:?}");
    assert_eq!(after.retries_succeeded, before.retries_succeeded + 1);
    assert_eq!(
        after.failed_attempts_of(SignErrorKind::DeviceLost),
        before.failed_attempts_of(SignErrorKind::DeviceLost) + 1
    );
    assert_eq!(after.total_errors(), before.total_errors());
    assert!(signer.is_ready());
}

fn main() {
    common::run(&[
        ("token_directory_removed_and_restored", || {
            common::block_on(token_directory_removed_and_restored())
        }),
        ("logged_out_underneath", || {
            common::block_on(logged_out_underneath())
        }),
    ]);
}
