//! HTTP ingress: GraphQL-over-HTTP on `/graphql` (POST JSON, GET for queries),
//! GraphiQL for browsers, `/health`. This is the one place where request errors
//! become HTTP statuses.

pub mod auth;
mod bff;
mod dedupe;
pub mod ratelimit;
pub mod tls;

use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Extension, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

use std::time::Instant;

use tracing::Instrument;

use crate::bff::Bff;
use crate::common::cors::CorsConfig;
use crate::common::principal::Principal;
use crate::pipeline::Engine;
use crate::request::{Request, RequestContext, RequestError};
use crate::telemetry::{self, Metrics, REQUEST_ID};

/// Shared state of the HTTP server. The engine (schema version + plan cache) is
/// swapped atomically on reload; requests in flight keep the version they started with.
pub struct AppState {
    pub engine: ArcSwap<Engine>,
    pub metrics: Arc<Metrics>,
    /// Whether clients may ask for the query plan (`x-gateway-plan: true`).
    pub allow_plan_header: bool,
    /// Client authentication and rate limits, compiled from config; swapped on reload
    /// when their config changes.
    pub access: ArcSwap<auth::Access>,
    /// The config the running `access` was compiled from (to see whether a reload
    /// changed it; recompiling resets local rate-limit counters).
    pub access_config: std::sync::Mutex<String>,
    /// Concurrent identical queries share one execution.
    pub dedupe: dedupe::InboundDedupe,
}

/// `edge:` in the config file: HTTP settings of the GraphQL endpoints.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeConfig {
    /// Compress responses (gzip, br) for clients that accept it.
    #[serde(default = "yes")]
    pub compression: bool,
    #[serde(default)]
    pub cors: CorsConfig,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            compression: true,
            cors: CorsConfig::default(),
        }
    }
}

fn yes() -> bool {
    true
}

/// Header with which a client asks for the plan and fetch timings in `extensions`.
pub const PLAN_HEADER: &str = "x-gateway-plan";

pub fn router(state: Arc<AppState>, max_body_bytes: usize, edge: &EdgeConfig) -> Router {
    let mut graphql = Router::new()
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/bff/{client}/graphql", get(bff::get).post(bff::post))
        .route("/bff/{client}/{operation}", get(bff::persisted))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::guard,
        ));
    // CORS per endpoint: a BFF's own `cors:` wins over the gateway-wide `edge.cors`.
    let global_cors = Arc::new(edge.cors.clone());
    graphql = graphql.layer(axum::middleware::from_fn_with_state(
        (state.clone(), global_cors),
        cors,
    ));
    if edge.compression {
        graphql = graphql.layer(
            tower_http::compression::CompressionLayer::new()
                .gzip(true)
                .br(true),
        );
    }
    Router::new()
        .merge(graphql)
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// What a GraphQL handler tells the access log and metrics about a request.
#[derive(Clone, Debug)]
struct RequestInfo {
    client: String,
    operation: Option<String>,
    outcome: &'static str,
    upstream_requests: usize,
}

/// The request id of the current request, set by [`observe`].
#[derive(Clone, Debug)]
pub struct RequestId(pub HeaderValue);

/// Outermost layer: request id in and out, one access-log line, request metrics.
async fn observe(
    State(state): State<Arc<AppState>>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let started = Instant::now();
    let id = telemetry::request_id(request.headers().get(REQUEST_ID));
    request.extensions_mut().insert(RequestId(id.clone()));
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let _in_flight = state.metrics.in_flight();
    let span = tracing::info_span!(
        "request",
        otel.kind = "server",
        http.request.method = %method,
        url.path = %path,
        request_id = id.to_str().unwrap_or(""),
        graphql.operation.name = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
    );
    telemetry::tracing::continue_trace(&span, request.headers());
    let mut response = next.run(request).instrument(span.clone()).await;
    response.headers_mut().insert(REQUEST_ID, id.clone());
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let info = response.extensions_mut().remove::<RequestInfo>();
    span.record("http.response.status_code", status);
    if let Some(op) = info.as_ref().and_then(|i| i.operation.as_deref()) {
        span.record("graphql.operation.name", op);
    }
    if let Some(info) = &info {
        state.metrics.request(
            &info.client,
            info.operation.as_deref(),
            info.outcome,
            elapsed,
        );
    } else if path == "/graphql" {
        let outcome = if status == 413 || status < 500 {
            "request_error"
        } else {
            "error"
        };
        state.metrics.request("unified", None, outcome, elapsed);
    }
    if path != "/health" && path != "/metrics" {
        tracing::info!(
            target: "gateway::access",
            request_id = id.to_str().unwrap_or(""),
            method = %method,
            path = %path,
            client = info.as_ref().map_or("", |i| i.client.as_str()),
            operation = info.as_ref().and_then(|i| i.operation.as_deref()).unwrap_or(""),
            outcome = info.as_ref().map_or("", |i| i.outcome),
            status,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            upstream_requests = info.as_ref().map_or(0, |i| i.upstream_requests),
            "request"
        );
    }
    response
}

async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// Apply the CORS policy of the endpoint the request is for, if it has one.
async fn cors(
    State((state, global)): State<(Arc<AppState>, Arc<CorsConfig>)>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let bff_cors = request
        .uri()
        .path()
        .strip_prefix("/bff/")
        .and_then(|rest| rest.split('/').next())
        .and_then(|name| {
            state
                .engine
                .load()
                .bffs
                .get(name)
                .and_then(|b| b.config.cors.clone())
        });
    let config = bff_cors.as_ref().unwrap_or(&global);
    let Some(layer) = cors_layer(config) else {
        return next.run(request).await;
    };
    // The CORS service calls its inner service at most once per request.
    let mut next = Some(next);
    let inner = tower::service_fn(move |req: axum::extract::Request| {
        let next = next.take();
        async move {
            Ok::<_, std::convert::Infallible>(match next {
                Some(next) => next.run(req).await,
                None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            })
        }
    });
    match tower::ServiceExt::oneshot(tower::Layer::layer(&layer, inner), request).await {
        Ok(response) => response.map(axum::body::Body::new),
        Err(never) => match never {},
    }
}

/// The CORS layer, or none when no origin is allowed.
fn cors_layer(config: &CorsConfig) -> Option<tower_http::cors::CorsLayer> {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if config.allow_origins.is_empty() {
        return None;
    }
    let origin = if config.allow_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            config
                .allow_origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok()),
        )
    };
    let headers: Vec<header::HeaderName> = config
        .allow_headers
        .iter()
        .filter_map(|h| header::HeaderName::from_bytes(h.as_bytes()).ok())
        .collect();
    let mut layer = CorsLayer::new()
        .allow_origin(origin)
        .allow_methods([http::Method::GET, http::Method::POST])
        .allow_headers(headers)
        .expose_headers([header::HeaderName::from_static(REQUEST_ID)])
        .allow_credentials(config.allow_credentials);
    if let Some(max_age) = config.max_age {
        layer = layer.max_age(max_age);
    }
    Some(layer)
}

async fn health() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"UP"}"#,
    )
}

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

/// The response media type the client accepts, by the GraphQL-over-HTTP rules.
#[derive(Clone, Copy, PartialEq, Debug)]
enum MediaType {
    GraphqlResponse,
    Json,
}

fn negotiate(headers: &HeaderMap) -> Option<MediaType> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Some(MediaType::Json);
    };
    let types: Vec<&str> = accept
        .split(',')
        .map(|t| t.split(';').next().unwrap_or("").trim())
        .collect();
    if types.contains(&GRAPHQL_RESPONSE) {
        Some(MediaType::GraphqlResponse)
    } else if types
        .iter()
        .any(|t| matches!(*t, JSON | "*/*" | "application/*" | ""))
    {
        Some(MediaType::Json)
    } else {
        None
    }
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// A request-level failure: an HTTP status and GraphQL errors, no `data`.
fn error_response(status: StatusCode, media: MediaType, errors: Vec<Json>) -> Response {
    let body = json!({ "errors": errors }).to_string();
    respond(status, media, body.into_bytes())
}

fn simple_error(status: StatusCode, media: MediaType, message: &str, code: &str) -> Response {
    error_response(
        status,
        media,
        vec![json!({"message": message, "extensions": {"code": code}})],
    )
}

fn respond(status: StatusCode, media: MediaType, body: impl Into<axum::body::Body>) -> Response {
    let content_type = match media {
        MediaType::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
        MediaType::Json => "application/json; charset=utf-8",
    };
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body.into(),
    )
        .into_response()
}

async fn graphql_post(
    State(state): State<Arc<AppState>>,
    request_id: Extension<RequestId>,
    principal: Option<Extension<Arc<Principal>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    graphql_post_in(state, request_id, principal, headers, body, None).await
}

/// GraphQL over POST on the unified endpoint (`view: None`) or a BFF.
async fn graphql_post_in(
    state: Arc<AppState>,
    Extension(request_id): Extension<RequestId>,
    principal: Option<Extension<Arc<Principal>>>,
    headers: HeaderMap,
    body: Bytes,
    view: Option<Arc<Bff>>,
) -> Response {
    let Some(media) = negotiate(&headers) else {
        return not_acceptable();
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case(JSON) {
        return simple_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            media,
            "POST requests must have `Content-Type: application/json`",
            "UNSUPPORTED_MEDIA_TYPE",
        );
    }
    let raw: Json = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return simple_error(
                StatusCode::BAD_REQUEST,
                media,
                &format!("the request body is not valid JSON: {e}"),
                "BAD_REQUEST",
            );
        }
    };
    let Json::Object(fields) = raw else {
        return simple_error(
            StatusCode::BAD_REQUEST,
            media,
            "the request body must be a JSON object with a `query`",
            "BAD_REQUEST",
        );
    };
    let request = match decode_request(
        fields.get("query"),
        fields.get("operationName"),
        fields.get("variables").cloned(),
        fields.get("extensions").cloned(),
    ) {
        Ok(r) => r,
        Err(message) => {
            return simple_error(StatusCode::BAD_REQUEST, media, &message, "BAD_REQUEST");
        }
    };
    let principal = principal.map(|p| p.0);
    run(
        &state,
        headers,
        request_id.0,
        principal,
        request,
        media,
        false,
        view,
    )
    .await
}

async fn graphql_get(
    State(state): State<Arc<AppState>>,
    request_id: Extension<RequestId>,
    principal: Option<Extension<Arc<Principal>>>,
    headers: HeaderMap,
    query: RawQuery,
) -> Response {
    graphql_get_in(state, request_id, principal, headers, query, None).await
}

/// GraphQL over GET on the unified endpoint (`view: None`) or a BFF.
async fn graphql_get_in(
    state: Arc<AppState>,
    Extension(request_id): Extension<RequestId>,
    principal: Option<Extension<Arc<Principal>>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    view: Option<Arc<Bff>>,
) -> Response {
    let params: Vec<(String, String)> = query
        .as_deref()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    if param("query").is_none() && wants_html(&headers) {
        return Html(GRAPHIQL).into_response();
    }
    let Some(media) = negotiate(&headers) else {
        return not_acceptable();
    };
    let variables = match param("variables") {
        None => None,
        Some(text) if text.is_empty() => None,
        Some(text) => match serde_json::from_str::<Json>(&text) {
            Ok(v) => Some(v),
            Err(e) => {
                return simple_error(
                    StatusCode::BAD_REQUEST,
                    media,
                    &format!("the `variables` parameter is not valid JSON: {e}"),
                    "BAD_REQUEST",
                );
            }
        },
    };
    let query = param("query").map(Json::String);
    let operation_name = param("operationName").map(Json::String);
    let extensions = match param("extensions").filter(|t| !t.is_empty()) {
        None => None,
        Some(text) => match serde_json::from_str::<Json>(&text) {
            Ok(v) => Some(v),
            Err(e) => {
                return simple_error(
                    StatusCode::BAD_REQUEST,
                    media,
                    &format!("the `extensions` parameter is not valid JSON: {e}"),
                    "BAD_REQUEST",
                );
            }
        },
    };
    let request = match decode_request(
        query.as_ref(),
        operation_name.as_ref(),
        variables,
        extensions,
    ) {
        Ok(r) => r,
        Err(message) => {
            return simple_error(StatusCode::BAD_REQUEST, media, &message, "BAD_REQUEST");
        }
    };
    let principal = principal.map(|p| p.0);
    run(
        &state,
        headers,
        request_id.0,
        principal,
        request,
        media,
        true,
        view,
    )
    .await
}

fn not_acceptable() -> Response {
    (
        StatusCode::NOT_ACCEPTABLE,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"errors": [{"message": "the Accept header allows neither application/graphql-response+json nor application/json", "extensions": {"code": "NOT_ACCEPTABLE"}}]}).to_string(),
    )
        .into_response()
}

/// Check the shape of the GraphQL request parameters.
fn decode_request(
    query: Option<&Json>,
    operation_name: Option<&Json>,
    variables: Option<Json>,
    extensions: Option<Json>,
) -> Result<Request, String> {
    let extensions = match extensions {
        None | Some(Json::Null) => Map::new(),
        Some(Json::Object(map)) => map,
        Some(_) => return Err("`extensions` must be a JSON object".into()),
    };
    let query = match query {
        Some(Json::String(q)) => q.clone(),
        // A persisted query is sent by hash alone.
        None | Some(Json::Null) if extensions.contains_key("persistedQuery") => String::new(),
        None | Some(Json::Null) => return Err("the request has no `query`".into()),
        Some(_) => return Err("`query` must be a string".into()),
    };
    let operation_name = match operation_name {
        None | Some(Json::Null) => None,
        Some(Json::String(name)) => Some(name.clone()),
        Some(_) => return Err("`operationName` must be a string".into()),
    };
    let variables = match variables {
        None | Some(Json::Null) => Map::new(),
        Some(Json::Object(map)) => map,
        Some(_) => return Err("`variables` must be a JSON object".into()),
    };
    Ok(Request {
        query,
        operation_name,
        variables,
        extensions,
    })
}

/// Execute and serialize: the part of a request that identical requests can share.
async fn execute_outcome(
    engine: Arc<Engine>,
    request: Request,
    over_get: bool,
    view: Option<Arc<Bff>>,
    context: RequestContext,
    principal: Arc<Principal>,
    media: MediaType,
) -> Arc<dedupe::Outcome> {
    let operation = request.operation_name.clone();
    let outcome = match engine
        .execute_as(view.as_deref(), &request, over_get, &context, &principal)
        .await
    {
        Ok(mut response) => dedupe::Outcome {
            status: StatusCode::OK,
            outcome: if response.errors.is_empty() {
                "ok"
            } else {
                "partial"
            },
            upstream_requests: response.upstream_requests,
            operation: response.operation_name.take().or(operation),
            body: response.into_bytes().into(),
            allow_post: false,
        },
        Err(error) => dedupe::Outcome {
            status: status_of(&error, media),
            outcome: "request_error",
            upstream_requests: 0,
            operation,
            body: json!({ "errors": error.graphql_errors() })
                .to_string()
                .into_bytes()
                .into(),
            allow_post: matches!(error, RequestError::MutationOverGet),
        },
    };
    Arc::new(outcome)
}

#[allow(clippy::too_many_arguments)]
async fn run(
    state: &AppState,
    headers: HeaderMap,
    request_id: HeaderValue,
    principal: Option<Arc<Principal>>,
    request: Request,
    media: MediaType,
    over_get: bool,
    view: Option<Arc<Bff>>,
) -> Response {
    let client = view
        .as_ref()
        .map_or_else(|| "unified".to_string(), |v| v.name().to_string());
    let engine = state.engine.load_full();
    let principal = principal.unwrap_or_else(|| Arc::new(Principal::anonymous()));
    let context = RequestContext {
        request_id,
        expose_plan: state.allow_plan_header
            && headers
                .get(PLAN_HEADER)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true")),
        client_headers: Arc::new(headers),
        principal: principal.is_authenticated().then(|| principal.clone()),
    };
    // Identical concurrent queries share one execution (never mutations, never
    // requests that asked for their own plan and timings).
    // Only operations planned before qualify: the check must not plan (nor count as a
    // plan-cache lookup) on its own.
    let shareable = !context.expose_plan
        && engine.cached_kind(
            view.as_deref(),
            &request.query,
            request.operation_name.as_deref(),
        ) == Some(apollo_compiler::ast::OperationType::Query);
    let key = shareable.then(|| {
        dedupe::key(
            view.as_deref().map(Bff::name),
            &request,
            over_get,
            media as u8,
            &context.client_headers,
            &principal,
        )
    });
    let work = execute_outcome(engine, request, over_get, view, context, principal, media);
    let done = match key {
        Some(key) => state.dedupe.run(key, Box::pin(work)).await,
        None => work.await,
    };
    let mut response = respond(done.status, media, done.body.clone());
    if done.allow_post {
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
    }
    let (operation, outcome, upstream_requests) =
        (done.operation.clone(), done.outcome, done.upstream_requests);
    response.extensions_mut().insert(RequestInfo {
        client,
        operation,
        outcome,
        upstream_requests,
    });
    response
}

/// GraphQL-over-HTTP: request errors are 400 with `application/graphql-response+json`
/// and 200 with legacy `application/json`.
fn status_of(error: &RequestError, media: MediaType) -> StatusCode {
    match error {
        RequestError::MutationOverGet => StatusCode::METHOD_NOT_ALLOWED,
        RequestError::Plan(_) => StatusCode::INTERNAL_SERVER_ERROR,
        // The APQ protocol: the client retries with the full query on this error.
        RequestError::PersistedQueryNotFound => StatusCode::OK,
        _ if media == MediaType::Json => StatusCode::OK,
        _ => StatusCode::BAD_REQUEST,
    }
}

const GRAPHIQL: &str = include_str!("graphiql.html");
