//! HTTP layer: the GraphQL endpoints (with counters, fault injection and a response cache) and
//! the `/control/...` routes, as an axum [`Router`].
//!
//! GraphQL-over-HTTP: `POST` with a JSON body (one operation or a JSON array batch), or `GET`
//! with `query`/`variables`/`operationName` in the query string (handled by
//! `async-graphql-axum`'s extractor and responder). Answers are JSON, typed
//! `application/graphql-response+json` when the request's `Accept` asks for it, else
//! `application/json`.
//!
//! Answers are kept per subgraph in a response cache ([`crate::state`]).
//!
//! Subscriptions (and any operation) also go over WebSocket (`graphql-transport-ws`, on an
//! upgrade) and over server-sent events (`graphql-sse`, distinct connections mode: a POST
//! that accepts `text/event-stream` is answered with `next` events and `complete`).

use std::sync::Arc;
use std::time::Duration;

use async_graphql::{BatchRequest, BatchResponse};
use async_graphql_axum::{GraphQLProtocol, GraphQLRequest, GraphQLResponse};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::{Map, Value, json};

use crate::conn::ConnHandle;
use crate::fault::Counters;
use crate::state::{Cached, OpCounts, Shared};
use crate::subgraphs::{self, SUBGRAPHS};

/// Largest accepted request body.
const MAX_BODY: usize = 16 << 20;
/// The router serving the given subgraphs (by index in [`SUBGRAPHS`]) at `/<name>`, plus the
/// control routes for all subgraphs and the dev JWT issuer ([`crate::issuer`]).
pub(crate) fn router(shared: Arc<Shared>, subgraphs: &[usize]) -> Router {
    let mut router = Router::new();
    for &i in subgraphs {
        router = router.route(
            &format!("/{}", SUBGRAPHS[i]),
            any(move |State(s): State<Arc<Shared>>, req: Request| graphql(s, i, req)),
        );
    }
    router
        .route("/control/stats", get(control_stats))
        .route("/control/reset", post(control_reset))
        .route("/control/faults", get(control_faults))
        .route(
            "/control/fault/{subgraph}",
            get(control_get_fault).post(control_set_fault),
        )
        .route(
            "/control/subscriptions/reviews",
            get(control_get_subscriptions).post(control_subscriptions),
        )
        .with_state(shared)
        .merge(crate::issuer::router())
}

enum Work {
    Cached(Cached),
    Execute {
        batch: Box<BatchRequest>,
        ops: OpCounts,
        cache_key: Option<Bytes>,
    },
}

async fn graphql(shared: Arc<Shared>, index: usize, req: Request) -> Response {
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if upgrade {
        return websocket(shared, index, req).await;
    }
    let wants_events = req.method() == Method::POST
        && req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/event-stream"));
    if wants_events {
        return event_stream(shared, index, req).await;
    }
    let sg = &shared.subgraphs[index];
    let c = &sg.counters;
    Counters::add(&c.requests, 1);
    let conn = req.extensions().get::<ConnHandle>().cloned();
    let content_type = response_content_type(req.headers());

    let work = match *req.method() {
        Method::POST => {
            let body = match axum::body::to_bytes(req.into_body(), MAX_BODY).await {
                Ok(body) => body,
                Err(e) => return bad_request(c, &format!("cannot read request body: {e}")),
            };
            match sg.cache.get(&body) {
                Some(hit) => Work::Cached(hit),
                None => match parse_post(&body) {
                    Ok(batch) => Work::Execute {
                        ops: classify(&batch),
                        batch: Box::new(batch),
                        cache_key: Some(body),
                    },
                    Err(e) => return bad_request(c, &format!("invalid GraphQL request: {e}")),
                },
            }
        }
        Method::GET => match GraphQLRequest::<BadRequest>::from_request(req, &()).await {
            Ok(r) => {
                let batch = BatchRequest::Single(r.into_inner());
                Work::Execute {
                    ops: classify(&batch),
                    batch: Box::new(batch),
                    cache_key: None,
                }
            }
            Err(e) => return bad_request(c, &e.0),
        },
        _ => {
            return (
                StatusCode::METHOD_NOT_ALLOWED,
                [(header::ALLOW, "GET, POST")],
            )
                .into_response();
        }
    };
    let ops = match &work {
        Work::Cached(hit) => hit.ops,
        Work::Execute { ops, .. } => *ops,
    };
    Counters::add(&c.entity_requests, ops.entity);
    Counters::add(&c.root_requests, ops.root);
    Counters::add(&c.representations, ops.representations);

    if !sg.gate.pass().await {
        return json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            content_type,
            json!({ "errors": [{ "message": format!("gate timed out ({}): the requests did not arrive together", sg.name) }] }).to_string(),
        );
    }
    let fault = sg.fault.get();
    if fault.down {
        return drop_connection(c, conn).await;
    }
    if fault.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(fault.latency_ms)).await;
        if sg.fault.is_down() {
            return drop_connection(c, conn).await;
        }
    }
    if sg.fault.next_is_500(&fault) {
        Counters::add(&c.injected_http_500, 1);
        let body = json!({ "errors": [{ "message": format!("injected HTTP 500 ({})", sg.name) }] });
        return json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            content_type,
            body.to_string(),
        );
    }
    if sg.fault.next_is_graphql_error(&fault) {
        Counters::add(&c.injected_graphql_errors, 1);
        let one = json!({
            "data": null,
            "errors": [{ "message": format!("injected GraphQL error ({})", sg.name) }],
        });
        let body = if ops.batched {
            Value::Array(vec![one; (ops.entity + ops.root) as usize])
        } else {
            one
        };
        return json_response(StatusCode::OK, content_type, body.to_string());
    }

    match work {
        Work::Cached(hit) => {
            Counters::add(&c.cache_hits, 1);
            json_response(StatusCode::OK, content_type, hit.body)
        }
        Work::Execute {
            batch,
            ops,
            cache_key: Some(key),
        } => {
            let response = sg.schema.execute_batch(*batch).await;
            let body = match serde_json::to_vec(&response) {
                Ok(b) => Bytes::from(b),
                Err(e) => {
                    let msg = format!("cannot serialize response: {e}");
                    return json_response(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        content_type,
                        json!({ "errors": [{ "message": msg }] }).to_string(),
                    );
                }
            };
            sg.cache.insert(
                &key,
                Cached {
                    body: body.clone(),
                    ops,
                },
            );
            json_response(StatusCode::OK, content_type, body)
        }
        Work::Execute {
            batch,
            cache_key: None,
            ..
        } => {
            let response: BatchResponse = sg.schema.execute_batch(*batch).await;
            GraphQLResponse::from(response).into_response()
        }
    }
}

/// GraphQL over WebSocket (async-graphql's own server): subscriptions, and queries too.
async fn websocket(shared: Arc<Shared>, index: usize, req: Request) -> Response {
    let (mut parts, _) = req.into_parts();
    let protocol = match GraphQLProtocol::from_request_parts(&mut parts, &()).await {
        Ok(p) => p,
        Err(status) => return status.into_response(),
    };
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(u) => u,
        Err(rejection) => return rejection.into_response(),
    };
    let sg = &shared.subgraphs[index];
    if sg.fault.get().down {
        let conn = parts.extensions.get::<ConnHandle>().cloned();
        return drop_connection(&sg.counters, conn).await;
    }
    let events = shared.events.clone();
    events.note_connection(&parts.headers);
    let schema = sg.schema;
    let mut disconnect = events.disconnect.subscribe();
    upgrade
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| async move {
            // A disconnect drops the socket mid-stream, without a close message.
            tokio::select! {
                () = schema.serve_websocket(socket, protocol, events) => {}
                _ = disconnect.changed() => {}
            }
        })
}

/// GraphQL over server-sent events: the operation's responses as `next` events, then
/// `complete`. A disconnect (the controls) drops the connection mid-stream.
async fn event_stream(shared: Arc<Shared>, index: usize, req: Request) -> Response {
    use async_graphql::futures_util::{StreamExt, future, stream};
    let sg = &shared.subgraphs[index];
    let c = &sg.counters;
    Counters::add(&c.requests, 1);
    let conn = req.extensions().get::<ConnHandle>().cloned();
    if sg.fault.get().down {
        return drop_connection(c, conn).await;
    }
    let events = shared.events.clone();
    events.note_connection(req.headers());
    let body = match axum::body::to_bytes(req.into_body(), MAX_BODY).await {
        Ok(body) => body,
        Err(e) => return bad_request(c, &format!("cannot read request body: {e}")),
    };
    let request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(c, &format!("invalid GraphQL request: {e}")),
    };
    Counters::add(&c.root_requests, 1);
    let mut disconnect = events.disconnect.subscribe();
    let dropped = async move {
        let _ = disconnect.changed().await;
        if let Some(conn) = conn {
            conn.kill();
        }
        // The connection task drops this body with the socket.
        future::pending::<()>().await
    };
    let frames = sg
        .schema
        .execute_stream(request, events)
        .map(|response| {
            let data = serde_json::to_string(&response).unwrap_or_default();
            format!("event: next\ndata: {data}\n\n")
        })
        .chain(stream::once(future::ready(
            "event: complete\ndata:\n\n".to_string(),
        )))
        .take_until(dropped)
        .map(Ok::<_, std::convert::Infallible>);
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(frames),
    )
        .into_response()
}

/// `GET /control/subscriptions/reviews`: see [`crate::events::Controls::status`].
async fn control_get_subscriptions(State(s): State<Arc<Shared>>) -> Response {
    axum::Json(crate::events::Controls::status(&*s.events)).into_response()
}

/// `POST /control/subscriptions/reviews`: see [`crate::events::control`] (`emit` takes
/// a review id).
async fn control_subscriptions(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    crate::events::control(&*s.events, &body)
}

/// Closes the request's connection without answering (the connection task drops the socket,
/// which also drops this handler's future).
async fn drop_connection(c: &Counters, conn: Option<ConnHandle>) -> Response {
    Counters::add(&c.dropped, 1);
    match conn {
        Some(conn) => {
            conn.kill();
            std::future::pending().await
        }
        // Not served by our connection loop (cannot happen in practice): closest behaviour.
        None => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

fn parse_post(body: &[u8]) -> serde_json::Result<BatchRequest> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        serde_json::from_slice(body).map(BatchRequest::Batch)
    } else {
        serde_json::from_slice(body).map(BatchRequest::Single)
    }
}

fn classify(batch: &BatchRequest) -> OpCounts {
    let mut ops = OpCounts::default();
    let mut one = |r: &async_graphql::Request| {
        if r.query.contains("_entities") {
            ops.entity += 1;
            // Every list of `{__typename, ...}` objects is a representations variable,
            // whatever its name (gateways alias several `_entities` calls in one request).
            for value in r.variables.values() {
                if let async_graphql::Value::List(list) = value
                    && list.iter().all(|item| {
                        matches!(item, async_graphql::Value::Object(o) if o.contains_key("__typename"))
                    })
                {
                    ops.representations += list.len() as u64;
                }
            }
        } else {
            ops.root += 1;
        }
    };
    match batch {
        BatchRequest::Single(r) => one(r),
        BatchRequest::Batch(rs) => {
            rs.iter().for_each(one);
            ops.batched = true;
        }
    }
    ops
}

fn response_content_type(headers: &HeaderMap) -> &'static str {
    let wants_graphql_response = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/graphql-response+json"));
    if wants_graphql_response {
        "application/graphql-response+json"
    } else {
        "application/json"
    }
}

fn json_response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Body>,
) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn bad_request(c: &Counters, message: &str) -> Response {
    Counters::add(&c.bad_requests, 1);
    json_response(
        StatusCode::BAD_REQUEST,
        "application/json",
        json!({ "errors": [{ "message": message }] }).to_string(),
    )
}

/// Rejection of the GET extractor, turned into our JSON 400.
struct BadRequest(String);

impl From<async_graphql::ParseRequestError> for BadRequest {
    fn from(e: async_graphql::ParseRequestError) -> Self {
        Self(format!("invalid GraphQL request: {e}"))
    }
}

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        (StatusCode::BAD_REQUEST, self.0).into_response()
    }
}

/// `GET /control/stats`: `{"accounts": Stats, "inventory": Stats, ...}`.
async fn control_stats(State(s): State<Arc<Shared>>) -> Response {
    let mut map = Map::new();
    for (name, stats) in s.all_stats() {
        map.insert(name.to_owned(), json!(stats));
    }
    axum::Json(Value::Object(map)).into_response()
}

/// `POST /control/reset`: zeroes all counters (faults are kept).
async fn control_reset(State(s): State<Arc<Shared>>) -> StatusCode {
    s.reset_stats();
    StatusCode::NO_CONTENT
}

/// `GET /control/faults`: `{"accounts": Fault, ...}`.
async fn control_faults(State(s): State<Arc<Shared>>) -> Response {
    let mut map = Map::new();
    for (i, name) in SUBGRAPHS.iter().enumerate() {
        map.insert((*name).to_owned(), json!(s.subgraphs[i].fault.get()));
    }
    axum::Json(Value::Object(map)).into_response()
}

/// Subgraph indices addressed by a control path segment (`all` means every subgraph).
fn targets(subgraph: &str) -> Option<Vec<usize>> {
    if subgraph == "all" {
        Some((0..SUBGRAPHS.len()).collect())
    } else {
        subgraphs::index_of(subgraph).map(|i| vec![i])
    }
}

/// `GET /control/fault/{subgraph}`.
async fn control_get_fault(State(s): State<Arc<Shared>>, Path(subgraph): Path<String>) -> Response {
    match subgraphs::index_of(&subgraph) {
        Some(i) => axum::Json(s.subgraphs[i].fault.get()).into_response(),
        None => unknown_subgraph(&subgraph),
    }
}

/// `POST /control/fault/{subgraph}` (or `all`) with a JSON [`crate::fault::Fault`] body (all fields
/// optional; an empty body clears the fault). Answers once the fault is in effect (in separate
/// mode: once the listener is closed or re-bound) with the stored fault.
async fn control_set_fault(
    State(s): State<Arc<Shared>>,
    Path(subgraph): Path<String>,
    body: Bytes,
) -> Response {
    let Some(indices) = targets(&subgraph) else {
        return unknown_subgraph(&subgraph);
    };
    let fault: crate::fault::Fault = if body.iter().all(u8::is_ascii_whitespace) {
        crate::fault::Fault::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(f) => f,
            Err(e) => {
                return (StatusCode::BAD_REQUEST, format!("invalid fault: {e}")).into_response();
            }
        }
    };
    for &i in &indices {
        s.set_fault(i, fault);
    }
    for &i in &indices {
        s.wait_applied(i).await;
    }
    axum::Json(fault.normalized()).into_response()
}

fn unknown_subgraph(name: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        format!("unknown subgraph `{name}` (expected one of {SUBGRAPHS:?} or `all`)"),
    )
        .into_response()
}
