//! `floor`: the least work any gateway could do for the benchmark query, the yardstick
//! of `loadbench --gateways floor,...`. It is not a gateway. At start it records the
//! subgraph requests our gateway makes for the query (an in-process gateway behind a
//! recording proxy in front of the mocks) and groups them into the plan's steps; then,
//! for every client request, it sends the same requests with the same bodies (prepared
//! once, in the same order, each step's at once) and answers the subgraph bodies spliced
//! into one JSON document, parsing none of them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use anyhow::{Context as _, ensure};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use clap::Parser;

/// Serve the benchmark query's floor: its subgraph requests, nothing else.
#[derive(Debug, Parser)]
#[command(name = "floor")]
struct Cli {
    /// Where to serve (`POST /graphql`, any body).
    #[arg(long)]
    listen: SocketAddr,
    /// The supergraph, with the subgraphs' real URLs.
    #[arg(long)]
    supergraph: PathBuf,
    /// The operation whose subgraph requests are replayed.
    #[arg(long)]
    query: PathBuf,
}

/// One subgraph request as our gateway sent it.
struct Call {
    url: String,
    body: Bytes,
    started: Instant,
    ended: Instant,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let sdl = std::fs::read_to_string(&cli.supergraph)
        .with_context(|| format!("reading {}", cli.supergraph.display()))?;
    let query = std::fs::read_to_string(&cli.query)
        .with_context(|| format!("reading {}", cli.query.display()))?;
    let steps = record(&sdl, &query).await?;
    let calls: usize = steps.iter().map(Vec::len).sum();
    eprintln!(
        "floor: {calls} subgraph requests in {} steps per client request",
        steps.len()
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .build()?;
    let app = axum::Router::new()
        .route("/graphql", axum::routing::post(replay))
        .with_state(Arc::new((client, steps)));
    let listener = tokio::net::TcpListener::bind(cli.listen).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

type Steps = Vec<Vec<(String, Bytes)>>;

/// The recorded requests, step by step; the answer is `{"data":[<body>,...]}` with every
/// subgraph body as it came.
async fn replay(State(state): State<Arc<(reqwest::Client, Steps)>>) -> impl IntoResponse {
    let (client, steps) = &*state;
    let mut out = Vec::with_capacity(16 * 1024);
    out.extend_from_slice(b"{\"data\":[");
    for step in steps {
        let calls = step.iter().map(|(url, body)| async move {
            let response = client
                .post(url)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await?;
            response.bytes().await
        });
        for answer in futures::future::join_all(calls).await {
            let Ok(bytes) = answer else {
                return (StatusCode::BAD_GATEWAY, Vec::new());
            };
            if out.len() > 9 {
                out.push(b',');
            }
            out.extend_from_slice(&bytes);
        }
    }
    out.extend_from_slice(b"]}");
    (StatusCode::OK, out)
}

/// Run the query once through our gateway, with a proxy recording what reaches each
/// subgraph; a call that starts after every earlier one ended opens a new step.
async fn record(sdl: &str, query: &str) -> anyhow::Result<Steps> {
    let snapshot = gateway::schema::SchemaSnapshot::from_supergraph_sdl(sdl)
        .map_err(|e| anyhow::anyhow!("the supergraph does not load: {e}"))?;
    let targets: Vec<(String, String)> = snapshot
        .supergraph
        .graphs
        .iter()
        .map(|g| (g.name.clone(), g.url.clone()))
        .collect();
    let calls = Arc::new(Mutex::new(Vec::<Call>::new()));
    let proxy_state = Arc::new((reqwest::Client::new(), targets.clone(), calls.clone()));
    let proxy = axum::Router::new()
        .route("/{graph}", axum::routing::post(forward))
        .with_state(proxy_state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let proxy_addr = listener.local_addr()?;
    let proxy_task = tokio::spawn(async move {
        let _ = axum::serve(listener, proxy).await;
    });

    let config = gateway::config::Config::parse("supergraph: unused.graphql\n", |_| None)
        .map_err(|e| anyhow::anyhow!("default config: {e}"))?;
    let spec = gateway::server::GatewaySpec {
        supergraph_sdl: sdl.to_string(),
        urls: targets
            .iter()
            .map(|(name, _)| (name.clone(), format!("http://{proxy_addr}/{name}")))
            .collect(),
        routes: Default::default(),
        upstream: config.upstream,
        listen: "127.0.0.1:0".into(),
        tls: None,
        limits: config.limits,
        expose_query_plan: false,
        edge: config.edge,
        bffs: Vec::new(),
        access: Default::default(),
        sources: Default::default(),
        bff_supergraphs: Default::default(),
    };
    let running = gateway::server::start(&spec)
        .await
        .map_err(|e| anyhow::anyhow!("the recording gateway does not start: {e}"))?;
    let answer = reqwest::Client::new()
        .post(running.url())
        .header("content-type", "application/json")
        .body(serde_json::json!({ "query": query }).to_string())
        .send()
        .await?;
    let status = answer.status();
    let text = answer.text().await?;
    running.shutdown().await;
    proxy_task.abort();
    ensure!(
        status.is_success() && !text.contains("\"errors\""),
        "the recording run failed (HTTP {status}): {text}"
    );
    let mut calls = std::mem::take(&mut *calls.lock().unwrap_or_else(PoisonError::into_inner));
    ensure!(!calls.is_empty(), "the query made no subgraph request");
    calls.sort_by_key(|c| c.started);
    let mut steps: Steps = Vec::new();
    let mut step_end: Option<Instant> = None;
    for call in calls {
        if step_end.is_none_or(|end| call.started >= end) {
            steps.push(Vec::new());
        }
        step_end = Some(step_end.map_or(call.ended, |end| end.max(call.ended)));
        if let Some(step) = steps.last_mut() {
            step.push((call.url, call.body));
        }
    }
    Ok(steps)
}

type ProxyState = (
    reqwest::Client,
    Vec<(String, String)>,
    Arc<Mutex<Vec<Call>>>,
);

/// The recording proxy: forward to the graph's real URL, remember the request.
async fn forward(
    State(state): State<Arc<ProxyState>>,
    Path(graph): Path<String>,
    body: Bytes,
) -> impl IntoResponse {
    let (client, targets, calls) = &*state;
    let Some((_, url)) = targets.iter().find(|(name, _)| *name == graph) else {
        return (StatusCode::NOT_FOUND, Bytes::new());
    };
    let started = Instant::now();
    let answer = async {
        client
            .post(url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await?
            .bytes()
            .await
    }
    .await;
    calls
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Call {
            url: url.clone(),
            body,
            started,
            ended: Instant::now(),
        });
    match answer {
        Ok(bytes) => (StatusCode::OK, bytes),
        Err(_) => (StatusCode::BAD_GATEWAY, Bytes::new()),
    }
}
