//! # Past bugs: what went wrong elsewhere, and what prevents it here
//!
//! ## Unsorted signed attributes
//! CMS signs the signed attributes as a DER `SET OF`, whose elements must be sorted by
//! their encodings (X.690 §11.6). Several signers have written them in insertion order
//! and signed those bytes; strict verifiers re-encode the SET (sorted) before checking
//! the signature, and the signature then fails. Others signed a sorted SET but wrote
//! an unsorted `[0]` into SignerInfo.
//!
//! Here: `hanko_pki::cms::signed_attributes` encodes the SET once with rasn's DER
//! encoder (which sorts), those bytes are what `Signer::sign` gets, and the same bytes,
//! with only the tag byte changed from 0x31 to 0xA0, become SignerInfo.signedAttrs. The
//! integration test `interop::check_token` decodes every token, re-encodes the
//! attributes as a SET, finds the same bytes in the token and verifies the signature
//! over the re-encoding.
//!
//! ## Trailing zeros in genTime (in-toto/witness#238)
//! DER GeneralizedTime forbids trailing zeros in the fraction and a bare `.`; a TSA that
//! formatted `time.Now()` with a fixed number of digits produced `...20.120Z`, and
//! strict clients (Go's encoding/asn1, Bouncy Castle) refused the token. Here the
//! system time is first truncated to the declared precision
//! ([`crate::TsaConfig::fraction_digits`]), then rasn writes the fraction without
//! trailing zeros and with none at all for whole seconds. Unit tests pin the text
//! (`token::tests`), and every integration token is checked for it.
//!
//! ## rasn 0.30 pitfalls (also listed in docs/architecture.md)
//! * `rasn::der::decode` accepts some BER: non-minimal lengths and integers, explicit
//!   DEFAULT values (`certReq FALSE`). A TimeStampReq is accepted only if it re-encodes
//!   to the received bytes ([`crate::request::RawTimeStampReq::from_der`]); anything else
//!   is badDataFormat. This also makes the nonce echo byte-exact.
//! * rasn_cms's TimeStampReq decodes `version` as `u64`, so version 2^64 would be a
//!   decoding error (badDataFormat) rather than badRequest: we decode our own
//!   [`crate::request::RawTimeStampReq`] with an arbitrary INTEGER.
//! * rasn's `CMS_ALGORITHM_PROTECTION` constant is wrong and
//!   `CmsAlgorithmProtection::with_signature_algorithm` rejects valid input: the OID
//!   is written out (RFC 6211: 1.2.840.113549.1.9.52) and the value built field by field.
//!   No common verifier checks this attribute, so our tests decode it.
//! * Re-encoding a decoded certificate is not always byte-identical. Certificates,
//!   the issuer name and the serial in `sid`/ESSCertIDv2 are copied from the original
//!   DER, never re-encoded; TSTInfo.tsa is only produced when the subject name survives a
//!   round trip byte for byte ([`crate::Error::TsaNameNotExact`] otherwise).
//! * rasn refuses to encode an empty `Extensions` (SIZE 1..MAX) but may decode one; an
//!   empty request extensions field is refused as badDataFormat.
//!
//! ## Lessons from sigstore/timestamp-authority
//! Its input hardening (request size caps, refusing unknown hash algorithms, a fixed
//! set of failure codes) is kept; what it lacks is kept out: it issues on whatever the
//! system clock says. Hanko's [`crate::ClockGuard`] refuses instead.
