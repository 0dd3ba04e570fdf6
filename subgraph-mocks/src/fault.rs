//! Fault injection settings ([`Fault`]) and request counters ([`Stats`]) of one subgraph,
//! plus their lock-free runtime state.
//!
//! Faults are deterministic so tests are reproducible: with a rate `r`, the `n`-th request
//! (counted from 1 since the fault was last set or the stats reset) is hit exactly when
//! `floor(n * r) > floor((n - 1) * r)`. So `1.0` hits every request, `0.5` requests 2, 4, 6…,
//! `0.1` requests 10, 20, 30…, and `0.0` none. HTTP 500s are decided first; the GraphQL-error
//! sequence only counts requests that were not answered with a 500.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use serde::{Deserialize, Serialize};

/// Faults injected into one subgraph. `Fault::default()` means "healthy".
///
/// In JSON (control endpoint) every field is optional: `{"latency_ms": 20}` is valid.
#[derive(Clone, Copy, Default, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Fault {
    /// Added before answering each request (also before an injected 500 or GraphQL error).
    pub latency_ms: u64,
    /// Fraction (0..=1) of requests answered with HTTP 500 (deterministic, see module docs).
    pub http_500_rate: f64,
    /// Fraction (0..=1) of the remaining requests answered with HTTP 200 and
    /// `{"data":null,"errors":[{"message":"..."}]}`.
    pub graphql_error_rate: f64,
    /// The subgraph is unreachable. With separate listeners its listener is closed (connections
    /// are refused; open connections are closed) and re-bound on the same port when cleared. On
    /// the combined listener a request to its path gets its connection closed without any
    /// response.
    pub down: bool,
}

impl Fault {
    /// A fault that only marks the subgraph down.
    pub fn down() -> Self {
        Self {
            down: true,
            ..Self::default()
        }
    }

    /// A fault that only adds latency.
    pub fn latency(ms: u64) -> Self {
        Self {
            latency_ms: ms,
            ..Self::default()
        }
    }

    /// The same fault with the rates clamped to `0..=1` (NaN becomes 0).
    pub fn normalized(self) -> Self {
        let clamp = |r: f64| if r.is_nan() { 0.0 } else { r.clamp(0.0, 1.0) };
        Self {
            http_500_rate: clamp(self.http_500_rate),
            graphql_error_rate: clamp(self.graphql_error_rate),
            ..self
        }
    }
}

/// Error parsing a [`Fault`] spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultParseError(String);

impl fmt::Display for FaultParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FaultParseError {}

impl FromStr for Fault {
    type Err = FaultParseError;

    /// Parses `key:value` pairs separated by commas (`=` also accepted instead of `:`), e.g.
    /// `latency_ms:20,http_500_rate:0.1`, `graphql_error_rate:0.5`, `down` (same as
    /// `down:true`). Keys: `latency_ms`, `http_500_rate`, `graphql_error_rate`, `down`. An empty
    /// string or `none` is the healthy default.
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let mut fault = Fault::default();
        let spec = spec.trim();
        if spec.is_empty() || spec == "none" {
            return Ok(fault);
        }
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = match part.split_once([':', '=']) {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (part, None),
            };
            let bad =
                |what: &str| FaultParseError(format!("invalid {what} in fault spec `{part}`"));
            let rate = |v: Option<&str>| -> Result<f64, FaultParseError> {
                let r: f64 = v
                    .ok_or_else(|| bad("missing value"))?
                    .parse()
                    .map_err(|_| bad("rate"))?;
                if (0.0..=1.0).contains(&r) {
                    Ok(r)
                } else {
                    Err(bad("rate (must be 0..=1)"))
                }
            };
            match key {
                "latency_ms" | "latency" => {
                    fault.latency_ms = value
                        .ok_or_else(|| bad("missing value"))?
                        .parse()
                        .map_err(|_| bad("latency_ms"))?;
                }
                "http_500_rate" | "500" => fault.http_500_rate = rate(value)?,
                "graphql_error_rate" | "error" => fault.graphql_error_rate = rate(value)?,
                "down" => {
                    fault.down = match value {
                        None | Some("true") | Some("1") => true,
                        Some("false") | Some("0") => false,
                        Some(_) => return Err(bad("boolean")),
                    }
                }
                _ => return Err(bad("key")),
            }
        }
        Ok(fault)
    }
}

/// Counters of one subgraph (a snapshot; see [`crate::server::MockSubgraphs::stats`]).
///
/// A request counts as an *entity request* when its query text contains `_entities`, otherwise
/// as a *root request*; in a JSON-array batch each operation is classified separately.
/// `representations` sums the lengths of the representation lists (variables holding
/// `{__typename, ...}` objects) of entity requests.
/// Requests are counted on arrival, before any fault is applied.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct Stats {
    /// HTTP requests received on the subgraph's path (including faulted and malformed ones).
    pub requests: u64,
    /// Operations whose query uses `_entities`.
    pub entity_requests: u64,
    /// Representations received over all entity operations.
    pub representations: u64,
    /// Operations that do not use `_entities` (root fields, `_service`, introspection).
    pub root_requests: u64,
    /// Requests that could not be parsed as GraphQL-over-HTTP (answered with 400).
    pub bad_requests: u64,
    /// Requests answered with an injected HTTP 500.
    pub injected_http_500: u64,
    /// Requests answered with an injected GraphQL error.
    pub injected_graphql_errors: u64,
    /// Requests whose connection was closed without a response because of `down`.
    pub dropped: u64,
    /// Requests answered from the response cache (identical POST body seen before).
    pub cache_hits: u64,
}

/// Live counters; [`Counters::snapshot`] gives a [`Stats`].
#[derive(Default, Debug)]
pub(crate) struct Counters {
    pub requests: AtomicU64,
    pub entity_requests: AtomicU64,
    pub representations: AtomicU64,
    pub root_requests: AtomicU64,
    pub bad_requests: AtomicU64,
    pub injected_http_500: AtomicU64,
    pub injected_graphql_errors: AtomicU64,
    pub dropped: AtomicU64,
    pub cache_hits: AtomicU64,
}

impl Counters {
    pub fn snapshot(&self) -> Stats {
        Stats {
            requests: self.requests.load(Relaxed),
            entity_requests: self.entity_requests.load(Relaxed),
            representations: self.representations.load(Relaxed),
            root_requests: self.root_requests.load(Relaxed),
            bad_requests: self.bad_requests.load(Relaxed),
            injected_http_500: self.injected_http_500.load(Relaxed),
            injected_graphql_errors: self.injected_graphql_errors.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            cache_hits: self.cache_hits.load(Relaxed),
        }
    }

    pub fn reset(&self) {
        for c in [
            &self.requests,
            &self.entity_requests,
            &self.representations,
            &self.root_requests,
            &self.bad_requests,
            &self.injected_http_500,
            &self.injected_graphql_errors,
            &self.dropped,
            &self.cache_hits,
        ] {
            c.store(0, Relaxed);
        }
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }
}

/// The current fault of a subgraph, readable without locks on the request path.
#[derive(Debug, Default)]
pub(crate) struct FaultState {
    latency_ms: AtomicU64,
    http_500_rate: AtomicU64,
    graphql_error_rate: AtomicU64,
    down: AtomicBool,
    seq_500: AtomicU64,
    seq_graphql: AtomicU64,
}

impl FaultState {
    pub fn get(&self) -> Fault {
        Fault {
            latency_ms: self.latency_ms.load(Relaxed),
            http_500_rate: f64::from_bits(self.http_500_rate.load(Relaxed)),
            graphql_error_rate: f64::from_bits(self.graphql_error_rate.load(Relaxed)),
            down: self.down.load(Relaxed),
        }
    }

    /// Stores a (normalized) fault and restarts the deterministic sequences.
    pub fn set(&self, fault: Fault) {
        let fault = fault.normalized();
        self.latency_ms.store(fault.latency_ms, Relaxed);
        self.http_500_rate
            .store(fault.http_500_rate.to_bits(), Relaxed);
        self.graphql_error_rate
            .store(fault.graphql_error_rate.to_bits(), Relaxed);
        self.down.store(fault.down, Relaxed);
        self.restart_sequences();
    }

    pub fn restart_sequences(&self) {
        self.seq_500.store(0, Relaxed);
        self.seq_graphql.store(0, Relaxed);
    }

    pub fn is_down(&self) -> bool {
        self.down.load(Relaxed)
    }

    /// Whether the next request gets an HTTP 500 (advances the sequence only if the rate > 0).
    pub fn next_is_500(&self, fault: &Fault) -> bool {
        hit(&self.seq_500, fault.http_500_rate)
    }

    /// Whether the next (non-500) request gets a GraphQL error.
    pub fn next_is_graphql_error(&self, fault: &Fault) -> bool {
        hit(&self.seq_graphql, fault.graphql_error_rate)
    }
}

fn hit(seq: &AtomicU64, rate: f64) -> bool {
    if rate <= 0.0 || rate.is_nan() {
        return false;
    }
    let n = seq.fetch_add(1, Relaxed) + 1;
    selects(n, rate)
}

/// Whether the `n`-th request (from 1) is hit with the given rate.
pub(crate) fn selects(n: u64, rate: f64) -> bool {
    if rate >= 1.0 {
        return true;
    }
    (n as f64 * rate).floor() > ((n - 1) as f64 * rate).floor()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parse_specs() {
        assert_eq!("".parse::<Fault>(), Ok(Fault::default()));
        assert_eq!(
            "latency_ms:20,http_500_rate:0.1".parse::<Fault>(),
            Ok(Fault {
                latency_ms: 20,
                http_500_rate: 0.1,
                ..Fault::default()
            })
        );
        assert_eq!(
            "graphql_error_rate=0.5, down".parse::<Fault>(),
            Ok(Fault {
                graphql_error_rate: 0.5,
                down: true,
                ..Fault::default()
            })
        );
        assert_eq!("down:false".parse::<Fault>(), Ok(Fault::default()));
        assert!("http_500_rate:2".parse::<Fault>().is_err());
        assert!("latency_ms:x".parse::<Fault>().is_err());
        assert!("bogus:1".parse::<Fault>().is_err());
    }

    #[test]
    fn json_fields_are_optional() {
        let f: Fault = serde_json::from_str(r#"{"latency_ms": 5}"#).unwrap();
        assert_eq!(f, Fault::latency(5));
        assert!(serde_json::from_str::<Fault>(r#"{"latency": 5}"#).is_err());
    }

    #[test]
    fn deterministic_rates() {
        let hits = |rate: f64| (1..=20).filter(|&n| selects(n, rate)).collect::<Vec<_>>();
        assert_eq!(hits(1.0).len(), 20);
        assert_eq!(hits(0.5), vec![2, 4, 6, 8, 10, 12, 14, 16, 18, 20]);
        assert_eq!(hits(0.1), vec![10, 20]);
        assert_eq!(hits(0.25), vec![4, 8, 12, 16, 20]);
        let state = FaultState::default();
        let fault = Fault {
            http_500_rate: 0.5,
            ..Fault::default()
        };
        state.set(fault);
        let seq: Vec<bool> = (0..4).map(|_| state.next_is_500(&fault)).collect();
        assert_eq!(seq, [false, true, false, true]);
        assert!(!state.next_is_graphql_error(&fault));
    }
}
