//! Distributed mode: the Redis connection that several gateway instances share client
//! rate limits, quotas, API keys and upstream responses through. Without a `redis:`
//! section none of this exists and every feature keeps its state in the process.
//!
//! Redis must never make a request hang: every call is bounded by `redis.timeout`, the
//! connection is made lazily and re-made in the background, and a failed call returns an
//! error at once so that the caller applies its documented fallback (see
//! [`RedisFallback`]). Failures are logged at most once per [`LOG_EVERY`] per store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::Deserialize;

use crate::common::config::duration;

/// `redis:` in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]`.
    pub url: String,
    /// Prefix of every key the gateway writes, so that several deployments (or tests)
    /// can share one Redis.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Upper bound of one Redis call, connecting included.
    #[serde(default = "ms250", with = "duration")]
    pub timeout: Duration,
    /// What client rate limits do while Redis is unreachable.
    #[serde(default)]
    pub on_error: RedisFallback,
    /// Share the upstream response cache through Redis (sources with `cache.enabled`).
    #[serde(default = "yes")]
    pub response_cache: bool,
}

/// What the client rate limiter does when Redis cannot answer in time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedisFallback {
    /// Fail open to per-instance limits: each instance enforces the configured limits
    /// with its own counters until Redis is back.
    #[default]
    Local,
    /// Fail closed: answer `503` with `RATE_LIMIT_UNAVAILABLE`.
    Reject,
}

fn default_prefix() -> String {
    "gateway:".into()
}
fn ms250() -> Duration {
    Duration::from_millis(250)
}
fn yes() -> bool {
    true
}

impl RedisConfig {
    pub fn validate(&self) -> Result<(), String> {
        redis::Client::open(self.url.as_str())
            .map_err(|e| format!("redis.url {:?} is invalid: {e}", self.url))?;
        if self.timeout.is_zero() {
            return Err("redis.timeout must be positive".into());
        }
        Ok(())
    }
}

/// Why a Redis call produced no answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("redis error: {0}")]
    Redis(#[from] redis::RedisError),
}

/// Log Redis failures at most this often per store (a dead Redis must not flood logs).
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// A shared handle on one Redis; cheap to clone.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    config: RedisConfig,
    connection: ConnectionManager,
    last_logged: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.inner.url)
            .field("prefix", &self.inner.config.prefix)
            .finish()
    }
}

/// Stores by config, so that an engine rebuilt on reload and the HTTP edge of the same
/// process share one multiplexed connection.
fn registry() -> &'static Mutex<HashMap<String, Weak<Inner>>> {
    static STORES: OnceLock<Mutex<HashMap<String, Weak<Inner>>>> = OnceLock::new();
    STORES.get_or_init(Default::default)
}

impl RedisStore {
    /// The store for `config`, shared with every other user of the same URL in this
    /// process. Makes no connection yet (that happens on first use, in the background
    /// of a bounded call). Needs a Tokio runtime.
    pub fn shared(config: &RedisConfig) -> Result<Self, String> {
        let id = format!(
            "{}\u{0}{}\u{0}{:?}",
            config.url, config.prefix, config.timeout
        );
        let mut stores = registry().lock().map_err(|_| "redis registry poisoned")?;
        stores.retain(|_, weak| weak.strong_count() > 0);
        if let Some(inner) = stores.get(&id).and_then(Weak::upgrade) {
            return Ok(RedisStore { inner });
        }
        let store = Self::new(config)?;
        stores.insert(id, Arc::downgrade(&store.inner));
        Ok(store)
    }

    fn new(config: &RedisConfig) -> Result<Self, String> {
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| format!("redis.url {:?} is invalid: {e}", config.url))?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let connection = ConnectionManager::new_lazy_with_config(client, manager_config)
            .map_err(|e| format!("cannot set up the redis connection: {e}"))?;
        Ok(RedisStore {
            inner: Arc::new(Inner {
                url: redact(&config.url),
                config: config.clone(),
                connection,
                last_logged: Mutex::new(None),
            }),
        })
    }

    /// A key under the configured prefix.
    pub fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.inner.config.prefix)
    }

    /// Run one call against Redis, bounded by `redis.timeout`.
    pub async fn call<T, F, Fut>(&self, what: &'static str, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, redis::RedisError>>,
    {
        let timeout = self.inner.config.timeout;
        let result = match tokio::time::timeout(timeout, f(self.inner.connection.clone())).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) => StoreError::Redis(e),
            Err(_) => StoreError::Timeout(timeout),
        };
        self.log_failure(what, &result);
        Err(result)
    }

    /// `PING`, for start-up (a warm connection) and health checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.call("ping", |mut c| async move {
            redis::cmd("PING").query_async::<String>(&mut c).await
        })
        .await
        .map(|_| ())
    }

    fn log_failure(&self, what: &str, error: &StoreError) {
        let Ok(mut last) = self.inner.last_logged.lock() else {
            return;
        };
        if last.is_some_and(|t| t.elapsed() < LOG_EVERY) {
            return;
        }
        *last = Some(Instant::now());
        tracing::warn!(
            redis = %self.inner.url,
            operation = what,
            error = %error,
            "redis unavailable; applying the configured fallback (logged at most every 10s)"
        );
    }
}

/// The URL without its password, for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_logged() {
        assert_eq!(
            redact("redis://user:secret@127.0.0.1:6379/0"),
            "redis://***@127.0.0.1:6379/0"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }

    #[tokio::test]
    async fn an_unreachable_redis_fails_fast() {
        // Port 1 on loopback refuses connections.
        let config = RedisConfig {
            url: "redis://127.0.0.1:1".into(),
            prefix: "t:".into(),
            timeout: Duration::from_millis(200),
            on_error: RedisFallback::Local,
            response_cache: true,
        };
        let store = RedisStore::shared(&config).expect("valid url");
        assert!(store.ping().await.is_err());
        assert_eq!(store.key("rl:x"), "t:rl:x");
    }
}
