//! Streaming, end to end over real sockets: subscriptions over WebSocket
//! (`graphql-transport-ws`), SSE and multipart, and `@defer` incremental delivery.
//! The example graph's `reviews` subgraph streams `reviewAdded` (async-graphql's own
//! WebSocket server), every event is completed through the plan (accounts, products,
//! inventory, and the gRPC notifications source), and the edge speaks the protocol
//! with its close codes, auth in `connection_init`, limits and slow-client handling.

use std::time::Duration;

use e2e_tests::ws::{Received, WsClient};
use e2e_tests::{client, post_json, workspace_root};
use gateway::config::Config;
use gateway::policy::config::{ReconnectConfig, SubscriptionTransport, SubscriptionsConfig};
use gateway::server::reload::{self, Origin, Outcome};
use gateway::server::{self, GatewaySpec, RunningGateway};
use serde_json::{Value, json};
use subgraph_mocks::{MockServices, MockSubgraphs};

const WAIT: Duration = Duration::from_secs(10);

/// An event that needs four subgraphs and the gRPC source.
const JOINED: &str = "subscription { reviewAdded { id body author { id name username notifications(first: 1) { title } } product { upc name price inStock } } }";

struct Env {
    mocks: MockSubgraphs,
    services: MockServices,
    gateway: RunningGateway,
}

impl Env {
    async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    async fn start_with(tweak: impl FnOnce(&mut GatewaySpec)) -> Self {
        let mocks = MockSubgraphs::start("127.0.0.1:0")
            .await
            .expect("start subgraphs");
        let services = MockServices::start("127.0.0.1")
            .await
            .expect("start services");
        let mut config =
            Config::load(&workspace_root().join("schemas/gateway.yaml")).expect("example config");
        for subgraph in &mut config.subgraphs {
            subgraph.url = if subgraph_mocks::SERVICES.contains(&subgraph.name.as_str()) {
                Some(services.url(&subgraph.name))
            } else {
                Some(mocks.url(&subgraph.name))
            };
        }
        let mut spec = GatewaySpec::from_config(&config)
            .await
            .expect("compose the example graph");
        spec.listen = "127.0.0.1:0".into();
        tweak(&mut spec);
        let gateway = server::start(&spec).await.expect("start gateway");
        Env {
            mocks,
            services,
            gateway,
        }
    }

    fn url(&self) -> String {
        self.gateway.url()
    }

    async fn subscribed(&self, n: usize) {
        assert!(
            self.mocks.wait_for_subscribers(n, WAIT).await,
            "expected {n} upstream subscriptions, have {}",
            self.mocks.subscribers()
        );
    }

    /// Wait until the gateway runs `n` streams for `client` (its own count).
    async fn active(&self, client: &str, n: usize) {
        let line = format!("gateway_subscriptions_active{{client=\"{client}\"}} {n}\n");
        for _ in 0..200 {
            if e2e_tests::metrics_text(self.gateway.addr)
                .await
                .contains(&line)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{client} never ran {n} streams");
    }

    async fn shutdown(self) {
        self.gateway.shutdown().await;
        self.mocks.shutdown().await;
        self.services.shutdown().await;
    }
}

/// Read `next` messages of operation "1" until the review with `id` arrives.
async fn until_review(ws: &mut WsClient, id: &str) -> Value {
    loop {
        let event = next_payload(&ws.message().await, "1");
        let review = &event["data"]["reviewAdded"];
        if review["id"] == id {
            return review.clone();
        }
    }
}

/// Operation `id` ends: one event with only an error of this code, then `complete`;
/// gives the event.
async fn ends_with_error(ws: &mut WsClient, id: &str, code: &str) -> Value {
    let event = next_payload(&ws.message().await, id);
    assert_eq!(event["data"], Value::Null, "{event}");
    assert_eq!(event["errors"][0]["extensions"]["code"], code, "{event}");
    assert_eq!(ws.message().await, json!({"id": id, "type": "complete"}));
    event
}

/// The `next` payload of message `m` for operation `id`.
fn next_payload(m: &Value, id: &str) -> Value {
    assert_eq!(m["type"], "next", "{m}");
    assert_eq!(m["id"], id, "{m}");
    m["payload"].clone()
}

#[tokio::test]
async fn events_are_completed_through_the_plan_across_subgraphs_and_grpc() {
    let env = Env::start().await;
    let mut ws = WsClient::init(&env.url(), json!({})).await;
    ws.subscribe("1", JOINED).await;
    env.subscribed(1).await;
    assert_eq!(env.mocks.emit_review("1"), 1);
    let event = next_payload(&ws.message().await, "1");
    assert!(event.get("errors").is_none(), "{event}");
    let review = &event["data"]["reviewAdded"];
    assert_eq!(review["id"], "1");
    // The same review through an ordinary query: the event must be identical.
    let author = review["author"]["id"]
        .as_str()
        .expect("author id")
        .to_string();
    let query = "query($id: ID!) { user(id: $id) { reviews { id body author { id name username notifications(first: 1) { title } } product { upc name price inStock } } } }";
    let reply = post_json(
        &client(),
        &env.url(),
        &json!({"query": query, "variables": {"id": author}}),
    )
    .await;
    let reviews = reply.body["data"]["user"]["reviews"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let expected = reviews
        .iter()
        .find(|r| r["id"] == "1")
        .expect("review 1 among its author's reviews");
    assert_eq!(review, expected);
    assert!(review["author"]["notifications"][0]["title"].is_string());
    assert!(review["product"]["inStock"].is_boolean());

    // A second event, then the client completes: the upstream subscription ends too.
    env.mocks.emit_review("2");
    let event = next_payload(&ws.message().await, "1");
    assert_eq!(event["data"]["reviewAdded"]["id"], "2");
    ws.send(json!({"id": "1", "type": "complete"})).await;
    env.subscribed(0).await;
    // The id may be used again once completed.
    ws.subscribe("1", "subscription { reviewAdded { id } }")
        .await;
    env.subscribed(1).await;
    env.mocks.emit_review("3");
    let event = next_payload(&ws.message().await, "1");
    assert_eq!(event, json!({"data": {"reviewAdded": {"id": "3"}}}));
    env.shutdown().await;
}

#[tokio::test]
async fn upstream_errors_complete_and_disconnects_reach_the_client() {
    let env = Env::start().await;
    let mut ws = WsClient::init(&env.url(), json!({})).await;
    ws.subscribe("a", "subscription { reviewAdded { id } }")
        .await;
    env.subscribed(1).await;

    // An event with only an error: the stream goes on.
    env.mocks.fail_subscriptions("boom");
    let event = next_payload(&ws.message().await, "a");
    assert_eq!(event["data"], Value::Null, "{event}");
    assert_eq!(event["errors"][0]["message"], "boom", "{event}");
    assert_eq!(event["errors"][0]["extensions"]["service"], "reviews");
    env.mocks.emit_review("4");
    let event = next_payload(&ws.message().await, "a");
    assert_eq!(event["data"]["reviewAdded"]["id"], "4");

    // The subgraph completes: so does the client's subscription.
    env.mocks.complete_subscriptions();
    assert_eq!(ws.message().await, json!({"id": "a", "type": "complete"}));

    // The subgraph drops the connection: one last event says why, then `complete`.
    ws.subscribe("b", "subscription { reviewAdded { id } }")
        .await;
    env.subscribed(1).await;
    env.mocks.disconnect_subscriptions();
    let event = ends_with_error(&mut ws, "b", "UPSTREAM_UNAVAILABLE").await;
    assert_eq!(event["errors"][0]["path"], json!(["reviewAdded"]));

    // The connection itself is still fine.
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.message().await, json!({"type": "pong"}));
    env.shutdown().await;
}

#[tokio::test]
async fn identical_subscriptions_share_one_upstream_subscription() {
    let env = Env::start().await;
    let query = "subscription { reviewAdded { id product { name } } }";
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut ws = WsClient::init(&env.url(), json!({})).await;
        ws.subscribe("1", query).await;
        clients.push(ws);
    }
    // Another selection is another upstream subscription.
    let mut other = WsClient::init(&env.url(), json!({})).await;
    other
        .subscribe("1", "subscription { reviewAdded { id } }")
        .await;
    env.subscribed(2).await;
    // Subscriptions attach to their feed asynchronously: emit until every client has
    // seen an event, then check that one more event reaches each of them.
    let mut synced = vec![false; clients.len()];
    for _ in 0..100 {
        env.mocks.emit_review("15");
        for (ws, synced) in clients.iter_mut().zip(&mut synced) {
            if !*synced {
                *synced = ws.try_message(Duration::from_millis(100)).await.is_some();
            }
        }
        if synced.iter().all(|s| *s) {
            break;
        }
    }
    assert!(synced.iter().all(|s| *s), "every client gets events");
    env.mocks.emit_review("16");
    for ws in &mut clients {
        let review = until_review(ws, "16").await;
        assert!(review["product"]["name"].is_string(), "{review}");
    }
    assert_eq!(until_review(&mut other, "16").await, json!({"id": "16"}));
    // Leaving one by one: the shared upstream lives until its last subscriber leaves.
    let last = clients.pop().expect("three clients");
    drop(clients);
    env.mocks.emit_review("17");
    let mut last = last;
    until_review(&mut last, "17").await;
    env.subscribed(2).await;
    drop(last);
    env.subscribed(1).await;
    drop(other);
    env.subscribed(0).await;
    env.shutdown().await;
}

#[tokio::test]
async fn queries_mutations_and_request_errors_over_websocket() {
    let env = Env::start().await;
    let mut ws = WsClient::init(&env.url(), json!({})).await;
    ws.subscribe("q", "{ topProducts(first: 1) { upc name } }")
        .await;
    let answer = next_payload(&ws.message().await, "q");
    assert_eq!(answer["data"]["topProducts"][0]["upc"], "1", "{answer}");
    assert_eq!(ws.message().await, json!({"id": "q", "type": "complete"}));

    // Invalid operations get an `error` message for their id; the connection stays.
    ws.subscribe("bad", "subscription { reviewAdded { nope } }")
        .await;
    let error = ws.message().await;
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["id"], "bad");
    assert_eq!(
        error["payload"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
    ws.subscribe("parse", "subscription {").await;
    let error = ws.message().await;
    assert_eq!(
        error["payload"][0]["extensions"]["code"],
        "GRAPHQL_PARSE_FAILED"
    );
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.message().await, json!({"type": "pong"}));
    env.shutdown().await;
}

#[tokio::test]
async fn protocol_violations_close_with_the_protocol_codes() {
    let env = Env::start_with(|spec| {
        spec.edge.streaming.init_timeout = Duration::from_millis(300);
        spec.edge.streaming.idle_timeout = Duration::from_millis(500);
    })
    .await;
    let url = env.url();

    let mut ws = WsClient::connect(&url).await;
    ws.subscribe("1", "{ __typename }").await;
    assert_eq!(
        ws.recv().await,
        Received::Closed(4401, "Unauthorized".into())
    );

    let mut ws = WsClient::init(&url, json!({})).await;
    ws.send(json!({"type": "connection_init"})).await;
    assert_eq!(
        ws.recv().await,
        Received::Closed(4429, "Too many initialisation requests".into())
    );

    let mut ws = WsClient::init(&url, json!({})).await;
    ws.subscribe("same", "subscription { reviewAdded { id } }")
        .await;
    ws.subscribe("same", "subscription { reviewAdded { id } }")
        .await;
    assert_eq!(
        ws.recv().await,
        Received::Closed(4409, "Subscriber for same already exists".into())
    );

    for garbage in [
        "not json".to_string(),
        json!({"type": "what"}).to_string(),
        json!({"type": "connection_init", "payload": 5}).to_string(),
    ] {
        let mut ws = WsClient::connect(&url).await;
        ws.send_text(garbage.clone()).await;
        match ws.recv().await {
            Received::Closed(4400, _) => {}
            other => panic!("{garbage}: {other:?}"),
        }
    }
    let mut ws = WsClient::init(&url, json!({})).await;
    ws.send(json!({"type": "subscribe", "id": "x"})).await;
    assert!(matches!(ws.recv().await, Received::Closed(4400, _)));

    let mut ws = WsClient::connect(&url).await;
    assert_eq!(
        ws.recv().await,
        Received::Closed(4408, "Connection initialisation timeout".into())
    );

    // A client that does not speak the protocol (one that asks for another fails the
    // handshake already: the server names no subprotocol).
    let mut ws = WsClient::connect_with(&url, "", &[]).await;
    assert!(matches!(ws.recv().await, Received::Closed(4406, _)));
    // Every upstream subscription the closed connections opened is gone.
    env.subscribed(0).await;

    // A connection without operations is closed once idle; one with a running
    // subscription is not, and becomes idle when it ends.
    let mut ws = WsClient::init(&url, json!({})).await;
    assert!(matches!(ws.recv().await, Received::Closed(1000, r) if r.starts_with("idle")));
    let mut ws = WsClient::init(&url, json!({})).await;
    ws.subscribe("s", "subscription { reviewAdded { id } }")
        .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.message().await, json!({"type": "pong"}));
    ws.send(json!({"id": "s", "type": "complete"})).await;
    assert!(matches!(ws.recv().await, Received::Closed(1000, r) if r.starts_with("idle")));
    env.shutdown().await;
}

#[tokio::test]
async fn credentials_in_connection_init_and_bff_views() {
    let env = Env::start().await;
    let partner = format!("http://{}/bff/partner/graphql", env.gateway.addr);

    // The partner BFF wants an API key.
    let mut ws = WsClient::connect(&partner).await;
    ws.send(json!({"type": "connection_init"})).await;
    match ws.recv().await {
        Received::Closed(4403, reason) => assert!(reason.contains("API key"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let mut ws = WsClient::connect(&partner).await;
    ws.send(json!({"type": "connection_init", "payload": {"x-api-key": "wrong"}}))
        .await;
    assert!(matches!(ws.recv().await, Received::Closed(4403, _)));

    // With the key, in the payload as clients send it; the view's hidden fields stay hidden.
    let mut ws = WsClient::init(&partner, json!({"headers": {"x-api-key": "demo-pro-key"}})).await;
    ws.subscribe(
        "hidden",
        "subscription { reviewAdded { author { username } } }",
    )
    .await;
    let error = ws.message().await;
    assert_eq!(error["type"], "error", "{error}");
    ws.subscribe("ok", "subscription { reviewAdded { id author { name } } }")
        .await;
    env.subscribed(1).await;
    env.mocks.emit_review("5");
    let event = next_payload(&ws.message().await, "ok");
    assert_eq!(event["data"]["reviewAdded"]["id"], "5", "{event}");

    // The key may also come on the upgrade request itself.
    let mut ws = WsClient::connect_with(
        &partner,
        "graphql-transport-ws",
        &[("x-api-key", "demo-pro-key")],
    )
    .await;
    ws.send(json!({"type": "connection_init"})).await;
    assert_eq!(ws.message().await, json!({"type": "connection_ack"}));
    env.shutdown().await;
}

#[tokio::test]
async fn limits_per_connection_and_slow_clients() {
    let env = Env::start_with(|spec| {
        spec.edge.streaming.max_subscriptions = 2;
        spec.edge.streaming.max_buffered_messages = 4;
        spec.edge.streaming.write_timeout = Duration::from_millis(500);
    })
    .await;
    let url = env.url();
    let mut ws = WsClient::init(&url, json!({})).await;
    ws.subscribe("1", "subscription { reviewAdded { id } }")
        .await;
    ws.subscribe("2", "subscription { reviewAdded { id } }")
        .await;
    ws.subscribe("3", "subscription { reviewAdded { id } }")
        .await;
    let refused = ws.message().await;
    assert_eq!(refused["id"], "3", "{refused}");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"],
        "SUBSCRIPTION_LIMIT"
    );
    // The two running ones are identical: they share one upstream subscription.
    env.subscribed(1).await;
    drop(ws);
    env.subscribed(0).await;

    // A client that stops reading is dropped; a client that reads keeps every event.
    let mut slow = WsClient::init(&url, json!({})).await;
    slow.subscribe("s", "subscription { reviewAdded { id body } }")
        .await;
    let mut fast = WsClient::init(&url, json!({})).await;
    fast.subscribe("f", "subscription { reviewAdded { id } }")
        .await;
    env.subscribed(2).await;
    let _unread = slow.into_inner();
    let mut rounds = 0;
    // In rounds smaller than the buffer, each read in full by the fast client, until
    // the slow client's socket and buffer are full.
    while env.mocks.subscribers() == 2 && rounds < 20_000 {
        for _ in 0..3 {
            env.mocks.emit_review("1");
        }
        for _ in 0..3 {
            let event = next_payload(&fast.message().await, "f");
            assert_eq!(event["data"]["reviewAdded"]["id"], "1");
        }
        rounds += 1;
    }
    assert!(rounds < 20_000, "the slow client was never dropped");
    env.subscribed(1).await;
    env.mocks.emit_review("6");
    let event = next_payload(&fast.message().await, "f");
    assert_eq!(event["data"]["reviewAdded"]["id"], "6");
    let metrics = e2e_tests::metrics_text(env.gateway.addr).await;
    assert!(
        metrics.contains("gateway_subscription_events_sent_total{client=\"unified\"}"),
        "{metrics}"
    );
    env.shutdown().await;
}

#[tokio::test]
async fn a_bff_sets_its_own_stream_limits() {
    let env = Env::start_with(|spec| {
        for bff in spec.bffs.iter_mut().filter(|b| b.name == "partner") {
            bff.streaming.max_subscriptions = Some(1);
            bff.streaming.max_streams_per_principal = Some(1);
            bff.streaming.init_timeout = Some(Duration::from_millis(200));
        }
    })
    .await;
    let partner = format!("http://{}/bff/partner/graphql", env.gateway.addr);
    let key = json!({"headers": {"x-api-key": "demo-pro-key"}});
    let refused = |message: &Value| message["payload"][0]["extensions"]["code"].clone();

    // One operation per connection on this BFF.
    let mut first = WsClient::init(&partner, key.clone()).await;
    first
        .subscribe("1", "subscription { reviewAdded { id } }")
        .await;
    first
        .subscribe("2", "subscription { reviewAdded { id } }")
        .await;
    let message = first.message().await;
    assert_eq!(message["id"], "2", "{message}");
    assert_eq!(refused(&message), "SUBSCRIPTION_LIMIT", "{message}");
    env.subscribed(1).await;

    // One stream per client on this BFF, over all its connections.
    let mut second = WsClient::init(&partner, key.clone()).await;
    second
        .subscribe("3", "subscription { reviewAdded { id } }")
        .await;
    let message = second.message().await;
    assert_eq!(refused(&message), "SUBSCRIPTION_LIMIT", "{message}");

    // The unified endpoint keeps the gateway's limits for the same client.
    let mut unified = WsClient::init(&env.url(), key).await;
    unified
        .subscribe("4", "subscription { reviewAdded { id } }")
        .await;
    unified
        .subscribe("5", "subscription { reviewAdded { id } }")
        .await;
    env.active("unified", 2).await;
    env.mocks.emit_review("1");
    let mut ids = Vec::new();
    for _ in 0..2 {
        let got = unified.message().await;
        assert_eq!(got["type"], "next", "{got}");
        ids.push(got["id"].as_str().unwrap_or("").to_string());
    }
    ids.sort();
    assert_eq!(ids, ["4", "5"]);

    // And its own init timeout.
    let mut late = WsClient::connect(&partner).await;
    assert_eq!(
        late.recv().await,
        Received::Closed(4408, "Connection initialisation timeout".into())
    );
    env.shutdown().await;
}

/// The npm `graphql-ws` client, as applications use it.
#[tokio::test]
async fn the_graphql_ws_npm_client_subscribes_queries_and_authenticates() {
    use e2e_tests::node::NodeClient;
    let env = Env::start().await;
    let ws_url = env.url().replacen("http://", "ws://", 1);
    let mut node = NodeClient::start(
        "graphql-client.mjs",
        &json!({
            "transport": "ws",
            "url": ws_url,
            "operations": [
                {"query": JOINED, "take": 2},
                {"query": "query($n: Int) { topProducts(first: $n) { upc } }", "variables": {"n": 2}},
            ],
        }),
    );
    let mut query_lines = Vec::new();
    // The query answers at once: one `next`, then `complete`.
    while query_lines.len() < 2 {
        let line = node.line().await;
        assert_eq!(line["op"], 1, "{line}");
        query_lines.push(line);
    }
    assert_eq!(
        query_lines[0]["next"]["data"],
        json!({"topProducts": [{"upc": "1"}, {"upc": "2"}]})
    );
    assert_eq!(query_lines[1]["complete"], true);
    env.subscribed(1).await;
    for id in ["7", "8"] {
        env.mocks.emit_review(id);
        let line = node.line().await;
        let review = &line["next"]["data"]["reviewAdded"];
        assert_eq!(review["id"], id, "{line}");
        assert!(review["author"]["name"].is_string(), "{line}");
        assert!(review["product"]["inStock"].is_boolean(), "{line}");
    }
    assert_eq!(node.line().await["unsubscribed"], true);
    assert_eq!(node.finish().await, Some(0));
    // Unsubscribing in the client ended the upstream subscription.
    env.subscribed(0).await;

    // Credentials in `connectionParams`, on the partner BFF.
    let partner = format!("ws://{}/bff/partner/graphql", env.gateway.addr);
    let mut node = NodeClient::start(
        "graphql-client.mjs",
        &json!({
            "transport": "ws",
            "url": partner,
            "connectionParams": {"x-api-key": "demo-pro-key"},
            "operations": [{"query": "subscription { reviewAdded { id } }", "take": 1}],
        }),
    );
    env.subscribed(1).await;
    env.mocks.emit_review("9");
    let line = node.line().await;
    assert_eq!(line["next"]["data"]["reviewAdded"]["id"], "9", "{line}");
    assert_eq!(node.line().await["unsubscribed"], true);
    assert_eq!(node.finish().await, Some(0));

    let mut node = NodeClient::start(
        "graphql-client.mjs",
        &json!({
            "transport": "ws",
            "url": partner,
            "connectionParams": {"x-api-key": "not-a-key"},
            "operations": [{"query": "subscription { reviewAdded { id } }"}],
        }),
    );
    let line = node.line().await;
    assert_eq!(line["error"]["code"], 4403, "{line}");
    assert_eq!(node.finish().await, Some(0));
    env.shutdown().await;
}

/// The npm `graphql-sse` client (distinct connections mode).
#[tokio::test]
async fn the_graphql_sse_npm_client_streams_events_and_queries() {
    use e2e_tests::node::NodeClient;
    let env = Env::start().await;
    let mut node = NodeClient::start(
        "graphql-client.mjs",
        &json!({
            "transport": "sse",
            "url": env.url(),
            "operations": [
                {"query": JOINED, "take": 2},
                {"query": "{ topProducts(first: 1) { upc name } }"},
                {"query": "subscription { reviewAdded { nope } }"},
            ],
        }),
    );
    let mut others = Vec::new();
    while others.len() < 4 {
        let line = node.line().await;
        assert_ne!(line["op"], 0, "{line}");
        others.push(line);
    }
    let of = |op: u64| -> Vec<&Value> { others.iter().filter(|l| l["op"] == op).collect() };
    assert_eq!(of(1)[0]["next"]["data"]["topProducts"][0]["upc"], "1");
    assert_eq!(of(1)[1]["complete"], true);
    // Request errors come as an event, then the stream completes (as graphql-sse does).
    assert_eq!(
        of(2)[0]["next"]["errors"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
    assert_eq!(of(2)[1]["complete"], true);
    env.subscribed(1).await;
    for id in ["10", "11"] {
        env.mocks.emit_review(id);
        let line = node.line().await;
        let review = &line["next"]["data"]["reviewAdded"];
        assert_eq!(review["id"], id, "{line}");
        assert!(review["author"]["notifications"].is_array(), "{line}");
    }
    assert_eq!(node.line().await["unsubscribed"], true);
    assert_eq!(node.finish().await, Some(0));
    env.subscribed(0).await;

    // The partner BFF checks the API key of the stream's request like any request.
    let partner = format!("http://{}/bff/partner/graphql", env.gateway.addr);
    let mut node = NodeClient::start(
        "graphql-client.mjs",
        &json!({
            "transport": "sse",
            "url": partner,
            "headers": {"x-api-key": "demo-pro-key"},
            "operations": [{"query": "subscription { reviewAdded { id } }", "take": 1}],
        }),
    );
    env.subscribed(1).await;
    env.mocks.emit_review("12");
    let line = node.line().await;
    assert_eq!(line["next"]["data"]["reviewAdded"]["id"], "12", "{line}");
    assert_eq!(node.finish().await, Some(0));
    let mut node = NodeClient::start(
        "graphql-client.mjs",
        &json!({
            "transport": "sse","url": partner, "operations": [{"query": "subscription { reviewAdded { id } }"}]}),
    );
    let line = node.line().await;
    assert_eq!(line["error"]["status"], 401, "{line}");
    assert_eq!(node.finish().await, Some(0));
    env.shutdown().await;
}

/// Reads a streamed body chunk by chunk.
struct Body(reqwest::Response, String);

impl Body {
    /// Read until `needle` appears in what was not consumed yet; consume through it.
    async fn until(&mut self, needle: &str) -> String {
        loop {
            if let Some(at) = self.1.find(needle) {
                let taken: String = self.1.drain(..at + needle.len()).collect();
                return taken;
            }
            let chunk = tokio::time::timeout(WAIT, self.0.chunk())
                .await
                .expect("a chunk in time")
                .expect("read the body");
            match chunk {
                Some(bytes) => self.1.push_str(&String::from_utf8_lossy(&bytes)),
                None => panic!("the body ended before {needle:?}; rest: {:?}", self.1),
            }
        }
    }

    async fn end(mut self) -> String {
        while let Some(bytes) = tokio::time::timeout(WAIT, self.0.chunk())
            .await
            .expect("the end in time")
            .expect("read the body")
        {
            self.1.push_str(&String::from_utf8_lossy(&bytes));
        }
        self.1
    }
}

#[tokio::test]
async fn multipart_subscriptions_with_heartbeats() {
    let env = Env::start_with(|spec| {
        spec.edge.streaming.keepalive = Duration::from_millis(200);
    })
    .await;
    let response = client()
        .post(env.url())
        .header(
            "accept",
            "multipart/mixed;boundary=\"graphql\";subscriptionSpec=\"1.0\", application/json",
        )
        .json(&json!({"query": "subscription { reviewAdded { id product { name } } }"}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap_or("")
        .to_string();
    assert!(
        content_type.starts_with("multipart/mixed"),
        "{content_type}"
    );
    assert!(
        content_type.contains("subscriptionSpec=\"1.0\""),
        "{content_type}"
    );
    let mut body = Body(response, String::new());
    env.subscribed(1).await;
    // An idle stream carries `{}` heartbeat parts.
    body.until("\r\n\r\n{}").await;
    env.mocks.emit_review("13");
    body.until("{\"payload\":").await;
    let part = body.until("\r\n--graphql").await;
    // The part is `{"payload":<response>}`: what is left after the prefix, minus `}`.
    let inner = part
        .strip_suffix("\r\n--graphql")
        .and_then(|p| p.strip_suffix('}'))
        .expect("a whole part");
    let payload: Value = serde_json::from_str(inner).expect("a JSON payload");
    assert_eq!(payload["data"]["reviewAdded"]["id"], "13", "{payload}");
    assert!(payload["data"]["reviewAdded"]["product"]["name"].is_string());
    env.mocks.complete_subscriptions();
    let rest = body.end().await;
    // Each part is followed by the next delimiter at once; the last one closes.
    assert!(
        format!("{part}{rest}").ends_with("}\r\n--graphql--\r\n"),
        "{rest:?}"
    );

    // SSE by hand: the stream opens at once and ends with `complete`.
    let response = client()
        .get(format!(
            "{}?query={}",
            env.url(),
            "subscription%20%7B%20reviewAdded%20%7B%20id%20%7D%20%7D"
        ))
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("request");
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    let mut body = Body(response, String::new());
    body.until(":\n\n").await;
    env.subscribed(1).await;
    env.mocks.emit_review("14");
    let event = body.until("\n\n").await;
    assert_eq!(
        event,
        "event: next\ndata: {\"data\":{\"reviewAdded\":{\"id\":\"14\"}}}\n\n"
    );
    env.mocks.complete_subscriptions();
    assert!(body.end().await.ends_with("event: complete\ndata:\n\n"));

    // Over plain JSON a subscription is still refused, with a clear error.
    let reply = post_json(
        &client(),
        &env.url(),
        &json!({"query": "subscription { reviewAdded { id } }"}),
    )
    .await;
    assert_eq!(
        reply.body["errors"][0]["extensions"]["code"], "OPERATION_NOT_SUPPORTED",
        "{reply:?}"
    );
    env.shutdown().await;
}

/// The benchmark query (same fragments) with both top-level `reviews` lists deferred.
fn deferred_benchmark_query() -> String {
    let benchmark = e2e_tests::benchmark_query();
    let fragments = &benchmark[..benchmark.find("query TestQuery").expect("the operation")];
    format!(
        "{fragments}query TestQuery {{
  users {{
    ...User
    ... @defer(label: \"userReviews\") {{
      reviews {{
        ...Review
        product {{
          ...Product
          reviews {{ ...Review author {{ ...User reviews {{ ...Review product {{ ...Product }} }} }} }}
        }}
      }}
    }}
  }}
  topProducts {{
    ...Product
    ... @defer(label: \"productReviews\") {{
      reviews {{ ...Review author {{ ...User reviews {{ ...Review product {{ ...Product }} }} }} }}
    }}
  }}
}}"
    )
}

/// The JSON parts of a multipart body.
fn parts(body: &str) -> Vec<Value> {
    body.split("\r\n--graphql")
        .filter_map(|part| part.split_once("\r\n\r\n").map(|(_, json)| json))
        .map(|json| serde_json::from_str(json).expect("a JSON part"))
        .collect()
}

/// Merge `patch` into `target` (objects key by key).
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// Apply incremental payloads to the first one's data; checks `hasNext` along the way.
fn assemble(payloads: &[Value]) -> Value {
    let mut data = payloads[0]["data"].clone();
    assert_eq!(payloads[0]["hasNext"], true, "{}", payloads[0]);
    for (i, payload) in payloads.iter().enumerate().skip(1) {
        assert_eq!(payload["hasNext"], i + 1 < payloads.len(), "{payload}");
        for item in payload["incremental"].as_array().into_iter().flatten() {
            let mut at = &mut data;
            for step in item["path"].as_array().expect("a path") {
                at = match step {
                    Value::String(k) => &mut at[k.as_str()],
                    Value::Number(n) => &mut at[n.as_u64().expect("an index") as usize],
                    other => panic!("bad path step {other}"),
                };
            }
            merge(at, &item["data"]);
        }
    }
    data
}

#[tokio::test]
async fn defer_delivers_the_primary_part_first_and_the_whole_adds_up() {
    let env = Env::start().await;
    let query = deferred_benchmark_query();
    assert!(query.contains("@defer"), "{query}");
    let expected = subgraph_mocks::reference::benchmark_response();

    // A client without incremental delivery gets the one whole response.
    let reply = post_json(&client(), &env.url(), &json!({"query": query})).await;
    assert_eq!(reply.body, expected, "whole response");

    // Hold the deferred `reviews` fetches until the primary part has arrived: the
    // gate opens only when this test, having read it, calls `reviews` itself.
    let gate = subgraph_mocks::Gate::new(2, WAIT);
    env.mocks.set_gate("reviews", Some(gate.clone()));
    let response = client()
        .post(env.url())
        .header(
            "accept",
            "multipart/mixed;deferSpec=20220824, application/json",
        )
        .json(&json!({"query": query}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "multipart/mixed;boundary=\"graphql\";deferSpec=20220824"
    );
    let mut body = Body(response, String::new());
    let first = body.until("\r\n\r\n").await;
    assert!(first.starts_with("\r\n--graphql\r\n"), "{first:?}");
    let primary = body.until("\r\n--graphql").await;
    let primary: Value =
        serde_json::from_str(primary.trim_end_matches("\r\n--graphql")).expect("the primary part");
    assert_eq!(primary["hasNext"], true);
    assert!(
        primary["data"]["topProducts"][0]["name"].is_string(),
        "{primary}"
    );
    assert!(
        primary["data"]["topProducts"][0].get("reviews").is_none(),
        "{primary}"
    );
    assert!(
        primary["data"]["users"][0].get("reviews").is_none(),
        "{primary}"
    );
    // The deferred fetch is waiting at the gate: the primary part did not wait for it.
    assert_eq!(gate.arrived(), 1);
    let opened = post_json(
        &client(),
        &env.mocks.url("reviews"),
        &json!({"query": "{ __typename }"}),
    )
    .await;
    assert_eq!(opened.status, 200);
    let rest = body.end().await;
    assert!(rest.ends_with("\r\n--graphql--\r\n"), "{rest:?}");
    let mut payloads = vec![primary];
    payloads.extend(parts(&format!("\r\n--graphql{rest}")));
    let labels: Vec<&Value> = payloads
        .iter()
        .flat_map(|p| p["incremental"].as_array().into_iter().flatten())
        .map(|i| &i["label"])
        .collect();
    assert!(labels.contains(&&json!("userReviews")), "{payloads:?}");
    assert!(labels.contains(&&json!("productReviews")), "{payloads:?}");
    assert_eq!(json!({"data": assemble(&payloads)}), expected);
    env.mocks.set_gate("reviews", None);

    // The same over SSE: payloads as `next` events.
    let response = client()
        .post(env.url())
        .header("accept", "text/event-stream")
        .json(&json!({"query": query}))
        .send()
        .await
        .expect("request");
    let text = Body(response, String::new()).end().await;
    let events: Vec<Value> = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("event: next\ndata: "))
        .map(|d| serde_json::from_str(d).expect("JSON event"))
        .collect();
    assert!(events.len() >= 2, "{text}");
    assert!(text.ends_with("event: complete\ndata:\n\n"));
    assert_eq!(json!({"data": assemble(&events)}), expected);
    env.shutdown().await;
}

#[tokio::test]
async fn a_deferred_root_field_is_fetched_beside_the_primary_part() {
    let env = Env::start().await;
    // `topProducts` (products) and the deferred `me` (accounts) must be in flight
    // together: each waits at the gate until the other has arrived.
    let gate = subgraph_mocks::Gate::new(2, WAIT);
    env.mocks.set_gate("products", Some(gate.clone()));
    env.mocks.set_gate("accounts", Some(gate.clone()));
    let response = client()
        .post(env.url())
        .header("accept", "multipart/mixed;deferSpec=20220824")
        .json(&json!({"query": "{ topProducts(first: 1) { upc } ... @defer { me { name } } }"}))
        .send()
        .await
        .expect("request");
    let payloads = parts(&Body(response, String::new()).end().await);
    assert_eq!(payloads.len(), 2, "{payloads:?}");
    assert!(payloads[0].get("errors").is_none(), "{payloads:?}");
    assert_eq!(payloads[0]["data"], json!({"topProducts": [{"upc": "1"}]}));
    assert_eq!(
        payloads[1]["incremental"][0],
        json!({"data": {"me": {"name": "Ada Lovelace"}}, "path": []}),
        "{payloads:?}"
    );
    assert_eq!(payloads[1]["hasNext"], false);
    env.shutdown().await;
}

#[tokio::test]
async fn reloads_keep_running_subscriptions_and_shutdown_ends_every_stream() {
    let env = Env::start().await;
    let mut ws = WsClient::init(&env.url(), json!({})).await;
    ws.subscribe("1", "subscription { reviewAdded { id } }")
        .await;
    let response = client()
        .post(env.url())
        .header("accept", "text/event-stream")
        .json(&json!({"query": "subscription { reviewAdded { id body } }"}))
        .send()
        .await
        .expect("request");
    let mut sse = Body(response, String::new());
    sse.until(":\n\n").await;
    env.subscribed(2).await;

    // A reload swaps the schema version (here to the file's own URLs, which nothing
    // serves); subscriptions already running keep the version they started on.
    let origin = Origin::Config(workspace_root().join("schemas/gateway.yaml"));
    match reload::reload(&env.gateway.state, &origin, &|_| {}).await {
        Outcome::Swapped => {}
        Outcome::Rejected(e) => panic!("{e}"),
    }
    env.mocks.emit_review("18");
    assert_eq!(
        next_payload(&ws.message().await, "1"),
        json!({"data": {"reviewAdded": {"id": "18"}}})
    );
    assert!(sse.until("\n\n").await.contains("\"id\":\"18\""));

    // Shutting down ends every stream with a message instead of waiting for them.
    let Env {
        mocks,
        services,
        gateway,
    } = env;
    tokio::time::timeout(WAIT, gateway.shutdown())
        .await
        .expect("the shutdown does not wait for open streams");
    assert_eq!(
        ws.recv().await,
        Received::Closed(1001, "the gateway is shutting down".into())
    );
    let rest = sse.end().await;
    assert!(rest.contains("SHUTTING_DOWN"), "{rest}");
    assert!(rest.ends_with("event: complete\ndata:\n\n"), "{rest}");
    mocks.shutdown().await;
    services.shutdown().await;
}

#[tokio::test]
async fn an_upgrade_header_does_not_skip_authentication_when_websocket_is_off() {
    let env = Env::start_with(|spec| spec.edge.streaming.websocket = false).await;
    let partner = format!(
        "http://{}/bff/partner/graphql?query=%7B__typename%7D",
        env.gateway.addr
    );
    let reply = e2e_tests::send(
        client()
            .get(&partner)
            .header("upgrade", "websocket")
            .header("connection", "upgrade"),
    )
    .await;
    assert_eq!(reply.status, 401, "{reply:?}");
    env.shutdown().await;
}

#[tokio::test]
async fn the_mobile_bff_streams_its_persisted_subscription() {
    use sha2::{Digest, Sha256};
    let env = Env::start().await;
    let document = std::fs::read_to_string(
        workspace_root().join("bffs/mobile/operations/reviewAdded.graphql"),
    )
    .expect("the persisted subscription");
    let hash: String = Sha256::digest(document.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();

    // Over WebSocket, by hash; the mobile BFF runs trusted documents only.
    let mobile = format!("http://{}/bff/mobile/graphql", env.gateway.addr);
    let mut ws = WsClient::init(&mobile, json!({})).await;
    ws.subscribe("adhoc", "subscription { reviewAdded { id } }")
        .await;
    let refused = ws.message().await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"],
        "PERSISTED_QUERY_REQUIRED"
    );
    let persisted = json!({"persistedQuery": {"version": 1, "sha256Hash": hash}});
    ws.send(json!({"id": "p", "type": "subscribe", "payload": {"extensions": persisted}}))
        .await;
    env.subscribed(1).await;
    env.mocks.emit_review("19");
    let event = next_payload(&ws.message().await, "p");
    assert_eq!(event["data"]["reviewAdded"]["id"], "19", "{event}");
    assert!(event["data"]["reviewAdded"]["product"]["name"].is_string());
    drop(ws);
    env.subscribed(0).await;

    // Its plain GET endpoint streams over SSE.
    let response = client()
        .get(format!(
            "http://{}/bff/mobile/reviewAdded",
            env.gateway.addr
        ))
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("request");
    let mut sse = Body(response, String::new());
    sse.until(":\n\n").await;
    env.subscribed(1).await;
    env.mocks.emit_review("20");
    let event = sse.until("\n\n").await;
    assert!(event.starts_with("event: next\ndata: "), "{event}");
    assert!(event.contains("\"id\":\"20\""), "{event}");
    env.shutdown().await;
}

#[tokio::test]
async fn streams_are_limited_per_client_across_connections() {
    let env = Env::start_with(|spec| spec.edge.streaming.max_streams_per_principal = 2).await;
    let partner = format!("http://{}/bff/partner/graphql", env.gateway.addr);
    let key = json!({"x-api-key": "demo-pro-key"});
    let mut a = WsClient::init(&partner, key.clone()).await;
    a.subscribe("1", "subscription { reviewAdded { id } }")
        .await;
    a.subscribe("2", "subscription { reviewAdded { id } }")
        .await;
    env.active("partner", 2).await;
    let mut b = WsClient::init(&partner, key.clone()).await;
    b.subscribe("3", "subscription { reviewAdded { id } }")
        .await;
    let refused = b.message().await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"],
        "SUBSCRIPTION_LIMIT"
    );
    // The same client over SSE is counted too.
    let response = client()
        .post(&partner)
        .header("accept", "text/event-stream")
        .header("x-api-key", "demo-pro-key")
        .json(&json!({"query": "subscription { reviewAdded { id } }"}))
        .send()
        .await
        .expect("request");
    let text = Body(response, String::new()).end().await;
    assert!(text.contains("SUBSCRIPTION_LIMIT"), "{text}");
    // Another client is not affected; a freed place can be taken again.
    let mut other = WsClient::init(&partner, json!({"x-api-key": "demo-free-key"})).await;
    other
        .subscribe("1", "subscription { reviewAdded { id } }")
        .await;
    env.active("partner", 3).await;
    a.send(json!({"id": "1", "type": "complete"})).await;
    env.active("partner", 2).await;
    b.subscribe("3", "subscription { reviewAdded { id } }")
        .await;
    env.subscribed(1).await;
    let mut synced = false;
    for _ in 0..100 {
        env.mocks.emit_review("21");
        if let Some(m) = b.try_message(Duration::from_millis(100)).await {
            assert_eq!(m["type"], "next", "{m}");
            synced = true;
            break;
        }
    }
    assert!(synced, "the freed place was taken");
    env.shutdown().await;
}

/// A notification event that needs the gRPC stream, the REST orders service and two
/// subgraphs.
const NOTIFICATION: &str = "{ id title sequence createdAt order { id status items { quantity product { upc name } } customer { id name } } }";

#[tokio::test]
async fn a_grpc_server_stream_is_a_subscription_joined_through_the_plan() {
    let env = Env::start().await;
    let mut ws = WsClient::init(&env.url(), json!({})).await;
    ws.subscribe(
        "n",
        &format!("subscription {{ notificationAdded(userId: \"1\") {NOTIFICATION} }}"),
    )
    .await;
    assert!(
        env.services
            .wait_for_streams("notifications", 1, WAIT)
            .await
    );
    // Another user's notification is not this stream's; the user's own is.
    env.services.emit("notifications", "n-2-0");
    env.services.emit("notifications", "n-1-0");
    let event = next_payload(&ws.message().await, "n");
    assert!(event.get("errors").is_none(), "{event}");
    let notification = &event["data"]["notificationAdded"];
    let query = format!("{{ user(id: \"1\") {{ notifications(first: 1) {NOTIFICATION} }} }}");
    let reply = post_json(&client(), &env.url(), &json!({ "query": query })).await;
    assert_eq!(
        notification, &reply.body["data"]["user"]["notifications"][0],
        "{}",
        reply.body
    );
    assert_eq!(notification["id"], "n-1-0");
    assert!(notification["order"]["items"][0]["product"]["name"].is_string());
    assert_eq!(notification["order"]["customer"]["id"], "1");

    // The orders service fails this event's entity fetch: partial data, the stream goes on.
    env.services.set_fault(
        "orders",
        subgraph_mocks::Fault {
            http_500_rate: 1.0,
            ..Default::default()
        },
    );
    env.services.emit("notifications", "n-1-0");
    let event = next_payload(&ws.message().await, "n");
    assert_eq!(event["data"]["notificationAdded"]["id"], "n-1-0", "{event}");
    assert_eq!(
        event["data"]["notificationAdded"]["order"],
        Value::Null,
        "{event}"
    );
    assert_eq!(
        event["errors"][0]["path"],
        json!(["notificationAdded", "order"]),
        "{event}"
    );
    env.services
        .set_fault("orders", subgraph_mocks::Fault::default());
    env.services.emit("notifications", "n-1-1");
    let event = next_payload(&ws.message().await, "n");
    assert!(event.get("errors").is_none(), "{event}");
    assert_eq!(event["data"]["notificationAdded"]["id"], "n-1-1");

    // The RPC ends with a status: one error event says which, then `complete`.
    env.services.fail_streams("notifications", "stream broke");
    let event = ends_with_error(&mut ws, "n", "UPSTREAM_GRPC_INTERNAL").await;
    assert!(
        event["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("stream broke")),
        "{event}"
    );
    assert!(
        env.services
            .wait_for_streams("notifications", 0, WAIT)
            .await
    );

    // A normal end completes the client; a dropped connection ends with an error first.
    ws.subscribe(
        "c",
        "subscription { notificationAdded(userId: \"3\") { id } }",
    )
    .await;
    assert!(
        env.services
            .wait_for_streams("notifications", 1, WAIT)
            .await
    );
    env.services.emit("notifications", "n-3-2");
    let event = next_payload(&ws.message().await, "c");
    assert_eq!(
        event,
        json!({"data": {"notificationAdded": {"id": "n-3-2"}}})
    );
    env.services.complete_streams("notifications");
    assert_eq!(ws.message().await, json!({"id": "c", "type": "complete"}));
    ws.subscribe(
        "d",
        "subscription { notificationAdded(userId: \"3\") { id } }",
    )
    .await;
    assert!(
        env.services
            .wait_for_streams("notifications", 1, WAIT)
            .await
    );
    env.services.disconnect_streams("notifications");
    ends_with_error(&mut ws, "d", "UPSTREAM_GRPC_UNAVAILABLE").await;

    // The service refuses the call: the client is told, nothing hangs.
    env.services
        .set_fault("notifications", subgraph_mocks::Fault::down());
    ws.subscribe(
        "e",
        "subscription { notificationAdded(userId: \"3\") { id } }",
    )
    .await;
    ends_with_error(&mut ws, "e", "UPSTREAM_GRPC_UNAVAILABLE").await;
    env.shutdown().await;
}

#[tokio::test]
async fn a_rest_event_stream_is_a_subscription() {
    let env = Env::start().await;
    let orders: Vec<_> = subgraph_mocks::orders::orders_of("2");
    let (first, second) = (&orders[0].id, &orders[1].id);
    let selection = "{ id status totalCents currency items { quantity product { upc name } } customer { username } }";
    let mut ws = WsClient::init(&env.url(), json!({})).await;
    ws.subscribe(
        "o",
        &format!("subscription {{ orderUpdated(userId: \"2\") {selection} }}"),
    )
    .await;
    assert!(env.services.wait_for_streams("orders", 1, WAIT).await);
    env.services
        .emit("orders", &subgraph_mocks::orders::orders_of("1")[0].id);
    env.services.emit("orders", first);
    let event = next_payload(&ws.message().await, "o");
    assert!(event.get("errors").is_none(), "{event}");
    let query = format!("{{ user(id: \"2\") {{ orders {selection} }} }}");
    let reply = post_json(&client(), &env.url(), &json!({ "query": query })).await;
    let expected = reply.body["data"]["user"]["orders"]
        .as_array()
        .and_then(|list| list.iter().find(|o| o["id"] == first.as_str()).cloned())
        .expect("the order among its user's orders");
    assert_eq!(event["data"]["orderUpdated"], expected);

    // An `error` event is an event with an error; the stream goes on.
    env.services.fail_streams("orders", "a hiccup");
    let event = next_payload(&ws.message().await, "o");
    assert_eq!(event["data"], Value::Null, "{event}");
    assert_eq!(event["errors"][0]["message"], "a hiccup", "{event}");
    env.services.emit("orders", second);
    let event = next_payload(&ws.message().await, "o");
    assert_eq!(
        event["data"]["orderUpdated"]["id"],
        second.as_str(),
        "{event}"
    );

    // `complete` ends it; a dropped connection ends it with an error first.
    env.services.complete_streams("orders");
    assert_eq!(ws.message().await, json!({"id": "o", "type": "complete"}));
    assert!(env.services.wait_for_streams("orders", 0, WAIT).await);
    ws.subscribe("p", "subscription { orderUpdated(userId: \"2\") { id } }")
        .await;
    assert!(env.services.wait_for_streams("orders", 1, WAIT).await);
    env.services.disconnect_streams("orders");
    ends_with_error(&mut ws, "p", "UPSTREAM_UNAVAILABLE").await;

    // The client leaves: the gateway closes the upstream stream.
    ws.subscribe("q", "subscription { orderUpdated(userId: \"2\") { id } }")
        .await;
    assert!(env.services.wait_for_streams("orders", 1, WAIT).await);
    ws.send(json!({"id": "q", "type": "complete"})).await;
    assert!(env.services.wait_for_streams("orders", 0, WAIT).await);
    env.shutdown().await;
}

/// Subscribes the gateway to `reviews` with these settings.
fn reviews_subscriptions(spec: &mut GatewaySpec, settings: SubscriptionsConfig) {
    spec.upstream
        .sources
        .entry("reviews".into())
        .or_default()
        .subscriptions = Some(settings);
}

#[tokio::test]
async fn a_subgraph_can_be_subscribed_over_sse() {
    let env = Env::start_with(|spec| {
        reviews_subscriptions(
            spec,
            SubscriptionsConfig {
                transport: SubscriptionTransport::Sse,
                ..Default::default()
            },
        )
    })
    .await;
    let mut ws = WsClient::init(&env.url(), json!({})).await;
    ws.subscribe("1", JOINED).await;
    env.subscribed(1).await;
    let headers = env.mocks.last_subscription_headers();
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "accept" && v == "text/event-stream"),
        "{headers:?}"
    );
    assert!(!headers.iter().any(|(k, _)| k == "upgrade"), "{headers:?}");
    env.mocks.emit_review("1");
    let event = next_payload(&ws.message().await, "1");
    assert!(event.get("errors").is_none(), "{event}");
    assert_eq!(event["data"]["reviewAdded"]["id"], "1");
    assert!(event["data"]["reviewAdded"]["author"]["notifications"][0]["title"].is_string());

    // Error events, completion and a dropped connection, as over WebSocket.
    env.mocks.fail_subscriptions("boom");
    let event = next_payload(&ws.message().await, "1");
    assert_eq!(event["errors"][0]["message"], "boom", "{event}");
    env.mocks.complete_subscriptions();
    assert_eq!(ws.message().await, json!({"id": "1", "type": "complete"}));
    ws.subscribe("2", "subscription { reviewAdded { id } }")
        .await;
    env.subscribed(1).await;
    env.mocks.disconnect_subscriptions();
    ends_with_error(&mut ws, "2", "UPSTREAM_UNAVAILABLE").await;

    env.shutdown().await;
}

#[tokio::test]
async fn a_dropped_upstream_subscription_is_reopened_with_backoff() {
    let env = Env::start_with(|spec| {
        reviews_subscriptions(
            spec,
            SubscriptionsConfig {
                reconnect: ReconnectConfig {
                    max_attempts: 3,
                    base_delay: Duration::from_millis(20),
                    max_delay: Duration::from_millis(100),
                },
                ..Default::default()
            },
        )
    })
    .await;
    let mut ws = WsClient::init(&env.url(), json!({})).await;
    ws.subscribe("1", "subscription { reviewAdded { id } }")
        .await;
    env.subscribed(1).await;
    assert_eq!(env.mocks.subscription_connections(), 1);

    // The subgraph drops the connection: the gateway opens a new one, the client sees
    // nothing but the next event.
    env.mocks.disconnect_subscriptions();
    for _ in 0..200 {
        if env.mocks.subscription_connections() == 2 && env.mocks.subscribers() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(env.mocks.subscription_connections(), 2);
    env.subscribed(1).await;
    env.mocks.emit_review("5");
    assert_eq!(
        next_payload(&ws.message().await, "1"),
        json!({"data": {"reviewAdded": {"id": "5"}}})
    );
    let metrics = e2e_tests::metrics_text(env.gateway.addr).await;
    assert!(
        metrics.contains("source=\"reviews\",outcome=\"reconnected\"} 1"),
        "{metrics}"
    );

    // The subgraph stays down: after the attempts, the error and `complete`.
    env.mocks
        .set_fault("reviews", subgraph_mocks::Fault::down());
    env.mocks.disconnect_subscriptions();
    ends_with_error(&mut ws, "1", "UPSTREAM_UNAVAILABLE").await;
    // Three attempts, each refused.
    assert_eq!(env.mocks.subscription_connections(), 2);
    assert_eq!(env.mocks.stats("reviews").dropped, 3);
    env.shutdown().await;
}
