//! `gateway check --config FILE`: load and validate everything `run` would (the config,
//! subgraph SDLs and their composition, REST/gRPC mappings and protos, BFF files, views
//! and persisted documents, TLS files, client auth keys) without opening a listener, and
//! report every problem found rather than the first. Stages that do not depend on each
//! other are checked apart: a broken BFF file does not hide a broken TLS file. Messages
//! name their file, and the line and column when the parser gives them.

use std::path::Path;
use std::sync::Arc;

use super::registry::Registry;
use super::spec::GatewaySpec;
use crate::bff::BffConfig;
use crate::config::Config;
use crate::telemetry::Metrics;

/// What was checked, when nothing was wrong.
#[derive(Debug)]
pub struct Checked {
    pub subgraphs: usize,
    pub bffs: usize,
}

/// Every problem `run` would stop at, or a summary of what loads.
pub async fn check(path: &Path) -> Result<Checked, Vec<String>> {
    let config = Config::load(path).map_err(|e| vec![e.to_string()])?;
    let mut problems = Vec::new();

    // Each BFF file alone; the schema stage below gets the ones that load.
    let mut loadable = config.clone();
    loadable.bffs.clear();
    for file in &config.bffs {
        match BffConfig::load(file) {
            Ok(_) => loadable.bffs.push(file.clone()),
            Err(e) => problems.push(e.to_string()),
        }
    }
    if let Some(tls) = &config.tls
        && let Err(e) = crate::ingress::tls::acceptor(tls)
    {
        problems.push(format!("{}: tls: {e}", path.display()));
    }

    let spec = match &config.registry {
        Some(section) => match Registry::new(section.clone()) {
            Ok(registry) => match registry.load().await {
                Ok(sdl) => GatewaySpec::from_config_with(&loadable, Some(&sdl)).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        },
        None => GatewaySpec::from_config(&loadable).await,
    };
    let checked = match spec {
        Err(e) => {
            problems.push(e.to_string());
            None
        }
        Ok(spec) => {
            let metrics = Arc::new(Metrics::new());
            if let Err(e) = crate::ingress::auth::Access::compile(&spec.access, &metrics) {
                problems.push(format!("{}: {e}", path.display()));
            }
            match spec.engine_with(metrics) {
                Ok(engine) => Some(Checked {
                    subgraphs: engine.schema.supergraph.graphs.len(),
                    bffs: engine.bffs.len(),
                }),
                Err(e) => {
                    problems.push(e.to_string());
                    None
                }
            }
        }
    };
    match checked {
        Some(checked) if problems.is_empty() => Ok(checked),
        _ => Err(problems),
    }
}
