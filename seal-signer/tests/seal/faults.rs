//! A signer fault is a retryable error. The fault is real, not mocked: a second signing
//! pool over the SoftHSM seal key with one worker and a queue of one, hit by many seals
//! at once, answers the overflow with `SignErrorKind::Busy` at once. Every seal that
//! does come back verifies with openssl.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hanko_hsm::PoolConfig;
use hanko_pki::SignErrorKind;
use hanko_seal::{Error, Fault, RawSealRequest, SealCredential, SealRequest};

use crate::common::{Kind, cms_verify, fixture};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_signing_queue_is_a_retryable_error() {
    let f = fixture();
    let pool = PoolConfig {
        workers: 1,
        queue_depth: 1,
        call_timeout: Duration::from_secs(10),
        verify_after_sign: true,
        bulk_share: hanko_hsm::DEFAULT_BULK_SHARE,
    };
    let cred = f.credential(Kind::Rsa3072);
    let narrow = Arc::new(
        SealCredential::new(
            "seal-rsa3072-narrow",
            f.hsm_signer(Kind::Rsa3072.label(), Kind::Rsa3072.algorithm(), pool),
            cred.chain().to_vec(),
            SystemTime::now(),
        )
        .unwrap(),
    );
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..64u32 {
        let narrow = narrow.clone();
        tasks.spawn(async move {
            let doc = format!("document {i}").into_bytes();
            let req = SealRequest::check(RawSealRequest::document(&doc)).unwrap();
            (
                doc.clone(),
                narrow.seal(&req, SystemTime::now(), None).await,
            )
        });
    }
    let (mut busy, mut sealed) = (0, 0);
    while let Some(joined) = tasks.join_next().await {
        let (doc, result) = joined.unwrap();
        match result {
            Ok(seal) => {
                sealed += 1;
                let p7s = f.path(&format!("busy-{sealed}.p7s"));
                let data = f.path(&format!("busy-{sealed}.data"));
                std::fs::write(&p7s, &seal.der).unwrap();
                std::fs::write(&data, &doc).unwrap();
                cms_verify(&p7s, Some(&data)).unwrap();
            }
            Err(e) => {
                assert!(
                    matches!(&e, Error::Signer(s) if s.kind() == SignErrorKind::Busy),
                    "{e:?}"
                );
                assert_eq!(e.fault(), Fault::Retryable);
                assert!(e.is_retryable());
                busy += 1;
            }
        }
    }
    assert!(
        busy > 0,
        "no request found the queue full ({sealed} sealed)"
    );
    assert!(sealed > 0, "nothing was sealed");
}
