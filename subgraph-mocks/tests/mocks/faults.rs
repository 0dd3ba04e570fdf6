//! Fault injection and the control endpoint, over real sockets on 127.0.0.1:0.

use std::time::{Duration, Instant};

use crate::common::{data, post};
use serde_json::{Value, json};
use subgraph_mocks::{Fault, MockSubgraphs, SUBGRAPHS, Stats};

const ME: &str = "{ me { id } }";

fn fresh_client() -> reqwest::Client {
    // No pooled connections, bounded waits.
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

#[tokio::test]
async fn http_500_rate() {
    let mocks = MockSubgraphs::start("127.0.0.1:0").await.unwrap();
    let c = reqwest::Client::new();
    mocks.set_fault(
        "accounts",
        Fault {
            http_500_rate: 1.0,
            ..Fault::default()
        },
    );
    let (status, body) = post(&c, &mocks.url("accounts"), ME, json!({})).await;
    assert_eq!(status, 500);
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("500")
    );
    // Other subgraphs are unaffected.
    data(
        &c,
        &mocks.url("products"),
        "{ topProducts { upc } }",
        json!({}),
    )
    .await;

    // Deterministic: with 0.5, exactly every second request fails.
    mocks.set_fault(
        "accounts",
        Fault {
            http_500_rate: 0.5,
            ..Fault::default()
        },
    );
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(post(&c, &mocks.url("accounts"), ME, json!({})).await.0);
    }
    assert_eq!(statuses, [200, 500, 200, 500]);
    assert_eq!(mocks.stats("accounts").injected_http_500, 3);
    assert_eq!(mocks.stats("accounts").requests, 5);
}

#[tokio::test]
async fn graphql_error_rate() {
    let mocks = MockSubgraphs::start("127.0.0.1:0").await.unwrap();
    let c = reqwest::Client::new();
    mocks.set_fault(
        "reviews",
        Fault {
            graphql_error_rate: 1.0,
            ..Fault::default()
        },
    );
    let (status, body) = post(&c, &mocks.url("reviews"), "{ __typename }", json!({})).await;
    assert_eq!(status, 200);
    assert!(body["data"].is_null());
    assert!(body["errors"][0]["message"].is_string());
    assert_eq!(mocks.stats("reviews").injected_graphql_errors, 1);
    // A batch gets one error answer per operation.
    let batch = json!([{ "query": "{ __typename }" }, { "query": "{ __typename }" }]);
    let resp: Value = c
        .post(mocks.url("reviews"))
        .json(&batch)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resp.as_array().unwrap().len(), 2);
    assert!(resp[1]["errors"].is_array());
    mocks.set_fault("reviews", Fault::default());
    data(&c, &mocks.url("reviews"), "{ __typename }", json!({})).await;
}

#[tokio::test]
async fn latency_delays_but_answers() {
    let mocks = MockSubgraphs::start("127.0.0.1:0").await.unwrap();
    let c = reqwest::Client::new();
    mocks.set_fault("products", Fault::latency(100));
    let started = Instant::now();
    let d = data(
        &c,
        &mocks.url("products"),
        "{ topProducts(first: 1) { upc } }",
        json!({}),
    )
    .await;
    assert_eq!(d["topProducts"][0]["upc"], "1");
    // Only the guaranteed lower bound (sleeping never ends early).
    assert!(started.elapsed() >= Duration::from_millis(100));
}

#[tokio::test]
async fn down_in_separate_mode_refuses_and_recovers() {
    let mocks = MockSubgraphs::start_separate("127.0.0.1").await.unwrap();
    assert!(mocks.is_separate());
    let pooled = reqwest::Client::new();
    let url = mocks.url("inventory");
    let port = mocks.local_addr("inventory").port();
    // Open a keep-alive connection first.
    data(&pooled, &url, "{ __typename }", json!({})).await;

    mocks.apply_fault("inventory", Fault::down()).await;
    // New connections are refused at the TCP level.
    let err = tokio::net::TcpStream::connect(mocks.local_addr("inventory"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    let err = fresh_client()
        .post(&url)
        .json(&json!({"query": "{ __typename }"}))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    // The previously pooled connection was closed too: the request fails.
    assert!(
        pooled
            .post(&url)
            .json(&json!({"query": "{ __typename }"}))
            .send()
            .await
            .is_err()
    );
    // The others still answer.
    data(&fresh_client(), &mocks.url("accounts"), ME, json!({})).await;

    // Back up, on the same port.
    mocks.apply_fault("inventory", Fault::default()).await;
    assert_eq!(mocks.local_addr("inventory").port(), port);
    data(&fresh_client(), &url, "{ __typename }", json!({})).await;
    data(&pooled, &url, "{ __typename }", json!({})).await;

    // Through the control endpoint of another listener.
    let control = mocks.base_url("accounts");
    let resp = fresh_client()
        .post(format!("{control}/control/fault/inventory"))
        .json(&json!({"down": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        tokio::net::TcpStream::connect(mocks.local_addr("inventory"))
            .await
            .is_err()
    );
    let resp = fresh_client()
        .post(format!("{control}/control/fault/inventory"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    data(&fresh_client(), &url, "{ __typename }", json!({})).await;
    mocks.shutdown().await;
}

#[tokio::test]
async fn down_in_combined_mode_closes_the_connection() {
    let mocks = MockSubgraphs::start("127.0.0.1:0").await.unwrap();
    let c = fresh_client();
    mocks.set_fault("reviews", Fault::down());
    let err = c
        .post(mocks.url("reviews"))
        .json(&json!({"query": "{ __typename }"}))
        .send()
        .await
        .unwrap_err();
    assert!(!err.is_timeout(), "{err:?}");
    assert_eq!(mocks.stats("reviews").dropped, 1);
    // Same port, other path: fine.
    data(&c, &mocks.url("accounts"), ME, json!({})).await;
    mocks.set_fault("reviews", Fault::default());
    data(&c, &mocks.url("reviews"), "{ __typename }", json!({})).await;
}

#[tokio::test]
async fn control_endpoint_round_trip() {
    let mocks = MockSubgraphs::start("127.0.0.1:0").await.unwrap();
    let c = reqwest::Client::new();
    let base = mocks.base_url("products");

    let resp = c
        .post(format!("{base}/control/fault/products"))
        .json(&json!({"http_500_rate": 1.0, "latency_ms": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let expected = Fault {
        http_500_rate: 1.0,
        latency_ms: 1,
        ..Fault::default()
    };
    assert_eq!(resp.json::<Fault>().await.unwrap(), expected);
    assert_eq!(mocks.fault("products"), expected);
    let got: Fault = c
        .get(format!("{base}/control/fault/products"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got, expected);
    let all: Value = c
        .get(format!("{base}/control/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all["products"]["http_500_rate"], 1.0);
    assert_eq!(all["accounts"]["down"], false);

    assert_eq!(
        post(
            &c,
            &mocks.url("products"),
            "{ topProducts { upc } }",
            json!({})
        )
        .await
        .0,
        500
    );

    let stats: Value = c
        .get(format!("{base}/control/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys: Vec<&str> = stats
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, SUBGRAPHS);
    let products: Stats = serde_json::from_value(stats["products"].clone()).unwrap();
    assert_eq!(
        (
            products.requests,
            products.root_requests,
            products.injected_http_500
        ),
        (1, 1, 1)
    );

    let resp = c
        .post(format!("{base}/control/reset"))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    assert_eq!(mocks.stats("products"), Stats::default());
    // Reset keeps faults; an empty body clears them.
    assert_eq!(mocks.fault("products"), expected);
    let resp = c
        .post(format!("{base}/control/fault/products"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(mocks.fault("products"), Fault::default());
    data(
        &c,
        &mocks.url("products"),
        "{ topProducts { upc } }",
        json!({}),
    )
    .await;

    // `all`, errors.
    let resp = c
        .post(format!("{base}/control/fault/all"))
        .json(&json!({"latency_ms": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        SUBGRAPHS
            .iter()
            .all(|s| mocks.fault(s) == Fault::latency(2))
    );
    let resp = c
        .post(format!("{base}/control/fault/nope"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let resp = c
        .post(format!("{base}/control/fault/products"))
        .json(&json!({"bogus": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    mocks.clear_faults().await;
    assert!(SUBGRAPHS.iter().all(|s| mocks.fault(s) == Fault::default()));
}
