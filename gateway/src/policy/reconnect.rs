//! Reopens a running subscription whose upstream dropped (`subscriptions.reconnect`).
//! After a failure a new connection may cure (connect errors, timeouts, 502-504,
//! unavailable calls, an open breaker), the subscription is opened again through the
//! layers below (breaker, limits, timeouts), after a backoff with full jitter, up to
//! `max_attempts` in a row; an event resets the count. Subscribers see nothing of it
//! unless every attempt fails: then the last error ends their stream, as without
//! reconnection. Events the upstream sent while disconnected are not replayed.
//! Opening the subscription the first time is not repeated: a refusal reaches the
//! client at once.

use std::sync::Arc;

use futures::StreamExt;
use futures::future::BoxFuture;

use super::config::ReconnectConfig;
use super::retry::jittered;
use crate::sources::{EventStream, FetchError, Source, SourceRequest, SourceResponse};
use crate::telemetry::Metrics;

pub(super) struct Reconnect {
    name: Arc<str>,
    inner: Arc<dyn Source>,
    config: ReconnectConfig,
    metrics: Arc<Metrics>,
}

impl Reconnect {
    pub(super) fn new(
        name: &str,
        inner: Arc<dyn Source>,
        config: &ReconnectConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        Reconnect {
            name: name.into(),
            inner,
            config: config.clone(),
            metrics,
        }
    }
}

impl Source for Reconnect {
    fn fetch(
        &self,
        request: SourceRequest,
    ) -> BoxFuture<'static, Result<SourceResponse, FetchError>> {
        self.inner.fetch(request)
    }

    fn subscribe(
        &self,
        request: SourceRequest,
    ) -> BoxFuture<'static, Result<EventStream, FetchError>> {
        let open = self.inner.subscribe(request.clone());
        let feed = Feed {
            name: self.name.clone(),
            inner: self.inner.clone(),
            config: self.config.clone(),
            metrics: self.metrics.clone(),
            request,
            current: None,
            failures: 0,
        };
        Box::pin(async move {
            let first = open.await?;
            let feed = Feed {
                current: Some(first),
                ..feed
            };
            Ok(futures::stream::unfold(feed, Feed::next).boxed())
        })
    }
}

/// One subscriber-facing stream across upstream connections.
struct Feed {
    name: Arc<str>,
    inner: Arc<dyn Source>,
    config: ReconnectConfig,
    metrics: Arc<Metrics>,
    request: SourceRequest,
    /// `None` once the stream ended.
    current: Option<EventStream>,
    /// Reconnections in a row without an event.
    failures: u32,
}

fn curable(e: &FetchError) -> bool {
    e.is_retryable() || matches!(e, FetchError::CircuitOpen)
}

impl Feed {
    async fn next(mut self) -> Option<(Result<SourceResponse, FetchError>, Self)> {
        loop {
            let mut error = match self.current.as_mut()?.next().await {
                Some(Ok(event)) => {
                    self.failures = 0;
                    return Some((Ok(event), self));
                }
                Some(Err(e)) => e,
                None => return None,
            };
            self.current = None;
            while curable(&error) && self.failures < self.config.max_attempts {
                self.failures += 1;
                let delay = jittered(self.config.base_delay, self.config.max_delay, self.failures);
                tracing::warn!(
                    source = %self.name,
                    attempt = self.failures,
                    ?delay,
                    error = %error,
                    "upstream subscription dropped; reconnecting"
                );
                tokio::time::sleep(delay).await;
                let reopened = self.inner.subscribe(self.request.clone()).await;
                // `gateway_upstream_subscriptions_total{outcome="reconnected"}` (or the
                // error's code), next to the first openings the executor counts.
                let outcome = match &reopened {
                    Ok(_) => "reconnected".to_string(),
                    Err(e) => e.code(),
                };
                self.metrics.subscription_opened(&self.name, &outcome);
                match reopened {
                    Ok(stream) => {
                        self.current = Some(stream);
                        break;
                    }
                    Err(e) => error = e,
                }
            }
            if self.current.is_none() {
                return Some((Err(error), self));
            }
        }
    }
}
