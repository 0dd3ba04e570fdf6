//! `loadbench`: the federation benchmark scenario under load, with real processes.
//!
//! Starts the release `subgraph-mocks` and `gateway` binaries (built beforehand with
//! `cargo build --profile dist -p gateway -p subgraph-mocks`), checks that the gateway answers the
//! benchmark query exactly like `subgraph_mocks::reference::benchmark_response()`, then drives
//! it with `wrk` in two modes (identical requests; a unique header per request) and reports
//! throughput, latency, errors, and the gateway's peak RSS and CPU time per request.
//! See `benches/README.md`.

mod child;
mod dashboard;
mod peers;
mod policies;
mod report;
mod wrk;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use clap::Parser;
use serde_json::{Value as Json, json};

use crate::child::{
    Mocks, Service, available, busy_fractions, clock_ticks, cpu_jiffies, cpu_seconds, free_port,
    peak_rss_bytes, wait_until_ready,
};
use crate::peers::{Contender, PEERS, Workload};
use crate::report::{Report, Row, Setup};
use crate::wrk::{Mode, WrkRun};

const SUPERGRAPH: &str = include_str!("../../gateway/tests/fixtures/benchmark-supergraph.graphql");
const QUERY: &str = include_str!("../../gateway/tests/fixtures/benchmark-query.graphql");
/// The subgraph URL prefix in the benchmark supergraph, rewritten to the mocks' address.
const SUPERGRAPH_URL_PREFIX: &str = "http://0.0.0.0:4200/";
const DEFAULT_BIN_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/dist");
const DEFAULT_PEERS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/bench-peers");
const BUILD_HINT: &str =
    "cargo build --profile dist -p gateway -p subgraph-mocks -p benches --bins";

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
    /// Rounds: each round runs every gateway in every mode once, so that gateways
    /// alternate over the session and share its slow and fast stretches; the ratio
    /// table then compares medians over the rounds.
    #[arg(long, default_value_t = 1)]
    rounds: u32,
    /// Do not pin with taskset (default: gateway on core 0, mocks and wrk on core 1).
    #[arg(long)]
    no_pin: bool,
    /// Directory with the release `gateway` and `subgraph-mocks` binaries.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_BIN_DIR)]
    bin_dir: PathBuf,
    /// Gateways to run, comma-separated, in this order (default: ours, then every
    /// installed peer).
    #[arg(long, value_enum, value_delimiter = ',')]
    gateways: Vec<Contender>,
    /// Install the peers first (those named by --gateways, or all three): hive-router and
    /// apollo-router with `cargo install --locked`, hive-gateway with npm.
    #[arg(long)]
    install_peers: bool,
    /// Another build of our gateway to run as `baseline` (by default right after ours):
    /// build the other revision in a target directory of its own, never the shared one
    /// (cargo would then take this tree's artifacts for fresh).
    #[arg(long, value_name = "PATH")]
    baseline: Option<PathBuf>,
    /// Where peers are installed.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_PEERS_DIR)]
    peers_dir: PathBuf,
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
    ensure!(cli.rounds > 0, "--rounds must be at least 1");
    ensure!(
        cli.threads > 0 && cli.connections >= cli.threads,
        "wrk needs --threads >= 1 and --connections >= --threads"
    );
    let bin_dir = cli.bin_dir.canonicalize().unwrap_or(cli.bin_dir.clone());
    let mocks_bin = bin_dir.join("subgraph-mocks");
    let peers_dir = &cli.peers_dir;
    if cli.install_peers {
        let wanted = if cli.gateways.is_empty() {
            &PEERS[..]
        } else {
            &cli.gateways[..]
        };
        for gateway in wanted {
            gateway.install(peers_dir)?;
        }
    }
    let gateways: Vec<Contender> = if cli.gateways.is_empty() {
        std::iter::once(Contender::Ours)
            .chain(cli.baseline.as_ref().map(|_| Contender::Baseline))
            .chain(
                PEERS
                    .into_iter()
                    .filter(|p| p.program(&bin_dir, peers_dir, None).is_file()),
            )
            .collect()
    } else {
        cli.gateways.clone()
    };
    let build_hint =
        format!("build the release binaries first (from the workspace root):\n    {BUILD_HINT}");
    ensure!(
        mocks_bin.is_file(),
        "{} is missing; {build_hint}",
        mocks_bin.display()
    );
    for gateway in &gateways {
        let program = gateway.program(&bin_dir, peers_dir, cli.baseline.as_deref());
        ensure!(
            program.is_file(),
            "{} is missing; {}",
            program.display(),
            match gateway {
                Contender::Baseline => "give another gateway build with --baseline PATH".into(),
                g if g.is_ours() || g == &Contender::Floor => build_hint.clone(),
                _ => format!("install {} with --install-peers", gateway.name()),
            }
        );
    }
    if !available("wrk", &["--version"]) {
        progress("wrk is missing; installing Debian's wrk");
        child::apt_install("wrk")?;
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

    let mocks_addrs = Mocks {
        graphql: free_port()?,
        rest: free_port()?,
        grpc: free_port()?,
    };
    let mocks_port = mocks_addrs.graphql;
    progress(&format!(
        "starting {} on 127.0.0.1:{mocks_port} (REST {}, gRPC {})",
        mocks_bin.display(),
        mocks_addrs.rest,
        mocks_addrs.grpc
    ));
    let mut mocks = Service::spawn(
        "subgraph-mocks",
        &mocks_bin,
        &[
            "--listen".into(),
            format!("127.0.0.1:{mocks_port}"),
            "--rest-listen".into(),
            format!("127.0.0.1:{}", mocks_addrs.rest),
            "--grpc-listen".into(),
            format!("127.0.0.1:{}", mocks_addrs.grpc),
        ],
        &[],
        dir.path(),
        load_cpu,
        dir.path().join("mocks.log"),
    )?;
    let probe = format!("http://127.0.0.1:{mocks_port}/accounts");
    wait_until_ready(&mut mocks, &http, &probe, &[], false).await?;
    let policy_runs = gateways
        .iter()
        .any(|g| matches!(g, Contender::OursPolicies | Contender::OursPoliciesRedis));
    let mut stack = if policy_runs {
        let redis = gateways.contains(&Contender::OursPoliciesRedis);
        Some(policies::Stack::start(dir.path(), redis, load_cpu).await?)
    } else {
        None
    };

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
    let dashboard_body = dashboard::body()?;
    let dashboard_file = dir.path().join("dashboard.json");
    std::fs::write(&dashboard_file, &dashboard_body)?;
    let expected = serde_json::to_string(&subgraph_mocks::reference::benchmark_response())?;

    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for round in 1..=cli.rounds {
        if cli.rounds > 1 {
            progress(&format!("round {round} of {}", cli.rounds));
        }
        for &gateway in &gateways {
            for &mode in &cli.modes {
                let run = Run {
                    cli,
                    gateway,
                    mode,
                    round,
                    program: gateway.program(&bin_dir, peers_dir, cli.baseline.as_deref()),
                    supergraph: &supergraph_file,
                    mocks: mocks_addrs,
                    request: match gateway.workload() {
                        Workload::Benchmark => (&body, &body_file),
                        Workload::Dashboard => (&dashboard_body, &dashboard_file),
                    },
                    expected: &expected,
                    dir: dir.path(),
                    http: &http,
                    gateway_cpu,
                    load_cpu,
                    ticks,
                    stack: stack.as_ref(),
                };
                match run.measure(&mut mocks).await {
                    Ok(row) => rows.push(row),
                    // A peer that fails is reported and skipped; ours failing ends the run.
                    Err(e) if !gateway.is_ours() => {
                        progress(&format!(
                            "[{} {}] failed: {e:#}",
                            gateway.name(),
                            mode.name()
                        ));
                        failed.push(format!("{} {}: {e:#}", gateway.name(), mode.name()));
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }
    mocks.stop();
    if let Some(stack) = &mut stack {
        stack.stop();
    }

    let report = Report {
        setup: Setup {
            duration: Duration::from_secs(cli.duration),
            warmup: Duration::from_secs(cli.warmup),
            rounds: cli.rounds,
            connections: cli.connections,
            threads: cli.threads,
            pinned,
            cpus,
            wrk_version,
            gateways: gateways
                .iter()
                .map(|g| match (g, &cli.baseline) {
                    (Contender::Baseline, Some(path)) => format!("baseline {}", path.display()),
                    _ => format!("{} {}", g.name(), g.version()),
                })
                .collect(),
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
    ensure!(
        failed.is_empty(),
        "runs that failed:\n{}",
        failed.join("\n")
    );
    Ok(())
}

/// One gateway in one mode: start it fresh, check its answer, warm up, measure, stop it.
struct Run<'a> {
    cli: &'a Cli,
    gateway: Contender,
    mode: Mode,
    round: u32,
    program: PathBuf,
    supergraph: &'a Path,
    mocks: Mocks,
    /// The POST body (ignored by GET endpoints) and the file wrk reads it from.
    request: (&'a [u8], &'a Path),
    /// The benchmark's reference answer.
    expected: &'a str,
    dir: &'a Path,
    http: &'a reqwest::Client,
    gateway_cpu: Option<usize>,
    load_cpu: Option<usize>,
    ticks: f64,
    stack: Option<&'a policies::Stack>,
}

impl Run<'_> {
    async fn measure(&self, mocks: &mut Service) -> anyhow::Result<Row> {
        let (cli, mode) = (self.cli, self.mode);
        let label = format!("{} {}", self.gateway.name(), mode.name());
        let port = free_port()?;
        let scratch = self.dir.join(format!(
            "{}-{}-{}",
            self.gateway.name(),
            mode.name(),
            self.round
        ));
        std::fs::create_dir_all(&scratch)?;
        let (body, body_file) = self.request;
        let launch = self.gateway.launch(
            self.supergraph,
            QUERY,
            port,
            &scratch,
            self.stack,
            &self.mocks,
        )?;
        progress(&format!(
            "[{label}] starting {} on 127.0.0.1:{port}",
            self.program.display()
        ));
        let mut gateway = Service::spawn(
            self.gateway.name(),
            &self.program,
            &launch.args,
            &launch.env,
            &scratch,
            self.gateway_cpu,
            scratch.join("gateway.log"),
        )?;
        let url = format!("http://127.0.0.1:{port}{}", launch.path);
        let headers = &launch.headers;
        wait_until_ready(&mut gateway, self.http, &url, headers, launch.get).await?;
        let calls_before = upstream_requests(self.http, &self.mocks).await?;
        let answer = if self.gateway == Contender::Floor {
            floor_answer(self.http, &url, body).await?
        } else {
            let body = (!launch.get).then_some(body);
            let expected = match self.gateway.workload() {
                Workload::Benchmark => Expected::Reference(self.expected),
                Workload::Dashboard => Expected::Check(dashboard::check),
            };
            check_answer(self.http, &url, body, headers, expected).await?
        };
        let plan_calls = upstream_requests(self.http, &self.mocks).await? - calls_before;
        // Ours must answer byte for byte; a peer may format differently, and its own
        // answer's length is what every response under load is checked against.
        ensure!(
            answer.exact || !self.gateway.is_ours(),
            "the answer has the reference's values but not its exact bytes (field order?)"
        );
        progress(&if self.gateway == Contender::Floor {
            format!("[{label}] spliced subgraph answers ({} bytes)", answer.len)
        } else {
            format!(
                "[{label}] the answer is right ({} bytes{})",
                answer.len,
                if answer.exact {
                    ""
                } else {
                    ", other formatting"
                }
            )
        });

        let script = self
            .dir
            .join(format!("{}-{}.lua", self.gateway.name(), mode.name()));
        std::fs::write(
            &script,
            wrk::script(
                mode,
                (!launch.get).then_some(body_file),
                answer.len,
                headers,
            ),
        )?;
        let mut wrk = WrkRun {
            url: &url,
            script: &script,
            duration: Duration::from_secs(cli.warmup),
            connections: cli.connections,
            threads: cli.threads,
            cpu: self.load_cpu,
        };
        if cli.warmup > 0 {
            progress(&format!("[{label}] warming up for {} s", cli.warmup));
            let warm = wrk.run().await?;
            ensure!(warm.requests > 0, "no request completed during the warm-up");
        }
        progress(&format!("[{label}] measuring for {} s", cli.duration));
        wrk.duration = Duration::from_secs(cli.duration);
        let calls_before = upstream_requests(self.http, &self.mocks).await?;
        let gateway_before = cpu_seconds(gateway.pid(), self.ticks)?;
        let mocks_before = cpu_seconds(mocks.pid(), self.ticks)?;
        let cpus_before = cpu_jiffies()?;
        let result = wrk.run().await?;
        let cpu_busy = busy_fractions(&cpus_before, &cpu_jiffies()?);
        let gateway_cpu_seconds = cpu_seconds(gateway.pid(), self.ticks)? - gateway_before;
        let mocks_cpu_seconds = cpu_seconds(mocks.pid(), self.ticks)? - mocks_before;
        // Requests still in flight when wrk stops are counted too: a few in tens of
        // thousands.
        let upstream_calls = upstream_requests(self.http, &self.mocks).await? - calls_before;
        let gateway_peak_rss_bytes = peak_rss_bytes(gateway.pid())?;
        gateway.ensure_running()?;
        mocks.ensure_running()?;
        gateway.stop();
        Ok(Row {
            gateway: self.gateway,
            mode,
            round: self.round,
            wrk: result,
            response_bytes: answer.len,
            gateway_peak_rss_bytes,
            gateway_cpu_seconds,
            mocks_cpu_seconds,
            upstream_calls,
            plan_calls,
            cpu_busy,
        })
    }
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

/// A gateway's answer to the benchmark query.
struct Answer {
    len: usize,
    /// Byte for byte the reference document (not only the same values).
    exact: bool,
}

/// The floor's answer: the subgraph bodies spliced, not the reference document; its
/// length is what every answer under load is checked against.
async fn floor_answer(http: &reqwest::Client, url: &str, body: &[u8]) -> anyhow::Result<Answer> {
    let response = http
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await?;
    let status = response.status();
    let text = response.text().await?;
    ensure!(status.is_success(), "the floor got HTTP {status}");
    Ok(Answer {
        len: text.len(),
        exact: false,
    })
}

/// What a right answer is.
enum Expected<'a> {
    /// The benchmark's reference document (the same values; for ours the same bytes).
    Reference(&'a str),
    /// Whatever passes this check, with no `errors`.
    Check(fn(&Json) -> anyhow::Result<()>),
}

/// The requests every mock subgraph and service has received so far, together.
async fn upstream_requests(http: &reqwest::Client, mocks: &Mocks) -> anyhow::Result<u64> {
    let mut total = 0;
    for port in [mocks.graphql, mocks.rest] {
        let url = format!("http://127.0.0.1:{port}/control/stats");
        let stats = http
            .get(&url)
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        let stats: Json = serde_json::from_slice(&stats)?;
        let each = stats
            .as_object()
            .context("the mocks' stats are not an object")?;
        total += each
            .values()
            .filter_map(|s| s.get("requests")?.as_u64())
            .sum::<u64>();
    }
    Ok(total)
}

/// One request, the same as wrk sends: no errors, and the expected data.
async fn check_answer(
    http: &reqwest::Client,
    url: &str,
    body: Option<&[u8]>,
    headers: &[(String, String)],
    expected: Expected<'_>,
) -> anyhow::Result<Answer> {
    let mut request = match body {
        Some(body) => http
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_vec()),
        None => http.get(url),
    };
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request.header("accept", "application/json").send().await?;
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
    let exact = match expected {
        Expected::Reference(expected) => {
            let reference: Json = serde_json::from_str(expected)?;
            ensure!(
                got == reference,
                "the answer differs from subgraph_mocks::reference::benchmark_response()"
            );
            text == expected
        }
        Expected::Check(check) => {
            check(&got)?;
            true
        }
    };
    Ok(Answer {
        len: text.len(),
        exact,
    })
}
