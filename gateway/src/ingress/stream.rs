//! Streaming GraphQL over HTTP, chosen by the `Accept` header: Server-Sent Events as
//! the `graphql-sse` protocol defines them ("distinct connections": one stream per
//! operation, `next` events then `complete`), Apollo's multipart subscriptions
//! (`multipart/mixed;subscriptionSpec="1.0"`: one JSON part per event, `{}` parts as
//! heartbeats), and multipart incremental delivery for `@defer`
//! (`multipart/mixed;deferSpec=20220824`). Subscriptions stream their events, queries
//! with `@defer` their payloads (over SSE too); other operations send one.
//!
//! The body is pulled by hyper as the socket drains, so a slow client slows only its
//! own subscription (its upstream connection stops being read), never the others, and
//! nothing piles up in memory. A client that goes away drops the stream, which ends
//! the upstream subscription.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

use crate::bff::Bff;
use crate::common::principal::Principal;
use crate::executor::stream::ResponseStream;
use crate::pipeline::Engine;
use crate::request::{Request, RequestContext};
use crate::telemetry::metrics::Active;

use super::http::{GRAPHQL_RESPONSE, JSON, MediaType, RequestInfo, negotiate};
use super::state::AppState;
use super::streaming::StreamSlot;

const SSE: &str = "text/event-stream";
const MULTIPART: &str = "multipart/mixed";

/// How events are framed on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Framing {
    Sse,
    /// Apollo's multipart subscription protocol.
    Multipart,
    /// Multipart incremental delivery (`@defer`).
    Defer,
}

impl Framing {
    fn content_type(self) -> &'static str {
        match self {
            Framing::Sse => "text/event-stream; charset=utf-8",
            Framing::Multipart => "multipart/mixed;boundary=\"graphql\";subscriptionSpec=\"1.0\"",
            Framing::Defer => "multipart/mixed;boundary=\"graphql\";deferSpec=20220824",
        }
    }

    /// Whether `@defer` payloads may be sent one by one (subscription multipart wraps
    /// each event as a `payload` and has no place for them).
    fn incremental(self) -> bool {
        self != Framing::Multipart
    }

    /// What opens the body: SSE clients want bytes at once to see the headers. A
    /// multipart part is followed by the next delimiter right away, so that a client
    /// can read each part when it arrives.
    fn opening(self) -> &'static [u8] {
        match self {
            Framing::Sse => b":\n\n",
            Framing::Multipart | Framing::Defer => b"\r\n--graphql",
        }
    }

    fn event(self, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(payload.len() + 64);
        match self {
            Framing::Sse => {
                out.extend_from_slice(b"event: next\ndata: ");
                out.extend_from_slice(payload);
                out.extend_from_slice(b"\n\n");
            }
            Framing::Multipart => {
                out.extend_from_slice(b"\r\ncontent-type: application/json\r\n\r\n{\"payload\":");
                out.extend_from_slice(payload);
                out.extend_from_slice(b"}\r\n--graphql");
            }
            Framing::Defer => {
                out.extend_from_slice(b"\r\ncontent-type: application/json; charset=utf-8\r\n\r\n");
                out.extend_from_slice(payload);
                out.extend_from_slice(b"\r\n--graphql");
            }
        }
        out
    }

    /// `None`: the framing has no heartbeat (a deferred query is short-lived).
    fn heartbeat_frame(self) -> Option<&'static [u8]> {
        match self {
            Framing::Sse => Some(b":\n\n"),
            Framing::Multipart => {
                Some(b"\r\n--graphql\r\ncontent-type: application/json\r\n\r\n{}")
            }
            Framing::Defer => None,
        }
    }

    /// The last event when the server stops under a stream.
    fn shutdown_frame(self) -> Vec<u8> {
        let errors = br#"{"errors":[{"message":"the gateway is shutting down","extensions":{"code":"SHUTTING_DOWN"}}]}"#;
        match self {
            Framing::Multipart => {
                let mut out =
                    b"\r\ncontent-type: application/json\r\n\r\n{\"payload\":null,".to_vec();
                out.extend_from_slice(&errors[1..]);
                out.extend_from_slice(b"\r\n--graphql");
                out
            }
            other => other.event(errors),
        }
    }

    fn closing(self) -> &'static [u8] {
        match self {
            Framing::Sse => b"event: complete\ndata:\n\n",
            // The last delimiter becomes the closing one.
            Framing::Multipart | Framing::Defer => b"--\r\n",
        }
    }
}

/// What the client accepts: the media type of plain answers (and of errors found
/// before any streaming), and the streaming framing when it asks for one.
#[derive(Clone, Copy, Debug)]
pub(super) struct Accepted {
    pub(super) media: MediaType,
    pub(super) framing: Option<Framing>,
}

/// [`Accepted`] from the `Accept` header; `None`: nothing the gateway serves.
pub(super) fn accepted(headers: &HeaderMap) -> Option<Accepted> {
    let framing = framing_of(headers);
    let media = negotiate(headers).or(framing.map(|_| MediaType::Json))?;
    Some(Accepted { media, framing })
}

/// The streaming framing the client asks for: the first of the media types it lists
/// that the gateway serves, when that one streams.
pub(super) fn framing_of(headers: &HeaderMap) -> Option<Framing> {
    let accept = headers.get(header::ACCEPT)?.to_str().ok()?;
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let essence = parts.next().unwrap_or("").to_ascii_lowercase();
        match essence.as_str() {
            SSE => return Some(Framing::Sse),
            MULTIPART => {
                for p in parts {
                    let p = p.to_ascii_lowercase();
                    if p.strip_prefix("subscriptionspec=")
                        .is_some_and(|v| v.trim_matches('"') == "1.0")
                    {
                        return Some(Framing::Multipart);
                    }
                    if p.strip_prefix("deferspec=")
                        .is_some_and(|v| v.trim_matches('"') == "20220824")
                    {
                        return Some(Framing::Defer);
                    }
                }
            }
            JSON | GRAPHQL_RESPONSE | "*/*" | "application/*" => return None,
            _ => {}
        }
    }
    None
}

/// Run the request and stream its responses.
#[allow(clippy::too_many_arguments)]
pub(super) async fn respond(
    state: &AppState,
    engine: &Engine,
    context: RequestContext,
    principal: Arc<Principal>,
    client: String,
    request: Request,
    framing: Framing,
    over_get: bool,
    view: Option<Arc<Bff>>,
) -> Response {
    // Request errors (and a refused stream) are one event too, as graphql-sse does:
    // the client reads them where it reads results.
    let one = |errors: Vec<serde_json::Value>| -> ResponseStream {
        let response = crate::executor::Response {
            errors,
            ..Default::default()
        };
        Box::pin(futures::stream::once(async { response }))
    };
    let limits = state.streaming_of(view.as_deref());
    let scope = super::state::stream_scope(view.as_deref());
    let (events, outcome, slot) = match state.take_stream(&principal, &limits, scope) {
        Err(refused) => (one(vec![refused]), "rejected", None),
        Ok(slot) => match engine
            .stream_as(
                view.as_deref(),
                &request,
                over_get,
                framing.incremental(),
                &context,
                &principal,
            )
            .await
        {
            Ok(events) => (events, "ok", slot),
            Err(error) => (one(error.graphql_errors()), "request_error", None),
        },
    };
    let running = (state.metrics.subscription_active(&client), slot);
    let heartbeat = state.streaming.keepalive;
    let body = body(
        framing,
        heartbeat,
        events,
        running,
        state.metrics.clone(),
        client.clone(),
        state.closing.subscribe(),
    );
    let mut response = (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(framing.content_type()),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response();
    // Proxies (nginx) must not buffer the stream.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    response.extensions_mut().insert(RequestInfo {
        client,
        operation: request.operation_name,
        outcome,
        upstream_requests: 0,
    });
    response
}

struct BodyState {
    framing: Framing,
    events: ResponseStream,
    ticker: tokio::time::Interval,
    opened: bool,
    done: bool,
    metrics: Arc<crate::telemetry::Metrics>,
    client: String,
    closing: tokio::sync::watch::Receiver<bool>,
    _running: (Active, Option<StreamSlot>),
}

fn body(
    framing: Framing,
    heartbeat: Duration,
    events: ResponseStream,
    running: (Active, Option<StreamSlot>),
    metrics: Arc<crate::telemetry::Metrics>,
    client: String,
    closing: tokio::sync::watch::Receiver<bool>,
) -> Body {
    // Zero turns heartbeats off: a tick that never comes in practice.
    let every = if heartbeat.is_zero() {
        Duration::from_secs(365 * 24 * 3600)
    } else {
        heartbeat
    };
    let mut ticker = tokio::time::interval(every);
    ticker.reset();
    let state = BodyState {
        framing,
        events,
        ticker,
        opened: false,
        done: false,
        metrics,
        client,
        closing,
        _running: running,
    };
    Body::from_stream(futures::stream::unfold(state, |mut s| async move {
        if s.done {
            return None;
        }
        if !s.opened {
            s.opened = true;
            let opening = s.framing.opening();
            if !opening.is_empty() {
                return Some((
                    Ok::<_, std::convert::Infallible>(Bytes::from_static(opening)),
                    s,
                ));
            }
        }
        let frame = tokio::select! {
            next = s.events.next() => match next {
                Some(response) => {
                    s.metrics.event_sent(&s.client);
                    s.ticker.reset();
                    Bytes::from(s.framing.event(&response.into_bytes()))
                }
                None => {
                    s.done = true;
                    Bytes::from_static(s.framing.closing())
                }
            },
            _ = s.closing.changed() => {
                s.done = true;
                let mut last = s.framing.shutdown_frame();
                last.extend_from_slice(s.framing.closing());
                Bytes::from(last)
            }
            _ = s.ticker.tick(), if s.framing.heartbeat_frame().is_some() => {
                Bytes::from_static(s.framing.heartbeat_frame().unwrap_or_default())
            }
        };
        Some((Ok(frame), s))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn picks_the_first_served_media_type() {
        assert_eq!(framing_of(&accept("text/event-stream")), Some(Framing::Sse));
        assert_eq!(
            framing_of(&accept(
                "multipart/mixed;boundary=\"graphql\";subscriptionSpec=1.0,application/json"
            )),
            Some(Framing::Multipart)
        );
        assert_eq!(
            framing_of(&accept("multipart/mixed; subscriptionSpec=\"1.0\"")),
            Some(Framing::Multipart)
        );
        assert_eq!(
            framing_of(&accept("application/json, text/event-stream")),
            None
        );
        assert_eq!(
            framing_of(&accept("multipart/mixed, application/json")),
            None
        );
        assert_eq!(framing_of(&HeaderMap::new()), None);
    }

    #[test]
    fn frames_events() {
        assert_eq!(
            Framing::Sse.event(br#"{"data":{}}"#),
            b"event: next\ndata: {\"data\":{}}\n\n".to_vec()
        );
        assert_eq!(
            Framing::Multipart.event(br#"{"data":{}}"#),
            b"\r\ncontent-type: application/json\r\n\r\n{\"payload\":{\"data\":{}}}\r\n--graphql"
                .to_vec()
        );
    }
}
