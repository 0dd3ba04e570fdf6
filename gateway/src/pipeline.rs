//! The request pipeline between HTTP and the upstreams: parse and validate against the
//! API schema, normalize and plan (cached per schema version), coerce variables, run
//! introspection locally, execute the plan, and project the response.
//!
//! Plain async functions, no tower: this is the per-request hot path.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use apollo_compiler::ExecutableDocument;
use apollo_compiler::ast::OperationType;
use apollo_compiler::parser::Parser;
use apollo_compiler::response::GraphQLError;
use apollo_compiler::validation::Valid;
use moka::sync::Cache;
use serde_json::{Map, Value as Json};

use crate::executor::{self, Response};
use crate::planner::{self, Operation, QueryPlan};
use crate::schema::SchemaSnapshot;
use crate::sources::Sources;
use crate::telemetry::Metrics;

/// Parser limits: deep nesting and huge token counts are rejected before any work.
const MAX_RECURSION: usize = 256;
const MAX_TOKENS: usize = 100_000;

/// A client request, as decoded from HTTP.
#[derive(Debug, Default, Clone)]
pub struct Request {
    pub query: String,
    pub operation_name: Option<String>,
    pub variables: Map<String, Json>,
    /// Request extensions (for example persisted-query hashes).
    pub extensions: Map<String, Json>,
}

/// Why a request produced no execution at all (GraphQL "request errors").
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("{}", .0.first().map(|e| e.message.as_str()).unwrap_or("invalid GraphQL document"))]
    Parse(Vec<GraphQLError>),
    #[error("{}", .0.first().map(|e| e.message.as_str()).unwrap_or("invalid operation"))]
    Validation(Vec<GraphQLError>),
    #[error("{0}")]
    UnknownOperation(String),
    #[error("{}", .0.message)]
    Variables(Box<GraphQLError>),
    #[error("{0}")]
    Plan(#[from] planner::PlanError),
    #[error("mutations are not allowed over GET; use POST")]
    MutationOverGet,
    #[error("subscriptions are not supported over this transport")]
    Subscription,
}

impl RequestError {
    /// The errors to put in the response body.
    pub fn graphql_errors(&self) -> Vec<Json> {
        let with_code = |e: &GraphQLError, code: &str| {
            let mut v = serde_json::to_value(e)
                .unwrap_or_else(|_| serde_json::json!({"message": e.message}));
            if let Some(obj) = v.as_object_mut() {
                obj.insert("extensions".into(), serde_json::json!({ "code": code }));
            }
            v
        };
        match self {
            RequestError::Parse(errors) => errors
                .iter()
                .map(|e| with_code(e, "GRAPHQL_PARSE_FAILED"))
                .collect(),
            RequestError::Validation(errors) => errors
                .iter()
                .map(|e| with_code(e, "GRAPHQL_VALIDATION_FAILED"))
                .collect(),
            RequestError::Variables(e) => vec![with_code(e, "BAD_USER_INPUT")],
            other => {
                let code = match other {
                    RequestError::UnknownOperation(_) => "GRAPHQL_UNKNOWN_OPERATION_NAME",
                    RequestError::Plan(_) => "QUERY_PLANNING_FAILED",
                    RequestError::MutationOverGet => "METHOD_NOT_ALLOWED",
                    _ => "OPERATION_NOT_SUPPORTED",
                };
                vec![
                    serde_json::json!({"message": other.to_string(), "extensions": {"code": code}}),
                ]
            }
        }
    }
}

/// Everything about an operation that does not depend on variables: cached.
#[derive(Debug)]
pub struct Prepared {
    pub document: Valid<ExecutableDocument>,
    pub operation: Operation,
    pub plan: QueryPlan,
    /// The operation selects `__schema` or `__type` at the root.
    pub introspection: bool,
}

/// One schema version with its plan cache; swapped as a whole on reload. Metrics are
/// shared between versions.
pub struct Engine {
    pub schema: Arc<SchemaSnapshot>,
    pub sources: Sources,
    pub metrics: Arc<Metrics>,
    cache: Cache<u64, Arc<Prepared>>,
}

/// Per-request facts from the edge that execution needs.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// Forwarded to every upstream.
    pub request_id: http::HeaderValue,
    /// Return the query plan and per-fetch timings in `extensions`.
    pub expose_plan: bool,
    /// The client's request headers; the policy stack decides what reaches a source.
    pub client_headers: Arc<http::HeaderMap>,
}

impl Engine {
    pub fn new(schema: Arc<SchemaSnapshot>, sources: Sources) -> Self {
        Engine {
            schema,
            sources,
            metrics: Arc::new(Metrics::new()),
            cache: Cache::new(2_048),
        }
    }

    /// Parse, validate, normalize and plan — or take the cached result.
    pub fn prepare(
        &self,
        query: &str,
        operation_name: Option<&str>,
    ) -> Result<Arc<Prepared>, RequestError> {
        let mut hasher = rustc_hash::FxHasher::default();
        query.hash(&mut hasher);
        operation_name.hash(&mut hasher);
        let key = hasher.finish();
        let span = tracing::info_span!("prepare", plan_cache_hit = tracing::field::Empty);
        let _entered = span.enter();
        if let Some(hit) = self.cache.get(&key) {
            self.metrics.cache("plan", true);
            span.record("plan_cache_hit", true);
            return Ok(hit);
        }
        self.metrics.cache("plan", false);
        span.record("plan_cache_hit", false);
        let prepared = Arc::new(prepare(&self.schema, query, operation_name)?);
        self.cache.insert(key, prepared.clone());
        Ok(prepared)
    }

    pub async fn execute(
        &self,
        request: &Request,
        over_get: bool,
        context: &RequestContext,
    ) -> Result<Response, RequestError> {
        let prepared = self.prepare(&request.query, request.operation_name.as_deref())?;
        match prepared.operation.kind {
            OperationType::Mutation if over_get => return Err(RequestError::MutationOverGet),
            OperationType::Subscription => return Err(RequestError::Subscription),
            _ => {}
        }
        let operation = prepared
            .document
            .operations
            .get(request.operation_name.as_deref())
            .map_err(|e| RequestError::UnknownOperation(e.message().to_string()))?;
        let raw: serde_json_bytes::Map<serde_json_bytes::ByteString, serde_json_bytes::Value> =
            request
                .variables
                .iter()
                .map(|(k, v)| (k.as_str().into(), v.clone().into()))
                .collect();
        let variables =
            apollo_compiler::request::coerce_variable_values(&self.schema.api, operation, &raw)
                .map_err(|e| {
                    RequestError::Variables(Box::new(
                        e.to_graphql_error(&prepared.document.sources),
                    ))
                })?;
        let introspection = if prepared.introspection {
            Some(
                apollo_compiler::introspection::partial_execute(
                    &self.schema.api,
                    &self.schema.implementers,
                    &prepared.document,
                    operation,
                    &variables,
                )
                .map_err(|e| {
                    RequestError::Variables(Box::new(
                        e.to_graphql_error(&prepared.document.sources),
                    ))
                })?,
            )
        } else {
            None
        };
        let variables: Map<String, Json> = variables
            .into_inner()
            .into_iter()
            .map(|(k, v)| (k.as_str().to_string(), to_serde_json(v)))
            .collect();
        let mut response =
            executor::execute(self, &prepared, variables, introspection, context).await;
        if context.expose_plan {
            response
                .extensions
                .insert("queryPlan".into(), Json::String(prepared.plan.to_string()));
        }
        Ok(response)
    }
}

/// Parse, validate against the API schema, normalize and plan.
pub fn prepare(
    schema: &SchemaSnapshot,
    query: &str,
    operation_name: Option<&str>,
) -> Result<Prepared, RequestError> {
    let to_json = |errors: &apollo_compiler::validation::DiagnosticList| -> Vec<GraphQLError> {
        errors.iter().map(|d| d.unstable_to_json_compat()).collect()
    };
    let ast = Parser::new()
        .recursion_limit(MAX_RECURSION)
        .token_limit(MAX_TOKENS)
        .parse_ast(query, "operation.graphql")
        .map_err(|e| RequestError::Parse(to_json(&e.errors)))?;
    let document = ast
        .to_executable_validate(&schema.api)
        .map_err(|e| RequestError::Validation(to_json(&e.errors)))?;
    let op = document
        .operations
        .get(operation_name)
        .map_err(|e| RequestError::UnknownOperation(e.message().to_string()))?;
    let introspection = op
        .root_fields(&document)
        .any(|f| matches!(f.name.as_str(), "__schema" | "__type"));
    if introspection {
        apollo_compiler::introspection::check_max_depth(&document, op)
            .map_err(|e| RequestError::Validation(vec![e.to_graphql_error(&document.sources)]))?;
    }
    let operation = Operation::from_document(&schema.api, &document, op)?;
    let plan = planner::build_plan(&schema.supergraph, &operation)?;
    Ok(Prepared {
        document,
        operation,
        plan,
        introspection,
    })
}

/// apollo-compiler speaks `serde_json_bytes`; the rest of the gateway `serde_json`.
pub(crate) fn to_serde_json(value: serde_json_bytes::Value) -> Json {
    use serde_json_bytes::Value as B;
    match value {
        B::Null => Json::Null,
        B::Bool(b) => Json::Bool(b),
        B::Number(n) => Json::Number(n),
        B::String(s) => Json::String(s.as_str().to_string()),
        B::Array(items) => Json::Array(items.into_iter().map(to_serde_json).collect()),
        B::Object(map) => Json::Object(
            map.into_iter()
                .map(|(k, v)| (k.as_str().to_string(), to_serde_json(v)))
                .collect(),
        ),
    }
}
