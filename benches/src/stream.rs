//! `streambench`: subscriptions under load, with the release binaries as real processes.
//!
//! Starts `subgraph-mocks` and `gateway` (built beforehand with
//! `cargo build --profile dist -p gateway -p subgraph-mocks`) on the example graph's four
//! subgraphs, then measures over `graphql-transport-ws`:
//! - idle: the gateway's resident memory per open subscription (N clients, each with one
//!   `reviewAdded` subscription, idle; identical ones share one upstream subscription);
//! - fan-out: one upstream event to F subscribers, event after event (the next one is
//!   emitted once every subscriber has the previous): deliveries per second, delivery
//!   latency from the emit to each client's receipt, gateway CPU per delivery.
//!
//! See `benches/README.md`.

#[allow(dead_code)]
#[path = "child.rs"]
mod child;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use clap::Parser;
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::net::TcpStream;
use tokio::sync::{Mutex, Notify};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use child::{Service, clock_ticks, cpu_seconds, free_port, rss_bytes, wait_until_ready};

const DEFAULT_BIN_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/dist");
const SUBGRAPHS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/subgraphs");
const SUBSCRIPTION: &str = "subscription { reviewAdded { id body } }";
const TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Parser)]
#[command(name = "streambench")]
struct Cli {
    /// Idle subscriptions (one connection each).
    #[arg(long, default_value_t = 10_000)]
    idle: usize,
    /// Subscribers of the fan-out run.
    #[arg(long, default_value_t = 1_000)]
    fanout: usize,
    /// Events emitted in the fan-out run.
    #[arg(long, default_value_t = 200)]
    events: usize,
    /// Directory with the release `gateway` and `subgraph-mocks` binaries.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_BIN_DIR)]
    bin_dir: PathBuf,
}

fn progress(message: &str) {
    eprintln!("streambench: {message}");
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let dir = tempfile::Builder::new().prefix("streambench-").tempdir()?;
    let http = reqwest::Client::builder().timeout(TIMEOUT).build()?;
    let mocks_port = free_port()?;
    let mut mocks = Service::spawn(
        "subgraph-mocks",
        &cli.bin_dir.join("subgraph-mocks"),
        &["--listen".into(), format!("127.0.0.1:{mocks_port}")],
        &[],
        dir.path(),
        None,
        dir.path().join("mocks.log"),
    )?;
    let mocks_url = format!("http://127.0.0.1:{mocks_port}");
    wait_until_ready(
        &mut mocks,
        &http,
        &format!("{mocks_url}/accounts"),
        &[],
        false,
    )
    .await?;

    let inputs = subgraph_mocks::SUBGRAPHS
        .iter()
        .map(|name| {
            let sdl = std::fs::read_to_string(format!("{SUBGRAPHS}/{name}.graphql"))?;
            Ok(gateway::schema::compose::SubgraphInput {
                name: name.to_string(),
                url: format!("{mocks_url}/{name}"),
                sdl,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let supergraph = gateway::schema::compose::compose(&inputs)?;
    let supergraph_file = dir.path().join("supergraph.graphql");
    std::fs::write(&supergraph_file, supergraph)?;
    let port = free_port()?;
    let mut gateway = Service::spawn(
        "gateway",
        &cli.bin_dir.join("gateway"),
        &[
            "run".into(),
            "--supergraph".into(),
            supergraph_file.display().to_string(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
        ],
        &[("RUST_LOG".into(), "warn".into())],
        dir.path(),
        None,
        dir.path().join("gateway.log"),
    )?;
    let url = format!("http://127.0.0.1:{port}/graphql");
    wait_until_ready(&mut gateway, &http, &url, &[], false).await?;
    let ws_url = format!("ws://127.0.0.1:{port}/graphql");

    // Idle subscriptions.
    let before = rss_bytes(gateway.pid())?;
    progress(&format!("opening {} idle subscriptions", cli.idle));
    let started = Instant::now();
    let mut idle = Vec::with_capacity(cli.idle);
    for batch in (0..cli.idle).collect::<Vec<_>>().chunks(250) {
        let opened = futures::future::join_all(batch.iter().map(|_| subscribe(&ws_url))).await;
        for socket in opened {
            idle.push(socket?);
        }
    }
    wait_active(&http, &format!("http://127.0.0.1:{port}/metrics"), cli.idle).await?;
    let opened_in = started.elapsed();
    let after = rss_bytes(gateway.pid())?;
    gateway.ensure_running()?;
    let per = (after.saturating_sub(before)) as f64 / cli.idle.max(1) as f64;
    println!("## Subscriptions (graphql-transport-ws), release build\n");
    println!("| idle subscriptions | gateway RSS before | after | per subscription | opened in |");
    println!("| ---: | ---: | ---: | ---: | ---: |");
    println!(
        "| {} | {:.1} MiB | {:.1} MiB | {:.1} KiB | {:.1} s |",
        cli.idle,
        before as f64 / 1048576.0,
        after as f64 / 1048576.0,
        per / 1024.0,
        opened_in.as_secs_f64()
    );
    drop(idle);
    wait_active(&http, &format!("http://127.0.0.1:{port}/metrics"), 0).await?;

    // Fan-out.
    progress(&format!(
        "fan-out: {} subscribers, {} events",
        cli.fanout, cli.events
    ));
    let received = Arc::new(AtomicUsize::new(0));
    let all_in = Arc::new(Notify::new());
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(cli.fanout * cli.events)));
    let emitted_at = Arc::new(std::sync::Mutex::new(Instant::now()));
    let mut readers = Vec::new();
    for batch in (0..cli.fanout).collect::<Vec<_>>().chunks(250) {
        let opened = futures::future::join_all(batch.iter().map(|_| subscribe(&ws_url))).await;
        for socket in opened {
            let mut socket = socket?;
            let (received, all_in, latencies, emitted_at) = (
                received.clone(),
                all_in.clone(),
                latencies.clone(),
                emitted_at.clone(),
            );
            let fanout = cli.fanout;
            readers.push(tokio::spawn(async move {
                while let Some(Ok(frame)) = socket.next().await {
                    let Message::Text(text) = frame else { continue };
                    if !text.as_str().contains("\"type\":\"next\"") {
                        if text.as_str().contains("\"type\":\"ping\"") {
                            let _ = socket.send(Message::text(r#"{"type":"pong"}"#)).await;
                        }
                        continue;
                    }
                    let at = emitted_at.lock().map(|t| t.elapsed()).unwrap_or_default();
                    latencies.lock().await.push(at);
                    if received.fetch_add(1, Ordering::SeqCst) + 1 == fanout {
                        all_in.notify_one();
                    }
                }
            }));
        }
    }
    wait_active(
        &http,
        &format!("http://127.0.0.1:{port}/metrics"),
        cli.fanout,
    )
    .await?;
    let control = format!("{mocks_url}/control/subscriptions/reviews");
    // Until every subscriber is attached upstream: one event, then start counting.
    loop {
        received.store(0, Ordering::SeqCst);
        emit(&http, &control).await?;
        if tokio::time::timeout(Duration::from_secs(2), all_in.notified())
            .await
            .is_ok()
        {
            break;
        }
    }
    latencies.lock().await.clear();
    let ticks = clock_ticks();
    let cpu_before = cpu_seconds(gateway.pid(), ticks)?;
    let started = Instant::now();
    for _ in 0..cli.events {
        received.store(0, Ordering::SeqCst);
        if let Ok(mut t) = emitted_at.lock() {
            *t = Instant::now();
        }
        emit(&http, &control).await?;
        tokio::time::timeout(TIMEOUT, all_in.notified())
            .await
            .context("not every subscriber got the event")?;
    }
    let elapsed = started.elapsed();
    let cpu = cpu_seconds(gateway.pid(), ticks)? - cpu_before;
    gateway.ensure_running()?;
    let mut all = latencies.lock().await.clone();
    all.sort_unstable();
    ensure!(!all.is_empty(), "no delivery measured");
    let pick = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    let deliveries = all.len();
    println!(
        "\n| subscribers | events | deliveries/s | events/s | p50 | p99 | max | gateway CPU per delivery |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    println!(
        "| {} | {} | {:.0} | {:.0} | {:.2} ms | {:.2} ms | {:.2} ms | {:.1} µs |",
        cli.fanout,
        cli.events,
        deliveries as f64 / elapsed.as_secs_f64(),
        cli.events as f64 / elapsed.as_secs_f64(),
        pick(0.5).as_secs_f64() * 1000.0,
        pick(0.99).as_secs_f64() * 1000.0,
        all[all.len() - 1].as_secs_f64() * 1000.0,
        cpu / deliveries as f64 * 1e6,
    );
    for reader in readers {
        reader.abort();
    }
    gateway.stop();
    mocks.stop();
    Ok(())
}

/// One connection with one subscription, acknowledged.
async fn subscribe(url: &str) -> anyhow::Result<Socket> {
    let mut request = url.into_client_request()?;
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
    let tcp = TcpStream::connect(request.uri().authority().map_or("", |a| a.as_str())).await?;
    let (mut socket, _) =
        tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(tcp)).await?;
    socket
        .send(Message::text(r#"{"type":"connection_init"}"#))
        .await?;
    match tokio::time::timeout(TIMEOUT, socket.next()).await {
        Ok(Some(Ok(Message::Text(t)))) if t.as_str().contains("connection_ack") => {}
        other => bail!("no connection_ack: {other:?}"),
    }
    let subscribe = json!({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}});
    socket.send(Message::text(subscribe.to_string())).await?;
    Ok(socket)
}

async fn emit(http: &reqwest::Client, control: &str) -> anyhow::Result<()> {
    let answer = http
        .post(control)
        .header("content-type", "application/json")
        .body(r#"{"emit":"1"}"#)
        .send()
        .await?;
    ensure!(answer.status().is_success(), "emit: {}", answer.status());
    Ok(())
}

/// Wait until the gateway reports `n` running subscriptions.
async fn wait_active(http: &reqwest::Client, metrics: &str, n: usize) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let text = http.get(metrics).send().await?.text().await?;
        let active: f64 = text
            .lines()
            .filter(|l| l.starts_with("gateway_subscriptions_active{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        if active as usize == n {
            return Ok(());
        }
        if start.elapsed() > TIMEOUT {
            bail!("{active} subscriptions active, expected {n}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
