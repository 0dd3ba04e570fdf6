//! One run of a subgraph operation: walk its selection against the source's schema,
//! make the calls the bindings describe (de-duplicated, bounded in parallel), and
//! complete each value to its declared type, nulling only what failed.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use apollo_compiler::Name;
use apollo_compiler::Node;
use apollo_compiler::ast;
use apollo_compiler::ast::{OperationType, Selection, Type, Value as AstValue};
use apollo_compiler::schema::{ExtendedType, FieldDefinition};
use futures::future::{BoxFuture, FutureExt, Shared, join_all};
use indexmap::IndexMap;
use serde_json::Map;
use serde_json::Number;
use serde_json::Value as Json;
use serde_json::json;
use tokio::sync::Semaphore;

use crate::sources::FetchError;
use crate::sources::mapping::CallInput;

use super::binding::{Connector, Events, FieldError};
use super::schema::LocalSchema;

pub(super) type SharedCall = Shared<BoxFuture<'static, Result<Json, FieldError>>>;
pub(super) type Fields<'o> = IndexMap<Name, Vec<&'o Node<ast::Field>>>;
/// Per response key: values fetched ahead for one entity.
pub(super) type Prefetched = HashMap<Name, Result<Json, FieldError>>;

pub(super) struct Run<'a> {
    pub(super) schema: &'a LocalSchema,
    pub(super) op: &'a ParsedOperation,
    pub(super) variables: &'a Map<String, Json>,
    pub(super) headers: &'a http::HeaderMap,
    pub(super) errors: Mutex<Vec<Json>>,
    pub(super) inflight: Mutex<HashMap<String, SharedCall>>,
    pub(super) permits: Arc<Semaphore>,
    pub(super) health: Arc<CallHealth>,
}

/// Whether the backend answered at all during one fetch. When every call of a fetch
/// failed because the backend was unreachable or overloaded, the fetch fails as a
/// whole, so the policy stack (retry, circuit breaker) sees it like any other
/// source's failure; otherwise failures stay field errors.
#[derive(Default)]
pub(super) struct CallHealth {
    pub(super) calls: std::sync::atomic::AtomicUsize,
    pub(super) unavailable: std::sync::atomic::AtomicUsize,
    pub(super) first: Mutex<Option<FieldError>>,
}

/// Backend failures that say "not there right now", worth a retry.
pub(super) const UNAVAILABLE_CODES: [&str; 6] = [
    "UPSTREAM_UNAVAILABLE",
    "UPSTREAM_TIMEOUT",
    "UPSTREAM_HTTP_502",
    "UPSTREAM_HTTP_503",
    "UPSTREAM_HTTP_504",
    "UPSTREAM_GRPC_UNAVAILABLE",
];

impl CallHealth {
    pub(super) fn record(&self, result: &Result<Json, FieldError>) {
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
    pub(super) fn outage(&self) -> Option<FetchError> {
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
    pub(super) fn new(
        schema: &'a LocalSchema,
        op: &'a ParsedOperation,
        variables: &'a Map<String, Json>,
        headers: &'a http::HeaderMap,
    ) -> Self {
        Run {
            schema,
            op,
            variables,
            headers,
            errors: Mutex::new(Vec::new()),
            inflight: Mutex::new(HashMap::new()),
            permits: Arc::new(Semaphore::new(super::MAX_CONCURRENT_CALLS)),
            health: Arc::new(CallHealth::default()),
        }
    }

    pub(super) fn error(&self, path: &[Json], code: &str, message: &str) {
        let error = json!({
            "message": message,
            "path": path,
            "extensions": { "code": code },
        });
        if let Ok(mut errors) = self.errors.lock() {
            errors.push(error);
        }
    }

    pub(super) fn field_error(&self, path: &[Json], e: &FieldError) {
        self.error(path, &e.code, &e.message);
    }

    /// One call, shared with identical calls of this request, within the concurrency bound.
    pub(super) fn call(
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

    pub(super) fn condition_holds(&self, directives: &ast::DirectiveList) -> bool {
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
    pub(super) fn collect_fields(&self, object: &str, sets: &[&'a [Selection]]) -> Fields<'a> {
        let mut out = IndexMap::new();
        let mut visited = HashSet::new();
        for set in sets {
            self.collect_into(object, set, &mut out, &mut visited);
        }
        out
    }

    pub(super) fn collect_into(
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

    pub(super) fn value_of(&self, value: &AstValue) -> Json {
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
    pub(super) fn arguments(&self, field: &ast::Field, def: &FieldDefinition) -> Map<String, Json> {
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

    pub(super) async fn root(&self) -> Json {
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

    /// Opens the stream of a subscription operation's one root field.
    pub(super) fn open_stream(&self) -> BoxFuture<'static, Result<Events, FieldError>> {
        let op = &self.op.operation;
        let root_type = &self.schema.subscription_type;
        let fields = self.collect_fields(root_type, &[&op.selection_set]);
        let mut streamed = fields
            .values()
            .filter(|nodes| nodes[0].name != "__typename");
        let (Some(nodes), None) = (streamed.next(), streamed.next()) else {
            let e = FieldError::invalid_request("a subscription selects exactly one root field");
            return Box::pin(async move { Err(e) });
        };
        let field = nodes[0];
        let (Some(def), Some(stream)) = (
            self.schema.field_def(root_type, &field.name),
            self.schema.streams.get(&field.name),
        ) else {
            let e = FieldError::invalid_request(format!(
                "{root_type} has no field `{}` in this source",
                field.name
            ));
            return Box::pin(async move { Err(e) });
        };
        let args = self.arguments(field, def);
        let input = CallInput {
            args: &args,
            this: &Json::Null,
            batch: None,
        };
        stream.open(&input, self.headers)
    }

    /// The response data of one event: the subscription field completed from `value`.
    pub(super) async fn event(&self, value: Json) -> Json {
        let root_type = &self.schema.subscription_type;
        let fields = self.collect_fields(root_type, &[&self.op.operation.selection_set]);
        let mut data = Map::new();
        let mut value = Some(value);
        for (key, nodes) in &fields {
            let completed = match (
                nodes[0].name.as_str(),
                self.schema.field_def(root_type, &nodes[0].name),
            ) {
                ("__typename", _) => Json::String(root_type.to_string()),
                (_, Some(def)) => {
                    let sets: Vec<&'a [Selection]> =
                        nodes.iter().map(|f| &f.selection_set[..]).collect();
                    let path = [Json::String(key.to_string())];
                    let value = value.take().unwrap_or(Json::Null);
                    self.complete(&def.ty, value, &sets, &path).await
                }
                (_, None) => Json::Null,
            };
            data.insert(key.to_string(), completed);
        }
        Json::Object(data)
    }

    pub(super) fn root_field<'s>(
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

    /// The selected fields of an object. `this` is the backend object fields are read
    /// from; `this_for_calls` is what `$this` means in calls (the representation, for
    /// entities).
    pub(super) fn complete_fields<'s>(
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

    pub(super) fn resolve_field<'s>(
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

    pub(super) fn complete<'s>(
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

    pub(super) async fn complete_named(
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

pub(super) static EMPTY_ARGS: std::sync::LazyLock<Map<String, Json>> =
    std::sync::LazyLock::new(Map::new);

pub(super) fn float_json(text: &str) -> Json {
    text.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map_or(Json::Null, Json::Number)
}

pub(super) fn kind_of(value: &Json) -> &'static str {
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
pub(super) fn coerce_scalar(name: &str, value: Json) -> Result<Json, String> {
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

/// One operation, parsed once.
pub(super) struct ParsedOperation {
    pub(super) operation: Node<ast::OperationDefinition>,
    pub(super) fragments: HashMap<Name, Node<ast::FragmentDefinition>>,
}

pub(super) fn parse_operation(text: &str, name: &str) -> Result<ParsedOperation, String> {
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
