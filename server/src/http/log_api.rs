//! `GET /api/v1/log/{serial}`: one record of the issuance log with its stored token, for
//! authorised clients (API keys with the scope `log:read`, see [`crate::auth`]).
//!
//! What it is for: an auditor or a relying party's back office that holds a serial
//! (from a token, or from `openssl ts -reply -text`: "Serial number: 0x0A") fetches what
//! the log recorded for it, and the exact token bytes that were released.
//!
//! The serial is **hexadecimal**, as in `hanko log export` and in the log's `serial`
//! column: big-endian, case-insensitive, an optional `0x` prefix, leading zeros ignored
//! (`0a`, `0x0A` and `a` are serial 10). Decimal is not accepted, since `10` would be
//! ambiguous. `?kind=seal`, `?kind=archive-stamp` or `?kind=archive-object` looks up
//! another record kind (default `timestamp`).
//!
//! ```text
//!   200 {"seq":12,"kind":"timestamp","serial":"0c","object_hash":"<hex>","request_hash":"<hex>",
//!        "policy":"0.4.0.2023.1.1","client":"anonymous","issued_at":"2026-11-24T19:40:00.123Z",
//!        "issued_at_ns":1795549200123000000,"node_id":"node-a","chain_hash":"<hex>",
//!        "token":"<base64 DER TimeStampToken>"}          (token absent when not kept)
//!   400 malformed serial or kind   401 no / unknown key   403 key lacks log:read
//!   404 no such record             503 the log is unavailable (retry later)
//! ```
//!
//! What it does NOT do: list or search the log (that is `hanko log export`), verify
//! the chain (`hanko log verify`), or serve anything to anonymous clients. The record
//! is returned as stored; a row whose columns the schema forbids answers 500 and is
//! logged, since only tampering produces one.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use hanko_store::{MAX_SERIAL_LEN, RecordKind, StoredRecord, normalize_serial};
use serde::Serialize;

use crate::auth::{Identity, SCOPE_LOG_READ};
use crate::state::AppState;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/api/v1/log/{serial}", get(get_record))
}

/// The JSON body of a found record.
#[derive(Debug, Serialize)]
struct RecordJson {
    seq: u64,
    kind: &'static str,
    serial: String,
    object_hash: String,
    request_hash: String,
    policy: String,
    client: String,
    issued_at: String,
    issued_at_ns: i64,
    node_id: String,
    chain_hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

impl From<StoredRecord> for RecordJson {
    fn from(r: StoredRecord) -> Self {
        let issued_at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(r.issued_at_ns))
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_else(|| "invalid".to_owned());
        RecordJson {
            seq: r.seq,
            kind: r.kind.as_str(),
            serial: hex::encode(&r.serial),
            object_hash: hex::encode(r.object_hash),
            request_hash: hex::encode(&r.request_hash),
            policy: r.policy,
            client: r.client,
            issued_at,
            issued_at_ns: r.issued_at_ns,
            node_id: r.node_id,
            chain_hash: hex::encode(r.chain_hash),
            token: r
                .token
                .map(|t| base64::engine::general_purpose::STANDARD.encode(t)),
        }
    }
}

/// Parses a hexadecimal serial (optional `0x`, any case, leading zeros ignored) into the
/// stored form.
pub(super) fn parse_serial(s: &str) -> Option<Vec<u8>> {
    let hex_digits = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    if hex_digits.is_empty()
        || hex_digits.len() > 2 * MAX_SERIAL_LEN + 64
        || !hex_digits.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return None;
    }
    let padded = if hex_digits.len() % 2 == 1 {
        format!("0{hex_digits}")
    } else {
        hex_digits.to_owned()
    };
    let bytes = normalize_serial(&hex::decode(padded).ok()?);
    (bytes.len() <= MAX_SERIAL_LEN).then_some(bytes)
}

/// A record kind as a query parameter's value.
pub(super) fn parse_kind_value(v: &str) -> Result<RecordKind, String> {
    RecordKind::parse(v).ok_or_else(|| {
        format!("unknown kind {v:?} (timestamp, seal, archive-stamp, archive-object)")
    })
}

/// The `kind` query parameter (default timestamp).
fn parse_kind(query: Option<&str>) -> Result<RecordKind, String> {
    let mut kind = RecordKind::Timestamp;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("kind", v)) => kind = parse_kind_value(v).map_err(|e| e + "\n")?,
            _ => return Err(format!("unknown query parameter {pair:?} (only kind)\n")),
        }
    }
    Ok(kind)
}

fn plain(status: StatusCode, msg: impl Into<String>) -> Response {
    let mut r = (status, msg.into()).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn get_record(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path(serial): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    // Authorisation before anything about the request is looked at.
    let key = match identity.require(SCOPE_LOG_READ) {
        Ok(k) => k,
        Err(e) => return e.into_response(),
    };
    let Some(store) = &state.store else {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "no issuance log configured\n",
        );
    };
    let kind = match parse_kind(query.as_deref()) {
        Ok(k) => k,
        Err(msg) => return plain(StatusCode::BAD_REQUEST, msg),
    };
    let Some(serial) = parse_serial(&serial) else {
        return plain(
            StatusCode::BAD_REQUEST,
            "the serial must be hexadecimal (e.g. 0a or 0x0A), as in `hanko log export`\n",
        );
    };
    match store.get_by_serial(kind, &serial).await {
        Ok(Some(record)) => {
            tracing::debug!(client = %key.name(), seq = record.seq, "log record read");
            let mut r = axum::Json(RecordJson::from(record)).into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Ok(None) => plain(
            StatusCode::NOT_FOUND,
            format!("no {kind} record with serial {}\n", hex::encode(&serial)),
        ),
        Err(e @ hanko_store::Error::Corrupt { .. }) => {
            tracing::error!(error = %e, "corrupt issuance log row: run `hanko log verify`");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the stored record is corrupt; the operator has been alerted\n",
            )
        }
        Err(e) => {
            tracing::warn!(error = %e, "issuance log read failed");
            let status = if e.is_retryable() {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            plain(status, "the issuance log cannot be read right now\n")
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    use std::time::{Duration, SystemTime};

    use axum::body::Body;
    use axum::http::{HeaderMap, Request};
    use hanko_store::{NewRecord, Store, StoreOptions};
    use tower::ServiceExt as _;

    use crate::auth::{ApiKeySection, Clients, key_digest_hex};

    #[test]
    fn serials_are_hex() {
        assert_eq!(parse_serial("0a"), Some(vec![0x0a]));
        assert_eq!(parse_serial("0x0A"), Some(vec![0x0a]));
        assert_eq!(parse_serial("a"), Some(vec![0x0a]));
        assert_eq!(parse_serial("000100"), Some(vec![1, 0]));
        assert_eq!(parse_serial("0"), Some(vec![0]));
        assert_eq!(parse_serial(""), None);
        assert_eq!(parse_serial("0x"), None);
        assert_eq!(parse_serial("12g"), None);
        assert_eq!(parse_serial("-1"), None);
        assert_eq!(parse_serial(&"1".repeat(129)), None);
        assert_eq!(parse_kind(Some("kind=seal")), Ok(RecordKind::Seal));
        assert_eq!(parse_kind(None), Ok(RecordKind::Timestamp));
        assert!(parse_kind(Some("kind=x")).is_err());
        assert!(parse_kind(Some("limit=1")).is_err());
    }

    async fn get(
        state: Arc<AppState>,
        path: &str,
        auth: Option<&str>,
    ) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut req = Request::get(path);
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        let resp = crate::http::router(state)
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, headers, body.to_vec())
    }

    /// The route end to end on a real SQLite log, without HSM: status codes, challenge
    /// headers and the exact record.
    #[tokio::test]
    async fn record_lookup_needs_a_key_with_log_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(
            &dir.path().join("log.sqlite"),
            StoreOptions::with_node_id("n1"),
        )
        .await
        .unwrap();
        let token = b"token bytes".to_vec();
        let issued_at = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_795_549_200_123_456_789);
        store
            .append(NewRecord {
                kind: RecordKind::Timestamp,
                serial: vec![0x01, 0x2c],
                object_hash: NewRecord::object_hash_of(&token),
                request_hash: vec![0xab; 32],
                policy: "0.4.0.2023.1.1".into(),
                client: "anonymous".into(),
                issued_at,
                token: Some(token.clone()),
            })
            .await
            .unwrap();
        let clients = Clients::from_config(
            &[],
            &[ApiKeySection {
                name: "auditor".into(),
                sha256: key_digest_hex("good-key"),
                scopes: vec!["log:read".into()],
                credentials: Vec::new(),
            }],
            true,
        )
        .unwrap();
        let state = Arc::new(AppState {
            store: Some(store.clone()),
            clients,
            ..AppState::bare()
        });

        let (s, h, _) = get(state.clone(), "/api/v1/log/12c", None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert_eq!(h[header::WWW_AUTHENTICATE], "Bearer realm=\"hanko\"");
        let (s, h, _) = get(state.clone(), "/api/v1/log/12c", Some("Bearer bad-key")).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert!(
            h[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .contains("invalid_token")
        );
        // Even a malformed serial is not looked at before authentication.
        let (s, _, _) = get(state.clone(), "/api/v1/log/zz", None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);

        let (s, h, body) = get(state.clone(), "/api/v1/log/0x012C", Some("Bearer good-key")).await;
        assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["seq"], 1);
        assert_eq!(v["kind"], "timestamp");
        assert_eq!(v["serial"], "012c");
        assert_eq!(
            v["object_hash"],
            hex::encode(NewRecord::object_hash_of(&token))
        );
        assert_eq!(v["request_hash"], "ab".repeat(32));
        assert_eq!(v["policy"], "0.4.0.2023.1.1");
        assert_eq!(v["client"], "anonymous");
        assert_eq!(v["issued_at"], "2026-11-24T19:40:00.123456789Z");
        assert_eq!(v["issued_at_ns"], 1_795_549_200_123_456_789i64);
        assert_eq!(v["node_id"], "n1");
        assert_eq!(v["chain_hash"].as_str().unwrap().len(), 64);
        let t = base64::engine::general_purpose::STANDARD
            .decode(v["token"].as_str().unwrap())
            .unwrap();
        assert_eq!(t, token);

        let (s, _, _) = get(state.clone(), "/api/v1/log/12d", Some("Bearer good-key")).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _, _) = get(
            state.clone(),
            "/api/v1/log/12c?kind=seal",
            Some("Bearer good-key"),
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _, _) = get(state.clone(), "/api/v1/log/12x", Some("Bearer good-key")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        store.close().await;
    }
}
