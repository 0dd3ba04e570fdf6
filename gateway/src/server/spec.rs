//! What a gateway is built from ([`GatewaySpec`]), read from a config file or a
//! supergraph file, and the engine built from it: composition, sources, policies,
//! BFFs. Everything that can fail at start-up (or on a reload) fails here, with a
//! message that says what to fix.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::bff::{self, BffConfig};
use crate::config::{Config, ConfigError};
use crate::pipeline::Engine;
use crate::policy::config::SubscriptionTransport;
use crate::policy::{self, UpstreamConfig};
use crate::schema::compose::{self, SubgraphInput};
use crate::schema::{SchemaError, SchemaSnapshot};
use crate::sources::graphql::{GraphqlSource, Subscriptions};
use crate::sources::grpc::{self, GrpcSource};
use crate::sources::mapping;
use crate::sources::rest::{self, RestSource};
use crate::sources::ws::{self, WsUpstream};
use crate::sources::{Source, SourceKind, Sources};
use crate::telemetry::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error("{0}")]
    Bff(String),
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
    #[error("invalid {kind} source \"{subgraph}\" (fix its SDL directives or .proto files):\n  - {}", errors.join("\n  - "))]
    Source {
        subgraph: String,
        kind: SourceKind,
        errors: Vec<String>,
    },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    /// Client auth, rate limits or Redis could not be set up.
    #[error("{0}")]
    Access(String),
    /// No supergraph from the registry, and no cached copy to start from.
    #[error("{0}")]
    Registry(String),
    /// A TLS file (listener or upstream) is missing or unusable.
    #[error("TLS: {0}")]
    Tls(String),
}

/// What the engine is built from, whichever way the schema was given.
#[derive(Debug, Clone)]
pub struct GatewaySpec {
    pub supergraph_sdl: String,
    /// Subgraph URL overrides by name (the supergraph's `join__graph` URLs otherwise).
    pub urls: HashMap<String, String>,
    /// GraphQL subgraphs with several instances or weighted versions, by name; these
    /// win over `urls`.
    pub routes: HashMap<String, policy::RouteSpec>,
    /// The upstream policy stack: defaults and per-source overrides.
    pub upstream: UpstreamConfig,
    pub listen: String,
    /// TLS termination on the listener; plain HTTP when `None`.
    pub tls: Option<crate::ingress::tls::TlsConfig>,
    /// Request limits: body size, deadline, the unified endpoint's operation limits.
    pub limits: crate::config::Limits,
    pub expose_query_plan: bool,
    /// Subgraphs that are not GraphQL servers (REST, gRPC), by name: they execute
    /// subgraph operations locally from the mapping directives of their SDL.
    pub sources: HashMap<String, SourceSpec>,
    pub edge: crate::ingress::EdgeConfig,
    /// Client auth, client rate limits and the Redis of distributed mode.
    pub access: crate::ingress::auth::AccessConfig,
    /// BFF definitions (views, limits, persisted operations), loaded.
    pub bffs: Vec<BffConfig>,
}

/// What a REST or gRPC source is built from.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    pub kind: SourceKind,
    /// The subgraph SDL as written, with its mapping directives.
    pub sdl: String,
    /// `.proto` files (gRPC).
    pub protos: Vec<PathBuf>,
}

impl GatewaySpec {
    /// From a precomposed supergraph file, with defaults for the rest.
    pub fn from_supergraph_file(path: &Path) -> Result<Self, StartupError> {
        Ok(Self::from_supergraph_sdl(read(path)?))
    }

    /// From a supergraph SDL (a registry's), with defaults for the rest.
    pub fn from_supergraph_sdl(supergraph_sdl: String) -> Self {
        GatewaySpec {
            supergraph_sdl,
            urls: HashMap::new(),
            routes: HashMap::new(),
            upstream: UpstreamConfig::default(),
            listen: "127.0.0.1:4000".into(),
            tls: None,
            limits: Default::default(),
            expose_query_plan: false,
            edge: Default::default(),
            bffs: Vec::new(),
            access: Default::default(),
            sources: HashMap::new(),
        }
    }

    /// From a config file: compose the registered subgraphs (fetching SDLs from the
    /// subgraphs where asked), or read the precomposed supergraph it names.
    pub async fn from_config(config: &Config) -> Result<Self, StartupError> {
        Self::from_config_with(config, None).await
    }

    /// From a config file whose supergraph comes from its `registry:` (fetched by the
    /// caller, see [`super::registry`]).
    pub async fn from_config_with(
        config: &Config,
        registry_sdl: Option<&str>,
    ) -> Result<Self, StartupError> {
        let (supergraph_sdl, sources) = match (&config.supergraph, registry_sdl) {
            (_, Some(sdl)) => (sdl.to_string(), HashMap::new()),
            (None, None) if config.registry.is_some() => {
                return Err(StartupError::Registry(
                    "the config's supergraph comes from `registry:`, and none was fetched".into(),
                ));
            }
            (Some(path), None) => (read(path)?, HashMap::new()),
            (None, None) => {
                let inputs = load_subgraphs(config).await?;
                let mut sources = HashMap::new();
                for subgraph in &config.subgraphs {
                    if subgraph.kind != SourceKind::Graphql {
                        let sdl = read(subgraph.schema.file.as_deref().unwrap_or(Path::new("")))?;
                        sources.insert(
                            subgraph.name.clone(),
                            SourceSpec {
                                kind: subgraph.kind,
                                sdl,
                                protos: subgraph.protos.clone(),
                            },
                        );
                    }
                }
                (compose::compose(&inputs)?, sources)
            }
        };
        Ok(GatewaySpec {
            supergraph_sdl,
            urls: config
                .subgraphs
                .iter()
                .map(|s| (s.name.clone(), s.primary_url().to_string()))
                .collect(),
            routes: config
                .subgraphs
                .iter()
                .filter_map(|s| {
                    let route = policy::RouteSpec::of(
                        s.urls.as_ref(),
                        s.versions.as_ref(),
                        s.version_header.as_ref(),
                    )?;
                    Some((s.name.clone(), route))
                })
                .collect(),
            upstream: upstream_of(config),
            listen: config.listen.clone(),
            tls: config.tls.clone(),
            limits: config.limits.clone(),
            expose_query_plan: config.telemetry.expose_query_plan,
            edge: config.edge.clone(),
            bffs: config
                .bffs
                .iter()
                .map(|p| BffConfig::load(p))
                .collect::<Result<_, _>>()?,
            access: crate::ingress::auth::AccessConfig {
                auth: config.auth.clone(),
                rate_limit: config.rate_limit.clone(),
                redis: config.redis.clone(),
            },
            sources,
        })
    }

    pub fn engine(&self) -> Result<Engine, StartupError> {
        self.engine_with(Arc::new(Metrics::new()))
    }

    /// Build the engine, with every source wrapped in its policy stack.
    pub fn engine_with(&self, metrics: Arc<Metrics>) -> Result<Engine, StartupError> {
        let schema = SchemaSnapshot::from_supergraph_sdl(&self.supergraph_sdl)?;
        let client = GraphqlSource::default_client();
        // Distributed mode: the response cache is shared through Redis.
        let shared_cache = match &self.access.redis {
            Some(redis) if redis.response_cache => Some(
                crate::redis_store::RedisStore::shared(redis, &metrics)
                    .map_err(StartupError::Access)?,
            ),
            _ => None,
        };
        let mut list: Vec<Arc<dyn Source>> = Vec::new();
        for graph in &schema.supergraph.graphs {
            let url = self.urls.get(&graph.name).unwrap_or(&graph.url);
            let parsed = reqwest::Url::parse(url).map_err(|e| StartupError::Url {
                subgraph: graph.name.clone(),
                url: url.clone(),
                message: e.to_string(),
            })?;
            let policy = self.upstream.policy_for(&graph.name);
            // A source with its own `tls:` (CA, client certificate) gets its own client.
            let client = match &policy.tls {
                Some(tls) => {
                    crate::sources::tls::upstream_client(tls, GraphqlSource::client_builder())
                        .map_err(|e| {
                            StartupError::Tls(format!("subgraph \"{}\": {e}", graph.name))
                        })?
                }
                None => client.clone(),
            };
            let graphql = |url: reqwest::Url| -> Result<Arc<dyn Source>, StartupError> {
                let subscriptions = subscriptions_of(&graph.name, &url, &policy)?;
                Ok(Arc::new(
                    GraphqlSource::new(url, client.clone())
                        .with_subscriptions(subscriptions)
                        .with_max_response_bytes(policy.max_response_bytes),
                ))
            };
            let targets: policy::Targets = match self.sources.get(&graph.name) {
                // Several instances: one GraphQL source each, sharing the client's pool.
                None if let Some(route) = self.routes.get(&graph.name) => route.build(|url| {
                    let parsed = reqwest::Url::parse(url).map_err(|e| StartupError::Url {
                        subgraph: graph.name.clone(),
                        url: url.to_string(),
                        message: e.to_string(),
                    })?;
                    graphql(parsed)
                })?,
                None => graphql(parsed)?.into(),
                Some(spec) => local_source(&graph.name, url, spec, &policy, &client)?.into(),
            };
            list.push(policy::stack(
                &graph.name,
                targets,
                &policy,
                metrics.clone(),
                shared_cache.as_ref(),
            ));
        }
        let mut engine = Engine::new(schema, Sources(list));
        engine.bffs = bff::build(&engine.schema, &self.bffs, self.access.auth.verifiers())
            .map_err(StartupError::Bff)?;
        engine.metrics = metrics;
        engine.limits = self.limits.graphql.clone();
        engine.deadline = self.limits.deadline;
        Ok(engine)
    }
}

/// Where a GraphQL subgraph's subscriptions go: its URL (or `subscriptions.url`) with
/// the WebSocket scheme, trusted like its HTTP endpoint, or over SSE at its URL.
fn subscriptions_of(
    name: &str,
    url: &reqwest::Url,
    policy: &policy::SourcePolicy,
) -> Result<Subscriptions, StartupError> {
    let invalid = |url: &str, message: String| StartupError::Url {
        subgraph: name.to_string(),
        url: url.to_string(),
        message,
    };
    let configured = match &policy.subscriptions.url {
        Some(text) => Some(reqwest::Url::parse(text).map_err(|e| invalid(text, e.to_string()))?),
        None => None,
    };
    let url = configured.as_ref().unwrap_or(url);
    if policy.subscriptions.transport == SubscriptionTransport::Sse {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(
                url.as_str(),
                "SSE subscriptions need http(s)://".into(),
            ));
        }
        return Ok(Subscriptions::Sse(url.clone()));
    }
    let url = ws::ws_url_of(url).map_err(|message| invalid(url.as_str(), message))?;
    let tls = match url.scheme() {
        "wss" => Some(
            crate::sources::tls::rustls_client(policy.tls.as_ref())
                .map_err(|e| StartupError::Tls(format!("subgraph \"{name}\": {e}")))?,
        ),
        _ => None,
    };
    Ok(Subscriptions::WebSocket(WsUpstream {
        url,
        tls,
        init_payload: None,
    }))
}

/// The config's upstream policies, with each subgraph's `timeout` shorthand folded in.
fn upstream_of(config: &Config) -> UpstreamConfig {
    let mut upstream = config.upstream.clone();
    for s in &config.subgraphs {
        if let Some(t) = s.timeout {
            let entry = upstream.sources.entry(s.name.clone()).or_default();
            entry.timeout.get_or_insert(t);
        }
    }
    upstream
}

fn read(path: &Path) -> Result<String, StartupError> {
    std::fs::read_to_string(path).map_err(|source| StartupError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// A REST or gRPC source. Each backend call gets most of the attempt timeout, so that
/// a slow call nulls its own field (with the call's error) before the whole fetch times
/// out.
fn local_source(
    name: &str,
    url: &str,
    spec: &SourceSpec,
    policy: &policy::SourcePolicy,
    client: &reqwest::Client,
) -> Result<Arc<dyn Source>, StartupError> {
    let limits = crate::sources::CallLimits {
        timeout: policy.timeout.mul_f64(0.8),
        max_response_bytes: policy.max_response_bytes,
    };
    let built: Result<Arc<dyn Source>, Vec<String>> = match spec.kind {
        SourceKind::Rest => RestSource::new(name, url, &spec.sdl, client.clone(), limits)
            .map(|s| Arc::new(s) as Arc<dyn Source>),
        SourceKind::Grpc => {
            // Read (and checked) only for an `https://` endpoint.
            let tls = if url.starts_with("https://") {
                let tls = crate::sources::tls::grpc_client_tls(policy.tls.as_ref())
                    .map_err(|e| StartupError::Tls(format!("source \"{name}\": {e}")))?;
                Some(tls)
            } else {
                None
            };
            GrpcSource::new(name, url, &spec.sdl, &spec.protos, limits, tls)
                .map(|s| Arc::new(s) as Arc<dyn Source>)
        }
        SourceKind::Graphql => Err(vec!["not a local source".into()]),
    };
    built.map_err(|errors| StartupError::Source {
        subgraph: name.to_string(),
        kind: spec.kind,
        errors,
    })
}

pub async fn compose_subgraphs(config: &Config) -> Result<String, StartupError> {
    Ok(compose::compose(&load_subgraphs(config).await?)?)
}

/// The subgraphs' SDLs; REST and gRPC SDLs get their mapping directives defined.
async fn load_subgraphs(config: &Config) -> Result<Vec<SubgraphInput>, StartupError> {
    let mut inputs = Vec::new();
    for subgraph in &config.subgraphs {
        let sdl = match &subgraph.schema.file {
            Some(path) => read(path)?,
            None => fetch_sdl(&subgraph.name, subgraph.primary_url()).await?,
        };
        inputs.push(SubgraphInput {
            name: subgraph.name.clone(),
            url: subgraph.primary_url().to_string(),
            sdl: match subgraph.kind {
                SourceKind::Graphql => sdl,
                SourceKind::Rest => mapping::with_directive_definitions(&sdl, rest::DIRECTIVES),
                SourceKind::Grpc => mapping::with_directive_definitions(&sdl, grpc::DIRECTIVES),
            },
        });
    }
    Ok(inputs)
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
