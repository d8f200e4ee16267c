//! Offline verification of an RFC 3161 time-stamp token, one step per function, in this
//! order (the first failing step is the error):
//!
//! ```text
//!   TimeStampResp granted -> SignedData (one SignerInfo) -> TSTInfo      token::parse
//!   TSTInfo v1; imprint = H(data)                          check_imprint_is_of_the_data
//!   nonce / policy / imprint = the request's; certReq -> certificates   check_answers_request
//!   exactly one SignerInfo; content-type and message-digest attributes  signer::*
//!   the signer certificate named by sid; ESSCertIDv2 certHash = H(its DER)
//!   the signature over the signed attributes, their bytes as received
//!   exactly one, critical extendedKeyUsage = {timeStamping}             chain::check_timestamping_eku
//!   chain to a trust anchor, each signature checked, each certificate
//!   valid at genTime                                                    chain::build
//! ```
//!
//! Nothing here is shared with `hanko-tsa`'s builder (see the crate docs). CAdES
//! seals are verified by [`seal`], which reuses these steps (and this verifier for a
//! B-T seal's time-stamp).

mod chain;
pub mod evidence;
pub mod pdf;
pub mod seal;
mod signer;

use std::fmt::Write as _;
use std::time::SystemTime;

use hanko_pki::cert::Certificate;
use hanko_pki::{HashAlgorithm, SignatureAlgorithm};
use rasn::types::Integer;
use rasn_cms::tsp::{PkiStatus, TimeStampReq, TimeStampResp, TstInfo};

use crate::Error;
use crate::token::{self, ParsedToken};

/// What a verified token says.
#[derive(Clone, Debug)]
pub struct Verified {
    /// TSTInfo.serialNumber, hex.
    pub serial: String,
    /// genTime.
    pub gen_time: SystemTime,
    /// genTime as encoded (GeneralizedTime text).
    pub gen_time_text: String,
    /// TSTInfo.policy.
    pub policy: String,
    /// The TSA certificate's subject (RFC 4514).
    pub tsa_subject: String,
    /// The imprint's hash algorithm.
    pub hash: HashAlgorithm,
    /// The imprint.
    pub imprint: Vec<u8>,
    /// The nonce, hex, if any.
    pub nonce: Option<String>,
    /// The signature algorithm.
    pub signature_algorithm: SignatureAlgorithm,
    /// Subjects from the TSA certificate up to the trust anchor.
    pub chain: Vec<String>,
    /// The earliest notAfter of that chain: after it the token can no longer be
    /// verified, so an evidence record must be renewed before (RFC 4998 §5.2).
    pub chain_not_after: SystemTime,
}

impl Verified {
    /// The short human summary `hanko verify` prints.
    pub fn summary(&self) -> String {
        let mut s = String::from("Verification: OK\n");
        let _ = writeln!(s, "  serial    : {}", self.serial);
        let _ = writeln!(s, "  genTime   : {}", self.gen_time_text);
        let _ = writeln!(s, "  policy    : {}", self.policy);
        let _ = writeln!(s, "  TSA       : {}", self.tsa_subject);
        let _ = writeln!(
            s,
            "  hash      : {} {}",
            self.hash.name(),
            hex::encode(&self.imprint)
        );
        if let Some(n) = &self.nonce {
            let _ = writeln!(s, "  nonce     : {n}");
        }
        let _ = writeln!(s, "  signature : {}", self.signature_algorithm);
        let _ = writeln!(s, "  chain     : {}", self.chain.join(" <- "));
        s
    }
}

/// Verifies a DER TimeStampResp: see the module docs for every check. `data_digest`
/// hashes the time-stamped data with the token's algorithm; `query` is the DER request
/// if at hand; `roots` are the trust anchors; `untrusted` helps build the chain.
pub fn verify(
    response_der: &[u8],
    data_digest: &dyn Fn(HashAlgorithm) -> Result<Vec<u8>, Error>,
    query: Option<&[u8]>,
    roots: &[Certificate],
    untrusted: &[Certificate],
) -> Result<Verified, Error> {
    verify_also_at(response_der, data_digest, query, roots, untrusted, None)
}

/// [`verify`], and with `also_at` = `(t, what t is)` the chain also valid at `t` (an
/// archive time-stamp relied on until the next one's genTime, or now).
fn verify_also_at(
    response_der: &[u8],
    data_digest: &dyn Fn(HashAlgorithm) -> Result<Vec<u8>, Error>,
    query: Option<&[u8]>,
    roots: &[Certificate],
    untrusted: &[Certificate],
    also_at: Option<(SystemTime, &str)>,
) -> Result<Verified, Error> {
    if roots.is_empty() {
        return Err(Error::NoTrustAnchor);
    }
    let p = granted_token(response_der)?;
    let tst = &p.tst;
    let (hash, imprint) = check_imprint_is_of_the_data(tst, data_digest)?;
    if let Some(q) = query {
        check_answers_request(q, &p)?;
    }

    let si = signer::the_only_signer_info(&p.signed_data)?;
    let attrs = signer::SignedAttrs::of(si)?;
    let digest_alg = signer::check_content_attributes(si, &attrs, &p.tst_der)?;

    let pool = signer::certificate_pool(&p.certificates, untrusted)?;
    let signer = signer::find_signer_certificate(&p.sid_der, &pool)?;
    signer::check_ess_cert_id_names(&attrs, &signer)?;
    let sig_alg = signer::check_signature(si, digest_alg, &signer, &p.signed_attrs_set)?;

    let gen_time = token::gen_time_of(tst)?;
    chain::check_timestamping_eku(&signer)?;
    let path = chain::path(&signer, &pool, roots, gen_time)?;
    let chain = path.iter().map(Certificate::subject_string).collect();
    let chain_not_after = path
        .iter()
        .map(Certificate::not_after)
        .min()
        .unwrap_or(gen_time);
    if let Some((at, what)) = also_at {
        chain::build(&signer, &pool, roots, at).map_err(|e| match e {
            Error::NotValidAtGenTime(subject) => Error::NotValidWhenReliedOn {
                subject,
                when: what.to_owned(),
            },
            e => e,
        })?;
    }

    Ok(Verified {
        serial: token::int_hex(&tst.serial_number),
        gen_time,
        gen_time_text: token::gen_time_text(tst),
        policy: tst.policy.to_string(),
        tsa_subject: signer.subject_string(),
        hash,
        imprint,
        nonce: tst.nonce.as_ref().map(token::int_hex),
        signature_algorithm: sig_alg,
        chain,
        chain_not_after,
    })
}

/// Verifies a bare DER TimeStampToken (the CMS ContentInfo a CAdES attribute or an RFC
/// 4998 ArchiveTimeStamp carries) with every check of [`verify`] but the request's.
pub fn verify_token(
    token_der: &[u8],
    data_digest: &dyn Fn(HashAlgorithm) -> Result<Vec<u8>, Error>,
    roots: &[Certificate],
    untrusted: &[Certificate],
) -> Result<Verified, Error> {
    verify(
        &granted_response(token_der),
        data_digest,
        None,
        roots,
        untrusted,
    )
}

/// The TSA certificate a bare TimeStampToken names and carries, found without verifying
/// anything (a scheduler reading when a token's certificate expires, to renew what relies
/// on it in time). `None` when the token cannot be parsed or does not carry it.
pub fn claimed_tsa(token_der: &[u8]) -> Option<Certificate> {
    let p = token::parse(&granted_response(token_der)).ok()?;
    let pool = signer::certificate_pool(&p.certificates, &[]).ok()?;
    signer::find_signer_certificate(&p.sid_der, &pool).ok()
}

/// `TimeStampResp { status granted, timeStampToken }` around a token, so that the
/// token verifier (which takes responses) checks it unchanged.
fn granted_response(token: &[u8]) -> Vec<u8> {
    // PKIStatusInfo ::= SEQUENCE { status INTEGER 0 }
    let status: [u8; 5] = [0x30, 0x03, 0x02, 0x01, 0x00];
    let mut body = status.to_vec();
    body.extend_from_slice(token);
    hanko_pki::der::tlv(hanko_pki::der::tag::SEQUENCE, &body)
}

/// The response is a DER TimeStampResp whose status grants a token; the token taken
/// apart.
fn granted_token(response_der: &[u8]) -> Result<ParsedToken, Error> {
    let resp: TimeStampResp =
        rasn::der::decode(response_der).map_err(|e| Error::NotATimeStampResp(e.to_string()))?;
    if !matches!(
        resp.status.status,
        PkiStatus::Granted | PkiStatus::GrantedWithMods
    ) {
        return Err(Error::NoToken(token::describe_status(&resp)));
    }
    token::parse(response_der)
}

/// TSTInfo version 1, and its messageImprint is the digest of the data with the
/// imprint's algorithm (SHA-256/384/512). Returns that algorithm and the imprint.
fn check_imprint_is_of_the_data(
    tst: &TstInfo,
    data_digest: &dyn Fn(HashAlgorithm) -> Result<Vec<u8>, Error>,
) -> Result<(HashAlgorithm, Vec<u8>), Error> {
    if tst.version != Integer::from(1) {
        return Err(Error::TstInfoVersion);
    }
    let imprint_alg_oid = tst.message_imprint.hash_algorithm.algorithm.to_string();
    let hash = HashAlgorithm::from_oid(&imprint_alg_oid)
        .map_err(|_| Error::UnsupportedImprintAlgorithm(imprint_alg_oid))?;
    let imprint = tst.message_imprint.hashed_message.to_vec();
    if imprint != data_digest(hash)? {
        return Err(Error::ImprintNotOfTheData(hash.name()));
    }
    Ok((hash, imprint))
}

/// The token answers the DER request `query`: same messageImprint and nonce, the
/// policy asked for (if one was), and certificates in the token if certReq was set.
fn check_answers_request(query: &[u8], p: &ParsedToken) -> Result<(), Error> {
    let tst = &p.tst;
    let req: TimeStampReq =
        rasn::der::decode(query).map_err(|e| Error::NotATimeStampReq(e.to_string()))?;
    if req.message_imprint != tst.message_imprint {
        return Err(Error::RequestImprintDiffers);
    }
    if req.nonce != tst.nonce {
        return Err(Error::RequestNonceDiffers);
    }
    if let Some(pol) = &req.req_policy
        && *pol != tst.policy
    {
        return Err(Error::RequestPolicyDiffers {
            token: tst.policy.to_string(),
            requested: pol.to_string(),
        });
    }
    if req.cert_req && p.certificates.is_empty() {
        return Err(Error::CertReqWithoutCertificates);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn garbage_is_not_a_token() {
        let root_less: [Certificate; 0] = [];
        let e = verify(b"junk", &|_| Ok(vec![]), None, &root_less, &[]).unwrap_err();
        assert!(matches!(e, Error::NoTrustAnchor), "{e}");
    }
}
