//! Capacity limits of one source: a bulkhead (bounded concurrency with a bounded wait)
//! and a rate limit (token bucket) that protects the backend whatever the clients do.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio::sync::Semaphore;

use super::config::{BulkheadConfig, RateLimitConfig};
use crate::sources::{EventStream, FetchError, Source, SourceRequest, SourceResponse};

pub struct Bulkhead {
    inner: Arc<dyn Source>,
    permits: Arc<Semaphore>,
    max_wait: Duration,
}

impl Bulkhead {
    pub fn new(inner: Arc<dyn Source>, config: &BulkheadConfig) -> Self {
        Bulkhead {
            inner,
            permits: Arc::new(Semaphore::new(config.max_concurrent.max(1))),
            max_wait: config.max_wait,
        }
    }
}

impl Source for Bulkhead {
    fn fetch(
        &self,
        request: SourceRequest,
    ) -> BoxFuture<'static, Result<SourceResponse, FetchError>> {
        let inner = self.inner.clone();
        let permits = self.permits.clone();
        let max_wait = self.max_wait;
        Box::pin(async move {
            let permit = match tokio::time::timeout(max_wait, permits.acquire_owned()).await {
                Ok(Ok(p)) => p,
                _ => return Err(FetchError::Overloaded(max_wait)),
            };
            let result = inner.fetch(request).await;
            drop(permit);
            result
        })
    }

    fn subscribe(
        &self,
        request: SourceRequest,
    ) -> BoxFuture<'static, Result<EventStream, FetchError>> {
        self.inner.subscribe(request)
    }
}

/// Token bucket: `burst` tokens, refilled at `requests_per_second`; a fetch without a
/// token fails at once with `UPSTREAM_RATE_LIMITED`.
pub struct RateLimit {
    inner: Arc<dyn Source>,
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimit {
    pub fn new(inner: Arc<dyn Source>, config: &RateLimitConfig) -> Self {
        let burst = f64::from(config.burst.max(1));
        RateLimit {
            inner,
            rate: config.requests_per_second.max(f64::MIN_POSITIVE),
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    fn take(&self) -> bool {
        let Ok(mut s) = self.state.lock() else {
            return true;
        };
        let (tokens, last) = &mut *s;
        let now = Instant::now();
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl Source for RateLimit {
    fn fetch(
        &self,
        request: SourceRequest,
    ) -> BoxFuture<'static, Result<SourceResponse, FetchError>> {
        if !self.take() {
            return Box::pin(async { Err(FetchError::RateLimited) });
        }
        self.inner.fetch(request)
    }

    fn subscribe(
        &self,
        request: SourceRequest,
    ) -> BoxFuture<'static, Result<EventStream, FetchError>> {
        if !self.take() {
            return Box::pin(async { Err(FetchError::RateLimited) });
        }
        self.inner.subscribe(request)
    }
}
