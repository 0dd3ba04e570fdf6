//! Upstream sources: one trait for "send this request to that backend", so one policy
//! stack can wrap every kind of backend. GraphQL subgraphs are the first kind.

mod graphql;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{Map, Value as Json};

pub use graphql::GraphqlSource;

/// A request for one upstream, in the subgraph protocol: a GraphQL operation (root
/// fields or `_entities`) and its variables. GraphQL sources send it as is; other kinds
/// of sources execute it against their backend.
#[derive(Debug, Clone)]
pub struct SourceRequest {
    pub operation: Arc<str>,
    pub operation_name: Arc<str>,
    pub variables: Map<String, Json>,
    /// Mutations are never retried nor cached.
    pub is_mutation: bool,
    /// Headers to send upstream (request id, and later propagated auth and trace
    /// context); sources that are not HTTP map them to their own metadata.
    pub headers: http::HeaderMap,
}

/// A well-formed GraphQL response from an upstream.
#[derive(Debug, Default, serde::Deserialize)]
pub struct SourceResponse {
    #[serde(default)]
    pub data: Option<Json>,
    #[serde(default)]
    pub errors: Option<Vec<Json>>,
}

/// Why a fetch produced no usable response. Each maps to one `extensions.code`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    #[error("could not connect: {0}")]
    Connect(String),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("HTTP {0}")]
    Http(u16),
    #[error("invalid response: {0}")]
    BadResponse(String),
}

impl FetchError {
    pub fn code(&self) -> String {
        match self {
            FetchError::Connect(_) => "UPSTREAM_UNAVAILABLE".into(),
            FetchError::Timeout(_) => "UPSTREAM_TIMEOUT".into(),
            FetchError::Http(status) => format!("UPSTREAM_HTTP_{status}"),
            FetchError::BadResponse(_) => "UPSTREAM_BAD_RESPONSE".into(),
        }
    }
}

pub trait Source: Send + Sync {
    fn fetch(
        &self,
        request: SourceRequest,
    ) -> BoxFuture<'static, Result<SourceResponse, FetchError>>;
}

/// The sources of one schema version, indexed like `Supergraph::graphs`.
#[derive(Clone)]
pub struct Sources(pub Vec<Arc<dyn Source>>);

impl Sources {
    pub fn get(&self, graph: usize) -> Option<&Arc<dyn Source>> {
        self.0.get(graph)
    }
}
