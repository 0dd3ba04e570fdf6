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

mod binding;
mod entities;
mod run;
mod schema;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;

use futures::future::BoxFuture;
use tokio::sync::Semaphore;

use super::{FetchError, SourceRequest, SourceResponse};
pub use binding::{Batch, Binding, Connector, FieldError, MAX_CONCURRENT_CALLS, Prepared, Site};
use run::CallHealth;
use run::ParsedOperation;
use run::Run;
use run::parse_operation;
pub use schema::{LocalSchema, TypeInfo};

/// Parsed operations kept per source.
const OPERATION_CACHE_SIZE: u64 = 1024;

/// Why one backend call failed; becomes one GraphQL error at the field's path.
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
