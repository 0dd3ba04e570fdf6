//! Circuit breaker per source (per gateway instance): closed → open on consecutive
//! failures or on the error rate over a sliding window → half-open after the reset
//! timeout, letting a few probes through → closed on a successful probe, open again on
//! a failed one.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use super::config::BreakerConfig;
use crate::sources::{EventStream, FetchError, Source, SourceRequest, SourceResponse};
use crate::telemetry::Metrics;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    /// The state as the `breaker` gauge shows it.
    fn gauge(self) -> i64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        }
    }
}

/// Number of buckets of the sliding error-rate window.
const BUCKETS: usize = 10;

struct Inner {
    state: BreakerState,
    consecutive_failures: u32,
    opened_at: Instant,
    probes_in_flight: u32,
    /// (bucket start, requests, failures), oldest first.
    window: Vec<(Instant, u32, u32)>,
}

pub struct Breaker {
    name: String,
    inner_source: Arc<dyn Source>,
    config: BreakerConfig,
    state: Arc<Mutex<Inner>>,
    metrics: Arc<Metrics>,
}

impl Breaker {
    pub fn new(
        name: &str,
        inner_source: Arc<dyn Source>,
        config: &BreakerConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        metrics.breaker_state(name, BreakerState::Closed.gauge());
        Breaker {
            name: name.to_string(),
            inner_source,
            config: config.clone(),
            state: Arc::new(Mutex::new(Inner {
                state: BreakerState::Closed,
                consecutive_failures: 0,
                opened_at: Instant::now(),
                probes_in_flight: 0,
                window: Vec::new(),
            })),
            metrics,
        }
    }
}

/// Admission decision for one attempt.
enum Admit {
    Normal,
    Probe,
    Reject,
}

fn admit(inner: &mut Inner, config: &BreakerConfig) -> Admit {
    match inner.state {
        BreakerState::Closed => Admit::Normal,
        BreakerState::Open => {
            if inner.opened_at.elapsed() >= config.reset_timeout {
                inner.state = BreakerState::HalfOpen;
                inner.probes_in_flight = 1;
                Admit::Probe
            } else {
                Admit::Reject
            }
        }
        BreakerState::HalfOpen => {
            if inner.probes_in_flight < config.half_open_probes.max(1) {
                inner.probes_in_flight += 1;
                Admit::Probe
            } else {
                Admit::Reject
            }
        }
    }
}

fn record(inner: &mut Inner, config: &BreakerConfig, probe: bool, failed: bool) {
    let now = Instant::now();
    let bucket_len = config.window / BUCKETS as u32;
    inner
        .window
        .retain(|(start, _, _)| now.duration_since(*start) < config.window);
    match inner.window.last_mut() {
        Some((start, requests, failures))
            if now.duration_since(*start) < bucket_len.max(Duration::from_millis(1)) =>
        {
            *requests += 1;
            *failures += u32::from(failed);
        }
        _ => inner.window.push((now, 1, u32::from(failed))),
    }
    if probe {
        inner.probes_in_flight = inner.probes_in_flight.saturating_sub(1);
        if failed {
            open(inner, now);
        } else {
            inner.state = BreakerState::Closed;
            inner.consecutive_failures = 0;
            inner.window.clear();
        }
        return;
    }
    if inner.state != BreakerState::Closed {
        return;
    }
    if failed {
        inner.consecutive_failures += 1;
    } else {
        inner.consecutive_failures = 0;
    }
    let (requests, failures) = inner
        .window
        .iter()
        .fold((0u32, 0u32), |(r, f), (_, br, bf)| (r + br, f + bf));
    let rate_tripped = requests >= config.min_requests.max(1)
        && f64::from(failures) / f64::from(requests) >= config.error_rate;
    if inner.consecutive_failures >= config.consecutive_failures.max(1) || rate_tripped {
        open(inner, now);
    }
}

fn open(inner: &mut Inner, now: Instant) {
    inner.state = BreakerState::Open;
    inner.opened_at = now;
    inner.consecutive_failures = 0;
    inner.window.clear();
}

impl Breaker {
    /// Whether an attempt may go out now: `Ok(true)` for a half-open probe.
    fn decide(&self) -> Result<bool, FetchError> {
        let decision = match self.state.lock() {
            Ok(mut inner) => {
                let before = inner.state;
                let d = admit(&mut inner, &self.config);
                if inner.state != before {
                    self.metrics.breaker_state(&self.name, inner.state.gauge());
                }
                d
            }
            Err(_) => Admit::Normal,
        };
        tracing::Span::current().record(
            "breaker",
            match decision {
                Admit::Normal => "closed",
                Admit::Probe => "half-open",
                Admit::Reject => "open",
            },
        );
        match decision {
            Admit::Reject => Err(FetchError::CircuitOpen),
            Admit::Probe => Ok(true),
            Admit::Normal => Ok(false),
        }
    }

    /// Run one admitted attempt and count its outcome.
    fn attempt<T: Send + 'static>(
        &self,
        probe: bool,
        call: BoxFuture<'static, Result<T, FetchError>>,
    ) -> BoxFuture<'static, Result<T, FetchError>> {
        let state = self.state.clone();
        let config = self.config.clone();
        let metrics = self.metrics.clone();
        let name = self.name.clone();
        Box::pin(async move {
            // If this future is dropped mid-flight (a total timeout), the probe slot
            // must still be released.
            let mut guard = ProbeGuard {
                state: &state,
                armed: probe,
            };
            let result = call.await;
            guard.armed = false;
            let failed = matches!(&result, Err(e) if e.is_upstream_failure());
            if let Ok(mut inner) = state.lock() {
                let before = inner.state;
                record(&mut inner, &config, probe, failed);
                if inner.state != before {
                    metrics.breaker_state(&name, inner.state.gauge());
                    tracing::warn!(source = %name, state = ?inner.state, "circuit breaker changed state");
                }
            }
            result
        })
    }
}

impl Source for Breaker {
    fn fetch(
        &self,
        request: SourceRequest,
    ) -> BoxFuture<'static, Result<SourceResponse, FetchError>> {
        match self.decide() {
            Ok(probe) => self.attempt(probe, self.inner_source.fetch(request)),
            Err(e) => Box::pin(async { Err(e) }),
        }
    }

    /// Opening a subscription counts like a fetch; its later events do not.
    fn subscribe(
        &self,
        request: SourceRequest,
    ) -> BoxFuture<'static, Result<EventStream, FetchError>> {
        match self.decide() {
            Ok(probe) => self.attempt(probe, self.inner_source.subscribe(request)),
            Err(e) => Box::pin(async { Err(e) }),
        }
    }
}

struct ProbeGuard<'a> {
    state: &'a Mutex<Inner>,
    armed: bool,
}

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        if self.armed
            && let Ok(mut inner) = self.state.lock()
        {
            inner.probes_in_flight = inner.probes_in_flight.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> BreakerConfig {
        BreakerConfig {
            enabled: true,
            consecutive_failures: 3,
            error_rate: 0.5,
            window: Duration::from_secs(10),
            min_requests: 10,
            reset_timeout: Duration::from_millis(50),
            half_open_probes: 1,
        }
    }

    fn fresh() -> Inner {
        Inner {
            state: BreakerState::Closed,
            consecutive_failures: 0,
            opened_at: Instant::now(),
            probes_in_flight: 0,
            window: Vec::new(),
        }
    }

    #[test]
    fn opens_on_consecutive_failures_and_recovers_through_a_probe() {
        let c = config();
        let mut b = fresh();
        for _ in 0..2 {
            record(&mut b, &c, false, true);
        }
        assert_eq!(b.state, BreakerState::Closed);
        record(&mut b, &c, false, false);
        record(&mut b, &c, false, true);
        record(&mut b, &c, false, true);
        assert_eq!(b.state, BreakerState::Closed, "a success resets the run");
        record(&mut b, &c, false, true);
        assert_eq!(b.state, BreakerState::Open);
        assert!(matches!(admit(&mut b, &c), Admit::Reject));
        std::thread::sleep(Duration::from_millis(60));
        assert!(matches!(admit(&mut b, &c), Admit::Probe));
        assert!(
            matches!(admit(&mut b, &c), Admit::Reject),
            "one probe at a time"
        );
        record(&mut b, &c, true, true);
        assert_eq!(b.state, BreakerState::Open, "a failed probe reopens");
        std::thread::sleep(Duration::from_millis(60));
        assert!(matches!(admit(&mut b, &c), Admit::Probe));
        record(&mut b, &c, true, false);
        assert_eq!(b.state, BreakerState::Closed);
    }

    #[test]
    fn opens_on_error_rate() {
        let c = BreakerConfig {
            consecutive_failures: 100,
            ..config()
        };
        let mut b = fresh();
        for i in 0..10 {
            record(&mut b, &c, false, i % 2 == 0);
        }
        assert_eq!(b.state, BreakerState::Open);
    }
}
