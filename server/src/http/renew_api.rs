//! `POST /api/v1/evidence/renew`: an archive sends an RFC 4998 evidence record it holds
//! (made by Hanko or another product) and gets it back renewed (issue #16; the service
//! is [`crate::renewal`]).
//!
//! ```text
//!   request ─> authorize (before the body is read): scope archive; the bulk lane   401/403
//!           ─> admit_json: rate, a bulk-lane permit, body <= MAX_BODY_BYTES  429/503/408/413
//!           ─> parse:
//!                application/octet-stream: the DER record;
//!                  ?data_hash=sha512:<hex> (repeatable) &force=true
//!                application/json: {"record":"<base64 DER>",
//!                  "data_hashes":[{"alg":"sha512","hex":".."}], "force":false}
//!                other Content-Type                                                  415
//!                bad JSON / base64 / query, unknown algorithm, bad hex, wrong length 400
//!           ─> no TSA on this server                                                 404
//!           ─> Renewer::renew: the record does not parse                             400
//!                its trees or tokens do not check / verify; a hash-tree renewal
//!                needing a data hash; a new algorithm the policy refuses             422
//!                not due (the policy says when it will be) and no force              409
//!                the own TSA's token (logged, kind archive-stamp, client = caller)   5xx
//!           ─> 200 application/octet-stream: the renewed DER record;
//!              Hanko-Renewal: time-stamp | hash-tree; Hanko-Renewal-Serial: <hex>
//! ```
//!
//! Every refusal comes before the time-stamp: nothing is issued or logged. Each request
//! is counted in `hanko_evidence_renewals_total{kind, outcome}` (`kind`: `time-stamp`,
//! `hash-tree`, or `none` when refused; `outcome`: `renewed` or the refusal's reason).

use std::sync::Arc;
use std::time::SystemTime;

use axum::Extension;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use hanko_anchor::HashAlg;
use serde::Deserialize;
use serde_json::{Value, json};

use super::archive_api::ArchiveClient;
use super::json_error::ApiError;
use crate::renewal::policy::alg_by_name;
use crate::renewal::{RenewError, RenewRequest};
use crate::state::AppState;

/// The route.
pub const PATH: &str = "/api/v1/evidence/renew";

/// Largest body: a record of up to 1 MiB (`hanko_client::transport::MAX_EVIDENCE_BYTES`)
/// in base64, with room for the rest of the JSON.
pub const MAX_BODY_BYTES: usize = (1 << 20) / 3 * 4 + 8192;

/// The route, guarded as the archive submissions are (scope `archive`, bulk lane).
pub(super) fn routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    let router = Router::new().route("/api/v1/evidence/renew", post(renew));
    super::seal::guarded(
        router,
        &state,
        MAX_BODY_BYTES,
        middleware::from_fn(super::archive_api::authorize),
    )
    .route_layer(middleware::from_fn(too_large))
}

/// Rewords admission's 413 (a body over [`MAX_BODY_BYTES`]) for evidence records, and
/// counts it; the handler itself never answers 413.
async fn too_large(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    if response.status() != StatusCode::PAYLOAD_TOO_LARGE {
        return response;
    }
    count("none", "too_large");
    ApiError::TooMuch(format!(
        "the body is larger than {MAX_BODY_BYTES} bytes: an evidence record is at most 1 MiB"
    ))
    .into_response()
}

/// The JSON form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonBody {
    record: String,
    #[serde(default)]
    data_hashes: Vec<JsonHash>,
    #[serde(default)]
    force: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonHash {
    alg: String,
    hex: String,
}

/// The request, every field checked but the record (the renewer parses it).
fn parse(
    content_type: Option<&str>,
    query: Option<&str>,
    body: &[u8],
) -> Result<RenewRequest, ApiError> {
    match super::archive_api::media_type(content_type).as_str() {
        "application/json" => {
            if query.is_some_and(|q| !q.is_empty()) {
                return Err(ApiError::BadRequest(
                    "the JSON form takes no query parameters (data_hashes and force are in \
                     the body)"
                        .to_owned(),
                ));
            }
            let b: JsonBody = serde_json::from_slice(body).map_err(|e| {
                ApiError::BadRequest(format!(
                    "the body is not {{\"record\":\"<base64>\",\"data_hashes\":[..],\
                     \"force\":..}}: {e}"
                ))
            })?;
            let record = base64::engine::general_purpose::STANDARD
                .decode(b.record.trim())
                .map_err(|_| ApiError::BadRequest("record is not base64".to_owned()))?;
            let data_hashes = b
                .data_hashes
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    data_hash(&h.alg, &h.hex)
                        .map_err(|why| ApiError::BadRequest(format!("data_hashes[{i}]: {why}")))
                })
                .collect::<Result<_, _>>()?;
            Ok(RenewRequest {
                record,
                data_hashes,
                force: b.force,
            })
        }
        "application/octet-stream" => {
            let mut req = RenewRequest {
                record: body.to_vec(),
                ..RenewRequest::default()
            };
            for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
                match pair.split_once('=') {
                    Some(("data_hash", v)) => {
                        let v = v.replace("%3A", ":").replace("%3a", ":");
                        let (alg, hex) = v.split_once(':').ok_or_else(|| {
                            ApiError::BadRequest(format!(
                                "data_hash={}: write ALG:HEX, e.g. sha512:ab12..",
                                clip(&v)
                            ))
                        })?;
                        let h = data_hash(alg, hex).map_err(|why| {
                            ApiError::BadRequest(format!("data_hash={}: {why}", clip(&v)))
                        })?;
                        req.data_hashes.push(h);
                    }
                    Some(("force", "true")) => req.force = true,
                    Some(("force", "false")) => req.force = false,
                    _ => {
                        return Err(ApiError::BadRequest(format!(
                            "unknown query parameter {:?} (data_hash=ALG:HEX, force=true|false)",
                            clip(pair)
                        )));
                    }
                }
            }
            if req.record.is_empty() {
                return Err(ApiError::BadRequest(
                    "the body is empty: send the DER evidence record".to_owned(),
                ));
            }
            Ok(req)
        }
        other => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type {other:?}: send the DER record as application/octet-stream, or \
             application/json {{\"record\":\"<base64>\",...}}"
        ))),
    }
}

/// One data hash: a known algorithm and exactly its length in hex.
fn data_hash(alg: &str, hex: &str) -> Result<(HashAlg, Vec<u8>), String> {
    let a = alg_by_name(alg).ok_or_else(|| {
        format!(
            "unknown hash algorithm {:?} (sha256, sha384, sha512)",
            clip(alg)
        )
    })?;
    let bytes = hex::decode(hex).map_err(|_| format!("not hexadecimal: {:?}", clip(hex)))?;
    if bytes.len() != a.len() {
        return Err(format!(
            "a {alg} hash is {} bytes ({} hex digits), got {} bytes",
            a.len(),
            2 * a.len(),
            bytes.len()
        ));
    }
    Ok((a, bytes))
}

/// At most 80 characters of a caller's text, for an error message.
fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

fn count(kind: &'static str, outcome: &'static str) {
    metrics::counter!("hanko_evidence_renewals_total", "kind" => kind, "outcome" => outcome)
        .increment(1);
}

/// The one mapping of a renewal refusal to the API's answer.
fn refusal(e: RenewError) -> ApiError {
    let text = e.to_string();
    match e {
        RenewError::BadRequest(_) | RenewError::Malformed(_) => ApiError::BadRequest(text),
        RenewError::Inconsistent(_) | RenewError::Unverified(_) | RenewError::Unprocessable(_) => {
            ApiError::Unprocessable(text)
        }
        RenewError::NotDue(_) => ApiError::Conflict(format!(
            "{text}; renew anyway with force (?force=true or \"force\":true)"
        )),
        RenewError::TimeStamp(r) => ApiError::TimeStamp(r),
        RenewError::Build(_) | RenewError::Internal(_) => {
            ApiError::TimeStamp(hanko_tsa::Rejection::Internal(text))
        }
    }
}

async fn renew(
    State(state): State<Arc<AppState>>,
    Extension(client): Extension<ArchiveClient>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let req = match parse(content_type, query.as_deref(), &body) {
        Ok(r) => r,
        Err(e) => {
            count("none", "bad_request");
            return e.into_response();
        }
    };
    let Some(renewer) = &state.renewal else {
        count("none", "disabled");
        return ApiError::NotEnabled(
            "evidence renewal needs the server's own TSA ([tsa] with a TSA key)".to_owned(),
        )
        .into_response();
    };
    match renewer.renew(client.name(), &req, SystemTime::now()).await {
        Ok(r) => {
            count(r.kind, "renewed");
            tracing::info!(client = %client.name(), kind = r.kind, serial = %r.serial,
                reason = %r.reason, "evidence record renewed");
            let mut resp = (StatusCode::OK, r.record).into_response();
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(hanko_client::transport::EVIDENCE_TYPE),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert("hanko-renewal", HeaderValue::from_static(r.kind));
            if let Ok(v) = HeaderValue::from_str(&r.serial) {
                h.insert("hanko-renewal-serial", v);
            }
            resp
        }
        Err(e) => {
            count("none", e.outcome());
            tracing::info!(client = %client.name(), error = %e, "evidence renewal refused");
            refusal(e).into_response()
        }
    }
}

/// The route's entry in `/openapi.json`.
pub(super) fn openapi_op() -> Value {
    use super::openapi::{admission, auth, binary, json_error, op, with};
    let mut o = op(
        "renew an RFC 4998 evidence record the caller holds (made by Hanko or another \
         product): checked (trees, every token's signature and chain to the own TSA's roots \
         or renewal.trust_anchors), then renewed by the own TSA when the renewal policy \
         ([renewal]) says it is due, or with force: a time-stamp renewal, or a hash-tree \
         renewal when a data hash under a new algorithm is given (?data_hash=ALG:HEX). \
         Always runs in the bulk lane",
        Some(crate::auth::SCOPE_ARCHIVE),
        None,
        with(
            with(
                vec![
                    (
                        "200",
                        binary(
                            "the renewed DER record (header Hanko-Renewal: time-stamp or \
                             hash-tree)",
                            hanko_client::transport::EVIDENCE_TYPE,
                        ),
                    ),
                    (
                        "400",
                        json_error(
                            "the record does not parse; malformed query or JSON, unknown \
                             algorithm, bad hex, wrong hash length",
                        ),
                    ),
                    ("404", json_error("no TSA on this server")),
                    (
                        "413",
                        json_error("the body is over its limit (a record of 1 MiB)"),
                    ),
                    (
                        "409",
                        json_error("not due under the renewal policy (it says when); no force"),
                    ),
                    (
                        "415",
                        json_error("neither application/octet-stream nor application/json"),
                    ),
                    (
                        "422",
                        json_error(
                            "the record does not check or verify (names the time-stamp and \
                             why), a hash-tree renewal is due and needs a data hash, or the \
                             new algorithm is not accepted",
                        ),
                    ),
                    (
                        "500",
                        json_error("the time-stamp failed on the server's side"),
                    ),
                ],
                auth(true),
            ),
            admission(true),
        ),
    );
    if let Some(m) = o.as_object_mut() {
        m.insert(
            "requestBody".into(),
            json!({ "required": true, "content": {
                "application/octet-stream": { "schema": {
                    "type": "string", "contentEncoding": "binary" } },
                "application/json": { "schema": { "type": "object", "required": ["record"],
                    "properties": {
                        "record": { "type": "string", "contentEncoding": "base64" },
                        "data_hashes": { "type": "array", "items": {
                            "type": "object", "required": ["alg", "hex"],
                            "properties": {
                                "alg": { "type": "string", "enum": ["sha256", "sha384", "sha512"] },
                                "hex": { "type": "string" } } } },
                        "force": { "type": "boolean" } } } },
            } }),
        );
    }
    o
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    const BIN: Option<&str> = Some("application/octet-stream");
    const JSON: Option<&str> = Some("application/json");

    fn bad(r: Result<RenewRequest, ApiError>, says: &str) {
        match r {
            Err(ApiError::BadRequest(why)) => assert!(why.contains(says), "{why}"),
            other => panic!("expected BadRequest({says}), got {other:?}"),
        }
    }

    #[test]
    fn binary_form() {
        let h = "ab".repeat(64);
        let r = parse(
            BIN,
            Some(format!("data_hash=sha512%3A{h}&force=true").as_str()),
            b"\x30\x00",
        )
        .unwrap();
        assert_eq!(r.record, b"\x30\x00");
        assert_eq!(r.data_hashes, vec![(HashAlg::Sha512, vec![0xab; 64])]);
        assert!(r.force);
        bad(parse(BIN, None, b""), "empty");
        bad(
            parse(BIN, Some("data_hash=md5:00"), b"x"),
            "unknown hash algorithm",
        );
        bad(
            parse(BIN, Some("data_hash=sha256:abcd"), b"x"),
            "got 2 bytes",
        );
        bad(
            parse(BIN, Some("data_hash=sha256:zz"), b"x"),
            "not hexadecimal",
        );
        bad(parse(BIN, Some("data_hash=sha256"), b"x"), "ALG:HEX");
        bad(
            parse(BIN, Some("force=yes"), b"x"),
            "unknown query parameter",
        );
    }

    #[test]
    fn json_form() {
        let body =
            json!({"record": "MAA=", "data_hashes": [{"alg": "sha256", "hex": "00".repeat(32)}]});
        let r = parse(JSON, None, &serde_json::to_vec(&body).unwrap()).unwrap();
        assert_eq!(r.record, b"\x30\x00");
        assert!(!r.force);
        bad(parse(JSON, None, br#"{"record":"!!"}"#), "not base64");
        bad(
            parse(JSON, None, br#"{"record":"MAA=","x":1}"#),
            "unknown field",
        );
        bad(
            parse(
                JSON,
                None,
                br#"{"record":"MAA=","data_hashes":[{"alg":"sha1","hex":"00"}]}"#,
            ),
            "data_hashes[0]: unknown hash algorithm",
        );
        bad(
            parse(JSON, Some("force=true"), b"{}"),
            "no query parameters",
        );
        assert!(matches!(
            parse(Some("text/plain"), None, b"x"),
            Err(ApiError::UnsupportedMediaType(_))
        ));
    }

    #[test]
    fn refusals_map_to_their_statuses() {
        let status = |e: RenewError| refusal(e).into_response().status().as_u16();
        assert_eq!(status(RenewError::BadRequest("x".into())), 400);
        assert_eq!(
            status(RenewError::Malformed(hanko_anchor::Error::NotDer)),
            400
        );
        assert_eq!(
            status(RenewError::Inconsistent(hanko_anchor::Error::Version)),
            422
        );
        assert_eq!(status(RenewError::Unprocessable("x".into())), 422);
        assert_eq!(status(RenewError::NotDue("x".into())), 409);
    }
}
