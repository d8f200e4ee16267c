//! Property tests: arbitrary bytes and mutated valid requests never panic and always
//! produce a DER TimeStampResp; a rejection carries exactly one allowed failInfo bit and
//! no token, a grant carries a token and no failInfo. Any imprint of the right length is
//! granted and echoed unchanged (CONFORMANCE A.2).

use proptest::prelude::*;
use rasn_cms::tsp::{PkiStatus, TimeStampResp};

use hanko_pki::HashAlgorithm;
use hanko_tsa::{FailureInfo, Outcome, TsaConfig};

use crate::common::{Kind, TestTsa, pki, tsa};
use crate::rejections::valid_raw;

fn check(t: &TestTsa, rt: &tokio::runtime::Runtime, input: &[u8]) {
    let resp = rt.block_on(t.tsa.respond(input));
    let decoded: TimeStampResp = rasn::der::decode(&resp.der).expect("response is DER");
    match resp.outcome {
        Outcome::Granted(_) => {
            assert_eq!(decoded.status.status, PkiStatus::Granted);
            assert!(decoded.time_stamp_token.is_some());
            assert!(decoded.status.fail_info.is_none());
        }
        Outcome::Rejected(r) => {
            assert_eq!(decoded.status.status, PkiStatus::Rejection);
            assert!(decoded.time_stamp_token.is_none());
            let bits: Vec<usize> = decoded
                .status
                .fail_info
                .expect("failInfo")
                .iter_ones()
                .collect();
            assert_eq!(bits.len(), 1);
            let fi = FailureInfo::from_bit(bits[0]).expect("allowed failInfo");
            assert_eq!(fi, r.failure_info());
        }
    }
}

fn fixture() -> (TestTsa, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    (tsa(pki(Kind::P256), TsaConfig::default()), rt)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..300)) {
        let (t, rt) = fixture();
        check(&t, &rt, &input);
    }

    #[test]
    fn mutated_requests_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..4),
        cert_req in any::<bool>(),
    ) {
        let (t, rt) = fixture();
        let mut raw = valid_raw();
        raw.cert_req = cert_req;
        let mut input = rasn::der::encode(&raw).unwrap();
        for (at, byte, op) in edits {
            if input.is_empty() { break; }
            let i = at.index(input.len());
            match op {
                0 => input[i] = byte,
                1 => input.insert(i, byte),
                2 => { input.remove(i); }
                _ => input.truncate(i),
            }
        }
        check(&t, &rt, &input);
    }

    /// CONFORMANCE A.2: the imprint is length-checked and otherwise never examined. Any
    /// bytes of the right length for SHA-256/384/512 (all zero, all 0xff, anything) are
    /// granted, and the token's messageImprint is the request's, byte-identical.
    #[test]
    fn any_imprint_of_the_right_length_is_granted_and_echoed(
        hash in prop::sample::select(HashAlgorithm::ALL.to_vec()),
        seed in proptest::collection::vec(any::<u8>(), 64),
        fill in prop::option::of(any::<u8>()),
    ) {
        let (t, rt) = fixture();
        let mut raw = valid_raw();
        let len = hash.output_len();
        let imprint: Vec<u8> = match fill {
            Some(b) => vec![b; len],
            None => seed[..len].to_vec(),
        };
        raw.message_imprint.hash_algorithm.algorithm = hanko_pki::cms::oid(hash.oid()).unwrap();
        raw.message_imprint.hashed_message = imprint.clone().into();
        let req = rasn::der::encode(&raw).unwrap();
        let resp = rt.block_on(t.tsa.respond(&req));
        let Outcome::Granted(token) = resp.outcome else {
            panic!("{hash:?}: {:?}", resp.outcome)
        };
        prop_assert_eq!(&token.imprint, &imprint);
        // The MessageImprint TLV of the request, as sent, is inside the signed TSTInfo.
        let sent = rasn::der::encode(&raw.message_imprint).unwrap();
        prop_assert!(req.windows(sent.len()).any(|w| w == sent.as_slice()));
        prop_assert!(token.tst_info_der.windows(sent.len()).any(|w| w == sent.as_slice()));
        let tst: rasn_cms::tsp::TstInfo = rasn::der::decode(&token.tst_info_der).unwrap();
        prop_assert_eq!(tst.message_imprint.hashed_message.to_vec(), imprint);
    }
}
