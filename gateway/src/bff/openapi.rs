//! An OpenAPI 3.1 document of a BFF's persisted operations as REST endpoints
//! (`GET /bff/<client>/<operation>`, served at `/bff/<client>/openapi.json`): query
//! parameters typed from the operations' variables, response schemas from the selected
//! fields' types with their nullability, the error bodies, and the BFF's auth schemes.
//! Generated from the view's schema, so it always matches what the endpoints accept.

use apollo_compiler::ast::{OperationType, Type};
use apollo_compiler::executable::{ExecutableDocument, Selection, SelectionSet};
use apollo_compiler::schema::ExtendedType;
use serde_json::{Map, Value as Json, json};

use super::Bff;
use super::config::AuthMode;

/// How deep input object types are described before a recursive one is left open.
const MAX_INPUT_DEPTH: usize = 8;

/// The document for `bff`; `api_key_header` is the header the gateway reads API keys from.
pub fn document(bff: &Bff, api_key_header: &str) -> Json {
    let name = bff.name();
    let mut operations: Vec<_> = bff.persisted.operations().collect();
    operations.sort_by(|a, b| a.name.cmp(&b.name));
    let mut paths = Map::new();
    for op in operations {
        let Ok(doc) = ExecutableDocument::parse_and_validate(&bff.api, &op.document, "op.graphql")
        else {
            continue;
        };
        let Ok(operation) = doc.operations.get(None) else {
            continue;
        };
        // Mutations are not served over GET.
        if operation.operation_type == OperationType::Mutation {
            continue;
        }
        let writer = Writer { bff, doc: &doc };
        let parameters: Vec<Json> = operation
            .variables
            .iter()
            .map(|v| writer.parameter(&v.name, &v.ty, v.default_value.as_deref()))
            .collect();
        let data = nullable(writer.selection(&operation.selection_set));
        let body_path = bff
            .config
            .persisted
            .endpoints
            .get(&op.name)
            .and_then(|e| e.body.as_deref());
        let ok = if operation.operation_type == OperationType::Subscription {
            json!({
                "description": "One event per result, as Server-Sent Events (`next` events carry `{data, errors}`, then `complete`).",
                "content": {"text/event-stream": {"schema": {"type": "string"}}}
            })
        } else if let Some(path) = body_path {
            json!({
                "description": format!("`data.{path}` of the operation's result (on errors, the GraphQL response `{{data, errors}}` instead)"),
                "content": {"application/json": {"schema": {"anyOf": [
                    at_path(&data, path),
                    {"$ref": "#/components/schemas/Response"}
                ]}}}
            })
        } else {
            json!({
                "description": "The operation's result; `errors` lists fields that failed (their values are null).",
                "content": {"application/json": {"schema": {
                    "type": "object",
                    "properties": {
                        "data": data,
                        "errors": {"$ref": "#/components/schemas/Errors"},
                        "extensions": {"type": "object"}
                    },
                    "required": ["data"]
                }}}
            })
        };
        let mut responses = Map::new();
        responses.insert("200".into(), ok);
        responses.insert(
            "400".into(),
            error_response("A parameter is unknown, missing or not of its type"),
        );
        if bff.config.auth.mode != AuthMode::None {
            responses.insert(
                "401".into(),
                error_response("Credentials are missing or not accepted"),
            );
        }
        responses.insert(
            "404".into(),
            error_response("A root field is null with a `NOT_FOUND` error (`data` is kept)"),
        );
        responses.insert(
            "429".into(),
            error_response("A rate limit or quota is exhausted"),
        );
        paths.insert(
            format!("/bff/{name}/{}", op.name),
            json!({"get": {
                "operationId": op.name,
                "summary": format!("Persisted operation `{}`", op.name),
                "description": format!("```graphql\n{}\n```", op.document.trim()),
                "parameters": parameters,
                "responses": responses
            }}),
        );
    }

    let mut schemes = Map::new();
    let mut security = Vec::new();
    let (api_key, bearer) = match bff.config.auth.mode {
        AuthMode::Any => (true, true),
        AuthMode::ApiKey => (true, false),
        AuthMode::Jwt => (false, true),
        AuthMode::None => (false, false),
    };
    if api_key {
        schemes.insert(
            "ApiKey".into(),
            json!({"type": "apiKey", "in": "header", "name": api_key_header}),
        );
        security.push(json!({"ApiKey": []}));
    }
    if bearer {
        schemes.insert(
            "Bearer".into(),
            json!({"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}),
        );
        security.push(json!({"Bearer": []}));
    }
    if !security.is_empty() && bff.config.auth.allow_anonymous {
        security.push(json!({}));
    }
    let mut components = json!({"schemas": {
        "Response": {
            "type": "object",
            "properties": {
                "data": {},
                "errors": {"$ref": "#/components/schemas/Errors"},
                "extensions": {"type": "object"}
            }
        },
        "Errors": {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "message": {"type": "string"},
                "path": {"type": "array", "items": {"type": ["string", "integer"]}},
                "extensions": {"type": "object"}
            },
            "required": ["message"]
        }
    }}});
    if !schemes.is_empty() {
        components["securitySchemes"] = Json::Object(schemes);
    }
    let mut out = json!({
        "openapi": "3.1.0",
        "info": {
            "title": format!("{name} BFF"),
            "version": env!("CARGO_PKG_VERSION"),
            "description": bff.config.description.clone().unwrap_or_default()
        },
        "paths": paths,
        "components": components
    });
    if !security.is_empty() {
        out["security"] = Json::Array(security);
    }
    out
}

fn error_response(description: &str) -> Json {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {
            "type": "object",
            "properties": {"errors": {"$ref": "#/components/schemas/Errors"}},
            "required": ["errors"]
        }}}
    })
}

/// `schema` that also admits `null`.
fn nullable(mut schema: Json) -> Json {
    match schema
        .get("type")
        .and_then(Json::as_str)
        .map(str::to_string)
    {
        Some(t) => {
            schema["type"] = json!([t, "null"]);
            schema
        }
        None => json!({"anyOf": [schema, {"type": "null"}]}),
    }
}

struct Writer<'a> {
    bff: &'a Bff,
    doc: &'a ExecutableDocument,
}

impl Writer<'_> {
    /// A query parameter: scalars and enums as they are, lists and input objects as JSON.
    fn parameter(
        &self,
        name: &str,
        ty: &Type,
        default: Option<&apollo_compiler::ast::Value>,
    ) -> Json {
        let mut schema = self.input(ty, 0);
        if let Some(value) = default {
            schema["description"] = json!(format!("Default: {value}"));
        }
        let named = ty.inner_named_type();
        let structured = ty.is_list()
            || matches!(
                self.bff.api.types.get(named),
                Some(ExtendedType::InputObject(_))
            );
        let mut parameter = json!({
            "name": name,
            "in": "query",
            "required": ty.is_non_null() && default.is_none(),
        });
        if structured {
            parameter["content"] = json!({"application/json": {"schema": schema}});
        } else {
            parameter["schema"] = schema;
        }
        parameter
    }

    fn input(&self, ty: &Type, depth: usize) -> Json {
        let inner = match ty {
            Type::Named(n) | Type::NonNullNamed(n) => self.input_named(n, depth),
            Type::List(item) | Type::NonNullList(item) => {
                json!({"type": "array", "items": self.input(item, depth)})
            }
        };
        if ty.is_non_null() {
            inner
        } else {
            nullable(inner)
        }
    }

    fn input_named(&self, name: &str, depth: usize) -> Json {
        match self.bff.api.types.get(name) {
            Some(ExtendedType::InputObject(input)) if depth < MAX_INPUT_DEPTH => {
                let mut properties = Map::new();
                let mut required = Vec::new();
                for (field, def) in &input.fields {
                    properties.insert(field.to_string(), self.input(&def.ty, depth + 1));
                    if def.ty.is_non_null() && def.default_value.is_none() {
                        required.push(json!(field.as_str()));
                    }
                }
                json!({
                    "type": "object",
                    "properties": properties,
                    "required": required,
                    "additionalProperties": false
                })
            }
            Some(ExtendedType::InputObject(_)) => json!({"type": "object"}),
            _ => self.leaf(name),
        }
    }

    /// Scalars and enums; a custom scalar is any JSON value.
    fn leaf(&self, name: &str) -> Json {
        match name {
            "Int" => json!({"type": "integer", "format": "int32"}),
            "Float" => json!({"type": "number"}),
            "String" | "ID" => json!({"type": "string"}),
            "Boolean" => json!({"type": "boolean"}),
            _ => match self.bff.api.types.get(name) {
                Some(ExtendedType::Enum(e)) => {
                    let values: Vec<&str> = e.values.keys().map(|v| v.as_str()).collect();
                    json!({"type": "string", "enum": values})
                }
                _ => json!({"description": format!("The custom scalar `{name}`")}),
            },
        }
    }

    fn output(&self, ty: &Type, set: &SelectionSet) -> Json {
        let inner = match ty {
            Type::Named(n) | Type::NonNullNamed(n) => {
                if set.selections.is_empty() {
                    self.leaf(n)
                } else {
                    self.selection(set)
                }
            }
            Type::List(item) | Type::NonNullList(item) => {
                json!({"type": "array", "items": self.output(item, set)})
            }
        };
        if ty.is_non_null() {
            inner
        } else {
            nullable(inner)
        }
    }

    /// An object with a property per response key: those selected on every object of
    /// the type are required (a GraphQL response always has them, null or not), those
    /// under a type condition are present only for the matching objects.
    fn selection(&self, set: &SelectionSet) -> Json {
        let mut properties = Map::new();
        let mut required = Vec::new();
        self.collect(set, true, &mut properties, &mut required);
        json!({"type": "object", "properties": properties, "required": required})
    }

    fn collect(
        &self,
        set: &SelectionSet,
        always: bool,
        properties: &mut Map<String, Json>,
        required: &mut Vec<Json>,
    ) {
        for selection in &set.selections {
            match selection {
                Selection::Field(field) => {
                    let key = field.response_key().to_string();
                    if always && !conditional(&field.directives) && !required.contains(&json!(key))
                    {
                        required.push(json!(key));
                    }
                    let schema = if field.name == "__typename" {
                        json!({"type": "string"})
                    } else {
                        self.output(&field.definition.ty, &field.selection_set)
                    };
                    properties.entry(key).or_insert(schema);
                }
                Selection::InlineFragment(fragment) => {
                    let applies = fragment
                        .type_condition
                        .as_ref()
                        .is_none_or(|c| *c == set.ty)
                        && !conditional(&fragment.directives);
                    self.collect(
                        &fragment.selection_set,
                        always && applies,
                        properties,
                        required,
                    );
                }
                Selection::FragmentSpread(spread) => {
                    if let Some(fragment) = self.doc.fragments.get(&spread.fragment_name) {
                        let applies = fragment.type_condition() == &set.ty
                            && !conditional(&spread.directives);
                        self.collect(
                            &fragment.selection_set,
                            always && applies,
                            properties,
                            required,
                        );
                    }
                }
            }
        }
    }
}

/// `@skip` / `@include`: the selection may be absent from the response.
fn conditional(directives: &apollo_compiler::executable::DirectiveList) -> bool {
    directives
        .iter()
        .any(|d| d.name == "skip" || d.name == "include")
}

/// The schema of the value at a dot path of response keys below `schema` (`{}` when the
/// path leaves it).
fn at_path(schema: &Json, path: &str) -> Json {
    let mut here = schema;
    for key in path.split('.') {
        match here.get("properties").and_then(|p| p.get(key)) {
            Some(next) => here = next,
            None => return json!({}),
        }
    }
    here.clone()
}

/// Whether `path` (dot-separated response keys) follows fields the operation selects,
/// through objects only (a list may only be the last step).
pub fn selects_path(bff: &Bff, document: &str, path: &str) -> bool {
    let Ok(doc) = ExecutableDocument::parse_and_validate(&bff.api, document, "op.graphql") else {
        return false;
    };
    let Ok(operation) = doc.operations.get(None) else {
        return false;
    };
    let writer = Writer { bff, doc: &doc };
    let data = writer.selection(&operation.selection_set);
    let keys: Vec<&str> = path.split('.').collect();
    let mut here = &data;
    for (i, key) in keys.iter().enumerate() {
        let Some(next) = here.get("properties").and_then(|p| p.get(*key)) else {
            return false;
        };
        let is_list = next["type"] == "array" || next["type"].get(0) == Some(&json!("array"));
        if is_list && i + 1 < keys.len() {
            return false;
        }
        here = next;
    }
    true
}
