//! The one error type of `hanko-client`: every way building a request, sending it, or
//! verifying a token can fail, each variant named after what is wrong.
//!
//! The messages are what `hanko stamp` and `hanko verify` print (some name their
//! flags, `--ca`, `--query`, `--untrusted`, `--policy`, because that is where the input
//! came from). Variants that wrap an I/O, HTTP or certificate error keep it as their
//! [`source`](std::error::Error::source), so a caller printing the chain (`{:#}` with
//! anyhow) shows it after a colon; decoder messages are kept as text.

use std::path::PathBuf;

use crate::transport::DEFAULT_URL;

/// Why a request could not be made or sent, or why a token does not verify.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // --- Requests and the data's digest ---------------------------------------------
    /// The policy asked for is not a dotted OID.
    #[error("--policy {0:?} is not an OID")]
    PolicyNotAnOid(String),
    /// The imprint algorithm's OID could not be turned into an ASN.1 OID (a bug in the
    /// algorithm table).
    #[error("hash OID: {0}")]
    HashOid(String),
    /// The request could not be DER-encoded.
    #[error("encoding the request: {0}")]
    EncodeRequest(String),
    /// The file to hash could not be opened.
    #[error("cannot open {}", path.display())]
    OpenData {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file to hash could not be read.
    #[error("cannot read {}", path.display())]
    ReadData {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An imprint algorithm other than SHA-256/384/512 was asked for.
    #[error("{0} is not supported for imprints")]
    UnsupportedImprintHash(&'static str),

    // --- Transport ------------------------------------------------------------------
    /// A URL that is neither `http://` nor `https://`.
    #[error("{0:?} is not an http:// or https:// URL (e.g. {DEFAULT_URL})")]
    UnsupportedUrl(String),
    /// A TLS file (`--ca`, `--client-cert`, `--client-key`) could not be used; names
    /// the file's role, never its contents.
    #[error("{what}: {reason}")]
    TlsFile {
        /// Which file, e.g. `--ca`.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The POST failed (connection, timeout, bad URL).
    #[error("POST {url}")]
    Post {
        /// The TSA's URL.
        url: String,
        /// Why.
        source: Box<ureq::Error>,
    },
    /// The GET failed (connection, timeout, bad URL).
    #[error("GET {url}")]
    Get {
        /// The URL.
        url: String,
        /// Why.
        source: Box<ureq::Error>,
    },
    /// The reply's body could not be read (or exceeded the size cap).
    #[error("reading the reply")]
    ReadReply(#[source] Box<ureq::Error>),
    /// The server answered with an HTTP status other than 200.
    #[error("HTTP {status} from {url}: {body}")]
    HttpStatus {
        /// The status, e.g. `503 Service Unavailable`.
        status: String,
        /// The URL.
        url: String,
        /// The start of the body (300 characters at most).
        body: String,
    },
    /// The reply is not of the media type asked for.
    #[error("the reply's Content-Type is {got:?}, not {expected}")]
    WrongContentType {
        /// The Content-Type received.
        got: String,
        /// The one expected (`application/timestamp-reply`,
        /// `application/pkcs7-signature`).
        expected: &'static str,
    },

    // --- The reply to a request just sent -------------------------------------------
    /// The reply's body is not a DER TimeStampResp.
    #[error("the reply is not a DER TimeStampResp: {0}")]
    ReplyNotATimeStampResp(String),
    /// The token's messageImprint is not the one sent.
    #[error("the token's messageImprint is not the one sent")]
    ReplyImprintDiffers,
    /// The token's nonce is not the one sent.
    #[error("the token's nonce is not the one sent")]
    ReplyNonceDiffers,
    /// The token's policy is not the one asked for.
    #[error("the token's policy {0} is not the one asked for")]
    ReplyPolicyDiffers(String),

    // --- Verification: the response and its token ----------------------------------
    /// No trust anchor was given.
    #[error("no trust anchor given (--ca)")]
    NoTrustAnchor,
    /// The response is not a DER TimeStampResp.
    #[error("not a DER TimeStampResp: {0}")]
    NotATimeStampResp(String),
    /// The response's status grants nothing (the status in words).
    #[error("the response carries no token: {0}")]
    NoToken(String),
    /// The token's DER structure is broken (what, where).
    #[error("malformed token: {0}")]
    MalformedToken(String),
    /// The token's ContentInfo is not id-signedData.
    #[error("the token is not a SignedData")]
    NotSignedData,
    /// The SignedData does not decode.
    #[error("malformed SignedData: {0}")]
    MalformedSignedData(String),
    /// The SignedData's eContentType is not id-ct-TSTInfo.
    #[error("eContentType is {0}, not id-ct-TSTInfo")]
    NotTstInfo(String),
    /// The eContent does not decode as TSTInfo.
    #[error("malformed TSTInfo: {0}")]
    MalformedTstInfo(String),

    // --- Verification: TSTInfo against the data and the request ---------------------
    /// TSTInfo.version is not 1.
    #[error("TSTInfo version is not 1")]
    TstInfoVersion,
    /// The imprint's algorithm is not SHA-256/384/512.
    #[error("imprint hash algorithm {0} is not SHA-256/384/512")]
    UnsupportedImprintAlgorithm(String),
    /// The imprint is not the digest of the data given.
    #[error(
        "the token's messageImprint is not the {0} of the data: the data differs from what was time-stamped"
    )]
    ImprintNotOfTheData(&'static str),
    /// The request given is not a DER TimeStampReq.
    #[error("--query is not a DER TimeStampReq: {0}")]
    NotATimeStampReq(String),
    /// The token's messageImprint differs from the request's.
    #[error("the token's messageImprint differs from the request's")]
    RequestImprintDiffers,
    /// The token's nonce differs from the request's.
    #[error("the token's nonce differs from the request's")]
    RequestNonceDiffers,
    /// The token's policy is not the one the request asked for.
    #[error("the token's policy {token} is not the requested {requested}")]
    RequestPolicyDiffers {
        /// TSTInfo.policy.
        token: String,
        /// The request's reqPolicy.
        requested: String,
    },
    /// The request set certReq but the token has no certificates.
    #[error("the request set certReq but the token carries no certificate")]
    CertReqWithoutCertificates,

    // --- Verification: the SignerInfo -----------------------------------------------
    /// The token does not have exactly one SignerInfo.
    #[error("the token has {0} SignerInfos, not one")]
    SignerInfoCount(usize),
    /// The SignerInfo's digest algorithm is not SHA-256/384/512.
    #[error("SignerInfo digest algorithm {0} is not SHA-256/384/512")]
    UnsupportedDigestAlgorithm(String),
    /// The SignerInfo has no signed attributes.
    #[error("the SignerInfo has no signed attributes")]
    NoSignedAttributes,
    /// A required signed attribute is missing.
    #[error("signed attribute {0} is missing")]
    AttributeMissing(String),
    /// A signed attribute appears more than once.
    #[error("signed attribute {0} appears more than once")]
    AttributeRepeated(String),
    /// A signed attribute does not have exactly one value.
    #[error("attribute {oid} has {count} values, not one")]
    AttributeValueCount {
        /// The attribute.
        oid: String,
        /// How many values it has.
        count: usize,
    },
    /// The content-type attribute does not decode.
    #[error("content-type attribute: {0}")]
    MalformedContentType(String),
    /// The content-type attribute is not id-ct-TSTInfo.
    #[error("content-type attribute is {0}, not id-ct-TSTInfo")]
    ContentTypeNotTstInfo(String),
    /// The message-digest attribute does not decode.
    #[error("message-digest attribute: {0}")]
    MalformedMessageDigest(String),
    /// The message-digest attribute is not the digest of the TSTInfo.
    #[error("the message-digest attribute is not the {0} of the TSTInfo")]
    MessageDigestMismatch(&'static str),

    // --- Verification: the signer's certificate and the signature ------------------
    /// A certificate in the token does not parse.
    #[error("a certificate in the token")]
    TokenCertificate(#[source] hanko_pki::cert::CertError),
    /// No certificate at hand is the one the sid names.
    #[error(
        "the signer's certificate is neither in the token nor in --untrusted \
         (stamp with certReq, or pass the TSA certificate with --untrusted)"
    )]
    SignerCertificateNotFound,
    /// The signing-certificate-v2 attribute does not decode.
    #[error("signing-certificate-v2 attribute: {0}")]
    MalformedSigningCertificateV2(String),
    /// The signing-certificate-v2 attribute lists no certificate.
    #[error("signing-certificate-v2 names no certificate")]
    EssCertIdMissing,
    /// The ESSCertIDv2 hash algorithm is not SHA-256/384/512.
    #[error("ESSCertIDv2 hash algorithm {0} is not SHA-256/384/512")]
    UnsupportedEssCertIdHash(String),
    /// The ESSCertIDv2 certHash is not the digest of the signer's certificate.
    #[error("ESSCertIDv2 certHash is not the {0} of the signer's certificate")]
    EssCertHashMismatch(&'static str),
    /// The signature algorithm identifier could not be re-encoded.
    #[error("signature algorithm: {0}")]
    SignatureAlgorithmEncoding(String),
    /// The signature algorithm is not one we verify.
    #[error("unsupported signature algorithm: {0}")]
    UnsupportedSignatureAlgorithm(String),
    /// The signature algorithm's hash is not the SignerInfo's digest algorithm.
    #[error("the signature algorithm's hash differs from the SignerInfo's digest algorithm")]
    SignatureHashMismatch,
    /// The signature does not verify with the signer's key.
    #[error("the token's signature does not verify with the TSA certificate: {0}")]
    BadSignature(String),

    // --- Verification: the TSA certificate and its chain ---------------------------
    /// genTime is before 1970.
    #[error("genTime is before 1970")]
    GenTimeBefore1970,
    /// The TSA certificate does not have exactly one extendedKeyUsage extension.
    #[error("the TSA certificate has {0} extendedKeyUsage extensions, not one")]
    ExtendedKeyUsageCount(usize),
    /// The TSA certificate's extendedKeyUsage is not critical.
    #[error("the TSA certificate's extendedKeyUsage is not critical (RFC 3161 §2.3)")]
    ExtendedKeyUsageNotCritical,
    /// The TSA certificate's extendedKeyUsage does not decode.
    #[error("the TSA certificate's extendedKeyUsage: {0}")]
    MalformedExtendedKeyUsage(String),
    /// The TSA certificate's extendedKeyUsage is not exactly id-kp-timeStamping.
    #[error("the TSA certificate's extendedKeyUsage is not exactly id-kp-timeStamping")]
    ExtendedKeyUsageNotTimeStamping,
    /// A certificate of the chain was not valid at genTime (its subject).
    #[error("certificate {0} was not valid at genTime")]
    NotValidAtGenTime(String),
    /// An evidence record's archive time-stamp: a certificate of its chain was not valid
    /// when the record relies on it (the next time-stamp's genTime, or now; RFC 4998
    /// §5.3 and CONFORMANCE rule 67).
    #[error("certificate {subject} was not valid at {when}: renewal came too late")]
    NotValidWhenReliedOn {
        /// The certificate's subject.
        subject: String,
        /// When it was relied on, in words.
        when: String,
    },
    /// An evidence record's archive time-stamp failed (its chain and place in it).
    #[error("archive time-stamp {index} of chain {chain}: {source}")]
    ArchiveTimeStamp {
        /// Its chain (0-based).
        chain: usize,
        /// Its place in the chain (0-based).
        index: usize,
        /// Why.
        source: Box<Error>,
    },
    /// An evidence record's archive time-stamps are not in ascending genTime order.
    #[error("archive time-stamp {index} of chain {chain} is older than the one before it")]
    ArchiveTimeStampsOutOfOrder {
        /// Its chain (0-based).
        chain: usize,
        /// Its place in the chain (0-based).
        index: usize,
    },
    /// No certificate at hand issued this one (its subject), and no trust anchor did.
    #[error(
        "no chain to the --ca root: nothing given signed {0} (wrong --ca, or \
         pass the intermediates with --untrusted)"
    )]
    NoChain(String),
    /// The chain is longer than the limit.
    #[error("the chain is longer than {0} certificates")]
    ChainTooLong(usize),

    // --- Seals (CAdES) ----------------------------------------------------------------
    /// The seal's ContentInfo is not id-signedData.
    #[error("the seal is not a CMS SignedData")]
    SealNotSignedData,
    /// The seal's DER structure is broken (what, where).
    #[error("malformed seal: {0}")]
    MalformedSeal(String),
    /// The seal does not have exactly one SignerInfo.
    #[error("the seal has {0} SignerInfos, not one")]
    SealSignerInfoCount(usize),
    /// A detached seal was given without the data it seals.
    #[error("the seal is detached: give the sealed document with --data")]
    DetachedWithoutData,
    /// The data given differs from the enveloping seal's own content.
    #[error("the seal is enveloping and its content differs from the --data given")]
    AttachedContentDiffers,
    /// An enveloping seal was expected (`--attached`) but it is detached, or the
    /// reverse.
    #[error("the seal is {found}, not {expected}")]
    SealPackaging {
        /// What was found.
        found: &'static str,
        /// What was expected.
        expected: &'static str,
    },
    /// The content-type attribute is not the eContentType.
    #[error("content-type attribute {attribute} differs from the eContentType {econtent}")]
    SealContentTypeDiffers {
        /// The attribute's value.
        attribute: String,
        /// The eContentType.
        econtent: String,
    },
    /// The message-digest attribute is not the digest of the data.
    #[error(
        "the message-digest attribute is not the {0} of the data: the data differs from what was sealed"
    )]
    SealDataMismatch(&'static str),
    /// The signing-time attribute does not decode.
    #[error("signing-time attribute: {0}")]
    MalformedSigningTime(String),
    /// The CMS algorithm protection attribute does not decode.
    #[error("CMS algorithm protection attribute: {0}")]
    MalformedAlgorithmProtection(String),
    /// The CMS algorithm protection attribute names other algorithms than the
    /// SignerInfo.
    #[error(
        "the CMS algorithm protection attribute names other algorithms than the SignerInfo (RFC 6211)"
    )]
    AlgorithmProtectionMismatch,
    /// The seal does not carry the certificate its sid names.
    #[error("the seal does not carry the signer's certificate")]
    SealSignerCertificateNotFound,
    /// The seal's signature does not verify with the seal certificate.
    #[error("the seal's signature does not verify with the seal certificate: {0}")]
    SealBadSignature(String),
    /// The seal certificate's keyUsage allows neither digitalSignature nor
    /// nonRepudiation.
    #[error("the seal certificate's keyUsage allows neither digitalSignature nor nonRepudiation")]
    SealKeyUsage,
    /// A certificate of the seal's chain was not valid at the signing time.
    #[error("certificate {0} was not valid at the signing time")]
    NotValidAtSigningTime(String),
    /// The signature-time-stamp attribute does not hold exactly one token.
    #[error("the signature-time-stamp attribute holds {0} tokens, not one")]
    TimeStampAttributeValues(usize),
    /// The B-T signature time-stamp does not verify.
    #[error("signature time-stamp: {0}")]
    SealTimeStamp(Box<Error>),
    /// The time-stamp's genTime is before the signing time.
    #[error("the signature time-stamp's genTime is before the signing time")]
    TimeStampBeforeSigningTime,

    // --- PDF (verify/pdf.rs) ---
    /// The PDF carries no signature dictionary.
    #[error("the PDF carries no seal or signature")]
    PdfNotSigned,
    /// A signature dictionary cannot be read.
    #[error("a signature in the PDF cannot be read: {0}")]
    MalformedPdfSignature(String),
}
