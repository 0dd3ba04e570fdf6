//! Prometheus metrics, in one registry per gateway process (not a global recorder), so
//! several gateways in one test process keep their own counts and `/metrics` renders
//! only its own. Metrics outlive schema reloads: the engine holds an `Arc<Metrics>`.

use std::sync::atomic::{AtomicI64, AtomicU64};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `unified`, or the BFF name.
    pub client: String,
    pub operation: String,
    /// `ok`, `partial` (data with errors), `request_error`, `rejected`.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    pub source: String,
    /// `ok`, `graphql_error`, or the failure code (`UPSTREAM_TIMEOUT`, ...).
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    pub cache: String,
    pub result: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.5 ms .. ~16 s
    Histogram::new([
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_duration: HistogramFamily<RequestLabels>,
    in_flight: Gauge<i64, AtomicI64>,
    upstream_requests: Family<UpstreamLabels, Counter>,
    upstream_duration: HistogramFamily<UpstreamLabels>,
    cache: Family<CacheLabels, Counter<u64, AtomicU64>>,
    breaker: Family<SourceLabel, Gauge<i64, AtomicI64>>,
    rate_limited: Family<TierLabel, Counter>,
    auth_failures: Family<ReasonLabel, Counter>,
    subscriptions_opened: Family<UpstreamLabels, Counter>,
    events_received: Family<SourceLabel, Counter>,
    events_sent: Family<ClientLabel, Counter>,
    subscriptions_active: Family<ClientLabel, Gauge<i64, AtomicI64>>,
    connections_active: Gauge<i64, AtomicI64>,
    redis_errors: Family<OperationLabel, Counter>,
    registry_polls: Family<ResultLabel, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabel {
    pub operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClientLabel {
    /// `unified`, or the BFF name.
    pub client: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabel {
    pub source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TierLabel {
    pub tier: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// `missing`, `invalid` or `unavailable`.
    pub reason: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Longest operation name kept as a label value; longer names are cut, so a client
/// cannot blow up label size.
const MAX_OPERATION_LABEL: usize = 64;

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("gateway");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "Client GraphQL requests", requests.clone());
        let request_duration: HistogramFamily<RequestLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Client request duration",
            request_duration.clone(),
        );
        let in_flight = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "http_requests_in_flight",
            "Client requests being served",
            in_flight.clone(),
        );
        let upstream_requests = Family::<UpstreamLabels, Counter>::default();
        registry.register(
            "upstream_requests",
            "Fetches to upstream sources",
            upstream_requests.clone(),
        );
        let upstream_duration: HistogramFamily<UpstreamLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "upstream_request_duration_seconds",
            "Upstream fetch duration",
            upstream_duration.clone(),
        );
        let cache = Family::<CacheLabels, Counter>::default();
        registry.register(
            "cache_lookups",
            "Cache lookups by cache and result (hit or miss)",
            cache.clone(),
        );
        let breaker = Family::<SourceLabel, Gauge<i64, AtomicI64>>::default();
        registry.register(
            "circuit_breaker_state",
            "Circuit breaker state per source: 0 closed, 1 open, 2 half-open",
            breaker.clone(),
        );
        let rate_limited = Family::<TierLabel, Counter>::default();
        registry.register(
            "rate_limited_requests",
            "Client requests refused by the client rate limit, by tier",
            rate_limited.clone(),
        );
        let auth_failures = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "auth_failures",
            "Client requests refused at authentication, by reason",
            auth_failures.clone(),
        );
        let subscriptions_opened = Family::<UpstreamLabels, Counter>::default();
        registry.register(
            "upstream_subscriptions",
            "Subscriptions opened to upstream sources, by outcome",
            subscriptions_opened.clone(),
        );
        let events_received = Family::<SourceLabel, Counter>::default();
        registry.register(
            "subscription_events_received",
            "Subscription events received from upstream sources",
            events_received.clone(),
        );
        let events_sent = Family::<ClientLabel, Counter>::default();
        registry.register(
            "subscription_events_sent",
            "Subscription events sent to clients",
            events_sent.clone(),
        );
        let subscriptions_active = Family::<ClientLabel, Gauge<i64, AtomicI64>>::default();
        registry.register(
            "subscriptions_active",
            "Client subscriptions running",
            subscriptions_active.clone(),
        );
        let connections_active = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "websocket_connections_active",
            "Client WebSocket connections open",
            connections_active.clone(),
        );
        let redis_errors = Family::<OperationLabel, Counter>::default();
        registry.register(
            "redis_errors",
            "Redis calls that failed or timed out (the caller applied its fallback), by operation",
            redis_errors.clone(),
        );
        let registry_polls = Family::<ResultLabel, Counter>::default();
        registry.register(
            "registry_polls",
            "Polls of the schema registry, by result (swapped, not_modified, unchanged, fetch_failed, invalid)",
            registry_polls.clone(),
        );
        Metrics {
            redis_errors,
            registry_polls,
            subscriptions_opened,
            events_received,
            events_sent,
            subscriptions_active,
            connections_active,
            rate_limited,
            auth_failures,
            breaker,
            registry,
            requests,
            request_duration,
            in_flight,
            upstream_requests,
            upstream_duration,
            cache,
        }
    }

    pub fn registry_poll(&self, result: &'static str) {
        self.registry_polls
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    pub fn redis_error(&self, operation: &'static str) {
        self.redis_errors
            .get_or_create(&OperationLabel { operation })
            .inc();
    }

    pub fn request(&self, client: &str, operation: Option<&str>, outcome: &str, elapsed: Duration) {
        let mut operation = operation.unwrap_or("").to_string();
        if operation.len() > MAX_OPERATION_LABEL {
            let mut cut = MAX_OPERATION_LABEL;
            while !operation.is_char_boundary(cut) {
                cut -= 1;
            }
            operation.truncate(cut);
        }
        let labels = RequestLabels {
            client: client.to_string(),
            operation,
            outcome: outcome.to_string(),
        };
        self.requests.get_or_create(&labels).inc();
        self.request_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Tracks one in-flight request until the guard is dropped.
    pub fn in_flight(&self) -> InFlight<'_> {
        self.in_flight.inc();
        InFlight(&self.in_flight)
    }

    pub fn upstream(&self, source: &str, outcome: &str, elapsed: Duration) {
        let labels = UpstreamLabels {
            source: source.to_string(),
            outcome: outcome.to_string(),
        };
        self.upstream_requests.get_or_create(&labels).inc();
        self.upstream_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    pub fn cache(&self, cache: &str, hit: bool) {
        let labels = CacheLabels {
            cache: cache.to_string(),
            result: if hit { "hit" } else { "miss" }.to_string(),
        };
        self.cache.get_or_create(&labels).inc();
    }

    /// A source's circuit-breaker gauge: 0 closed, 1 open, 2 half-open (the breaker
    /// owns its states and says which number each is).
    pub fn breaker_state(&self, source: &str, value: i64) {
        self.breaker
            .get_or_create(&SourceLabel {
                source: source.to_string(),
            })
            .set(value);
    }

    pub fn rate_limited(&self, tier: &str) {
        self.rate_limited
            .get_or_create(&TierLabel {
                tier: tier.to_string(),
            })
            .inc();
    }

    pub fn auth_failure(&self, reason: &str) {
        self.auth_failures
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
    }

    pub fn subscription_opened(&self, source: &str, outcome: &str) {
        self.subscriptions_opened
            .get_or_create(&UpstreamLabels {
                source: source.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    pub fn subscription_event(&self, source: &str) {
        self.events_received
            .get_or_create(&SourceLabel {
                source: source.to_string(),
            })
            .inc();
    }

    pub fn event_sent(&self, client: &str) {
        self.events_sent
            .get_or_create(&ClientLabel {
                client: client.to_string(),
            })
            .inc();
    }

    /// Counts one running client subscription until the guard is dropped.
    pub fn subscription_active(&self, client: &str) -> Active {
        let gauge = self
            .subscriptions_active
            .get_or_create(&ClientLabel {
                client: client.to_string(),
            })
            .clone();
        gauge.inc();
        Active(gauge)
    }

    /// Counts one open client WebSocket until the guard is dropped.
    pub fn connection_active(&self) -> Active {
        self.connections_active.inc();
        Active(self.connections_active.clone())
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

pub struct InFlight<'a>(&'a Gauge<i64, AtomicI64>);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// An owned gauge guard, for things that live in their own tasks.
pub struct Active(Gauge<i64, AtomicI64>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.dec();
    }
}
