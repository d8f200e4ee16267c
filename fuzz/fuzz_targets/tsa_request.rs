//! Fuzzes the TimeStampReq decoder and checker, and the rejection encoder behind it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hanko_tsa::internal::fuzzing::decode_request(data);
});
