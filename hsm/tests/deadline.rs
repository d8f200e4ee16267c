//! Per-call deadlines and verify-after-sign, with real SoftHSM.
//!
//! * A deadline shorter than one RSA-4096 signature (1 ms) makes every call overrun it:
//!   the job is answered with `Timeout`, the worker is abandoned and replaced, and the
//!   pool keeps answering (it never hangs, never reports `Busy`).
//! * A key pair whose public and private halves do not belong together (made with
//!   cryptoki directly, labels crossed) signs validly for the wrong public key:
//!   verify-after-sign withholds every such signature as `BadSignature`.
#![allow(clippy::unwrap_used)] // test code: a failure should stop the test loudly

mod common;

use std::time::{Duration, Instant};

use cryptoki::object::Attribute;
use hanko_hsm::PoolConfig;
use hanko_pki::{HashAlgorithm, KeyType, SignErrorKind, SignatureAlgorithm, Signer};

use common::token;

fn pool(call_timeout: Duration, verify_after_sign: bool) -> PoolConfig {
    PoolConfig {
        workers: 1,
        queue_depth: 4,
        call_timeout,
        verify_after_sign,
        bulk_share: hanko_hsm::DEFAULT_BULK_SHARE,
    }
}

async fn a_call_past_its_deadline_times_out_and_the_pool_keeps_going() {
    let t = token();
    t.hsm
        .generate_key_pair("slow-rsa4096", KeyType::Rsa { bits: 4096 })
        .unwrap();
    let alg = SignatureAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha512);
    let tight = t
        .hsm
        .signer("slow-rsa4096", alg, pool(Duration::from_millis(1), false))
        .unwrap();
    // The watchdog looks every millisecond; a call that finishes between two looks is
    // delivered, so count rather than demand every single one.
    let start = Instant::now();
    let mut timeouts = 0;
    for i in 0..12 {
        match tight.sign(b"too slow").await {
            Err(e) => {
                assert_eq!(e.kind(), SignErrorKind::Timeout, "call {i}: {e}");
                assert!(e.context().contains("slow-rsa4096"), "{e}");
                timeouts += 1;
            }
            Ok(sig) => assert_eq!(sig.len(), 512),
        }
    }
    assert!(timeouts >= 8, "only {timeouts} of 12 calls timed out");
    assert!(start.elapsed() < Duration::from_secs(5));
    // The same key with a sane deadline signs (the token itself is fine).
    let sane = t
        .hsm
        .signer("slow-rsa4096", alg, pool(Duration::from_secs(10), true))
        .unwrap();
    let sig = sane.sign(b"fine").await.unwrap();
    assert!(common::openssl_verify(
        sane.public_key_der(),
        alg,
        b"fine",
        &sig
    ));
}

async fn verify_after_sign_withholds_a_signature_that_does_not_verify() {
    let t = token();
    // Two P-256 pairs; "crossed" labels the public half of the first and the private
    // half of the second.
    for (public_label, private_label) in [("crossed", "orphan-1"), ("orphan-2", "crossed")] {
        common::raw_p256_key_pair(public_label, private_label, &[Attribute::Sensitive(true)]);
    }
    let alg = SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256);
    let checked = t
        .hsm
        .signer("crossed", alg, pool(Duration::from_secs(10), true))
        .unwrap();
    let e = checked.sign(b"message").await.unwrap_err();
    assert_eq!(e.kind(), SignErrorKind::BadSignature, "{e}");
    assert!(e.context().contains("crossed"), "{e}");
    // Without the check the token's output is handed out, and it indeed does not verify.
    let unchecked = t
        .hsm
        .signer("crossed", alg, pool(Duration::from_secs(10), false))
        .unwrap();
    let sig = unchecked.sign(b"message").await.unwrap();
    assert!(hanko_pki::verify::verify(unchecked.public_key_der(), alg, b"message", &sig).is_err());
    assert!(!common::openssl_verify(
        unchecked.public_key_der(),
        alg,
        b"message",
        &sig
    ));
}

fn main() {
    common::run(&[
        (
            "a_call_past_its_deadline_times_out_and_the_pool_keeps_going",
            || common::block_on(a_call_past_its_deadline_times_out_and_the_pool_keeps_going()),
        ),
        (
            "verify_after_sign_withholds_a_signature_that_does_not_verify",
            || common::block_on(verify_after_sign_withholds_a_signature_that_does_not_verify()),
        ),
    ]);
}
