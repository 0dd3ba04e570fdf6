//! Upstream policy settings: defaults for every source, with per-source overrides
//! (`upstream.sources.<name>`), merged section by section into one [`SourcePolicy`]
//! per source at start-up.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

pub use super::balance::{LoadBalancing, PassiveHealthConfig};
pub use super::rules::HeaderRule;
use crate::common::config::{duration, duration_opt};
use crate::sources::tls::UpstreamTls;

/// `upstream:` in the config file.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    #[serde(flatten)]
    pub defaults: PolicyOverrides,
    /// Per-source overrides, by subgraph name.
    #[serde(default)]
    pub sources: BTreeMap<String, PolicyOverrides>,
}

/// Every section is optional so that a per-source entry only says what differs.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyOverrides {
    /// Timeout of one attempt (the in-flight request is cancelled on expiry).
    #[schemars(with = "Option<crate::common::config::DurationText>")]
    #[serde(default, with = "duration_opt")]
    pub timeout: Option<Duration>,
    /// Timeout of the whole fetch, retries and waits included.
    #[schemars(with = "Option<crate::common::config::DurationText>")]
    #[serde(default, with = "duration_opt")]
    pub total_timeout: Option<Duration>,
    /// Largest answer read from the source (a GraphQL response, a REST body, a gRPC
    /// message); a larger one fails the fetch (`UPSTREAM_BAD_RESPONSE`) unbuffered.
    pub max_response_bytes: Option<usize>,
    pub retry: Option<RetryConfig>,
    pub circuit_breaker: Option<BreakerConfig>,
    pub bulkhead: Option<BulkheadConfig>,
    pub rate_limit: Option<RateLimitConfig>,
    pub cache: Option<CacheConfig>,
    pub auth: Option<AuthPropagation>,
    /// How an instance is chosen when the subgraph lists several (`urls`, `versions`).
    pub load_balancing: Option<LoadBalancing>,
    /// Ejection of instances that keep failing.
    pub passive_health: Option<PassiveHealthConfig>,
    /// Add / remove / rename headers sent upstream, after auth propagation.
    pub header_rules: Option<Vec<HeaderRule>>,
    /// HTTPS trust and client certificate (mTLS) of the source's connections.
    pub tls: Option<UpstreamTls>,
    /// How the source is subscribed to, and reconnection after it drops.
    pub subscriptions: Option<SubscriptionsConfig>,
}

/// The effective policy of one source.
#[derive(Debug, Clone)]
pub struct SourcePolicy {
    pub timeout: Duration,
    pub total_timeout: Duration,
    pub max_response_bytes: usize,
    pub retry: RetryConfig,
    pub circuit_breaker: BreakerConfig,
    pub bulkhead: BulkheadConfig,
    pub rate_limit: Option<RateLimitConfig>,
    pub cache: CacheConfig,
    pub auth: AuthPropagation,
    pub load_balancing: LoadBalancing,
    pub passive_health: PassiveHealthConfig,
    pub header_rules: Vec<HeaderRule>,
    /// `None`: the shared client (system roots, no client certificate).
    pub tls: Option<UpstreamTls>,
    pub subscriptions: SubscriptionsConfig,
}

impl Default for SourcePolicy {
    fn default() -> Self {
        SourcePolicy {
            // Within the default 30 s request deadline a retry still fits after a
            // first attempt that timed out.
            timeout: Duration::from_secs(10),
            total_timeout: Duration::from_secs(60),
            max_response_bytes: crate::sources::graphql::MAX_RESPONSE_BYTES,
            retry: RetryConfig::default(),
            circuit_breaker: BreakerConfig::default(),
            bulkhead: BulkheadConfig::default(),
            rate_limit: None,
            cache: CacheConfig::default(),
            auth: AuthPropagation::default(),
            load_balancing: LoadBalancing::default(),
            passive_health: PassiveHealthConfig::default(),
            header_rules: Vec::new(),
            tls: None,
            subscriptions: SubscriptionsConfig::default(),
        }
    }
}

impl SourcePolicy {
    /// Apply overrides on top of this policy.
    pub fn with(mut self, o: &PolicyOverrides) -> Self {
        if let Some(t) = o.timeout {
            self.timeout = t;
        }
        if let Some(t) = o.total_timeout {
            self.total_timeout = t;
        }
        if let Some(n) = o.max_response_bytes {
            self.max_response_bytes = n;
        }
        if let Some(r) = &o.retry {
            self.retry = r.clone();
        }
        if let Some(b) = &o.circuit_breaker {
            self.circuit_breaker = b.clone();
        }
        if let Some(b) = &o.bulkhead {
            self.bulkhead = b.clone();
        }
        if let Some(r) = &o.rate_limit {
            self.rate_limit = Some(r.clone());
        }
        if let Some(c) = &o.cache {
            self.cache = c.clone();
        }
        if let Some(a) = &o.auth {
            self.auth = a.clone();
        }
        if let Some(l) = o.load_balancing {
            self.load_balancing = l;
        }
        if let Some(h) = &o.passive_health {
            self.passive_health = h.clone();
        }
        if let Some(r) = &o.header_rules {
            self.header_rules = r.clone();
        }
        if let Some(t) = &o.tls {
            self.tls = Some(t.clone());
        }
        if let Some(s) = &o.subscriptions {
            self.subscriptions = s.clone();
        }
        self
    }
}

impl UpstreamConfig {
    /// The effective policy of `source`: built-in defaults, then `upstream`, then
    /// `upstream.sources.<source>`.
    pub fn policy_for(&self, source: &str) -> SourcePolicy {
        let base = SourcePolicy::default().with(&self.defaults);
        match self.sources.get(source) {
            Some(o) => base.with(o),
            None => base,
        }
    }

    /// Make the TLS files relative to the config file's folder.
    pub fn resolve_paths(&mut self, base: &Path) {
        let overrides = std::iter::once(&mut self.defaults).chain(self.sources.values_mut());
        for tls in overrides.filter_map(|o| o.tls.as_mut()) {
            for file in [&mut tls.ca_file, &mut tls.cert_file, &mut tls.key_file]
                .into_iter()
                .flatten()
            {
                *file = base.join(&*file);
            }
        }
    }

    /// A client certificate needs its key, and the reverse.
    pub fn validate_tls(&self) -> Result<(), String> {
        for (name, p) in std::iter::once(("upstream", &self.defaults))
            .chain(self.sources.iter().map(|(n, p)| (n.as_str(), p)))
        {
            if let Some(tls) = &p.tls
                && tls.cert_file.is_some() != tls.key_file.is_some()
            {
                return Err(format!(
                    "{name}: tls: `cert_file` and `key_file` go together (the client certificate and its key)"
                ));
            }
        }
        Ok(())
    }

    pub fn validate(&self, known: &[&str]) -> Result<(), String> {
        for name in self.sources.keys() {
            if !known.contains(&name.as_str()) {
                return Err(format!(
                    "upstream.sources.{name}: no subgraph is named `{name}` (known: {})",
                    known.join(", ")
                ));
            }
        }
        for (name, p) in std::iter::once(("upstream", &self.defaults))
            .chain(self.sources.iter().map(|(n, p)| (n.as_str(), p)))
        {
            if let Some(r) = &p.retry
                && r.enabled
                && r.max_attempts == 0
            {
                return Err(format!("{name}: retry.max_attempts must be at least 1"));
            }
            if let Some(b) = &p.bulkhead
                && b.max_concurrent == 0
            {
                return Err(format!("{name}: bulkhead.max_concurrent must be positive"));
            }
            if let Some(r) = &p.rate_limit
                && (r.requests_per_second <= 0.0 || r.burst == 0)
            {
                return Err(format!(
                    "{name}: rate_limit needs a positive requests_per_second and burst"
                ));
            }
            if let Some(b) = &p.circuit_breaker
                && !(0.0..=1.0).contains(&b.error_rate)
            {
                return Err(format!(
                    "{name}: circuit_breaker.error_rate must be between 0 and 1"
                ));
            }
            if let Some(h) = &p.passive_health
                && h.enabled
                && h.consecutive_failures == 0
            {
                return Err(format!(
                    "{name}: passive_health.consecutive_failures must be at least 1"
                ));
            }
            if let Some(rules) = &p.header_rules {
                super::rules::validate(rules, name)?;
            }
            if let Some(s) = &p.subscriptions
                && s.reconnect.max_attempts > 0
                && (s.reconnect.base_delay.is_zero()
                    || s.reconnect.max_delay < s.reconnect.base_delay)
            {
                return Err(format!(
                    "{name}: subscriptions.reconnect needs a positive base_delay, and max_delay at least base_delay"
                ));
            }
        }
        Ok(())
    }
}

/// `subscriptions:` of a source (`docs/streaming.md`).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionsConfig {
    /// How a GraphQL subgraph is subscribed to (REST and gRPC sources stream their own
    /// way, `docs/sources.md`).
    #[serde(default)]
    pub transport: SubscriptionTransport,
    /// Where subscriptions go instead of the subgraph's URL (`ws(s)://` for
    /// `websocket`, `http(s)://` for `sse`).
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub reconnect: ReconnectConfig,
}

/// `subscriptions.transport`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SubscriptionTransport {
    /// `graphql-transport-ws` at the subgraph's URL with the `ws`/`wss` scheme.
    #[default]
    Websocket,
    /// GraphQL over server-sent events (`graphql-sse`, distinct connections mode): a
    /// POST at the subgraph's URL answered with `text/event-stream`.
    Sse,
}

/// `subscriptions.reconnect`: a running subscription whose upstream drops is opened
/// again, with exponential backoff and full jitter, up to `max_attempts` in a row.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconnectConfig {
    /// 0 (the default): no reconnection; the client gets an error event and `complete`.
    #[serde(default)]
    pub max_attempts: u32,
    #[schemars(with = "crate::common::config::DurationText")]
    #[serde(default = "ms100", with = "duration")]
    pub base_delay: Duration,
    #[schemars(with = "crate::common::config::DurationText")]
    #[serde(default = "s5", with = "duration")]
    pub max_delay: Duration,
}

impl Default for ReconnectConfig {
    fn default() -> Self {
        ReconnectConfig {
            max_attempts: 0,
            base_delay: ms100(),
            max_delay: s5(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Attempts in all, the first included.
    #[serde(default = "three")]
    pub max_attempts: u32,
    #[schemars(with = "crate::common::config::DurationText")]
    #[serde(default = "ms50", with = "duration")]
    pub base_delay: Duration,
    #[schemars(with = "crate::common::config::DurationText")]
    #[serde(default = "s1", with = "duration")]
    pub max_delay: Duration,
    /// Retries allowed as a fraction of requests (the retry budget), on top of
    /// `min_per_second`, so a struggling backend is not hit by a retry storm.
    #[serde(default = "fifth")]
    pub budget_ratio: f64,
    #[serde(default = "ten")]
    pub min_per_second: f64,
    /// HTTP statuses worth another attempt. Connection errors and timeouts always
    /// are; add `500` only for a source whose queries are safe to repeat when it
    /// failed midway (mutations are never retried).
    #[serde(default = "temporary_statuses")]
    pub retry_on: Vec<u16>,
}

fn temporary_statuses() -> Vec<u16> {
    vec![502, 503, 504]
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            enabled: true,
            max_attempts: 3,
            base_delay: ms50(),
            max_delay: s1(),
            budget_ratio: fifth(),
            min_per_second: ten(),
            retry_on: temporary_statuses(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BreakerConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Open after this many failures in a row.
    #[serde(default = "five")]
    pub consecutive_failures: u32,
    /// ... or when this fraction of requests in `window` failed,
    #[serde(default = "half")]
    pub error_rate: f64,
    #[schemars(with = "crate::common::config::DurationText")]
    #[serde(default = "s10", with = "duration")]
    pub window: Duration,
    /// ... counting only windows with at least this many requests.
    #[serde(default = "twenty")]
    pub min_requests: u32,
    /// How long to stay open before letting probes through.
    #[schemars(with = "crate::common::config::DurationText")]
    #[serde(default = "s5", with = "duration")]
    pub reset_timeout: Duration,
    /// Concurrent probe requests while half-open.
    #[serde(default = "one")]
    pub half_open_probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            enabled: true,
            consecutive_failures: five(),
            error_rate: half(),
            window: s10(),
            min_requests: twenty(),
            reset_timeout: s5(),
            half_open_probes: one(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkheadConfig {
    #[serde(default = "many")]
    pub max_concurrent: usize,
    /// How long a fetch may wait for a free slot before failing.
    #[schemars(with = "crate::common::config::DurationText")]
    #[serde(default = "s1", with = "duration")]
    pub max_wait: Duration,
}

impl Default for BulkheadConfig {
    fn default() -> Self {
        BulkheadConfig {
            max_concurrent: many(),
            max_wait: s1(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    pub requests_per_second: f64,
    pub burst: u32,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    #[serde(default)]
    pub enabled: bool,
    /// TTL when the upstream sends no `Cache-Control: max-age`.
    #[schemars(with = "crate::common::config::DurationText")]
    #[serde(default = "s30", with = "duration")]
    pub ttl: Duration,
    /// Use the upstream's `Cache-Control` (`max-age`, `no-store`) when present.
    #[serde(default = "yes")]
    pub respect_cache_control: bool,
    #[serde(default = "entries")]
    pub max_entries: u64,
    /// Client request headers that partition the cache (for example `authorization`,
    /// so one user never sees another's cached data).
    #[serde(default)]
    pub vary_headers: Vec<String>,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            enabled: false,
            ttl: s30(),
            respect_cache_control: true,
            max_entries: entries(),
            vary_headers: Vec::new(),
        }
    }
}

/// What credentials a source receives. Nothing by default: client credentials are
/// never forwarded to a source not configured to receive them.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthPropagation {
    /// Forward the client's `Authorization` header.
    #[serde(default)]
    pub forward_authorization: bool,
    /// Send `Authorization: Bearer <token>` (a service credential).
    #[serde(default)]
    pub bearer_token: Option<String>,
    /// Send a static API key header.
    #[serde(default)]
    pub api_key: Option<ApiKeyHeader>,
    /// Client request headers to forward as they are.
    #[serde(default)]
    pub forward_headers: Vec<String>,
    /// Verified claims of an authenticated client, as headers: `{ sub: x-user-id }`.
    /// Anonymous requests send none of these headers, and a client's own header of
    /// the same name is never passed on.
    #[serde(default)]
    pub claims_as_headers: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyHeader {
    pub header: String,
    pub value: String,
}

fn yes() -> bool {
    true
}
fn one() -> u32 {
    1
}
fn three() -> u32 {
    3
}
fn five() -> u32 {
    5
}
fn twenty() -> u32 {
    20
}
fn half() -> f64 {
    0.5
}
fn fifth() -> f64 {
    0.2
}
fn ten() -> f64 {
    10.0
}
fn many() -> usize {
    1024
}
fn entries() -> u64 {
    10_000
}
fn ms50() -> Duration {
    Duration::from_millis(50)
}
fn ms100() -> Duration {
    Duration::from_millis(100)
}

fn s1() -> Duration {
    Duration::from_secs(1)
}
fn s5() -> Duration {
    Duration::from_secs(5)
}
fn s10() -> Duration {
    Duration::from_secs(10)
}
fn s30() -> Duration {
    Duration::from_secs(30)
}
