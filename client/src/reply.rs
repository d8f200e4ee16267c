//! Reading a TSA's reply to a request just sent: refused (with the status in words), or
//! granted with a token that answers *this* request (same imprint and nonce, and the
//! policy asked for). This is the quick check `hanko stamp` makes before it writes the
//! token; the full check is [`crate::verify()`].

use anyhow::{anyhow, ensure};
use rasn_cms::tsp::{PkiStatus, TimeStampReq, TimeStampResp};

use crate::token;

/// What the TSA answered.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A token that answers the request.
    Granted(Granted),
    /// No token: the status, failure info and status text in words, e.g.
    /// `Rejection (badAlg): unsupported hash`.
    Refused(String),
}

/// A granted token, with the fields a summary shows.
#[derive(Clone, Debug)]
pub struct Granted {
    /// TSTInfo.serialNumber, hex (`0x...`).
    pub serial: String,
    /// genTime as encoded (GeneralizedTime text).
    pub gen_time_text: String,
    /// TSTInfo.policy.
    pub policy: String,
}

/// Decodes `response_der` and, when granted, checks that its token answers `request`.
pub fn check(response_der: &[u8], request: &TimeStampReq) -> anyhow::Result<Reply> {
    let resp: TimeStampResp = rasn::der::decode(response_der)
        .map_err(|e| anyhow!("the reply is not a DER TimeStampResp: {e}"))?;
    if !matches!(
        resp.status.status,
        PkiStatus::Granted | PkiStatus::GrantedWithMods
    ) {
        return Ok(Reply::Refused(token::describe_status(&resp)));
    }
    let parsed = token::parse(response_der)?;
    let tst = &parsed.tst;
    ensure!(
        tst.message_imprint == request.message_imprint,
        "the token's messageImprint is not the one sent"
    );
    ensure!(
        tst.nonce == request.nonce,
        "the token's nonce is not the one sent"
    );
    if let Some(p) = &request.req_policy {
        ensure!(
            &tst.policy == p,
            "the token's policy {} is not the one asked for",
            tst.policy
        );
    }
    Ok(Reply::Granted(Granted {
        serial: token::int_hex(&tst.serial_number),
        gen_time_text: token::gen_time_text(tst),
        policy: tst.policy.to_string(),
    }))
}
