//! [`ExternalTsa`]: the [`TimeStamper`] of B-T seals when `seal.tsa_url` names an
//! external RFC 3161 TSA instead of the server's own.
//!
//! ```text
//!   imprint ─> TimeStampReq (random nonce, certReq)      hanko_client::request
//!           ─> POST application/timestamp-query          hanko_client::transport (blocking
//!                                                          thread, seal.tsa_timeout_ms)
//!           ─> granted, same imprint and nonce            hanko_client::reply
//!           ─> with seal.tsa_ca: signature, timeStamping
//!              purpose, chain at genTime                  hanko_client::verify
//!           ─> the TimeStampToken (ContentInfo), as received
//! ```
//!
//! The token is the external TSA's, not ours: it is not written to this server's
//! issuance log (the seal that embeds it is). Every failure of the exchange (refused
//! connection, timeout, an HTTP status other than 200, `waiting` or `systemFailure`) is
//! [`TimeStampErrorKind::Unavailable`]/[`Busy`](TimeStampErrorKind::Busy)/
//! [`Timeout`](TimeStampErrorKind::Timeout): the seal is refused with a retryable 503
//! and nothing is logged. An answer that can never become right (a `rejection`, a
//! token that does not answer the request or does not verify against `seal.tsa_ca`) is
//! [`Rejected`](TimeStampErrorKind::Rejected)/[`BadResponse`](TimeStampErrorKind::BadResponse),
//! a 500 an operator must look at.
//!
//! http or https (ureq with rustls, as every client command); an https TSA's server
//! certificate is checked against `seal.tsa_tls_ca` (default: the public web PKI's
//! roots). A TLS failure (unknown issuer, wrong name) is a transport failure like a
//! refused connection: `Unavailable`, logged with its reason.

use std::time::Duration;

use hanko_client::reply::{self, Reply};
use hanko_client::{Error as ClientError, request, transport};
use hanko_pki::cert::Certificate;
use hanko_pki::der::{Cursor, tag};
use hanko_pki::{BoxFuture, HashAlgorithm};
use hanko_seal::{TimeStampError, TimeStampErrorKind, TimeStamper};

use crate::config::ExternalTsaSettings;

/// An external TSA reached over http or https.
#[derive(Clone, Debug)]
pub struct ExternalTsa {
    url: String,
    trust_anchors: Vec<Certificate>,
    timeout: Duration,
    tls: transport::Tls,
    policy: Option<String>,
}

impl ExternalTsa {
    /// The TSA of `settings`.
    pub fn new(settings: &ExternalTsaSettings) -> Self {
        Self {
            url: settings.url.clone(),
            trust_anchors: settings.trust_anchors.clone(),
            timeout: settings.timeout,
            tls: settings.tls.clone(),
            policy: settings.policy.clone(),
        }
    }

    /// Its URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// One blocking exchange: the token's DER.
    fn stamp_blocking(
        &self,
        hash: HashAlgorithm,
        imprint: &[u8],
    ) -> Result<Vec<u8>, TimeStampError> {
        let err = |kind, what: String| TimeStampError::new(kind, format!("{}: {what}", self.url));
        let req = request::build(
            hash,
            imprint.to_vec(),
            Some(request::random_nonce()),
            self.policy.as_deref(),
            true,
        )
        .map_err(|e| err(TimeStampErrorKind::BadResponse, format!("request: {e}")))?;
        let der = request::encode(&req)
            .map_err(|e| err(TimeStampErrorKind::BadResponse, format!("request: {e}")))?;
        let response = transport::post(&self.url, &der, self.timeout, &self.tls)
            .map_err(|e| transport_error(&self.url, &e))?;
        match reply::check(&response, &req) {
            Ok(Reply::Granted(_)) => {}
            Ok(Reply::Refused(status)) => {
                // waiting / systemFailure are a TSA's way of saying "not now".
                let kind = if status.contains("systemFailure") || status.starts_with("Waiting") {
                    TimeStampErrorKind::Unavailable
                } else {
                    TimeStampErrorKind::Rejected
                };
                return Err(err(kind, format!("refused: {status}")));
            }
            Err(e) => {
                return Err(err(
                    TimeStampErrorKind::BadResponse,
                    DisplayChain(&e).to_string(),
                ));
            }
        }
        if !self.trust_anchors.is_empty() {
            let digest = |h: HashAlgorithm| {
                if h == hash {
                    Ok(imprint.to_vec())
                } else {
                    Err(ClientError::UnsupportedImprintHash(h.name()))
                }
            };
            hanko_client::verify(&response, &digest, Some(&der), &self.trust_anchors, &[])
                .map_err(|e| {
                    err(
                        TimeStampErrorKind::BadResponse,
                        format!("token does not verify against its configured trust anchors: {e}"),
                    )
                })?;
        }
        token_of(&response).ok_or_else(|| {
            err(
                TimeStampErrorKind::BadResponse,
                "no timeStampToken".to_owned(),
            )
        })
    }
}

impl TimeStamper for ExternalTsa {
    fn time_stamp<'a>(
        &'a self,
        hash: HashAlgorithm,
        imprint: &'a [u8],
    ) -> BoxFuture<'a, Result<Vec<u8>, TimeStampError>> {
        Box::pin(async move {
            let this = self.clone();
            let imprint = imprint.to_vec();
            tokio::task::spawn_blocking(move || this.stamp_blocking(hash, &imprint))
                .await
                .map_err(|e| {
                    TimeStampError::new(TimeStampErrorKind::Unavailable, format!("task: {e}"))
                })?
        })
    }
}

/// A transport failure as a retryable kind: the TSA is down, slow or busy.
fn transport_error(url: &str, e: &ClientError) -> TimeStampError {
    let text = DisplayChain(e).to_string();
    let kind = match e {
        ClientError::HttpStatus { status, .. } if status.starts_with("503") => {
            TimeStampErrorKind::Busy
        }
        _ if text.to_ascii_lowercase().contains("timeout")
            || text.to_ascii_lowercase().contains("timed out") =>
        {
            TimeStampErrorKind::Timeout
        }
        _ => TimeStampErrorKind::Unavailable,
    };
    TimeStampError::new(kind, format!("POST {url}: {text}"))
}

/// An error with its sources, colon-separated.
struct DisplayChain<'a>(&'a ClientError);

impl std::fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = std::error::Error::source(self.0);
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

/// The timeStampToken of a DER TimeStampResp (its second element), as received.
fn token_of(response: &[u8]) -> Option<Vec<u8>> {
    let resp = Cursor::new(response, 0..response.len()).next_tlv()?;
    if resp.tag != tag::SEQUENCE {
        return None;
    }
    let mut fields = Cursor::new(response, resp.content);
    fields.next_tlv()?; // PKIStatusInfo
    let token = fields.next_tlv()?;
    (token.tag == tag::SEQUENCE).then(|| response.get(token.whole).map(<[u8]>::to_vec))?
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn the_token_is_the_second_element_of_the_response() {
        // TimeStampResp { PKIStatusInfo { 0 }, ContentInfo (here an empty SEQUENCE) }
        let resp = [0x30, 0x07, 0x30, 0x03, 0x02, 0x01, 0x00, 0x30, 0x00];
        assert_eq!(token_of(&resp).unwrap(), [0x30, 0x00]);
        // A refusal carries no token.
        assert!(token_of(&[0x30, 0x05, 0x30, 0x03, 0x02, 0x01, 0x02]).is_none());
        assert!(token_of(b"junk").is_none());
    }

    #[test]
    fn busy_down_and_slow_tsas_are_retryable_kinds() {
        let status = |s: &str| ClientError::HttpStatus {
            status: s.to_owned(),
            url: "http://tsa/".to_owned(),
            body: String::new(),
        };
        let kind = |e: &ClientError| transport_error("http://tsa/", e).kind();
        assert_eq!(
            kind(&status("503 Service Unavailable")),
            TimeStampErrorKind::Busy
        );
        assert_eq!(
            kind(&status("500 Internal Server Error")),
            TimeStampErrorKind::Unavailable
        );
        assert_eq!(
            kind(&ClientError::UnsupportedUrl("ftp://tsa/".into())),
            TimeStampErrorKind::Unavailable
        );
        // Each of them is a retryable seal failure.
        for k in [
            TimeStampErrorKind::Busy,
            TimeStampErrorKind::Unavailable,
            TimeStampErrorKind::Timeout,
        ] {
            let e = hanko_seal::Error::TimeStamp(TimeStampError::new(k, "x"));
            assert!(e.is_retryable(), "{k:?}");
        }
    }

    #[tokio::test]
    async fn a_tsa_that_does_not_answer_is_unavailable() {
        // A port nobody listens on: bind one, note it, close it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let tsa = ExternalTsa::new(&ExternalTsaSettings {
            url: format!("http://127.0.0.1:{port}/tsa"),
            trust_anchors: Vec::new(),
            timeout: Duration::from_secs(1),
            tls: transport::Tls::default(),
            policy: None,
        });
        let e = tsa
            .time_stamp(HashAlgorithm::Sha256, &[0; 32])
            .await
            .unwrap_err();
        assert_eq!(e.kind(), TimeStampErrorKind::Unavailable, "{e}");
        assert!(e.context().contains(&format!("127.0.0.1:{port}")), "{e}");
    }
}
