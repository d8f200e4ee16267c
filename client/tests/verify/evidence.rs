//! `verify_evidence` over archive time-stamps issued by `hanko-tsa` on a manual clock:
//! a renewal in time verifies, each step saying its TSA, algorithms, chain and until when
//! it was relied on; a record relied on after its last TSA certificate expired, a renewal
//! after the renewed time-stamp's certificate expired, time-stamps out of order and a
//! token over another root are each refused, naming the time-stamp.

use std::time::SystemTime;

use hanko_client::{Error, EvidenceStep, request, verify_evidence};
use hanko_pki::HashAlgorithm;
use rasn_cms::tsp::TimeStampResp;

use super::{DAY, Fixture, fixture, fixture_at};

/// A token (ContentInfo DER) of `f` over `root` (SHA-256 imprint), issued now on its
/// clock.
async fn archive_stamp(f: &Fixture, root: &[u8]) -> Vec<u8> {
    let req = request::build(HashAlgorithm::Sha256, root.to_vec(), None, None, true).unwrap();
    let der = f.tsa.respond(&request::encode(&req).unwrap()).await.der;
    let resp: TimeStampResp = rasn::der::decode(&der).unwrap();
    rasn::der::encode(&resp.time_stamp_token.expect("granted")).unwrap()
}

fn step<'a>(chain: usize, index: usize, imprint: &'a [u8], token: &'a [u8]) -> EvidenceStep<'a> {
    EvidenceStep {
        chain,
        index,
        hash: HashAlgorithm::Sha256,
        imprint,
        token_der: token,
    }
}

#[tokio::test]
async fn each_archive_time_stamp_valid_when_the_next_renewed_it_and_the_last_now() {
    let start = SystemTime::now();
    let f = fixture().await; // TSA certificate valid until start + 10 days
    let roots = [f.root.clone()];
    let (root0, root1) = (
        HashAlgorithm::Sha256.digest(b"batch root"),
        HashAlgorithm::Sha256.digest(b"renewal root"),
    );
    let t0 = archive_stamp(&f, &root0).await;
    f.clock.advance(5 * DAY);
    let t1 = archive_stamp(&f, &root1).await;
    let steps = [step(0, 0, &root0, &t0), step(0, 1, &root1, &t1)];

    let v = verify_evidence(&steps, &roots, &[], start + 6 * DAY).unwrap();
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].relied_until, v[1].token.gen_time);
    assert!(
        v[0].relied_until_text
            .starts_with("the genTime of archive time-stamp 1 of chain 0 ("),
        "{}",
        v[0].relied_until_text
    );
    assert_eq!(v[1].relied_until_text, "now");
    assert_eq!(v[1].relied_until, start + 6 * DAY);
    let line = v[0].line();
    assert!(line.starts_with("chain 0 time-stamp 0: "), "{line}");
    assert!(line.contains("imprint sha256"), "{line}");
    assert!(
        line.contains(&format!("signature {}", v[0].token.signature_algorithm)),
        "{line}"
    );
    assert!(
        line.contains(&format!(
            "chain {} <- {}",
            f.tsa_cert.subject_string(),
            f.root.subject_string()
        )),
        "{line}"
    );

    // Relied on now, after the last TSA certificate expired: not valid now.
    let e = verify_evidence(&steps, &roots, &[], start + 11 * DAY).unwrap_err();
    let Error::ArchiveTimeStamp {
        chain: 0,
        index: 1,
        source,
    } = &e
    else {
        panic!("{e}")
    };
    assert!(
        matches!(&**source, Error::NotValidWhenReliedOn { when, .. } if when == "now"),
        "{e}"
    );

    // Out of order: the renewal first.
    let swapped = [step(0, 0, &root1, &t1), step(0, 1, &root0, &t0)];
    let e = verify_evidence(&swapped, &roots, &[], start + 6 * DAY).unwrap_err();
    assert!(
        matches!(e, Error::ArchiveTimeStampsOutOfOrder { chain: 0, index: 1 }),
        "{e}"
    );

    // A token over another root than the record's tree leads to.
    let wrong = [step(0, 0, &root1, &t0)];
    let e = verify_evidence(&wrong, &roots, &[], start + DAY).unwrap_err();
    assert!(
        matches!(&e, Error::ArchiveTimeStamp { source, .. }
            if matches!(**source, Error::ImprintNotOfTheData(_))),
        "{e}"
    );
}

#[tokio::test]
async fn a_renewal_after_the_certificate_expired_is_too_late() {
    let start = SystemTime::now();
    let f = fixture().await; // TSA certificate valid until start + 10 days
    // Another TSA, twenty days on: its certificates are valid then, the first's not.
    let later = fixture_at(start + 20 * DAY).await;
    let roots = [f.root.clone(), later.root.clone()];
    let (root0, root1) = (
        HashAlgorithm::Sha256.digest(b"batch root"),
        HashAlgorithm::Sha256.digest(b"renewal root"),
    );
    let t0 = archive_stamp(&f, &root0).await;
    let t1 = archive_stamp(&later, &root1).await;
    let steps = [step(0, 0, &root0, &t0), step(0, 1, &root1, &t1)];
    let e = verify_evidence(&steps, &roots, &[], start + 21 * DAY).unwrap_err();
    let Error::ArchiveTimeStamp {
        chain: 0,
        index: 0,
        source,
    } = &e
    else {
        panic!("{e}")
    };
    let Error::NotValidWhenReliedOn { subject, when } = &**source else {
        panic!("{e}")
    };
    assert_eq!(subject, &f.tsa_cert.subject_string());
    assert!(when.contains("archive time-stamp 1 of chain 0"), "{when}");
    assert!(e.to_string().contains("renewal came too late"), "{e}");
    // Each token alone verifies at its own genTime.
    assert!(verify_evidence(&steps[..1], &roots, &[], start + DAY).is_ok());
    assert!(verify_evidence(&steps[1..], &roots, &[], start + 21 * DAY).is_ok());
}
