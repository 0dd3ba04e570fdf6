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
    /// The supergraphs of the BFFs with sources of their own (the shared subgraphs
    /// composed with theirs), by BFF name. Their sources' URLs, specs and timeouts are
    /// in `urls`, `sources` and `upstream` with the shared ones (names are unique).
    pub bff_supergraphs: HashMap<String, String>,
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
            bff_supergraphs: HashMap::new(),
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
        let bffs: Vec<BffConfig> = config
            .bffs
            .iter()
            .map(|p| BffConfig::load(p))
            .collect::<Result<_, _>>()?;
        let mut sources = HashMap::new();
        let mut inputs = Vec::new();
        let supergraph_sdl = match (&config.supergraph, registry_sdl) {
            (_, Some(sdl)) => sdl.to_string(),
            (None, None) if config.registry.is_some() => {
                return Err(StartupError::Registry(
                    "the config's supergraph comes from `registry:`, and none was fetched".into(),
                ));
            }
            (Some(path), None) => read(path)?,
            (None, None) => {
                for subgraph in &config.subgraphs {
                    inputs.push(Entry::of(subgraph).load(&mut sources).await?);
                }
                compose::compose(&inputs)?
            }
        };
        let mut spec = GatewaySpec {
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
            bffs: Vec::new(),
            access: crate::ingress::auth::AccessConfig {
                auth: config.auth.clone(),
                rate_limit: config.rate_limit.clone(),
                redis: config.redis.clone(),
            },
            sources,
            bff_supergraphs: HashMap::new(),
        };
        for bff in &bffs {
            spec.compose_bff(bff, &inputs).await?;
        }
        spec.bffs = bffs;
        Ok(spec)
    }

    /// Compose a BFF's own sources with the shared subgraphs (`inputs`) into its
    /// supergraph, and register them like subgraphs.
    async fn compose_bff(
        &mut self,
        bff: &BffConfig,
        inputs: &[SubgraphInput],
    ) -> Result<(), StartupError> {
        if bff.sources.is_empty() {
            return Ok(());
        }
        let fail = |message: String| StartupError::Bff(format!("BFF `{}`: {message}", bff.name));
        if inputs.is_empty() {
            return Err(fail(
                "`sources` compose with the shared graph's subgraphs, so the gateway config must list them under `subgraphs:` (not a precomposed `supergraph` or a `registry`)".into(),
            ));
        }
        let mut own = inputs.to_vec();
        for source in &bff.sources {
            if self.urls.contains_key(&source.name) {
                return Err(fail(format!(
                    "sources: the name `{}` is already used by a subgraph or another BFF's source",
                    source.name
                )));
            }
            let entry = Entry {
                name: &source.name,
                url: &source.url,
                kind: source.kind,
                schema: &source.schema,
                protos: &source.protos,
            };
            own.push(entry.load(&mut self.sources).await?);
            self.urls.insert(source.name.clone(), source.url.clone());
            if let Some(timeout) = source.timeout {
                let policy = self
                    .upstream
                    .sources
                    .entry(source.name.clone())
                    .or_default();
                policy.timeout = Some(timeout);
            }
        }
        let supergraph = compose::compose(&own).map_err(|errors| {
            fail(format!(
                "its sources do not compose with the shared graph:\n{errors}"
            ))
        })?;
        self.bff_supergraphs.insert(bff.name.clone(), supergraph);
        Ok(())
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
        let build = |name: &str, url: &str| {
            self.source(name, url, &client, &metrics, shared_cache.as_ref())
        };
        let mut by_name: HashMap<&str, Arc<dyn Source>> = HashMap::new();
        let mut list = Vec::new();
        for graph in &schema.supergraph.graphs {
            let source = build(&graph.name, &graph.url)?;
            by_name.insert(&graph.name, source.clone());
            list.push(source);
        }
        // A BFF's graph shares the shared subgraphs' sources (their breakers, caches
        // and pools) and adds its own.
        let mut own = HashMap::new();
        for (bff, sdl) in &self.bff_supergraphs {
            let schema = SchemaSnapshot::from_supergraph_sdl(sdl)?;
            let mut list = Vec::new();
            for graph in &schema.supergraph.graphs {
                list.push(match by_name.get(graph.name.as_str()) {
                    Some(shared) => shared.clone(),
                    None => build(&graph.name, &graph.url)?,
                });
            }
            own.insert(
                bff.clone(),
                bff::OwnGraph {
                    schema,
                    sources: Sources(list),
                },
            );
        }
        let bffs = bff::build(&schema, own, &self.bffs, self.access.auth.verifiers())
            .map_err(StartupError::Bff)?;
        let mut engine = Engine::new(schema, Sources(list)).with_bffs(bffs);
        engine.metrics = metrics;
        engine.limits = self.limits.graphql.clone();
        engine.deadline = self.limits.deadline;
        Ok(engine)
    }

    /// The source of one subgraph (or BFF source), wrapped in its policy stack. `url`
    /// is the supergraph's, unless the spec overrides it.
    fn source(
        &self,
        name: &str,
        url: &str,
        client: &reqwest::Client,
        metrics: &Arc<Metrics>,
        shared_cache: Option<&crate::redis_store::RedisStore>,
    ) -> Result<Arc<dyn Source>, StartupError> {
        let url = self.urls.get(name).map_or(url, String::as_str);
        let invalid = |url: &str, message: String| StartupError::Url {
            subgraph: name.to_string(),
            url: url.to_string(),
            message,
        };
        let parsed = reqwest::Url::parse(url).map_err(|e| invalid(url, e.to_string()))?;
        let policy = self.upstream.policy_for(name);
        // A source with its own `tls:` (CA, client certificate) gets its own client.
        let client = match &policy.tls {
            Some(tls) => crate::sources::tls::upstream_client(tls, GraphqlSource::client_builder())
                .map_err(|e| StartupError::Tls(format!("subgraph \"{name}\": {e}")))?,
            None => client.clone(),
        };
        let graphql = |url: reqwest::Url| -> Result<Arc<dyn Source>, StartupError> {
            let subscriptions = subscriptions_of(name, &url, &policy)?;
            Ok(Arc::new(
                GraphqlSource::new(url, client.clone())
                    .with_subscriptions(subscriptions)
                    .with_max_response_bytes(policy.max_response_bytes),
            ))
        };
        let targets: policy::Targets = match self.sources.get(name) {
            // Several instances: one GraphQL source each, sharing the client's pool.
            None if let Some(route) = self.routes.get(name) => route.build(|url| {
                let parsed = reqwest::Url::parse(url).map_err(|e| invalid(url, e.to_string()))?;
                graphql(parsed)
            })?,
            None => graphql(parsed)?.into(),
            Some(spec) => local_source(name, url, spec, &policy, &client)?.into(),
        };
        Ok(policy::stack(
            name,
            targets,
            &policy,
            metrics.clone(),
            shared_cache,
        ))
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
    let mut inputs = Vec::new();
    let mut sources = HashMap::new();
    for subgraph in &config.subgraphs {
        inputs.push(Entry::of(subgraph).load(&mut sources).await?);
    }
    Ok(compose::compose(&inputs)?)
}

/// One source entry, of the gateway config or of a BFF file.
struct Entry<'a> {
    name: &'a str,
    url: &'a str,
    kind: SourceKind,
    schema: &'a crate::sources::SchemaSource,
    protos: &'a [PathBuf],
}

impl<'a> Entry<'a> {
    fn of(subgraph: &'a crate::config::SubgraphConfig) -> Self {
        Entry {
            name: &subgraph.name,
            url: subgraph.primary_url(),
            kind: subgraph.kind,
            schema: &subgraph.schema,
            protos: &subgraph.protos,
        }
    }

    /// Its SDL for composition (REST and gRPC SDLs get their mapping directives
    /// defined); a REST or gRPC source's spec goes into `sources`.
    async fn load(
        &self,
        sources: &mut HashMap<String, SourceSpec>,
    ) -> Result<SubgraphInput, StartupError> {
        let sdl = match &self.schema.file {
            Some(path) => read(path)?,
            None => fetch_sdl(self.name, self.url).await?,
        };
        let composed = match self.kind {
            SourceKind::Graphql => sdl.clone(),
            SourceKind::Rest => mapping::with_directive_definitions(&sdl, rest::DIRECTIVES),
            SourceKind::Grpc => mapping::with_directive_definitions(&sdl, grpc::DIRECTIVES),
        };
        if self.kind != SourceKind::Graphql {
            sources.insert(
                self.name.to_string(),
                SourceSpec {
                    kind: self.kind,
                    sdl,
                    protos: self.protos.to_vec(),
                },
            );
        }
        Ok(SubgraphInput {
            name: self.name.to_string(),
            url: self.url.to_string(),
            sdl: composed,
        })
    }
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
