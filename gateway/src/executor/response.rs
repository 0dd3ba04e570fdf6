//! Projection of the client's selection from the merged tree: response keys in the
//! client's order, `@skip`/`@include`, type conditions by runtime `__typename`, values
//! checked against the API schema, and nulls propagated by the non-null rules.

use apollo_compiler::Name;
use apollo_compiler::ast::Type;
use apollo_compiler::schema::ExtendedType;
use serde_json::{Map, Value as Json, json};

use crate::planner::PathElem;
use crate::planner::operation::{Field, Operation, Selection, SelectionSet};
use crate::schema::SchemaSnapshot;

struct Projector<'a> {
    schema: &'a SchemaSnapshot,
    variables: &'a Map<String, Json>,
    errors: &'a mut Vec<Json>,
    failed: &'a [Vec<PathElem>],
    path: Vec<Json>,
}

/// A non-null field was null: the parent must become null.
struct Bubble;

pub fn project(
    schema: &SchemaSnapshot,
    operation: &Operation,
    data: &Json,
    introspection: &Map<String, Json>,
    variables: &Map<String, Json>,
    errors: &mut Vec<Json>,
    failed: &[Vec<PathElem>],
) -> Json {
    let empty = Map::new();
    let root = data.as_object().unwrap_or(&empty);
    let mut p = Projector {
        schema,
        variables,
        errors,
        failed,
        path: Vec::new(),
    };
    let mut out = Map::new();
    let fields = p.collect(&operation.selection, &operation.root_type);
    for (key, group) in fields {
        let field = group[0];
        if field.name == "__typename" {
            out.insert(
                key.to_string(),
                Json::String(operation.root_type.to_string()),
            );
            continue;
        }
        if matches!(field.name.as_str(), "__schema" | "__type") {
            out.insert(
                key.to_string(),
                introspection
                    .get(key.as_str())
                    .cloned()
                    .unwrap_or(Json::Null),
            );
            continue;
        }
        p.path.push(Json::String(key.to_string()));
        let value = p.complete(root.get(key.as_str()), &field.ty, &group);
        p.path.pop();
        match value {
            Ok(v) => {
                out.insert(key.to_string(), v);
            }
            Err(Bubble) => return Json::Null,
        }
    }
    Json::Object(out)
}

impl<'a> Projector<'a> {
    /// CollectFields: group the selected fields by response key, in order, keeping
    /// those whose conditions hold and whose type condition the object satisfies.
    fn collect<'s>(
        &self,
        set: &'s SelectionSet,
        runtime_type: &str,
    ) -> Vec<(&'s Name, Vec<&'s Field>)> {
        let mut out: Vec<(&Name, Vec<&Field>)> = Vec::new();
        self.collect_into(set, runtime_type, &mut out);
        out
    }

    fn collect_into<'s>(
        &self,
        set: &'s SelectionSet,
        runtime_type: &str,
        out: &mut Vec<(&'s Name, Vec<&'s Field>)>,
    ) {
        for item in &set.0 {
            match item {
                Selection::Field(f) => {
                    if !f.conditions.included(self.variables) {
                        continue;
                    }
                    match out.iter_mut().find(|(k, _)| *k == &f.key) {
                        Some((_, group)) => group.push(f),
                        None => out.push((&f.key, vec![f])),
                    }
                }
                Selection::Fragment(frag) => {
                    if !frag.conditions.included(self.variables) {
                        continue;
                    }
                    let applies = frag
                        .type_condition
                        .as_ref()
                        .is_none_or(|c| self.schema.supergraph.satisfies(runtime_type, c));
                    if applies {
                        self.collect_into(&frag.selection, runtime_type, out);
                    }
                }
            }
        }
    }

    fn covered(&self) -> bool {
        let path = &self.path;
        let by_error = self.errors.iter().any(|e| {
            e.get("path")
                .and_then(Json::as_array)
                .is_some_and(|p| p.len() <= path.len() && p.iter().zip(path).all(|(a, b)| a == b))
        });
        by_error
            || self.failed.iter().any(|pattern| {
                pattern.len() <= path.len()
                    && pattern.iter().zip(path).all(|(elem, seg)| match elem {
                        PathElem::Key(k) => seg.as_str() == Some(k.as_str()),
                        PathElem::List => seg.is_u64(),
                    })
            })
    }

    fn null_error(&mut self, message: String) {
        if !self.covered() {
            self.errors.push(json!({
                "message": message,
                "path": self.path.clone(),
                "extensions": { "code": "NULL_VALUE_IN_NON_NULL_FIELD" },
            }));
        }
    }

    /// Complete a value; a null in a non-null position becomes a [`Bubble`] that the
    /// nearest nullable position turns into `null`.
    fn complete(
        &mut self,
        value: Option<&Json>,
        ty: &Type,
        fields: &[&Field],
    ) -> Result<Json, Bubble> {
        match ty {
            Type::NonNullNamed(_) | Type::NonNullList(_) => {
                let v = self.complete_nullable(value, ty, fields)?;
                if v.is_null() {
                    let name = fields.first().map(|f| f.name.as_str()).unwrap_or("");
                    self.null_error(format!("Cannot return null for non-nullable field {name}"));
                    return Err(Bubble);
                }
                Ok(v)
            }
            _ => Ok(self
                .complete_nullable(value, ty, fields)
                .unwrap_or(Json::Null)),
        }
    }

    /// Complete ignoring the outer non-null wrapper (the caller handles it).
    fn complete_nullable(
        &mut self,
        value: Option<&Json>,
        ty: &Type,
        fields: &[&Field],
    ) -> Result<Json, Bubble> {
        match ty {
            Type::List(inner) | Type::NonNullList(inner) => match value {
                Some(Json::Array(items)) => {
                    let mut out = Vec::with_capacity(items.len());
                    for (i, item) in items.iter().enumerate() {
                        self.path.push(Json::from(i));
                        let r = self.complete(Some(item), inner, fields);
                        self.path.pop();
                        out.push(r?);
                    }
                    Ok(Json::Array(out))
                }
                _ => Ok(Json::Null),
            },
            Type::Named(name) | Type::NonNullNamed(name) => match value {
                None | Some(Json::Null) => Ok(Json::Null),
                Some(v) => self.complete_named(v, name, fields),
            },
        }
    }

    fn complete_named(
        &mut self,
        value: &Json,
        type_name: &Name,
        fields: &[&Field],
    ) -> Result<Json, Bubble> {
        match self.schema.api.types.get(type_name) {
            Some(ExtendedType::Scalar(_)) => Ok(value.clone()),
            Some(ExtendedType::Enum(e)) => match value.as_str() {
                Some(s) if e.values.contains_key(s) => Ok(value.clone()),
                _ => {
                    self.errors.push(json!({
                        "message": format!("Invalid value for enum {type_name}"),
                        "path": self.path.clone(),
                        "extensions": { "code": "INVALID_UPSTREAM_VALUE" },
                    }));
                    Ok(Json::Null)
                }
            },
            Some(ExtendedType::Object(_) | ExtendedType::Interface(_) | ExtendedType::Union(_)) => {
                let Json::Object(object) = value else {
                    return Ok(Json::Null);
                };
                let runtime = object
                    .get("__typename")
                    .and_then(Json::as_str)
                    .unwrap_or(type_name.as_str())
                    .to_string();
                // A runtime type the API schema hides must not leak to the client.
                if !self.schema.api.types.contains_key(runtime.as_str()) {
                    return Ok(Json::Null);
                }
                self.complete_object(object, &runtime, fields)
                    .map(Json::Object)
            }
            _ => Ok(Json::Null),
        }
    }

    fn complete_object(
        &mut self,
        object: &Map<String, Json>,
        runtime: &str,
        fields: &[&Field],
    ) -> Result<Map<String, Json>, Bubble> {
        let merged;
        let set = if fields.len() == 1 {
            &fields[0].selection
        } else {
            let mut all = SelectionSet::default();
            for f in fields {
                all.0.extend(f.selection.0.iter().cloned());
            }
            merged = all;
            &merged
        };
        let collected = self.collect(set, runtime);
        let mut out = Map::with_capacity(collected.len());
        for (key, group) in collected {
            let field = group[0];
            if field.name == "__typename" {
                out.insert(key.to_string(), Json::String(runtime.to_string()));
                continue;
            }
            self.path.push(Json::String(key.to_string()));
            let value = self.complete(object.get(key.as_str()), &field.ty, &group);
            self.path.pop();
            out.insert(key.to_string(), value?);
        }
        Ok(out)
    }
}
