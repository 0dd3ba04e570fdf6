//! The live events behind the `reviews` subgraph's `Subscription.reviewAdded`, one
//! source per running [`crate::MockSubgraphs`]: tests emit a review, fail the
//! subscriptions (an event with an error), complete them, or drop their connections,
//! through the handle or `POST /control/subscriptions/reviews`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, watch};

use crate::data;

/// What every open `reviewAdded` stream receives next.
#[derive(Clone, Debug)]
pub(crate) enum ReviewEvent {
    /// One review "added" (from the fixed data set).
    Added(&'static data::Review),
    /// An event that carries only an error; the stream goes on.
    Fail(String),
    /// The end of every stream (the subgraph sends `complete`).
    Complete,
}

/// The event source and what the subscription servers saw.
pub(crate) struct ReviewEvents {
    pub events: broadcast::Sender<ReviewEvent>,
    /// Bumped to drop every subscription connection without a close message.
    pub disconnect: watch::Sender<u64>,
    /// `reviewAdded` streams open now.
    pub subscribers: watch::Sender<usize>,
    /// Subscription connections accepted so far.
    pub connections: AtomicU64,
    /// The upgrade request headers of the last subscription connection.
    pub last_headers: Mutex<Vec<(String, String)>>,
}

impl Default for ReviewEvents {
    fn default() -> Self {
        ReviewEvents {
            events: broadcast::Sender::new(1024),
            disconnect: watch::Sender::new(0),
            subscribers: watch::Sender::new(0),
            connections: AtomicU64::new(0),
            last_headers: Mutex::new(Vec::new()),
        }
    }
}

impl ReviewEvents {
    /// Send to every open stream; how many received it.
    pub fn send(&self, event: ReviewEvent) -> usize {
        self.events.send(event).unwrap_or(0)
    }

    pub fn disconnect_all(&self) {
        self.disconnect.send_modify(|n| *n += 1);
    }

    /// Wait until exactly `n` streams are open (or the timeout passes).
    pub async fn wait_for_subscribers(&self, n: usize, timeout: Duration) -> bool {
        let mut rx = self.subscribers.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|&open| open == n))
            .await
            .is_ok_and(|r| r.is_ok())
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
}

/// Counts one open stream while alive.
pub(crate) struct Subscriber(pub Arc<ReviewEvents>);

impl Subscriber {
    pub fn new(events: Arc<ReviewEvents>) -> Self {
        events.subscribers.send_modify(|n| *n += 1);
        Subscriber(events)
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.0.subscribers.send_modify(|n| *n = n.saturating_sub(1));
    }
}
