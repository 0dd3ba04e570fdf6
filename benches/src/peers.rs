//! The gateways a load run can compare: ours, and the peers the harness installs on request
//! (`--install-peers`) from the public registries into a directory of their own.
//!
//! Versions are pinned: the newest releases whose dependencies build with this workspace's
//! Rust toolchain (1.95). hive-router 0.3.x needs rustc 1.97 (ntex 4), so 0.2.19.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context as _, bail, ensure};

use crate::child::{Launch, Mocks, available};
use crate::policies::Stack;

/// A gateway under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Contender {
    /// This repository's release `gateway` binary.
    Ours,
    /// Another build of ours (`--baseline PATH`), to compare two revisions side by side.
    Baseline,
    /// The Guild's Rust router (crates.io `hive-router`).
    HiveRouter,
    /// Apollo's Rust router (crates.io `apollo-router`, binary `router`).
    ApolloRouter,
    /// The Guild's Node.js gateway (npm `@graphql-hive/gateway`).
    HiveGateway,
    /// The yardstick (`src/floor.rs`): the benchmark query's subgraph requests replayed,
    /// their answers spliced; not a gateway. Built with ours, in the same directory.
    Floor,
    /// Ours with the client-facing stack on (`src/policies.rs`): JWT via JWKS, a tiered
    /// rate limit counted locally, `@authenticated`, a BFF view.
    OursPolicies,
    /// The same with the rate limit counted in Redis.
    OursPoliciesRedis,
    /// Ours answering the query as a BFF's persisted GET endpoint from its response
    /// cache.
    OursBffCache,
    /// Ours on the `dashboard` query (`src/dashboard.rs`): GraphQL, REST and gRPC
    /// sources, on the unified endpoint.
    OursDashboard,
    /// The same query as the mobile BFF's persisted GET endpoint `home`.
    OursDashboardBff,
}

/// What a contender is asked, and how its answer is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// The federation benchmark query, answered exactly like the reference.
    Benchmark,
    /// The dashboard query (`src/dashboard.rs`), with data from every source.
    Dashboard,
}

pub const PEERS: [Contender; 3] = [
    Contender::HiveRouter,
    Contender::ApolloRouter,
    Contender::HiveGateway,
];

impl Contender {
    pub fn name(self) -> &'static str {
        match self {
            Contender::Ours => "ours",
            Contender::Baseline => "baseline",
            Contender::HiveRouter => "hive-router",
            Contender::ApolloRouter => "apollo-router",
            Contender::HiveGateway => "hive-gateway",
            Contender::Floor => "floor",
            Contender::OursPolicies => "ours-policies",
            Contender::OursPoliciesRedis => "ours-policies-redis",
            Contender::OursBffCache => "ours-bff-cache",
            Contender::OursDashboard => "ours-dashboard",
            Contender::OursDashboardBff => "ours-dashboard-bff",
        }
    }

    /// This tree's gateway, bare or with policies.
    pub fn is_ours(self) -> bool {
        matches!(
            self,
            Contender::Ours
                | Contender::OursPolicies
                | Contender::OursPoliciesRedis
                | Contender::OursBffCache
                | Contender::OursDashboard
                | Contender::OursDashboardBff
        )
    }

    /// The pinned version a peer is installed at (ours: the workspace version).
    pub fn version(self) -> &'static str {
        match self {
            Contender::Ours
            | Contender::Floor
            | Contender::OursPolicies
            | Contender::OursPoliciesRedis
            | Contender::OursBffCache
            | Contender::OursDashboard
            | Contender::OursDashboardBff => env!("CARGO_PKG_VERSION"),
            Contender::Baseline => "(--baseline)",
            Contender::HiveRouter => "0.2.19",
            Contender::ApolloRouter => "2.17.0",
            Contender::HiveGateway => "2.15.1",
        }
    }

    /// The executable: ours in `bin_dir`, the baseline where `--baseline` says (empty
    /// without it), a peer under `peers_dir`.
    pub fn program(self, bin_dir: &Path, peers_dir: &Path, baseline: Option<&Path>) -> PathBuf {
        match self {
            Contender::Ours
            | Contender::OursPolicies
            | Contender::OursPoliciesRedis
            | Contender::OursBffCache
            | Contender::OursDashboard
            | Contender::OursDashboardBff => bin_dir.join("gateway"),
            Contender::Floor => bin_dir.join("floor"),
            Contender::Baseline => baseline.map(Path::to_path_buf).unwrap_or_default(),
            Contender::HiveRouter => peers_dir.join("bin/hive_router"),
            Contender::ApolloRouter => peers_dir.join("bin/router"),
            Contender::HiveGateway => peers_dir.join("hive-gateway/node_modules/.bin/hive-gateway"),
        }
    }

    pub fn workload(self) -> Workload {
        match self {
            Contender::OursDashboard | Contender::OursDashboardBff => Workload::Dashboard,
            _ => Workload::Benchmark,
        }
    }

    /// The command line for one run serving `supergraph` at `http://127.0.0.1:PORT/graphql`
    /// (the dashboard runs: the example graph's subgraphs at `mocks`).
    /// `dir` is a scratch directory for config files and the working directory.
    pub fn launch(
        self,
        supergraph: &Path,
        query: &str,
        port: u16,
        dir: &Path,
        stack: Option<&Stack>,
        mocks: &Mocks,
    ) -> anyhow::Result<Launch> {
        let listen = format!("127.0.0.1:{port}");
        let file = supergraph;
        let supergraph = supergraph.display().to_string();
        let launch = match self {
            Contender::Floor => {
                let file = dir.join("query.graphql");
                std::fs::write(&file, query)?;
                Launch {
                    args: vec![
                        "--listen".into(),
                        listen,
                        "--supergraph".into(),
                        supergraph,
                        "--query".into(),
                        file.display().to_string(),
                    ],
                    env: vec![("RUST_LOG".into(), "warn".into())],
                    path: "/graphql".into(),
                    headers: Vec::new(),
                    get: false,
                }
            }
            Contender::Ours | Contender::Baseline => Launch {
                args: vec![
                    "run".into(),
                    "--supergraph".into(),
                    supergraph,
                    "--listen".into(),
                    listen,
                ],
                // Warnings only, like every peer: no access log line per request.
                env: vec![("RUST_LOG".into(), "warn".into())],
                path: "/graphql".into(),
                headers: Vec::new(),
                get: false,
            },
            // Configured through its documented environment overrides; no config file is
            // read because the working directory (`dir`) has none.
            Contender::HiveRouter => Launch {
                args: Vec::new(),
                env: vec![
                    ("SUPERGRAPH_FILE_PATH".into(), supergraph),
                    ("HOST".into(), "127.0.0.1".into()),
                    ("PORT".into(), port.to_string()),
                    ("LOG_LEVEL".into(), "warn".into()),
                ],
                path: "/graphql".into(),
                headers: Vec::new(),
                get: false,
            },
            Contender::ApolloRouter => {
                let config = dir.join("apollo-router.yaml");
                std::fs::write(
                    &config,
                    format!(
                        "supergraph:\n  listen: {listen}\n  path: /graphql\n\
                         health_check:\n  enabled: false\n"
                    ),
                )?;
                Launch {
                    args: vec![
                        "--supergraph".into(),
                        supergraph,
                        "--config".into(),
                        config.display().to_string(),
                        "--log".into(),
                        "warn".into(),
                        "--anonymous-telemetry-disabled".into(),
                    ],
                    env: vec![("APOLLO_TELEMETRY_DISABLED".into(), "true".into())],
                    path: "/graphql".into(),
                    headers: Vec::new(),
                    get: false,
                }
            }
            Contender::HiveGateway => Launch {
                args: vec![
                    "supergraph".into(),
                    supergraph,
                    "--host".into(),
                    "127.0.0.1".into(),
                    "--port".into(),
                    port.to_string(),
                    "--fork".into(),
                    "1".into(),
                ],
                env: vec![("NODE_ENV".into(), "production".into())],
                path: "/graphql".into(),
                headers: Vec::new(),
                get: false,
            },
            Contender::OursBffCache => crate::policies::bff_cache(file, query, listen, dir)?,
            Contender::OursDashboard | Contender::OursDashboardBff => {
                crate::dashboard::launch(mocks, listen, dir, self == Contender::OursDashboardBff)?
            }
            Contender::OursPolicies | Contender::OursPoliciesRedis => {
                let stack = stack.context("the policy runs need the policy stack started")?;
                stack.launch(file, listen, dir, self == Contender::OursPoliciesRedis)?
            }
        };
        Ok(launch)
    }

    /// Install this peer under `peers_dir` (idempotent: a present install is kept).
    pub fn install(self, peers_dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(peers_dir)?;
        match self {
            Contender::Ours
            | Contender::Baseline
            | Contender::Floor
            | Contender::OursPolicies
            | Contender::OursPoliciesRedis
            | Contender::OursBffCache
            | Contender::OursDashboard
            | Contender::OursDashboardBff => Ok(()),
            // Without `graphiql` its build script fetches a UI bundle from npm, and the
            // pinned one is gone from the registry; the feature serves GraphiQL instead.
            Contender::HiveRouter => {
                cargo_install(peers_dir, "hive-router", self.version(), &["graphiql"])
            }
            Contender::ApolloRouter => {
                // Its build script compiles a .proto with the system protoc.
                if !available("protoc", &["--version"]) {
                    eprintln!(
                        "loadbench: apollo-router needs protoc; installing protobuf-compiler"
                    );
                    run(std::process::Command::new("sh").args([
                        "-c",
                        "apt-get update && apt-get install -y protobuf-compiler",
                    ]))?;
                }
                cargo_install(peers_dir, "apollo-router", self.version(), &[])
            }
            Contender::HiveGateway => {
                ensure!(
                    available("npm", &["--version"]),
                    "hive-gateway needs Node.js and npm"
                );
                let dir = peers_dir.join("hive-gateway");
                std::fs::create_dir_all(&dir)?;
                run(std::process::Command::new("npm")
                    .current_dir(&dir)
                    .args(["install", "--no-audit", "--no-fund", "--omit=dev"])
                    .arg(format!("@graphql-hive/gateway@{}", self.version())))
            }
        }
    }
}

/// `cargo install --locked` into `peers_dir/bin`, building in `peers_dir/build`: the
/// release's own lock file, so its dependency versions are the ones it was released with.
fn cargo_install(
    peers_dir: &Path,
    krate: &str,
    version: &str,
    features: &[&str],
) -> anyhow::Result<()> {
    eprintln!("loadbench: installing {krate} {version} (a long build: tens of minutes on 2 cores)");
    let mut command = std::process::Command::new("cargo");
    command
        .env("CARGO_TARGET_DIR", peers_dir.join("build"))
        .args(["install", "--locked", "--root"])
        .arg(peers_dir)
        .args([krate, "--version", version]);
    if !features.is_empty() {
        command.args(["--features", &features.join(",")]);
    }
    run(&mut command)
}

fn run(command: &mut std::process::Command) -> anyhow::Result<()> {
    let status = command
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("starting {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed ({status})");
    }
    Ok(())
}
