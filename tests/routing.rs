//! Traffic routing over real sockets: several instances per subgraph (round robin, least
//! in-flight, passive health), weighted versions with a pinning header, and header
//! rules. Every assertion counts requests the scripted instances received; waits are
//! bounded polls, never sleeps that a slow machine could outrun.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use e2e_tests::scripted::ScriptedSubgraph;
use e2e_tests::{client, post_json, send};
use gateway::config::Config;
use gateway::server::{self, GatewaySpec, RunningGateway};
use serde_json::{Value, json};

/// An instance that answers `hello` and `who` with its own name.
async fn instance(name: &'static str) -> ScriptedSubgraph {
    instance_with(name, Duration::ZERO, Arc::new(AtomicBool::new(false))).await
}

/// ... slow by `delay`, or failing with 503 while `failing` is set.
async fn instance_with(
    name: &'static str,
    delay: Duration,
    failing: Arc<AtomicBool>,
) -> ScriptedSubgraph {
    ScriptedSubgraph::start_with_delay(delay, move |req| {
        if failing.load(Ordering::SeqCst) {
            return (503, "unavailable".into());
        }
        let query = req["query"].as_str().unwrap_or("");
        let mut data = serde_json::Map::new();
        for field in ["hello", "who"] {
            if query.contains(field) {
                data.insert(field.into(), json!(name));
            }
        }
        (200, json!({ "data": data }).to_string())
    })
    .await
}

static CONFIGS: AtomicUsize = AtomicUsize::new(0);

/// A gateway from a real config file: subgraph `a` with `targets` (YAML lines of the
/// subgraph entry: `url`, `urls`, `versions`, ...) and an `upstream:` section.
async fn gateway(targets: &str, upstream: &str) -> RunningGateway {
    let n = CONFIGS.fetch_add(1, Ordering::SeqCst);
    let sdl = std::env::temp_dir().join(format!("routing-{}-{n}.graphql", std::process::id()));
    std::fs::write(&sdl, "type Query { hello: String who: String }").expect("write SDL");
    let text = format!(
        "listen: 127.0.0.1:0\nsubgraphs:\n  - name: a\n    schema: {{ file: {} }}\n{}\nupstream:\n  timeout: 10s\n{upstream}\n",
        sdl.display(),
        indent(targets, 4),
    );
    let config = Config::parse(&text, |_| None).expect("valid config");
    let spec = GatewaySpec::from_config(&config).await.expect("composes");
    let gateway = server::start(&spec).await.expect("starts");
    let _ = std::fs::remove_file(&sdl);
    gateway
}

fn indent(yaml: &str, by: usize) -> String {
    yaml.lines()
        .map(|l| format!("{}{l}", " ".repeat(by)))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn ask(url: &str, query: &str) -> Value {
    post_json(&client(), url, &json!({ "query": query }))
        .await
        .body
}

/// Ask `{ hello }` and return which instance answered.
async fn hello(url: &str) -> String {
    let body = ask(url, "{ hello }").await;
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["hello"].as_str().unwrap_or("").to_string()
}

async fn hello_with(url: &str, header: (&str, &str)) -> String {
    let reply = send(
        client()
            .post(url)
            .header("content-type", "application/json")
            .header(header.0, header.1)
            .body(json!({ "query": "{ hello }" }).to_string()),
    )
    .await;
    assert!(reply.body.get("errors").is_none(), "{:?}", reply.body);
    reply.body["data"]["hello"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[tokio::test]
async fn round_robin_spreads_requests_evenly_over_instances() {
    let (a, b, c) = (
        instance("a").await,
        instance("b").await,
        instance("c").await,
    );
    let gw = gateway(&format!("urls: [{}, {}, {}]", a.url, b.url, c.url), "").await;
    let mut answered = Vec::new();
    for _ in 0..30 {
        answered.push(hello(&gw.url()).await);
    }
    assert_eq!(
        (a.received().len(), b.received().len(), c.received().len()),
        (10, 10, 10)
    );
    assert_eq!(answered[..3], ["a", "b", "c"], "each instance in turn");
    gw.shutdown().await;
}

#[tokio::test]
async fn least_in_flight_prefers_the_idle_instance() {
    let slow = instance_with(
        "slow",
        Duration::from_secs(3),
        Arc::new(AtomicBool::new(false)),
    )
    .await;
    let fast = instance("fast").await;
    let gw = gateway(
        &format!("urls: [{}, {}]", slow.url, fast.url),
        "  load_balancing: least_in_flight",
    )
    .await;

    // Keep one request in flight on the slow instance: send `{ who }` in the background
    // until one lands there (those that land on the fast one finish at once).
    let mut pending = None;
    for _ in 0..10 {
        let url = gw.url();
        let task = tokio::spawn(async move { ask(&url, "{ who }").await });
        let before = fast.received().len();
        let mut waited = 0;
        while slow.received().is_empty() && fast.received().len() == before && waited < 500 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            waited += 1;
        }
        if !slow.received().is_empty() {
            pending = Some(task);
            break;
        }
        task.await.expect("fast answer");
    }
    let pending = pending.expect("a request reached the slow instance");

    // While it is busy, every new request goes to the idle instance.
    let before = fast.received().len();
    for _ in 0..10 {
        assert_eq!(hello(&gw.url()).await, "fast");
    }
    assert_eq!(fast.received().len() - before, 10);
    assert_eq!(slow.received().len(), 1);
    let body = pending.await.expect("slow answer");
    assert_eq!(body["data"]["who"], "slow", "{body}");
    gw.shutdown().await;
}

#[tokio::test]
async fn a_failing_instance_is_ejected_then_comes_back() {
    let failing = Arc::new(AtomicBool::new(true));
    let a = instance("a").await;
    let b = instance_with("b", Duration::ZERO, failing.clone()).await;
    let c = instance("c").await;
    let gw = gateway(
        &format!("urls: [{}, {}, {}]", a.url, b.url, c.url),
        "  passive_health: { consecutive_failures: 2, ejection_time: 2s }\n  retry: { max_attempts: 3, base_delay: 1ms, max_delay: 2ms }\n  circuit_breaker: { enabled: false }",
    )
    .await;
    // Retries land on another instance, so clients never see b's failures; after two
    // in a row b is out and receives nothing more.
    for _ in 0..30 {
        assert_ne!(hello(&gw.url()).await, "b");
    }
    assert_eq!(
        b.received().len(),
        2,
        "ejected after 2 consecutive failures"
    );
    assert_eq!(a.received().len() + c.received().len(), 30);

    // Healed: once the ejection time is over, b gets traffic again.
    failing.store(false, Ordering::SeqCst);
    let mut back = false;
    for _ in 0..200 {
        if hello(&gw.url()).await == "b" {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(back, "the instance never came back");
    gw.shutdown().await;
}

#[tokio::test]
async fn weighted_versions_split_traffic_exactly_and_a_header_pins_one() {
    let (s1, s2, canary) = (
        instance("s1").await,
        instance("s2").await,
        instance("canary").await,
    );
    let targets = format!(
        "versions:\n  - {{ name: stable, urls: [{}, {}], weight: 90 }}\n  - {{ name: canary, url: {}, weight: 10 }}\nversion_header: x-canary-version",
        s1.url, s2.url, canary.url
    );
    let gw = gateway(&targets, "").await;
    for _ in 0..100 {
        hello(&gw.url()).await;
    }
    assert_eq!(canary.received().len(), 10);
    assert_eq!((s1.received().len(), s2.received().len()), (45, 45));

    // The header pins a request to a version, whatever the weights.
    for _ in 0..10 {
        assert_eq!(
            hello_with(&gw.url(), ("x-canary-version", "canary")).await,
            "canary"
        );
    }
    for _ in 0..10 {
        let answer = hello_with(&gw.url(), ("x-canary-version", "stable")).await;
        assert!(answer == "s1" || answer == "s2", "{answer}");
    }
    assert_eq!(canary.received().len(), 20);
    assert_eq!(s1.received().len() + s2.received().len(), 100);
    gw.shutdown().await;
}

/// The pinning header decides which version answers, so fetches that differ only in it
/// are different fetches: neither the in-flight de-duplication nor the response cache
/// may hand one version's answer to a request pinned to the other.
#[tokio::test]
async fn requests_pinned_to_different_versions_never_share_an_answer() {
    let never = Arc::new(AtomicBool::new(false));
    let stable = instance_with("stable", Duration::from_millis(300), never.clone()).await;
    let canary = instance_with("canary", Duration::from_millis(300), never).await;
    let targets = format!(
        "versions:\n  - {{ name: stable, url: {}, weight: 1 }}\n  - {{ name: canary, url: {}, weight: 1 }}\nversion_header: x-canary-version",
        stable.url, canary.url
    );
    for upstream in ["", "  cache: { enabled: true, ttl: 60s }"] {
        let gw = gateway(&targets, upstream).await;
        let url = gw.url();
        // At the same time: identical fetches, one pinned to each version.
        let (a, b) = tokio::join!(
            hello_with(&url, ("x-canary-version", "canary")),
            hello_with(&url, ("x-canary-version", "stable")),
        );
        assert_eq!((a.as_str(), b.as_str()), ("canary", "stable"), "{upstream}");
        // One after the other: a cached answer of one version is not the other's.
        assert_eq!(
            hello_with(&url, ("x-canary-version", "stable")).await,
            "stable"
        );
        assert_eq!(
            hello_with(&url, ("x-canary-version", "canary")).await,
            "canary"
        );
        gw.shutdown().await;
    }
}

#[tokio::test]
async fn header_rules_reach_the_upstream() {
    let a = instance("a").await;
    let gw = gateway(
        &format!("url: {}", a.url),
        "  auth: { forward_headers: [x-internal-token] }\n  sources:\n    a:\n      header_rules:\n        - add: { name: x-gateway, value: \"1\" }\n        - add: { name: x-tenant, from_client: x-tenant-id }\n        - remove: x-internal-token\n        - rename: { from: x-client-id, to: x-caller }",
    )
    .await;
    let reply = send(
        client()
            .post(gw.url())
            .header("content-type", "application/json")
            .header("x-internal-token", "secret")
            .header("x-client-id", "c42")
            .header("x-tenant-id", "t1")
            .body(json!({ "query": "{ hello }" }).to_string()),
    )
    .await;
    assert_eq!(reply.body, json!({ "data": { "hello": "a" } }));
    let seen = a.received_headers().pop().expect("called");
    assert_eq!(seen["x-gateway"], "1");
    assert_eq!(seen["x-tenant"], "t1");
    assert_eq!(seen["x-caller"], "c42");
    assert!(seen.get("x-internal-token").is_none(), "{seen:?}");
    assert!(seen.get("x-client-id").is_none(), "{seen:?}");
    assert!(seen.get("x-tenant-id").is_none(), "{seen:?}");
    gw.shutdown().await;
}

#[test]
fn routing_config_errors_are_clear() {
    let subgraph = |lines: &str| {
        format!(
            "subgraphs:\n  - name: a\n    schema: {{ file: a.graphql }}\n{}\n",
            indent(lines, 4)
        )
    };
    let cases = [
        (
            subgraph("url: http://x/\nurls: [http://y/]"),
            "set exactly one of `url`, `urls` (several instances) or `versions`",
        ),
        (subgraph(""), "set exactly one of `url`, `urls`"),
        (subgraph("urls: []"), "`urls` is an empty list"),
        (subgraph("urls: [http://x/, nope]"), "invalid url \"nope\""),
        (
            subgraph("versions:\n  - { name: s, url: http://x/, weight: 0 }"),
            "versions[0] (s): `weight` must be a positive integer, got 0",
        ),
        (
            subgraph("versions:\n  - { name: s, url: http://x/, weight: -5 }"),
            "`weight` must be a positive integer, got -5",
        ),
        (
            subgraph(
                "versions:\n  - { name: s, url: http://x/, weight: 1 }\n  - { name: s, url: http://y/, weight: 1 }",
            ),
            "the version name `s` is used twice",
        ),
        (
            subgraph("versions:\n  - { name: s, weight: 1 }"),
            "set exactly one of `url` or `urls`",
        ),
        (subgraph("versions: []"), "`versions` is an empty list"),
        (
            subgraph("url: http://x/\nversion_header: x-v"),
            "`version_header` pins a request to one of `versions`",
        ),
        (
            subgraph(
                "versions:\n  - { name: s, url: http://x/, weight: 1 }\nversion_header: \"bad header\"",
            ),
            "is not a valid header name",
        ),
        (
            subgraph("kind: rest\nurls: [http://x/, http://y/]"),
            "`urls` and `versions` are for GraphQL subgraphs",
        ),
        (
            format!(
                "{}upstream:\n  load_balancing: random\n",
                subgraph("url: http://x/")
            ),
            "unknown variant `random`, expected `round_robin` or `least_in_flight`",
        ),
        (
            format!(
                "{}upstream:\n  sources:\n    a:\n      header_rules:\n        - remove: \"x bad\"\n",
                subgraph("url: http://x/")
            ),
            "a: header_rules[0]: \"x bad\" is not a valid header name",
        ),
        (
            format!(
                "{}upstream:\n  passive_health: {{ consecutive_failures: 0 }}\n",
                subgraph("url: http://x/")
            ),
            "passive_health.consecutive_failures must be at least 1",
        ),
    ];
    for (text, expected) in cases {
        let err = Config::parse(&text, |_| None).expect_err(&text);
        assert!(err.contains(expected), "{text}\n=> {err}");
    }
}
