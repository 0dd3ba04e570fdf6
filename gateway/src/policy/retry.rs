//! Retries with exponential backoff and full jitter, bounded attempts and a retry
//! budget. Only idempotent fetches (never mutations), only for failures that may not
//! have reached the backend or that it reports as temporary (connection errors,
//! timeouts, and the `retry_on` statuses: 502/503/504 unless configured). A retry
//! starts only when what is left of the request's deadline after its backoff still
//! holds a whole attempt timeout.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use super::config::RetryConfig;
use crate::sources::{EventStream, FetchError, Source, SourceRequest, SourceResponse};

pub struct Retry {
    inner: Arc<dyn Source>,
    config: RetryConfig,
    budget: Arc<Budget>,
    /// Each attempt's own timeout.
    attempt_timeout: Duration,
}

impl Retry {
    pub fn new(inner: Arc<dyn Source>, config: &RetryConfig, attempt_timeout: Duration) -> Self {
        Retry {
            inner,
            config: config.clone(),
            budget: Arc::new(Budget::new(config.budget_ratio, config.min_per_second)),
            attempt_timeout,
        }
    }
}

impl Source for Retry {
    fn fetch(
        &self,
        request: SourceRequest,
    ) -> BoxFuture<'static, Result<SourceResponse, FetchError>> {
        if !request.replayable() {
            return self.inner.fetch(request);
        }
        self.budget.deposit();
        let inner = self.inner.clone();
        let config = self.config.clone();
        let budget = self.budget.clone();
        let attempt_timeout = self.attempt_timeout;
        Box::pin(async move {
            let mut attempt = 1;
            loop {
                let result = inner.fetch(request.clone()).await;
                tracing::Span::current().record("attempts", attempt);
                let delay = backoff(&config, attempt);
                let fits = || {
                    request.deadline.is_none_or(|deadline| {
                        tokio::time::Instant::now() + delay + attempt_timeout <= deadline
                    })
                };
                match &result {
                    Err(e)
                        if retryable(e, &config.retry_on)
                            && attempt < config.max_attempts
                            && fits()
                            && budget.withdraw() =>
                    {
                        tokio::time::sleep(delay).await;
                        attempt += 1;
                    }
                    _ => return result,
                }
            }
        })
    }

    fn subscribe(
        &self,
        request: SourceRequest,
    ) -> BoxFuture<'static, Result<EventStream, FetchError>> {
        self.inner.subscribe(request)
    }
}

/// A status failure by the configured list, anything else by its own kind.
fn retryable(error: &FetchError, statuses: &[u16]) -> bool {
    match error {
        FetchError::Http(status) => statuses.contains(status),
        other => other.is_retryable(),
    }
}

fn backoff(config: &RetryConfig, attempt: u32) -> Duration {
    jittered(config.base_delay, config.max_delay, attempt)
}

/// Full jitter: uniform in `[0, min(max, base * 2^(attempt-1))]`.
pub(super) fn jittered(base: Duration, max: Duration, attempt: u32) -> Duration {
    let exp = base
        .saturating_mul(1u32 << (attempt.max(1) - 1).min(16))
        .min(max);
    exp.mul_f64(random_unit())
}

/// A uniform number in [0, 1) from a per-process seeded xorshift; jitter needs no
/// cryptographic quality.
fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut x = STATE.load(Ordering::Relaxed);
    if x == 0 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x9e37_79b9_7f4a_7c15);
        x = h.finish() | 1;
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    STATE.store(x, Ordering::Relaxed);
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// Retry budget: each request deposits `ratio` tokens, each retry withdraws one; a
/// floor of `min_per_second` tokens is refilled over time. Retries stop when the
/// budget is empty, so a failing backend gets at most about `ratio` extra load.
struct Budget {
    ratio: f64,
    min_per_second: f64,
    state: Mutex<(f64, Instant)>,
}

impl Budget {
    fn new(ratio: f64, min_per_second: f64) -> Self {
        Budget {
            ratio,
            min_per_second,
            state: Mutex::new((min_per_second, Instant::now())),
        }
    }

    fn cap(&self) -> f64 {
        // Up to ten seconds' worth of floor plus some room from deposits.
        self.min_per_second * 10.0 + 100.0 * self.ratio
    }

    fn refill(&self, tokens: &mut f64, last: &mut Instant) {
        let now = Instant::now();
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.min_per_second)
            .min(self.cap());
        *last = now;
    }

    fn deposit(&self) {
        if let Ok(mut s) = self.state.lock() {
            let (tokens, last) = &mut *s;
            self.refill(tokens, last);
            *tokens = (*tokens + self.ratio).min(self.cap());
        }
    }

    fn withdraw(&self) -> bool {
        let Ok(mut s) = self.state.lock() else {
            return false;
        };
        let (tokens, last) = &mut *s;
        self.refill(tokens, last);
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded_and_grows() {
        let c = RetryConfig {
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(100),
            ..RetryConfig::default()
        };
        for attempt in 1..20 {
            let d = backoff(&c, attempt);
            let cap = Duration::from_millis(10 * (1u64 << (attempt - 1).min(16))).min(c.max_delay);
            assert!(d <= cap, "attempt {attempt}: {d:?} > {cap:?}");
        }
    }

    #[test]
    fn the_budget_limits_retries() {
        let budget = Budget::new(0.25, 0.0);
        // No floor, a quarter per request: four requests buy one retry.
        for _ in 0..4 {
            budget.deposit();
        }
        assert!(budget.withdraw());
        assert!(!budget.withdraw());
    }
}
