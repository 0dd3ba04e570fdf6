//! Upstream sources: one trait for "send this request to that backend", so one policy
//! stack can wrap every kind of backend. GraphQL subgraphs get the subgraph operation
//! as is ([`GraphqlSource`](graphql::GraphqlSource)); REST and gRPC services execute it locally against their
//! backend ([`RestSource`](rest::RestSource), [`GrpcSource`](grpc::GrpcSource), both built on [`local_exec`]), mapping fields
//! to calls with the directives of their SDL (`docs/sources.md`).

pub mod graphql;
pub mod grpc;
pub mod local_exec;
pub mod mapping;
pub mod rest;
pub mod sse;
pub mod tls;
pub mod upload;
pub mod value;
pub mod ws;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use serde_json::{Map, Value as Json};

/// The kinds of backend a subgraph entry can be.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// A GraphQL (Federation) subgraph over HTTP.
    #[default]
    Graphql,
    /// A REST service; its SDL maps fields with `@rest` and `@map`.
    Rest,
    /// A gRPC service; its SDL maps fields with `@grpc` and `@map`, its messages come
    /// from `.proto` files.
    Grpc,
}

/// Where a subgraph's SDL comes from: exactly one of the two.
#[derive(Debug, Clone, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SchemaSource {
    /// An SDL file, relative to the file that names it.
    #[serde(default)]
    pub file: Option<std::path::PathBuf>,
    /// Ask the running subgraph at start-up: `{ _service { sdl } }`.
    #[serde(default)]
    pub introspect: bool,
}

/// The checks every source entry gets, in the gateway config (`subgraphs:`) and in a
/// BFF file (`sources:`): `entry` names it in the message.
pub fn check_entry(
    entry: &str,
    kind: SourceKind,
    url: &str,
    schema: &SchemaSource,
    protos: &[std::path::PathBuf],
) -> Result<(), String> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| format!("{entry}: invalid url {url:?}: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("{entry}: url must be http or https"));
    }
    match kind {
        SourceKind::Graphql | SourceKind::Rest if !protos.is_empty() => {
            return Err(format!("{entry}: `protos` is for `kind: grpc` only"));
        }
        SourceKind::Grpc if protos.is_empty() => {
            return Err(format!(
                "{entry}: a gRPC source needs `protos: [file.proto, ...]`"
            ));
        }
        SourceKind::Rest | SourceKind::Grpc if schema.introspect => {
            return Err(format!(
                "{entry}: a {kind} source cannot be introspected; give its SDL with `schema: {{ file: PATH }}`"
            ));
        }
        _ => {}
    }
    if schema.file.is_some() == schema.introspect {
        return Err(format!(
            "{entry}: `schema` needs exactly one of `file: PATH` or `introspect: true`"
        ));
    }
    Ok(())
}

impl std::fmt::Display for SourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SourceKind::Graphql => "GraphQL",
            SourceKind::Rest => "REST",
            SourceKind::Grpc => "gRPC",
        })
    }
}

/// A request for one upstream, in the subgraph protocol: a GraphQL operation (root
/// fields or `_entities`) and its variables. GraphQL sources send it as is; other kinds
/// of sources execute it against their backend.
#[derive(Debug, Clone)]
pub struct SourceRequest {
    pub operation: Arc<str>,
    pub operation_name: Arc<str>,
    pub variables: Variables,
    /// Mutations are never retried nor cached (see [`SourceRequest::replayable`]).
    pub is_mutation: bool,
    /// The client's files, when this fetch's variables hold some: GraphQL sources send
    /// them on as a multipart request, other kinds refuse them.
    pub uploads: Option<Arc<upload::Uploads>>,
    /// Headers to send upstream (request id, propagated credentials, trace context);
    /// sources that are not HTTP map them to their own metadata.
    pub headers: http::HeaderMap,
    /// The client's request headers, read-only: policies pick what a source may see.
    pub client_headers: Arc<http::HeaderMap>,
    /// Who the client is, when authenticated (never for anonymous requests): the auth
    /// propagation policy may pass its verified claims on.
    pub principal: Option<Arc<crate::common::principal::Principal>>,
    /// The client request's deadline: the timeout layers cut every wait to it.
    pub deadline: Option<tokio::time::Instant>,
}

impl SourceRequest {
    /// Whether sending this request again (a retry, a shared or cached answer) is
    /// harmless: not for mutations, and never for files, which can be read only once.
    pub fn replayable(&self) -> bool {
        !self.is_mutation && self.uploads.is_none()
    }
}

/// What bounds each backend call of a REST or gRPC source.
#[derive(Debug, Clone, Copy)]
pub struct CallLimits {
    pub timeout: Duration,
    /// Largest answer read (a body, a message); larger ones fail the call unbuffered.
    pub max_response_bytes: usize,
}

/// The variables of an upstream request, as the JSON object text sent upstream. The
/// executor writes it once (entity representations go in as the text they were
/// de-duplicated by, never as values); cache keys hash it as it is, and only sources
/// that execute the operation themselves parse it. Shared: retries and policies pass
/// the request on without copying the (possibly large) representations.
#[derive(Debug, Clone)]
pub struct Variables(Arc<[u8]>);

impl Default for Variables {
    fn default() -> Self {
        Variables(Arc::from(&b"{}"[..]))
    }
}

impl Variables {
    pub fn from_map(map: &Map<String, Json>) -> Self {
        let mut writer = VariablesWriter::new();
        for (name, value) in map {
            writer.value(name, value);
        }
        writer.finish()
    }

    /// The JSON object text.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The variables as values (text this type wrote always parses).
    pub fn to_map(&self) -> Map<String, Json> {
        serde_json::from_slice(&self.0).unwrap_or_default()
    }
}

/// Writes [`Variables`] one entry at a time.
pub struct VariablesWriter {
    out: Vec<u8>,
}

impl Default for VariablesWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl VariablesWriter {
    pub fn new() -> Self {
        VariablesWriter { out: vec![b'{'] }
    }

    pub fn value(&mut self, name: &str, value: &Json) {
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(self.entry(name), value);
    }

    /// Start the entry `name`: the caller writes exactly one JSON value into the
    /// returned buffer.
    pub fn entry(&mut self, name: &str) -> &mut Vec<u8> {
        if self.out.len() > 1 {
            self.out.push(b',');
        }
        value::write_json_string(&mut self.out, name.as_bytes());
        self.out.push(b':');
        &mut self.out
    }

    pub fn finish(mut self) -> Variables {
        self.out.push(b'}');
        Variables(self.out.into())
    }
}

/// A well-formed GraphQL response from an upstream.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct SourceResponse {
    /// Parsed straight into the response tree's value. Shared: requests waiting on
    /// the same upstream call (or cache entry) read one answer and each copy only
    /// what they merge.
    #[serde(default)]
    pub data: Option<Arc<value::Value>>,
    #[serde(default)]
    pub errors: Option<Vec<Json>>,
    /// Freshness the upstream declared (`Cache-Control: max-age`; zero for
    /// `no-store`/`no-cache`/`private`), for the response cache.
    #[serde(skip)]
    pub max_age: Option<Duration>,
    /// Whether the response cache answered; `None` when the source has no cache.
    #[serde(skip)]
    pub cache_hit: Option<bool>,
}

impl SourceResponse {
    /// A GraphQL response body: a JSON object (serde would also read a struct from a
    /// JSON array, which no GraphQL server sends).
    pub fn from_json(text: &[u8]) -> Result<Self, String> {
        let first = text.iter().find(|b| !b.is_ascii_whitespace());
        if first != Some(&b'{') {
            return Err("not a JSON object".into());
        }
        serde_json::from_slice(text).map_err(|e| e.to_string())
    }

    /// One event of a subgraph subscription (WebSocket `next` payload, SSE `next` data).
    pub fn event_from_json(text: &[u8]) -> Result<Self, FetchError> {
        let event = Self::from_json(text).map_err(|e| {
            FetchError::BadResponse(format!("an event that is not a GraphQL response: {e}"))
        })?;
        if event.data.is_none() && event.errors.is_none() {
            return Err(FetchError::BadResponse(
                "an event with neither `data` nor `errors`".into(),
            ));
        }
        Ok(event)
    }

    pub fn has_errors(&self) -> bool {
        self.errors.as_ref().is_some_and(|e| !e.is_empty())
    }
}

/// Why a fetch produced no usable response. Each maps to one `extensions.code`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    #[error("could not connect: {0}")]
    Connect(String),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The client request's deadline passed (or left too little for this call).
    #[error("the request's deadline passed before the source answered")]
    Deadline,
    #[error("HTTP {0}")]
    Http(u16),
    #[error("invalid response: {0}")]
    BadResponse(String),
    #[error("circuit breaker open: the source is failing, not calling it")]
    CircuitOpen,
    #[error("too many requests in flight to the source (waited {0:?})")]
    Overloaded(Duration),
    #[error("the source's rate limit is exhausted")]
    RateLimited,
    /// A backend failure of a non-GraphQL source, with its own code
    /// (`UPSTREAM_GRPC_UNAVAILABLE`, ...).
    #[error("{message}")]
    Upstream {
        code: String,
        message: String,
        retryable: bool,
    },
}

impl FetchError {
    pub fn code(&self) -> String {
        match self {
            FetchError::Connect(_) => "UPSTREAM_UNAVAILABLE".into(),
            FetchError::Timeout(_) => "UPSTREAM_TIMEOUT".into(),
            FetchError::Deadline => "DEADLINE_EXCEEDED".into(),
            FetchError::Http(status) => format!("UPSTREAM_HTTP_{status}"),
            FetchError::BadResponse(_) => "UPSTREAM_BAD_RESPONSE".into(),
            FetchError::CircuitOpen => "CIRCUIT_OPEN".into(),
            FetchError::Overloaded(_) => "UPSTREAM_OVERLOADED".into(),
            FetchError::RateLimited => "UPSTREAM_RATE_LIMITED".into(),
            FetchError::Upstream { code, .. } => code.clone(),
        }
    }

    /// Worth another attempt: the request may not have reached the backend, or the
    /// backend said it is temporarily unable. Never other 4xx/5xx.
    pub fn is_retryable(&self) -> bool {
        match self {
            FetchError::Connect(_) | FetchError::Timeout(_) | FetchError::Http(502..=504) => true,
            FetchError::Upstream { retryable, .. } => *retryable,
            _ => false,
        }
    }

    /// Counts against the source's health (local refusals do not).
    pub fn is_upstream_failure(&self) -> bool {
        match self {
            FetchError::Connect(_) | FetchError::Timeout(_) | FetchError::BadResponse(_) => true,
            FetchError::Http(status) => *status >= 500,
            FetchError::Upstream { .. } => true,
            FetchError::CircuitOpen
            | FetchError::Overloaded(_)
            | FetchError::RateLimited
            | FetchError::Deadline => false,
        }
    }
}

/// The innermost cause of an error: what went wrong, without the layers that carried it.
pub(crate) fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// The events of one upstream subscription, each a GraphQL response of the subgraph
/// operation; an `Err` ends the stream.
pub type EventStream = BoxStream<'static, Result<SourceResponse, FetchError>>;

pub trait Source: Send + Sync {
    fn fetch(
        &self,
        request: SourceRequest,
    ) -> BoxFuture<'static, Result<SourceResponse, FetchError>>;

    /// Open a subscription: resolves once the upstream accepted it (or failed to).
    /// Sources that cannot stream keep this default.
    fn subscribe(
        &self,
        _request: SourceRequest,
    ) -> BoxFuture<'static, Result<EventStream, FetchError>> {
        Box::pin(async {
            Err(FetchError::Upstream {
                code: "SUBSCRIPTION_NOT_SUPPORTED".into(),
                message: "this source does not serve subscriptions".into(),
                retryable: false,
            })
        })
    }
}

/// The sources of one schema version, indexed like `Supergraph::graphs`.
#[derive(Clone)]
pub struct Sources(pub Vec<Arc<dyn Source>>);

impl Sources {
    pub fn get(&self, graph: usize) -> Option<&Arc<dyn Source>> {
        self.0.get(graph)
    }
}
