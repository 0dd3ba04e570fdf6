//! Client rate limits and distributed mode over real sockets: tiers and per-key quotas
//! with exact `RateLimit-*` headers, 429 with `Retry-After`, both algorithms; limits,
//! quotas and the response cache shared by gateway instances through a real Redis node
//! and a real Redis Cluster, API keys stored in Redis, Redis over TLS with an ACL user,
//! and the fallback when Redis is unreachable.
//!
//! The distributed tests run against `REDIS_URL` and `REDIS_CLUSTER_URLS` (`.ci/run`
//! starts a node and a three-master cluster).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use e2e_tests::access::gateway_with_access;
use e2e_tests::certs::{Ca, temp_dir, write};
use e2e_tests::redis_servers::{RedisProcess, redis_backends, unique_prefix};
use e2e_tests::scripted::ScriptedSubgraph;
use e2e_tests::{Reply, client, send};
use serde_json::json;

fn supergraph() -> String {
    e2e_tests::single_subgraph_supergraph("http://127.0.0.1:9/a", "type Query { hello: String }")
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
      - { name: delta, key: delta-key-0123456789, tier: free }
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

/// `n` concurrent requests with `api_key`, spread round-robin over `gateways`; the
/// statuses.
async fn spread(
    gateways: &[&gateway::server::RunningGateway],
    n: usize,
    api_key: &str,
) -> Vec<u16> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let url = gateways[i % gateways.len()].url();
            let key = api_key.to_string();
            tokio::spawn(async move { ask(&url, Some(&key)).await.status })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.expect("task"));
    }
    statuses
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

#[tokio::test]
async fn three_instances_admit_exactly_the_global_limit_on_a_node_and_a_cluster() {
    for backend in redis_backends() {
        for algorithm in ["token_bucket", "sliding_window"] {
            let what = format!("{} / {algorithm}", backend.name);
            let (a, _) = upstream().await;
            let prefix = unique_prefix(&format!("global-{}-{algorithm}", backend.name));
            let yaml = format!(
                "{KEYS}rate_limit:\n  enabled: true\n  algorithm: {algorithm}\n  tiers:\n    free: {{ requests: 40, per: 24h }}\n    pro: {{ requests: 1000, per: 24h }}\n{}",
                backend.yaml(&prefix)
            );
            let urls = [("a", a.url.clone())];
            let one = gateway_with_access(&supergraph(), &urls, &yaml).await;
            let two = gateway_with_access(&supergraph(), &urls, &yaml).await;
            let three = gateway_with_access(&supergraph(), &urls, &yaml).await;
            let fleet = [&one, &two, &three];
            // 200 concurrent requests of one client over three instances: its tier's 40
            // and not one more (per-instance counting would admit 120).
            let statuses = spread(&fleet, 200, "alpha-key-0123456789").await;
            assert_eq!(
                (count(&statuses, 200), count(&statuses, 429)),
                (40, 160),
                "{what}: {statuses:?}"
            );
            // A per-key quota (2) on top of a roomy tier: the quota key and the tier key
            // are checked by one script, so on a cluster they must share a slot.
            let statuses = spread(&fleet, 30, "gamma-key-0123456789").await;
            assert_eq!(
                (count(&statuses, 200), count(&statuses, 429)),
                (2, 28),
                "{what}: {statuses:?}"
            );
            // The next request sees the shared count, whichever instance it reaches.
            let reply = ask(&three.url(), Some("alpha-key-0123456789")).await;
            assert_eq!(reply.status, 429, "{what}");
            assert_eq!(limits(&reply), ("40".into(), "0".into()), "{what}");
            for gw in fleet {
                assert!(
                    !metrics(gw).await.contains("gateway_redis_errors_total{"),
                    "{what}: a Redis call failed"
                );
            }
            one.shutdown().await;
            two.shutdown().await;
            three.shutdown().await;
        }
    }
}

#[tokio::test]
async fn a_limit_stays_exact_while_its_cluster_slot_moves_to_another_node() {
    let Some(cluster) = redis_backends().into_iter().find(|b| b.name == "cluster") else {
        return;
    };
    for algorithm in ["token_bucket", "sliding_window"] {
        let (a, _) = upstream().await;
        let prefix = unique_prefix(&format!("reshard-{algorithm}"));
        let yaml = format!(
            "{KEYS}rate_limit:\n  enabled: true\n  algorithm: {algorithm}\n  tiers:\n    free: {{ requests: 40, per: 24h }}\n{}",
            cluster.yaml(&prefix)
        );
        let urls = [("a", a.url.clone())];
        let one = gateway_with_access(&supergraph(), &urls, &yaml).await;
        let two = gateway_with_access(&supergraph(), &urls, &yaml).await;
        let fleet = [&one, &two];
        let before = spread(&fleet, 25, "delta-key-0123456789").await;
        // The client's keys move (MOVED for the connections that knew the old owner),
        // with requests still arriving while they do.
        let moving = tokio::spawn({
            let cluster = cluster.clone();
            async move { cluster.move_slot_of("{key:delta}").await }
        });
        let during = spread(&fleet, 25, "delta-key-0123456789").await;
        moving.await.expect("slot moved");
        let after = spread(&fleet, 25, "delta-key-0123456789").await;
        let admitted = [&before, &during, &after]
            .iter()
            .map(|s| count(s, 200))
            .sum::<usize>();
        assert_eq!(admitted, 40, "{algorithm}: {before:?} {during:?} {after:?}");
        assert_eq!(count(&before, 200), 25, "{algorithm}");
        one.shutdown().await;
        two.shutdown().await;
    }
}

#[tokio::test]
async fn a_response_cached_by_one_instance_is_a_hit_on_the_other() {
    for backend in redis_backends() {
        let (a, calls) = upstream().await;
        let yaml = format!(
            "upstream:\n  cache: {{ enabled: true, ttl: 60s }}\n{}",
            backend.yaml(&unique_prefix(&format!("cache-{}", backend.name)))
        );
        let one = gateway_with_access(&supergraph(), &[("a", a.url.clone())], &yaml).await;
        let two = gateway_with_access(&supergraph(), &[("a", a.url.clone())], &yaml).await;
        let reply = ask(&one.url(), None).await;
        assert_eq!(reply.body, json!({"data": {"hello": "hi"}}));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let reply = ask(&two.url(), None).await;
        assert_eq!(reply.body, json!({"data": {"hello": "hi"}}));
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "{}: served from Redis",
            backend.name
        );
        assert!(
            metrics(&two)
                .await
                .contains("gateway_cache_lookups_total{cache=\"upstream:a\",result=\"hit\"} 1"),
            "{}",
            backend.name
        );
        one.shutdown().await;
        two.shutdown().await;
    }
}

#[tokio::test]
async fn api_keys_and_their_quotas_can_live_in_redis() {
    for backend in redis_backends() {
        let prefix = unique_prefix(&format!("apikeys-{}", backend.name));
        let digest = {
            use sha2::Digest;
            let d = sha2::Sha256::digest(b"redis-key-0123456789");
            d.iter().map(|b| format!("{b:02x}")).collect::<String>()
        };
        let key = format!("{prefix}apikey:{digest}");
        let mut hset = redis::cmd("HSET");
        hset.arg(&key)
            .arg("name")
            .arg("acme")
            .arg("tier")
            .arg("basic")
            .arg("quota_requests")
            .arg("1")
            .arg("quota_per")
            .arg("1h");
        backend.exec::<()>(&hset).await;
        let (a, _) = upstream().await;
        let yaml = format!(
            "auth:\n  allow_anonymous: false\n  api_keys: {{ redis: true }}\nrate_limit: {{ enabled: true }}\n{}",
            backend.yaml(&prefix)
        );
        let gw = gateway_with_access(&supergraph(), &[("a", a.url.clone())], &yaml).await;
        let reply = ask(&gw.url(), Some("redis-key-0123456789")).await;
        assert_eq!(reply.body, json!({"data": {"hello": "hi"}}), "{reply:?}");
        assert_eq!(limits(&reply), ("1".into(), "0".into()));
        let reply = ask(&gw.url(), Some("redis-key-0123456789")).await;
        assert_eq!(reply.status, 429, "{}", backend.name);
        assert!(
            metrics(&gw)
                .await
                .contains("gateway_rate_limited_requests_total{tier=\"basic\"} 1")
        );
        let reply = ask(&gw.url(), Some("unknown-key-0123456789")).await;
        assert_eq!(reply.status, 401);
        // Keys live in Redis, so readiness asks it; it answers.
        assert_eq!(readiness(&gw).await.0, 200, "{}", backend.name);
        backend.exec::<()>(redis::cmd("DEL").arg(&key)).await;
        gw.shutdown().await;
    }
}

#[tokio::test]
async fn a_redis_behind_tls_and_an_acl_password_is_shared() {
    let dir = temp_dir("redis-tls");
    let ca = Ca::new("redis test CA");
    let server = ca.server();
    let ca_file = write(&dir, "ca.pem", &ca.pem());
    let cert_file = write(&dir, "redis.pem", &server.cert);
    let key_file = write(&dir, "redis.key", &server.key);
    let acl_file = write(
        &dir,
        "users.acl",
        "user default off\nuser gateway on >s3cret ~* &* +@all\n",
    );
    let path = |p: &std::path::Path| p.display().to_string();
    let args = [
        "--tls-cert-file".to_string(),
        path(&cert_file),
        "--tls-key-file".into(),
        path(&key_file),
        "--tls-ca-cert-file".into(),
        path(&ca_file),
        "--tls-auth-clients".into(),
        "no".into(),
        "--aclfile".into(),
        path(&acl_file),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let Some(redis) = RedisProcess::start(&dir, true, &args) else {
        return;
    };
    let (a, _) = upstream().await;
    let section = |password: &str| {
        format!(
            "{KEYS}rate_limit:\n  enabled: true\n  tiers:\n    free: {{ requests: 3, per: 1h }}\nredis:\n  url: \"rediss://127.0.0.1:{}\"\n  username: gateway\n  password: \"{password}\"\n  ca_file: \"{}\"\n  timeout: 2s\n  prefix: \"{}\"\n",
            redis.port,
            ca_file.display(),
            unique_prefix("tls")
        )
    };
    let yaml = section("s3cret");
    let one = gateway_with_access(&supergraph(), &[("a", a.url.clone())], &yaml).await;
    let two = gateway_with_access(&supergraph(), &[("a", a.url.clone())], &yaml).await;
    let statuses = spread(&[&one, &two], 8, "alpha-key-0123456789").await;
    assert_eq!(
        (count(&statuses, 200), count(&statuses, 429)),
        (3, 5),
        "{statuses:?}"
    );
    assert!(!metrics(&one).await.contains("gateway_redis_errors_total{"));
    one.shutdown().await;
    two.shutdown().await;
    // A wrong password: every call fails, is counted, and the local limits apply.
    let wrong = gateway_with_access(&supergraph(), &[("a", a.url.clone())], &section("nope")).await;
    let reply = ask(&wrong.url(), Some("alpha-key-0123456789")).await;
    assert_eq!(reply.status, 200);
    assert!(
        metrics(&wrong)
            .await
            .contains("gateway_redis_errors_total{operation=\"rate limit\"}"),
        "{}",
        metrics(&wrong).await
    );
    wrong.shutdown().await;
}

/// `/health/ready`: status and body.
async fn readiness(gw: &gateway::server::RunningGateway) -> (u16, serde_json::Value) {
    let reply = send(client().get(format!("http://{}/health/ready", gw.addr))).await;
    (reply.status, reply.body)
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
    let silent_cluster = silent.replace("redis://", "redis+cluster://");
    for redis in [
        "redis://127.0.0.1:1".to_string(),
        silent,
        "redis+cluster://127.0.0.1:1".to_string(),
        silent_cluster,
    ] {
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
        assert!(
            metrics(&open)
                .await
                .contains("gateway_redis_errors_total{operation=\"rate limit\"} 4"),
            "{redis}: every failed call is counted"
        );
        // The local fallback serves without Redis: the instance stays ready.
        assert_eq!(readiness(&open).await.0, 200, "{redis}");
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
        // Failing closed, requests need Redis: the instance is not ready.
        let (status, body) = readiness(&closed).await;
        assert_eq!(status, 503, "{redis}");
        assert!(
            body["reason"].as_str().unwrap_or("").starts_with("redis"),
            "{body}"
        );
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
