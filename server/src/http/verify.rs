//! The recipient's verification page and API (issue #20), public: no API key or client
//! certificate is asked for, as the recipient of a document has none.
//!
//! ```text
//!   GET  /verify               the page (form), ?lang=ja|en or Accept-Language
//!   GET  /verify/verify.css, /verify/verify.js   its static files (embedded)
//!   POST /verify               multipart (file, data) -> the report as HTML (no JS needed)
//!   POST /api/v1/verify        multipart (file, data) -> the report as JSON
//!
//!   POST ─> rate (per client address, as the signing routes: http.rate_limit_per_sec) 429
//!       ─> a verification slot free? (verify.max_in_flight)                            503
//!       ─> Content-Length over verify.max_upload_bytes? refused before any byte is read 413
//!       ─> body read under the same limit (streamed, cut at the limit)                 413
//!       ─> multipart: `file` (required), `data` (the detached document)             400
//!       ─> Verifier::check on a blocking thread ─> evidence seam ─> 200 report
//! ```
//!
//! Nothing uploaded is stored; the log line has the file's SHA-256, size, kind and
//! verdict only (never a name or a byte of content).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{
    ConnectInfo, DefaultBodyLimit, FromRequest as _, Multipart, Query, Request, State,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::Refusal;
use super::json_error::ApiError;
use crate::state::AppState;
use crate::verify::{BadInput, Lang, Report, Upload, page_assets};

/// The routes; the POSTs take bodies up to `verify.max_upload_bytes` plus the
/// multipart framing.
pub(super) fn routes(state: &AppState) -> Router<Arc<AppState>> {
    let limit = state.verifier.max_upload_bytes().saturating_add(FRAMING);
    Router::new()
        .route("/verify", get(page))
        .route("/verify", post(verify_html))
        .route("/verify/verify.css", get(css))
        .route("/verify/verify.js", get(js))
        .route("/api/v1/verify", post(verify_json))
        .layer(DefaultBodyLimit::max(limit))
}

/// Room for the multipart boundaries and part headers beyond the files themselves.
const FRAMING: usize = 16 * 1024;

#[derive(Debug, Deserialize)]
struct LangQuery {
    lang: Option<String>,
}

fn lang_of(q: &LangQuery, headers: &HeaderMap) -> Lang {
    let al = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    Lang::choose(q.lang.as_deref(), al)
}

async fn page(
    State(state): State<Arc<AppState>>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = lang_of(&q, &headers);
    html(
        StatusCode::OK,
        crate::verify::render_page(lang, state.verifier.max_upload_bytes()),
    )
}

async fn css() -> Response {
    static_file("text/css; charset=utf-8", page_assets::CSS)
}

async fn js() -> Response {
    static_file("text/javascript; charset=utf-8", page_assets::JS)
}

fn static_file(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("max-age=3600"),
            ),
        ],
        body,
    )
        .into_response()
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
                ),
            ),
        ],
        Html(body),
    )
        .into_response()
}

/// Why a POST was not verified.
enum Refused {
    Admission(Refusal),
    Bad(BadInput),
}

async fn verify_html(
    State(state): State<Arc<AppState>>,
    Query(q): Query<LangQuery>,
    req: Request,
) -> Response {
    let lang = lang_of(&q, req.headers());
    let limit = state.verifier.max_upload_bytes();
    match run(&state, req).await {
        Ok(report) => html(
            StatusCode::OK,
            crate::verify::render_report(lang, &report, limit),
        ),
        Err(Refused::Admission(r)) => {
            r.count();
            let mut page = html(
                r.status(),
                crate::verify::render_error(lang, BadInput::Busy, limit),
            );
            if let Some(secs) = r.retry_after_secs() {
                page.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            page
        }
        Err(Refused::Bad(b)) => html(status_of(b), crate::verify::render_error(lang, b, limit)),
    }
}

async fn verify_json(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let limit = state.verifier.max_upload_bytes();
    match run(&state, req).await {
        Ok(report) => axum::Json(report).into_response(),
        Err(Refused::Admission(r)) => ApiError::Refused(r).into_response(),
        Err(Refused::Bad(b)) => {
            let body = serde_json::json!({
                "error": "invalid_request",
                "reason": b,
                "error_description": b.message(limit),
            });
            (status_of(b), axum::Json(body)).into_response()
        }
    }
}

fn status_of(b: BadInput) -> StatusCode {
    match b {
        BadInput::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        BadInput::UnknownType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        BadInput::Busy => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// Admission, the body under its limit, the multipart fields, the check.
async fn run(state: &AppState, req: Request) -> Result<Report, Refused> {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip());
    state
        .limits
        .check_rate(peer)
        .map_err(|wait| Refused::Admission(Refusal::RateLimited { retry_after: wait }))?;
    let Some(_slot) = state.verifier.try_slot() else {
        return Err(Refused::Admission(Refusal::Overloaded));
    };
    let limit = state.verifier.max_upload_bytes();
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit.saturating_add(FRAMING)) {
        metrics::counter!("hanko_verify_total", "verdict" => "too_large").increment(1);
        return Err(Refused::Bad(BadInput::TooLarge));
    }
    let (file, data) = read_upload(req)
        .await
        .inspect_err(|b| {
            let reason: &'static str = match b {
                BadInput::TooLarge => "too_large",
                _ => "bad_input",
            };
            metrics::counter!("hanko_verify_total", "verdict" => reason).increment(1);
        })
        .map_err(Refused::Bad)?;
    if file.bytes.len() + data.as_ref().map_or(0, |d| d.bytes.len()) > limit {
        return Err(Refused::Bad(BadInput::TooLarge));
    }
    let verifier = state.verifier.clone();
    let checked = tokio::task::spawn_blocking(move || verifier.check(&file, data.as_ref()))
        .await
        .map_err(|_| Refused::Admission(Refusal::Overloaded))?;
    let mut report = match checked {
        Ok(r) => r,
        Err(b) => {
            metrics::counter!("hanko_verify_total", "verdict" => "bad_input").increment(1);
            tracing::info!(reason = ?b, "verification refused its input");
            return Err(Refused::Bad(b));
        }
    };
    state.verifier.add_evidence(&mut report).await;
    let verdict = serde_json::to_value(report.verdict)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    tracing::info!(
        sha256 = %report.file.sha256,
        size = report.file.size,
        kind = ?report.kind,
        verdict = %verdict,
        "verified an upload"
    );
    metrics::counter!("hanko_verify_total", "verdict" => verdict).increment(1);
    Ok(report)
}

/// The `file` and `data` fields; every other field is ignored.
async fn read_upload(req: Request) -> Result<(Upload, Option<Upload>), BadInput> {
    let mut mp = Multipart::from_request(req, &())
        .await
        .map_err(|_| BadInput::NotMultipart)?;
    let mut file = None;
    let mut data = None;
    loop {
        let field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(too_large_or(e.status(), BadInput::NotMultipart)),
        };
        let name = field.name().map(str::to_owned);
        let file_name = field.file_name().map(str::to_owned);
        let bytes: Bytes = match field.bytes().await {
            Ok(b) => b,
            Err(e) => return Err(too_large_or(e.status(), BadInput::NotMultipart)),
        };
        let upload = Upload {
            name: file_name,
            bytes: bytes.to_vec(),
        };
        match name.as_deref() {
            Some("file") => file = Some(upload),
            Some("data") => data = Some(upload),
            _ => {}
        }
    }
    let file = file.ok_or(BadInput::Empty)?;
    Ok((file, data))
}

fn too_large_or(status: StatusCode, other: BadInput) -> BadInput {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        BadInput::TooLarge
    } else {
        other
    }
}
