//! Executing a subgraph operation locally, for sources that are not GraphQL servers
//! (REST, gRPC). The planner sends such a source ordinary subgraph operations (root
//! fields, or `_entities(representations:)` with `... on Type { fields }`); this module
//! parses each operation once (cached by its text), walks its selection set against the
//! source's own SDL, makes the backend calls that the SDL's directives describe, and
//! maps the backend JSON into the selected fields.
//!
//! - Calls are [`Binding`]s built by the source kind from its directives: a
//!   [`Connector`] turns the call inputs (`$args`, `$this`, `$batch`) into one prepared
//!   backend call. Within one request, identical calls are made once (de-duplicated by
//!   the key the connector gives) and at most [`MAX_CONCURRENT_CALLS`] run at a time.
//! - For `_entities`, a field (or an entity type) whose binding declares a batch call is
//!   fetched with one call for all representations; the items that come back are matched
//!   to representations by key.
//! - A failed call nulls only the field (or entity) that needed it and adds an error with
//!   the path in the subgraph response (`["_entities", 3, "orders"]`) and
//!   `extensions.code`; the executor maps paths to the client's. Values that do not fit
//!   the declared type (a string for an `Int`, an unknown enum value, a missing non-null
//!   value) are errors too (`UPSTREAM_BAD_RESPONSE`).

mod entities;
mod run;
mod schema;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use apollo_compiler::ast::{self, OperationType, Selection, Type, Value as AstValue};
use apollo_compiler::schema::{ExtendedType, FieldDefinition};
use apollo_compiler::{Name, Node, Schema};
use futures::future::{BoxFuture, FutureExt, Shared, join_all};
use indexmap::IndexMap;
use serde_json::{Map, Number, Value as Json, json};
use tokio::sync::Semaphore;

use super::mapping::{CallInput, FieldMap, Root, VarRef, lookup, set_path, text_of};
use super::{FetchError, SourceRequest, SourceResponse};
use run::{CallHealth, Run};
pub use schema::{LocalSchema, TypeInfo};

/// Backend calls of one request that may run at the same time.
pub const MAX_CONCURRENT_CALLS: usize = 16;
/// Parsed operations kept per source.
const OPERATION_CACHE_SIZE: u64 = 1024;

/// Why one backend call failed; becomes one GraphQL error at the field's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub code: String,
    pub message: String,
}

impl FieldError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            code: code.into(),
            message: message.into(),
        }
    }

    pub fn bad_response(message: impl Into<String>) -> Self {
        FieldError::new("UPSTREAM_BAD_RESPONSE", message)
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        FieldError::new("UPSTREAM_REQUEST_INVALID", message)
    }
}

/// A backend call ready to run: `key` identifies identical calls within a request.
pub struct Prepared {
    pub key: String,
    pub future: BoxFuture<'static, Result<Json, FieldError>>,
}

/// Turns call inputs into one backend call whose result is the JSON value the field
/// (or, for a batch call, the list of items) is read from.
pub trait Connector: Send + Sync {
    /// `headers` are the request's upstream headers (request id, propagated
    /// credentials, trace context): HTTP headers for REST, metadata for gRPC.
    fn prepare(
        &self,
        input: &CallInput<'_>,
        headers: &http::HeaderMap,
    ) -> Result<Prepared, FieldError>;
}

/// A field or entity type mapped to backend calls.
pub struct Binding {
    pub single: Box<dyn Connector>,
    pub batch: Option<Batch>,
}

/// A call that serves many entities at once.
pub struct Batch {
    pub connector: Box<dyn Connector>,
    /// The representation field whose distinct values `$batch.<field>` collects.
    pub this_path: Vec<String>,
    /// In each returned item: the key matched against the representation's value.
    pub item_key: Vec<String>,
    /// In each item: where the field's value is. Without it, a list field gets every
    /// matching item and a single field the first one.
    pub item_value: Option<Vec<String>>,
}

/// Where a mapping directive sits; checks what its variables may read.
pub struct Site<'a> {
    pub schema: &'a Schema,
    pub type_name: &'a Name,
    /// `None` for a type-level (entity) binding.
    pub field: Option<&'a Node<FieldDefinition>>,
    pub is_root: bool,
    /// Top-level fields of the type's keys (and the field's `@requires`): what a
    /// representation carries. Empty when the type is not an entity.
    pub representation_fields: Vec<String>,
    pub coordinate: String,
}

impl Site<'_> {
    /// Problems with the variables a binding reads, as messages.
    pub fn check_vars<'v>(
        &self,
        vars: impl IntoIterator<Item = &'v VarRef>,
        batch_allowed: bool,
    ) -> Vec<String> {
        let mut errors = Vec::new();
        for var in vars {
            let first = var.path.first().map(String::as_str).unwrap_or("");
            match var.root {
                Root::Args => match self.field {
                    None => errors.push(format!(
                        "`{var}`: a type-level binding has no arguments (use $this)"
                    )),
                    Some(field) if field.argument_by_name(first).is_none() => {
                        let known: Vec<&str> =
                            field.arguments.iter().map(|a| a.name.as_str()).collect();
                        errors.push(format!(
                            "`{var}`: {} has no argument `{first}` (arguments: {})",
                            self.coordinate,
                            if known.is_empty() {
                                "none".to_string()
                            } else {
                                known.join(", ")
                            }
                        ));
                    }
                    Some(_) => {}
                },
                Root::This if self.is_root => errors.push(format!(
                    "`{var}`: root fields have no parent object (use $args)"
                )),
                Root::This => {
                    if !self.representation_fields.is_empty()
                        && !self.representation_fields.iter().any(|f| f == first)
                    {
                        errors.push(format!(
                            "`{var}`: representations of {} carry only {} (add the field to @key or @requires)",
                            self.type_name,
                            self.representation_fields.join(", ")
                        ));
                    }
                }
                Root::Batch if !batch_allowed => {
                    errors.push(format!("`{var}`: $batch is only available in batch calls"))
                }
                Root::Batch => {}
            }
        }
        errors
    }
}

/// One operation, parsed once.
struct ParsedOperation {
    operation: Node<ast::OperationDefinition>,
    fragments: HashMap<Name, Node<ast::FragmentDefinition>>,
}

fn parse_operation(text: &str, name: &str) -> Result<ParsedOperation, String> {
    let document = ast::Document::parse(text, "operation.graphql")
        .map_err(|e| format!("cannot parse the subgraph operation: {}", e.errors))?;
    let mut operations = Vec::new();
    let mut fragments = HashMap::new();
    for definition in &document.definitions {
        match definition {
            ast::Definition::OperationDefinition(op) => operations.push(op.clone()),
            ast::Definition::FragmentDefinition(f) => {
                fragments.insert(f.name.clone(), f.clone());
            }
            _ => {}
        }
    }
    let operation = if operations.len() == 1 {
        operations.pop()
    } else {
        operations
            .into_iter()
            .find(|op| op.name.as_ref().is_some_and(|n| n == name))
    }
    .ok_or_else(|| format!("no operation named `{name}` in the subgraph operation"))?;
    Ok(ParsedOperation {
        operation,
        fragments,
    })
}

/// Runs subgraph operations against one source.
pub struct LocalExecutor {
    schema: Arc<LocalSchema>,
    operations: moka::sync::Cache<Arc<str>, Arc<ParsedOperation>>,
}

impl LocalExecutor {
    pub fn new(schema: LocalSchema) -> Self {
        LocalExecutor {
            schema: Arc::new(schema),
            operations: moka::sync::Cache::new(OPERATION_CACHE_SIZE),
        }
    }

    pub fn schema(&self) -> &LocalSchema {
        &self.schema
    }

    pub fn fetch(
        &self,
        request: SourceRequest,
    ) -> BoxFuture<'static, Result<SourceResponse, FetchError>> {
        let parsed = match self.operations.get(&request.operation) {
            Some(op) => op,
            None => match parse_operation(&request.operation, &request.operation_name) {
                Ok(op) => {
                    let op = Arc::new(op);
                    self.operations
                        .insert(request.operation.clone(), op.clone());
                    op
                }
                Err(message) => {
                    return Box::pin(async move { Err(FetchError::BadResponse(message)) });
                }
            },
        };
        let schema = self.schema.clone();
        Box::pin(async move {
            let variables = request.variables.to_map();
            let run = Run {
                schema: &schema,
                op: &parsed,
                variables: &variables,
                headers: &request.headers,
                errors: Mutex::new(Vec::new()),
                inflight: Mutex::new(HashMap::new()),
                permits: Arc::new(Semaphore::new(MAX_CONCURRENT_CALLS)),
                health: Arc::new(CallHealth::default()),
            };
            let data = run.root().await;
            if let Some(outage) = run.health.outage() {
                return Err(outage);
            }
            let errors = run.errors.into_inner().unwrap_or_default();
            Ok(SourceResponse {
                data: Some(Arc::new(data.into())),
                errors: (!errors.is_empty()).then_some(errors),
                ..SourceResponse::default()
            })
        })
    }
}

#[cfg(test)]
mod tests;
