//! A data-driven federation subgraph on a real loopback socket, for compatibility tests.
//!
//! Give it a subgraph SDL (Federation 1 or 2) and a JSON description of its data; it
//! answers GraphQL requests the way a real subgraph built from that SDL would: root
//! fields, `_entities` (entities are looked up by any of their `@key`s), `__typename`,
//! aliases, fragments, `@skip`/`@include`, arguments, lists, nulls with non-null
//! bubbling, and errors on demand. Every request is recorded.
//!
//! The data description is a JSON object:
//! - `"Query"` / `"Mutation"`: the root object; each field holds the value to return.
//! - Any other key names a type and holds the list of its records (entities): objects
//!   with their fields. A record may carry `__typename` (needed when the key names an
//!   interface or when records of several types share a table).
//!
//! Values are plain JSON, with a few special forms:
//! - An object with only a `__typename` and key fields (a reference) is completed from
//!   the table of its type, as is any object whose type has a table.
//! - `{"$args": [[{"id": "1"}, value], ...]}`: the first entry whose arguments all equal
//!   the field's arguments (after defaults) gives the value; none gives `null`.
//! - `{"$error": "message"}`: the field is null and an error with its path is reported.
//!
//! Computed fields (for example a `@requires` field computed from its inputs, which
//! arrive in the representation) are closures registered with [`Fixture::resolver`]; they
//! see the parent object (record merged with the representation) and the arguments.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use apollo_compiler::ast::{self, Definition, OperationType, Selection, Type, Value as AstValue};
use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::post;
use gateway::schema::fieldset::{FieldSet, FieldSetItem};
use serde_json::{Map, Value, json};

/// A computed field: `(parent object, arguments) -> value or error message`.
pub type Resolver =
    Arc<dyn Fn(&Map<String, Value>, &Map<String, Value>) -> Result<Value, String> + Send + Sync>;

/// A fixture subgraph to start: SDL, data and computed fields.
pub struct Fixture {
    sdl: String,
    data: Value,
    resolvers: HashMap<(String, String), Resolver>,
}

impl Fixture {
    pub fn new(sdl: &str, data: Value) -> Self {
        Fixture {
            sdl: sdl.to_string(),
            data,
            resolvers: HashMap::new(),
        }
    }

    /// The subgraph SDL.
    pub fn sdl(&self) -> &str {
        &self.sdl
    }

    /// Compute `type_name.field` with a closure instead of reading it from the data.
    pub fn resolver(
        mut self,
        type_name: &str,
        field: &str,
        f: impl Fn(&Map<String, Value>, &Map<String, Value>) -> Result<Value, String>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        self.resolvers
            .insert((type_name.to_string(), field.to_string()), Arc::new(f));
        self
    }

    pub async fn start(self) -> FixtureSubgraph {
        let model = Model::from_sdl(&self.sdl);
        let shared = Arc::new(Shared {
            model,
            data: Mutex::new(self.data),
            resolvers: self.resolvers,
            received: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/graphql", post(handle))
            .with_state(shared.clone());
        let (addr, task) = crate::serve_router(app).await;
        FixtureSubgraph {
            url: format!("http://{addr}/graphql"),
            shared,
            task,
        }
    }
}

/// A running fixture subgraph.
pub struct FixtureSubgraph {
    pub url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl FixtureSubgraph {
    /// The request bodies received so far (`query`, `variables`, `operationName`).
    pub fn received(&self) -> Vec<Value> {
        self.shared
            .received
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// How many requests were received so far.
    pub fn request_count(&self) -> usize {
        self.shared.received.lock().map(|r| r.len()).unwrap_or(0)
    }

    /// Forget the requests received so far.
    pub fn reset(&self) {
        if let Ok(mut r) = self.shared.received.lock() {
            r.clear();
        }
    }

    /// Replace (part of) the data: top-level keys of `patch` replace those of the data.
    pub fn set_data(&self, patch: Value) {
        if let (Ok(mut data), Value::Object(patch)) = (self.shared.data.lock(), patch)
            && let Some(data) = data.as_object_mut()
        {
            for (k, v) in patch {
                data.insert(k, v);
            }
        }
    }
}

impl Drop for FixtureSubgraph {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Shared {
    model: Model,
    data: Mutex<Value>,
    resolvers: HashMap<(String, String), Resolver>,
    received: Mutex<Vec<Value>>,
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> axum::response::Response {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let request = if content_type.starts_with("multipart/form-data") {
        match multipart_request(content_type, &headers, body).await {
            Ok(request) => request,
            Err(message) => {
                let body = json!({ "errors": [{ "message": message }] });
                return (
                    axum::http::StatusCode::BAD_REQUEST,
                    [("content-type", "application/json")],
                    body.to_string(),
                )
                    .into_response();
            }
        }
    } else {
        match axum::body::to_bytes(body, 64 * 1024 * 1024).await {
            Ok(body) => serde_json::from_slice(&body).unwrap_or(Value::Null),
            Err(_) => Value::Null,
        }
    };
    if let Ok(mut r) = shared.received.lock() {
        r.push(request.clone());
    }
    let response = execute(&shared, &request);
    ([("content-type", "application/json")], response.to_string()).into_response()
}

/// A request of the GraphQL multipart request spec, read as a stream (with `multer`):
/// each file becomes, at the places `map` gives, `{"name", "type", "size", "sha256"}`,
/// so resolvers can answer what arrived. The recorded request also holds `map` and
/// the `apollo-require-preflight` header.
async fn multipart_request(
    content_type: &str,
    headers: &axum::http::HeaderMap,
    body: axum::body::Body,
) -> Result<Value, String> {
    use sha2::Digest;
    let boundary = multer::parse_boundary(content_type).map_err(|e| e.to_string())?;
    let mut parts = multer::Multipart::new(body.into_data_stream(), boundary);
    let mut next_json = async |name: &str| -> Result<Value, String> {
        let field = parts
            .next_field()
            .await
            .map_err(|e| e.to_string())?
            .filter(|f| f.name() == Some(name))
            .ok_or(format!("no `{name}` part first"))?;
        let bytes = field.bytes().await.map_err(|e| e.to_string())?;
        serde_json::from_slice::<Value>(&bytes).map_err(|e| e.to_string())
    };
    let mut request = next_json("operations").await?;
    let map = next_json("map").await?;
    let map = map.as_object().cloned().ok_or("`map` is not an object")?;
    while let Some(mut field) = parts.next_field().await.map_err(|e| e.to_string())? {
        let name = field.name().unwrap_or_default().to_string();
        let file_name = field.file_name().map(str::to_string);
        let file_type = field.content_type().map(ToString::to_string);
        let (mut size, mut digest) = (0u64, sha2::Sha256::new());
        while let Some(chunk) = field.chunk().await.map_err(|e| e.to_string())? {
            size += chunk.len() as u64;
            digest.update(&chunk);
        }
        let hex: String = digest
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let file = json!({ "name": file_name, "type": file_type, "size": size, "sha256": hex });
        let paths = map
            .get(&name)
            .and_then(Value::as_array)
            .ok_or(format!("the file `{name}` is not in `map`"))?;
        for path in paths {
            let pointer = format!("/{}", path.as_str().unwrap_or_default().replace('.', "/"));
            match request.pointer_mut(&pointer) {
                Some(slot) if slot.is_null() => *slot = file.clone(),
                _ => return Err(format!("`map` path {path} is not a null of `operations`")),
            }
        }
    }
    request["map"] = Value::Object(map);
    request["preflight"] = json!(
        headers
            .get("apollo-require-preflight")
            .and_then(|v| v.to_str().ok())
    );
    Ok(request)
}

/// What the SDL says, reduced to what execution needs.
#[derive(Default)]
struct Model {
    /// type -> field -> (type, argument definitions)
    fields: HashMap<String, HashMap<String, (Type, Vec<ast::InputValueDefinition>)>>,
    /// Object types and the interfaces they implement.
    implements: HashMap<String, Vec<String>>,
    unions: HashMap<String, Vec<String>>,
    interfaces: Vec<String>,
    /// Entity keys per type.
    keys: HashMap<String, Vec<FieldSet>>,
    query_type: String,
    mutation_type: String,
}

impl Model {
    fn from_sdl(sdl: &str) -> Self {
        let doc = match ast::Document::parse(sdl, "subgraph.graphql") {
            Ok(d) => d,
            Err(with_errors) => panic!("fixture SDL does not parse: {}", with_errors.errors),
        };
        let mut m = Model {
            query_type: "Query".into(),
            mutation_type: "Mutation".into(),
            ..Default::default()
        };
        let add_fields =
            |m: &mut Model, name: &str, fields: &[apollo_compiler::Node<ast::FieldDefinition>]| {
                let entry = m.fields.entry(name.to_string()).or_default();
                for f in fields {
                    entry.insert(
                        f.name.to_string(),
                        (
                            f.ty.clone(),
                            f.arguments.iter().map(|a| (**a).clone()).collect(),
                        ),
                    );
                }
            };
        let keys_of = |directives: &ast::DirectiveList| -> Vec<FieldSet> {
            directives
                .iter()
                .filter(|d| d.name == "key" || d.name == "federation__key")
                .filter_map(|d| d.specified_argument_by_name("fields"))
                .filter_map(|v| v.as_str().and_then(|s| FieldSet::parse(s).ok()))
                .collect()
        };
        for def in &doc.definitions {
            match def {
                Definition::ObjectTypeDefinition(o) => {
                    add_fields(&mut m, &o.name, &o.fields);
                    m.implements
                        .entry(o.name.to_string())
                        .or_default()
                        .extend(o.implements_interfaces.iter().map(|i| i.to_string()));
                    let keys = keys_of(&o.directives);
                    m.keys.entry(o.name.to_string()).or_default().extend(keys);
                }
                Definition::ObjectTypeExtension(o) => {
                    add_fields(&mut m, &o.name, &o.fields);
                    m.implements
                        .entry(o.name.to_string())
                        .or_default()
                        .extend(o.implements_interfaces.iter().map(|i| i.to_string()));
                    let keys = keys_of(&o.directives);
                    m.keys.entry(o.name.to_string()).or_default().extend(keys);
                }
                Definition::InterfaceTypeDefinition(i) => {
                    add_fields(&mut m, &i.name, &i.fields);
                    m.interfaces.push(i.name.to_string());
                    let keys = keys_of(&i.directives);
                    m.keys.entry(i.name.to_string()).or_default().extend(keys);
                }
                Definition::InterfaceTypeExtension(i) => {
                    add_fields(&mut m, &i.name, &i.fields);
                    m.interfaces.push(i.name.to_string());
                    let keys = keys_of(&i.directives);
                    m.keys.entry(i.name.to_string()).or_default().extend(keys);
                }
                Definition::UnionTypeDefinition(u) => {
                    m.unions
                        .entry(u.name.to_string())
                        .or_default()
                        .extend(u.members.iter().map(|n| n.to_string()));
                }
                Definition::UnionTypeExtension(u) => {
                    m.unions
                        .entry(u.name.to_string())
                        .or_default()
                        .extend(u.members.iter().map(|n| n.to_string()));
                }
                Definition::SchemaDefinition(s) => {
                    for op in &s.root_operations {
                        let (kind, name) = &**op;
                        match kind {
                            OperationType::Query => m.query_type = name.to_string(),
                            OperationType::Mutation => m.mutation_type = name.to_string(),
                            OperationType::Subscription => {}
                        }
                    }
                }
                _ => {}
            }
        }
        m
    }

    fn is_abstract(&self, name: &str) -> bool {
        self.unions.contains_key(name) || self.interfaces.iter().any(|i| i == name)
    }

    /// Whether an object of type `object` matches a type condition.
    fn satisfies(&self, object: &str, condition: &str) -> bool {
        object == condition
            || self
                .implements
                .get(object)
                .is_some_and(|list| list.iter().any(|i| i == condition))
            || self
                .unions
                .get(condition)
                .is_some_and(|list| list.iter().any(|m| m == object))
    }

    fn field(
        &self,
        type_name: &str,
        field: &str,
    ) -> Option<&(Type, Vec<ast::InputValueDefinition>)> {
        if let Some(f) = self.fields.get(type_name).and_then(|fs| fs.get(field)) {
            return Some(f);
        }
        // A field declared on an interface the object implements.
        self.implements
            .get(type_name)?
            .iter()
            .find_map(|i| self.fields.get(i).and_then(|fs| fs.get(field)))
    }

    /// The object types an object of `type_name` can be in this subgraph.
    fn possible<'a>(&'a self, type_name: &'a str) -> Vec<&'a str> {
        if let Some(members) = self.unions.get(type_name) {
            return members.iter().map(String::as_str).collect();
        }
        if self.interfaces.iter().any(|i| i == type_name) {
            return self
                .implements
                .iter()
                .filter(|(_, interfaces)| interfaces.iter().any(|i| i == type_name))
                .map(|(object, _)| object.as_str())
                .collect();
        }
        vec![type_name]
    }

    /// Like a real server's validation: a type condition names a type of this subgraph,
    /// and a fragment on it can apply to the parent here ("fragment cannot be spread").
    fn check_spread(&self, parent: &str, condition: &str) -> Result<(), String> {
        if !self.fields.contains_key(condition) && !self.unions.contains_key(condition) {
            return Err(format!("Unknown type \"{condition}\"."));
        }
        // `_entities` answers any entity type.
        if parent == "_Entity" {
            return Ok(());
        }
        let here = self.possible(parent);
        if !self.possible(condition).iter().any(|t| here.contains(t)) {
            return Err(format!(
                "Fragment cannot be spread here as objects of type \"{parent}\" can never be of type \"{condition}\"."
            ));
        }
        Ok(())
    }

    /// Object types whose records can answer for `type_name`.
    fn tables_for(&self, type_name: &str) -> Vec<String> {
        let mut out = vec![type_name.to_string()];
        if self.is_abstract(type_name) {
            for (object, interfaces) in &self.implements {
                if interfaces.iter().any(|i| i == type_name) {
                    out.push(object.clone());
                }
            }
            if let Some(members) = self.unions.get(type_name) {
                out.extend(members.iter().cloned());
            }
        }
        out
    }
}

struct Exec<'a> {
    shared: &'a Shared,
    data: Value,
    fragments: HashMap<String, &'a ast::FragmentDefinition>,
    variables: Map<String, Value>,
    errors: Vec<Value>,
    path: Vec<Value>,
}

fn execute(shared: &Shared, request: &Value) -> Value {
    let query = request["query"].as_str().unwrap_or("");
    let doc = match ast::Document::parse(query, "query.graphql") {
        Ok(d) => d,
        Err(e) => return json!({"errors": [{"message": format!("parse error: {}", e.errors)}]}),
    };
    let operation_name = request["operationName"].as_str();
    let mut operation = None;
    let mut fragments = HashMap::new();
    for def in &doc.definitions {
        match def {
            Definition::OperationDefinition(op)
                if operation.is_none()
                    || operation_name.is_some_and(|n| op.name.as_deref() == Some(n)) =>
            {
                operation = Some(op);
            }
            Definition::FragmentDefinition(f) => {
                fragments.insert(f.name.to_string(), &**f);
            }
            _ => {}
        }
    }
    let Some(operation) = operation else {
        return json!({"errors": [{"message": "no operation"}]});
    };
    let mut variables = request["variables"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for def in &operation.variables {
        if !variables.contains_key(def.name.as_str())
            && let Some(default) = &def.default_value
        {
            variables.insert(def.name.to_string(), const_json(default));
        }
    }
    let data = shared.data.lock().map(|d| d.clone()).unwrap_or(Value::Null);
    let mut exec = Exec {
        shared,
        data,
        fragments,
        variables,
        errors: Vec::new(),
        path: Vec::new(),
    };
    let root_type = match operation.operation_type {
        OperationType::Mutation => shared.model.mutation_type.clone(),
        _ => shared.model.query_type.clone(),
    };
    let root_key = if operation.operation_type == OperationType::Mutation {
        "Mutation"
    } else {
        "Query"
    };
    let root = exec
        .data
        .get(root_key)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    // Like a real server, refuse fields that cannot merge (same response key,
    // different shapes), so the gateway's subgraph queries are checked.
    let mut level = MergeLevel::default();
    if let Err(message) = exec.check_merge(&root_type, &operation.selection_set, &mut level) {
        return json!({"errors": [{"message": message}]});
    }
    let result = exec.object(&root, &root_type, &operation.selection_set);
    let mut response = Map::new();
    if !exec.errors.is_empty() {
        response.insert("errors".into(), Value::Array(exec.errors));
    }
    response.insert(
        "data".into(),
        match result {
            Some(map) => Value::Object(map),
            None => Value::Null,
        },
    );
    Value::Object(response)
}

fn const_json(value: &AstValue) -> Value {
    match value {
        AstValue::Null | AstValue::Variable(_) => Value::Null,
        AstValue::Enum(n) => Value::String(n.to_string()),
        AstValue::String(s) => Value::String(s.clone()),
        AstValue::Float(f) => json!(f.try_to_f64().unwrap_or(0.0)),
        AstValue::Int(i) => i
            .try_to_i32()
            .map(Value::from)
            .unwrap_or_else(|_| json!(i.try_to_f64().unwrap_or(0.0))),
        AstValue::Boolean(b) => Value::Bool(*b),
        AstValue::List(items) => Value::Array(items.iter().map(|i| const_json(i)).collect()),
        AstValue::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.to_string(), const_json(v)))
                .collect(),
        ),
    }
}

/// Response keys seen in one selection set (fragments flattened): parent type, field
/// shape and the keys below.
#[derive(Default)]
struct MergeLevel {
    entries: Vec<(String, String, String, MergeLevel)>,
}

impl<'a> Exec<'a> {
    fn shape(&self, ty: &Type) -> String {
        let name = ty.inner_named_type().as_str();
        let text = ty.to_string();
        if self.shared.model.fields.contains_key(name) || self.shared.model.is_abstract(name) {
            text.replace(name, "{}")
        } else {
            text
        }
    }

    fn check_merge(
        &self,
        parent: &str,
        set: &[Selection],
        level: &mut MergeLevel,
    ) -> Result<(), String> {
        for selection in set {
            match selection {
                Selection::Field(f) => {
                    let key = f.alias.as_ref().unwrap_or(&f.name).to_string();
                    let ty = match f.name.as_str() {
                        "__typename" => Some(Type::NonNullNamed(apollo_compiler::name!("String"))),
                        "_entities" | "_service" => None,
                        name => self
                            .shared
                            .model
                            .field(parent, name)
                            .map(|(t, _)| t.clone()),
                    };
                    if ty.is_none() && !matches!(f.name.as_str(), "_entities" | "_service") {
                        return Err(format!(
                            "Cannot query field \"{}\" on type \"{parent}\".",
                            f.name
                        ));
                    }
                    let shape = ty.as_ref().map(|t| self.shape(t)).unwrap_or_default();
                    let index = match level.entries.iter().position(|e| e.0 == key) {
                        Some(i) => {
                            if level.entries[i].2 != shape && level.entries[i].1 != parent {
                                return Err(format!(
                                    "Fields \"{key}\" conflict because they return conflicting types \"{}\" and \"{shape}\"",
                                    level.entries[i].2
                                ));
                            }
                            i
                        }
                        None => {
                            level.entries.push((
                                key,
                                parent.to_string(),
                                shape,
                                MergeLevel::default(),
                            ));
                            level.entries.len() - 1
                        }
                    };
                    if !f.selection_set.is_empty() && f.name != "_service" {
                        // `_entities` selects fragments on entity types.
                        let child_parent = match &ty {
                            Some(t) => t.inner_named_type().to_string(),
                            None => "_Entity".to_string(),
                        };
                        let mut child = std::mem::take(&mut level.entries[index].3);
                        let result = self.check_merge(&child_parent, &f.selection_set, &mut child);
                        level.entries[index].3 = child;
                        result?;
                    }
                }
                Selection::InlineFragment(frag) => {
                    let on = frag
                        .type_condition
                        .as_ref()
                        .map(|t| t.to_string())
                        .unwrap_or_else(|| parent.to_string());
                    self.shared.model.check_spread(parent, &on)?;
                    self.check_merge(&on, &frag.selection_set, level)?;
                }
                Selection::FragmentSpread(spread) => {
                    if let Some(def) = self.fragments.get(spread.fragment_name.as_str()) {
                        self.shared
                            .model
                            .check_spread(parent, &def.type_condition)?;
                        self.check_merge(&def.type_condition, &def.selection_set, level)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn value(&self, value: &AstValue) -> Value {
        match value {
            AstValue::Variable(v) => self
                .variables
                .get(v.as_str())
                .cloned()
                .unwrap_or(Value::Null),
            AstValue::List(items) => Value::Array(items.iter().map(|i| self.value(i)).collect()),
            AstValue::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.to_string(), self.value(v)))
                    .collect(),
            ),
            other => const_json(other),
        }
    }

    fn included(&self, directives: &ast::DirectiveList) -> bool {
        for d in directives.iter() {
            let want = match d.name.as_str() {
                "include" => true,
                "skip" => false,
                _ => continue,
            };
            let value = d
                .specified_argument_by_name("if")
                .map(|v| self.value(v))
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            if value != want {
                return false;
            }
        }
        true
    }

    /// The fields selected on an object of `type_name`, grouped by response key.
    fn collect<'s>(
        &self,
        set: &'s [Selection],
        type_name: &str,
        out: &mut Vec<(String, Vec<&'s ast::Field>)>,
    ) where
        'a: 's,
    {
        for selection in set {
            match selection {
                Selection::Field(f) => {
                    if !self.included(&f.directives) {
                        continue;
                    }
                    let key = f.alias.as_ref().unwrap_or(&f.name).to_string();
                    match out.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, fields)) => fields.push(f),
                        None => out.push((key, vec![f])),
                    }
                }
                Selection::InlineFragment(frag) => {
                    if !self.included(&frag.directives) {
                        continue;
                    }
                    if frag
                        .type_condition
                        .as_ref()
                        .is_none_or(|c| self.shared.model.satisfies(type_name, c))
                    {
                        self.collect(&frag.selection_set, type_name, out);
                    }
                }
                Selection::FragmentSpread(spread) => {
                    if !self.included(&spread.directives) {
                        continue;
                    }
                    if let Some(def) = self.fragments.get(spread.fragment_name.as_str())
                        && self.shared.model.satisfies(type_name, &def.type_condition)
                    {
                        self.collect(&def.selection_set, type_name, out);
                    }
                }
            }
        }
    }

    fn error(&mut self, message: String) {
        self.errors
            .push(json!({"message": message, "path": self.path.clone()}));
    }

    /// Execute a selection set on an object; `None` when a non-null field was null.
    fn object(
        &mut self,
        object: &Map<String, Value>,
        type_name: &str,
        set: &[Selection],
    ) -> Option<Map<String, Value>> {
        let mut collected = Vec::new();
        self.collect(set, type_name, &mut collected);
        let mut out = Map::new();
        for (key, fields) in collected {
            let field = fields[0];
            self.path.push(Value::String(key.clone()));
            let value = self.field(object, type_name, field, &fields);
            self.path.pop();
            out.insert(key, value?);
        }
        Some(out)
    }

    /// Resolve and complete one field; `None` bubbles to the parent.
    fn field(
        &mut self,
        object: &Map<String, Value>,
        type_name: &str,
        field: &ast::Field,
        fields: &[&ast::Field],
    ) -> Option<Value> {
        let name = field.name.as_str();
        if name == "__typename" {
            return Some(Value::String(type_name.to_string()));
        }
        if name == "_service" {
            return Some(json!({"sdl": ""}));
        }
        let mut args = Map::new();
        for a in &field.arguments {
            args.insert(a.name.to_string(), self.value(&a.value));
        }
        if name == "_entities" {
            let reps = args
                .get("representations")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let mut list = Vec::with_capacity(reps.len());
            for (i, rep) in reps.iter().enumerate() {
                self.path.push(Value::from(i));
                let entity = self.entity(rep);
                let value = match entity {
                    None => Value::Null,
                    Some((t, obj)) => {
                        let sub: Vec<Selection> = fields
                            .iter()
                            .flat_map(|f| f.selection_set.iter().cloned())
                            .collect();
                        self.object(&obj, &t, &sub)
                            .map(Value::Object)
                            .unwrap_or(Value::Null)
                    }
                };
                self.path.pop();
                list.push(value);
            }
            return Some(Value::Array(list));
        }
        let Some((ty, arg_defs)) = self.shared.model.field(type_name, name).cloned() else {
            self.error(format!(
                "Cannot query field \"{name}\" on type \"{type_name}\"."
            ));
            return None;
        };
        for def in &arg_defs {
            if !args.contains_key(def.name.as_str())
                && let Some(default) = &def.default_value
            {
                args.insert(def.name.to_string(), const_json(default));
            }
        }
        let resolver = self
            .shared
            .resolvers
            .get(&(type_name.to_string(), name.to_string()))
            .or_else(|| {
                // A resolver registered on an interface applies to its implementations.
                self.shared.model.implements.get(type_name).and_then(|is| {
                    is.iter()
                        .find_map(|i| self.shared.resolvers.get(&(i.clone(), name.to_string())))
                })
            })
            .cloned();
        let raw = match resolver {
            Some(r) => match r(object, &args) {
                Ok(v) => v,
                Err(message) => {
                    self.error(message);
                    Value::Null
                }
            },
            None => object.get(name).cloned().unwrap_or(Value::Null),
        };
        let raw = self.special(raw, &args);
        let sub: Vec<Selection> = fields
            .iter()
            .flat_map(|f| f.selection_set.iter().cloned())
            .collect();
        self.complete(&raw, &ty, &sub)
    }

    /// Apply `$args` / `$error` forms.
    fn special(&mut self, raw: Value, args: &Map<String, Value>) -> Value {
        let Value::Object(map) = &raw else {
            return raw;
        };
        if let Some(message) = map.get("$error") {
            self.error(message.as_str().unwrap_or("error").to_string());
            return Value::Null;
        }
        if let Some(Value::Array(entries)) = map.get("$args") {
            for entry in entries {
                let (Some(wanted), Some(value)) = (entry.get(0), entry.get(1)) else {
                    continue;
                };
                let matches = wanted.as_object().is_some_and(|w| {
                    w.iter()
                        .all(|(k, v)| args.get(k).unwrap_or(&Value::Null) == v)
                });
                if matches {
                    return self.special(value.clone(), args);
                }
            }
            return Value::Null;
        }
        raw
    }

    fn complete(&mut self, value: &Value, ty: &Type, set: &[Selection]) -> Option<Value> {
        let completed = match ty {
            Type::List(inner) | Type::NonNullList(inner) => match value {
                Value::Array(items) => {
                    let mut out = Vec::with_capacity(items.len());
                    let mut failed = false;
                    for (i, item) in items.iter().enumerate() {
                        self.path.push(Value::from(i));
                        match self.complete(item, inner, set) {
                            Some(v) => out.push(v),
                            None => failed = true,
                        }
                        self.path.pop();
                    }
                    if failed {
                        Value::Null
                    } else {
                        Value::Array(out)
                    }
                }
                _ => Value::Null,
            },
            Type::Named(name) | Type::NonNullNamed(name) => match value {
                Value::Null => Value::Null,
                Value::Object(map) if !set.is_empty() => {
                    let declared = name.as_str();
                    let typename = map
                        .get("__typename")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .or_else(|| {
                            (!self.shared.model.is_abstract(declared)).then(|| declared.to_string())
                        });
                    let (typename, object) = match typename {
                        Some(t) => {
                            let object = self.hydrate(&t, map);
                            (t, object)
                        }
                        None => match self.lookup(declared, map) {
                            Some((t, record)) => (t, record),
                            None => {
                                self.error(format!(
                                    "cannot tell the runtime type of a {declared} value"
                                ));
                                (String::new(), Map::new())
                            }
                        },
                    };
                    if typename.is_empty() {
                        Value::Null
                    } else {
                        self.object(&object, &typename, set)
                            .map(Value::Object)
                            .unwrap_or(Value::Null)
                    }
                }
                other => other.clone(),
            },
        };
        if completed.is_null() && ty.is_non_null() {
            if value.is_null() {
                self.error("Cannot return null for non-nullable field".into());
            }
            return None;
        }
        Some(completed)
    }

    /// Complete a reference from the table of its type, when it has a matching record.
    fn hydrate(&self, type_name: &str, object: &Map<String, Value>) -> Map<String, Value> {
        match self.lookup(type_name, object) {
            Some((_, mut record)) => {
                for (k, v) in object {
                    record.insert(k.clone(), v.clone());
                }
                record
            }
            None => object.clone(),
        }
    }

    /// The record (and its type) matching `object` by one of the keys of `type_name`.
    fn lookup(
        &self,
        type_name: &str,
        object: &Map<String, Value>,
    ) -> Option<(String, Map<String, Value>)> {
        let model = &self.shared.model;
        let keys: Vec<&FieldSet> = model
            .keys
            .get(type_name)
            .map(|k| k.iter().collect())
            .unwrap_or_default();
        for table in model.tables_for(type_name) {
            let Some(Value::Array(records)) = self.data.get(&table) else {
                continue;
            };
            let mut table_keys = keys.clone();
            if let Some(own) = model.keys.get(&table) {
                table_keys.extend(own.iter());
            }
            for record in records {
                let Value::Object(record) = record else {
                    continue;
                };
                let matched = table_keys.iter().any(|key| {
                    let wanted = project(object, key);
                    wanted.is_some() && wanted == project(record, key)
                });
                if matched {
                    let t = record
                        .get("__typename")
                        .and_then(Value::as_str)
                        .unwrap_or(&table)
                        .to_string();
                    let t = if t == type_name && model.is_abstract(type_name) {
                        table.clone()
                    } else {
                        t
                    };
                    return Some((t, record.clone()));
                }
            }
        }
        None
    }

    /// An `_entities` representation: the record it names (with the representation's
    /// fields, such as `@requires` inputs, added), or the representation itself when
    /// the type has no table here; `None` when the table has no such record.
    fn entity(&mut self, rep: &Value) -> Option<(String, Map<String, Value>)> {
        let rep = rep.as_object()?;
        let typename = rep.get("__typename")?.as_str()?.to_string();
        let has_table = self
            .shared
            .model
            .tables_for(&typename)
            .iter()
            .any(|t| self.data.get(t).is_some_and(Value::is_array));
        match self.lookup(&typename, rep) {
            Some((t, mut record)) => {
                for (k, v) in rep {
                    if k != "__typename" {
                        record.insert(k.clone(), v.clone());
                    }
                }
                // An interface object answers with the interface name.
                let t = if self.shared.model.fields.contains_key(&typename)
                    && !self.shared.model.is_abstract(&typename)
                {
                    typename.clone()
                } else {
                    t
                };
                Some((t, record))
            }
            None if !has_table => Some((typename, rep.clone())),
            None => None,
        }
    }
}

/// The values of a field set's fields in `object` (`None` when one is missing or null).
fn project(object: &Map<String, Value>, set: &FieldSet) -> Option<Value> {
    let mut out = Map::new();
    for item in &set.0 {
        match item {
            FieldSetItem::Field { name, children, .. } => {
                let value = object.get(name.as_str())?;
                if value.is_null() {
                    return None;
                }
                if children.is_empty() {
                    out.insert(name.clone(), value.clone());
                } else {
                    let inner = match value {
                        Value::Object(map) => project(map, children)?,
                        Value::Array(items) => Value::Array(
                            items
                                .iter()
                                .map(|i| i.as_object().and_then(|m| project(m, children)))
                                .collect::<Option<Vec<_>>>()?,
                        ),
                        _ => return None,
                    };
                    out.insert(name.clone(), inner);
                }
            }
            FieldSetItem::Fragment { .. } => {}
        }
    }
    Some(Value::Object(out))
}
