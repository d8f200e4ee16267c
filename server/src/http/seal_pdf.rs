//! `POST /api/v1/seal/pdf?credential=NAME&level=B-B|B-T[&visible=true&page=N&rect=x,y,w,h]
//! [&certify=true][&commitment=...]`: a PDF in (`application/pdf`), the same PDF sealed
//! (PAdES, an incremental update) out.
//!
//! ```text
//!   request ─> authorize (before the body is read):
//!                API key + scope seal (auth.rs)                        401 / 403
//!                query: credential, level, visible, page, rect,
//!                       certify, commitment; nothing else              400
//!                credential configured? allowed for the key?           404 / 403
//!           ─> admit_json (http/limits.rs): rate, permit, body under its deadline and
//!                http.max_seal_pdf_body_bytes                  429 / 503 / 408 / 413
//!           ─> Sealer::seal_pdf (seal.rs): parse, refuse (encrypted, unparsable,
//!                DocMDP, page, rect: 400), seal, B-T stamp, record durable   503 / 500
//!           ─> 200 application/pdf: the original bytes, then the update
//! ```
//!
//! The same two questions as the CAdES route, asked by the same code
//! (`http/seal.rs`), and the same logging rule: nothing leaves before its record is
//! durable. The answer is streamed as the request's own bytes followed by the update,
//! so the PDF is not copied to answer.

use std::convert::Infallible;
use std::str::FromStr as _;
use std::sync::Arc;

use axum::Extension;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hanko_seal::{CommitmentType, Level, PdfSealRequest, Placement, Rect, SealCredential};
use serde::Deserialize;

use super::json_error::ApiError;
use super::seal::{
    authorized_credential, authorized_query, guarded, parse_commitment, parse_level, proceed,
};
use crate::auth::Identity;
use crate::state::AppState;

/// The media type in and out.
pub const PDF_TYPE: &str = "application/pdf";

/// The route: `authorize` first, then admission under the PDF body limit.
pub(super) fn routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    let body_limit = state.limits.settings().max_seal_pdf_body_bytes;
    let router = Router::new().route("/api/v1/seal/pdf", post(pdf));
    guarded(
        router,
        &state,
        body_limit,
        middleware::from_fn_with_state(state.clone(), authorize),
    )
}

/// The query string as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PdfQuery {
    credential: Option<String>,
    level: Option<String>,
    visible: Option<bool>,
    page: Option<u32>,
    rect: Option<String>,
    certify: Option<bool>,
    commitment: Option<String>,
}

/// What `authorize` established.
#[derive(Clone, Debug)]
struct Authorized {
    client: String,
    credential: Arc<SealCredential>,
    request: PdfSealRequest,
}

async fn authorize(
    State(state): State<Arc<AppState>>,
    query: Result<Query<PdfQuery>, QueryRejection>,
    req: Request,
    next: Next,
) -> Response {
    let authorized = authorized(&state, &Identity::of(req.extensions()), query);
    proceed(authorized, req, next).await
}

fn authorized(
    state: &AppState,
    identity: &Identity,
    query: Result<Query<PdfQuery>, QueryRejection>,
) -> Result<Authorized, ApiError> {
    let (key, q) = authorized_query(identity, query)?;
    let (client, credential) = authorized_credential(state, key, q.credential.as_deref())?;
    let level: Level = parse_level(q.level.as_deref())?;
    let commitment: Option<CommitmentType> = parse_commitment(q.commitment.as_deref())?;
    let page = q.page.unwrap_or(1);
    if page == 0 {
        return Err(ApiError::BadRequest(
            "page counts from 1 (the first page)".to_owned(),
        ));
    }
    let placement = match (q.visible.unwrap_or(false), q.rect.as_deref()) {
        (false, None) => Placement::Invisible { page },
        (false, Some(_)) => {
            return Err(ApiError::BadRequest(
                "rect is only for a visible seal (visible=true)".to_owned(),
            ));
        }
        (true, None) => {
            return Err(ApiError::BadRequest(
                "a visible seal needs rect=x,y,w,h (PDF points from the page's lower-left \
                 corner)"
                    .to_owned(),
            ));
        }
        (true, Some(r)) => {
            let rect = Rect::from_str(r).map_err(|e| ApiError::BadRequest(e.to_string()))?;
            Placement::Visible { page, rect }
        }
    };
    Ok(Authorized {
        client,
        credential,
        request: PdfSealRequest {
            level,
            placement,
            certify: q.certify.unwrap_or(false),
            commitment,
        },
    })
}

async fn pdf(
    State(state): State<Arc<AppState>>,
    Extension(a): Extension<Authorized>,
    body: Bytes,
) -> Response {
    let Some(sealer) = state.sealer.as_ref() else {
        return ApiError::UnknownCredential(a.credential.name().to_owned()).into_response();
    };
    // A credential without a seal image has no appearance: a visible seal is refused
    // with 400 (PdfError::NoAppearance) after the file and the rectangle were checked.
    let appearance = sealer.visible_seal(a.credential.name());
    match sealer
        .seal_pdf(
            &a.credential,
            &body,
            &a.request,
            &a.client,
            appearance
                .as_deref()
                .map(|v| v as &dyn hanko_seal::pades::Appearance),
        )
        .await
    {
        Ok(sealed) => {
            let len = body.len() + sealed.update.len();
            let parts = [body, Bytes::from(sealed.update)];
            let stream = futures_util::stream::iter(parts.map(Ok::<_, Infallible>));
            (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, HeaderValue::from_static(PDF_TYPE)),
                    (header::CONTENT_LENGTH, HeaderValue::from(len)),
                ],
                Body::from_stream(stream),
            )
                .into_response()
        }
        Err(e) => ApiError::Seal(e).into_response(),
    }
}
