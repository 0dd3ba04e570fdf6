//! HTTP ingress: GraphQL-over-HTTP on `/graphql` (POST JSON, GET for queries),
//! GraphiQL for browsers, `/health`. This is the one place where request errors
//! become HTTP statuses.

pub mod auth;
mod bff;
mod cors;
mod dedupe;
mod graphiql;
mod graphql;
mod guard;
mod http;
pub mod listen;
pub mod ratelimit;
mod state;
mod stream;
mod streaming;
pub mod tls;
mod upload;
pub mod ws;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use std::time::Instant;

use tracing::Instrument;

use crate::common::cors::CorsConfig;
use crate::telemetry::{self, REQUEST_ID};
use cors::cors;
use graphql::graphql_get;
use graphql::graphql_post;
use guard::guard;
pub use http::PLAN_HEADER;
use http::RequestId;
use http::RequestInfo;
pub use state::AppState;
pub use streaming::StreamingConfig;
pub use upload::UploadConfig;

/// `edge:` in the config file: HTTP settings of the GraphQL endpoints.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EdgeConfig {
    /// Compress responses (gzip, br) for clients that accept it.
    #[serde(default = "yes")]
    pub compression: bool,
    #[serde(default)]
    pub cors: CorsConfig,
    /// Subscriptions and other streams: WebSocket, SSE and multipart limits.
    #[serde(default)]
    pub streaming: StreamingConfig,
    /// Client connections: cap, header-read deadline, HTTP/2 limits.
    #[serde(default)]
    pub connections: listen::ConnectionConfig,
    /// A `Cache-Status` header (RFC 9211) on responses a cache was asked for:
    /// `gateway; hit` when every fetch (or a BFF's whole-response cache) was answered
    /// from it, else `gateway; fwd=miss`.
    #[serde(default)]
    pub cache_status: bool,
    #[serde(default)]
    pub shutdown: listen::ShutdownConfig,
    /// File uploads (the GraphQL multipart request spec): off unless enabled.
    #[serde(default)]
    pub uploads: UploadConfig,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            compression: true,
            cors: CorsConfig::default(),
            streaming: StreamingConfig::default(),
            connections: Default::default(),
            cache_status: false,
            shutdown: Default::default(),
            uploads: Default::default(),
        }
    }
}

fn yes() -> bool {
    true
}

pub fn router(state: Arc<AppState>, max_body_bytes: usize, edge: &EdgeConfig) -> Router {
    let mut graphql = Router::new()
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/bff/{client}/graphql", get(bff::get).post(bff::post))
        .route("/bff/{client}/openapi.json", get(bff::openapi))
        .route("/bff/{client}/docs", get(bff::docs))
        .route("/bff/{client}/{operation}", get(bff::persisted))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard));
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
        .route("/health", get(live))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics))
        .route(&graphiql::assets_route(), get(graphiql::asset))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

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
    if !path.starts_with("/health") && path != "/metrics" {
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

/// Liveness: the process serves HTTP.
async fn live() -> Response {
    health_answer(StatusCode::OK, r#"{"status":"UP"}"#.into())
}

/// Readiness: a schema is loaded (always, once serving), the instance is not draining,
/// and the Redis that requests need (see `Access::required_redis`) answers.
async fn ready(State(state): State<Arc<AppState>>) -> Response {
    if state.draining.load(std::sync::atomic::Ordering::Acquire) {
        return health_answer(
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"status":"DOWN","reason":"draining"}"#.into(),
        );
    }
    let access = state.access.load_full();
    if let Some(redis) = access.required_redis()
        && let Err(error) = redis.ping().await
    {
        let body = serde_json::json!({
            "status": "DOWN",
            "reason": format!("redis: {error}"),
        });
        return health_answer(StatusCode::SERVICE_UNAVAILABLE, body.to_string());
    }
    health_answer(StatusCode::OK, r#"{"status":"UP"}"#.into())
}

fn health_answer(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}
