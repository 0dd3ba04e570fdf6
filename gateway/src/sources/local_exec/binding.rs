//! What a source kind gives the local executor: [`Binding`]s of fields to backend
//! calls, each with a [`Connector`] that prepares the call, and the errors of a call.

use apollo_compiler::Name;
use apollo_compiler::Node;
use apollo_compiler::Schema;
use apollo_compiler::schema::FieldDefinition;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use serde_json::Value as Json;

use crate::sources::mapping::{CallInput, Root, VarRef};

/// Backend calls of one request that may run at the same time.
pub const MAX_CONCURRENT_CALLS: usize = 16;
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

/// One message of a streaming call.
pub enum Event {
    /// The value the subscription field is read from.
    Value(Json),
    /// An event that carries only an error; the stream goes on.
    Error(FieldError),
}

/// The messages of one streaming call; an `Err` ends the stream.
pub type Events = BoxStream<'static, Result<Event, FieldError>>;

/// Opens a call that answers with a stream of values (a server-streaming RPC, an SSE
/// endpoint): what a `Subscription` field of a REST or gRPC source is bound to.
pub trait StreamConnector: Send + Sync {
    /// Resolves once the backend accepted the call (or refused it).
    fn open(
        &self,
        input: &CallInput<'_>,
        headers: &http::HeaderMap,
    ) -> BoxFuture<'static, Result<Events, FieldError>>;
}

/// What a mapping directive binds: calls for query and entity fields, a stream for
/// subscription fields.
pub enum Bound {
    Call(Binding),
    Stream(Box<dyn StreamConnector>),
}

impl Bound {
    /// A subscription field's binding: its stream, unless the directive has problems
    /// (`errors`) or asks for batching, which a stream cannot do.
    pub fn stream(
        directive: &apollo_compiler::ast::Directive,
        mut errors: Vec<String>,
        stream: impl StreamConnector + 'static,
    ) -> Result<Bound, Vec<String>> {
        if directive.specified_argument_by_name("batch").is_some() {
            errors.push("a subscription field cannot be batched".into());
        }
        if errors.is_empty() {
            Ok(Bound::Stream(Box::new(stream)))
        } else {
            Err(errors)
        }
    }
}

impl From<Binding> for Bound {
    fn from(binding: Binding) -> Self {
        Bound::Call(binding)
    }
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
    /// A field of the subscription type: bound to a stream.
    pub is_subscription: bool,
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
