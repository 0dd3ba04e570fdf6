//! REST and gRPC backends as sources of the composed graph, end to end over real sockets:
//! the example graph of `schemas/gateway.yaml` (four GraphQL subgraphs, the REST `orders`
//! service, the gRPC `notifications` service) plus test-only root fields on the REST and
//! gRPC sources. Covers joins in both directions, parallel fan-out (a gate that only opens
//! when all backends have a request in flight), batching (mock counters), partial failure
//! per kind, mapping edge cases, template safety, and start-up mapping errors.

use std::path::{Path, PathBuf};
use std::time::Duration;

use e2e_tests::{client, post_json, workspace_root};
use gateway::config::Config;
use gateway::server::{self, GatewaySpec, RunningGateway};
use serde_json::{Value, json};
use subgraph_mocks::notifications::FIRST_SEQUENCE;
use subgraph_mocks::{Fault, Gate, MockServices, MockSubgraphs};

/// Root fields the example graph does not have, for tests that need REST and gRPC roots.
const ORDERS_ROOTS: &str = r#"
type Query {
  order(id: ID!): Order @rest(path: "/orders/{$args.id}")
  userOrders(userId: ID!, first: Int = 10, status: OrderStatus): [Order!]
    @rest(path: "/users/{$args.userId}/orders", query: ["limit={$args.first}", "status={$args.status}"])
}
type Mutation {
  placeOrder(userId: ID!, items: [OrderItemInput!]!): Order
    @rest(method: "POST", path: "/users/{$args.userId}/orders", body: "items: $args.items", headers: ["x-source: gateway"])
}
input OrderItemInput { productUpc: String! quantity: Int! }
"#;

const NOTIFICATIONS_ROOTS: &str = r#"
type Query {
  notification(id: ID!): Notification
    @grpc(service: "notifications.v1.Notifications", method: "GetNotification", request: "id: $args.id")
  notificationsOf(userId: ID!, first: Int = 10): [Notification!]
    @grpc(service: "notifications.v1.Notifications", method: "ListNotifications", request: "user_id: $args.userId, limit: $args.first", result: "notifications")
}
"#;

/// A folder under the system temp dir for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gateway-sources-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

struct Env {
    mocks: MockSubgraphs,
    services: MockServices,
    gateway: RunningGateway,
    client: reqwest::Client,
}

impl Env {
    async fn start(name: &str) -> Self {
        Self::start_with(name, |_| {}).await
    }

    /// The example config with test-only root fields, every URL pointed at the mocks;
    /// `tweak` may change the config before the gateway is built.
    async fn start_with(name: &str, tweak: impl FnOnce(&mut Config)) -> Self {
        let mocks = MockSubgraphs::start("127.0.0.1:0")
            .await
            .expect("start subgraphs");
        let services = MockServices::start("127.0.0.1")
            .await
            .expect("start services");
        let mut config = example_config(name);
        for subgraph in &mut config.subgraphs {
            subgraph.url = if subgraph_mocks::SERVICES.contains(&subgraph.name.as_str()) {
                Some(services.url(&subgraph.name))
            } else {
                Some(mocks.url(&subgraph.name))
            };
        }
        tweak(&mut config);
        let mut spec = GatewaySpec::from_config(&config)
            .await
            .expect("compose the example graph");
        spec.listen = "127.0.0.1:0".into();
        let gateway = server::start(&spec).await.expect("start gateway");
        Env {
            mocks,
            services,
            gateway,
            client: client(),
        }
    }

    async fn query(&self, query: &str, variables: Value) -> Value {
        let reply = post_json(
            &self.client,
            &self.gateway.url(),
            &json!({"query": query, "variables": variables}),
        )
        .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        reply.body
    }

    async fn shutdown(self) {
        self.gateway.shutdown().await;
        self.mocks.shutdown().await;
        self.services.shutdown().await;
    }
}

/// `schemas/gateway.yaml`, with the REST and gRPC SDLs extended by test-only root fields.
fn example_config(name: &str) -> Config {
    let root = workspace_root();
    let mut config = Config::load(&root.join("schemas/gateway.yaml")).expect("example config");
    let dir = scratch(name);
    for subgraph in &mut config.subgraphs {
        let extra = match subgraph.name.as_str() {
            "orders" => ORDERS_ROOTS,
            "notifications" => NOTIFICATIONS_ROOTS,
            _ => continue,
        };
        let file = subgraph.schema.file.clone().expect("SDL file");
        let sdl = std::fs::read_to_string(&file).expect("read SDL") + extra;
        let path = dir.join(format!("{}.graphql", subgraph.name));
        std::fs::write(&path, sdl).expect("write SDL");
        subgraph.schema.file = Some(path);
    }
    config
}

fn errors(body: &Value) -> Vec<Value> {
    body["errors"].as_array().cloned().unwrap_or_default()
}

/// `(path, code, service)` of each error, for precise assertions.
fn error_summary(body: &Value) -> Vec<(Value, String, String)> {
    errors(body)
        .iter()
        .map(|e| {
            (
                e["path"].clone(),
                e["extensions"]["code"].as_str().unwrap_or("").to_string(),
                e["extensions"]["service"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect()
}

const DASHBOARD: &str = include_str!("../schemas/examples/dashboard.graphql");

#[tokio::test]
async fn one_query_spans_graphql_rest_and_grpc_with_joins_both_ways() {
    let env = Env::start("dashboard").await;
    let body = env.query(DASHBOARD, json!({"id": "1"})).await;
    assert!(errors(&body).is_empty(), "{body}");
    let user = &body["data"]["user"];
    // accounts (GraphQL)
    assert_eq!(user["name"], "Ada Lovelace");

    // orders (REST), extending the GraphQL entity User; newest first.
    let orders: Vec<&subgraph_mocks::orders::Order> = subgraph_mocks::orders::orders_of("1");
    let got = user["orders"].as_array().expect("orders");
    assert_eq!(got.len(), orders.len().min(3), "{body}");
    let d = subgraph_mocks::data::data();
    for (o, g) in orders.iter().zip(got) {
        assert_eq!(g["id"], json!(o.id));
        assert_eq!(g["status"], json!(o.status));
        assert_eq!(g["placedAt"], json!(o.placed_at));
        // Renamed and nested (`total.amountCents`).
        assert_eq!(g["totalCents"], json!(o.total_cents));
        assert_eq!(g["currency"], "EUR");
        // Missing optional key -> null.
        assert_eq!(g["trackingCode"], json!(o.tracking_code));
        // The REST object's nested fields resolve from GraphQL subgraphs: products
        // (name, price) and inventory (inStock) through Product's key, accounts through
        // User's key.
        let items = g["items"].as_array().expect("items");
        assert_eq!(items.len(), o.items.len());
        for ((upc, quantity), item) in o.items.iter().zip(items) {
            let product = d.product(upc).expect("product");
            assert_eq!(item["quantity"], json!(quantity));
            assert_eq!(
                item["product"],
                json!({"upc": upc, "name": product.name, "price": product.price, "inStock": product.in_stock})
            );
        }
        assert_eq!(g["customer"], json!({"username": "ada"}));
        // A list of lists, defaulting to `[]`.
        let packages: Vec<Vec<&String>> = if o.tracking_code.is_some() {
            o.items.iter().map(|(upc, _)| vec![upc]).collect()
        } else {
            Vec::new()
        };
        assert_eq!(g["packages"], json!(packages));
    }

    // notifications (gRPC), extending the same User.
    let list = user["notifications"].as_array().expect("notifications");
    assert_eq!(list.len(), 3, "{body}");
    let first = &list[0];
    assert_eq!(first["id"], "n-1-0");
    assert_eq!(first["channel"], "PUSH");
    // Timestamp as RFC 3339, with nanoseconds when there are some.
    assert_eq!(first["createdAt"], "2024-04-25T00:06:40.123456789Z");
    assert_eq!(list[1]["createdAt"], "2024-04-25T00:05:40Z");
    // int64/uint64 beyond 2^53, exact as strings.
    assert_eq!(first["sequence"], json!((FIRST_SEQUENCE + 10).to_string()));
    assert_eq!(first["sequence"], "9007199254741003");
    assert_eq!(first["sizeBytes"], json!((u64::MAX - 10).to_string()));
    // Optional field: set on the first, missing (null) on the others.
    assert_eq!(first["actionUrl"], "https://example.com/n/1");
    assert_eq!(list[1]["actionUrl"], Value::Null);
    // Nested lists of messages and strings.
    assert_eq!(
        first["links"],
        json!([{"label": "open", "targets": ["app://n/1", "https://example.com/n/1"]}, {"label": "mute", "targets": []}])
    );
    assert_eq!(list[1]["links"], json!([]));
    // bytes as base64 ([1, 0, 0xff]).
    assert_eq!(first["payload"], "AQD/");
    assert_eq!(first["read"], false);
    assert_eq!(list[1]["read"], true);
    // gRPC -> REST: the notification's order is an entity of the orders service.
    assert_eq!(
        first["order"],
        json!({"id": orders[0].id, "status": orders[0].status})
    );
    assert_eq!(list[1]["order"], Value::Null);

    // The same query as the mobile BFF's persisted GET endpoint: the same data.
    let home = env
        .client
        .get(format!("http://{}/bff/mobile/home?id=1", env.gateway.addr))
        .send()
        .await
        .expect("GET /bff/mobile/home");
    assert_eq!(home.status(), 200);
    let home: Value = home.json().await.expect("JSON");
    assert_eq!(home, json!({"data": body["data"]}));
    env.shutdown().await;
}

#[tokio::test]
async fn entity_fields_are_batched_into_one_call_per_source() {
    let env = Env::start("batching").await;
    env.services.reset_stats();
    let body = env
        .query(
            "{ users { id orders(first: 2) { id } notifications(first: 2) { id order { status } } } }",
            json!({}),
        )
        .await;
    assert!(errors(&body).is_empty(), "{body}");
    let users = body["data"]["users"].as_array().expect("users");
    assert_eq!(users.len(), 10);
    for user in users {
        let id = user["id"].as_str().expect("id");
        let expected: Vec<Value> = subgraph_mocks::orders::orders_of(id)
            .iter()
            .take(2)
            .map(|o| json!({"id": o.id}))
            .collect();
        assert_eq!(user["orders"], json!(expected), "{user}");
        assert_eq!(user["notifications"].as_array().map(Vec::len), Some(2));
    }
    // Ten users' orders: one batch call with ten keys, no per-user call.
    let orders = env.services.calls("orders");
    assert_eq!(orders.get("GET /orders?userIds"), Some(&1), "{orders:?}");
    assert_eq!(orders.get("GET /users/{id}/orders"), None, "{orders:?}");
    // The notifications' orders (gRPC -> REST entities): one batch call by ids.
    assert_eq!(orders.get("GET /orders?ids"), Some(&1), "{orders:?}");
    assert_eq!(orders.get("GET /orders/{id}"), None, "{orders:?}");
    let stats = env.services.stats("orders");
    assert_eq!(stats.entity_requests, 2);
    // 10 users, then the distinct order ids of the 20 notifications (first of each user).
    assert_eq!(stats.representations, 20);
    let notifications = env.services.calls("notifications");
    assert_eq!(
        notifications.get("BatchListNotifications"),
        Some(&1),
        "{notifications:?}"
    );
    assert_eq!(
        notifications.get("ListNotifications"),
        None,
        "{notifications:?}"
    );
    assert_eq!(env.services.stats("notifications").representations, 10);
    env.shutdown().await;
}

#[tokio::test]
async fn identical_calls_are_made_once() {
    let env = Env::start("dedupe").await;
    env.services.reset_stats();
    let body = env
        .query(
            r#"{ a: userOrders(userId: "2", first: 1) { id } b: userOrders(userId: "2", first: 1) { status }
                 c: userOrders(userId: "3", first: 1) { id }
                 x: notification(id: "n-2-0") { id } y: notification(id: "n-2-0") { title } }"#,
            json!({}),
        )
        .await;
    assert!(errors(&body).is_empty(), "{body}");
    assert_eq!(
        env.services.calls("orders").get("GET /users/{id}/orders"),
        Some(&2)
    );
    assert_eq!(
        env.services.calls("notifications").get("GetNotification"),
        Some(&1)
    );
    env.shutdown().await;
}

#[tokio::test]
async fn graphql_rest_and_grpc_fetches_run_in_parallel() {
    let env = Env::start("parallel").await;
    // Each backend holds its request until all three have one in flight; a gateway that
    // sent them one after the other would have its first request time out at the gate.
    let gate = Gate::new(3, Duration::from_secs(20));
    env.mocks.set_gate("accounts", Some(gate.clone()));
    env.services.set_gate("orders", Some(gate.clone()));
    env.services.set_gate("notifications", Some(gate.clone()));
    let body = env
        .query(
            r#"{ me { name } userOrders(userId: "1", first: 1) { id } notificationsOf(userId: "1", first: 1) { id } }"#,
            json!({}),
        )
        .await;
    assert!(errors(&body).is_empty(), "{body}");
    assert_eq!(body["data"]["me"]["name"], "Ada Lovelace");
    assert_eq!(body["data"]["notificationsOf"][0]["id"], "n-1-0");
    assert_eq!(gate.arrived(), 3);

    // Entity fetches of one step, to REST and gRPC, are parallel too.
    let gate = Gate::new(2, Duration::from_secs(20));
    env.mocks.set_gate("accounts", None);
    env.services.set_gate("orders", Some(gate.clone()));
    env.services.set_gate("notifications", Some(gate.clone()));
    let body = env
        .query(
            r#"{ user(id: "2") { orders { id } notifications { id } } }"#,
            json!({}),
        )
        .await;
    assert!(errors(&body).is_empty(), "{body}");
    assert_eq!(gate.arrived(), 2);
    env.shutdown().await;
}

const PROFILE: &str =
    r#"{ user(id: "1") { name orders(first: 1) { id } notifications(first: 1) { id } } }"#;

/// The error paths and codes of a profile query, after checking that the other sources'
/// fields are all there.
async fn profile_with_failure(env: &Env, failed: &str) -> Vec<(Value, String, String)> {
    let body = env.query(PROFILE, json!({})).await;
    let user = &body["data"]["user"];
    assert_eq!(user["name"], "Ada Lovelace", "{body}");
    for field in ["orders", "notifications"] {
        if field == failed {
            assert_eq!(user[field], Value::Null, "{body}");
        } else {
            assert_eq!(user[field].as_array().map(Vec::len), Some(1), "{body}");
        }
    }
    error_summary(&body)
}

#[tokio::test]
async fn partial_failure_per_kind_nulls_only_the_failed_field() {
    let env = Env::start_with("partial", |config| {
        // Each gRPC call gets 80% of the source's attempt timeout.
        if let Some(n) = config
            .subgraphs
            .iter_mut()
            .find(|s| s.name == "notifications")
        {
            n.timeout = Some(Duration::from_millis(500));
        }
    })
    .await;
    let path = |field: &str| json!(["user", field]);

    env.services.set_fault(
        "orders",
        Fault {
            http_500_rate: 1.0,
            ..Fault::default()
        },
    );
    assert_eq!(
        profile_with_failure(&env, "orders").await,
        [(path("orders"), "UPSTREAM_HTTP_500".into(), "orders".into())]
    );

    env.services.set_fault(
        "orders",
        Fault {
            graphql_error_rate: 1.0,
            ..Fault::default()
        },
    );
    assert_eq!(
        profile_with_failure(&env, "orders").await,
        [(
            path("orders"),
            "UPSTREAM_BAD_RESPONSE".into(),
            "orders".into()
        )]
    );
    env.services.set_fault("orders", Fault::default());

    // Every call of the fetch failing as unavailable fails the fetch as a whole (so
    // retries and the circuit breaker see it): the error sits at the field it fills.
    env.services.set_fault("notifications", Fault::down());
    assert_eq!(
        profile_with_failure(&env, "notifications").await,
        [(
            json!(["user", "notifications"]),
            "UPSTREAM_GRPC_UNAVAILABLE".into(),
            "notifications".into()
        )]
    );

    env.services.set_fault(
        "notifications",
        Fault {
            graphql_error_rate: 1.0,
            ..Fault::default()
        },
    );
    assert_eq!(
        profile_with_failure(&env, "notifications").await,
        [(
            path("notifications"),
            "UPSTREAM_GRPC_DATA_LOSS".into(),
            "notifications".into()
        )]
    );

    // Far beyond the deadline: the call is cancelled when the deadline passes.
    env.services
        .set_fault("notifications", Fault::latency(60_000));
    assert_eq!(
        profile_with_failure(&env, "notifications").await,
        [(
            json!(["user", "notifications"]),
            "UPSTREAM_GRPC_DEADLINE_EXCEEDED".into(),
            "notifications".into()
        )]
    );
    env.services.set_fault("notifications", Fault::default());

    // Errors of one item of a list keep the other items.
    let body = env
        .query(r#"{ a: order(id: "1001") { id } b: order(id: "nope") { id } c: notification(id: "nope") { id } }"#, json!({}))
        .await;
    assert_eq!(body["data"]["a"], json!({"id": "1001"}), "{body}");
    assert_eq!(body["data"]["b"], Value::Null);
    let summary = error_summary(&body);
    assert!(
        summary.contains(&(json!(["b"]), "UPSTREAM_HTTP_404".into(), "orders".into())),
        "{summary:?}"
    );
    assert!(
        summary.contains(&(
            json!(["c"]),
            "UPSTREAM_GRPC_NOT_FOUND".into(),
            "notifications".into()
        )),
        "{summary:?}"
    );
    env.shutdown().await;
}

#[tokio::test]
async fn a_grpc_endpoint_that_refuses_connections_is_unavailable() {
    // A port that was just free on 127.0.0.2: every other test listens on 127.0.0.1
    // only, so even if the port number is handed out again, nothing answers here.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.2:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let env = Env::start_with("refused", |config| {
        for s in &mut config.subgraphs {
            if s.name == "notifications" {
                s.url = Some(format!("http://127.0.0.2:{closed}"));
            }
        }
    })
    .await;
    assert_eq!(
        profile_with_failure(&env, "notifications").await,
        [(
            json!(["user", "notifications"]),
            "UPSTREAM_GRPC_UNAVAILABLE".into(),
            "notifications".into()
        )]
    );
    env.shutdown().await;
}

#[tokio::test]
async fn template_values_cannot_change_the_request_target() {
    let env = Env::start("templates").await;
    env.services.reset_stats();
    // Would be `/users/1/orders` if the value were pasted into the path.
    let body = env
        .query(
            r#"{ order(id: "../users/1/orders") { id } other: order(id: "http://evil.example/x?y#z") { id } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        body["data"],
        json!({"order": null, "other": null}),
        "{body}"
    );
    let codes: Vec<String> = error_summary(&body).into_iter().map(|e| e.1).collect();
    assert_eq!(codes, ["UPSTREAM_HTTP_404", "UPSTREAM_HTTP_404"], "{body}");
    let calls = env.services.calls("orders");
    assert_eq!(calls.get("GET /orders/{id}"), Some(&2), "{calls:?}");
    assert_eq!(calls.get("GET /users/{id}/orders"), None, "{calls:?}");
    env.shutdown().await;
}

#[tokio::test]
async fn rest_mutations_send_a_json_body_and_enum_arguments() {
    let env = Env::start("mutation").await;
    let body = env
        .query(
            r#"mutation { placeOrder(userId: "4", items: [{productUpc: "2", quantity: 3}]) { id status totalCents items { quantity product { name } } customer { username } } }"#,
            json!({}),
        )
        .await;
    assert!(errors(&body).is_empty(), "{body}");
    assert_eq!(
        body["data"]["placeOrder"],
        json!({"id": "9001", "status": "PENDING", "totalCents": 1299 * 100 * 3,
               "items": [{"quantity": 3, "product": {"name": "Couch"}}],
               "customer": {"username": "edsger"}})
    );
    // An enum argument travels as its name.
    let body = env
        .query(
            r#"{ userOrders(userId: "2", status: CANCELLED) { status } }"#,
            json!({}),
        )
        .await;
    assert!(errors(&body).is_empty(), "{body}");
    let statuses = body["data"]["userOrders"].as_array().expect("list");
    assert!(!statuses.is_empty(), "{body}");
    assert!(
        statuses.iter().all(|s| s["status"] == "CANCELLED"),
        "{body}"
    );
    env.shutdown().await;
}

/// A config whose notifications (gRPC) and orders (REST) SDLs are replaced.
async fn startup_error(name: &str, orders: Option<&str>, notifications: Option<&str>) -> String {
    let root = workspace_root();
    let mut config = Config::load(&root.join("schemas/gateway.yaml")).expect("example config");
    let dir = scratch(name);
    for (service, sdl) in [("orders", orders), ("notifications", notifications)] {
        let Some(sdl) = sdl else { continue };
        let path = dir.join(format!("{service}.graphql"));
        std::fs::write(&path, sdl).expect("write SDL");
        if let Some(s) = config.subgraphs.iter_mut().find(|s| s.name == service) {
            s.schema.file = Some(path);
        }
    }
    let spec = GatewaySpec::from_config(&config)
        .await
        .expect("composition succeeds: the mistakes are in the mappings");
    match spec.engine() {
        Ok(_) => panic!("the mapping errors should stop the start-up"),
        Err(e) => e.to_string(),
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).expect("read")
}

#[tokio::test]
async fn mapping_errors_stop_the_start_up_with_source_and_coordinates() {
    let root = workspace_root();
    let notifications = read(&root.join("schemas/subgraphs/notifications.graphql"))
        .replace(
            "method: \"GetNotification\"",
            "method: \"FetchNotification\"",
        )
        .replace("title: String!", "title: String!\n  subject: String")
        .replace(
            "user_id: $this.id, limit: $args.first",
            "user_id: $this.id, limit: $args.frist",
        );
    let message = startup_error("errors-grpc", None, Some(&notifications)).await;
    for expected in [
        "invalid gRPC source \"notifications\"",
        "Notification @grpc: service notifications.v1.Notifications has no method `FetchNotification` (methods: ListNotifications, BatchListNotifications, GetNotification, StreamNotifications)",
        "Notification.subject (read by User.notifications): message notifications.v1.Notification has no field `subject`",
        "User.notifications @grpc: `$args.frist`: User.notifications has no argument `frist` (arguments: first, unreadOnly)",
    ] {
        assert!(
            message.contains(expected),
            "missing {expected:?} in:\n{message}"
        );
    }

    let orders = read(&root.join("schemas/subgraphs/orders.graphql"))
        .replace("{$args.first}\", \"status", "{$args.limit}\", \"status")
        .replace("batchKey: \"userId\"", "batchKey: \"user id\"")
        .replace(
            "order-events\")",
            "order-events\", batch: \"/orders?ids={$batch.id}\")",
        );
    let message = startup_error("errors-rest", Some(&orders), None).await;
    for expected in [
        "invalid REST source \"orders\"",
        "User.orders @rest: `$args.limit`: User.orders has no argument `limit` (arguments: first, status)",
        "User.orders @rest: batchKey: `user id` is not a dotted path",
        "Subscription.orderUpdated @rest: a subscription field cannot be batched",
    ] {
        assert!(
            message.contains(expected),
            "missing {expected:?} in:\n{message}"
        );
    }

    // A request field that the request message does not have.
    let notifications = read(&root.join("schemas/subgraphs/notifications.graphql")).replace(
        "request: \"id: $this.id\"",
        "request: \"notification_id: $this.id\"",
    );
    let message = startup_error("errors-request", None, Some(&notifications)).await;
    assert!(
        message.contains("Notification @grpc: request: message notifications.v1.GetNotificationRequest has no field `notification_id` (fields: id)"),
        "{message}"
    );

    // Streams only behind subscription fields, and only there.
    let notifications = read(&root.join("schemas/subgraphs/notifications.graphql"))
        .replace("\"GetNotification\"", "\"StreamNotifications\"")
        .replace(
            "method: \"StreamNotifications\", request: \"user_id",
            "method: \"ListNotifications\", request: \"user_id",
        );
    let message = startup_error("errors-streams", None, Some(&notifications)).await;
    for expected in [
        "Notification @grpc: notifications.v1.Notifications/StreamNotifications is server-streaming; only subscription fields can read it",
        "Subscription.notificationAdded @grpc: notifications.v1.Notifications/ListNotifications is unary; a subscription field needs a server-streaming method",
    ] {
        assert!(
            message.contains(expected),
            "missing {expected:?} in:\n{message}"
        );
    }
}

#[tokio::test]
async fn plans_show_rest_and_grpc_fetches() {
    let config = example_config("plan");
    let spec = GatewaySpec::from_config(&config).await.expect("compose");
    let snapshot = gateway::schema::SchemaSnapshot::from_supergraph_sdl(&spec.supergraph_sdl)
        .expect("supergraph");
    let prepared = gateway::request::prepare(&snapshot, DASHBOARD, None).expect("plan");
    let plan = prepared.plan.to_string();
    for service in [
        "accounts",
        "orders",
        "notifications",
        "products",
        "inventory",
    ] {
        assert!(
            plan.contains(&format!("Fetch(service: \"{service}\")")),
            "{service} missing from:\n{plan}"
        );
    }
}

#[tokio::test]
async fn a_down_grpc_source_is_retried_then_opens_its_breaker() {
    let env = Env::start_with("breaker", |_| {}).await;
    env.services.set_fault("notifications", Fault::down());
    // Three attempts (all UNAVAILABLE), then the next fetch's retries reach the
    // breaker's five failures in a row and it opens.
    assert_eq!(
        profile_with_failure(&env, "notifications").await,
        [(
            json!(["user", "notifications"]),
            "UPSTREAM_GRPC_UNAVAILABLE".into(),
            "notifications".into()
        )]
    );
    assert_eq!(
        env.services.stats("notifications").requests,
        3,
        "retried twice"
    );
    assert_eq!(
        profile_with_failure(&env, "notifications").await,
        [(
            json!(["user", "notifications"]),
            "CIRCUIT_OPEN".into(),
            "notifications".into()
        )]
    );
    let before = env.services.stats("notifications").requests;
    assert_eq!(before, 5);
    assert_eq!(
        profile_with_failure(&env, "notifications").await,
        [(
            json!(["user", "notifications"]),
            "CIRCUIT_OPEN".into(),
            "notifications".into()
        )]
    );
    assert_eq!(
        env.services.stats("notifications").requests,
        before,
        "an open breaker sends nothing"
    );
}
