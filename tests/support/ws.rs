//! A small `graphql-transport-ws` client for edge-case tests (the npm `graphql-ws`
//! client covers the ordinary paths): raw messages in and out, close codes visible.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for one message.
const WAIT: Duration = Duration::from_secs(10);

pub struct WsClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What the server did next.
#[derive(Debug, PartialEq)]
pub enum Received {
    Message(Value),
    Closed(u16, String),
}

impl WsClient {
    /// Connect to `http_url` (its `ws://` twin) offering `protocol` (none if empty).
    pub async fn connect_with(http_url: &str, protocol: &str, headers: &[(&str, &str)]) -> Self {
        let url = http_url.replacen("http://", "ws://", 1);
        let mut request = url.as_str().into_client_request().expect("ws url");
        if !protocol.is_empty() {
            request.headers_mut().insert(
                "sec-websocket-protocol",
                protocol.parse().expect("protocol header"),
            );
        }
        for (name, value) in headers {
            request.headers_mut().insert(
                http::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                value.parse().expect("header value"),
            );
        }
        let host = request.uri().authority().expect("authority").to_string();
        let tcp = TcpStream::connect(host).await.expect("tcp connect");
        let (socket, _) = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(tcp))
            .await
            .expect("websocket handshake");
        WsClient { socket }
    }

    pub async fn connect(http_url: &str) -> Self {
        Self::connect_with(http_url, "graphql-transport-ws", &[]).await
    }

    /// Connect and complete `connection_init` with `payload`.
    pub async fn init(http_url: &str, payload: Value) -> Self {
        let mut client = Self::connect(http_url).await;
        client
            .send(json!({"type": "connection_init", "payload": payload}))
            .await;
        assert_eq!(
            client.recv().await,
            Received::Message(json!({"type": "connection_ack"}))
        );
        client
    }

    pub async fn send(&mut self, message: Value) {
        self.send_text(message.to_string()).await;
    }

    pub async fn send_text(&mut self, text: String) {
        self.socket
            .send(Message::text(text))
            .await
            .expect("send message");
    }

    pub async fn subscribe(&mut self, id: &str, query: &str) {
        self.send(json!({"id": id, "type": "subscribe", "payload": {"query": query}}))
            .await;
    }

    /// The next protocol message (server pings are answered and skipped), or the close.
    pub async fn recv(&mut self) -> Received {
        loop {
            let frame = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .expect("a message in time");
            match frame {
                Some(Ok(Message::Text(text))) => {
                    let value: Value = serde_json::from_str(text.as_str()).expect("JSON message");
                    if value["type"] == "ping" {
                        self.send(json!({"type": "pong"})).await;
                        continue;
                    }
                    return Received::Message(value);
                }
                Some(Ok(Message::Close(frame))) => {
                    return match frame {
                        Some(f) => Received::Closed(u16::from(f.code), f.reason.to_string()),
                        None => Received::Closed(1005, String::new()),
                    };
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Received::Closed(1006, String::new()),
            }
        }
    }

    /// The next message if one comes within `wait`.
    pub async fn try_message(&mut self, wait: Duration) -> Option<Value> {
        match tokio::time::timeout(wait, self.recv()).await {
            Ok(Received::Message(m)) => Some(m),
            _ => None,
        }
    }

    /// The next message, which must be one.
    pub async fn message(&mut self) -> Value {
        match self.recv().await {
            Received::Message(m) => m,
            closed => panic!("expected a message, got {closed:?}"),
        }
    }

    /// Stop reading (for slow-client tests): the socket stays open, unread.
    pub fn into_inner(self) -> WebSocketStream<MaybeTlsStream<TcpStream>> {
        self.socket
    }
}
