//! The request pipeline between HTTP and the upstreams: parse and validate against the
//! API schema, normalize and plan (cached per schema version), coerce variables, run
//! introspection locally, execute the plan, and project the response.
//!
//! Plain async functions, no tower: this is the per-request hot path.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use apollo_compiler::ast::OperationType;
use apollo_compiler::parser::Parser;
use apollo_compiler::response::GraphQLError;
use apollo_compiler::validation::Valid;
use apollo_compiler::{ExecutableDocument, Schema};
use moka::sync::Cache;
use serde_json::{Map, Value as Json};

use crate::bff::{self, Bff};
use crate::executor::{self, Response};
use crate::ingress::auth::Principal;
use crate::ingress::auth::authz::{self, AuthzRules};
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
    #[error("{}", messages(.0, "invalid GraphQL document"))]
    Parse(Vec<GraphQLError>),
    #[error("{}", messages(.0, "invalid operation"))]
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
    #[error("the request has no `query`")]
    MissingQuery,
    #[error("PersistedQueryNotFound")]
    PersistedQueryNotFound,
    #[error("this endpoint only accepts persisted operations")]
    PersistedQueryRequired,
    #[error("the query does not match `extensions.persistedQuery.sha256Hash`")]
    PersistedQueryHashMismatch,
    #[error("persisted queries are not enabled on this endpoint")]
    PersistedQueryNotSupported,
    #[error("introspection is disabled on this endpoint")]
    IntrospectionDisabled,
    #[error("{message}")]
    LimitExceeded { message: String, code: &'static str },
}

/// Every diagnostic's message, for logs and start-up errors.
fn messages(errors: &[GraphQLError], empty: &str) -> String {
    if errors.is_empty() {
        return empty.to_string();
    }
    errors
        .iter()
        .map(|e| e.message.as_str())
        .collect::<Vec<_>>()
        .join("; ")
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
                    RequestError::LimitExceeded { code, .. } => code,
                    RequestError::MissingQuery => "BAD_REQUEST",
                    RequestError::PersistedQueryNotFound => "PERSISTED_QUERY_NOT_FOUND",
                    RequestError::PersistedQueryRequired => "PERSISTED_QUERY_REQUIRED",
                    RequestError::PersistedQueryHashMismatch => "PERSISTED_QUERY_HASH_MISMATCH",
                    RequestError::PersistedQueryNotSupported => "PERSISTED_QUERY_NOT_SUPPORTED",
                    RequestError::IntrospectionDisabled => "INTROSPECTION_DISABLED",
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
    /// Response-key paths of the fields removed for authorization (the plan does not
    /// fetch them; `operation` still has them, so they are projected as null).
    pub unauthorized: Vec<Vec<String>>,
    /// The length of the last response `data` of this operation: the next one's buffer
    /// is allocated at about that size instead of growing by doubling.
    pub data_size: std::sync::atomic::AtomicUsize,
}

/// One schema version with its plan cache; swapped as a whole on reload. Metrics are
/// shared between versions.
pub struct Engine {
    pub schema: Arc<SchemaSnapshot>,
    pub sources: Sources,
    pub metrics: Arc<Metrics>,
    /// The BFF views of this schema version, by client name.
    pub bffs: HashMap<String, Arc<Bff>>,
    cache: Cache<u64, Arc<Prepared>>,
    /// `@authenticated` / `@requiresScopes` of this schema version, if it has any.
    authz: Option<AuthzRules>,
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
    /// The BFF the request came through (`None`: the unified endpoint).
    pub view: Option<Arc<Bff>>,
    /// The authenticated client (`None` when anonymous), for policies that pass its
    /// verified claims to sources.
    pub principal: Option<Arc<Principal>>,
}

impl Engine {
    pub fn new(schema: Arc<SchemaSnapshot>, sources: Sources) -> Self {
        Engine {
            authz: AuthzRules::from_supergraph(&schema.supergraph),
            schema,
            sources,
            metrics: Arc::new(Metrics::new()),
            bffs: HashMap::new(),
            cache: Cache::new(2_048),
        }
    }

    /// [`Engine::prepare`], then, when the schema has authorization directives, the
    /// operation without what `principal` may not see, planned and cached by the
    /// operation and the set of removed fields.
    pub fn prepare_as(
        &self,
        view: Option<&Bff>,
        query: &str,
        operation_name: Option<&str>,
        principal: &Principal,
    ) -> Result<Arc<Prepared>, RequestError> {
        let full = self.prepare_in(view, query, operation_name)?;
        let Some(rules) = &self.authz else {
            return Ok(full);
        };
        let Some(filtered) = rules.filter(&full.operation, principal) else {
            return Ok(full);
        };
        let mut hasher = rustc_hash::FxHasher::default();
        view.map(Bff::name).hash(&mut hasher);
        query.hash(&mut hasher);
        operation_name.hash(&mut hasher);
        filtered.removed.hash(&mut hasher);
        let key = hasher.finish();
        if let Some(hit) = self.cache.get(&key) {
            self.metrics.cache("plan", true);
            return Ok(hit);
        }
        self.metrics.cache("plan", false);
        let plan = planner::build_plan(&self.schema.supergraph, &filtered.operation)?;
        let prepared = Arc::new(Prepared {
            document: full.document.clone(),
            operation: full.operation.clone(),
            plan,
            introspection: full.introspection,
            unauthorized: filtered.removed,
            data_size: Default::default(),
        });
        self.cache.insert(key, prepared.clone());
        Ok(prepared)
    }

    /// Parse, validate, normalize and plan — or take the cached result.
    pub fn prepare(
        &self,
        query: &str,
        operation_name: Option<&str>,
    ) -> Result<Arc<Prepared>, RequestError> {
        self.prepare_in(None, query, operation_name)
    }

    /// The kind of an operation whose plan is already cached, without touching the
    /// cache metrics (for the inbound de-duplication check).
    pub fn cached_kind(
        &self,
        view: Option<&Bff>,
        query: &str,
        operation_name: Option<&str>,
    ) -> Option<OperationType> {
        let mut hasher = rustc_hash::FxHasher::default();
        view.map(Bff::name).hash(&mut hasher);
        query.hash(&mut hasher);
        operation_name.hash(&mut hasher);
        self.cache.get(&hasher.finish()).map(|p| p.operation.kind)
    }

    /// [`Engine::prepare`] on a BFF's view (validated against its schema; cached per
    /// BFF).
    pub fn prepare_in(
        &self,
        view: Option<&Bff>,
        query: &str,
        operation_name: Option<&str>,
    ) -> Result<Arc<Prepared>, RequestError> {
        let mut hasher = rustc_hash::FxHasher::default();
        view.map(Bff::name).hash(&mut hasher);
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
        let api = view.map_or(&self.schema.api, |v| &v.api);
        let prepared = Arc::new(prepare_with(&self.schema, api, query, operation_name)?);
        self.cache.insert(key, prepared.clone());
        Ok(prepared)
    }

    /// Execute as an anonymous client.
    pub async fn execute(
        &self,
        request: &Request,
        over_get: bool,
        context: &RequestContext,
    ) -> Result<Response, RequestError> {
        self.execute_as(request, over_get, context, &Principal::anonymous())
            .await
    }

    /// Execute for `principal`: fields it may not see are never fetched and come back
    /// as null with `UNAUTHORIZED` errors.
    pub async fn execute_as(
        &self,
        request: &Request,
        over_get: bool,
        context: &RequestContext,
        principal: &Principal,
    ) -> Result<Response, RequestError> {
        let view = context.view.as_deref();
        let query = match view {
            Some(bff) => bff::resolve_document(bff, request)?,
            None => unified_document(request)?,
        };
        let prepared =
            self.prepare_as(view, &query, request.operation_name.as_deref(), principal)?;
        if let Some(bff) = view {
            bff::check_limits(bff, &prepared)?;
        }
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
        let api = view.map_or(&self.schema.api, |v| &v.api);
        let variables = apollo_compiler::request::coerce_variable_values(api, operation, &raw)
            .map_err(|e| {
                RequestError::Variables(Box::new(e.to_graphql_error(&prepared.document.sources)))
            })?;
        let introspection = if prepared.introspection {
            Some(
                apollo_compiler::introspection::partial_execute(
                    api,
                    view.map_or(&self.schema.implementers, |v| &v.implementers),
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
        // A BFF's response cache, for operations its rules cover.
        let cached = view.and_then(|bff| {
            let ttl = bff::cache_ttl(bff, &prepared)?;
            let mut hasher = rustc_hash::FxHasher::default();
            query.hash(&mut hasher);
            request.operation_name.hash(&mut hasher);
            serde_json::to_string(&variables)
                .unwrap_or_default()
                .hash(&mut hasher);
            principal.subject.hash(&mut hasher);
            Some((bff, ttl, hasher.finish()))
        });
        if let Some((bff, _, key)) = &cached
            && let Some(entry) = bff.responses.get(key)
            && std::time::Instant::now() < entry.1
        {
            self.metrics.cache(&format!("bff:{}", bff.name()), true);
            return Ok(Response {
                data: Some(entry.0.clone()),
                operation_name: prepared.operation.name.as_ref().map(|n| n.to_string()),
                ..Response::default()
            });
        }
        let mut response =
            executor::execute(self, &prepared, variables, introspection, context).await;
        if let Some((bff, ttl, key)) = cached {
            self.metrics.cache(&format!("bff:{}", bff.name()), false);
            if response.errors.is_empty()
                && prepared.unauthorized.is_empty()
                && let Some(data) = &response.data
            {
                bff.responses.insert(
                    key,
                    Arc::new((data.clone(), std::time::Instant::now() + ttl)),
                );
            }
        }
        if !prepared.unauthorized.is_empty() {
            let data = response.data_value();
            authz::report(&prepared.unauthorized, data.as_ref(), &mut response.errors);
        }
        if context.expose_plan {
            response
                .extensions
                .insert("queryPlan".into(), Json::String(prepared.plan.to_string()));
        }
        Ok(response)
    }
}

/// The document of a request to the unified endpoint (no persisted operations there).
fn unified_document(request: &Request) -> Result<Cow<'_, str>, RequestError> {
    if request.extensions.contains_key("persistedQuery") {
        return Err(RequestError::PersistedQueryNotSupported);
    }
    if request.query.is_empty() {
        return Err(RequestError::MissingQuery);
    }
    Ok(Cow::Borrowed(&request.query))
}

/// Parse, validate against the API schema, normalize and plan.
pub fn prepare(
    schema: &SchemaSnapshot,
    query: &str,
    operation_name: Option<&str>,
) -> Result<Prepared, RequestError> {
    prepare_with(schema, &schema.api, query, operation_name)
}

/// [`prepare`] against a view of the API schema (a BFF's).
pub fn prepare_with(
    schema: &SchemaSnapshot,
    api: &Valid<Schema>,
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
        .to_executable_validate(api)
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
    let operation = Operation::from_document(api, &document, op)?;
    let plan = planner::build_plan(&schema.supergraph, &operation)?;
    Ok(Prepared {
        document,
        operation,
        plan,
        introspection,
        unauthorized: Vec::new(),
        data_size: Default::default(),
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
