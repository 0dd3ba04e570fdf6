//! GraphQL over WebSocket with the `graphql-transport-ws` protocol (the protocol of the
//! `graphql-ws` library) on `/graphql` and every `/bff/{client}/graphql`.
//!
//! The client authenticates in `connection_init`: its payload's string entries (at the
//! top level or under `headers`) count as request headers on top of the upgrade
//! request's, and go through the same authenticator as HTTP requests; a BFF's auth mode
//! applies too. Each `subscribe` is one operation: a subscription streams `next`
//! messages until `complete`, a query or mutation sends one. Each counts against the
//! client's rate limit.
//!
//! One task per connection owns the socket. Every operation runs in its own task and
//! queues its messages for the connection (bounded): a client that does not read is
//! closed (1008) instead of holding memory or slowing the upstream for others. Close
//! codes are the protocol's: 4400 bad message, 4401 `subscribe` before the ack, 4403
//! refused credentials, 4408 no `connection_init` in time, 4409 an id already in use,
//! 4429 a second `connection_init`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};
use tokio::sync::{Notify, mpsc};
use tokio::task::AbortHandle;

use crate::bff::Bff;
use crate::common::principal::Principal;
use crate::request::{Request, RequestContext};
use crate::telemetry;

use super::http::decode_request;
use super::state::AppState;
use super::streaming::{StreamSlot, StreamingConfig};

/// The subprotocol clients ask for.
pub const PROTOCOL: &str = "graphql-transport-ws";

/// The socket read buffer per connection: client messages are small, and a larger
/// frame reserves its own length.
const READ_BUFFER_BYTES: usize = 1024;

/// A WebSocket upgrade request, with the peer address for rate limits.
pub(super) struct Upgrade {
    socket: WebSocketUpgrade,
    peer: Option<IpAddr>,
    offered: bool,
}

/// `None` for every request that is not an upgrade, and for all when WebSocket is off
/// (the request is then an ordinary GET).
impl OptionalFromRequestParts<Arc<AppState>> for Upgrade {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Option<Self>, Response> {
        let upgrade = parts
            .headers
            .get(axum::http::header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
        if !upgrade || !state.streaming.websocket {
            return Ok(None);
        }
        let socket = WebSocketUpgrade::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let offered = socket
            .requested_protocols()
            .any(|p| p.as_bytes().eq_ignore_ascii_case(PROTOCOL.as_bytes()));
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(Some(Upgrade {
            socket,
            peer,
            offered,
        }))
    }
}

/// Accept the upgrade for the unified endpoint (`bff: None`) or a BFF, with its limits.
pub(super) fn accept(
    state: Arc<AppState>,
    upgrade: Upgrade,
    headers: HeaderMap,
    bff: Option<&Bff>,
) -> Response {
    let settings = state.streaming_of(bff);
    let client = bff.map(|b| b.name().to_string());
    let stream_scope = super::state::stream_scope(bff).map(str::to_string);
    let Upgrade {
        socket,
        peer,
        offered,
    } = upgrade;
    // Small buffers: an idle subscription must cost little (tungstenite's defaults
    // are 128 KiB each way per connection). Every send flushes, so the write buffer
    // only holds the message being written.
    let socket = socket
        .protocols([PROTOCOL])
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .max_message_size(settings.max_message_bytes)
        .max_frame_size(settings.max_message_bytes);
    socket.on_upgrade(move |socket| async move {
        let connection = Connection {
            state,
            settings,
            stream_scope,
            client,
            headers: Arc::new(owned_headers(headers)),
            peer,
            principal: None,
            init_received: false,
            operations: HashMap::new(),
        };
        connection.serve(socket, offered).await;
    })
}

/// The upgrade request's headers in storage of their own. hyper's header values are
/// slices of the connection's read buffer (16 KiB), which a long-lived connection
/// would otherwise keep alive for its whole life; the handshake's own headers are
/// dropped, as nothing downstream reads them.
fn owned_headers(headers: HeaderMap) -> HeaderMap {
    use axum::http::{HeaderValue, header};
    let mut owned = HeaderMap::with_capacity(headers.len());
    for (name, value) in &headers {
        let handshake = matches!(
            name,
            &header::SEC_WEBSOCKET_KEY
                | &header::SEC_WEBSOCKET_VERSION
                | &header::SEC_WEBSOCKET_EXTENSIONS
                | &header::SEC_WEBSOCKET_PROTOCOL
                | &header::UPGRADE
                | &header::CONNECTION
        );
        if handshake {
            continue;
        }
        if let Ok(mut copy) = HeaderValue::from_bytes(value.as_bytes()) {
            copy.set_sensitive(value.is_sensitive());
            owned.append(name.clone(), copy);
        }
    }
    owned
}

/// What operation tasks queue for the client.
enum Out {
    Next { id: Arc<str>, payload: Vec<u8> },
    Error { id: Arc<str>, errors: Vec<Json> },
    Complete { id: Arc<str> },
}

/// Why the server closes a connection.
struct Close(u16, String);

impl Close {
    fn new(code: u16, reason: impl Into<String>) -> Self {
        // Close reasons are limited to 123 bytes.
        let mut reason = reason.into();
        if reason.len() > 120 {
            let mut cut = 120;
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            reason.truncate(cut);
        }
        Close(code, reason)
    }
}

#[derive(Deserialize)]
struct Incoming {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    payload: Option<Json>,
}

struct Connection {
    state: Arc<AppState>,
    /// The endpoint's stream limits, and where its client's streams are counted
    /// (`state::stream_scope`), fixed when the connection opens.
    settings: StreamingConfig,
    stream_scope: Option<String>,
    /// The BFF the connection was opened on; `None`: the unified endpoint.
    client: Option<String>,
    /// The upgrade request's headers, and after `connection_init` its payload's;
    /// shared by every operation of the connection.
    headers: Arc<HeaderMap>,
    peer: Option<IpAddr>,
    principal: Option<Arc<Principal>>,
    init_received: bool,
    operations: HashMap<Arc<str>, AbortHandle>,
}

impl Connection {
    async fn serve(mut self, mut socket: WebSocket, offered: bool) {
        let _open = self.state.metrics.connection_active();
        if !offered {
            close(
                &mut socket,
                Close::new(4406, format!("Subprotocol not acceptable: use {PROTOCOL}")),
            )
            .await;
            return;
        }
        let settings = self.settings.clone();
        let (queue, mut outbox) = mpsc::channel::<Out>(settings.max_buffered_messages.max(1));
        let overflow = Arc::new(Notify::new());
        let init_deadline = tokio::time::sleep(settings.init_timeout);
        tokio::pin!(init_deadline);
        let idle_for = settings.idle_timeout;
        let idle = tokio::time::sleep(idle_for);
        tokio::pin!(idle);
        let mut keepalive = tokio::time::interval(if settings.keepalive.is_zero() {
            std::time::Duration::from_secs(3600 * 24 * 365)
        } else {
            settings.keepalive
        });
        keepalive.reset();
        let mut closing = self.state.closing.subscribe();
        let outcome: Option<Close> = loop {
            // Idle time counts from when the last operation ended.
            if !self.operations.is_empty() && !idle_for.is_zero() {
                idle.as_mut().reset(tokio::time::Instant::now() + idle_for);
            }
            tokio::select! {
                () = &mut idle, if !idle_for.is_zero() && self.operations.is_empty() => {
                    break Some(Close::new(1000, format!(
                        "idle: no operation for {}s", idle_for.as_secs_f64()
                    )));
                }
                _ = closing.changed() => {
                    break Some(Close::new(1001, "the gateway is shutting down"));
                }
                () = overflow.notified() => {
                    break Some(Close::new(1008, format!(
                        "too slow: more than {} messages waiting", settings.max_buffered_messages
                    )));
                }
                () = &mut init_deadline, if !self.init_received => {
                    break Some(Close::new(4408, "Connection initialisation timeout"));
                }
                _ = keepalive.tick(), if !settings.keepalive.is_zero() => {
                    if !write(&mut socket, r#"{"type":"ping"}"#.into(), &settings).await {
                        break None;
                    }
                }
                Some(out) = outbox.recv() => {
                    let text = self.outgoing(out);
                    if !write(&mut socket, text, &settings).await {
                        break None;
                    }
                }
                incoming = socket.recv() => {
                    let text = match incoming {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Binary(_))) => {
                            break Some(Close::new(4400, "binary messages are not part of the protocol"));
                        }
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break None,
                    };
                    match self.incoming(text.as_str(), &queue, &overflow).await {
                        Ok(Some(reply)) => {
                            if !write(&mut socket, reply, &settings).await {
                                break None;
                            }
                        }
                        Ok(None) => {}
                        Err(close) => break Some(close),
                    }
                }
            }
        };
        for (_, task) in self.operations.drain() {
            task.abort();
        }
        if let Some(reason) = outcome {
            close(&mut socket, reason).await;
        }
    }

    /// A queued message as text; operations that end leave the table first, so the
    /// client may reuse the id as soon as it reads the message.
    fn outgoing(&mut self, out: Out) -> String {
        match out {
            Out::Next { id, payload } => {
                let mut text = Vec::with_capacity(payload.len() + id.len() + 40);
                text.extend_from_slice(b"{\"id\":");
                crate::sources::value::write_json_string(&mut text, id.as_bytes());
                text.extend_from_slice(b",\"type\":\"next\",\"payload\":");
                text.extend_from_slice(&payload);
                text.push(b'}');
                String::from_utf8(text).unwrap_or_default()
            }
            Out::Error { id, errors } => {
                self.operations.remove(&id);
                json!({"id": &*id, "type": "error", "payload": errors}).to_string()
            }
            Out::Complete { id } => {
                self.operations.remove(&id);
                json!({"id": &*id, "type": "complete"}).to_string()
            }
        }
    }

    /// Handle one client message: `Ok(Some(text))` answers at once, `Err` closes.
    async fn incoming(
        &mut self,
        text: &str,
        queue: &mpsc::Sender<Out>,
        overflow: &Arc<Notify>,
    ) -> Result<Option<String>, Close> {
        let message: Incoming = serde_json::from_str(text)
            .map_err(|e| Close::new(4400, format!("Invalid message received: {e}")))?;
        match message.kind.as_str() {
            "connection_init" => self.init(message.payload).await.map(Some),
            "ping" => Ok(Some(r#"{"type":"pong"}"#.into())),
            "pong" => Ok(None),
            "subscribe" => {
                let Some(principal) = self.principal.clone() else {
                    return Err(Close::new(4401, "Unauthorized"));
                };
                let id: Arc<str> = match message.id {
                    Some(id) if !id.is_empty() => id.into(),
                    _ => return Err(Close::new(4400, "`subscribe` needs an `id`")),
                };
                if self.operations.contains_key(&id) {
                    return Err(Close::new(
                        4409,
                        format!("Subscriber for {id} already exists"),
                    ));
                }
                let Some(Json::Object(payload)) = message.payload else {
                    return Err(Close::new(4400, "`subscribe` needs a `payload` object"));
                };
                let slot = match self.admit(&principal).await {
                    Ok(slot) => slot,
                    Err(refused) => return Ok(Some(error_message(&id, refused))),
                };
                let request = decode_request(
                    payload.get("query"),
                    payload.get("operationName"),
                    payload.get("variables").cloned(),
                    payload.get("extensions").cloned(),
                )
                .map_err(|e| Close::new(4400, format!("Invalid message received: {e}")))?;
                let task = tokio::spawn(run(
                    self.state.clone(),
                    self.client.clone(),
                    self.headers.clone(),
                    principal,
                    request,
                    id.clone(),
                    queue.clone(),
                    overflow.clone(),
                    slot,
                ));
                self.operations.insert(id, task.abort_handle());
                Ok(None)
            }
            "complete" => {
                if let Some(task) = message.id.and_then(|id| self.operations.remove(&*id)) {
                    task.abort();
                }
                Ok(None)
            }
            other => Err(Close::new(
                4400,
                format!("Invalid message received: unknown type `{other}`"),
            )),
        }
    }

    /// `connection_init`: authenticate with the upgrade's headers and the payload's.
    async fn init(&mut self, payload: Option<Json>) -> Result<String, Close> {
        if self.init_received {
            return Err(Close::new(4429, "Too many initialisation requests"));
        }
        self.init_received = true;
        match payload {
            None | Some(Json::Null) => {}
            Some(Json::Object(payload)) => add_headers(Arc::make_mut(&mut self.headers), &payload),
            Some(_) => {
                return Err(Close::new(
                    4400,
                    "the `connection_init` payload must be an object",
                ));
            }
        }
        let access = self.state.access.load_full();
        let principal = match access.auth.authenticate(&self.headers).await {
            Ok(p) => p,
            Err(error) => {
                self.state.metrics.auth_failure(error.reason());
                return Err(Close::new(4403, format!("Forbidden: {error}")));
            }
        };
        if let Some(name) = &self.client {
            let bff = self.state.engine.load().bffs.get(name).cloned();
            let Some(bff) = bff else {
                return Err(Close::new(
                    4403,
                    format!("Forbidden: no BFF named `{name}`"),
                ));
            };
            if let Err(wanted) = bff.admits(
                Some(&principal),
                self.headers.contains_key(axum::http::header::AUTHORIZATION),
            ) {
                return Err(Close::new(
                    4403,
                    format!("Forbidden: the `{name}` endpoint requires {wanted}"),
                ));
            }
        }
        self.principal = Some(Arc::new(principal));
        Ok(r#"{"type":"connection_ack"}"#.into())
    }

    /// Per operation: the connection's limit, the client's stream limit and rate
    /// limit. The place it takes among the client's streams, or the refusal as a
    /// GraphQL error.
    async fn admit(&self, principal: &Principal) -> Result<Option<StreamSlot>, Json> {
        let limit = self.settings.max_subscriptions;
        if self.operations.len() >= limit {
            return Err(json!({
                "message": format!("at most {limit} operations may run on one connection"),
                "extensions": { "code": "SUBSCRIPTION_LIMIT" },
            }));
        }
        let slot =
            self.state
                .take_stream(principal, &self.settings, self.stream_scope.as_deref())?;
        let access = self.state.access.load_full();
        let Some(limiter) = access.limiter.as_ref() else {
            return Ok(slot);
        };
        let ip = limiter.client_ip(self.peer, &self.headers);
        match limiter.check(principal, ip).await {
            Ok(decision) if decision.allowed => Ok(slot),
            Ok(decision) => {
                self.state.metrics.rate_limited(&decision.tier);
                let retry = super::ratelimit::ceil_secs(decision.retry_after).max(1);
                Err(json!({
                    "message": format!("rate limit exceeded; retry in {retry}s"),
                    "extensions": { "code": "RATE_LIMITED" },
                }))
            }
            Err(error) => Err(json!({
                "message": error.to_string(),
                "extensions": { "code": "RATE_LIMIT_UNAVAILABLE" },
            })),
        }
    }
}

/// One operation, from planning to its last message.
#[allow(clippy::too_many_arguments)]
async fn run(
    state: Arc<AppState>,
    client: Option<String>,
    headers: Arc<HeaderMap>,
    principal: Arc<Principal>,
    request: Request,
    id: Arc<str>,
    queue: mpsc::Sender<Out>,
    overflow: Arc<Notify>,
    _slot: Option<StreamSlot>,
) {
    // The schema version at the start of the operation serves it to its end.
    let engine = state.engine.load_full();
    let view = match &client {
        Some(name) => match engine.bffs.get(name) {
            Some(bff) => Some(bff.clone()),
            None => {
                let error = json!({"message": format!("no BFF named `{name}`"), "extensions": {"code": "NOT_FOUND"}});
                let _ = queue
                    .send(Out::Error {
                        id,
                        errors: vec![error],
                    })
                    .await;
                return;
            }
        },
        None => None,
    };
    let label = client.as_deref().unwrap_or("unified");
    let context = RequestContext {
        request_id: telemetry::request_id(None),
        expose_plan: false,
        client_headers: headers,
        principal: principal.is_authenticated().then(|| principal.clone()),
        // Queries and mutations have one; a subscription's events run without.
        deadline: engine
            .deadline(view.as_deref())
            .map(|d| tokio::time::Instant::now() + d),
        uploads: None,
    };
    let mut responses = match engine
        .stream_as(view.as_deref(), &request, false, true, &context, &principal)
        .await
    {
        Ok(responses) => responses,
        Err(error) => {
            let errors = error.graphql_errors();
            let _ = queue.send(Out::Error { id, errors }).await;
            return;
        }
    };
    let _running = state.metrics.subscription_active(label);
    while let Some(response) = responses.next().await {
        let next = Out::Next {
            id: id.clone(),
            payload: response.into_bytes(),
        };
        match queue.try_send(next) {
            Ok(()) => state.metrics.event_sent(label),
            Err(mpsc::error::TrySendError::Full(_)) => {
                overflow.notify_one();
                return;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
    let _ = queue.send(Out::Complete { id }).await;
}

/// The payload's string entries as headers (`{"Authorization": "Bearer ..."}` or
/// `{"headers": {...}}`, as clients commonly send them); they override the upgrade's.
fn add_headers(headers: &mut HeaderMap, payload: &Map<String, Json>) {
    let nested = payload.get("headers").and_then(Json::as_object);
    for (name, value) in payload.iter().chain(nested.into_iter().flatten()) {
        let Some(value) = value.as_str() else {
            continue;
        };
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    }
}

fn error_message(id: &str, error: Json) -> String {
    json!({"id": id, "type": "error", "payload": [error]}).to_string()
}

/// Send one message, or give up on a client that does not take it in time.
async fn write(socket: &mut WebSocket, text: String, settings: &StreamingConfig) -> bool {
    matches!(
        tokio::time::timeout(
            settings.write_timeout,
            socket.send(Message::Text(text.into()))
        )
        .await,
        Ok(Ok(()))
    )
}

async fn close(socket: &mut WebSocket, Close(code, reason): Close) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(1),
        socket.send(Message::Close(Some(frame))),
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_headers_own_their_bytes() {
        // As hyper parses them: every value a slice of one shared buffer.
        let buffer = bytes::Bytes::from_static(b"Bearer t0kenwebsocketkey==");
        let mut headers = HeaderMap::new();
        let value = |range: std::ops::Range<usize>| {
            HeaderValue::from_maybe_shared(buffer.slice(range))
                .unwrap_or(HeaderValue::from_static("?"))
        };
        headers.insert("authorization", value(0..12));
        headers.insert("sec-websocket-key", value(12..26));
        let owned = owned_headers(headers);
        let kept = owned.get("authorization").map(HeaderValue::as_bytes);
        assert_eq!(kept, Some(&b"Bearer t0ken"[..]));
        let in_buffer = buffer.as_ptr_range();
        assert!(kept.is_some_and(|v| !in_buffer.contains(&v.as_ptr())));
        assert!(owned.get("sec-websocket-key").is_none());
    }

    #[test]
    fn payload_entries_become_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", HeaderValue::from_static("from-upgrade"));
        let payload = json!({
            "Authorization": "Bearer t",
            "headers": {"x-api-key": "from-payload"},
            "retries": 3,
            "bad name": "x",
        });
        add_headers(&mut headers, payload.as_object().unwrap_or(&Map::new()));
        assert_eq!(
            headers.get("authorization").map(|v| v.as_bytes()),
            Some(&b"Bearer t"[..])
        );
        assert_eq!(
            headers.get("x-api-key").map(|v| v.as_bytes()),
            Some(&b"from-payload"[..])
        );
        assert!(headers.get("retries").is_none());
        assert_eq!(headers.len(), 2);
    }
}
