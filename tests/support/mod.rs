//! Test kit for end-to-end tests: real subgraph servers and a real gateway on ephemeral
//! loopback ports, and a small client that speaks GraphQL-over-HTTP to the gateway.

pub mod access;
pub mod certs;
pub mod fixture_subgraph;
pub mod node;
pub mod oracle;
pub mod otlp;
pub mod redis_servers;
pub mod scripted;
pub mod ws;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use gateway::config::Config;
use gateway::server::{self, GatewaySpec, RunningGateway};
use serde_json::{Value, json};
use subgraph_mocks::MockSubgraphs;

/// The workspace root, for the bundled config and fixtures.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// A loopback port nobody listens on now, for a child process to bind.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Run `tests/python/<script>` with `args` and return its standard output: the tests
/// that check our output with independent validators from PyPI use it. `None` (with a
/// note) outside CI when Python or the script's `packages` are missing; in CI, where
/// `.ci/run` installs them, a panic.
pub fn python_check(script: &str, packages: &str, args: &[&std::ffi::OsStr]) -> Option<Vec<u8>> {
    let out = std::process::Command::new("python3")
        .arg(workspace_root().join("tests/python").join(script))
        .args(args)
        .output();
    match out {
        Ok(out) if out.status.success() => Some(out.stdout),
        other => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("python3 with {packages} is missing in CI (.ci/run installs it): {other:?}");
            }
            eprintln!("note: python3 with {packages} is missing, skipping {script}");
            None
        }
    }
}

/// The benchmark query (`../shared/bench/federation-query.graphql`, copied as a fixture).
pub fn benchmark_query() -> String {
    std::fs::read_to_string(workspace_root().join("gateway/tests/fixtures/benchmark-query.graphql"))
        .expect("benchmark query fixture")
}

/// The four benchmark subgraphs and a gateway composed from `schemas/gateway.yaml`.
pub struct TestEnv {
    pub mocks: MockSubgraphs,
    pub gateway: RunningGateway,
    pub client: reqwest::Client,
}

/// A gateway response: status, content type and JSON body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl TestEnv {
    /// Mocks on one listener (a `down` subgraph drops connections).
    pub async fn start() -> Self {
        let mocks = MockSubgraphs::start("127.0.0.1:0")
            .await
            .expect("start mocks");
        Self::with_mocks(mocks, |_| {}).await
    }

    /// Each mock on its own listener (a `down` subgraph refuses connections).
    pub async fn start_separate() -> Self {
        let mocks = MockSubgraphs::start_separate("127.0.0.1")
            .await
            .expect("start mocks");
        Self::with_mocks(mocks, |_| {}).await
    }

    pub async fn with_mocks(mocks: MockSubgraphs, tweak: impl FnOnce(&mut GatewaySpec)) -> Self {
        let config =
            Config::load(&workspace_root().join("schemas/gateway.yaml")).expect("example config");
        let mut spec = GatewaySpec::from_config(&config)
            .await
            .expect("compose example graph");
        spec.urls = subgraph_mocks::SUBGRAPHS
            .iter()
            .map(|name| (name.to_string(), mocks.url(name)))
            .collect::<HashMap<_, _>>();
        spec.access
            .auth
            .redirect_jwks(subgraph_mocks::issuer::JWKS_PATH, &mocks.jwks_url());
        spec.listen = "127.0.0.1:0".into();
        spec.upstream.defaults.timeout = Some(Duration::from_secs(5));
        tweak(&mut spec);
        let gateway = server::start(&spec).await.expect("start gateway");
        TestEnv {
            mocks,
            gateway,
            client: client(),
        }
    }

    pub async fn query(&self, query: &str, variables: Value) -> Value {
        let reply = post_json(
            &self.client,
            &self.gateway.url(),
            &json!({"query": query, "variables": variables}),
        )
        .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        reply.body
    }

    pub async fn shutdown(self) {
        self.gateway.shutdown().await;
        self.mocks.shutdown().await;
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("http client")
}

pub async fn post_json(client: &reqwest::Client, url: &str, body: &Value) -> Reply {
    send(
        client
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string()),
    )
    .await
}

pub async fn send(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.expect("gateway answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply {
        status,
        content_type,
        headers,
        body,
    }
}

/// Start a gateway for a supergraph SDL whose subgraph URLs are given by name.
pub async fn gateway_for(supergraph_sdl: &str, urls: &[(&str, String)]) -> RunningGateway {
    gateway_with_upstream(supergraph_sdl, urls, "").await
}

/// Like [`gateway_for`], with an `upstream:` policy section given as YAML (indented
/// under `upstream:`), e.g. `"  retry: { max_attempts: 3 }"`.
pub async fn gateway_with_upstream(
    supergraph_sdl: &str,
    urls: &[(&str, String)],
    upstream_yaml: &str,
) -> RunningGateway {
    let config = if upstream_yaml.trim().is_empty() {
        String::new()
    } else {
        format!("upstream:\n{upstream_yaml}\n")
    };
    gateway_with_config(supergraph_sdl, urls, &config).await
}

/// Like [`gateway_for`], with the `upstream:`, `limits:` and `edge:` sections of a
/// config file given as YAML.
pub async fn gateway_with_config(
    supergraph_sdl: &str,
    urls: &[(&str, String)],
    config_yaml: &str,
) -> RunningGateway {
    let config = Config::parse(
        &format!("supergraph: unused.graphql\n{config_yaml}\n"),
        |_| None,
    )
    .expect("valid config YAML");
    let mut limits = config.limits;
    limits.max_body_bytes = 64 * 1024;
    let spec = GatewaySpec {
        supergraph_sdl: supergraph_sdl.to_string(),
        urls: urls
            .iter()
            .map(|(n, u)| (n.to_string(), u.clone()))
            .collect(),
        routes: Default::default(),
        upstream: config.upstream,
        listen: "127.0.0.1:0".into(),
        tls: None,
        limits,
        expose_query_plan: true,
        edge: config.edge,
        bffs: Vec::new(),
        access: Default::default(),
        sources: Default::default(),
        bff_supergraphs: Default::default(),
    };
    server::start(&spec).await.expect("start gateway")
}

/// The error messages of a response, for readable assertions.
pub fn error_messages(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["message"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The `/metrics` text of a gateway.
/// Serve `app` on a free loopback port in the background.
pub async fn serve_router(
    app: axum::Router,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("local address");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, task)
}

/// The supergraph of one subgraph `a` at `url` with `sdl`.
pub fn single_subgraph_supergraph(url: &str, sdl: &str) -> String {
    gateway::schema::compose::compose(&[gateway::schema::compose::SubgraphInput {
        name: "a".into(),
        url: url.into(),
        sdl: sdl.into(),
    }])
    .expect("composes")
}

pub async fn metrics_text(addr: std::net::SocketAddr) -> String {
    client()
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text")
}
