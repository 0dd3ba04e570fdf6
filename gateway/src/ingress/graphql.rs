//! The unified GraphQL endpoint, `/graphql`: decode GET and POST requests, run them
//! through the pipeline (identical concurrent queries share one execution), and map
//! request errors to HTTP statuses (the one place where that happens).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, FromRequest, RawQuery, Request as HttpRequest, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value as Json;
use serde_json::json;

use crate::bff::Bff;
use crate::common::principal::Principal;
use crate::pipeline::Engine;
use crate::request::{Request, RequestContext, RequestError};
use crate::sources::upload::Uploads;

use super::dedupe;
use super::http::{
    JSON, MediaType, RequestId, RequestInfo, decode_request, not_acceptable, respond, simple_error,
    wants_html,
};
use super::state::AppState;
use super::stream::{self, Accepted};
use super::upload;
use super::ws::{self, Upgrade};

pub(super) async fn graphql_post(
    State(state): State<Arc<AppState>>,
    request_id: Extension<RequestId>,
    principal: Option<Extension<Arc<Principal>>>,
    request: HttpRequest,
) -> Response {
    graphql_post_in(state, request_id, principal, request, None).await
}

/// GraphQL over POST on the unified endpoint (`view: None`) or a BFF: a JSON body, or
/// a multipart one with files when uploads are on.
pub(super) async fn graphql_post_in(
    state: Arc<AppState>,
    Extension(request_id): Extension<RequestId>,
    principal: Option<Extension<Arc<Principal>>>,
    http_request: HttpRequest,
    view: Option<Arc<Bff>>,
) -> Response {
    let headers = http_request.headers().clone();
    let Some(accepted) = stream::accepted(&headers) else {
        return not_acceptable();
    };
    let media = accepted.media;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    let principal = principal.map(|p| p.0);
    let (request, uploads, accepted) =
        if state.uploads.enabled && essence.eq_ignore_ascii_case("multipart/form-data") {
            let body = http_request.into_body();
            match upload::read(&state.uploads, &headers, body, state.max_body_bytes).await {
                // Files go to a subgraph once: the answer is one response, never a stream.
                Ok((request, uploads)) => (
                    request,
                    Some(uploads),
                    Accepted {
                        framing: None,
                        ..accepted
                    },
                ),
                Err(error) => return upload::refusal(&error, media),
            }
        } else if essence.eq_ignore_ascii_case(JSON) {
            // Read with the router's body limit (`limits.max_body_bytes`).
            let body = match Bytes::from_request(http_request, &()).await {
                Ok(body) => body,
                Err(rejection) => return rejection.into_response(),
            };
            match json_request(&body) {
                Ok(request) => (request, None, accepted),
                Err(message) => {
                    return simple_error(StatusCode::BAD_REQUEST, media, &message, "BAD_REQUEST");
                }
            }
        } else {
            return simple_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                media,
                "POST requests must have `Content-Type: application/json`",
                "UNSUPPORTED_MEDIA_TYPE",
            );
        };
    run(
        &state,
        headers,
        request_id.0,
        principal,
        request,
        accepted,
        false,
        view,
        uploads,
    )
    .await
}

/// A JSON POST body as a request.
fn json_request(body: &[u8]) -> Result<Request, String> {
    let raw: Json = serde_json::from_slice(body)
        .map_err(|e| format!("the request body is not valid JSON: {e}"))?;
    let Json::Object(fields) = raw else {
        return Err("the request body must be a JSON object with a `query`".into());
    };
    decode_request(
        fields.get("query"),
        fields.get("operationName"),
        fields.get("variables").cloned(),
        fields.get("extensions").cloned(),
    )
}

pub(super) async fn graphql_get(
    State(state): State<Arc<AppState>>,
    upgrade: Option<Upgrade>,
    request_id: Extension<RequestId>,
    principal: Option<Extension<Arc<Principal>>>,
    headers: HeaderMap,
    query: RawQuery,
) -> Response {
    if let Some(upgrade) = upgrade {
        return ws::accept(state, upgrade, headers, None);
    }
    graphql_get_in(state, request_id, principal, headers, query, None).await
}

/// GraphQL over GET on the unified endpoint (`view: None`) or a BFF.
pub(super) async fn graphql_get_in(
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
        return super::graphiql::page();
    }
    let Some(accepted) = stream::accepted(&headers) else {
        return not_acceptable();
    };
    let media = accepted.media;
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
        accepted,
        true,
        view,
        None,
    )
    .await
}

/// Execute and serialize: the part of a request that identical requests can share.
pub(super) async fn execute_outcome(
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
            cache_hit: response.cache_hit,
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
            cache_hit: None,
        },
    };
    Arc::new(outcome)
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn run(
    state: &AppState,
    headers: HeaderMap,
    request_id: HeaderValue,
    principal: Option<Arc<Principal>>,
    request: Request,
    accepted: Accepted,
    over_get: bool,
    view: Option<Arc<Bff>>,
    uploads: Option<Arc<Uploads>>,
) -> Response {
    let client = view
        .as_ref()
        .map_or_else(|| "unified".to_string(), |v| v.name().to_string());
    let engine = state.engine.load_full();
    let principal = principal.unwrap_or_else(|| Arc::new(Principal::anonymous()));
    let deadline = engine.deadline(view.as_deref());
    let mut context = state.context(headers, request_id, &principal, deadline);
    context.uploads = uploads.clone();
    let media = accepted.media;
    if let Some(framing) = accepted.framing {
        return stream::respond(
            state, &engine, context, principal, client, request, framing, over_get, view,
        )
        .await;
    }
    // Identical concurrent queries share one execution (never mutations, never
    // requests that asked for their own plan and timings).
    // Only operations planned before qualify: the check must not plan (nor count as a
    // plan-cache lookup) on its own.
    let shareable = !context.expose_plan
        && uploads.is_none()
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
    // Files that could not be sent make the answer theirs, whatever the fetch saw.
    if let Some(failure) = uploads.and_then(|u| u.failure()) {
        return upload::refusal(&failure, media);
    }
    let mut response = respond(done.status, media, done.body.clone());
    if done.allow_post {
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
    }
    // RFC 9211, opt-in (`edge.cache_status`).
    if let (true, Some(hit)) = (state.cache_status, done.cache_hit) {
        let value = if hit {
            "gateway; hit"
        } else {
            "gateway; fwd=miss"
        };
        response
            .headers_mut()
            .insert("cache-status", HeaderValue::from_static(value));
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
/// and 200 with legacy `application/json`. An operation the planner cannot route is one
/// of them (the supergraph offers no way to resolve it), never a server error.
pub(super) fn status_of(error: &RequestError, media: MediaType) -> StatusCode {
    match error {
        RequestError::MutationOverGet => StatusCode::METHOD_NOT_ALLOWED,
        // The APQ protocol: the client retries with the full query on this error.
        RequestError::PersistedQueryNotFound => StatusCode::OK,
        _ if media == MediaType::Json => StatusCode::OK,
        _ => StatusCode::BAD_REQUEST,
    }
}
