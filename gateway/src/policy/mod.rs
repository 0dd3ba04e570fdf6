//! The upstream policy stack: the same layers around every source, whatever its kind
//! (GraphQL, REST, gRPC), composed once per source from config.
//!
//! Each layer is a [`Source`] that wraps the next one (the tower `Layer` idea without
//! `poll_ready`: sources are shared by `&self` across concurrent requests, and the
//! bulkhead gives the backpressure). Order, outermost first, and why:
//!
//! 1. **total timeout** — bounds everything below, retries and waits included. Both
//!    timeouts are also cut to what is left of the client request's deadline.
//! 2. **auth propagation** — decides the credentials once per fetch; the cache key
//!    below then sees exactly what the source will see.
//! 3. **header rules** — add / remove / rename after propagation, so they can rewrite
//!    what it forwarded, and the cache key still sees the final headers.
//! 4. **cache + de-duplication** — a hit or a joined in-flight call costs no retry
//!    budget, breaker probe or rate-limit token; identical subscriptions share one
//!    upstream subscription (`fanout.rs`).
//! 5. **reconnect** (only with `subscriptions.reconnect`) — reopens a running
//!    subscription whose upstream dropped, below the sharing so that one reconnection
//!    serves every subscriber, above the breaker and limits that each reopening meets.
//! 6. **retry** — exponential backoff with full jitter and a budget; idempotent fetches
//!    only. Each attempt passes through the layers below.
//! 7. **circuit breaker** — sees every attempt; when open, fails at once
//!    (`CIRCUIT_OPEN`) and the backend receives nothing.
//! 8. **rate limit** — the source's own quota, whatever the clients do.
//! 9. **bulkhead** — caps in-flight requests; waits a bounded time for a slot.
//! 10. **balancer** (only with several instances or versions) — picks the version
//!     (weights or a pinning header) and the instance (round robin or least in-flight,
//!     minus ejected ones) per attempt, so a retry can land on another instance, while
//!     the breaker and limits above treat the source as one backend.
//! 11. **attempt timeout** — one per instance, below the balancer so a timeout counts
//!     against the instance that caused it; cancels the in-flight request on expiry.
//! 12. the source itself.

pub mod balance;
mod breaker;
mod cache;
pub mod config;
mod fanout;
mod headers;
mod limits;
mod reconnect;
mod retry;
mod rules;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

pub use balance::{RouteSpec, Targets, VersionTargets};
pub use breaker::BreakerState;
pub use config::{SourcePolicy, UpstreamConfig};

use crate::sources::{EventStream, FetchError, Source, SourceRequest, SourceResponse};
use crate::telemetry::Metrics;

/// Wrap the source's instances (one, or several and versions: [`Targets`]) in the full
/// policy stack.
pub fn stack(
    name: &str,
    targets: impl Into<Targets>,
    policy: &SourcePolicy,
    metrics: Arc<Metrics>,
    shared_cache: Option<&crate::redis_store::RedisStore>,
) -> Arc<dyn Source> {
    let after = policy.timeout;
    let targets: Targets = targets.into();
    // The pinning header picks the version that answers: fetches that differ in it
    // must not share an in-flight call or a cached answer.
    let pinned_by: Vec<String> = targets
        .version_header
        .iter()
        .map(|h| h.as_str().to_string())
        .collect();
    let targets = targets.map(|inner| Arc::new(Timeout { inner, after }));
    let mut s: Arc<dyn Source> = match targets.single() {
        Some(only) => only,
        None => Arc::new(balance::Balancer::new(
            name,
            targets,
            policy.load_balancing,
            &policy.passive_health,
        )),
    };
    s = Arc::new(limits::Bulkhead::new(s, &policy.bulkhead));
    if let Some(rate) = &policy.rate_limit {
        s = Arc::new(limits::RateLimit::new(s, rate));
    }
    if policy.circuit_breaker.enabled {
        s = Arc::new(breaker::Breaker::new(
            name,
            s,
            &policy.circuit_breaker,
            metrics.clone(),
        ));
    }
    if policy.retry.enabled && policy.retry.max_attempts > 1 {
        s = Arc::new(retry::Retry::new(s, &policy.retry, policy.timeout));
    }
    let reconnect = &policy.subscriptions.reconnect;
    if reconnect.max_attempts > 0 {
        s = Arc::new(reconnect::Reconnect::new(
            name,
            s,
            reconnect,
            metrics.clone(),
        ));
    }
    if policy.cache.enabled {
        let mut config = policy.cache.clone();
        for header in pinned_by {
            if !config
                .vary_headers
                .iter()
                .any(|h| h.eq_ignore_ascii_case(&header))
            {
                config.vary_headers.push(header);
            }
        }
        s = Arc::new(cache::Cache::new(name, s, &config, metrics, shared_cache));
    } else {
        s = Arc::new(cache::Dedupe::new(s, pinned_by));
    }
    s = rules::HeaderRules::layer(name, s, &policy.header_rules);
    s = Arc::new(headers::Propagate::new(s, &policy.auth));
    Arc::new(Timeout {
        inner: s,
        after: policy.total_timeout,
    })
}

/// Fails the fetch with `UPSTREAM_TIMEOUT` after a delay, or with `DEADLINE_EXCEEDED`
/// when the request's deadline comes first; dropping the inner future cancels the
/// request in flight.
struct Timeout {
    inner: Arc<dyn Source>,
    after: Duration,
}

impl Timeout {
    /// How long to wait, and the error when the wait runs out.
    fn budget(&self, request: &SourceRequest) -> (Duration, FetchError) {
        match request.deadline {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                if left < self.after {
                    return (left, FetchError::Deadline);
                }
                (self.after, FetchError::Timeout(self.after))
            }
            None => (self.after, FetchError::Timeout(self.after)),
        }
    }
}

impl Source for Timeout {
    fn fetch(
        &self,
        request: SourceRequest,
    ) -> BoxFuture<'static, Result<SourceResponse, FetchError>> {
        let (after, expired) = self.budget(&request);
        if after.is_zero() {
            return Box::pin(std::future::ready(Err(expired)));
        }
        let call = self.inner.fetch(request);
        Box::pin(async move {
            tokio::time::timeout(after, call)
                .await
                .unwrap_or(Err(expired))
        })
    }

    /// Bounds opening the subscription (connect and acknowledgement), not its events.
    fn subscribe(
        &self,
        request: SourceRequest,
    ) -> BoxFuture<'static, Result<EventStream, FetchError>> {
        let (after, expired) = self.budget(&request);
        let open = self.inner.subscribe(request);
        Box::pin(async move {
            tokio::time::timeout(after, open)
                .await
                .unwrap_or(Err(expired))
        })
    }
}
