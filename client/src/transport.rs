//! Sending a TimeStampReq over HTTP (RFC 3161 §3.4): one POST of
//! `application/timestamp-query`, the reply read up to a size cap and accepted only as
//! HTTP 200 with `application/timestamp-reply`.
//!
//! Plain http only: the client is `ureq` without TLS features, to keep the `hanko`
//! binary free of a second TLS stack. An https URL is refused with a hint rather than
//! sent in the clear.

use std::time::Duration;

use crate::Error;

/// The default TSA URL of `hanko stamp` (a local `hanko serve`).
pub const DEFAULT_URL: &str = "http://127.0.0.1:3161/tsa";
/// Largest TimeStampResp accepted (a token with a chain is a few KiB).
pub const MAX_RESPONSE_BYTES: u64 = 1 << 20;

/// Refuses an https URL (this build speaks plain http only). Call it before any work
/// whose result would be thrown away.
pub fn check_url(url: &str) -> Result<(), Error> {
    if url.starts_with("https://") {
        return Err(Error::HttpsNotSupported);
    }
    Ok(())
}

/// POSTs `request_der` to `url` and returns the body of the TSA's reply: HTTP 200 with
/// Content-Type `application/timestamp-reply`, at most [`MAX_RESPONSE_BYTES`]. Any
/// other status is an error quoting the start of the body. `timeout` bounds the whole
/// exchange (at least one second).
pub fn post(url: &str, request_der: &[u8], timeout: Duration) -> Result<Vec<u8>, Error> {
    check_url(url)?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout.max(Duration::from_secs(1))))
        .http_status_as_error(false)
        .build()
        .into();
    let mut reply = agent
        .post(url)
        .header("Content-Type", "application/timestamp-query")
        .header("Accept", "application/timestamp-reply")
        .send(request_der)
        .map_err(|e| Error::Post {
            url: url.to_owned(),
            source: Box::new(e),
        })?;
    let status = reply.status();
    let content_type = reply
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = reply
        .body_mut()
        .with_config()
        .limit(MAX_RESPONSE_BYTES)
        .read_to_vec()
        .map_err(|e| Error::ReadReply(Box::new(e)))?;
    if status.as_u16() != 200 {
        let text = String::from_utf8_lossy(&body);
        return Err(Error::HttpStatus {
            status: status.to_string(),
            url: url.to_owned(),
            body: text.trim().chars().take(300).collect(),
        });
    }
    if !content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/timestamp-reply"))
    {
        return Err(Error::WrongContentType(content_type));
    }
    Ok(body)
}
