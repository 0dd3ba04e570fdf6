//! `gateway dev` and `gateway dev-token`: the bundled example backends (`subgraph-mocks`)
//! in-process, and tokens of their development JWT issuer. Behind the default-on `dev`
//! feature, so that a production build (`--no-default-features`) leaves the mocks and
//! async-graphql out.

use std::path::Path;

use anyhow::Context;
use gateway::config::Config;
use gateway::server::{self, GatewaySpec};

/// Serve the example config against the mocks until SIGINT/SIGTERM.
pub async fn run(listen: String, config: &Path) -> anyhow::Result<()> {
    let mocks = subgraph_mocks::MockSubgraphs::start("127.0.0.1:0")
        .await
        .context("starting the example subgraphs")?;
    let services = subgraph_mocks::MockServices::start("127.0.0.1")
        .await
        .context("starting the example REST and gRPC services")?;
    let config = Config::load(config)?;
    let mut spec = GatewaySpec::from_config(&with_mock_urls(config, &mocks, &services)).await?;
    // The BFFs' own sources (the partner's pricing service) are mocks too.
    for (name, url) in &mut spec.urls {
        if subgraph_mocks::SERVICES.contains(&name.as_str()) {
            *url = services.url(name);
        }
    }
    spec.listen = listen;
    let gateway = server::start(&spec).await?;
    println!("gateway ready");
    println!("  GraphQL + GraphiQL:  {}", gateway.url());
    println!(
        "  health:              http://{0}/health/live, http://{0}/health/ready",
        gateway.addr
    );
    let mut bffs: Vec<String> = gateway.state.engine.load().bffs.keys().cloned().collect();
    bffs.sort();
    for name in bffs {
        println!(
            "  BFF {name:<17} http://{}/bff/{name}/graphql",
            gateway.addr
        );
    }
    for name in subgraph_mocks::SUBGRAPHS {
        println!("  subgraph {name:<13} {}", mocks.url(name));
    }
    println!("  REST orders            {}", services.url("orders"));
    println!(
        "  REST partner-pricing   {} (the partner BFF's own)",
        services.url("partner-pricing")
    );
    println!("  gRPC notifications     {}", services.url("notifications"));
    println!(
        "  mock control:          {}/control/stats, {}/control/stats",
        mocks.base_url("accounts"),
        services.url("orders")
    );
    println!(
        "  emit reviewAdded:      curl -X POST {}/control/subscriptions/reviews -d '{{\"emit\":\"1\"}}'",
        mocks.base_url("reviews")
    );
    println!(
        "  emit notificationAdded: curl -X POST {}/control/subscriptions/notifications -d '{{\"emit\":\"n-1-0\"}}'",
        services.url("orders")
    );
    println!(
        "  emit orderUpdated:     curl -X POST {}/control/subscriptions/orders -d '{{\"emit\":\"1001\"}}'",
        services.url("orders")
    );
    println!(
        "  dev JWT issuer:        {} (a token: gateway dev-token, or curl '{}?sub=alice')",
        mocks.jwks_url(),
        mocks.token_url()
    );
    println!("  try:                   schemas/examples/dashboard.graphql (see README)");
    crate::wait_for_shutdown().await;
    gateway.shutdown().await;
    mocks.shutdown().await;
    services.shutdown().await;
    Ok(())
}

/// Print a token signed by the development issuer.
pub fn token(
    sub: String,
    tier: Option<String>,
    scope: Option<String>,
    ttl: u64,
) -> anyhow::Result<()> {
    let token = subgraph_mocks::issuer::DevToken {
        sub,
        tier,
        scope,
        ttl,
    };
    println!("{}", subgraph_mocks::issuer::mint(&token)?);
    Ok(())
}

/// Point the example config's subgraphs and dev JWT issuer at the in-process mocks.
fn with_mock_urls(
    mut config: Config,
    mocks: &subgraph_mocks::MockSubgraphs,
    services: &subgraph_mocks::MockServices,
) -> Config {
    for subgraph in &mut config.subgraphs {
        let url = if subgraph_mocks::SUBGRAPHS.contains(&subgraph.name.as_str()) {
            mocks.url(&subgraph.name)
        } else if subgraph_mocks::SERVICES.contains(&subgraph.name.as_str()) {
            services.url(&subgraph.name)
        } else {
            continue;
        };
        // One mock instance replaces any instances or versions.
        subgraph.url = Some(url);
        subgraph.urls = None;
        subgraph.versions = None;
        subgraph.version_header = None;
    }
    config
        .auth
        .redirect_jwks(subgraph_mocks::issuer::JWKS_PATH, &mocks.jwks_url());
    config
}
