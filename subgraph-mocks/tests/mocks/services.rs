//! The REST orders service: routes, batch counters, faults and the gate, over real sockets.
//! (The gRPC service is exercised end to end through the gateway in `tests/sources.rs`.)

use std::time::Duration;

use serde_json::{Value, json};
use subgraph_mocks::{Fault, Gate, MockServices};

async fn get(client: &reqwest::Client, url: &str) -> (u16, String) {
    let r = client.get(url).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn orders_routes_and_counters() {
    let s = MockServices::start("127.0.0.1").await.unwrap();
    let c = reqwest::Client::new();
    let base = s.url("orders");

    let (status, body) = get(&c, &format!("{base}/users/1/orders?limit=1")).await;
    assert_eq!(status, 200);
    let list: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let newest = &subgraph_mocks::orders::orders_of("1")[0];
    assert_eq!(list[0]["id"], json!(newest.id));
    assert_eq!(list[0]["total"]["currency"], "EUR");

    let (status, _) = get(&c, &format!("{base}/orders/nope")).await;
    assert_eq!(status, 404);

    let (status, body) = get(&c, &format!("{base}/orders?userIds=1,2,3&limit=1")).await;
    assert_eq!(status, 200);
    let batch: Value = serde_json::from_str(&body).unwrap();
    let users: Vec<&str> = batch["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["userId"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["1", "2", "3"]);

    let stats = s.stats("orders");
    assert_eq!(
        (stats.requests, stats.root_requests, stats.entity_requests),
        (3, 2, 1)
    );
    assert_eq!(stats.representations, 3);
    let calls = s.calls("orders");
    assert_eq!(calls.get("GET /orders?userIds"), Some(&1));
    assert_eq!(calls.get("GET /users/{id}/orders"), Some(&1));

    let control: Value = c
        .get(format!("{base}/control/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(control["orders"]["requests"], 3);
    assert_eq!(control["calls"]["orders"]["GET /orders/{id}"], 1);
    s.shutdown().await;
}

#[tokio::test]
async fn orders_faults() {
    let s = MockServices::start("127.0.0.1").await.unwrap();
    let c = reqwest::Client::new();
    let url = format!("{}/users/1/orders", s.url("orders"));

    s.set_fault(
        "orders",
        Fault {
            http_500_rate: 1.0,
            ..Fault::default()
        },
    );
    assert_eq!(get(&c, &url).await.0, 500);

    s.set_fault(
        "orders",
        Fault {
            graphql_error_rate: 1.0,
            ..Fault::default()
        },
    );
    let (status, body) = get(&c, &url).await;
    assert_eq!(status, 200);
    assert!(serde_json::from_str::<Value>(&body).is_err(), "{body}");

    s.set_fault("orders", Fault::down());
    assert!(
        c.get(&url).send().await.is_err(),
        "the connection is closed"
    );

    // Faults set through the control route apply too; an empty body clears.
    let r = c
        .post(format!("{}/control/fault/orders", s.url("orders")))
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(get(&c, &url).await.0, 200);
    let stats = s.stats("orders");
    assert_eq!(
        (
            stats.injected_http_500,
            stats.injected_graphql_errors,
            stats.dropped
        ),
        (1, 1, 1)
    );
    s.shutdown().await;
}

#[tokio::test]
async fn the_gate_holds_calls_until_all_arrived() {
    let s = MockServices::start("127.0.0.1").await.unwrap();
    let c = reqwest::Client::new();
    let gate = Gate::new(2, Duration::from_secs(20));
    s.set_gate("orders", Some(gate.clone()));
    let (url_a, url_b) = (
        format!("{}/orders/1001", s.url("orders")),
        format!("{}/orders/1002", s.url("orders")),
    );
    let ((sa, _), (sb, _)) = tokio::join!(get(&c, &url_a), get(&c, &url_b));
    assert_eq!((sa, sb), (200, 200));
    assert_eq!(gate.arrived(), 2);

    // Alone at a gate for two, a call gives up when the gate times out.
    s.set_gate("orders", Some(Gate::new(2, Duration::from_millis(50))));
    let (status, body) = get(&c, &format!("{}/orders/1001", s.url("orders"))).await;
    assert_eq!(status, 504, "{body}");
    s.shutdown().await;
}

/// Reads the SSE body until it holds `needle` (bounded by the test's timeout).
async fn read_until(body: &mut reqwest::Response, seen: &mut String, needle: &str) {
    while !seen.contains(needle) {
        let chunk = tokio::time::timeout(Duration::from_secs(10), body.chunk())
            .await
            .expect("an event in time")
            .unwrap()
            .expect("the stream goes on");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test]
async fn order_events_stream_over_sse_with_http_controls() {
    let s = MockServices::start("127.0.0.1").await.unwrap();
    let c = reqwest::Client::new();
    let base = s.url("orders");
    let mut events = c
        .get(format!("{base}/users/2/order-events"))
        .header("x-probe", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    let mut seen = String::new();
    read_until(&mut events, &mut seen, ": open").await;

    let control = |command: Value| {
        let c = c.clone();
        let url = format!("{base}/control/subscriptions/orders");
        async move {
            let r = c.post(url).body(command.to_string()).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let order = &subgraph_mocks::orders::orders_of("2")[0].id;
    assert_eq!(
        control(json!({ "emit": order })).await,
        (200, r#"{"delivered":1}"#.to_string())
    );
    read_until(&mut events, &mut seen, &format!("\"id\":\"{order}\"")).await;
    control(json!({ "fail": "hiccup" })).await;
    read_until(
        &mut events,
        &mut seen,
        "event: error\ndata: {\"message\":\"hiccup\"}",
    )
    .await;
    assert_eq!(control(json!({ "emit": "nope" })).await.0, 404);
    assert_eq!(control(json!({ "bogus": 1 })).await.0, 400);

    let status: Value = c
        .get(format!("{base}/control/subscriptions/orders"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["subscribers"], 1);
    assert_eq!(status["lastHeaders"]["x-probe"], "1");

    control(json!({ "complete": true })).await;
    read_until(&mut events, &mut seen, "event: complete").await;
    assert!(events.chunk().await.unwrap().is_none(), "the body ends");
    assert!(
        s.wait_for_streams("orders", 0, Duration::from_secs(10))
            .await
    );
    s.shutdown().await;
}
