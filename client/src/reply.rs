//! Reading a TSA's reply to a request just sent: refused (with the status in words), or
//! granted with a token that answers *this* request (same imprint and nonce, and the
//! policy asked for). This is the quick check `hanko stamp` makes before it writes the
//! token; the full check is [`crate::verify()`].

use rasn_cms::tsp::{PkiStatus, TimeStampReq, TimeStampResp};

use crate::{Error, token};

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
pub fn check(response_der: &[u8], request: &TimeStampReq) -> Result<Reply, Error> {
    let resp: TimeStampResp = rasn::der::decode(response_der)
        .map_err(|e| Error::ReplyNotATimeStampResp(e.to_string()))?;
    if !matches!(
        resp.status.status,
        PkiStatus::Granted | PkiStatus::GrantedWithMods
    ) {
        return Ok(Reply::Refused(token::describe_status(&resp)));
    }
    let parsed = token::parse(response_der)?;
    let tst = &parsed.tst;
    if tst.message_imprint != request.message_imprint {
        return Err(Error::ReplyImprintDiffers);
    }
    if tst.nonce != request.nonce {
        return Err(Error::ReplyNonceDiffers);
    }
    if let Some(p) = &request.req_policy
        && &tst.policy != p
    {
        return Err(Error::ReplyPolicyDiffers(tst.policy.to_string()));
    }
    Ok(Reply::Granted(Granted {
        serial: token::int_hex(&tst.serial_number),
        gen_time_text: token::gen_time_text(tst),
        policy: tst.policy.to_string(),
    }))
}
