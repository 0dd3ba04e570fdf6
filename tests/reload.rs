//! Hot reload and lifecycle: a changed SDL is served without restart, an invalid change
//! is rejected while the old version keeps serving, swaps and shutdown do not drop
//! requests in flight; a supergraph polled from a registry (a local HTTP server that
//! changes, fails, lags and publishes garbage) is swapped in, the last good one keeps
//! serving, and a start while the registry is down uses the cached copy.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use e2e_tests::scripted::ScriptedSubgraph;
use e2e_tests::{client, metrics_text, post_json, serve_router, single_subgraph_supergraph};
use gateway::config::Config;
use gateway::server::registry::Registry;
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
    ask_at(&gw.url(), query).await
}

async fn ask_at(url: &str, query: &str) -> Value {
    post_json(&client(), url, &json!({"query": query}))
        .await
        .body
}

/// Poll (bounded) until `check` holds for the answer of `url` to `query`.
async fn eventually(url: &str, query: &str, check: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..200 {
        last = ask_at(url, query).await;
        if check(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition never held; last answer: {last}");
}

/// Reload `config` whenever a file it names changes (polled every 50 ms).
fn watch(gw: &RunningGateway, config: &Path) -> reload::Reloader {
    reload::watch(
        gw.state.clone(),
        Origin::Config(config.to_path_buf()),
        Arc::new(|_| {}),
        Duration::from_millis(50),
    )
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
    let _watcher = watch(&gw, &config);

    let before = ask(&gw, "{ extra }").await;
    assert!(
        before["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("extra"),
        "{before}"
    );

    std::fs::write(dir.join("a.graphql"), V2).expect("write v2");
    let after = eventually(&gw.url(), "{ hello extra }", |b| b.get("errors").is_none()).await;
    assert_eq!(after["data"], json!({"hello": "hi", "extra": "new"}));
    gw.shutdown().await;
}

/// A BFF file and the SDLs of its own sources are watched too: a field added to a
/// BFF source's SDL is served on that BFF without restart.
#[tokio::test]
async fn a_new_field_in_a_bff_source_sdl_is_served_without_restart() {
    let a = ScriptedSubgraph::start(|_| (200, json!({"data": {"hello": "hi"}}).to_string())).await;
    let b = ScriptedSubgraph::start(|_| {
        (
            200,
            json!({"data": {"own": "b", "more": "new"}}).to_string(),
        )
    })
    .await;
    let dir = scratch("bff-source");
    let config = write_config(&dir, &a.url, V1);
    std::fs::write(dir.join("b.graphql"), "type Query { own: String }").expect("sdl");
    std::fs::write(
        dir.join("app.yaml"),
        format!(
            "name: app\nauth: {{ allow_anonymous: true }}\nsources:\n  - name: b\n    url: {}\n    schema: {{ file: b.graphql }}\n",
            b.url
        ),
    )
    .expect("bff");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, format!("{text}bffs: [app.yaml]\n")).expect("config");
    let gw = start(&config).await;
    let _watcher = watch(&gw, &config);
    let app = format!("http://{}/bff/app/graphql", gw.addr);
    let first = ask_at(&app, "{ own }").await;
    assert_eq!(first["data"]["own"], "b", "{first}");
    std::fs::write(
        dir.join("b.graphql"),
        "type Query { own: String more: String }",
    )
    .expect("write");
    let last = eventually(&app, "{ own more }", |b| b.get("errors").is_none()).await;
    assert_eq!(last["data"], json!({"own": "b", "more": "new"}), "{last}");
    // The unified endpoint never had the BFF's fields.
    assert!(ask(&gw, "{ own }").await.get("errors").is_some());
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
    eventually(&gw.url(), "{ extra }", |b| b["data"]["extra"] == "new").await;
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

/// How the test registry answers.
#[derive(Clone)]
enum Publish {
    /// The SDL with this ETag (`304` to a matching `If-None-Match`).
    Sdl {
        sdl: String,
        etag: String,
    },
    Fail,
    /// Answers only after this long.
    Lag(Duration),
}

#[derive(Default)]
struct RegistrySeen {
    requests: usize,
    if_none_match: Vec<String>,
    keys: Vec<String>,
}

/// A schema registry on a real socket, serving `/supergraph` as told.
struct TestRegistry {
    url: String,
    publish: Arc<std::sync::Mutex<Publish>>,
    seen: Arc<std::sync::Mutex<RegistrySeen>>,
}

impl TestRegistry {
    async fn start(first: Publish) -> Self {
        let publish = Arc::new(std::sync::Mutex::new(first));
        let seen = Arc::new(std::sync::Mutex::<RegistrySeen>::default());
        let (p, s) = (publish.clone(), seen.clone());
        let app = axum::Router::new().route(
            "/supergraph",
            axum::routing::get(move |headers: axum::http::HeaderMap| {
                let (publish, seen) = (p.clone(), s.clone());
                async move {
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_string()
                    };
                    let asked = header("if-none-match");
                    {
                        let mut seen = seen.lock().expect("seen");
                        seen.requests += 1;
                        seen.keys.push(header("x-hive-cdn-key"));
                        if !asked.is_empty() {
                            seen.if_none_match.push(asked.clone());
                        }
                    }
                    let now = publish.lock().expect("publish").clone();
                    match now {
                        Publish::Fail => (
                            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                            [("etag", String::new())],
                            String::new(),
                        ),
                        Publish::Lag(wait) => {
                            tokio::time::sleep(wait).await;
                            (
                                axum::http::StatusCode::OK,
                                [("etag", "\"late\"".to_string())],
                                String::new(),
                            )
                        }
                        Publish::Sdl { etag, .. } if etag == asked => (
                            axum::http::StatusCode::NOT_MODIFIED,
                            [("etag", etag)],
                            String::new(),
                        ),
                        Publish::Sdl { sdl, etag } => {
                            (axum::http::StatusCode::OK, [("etag", etag)], sdl)
                        }
                    }
                }
            }),
        );
        let (addr, _) = serve_router(app).await;
        let url = format!("http://{addr}/supergraph");
        TestRegistry { url, publish, seen }
    }

    fn publish(&self, next: Publish) {
        *self.publish.lock().expect("publish") = next;
    }

    fn requests(&self) -> usize {
        self.seen.lock().expect("seen").requests
    }
}

fn published(sdl: &str, etag: &str) -> Publish {
    Publish::Sdl {
        sdl: sdl.to_string(),
        etag: format!("\"{etag}\""),
    }
}

/// The value of a counter line in the metrics text (0 when absent).
fn counter(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

fn registry_config(dir: &Path, url: &str) -> PathBuf {
    let config = dir.join("gateway.yaml");
    std::fs::write(
        &config,
        format!("listen: 127.0.0.1:0\nregistry:\n  url: {url}\n  key_header: X-Hive-CDN-Key\n  key: ${{TEST_CDN_KEY:-cdn-secret}}\n  poll_interval: 100ms\n  jitter: 20ms\n  timeout: 300ms\n  cache_file: cache/supergraph.graphql\n"),
    )
    .expect("config");
    config
}

/// Start a gateway from `config`'s registry (fetched, or the cache) and poll it.
async fn start_from_registry(
    config: &Path,
) -> Result<(RunningGateway, Option<reload::Poller>), gateway::server::StartupError> {
    let section = Config::load(config)
        .expect("config")
        .registry
        .expect("registry");
    let registry = Arc::new(Registry::new(section)?);
    registry.load().await?;
    let origin = Origin::Registry {
        config: Some(config.to_path_buf()),
        registry,
    };
    let gw = server::start(&origin.spec(None).await?).await?;
    let poller = reload::poll_registry(gw.state.clone(), origin, Arc::new(|_| {}));
    Ok((gw, poller))
}

/// Wait (bounded) until the registry polls counter `result` reaches `at_least`.
async fn polls_reach(gw: &RunningGateway, result: &str, at_least: u64) -> u64 {
    let series = format!("gateway_registry_polls_total{{result=\"{result}\"}}");
    for _ in 0..200 {
        let n = counter(&metrics_text(gw.addr).await, &series);
        if n >= at_least {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{series} never reached {at_least}");
}

#[tokio::test]
async fn a_registry_supergraph_is_polled_swapped_in_and_outlives_registry_failures() {
    let a = ScriptedSubgraph::start(|_| {
        (
            200,
            json!({"data": {"hello": "hi", "extra": "new"}}).to_string(),
        )
    })
    .await;
    let registry =
        TestRegistry::start(published(&single_subgraph_supergraph(&a.url, V1), "v1")).await;
    let dir = scratch("registry");
    let config = registry_config(&dir, &registry.url);
    let (gw, _poller) = start_from_registry(&config).await.expect("starts");
    assert_eq!(ask(&gw, "{ hello }").await["data"]["hello"], "hi");
    let cache = dir.join("cache/supergraph.graphql");
    assert_eq!(
        std::fs::read_to_string(&cache).expect("cached"),
        single_subgraph_supergraph(&a.url, V1)
    );

    // Unchanged: conditional polls, answered 304.
    polls_reach(&gw, "not_modified", 2).await;
    {
        let seen = registry.seen.lock().expect("seen");
        assert!(
            seen.if_none_match.iter().all(|e| e == "\"v1\""),
            "{:?}",
            seen.if_none_match
        );
        assert!(
            seen.keys.iter().all(|k| k == "cdn-secret"),
            "{:?}",
            seen.keys
        );
    }

    // A new version is swapped in and cached.
    registry.publish(published(&single_subgraph_supergraph(&a.url, V2), "v2"));
    eventually(&gw.url(), "{ extra }", |b| b["data"]["extra"] == "new").await;
    assert_eq!(polls_reach(&gw, "swapped", 1).await, 1);
    assert_eq!(
        std::fs::read_to_string(&cache).expect("cached"),
        single_subgraph_supergraph(&a.url, V2)
    );

    // Down, then too slow: the last good version serves.
    registry.publish(Publish::Fail);
    let failed = polls_reach(&gw, "fetch_failed", 2).await;
    assert_eq!(ask(&gw, "{ extra }").await["data"]["extra"], "new");
    registry.publish(Publish::Lag(Duration::from_secs(2)));
    polls_reach(&gw, "fetch_failed", failed + 2).await;
    assert_eq!(ask(&gw, "{ extra }").await["data"]["extra"], "new");

    // Garbage is rejected once (its ETag is remembered), not cached, not served.
    registry.publish(published("this is not a supergraph {", "bad"));
    assert_eq!(polls_reach(&gw, "invalid", 1).await, 1);
    let polls = registry.requests();
    while registry.requests() < polls + 3 {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let metrics = metrics_text(gw.addr).await;
    assert_eq!(
        counter(&metrics, "gateway_registry_polls_total{result=\"invalid\"}"),
        1
    );
    assert_eq!(ask(&gw, "{ extra }").await["data"]["extra"], "new");
    assert_eq!(
        std::fs::read_to_string(&cache).expect("cached"),
        single_subgraph_supergraph(&a.url, V2)
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn a_gateway_starts_from_its_cached_supergraph_while_the_registry_is_down() {
    let a = ScriptedSubgraph::start(|_| {
        (
            200,
            json!({"data": {"hello": "hi", "extra": "new"}}).to_string(),
        )
    })
    .await;
    let registry = TestRegistry::start(Publish::Fail).await;
    let dir = scratch("registry-cached");
    let config = registry_config(&dir, &registry.url);

    // Nothing cached yet: start-up fails and says why.
    let error = start_from_registry(&config)
        .await
        .err()
        .expect("no schema at all");
    let message = error.to_string();
    assert!(
        message.contains("answered 500") && message.contains("no cached supergraph"),
        "{message}"
    );

    // With a cached copy it starts and serves it, then follows the registry once it
    // is back.
    std::fs::create_dir_all(dir.join("cache")).expect("dir");
    std::fs::write(
        dir.join("cache/supergraph.graphql"),
        single_subgraph_supergraph(&a.url, V2),
    )
    .expect("cache");
    let (gw, _poller) = start_from_registry(&config)
        .await
        .expect("starts from the cache");
    assert_eq!(ask(&gw, "{ extra }").await["data"]["extra"], "new");
    registry.publish(published(&single_subgraph_supergraph(&a.url, V1), "v1"));
    eventually(&gw.url(), "{ extra }", |b| b["errors"].is_array()).await;
    assert_eq!(ask(&gw, "{ hello }").await["data"]["hello"], "hi");
    gw.shutdown().await;
}
