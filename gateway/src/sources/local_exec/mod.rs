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

use std::sync::Arc;

use futures::StreamExt;
use futures::future::BoxFuture;
use serde_json::json;

use super::{EventStream, FetchError, SourceRequest, SourceResponse};
pub use binding::{
    Batch, Binding, Bound, Connector, Event, Events, FieldError, MAX_CONCURRENT_CALLS, Prepared,
    Site, StreamConnector,
};
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

    fn parsed(&self, request: &SourceRequest) -> Result<Arc<ParsedOperation>, FetchError> {
        if let Some(op) = self.operations.get(&request.operation) {
            return Ok(op);
        }
        let op = parse_operation(&request.operation, &request.operation_name)
            .map_err(FetchError::BadResponse)?;
        let op = Arc::new(op);
        self.operations
            .insert(request.operation.clone(), op.clone());
        Ok(op)
    }

    pub fn fetch(
        &self,
        request: SourceRequest,
    ) -> BoxFuture<'static, Result<SourceResponse, FetchError>> {
        if request.uploads.is_some() {
            return Box::pin(async {
                Err(FetchError::Upstream {
                    code: "UPLOAD_NOT_SUPPORTED".into(),
                    message: "file uploads can only go to GraphQL subgraphs".into(),
                    retryable: false,
                })
            });
        }
        let parsed = match self.parsed(&request) {
            Ok(op) => op,
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        let schema = self.schema.clone();
        Box::pin(async move {
            let variables = request.variables.to_map();
            let run = Run::new(&schema, &parsed, &variables, &request.headers);
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

    /// Opens the stream a subscription field is bound to; each message is completed
    /// through the operation's selection (nested calls included) into one event.
    pub fn subscribe(
        &self,
        request: SourceRequest,
    ) -> BoxFuture<'static, Result<EventStream, FetchError>> {
        let parsed = match self.parsed(&request) {
            Ok(op) => op,
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        let schema = self.schema.clone();
        Box::pin(async move {
            let variables = Arc::new(request.variables.to_map());
            let headers = Arc::new(request.headers);
            let opening = Run::new(&schema, &parsed, &variables, &headers).open_stream();
            let events = opening.await.map_err(FetchError::from)?;
            let stream = events.then(move |item| {
                let (schema, parsed) = (schema.clone(), parsed.clone());
                let (variables, headers) = (variables.clone(), headers.clone());
                async move {
                    let run = Run::new(&schema, &parsed, &variables, &headers);
                    match item.map_err(FetchError::from)? {
                        Event::Value(value) => {
                            let data = run.event(value).await;
                            let errors = run.errors.into_inner().unwrap_or_default();
                            Ok(SourceResponse {
                                data: Some(Arc::new(data.into())),
                                errors: (!errors.is_empty()).then_some(errors),
                                ..SourceResponse::default()
                            })
                        }
                        Event::Error(e) => Ok(SourceResponse {
                            data: None,
                            errors: Some(vec![json!({
                                "message": e.message,
                                "extensions": { "code": e.code },
                            })]),
                            ..SourceResponse::default()
                        }),
                    }
                }
            });
            Ok(stream.boxed())
        })
    }
}

impl From<FieldError> for FetchError {
    /// A failure of the call behind a whole fetch (a stream that cannot open or broke).
    fn from(e: FieldError) -> Self {
        FetchError::Upstream {
            retryable: run::UNAVAILABLE_CODES.contains(&e.code.as_str()),
            code: e.code,
            message: e.message,
        }
    }
}

#[cfg(test)]
mod tests;
