//! Hot reload and lifecycle: a changed SDL is served without restart, an invalid change
//! is rejected while the old version keeps serving, swaps and shutdown do not drop
//! requests in flight.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use e2e_tests::scripted::ScriptedSubgraph;
use e2e_tests::{client, post_json};
use gateway::config::Config;
use gateway::server::reload::{self, Origin, Outcome};
use gateway::server::{self, GatewaySpec, RunningGateway};
use serde_json::{Value, json};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gateway-reload-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn write_config(dir: &Path, url: &str, sdl: &str) -> PathBuf {
    std::fs::write(dir.join("a.graphql"), sdl).expect("sdl");
    let config = dir.join("gateway.yaml");
    std::fs::write(
        &config,
        format!("listen: 127.0.0.1:0\nsubgraphs:\n  - name: a\n    url: {url}\n    schema: {{ file: a.graphql }}\n"),
    )
    .expect("config");
    config
}

async fn start(config: &Path) -> RunningGateway {
    let spec = GatewaySpec::from_config(&Config::load(config).expect("config"))
        .await
        .expect("spec");
    server::start(&spec).await.expect("gateway")
}

async fn ask(gw: &RunningGateway, query: &str) -> Value {
    post_json(&client(), &gw.url(), &json!({"query": query}))
        .await
        .body
}

/// Poll (bounded) until `check` holds for the answer to `query`.
async fn eventually(gw: &RunningGateway, query: &str, check: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..200 {
        last = ask(gw, query).await;
        if check(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition never held; last answer: {last}");
}

const V1: &str = "type Query { hello: String }";
const V2: &str = "type Query { hello: String extra: String }";

#[tokio::test]
async fn a_new_field_in_a_subgraph_sdl_is_served_without_restart() {
    let a = ScriptedSubgraph::start(|_| {
        (
            200,
            json!({"data": {"hello": "hi", "extra": "new"}}).to_string(),
        )
    })
    .await;
    let dir = scratch("new-field");
    let config = write_config(&dir, &a.url, V1);
    let gw = start(&config).await;
    let _watcher = reload::watch(
        gw.state.clone(),
        Origin::Config(config.clone()),
        Arc::new(|_| {}),
        Duration::from_millis(50),
    );

    let before = ask(&gw, "{ extra }").await;
    assert!(
        before["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("extra"),
        "{before}"
    );

    std::fs::write(dir.join("a.graphql"), V2).expect("write v2");
    let after = eventually(&gw, "{ hello extra }", |b| b.get("errors").is_none()).await;
    assert_eq!(after["data"], json!({"hello": "hi", "extra": "new"}));
    gw.shutdown().await;
}

#[tokio::test]
async fn an_invalid_change_is_rejected_and_the_old_version_keeps_serving() {
    let a = ScriptedSubgraph::start(|_| {
        (
            200,
            json!({"data": {"hello": "hi", "extra": "new"}}).to_string(),
        )
    })
    .await;
    let dir = scratch("invalid");
    let config = write_config(&dir, &a.url, V1);
    let gw = start(&config).await;
    let origin = Origin::Config(config.clone());

    // Broken YAML, then an SDL that does not compose: both rejected with a reason.
    std::fs::write(&config, "subgraphs: [ {").expect("write");
    match reload::reload(&gw.state, &origin, &|_| {}).await {
        Outcome::Rejected(e) => assert!(e.to_string().contains("gateway.yaml"), "{e}"),
        Outcome::Swapped => panic!("broken YAML must be rejected"),
    }
    assert_eq!(ask(&gw, "{ hello }").await["data"]["hello"], "hi");

    write_config(&dir, &a.url, "type Query { hello: Strin }");
    match reload::reload(&gw.state, &origin, &|_| {}).await {
        Outcome::Rejected(e) => assert!(e.to_string().contains("Strin"), "{e}"),
        Outcome::Swapped => panic!("an invalid SDL must be rejected"),
    }
    assert_eq!(ask(&gw, "{ hello }").await["data"]["hello"], "hi");

    // The watcher also keeps serving through a broken file and picks up the fix.
    let _watcher = reload::watch(
        gw.state.clone(),
        origin,
        Arc::new(|_| {}),
        Duration::from_millis(50),
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(ask(&gw, "{ hello }").await["data"]["hello"], "hi");
    write_config(&dir, &a.url, V2);
    eventually(&gw, "{ extra }", |b| b["data"]["extra"] == "new").await;
    gw.shutdown().await;
}

#[tokio::test]
async fn requests_in_flight_survive_a_swap_and_a_graceful_shutdown() {
    let a = ScriptedSubgraph::start_with_delay(Duration::from_millis(600), |_| {
        (200, json!({"data": {"hello": "slow"}}).to_string())
    })
    .await;
    let dir = scratch("in-flight");
    let config = write_config(&dir, &a.url, V1);
    let gw = start(&config).await;
    let url = gw.url();

    let in_flight = tokio::spawn({
        let url = url.clone();
        async move { post_json(&client(), &url, &json!({"query": "{ hello }"})).await }
    });
    // Wait (bounded) until the upstream has the request, then swap the engine.
    for _ in 0..100 {
        if !a.received().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    write_config(&dir, &a.url, V2);
    assert!(matches!(
        reload::reload(&gw.state, &Origin::Config(config.clone()), &|_| {}).await,
        Outcome::Swapped
    ));
    let reply = in_flight.await.expect("task");
    assert_eq!(reply.body["data"]["hello"], "slow");

    // Graceful shutdown drains a slow request.
    let before = a.received().len();
    let slow =
        tokio::spawn(
            async move { post_json(&client(), &url, &json!({"query": "{ hello }"})).await },
        );
    for _ in 0..100 {
        if a.received().len() > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gw.shutdown().await;
    let reply = slow.await.expect("task");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["data"]["hello"], "slow");
}

#[tokio::test]
async fn client_rate_limit_changes_apply_on_reload() {
    let a = ScriptedSubgraph::start(|_| (200, json!({"data": {"hello": "hi"}}).to_string())).await;
    let dir = scratch("access");
    let config = write_config(&dir, &a.url, V1);
    let with_limit = |n: u32| {
        let base = std::fs::read_to_string(&config).expect("config");
        let base = base.split("rate_limit:").next().unwrap_or("").to_string();
        std::fs::write(
            &config,
            format!("{base}rate_limit:\n  enabled: true\n  tiers:\n    anonymous: {{ requests: {n}, per: 1h }}\n"),
        )
        .expect("write");
    };
    with_limit(50);
    let gw = start(&config).await;
    let limit = |gw_url: String| async move {
        let r = post_json(&client(), &gw_url, &json!({"query": "{ hello }"})).await;
        r.headers
            .get("ratelimit-limit")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(limit(gw.url()).await, "50");
    with_limit(70);
    assert!(matches!(
        reload::reload(&gw.state, &Origin::Config(config.clone()), &|_| {}).await,
        Outcome::Swapped
    ));
    assert_eq!(limit(gw.url()).await, "70");
    gw.shutdown().await;
}
