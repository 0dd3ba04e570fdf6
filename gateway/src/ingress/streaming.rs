//! `edge.streaming:` in the config file: subscriptions and other streams to clients,
//! over WebSocket, Server-Sent Events and multipart HTTP.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;

use crate::bff::config::BffStreaming;
use crate::common::config::duration;

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct StreamingConfig {
    /// Serve `graphql-transport-ws` on the GraphQL endpoints (`GET` with an upgrade).
    pub websocket: bool,
    /// A connection that has not sent `connection_init` by then is closed (4408).
    #[schemars(with = "crate::common::config::DurationText")]
    #[serde(with = "duration")]
    pub init_timeout: Duration,
    /// A connection without any running operation for this long is closed (1000;
    /// zero: never).
    #[schemars(with = "crate::common::config::DurationText")]
    #[serde(with = "duration")]
    pub idle_timeout: Duration,
    /// Running streams (WebSocket operations, SSE and multipart responses) per
    /// authenticated client (JWT subject, API key name), over all its connections;
    /// more are refused with `SUBSCRIPTION_LIMIT`. Zero: no limit.
    pub max_streams_per_principal: usize,
    /// Running subscriptions per connection; more are refused with an `error`.
    pub max_subscriptions: usize,
    /// Messages queued for one client; a client that lets more pile up is too slow and
    /// is closed (1008), so it never holds memory or slows the others.
    pub max_buffered_messages: usize,
    /// A message to the client that is not taken by then closes the connection.
    #[schemars(with = "crate::common::config::DurationText")]
    #[serde(with = "duration")]
    pub write_timeout: Duration,
    /// Largest message accepted from a client.
    pub max_message_bytes: usize,
    /// A heartbeat this often on a quiet stream (zero: never): a `ping` message on
    /// WebSocket, a comment line on SSE, an empty `{}` part on multipart; it also keeps
    /// proxies from closing the connection.
    #[schemars(with = "crate::common::config::DurationText")]
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
            max_streams_per_principal: 1000,
            max_buffered_messages: 256,
            write_timeout: Duration::from_secs(10),
            max_message_bytes: 1024 * 1024,
            keepalive: Duration::from_secs(10),
        }
    }
}

impl StreamingConfig {
    /// A BFF's limits: these, with the BFF's own on top.
    pub fn with(&self, own: &BffStreaming) -> StreamingConfig {
        StreamingConfig {
            max_subscriptions: own.max_subscriptions.unwrap_or(self.max_subscriptions),
            max_streams_per_principal: own
                .max_streams_per_principal
                .unwrap_or(self.max_streams_per_principal),
            init_timeout: own.init_timeout.unwrap_or(self.init_timeout),
            idle_timeout: own.idle_timeout.unwrap_or(self.idle_timeout),
            max_message_bytes: own.max_message_bytes.unwrap_or(self.max_message_bytes),
            ..self.clone()
        }
    }
}

/// How many streams each authenticated client runs, for
/// [`StreamingConfig::max_streams_per_principal`].
#[derive(Default)]
pub struct PrincipalStreams(Arc<Mutex<HashMap<String, usize>>>);

/// One running stream of a client; dropping it frees the place.
pub struct StreamSlot {
    counts: Arc<Mutex<HashMap<String, usize>>>,
    subject: String,
}

impl PrincipalStreams {
    /// A place for one more stream of `subject` (counted within `scope`, a BFF with
    /// its own limit, else gateway-wide), unless it runs `limit` already. Anonymous
    /// clients (`None`) are limited per connection and by rate limits only.
    pub fn take(
        &self,
        subject: Option<&str>,
        scope: Option<&str>,
        limit: usize,
    ) -> Result<Option<StreamSlot>, usize> {
        let (Some(subject), true) = (subject, limit > 0) else {
            return Ok(None);
        };
        let key = match scope {
            Some(scope) => format!("{scope}\u{0}{subject}"),
            None => subject.to_string(),
        };
        let Ok(mut counts) = self.0.lock() else {
            return Ok(None);
        };
        let running = counts.entry(key.clone()).or_insert(0);
        if *running >= limit {
            return Err(limit);
        }
        *running += 1;
        Ok(Some(StreamSlot {
            counts: self.0.clone(),
            subject: key,
        }))
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        if let Ok(mut counts) = self.counts.lock()
            && let Some(running) = counts.get_mut(&self.subject)
        {
            *running -= 1;
            if *running == 0 {
                counts.remove(&self.subject);
            }
        }
    }
}
