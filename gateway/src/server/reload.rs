//! Hot reload: watch the config file and every file it names (subgraph SDLs and protos,
//! BFF files and their sources' SDLs and protos, the supergraph), rebuild the engine in the background when one changes (or on SIGHUP),
//! and swap it in atomically. Requests in flight finish on the engine they started
//! with. A change that fails to load, compose or plan is rejected with a log line and
//! the running version stays. A supergraph from a registry is polled
//! ([`poll_registry`]) and goes through the same path.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustc_hash::FxHasher;
use tokio::sync::Notify;

use super::registry::{Fetched, Registry};
use super::spec::{GatewaySpec, StartupError};
use crate::config::Config;
use crate::ingress::AppState;

/// Where the running graph comes from.
#[derive(Debug, Clone)]
pub enum Origin {
    Config(PathBuf),
    Supergraph(PathBuf),
    /// The supergraph from a registry; everything else from the config file, if any.
    Registry {
        config: Option<PathBuf>,
        registry: Arc<Registry>,
    },
}

impl Origin {
    /// The spec to build the engine from; `candidate`: a registry's new supergraph to
    /// try instead of the one serving.
    pub async fn spec(&self, candidate: Option<&str>) -> Result<GatewaySpec, StartupError> {
        match self {
            Origin::Config(path) => GatewaySpec::from_config(&Config::load(path)?).await,
            Origin::Supergraph(path) => GatewaySpec::from_supergraph_file(path),
            Origin::Registry { config, registry } => {
                let current = registry.current();
                let sdl = candidate.or(current.as_deref()).ok_or_else(|| {
                    StartupError::Registry("no supergraph from the registry yet".into())
                })?;
                match config {
                    Some(path) => {
                        GatewaySpec::from_config_with(&Config::load(path)?, Some(sdl)).await
                    }
                    None => Ok(GatewaySpec::from_supergraph_sdl(sdl.to_string())),
                }
            }
        }
    }
}

/// Handle to a running watcher.
pub struct Reloader {
    trigger: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Reloader {
    /// Ask for a reload now (what SIGHUP does).
    pub fn trigger(&self) {
        self.trigger.notify_one();
    }

    /// A handle that can trigger reloads from another task.
    pub fn trigger_handle(&self) -> Arc<Notify> {
        self.trigger.clone()
    }
}

impl Drop for Reloader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How a reload went (returned for tests and logged).
#[derive(Debug)]
pub enum Outcome {
    Swapped,
    Rejected(StartupError),
}

/// Poll the watched files every `interval` (content hashes, so quick successive writes
/// are seen too) and reload on change or on [`Reloader::trigger`].
pub fn watch(
    state: Arc<AppState>,
    origin: Origin,
    adjust: Arc<dyn Fn(&mut GatewaySpec) + Send + Sync>,
    interval: Duration,
) -> Reloader {
    let trigger = Arc::new(Notify::new());
    let notified = trigger.clone();
    let task = tokio::spawn(async move {
        let mut last = fingerprint(&origin);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {
                    let now = fingerprint(&origin);
                    if now == last {
                        continue;
                    }
                    last = now;
                }
                _ = notified.notified() => {
                    last = fingerprint(&origin);
                }
            }
            reload(&state, &origin, adjust.as_ref()).await;
        }
    });
    Reloader { trigger, task }
}

/// Build a new engine from the origin and swap it in, or keep the running one.
pub async fn reload(
    state: &AppState,
    origin: &Origin,
    adjust: &(dyn Fn(&mut GatewaySpec) + Send + Sync),
) -> Outcome {
    rebuild(state, origin, adjust, None).await
}

async fn rebuild(
    state: &AppState,
    origin: &Origin,
    adjust: &(dyn Fn(&mut GatewaySpec) + Send + Sync),
    candidate: Option<&str>,
) -> Outcome {
    let built = async {
        let mut spec = origin.spec(candidate).await?;
        adjust(&mut spec);
        let engine = spec.engine_with(state.metrics.clone())?;
        // Client auth and rate limits are rebuilt only when their config changed:
        // rebuilding resets the local rate-limit counters.
        let access_text = format!("{:?}", spec.access);
        let unchanged = state.access_config.lock().is_ok_and(|t| *t == access_text);
        let access = if unchanged {
            None
        } else {
            let access = crate::ingress::auth::Access::compile(&spec.access, &state.metrics)
                .map_err(StartupError::Access)?;
            access.warm_up().await;
            Some((access, access_text))
        };
        Ok::<_, StartupError>((engine, access))
    }
    .await;
    match built {
        Ok((engine, access)) => {
            if let Some((access, text)) = access {
                state.access.store(Arc::new(access));
                if let Ok(mut t) = state.access_config.lock() {
                    *t = text;
                }
                tracing::info!("client auth and rate limits reloaded");
            }
            state.engine.store(Arc::new(engine));
            tracing::info!(origin = ?origin, "configuration reloaded");
            Outcome::Swapped
        }
        Err(error) => {
            tracing::error!(origin = ?origin, %error, "configuration change rejected; still serving the previous version");
            Outcome::Rejected(error)
        }
    }
}

/// Poll the origin's registry (`registry.poll_interval`, with jitter) and swap in each
/// new supergraph that builds; a registry that fails, lags or publishes something
/// invalid leaves the running version serving (logged, `gateway_registry_polls_total`).
/// Stops when the returned handle is dropped. Nothing to poll without a registry.
pub fn poll_registry(
    state: Arc<AppState>,
    origin: Origin,
    adjust: Arc<dyn Fn(&mut GatewaySpec) + Send + Sync>,
) -> Option<Poller> {
    let Origin::Registry { registry, .. } = &origin else {
        return None;
    };
    let registry = registry.clone();
    let task = tokio::spawn(async move {
        loop {
            tokio::time::sleep(registry.next_wait()).await;
            let result = match registry.fetch(registry.etag().as_deref()).await {
                Err(error) => {
                    tracing::warn!(%error, "registry poll failed; still serving the last good supergraph");
                    "fetch_failed"
                }
                Ok(Fetched::NotModified) => "not_modified",
                Ok(Fetched::Sdl { sdl, etag }) => {
                    if registry.current().as_deref() == Some(sdl.as_str()) {
                        registry.remember(etag);
                        "unchanged"
                    } else {
                        match rebuild(&state, &origin, adjust.as_ref(), Some(&sdl)).await {
                            Outcome::Swapped => {
                                registry.accept(sdl.into(), etag);
                                "swapped"
                            }
                            Outcome::Rejected(_) => {
                                registry.remember(etag);
                                "invalid"
                            }
                        }
                    }
                }
            };
            state.metrics.registry_poll(result);
        }
    });
    Some(Poller { task })
}

/// A running registry poll; dropping it stops the poll.
pub struct Poller {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The files a change in which triggers a reload.
fn watched_files(origin: &Origin) -> Vec<PathBuf> {
    match origin {
        Origin::Supergraph(path) => vec![path.clone()],
        Origin::Registry { config: None, .. } => Vec::new(),
        Origin::Registry {
            config: Some(path), ..
        }
        | Origin::Config(path) => {
            let mut files = vec![path.clone()];
            // An unreadable config is still watched itself, so fixing it reloads.
            if let Ok(config) = Config::load(path) {
                files.extend(config.supergraph.clone());
                for s in &config.subgraphs {
                    files.extend(s.schema.file.clone());
                    files.extend(s.protos.iter().cloned());
                }
                // BFF files, and the SDLs and protos of their own sources.
                for bff in &config.bffs {
                    files.push(bff.clone());
                    let Ok(bff) = crate::bff::BffConfig::load(bff) else {
                        continue;
                    };
                    for s in &bff.sources {
                        files.extend(s.schema.file.clone());
                        files.extend(s.protos.iter().cloned());
                    }
                }
            }
            files
        }
    }
}

fn fingerprint(origin: &Origin) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = FxHasher::default();
    for file in watched_files(origin) {
        file.hash(&mut hasher);
        match std::fs::read(&file) {
            Ok(bytes) => bytes.hash(&mut hasher),
            Err(e) => e.kind().to_string().hash(&mut hasher),
        }
    }
    hasher.finish()
}
