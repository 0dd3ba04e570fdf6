//! The upstream policy stack over real sockets: retries, circuit breaker, bulkhead,
//! rate limit, cache and de-duplication, credential propagation.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use e2e_tests::scripted::ScriptedSubgraph;
use e2e_tests::{client, gateway_with_config, gateway_with_upstream, post_json, send};
use gateway::schema::compose::{SubgraphInput, compose};
use serde_json::{Value, json};

fn supergraph() -> String {
    compose(&[SubgraphInput {
        name: "a".into(),
        url: "http://127.0.0.1:9/a".into(),
        sdl: "type Query { hello: String who: String } type Mutation { poke: Int }".into(),
    }])
    .expect("composes")
}

async fn ask(url: &str, query: &str) -> Value {
    post_json(&client(), url, &json!({"query": query}))
        .await
        .body
}

fn code(body: &Value) -> String {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

const HELLO: &str = r#"{"data":{"hello":"hi"}}"#;

#[tokio::test]
async fn a_flapping_upstream_succeeds_through_retries_but_mutations_are_never_retried() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let a = ScriptedSubgraph::start(move |req| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        let q = req["query"].as_str().unwrap_or("");
        if q.starts_with("mutation") || n % 3 != 2 {
            (503, "busy".into())
        } else {
            (200, HELLO.into())
        }
    })
    .await;
    let gw = gateway_with_upstream(
        &supergraph(),
        &[("a", a.url.clone())],
        "  retry: { max_attempts: 3, base_delay: 1ms, max_delay: 5ms }",
    )
    .await;
    let body = ask(&gw.url(), "{ hello }").await;
    assert_eq!(body, json!({"data": {"hello": "hi"}}));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "two failures, then success"
    );

    let body = ask(&gw.url(), "mutation { poke }").await;
    assert_eq!(code(&body), "UPSTREAM_HTTP_503", "{body}");
    assert_eq!(calls.load(Ordering::SeqCst), 4, "a mutation is sent once");
    gw.shutdown().await;
}

#[tokio::test]
async fn other_errors_are_not_retried_unless_a_source_opts_in() {
    let a = ScriptedSubgraph::start(|_| (500, "boom".into())).await;
    let gw = gateway_with_upstream(
        &supergraph(),
        &[("a", a.url.clone())],
        "  retry: { max_attempts: 5, base_delay: 1ms }\n  circuit_breaker: { enabled: false }",
    )
    .await;
    let body = ask(&gw.url(), "{ hello }").await;
    assert_eq!(code(&body), "UPSTREAM_HTTP_500");
    assert_eq!(a.received().len(), 1);
    gw.shutdown().await;

    // Opted in for this source: a 500 is retried too, until the attempts run out.
    let gw = gateway_with_upstream(
        &supergraph(),
        &[("a", a.url.clone())],
        "  circuit_breaker: { enabled: false }\n  sources:\n    a:\n      retry: { max_attempts: 3, base_delay: 1ms, retry_on: [500, 502, 503, 504] }",
    )
    .await;
    let body = ask(&gw.url(), "{ hello }").await;
    assert_eq!(code(&body), "UPSTREAM_HTTP_500");
    assert_eq!(a.received().len(), 4, "one earlier, three now");
    gw.shutdown().await;
}

#[tokio::test]
async fn the_request_deadline_leaves_no_room_for_a_retry_that_cannot_fit() {
    // A hanging backend: each attempt times out after 400 ms. With a 600 ms deadline
    // the 200 ms left cannot hold another attempt, so only one is made (without the
    // deadline, three: 1.2 s).
    let a =
        ScriptedSubgraph::start_with_delay(Duration::from_secs(5), |_| (200, HELLO.into())).await;
    let gw = gateway_with_config(
        &supergraph(),
        &[("a", a.url.clone())],
        "upstream:\n  timeout: 400ms\n  retry: { max_attempts: 3, base_delay: 1ms, max_delay: 5ms }\n\
         limits:\n  deadline: 600ms",
    )
    .await;
    let body = ask(&gw.url(), "{ hello }").await;
    assert_eq!(code(&body), "UPSTREAM_TIMEOUT", "{body}");
    assert_eq!(a.received().len(), 1, "no retry starts past the deadline");
    gw.shutdown().await;
}

#[tokio::test]
async fn the_request_deadline_bounds_later_plan_steps() {
    const ROOT: &str = r#"
extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
type Query { thing: Thing }
type Thing @key(fields: "id") { id: ID! }
"#;
    const DETAIL: &str = r#"
extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
type Thing @key(fields: "id") { id: ID! detail: String }
"#;
    let supergraph = compose(&[
        SubgraphInput {
            name: "root".into(),
            url: "http://127.0.0.1:9/root".into(),
            sdl: ROOT.into(),
        },
        SubgraphInput {
            name: "detail".into(),
            url: "http://127.0.0.1:9/detail".into(),
            sdl: DETAIL.into(),
        },
    ])
    .expect("composes");
    let root = ScriptedSubgraph::start_with_delay(Duration::from_millis(400), |_| {
        (
            200,
            r#"{"data":{"thing":{"__typename":"Thing","id":"1"}}}"#.into(),
        )
    })
    .await;
    let detail = ScriptedSubgraph::start_with_delay(Duration::from_millis(1200), |_| {
        (200, r#"{"data":{"_entities":[{"detail":"late"}]}}"#.into())
    })
    .await;
    // Each fetch alone is within its 2 s timeout; the request as a whole is not.
    let gw = gateway_with_config(
        &supergraph,
        &[("root", root.url.clone()), ("detail", detail.url.clone())],
        "upstream:\n  timeout: 2s\nlimits:\n  deadline: 800ms",
    )
    .await;
    let body = ask(&gw.url(), "{ thing { id detail } }").await;
    assert_eq!(
        body["data"],
        json!({"thing": {"id": "1", "detail": null}}),
        "{body}"
    );
    assert_eq!(code(&body), "DEADLINE_EXCEEDED", "{body}");
    assert_eq!(
        detail.received().len(),
        1,
        "the entity fetch was sent, then cut"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn a_down_upstream_opens_the_breaker_and_recovery_closes_it() {
    let healthy = Arc::new(AtomicBool::new(false));
    let flag = healthy.clone();
    let a = ScriptedSubgraph::start(move |_| {
        if flag.load(Ordering::SeqCst) {
            (200, HELLO.into())
        } else {
            (500, "down".into())
        }
    })
    .await;
    let gw = gateway_with_upstream(
        &supergraph(),
        &[("a", a.url.clone())],
        // Long enough that a busy machine cannot half-open it during the checks below.
        "  circuit_breaker: { consecutive_failures: 3, reset_timeout: 1500ms }",
    )
    .await;
    for _ in 0..3 {
        assert_eq!(
            code(&ask(&gw.url(), "{ hello }").await),
            "UPSTREAM_HTTP_500"
        );
    }
    // Open: failing at once, and the backend receives nothing.
    for _ in 0..5 {
        let body = ask(&gw.url(), "{ hello }").await;
        assert_eq!(code(&body), "CIRCUIT_OPEN", "{body}");
        assert!(body["data"]["hello"].is_null());
    }
    assert_eq!(a.received().len(), 3);

    // After the reset timeout a probe goes through and closes it.
    healthy.store(true, Ordering::SeqCst);
    let mut recovered = false;
    for _ in 0..400 {
        if ask(&gw.url(), "{ hello }").await == json!({"data": {"hello": "hi"}}) {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(recovered, "the breaker never closed");
    let metrics = e2e_tests::metrics_text(gw.addr).await;
    assert!(
        metrics.contains(r#"gateway_circuit_breaker_state{source="a"} 0"#),
        "{metrics}"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn the_bulkhead_and_the_rate_limit_protect_the_backend() {
    let a = ScriptedSubgraph::start_with_delay(Duration::from_millis(400), |_| (200, HELLO.into()))
        .await;
    let gw = gateway_with_upstream(
        &supergraph(),
        &[("a", a.url.clone())],
        "  bulkhead: { max_concurrent: 1, max_wait: 20ms }",
    )
    .await;
    // Two different operations (no de-duplication) at once: one waits too long.
    let url = gw.url();
    let (x, y) = tokio::join!(ask(&url, "{ hello }"), ask(&url, "{ x: hello }"));
    let codes = [code(&x), code(&y)];
    assert!(
        codes.contains(&"UPSTREAM_OVERLOADED".to_string()),
        "{x} {y}"
    );
    assert!(codes.contains(&String::new()), "{x} {y}");
    assert_eq!(a.received().len(), 1);
    gw.shutdown().await;

    let b = ScriptedSubgraph::start(|_| (200, HELLO.into())).await;
    let gw = gateway_with_upstream(
        &supergraph(),
        &[("a", b.url.clone())],
        "  rate_limit: { requests_per_second: 0.001, burst: 2 }",
    )
    .await;
    assert!(ask(&gw.url(), "{ hello }").await.get("errors").is_none());
    assert!(ask(&gw.url(), "{ a: hello }").await.get("errors").is_none());
    assert_eq!(
        code(&ask(&gw.url(), "{ b: hello }").await),
        "UPSTREAM_RATE_LIMITED"
    );
    assert_eq!(b.received().len(), 2);
    gw.shutdown().await;
}

#[tokio::test]
async fn identical_concurrent_fetches_share_one_upstream_call() {
    let a = ScriptedSubgraph::start_with_delay(Duration::from_millis(300), |_| (200, HELLO.into()))
        .await;
    let gw = gateway_with_upstream(&supergraph(), &[("a", a.url.clone())], "").await;
    let url = gw.url();
    let answers = futures_join(&url, 5).await;
    assert!(
        answers
            .iter()
            .all(|b| *b == json!({"data": {"hello": "hi"}}))
    );
    assert_eq!(a.received().len(), 1);
    gw.shutdown().await;
}

async fn futures_join(url: &str, n: usize) -> Vec<Value> {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let url = url.to_string();
        tasks.push(tokio::spawn(async move { ask(&url, "{ hello }").await }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}

#[tokio::test]
async fn the_cache_hits_varies_by_user_and_never_stores_errors() {
    let a = ScriptedSubgraph::start_full(Duration::ZERO, |req, headers| {
        let q = req["query"].as_str().unwrap_or("");
        if q.contains("hello") {
            return (
                200,
                json!({"data": null, "errors": [{"message": "nope"}]}).to_string(),
            );
        }
        let who = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("nobody")
            .to_string();
        (200, json!({"data": {"who": who}}).to_string())
    })
    .await;
    let gw = gateway_with_upstream(
        &supergraph(),
        &[("a", a.url.clone())],
        "  cache: { enabled: true, ttl: 60s, vary_headers: [authorization] }\n  auth: { forward_authorization: true }",
    )
    .await;
    let as_user = |user: &'static str| {
        send(
            client()
                .post(gw.url())
                .header("content-type", "application/json")
                .header("authorization", user)
                .body(json!({"query": "{ who }"}).to_string()),
        )
    };
    assert_eq!(as_user("alice").await.body["data"]["who"], "alice");
    assert_eq!(as_user("alice").await.body["data"]["who"], "alice");
    assert_eq!(a.received().len(), 1, "the second call is a cache hit");
    assert_eq!(
        as_user("bob").await.body["data"]["who"],
        "bob",
        "bob never sees alice's entry"
    );
    assert_eq!(a.received().len(), 2);

    // Errors are not cached.
    ask(&gw.url(), "{ hello }").await;
    ask(&gw.url(), "{ hello }").await;
    assert_eq!(a.received().len(), 4);
    let metrics = e2e_tests::metrics_text(gw.addr).await;
    assert!(
        metrics.contains(r#"gateway_cache_lookups_total{cache="upstream:a",result="hit"} 1"#),
        "{metrics}"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn credentials_reach_only_sources_configured_for_them() {
    let a = ScriptedSubgraph::start(|_| (200, HELLO.into())).await;
    let call = |gw_url: String| async move {
        send(
            client()
                .post(gw_url)
                .header("content-type", "application/json")
                .header("authorization", "Bearer client-token")
                .header("x-tenant", "t1")
                .body(json!({"query": "{ hello }"}).to_string()),
        )
        .await
    };

    // Default: nothing of the client's is forwarded.
    let gw = gateway_with_upstream(&supergraph(), &[("a", a.url.clone())], "").await;
    call(gw.url()).await;
    let seen = a.received_headers().pop().expect("called");
    assert!(seen.get("authorization").is_none());
    assert!(seen.get("x-tenant").is_none());
    gw.shutdown().await;

    // Forwarding configured per source.
    let gw = gateway_with_upstream(
        &supergraph(),
        &[("a", a.url.clone())],
        "  sources:\n    a:\n      auth: { forward_authorization: true, forward_headers: [x-tenant] }",
    )
    .await;
    call(gw.url()).await;
    let seen = a.received_headers().pop().expect("called");
    assert_eq!(seen["authorization"], "Bearer client-token");
    assert_eq!(seen["x-tenant"], "t1");
    gw.shutdown().await;

    // A service credential replaces the client's.
    let gw = gateway_with_upstream(
        &supergraph(),
        &[("a", a.url.clone())],
        "  auth: { bearer_token: service-secret, api_key: { header: x-api-key, value: k1 } }",
    )
    .await;
    call(gw.url()).await;
    let seen = a.received_headers().pop().expect("called");
    assert_eq!(seen["authorization"], "Bearer service-secret");
    assert_eq!(seen["x-api-key"], "k1");
    gw.shutdown().await;
}

#[tokio::test]
async fn an_opt_in_cache_status_header_says_whether_the_cache_answered() {
    let a = ScriptedSubgraph::start(|_| (200, HELLO.into())).await;
    let status = |url: String| async move {
        let reply = post_json(&client(), &url, &json!({"query": "{ hello }"})).await;
        assert_eq!(reply.body["data"]["hello"], "hi", "{reply:?}");
        reply
            .headers
            .get("cache-status")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let cached = "upstream:\n  cache: { enabled: true, ttl: 60s }";
    let gw = gateway_with_config(
        &supergraph(),
        &[("a", a.url.clone())],
        &format!("{cached}\nedge:\n  cache_status: true"),
    )
    .await;
    assert_eq!(status(gw.url()).await.as_deref(), Some("gateway; fwd=miss"));
    assert_eq!(status(gw.url()).await.as_deref(), Some("gateway; hit"));
    gw.shutdown().await;
    // Off by default; and never for a source without a cache.
    let gw = gateway_with_config(&supergraph(), &[("a", a.url.clone())], cached).await;
    assert_eq!(status(gw.url()).await, None);
    gw.shutdown().await;
    let gw = gateway_with_config(
        &supergraph(),
        &[("a", a.url.clone())],
        "edge:\n  cache_status: true",
    )
    .await;
    assert_eq!(status(gw.url()).await, None);
    gw.shutdown().await;
}

#[tokio::test]
async fn the_plan_extensions_say_whether_the_cache_answered() {
    let a = ScriptedSubgraph::start(|_| (200, HELLO.into())).await;
    let planned = |url: String| async move {
        send(
            client()
                .post(url)
                .header("content-type", "application/json")
                .header("x-gateway-plan", "true")
                .body(json!({"query": "{ hello }"}).to_string()),
        )
        .await
        .body
    };
    let gw = gateway_with_upstream(
        &supergraph(),
        &[("a", a.url.clone())],
        "  cache: { enabled: true, ttl: 60s }",
    )
    .await;
    let first = planned(gw.url()).await;
    assert_eq!(first["data"]["hello"], "hi");
    assert_eq!(
        first["extensions"]["fetches"][0]["cacheHit"], false,
        "{first}"
    );
    let second = planned(gw.url()).await;
    assert_eq!(
        second["extensions"]["fetches"][0]["cacheHit"], true,
        "{second}"
    );
    assert_eq!(a.received().len(), 1);
    // Without the opt-in header, no extensions at all.
    let plain = ask(&gw.url(), "{ hello }").await;
    assert!(plain.get("extensions").is_none(), "{plain}");
    gw.shutdown().await;

    // A source without a cache says nothing about it.
    let gw = gateway_with_upstream(&supergraph(), &[("a", a.url.clone())], "").await;
    let body = planned(gw.url()).await;
    let fetch = &body["extensions"]["fetches"][0];
    assert_eq!(fetch["service"], "a", "{body}");
    assert!(fetch.get("cacheHit").is_none(), "{body}");
    gw.shutdown().await;
}

async fn upstream_fetches(gw: &gateway::server::RunningGateway) -> f64 {
    let text = e2e_tests::metrics_text(gw.addr).await;
    text.lines()
        .filter(|l| l.starts_with("gateway_upstream_requests_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn identical_concurrent_requests_share_one_execution_but_distinct_ones_do_not() {
    let a = ScriptedSubgraph::start_with_delay(Duration::from_millis(300), |req| {
        let q = req["query"].as_str().unwrap_or("");
        if q.starts_with("mutation") {
            (200, json!({"data": {"poke": 1}}).to_string())
        } else {
            (200, HELLO.into())
        }
    })
    .await;
    let gw = gateway_with_upstream(&supergraph(), &[("a", a.url.clone())], "").await;
    let fire = |n: usize, header: Option<&'static str>, query: &'static str| {
        let url = gw.url();
        async move {
            let mut tasks = Vec::new();
            for i in 0..n {
                let url = url.clone();
                tasks.push(tokio::spawn(async move {
                    let mut req = client()
                        .post(url)
                        .header("content-type", "application/json")
                        .body(json!({"query": query}).to_string());
                    if let Some(h) = header {
                        req = req.header(h, i.to_string());
                    }
                    send(req).await.body
                }));
            }
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.expect("task"));
            }
            out
        }
    };

    // Once the operation is planned, five identical queries at once: one execution,
    // one upstream fetch, five answers.
    fire(1, None, "{ hello }").await;
    assert_eq!(upstream_fetches(&gw).await, 1.0);
    let answers = fire(5, None, "{ hello }").await;
    assert!(
        answers
            .iter()
            .all(|b| *b == json!({"data": {"hello": "hi"}}))
    );
    assert_eq!(upstream_fetches(&gw).await, 2.0);

    // A header the gateway does not know keeps requests apart (it could matter).
    let answers = fire(5, Some("x-bench-req"), "{ hello }").await;
    assert!(
        answers
            .iter()
            .all(|b| *b == json!({"data": {"hello": "hi"}}))
    );
    assert_eq!(upstream_fetches(&gw).await, 7.0);

    // Mutations are never shared.
    let before = a.received().len();
    fire(3, None, "mutation { poke }").await;
    assert_eq!(a.received().len(), before + 3);
    gw.shutdown().await;
}
