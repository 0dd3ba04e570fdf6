//! `subgraph-mocks`: serves the four federation benchmark subgraphs standalone on one address
//! (default `0.0.0.0:4200`, the URLs of the benchmark supergraph), the REST `orders` service
//! (default `0.0.0.0:4201`) and the gRPC `notifications` service (default `0.0.0.0:4202`) of
//! `schemas/gateway.yaml`, until Ctrl-C or SIGTERM.

use anyhow::{Context as _, bail};
use clap::Parser;
use subgraph_mocks::{Fault, MockServices, MockSubgraphs, SERVICES, SUBGRAPHS, subgraphs};
use tracing::info;

/// Serves the federation benchmark's subgraphs (accounts, inventory, products, reviews) at
/// http://ADDR/accounts, /inventory, /products and /reviews, plus control routes:
/// GET /control/stats, POST /control/reset, GET /control/faults,
/// GET|POST /control/fault/{subgraph|all} (JSON body like
/// {"latency_ms":20,"http_500_rate":0.1,"graphql_error_rate":0,"down":false}), and a
/// development JWT issuer: GET /dev-issuer/jwks.json, GET /dev-issuer/token?sub=NAME.
#[derive(Debug, Parser)]
#[command(name = "subgraph-mocks", version)]
struct Cli {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:4200")]
    listen: String,

    /// Address of the REST `orders` service.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:4201")]
    rest_listen: String,

    /// Address of the gRPC `notifications` service.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:4202")]
    grpc_listen: String,

    /// Inject a fault at startup, e.g. `--fault products=latency_ms:20,http_500_rate:0.1`.
    /// SUBGRAPH is a subgraph name, `orders`, `notifications` or `all` (the four subgraphs); SPEC is comma-separated `key:value` pairs with keys
    /// latency_ms (added before answering), http_500_rate and graphql_error_rate (0..=1,
    /// deterministic: with rate r the n-th request fails iff floor(n*r) > floor((n-1)*r)), and
    /// down (bare `down` = down:true; requests on that path get their connection closed).
    /// Repeatable.
    #[arg(long = "fault", value_name = "SUBGRAPH=SPEC")]
    faults: Vec<String>,

    /// Print the Federation SDL served by SUBGRAPH (its `_service { sdl }`) and exit.
    #[arg(long, value_name = "SUBGRAPH")]
    print_sdl: Option<String>,
}

fn parse_fault(arg: &str) -> anyhow::Result<(Vec<&'static str>, Fault)> {
    let (name, spec) = arg
        .split_once('=')
        .with_context(|| format!("--fault `{arg}`: expected SUBGRAPH=SPEC"))?;
    let names: Vec<&'static str> = if name == "all" {
        SUBGRAPHS.to_vec()
    } else {
        match SUBGRAPHS
            .iter()
            .chain(SERVICES.iter())
            .find(|s| **s == name)
        {
            Some(s) => vec![*s],
            None => bail!(
                "--fault `{arg}`: unknown subgraph `{name}` (expected one of {SUBGRAPHS:?}, {SERVICES:?} or `all`)"
            ),
        }
    };
    let fault = spec
        .parse::<Fault>()
        .with_context(|| format!("--fault `{arg}`"))?;
    Ok((names, fault))
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(name) = &cli.print_sdl {
        match subgraphs::sdl(name) {
            Some(sdl) => {
                print!("{sdl}");
                return Ok(());
            }
            None => bail!("unknown subgraph `{name}` (expected one of {SUBGRAPHS:?})"),
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let faults = cli
        .faults
        .iter()
        .map(|f| parse_fault(f))
        .collect::<anyhow::Result<Vec<_>>>()?;

    let mocks = MockSubgraphs::start(&cli.listen).await?;
    let services = MockServices::start_on(&cli.rest_listen, &cli.grpc_listen).await?;
    for (names, fault) in faults {
        for name in names {
            if SERVICES.contains(&name) {
                services.set_fault(name, fault);
            } else {
                mocks.set_fault(name, fault);
            }
        }
    }
    for name in SUBGRAPHS {
        info!(subgraph = name, url = %mocks.url(name), "serving");
    }
    for name in SERVICES {
        info!(service = name, url = %services.url(name), "serving");
    }
    shutdown_signal().await;
    info!("shutting down");
    mocks.shutdown().await;
    services.shutdown().await;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fault_flags() {
        let (names, fault) = parse_fault("products=latency_ms:20,http_500_rate:0.1").unwrap();
        assert_eq!(names, ["products"]);
        assert_eq!(fault.latency_ms, 20);
        assert_eq!(fault.http_500_rate, 0.1);
        let (names, fault) = parse_fault("all=down").unwrap();
        assert_eq!(names.len(), 4);
        assert!(fault.down);
        assert!(parse_fault("nope=down").is_err());
        assert!(parse_fault("products").is_err());
    }

    #[test]
    fn cli_parses() {
        let cli = Cli::try_parse_from([
            "subgraph-mocks",
            "--listen",
            "127.0.0.1:0",
            "--fault",
            "reviews=down",
        ])
        .unwrap();
        assert_eq!(cli.listen, "127.0.0.1:0");
        assert_eq!(cli.faults, ["reviews=down"]);
    }
}
