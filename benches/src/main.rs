//! `loadbench`: the federation benchmark scenario under load, with real processes.
//!
//! Starts the release `subgraph-mocks` and `gateway` binaries (built beforehand with
//! `cargo build --release -p gateway -p subgraph-mocks`), checks that the gateway answers the
//! benchmark query exactly like `subgraph_mocks::reference::benchmark_response()`, then drives
//! it with `wrk` in two modes (identical requests; a unique header per request) and reports
//! throughput, latency, errors, and the gateway's peak RSS and CPU time per request.
//! See `benches/README.md`.

mod child;
mod report;
mod wrk;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use clap::Parser;
use serde_json::{Value as Json, json};

use crate::child::{
    Service, available, busy_fractions, clock_ticks, cpu_jiffies, cpu_seconds, peak_rss_bytes,
};
use crate::report::{Report, Row, Setup};
use crate::wrk::{Mode, WrkRun};

const SUPERGRAPH: &str = include_str!("../../gateway/tests/fixtures/benchmark-supergraph.graphql");
const QUERY: &str = include_str!("../../gateway/tests/fixtures/benchmark-query.graphql");
/// The subgraph URL prefix in the benchmark supergraph, rewritten to the mocks' address.
const SUPERGRAPH_URL_PREFIX: &str = "http://0.0.0.0:4200/";
const DEFAULT_BIN_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/release");
const BUILD_HINT: &str = "cargo build --release -p gateway -p subgraph-mocks";
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Load benchmark of the release gateway on the federation benchmark scenario (wrk).
#[derive(Debug, Parser)]
#[command(name = "loadbench")]
struct Cli {
    /// Measured seconds per mode.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// Warm-up seconds per mode (not measured).
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    /// Concurrent connections (wrk -c).
    #[arg(long, default_value_t = 50)]
    connections: u32,
    /// wrk threads (wrk -t).
    #[arg(long, default_value_t = 1)]
    threads: u32,
    /// Modes to run, comma-separated.
    #[arg(long = "mode", value_enum, value_delimiter = ',', default_values_t = [Mode::Identical, Mode::Unique])]
    modes: Vec<Mode>,
    /// Do not pin with taskset (default: gateway on core 0, mocks and wrk on core 1).
    #[arg(long)]
    no_pin: bool,
    /// Directory with the release `gateway` and `subgraph-mocks` binaries.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_BIN_DIR)]
    bin_dir: PathBuf,
    /// Also write the results to FILE: JSON if it ends in `.json`, Markdown otherwise.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadbench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // On a signal the benchmark future is dropped, which stops every child process.
    let outcome = runtime.block_on(async {
        tokio::select! {
            outcome = run(&cli) => outcome,
            signal = shutdown_signal() => Err(anyhow::anyhow!("interrupted by {signal}")),
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadbench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return "SIGINT";
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}

fn progress(message: &str) {
    eprintln!("loadbench: {message}");
}

async fn run(cli: &Cli) -> anyhow::Result<()> {
    ensure!(cli.duration > 0, "--duration must be at least 1 second");
    ensure!(
        cli.threads > 0 && cli.connections >= cli.threads,
        "wrk needs --threads >= 1 and --connections >= --threads"
    );
    let bin_dir = cli.bin_dir.canonicalize().unwrap_or(cli.bin_dir.clone());
    let gateway_bin = bin_dir.join("gateway");
    let mocks_bin = bin_dir.join("subgraph-mocks");
    for bin in [&gateway_bin, &mocks_bin] {
        ensure!(
            bin.is_file(),
            "{} is missing; build the release binaries first (from the workspace root):\n    {BUILD_HINT}",
            bin.display()
        );
    }
    let wrk_version = wrk_version().context(
        "wrk is not installed; on Debian/Ubuntu: apt-get update && apt-get install -y wrk",
    )?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pinned = !cli.no_pin && {
        let possible = cpus >= 2 && available("taskset", &["--version"]);
        if !possible {
            progress("not pinning: needs `taskset` and at least 2 CPUs (use --no-pin to silence)");
        }
        possible
    };
    let (gateway_cpu, load_cpu) = if pinned {
        (Some(0), Some(1))
    } else {
        (None, None)
    };
    let ticks = clock_ticks();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let dir = tempfile::Builder::new().prefix("loadbench-").tempdir()?;

    let mocks_port = free_port()?;
    progress(&format!(
        "starting {} on 127.0.0.1:{mocks_port}",
        mocks_bin.display()
    ));
    let mut mocks = Service::spawn(
        "subgraph-mocks",
        &mocks_bin,
        &["--listen".into(), format!("127.0.0.1:{mocks_port}")],
        load_cpu,
        dir.path().join("mocks.log"),
    )?;
    let probe = format!("http://127.0.0.1:{mocks_port}/accounts");
    wait_until_ready(&mut mocks, || async {
        let r = http
            .post(&probe)
            .header("content-type", "application/json")
            .body(r#"{"query":"{ __typename }"}"#)
            .send()
            .await?;
        Ok(r.status().is_success())
    })
    .await?;

    let supergraph_file = dir.path().join("supergraph.graphql");
    ensure!(
        SUPERGRAPH.matches(SUPERGRAPH_URL_PREFIX).count() == subgraph_mocks::SUBGRAPHS.len(),
        "the benchmark supergraph no longer has its {} subgraph URLs at {SUPERGRAPH_URL_PREFIX}",
        subgraph_mocks::SUBGRAPHS.len()
    );
    std::fs::write(
        &supergraph_file,
        SUPERGRAPH.replace(
            SUPERGRAPH_URL_PREFIX,
            &format!("http://127.0.0.1:{mocks_port}/"),
        ),
    )?;
    let body = serde_json::to_vec(&json!({ "query": QUERY }))?;
    let body_file = dir.path().join("body.json");
    std::fs::write(&body_file, &body)?;
    let expected = serde_json::to_string(&subgraph_mocks::reference::benchmark_response())?;

    let mut rows = Vec::new();
    for &mode in &cli.modes {
        let port = free_port()?;
        progress(&format!(
            "[{}] starting {} on 127.0.0.1:{port}",
            mode.name(),
            gateway_bin.display()
        ));
        let mut gateway = Service::spawn(
            "gateway",
            &gateway_bin,
            &[
                "run".into(),
                "--supergraph".into(),
                supergraph_file.display().to_string(),
                "--listen".into(),
                format!("127.0.0.1:{port}"),
            ],
            gateway_cpu,
            dir.path().join(format!("gateway-{}.log", mode.name())),
        )?;
        let health = format!("http://127.0.0.1:{port}/health");
        wait_until_ready(&mut gateway, || async {
            Ok(http.get(&health).send().await?.status().is_success())
        })
        .await?;
        let url = format!("http://127.0.0.1:{port}/graphql");
        check_answer(&http, &url, &body, &expected).await?;
        progress(&format!(
            "[{}] the answer matches the reference ({} bytes)",
            mode.name(),
            expected.len()
        ));

        let script = dir.path().join(format!("{}.lua", mode.name()));
        std::fs::write(&script, wrk::script(mode, &body_file, expected.len()))?;
        let mut wrk = WrkRun {
            url: &url,
            script: &script,
            duration: Duration::from_secs(cli.warmup),
            connections: cli.connections,
            threads: cli.threads,
            cpu: load_cpu,
        };
        if cli.warmup > 0 {
            progress(&format!(
                "[{}] warming up for {} s",
                mode.name(),
                cli.warmup
            ));
            let warm = wrk.run().await?;
            ensure!(warm.requests > 0, "no request completed during the warm-up");
        }
        progress(&format!(
            "[{}] measuring for {} s",
            mode.name(),
            cli.duration
        ));
        wrk.duration = Duration::from_secs(cli.duration);
        let gateway_before = cpu_seconds(gateway.pid(), ticks)?;
        let mocks_before = cpu_seconds(mocks.pid(), ticks)?;
        let cpus_before = cpu_jiffies()?;
        let result = wrk.run().await?;
        let cpu_busy = busy_fractions(&cpus_before, &cpu_jiffies()?);
        let gateway_cpu_seconds = cpu_seconds(gateway.pid(), ticks)? - gateway_before;
        let mocks_cpu_seconds = cpu_seconds(mocks.pid(), ticks)? - mocks_before;
        let gateway_peak_rss_bytes = peak_rss_bytes(gateway.pid())?;
        gateway.ensure_running()?;
        mocks.ensure_running()?;
        gateway.stop();
        rows.push(Row {
            mode,
            wrk: result,
            gateway_peak_rss_bytes,
            gateway_cpu_seconds,
            mocks_cpu_seconds,
            cpu_busy,
        });
    }
    mocks.stop();

    let report = Report {
        setup: Setup {
            duration: Duration::from_secs(cli.duration),
            warmup: Duration::from_secs(cli.warmup),
            connections: cli.connections,
            threads: cli.threads,
            pinned,
            cpus,
            wrk_version,
            response_bytes: expected.len(),
        },
        rows,
    };
    println!("{}", report.table());
    if let Some(out) = &cli.out {
        write_report(&report, out)?;
        progress(&format!("wrote {}", out.display()));
    }
    let errors: u64 = report.rows.iter().map(Row::errors).sum();
    ensure!(
        errors == 0,
        "{errors} request(s) failed or had a wrong body"
    );
    Ok(())
}

fn write_report(report: &Report, out: &Path) -> anyhow::Result<()> {
    let text = if out.extension().is_some_and(|e| e == "json") {
        serde_json::to_string_pretty(&report.json())? + "\n"
    } else {
        report.markdown()
    };
    std::fs::write(out, text).with_context(|| format!("writing {}", out.display()))
}

/// The first line of `wrk --version` (which exits with status 1).
fn wrk_version() -> anyhow::Result<String> {
    let output = std::process::Command::new("wrk")
        .arg("--version")
        .output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    Ok(text
        .lines()
        .next()
        .and_then(|l| l.split(" [").next())
        .unwrap_or("wrk")
        .trim()
        .to_string())
}

/// A port that was free a moment ago (the child binds it right after).
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Poll `probe` until it says yes, the service dies, or [`STARTUP_TIMEOUT`] passes.
async fn wait_until_ready<F, Fut>(service: &mut Service, probe: F) -> anyhow::Result<()>
where
    F: Fn() -> Fut,
    Fut: Future<Output = anyhow::Result<bool>>,
{
    let start = Instant::now();
    loop {
        service.ensure_running()?;
        if matches!(probe().await, Ok(true)) {
            return Ok(());
        }
        if start.elapsed() > STARTUP_TIMEOUT {
            bail!(
                "not ready after {STARTUP_TIMEOUT:?}; end of its log:\n{}",
                service.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One request, the same as wrk sends: the body must be exactly the reference document.
async fn check_answer(
    http: &reqwest::Client,
    url: &str,
    body: &[u8],
    expected: &str,
) -> anyhow::Result<()> {
    let response = http
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(body.to_vec())
        .send()
        .await?;
    let status = response.status();
    let text = response.text().await?;
    let excerpt = || text.chars().take(500).collect::<String>();
    ensure!(
        status.is_success(),
        "the benchmark query got HTTP {status}: {}",
        excerpt()
    );
    let got: Json = serde_json::from_str(&text)
        .with_context(|| format!("the answer is not JSON: {}", excerpt()))?;
    if let Some(errors) = got.get("errors") {
        bail!("the benchmark query returned errors: {errors}");
    }
    let reference: Json = serde_json::from_str(expected)?;
    ensure!(
        got == reference,
        "the answer differs from subgraph_mocks::reference::benchmark_response()"
    );
    ensure!(
        text == expected,
        "the answer has the reference's values but not its exact bytes (field order?)"
    );
    Ok(())
}
