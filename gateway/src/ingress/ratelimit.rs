//! Client rate limits: per client (API key name, JWT or introspected subject, else the
//! client IP), by tier, with a token bucket (GCRA) or a sliding window (two weighted
//! fixed windows), plus an API key's own quota. All limits of one request are checked
//! and consumed together: a request refused by one limit consumes none.
//!
//! In-process by default; with `redis:` every instance shares the counters through one
//! Lua script per check (atomic, Redis's clock, no read-modify-write race). When Redis
//! does not answer in time, `redis.on_error` decides: per-instance limits (`local`) or
//! `503` (`reject`).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;
use serde::Deserialize;

use crate::common::config::duration;
use crate::common::principal::{Principal, PrincipalKind};
use crate::redis_store::{RedisFallback, RedisStore, hash_tag};

/// `rate_limit:` in the config file.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub algorithm: Algorithm,
    /// Limits by tier, merged over the built-in tiers (`anonymous` 60/h, `free` 100/h,
    /// `basic` 1000/h, `pro` 10000/h, `enterprise` 100000/h).
    #[serde(default)]
    pub tiers: BTreeMap<String, TierLimit>,
    /// Proxies (addresses or CIDR ranges) whose `X-Forwarded-For` is believed: behind
    /// them, an anonymous client is limited by the address they saw, not theirs.
    /// Without it the header is ignored (anyone can send it).
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// A bucket of `burst` tokens refilled at `requests` per `per` (GCRA).
    #[default]
    TokenBucket,
    /// At most `requests` in any window of `per`, approximated by weighting the
    /// previous fixed window by how much of it still overlaps.
    SlidingWindow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TierLimit {
    pub requests: u64,
    #[schemars(with = "crate::common::config::DurationText")]
    #[serde(with = "duration")]
    pub per: Duration,
    /// Token bucket size (default: `requests`).
    #[serde(default)]
    pub burst: Option<u64>,
}

const HOUR: Duration = Duration::from_secs(3600);

impl RateLimitConfig {
    /// The built-in tiers with the configured ones on top.
    pub fn effective_tiers(&self) -> BTreeMap<String, TierLimit> {
        let mut tiers: BTreeMap<String, TierLimit> = [
            ("anonymous", 60),
            ("free", 100),
            ("basic", 1_000),
            ("pro", 10_000),
            ("enterprise", 100_000),
        ]
        .into_iter()
        .map(|(name, requests)| {
            (
                name.to_string(),
                TierLimit {
                    requests,
                    per: HOUR,
                    burst: None,
                },
            )
        })
        .collect();
        tiers.extend(self.tiers.iter().map(|(k, v)| (k.clone(), *v)));
        tiers
    }

    pub fn validate(&self, named: &[(String, String)]) -> Result<(), String> {
        for text in &self.trusted_proxies {
            if IpRange::parse(text).is_none() {
                return Err(format!(
                    "rate_limit.trusted_proxies: `{text}` is not an IP address or CIDR range \
                     (like 10.0.0.0/8 or ::1)"
                ));
            }
        }
        for (name, t) in &self.tiers {
            if t.requests == 0 || t.per.is_zero() || t.burst == Some(0) {
                return Err(format!(
                    "rate_limit.tiers.{name}: needs positive `requests`, `per` and `burst`"
                ));
            }
        }
        if self.enabled {
            let tiers = self.effective_tiers();
            for (place, tier) in named {
                if !tiers.contains_key(tier) {
                    return Err(format!(
                        "{place}: unknown rate-limit tier `{tier}` (known: {})",
                        tiers.keys().cloned().collect::<Vec<_>>().join(", ")
                    ));
                }
            }
        }
        Ok(())
    }
}

/// One limit of a check, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub requests: u64,
    pub period_us: u64,
    pub burst: u64,
}

impl Limit {
    fn new(requests: u64, per: Duration, burst: Option<u64>) -> Self {
        Limit {
            requests: requests.max(1),
            period_us: (per.as_micros() as u64).max(1),
            burst: burst.unwrap_or(requests).max(1),
        }
    }

    /// Microseconds between two tokens.
    fn emission_us(&self) -> u64 {
        (self.period_us / self.requests).max(1)
    }
}

/// The verdict on one request, with what the rate-limit headers say: the limit closest
/// to exhaustion (or the one that refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub tier: String,
    pub limit: u64,
    pub remaining: u64,
    /// Allowed: until the limit is fully available again. Refused: until a retry can
    /// succeed, as `retry_after` (the IETF draft wants `RateLimit-Reset` and
    /// `Retry-After` to agree when the quota is exhausted).
    pub reset: Duration,
    /// When refused: until a retry can succeed.
    pub retry_after: Duration,
    pub window: Duration,
}

/// Redis could not answer and `redis.on_error: reject` is configured.
#[derive(Debug, thiserror::Error)]
#[error("the rate limiter is unavailable")]
pub struct Unavailable;

/// One limit's outcome (microseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Outcome {
    remaining: u64,
    reset_us: u64,
    retry_us: u64,
}

pub struct RateLimiter {
    algorithm: Algorithm,
    trusted_proxies: Vec<IpRange>,
    tiers: FxHashMap<String, Limit>,
    default_tier: String,
    local: LocalLimits,
    redis: Option<RedisStore>,
    fallback: RedisFallback,
}

impl RateLimiter {
    /// `redis`: the shared store and what to do when it does not answer.
    pub fn compile(
        config: &RateLimitConfig,
        default_tier: &str,
        redis: Option<(&RedisStore, RedisFallback)>,
    ) -> Self {
        RateLimiter {
            algorithm: config.algorithm,
            trusted_proxies: config
                .trusted_proxies
                .iter()
                .filter_map(|t| IpRange::parse(t))
                .collect(),
            tiers: config
                .effective_tiers()
                .into_iter()
                .map(|(name, t)| (name, Limit::new(t.requests, t.per, t.burst)))
                .collect(),
            default_tier: default_tier.to_string(),
            local: LocalLimits::default(),
            fallback: redis.map_or(RedisFallback::Local, |(_, f)| f),
            redis: redis.map(|(r, _)| r.clone()),
        }
    }

    /// The client's address: the peer's, or when the peer is a trusted proxy, the
    /// nearest address in `X-Forwarded-For` that is not one (proxies append, so it is
    /// read from the right; the entries left of it are whatever the client sent).
    pub fn client_ip(&self, peer: Option<IpAddr>, headers: &http::HeaderMap) -> Option<IpAddr> {
        /// Hops read at most: a longer chain is not a real deployment.
        const MAX_HOPS: usize = 32;
        let mut client = peer?.to_canonical();
        if !self.trusted(client) {
            return Some(client);
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        for hop in hops.iter().rev().take(MAX_HOPS) {
            // A malformed entry ends the chain: the proxy before it is the client.
            let Some(ip) = parse_hop(hop) else { break };
            client = ip;
            if !self.trusted(ip) {
                break;
            }
        }
        Some(client)
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|r| r.contains(ip))
    }

    /// Check and consume one request of this client.
    pub async fn check(
        &self,
        principal: &Principal,
        ip: Option<IpAddr>,
    ) -> Result<Decision, Unavailable> {
        let (tier, limit) = match self.tiers.get(&principal.tier) {
            Some(l) => (principal.tier.clone(), *l),
            None => {
                let tier = if principal.kind == PrincipalKind::Anonymous {
                    "anonymous"
                } else {
                    self.default_tier.as_str()
                };
                match self.tiers.get(tier) {
                    Some(l) => (tier.to_string(), *l),
                    None => (tier.to_string(), Limit::new(100, HOUR, None)),
                }
            }
        };
        // The client's hash tag is in every key of its check, so the one script that
        // checks them all touches a single Redis Cluster slot.
        let client = hash_tag(&client_key(principal, ip));
        let prefix = match self.algorithm {
            Algorithm::TokenBucket => "tb",
            Algorithm::SlidingWindow => "sw",
        };
        let mut checks = vec![(format!("rl:{prefix}:{tier}:{client}"), limit)];
        if let (PrincipalKind::ApiKey, Some(quota), Some(_)) =
            (principal.kind, principal.quota, principal.subject.as_ref())
        {
            checks.push((
                format!("quota:{prefix}:{client}"),
                Limit::new(quota.requests, quota.per, None),
            ));
        }
        let (allowed, outcomes) = match &self.redis {
            Some(redis) => match self.check_redis(redis, &checks).await {
                Some(result) => result,
                None if self.fallback == RedisFallback::Reject => return Err(Unavailable),
                None => self.local.check(self.algorithm, &checks),
            },
            None => self.local.check(self.algorithm, &checks),
        };
        Ok(decide(tier, allowed, &checks, &outcomes))
    }

    async fn check_redis(
        &self,
        redis: &RedisStore,
        checks: &[(String, Limit)],
    ) -> Option<(bool, Vec<Outcome>)> {
        let keys: Vec<String> = checks.iter().map(|(k, _)| redis.key(k)).collect();
        let mut args: Vec<u64> = Vec::with_capacity(checks.len() * 2);
        let script = match self.algorithm {
            Algorithm::TokenBucket => {
                for (_, l) in checks {
                    args.extend([l.emission_us(), l.burst]);
                }
                gcra_script()
            }
            Algorithm::SlidingWindow => {
                for (_, l) in checks {
                    args.extend([l.period_us, l.requests]);
                }
                window_script()
            }
        };
        let reply: Vec<i64> = redis
            .call("rate limit", |mut c| async move {
                let mut invocation = script.prepare_invoke();
                for k in &keys {
                    invocation.key(k);
                }
                for a in &args {
                    invocation.arg(*a);
                }
                invocation.invoke_async(&mut c).await
            })
            .await
            .ok()?;
        if reply.len() != 1 + 3 * checks.len() {
            tracing::warn!(len = reply.len(), "unexpected rate-limit script reply");
            return None;
        }
        let u = |v: i64| u64::try_from(v).unwrap_or(0);
        let outcomes = reply[1..]
            .chunks(3)
            .map(|c| Outcome {
                remaining: u(c[0]),
                reset_us: u(c[1]),
                retry_us: u(c[2]),
            })
            .collect();
        Some((reply[0] == 1, outcomes))
    }
}

/// An address or CIDR range (`10.0.0.0/8`, `::1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IpRange {
    network: IpAddr,
    prefix: u32,
}

impl IpRange {
    fn parse(text: &str) -> Option<Self> {
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text.trim(), None),
        };
        let network = addr.parse::<IpAddr>().ok()?.to_canonical();
        let bits = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u32>().ok().filter(|p| *p <= bits)?,
            None => bits,
        };
        Some(IpRange { network, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        fn same(a: u128, b: u128, bits: u32, prefix: u32) -> bool {
            let shift = bits - prefix;
            shift >= bits || (a >> shift) == (b >> shift)
        }
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                same(u32::from(n).into(), u32::from(a).into(), 32, self.prefix)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => same(n.into(), a.into(), 128, self.prefix),
            _ => false,
        }
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`[::1]:80`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<std::net::SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

/// Whose budget a request spends.
fn client_key(principal: &Principal, ip: Option<IpAddr>) -> String {
    match (principal.kind, &principal.subject) {
        (PrincipalKind::ApiKey, Some(name)) => format!("key:{name}"),
        (PrincipalKind::Jwt | PrincipalKind::Introspection, Some(sub)) => format!("sub:{sub}"),
        _ => match ip {
            Some(ip) => format!("ip:{ip}"),
            None => "ip:unknown".into(),
        },
    }
}

fn decide(
    tier: String,
    allowed: bool,
    checks: &[(String, Limit)],
    outcomes: &[Outcome],
) -> Decision {
    // Refused: the limit that makes the client wait longest. Allowed: the one closest
    // to exhaustion.
    let pick = if allowed {
        outcomes
            .iter()
            .enumerate()
            .min_by_key(|(_, o)| o.remaining)
            .map(|(i, _)| i)
    } else {
        outcomes
            .iter()
            .enumerate()
            .max_by_key(|(_, o)| o.retry_us)
            .map(|(i, _)| i)
    }
    .unwrap_or(0);
    let outcome = outcomes.get(pick).copied().unwrap_or(Outcome {
        remaining: 0,
        reset_us: 0,
        retry_us: 0,
    });
    let limit = checks.get(pick).map(|(_, l)| *l).unwrap_or(Limit {
        requests: 0,
        period_us: 1,
        burst: 1,
    });
    Decision {
        allowed,
        tier,
        limit: limit.requests,
        remaining: if allowed { outcome.remaining } else { 0 },
        reset: Duration::from_micros(if allowed {
            outcome.reset_us
        } else {
            outcome.retry_us
        }),
        retry_after: Duration::from_micros(outcome.retry_us),
        window: Duration::from_micros(limit.period_us),
    }
}

/// Whole seconds, rounded up (a client told `0` would retry at once).
pub fn ceil_secs(d: Duration) -> u64 {
    d.as_micros().div_ceil(1_000_000) as u64
}

/// Microseconds on a monotonic clock local to this process.
fn now_us() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    // Start well above zero so that "previous window" arithmetic never underflows.
    EPOCH.get_or_init(Instant::now).elapsed().as_micros() as u64 + 1_000_000_000_000
}

// ---------------------------------------------------------------------------------
// The two algorithms, as pure functions of the stored state (the Lua scripts below do
// the same arithmetic on Redis's clock).

/// GCRA: `tat` is the theoretical arrival time of the next request.
fn gcra(tat: Option<u64>, now: u64, limit: &Limit) -> (bool, u64, Outcome) {
    let e = limit.emission_us();
    let capacity = limit.burst * e;
    let tat = tat.unwrap_or(now).max(now);
    let new_tat = tat + e;
    let allow_at = new_tat.saturating_sub(capacity);
    if allow_at > now {
        let remaining = capacity.saturating_sub(tat - now) / e;
        return (
            false,
            tat,
            Outcome {
                remaining,
                reset_us: tat - now,
                retry_us: allow_at - now,
            },
        );
    }
    (
        true,
        new_tat,
        Outcome {
            remaining: capacity.saturating_sub(new_tat - now) / e,
            reset_us: new_tat - now,
            retry_us: 0,
        },
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    index: u64,
    current: u64,
    previous: u64,
}

fn sliding(state: Option<Window>, now: u64, limit: &Limit) -> (bool, Window, Outcome) {
    let w = limit.period_us;
    let index = now / w;
    let elapsed = now % w;
    let (current, previous) = match state {
        Some(s) if s.index == index => (s.current, s.previous),
        Some(s) if s.index + 1 == index => (0, s.current),
        _ => (0, 0),
    };
    let n = limit.requests as f64;
    let estimate = previous as f64 * (w - elapsed) as f64 / w as f64 + current as f64;
    let reset_us = w - elapsed;
    if estimate + 1.0 <= n + 1e-9 {
        let window = Window {
            index,
            current: current + 1,
            previous,
        };
        let remaining = (n - estimate - 1.0 + 1e-9).floor().max(0.0) as u64;
        return (
            true,
            window,
            Outcome {
                remaining,
                reset_us,
                retry_us: 0,
            },
        );
    }
    // When does the estimate leave room for one more?
    let excess = estimate + 1.0 - n;
    let in_this_window = (previous > 0)
        .then(|| (w as f64 * excess / previous as f64).ceil() as u64)
        .filter(|t| *t <= reset_us);
    let retry_us = in_this_window.unwrap_or_else(|| {
        let later = if current > 0 {
            (w as f64 * (1.0 - (n - 1.0) / current as f64))
                .max(0.0)
                .ceil() as u64
        } else {
            0
        };
        reset_us + later
    });
    let remaining = (n - estimate + 1e-9).floor().max(0.0) as u64;
    (
        false,
        Window {
            index,
            current,
            previous,
        },
        Outcome {
            remaining,
            reset_us,
            retry_us: retry_us.max(1),
        },
    )
}

#[derive(Debug, Clone, Copy)]
enum Slot {
    Tat(u64),
    Window(Window),
}

/// In-process counters; a sweep drops expired ones now and then.
#[derive(Default)]
struct LocalLimits {
    slots: Mutex<FxHashMap<String, (Slot, u64)>>,
    checks: AtomicU64,
}

impl LocalLimits {
    fn check(&self, algorithm: Algorithm, checks: &[(String, Limit)]) -> (bool, Vec<Outcome>) {
        let now = now_us();
        let Ok(mut slots) = self.slots.lock() else {
            // A poisoned lock means a panic elsewhere; do not block traffic on it.
            return (true, Vec::new());
        };
        if self
            .checks
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(1024)
            && slots.len() > 10_000
        {
            slots.retain(|_, (_, expires)| *expires > now);
        }
        let mut allowed = true;
        let mut results = Vec::with_capacity(checks.len());
        for (key, limit) in checks {
            let stored = slots.get(key).map(|(s, _)| *s);
            let (ok, slot, outcome) = match algorithm {
                Algorithm::TokenBucket => {
                    let tat = match stored {
                        Some(Slot::Tat(t)) => Some(t),
                        _ => None,
                    };
                    let (ok, tat, outcome) = gcra(tat, now, limit);
                    (ok, Slot::Tat(tat), outcome)
                }
                Algorithm::SlidingWindow => {
                    let window = match stored {
                        Some(Slot::Window(w)) => Some(w),
                        _ => None,
                    };
                    let (ok, window, outcome) = sliding(window, now, limit);
                    (ok, Slot::Window(window), outcome)
                }
            };
            allowed &= ok;
            results.push((key, slot, outcome, limit));
        }
        let outcomes = results.iter().map(|r| r.2).collect();
        if allowed {
            for (key, slot, _, limit) in results {
                let expires = now + 2 * limit.period_us;
                slots.insert(key.clone(), (slot, expires));
            }
        }
        (allowed, outcomes)
    }
}

// ---------------------------------------------------------------------------------
// Redis scripts. KEYS: one per limit, all with the client's hash tag; a script touches
// only the keys it is given (a cluster requires it). Token bucket: a string holding the
// theoretical arrival time; sliding window: a hash of counts by window index. Replies: allowed (0/1), then per limit:
// remaining, reset (µs), retry-after (µs). Times come from Redis (`TIME`) so that
// instances with skewed clocks agree.

fn gcra_script() -> &'static redis::Script {
    static SCRIPT: OnceLock<redis::Script> = OnceLock::new();
    SCRIPT.get_or_init(|| {
        redis::Script::new(
            r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local allowed = 1
local state = {}
for i = 1, #KEYS do
  local e = tonumber(ARGV[2 * i - 1])
  local b = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  local new_tat = tat + e
  local allow_at = new_tat - b * e
  if allow_at > now then allowed = 0 end
  state[i] = { tat, new_tat, allow_at, e, b }
end
local out = { allowed }
for i = 1, #KEYS do
  local tat, new_tat, allow_at, e, b = unpack(state[i])
  if allowed == 1 then
    redis.call('SET', KEYS[i], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
    out[#out + 1] = math.floor(math.max(0, b * e - (new_tat - now)) / e)
    out[#out + 1] = new_tat - now
    out[#out + 1] = 0
  else
    out[#out + 1] = math.floor(math.max(0, b * e - (tat - now)) / e)
    out[#out + 1] = tat - now
    out[#out + 1] = math.max(0, allow_at - now)
  end
end
return out
"#,
        )
    })
}

fn window_script() -> &'static redis::Script {
    static SCRIPT: OnceLock<redis::Script> = OnceLock::new();
    SCRIPT.get_or_init(|| {
        redis::Script::new(
            r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local allowed = 1
local state = {}
for i = 1, #KEYS do
  local w = tonumber(ARGV[2 * i - 1])
  local n = tonumber(ARGV[2 * i])
  local index = math.floor(now / w)
  local elapsed = now - index * w
  local cf = string.format('%.0f', index)
  local pf = string.format('%.0f', index - 1)
  local counts = redis.call('HMGET', KEYS[i], cf, pf)
  local cur = tonumber(counts[1] or '0')
  local prev = tonumber(counts[2] or '0')
  local est = prev * (w - elapsed) / w + cur
  if est + 1 > n + 1e-9 then allowed = 0 end
  state[i] = { cf, pf, cur, prev, est, w - elapsed, w, n }
end
local out = { allowed }
for i = 1, #KEYS do
  local cf, pf, cur, prev, est, reset, w, n = unpack(state[i])
  if allowed == 1 then
    redis.call('HINCRBY', KEYS[i], cf, 1)
    if redis.call('HLEN', KEYS[i]) > 2 then
      for _, f in ipairs(redis.call('HKEYS', KEYS[i])) do
        if f ~= cf and f ~= pf then redis.call('HDEL', KEYS[i], f) end
      end
    end
    redis.call('PEXPIRE', KEYS[i], math.ceil(2 * w / 1000))
    out[#out + 1] = math.max(0, math.floor(n - est - 1 + 1e-9))
    out[#out + 1] = reset
    out[#out + 1] = 0
  else
    local excess = est + 1 - n
    local retry = -1
    if prev > 0 then
      local r = math.ceil(w * excess / prev)
      if r <= reset then retry = r end
    end
    if retry < 0 then
      local later = 0
      if cur > 0 then later = math.max(0, math.ceil(w * (1 - (n - 1) / cur))) end
      retry = reset + later
    end
    out[#out + 1] = math.max(0, math.floor(n - est + 1e-9))
    out[#out + 1] = reset
    out[#out + 1] = math.max(1, retry)
  end
end
return out
"#,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn per_hour(n: u64) -> Limit {
        Limit::new(n, HOUR, None)
    }

    #[test]
    fn ranges_match_addresses_by_prefix() {
        let range = |t: &str| IpRange::parse(t).unwrap_or_else(|| panic!("{t}"));
        let ip = |t: &str| t.parse::<IpAddr>().unwrap_or_else(|_| panic!("{t}"));
        assert!(range("10.0.0.0/8").contains(ip("10.200.1.2")));
        assert!(!range("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(range("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(range("192.168.1.7").contains(ip("192.168.1.7")));
        assert!(!range("192.168.1.7").contains(ip("192.168.1.8")));
        assert!(range("fd00::/8").contains(ip("fd12::1")));
        assert!(!range("fd00::/8").contains(ip("fe80::1")));
        // An IPv4 peer seen through a dual-stack socket is still IPv4.
        assert!(range("127.0.0.1").contains(ip("::ffff:127.0.0.1")));
        assert!(!range("::1").contains(ip("127.0.0.1")));
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "host.example",
            "1.2.3.4/x",
        ] {
            assert_eq!(IpRange::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_client_is_the_nearest_untrusted_hop() {
        let limiter = RateLimiter::compile(
            &RateLimitConfig {
                trusted_proxies: vec!["10.0.0.0/8".into(), "::1".into()],
                ..RateLimitConfig::default()
            },
            "free",
            None,
        );
        let ip = |t: &str| t.parse::<IpAddr>().ok();
        let forwarded = |values: &[&str]| {
            let mut headers = http::HeaderMap::new();
            for v in values {
                headers.append(
                    "x-forwarded-for",
                    http::HeaderValue::from_str(v).unwrap_or_else(|_| panic!("{v}")),
                );
            }
            headers
        };
        let chain = forwarded(&["198.51.100.7, 203.0.113.5", "10.1.1.1"]);
        // An untrusted peer's header is ignored.
        assert_eq!(limiter.client_ip(ip("192.0.2.1"), &chain), ip("192.0.2.1"));
        // Through trusted proxies: the first untrusted hop from the right; the client
        // may have put anything to its left.
        assert_eq!(limiter.client_ip(ip("10.0.0.2"), &chain), ip("203.0.113.5"));
        assert_eq!(limiter.client_ip(ip("::1"), &chain), ip("203.0.113.5"));
        // Only trusted hops: the farthest one.
        let internal = forwarded(&["10.9.9.9"]);
        assert_eq!(limiter.client_ip(ip("10.0.0.2"), &internal), ip("10.9.9.9"));
        // A malformed hop ends the chain at the proxy that wrote it.
        let garbage = forwarded(&["203.0.113.5, not-an-ip"]);
        assert_eq!(limiter.client_ip(ip("10.0.0.2"), &garbage), ip("10.0.0.2"));
        // Ports and brackets are tolerated; no header: the peer.
        let ported = forwarded(&["[2001:db8::1]:443"]);
        assert_eq!(
            limiter.client_ip(ip("10.0.0.2"), &ported),
            ip("2001:db8::1")
        );
        let none = http::HeaderMap::new();
        assert_eq!(limiter.client_ip(ip("10.0.0.2"), &none), ip("10.0.0.2"));
        assert_eq!(limiter.client_ip(None, &chain), None);
    }

    #[test]
    fn token_bucket_counts_exactly_and_says_when_to_retry() {
        let limit = per_hour(3);
        let now = 10_000_000_000;
        let mut tat = None;
        let mut remaining = Vec::new();
        for i in 0..3 {
            let (ok, t, o) = gcra(tat, now + i, &limit);
            assert!(ok);
            tat = Some(t);
            remaining.push(o.remaining);
        }
        assert_eq!(remaining, [2, 1, 0]);
        let (ok, _, o) = gcra(tat, now + 3, &limit);
        assert!(!ok);
        // One token comes back after 20 minutes.
        assert_eq!(ceil_secs(Duration::from_micros(o.retry_us)), 1200);
        assert_eq!(ceil_secs(Duration::from_micros(o.reset_us)), 3600);
        // ... and then one request passes.
        let (ok, _, o) = gcra(tat, now + 1_200_000_000, &limit);
        assert!(ok);
        assert_eq!(o.remaining, 0);
    }

    #[test]
    fn sliding_window_weights_the_previous_window() {
        let limit = per_hour(4);
        let w = limit.period_us;
        let start = 100 * w;
        let mut state = None;
        for i in 0..4 {
            let (ok, s, o) = sliding(state, start + i, &limit);
            assert!(ok);
            assert_eq!(o.remaining, 3 - i);
            state = Some(s);
        }
        let (ok, _, o) = sliding(state, start + 10, &limit);
        assert!(!ok);
        // Full until the window ends, then a quarter of a window until 3 of 4 remain.
        assert_eq!(o.retry_us, w - 10 + w / 4);
        // A quarter into the next window, a quarter of the previous count has slid out.
        let (ok, _, o) = sliding(state, start + w + w / 4, &limit);
        assert!(ok, "{o:?}");
        assert_eq!(o.remaining, 0);
    }

    #[test]
    fn a_refusal_by_one_limit_consumes_none() {
        let local = LocalLimits::default();
        let checks = vec![
            ("a".to_string(), per_hour(10)),
            ("quota".to_string(), per_hour(1)),
        ];
        let (ok, first) = local.check(Algorithm::TokenBucket, &checks);
        assert!(ok);
        assert_eq!(first[0].remaining, 9);
        let (ok, _) = local.check(Algorithm::TokenBucket, &checks);
        assert!(!ok);
        let (ok, outcomes) = local.check(Algorithm::TokenBucket, &checks[..1]);
        assert!(ok);
        assert_eq!(
            outcomes[0].remaining, 8,
            "the refused request took no token"
        );
    }
}
