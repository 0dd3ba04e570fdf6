//! `edge.streaming:` in the config file: subscriptions and other streams to clients,
//! over WebSocket, Server-Sent Events and multipart HTTP.

use std::time::Duration;

use serde::Deserialize;

use crate::common::config::duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamingConfig {
    /// Serve `graphql-transport-ws` on the GraphQL endpoints (`GET` with an upgrade).
    pub websocket: bool,
    /// A connection that has not sent `connection_init` by then is closed (4408).
    #[serde(with = "duration")]
    pub init_timeout: Duration,
    /// A connection without any running operation for this long is closed (1000;
    /// zero: never).
    #[serde(with = "duration")]
    pub idle_timeout: Duration,
    /// Running subscriptions per connection; more are refused with an `error`.
    pub max_subscriptions: usize,
    /// Messages queued for one client; a client that lets more pile up is too slow and
    /// is closed (1008), so it never holds memory or slows the others.
    pub max_buffered_messages: usize,
    /// A message to the client that is not taken by then closes the connection.
    #[serde(with = "duration")]
    pub write_timeout: Duration,
    /// Largest message accepted from a client.
    pub max_message_bytes: usize,
    /// A heartbeat this often on a quiet stream (zero: never): a `ping` message on
    /// WebSocket, a comment line on SSE, an empty `{}` part on multipart; it also keeps
    /// proxies from closing the connection.
    #[serde(with = "duration")]
    pub keepalive: Duration,
}

impl Default for StreamingConfig {
    fn default() -> Self {
        StreamingConfig {
            websocket: true,
            init_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            max_subscriptions: 100,
            max_buffered_messages: 256,
            write_timeout: Duration::from_secs(10),
            max_message_bytes: 1024 * 1024,
            keepalive: Duration::from_secs(10),
        }
    }
}
