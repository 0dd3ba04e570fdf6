//! BFF endpoints: `/bff/{client}/graphql` (GraphQL-over-HTTP on the client's view)
//! and `/bff/{client}/{operation}` (a persisted operation as a plain GET endpoint,
//! variables from query parameters, typed by the operation's variable definitions).

use std::sync::Arc;

use apollo_compiler::ast::Type;
use apollo_compiler::schema::ExtendedType;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::Map;
use serde_json::Value as Json;

use crate::bff::Bff;
use crate::bff::config::AuthMode;
use crate::common::principal::Principal;
use crate::request::Request;

use super::graphql::{graphql_get_in, graphql_post_in, run};
use super::http::{MediaType, RequestId, not_acceptable, simple_error, wants_html};
use super::state::AppState;
use super::stream;
use super::ws::{self, Upgrade};

/// The BFF named in the path, or a 404 response.
fn find(state: &AppState, client: &str) -> Result<Arc<Bff>, Box<Response>> {
    state
        .engine
        .load()
        .bffs
        .get(client)
        .cloned()
        .ok_or_else(|| {
            Box::new(simple_error(
                StatusCode::NOT_FOUND,
                MediaType::Json,
                &format!("no BFF named `{client}`"),
                "NOT_FOUND",
            ))
        })
}

/// The BFF's auth mode against who the request is.
fn admit(
    bff: &Bff,
    principal: Option<&Principal>,
    headers: &HeaderMap,
) -> Result<(), Box<Response>> {
    let sent_authorization = headers.contains_key(axum::http::header::AUTHORIZATION);
    let Err(wanted) = bff.admits(principal, sent_authorization) else {
        return Ok(());
    };
    let mut response = simple_error(
        StatusCode::UNAUTHORIZED,
        MediaType::Json,
        &format!("the `{}` endpoint requires {wanted}", bff.name()),
        "UNAUTHENTICATED",
    );
    let scheme = if bff.config.auth.mode == AuthMode::ApiKey {
        "ApiKey"
    } else {
        "Bearer"
    };
    // RFC 6750 §3.1: credentials were sent, and they were not good enough.
    let challenge = if sent_authorization {
        format!("{scheme} realm=\"gateway\", error=\"invalid_token\"")
    } else {
        format!("{scheme} realm=\"gateway\"")
    };
    if let Ok(v) = axum::http::HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(axum::http::header::WWW_AUTHENTICATE, v);
    }
    Err(Box::new(response))
}

fn principal_of(principal: &Option<Extension<Arc<Principal>>>) -> Option<&Principal> {
    principal.as_ref().map(|p| p.0.as_ref())
}

pub async fn post(
    State(state): State<Arc<AppState>>,
    Path(client): Path<String>,
    request_id: Extension<RequestId>,
    principal: Option<Extension<Arc<Principal>>>,
    request: axum::extract::Request,
) -> Response {
    let bff = match find(&state, &client)
        .and_then(|b| admit(&b, principal_of(&principal), request.headers()).map(|()| b))
    {
        Ok(b) => b,
        Err(response) => return *response,
    };
    graphql_post_in(state, request_id, principal, request, Some(bff)).await
}

#[allow(clippy::too_many_arguments)]
pub async fn get(
    State(state): State<Arc<AppState>>,
    Path(client): Path<String>,
    upgrade: Option<Upgrade>,
    request_id: Extension<RequestId>,
    principal: Option<Extension<Arc<Principal>>>,
    headers: HeaderMap,
    query: RawQuery,
) -> Response {
    let bff = match find(&state, &client) {
        Ok(b) => b,
        Err(response) => return *response,
    };
    // The BFF's auth mode is checked at `connection_init`.
    if let Some(upgrade) = upgrade {
        return ws::accept(state, upgrade, headers, Some(&bff));
    }
    // GraphiQL only where introspection is allowed.
    if query.0.is_none() && wants_html(&headers) {
        if bff.config.limits.introspection {
            return super::graphiql::page();
        }
        return simple_error(
            StatusCode::NOT_FOUND,
            MediaType::Json,
            "introspection (and so GraphiQL) is disabled on this endpoint",
            "INTROSPECTION_DISABLED",
        );
    }
    if let Err(response) = admit(&bff, principal_of(&principal), &headers) {
        return *response;
    }
    graphql_get_in(state, request_id, principal, headers, query, Some(bff)).await
}

/// `GET /bff/{client}/openapi.json`: the BFF's persisted operations as an OpenAPI 3.1
/// document (`bff::openapi`), behind the BFF's own auth like its endpoints.
pub async fn openapi(
    State(state): State<Arc<AppState>>,
    Path(client): Path<String>,
    principal: Option<Extension<Arc<Principal>>>,
    headers: HeaderMap,
) -> Response {
    let bff = match find(&state, &client)
        .and_then(|b| admit(&b, principal_of(&principal), &headers).map(|()| b))
    {
        Ok(b) => b,
        Err(response) => return *response,
    };
    let header = state.access.load().auth.api_key_header().to_string();
    let document = crate::bff::openapi::document(&bff, &header);
    axum::response::IntoResponse::into_response((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        document.to_string(),
    ))
}

/// `GET /bff/{client}/docs`: a page listing the BFF's REST endpoints from its OpenAPI
/// document, with a form to call each (`bff-docs.html`: no script or style from another
/// host). The page itself is public; the document and the calls carry the credentials
/// typed into it.
pub async fn docs(State(state): State<Arc<AppState>>, Path(client): Path<String>) -> Response {
    if let Err(response) = find(&state, &client) {
        return *response;
    }
    const PAGE: &str = include_str!("bff-docs.html");
    let header = state.access.load().auth.api_key_header().to_string();
    axum::response::IntoResponse::into_response(axum::response::Html(
        PAGE.replace("{{API_KEY_HEADER}}", &header),
    ))
}

/// `GET /bff/{client}/{operation}?var=value`: run a persisted operation.
pub async fn persisted(
    State(state): State<Arc<AppState>>,
    Path((client, name)): Path<(String, String)>,
    request_id: Extension<RequestId>,
    principal: Option<Extension<Arc<Principal>>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let bff = match find(&state, &client)
        .and_then(|b| admit(&b, principal_of(&principal), &headers).map(|()| b))
    {
        Ok(b) => b,
        Err(response) => return *response,
    };
    // A persisted subscription streams over SSE or multipart, like any request.
    let Some(accepted) = stream::accepted(&headers) else {
        return not_acceptable();
    };
    let media = accepted.media;
    let Some(op) = bff.persisted.by_name(&name) else {
        return simple_error(
            StatusCode::NOT_FOUND,
            media,
            &format!("the `{client}` BFF has no persisted operation `{name}`"),
            "NOT_FOUND",
        );
    };
    let params: Vec<(String, String)> = query
        .as_deref()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let engine = state.engine.load_full();
    let variables = match engine.prepare_in(Some(&bff), &op.document, None) {
        Ok(prepared) => match prepared.document.operations.get(None) {
            Ok(operation) => variables_from_params(&bff, &operation.variables, &params),
            Err(e) => Err(e.message().to_string()),
        },
        Err(e) => Err(e.to_string()),
    };
    let variables = match variables {
        Ok(v) => v,
        Err(message) => {
            return simple_error(StatusCode::BAD_REQUEST, media, &message, "BAD_REQUEST");
        }
    };
    let request = Request {
        query: op.document.clone(),
        operation_name: None,
        variables,
        extensions: Map::new(),
    };
    let principal = principal.map(|p| p.0);
    let body_path = bff
        .config
        .persisted
        .endpoints
        .get(&name)
        .and_then(|e| e.body.clone());
    let response = run(
        &state,
        headers,
        request_id.0.0,
        principal,
        request,
        accepted,
        true,
        Some(bff),
        None,
    )
    .await;
    rest_shape(response, body_path.as_deref()).await
}

const NOT_FOUND: &[u8] = b"\"NOT_FOUND\"";

/// The REST face of a persisted operation's JSON answer: 404 when a root field is null
/// with a `NOT_FOUND` error; with `persisted.endpoints.<op>.body`, the value at that
/// path of `data` as the whole body when there are no errors. Streams pass untouched.
async fn rest_shape(response: Response, body_path: Option<&str>) -> Response {
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    if !is_json || response.status() != StatusCode::OK {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return simple_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            MediaType::Json,
            "the response could not be read",
            "INTERNAL_SERVER_ERROR",
        );
    };
    // The common answer (no body path, no `NOT_FOUND` in it) goes out unparsed.
    if body_path.is_none() && memchr::memmem::find(&bytes, NOT_FOUND).is_none() {
        return Response::from_parts(parts, axum::body::Body::from(bytes));
    }
    let answer: Json = serde_json::from_slice(&bytes).unwrap_or(Json::Null);
    let errors = answer["errors"].as_array().map_or(&[][..], Vec::as_slice);
    let not_found = errors.iter().any(|e| {
        e["extensions"]["code"] == "NOT_FOUND"
            && e["path"]
                .as_array()
                .filter(|p| p.len() == 1)
                .and_then(|p| p[0].as_str())
                .is_some_and(|root| answer["data"][root].is_null())
    });
    if not_found {
        parts.status = StatusCode::NOT_FOUND;
        return Response::from_parts(parts, axum::body::Body::from(bytes));
    }
    if let Some(path) = body_path
        && errors.is_empty()
    {
        let value = path
            .split('.')
            .fold(&answer["data"], |here, key| &here[key]);
        parts.headers.insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        );
        parts.headers.remove(axum::http::header::CONTENT_LENGTH);
        return Response::from_parts(parts, axum::body::Body::from(value.to_string()));
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// Query parameters as typed variables: each parameter must be a variable of the
/// operation, and parse as its type (`Int`, `Float`, `Boolean`, enums, `String`/`ID`
/// and custom scalars; lists and input objects as JSON).
fn variables_from_params(
    bff: &Bff,
    definitions: &[apollo_compiler::Node<apollo_compiler::ast::VariableDefinition>],
    params: &[(String, String)],
) -> Result<Map<String, Json>, String> {
    let mut out = Map::new();
    for (key, value) in params {
        let Some(def) = definitions.iter().find(|d| d.name == key.as_str()) else {
            let known: Vec<&str> = definitions.iter().map(|d| d.name.as_str()).collect();
            return Err(format!(
                "unknown parameter `{key}` (this operation takes: {})",
                known.join(", ")
            ));
        };
        let parsed = parse_param(bff, &def.ty, value)
            .map_err(|expected| format!("parameter `{key}` must be {expected}, got {value:?}"))?;
        out.insert(key.clone(), parsed);
    }
    for def in definitions {
        if def.ty.is_non_null()
            && def.default_value.is_none()
            && !out.contains_key(def.name.as_str())
        {
            return Err(format!(
                "missing required parameter `{}` ({})",
                def.name, def.ty
            ));
        }
    }
    Ok(out)
}

fn parse_param(bff: &Bff, ty: &Type, value: &str) -> Result<Json, String> {
    if ty.is_list() {
        return serde_json::from_str::<Json>(value)
            .ok()
            .filter(Json::is_array)
            .ok_or_else(|| format!("a JSON list ({ty})"));
    }
    let named = ty.inner_named_type();
    match named.as_str() {
        "Int" => value
            .parse::<i32>()
            .map(Json::from)
            .map_err(|_| "an Int".to_string()),
        "Float" => value
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Json::Number)
            .ok_or_else(|| "a Float".to_string()),
        "Boolean" => match value {
            "true" => Ok(Json::Bool(true)),
            "false" => Ok(Json::Bool(false)),
            _ => Err("true or false".into()),
        },
        "String" | "ID" => Ok(Json::String(value.to_string())),
        _ => match bff.api.types.get(named) {
            Some(ExtendedType::Enum(e)) => {
                if e.values.contains_key(value) {
                    Ok(Json::String(value.to_string()))
                } else {
                    let values: Vec<&str> = e.values.keys().map(|v| v.as_str()).collect();
                    Err(format!("one of {}", values.join(", ")))
                }
            }
            Some(ExtendedType::InputObject(_)) => serde_json::from_str::<Json>(value)
                .ok()
                .filter(Json::is_object)
                .ok_or_else(|| format!("a JSON object ({named})")),
            _ => Ok(serde_json::from_str::<Json>(value)
                .unwrap_or_else(|_| Json::String(value.to_string()))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::IntoResponse;

    async fn shaped(body: Json, path: Option<&str>) -> (StatusCode, Json) {
        let response = (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
        let out = rest_shape(response, path).await;
        let status = out.status();
        let bytes = axum::body::to_bytes(out.into_body(), usize::MAX)
            .await
            .unwrap_or_default();
        (status, serde_json::from_slice(&bytes).unwrap_or(Json::Null))
    }

    #[tokio::test]
    async fn a_null_root_with_not_found_is_404_and_a_body_path_flattens() {
        let missing = serde_json::json!({
            "data": {"order": null},
            "errors": [{"message": "no order 9", "path": ["order"], "extensions": {"code": "NOT_FOUND"}}]
        });
        assert_eq!(
            shaped(missing.clone(), Some("order")).await,
            (StatusCode::NOT_FOUND, missing)
        );
        // Another error code, or an error below the root, stays a 200.
        let failed = serde_json::json!({
            "data": {"order": {"id": "1", "note": null}},
            "errors": [{"message": "x", "path": ["order", "note"], "extensions": {"code": "NOT_FOUND"}}]
        });
        assert_eq!(
            shaped(failed.clone(), Some("order")).await,
            (StatusCode::OK, failed)
        );
        let found = serde_json::json!({"data": {"order": {"id": "1", "items": [1, 2]}}});
        assert_eq!(
            shaped(found.clone(), Some("order.items")).await,
            (StatusCode::OK, serde_json::json!([1, 2]))
        );
        assert_eq!(shaped(found.clone(), None).await, (StatusCode::OK, found));
    }
}
