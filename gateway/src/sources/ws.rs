//! Subscriptions to a GraphQL subgraph over WebSocket, with the `graphql-transport-ws`
//! protocol (the `graphql-ws` library's): one connection per subscription, opened with
//! `connection_init`, answered pings, `subscribe`, then `next` events until `complete`.
//!
//! The socket lives in its own task and hands events to a bounded channel: a slow
//! consumer slows the reads (TCP flow control does the rest), and when the consumer
//! drops the stream the task says `complete` and closes the socket properly.

use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use super::{EventStream, FetchError, SourceRequest, SourceResponse};

/// The subprotocol of `graphql-ws`.
pub const PROTOCOL: &str = "graphql-transport-ws";

/// Largest event accepted from a subgraph.
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Events read ahead of the consumer.
const BUFFERED_EVENTS: usize = 16;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Where and how a subgraph's subscriptions are opened.
#[derive(Clone)]
pub struct WsUpstream {
    pub url: reqwest::Url,
    /// For `wss://`: the source's trust and client certificate.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The `connection_init` payload (for subgraphs that read credentials there).
    pub init_payload: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The subscription URL of a subgraph served at `url`: the same address with the
/// WebSocket scheme.
pub fn ws_url_of(url: &reqwest::Url) -> Result<reqwest::Url, String> {
    let mut ws = url.clone();
    let scheme = match url.scheme() {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        other => return Err(format!("no WebSocket scheme for `{other}://`")),
    };
    ws.set_scheme(scheme)
        .map_err(|()| format!("cannot use `{scheme}://` for {url}"))?;
    Ok(ws)
}

#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(default)]
    id: Option<&'a str>,
    #[serde(default, borrow)]
    payload: Option<&'a RawValue>,
}

fn connect_error(e: impl std::fmt::Display) -> FetchError {
    FetchError::Connect(e.to_string())
}

fn bad(message: impl Into<String>) -> FetchError {
    FetchError::BadResponse(message.into())
}

/// Open the subscription; resolves when the subgraph acknowledged the connection.
pub async fn subscribe(
    upstream: &WsUpstream,
    request: SourceRequest,
) -> Result<EventStream, FetchError> {
    let mut socket = connect(upstream, &request).await?;
    let init = serde_json::json!({
        "type": "connection_init",
        "payload": upstream.init_payload.clone().unwrap_or_default(),
    });
    send(&mut socket, init.to_string()).await?;
    loop {
        let text = match read(&mut socket).await? {
            Some(text) => text,
            None => return Err(connect_error("the subgraph closed the connection")),
        };
        let message: Incoming<'_> = serde_json::from_str(&text)
            .map_err(|e| bad(format!("not a graphql-transport-ws message: {e}")))?;
        match message.kind {
            "connection_ack" => break,
            "ping" => send(&mut socket, r#"{"type":"pong"}"#.to_string()).await?,
            "pong" => {}
            other => return Err(bad(format!("`{other}` before `connection_ack`"))),
        }
    }
    send(&mut socket, subscribe_message(&request)).await?;
    let (events, receiver) = mpsc::channel(BUFFERED_EVENTS);
    tokio::spawn(pump(socket, events));
    Ok(Box::pin(futures::stream::unfold(
        receiver,
        |mut receiver| async move { receiver.recv().await.map(|event| (event, receiver)) },
    )))
}

async fn connect(upstream: &WsUpstream, request: &SourceRequest) -> Result<Socket, FetchError> {
    let url = &upstream.url;
    let mut handshake = url
        .as_str()
        .into_client_request()
        .map_err(|e| bad(format!("invalid subscription URL {url}: {e}")))?;
    let headers = handshake.headers_mut();
    for (name, value) in &request.headers {
        headers.insert(name.clone(), value.clone());
    }
    headers.insert(
        http::header::SEC_WEBSOCKET_PROTOCOL,
        http::HeaderValue::from_static(PROTOCOL),
    );
    let host = url
        .host_str()
        .ok_or_else(|| bad(format!("no host in {url}")))?;
    let port = url.port_or_known_default().unwrap_or(80);
    let tcp = TcpStream::connect((host, port))
        .await
        .map_err(connect_error)?;
    let _ = tcp.set_nodelay(true);
    let connector = match (url.scheme(), &upstream.tls) {
        ("wss", Some(tls)) => Some(Connector::Rustls(tls.clone())),
        ("wss", None) => return Err(bad(format!("no TLS settings for {url}"))),
        _ => Some(Connector::Plain),
    };
    let config = WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .write_buffer_size(0)
        .max_message_size(Some(MAX_MESSAGE_BYTES));
    let (socket, response) =
        tokio_tungstenite::client_async_tls_with_config(handshake, tcp, Some(config), connector)
            .await
            .map_err(|e| match e {
                tokio_tungstenite::tungstenite::Error::Http(response) => {
                    FetchError::Http(response.status().as_u16())
                }
                other => connect_error(other),
            })?;
    let chosen = response
        .headers()
        .get(http::header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok());
    if chosen != Some(PROTOCOL) {
        return Err(bad(format!(
            "the subgraph did not accept the `{PROTOCOL}` subprotocol"
        )));
    }
    Ok(socket)
}

/// `{"id":"1","type":"subscribe","payload":{query, operationName, variables}}`, the
/// variables copied as the executor wrote them.
fn subscribe_message(request: &SourceRequest) -> String {
    use crate::sources::value::write_json_string;
    let mut out = Vec::with_capacity(request.operation.len() + 128);
    out.extend_from_slice(br#"{"id":"1","type":"subscribe","payload":{"query":"#);
    write_json_string(&mut out, request.operation.as_bytes());
    out.extend_from_slice(b",\"operationName\":");
    write_json_string(&mut out, request.operation_name.as_bytes());
    out.extend_from_slice(b",\"variables\":");
    out.extend_from_slice(request.variables.as_bytes());
    out.extend_from_slice(b"}}");
    // Built from UTF-8 parts only.
    String::from_utf8(out).unwrap_or_default()
}

async fn send(socket: &mut Socket, text: String) -> Result<(), FetchError> {
    socket
        .send(Message::text(text))
        .await
        .map_err(connect_error)
}

/// The next text message (`None`: closed); pings of the WebSocket layer are answered
/// by tungstenite itself.
async fn read(socket: &mut Socket) -> Result<Option<String>, FetchError> {
    while let Some(frame) = socket.next().await {
        match frame.map_err(connect_error)? {
            Message::Text(text) => return Ok(Some(text.as_str().to_string())),
            Message::Binary(_) => return Err(bad("a binary message")),
            Message::Close(frame) => {
                let reason = frame.map_or_else(String::new, |f| {
                    format!(": {} {}", u16::from(f.code), f.reason)
                });
                return Err(connect_error(format!(
                    "the subgraph closed the subscription{reason}"
                )));
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
    }
    Ok(None)
}

/// Read events until `complete`, an error, or the consumer is gone.
async fn pump(mut socket: Socket, events: mpsc::Sender<Result<SourceResponse, FetchError>>) {
    loop {
        let text = tokio::select! {
            read = read(&mut socket) => read,
            () = events.closed() => {
                // The client went away: end the subscription upstream too.
                let _ = send(&mut socket, r#"{"id":"1","type":"complete"}"#.into()).await;
                let _ = socket.close(None).await;
                return;
            }
        };
        let event = match text {
            Ok(Some(text)) => match event_of(&text) {
                Ok(Step::Event(event)) => Ok(event),
                Ok(Step::Ping) => {
                    if send(&mut socket, r#"{"type":"pong"}"#.into())
                        .await
                        .is_err()
                    {
                        let _ = events
                            .send(Err(connect_error("the subgraph connection broke")))
                            .await;
                        return;
                    }
                    continue;
                }
                Ok(Step::Skip) => continue,
                Ok(Step::Last(event)) => {
                    let _ = events.send(Ok(event)).await;
                    let _ = socket.close(None).await;
                    return;
                }
                Ok(Step::Complete) => {
                    let _ = socket.close(None).await;
                    return;
                }
                Err(e) => Err(e),
            },
            Ok(None) => Err(connect_error("the subgraph closed the connection")),
            Err(e) => Err(e),
        };
        let failed = event.is_err();
        if events.send(event).await.is_err() || failed {
            let _ = socket.close(None).await;
            return;
        }
    }
}

enum Step {
    Event(SourceResponse),
    /// The subgraph's `error` message: the operation failed as a whole, and ends.
    Last(SourceResponse),
    Complete,
    Ping,
    Skip,
}

fn event_of(text: &str) -> Result<Step, FetchError> {
    let message: Incoming<'_> = serde_json::from_str(text)
        .map_err(|e| bad(format!("not a graphql-transport-ws message: {e}")))?;
    let ours = message.id == Some("1");
    let payload = || message.payload.map_or("null", RawValue::get);
    match message.kind {
        "next" if ours => Ok(Step::Event(SourceResponse::event_from_json(
            payload().as_bytes(),
        )?)),
        "error" if ours => {
            let errors: Vec<serde_json::Value> = serde_json::from_str(payload())
                .map_err(|e| bad(format!("an `error` message without a list of errors: {e}")))?;
            Ok(Step::Last(SourceResponse {
                errors: Some(errors),
                ..SourceResponse::default()
            }))
        }
        "complete" if ours => Ok(Step::Complete),
        "ping" => Ok(Step::Ping),
        "pong" => Ok(Step::Skip),
        other => Err(bad(format!("unexpected `{other}` message"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_events_and_refuses_garbage() {
        let event = event_of(r#"{"id":"1","type":"next","payload":{"data":{"a":1}}}"#);
        assert!(matches!(event, Ok(Step::Event(e)) if e.data.is_some()));
        let error = event_of(r#"{"id":"1","type":"error","payload":[{"message":"no"}]}"#);
        assert!(matches!(error, Ok(Step::Last(e)) if e.has_errors()));
        assert!(matches!(
            event_of(r#"{"id":"1","type":"complete"}"#),
            Ok(Step::Complete)
        ));
        for garbage in [
            "not json",
            r#"{"id":"1","type":"next","payload":{}}"#,
            r#"{"id":"1","type":"next","payload":[1]}"#,
            r#"{"id":"2","type":"next","payload":{"data":{}}}"#,
            r#"{"id":"1","type":"error","payload":{"message":"x"}}"#,
        ] {
            assert!(
                matches!(event_of(garbage), Err(FetchError::BadResponse(_))),
                "{garbage}"
            );
        }
    }

    #[test]
    fn derives_the_websocket_url() -> Result<(), Box<dyn std::error::Error>> {
        let ws = ws_url_of(&reqwest::Url::parse("http://h:1/reviews?x=1")?)?;
        assert_eq!(ws.as_str(), "ws://h:1/reviews?x=1");
        let wss = ws_url_of(&reqwest::Url::parse("https://h/graphql")?)?;
        assert_eq!(wss.as_str(), "wss://h/graphql");
        Ok(())
    }
}
