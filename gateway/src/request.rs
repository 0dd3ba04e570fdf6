//! The request as it travels through the stages: what the edge decoded ([`Request`])
//! and knows about the caller ([`RequestContext`]), what preparation made of it
//! ([`Prepared`]: parsed, validated, normalized, planned), and why it can fail before
//! any execution ([`RequestError`]). The pipeline, the BFF checks and the executor all
//! read these types, so they live below all three.

use std::sync::Arc;

use apollo_compiler::parser::Parser;
use apollo_compiler::response::GraphQLError;
use apollo_compiler::validation::Valid;
use apollo_compiler::{ExecutableDocument, Schema};
use serde_json::{Map, Value as Json};

use crate::common::principal::Principal;
use crate::planner::{self, Operation, QueryPlan};
use crate::schema::SchemaSnapshot;

/// Parser limits: deep nesting and huge token counts are rejected before any work.
const MAX_RECURSION: usize = 256;
const MAX_TOKENS: usize = 100_000;
/// Diagnostics returned for one document at most: a small request must not turn into
/// a huge error list. One more error says how many were left out.
const MAX_ERRORS: usize = 100;

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
                    RequestError::Plan(planner::PlanError::TooLarge) => "OPERATION_TOO_LARGE",
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

/// Per-request facts from the edge that execution needs.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// Forwarded to every upstream.
    pub request_id: http::HeaderValue,
    /// Return the query plan and per-fetch timings in `extensions`.
    pub expose_plan: bool,
    /// The client's request headers; the policy stack decides what reaches a source.
    pub client_headers: Arc<http::HeaderMap>,
    /// The authenticated client (`None` when anonymous), for policies that pass its
    /// verified claims to sources.
    pub principal: Option<Arc<Principal>>,
    /// When the whole request must be done, retries and every plan step included;
    /// `None`: no deadline (subscriptions, or turned off).
    pub deadline: Option<tokio::time::Instant>,
    /// The files of a multipart request, for the fetch whose variables hold them.
    pub uploads: Option<Arc<crate::sources::upload::Uploads>>,
}

/// Parse, validate against the API schema, normalize and plan.
pub fn prepare(
    schema: &SchemaSnapshot,
    query: &str,
    operation_name: Option<&str>,
) -> Result<Prepared, RequestError> {
    prepare_with(schema, &schema.api, None, query, operation_name)
}

/// [`prepare`] against a view of the API schema (a BFF's), whose own names and
/// argument rules `mapping` turns back into the graph's before planning.
pub fn prepare_with(
    schema: &SchemaSnapshot,
    api: &Valid<Schema>,
    mapping: Option<&planner::ViewMapping>,
    query: &str,
    operation_name: Option<&str>,
) -> Result<Prepared, RequestError> {
    let to_json = |errors: &apollo_compiler::validation::DiagnosticList| -> Vec<GraphQLError> {
        let mut json: Vec<GraphQLError> = errors
            .iter()
            .take(MAX_ERRORS)
            .map(|d| d.unstable_to_json_compat())
            .collect();
        if errors.len() > MAX_ERRORS {
            json.push(GraphQLError {
                message: format!(
                    "too many errors: {} more not shown",
                    errors.len() - MAX_ERRORS
                ),
                locations: Vec::new(),
                path: Vec::new(),
                extensions: Default::default(),
            });
        }
        json
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
    let mut operation = Operation::from_document(api, &document, op)?;
    if let Some(mapping) = mapping {
        operation = mapping.apply(operation);
    }
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
