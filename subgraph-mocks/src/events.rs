//! Live event sources of the mocks, one per streaming field: `reviews`'
//! `Subscription.reviewAdded` (GraphQL over WebSocket), the `notifications` service's
//! `StreamNotifications` RPC (gRPC server streaming) and the `orders` service's
//! `GET /users/{id}/order-events` (server-sent events). Tests emit an item, fail the
//! streams, complete them, or drop their connections, through the handles
//! ([`crate::MockSubgraphs`], [`crate::MockServices`]) or
//! `POST /control/subscriptions/{reviews|notifications|orders}`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_graphql::futures_util::Stream;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};

use crate::conn::ConnHandle;

/// What every open stream of one source receives next.
#[derive(Clone, Debug)]
pub(crate) enum Live<T> {
    /// One item (from the fixed data set).
    Item(T),
    /// A failure: an error event where the protocol has them (GraphQL, SSE; the stream
    /// goes on), the end of the stream with an error status where it does not (gRPC).
    Fail(String),
    /// The end of every stream.
    Complete,
}

/// One event source and what its servers saw.
pub(crate) struct LiveEvents<T> {
    pub events: broadcast::Sender<Live<T>>,
    /// Bumped to drop every streaming connection without a close message.
    pub disconnect: watch::Sender<u64>,
    /// Streams open now.
    pub subscribers: watch::Sender<usize>,
    /// Streaming connections (or calls) accepted so far.
    pub connections: AtomicU64,
    /// The request headers of the last streaming connection (or call).
    pub last_headers: Mutex<Vec<(String, String)>>,
    /// The item an `emit` command names.
    find: fn(&str) -> Option<T>,
}

/// `reviewAdded`'s source.
pub(crate) type ReviewEvents = LiveEvents<&'static crate::data::Review>;

/// What a test asks of an event source.
pub(crate) enum Command<'a> {
    /// Send the item with this id.
    Emit(&'a str),
    Fail(&'a str),
    Complete,
    /// Drop every streaming connection without a close message.
    Disconnect,
}

impl<T: Clone + Send + 'static> LiveEvents<T> {
    pub fn new(find: fn(&str) -> Option<T>) -> Self {
        LiveEvents {
            events: broadcast::Sender::new(1024),
            disconnect: watch::Sender::new(0),
            subscribers: watch::Sender::new(0),
            connections: AtomicU64::new(0),
            last_headers: Mutex::new(Vec::new()),
            find,
        }
    }

    /// Send to every open stream; how many received it.
    pub fn send(&self, event: Live<T>) -> usize {
        self.events.send(event).unwrap_or(0)
    }

    pub fn note_connection(&self, headers: &axum::http::HeaderMap) {
        self.connections.fetch_add(1, Relaxed);
        let seen = headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        if let Ok(mut last) = self.last_headers.lock() {
            *last = seen;
        }
    }

    /// One subscriber's events: items and failures, until `Complete`. A disconnect kills
    /// `conn` (the connection the stream is served on) and ends the stream; without a
    /// connection handle the server watches [`LiveEvents::disconnect`] itself.
    pub fn stream(
        self: &Arc<Self>,
        conn: Option<ConnHandle>,
    ) -> impl Stream<Item = Result<T, String>> + Send + 'static + use<T> {
        let receiver = self.events.subscribe();
        let disconnect = self.disconnect.subscribe();
        let open = Subscriber::new(self.clone());
        async_graphql::futures_util::stream::unfold(
            (receiver, disconnect, open, conn),
            |(mut receiver, mut disconnect, open, conn)| async move {
                loop {
                    let next = tokio::select! {
                        next = receiver.recv() => next,
                        _ = disconnect.changed(), if conn.is_some() => {
                            if let Some(conn) = &conn {
                                conn.kill();
                            }
                            // The connection task drops this stream with the socket.
                            std::future::pending::<()>().await;
                            return None;
                        }
                    };
                    match next {
                        Ok(Live::Item(item)) => {
                            return Some((Ok(item), (receiver, disconnect, open, conn)));
                        }
                        Ok(Live::Fail(message)) => {
                            return Some((Err(message), (receiver, disconnect, open, conn)));
                        }
                        Ok(Live::Complete) | Err(RecvError::Closed) => return None,
                        Err(RecvError::Lagged(_)) => {}
                    }
                }
            },
        )
    }
}

/// An event source seen from the controls, whatever its items.
pub(crate) trait Controls: Send + Sync {
    /// How many streams the command reached; `Err` for an unknown id.
    fn apply(&self, command: Command<'_>) -> Result<usize, String>;
    fn open_streams(&self) -> watch::Receiver<usize>;
    /// `{"subscribers": open streams, "connections": accepted so far, "lastHeaders": {...}}`.
    fn status(&self) -> Value;
}

impl<T: Clone + Send + Sync + 'static> Controls for LiveEvents<T> {
    fn apply(&self, command: Command<'_>) -> Result<usize, String> {
        Ok(match command {
            Command::Emit(id) => {
                let item = (self.find)(id).ok_or_else(|| format!("no item {id}"))?;
                self.send(Live::Item(item))
            }
            Command::Fail(message) => self.send(Live::Fail(message.to_string())),
            Command::Complete => self.send(Live::Complete),
            Command::Disconnect => {
                let open = *self.subscribers.borrow();
                self.disconnect.send_modify(|n| *n += 1);
                open
            }
        })
    }

    fn open_streams(&self) -> watch::Receiver<usize> {
        self.subscribers.subscribe()
    }

    fn status(&self) -> Value {
        let headers: Map<String, Value> = self
            .last_headers
            .lock()
            .map(|h| {
                h.iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect()
            })
            .unwrap_or_default();
        json!({
            "subscribers": *self.subscribers.borrow(),
            "connections": self.connections.load(Relaxed),
            "lastHeaders": headers,
        })
    }
}

/// Wait until exactly `n` streams are open (or the timeout passes).
pub(crate) async fn wait_for_streams(live: &dyn Controls, n: usize, timeout: Duration) -> bool {
    let mut rx = live.open_streams();
    tokio::time::timeout(timeout, rx.wait_for(|&open| open == n))
        .await
        .is_ok_and(|r| r.is_ok())
}

/// `POST /control/subscriptions/NAME` with one of `{"emit": "<id>"}`, `{"fail":
/// "<message>"}`, `{"complete": true}`, `{"disconnect": true}`; answers `{"delivered":
/// <streams reached>}`.
pub(crate) fn control(live: &dyn Controls, body: &[u8]) -> Response {
    let Ok(Value::Object(command)) = serde_json::from_slice::<Value>(body) else {
        return (StatusCode::BAD_REQUEST, "expected a JSON object").into_response();
    };
    let command = if let Some(id) = command.get("emit").and_then(Value::as_str) {
        Command::Emit(id)
    } else if let Some(message) = command.get("fail").and_then(Value::as_str) {
        Command::Fail(message)
    } else if command.get("complete") == Some(&Value::Bool(true)) {
        Command::Complete
    } else if command.get("disconnect") == Some(&Value::Bool(true)) {
        Command::Disconnect
    } else {
        return (
            StatusCode::BAD_REQUEST,
            "expected `emit`, `fail`, `complete` or `disconnect`",
        )
            .into_response();
    };
    match live.apply(command) {
        Ok(delivered) => axum::Json(json!({ "delivered": delivered })).into_response(),
        Err(e) => (StatusCode::NOT_FOUND, e).into_response(),
    }
}

/// Counts one open stream while alive.
pub(crate) struct Subscriber<T>(Arc<LiveEvents<T>>);

impl<T> Subscriber<T> {
    fn new(events: Arc<LiveEvents<T>>) -> Self {
        events.subscribers.send_modify(|n| *n += 1);
        Subscriber(events)
    }
}

impl<T> Drop for Subscriber<T> {
    fn drop(&mut self) {
        self.0.subscribers.send_modify(|n| *n = n.saturating_sub(1));
    }
}
