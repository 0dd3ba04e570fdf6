//! The `gateway` binary: parse the command line, call the library.

#[cfg(feature = "dev")]
mod dev;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use gateway::config::Config;
use std::sync::Arc;

use gateway::config::RegistryConfig;
use gateway::server::registry::Registry;
use gateway::server::reload::{self, Origin};
use gateway::server::{self, GatewaySpec};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "gateway",
    version,
    about = "GraphQL federation gateway and BFF composer",
    after_help = "Examples:\n  gateway dev                                   the example graph and GraphiQL at http://127.0.0.1:4000/graphql\n  gateway check --config gateway.yaml           validate a config without serving it\n  gateway run --config gateway.yaml             serve it (hot reload on change or SIGHUP)\n  gateway run --supergraph-url https://cdn.example/supergraph"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the bundled example subgraphs in-process and the gateway in front of them.
    #[cfg(feature = "dev")]
    #[command(after_help = "Example:\n  gateway dev --listen 127.0.0.1:4650")]
    Dev {
        /// Address for the gateway.
        #[arg(long, default_value = "127.0.0.1:4000")]
        listen: String,
        /// The example config whose subgraphs the bundled mocks serve.
        #[arg(long, default_value = "schemas/gateway.yaml")]
        config: PathBuf,
    },
    /// Serve a config file's graph, a precomposed supergraph, or a registry's.
    #[command(
        after_help = "Examples:\n  gateway run --config schemas/gateway.yaml --listen 0.0.0.0:4000\n  gateway run --supergraph supergraph.graphql\n  GATEWAY_REGISTRY_KEY=... gateway run --supergraph-url https://cdn.graphql-hive.com/artifacts/v1/TARGET/supergraph"
    )]
    Run {
        #[command(flatten)]
        schema: SchemaArgs,
        /// Address to listen on (overrides the config's `listen`).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Check a config and everything it names (SDLs, composition, BFFs, persisted
    /// documents, protos, TLS and key files) without serving it; every problem is listed
    /// and the exit status is non-zero when there is one.
    #[command(
        after_help = "Example (in CI, before a deploy):\n  gateway check --config deploy/base/gateway.yaml"
    )]
    Check {
        #[arg(long)]
        config: PathBuf,
    },
    /// Print the schema clients see: the unified endpoint's, or one BFF's (its view).
    #[command(
        after_help = "Examples:\n  gateway schema --config schemas/gateway.yaml\n  gateway schema --config schemas/gateway.yaml --bff partner"
    )]
    Schema {
        #[arg(long)]
        config: PathBuf,
        /// The BFF whose schema to print.
        #[arg(long, value_name = "NAME")]
        bff: Option<String>,
    },
    /// Print the supergraph SDL composed from a config's subgraphs.
    #[command(
        after_help = "Example:\n  gateway compose --config schemas/gateway.yaml > supergraph.graphql"
    )]
    Compose {
        #[arg(long)]
        config: PathBuf,
    },
    /// Print the query plan of an operation.
    #[command(
        after_help = "Example:\n  gateway plan --config schemas/gateway.yaml --query schemas/examples/dashboard.graphql --operation-name Dashboard"
    )]
    Plan {
        #[command(flatten)]
        schema: SchemaArgs,
        /// File with the GraphQL operation.
        #[arg(long)]
        query: PathBuf,
        #[arg(long)]
        operation_name: Option<String>,
    },
    /// Print a bearer token signed by the bundled development issuer, whose JWKS the
    /// mocks serve (`gateway dev`). Its key is public: for local use only.
    #[cfg(feature = "dev")]
    #[command(
        after_help = "Example:\n  curl -H \"authorization: Bearer $(gateway dev-token --sub alice --tier pro)\" http://127.0.0.1:4000/bff/web/graphql -d '{\"query\":\"{ me { name } }\"}'"
    )]
    DevToken {
        /// The token's subject (`sub`).
        #[arg(long, default_value = "dev-user")]
        sub: String,
        /// Rate-limit tier claim (`tier`), e.g. `pro`.
        #[arg(long)]
        tier: Option<String>,
        /// Space-separated scopes (`scope`).
        #[arg(long)]
        scope: Option<String>,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
    },
}

#[derive(Args)]
#[group(required = true, multiple = false)]
struct SchemaArgs {
    /// Gateway config file (YAML).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Precomposed Federation 2 supergraph SDL.
    #[arg(long)]
    supergraph: Option<PathBuf>,
    /// A schema registry's supergraph URL, polled for new versions (e.g. Hive's CDN
    /// `.../supergraph`). The key comes from `GATEWAY_REGISTRY_KEY`, sent in the header
    /// `GATEWAY_REGISTRY_KEY_HEADER` (default `X-Hive-CDN-Key`).
    #[arg(long)]
    supergraph_url: Option<String>,
}

impl SchemaArgs {
    /// Where the graph comes from. A registry (`--supergraph-url`, or `registry:` in
    /// the config) is fetched from here, or its cached copy read.
    async fn origin(&self) -> anyhow::Result<Origin> {
        let registry = |config: RegistryConfig| async move {
            let registry = Registry::new(config)?;
            registry.load().await?;
            Ok::<_, anyhow::Error>(Arc::new(registry))
        };
        if let Some(url) = &self.supergraph_url {
            let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
            let header =
                env("GATEWAY_REGISTRY_KEY_HEADER").unwrap_or_else(|| "X-Hive-CDN-Key".into());
            let config = RegistryConfig::for_url(url, &header, env("GATEWAY_REGISTRY_KEY"));
            return Ok(Origin::Registry {
                config: None,
                registry: registry(config).await?,
            });
        }
        match (&self.config, &self.supergraph) {
            (Some(path), _) => match Config::load(path)?.registry {
                Some(config) => Ok(Origin::Registry {
                    config: Some(path.clone()),
                    registry: registry(config).await?,
                }),
                None => Ok(Origin::Config(path.clone())),
            },
            (None, Some(supergraph)) => Ok(Origin::Supergraph(supergraph.clone())),
            (None, None) => {
                anyhow::bail!("pass --config FILE, --supergraph FILE or --supergraph-url URL")
            }
        }
    }

    async fn spec(&self) -> anyhow::Result<GatewaySpec> {
        Ok(self.origin().await?.spec(None).await?)
    }
}

/// Telemetry settings from the config file the command uses, if any (a config that
/// fails to load is reported properly later; logging then uses the defaults).
fn telemetry_config(cli: &Cli) -> gateway::telemetry::config::TelemetryConfig {
    let path = match &cli.command {
        #[cfg(feature = "dev")]
        Command::Dev { config, .. } => Some(config),
        Command::Run { schema, .. } | Command::Plan { schema, .. } => schema.config.as_ref(),
        Command::Compose { config }
        | Command::Check { config }
        | Command::Schema { config, .. } => Some(config),
        #[cfg(feature = "dev")]
        Command::DevToken { .. } => None,
    };
    path.and_then(|p| Config::load(p).ok())
        .map(|c| c.telemetry)
        .unwrap_or_default()
}

/// mimalloc's options for a long-running server under bursts: commit arena memory on
/// demand and return freed pages to the OS after 50 ms. Measured with loadbench (unique
/// mode): peak RSS about a third lower at the same throughput; purging at once cost a
/// quarter of the throughput.
const ALLOCATOR_DEFAULTS: [(&str, &str); 2] = [
    ("MIMALLOC_ARENA_EAGER_COMMIT", "0"),
    ("MIMALLOC_PURGE_DELAY", "50"),
];
const ALLOCATOR_TUNED: &str = "GATEWAY_ALLOCATOR_TUNED";

/// mimalloc reads its options from the environment as the process starts, so the
/// defaults above are applied by executing this binary again with them set (same
/// process id). Values the operator set are kept; if the exec fails, it runs untuned.
fn tune_allocator() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os(ALLOCATOR_TUNED).is_some() {
        return;
    }
    let missing: Vec<_> = ALLOCATOR_DEFAULTS
        .iter()
        .filter(|(name, _)| std::env::var_os(name).is_none())
        .collect();
    if missing.is_empty() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut command = std::process::Command::new(exe);
    command
        .args(std::env::args_os().skip(1))
        .env(ALLOCATOR_TUNED, "1");
    for (name, value) in missing {
        command.env(name, value);
    }
    let error = command.exec();
    eprintln!("gateway: running without allocator tuning (re-exec failed: {error})");
}

fn main() -> std::process::ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    let telemetry = telemetry_config(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let served = runtime.block_on(async {
        let _tracing = gateway::telemetry::tracing::init(&telemetry.log, Some(&telemetry.otlp))
            .map_err(|e| anyhow::anyhow!(e))?;
        run(cli).await
    });
    match served {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        #[cfg(feature = "dev")]
        Command::Dev { listen, config } => dev::run(listen, &config).await?,
        Command::Run { schema, listen } => {
            let origin = schema.origin().await?;
            let mut spec = origin.spec(None).await?;
            if let Some(listen) = listen {
                spec.listen = listen;
            }
            let gateway = server::start(&spec).await?;
            tracing::info!(url = %gateway.url(), "gateway ready");
            let _poller =
                reload::poll_registry(gateway.state.clone(), origin.clone(), Arc::new(|_| {}));
            let reloader =
                reload::watch(gateway.state.clone(), origin, Arc::new(|_| {}), RELOAD_POLL);
            reload_on_sighup(&reloader);
            wait_for_shutdown().await;
            // A second signal cuts the drain short.
            tokio::select! {
                () = gateway.drain() => {}
                () = wait_for_shutdown() => tracing::warn!("second signal: exiting without draining"),
            }
        }
        Command::Check { config } => match server::check::check(&config).await {
            Ok(checked) => println!(
                "ok: {} ({} subgraphs, {} BFFs)",
                config.display(),
                checked.subgraphs,
                checked.bffs
            ),
            Err(problems) => {
                for problem in &problems {
                    eprintln!("error: {problem}");
                }
                anyhow::bail!("{}: {} problem(s)", config.display(), problems.len());
            }
        },
        Command::Schema { config, bff } => {
            let sdl = server::check::schema_sdl(&config, bff.as_deref())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            print!("{sdl}");
        }
        Command::Compose { config } => {
            let config = Config::load(&config)?;
            print!("{}", server::compose_subgraphs(&config).await?);
        }
        Command::Plan {
            schema,
            query,
            operation_name,
        } => {
            let spec = schema.spec().await?;
            let snapshot =
                gateway::schema::SchemaSnapshot::from_supergraph_sdl(&spec.supergraph_sdl)?;
            let text = std::fs::read_to_string(&query)
                .with_context(|| format!("reading {}", query.display()))?;
            let prepared = gateway::request::prepare(&snapshot, &text, operation_name.as_deref())
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            print!("{}", prepared.plan);
        }
        #[cfg(feature = "dev")]
        Command::DevToken {
            sub,
            tier,
            scope,
            ttl,
        } => dev::token(sub, tier, scope, ttl)?,
    }
    Ok(())
}

/// How often watched files are checked for changes.
const RELOAD_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// SIGHUP asks for a reload now.
fn reload_on_sighup(reloader: &reload::Reloader) {
    #[cfg(unix)]
    {
        let Ok(mut hangup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        let trigger = reloader.trigger_handle();
        tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading");
                trigger.notify_one();
            }
        });
    }
}

async fn wait_for_shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutting down");
}
