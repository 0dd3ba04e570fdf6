//! Traffic routing of one source, per attempt: which version (weighted canary split, or
//! the version a client pins with a header) and which instance of it (round robin or
//! least in-flight), skipping instances that passive health has ejected.
//!
//! It sits below retry, the circuit breaker and the bulkhead, so those see the source as
//! one backend and a retried attempt is routed afresh (and usually lands on another
//! instance), and above the attempt timeout, so a timed-out instance is charged for it.
//! Instances are GraphQL subgraph URLs; REST and gRPC sources have one instance.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use http::HeaderName;
use serde::Deserialize;

use crate::common::config::duration;
use crate::sources::{EventStream, FetchError, Source, SourceRequest, SourceResponse};

/// How an instance of a version is chosen (`upstream.load_balancing`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LoadBalancing {
    /// Each instance in turn.
    #[default]
    RoundRobin,
    /// The instance with the fewest requests in flight (ties in turn).
    LeastInFlight,
}

/// Passive health (`upstream.passive_health`): an instance that fails
/// `consecutive_failures` attempts in a row gets no traffic for `ejection_time`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PassiveHealthConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "five")]
    pub consecutive_failures: u32,
    #[schemars(with = "crate::common::config::DurationText")]
    #[serde(default = "s10", with = "duration")]
    pub ejection_time: Duration,
}

impl Default for PassiveHealthConfig {
    fn default() -> Self {
        PassiveHealthConfig {
            enabled: true,
            consecutive_failures: five(),
            ejection_time: s10(),
        }
    }
}

fn yes() -> bool {
    true
}
fn five() -> u32 {
    5
}
fn s10() -> Duration {
    Duration::from_secs(10)
}

/// One version of a subgraph in the config (`subgraphs[].versions[]`).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionConfig {
    pub name: String,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub urls: Option<Vec<String>>,
    /// Share of the traffic, relative to the other versions' weights.
    pub weight: i64,
}

/// Where a subgraph's traffic goes when it has several instances or versions: what
/// the engine is built from (`GatewaySpec::routes`).
#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub versions: Vec<VersionSpec>,
    /// Client header that pins a request to a version by name.
    pub version_header: Option<String>,
}

#[derive(Debug, Clone)]
pub struct VersionSpec {
    pub name: String,
    pub urls: Vec<String>,
    pub weight: u32,
}

impl RouteSpec {
    /// From a subgraph entry's `urls` or `versions` (validated); `None` when it has a
    /// single `url`.
    pub fn of(
        urls: Option<&Vec<String>>,
        versions: Option<&Vec<VersionConfig>>,
        version_header: Option<&String>,
    ) -> Option<RouteSpec> {
        let versions = match (urls, versions) {
            (_, Some(versions)) => versions
                .iter()
                .map(|v| VersionSpec {
                    name: v.name.clone(),
                    urls: match (&v.url, &v.urls) {
                        (Some(url), _) => vec![url.clone()],
                        (None, Some(urls)) => urls.clone(),
                        (None, None) => Vec::new(),
                    },
                    weight: u32::try_from(v.weight).unwrap_or(1).max(1),
                })
                .collect(),
            (Some(urls), None) => vec![VersionSpec {
                name: "default".into(),
                urls: urls.clone(),
                weight: 1,
            }],
            (None, None) => return None,
        };
        Some(RouteSpec {
            versions,
            version_header: version_header.cloned(),
        })
    }

    /// One source per instance URL, made by `make`.
    pub fn build<E>(
        &self,
        mut make: impl FnMut(&str) -> Result<Arc<dyn Source>, E>,
    ) -> Result<Targets, E> {
        let mut versions = Vec::new();
        for v in &self.versions {
            let mut instances = Vec::new();
            for url in &v.urls {
                instances.push((url.clone(), make(url)?));
            }
            versions.push(VersionTargets {
                name: v.name.clone(),
                weight: v.weight,
                instances,
            });
        }
        Ok(Targets {
            versions,
            version_header: self
                .version_header
                .as_deref()
                .and_then(|h| HeaderName::from_bytes(h.as_bytes()).ok()),
        })
    }
}

/// Checks of a subgraph's `urls` / `versions` / `version_header`, with messages that
/// say what to change (`prefix` names the entry).
pub fn validate(
    prefix: &str,
    urls: Option<&Vec<String>>,
    versions: Option<&Vec<VersionConfig>>,
    version_header: Option<&String>,
) -> Result<(), String> {
    let check_urls = |what: &str, urls: &[String]| -> Result<(), String> {
        if urls.is_empty() {
            return Err(format!(
                "{prefix}: `{what}` is an empty list; give at least one URL"
            ));
        }
        for url in urls {
            check_url(prefix, url)?;
        }
        Ok(())
    };
    if let Some(urls) = urls {
        check_urls("urls", urls)?;
    }
    if let Some(versions) = versions {
        if versions.is_empty() {
            return Err(format!("{prefix}: `versions` is an empty list"));
        }
        for (i, v) in versions.iter().enumerate() {
            let at = format!("versions[{i}]");
            if v.name.is_empty() {
                return Err(format!("{prefix}: {at}: `name` is empty"));
            }
            if versions[..i].iter().any(|o| o.name == v.name) {
                return Err(format!(
                    "{prefix}: {at}: the version name `{}` is used twice",
                    v.name
                ));
            }
            if v.weight <= 0 || v.weight > i64::from(u32::MAX) {
                return Err(format!(
                    "{prefix}: {at} ({}): `weight` must be a positive integer, got {}",
                    v.name, v.weight
                ));
            }
            match (&v.url, &v.urls) {
                (Some(url), None) => check_url(prefix, url)?,
                (None, Some(urls)) => check_urls(&format!("{at}.urls"), urls)?,
                _ => {
                    return Err(format!(
                        "{prefix}: {at} ({}): set exactly one of `url` or `urls`",
                        v.name
                    ));
                }
            }
        }
    }
    if let Some(header) = version_header {
        if versions.is_none() {
            return Err(format!(
                "{prefix}: `version_header` pins a request to one of `versions`; list them"
            ));
        }
        if HeaderName::from_bytes(header.as_bytes()).is_err() {
            return Err(format!(
                "{prefix}: `version_header` {header:?} is not a valid header name"
            ));
        }
    }
    Ok(())
}

fn check_url(prefix: &str, url: &str) -> Result<(), String> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| format!("{prefix}: invalid url {url:?}: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("{prefix}: url {url:?} must be http or https"));
    }
    Ok(())
}

/// The built sources of one upstream, before the policy stack.
pub struct Targets {
    pub versions: Vec<VersionTargets>,
    pub version_header: Option<HeaderName>,
}

pub struct VersionTargets {
    pub name: String,
    pub weight: u32,
    /// (label for logs, usually the URL; the source).
    pub instances: Vec<(String, Arc<dyn Source>)>,
}

impl From<Arc<dyn Source>> for Targets {
    fn from(source: Arc<dyn Source>) -> Self {
        Targets {
            versions: vec![VersionTargets {
                name: "default".into(),
                weight: 1,
                instances: vec![(String::new(), source)],
            }],
            version_header: None,
        }
    }
}

impl Targets {
    /// Every instance's source mapped by `wrap` (the attempt timeout).
    pub fn map(mut self, wrap: impl Fn(Arc<dyn Source>) -> Arc<dyn Source>) -> Self {
        for version in &mut self.versions {
            for (_, source) in &mut version.instances {
                *source = wrap(source.clone());
            }
        }
        self
    }

    /// The only instance, when there is nothing to choose.
    pub fn single(&self) -> Option<Arc<dyn Source>> {
        match self.versions.as_slice() {
            [only] if only.instances.len() == 1 => Some(only.instances[0].1.clone()),
            _ => None,
        }
    }
}

pub struct Balancer {
    name: Arc<str>,
    pools: Vec<Pool>,
    pin: Option<HeaderName>,
    /// Smooth weighted round robin: the current weight of each version.
    current: Mutex<Vec<i64>>,
    settings: Settings,
}

struct Pool {
    name: String,
    weight: i64,
    instances: Vec<Arc<Instance>>,
    cursor: AtomicUsize,
}

struct Instance {
    label: String,
    source: Arc<dyn Source>,
    in_flight: AtomicUsize,
    health: Mutex<Health>,
}

#[derive(Default)]
struct Health {
    consecutive_failures: u32,
    ejected_until: Option<Instant>,
}

impl Health {
    fn ejected(&self, now: Instant) -> bool {
        self.ejected_until.is_some_and(|t| t > now)
    }
}

/// Everything the balancer needs from the source's policy.
#[derive(Clone)]
struct Settings {
    strategy: LoadBalancing,
    health: PassiveHealthConfig,
}

impl Balancer {
    pub fn new(
        name: &str,
        targets: Targets,
        strategy: LoadBalancing,
        health: &PassiveHealthConfig,
    ) -> Self {
        let pools: Vec<Pool> = targets
            .versions
            .into_iter()
            .map(|v| Pool {
                name: v.name,
                weight: i64::from(v.weight.max(1)),
                instances: v
                    .instances
                    .into_iter()
                    .map(|(label, source)| {
                        Arc::new(Instance {
                            label,
                            source,
                            in_flight: AtomicUsize::new(0),
                            health: Mutex::new(Health::default()),
                        })
                    })
                    .collect(),
                cursor: AtomicUsize::new(0),
            })
            .collect();
        Balancer {
            name: name.into(),
            current: Mutex::new(vec![0; pools.len()]),
            pools,
            pin: targets.version_header,
            settings: Settings {
                strategy,
                health: health.clone(),
            },
        }
    }

    /// The version for this attempt: the pinned one, else smooth weighted round robin
    /// (nginx's: deterministic, and over any run of `sum(weights)` picks each version
    /// gets exactly its weight, interleaved rather than in bursts).
    fn version(&self, request: &SourceRequest) -> usize {
        if let Some(header) = &self.pin
            && let Some(wanted) = request.client_headers.get(header)
            && let Some(i) = self
                .pools
                .iter()
                .position(|p| p.name.as_bytes() == wanted.as_bytes())
        {
            return i;
        }
        if self.pools.len() == 1 {
            return 0;
        }
        let Ok(mut current) = self.current.lock() else {
            return 0;
        };
        let total: i64 = self.pools.iter().map(|p| p.weight).sum();
        let mut best = 0;
        for (i, pool) in self.pools.iter().enumerate() {
            current[i] += pool.weight;
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total;
        best
    }
}

impl Pool {
    /// The instance for this attempt, among those not ejected; when every instance is
    /// ejected, the one whose ejection ends first (trying one beats failing them all).
    fn pick(&self, strategy: LoadBalancing, now: Instant) -> &Arc<Instance> {
        let n = self.instances.len();
        let start = self.cursor.fetch_add(1, Ordering::Relaxed);
        let healthy = |i: usize| {
            !self.instances[i]
                .health
                .lock()
                .is_ok_and(|h| h.ejected(now))
        };
        let chosen = match strategy {
            LoadBalancing::RoundRobin => {
                // The k-th healthy instance, so the turns stay even while one is out.
                let up: Vec<usize> = (0..n).filter(|&i| healthy(i)).collect();
                (!up.is_empty()).then(|| up[start % up.len()])
            }
            LoadBalancing::LeastInFlight => (0..n)
                .map(|k| (start + k) % n)
                .filter(|&i| healthy(i))
                .min_by_key(|&i| self.instances[i].in_flight.load(Ordering::Relaxed)),
        };
        let index = chosen.unwrap_or_else(|| {
            (0..n)
                .min_by_key(|&i| {
                    self.instances[i]
                        .health
                        .lock()
                        .ok()
                        .and_then(|h| h.ejected_until)
                })
                .unwrap_or(0)
        });
        &self.instances[index]
    }
}

impl Source for Balancer {
    fn fetch(
        &self,
        request: SourceRequest,
    ) -> BoxFuture<'static, Result<SourceResponse, FetchError>> {
        let pool = &self.pools[self.version(&request)];
        let instance = pool.pick(self.settings.strategy, Instant::now()).clone();
        instance.in_flight.fetch_add(1, Ordering::Relaxed);
        let call = instance.source.fetch(request);
        let health = self.settings.health.clone();
        let name = self.name.clone();
        let version = pool.name.clone();
        Box::pin(async move {
            // Released even when the attempt is cancelled (a total timeout).
            let _in_flight = InFlight(instance.clone());
            let result = call.await;
            let failed = matches!(&result, Err(e) if e.is_upstream_failure());
            record(&instance, &health, failed, &name, &version);
            result
        })
    }

    fn subscribe(
        &self,
        request: SourceRequest,
    ) -> BoxFuture<'static, Result<EventStream, FetchError>> {
        let pool = &self.pools[self.version(&request)];
        let instance = pool.pick(self.settings.strategy, Instant::now()).clone();
        let open = instance.source.subscribe(request);
        let health = self.settings.health.clone();
        let name = self.name.clone();
        let version = pool.name.clone();
        Box::pin(async move {
            let result = open.await;
            let failed = matches!(&result, Err(e) if e.is_upstream_failure());
            record(&instance, &health, failed, &name, &version);
            result
        })
    }
}

fn record(
    instance: &Instance,
    config: &PassiveHealthConfig,
    failed: bool,
    name: &str,
    version: &str,
) {
    let Ok(mut health) = instance.health.lock() else {
        return;
    };
    if !failed {
        health.consecutive_failures = 0;
        return;
    }
    health.consecutive_failures += 1;
    if config.enabled && health.consecutive_failures >= config.consecutive_failures.max(1) {
        // Back in rotation when the time is up, with a clean slate.
        health.consecutive_failures = 0;
        health.ejected_until = Some(Instant::now() + config.ejection_time);
        tracing::warn!(
            source = %name,
            version,
            instance = %instance.label,
            ejection_time = ?config.ejection_time,
            "upstream instance ejected after consecutive failures"
        );
    }
}

struct InFlight(Arc<Instance>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nop;
    impl Source for Nop {
        fn fetch(
            &self,
            _: SourceRequest,
        ) -> BoxFuture<'static, Result<SourceResponse, FetchError>> {
            Box::pin(async { Ok(SourceResponse::default()) })
        }
    }

    fn request() -> SourceRequest {
        SourceRequest {
            operation: "{ a }".into(),
            operation_name: "".into(),
            variables: Default::default(),
            is_mutation: false,
            uploads: None,
            headers: Default::default(),
            client_headers: Default::default(),
            principal: None,
            deadline: None,
        }
    }

    fn balancer(weights: &[u32], per_version: usize) -> Balancer {
        let targets = Targets {
            versions: weights
                .iter()
                .enumerate()
                .map(|(i, &weight)| VersionTargets {
                    name: format!("v{i}"),
                    weight,
                    instances: (0..per_version)
                        .map(|k| (format!("i{k}"), Arc::new(Nop) as Arc<dyn Source>))
                        .collect(),
                })
                .collect(),
            version_header: Some(HeaderName::from_static("x-version")),
        };
        Balancer::new(
            "s",
            targets,
            LoadBalancing::RoundRobin,
            &PassiveHealthConfig::default(),
        )
    }

    #[test]
    fn smooth_weighted_round_robin_is_exact_and_interleaved() {
        let b = balancer(&[5, 1, 1], 1);
        let picks: Vec<usize> = (0..7).map(|_| b.version(&request())).collect();
        assert_eq!(picks, [0, 0, 1, 0, 2, 0, 0]);
        let b = balancer(&[90, 10], 1);
        let mut counts = [0; 2];
        for _ in 0..1000 {
            counts[b.version(&request())] += 1;
        }
        assert_eq!(counts, [900, 100]);
    }

    #[test]
    fn the_header_pins_a_known_version_only() {
        let b = balancer(&[1, 1], 1);
        let mut pinned = request();
        let mut headers = http::HeaderMap::new();
        headers.insert("x-version", http::HeaderValue::from_static("v1"));
        pinned.client_headers = Arc::new(headers.clone());
        assert!((0..5).all(|_| b.version(&pinned) == 1));
        headers.insert("x-version", http::HeaderValue::from_static("nope"));
        pinned.client_headers = Arc::new(headers);
        let picks: Vec<usize> = (0..4).map(|_| b.version(&pinned)).collect();
        assert_eq!(
            picks,
            [0, 1, 0, 1],
            "an unknown version falls back to weights"
        );
    }

    #[test]
    fn ejected_instances_are_skipped_unless_all_are() {
        let b = balancer(&[1], 3);
        let pool = &b.pools[0];
        let now = Instant::now();
        let health = PassiveHealthConfig {
            consecutive_failures: 2,
            ..Default::default()
        };
        record(&pool.instances[1], &health, true, "s", "v0");
        assert!(!pool.instances[1].health.lock().expect("lock").ejected(now));
        record(&pool.instances[1], &health, true, "s", "v0");
        let later = Instant::now();
        let picked: Vec<&str> = (0..4)
            .map(|_| pool.pick(LoadBalancing::RoundRobin, later).label.as_str())
            .collect();
        assert_eq!(picked, ["i0", "i2", "i0", "i2"]);
        for i in [0, 2] {
            record(&pool.instances[i], &health, true, "s", "v0");
            record(&pool.instances[i], &health, true, "s", "v0");
        }
        let picked = pool.pick(LoadBalancing::LeastInFlight, Instant::now());
        assert_eq!(picked.label, "i1", "all ejected: the first to come back");
        let after = Instant::now() + health.ejection_time + Duration::from_secs(1);
        let picked: Vec<&str> = (0..3)
            .map(|_| pool.pick(LoadBalancing::RoundRobin, after).label.as_str())
            .collect();
        assert_eq!(picked.len(), 3);
        assert!(picked.contains(&"i0") && picked.contains(&"i1") && picked.contains(&"i2"));
    }

    #[test]
    fn least_in_flight_prefers_the_idle_instance() {
        let b = balancer(&[1], 2);
        let pool = &b.pools[0];
        pool.instances[0].in_flight.store(3, Ordering::Relaxed);
        assert!((0..4).all(|_| {
            pool.pick(LoadBalancing::LeastInFlight, Instant::now())
                .label
                == "i1"
        }));
    }
}
