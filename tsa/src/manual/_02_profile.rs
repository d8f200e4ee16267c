//! # The token profile (RFC 3161, RFC 5816, EN 319 422)
//!
//! | Field | Hanko |
//! |---|---|
//! | ContentInfo | `id-signedData`, SignedData version 3, exactly one SignerInfo |
//! | eContentType | id-ct-TSTInfo, eContent present |
//! | digestAlgorithms | the signer's hash only (SHA-256 for RSA-3072 and P-256, SHA-384 for P-384) |
//! | certificates | absent unless certReq; then the TSA certificate and its chain as configured (root usually left out), original DER |
//! | SignerInfo | version 1, issuerAndSerialNumber copied from the certificate |
//! | signedAttrs | content-type, message-digest, signing-certificate-v2, CMS algorithm protection; DER-sorted SET |
//! | ESSCertIDv2 | SHA-256 over the whole certificate, hashAlgorithm omitted (DEFAULT), issuerSerial included (configurable) |
//! | signatureAlgorithm | from `hanko_pki::alg` (PKCS#1 v1.5 with NULL parameters, ECDSA without) |
//! | TSTInfo.version | 1 |
//! | policy | the requested one if offered, else the configured default (0.4.0.2023.1.1) |
//! | messageImprint | copied from the request |
//! | serialNumber | positive, at most 160 bits, from a [`crate::SerialSource`] |
//! | genTime | UTC, `Z`, precision from the accuracy, truncated, no trailing zeros |
//! | accuracy | always present: `seconds 1` or `millis n` |
//! | ordering | absent (FALSE) |
//! | nonce | echoed when present |
//! | tsa | absent by default; directoryName of the TSA certificate subject when enabled |
//! | extensions | absent, or qcStatements with esi4-qtstStatement-1 (non-critical) for the EU-qualified profile |
//!
//! ## Choices the standards leave open
//! * **Failure codes.** See [`crate::rejection`]: malformed and non-DER requests and
//!   a wrong imprint length are badDataFormat; a version other than 1 and an oversize
//!   nonce are badRequest; weak, unknown and not-configured hashes are badAlg; every
//!   request extension is unacceptedExtension; the clock is timeNotAvailable; key,
//!   signer, serial and log failures are systemFailure. PKIStatus is always 2
//!   (rejection) for these, never `waiting`.
//! * **qcStatements in TSTInfo.** EN 319 422 §9.1 defines esi4-qtstStatement-1
//!   (0.4.0.19422.1.1) as a QC statement and places it in the TSTInfo `extensions`
//!   inside a `qcStatements` extension (id-pe-qcStatements, 1.3.6.1.5.5.7.1.3), marked
//!   non-critical. Only tokens under a qualified policy should carry it; the setting is
//!   [`crate::TsaConfig::qualified`].
//! * **ESS issuerSerial.** RFC 5035 makes it optional; it is included because it lets a
//!   verifier identify the certificate when the token carries none.
//! * **CMS algorithm protection.** Included (RFC 6211, a SHOULD in CONFORMANCE B.20):
//!   it binds the digest and signature algorithms into the signature at no cost.
//! * **SignedData.certificates on certReq.** RFC 3161 requires the TSA certificate;
//!   Hanko adds the chain it was configured with, so a verifier needs only the root.
//! * **The nonce.** Any INTEGER up to 64 content octets, including negative ones, is
//!   echoed byte for byte.
