//! Response cache and in-flight de-duplication, keyed by exactly what the source sees
//! (operation, variables, the headers sent upstream) plus declared vary headers.
//! Mutations, errors and partial results are never cached nor shared.
//!
//! Entries live in the process ([`Backend::Memory`], moka) or, in distributed mode, in
//! Redis ([`Backend::Redis`], keyed by a SHA-256 of the same material so that every
//! instance finds what another stored). A Redis that does not answer in time is a miss,
//! never an error.

use std::hash::Hasher;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use rustc_hash::{FxHashMap, FxHasher};
use sha2::{Digest, Sha256};
use tracing::Instrument;

use super::config::CacheConfig;
use super::fanout::Fanout;
use crate::common::digest::hex;
use crate::redis_store::RedisStore;
use crate::sources::{EventStream, FetchError, Source, SourceRequest, SourceResponse};
use crate::telemetry::Metrics;

/// Per-request headers that must not split the key.
const NOT_KEYED: [&str; 3] = ["x-request-id", "traceparent", "tracestate"];

/// Feed everything that identifies a response to `out`, each part length-prefixed.
fn feed(request: &SourceRequest, vary: &[String], out: &mut dyn FnMut(&[u8])) {
    let mut part = |bytes: &[u8]| {
        out(&(bytes.len() as u64).to_le_bytes());
        out(bytes);
    };
    part(request.operation.as_bytes());
    // Variables are written in plan order, so equal requests have equal text.
    part(request.variables.as_bytes());
    let mut headers: Vec<(&str, &[u8])> = request
        .headers
        .iter()
        .filter(|(n, _)| !NOT_KEYED.contains(&n.as_str()))
        .map(|(n, v)| (n.as_str(), v.as_bytes()))
        .collect();
    headers.sort_unstable();
    for (name, value) in headers {
        part(name.as_bytes());
        part(value);
    }
    part(b"vary");
    for name in vary {
        part(name.as_bytes());
        match request.client_headers.get(name.as_str()) {
            Some(value) => {
                part(b"1");
                part(value.as_bytes());
            }
            None => part(b"0"),
        }
    }
}

fn key(request: &SourceRequest, vary: &[String]) -> u64 {
    let mut h = FxHasher::default();
    feed(request, vary, &mut |bytes| h.write(bytes));
    h.finish()
}

/// A collision-resistant key for a store shared across instances.
fn shared_key(source: &str, request: &SourceRequest, vary: &[String]) -> String {
    let mut d = Sha256::new();
    d.update(source.as_bytes());
    d.update([0]);
    feed(request, vary, &mut |bytes| d.update(bytes));
    hex(&d.finalize())
}

type SharedFetch = Shared<BoxFuture<'static, Result<SourceResponse, FetchError>>>;

/// One upstream call for many identical concurrent fetches.
#[derive(Clone)]
pub struct Dedupe {
    inner: Arc<dyn Source>,
    in_flight: Arc<Mutex<FxHashMap<u64, SharedFetch>>>,
    /// Identical subscriptions share one upstream subscription.
    feeds: Arc<Fanout>,
    /// Client headers that keep otherwise identical fetches apart (the layers below
    /// read them, for example to pin a version).
    vary: Arc<[String]>,
}

impl Dedupe {
    pub fn new(inner: Arc<dyn Source>, vary: Vec<String>) -> Self {
        Dedupe {
            inner,
            in_flight: Arc::new(Mutex::new(FxHashMap::default())),
            feeds: Arc::default(),
            vary: vary.into(),
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
        // It stays in the fetch's span, so the layers below record on it.
        let call = self.inner.fetch(request);
        let in_flight = self.in_flight.clone();
        let task = tokio::spawn(
            async move {
                let result = call.await;
                if let Ok(mut map) = in_flight.lock() {
                    map.remove(&key);
                }
                result
            }
            .instrument(tracing::Span::current()),
        );
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
        if !request.replayable() {
            return self.inner.fetch(request);
        }
        let k = key(&request, &self.vary);
        self.fetch_keyed(request, k)
    }

    fn subscribe(
        &self,
        request: SourceRequest,
    ) -> BoxFuture<'static, Result<EventStream, FetchError>> {
        let k = key(&request, &self.vary);
        self.feeds.subscribe(&self.inner, request, k)
    }
}

/// Where cached responses live.
enum Backend {
    Memory(moka::sync::Cache<u64, Arc<(SourceResponse, Instant)>>),
    Redis(RedisStore),
}

pub struct Cache {
    name: String,
    dedupe: Dedupe,
    config: CacheConfig,
    backend: Backend,
    metrics: Arc<Metrics>,
}

impl Cache {
    /// In-process, or in `shared` Redis when given.
    pub fn new(
        name: &str,
        inner: Arc<dyn Source>,
        config: &CacheConfig,
        metrics: Arc<Metrics>,
        shared: Option<&RedisStore>,
    ) -> Self {
        let backend = match shared {
            Some(redis) => Backend::Redis(redis.clone()),
            None => Backend::Memory(
                moka::sync::Cache::builder()
                    .max_capacity(config.max_entries)
                    .time_to_live(config.ttl.max(Duration::from_secs(1)) * 10)
                    .build(),
            ),
        };
        Cache {
            name: name.to_string(),
            dedupe: Dedupe::new(inner, config.vary_headers.clone()),
            config: config.clone(),
            backend,
            metrics,
        }
    }
}

/// How long a fresh response may be served from the cache (zero: not at all).
fn ttl_of(result: &Result<SourceResponse, FetchError>, config: &CacheConfig) -> Duration {
    match result {
        Ok(response) if !response.has_errors() && response.data.is_some() => {
            match response.max_age {
                Some(age) if config.respect_cache_control => age,
                _ => config.ttl,
            }
        }
        _ => Duration::ZERO,
    }
}

impl Source for Cache {
    fn fetch(
        &self,
        request: SourceRequest,
    ) -> BoxFuture<'static, Result<SourceResponse, FetchError>> {
        if !request.replayable() {
            return self.dedupe.inner.fetch(request);
        }
        let k = key(&request, &self.config.vary_headers);
        let entries = match &self.backend {
            Backend::Memory(entries) => entries,
            Backend::Redis(redis) => return self.fetch_shared(redis.clone(), request, k),
        };
        if let Some(entry) = entries.get(&k) {
            if Instant::now() < entry.1 {
                self.metrics.cache(&format!("upstream:{}", self.name), true);
                tracing::Span::current().record("cache_hit", true);
                let response = SourceResponse {
                    cache_hit: Some(true),
                    ..entry.0.clone()
                };
                return Box::pin(async move { Ok(response) });
            }
            entries.invalidate(&k);
        }
        self.metrics
            .cache(&format!("upstream:{}", self.name), false);
        let call = self.dedupe.fetch_keyed(request, k);
        let entries = entries.clone();
        let config = self.config.clone();
        Box::pin(async move {
            let result = call.await;
            let ttl = ttl_of(&result, &config);
            if let Ok(response) = &result
                && !ttl.is_zero()
            {
                entries.insert(k, Arc::new((response.clone(), Instant::now() + ttl)));
            }
            missed(result)
        })
    }

    fn subscribe(
        &self,
        request: SourceRequest,
    ) -> BoxFuture<'static, Result<EventStream, FetchError>> {
        self.dedupe.subscribe(request)
    }
}

impl Cache {
    /// Distributed mode: look in Redis, else fetch (de-duplicated in this instance)
    /// and store with the TTL as Redis expiry.
    fn fetch_shared(
        &self,
        redis: RedisStore,
        request: SourceRequest,
        k: u64,
    ) -> BoxFuture<'static, Result<SourceResponse, FetchError>> {
        let redis_key = redis.key(&format!(
            "cache:{}",
            shared_key(&self.name, &request, &self.config.vary_headers)
        ));
        let dedupe = self.dedupe.clone();
        let config = self.config.clone();
        let metrics = self.metrics.clone();
        let label = format!("upstream:{}", self.name);
        Box::pin(async move {
            let get_key = redis_key.clone();
            let stored: Option<Vec<u8>> = redis
                .call("cache get", |mut c| async move {
                    redis::cmd("GET").arg(&get_key).query_async(&mut c).await
                })
                .await
                .unwrap_or(None);
            if let Some(response) = stored.as_deref().and_then(decode) {
                metrics.cache(&label, true);
                tracing::Span::current().record("cache_hit", true);
                return Ok(SourceResponse {
                    cache_hit: Some(true),
                    ..response
                });
            }
            metrics.cache(&label, false);
            let result = dedupe.fetch_keyed(request, k).await;
            let ttl = ttl_of(&result, &config);
            if let Ok(response) = &result
                && !ttl.is_zero()
                && let Ok(body) = serde_json::to_vec(&serde_json::json!({ "data": response.data }))
            {
                let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
                let _ = redis
                    .call("cache set", |mut c| async move {
                        redis::cmd("SET")
                            .arg(&redis_key)
                            .arg(body)
                            .arg("PX")
                            .arg(millis)
                            .query_async::<()>(&mut c)
                            .await
                    })
                    .await;
            }
            missed(result)
        })
    }
}

/// A response the cache did not have (for `cacheHit` in the response extensions).
fn missed(result: Result<SourceResponse, FetchError>) -> Result<SourceResponse, FetchError> {
    result.map(|response| SourceResponse {
        cache_hit: Some(false),
        ..response
    })
}

/// A stored entry: `{"data": ...}` (only error-free responses are stored).
fn decode(bytes: &[u8]) -> Option<SourceResponse> {
    let response: SourceResponse = serde_json::from_slice(bytes).ok()?;
    response.data.is_some().then_some(response)
}
