//! `GET /openapi.json`: an OpenAPI 3.1 description of every route this server serves,
//! with each status it answers and each body.
//!
//! Why written here by hand (as `serde_json` values built by a few helpers) and not
//! derived with a crate such as utoipa: most bodies are not Rust types (DER, PEM, the
//! CSC shapes read field by field), the statuses come from middleware as much as from
//! handlers, and a derive macro on 20 handlers would describe only what the handlers
//! return. What keeps it true is the test below: every documented path and method is
//! routed by [`super::router`] to that exact route, and every `.route(...)` written in
//! `http/` is documented, so a route cannot be added, renamed or removed without this
//! file following.

use std::sync::Arc;

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use super::seal::SEAL_TYPE;
use super::tsa::{QUERY_TYPE, REPLY_TYPE};
use crate::state::AppState;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/openapi.json", get(openapi))
}

async fn openapi() -> Response {
    axum::Json(document()).into_response()
}

/// A response: a description and, unless `media` is empty, a body of that type.
fn resp(description: &str, media: &str, schema: Value) -> Value {
    if media.is_empty() {
        json!({ "description": description })
    } else {
        json!({ "description": description, "content": { media: { "schema": schema } } })
    }
}

fn text(description: &str) -> Value {
    resp(description, "text/plain", json!({ "type": "string" }))
}

pub(super) fn json_error(description: &str) -> Value {
    resp(
        description,
        "application/json",
        json!({ "$ref": "#/components/schemas/Error" }),
    )
}

pub(super) fn json_object(description: &str) -> Value {
    resp(description, "application/json", json!({ "type": "object" }))
}

pub(super) fn binary(description: &str, media: &str) -> Value {
    resp(
        description,
        media,
        json!({ "type": "string", "contentEncoding": "binary" }),
    )
}

/// The refusals every signing route shares (admission, `http/limits.rs`), in text or
/// JSON.
pub(super) fn admission(json: bool) -> Vec<(&'static str, Value)> {
    let e = |d: &str| if json { json_error(d) } else { text(d) };
    vec![
        (
            "408",
            e("the body did not arrive within http.body_timeout_ms"),
        ),
        ("413", e("the body is larger than the route's limit")),
        ("429", e("the client is over its rate limit (Retry-After)")),
        (
            "503",
            e("overloaded, or the server cannot sign now (Retry-After)"),
        ),
    ]
}

/// The refusals of the client model (`crate::auth`).
pub(super) fn auth(json: bool) -> Vec<(&'static str, Value)> {
    let e = |d: &str| if json { json_error(d) } else { text(d) };
    vec![
        (
            "401",
            e("no credentials, or a key or certificate no client matches"),
        ),
        (
            "403",
            e("the client lacks the route's scope, or the credential"),
        ),
    ]
}

/// One operation.
pub(super) fn op(
    summary: &str,
    scope: Option<&str>,
    body: Option<(&str, Value)>,
    responses: Vec<(&str, Value)>,
) -> Value {
    let mut o = Map::new();
    o.insert("summary".into(), summary.into());
    if let Some(scope) = scope {
        o.insert(
            "security".into(),
            json!([{ "bearer": [scope] }, { "mutualTLS": [scope] }]),
        );
        o.insert("x-hanko-scope".into(), scope.into());
    }
    if let Some((media, schema)) = body {
        o.insert(
            "requestBody".into(),
            json!({ "required": true, "content": { media: { "schema": schema } } }),
        );
    }
    let r: Map<String, Value> = responses
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    o.insert("responses".into(), Value::Object(r));
    Value::Object(o)
}

pub(super) fn with(
    mut base: Vec<(&'static str, Value)>,
    more: Vec<(&'static str, Value)>,
) -> Vec<(&'static str, Value)> {
    base.extend(more);
    base
}

/// `POST /api/v1/archive/objects` (issue #16): two request forms, always the bulk lane.
fn archive_op() -> Value {
    let mut o = op(
        "archive objects: submit object hashes (SHA-256) to be anchored; one id per hash, \
         in order; a hash already submitted keeps its id and is not logged again. JSON \
         {hashes:[{alg,hex}]} or application/octet-stream with ?alg=sha256 (the digests \
         concatenated); at most archive.max_hashes_per_request. Always runs in the bulk \
         lane (http.max_in_flight_bulk). Evidence: GET /api/v1/evidence/sha256/{hex} once \
         the batch is anchored",
        Some(crate::auth::SCOPE_ARCHIVE),
        None,
        with(
            with(
                vec![
                    (
                        "200",
                        resp(
                            "{objects:[{id,alg,hex,status:new|existing,expected_by?,evidence}],\
                             new,existing}",
                            "application/json",
                            json!({ "type": "object", "required": ["objects", "new", "existing"] }),
                        ),
                    ),
                    (
                        "400",
                        json_error(
                            "malformed body or query, unknown algorithm, bad hex, wrong \
                             digest length, no hashes: nothing is logged",
                        ),
                    ),
                    ("404", json_error("anchoring is not enabled on this server")),
                    (
                        "415",
                        json_error("neither application/json nor application/octet-stream"),
                    ),
                    (
                        "422",
                        json_error("sha384/sha512: the trees are SHA-256 until hash-tree renewal"),
                    ),
                    ("500", json_error("the issuance log failed")),
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
                "application/json": { "schema": { "type": "object", "required": ["hashes"],
                    "properties": { "hashes": { "type": "array", "items": {
                        "type": "object", "required": ["alg", "hex"],
                        "properties": { "alg": { "type": "string", "enum": ["sha256"] },
                                        "hex": { "type": "string" } } } } } } },
                "application/octet-stream": { "schema": {
                    "type": "string", "contentEncoding": "binary" } },
            } }),
        );
    }
    o
}

/// `POST /api/v1/archive/objects/rehash` (issue #16): hash-tree renewal, bulk lane.
fn rehash_op() -> Value {
    op(
        "hash-tree renewal (RFC 4998 5.3) of archive objects this client submitted: \
         {alg:sha384|sha512, objects:[{sha256,hex}]}, hex = the object's hash under alg; \
         each object's evidence record gets a new chain over H(h(d) || H(its chains)), one \
         tree and one own-TSA time-stamp for all; every object checked before anything \
         is written; at most archive.max_hashes_per_request; bulk lane",
        Some(crate::auth::SCOPE_ARCHIVE),
        Some((
            "application/json",
            json!({ "type": "object", "required": ["alg", "objects"] }),
        )),
        with(
            with(
                vec![
                    (
                        "200",
                        json_object(
                            "{alg,run,objects:[{sha256,status:renewed|existing,evidence}],\
                             renewed,existing}",
                        ),
                    ),
                    (
                        "400",
                        json_error("malformed body, bad hex or length, duplicates"),
                    ),
                    (
                        "404",
                        json_error("not an archive object of this client, or anchoring off"),
                    ),
                    (
                        "409",
                        json_error("not anchored yet, renewed otherwise, or in progress"),
                    ),
                    (
                        "422",
                        json_error("alg is not stronger than the trees' sha256"),
                    ),
                    ("500", json_error("the issuance log failed")),
                ],
                auth(true),
            ),
            admission(true),
        ),
    )
}

/// The RFC 3161 operation, served at `/tsa` and `/`.
fn timestamp_op() -> Value {
    op(
        "RFC 3161 time-stamp: TimeStampReq in, TimeStampResp out (grants and rejections \
         alike are 200). Public unless tsa.public = false; a client presenting credentials \
         needs the scope tsa",
        None,
        Some((
            QUERY_TYPE,
            json!({ "type": "string", "contentEncoding": "binary" }),
        )),
        with(
            with(
                vec![
                    ("200", binary("a DER TimeStampResp", REPLY_TYPE)),
                    ("404", text("this server has no time-stamp authority")),
                    (
                        "415",
                        text("the Content-Type is not application/timestamp-query"),
                    ),
                ],
                auth(false),
            ),
            admission(false),
        ),
    )
}

/// The CSC operations of one version.
fn csc(paths: &mut Map<String, Value>, v: &str) {
    let req = Some(("application/json", json!({ "type": "object" })));
    let signing = |summary: &str| {
        op(
            summary,
            Some("csc"),
            req.clone(),
            with(
                with(
                    vec![
                        ("200", json_object("the method's result")),
                        ("400", json_error("a parameter is missing or invalid")),
                    ],
                    auth(true),
                ),
                admission(true),
            ),
        )
    };
    let plain = |summary: &str| {
        op(
            summary,
            Some("csc"),
            req.clone(),
            with(
                vec![
                    ("200", json_object("the method's result")),
                    ("400", json_error("a parameter is missing or invalid")),
                ],
                auth(true),
            ),
        )
    };
    let mut add = |p: &str, o: Value| {
        paths.insert(format!("/csc/{v}{p}"), json!({ "post": o }));
    };
    add(
        "/info",
        public(
            "CSC info: what this service is and which methods it serves",
            vec![("200", json_object("the service description"))],
        ),
    );
    add(
        "/credentials/list",
        plain("CSC credentials/list: the caller's credential IDs"),
    );
    add(
        "/credentials/info",
        plain("CSC credentials/info: key, certificates, SCAL, multisign"),
    );
    add(
        "/credentials/authorize",
        plain("CSC credentials/authorize: a SAD for these hashes"),
    );
    add(
        "/signatures/signHash",
        signing("CSC signatures/signHash: signatures over the caller's hashes"),
    );
    add(
        "/signatures/timestamp",
        signing("CSC signatures/timestamp: an RFC 3161 token over the caller's hash"),
    );
    if v == "v2" {
        add(
            "/signatures/signDoc",
            signing("CSC signatures/signDoc: CAdES seals of documents or digests"),
        );
    }
}

/// The recipient's verification page and API (`http/verify.rs`): public.
fn verify(paths: &mut Map<String, Value>) {
    let upload = json!({
        "type": "object",
        "required": ["file"],
        "properties": {
            "file": { "type": "string", "contentMediaType": "application/octet-stream",
                      "description": "a sealed PDF, a CAdES seal (.p7s) or an RFC 3161 \
                                      response (.tsr) or token (.tst)" },
            "data": { "type": "string", "contentMediaType": "application/octet-stream",
                      "description": "the document of a detached seal or of a time-stamp" },
        },
    });
    let refusals = |json: bool| {
        let e = |d: &str| {
            if json {
                json_error(d)
            } else {
                resp(d, "text/html", json!({ "type": "string" }))
            }
        };
        vec![
            (
                "400",
                e(
                    "empty upload, not multipart, a PDF without a signature, or a detached \
                   seal or time-stamp without its document (a plain-language message)",
                ),
            ),
            (
                "413",
                e("over verify.max_upload_bytes (refused on Content-Length before reading)"),
            ),
            ("415", e("not a file the page can check")),
            ("429", e("the client is over its rate limit (Retry-After)")),
            (
                "503",
                e("verify.max_in_flight verifications in progress (Retry-After)"),
            ),
        ]
    };
    let html = |d: &str| resp(d, "text/html", json!({ "type": "string" }));
    paths.insert(
        "/verify".into(),
        json!({
            "get": public(
                "the verification page (?lang=ja|en, else Accept-Language)",
                vec![("200", html("the page: a form for the file"))],
            ),
            "post": op(
                "verify an upload from the page's form (works without JavaScript)",
                None,
                Some(("multipart/form-data", upload.clone())),
                with(vec![("200", html("the report as a page"))], refusals(false)),
            ),
        }),
    );
    paths.insert(
        "/verify/verify.css".into(),
        json!({ "get": public("the page's stylesheet", vec![("200", resp("CSS", "text/css", json!({ "type": "string" })))]) }),
    );
    paths.insert(
        "/verify/verify.js".into(),
        json!({ "get": public("the page's optional script", vec![("200", resp("JavaScript", "text/javascript", json!({ "type": "string" })))]) }),
    );
    paths.insert(
        "/api/v1/verify".into(),
        json!({ "post": op(
            "verify a sealed PDF, a .p7s with its document, a .tsr with its file, or an \
             RFC 4998 .ers with its object (a .tsr or the sealed file): the report (verdict genuine | changed | untrusted | unknown, signer, time, \
             time-stamp, trust anchor, evidence, checks). Public; nothing is stored",
            None,
            Some(("multipart/form-data", upload)),
            with(vec![("200", json_object("the verification report"))], refusals(true)),
        ) }),
    );
}

/// An operation anybody may call, without a request body.
fn public(summary: &str, responses: Vec<(&str, Value)>) -> Value {
    op(summary, None, None, responses)
}

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    let mut get_op = |path: &str, o: Value| {
        paths.insert(path.to_owned(), json!({ "get": o }));
    };
    get_op(
        "/healthz",
        public("the process answers", vec![("200", text("ok"))]),
    );
    get_op(
        "/readyz",
        public(
            "whether the server can sign right now",
            vec![
                ("200", json_object("ready, with each part's state")),
                ("503", json_object("not ready, and why")),
            ],
        ),
    );
    get_op(
        "/metrics",
        public(
            "Prometheus metrics",
            vec![
                (
                    "200",
                    resp("the metrics", "text/plain", json!({ "type": "string" })),
                ),
                ("404", text("metrics are not installed")),
            ],
        ),
    );
    get_op(
        "/tsa/certs",
        public(
            "the TSA units' certificate chains",
            vec![
                (
                    "200",
                    resp(
                        "PEM certificates",
                        "application/pem-certificate-chain",
                        json!({ "type": "string" }),
                    ),
                ),
                ("404", text("this server has no time-stamp authority")),
            ],
        ),
    );
    get_op(
        "/tsa/policy",
        public(
            "the TSA's disclosure summary: policies, hashes, accuracy",
            vec![
                ("200", json_object("the policy document")),
                ("404", text("this server has no time-stamp authority")),
            ],
        ),
    );
    get_op(
        "/api/v1/log/{serial}",
        op(
            "one issuance-log record by hexadecimal serial (?kind=timestamp|seal|archive-stamp|archive-object)",
            Some("log:read"),
            None,
            with(
                vec![
                    (
                        "200",
                        resp(
                            "the record",
                            "application/json",
                            json!({ "$ref": "#/components/schemas/LogRecord" }),
                        ),
                    ),
                    ("400", text("malformed serial or kind")),
                    ("404", text("no such record")),
                    ("500", text("the stored record is corrupt")),
                    ("503", text("the log is unavailable")),
                ],
                auth(false),
            ),
        ),
    );
    let evidence = |by: &str| {
        public(
            &format!("the DER RFC 4998 evidence record of an issued object by {by} (?anchor=NAME)"),
            vec![
                (
                    "200",
                    binary(
                        "EvidenceRecord (DER), filename *.ers",
                        super::anchor_api::ERS_TYPE,
                    ),
                ),
                (
                    "400",
                    json_error(
                        "malformed hash, serial or query; a serial of several kinds without ?kind=",
                    ),
                ),
                (
                    "404",
                    json_error(
                        "not_found (no such object or anchor), batch_open (with expected_by) or \
                         anchor_pending (with the anchors' state)",
                    ),
                ),
                ("503", json_error("the log is unavailable")),
            ],
        )
    };
    get_op(
        "/api/v1/evidence/sha256/{hash}",
        evidence("its SHA-256 (hex)"),
    );
    get_op(
        "/api/v1/evidence/serial/{serial}",
        evidence("hexadecimal serial (?kind=timestamp|seal|archive-stamp|archive-object)"),
    );
    get_op(
        "/api/v1/batches",
        public(
            "anchor batches, newest first (?before=ID&limit=1..100)",
            vec![
                (
                    "200",
                    resp(
                        "{batches: [Batch], next_before}",
                        "application/json",
                        json!({ "type": "object", "properties": {
                            "batches": { "type": "array", "items": { "$ref": "#/components/schemas/Batch" } },
                            "next_before": { "type": ["integer", "null"] } } }),
                    ),
                ),
                ("400", json_error("malformed query")),
                ("404", json_error("anchoring is disabled")),
                ("503", json_error("the log is unavailable")),
            ],
        ),
    );
    get_op(
        "/api/v1/batches/{id}",
        public(
            "one anchor batch with its anchors",
            vec![
                (
                    "200",
                    resp(
                        "the batch",
                        "application/json",
                        json!({ "$ref": "#/components/schemas/Batch" }),
                    ),
                ),
                ("400", json_error("malformed id")),
                ("404", json_error("no such batch, or anchoring is disabled")),
                ("503", json_error("the log is unavailable")),
            ],
        ),
    );
    get_op(
        "/openapi.json",
        public("this document", vec![("200", json_object("OpenAPI 3.1"))]),
    );
    paths.insert("/tsa".into(), json!({ "post": timestamp_op() }));
    paths.insert("/".into(), json!({ "post": timestamp_op() }));
    let seal = |summary: &str, media: &str, out: Value| {
        op(
            summary,
            Some("seal"),
            Some((
                media,
                json!({ "type": "string", "contentEncoding": "binary" }),
            )),
            with(
                with(
                    vec![
                        ("200", out),
                        (
                            "400",
                            json_error("a query parameter or the document is wrong"),
                        ),
                        ("404", json_error("no seal credential of that name")),
                        ("500", json_error("the seal failed on the server's side")),
                    ],
                    auth(true),
                ),
                admission(true),
            ),
        )
    };
    paths.insert(
        "/api/v1/seal/cades".into(),
        json!({ "post": seal(
            "CAdES B-B/B-T seal of any bytes (?credential=&level=&attached=&commitment=)",
            "application/octet-stream",
            binary("DER CMS SignedData", SEAL_TYPE),
        ) }),
    );
    paths.insert(
        "/api/v1/seal/pdf".into(),
        json!({ "post": seal(
            "PAdES B-B/B-T seal of a PDF (?credential=&level=&visible=&page=&rect=&certify=)",
            "application/pdf",
            binary("the sealed PDF", "application/pdf"),
        ) }),
    );
    paths.insert(
        super::archive_api::PATH.into(),
        json!({ "post": archive_op() }),
    );
    paths.insert(
        super::renew_api::PATH.into(),
        json!({ "post": super::renew_api::openapi_op() }),
    );
    paths.insert(
        "/api/v1/archive/objects/rehash".into(),
        json!({ "post": rehash_op() }),
    );
    super::admin_api::openapi(&mut paths);
    verify(&mut paths);
    csc(&mut paths, "v1");
    csc(&mut paths, "v2");
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Hanko",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "RFC 3161 time-stamp authority and organisational e-seal service. \
                Every response carries X-Request-Id.",
        },
        "paths": Value::Object(paths),
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer",
                            "description": "a client's API key ([[clients]] api_key_sha256)" },
                "mutualTLS": { "type": "mutualTLS",
                               "description": "a client's TLS certificate ([[clients]] tls_cert_sha256 or tls_subject)" },
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "error_description"],
                    "properties": {
                        "error": { "type": "string" },
                        "error_description": { "type": "string" },
                    },
                },
                "Batch": {
                    "type": "object",
                    "required": ["id", "first_seq", "last_seq", "leaf_count", "hash_alg", "root",
                                 "closed_at", "anchors"],
                    "properties": {
                        "id": { "type": "integer" }, "first_seq": { "type": "integer" },
                        "last_seq": { "type": "integer" }, "leaf_count": { "type": "integer" },
                        "hash_alg": { "type": "string" }, "root": { "type": "string" },
                        "closed_at": { "type": "string" },
                        "anchors": { "type": "array", "items": { "type": "object",
                            "required": ["name", "state", "attempts"],
                            "properties": {
                                "name": { "type": "string" },
                                "state": { "enum": ["pending", "done"] },
                                "attempts": { "type": "integer" },
                                "anchored_at": { "type": "string" },
                                "next_attempt_at": { "type": "string" },
                                "last_error": { "type": "string" } } } },
                    },
                },
                "LogRecord": {
                    "type": "object",
                    "required": ["seq", "kind", "serial", "object_hash", "request_hash", "policy",
                                 "client", "issued_at", "issued_at_ns", "node_id", "chain_hash"],
                    "properties": {
                        "seq": { "type": "integer" }, "kind": { "type": "string" },
                        "serial": { "type": "string" }, "object_hash": { "type": "string" },
                        "request_hash": { "type": "string" }, "policy": { "type": "string" },
                        "client": { "type": "string" }, "issued_at": { "type": "string" },
                        "issued_at_ns": { "type": "integer" }, "node_id": { "type": "string" },
                        "chain_hash": { "type": "string" },
                        "token": { "type": "string", "contentEncoding": "base64" },
                    },
                },
            },
        },
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use std::collections::BTreeSet;

    use axum::body::Body;
    use axum::extract::{MatchedPath, Request};
    use axum::http::{HeaderValue, Method, StatusCode};
    use axum::middleware::{self, Next};
    use tower::ServiceExt as _;

    use super::*;

    /// Every (method, path template) the document lists.
    fn documented() -> BTreeSet<(String, String)> {
        let doc = document();
        let mut out = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                out.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
        out
    }

    /// Every `.route("PATH", METHOD(...))` written in `http/` (`format!("{prefix}...")`
    /// expanded for both CSC versions): what the router serves, read from its source.
    fn written() -> BTreeSet<(String, String)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
        let mut files = vec![];
        for e in std::fs::read_dir(&dir)
            .unwrap()
            .chain(std::fs::read_dir(dir.join("csc")).unwrap())
        {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
        let mut out = BTreeSet::new();
        for f in files {
            let whole = std::fs::read_to_string(&f).unwrap();
            // The server's routes: no comment, no unit test's own router.
            let code = whole.split("#[cfg(test)]").next().unwrap();
            let src: String = code
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            for (i, _) in src.match_indices(".route(") {
                let rest = &src[i + ".route(".len()..];
                let open = rest.find('"').unwrap();
                let close = open + 1 + rest[open + 1..].find('"').unwrap();
                let path = &rest[open + 1..close];
                let after = &rest[close..];
                let method = ["get(", "post("]
                    .iter()
                    .filter_map(|m| after.find(m).map(|at| (at, *m)))
                    .min()
                    .unwrap()
                    .1
                    .trim_end_matches('(')
                    .to_ascii_uppercase();
                if path.starts_with('/') {
                    out.insert((method, path.to_owned()));
                } else if let Some(p) = path.strip_prefix("{prefix}") {
                    for v in ["/csc/v1", "/csc/v2"] {
                        out.insert((method.clone(), format!("{v}{p}")));
                    }
                } else {
                    panic!(
                        "{}: a route path this test cannot read: {path}",
                        f.display()
                    );
                }
            }
        }
        out
    }

    #[test]
    fn every_route_written_is_documented() {
        let documented = documented();
        let written = written();
        assert!(written.len() > 15, "{written:?}");
        let missing: Vec<_> = written.difference(&documented).collect();
        assert!(
            missing.is_empty(),
            "served but not in /openapi.json: {missing:?}"
        );
    }

    /// Each documented operation, sent to the real router, reaches exactly the route
    /// it documents with its method (a removed or renamed route fails here).
    #[tokio::test]
    async fn every_documented_operation_is_routed_there() {
        async fn matched(req: Request, next: Next) -> axum::response::Response {
            let m = req
                .extensions()
                .get::<MatchedPath>()
                .map(|m| m.as_str().to_owned());
            let mut r = next.run(req).await;
            if let Some(m) = m {
                r.headers_mut()
                    .insert("x-matched", HeaderValue::from_str(&m).unwrap());
            }
            r
        }
        let app =
            super::super::router(Arc::new(AppState::bare())).layer(middleware::from_fn(matched));
        for (method, template) in documented() {
            let path = template.replace("{serial}", "0a");
            let req = Request::builder()
                .method(Method::from_bytes(method.as_bytes()).unwrap())
                .uri(&path)
                .body(Body::empty())
                .unwrap();
            let r = app.clone().oneshot(req).await.unwrap();
            assert_ne!(
                r.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            assert_eq!(
                r.headers().get("x-matched").map(|v| v.to_str().unwrap()),
                Some(template.as_str()),
                "{method} {path}"
            );
            assert!(r.headers().contains_key("x-request-id"), "{method} {path}");
        }
        // And something not documented is not routed.
        let r = app
            .oneshot(Request::get("/api/v1/nothing").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert!(r.headers().get("x-matched").is_none());
    }

    #[test]
    fn every_operation_names_its_statuses() {
        let doc = document();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, o) in item.as_object().unwrap() {
                let r = o["responses"].as_object().unwrap();
                assert!(r.contains_key("200"), "{method} {path}");
                if o.get("security").is_some() {
                    assert!(
                        r.contains_key("401") && r.contains_key("403"),
                        "{method} {path}"
                    );
                }
            }
        }
    }
}
