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

/// A source's SDL with its field mappings and bindings, built once at start-up.
pub struct LocalSchema {
    pub subgraph: Arc<str>,
    pub sdl: String,
    pub schema: Schema,
    query_type: Name,
    mutation_type: Name,
    maps: HashMap<(Name, Name), FieldMap>,
    bindings: HashMap<(Name, Name), Arc<Binding>>,
    entity_bindings: HashMap<Name, Arc<Binding>>,
}

/// A root or entity type of the source SDL, for the source kind's own checks.
pub struct TypeInfo<'a> {
    pub name: &'a Name,
    pub fields: Vec<&'a Node<FieldDefinition>>,
}

impl LocalSchema {
    /// Reads the SDL; `directive` (`rest` or `grpc`) marks bound fields and types, and
    /// `make` builds each binding. Every problem is collected, prefixed with its
    /// coordinate, and returned with the schema (usable for further checks only when
    /// there are none).
    pub fn build(
        subgraph: &str,
        sdl: &str,
        directive: &str,
        mut make: impl FnMut(&Site<'_>, &ast::Directive) -> Result<Binding, Vec<String>>,
    ) -> (Self, Vec<String>) {
        let schema = match Schema::builder()
            .adopt_orphan_extensions()
            .parse(sdl, format!("{subgraph}.graphql"))
            .build()
        {
            Ok(s) => s,
            // Composition already validated the SDL; unknown directives are fine here.
            Err(with_errors) => with_errors.partial,
        };
        let query_type = schema
            .schema_definition
            .query
            .as_ref()
            .map(|n| n.name.clone())
            .unwrap_or_else(|| Name::new_static_unchecked("Query"));
        let mutation_type = schema
            .schema_definition
            .mutation
            .as_ref()
            .map(|n| n.name.clone())
            .unwrap_or_else(|| Name::new_static_unchecked("Mutation"));
        let mut errors = Vec::new();
        let mut maps = HashMap::new();
        let mut bindings = HashMap::new();
        let mut entity_bindings = HashMap::new();
        for (type_name, ty) in &schema.types {
            let ExtendedType::Object(object) = ty else {
                continue;
            };
            if ty.is_built_in() || type_name.starts_with('_') {
                continue;
            }
            let is_root = *type_name == query_type || *type_name == mutation_type;
            let keys = key_fields(object.directives.iter().map(|d| &***d));
            if let Some(d) = object.directives.get(directive) {
                let coordinate = format!("{type_name} @{directive}");
                if keys.is_empty() {
                    errors.push(format!(
                        "{coordinate}: a type-level @{directive} resolves entities, so {type_name} needs @key"
                    ));
                }
                let site = Site {
                    schema: &schema,
                    type_name,
                    field: None,
                    is_root,
                    representation_fields: keys.clone(),
                    coordinate: coordinate.clone(),
                };
                match make(&site, d) {
                    Ok(b) => {
                        entity_bindings.insert(type_name.clone(), Arc::new(b));
                    }
                    Err(list) => {
                        errors.extend(list.into_iter().map(|e| format!("{coordinate}: {e}")))
                    }
                }
            }
            for (field_name, field) in &object.fields {
                let coordinate = format!("{type_name}.{field_name}");
                match FieldMap::from_directives(&field.directives) {
                    Ok(Some(map)) => {
                        maps.insert((type_name.clone(), field_name.clone()), map);
                    }
                    Ok(None) => {}
                    Err(e) => errors.push(format!("{coordinate}: {e}")),
                }
                let Some(d) = field.directives.get(directive) else {
                    if is_root && !field_name.starts_with('_') {
                        errors.push(format!(
                            "{coordinate}: a root field of this source needs @{directive}(...) to say which call answers it"
                        ));
                    }
                    continue;
                };
                let mut representation_fields = keys.clone();
                if !keys.is_empty() {
                    representation_fields.extend(key_fields(
                        field.directives.get_all("requires").map(|d| &**d),
                    ));
                }
                let site = Site {
                    schema: &schema,
                    type_name,
                    field: Some(field),
                    is_root,
                    representation_fields,
                    coordinate: coordinate.clone(),
                };
                match make(&site, d) {
                    Ok(b) => {
                        bindings.insert((type_name.clone(), field_name.clone()), Arc::new(b));
                    }
                    Err(list) => errors.extend(
                        list.into_iter()
                            .map(|e| format!("{coordinate} @{directive}: {e}")),
                    ),
                }
            }
        }
        let schema = LocalSchema {
            subgraph: subgraph.into(),
            sdl: sdl.to_string(),
            schema,
            query_type,
            mutation_type,
            maps,
            bindings,
            entity_bindings,
        };
        (schema, errors)
    }

    pub fn has_binding(&self, type_name: &Name, field: &Name) -> bool {
        self.bindings
            .contains_key(&(type_name.clone(), field.clone()))
    }

    /// The field's `@map`, created empty if it has none (start-up checks rewrite paths).
    pub fn field_map_mut(&mut self, type_name: &Name, field: &Name) -> &mut FieldMap {
        self.maps
            .entry((type_name.clone(), field.clone()))
            .or_default()
    }

    fn field_def(&self, type_name: &str, field: &str) -> Option<&Node<FieldDefinition>> {
        match self.schema.types.get(type_name)? {
            ExtendedType::Object(o) => o.fields.get(field).map(|c| &c.node),
            ExtendedType::Interface(i) => i.fields.get(field).map(|c| &c.node),
            _ => None,
        }
    }

    fn binding(&self, type_name: &str, field: &str) -> Option<&Arc<Binding>> {
        self.bindings
            .get(&(Name::new(type_name).ok()?, Name::new(field).ok()?))
    }

    fn field_map(&self, type_name: &Name, field: &Name) -> Option<&FieldMap> {
        self.maps.get(&(type_name.clone(), field.clone()))
    }

    /// Whether `object` is `condition` or implements / belongs to it.
    fn applies(&self, condition: &str, object: &str) -> bool {
        if condition == object {
            return true;
        }
        match self.schema.types.get(condition) {
            Some(ExtendedType::Interface(_)) => match self.schema.types.get(object) {
                Some(ExtendedType::Object(o)) => o.implements_interfaces.contains(condition),
                _ => false,
            },
            Some(ExtendedType::Union(u)) => u.members.contains(object),
            _ => false,
        }
    }
}

/// Top-level field names of `@key(fields:)` / `@requires(fields:)` directives.
fn key_fields<'a>(directives: impl IntoIterator<Item = &'a ast::Directive>) -> Vec<String> {
    let mut out = Vec::new();
    for d in directives {
        if !matches!(d.name.as_str(), "key" | "requires") {
            continue;
        }
        let Some(AstValue::String(fields)) = d.specified_argument_by_name("fields").map(|v| &**v)
        else {
            continue;
        };
        let mut depth = 0;
        for token in fields
            .replace('{', " { ")
            .replace('}', " } ")
            .split_whitespace()
        {
            match token {
                "{" => depth += 1,
                "}" => depth -= 1,
                name if depth == 0 && !out.iter().any(|o| o == name) => out.push(name.to_string()),
                _ => {}
            }
        }
    }
    out
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

type SharedCall = Shared<BoxFuture<'static, Result<Json, FieldError>>>;
type Fields<'o> = IndexMap<Name, Vec<&'o Node<ast::Field>>>;
/// Per response key: values fetched ahead for one entity.
type Prefetched = HashMap<Name, Result<Json, FieldError>>;

struct Run<'a> {
    schema: &'a LocalSchema,
    op: &'a ParsedOperation,
    variables: &'a Map<String, Json>,
    headers: &'a http::HeaderMap,
    errors: Mutex<Vec<Json>>,
    inflight: Mutex<HashMap<String, SharedCall>>,
    permits: Arc<Semaphore>,
    health: Arc<CallHealth>,
}

/// Whether the backend answered at all during one fetch. When every call of a fetch
/// failed because the backend was unreachable or overloaded, the fetch fails as a
/// whole, so the policy stack (retry, circuit breaker) sees it like any other
/// source's failure; otherwise failures stay field errors.
#[derive(Default)]
struct CallHealth {
    calls: std::sync::atomic::AtomicUsize,
    unavailable: std::sync::atomic::AtomicUsize,
    first: Mutex<Option<FieldError>>,
}

/// Backend failures that say "not there right now", worth a retry.
const UNAVAILABLE_CODES: [&str; 6] = [
    "UPSTREAM_UNAVAILABLE",
    "UPSTREAM_TIMEOUT",
    "UPSTREAM_HTTP_502",
    "UPSTREAM_HTTP_503",
    "UPSTREAM_HTTP_504",
    "UPSTREAM_GRPC_UNAVAILABLE",
];

impl CallHealth {
    fn record(&self, result: &Result<Json, FieldError>) {
        use std::sync::atomic::Ordering::Relaxed;
        self.calls.fetch_add(1, Relaxed);
        if let Err(e) = result
            && (UNAVAILABLE_CODES.contains(&e.code.as_str())
                || e.code == "UPSTREAM_GRPC_DEADLINE_EXCEEDED")
        {
            self.unavailable.fetch_add(1, Relaxed);
            if let Ok(mut first) = self.first.lock()
                && first.is_none()
            {
                *first = Some(e.clone());
            }
        }
    }

    /// The fetch-level failure, when every call was one.
    fn outage(&self) -> Option<FetchError> {
        use std::sync::atomic::Ordering::Relaxed;
        let calls = self.calls.load(Relaxed);
        if calls == 0 || self.unavailable.load(Relaxed) != calls {
            return None;
        }
        let first = self.first.lock().ok()?.clone()?;
        // Unreachable, overloaded or timed out: all worth another attempt.
        Some(FetchError::Upstream {
            retryable: true,
            code: first.code,
            message: first.message,
        })
    }
}

impl<'a> Run<'a> {
    fn error(&self, path: &[Json], code: &str, message: &str) {
        let error = json!({
            "message": message,
            "path": path,
            "extensions": { "code": code },
        });
        if let Ok(mut errors) = self.errors.lock() {
            errors.push(error);
        }
    }

    fn field_error(&self, path: &[Json], e: &FieldError) {
        self.error(path, &e.code, &e.message);
    }

    /// One call, shared with identical calls of this request, within the concurrency bound.
    fn call(
        &self,
        connector: &dyn Connector,
        input: &CallInput<'_>,
    ) -> BoxFuture<'static, Result<Json, FieldError>> {
        let prepared = match connector.prepare(input, self.headers) {
            Ok(p) => p,
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        let Ok(mut inflight) = self.inflight.lock() else {
            return prepared.future;
        };
        if let Some(shared) = inflight.get(&prepared.key) {
            return shared.clone().boxed();
        }
        let permits = self.permits.clone();
        let future = prepared.future;
        let health = self.health.clone();
        let shared = async move {
            let _permit = permits.acquire_owned().await;
            let result = future.await;
            health.record(&result);
            result
        }
        .boxed()
        .shared();
        inflight.insert(prepared.key, shared.clone());
        shared.boxed()
    }

    fn condition_holds(&self, directives: &ast::DirectiveList) -> bool {
        let flag = |name: &str| {
            directives.get(name).and_then(|d| {
                match d.specified_argument_by_name("if").map(|v| &**v) {
                    Some(AstValue::Boolean(b)) => Some(*b),
                    Some(AstValue::Variable(v)) => self.variables.get(v.as_str())?.as_bool(),
                    _ => None,
                }
            })
        };
        flag("skip") != Some(true) && flag("include") != Some(false)
    }

    /// Fields selected on an object of type `object`, grouped by response key.
    fn collect_fields(&self, object: &str, sets: &[&'a [Selection]]) -> Fields<'a> {
        let mut out = IndexMap::new();
        let mut visited = HashSet::new();
        for set in sets {
            self.collect_into(object, set, &mut out, &mut visited);
        }
        out
    }

    fn collect_into(
        &self,
        object: &str,
        set: &'a [Selection],
        out: &mut Fields<'a>,
        visited: &mut HashSet<Name>,
    ) {
        for selection in set {
            match selection {
                Selection::Field(field) => {
                    if self.condition_holds(&field.directives) {
                        out.entry(field.response_name().clone())
                            .or_default()
                            .push(field);
                    }
                }
                Selection::InlineFragment(fragment) => {
                    let applies = fragment
                        .type_condition
                        .as_ref()
                        .is_none_or(|t| self.schema.applies(t, object));
                    if applies && self.condition_holds(&fragment.directives) {
                        self.collect_into(object, &fragment.selection_set, out, visited);
                    }
                }
                Selection::FragmentSpread(spread) => {
                    if !self.condition_holds(&spread.directives)
                        || !visited.insert(spread.fragment_name.clone())
                    {
                        continue;
                    }
                    if let Some(fragment) = self.op.fragments.get(&spread.fragment_name)
                        && self.schema.applies(&fragment.type_condition, object)
                    {
                        self.collect_into(object, &fragment.selection_set, out, visited);
                    }
                }
            }
        }
    }

    fn value_of(&self, value: &AstValue) -> Json {
        match value {
            AstValue::Null => Json::Null,
            AstValue::Variable(name) => self
                .variables
                .get(name.as_str())
                .cloned()
                .unwrap_or(Json::Null),
            AstValue::Enum(name) => Json::String(name.to_string()),
            AstValue::String(s) => Json::String(s.clone()),
            AstValue::Boolean(b) => Json::Bool(*b),
            AstValue::Int(i) => i
                .as_str()
                .parse::<i64>()
                .map(Json::from)
                .unwrap_or_else(|_| float_json(i.as_str())),
            AstValue::Float(f) => float_json(f.as_str()),
            AstValue::List(items) => Json::Array(items.iter().map(|v| self.value_of(v)).collect()),
            AstValue::Object(fields) => Json::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.to_string(), self.value_of(v)))
                    .collect(),
            ),
        }
    }

    /// The field's arguments: given ones (variables substituted), then SDL defaults.
    fn arguments(&self, field: &ast::Field, def: &FieldDefinition) -> Map<String, Json> {
        let mut args = Map::new();
        for arg in &field.arguments {
            let value = self.value_of(&arg.value);
            // An absent variable means the argument was not given.
            if matches!(&*arg.value, AstValue::Variable(v) if !self.variables.contains_key(v.as_str()))
            {
                continue;
            }
            args.insert(arg.name.to_string(), value);
        }
        for arg in &def.arguments {
            if !args.contains_key(arg.name.as_str())
                && let Some(default) = &arg.default_value
            {
                args.insert(arg.name.to_string(), self.value_of(default));
            }
        }
        args
    }

    async fn root(&self) -> Json {
        let op = &self.op.operation;
        let root_type = match op.operation_type {
            OperationType::Mutation => &self.schema.mutation_type,
            _ => &self.schema.query_type,
        };
        let fields = self.collect_fields(root_type, &[&op.selection_set]);
        let mut data = Map::new();
        if op.operation_type == OperationType::Mutation {
            for (key, nodes) in &fields {
                let value = self.root_field(root_type, key, nodes).await;
                data.insert(key.to_string(), value);
            }
        } else {
            let values = join_all(
                fields
                    .iter()
                    .map(|(key, nodes)| self.root_field(root_type, key, nodes)),
            )
            .await;
            for ((key, _), value) in fields.iter().zip(values) {
                data.insert(key.to_string(), value);
            }
        }
        Json::Object(data)
    }

    fn root_field<'s>(
        &'s self,
        root_type: &'s Name,
        key: &'s Name,
        nodes: &'s [&'a Node<ast::Field>],
    ) -> BoxFuture<'s, Json> {
        Box::pin(async move {
            match nodes[0].name.as_str() {
                "__typename" => Json::String(root_type.to_string()),
                "_entities" => self.entities(key, nodes).await,
                "_service" => json!({ "sdl": self.schema.sdl }),
                _ => {
                    let path = [Json::String(key.to_string())];
                    self.resolve_field(root_type, &Json::Null, &Json::Null, nodes, &path, None)
                        .await
                }
            }
        })
    }

    /// `_entities(representations: ...)`: per representation, the selected fields of
    /// its type; batch calls first, then every entity completed in parallel.
    async fn entities(&self, key: &Name, nodes: &[&'a Node<ast::Field>]) -> Json {
        let path = [Json::String(key.to_string())];
        let representations = nodes[0]
            .arguments
            .iter()
            .find(|a| a.name == "representations")
            .map(|a| self.value_of(&a.value));
        let Some(Json::Array(reps_owned)) = representations else {
            self.error(
                &path,
                "UPSTREAM_REQUEST_INVALID",
                "`_entities` needs a list of representations",
            );
            return Json::Null;
        };
        let reps = &reps_owned;
        let sets: Vec<&'a [Selection]> = nodes.iter().map(|f| &f.selection_set[..]).collect();
        // Representations by type, and each type's selected fields.
        let mut by_type: IndexMap<Name, Vec<usize>> = IndexMap::new();
        let mut typenames = Vec::with_capacity(reps.len());
        for (i, rep) in reps.iter().enumerate() {
            let name = rep
                .get("__typename")
                .and_then(Json::as_str)
                .and_then(|t| Name::new(t).ok());
            if let Some(name) = &name {
                by_type.entry(name.clone()).or_default().push(i);
            }
            typenames.push(name);
        }
        let fields_of: HashMap<Name, Fields<'a>> = by_type
            .keys()
            .map(|t| (t.clone(), self.collect_fields(t, &sets)))
            .collect();

        // Fetch ahead: batched field calls, and entity objects from type-level bindings.
        let mut prefetched: Vec<Prefetched> = vec![HashMap::new(); reps.len()];
        let mut bases: Vec<Option<Result<Json, FieldError>>> = vec![None; reps.len()];
        let mut batch_calls = Vec::new();
        let mut base_calls = Vec::new();
        for (type_name, indices) in &by_type {
            let fields = &fields_of[type_name];
            for (response_key, field_nodes) in fields {
                let Some(binding) = self.schema.binding(type_name, &field_nodes[0].name) else {
                    continue;
                };
                let (Some(batch), Some(def)) = (
                    &binding.batch,
                    self.schema.field_def(type_name, &field_nodes[0].name),
                ) else {
                    continue;
                };
                let args = self.arguments(field_nodes[0], def);
                let is_list = def.ty.is_list();
                batch_calls.push(async move {
                    let results = self.batch_call(batch, &args, indices, reps, is_list).await;
                    (response_key.clone(), indices, results)
                });
            }
            if let Some(binding) = self.schema.entity_bindings.get(type_name) {
                let needs_base = |rep: &Json| {
                    fields.values().any(|nodes| {
                        let name = &nodes[0].name;
                        name != "__typename"
                            && self.schema.binding(type_name, name).is_none()
                            && rep.get(name.as_str()).is_none()
                    })
                };
                let wanted: Vec<usize> = indices
                    .iter()
                    .copied()
                    .filter(|&i| needs_base(&reps[i]))
                    .collect();
                if wanted.is_empty() {
                    continue;
                }
                base_calls.push(async move {
                    let results = match &binding.batch {
                        Some(batch) => {
                            self.batch_call(batch, &Map::new(), &wanted, reps, false)
                                .await
                        }
                        None => {
                            let calls = wanted.iter().map(|&i| {
                                let input = CallInput {
                                    args: &EMPTY_ARGS,
                                    this: &reps[i],
                                    batch: None,
                                };
                                self.call(&*binding.single, &input)
                            });
                            join_all(calls.collect::<Vec<_>>()).await
                        }
                    };
                    (wanted, results)
                });
            }
        }
        let (batch_results, base_results) =
            futures::join!(join_all(batch_calls), join_all(base_calls));
        for (response_key, indices, results) in batch_results {
            for (&i, result) in indices.iter().zip(results) {
                prefetched[i].insert(response_key.clone(), result);
            }
        }
        for (indices, results) in base_results {
            for (i, result) in indices.into_iter().zip(results) {
                bases[i] = Some(result);
            }
        }

        let completions = reps.iter().enumerate().map(|(i, rep)| {
            let prefetched = &prefetched[i];
            let base = bases[i].take();
            let type_name = typenames[i].clone();
            let fields_of = &fields_of;
            async move {
                let path = [Json::String(key.to_string()), Json::from(i)];
                let Some(type_name) = type_name else {
                    self.error(
                        &path,
                        "UPSTREAM_REQUEST_INVALID",
                        "representation without `__typename`",
                    );
                    return Json::Null;
                };
                if !matches!(
                    self.schema.schema.types.get(&type_name),
                    Some(ExtendedType::Object(_))
                ) {
                    self.error(
                        &path,
                        "UPSTREAM_REQUEST_INVALID",
                        &format!("`{type_name}` is not an object type of this source"),
                    );
                    return Json::Null;
                }
                let object = match base {
                    None => rep.clone(),
                    Some(Err(e)) => {
                        self.field_error(&path, &e);
                        return Json::Null;
                    }
                    Some(Ok(Json::Object(mut base))) => {
                        // Key fields the backend object does not echo come from the
                        // representation.
                        if let Json::Object(rep) = rep {
                            for (k, v) in rep {
                                base.entry(k.clone()).or_insert_with(|| v.clone());
                            }
                        }
                        Json::Object(base)
                    }
                    Some(Ok(Json::Null)) => return Json::Null,
                    Some(Ok(other)) => {
                        self.error(
                            &path,
                            "UPSTREAM_BAD_RESPONSE",
                            &format!(
                                "expected an object for {type_name}, got {}",
                                kind_of(&other)
                            ),
                        );
                        return Json::Null;
                    }
                };
                let fields = &fields_of[&type_name];
                self.complete_fields(&type_name, &object, rep, fields, &path, Some(prefetched))
                    .await
            }
        });
        Json::Array(join_all(completions).await)
    }

    /// One batch call for the representations at `indices`, then each one's value.
    async fn batch_call(
        &self,
        batch: &Batch,
        args: &Map<String, Json>,
        indices: &[usize],
        reps: &[Json],
        is_list: bool,
    ) -> Vec<Result<Json, FieldError>> {
        let key_of = |i: usize| lookup(&reps[i], &batch.this_path).and_then(text_of);
        let mut keys: Vec<Json> = Vec::new();
        let mut seen = HashSet::new();
        for &i in indices {
            if let Some(k) = lookup(&reps[i], &batch.this_path)
                && !k.is_null()
                && seen.insert(text_of(k))
            {
                keys.push(k.clone());
            }
        }
        let mut batch_input = Map::new();
        set_path(&mut batch_input, &batch.this_path, Json::Array(keys));
        let batch_input = Json::Object(batch_input);
        let input = CallInput {
            args,
            this: &Json::Null,
            batch: Some(&batch_input),
        };
        let items = match self.call(&*batch.connector, &input).await {
            Ok(Json::Array(items)) => items,
            Ok(other) => {
                let e = FieldError::bad_response(format!(
                    "the batch call returned {}, expected a list of items",
                    kind_of(&other)
                ));
                return indices.iter().map(|_| Err(e.clone())).collect();
            }
            Err(e) => return indices.iter().map(|_| Err(e.clone())).collect(),
        };
        let mut by_key: HashMap<String, Vec<&Json>> = HashMap::new();
        for item in &items {
            if let Some(k) = lookup(item, &batch.item_key).and_then(text_of) {
                by_key.entry(k).or_default().push(item);
            }
        }
        indices
            .iter()
            .map(|&i| {
                let matching = key_of(i)
                    .and_then(|k| by_key.get(&k))
                    .map(Vec::as_slice)
                    .unwrap_or(&[]);
                Ok(match (&batch.item_value, is_list) {
                    (Some(path), _) => matching
                        .first()
                        .and_then(|item| lookup(item, path))
                        .cloned()
                        .unwrap_or(Json::Null),
                    (None, true) => Json::Array(matching.iter().map(|j| (*j).clone()).collect()),
                    (None, false) => matching.first().map(|j| (*j).clone()).unwrap_or(Json::Null),
                })
            })
            .collect()
    }

    /// The selected fields of an object. `this` is the backend object fields are read
    /// from; `this_for_calls` is what `$this` means in calls (the representation, for
    /// entities).
    fn complete_fields<'s>(
        &'s self,
        type_name: &'s Name,
        this: &'s Json,
        this_for_calls: &'s Json,
        fields: &'s Fields<'a>,
        path: &'s [Json],
        prefetched: Option<&'s Prefetched>,
    ) -> BoxFuture<'s, Json> {
        Box::pin(async move {
            let values = join_all(fields.iter().map(|(key, nodes)| async move {
                if nodes[0].name == "__typename" {
                    return Json::String(type_name.to_string());
                }
                let mut field_path = path.to_vec();
                field_path.push(Json::String(key.to_string()));
                let pre = prefetched.and_then(|p| p.get(key)).cloned();
                self.resolve_field(type_name, this, this_for_calls, nodes, &field_path, pre)
                    .await
            }))
            .await;
            Json::Object(fields.keys().map(|k| k.to_string()).zip(values).collect())
        })
    }

    fn resolve_field<'s>(
        &'s self,
        parent: &'s Name,
        this: &'s Json,
        this_for_calls: &'s Json,
        nodes: &'s [&'a Node<ast::Field>],
        path: &'s [Json],
        prefetched: Option<Result<Json, FieldError>>,
    ) -> BoxFuture<'s, Json> {
        Box::pin(async move {
            let field = nodes[0];
            let Some(def) = self.schema.field_def(parent, &field.name) else {
                self.error(
                    path,
                    "UPSTREAM_REQUEST_INVALID",
                    &format!("{parent} has no field `{}` in this source", field.name),
                );
                return Json::Null;
            };
            let args = self.arguments(field, def);
            let value = match prefetched {
                Some(Ok(v)) => v,
                Some(Err(e)) => {
                    self.field_error(path, &e);
                    return Json::Null;
                }
                None => match self.schema.binding(parent, &field.name) {
                    Some(binding) => {
                        let input = CallInput {
                            args: &args,
                            this: this_for_calls,
                            batch: None,
                        };
                        match self.call(&*binding.single, &input).await {
                            Ok(v) => v,
                            Err(e) => {
                                self.field_error(path, &e);
                                return Json::Null;
                            }
                        }
                    }
                    None => {
                        let input = CallInput {
                            args: &args,
                            this,
                            batch: None,
                        };
                        match self.schema.field_map(parent, &field.name) {
                            Some(map) => map.extract(&field.name, &input),
                            None => this.get(field.name.as_str()).cloned().unwrap_or(Json::Null),
                        }
                    }
                },
            };
            let sets: Vec<&'a [Selection]> = nodes.iter().map(|f| &f.selection_set[..]).collect();
            self.complete(&def.ty, value, &sets, path).await
        })
    }

    fn complete<'s>(
        &'s self,
        ty: &'s Type,
        value: Json,
        sets: &'s [&'a [Selection]],
        path: &'s [Json],
    ) -> BoxFuture<'s, Json> {
        Box::pin(async move {
            if value.is_null() {
                if ty.is_non_null() {
                    self.error(
                        path,
                        "UPSTREAM_BAD_RESPONSE",
                        &format!("the backend gave no value for a non-null `{ty}`"),
                    );
                }
                return Json::Null;
            }
            match ty {
                Type::List(inner) | Type::NonNullList(inner) => {
                    let Json::Array(items) = value else {
                        self.error(
                            path,
                            "UPSTREAM_BAD_RESPONSE",
                            &format!("expected a list for `{ty}`, got {}", kind_of(&value)),
                        );
                        return Json::Null;
                    };
                    let paths: Vec<Vec<Json>> = (0..items.len())
                        .map(|i| {
                            let mut p = path.to_vec();
                            p.push(Json::from(i));
                            p
                        })
                        .collect();
                    let completed = join_all(
                        items
                            .into_iter()
                            .zip(&paths)
                            .map(|(item, p)| self.complete(inner, item, sets, p)),
                    )
                    .await;
                    Json::Array(completed)
                }
                Type::Named(name) | Type::NonNullNamed(name) => {
                    self.complete_named(name, value, sets, path).await
                }
            }
        })
    }

    async fn complete_named(
        &self,
        name: &Name,
        value: Json,
        sets: &[&'a [Selection]],
        path: &[Json],
    ) -> Json {
        let bad = |message: String| {
            self.error(path, "UPSTREAM_BAD_RESPONSE", &message);
            Json::Null
        };
        match self.schema.schema.types.get(name) {
            Some(ExtendedType::Enum(e)) => match value.as_str() {
                Some(v) if e.values.contains_key(v) => value,
                _ => bad(format!("{value} is not a value of enum {name}")),
            },
            Some(ExtendedType::Object(_)) => {
                if !value.is_object() {
                    return bad(format!(
                        "expected an object for {name}, got {}",
                        kind_of(&value)
                    ));
                }
                let fields = self.collect_fields(name, sets);
                self.complete_fields(name, &value, &value, &fields, path, None)
                    .await
            }
            Some(ExtendedType::Interface(_) | ExtendedType::Union(_)) => {
                let runtime = value
                    .get("__typename")
                    .and_then(Json::as_str)
                    .and_then(|t| Name::new(t).ok())
                    .filter(|t| self.schema.applies(name, t));
                let Some(runtime) = runtime else {
                    return bad(format!(
                        "the backend object has no `__typename` naming an implementation of {name}"
                    ));
                };
                let fields = self.collect_fields(&runtime, sets);
                self.complete_fields(&runtime, &value, &value, &fields, path, None)
                    .await
            }
            _ => match coerce_scalar(name, value) {
                Ok(v) => v,
                Err(message) => bad(message),
            },
        }
    }
}

static EMPTY_ARGS: std::sync::LazyLock<Map<String, Json>> = std::sync::LazyLock::new(Map::new);

fn float_json(text: &str) -> Json {
    text.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map_or(Json::Null, Json::Number)
}

fn kind_of(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "an object",
    }
}

/// Output coercion of built-in scalars; custom scalars pass through unchanged.
fn coerce_scalar(name: &str, value: Json) -> Result<Json, String> {
    let fail = |value: &Json| Err(format!("cannot represent {value} as {name}"));
    match name {
        "Int" => match &value {
            Json::Number(n) => match n.as_i64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 2f64.powi(31))
                    .map(|f| f as i64)
            }) {
                Some(i) if i32::try_from(i).is_ok() => Ok(Json::from(i)),
                _ => fail(&value),
            },
            _ => fail(&value),
        },
        "Float" => match &value {
            Json::Number(_) => Ok(value),
            _ => fail(&value),
        },
        "String" => match value {
            Json::String(_) => Ok(value),
            Json::Number(n) => Ok(Json::String(n.to_string())),
            Json::Bool(b) => Ok(Json::String(b.to_string())),
            other => fail(&other),
        },
        "Boolean" => match value {
            Json::Bool(_) => Ok(value),
            other => fail(&other),
        },
        "ID" => match value {
            Json::String(_) => Ok(value),
            Json::Number(n) if n.is_i64() || n.is_u64() => Ok(Json::String(n.to_string())),
            other => fail(&other),
        },
        _ => Ok(value),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::sources::mapping::Template;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A connector answering from a closure, counting its calls.
    struct Fake {
        template: Template,
        calls: Arc<AtomicUsize>,
        answer: Arc<dyn Fn(String) -> Result<Json, FieldError> + Send + Sync>,
    }

    impl Connector for Fake {
        fn prepare(
            &self,
            input: &CallInput<'_>,
            _headers: &http::HeaderMap,
        ) -> Result<Prepared, FieldError> {
            let key = self
                .template
                .render(input)
                .map_err(FieldError::invalid_request)?
                .unwrap_or_default();
            let calls = self.calls.clone();
            let answer = self.answer.clone();
            let k = key.clone();
            Ok(Prepared {
                key,
                future: Box::pin(async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    answer(k)
                }),
            })
        }
    }

    const SDL: &str = r#"
        type Query { order(id: ID!): Order @fake(call: "order/{$args.id}") }
        type Order { id: ID! total: Int! @map(path: "amount.cents") state: State note: String @map(default: "\"none\"") items: [[Int!]] }
        enum State { OPEN CLOSED }
        type User @key(fields: "id") {
          id: ID!
          orders: [Order] @fake(call: "user/{$this.id}", batch: "users/{$batch.id}")
          name: String @fake(call: "name/{$this.id}")
        }
    "#;

    fn executor(calls: Arc<AtomicUsize>) -> LocalExecutor {
        let answer: Arc<dyn Fn(String) -> Result<Json, FieldError> + Send + Sync> = Arc::new(
            |key: String| match key.as_str() {
                "order/1" => Ok(
                    json!({"id": 1, "amount": {"cents": 250}, "state": "OPEN", "items": [[1, 2], [3]]}),
                ),
                "order/2" => Ok(json!({"id": "2", "amount": {"cents": "x"}, "state": "LOST"})),
                "order/3" => Err(FieldError::new("UPSTREAM_HTTP_500", "boom")),
                k if k.starts_with("users/") => Ok(json!([
                    {"userId": "1", "id": "a", "amount": {"cents": 1}},
                    {"userId": "1", "id": "b", "amount": {"cents": 2}},
                    {"userId": "3", "id": "c", "amount": {"cents": 3}},
                ])),
                k if k.starts_with("name/") => Ok(json!(format!("user {}", &k[5..]))),
                _ => Ok(Json::Null),
            },
        );
        let (schema, errors) = LocalSchema::build("fake", SDL, "fake", |site, d| {
            let template = |arg: &str| {
                crate::sources::mapping::string_arg(d, arg)
                    .unwrap()
                    .map(|t| Template::parse(&t).unwrap())
            };
            let single = template("call").unwrap();
            let errors = site.check_vars(single.vars(), false);
            if !errors.is_empty() {
                return Err(errors);
            }
            Ok(Binding {
                single: Box::new(Fake {
                    template: single,
                    calls: calls.clone(),
                    answer: answer.clone(),
                }),
                batch: template("batch").map(|t| Batch {
                    connector: Box::new(Fake {
                        template: t,
                        calls: calls.clone(),
                        answer: answer.clone(),
                    }),
                    this_path: vec!["id".into()],
                    item_key: vec!["userId".into()],
                    item_value: None,
                }),
            })
        });
        assert!(errors.is_empty(), "{errors:?}");
        LocalExecutor::new(schema)
    }

    async fn run(exec: &LocalExecutor, op: &str, variables: Json) -> Json {
        let response = exec
            .fetch(SourceRequest {
                operation: op.into(),
                operation_name: "".into(),
                variables: crate::sources::Variables::from_map(
                    &variables.as_object().cloned().unwrap_or_default(),
                ),
                is_mutation: false,
                headers: http::HeaderMap::new(),
                client_headers: Default::default(),
                principal: None,
            })
            .await
            .unwrap();
        json!({"data": response.data, "errors": response.errors})
    }

    #[tokio::test]
    async fn root_fields_map_paths_enums_defaults_and_nested_lists() {
        let calls = Arc::new(AtomicUsize::new(0));
        let exec = executor(calls.clone());
        let body = run(
            &exec,
            r#"query($id: ID!) { a: order(id: $id) { id cents: total state note items __typename } b: order(id: "1") { id } }"#,
            json!({"id": "1"}),
        )
        .await;
        assert_eq!(
            body["data"],
            json!({"a": {"id": "1", "cents": 250, "state": "OPEN", "note": "none", "items": [[1, 2], [3]], "__typename": "Order"}, "b": {"id": "1"}})
        );
        assert!(body["errors"].is_null(), "{body}");
        // The same call for two aliases is made once.
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn bad_values_and_failed_calls_null_only_their_field() {
        let exec = executor(Arc::new(AtomicUsize::new(0)));
        let body = run(
            &exec,
            r#"{ x: order(id: "2") { id total state } y: order(id: "3") { id } z: order(id: "1") { id } }"#,
            json!({}),
        )
        .await;
        assert_eq!(
            body["data"],
            json!({"x": {"id": "2", "total": null, "state": null}, "y": null, "z": {"id": "1"}})
        );
        let errors = body["errors"].as_array().unwrap();
        let summary: Vec<(Json, Json)> = errors
            .iter()
            .map(|e| (e["path"].clone(), e["extensions"]["code"].clone()))
            .collect();
        assert!(summary.contains(&(json!(["x", "total"]), json!("UPSTREAM_BAD_RESPONSE"))));
        assert!(summary.contains(&(json!(["x", "state"]), json!("UPSTREAM_BAD_RESPONSE"))));
        assert!(summary.contains(&(json!(["y"]), json!("UPSTREAM_HTTP_500"))));
        assert_eq!(errors.len(), 3, "{body}");
    }

    #[tokio::test]
    async fn entities_batch_and_dedupe() {
        let calls = Arc::new(AtomicUsize::new(0));
        let exec = executor(calls.clone());
        let body = run(
            &exec,
            "query($representations: [_Any!]!) { _entities(representations: $representations) { ... on User { id orders { id total } name } } }",
            json!({"representations": [
                {"__typename": "User", "id": "1"},
                {"__typename": "User", "id": "2"},
                {"__typename": "User", "id": "1"},
                {"__typename": "User", "id": "3"},
            ]}),
        )
        .await;
        assert!(body["errors"].is_null(), "{body}");
        assert_eq!(
            body["data"]["_entities"],
            json!([
                {"id": "1", "orders": [{"id": "a", "total": 1}, {"id": "b", "total": 2}], "name": "user 1"},
                {"id": "2", "orders": [], "name": "user 2"},
                {"id": "1", "orders": [{"id": "a", "total": 1}, {"id": "b", "total": 2}], "name": "user 1"},
                {"id": "3", "orders": [{"id": "c", "total": 3}], "name": "user 3"},
            ])
        );
        // One batch call for `orders`, three distinct `name` calls.
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn mapping_errors_name_the_coordinate() {
        let sdl = r#"type Query { a(id: ID): Int @fake(call: "x/{$args.idd}") b: Int }"#;
        let (_, errors) = LocalSchema::build("s", sdl, "fake", |site, d| {
            let t = Template::parse(
                &crate::sources::mapping::string_arg(d, "call")
                    .unwrap()
                    .unwrap(),
            )
            .unwrap();
            let errors = site.check_vars(t.vars(), false);
            if errors.is_empty() {
                Ok(Binding {
                    single: Box::new(Fake {
                        template: t,
                        calls: Arc::new(AtomicUsize::new(0)),
                        answer: Arc::new(|_| Ok(Json::Null)),
                    }),
                    batch: None,
                })
            } else {
                Err(errors)
            }
        });
        let errors = errors.join("\n");
        assert!(
            errors.contains(
                "Query.a @fake: `$args.idd`: Query.a has no argument `idd` (arguments: id)"
            ),
            "{errors}"
        );
        assert!(
            errors.contains("Query.b: a root field of this source needs @fake"),
            "{errors}"
        );
    }
}
