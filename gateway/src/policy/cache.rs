//! Response cache and in-flight de-duplication, keyed by exactly what the source sees
//! (operation, variables, the headers sent upstream) plus declared vary headers.
//! Mutations, errors and partial results are never cached nor shared.

use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use rustc_hash::{FxHashMap, FxHasher};

use super::config::CacheConfig;
use crate::sources::{FetchError, Source, SourceRequest, SourceResponse};
use crate::telemetry::Metrics;

/// Per-request headers that must not split the key.
const NOT_KEYED: [&str; 3] = ["x-request-id", "traceparent", "tracestate"];

fn key(request: &SourceRequest, vary: &[String]) -> u64 {
    let mut h = FxHasher::default();
    request.operation.hash(&mut h);
    // serde_json keeps insertion order; variables are built in plan order, so equal
    // requests serialize equally.
    serde_json::to_string(&request.variables)
        .unwrap_or_default()
        .hash(&mut h);
    let mut headers: Vec<(&str, &[u8])> = request
        .headers
        .iter()
        .filter(|(n, _)| !NOT_KEYED.contains(&n.as_str()))
        .map(|(n, v)| (n.as_str(), v.as_bytes()))
        .collect();
    headers.sort_unstable();
    headers.hash(&mut h);
    for name in vary {
        name.hash(&mut h);
        request
            .client_headers
            .get(name.as_str())
            .map(|v| v.as_bytes())
            .hash(&mut h);
    }
    h.finish()
}

type SharedFetch = Shared<BoxFuture<'static, Result<SourceResponse, FetchError>>>;

/// One upstream call for many identical concurrent fetches.
pub struct Dedupe {
    inner: Arc<dyn Source>,
    in_flight: Arc<Mutex<FxHashMap<u64, SharedFetch>>>,
}

impl Dedupe {
    pub fn new(inner: Arc<dyn Source>) -> Self {
        Dedupe {
            inner,
            in_flight: Arc::new(Mutex::new(FxHashMap::default())),
        }
    }

    fn fetch_keyed(
        &self,
        request: SourceRequest,
        key: u64,
    ) -> BoxFuture<'static, Result<SourceResponse, FetchError>> {
        let Ok(mut map) = self.in_flight.lock() else {
            return self.inner.fetch(request);
        };
        if let Some(shared) = map.get(&key) {
            return shared.clone().boxed();
        }
        // The call runs as its own task, so it completes (and leaves the map) even if
        // every waiter goes away; the attempt timeout below bounds it.
        let call = self.inner.fetch(request);
        let in_flight = self.in_flight.clone();
        let task = tokio::spawn(async move {
            let result = call.await;
            if let Ok(mut map) = in_flight.lock() {
                map.remove(&key);
            }
            result
        });
        let shared = async move {
            task.await
                .unwrap_or_else(|e| Err(FetchError::Connect(format!("fetch task failed: {e}"))))
        }
        .boxed()
        .shared();
        map.insert(key, shared.clone());
        shared.boxed()
    }
}

impl Source for Dedupe {
    fn fetch(
        &self,
        request: SourceRequest,
    ) -> BoxFuture<'static, Result<SourceResponse, FetchError>> {
        if request.is_mutation {
            return self.inner.fetch(request);
        }
        let k = key(&request, &[]);
        self.fetch_keyed(request, k)
    }
}

pub struct Cache {
    name: String,
    dedupe: Dedupe,
    config: CacheConfig,
    entries: moka::sync::Cache<u64, Arc<(SourceResponse, Instant)>>,
    metrics: Arc<Metrics>,
}

impl Cache {
    pub fn new(
        name: &str,
        inner: Arc<dyn Source>,
        config: &CacheConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        Cache {
            name: name.to_string(),
            dedupe: Dedupe::new(inner),
            config: config.clone(),
            entries: moka::sync::Cache::builder()
                .max_capacity(config.max_entries)
                .time_to_live(config.ttl.max(Duration::from_secs(1)) * 10)
                .build(),
            metrics,
        }
    }
}

impl Source for Cache {
    fn fetch(
        &self,
        request: SourceRequest,
    ) -> BoxFuture<'static, Result<SourceResponse, FetchError>> {
        if request.is_mutation {
            return self.dedupe.inner.fetch(request);
        }
        let k = key(&request, &self.config.vary_headers);
        if let Some(entry) = self.entries.get(&k) {
            if Instant::now() < entry.1 {
                self.metrics.cache(&format!("upstream:{}", self.name), true);
                tracing::Span::current().record("cache_hit", true);
                let response = entry.0.clone();
                return Box::pin(async move { Ok(response) });
            }
            self.entries.invalidate(&k);
        }
        self.metrics
            .cache(&format!("upstream:{}", self.name), false);
        let call = self.dedupe.fetch_keyed(request, k);
        let entries = self.entries.clone();
        let config = self.config.clone();
        Box::pin(async move {
            let result = call.await;
            if let Ok(response) = &result
                && !response.has_errors()
                && response.data.is_some()
            {
                let ttl = match response.max_age {
                    Some(age) if config.respect_cache_control => age,
                    _ => config.ttl,
                };
                if !ttl.is_zero() {
                    entries.insert(k, Arc::new((response.clone(), Instant::now() + ttl)));
                }
            }
            result
        })
    }
}
