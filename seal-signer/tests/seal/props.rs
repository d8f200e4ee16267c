//! Property tests, in-process: for any content, packaging and commitment, the seal's
//! message-digest is the SHA-256 of the content, eContent is the content exactly when
//! enveloping, and the signed attributes decode and re-encode to the very bytes that
//! were signed (and verify against the seal certificate's key).

use std::time::SystemTime;

use hanko_pki::HashAlgorithm;
use hanko_pki::der::tlv;
use hanko_pki::oid::dotted;
use hanko_seal::{CommitmentType, Packaging, RawSealRequest, SealRequest};
use proptest::prelude::*;

use crate::common::{Kind, contains, decode, fixture};

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_content_gives_a_consistent_seal(
        content in proptest::collection::vec(any::<u8>(), 0..2048),
        enveloping in any::<bool>(),
        commitment in proptest::option::of(0usize..6),
    ) {
        let f = fixture();
        let packaging = if enveloping { Packaging::Enveloping } else { Packaging::Detached };
        let req = SealRequest::check(RawSealRequest {
            packaging,
            commitment: commitment.map(|i| CommitmentType::ALL[i]),
            ..RawSealRequest::document(&content)
        })
        .unwrap();
        let cred = f.credential(Kind::P256);
        let seal = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(cred.seal(&req, SystemTime::now(), None))
            .unwrap();
        let d = decode(&seal);

        let digest = HashAlgorithm::Sha256.digest(&content);
        prop_assert_eq!(d.signed_attr(dotted::MESSAGE_DIGEST), vec![tlv(0x04, &digest)]);
        prop_assert_eq!(
            d.signed_data.encap_content_info.content.as_deref(),
            enveloping.then_some(content.as_slice())
        );
        let reencoded = rasn::der::encode(d.signer_info.signed_attrs.as_ref().unwrap()).unwrap();
        prop_assert_eq!(&reencoded, &seal.signed_attributes_der);
        let mut implicit = reencoded.clone();
        implicit[0] = 0xa0;
        prop_assert!(contains(&seal.der, &implicit));
        let attrs = d.signer_info.signed_attrs.as_ref().unwrap().len();
        prop_assert_eq!(attrs, 5 + usize::from(commitment.is_some()));
        prop_assert!(hanko_pki::verify::verify(
            cred.certificate().spki_der(),
            Kind::P256.algorithm(),
            &seal.signed_attributes_der,
            &d.signer_info.signature,
        )
        .is_ok());
        prop_assert_eq!(&seal.record.object_hash, &HashAlgorithm::Sha256.digest(&seal.der));
    }
}
