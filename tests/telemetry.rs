//! Operating the gateway: request ids, Prometheus metrics, the opt-in query plan.

use e2e_tests::scripted::ScriptedSubgraph;
use e2e_tests::{TestEnv, client, gateway_for, send};
use gateway::schema::compose::{SubgraphInput, compose};
use serde_json::json;

fn one_subgraph_supergraph() -> String {
    compose(&[SubgraphInput {
        name: "a".into(),
        url: "http://127.0.0.1:9/a".into(),
        sdl: "type Query { hello: String }".into(),
    }])
    .expect("composes")
}

#[tokio::test]
async fn request_ids_are_returned_and_forwarded_upstream() {
    let a = ScriptedSubgraph::start(|_| (200, json!({"data": {"hello": "hi"}}).to_string())).await;
    let gw = gateway_for(&one_subgraph_supergraph(), &[("a", a.url.clone())]).await;
    let http = client();

    let r = send(
        http.post(gw.url())
            .header("content-type", "application/json")
            .header("x-request-id", "trace-me-42")
            .body(json!({"query": "{ hello }"}).to_string()),
    )
    .await;
    assert_eq!(r.body, json!({"data": {"hello": "hi"}}));
    assert_eq!(r.headers["x-request-id"], "trace-me-42");
    let upstream = a.received_headers();
    assert_eq!(upstream[0]["x-request-id"], "trace-me-42");

    // Generated when missing or malformed, and present on request errors too.
    let r = send(
        http.post(gw.url())
            .header("content-type", "application/json")
            .header("x-request-id", "bad id with spaces")
            .body("{nope"),
    )
    .await;
    assert_eq!(r.status, 400);
    let id = r.headers["x-request-id"].to_str().expect("ascii");
    assert_eq!(id.len(), 32, "{id}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    gw.shutdown().await;
}

/// The value of the first sample line starting with `prefix`.
fn sample(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_upstreams_and_plan_cache() {
    let env = TestEnv::start().await;
    let http = client();
    env.query("query Top { topProducts { name inStock } }", json!({}))
        .await;
    env.query("query Top { topProducts { name inStock } }", json!({}))
        .await;
    env.mocks.set_fault(
        "inventory",
        subgraph_mocks::Fault {
            http_500_rate: 1.0,
            ..Default::default()
        },
    );
    env.query("query Top { topProducts { name inStock } }", json!({}))
        .await;
    let bad = send(
        http.post(env.gateway.url())
            .header("content-type", "application/json")
            .body("{"),
    )
    .await;
    assert_eq!(bad.status, 400);

    let r = env
        .client
        .get(format!("http://{}/metrics", env.gateway.addr))
        .send()
        .await
        .expect("metrics");
    assert_eq!(r.status(), 200);
    let text = r.text().await.expect("body");
    let get =
        |prefix: &str| sample(&text, prefix).unwrap_or_else(|| panic!("no {prefix} in\n{text}"));
    assert_eq!(
        get(r#"gateway_http_requests_total{client="unified",operation="Top",outcome="ok"}"#),
        2.0
    );
    assert_eq!(
        get(r#"gateway_http_requests_total{client="unified",operation="Top",outcome="partial"}"#),
        1.0
    );
    assert_eq!(
        get(
            r#"gateway_http_requests_total{client="unified",operation="",outcome="request_error"}"#
        ),
        1.0
    );
    assert_eq!(
        get(r#"gateway_upstream_requests_total{source="products",outcome="ok"}"#),
        3.0
    );
    assert_eq!(
        get(r#"gateway_upstream_requests_total{source="inventory",outcome="ok"}"#),
        2.0
    );
    assert_eq!(
        get(r#"gateway_upstream_requests_total{source="inventory",outcome="UPSTREAM_HTTP_500"}"#),
        1.0
    );
    assert_eq!(
        get(r#"gateway_cache_lookups_total{cache="plan",result="miss"}"#),
        1.0
    );
    assert_eq!(
        get(r#"gateway_cache_lookups_total{cache="plan",result="hit"}"#),
        2.0
    );
    assert_eq!(
        get(
            r#"gateway_http_request_duration_seconds_count{client="unified",operation="Top",outcome="ok"}"#
        ),
        2.0
    );
    assert!(text.contains("gateway_http_requests_in_flight"));
    env.shutdown().await;
}

#[tokio::test]
async fn the_query_plan_is_returned_only_on_request_and_when_allowed() {
    let a = ScriptedSubgraph::start(|_| (200, json!({"data": {"hello": "hi"}}).to_string())).await;
    // `gateway_for` enables the header.
    let gw = gateway_for(&one_subgraph_supergraph(), &[("a", a.url.clone())]).await;
    let http = client();
    let ask = |with: bool| {
        let mut req = http
            .post(gw.url())
            .header("content-type", "application/json")
            .body(json!({"query": "{ hello }"}).to_string());
        if with {
            req = req.header("x-gateway-plan", "true");
        }
        send(req)
    };
    let r = ask(true).await;
    let plan = r.body["extensions"]["queryPlan"].as_str().expect("plan");
    assert!(plan.contains("Fetch(service: \"a\")"), "{plan}");
    assert_eq!(r.body["extensions"]["fetches"][0]["service"], "a");
    assert!(r.body["extensions"]["fetches"][0]["durationMs"].is_number());
    let r = ask(false).await;
    assert!(r.body.get("extensions").is_none(), "{}", r.body);
    gw.shutdown().await;

    // The example config does not allow it.
    let env = TestEnv::start().await;
    let r = send(
        env.client
            .post(env.gateway.url())
            .header("content-type", "application/json")
            .header("x-gateway-plan", "true")
            .body(json!({"query": "{ me { id } }"}).to_string()),
    )
    .await;
    assert!(r.body.get("extensions").is_none(), "{}", r.body);
    env.shutdown().await;
}
