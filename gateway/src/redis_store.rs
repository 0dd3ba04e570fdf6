//! Distributed mode: the Redis connection that several gateway instances share client
//! rate limits, quotas, API keys and upstream responses through. Without a `redis:`
//! section none of this exists and every feature keeps its state in the process.
//!
//! One node or a Redis Cluster: the cluster client (redis-rs `cluster-async`) follows
//! MOVED/ASK redirects and failovers itself; the gateway's part is that every key one
//! script touches carries the same hash tag ([`hash_tag`]), so the keys share a slot.
//!
//! Redis must never make a request hang: every call is bounded by `redis.timeout`, the
//! connection is made lazily and re-made in the background, and a failed call returns an
//! error at once so that the caller applies its documented fallback (see
//! [`RedisFallback`]). Failures are counted (`gateway_redis_errors_total`) and logged at
//! most once per [`LOG_EVERY`] per store.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{ConnectionInfo, IntoConnectionInfo, RedisFuture};
use serde::Deserialize;

use crate::common::config::duration;
use crate::telemetry::Metrics;

/// `redis:` in the config file.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// One node, `redis://[user:password@]host:port[/db]` (`rediss://` for TLS), or the
    /// seed nodes of a cluster as `redis+cluster://host:port,host:port`
    /// (`rediss+cluster://` for TLS).
    #[serde(default)]
    pub url: Option<String>,
    /// Seed nodes of a Redis Cluster (`redis://host:port` each); the client discovers
    /// the others.
    #[serde(default)]
    pub cluster: Vec<String>,
    /// ACL user and password; they override any in the URLs (so that the password can
    /// come from `${REDIS_PASSWORD}` rather than sit in a URL).
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// PEM CA certificates that a `rediss://` server's certificate chains to, instead
    /// of the system roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Prefix of every key the gateway writes, so that several deployments (or tests)
    /// can share one Redis.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Upper bound of one Redis call, connecting included.
    #[schemars(with = "crate::common::config::DurationText")]
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
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

/// Where the gateway's Redis is, resolved from the config.
#[derive(Debug, Clone)]
enum Target {
    Node(Box<ConnectionInfo>),
    Cluster(Vec<ConnectionInfo>),
}

impl RedisConfig {
    /// A config for one node at `url`, with the defaults for everything else.
    pub fn node(url: &str) -> Self {
        RedisConfig {
            url: Some(url.to_string()),
            cluster: Vec::new(),
            username: None,
            password: None,
            ca_file: None,
            prefix: default_prefix(),
            timeout: ms250(),
            on_error: RedisFallback::Local,
            response_cache: true,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        self.target()?;
        if self.timeout.is_zero() {
            return Err("redis.timeout must be positive".into());
        }
        if self.prefix.contains(['{', '}']) {
            return Err(format!(
                "redis.prefix {:?} must not contain `{{` or `}}`: the gateway puts its own hash tags in keys",
                self.prefix
            ));
        }
        Ok(())
    }

    /// Paths in the config are relative to the config file.
    pub fn resolve_paths(&mut self, base: &std::path::Path) {
        if let Some(ca) = &mut self.ca_file {
            *ca = base.join(&*ca);
        }
    }

    fn target(&self) -> Result<Target, String> {
        let seeds: Vec<String> = match (&self.url, self.cluster.is_empty()) {
            (Some(_), false) => {
                return Err("redis: set either `url` or `cluster`, not both".into());
            }
            (None, true) => {
                return Err("redis: set `url` (one node) or `cluster` (seed nodes)".into());
            }
            (None, false) => self.cluster.clone(),
            (Some(url), true) => match cluster_seeds(url) {
                Some(seeds) => seeds,
                None => return Ok(Target::Node(Box::new(self.connection_info(url)?))),
            },
        };
        let nodes = seeds
            .iter()
            .map(|url| self.connection_info(url))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Target::Cluster(nodes))
    }

    fn connection_info(&self, url: &str) -> Result<ConnectionInfo, String> {
        let info = url
            .into_connection_info()
            .map_err(|e| format!("redis URL {:?} is invalid: {e}", redact(url)))?;
        let mut settings = info.redis_settings().clone();
        if let Some(user) = &self.username {
            settings = settings.set_username(user);
        }
        if let Some(password) = &self.password {
            settings = settings.set_password(password);
        }
        Ok(info.set_redis_settings(settings))
    }

    fn certificates(&self) -> Result<Option<redis::TlsCertificates>, String> {
        let Some(path) = &self.ca_file else {
            return Ok(None);
        };
        let pem =
            std::fs::read(path).map_err(|e| format!("redis.ca_file {}: {e}", path.display()))?;
        Ok(Some(redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(pem),
        }))
    }
}

/// `redis+cluster://a:1,b:2` (or `rediss+cluster://`) → one URL per seed node.
fn cluster_seeds(url: &str) -> Option<Vec<String>> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("redis+cluster://") {
        ("redis", rest)
    } else {
        ("rediss", url.strip_prefix("rediss+cluster://")?)
    };
    // Credentials, when present, belong to every seed.
    let (auth, hosts) = match rest.rsplit_once('@') {
        Some((auth, hosts)) => (format!("{auth}@"), hosts),
        None => (String::new(), rest),
    };
    let hosts = hosts.trim_end_matches('/');
    Some(
        hosts
            .split(',')
            .map(|host| format!("{scheme}://{auth}{}", host.trim()))
            .collect(),
    )
}

/// `{part}`: the hash tag of a key. Redis Cluster places a key by the first `{…}` in it,
/// so every key built with the same tag lives in one slot and one script may touch
/// them together. `{` and `}` inside `part` would end the tag early: they are replaced.
pub fn hash_tag(part: &str) -> String {
    let mut tag = String::with_capacity(part.len() + 2);
    tag.push('{');
    tag.extend(
        part.chars()
            .map(|c| if c == '{' || c == '}' { '_' } else { c }),
    );
    tag.push('}');
    tag
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

/// A connection to one node (re-made in the background when it drops) or to a cluster
/// (the client keeps a connection per node and the slot map); cheap to clone.
#[derive(Clone)]
pub enum Connection {
    Node(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> RedisFuture<'a, redis::Value> {
        match self {
            Connection::Node(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Connection::Node(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Node(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

/// A shared handle on one Redis; cheap to clone.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// Where it points, without passwords (for logs).
    label: String,
    config: RedisConfig,
    connection: Connection,
    metrics: Arc<Metrics>,
    last_logged: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("redis", &self.inner.label)
            .field("prefix", &self.inner.config.prefix)
            .finish()
    }
}

/// Stores by config and metrics registry, so that an engine rebuilt on reload and the
/// HTTP edge of the same gateway share one multiplexed connection.
fn registry() -> &'static Mutex<HashMap<String, Weak<Inner>>> {
    static STORES: OnceLock<Mutex<HashMap<String, Weak<Inner>>>> = OnceLock::new();
    STORES.get_or_init(Default::default)
}

impl RedisStore {
    /// The store for `config`, shared with every other user of the same config and
    /// metrics in this process. Makes no connection yet (that happens on first use, in
    /// the background of a bounded call). Needs a Tokio runtime.
    pub fn shared(config: &RedisConfig, metrics: &Arc<Metrics>) -> Result<Self, String> {
        let id = format!("{config:?}\u{0}{:p}", Arc::as_ptr(metrics));
        let mut stores = registry().lock().map_err(|_| "redis registry poisoned")?;
        stores.retain(|_, weak| weak.strong_count() > 0);
        if let Some(inner) = stores.get(&id).and_then(Weak::upgrade) {
            return Ok(RedisStore { inner });
        }
        let store = Self::new(config, metrics.clone())?;
        stores.insert(id, Arc::downgrade(&store.inner));
        Ok(store)
    }

    fn new(config: &RedisConfig, metrics: Arc<Metrics>) -> Result<Self, String> {
        let certificates = config.certificates()?;
        let (label, connection) = match config.target()? {
            Target::Node(info) => {
                let label = redact(&info.addr().to_string());
                let client = match certificates {
                    Some(certs) => redis::Client::build_with_tls(*info, certs),
                    None => redis::Client::open(*info),
                }
                .map_err(|e| format!("redis: {e}"))?;
                let manager_config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(config.timeout))
                    .set_response_timeout(Some(config.timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_secs(1));
                let manager = ConnectionManager::new_lazy_with_config(client, manager_config)
                    .map_err(|e| format!("cannot set up the redis connection: {e}"))?;
                (label, Connection::Node(manager))
            }
            Target::Cluster(nodes) => {
                let label = format!(
                    "cluster {}",
                    nodes
                        .iter()
                        .map(|n| n.addr().to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                );
                let mut builder = redis::cluster::ClusterClientBuilder::new(nodes)
                    .connection_timeout(config.timeout)
                    .response_timeout(config.timeout)
                    .retries(1);
                if let Some(certs) = certificates {
                    builder = builder.certs(certs);
                }
                let client = builder.build().map_err(|e| format!("redis.cluster: {e}"))?;
                let cluster = client.get_pending_async_connection_with_config(
                    redis::cluster::ClusterConfig::new()
                        .set_connection_timeout(config.timeout)
                        .set_response_timeout(config.timeout),
                );
                (label, Connection::Cluster(cluster))
            }
        };
        Ok(RedisStore {
            inner: Arc::new(Inner {
                label,
                config: config.clone(),
                connection,
                metrics,
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
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = Result<T, redis::RedisError>>,
    {
        let timeout = self.inner.config.timeout;
        let result = match tokio::time::timeout(timeout, f(self.inner.connection.clone())).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) => StoreError::Redis(e),
            Err(_) => StoreError::Timeout(timeout),
        };
        self.inner.metrics.redis_error(what);
        self.log_failure(what, &result);
        Err(result)
    }

    /// `PING`, for start-up (a warm connection) and readiness. On a cluster it reaches
    /// one node: enough to know the client can talk to the cluster.
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
            redis = %self.inner.label,
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

    #[test]
    fn a_cluster_url_names_its_seeds() {
        assert_eq!(
            cluster_seeds("redis+cluster://u:p@10.0.0.1:7000,10.0.0.2:7001/"),
            Some(vec![
                "redis://u:p@10.0.0.1:7000".to_string(),
                "redis://u:p@10.0.0.2:7001".to_string()
            ])
        );
        assert_eq!(
            cluster_seeds("rediss+cluster://h:1"),
            Some(vec!["rediss://h:1".to_string()])
        );
        assert_eq!(cluster_seeds("redis://h:1"), None);
        let config = RedisConfig::node("redis+cluster://127.0.0.1:7000,127.0.0.1:7001");
        assert!(matches!(config.target(), Ok(Target::Cluster(n)) if n.len() == 2));
    }

    #[test]
    fn bad_redis_configs_are_refused() {
        let mut both = RedisConfig::node("redis://127.0.0.1:6379");
        both.cluster = vec!["redis://127.0.0.1:7000".into()];
        let err = both.validate().err().unwrap_or_default();
        assert!(err.contains("not both"), "{err}");
        let mut neither = RedisConfig::node("redis://x");
        neither.url = None;
        let err = neither.validate().err().unwrap_or_default();
        assert!(err.contains("set `url`"), "{err}");
        let bad = RedisConfig::node("http://127.0.0.1:6379");
        let err = bad.validate().err().unwrap_or_default();
        assert!(err.contains("invalid"), "{err}");
        let mut tagged = RedisConfig::node("redis://127.0.0.1:6379");
        tagged.prefix = "{app}:".into();
        let err = tagged.validate().err().unwrap_or_default();
        assert!(err.contains("hash tags"), "{err}");
    }

    #[test]
    fn hash_tags_cannot_be_broken_out_of() {
        assert_eq!(hash_tag("key:acme"), "{key:acme}");
        assert_eq!(hash_tag("sub:a}b{c"), "{sub:a_b_c}");
    }

    #[tokio::test]
    async fn an_unreachable_redis_fails_fast_and_is_counted() {
        // Port 1 on loopback refuses connections.
        for url in ["redis://127.0.0.1:1", "redis+cluster://127.0.0.1:1"] {
            let mut config = RedisConfig::node(url);
            config.prefix = "t:".into();
            config.timeout = Duration::from_millis(200);
            let metrics = Arc::new(Metrics::new());
            let store = RedisStore::shared(&config, &metrics).expect("valid url");
            assert!(store.ping().await.is_err(), "{url}");
            assert_eq!(store.key("rl:x"), "t:rl:x");
            assert!(
                metrics
                    .render()
                    .contains("gateway_redis_errors_total{operation=\"ping\"} 1"),
                "{url}"
            );
        }
    }
}
