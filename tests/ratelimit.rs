//! Client rate limits and distributed mode over real sockets: tiers and per-key quotas
//! with exact `RateLimit-*` headers, 429 with `Retry-After`, both algorithms, limits and
//! the response cache shared by two gateway instances through one real Redis, API keys
//! stored in Redis, and the fallback when Redis is unreachable.
//!
//! Tests that need Redis read `REDIS_URL` (`.ci/run` starts a redis-server).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use e2e_tests::access::{gateway_with_access, redis_url, unique_prefix};
use e2e_tests::scripted::ScriptedSubgraph;
use e2e_tests::{Reply, client, send};
use gateway::schema::compose::{SubgraphInput, compose};
use serde_json::json;

fn supergraph() -> String {
    compose(&[SubgraphInput {
        name: "a".into(),
        url: "http://127.0.0.1:9/a".into(),
        sdl: "type Query { hello: String }".into(),
    }])
    .expect("composes")
}

async fn upstream() -> (ScriptedSubgraph, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let a = ScriptedSubgraph::start(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
        (200, r#"{"data":{"hello":"hi"}}"#.into())
    })
    .await;
    (a, calls)
}

async fn ask(url: &str, api_key: Option<&str>) -> Reply {
    let mut request = client()
        .post(url)
        .header("content-type", "application/json")
        .body(json!({"query": "{ hello }"}).to_string());
    if let Some(key) = api_key {
        request = request.header("x-api-key", key);
    }
    send(request).await
}

fn header(reply: &Reply, name: &str) -> String {
    reply
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

fn code(reply: &Reply) -> &str {
    reply.body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("")
}

/// `(limit, remaining)` from both header families, which must agree.
fn limits(reply: &Reply) -> (String, String) {
    let ietf = (
        header(reply, "ratelimit-limit"),
        header(reply, "ratelimit-remaining"),
    );
    let legacy = (
        header(reply, "x-ratelimit-limit"),
        header(reply, "x-ratelimit-remaining"),
    );
    assert_eq!(ietf, legacy);
    assert_eq!(
        header(reply, "ratelimit-reset"),
        header(reply, "x-ratelimit-reset")
    );
    ietf
}

const KEYS: &str = r#"auth:
  api_keys:
    keys:
      - { name: alpha, key: alpha-key-0123456789, tier: free }
      - { name: gamma, key: gamma-key-0123456789, tier: pro, quota: { requests: 2, per: 1h } }
"#;

fn config(algorithm: &str, extra: &str) -> String {
    format!(
        "{KEYS}rate_limit:\n  enabled: true\n  algorithm: {algorithm}\n  tiers:\n    free: {{ requests: 3, per: 1h }}\n    anonymous: {{ requests: 2, per: 1h }}\n{extra}"
    )
}

async fn metrics(gw: &gateway::server::RunningGateway) -> String {
    e2e_tests::metrics_text(gw.addr).await
}

#[tokio::test]
async fn tiers_give_exact_headers_and_429_carries_retry_after() {
    for algorithm in ["token_bucket", "sliding_window"] {
        let (a, calls) = upstream().await;
        let gw = gateway_with_access(
            &supergraph(),
            &[("a", a.url.clone())],
            &config(algorithm, ""),
        )
        .await;
        for remaining in ["2", "1", "0"] {
            let reply = ask(&gw.url(), Some("alpha-key-0123456789")).await;
            assert_eq!(reply.status, 200, "{algorithm}: {reply:?}");
            assert_eq!(
                limits(&reply),
                ("3".into(), remaining.into()),
                "{algorithm}"
            );
            assert_eq!(header(&reply, "ratelimit-policy"), "3;w=3600");
            let reset: u64 = header(&reply, "ratelimit-reset").parse().expect("reset");
            assert!((1..=3600).contains(&reset), "{algorithm}: reset {reset}");
        }
        let reply = ask(&gw.url(), Some("alpha-key-0123456789")).await;
        assert_eq!(reply.status, 429, "{algorithm}: {reply:?}");
        assert_eq!(code(&reply), "RATE_LIMITED");
        assert!(reply.body.get("data").is_none());
        assert_eq!(limits(&reply), ("3".into(), "0".into()));
        let retry: u64 = header(&reply, "retry-after").parse().expect("Retry-After");
        assert!((1..=3600).contains(&retry), "{algorithm}: retry {retry}");
        assert_eq!(
            header(&reply, "ratelimit-reset"),
            retry.to_string(),
            "{algorithm}: Reset and Retry-After agree on a refusal"
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "the refused request reached nothing"
        );
        // A wrong key is a 401 with the headers, counted against the address (the
        // anonymous tier: 2 an hour); guessing on is refused like any flood.
        for remaining in ["1", "0"] {
            let reply = ask(&gw.url(), Some("wrong-key-0123456789")).await;
            assert_eq!(reply.status, 401, "{algorithm}: {reply:?}");
            assert_eq!(
                limits(&reply),
                ("2".into(), remaining.into()),
                "{algorithm}"
            );
        }
        let reply = ask(&gw.url(), Some("wrong-key-0123456789")).await;
        assert_eq!(reply.status, 429, "{algorithm}: {reply:?}");
        assert!(
            metrics(&gw)
                .await
                .contains("gateway_rate_limited_requests_total{tier=\"free\"} 1"),
            "{algorithm}"
        );
        gw.shutdown().await;
    }
}

#[tokio::test]
async fn a_per_key_quota_applies_on_top_of_the_tier() {
    let (a, _) = upstream().await;
    let gw = gateway_with_access(
        &supergraph(),
        &[("a", a.url.clone())],
        &config("token_bucket", ""),
    )
    .await;
    // `pro` allows 10000/h, the key's quota 2/h: the headers show the closer limit.
    for remaining in ["1", "0"] {
        let reply = ask(&gw.url(), Some("gamma-key-0123456789")).await;
        assert_eq!(reply.status, 200);
        assert_eq!(limits(&reply), ("2".into(), remaining.into()));
    }
    let reply = ask(&gw.url(), Some("gamma-key-0123456789")).await;
    assert_eq!(reply.status, 429);
    assert!(!header(&reply, "retry-after").is_empty());
    assert!(
        metrics(&gw)
            .await
            .contains("gateway_rate_limited_requests_total{tier=\"pro\"} 1")
    );
    // Another client is not affected.
    let reply = ask(&gw.url(), Some("alpha-key-0123456789")).await;
    assert_eq!(limits(&reply), ("3".into(), "2".into()));
    gw.shutdown().await;
}

#[tokio::test]
async fn anonymous_clients_are_limited_by_their_ip() {
    let (a, _) = upstream().await;
    let gw = gateway_with_access(
        &supergraph(),
        &[("a", a.url.clone())],
        &config("sliding_window", ""),
    )
    .await;
    for remaining in ["1", "0"] {
        let reply = ask(&gw.url(), None).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(limits(&reply), ("2".into(), remaining.into()));
    }
    let reply = ask(&gw.url(), None).await;
    assert_eq!(reply.status, 429);
    assert!(
        metrics(&gw)
            .await
            .contains("gateway_rate_limited_requests_total{tier=\"anonymous\"} 1")
    );
    gw.shutdown().await;
}

/// Behind a trusted proxy, anonymous clients are told apart by `X-Forwarded-For`; from
/// anyone else the header changes nothing.
#[tokio::test]
async fn behind_a_trusted_proxy_clients_are_limited_by_their_forwarded_address() {
    let (a, _) = upstream().await;
    let forwarded = |url: String, chain: &'static str| async move {
        send(
            client()
                .post(url)
                .header("content-type", "application/json")
                .header("x-forwarded-for", chain)
                .body(json!({"query": "{ hello }"}).to_string()),
        )
        .await
        .status
    };
    // The test client connects from 127.0.0.1: a trusted proxy here.
    let gw = gateway_with_access(
        &supergraph(),
        &[("a", a.url.clone())],
        &config("token_bucket", "  trusted_proxies: [127.0.0.1/32]\n"),
    )
    .await;
    for _ in 0..2 {
        assert_eq!(forwarded(gw.url(), "198.51.100.1, 203.0.113.5").await, 200);
    }
    assert_eq!(forwarded(gw.url(), "203.0.113.5").await, 429);
    // Another client behind the same proxy has its own budget.
    assert_eq!(forwarded(gw.url(), "203.0.113.6").await, 200);
    gw.shutdown().await;

    // Not trusted: every request spends the peer's budget, whatever it claims.
    let gw = gateway_with_access(
        &supergraph(),
        &[("a", a.url.clone())],
        &config("token_bucket", ""),
    )
    .await;
    assert_eq!(forwarded(gw.url(), "203.0.113.5").await, 200);
    assert_eq!(forwarded(gw.url(), "203.0.113.6").await, 200);
    assert_eq!(forwarded(gw.url(), "203.0.113.7").await, 429);
    gw.shutdown().await;
}

fn redis_yaml(url: &str, prefix: &str) -> String {
    format!("redis:\n  url: \"{url}\"\n  prefix: \"{prefix}\"\n  timeout: 2s\n")
}

#[tokio::test]
async fn two_instances_enforce_one_global_limit_through_redis() {
    let Some(url) = redis_url() else { return };
    for algorithm in ["token_bucket", "sliding_window"] {
        let (a, _) = upstream().await;
        let prefix = unique_prefix(&format!("global-{algorithm}"));
        let yaml = format!(
            "{KEYS}rate_limit:\n  enabled: true\n  algorithm: {algorithm}\n  tiers:\n    free: {{ requests: 5, per: 1h }}\n{}",
            redis_yaml(&url, &prefix)
        );
        let one = gateway_with_access(&supergraph(), &[("a", a.url.clone())], &yaml).await;
        let two = gateway_with_access(&supergraph(), &[("a", a.url.clone())], &yaml).await;
        // 16 concurrent requests, alternating between the instances.
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let url = if i % 2 == 0 { one.url() } else { two.url() };
                tokio::spawn(async move { ask(&url, Some("alpha-key-0123456789")).await })
            })
            .collect();
        let mut statuses = Vec::new();
        for t in tasks {
            statuses.push(t.await.expect("task").status);
        }
        let accepted = statuses.iter().filter(|s| **s == 200).count();
        let refused = statuses.iter().filter(|s| **s == 429).count();
        assert_eq!((accepted, refused), (5, 11), "{algorithm}: {statuses:?}");
        // The next request sees the shared count, whichever instance it reaches.
        let reply = ask(&two.url(), Some("alpha-key-0123456789")).await;
        assert_eq!(reply.status, 429);
        assert_eq!(limits(&reply), ("5".into(), "0".into()));
        one.shutdown().await;
        two.shutdown().await;
    }
}

#[tokio::test]
async fn a_response_cached_by_one_instance_is_a_hit_on_the_other() {
    let Some(url) = redis_url() else { return };
    let (a, calls) = upstream().await;
    let yaml = format!(
        "upstream:\n  cache: {{ enabled: true, ttl: 60s }}\n{}",
        redis_yaml(&url, &unique_prefix("cache"))
    );
    let one = gateway_with_access(&supergraph(), &[("a", a.url.clone())], &yaml).await;
    let two = gateway_with_access(&supergraph(), &[("a", a.url.clone())], &yaml).await;
    let reply = ask(&one.url(), None).await;
    assert_eq!(reply.body, json!({"data": {"hello": "hi"}}));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let reply = ask(&two.url(), None).await;
    assert_eq!(reply.body, json!({"data": {"hello": "hi"}}));
    assert_eq!(calls.load(Ordering::SeqCst), 1, "served from Redis");
    assert!(
        metrics(&two)
            .await
            .contains("gateway_cache_lookups_total{cache=\"upstream:a\",result=\"hit\"} 1")
    );
    one.shutdown().await;
    two.shutdown().await;
}

#[tokio::test]
async fn api_keys_and_their_quotas_can_live_in_redis() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix("apikeys");
    let digest = {
        use sha2::Digest;
        let d = sha2::Sha256::digest(b"redis-key-0123456789");
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let redis = redis::Client::open(url.as_str()).expect("redis url");
    let mut conn = redis
        .get_multiplexed_async_connection()
        .await
        .expect("redis reachable");
    let key = format!("{prefix}apikey:{digest}");
    redis::cmd("HSET")
        .arg(&key)
        .arg("name")
        .arg("acme")
        .arg("tier")
        .arg("basic")
        .arg("quota_requests")
        .arg("1")
        .arg("quota_per")
        .arg("1h")
        .query_async::<()>(&mut conn)
        .await
        .expect("HSET");
    let (a, _) = upstream().await;
    let yaml = format!(
        "auth:\n  allow_anonymous: false\n  api_keys: {{ redis: true }}\nrate_limit: {{ enabled: true }}\n{}",
        redis_yaml(&url, &prefix)
    );
    let gw = gateway_with_access(&supergraph(), &[("a", a.url.clone())], &yaml).await;
    let reply = ask(&gw.url(), Some("redis-key-0123456789")).await;
    assert_eq!(reply.body, json!({"data": {"hello": "hi"}}), "{reply:?}");
    assert_eq!(limits(&reply), ("1".into(), "0".into()));
    let reply = ask(&gw.url(), Some("redis-key-0123456789")).await;
    assert_eq!(reply.status, 429);
    assert!(
        metrics(&gw)
            .await
            .contains("gateway_rate_limited_requests_total{tier=\"basic\"} 1")
    );
    let reply = ask(&gw.url(), Some("unknown-key-0123456789")).await;
    assert_eq!(reply.status, 401);
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .expect("DEL");
    gw.shutdown().await;
}

/// A TCP server that accepts connections and never answers: a hung Redis.
async fn silent_server() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (format!("redis://{addr}"), task)
}

#[tokio::test]
async fn an_unreachable_redis_falls_back_as_configured() {
    // Port 1 on loopback refuses connections; the silent server never answers. Either
    // way requests go on within the configured timeout.
    let (silent, silent_task) = silent_server().await;
    for redis in ["redis://127.0.0.1:1".to_string(), silent] {
        let (a, calls) = upstream().await;
        let down = format!("redis:\n  url: \"{redis}\"\n  timeout: 200ms\n");
        let open = gateway_with_access(
            &supergraph(),
            &[("a", a.url.clone())],
            &format!("{}{down}  on_error: local\n", config("token_bucket", "")),
        )
        .await;
        // Fail open to local limits: exactly the tier's 3, then 429.
        let mut statuses = Vec::new();
        for _ in 0..4 {
            statuses.push(ask(&open.url(), Some("alpha-key-0123456789")).await.status);
        }
        assert_eq!(statuses, [200, 200, 200, 429], "{redis}");
        open.shutdown().await;

        let closed = gateway_with_access(
            &supergraph(),
            &[("a", a.url.clone())],
            &format!("{}{down}  on_error: reject\n", config("token_bucket", "")),
        )
        .await;
        let reply = ask(&closed.url(), Some("alpha-key-0123456789")).await;
        assert_eq!(reply.status, 503, "{redis}: {reply:?}");
        assert_eq!(code(&reply), "RATE_LIMIT_UNAVAILABLE");
        assert_eq!(calls.load(Ordering::SeqCst), 3, "{redis}");
        closed.shutdown().await;
    }
    silent_task.abort();
}

#[tokio::test]
async fn without_rate_limits_no_headers_are_added() {
    let (a, _) = upstream().await;
    let gw = gateway_with_access(&supergraph(), &[("a", a.url.clone())], "").await;
    let reply = ask(&gw.url(), None).await;
    assert_eq!(reply.body, json!({"data": {"hello": "hi"}}));
    assert!(reply.headers.get("ratelimit-limit").is_none());
    gw.shutdown().await;
}
