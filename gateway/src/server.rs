//! Start-up: turn a config (or a supergraph file) into a running engine and serve it.
//! Everything that can fail at start-up fails here, with a message that says what to fix.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;

use crate::config::{Config, ConfigError};
use crate::ingress::{self, AppState};
use crate::pipeline::Engine;
use crate::schema::compose::{self, SubgraphInput};
use crate::schema::{SchemaError, SchemaSnapshot};
use crate::sources::{GraphqlSource, Source, Sources};
use crate::telemetry::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error("composition failed:\n{0}")]
    Composition(#[from] compose::CompositionErrors),
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot fetch the schema of subgraph \"{subgraph}\" from {url}: {message}")]
    Introspection {
        subgraph: String,
        url: String,
        message: String,
    },
    #[error("invalid URL {url:?} for subgraph \"{subgraph}\": {message}")]
    Url {
        subgraph: String,
        url: String,
        message: String,
    },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
}

/// What the engine is built from, whichever way the schema was given.
#[derive(Debug, Clone)]
pub struct GatewaySpec {
    pub supergraph_sdl: String,
    /// Subgraph URL overrides by name (the supergraph's `join__graph` URLs otherwise).
    pub urls: HashMap<String, String>,
    pub timeouts: HashMap<String, Duration>,
    pub default_timeout: Duration,
    pub listen: String,
    pub max_body_bytes: usize,
    pub expose_query_plan: bool,
}

impl GatewaySpec {
    /// From a precomposed supergraph file, with defaults for the rest.
    pub fn from_supergraph_file(path: &Path) -> Result<Self, StartupError> {
        let supergraph_sdl = read(path)?;
        let defaults = crate::config::Limits::default();
        Ok(GatewaySpec {
            supergraph_sdl,
            urls: HashMap::new(),
            timeouts: HashMap::new(),
            default_timeout: crate::config::UpstreamDefaults::default().timeout,
            listen: "127.0.0.1:4000".into(),
            max_body_bytes: defaults.max_body_bytes,
            expose_query_plan: false,
        })
    }

    /// From a config file: compose the registered subgraphs (fetching SDLs from the
    /// subgraphs where asked), or read the precomposed supergraph it names.
    pub async fn from_config(config: &Config) -> Result<Self, StartupError> {
        let supergraph_sdl = match &config.supergraph {
            Some(path) => read(path)?,
            None => compose_subgraphs(config).await?,
        };
        Ok(GatewaySpec {
            supergraph_sdl,
            urls: config
                .subgraphs
                .iter()
                .map(|s| (s.name.clone(), s.url.clone()))
                .collect(),
            timeouts: config
                .subgraphs
                .iter()
                .filter_map(|s| s.timeout.map(|t| (s.name.clone(), t)))
                .collect(),
            default_timeout: config.upstream.timeout,
            listen: config.listen.clone(),
            max_body_bytes: config.limits.max_body_bytes,
            expose_query_plan: config.telemetry.expose_query_plan,
        })
    }

    pub fn engine(&self) -> Result<Engine, StartupError> {
        let schema = SchemaSnapshot::from_supergraph_sdl(&self.supergraph_sdl)?;
        let client = GraphqlSource::default_client();
        let mut list: Vec<Arc<dyn Source>> = Vec::new();
        for graph in &schema.supergraph.graphs {
            let url = self.urls.get(&graph.name).unwrap_or(&graph.url);
            let parsed = reqwest::Url::parse(url).map_err(|e| StartupError::Url {
                subgraph: graph.name.clone(),
                url: url.clone(),
                message: e.to_string(),
            })?;
            let timeout = self
                .timeouts
                .get(&graph.name)
                .copied()
                .unwrap_or(self.default_timeout);
            list.push(Arc::new(GraphqlSource::new(
                parsed,
                client.clone(),
                timeout,
            )));
        }
        Ok(Engine::new(schema, Sources(list)))
    }
}

fn read(path: &Path) -> Result<String, StartupError> {
    std::fs::read_to_string(path).map_err(|source| StartupError::Read {
        path: path.display().to_string(),
        source,
    })
}

pub async fn compose_subgraphs(config: &Config) -> Result<String, StartupError> {
    let mut inputs = Vec::new();
    for subgraph in &config.subgraphs {
        let sdl = match &subgraph.schema.file {
            Some(path) => read(path)?,
            None => fetch_sdl(&subgraph.name, &subgraph.url).await?,
        };
        inputs.push(SubgraphInput {
            name: subgraph.name.clone(),
            url: subgraph.url.clone(),
            sdl,
        });
    }
    Ok(compose::compose(&inputs)?)
}

/// `{ _service { sdl } }` against a running subgraph.
async fn fetch_sdl(name: &str, url: &str) -> Result<String, StartupError> {
    let error = |message: String| StartupError::Introspection {
        subgraph: name.to_string(),
        url: url.to_string(),
        message,
    };
    let client = GraphqlSource::default_client();
    let response = client
        .post(url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(r#"{"query":"{ _service { sdl } }"}"#)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| error(e.to_string()))?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| error(e.to_string()))?;
    if !status.is_success() {
        return Err(error(format!("HTTP {status}")));
    }
    let json: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| error(format!("not JSON: {e}")))?;
    json.pointer("/data/_service/sdl")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .ok_or_else(|| error("the response has no `data._service.sdl` string".into()))
}

/// A gateway serving on a socket; dropping the handle does not stop it, `shutdown` does.
pub struct RunningGateway {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningGateway {
    pub fn url(&self) -> String {
        format!("http://{}/graphql", self.addr)
    }

    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = self.task.await;
    }
}

/// Bind and serve in the background.
pub async fn start(spec: &GatewaySpec) -> Result<RunningGateway, StartupError> {
    let metrics = Arc::new(Metrics::new());
    let mut engine = spec.engine()?;
    engine.metrics = metrics.clone();
    let listener =
        TcpListener::bind(&spec.listen)
            .await
            .map_err(|source| StartupError::Listen {
                addr: spec.listen.clone(),
                source,
            })?;
    let addr = listener
        .local_addr()
        .map_err(|source| StartupError::Listen {
            addr: spec.listen.clone(),
            source,
        })?;
    let state = Arc::new(AppState {
        engine: ArcSwap::from_pointee(engine),
        metrics,
        allow_plan_header: spec.expose_query_plan,
    });
    let app = ingress::router(state.clone(), spec.max_body_bytes);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "server stopped");
        }
    });
    Ok(RunningGateway {
        addr,
        state,
        shutdown: Some(tx),
        task,
    })
}
