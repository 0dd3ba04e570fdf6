//! `gateway check --config FILE`: load and validate everything `run` would (the config,
//! subgraph SDLs and their composition, REST/gRPC mappings and protos, BFF files, views
//! and persisted documents, TLS files, client auth keys) without opening a listener, and
//! report every problem found rather than the first. Stages that do not depend on each
//! other are checked apart: a broken BFF file does not hide a broken TLS file. Messages
//! name their file, and the line and column when the parser gives them. `gateway
//! schema` loads the same way and prints a schema instead.

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

    let checked = match spec_of(&loadable).await {
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

/// The spec `run` would serve for `config`: its subgraphs composed, or the registry's
/// supergraph.
async fn spec_of(config: &Config) -> Result<GatewaySpec, super::StartupError> {
    match &config.registry {
        Some(section) => {
            let sdl = Registry::new(section.clone())?.load().await?;
            GatewaySpec::from_config_with(config, Some(&sdl)).await
        }
        None => GatewaySpec::from_config(config).await,
    }
}

/// `gateway schema`: the SDL clients of the unified endpoint see, or of one BFF (its
/// view, as its introspection shows it).
pub async fn schema_sdl(path: &Path, bff: Option<&str>) -> Result<String, String> {
    let config = Config::load(path).map_err(|e| e.to_string())?;
    let spec = spec_of(&config).await.map_err(|e| e.to_string())?;
    let engine = spec
        .engine_with(Arc::new(Metrics::new()))
        .map_err(|e| e.to_string())?;
    let api = match bff {
        None => engine.schema.api.to_string(),
        Some(name) => match engine.bffs.get(name) {
            Some(bff) => bff.api.to_string(),
            None => {
                let mut known: Vec<&str> = engine.bffs.keys().map(String::as_str).collect();
                known.sort_unstable();
                return Err(format!(
                    "no BFF `{name}` in {} (its BFFs: {})",
                    path.display(),
                    known.join(", ")
                ));
            }
        },
    };
    Ok(api)
}
