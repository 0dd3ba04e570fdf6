//! GraphQL-over-HTTP pieces the edge's handlers and middleware share: media-type
//! negotiation, the request parameters' shape, error and response bodies, and what a
//! handler tells the access log.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Map;
use serde_json::Value as Json;
use serde_json::json;

use crate::request::Request;

/// Header with which a client asks for the plan and fetch timings in `extensions`.
pub const PLAN_HEADER: &str = "x-gateway-plan";

/// What a GraphQL handler tells the access log and metrics about a request.
#[derive(Clone, Debug)]
pub(super) struct RequestInfo {
    pub(super) client: String,
    pub(super) operation: Option<String>,
    pub(super) outcome: &'static str,
    pub(super) upstream_requests: usize,
}

/// The request id of the current request, set by [`observe`].
#[derive(Clone, Debug)]
pub struct RequestId(pub HeaderValue);

pub(super) const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
pub(super) const JSON: &str = "application/json";

/// The response media type the client accepts, by the GraphQL-over-HTTP rules.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(super) enum MediaType {
    GraphqlResponse,
    Json,
}

pub(super) fn negotiate(headers: &HeaderMap) -> Option<MediaType> {
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

pub(super) fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// A request-level failure: an HTTP status and GraphQL errors, no `data`.
pub(super) fn error_response(status: StatusCode, media: MediaType, errors: Vec<Json>) -> Response {
    let body = json!({ "errors": errors }).to_string();
    respond(status, media, body.into_bytes())
}

pub(super) fn simple_error(
    status: StatusCode,
    media: MediaType,
    message: &str,
    code: &str,
) -> Response {
    error_response(
        status,
        media,
        vec![json!({"message": message, "extensions": {"code": code}})],
    )
}

pub(super) fn respond(
    status: StatusCode,
    media: MediaType,
    body: impl Into<axum::body::Body>,
) -> Response {
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

pub(super) fn not_acceptable() -> Response {
    (
        StatusCode::NOT_ACCEPTABLE,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"errors": [{"message": "the Accept header allows neither application/graphql-response+json nor application/json", "extensions": {"code": "NOT_ACCEPTABLE"}}]}).to_string(),
    )
        .into_response()
}

/// Check the shape of the GraphQL request parameters.
pub(super) fn decode_request(
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
