//! Projection of the client's selection from the merged tree: response keys in the
//! client's order, `@skip`/`@include`, type conditions by runtime `__typename`, values
//! checked against the API schema, and nulls propagated by the non-null rules.
//!
//! The response is written straight into JSON bytes, not built as a value tree first:
//! a null that bubbles up truncates the bytes written for the nearest nullable position
//! and writes `null` there instead. Paths are kept borrowed and only turned into JSON
//! when an error needs one.

use apollo_compiler::Name;
use apollo_compiler::ast::Type;
use apollo_compiler::schema::ExtendedType;
use serde_json::{Map, Value as Json, json};

use std::cell::Cell;
use std::rc::Rc;

use smallvec::{SmallVec, smallvec};

use crate::planner::PathElem;
use crate::planner::computed::{Computed, Derived};
use crate::planner::operation::{Field, Operation, Selection, SelectionSet};
use crate::planner::plan::DeferSite;
use crate::schema::SchemaSnapshot;
use crate::sources::value::{Object, Str, Value, write_json_string};

/// One step of the current response path, borrowed from the operation.
#[derive(Clone, Copy)]
enum Seg<'a> {
    Key(&'a Name),
    Index(usize),
}

struct Projector<'a> {
    schema: &'a SchemaSnapshot,
    variables: &'a Map<String, Json>,
    errors: &'a mut Vec<Json>,
    failed: &'a [Vec<PathElem>],
    path: Vec<Seg<'a>>,
    memo: Vec<((usize, usize), Collected<'a>)>,
    out: Vec<u8>,
    /// Leave out deferred fragments (they come in later payloads).
    skip_deferred: bool,
    /// A BFF's names for the graph's types (`__typename`).
    type_names: Option<&'a std::collections::HashMap<Name, Name>>,
}

/// The fields selected under one response key (nearly always one: no allocation).
type Group<'s> = SmallVec<[&'s Field; 1]>;

/// One response key of an object's selection, with what completing it needs, looked
/// up once per selection instead of once per object.
struct Entry<'a> {
    key: &'a Name,
    /// The key as a tree string, to find the field in upstream objects.
    tree_key: Str,
    group: Group<'a>,
    /// The API schema's definition of the field's named type.
    def: Option<&'a ExtendedType>,
    /// A computed field's siblings, as tree keys (empty for other fields).
    computed_keys: Vec<Str>,
    /// Where the field was found in the last object: objects under one selection
    /// share their shape, but not necessarily the client's field order.
    hint: Cell<usize>,
}

/// The result of CollectFields: response keys in order, with their fields.
type Collected<'a> = Rc<[Entry<'a>]>;

/// How many (selection, runtime type) pairs one projection remembers.
const MEMO_ENTRIES: usize = 64;

/// A non-null field was null: the parent must become null.
struct Bubble;

/// Project the client's response `data` as JSON text (`null` when a null bubbled to
/// the root). `size_hint`: the expected length (room is left for the response envelope
/// around it).
#[allow(clippy::too_many_arguments)]
pub fn project<'a>(
    schema: &'a SchemaSnapshot,
    operation: &'a Operation,
    data: &Value,
    introspection: &Map<String, Json>,
    variables: &'a Map<String, Json>,
    errors: &'a mut Vec<Json>,
    failed: &'a [Vec<PathElem>],
    size_hint: usize,
    skip_deferred: bool,
) -> Vec<u8> {
    let empty = Object::new();
    let root = data.as_object().unwrap_or(&empty);
    for error in errors.iter_mut() {
        if let Some(Json::Array(path)) = error.get_mut("path") {
            client_path(&operation.selection, path);
        }
    }
    let mut p = Projector {
        schema,
        variables,
        errors,
        failed,
        path: Vec::new(),
        memo: Vec::new(),
        // Capped: one huge answer must not make every later one allocate as much.
        out: Vec::with_capacity((size_hint + size_hint / 16 + 64).clamp(4096, 1 << 20)),
        skip_deferred,
        type_names: operation.client_type_names.as_deref(),
    };
    let fields = p.collect(&operation.selection, &operation.root_type);
    p.out.push(b'{');
    for (i, (key, group)) in fields.into_iter().enumerate() {
        if i > 0 {
            p.out.push(b',');
        }
        p.write_key(key);
        let field = group[0];
        if field.name == "__typename" {
            p.write_str(&operation.root_type);
            continue;
        }
        if matches!(field.name.as_str(), "__schema" | "__type") {
            let _ = serde_json::to_writer(
                &mut p.out,
                introspection.get(key.as_str()).unwrap_or(&Json::Null),
            );
            continue;
        }
        p.path.push(Seg::Key(key));
        let def = p.definition(&field.ty);
        let value = p.complete(root.get(key.as_str()), &field.ty, def, &group);
        p.path.pop();
        if value.is_err() {
            return b"null".to_vec();
        }
    }
    p.out.push(b'}');
    p.out
}

/// An upstream error's path as the client knows it: the keys of a flattened path's
/// inner fields (`authorName.name` for `Review.authorName` over `author.name`) taken out.
fn client_path(selection: &SelectionSet, path: &mut Vec<Json>) {
    let mut set = selection;
    let mut at = 0;
    while at < path.len() {
        let Some(key) = path[at].as_str() else {
            at += 1;
            continue;
        };
        let Some(field) = field_at(set, key) else {
            return;
        };
        at += 1;
        if let Some(Derived::Flatten(steps)) = field.derived.as_deref() {
            let inner = steps.len().saturating_sub(1).min(path.len() - at);
            path.drain(at..at + inner);
        }
        set = &field.selection;
    }
}

/// The field selected under response key `key`, in fragments too.
fn field_at<'s>(set: &'s SelectionSet, key: &str) -> Option<&'s Field> {
    set.0.iter().find_map(|item| match item {
        Selection::Field(f) if f.key == key => Some(f),
        Selection::Field(_) => None,
        Selection::Fragment(fragment) => field_at(&fragment.selection, key),
    })
}

impl<'a> Projector<'a> {
    fn write_str(&mut self, s: &str) {
        write_json_string(&mut self.out, s.as_bytes());
    }

    /// A computed field's value, from the siblings fetched under `keys`.
    fn write_computed(&mut self, computed: &Computed, keys: &[Str], object: &Object) {
        use crate::planner::computed::{Input, Output};
        let inputs: SmallVec<[Input<'_>; 4]> = keys
            .iter()
            .map(
                |tree_key| match object.find(tree_key, 0).and_then(|at| object.value_at(at)) {
                    Some(Value::String(s)) => Input::Text(s.as_str()),
                    Some(Value::Number(n)) => n.as_f64().map_or(Input::Null, Input::Number),
                    Some(Value::Bool(b)) => Input::Bool(*b),
                    _ => Input::Null,
                },
            )
            .collect();
        match computed.eval(&inputs) {
            Output::Null => self.out.extend_from_slice(b"null"),
            Output::Text(text) => self.write_str(&text),
            Output::Int(n) => self.out.extend_from_slice(n.to_string().as_bytes()),
            Output::Float(n) => {
                let _ = serde_json::to_writer(&mut self.out, &n);
            }
        }
    }

    /// `"key":` for a response key: a GraphQL name (`[_A-Za-z][_0-9A-Za-z]*`), which
    /// never needs escaping.
    fn write_key(&mut self, key: &Name) {
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_str().as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    fn definition(&self, ty: &Type) -> Option<&'a ExtendedType> {
        self.schema.api.types.get(ty.inner_named_type())
    }

    /// CollectFields with each key's lookups done.
    fn entries(&self, fields: Vec<(&'a Name, Group<'a>)>) -> Collected<'a> {
        fields
            .into_iter()
            .enumerate()
            .map(|(at, (key, group))| Entry {
                key,
                tree_key: Str::new(key.as_str()),
                def: self.definition(&group[0].ty),
                computed_keys: match group[0].derived.as_deref() {
                    Some(Derived::Computed(c)) => c
                        .deps()
                        .iter()
                        .map(|(dep, _)| Str::new(&Computed::dep_key(key, dep)))
                        .collect(),
                    _ => Vec::new(),
                },
                group,
                // Until an object teaches otherwise: where a tree in the client's order
                // has it (an uncached selection is used for one object only).
                hint: Cell::new(at),
            })
            .collect()
    }

    fn path_json(&self) -> Json {
        Json::Array(
            self.path
                .iter()
                .map(|s| match s {
                    Seg::Key(k) => Json::String(k.to_string()),
                    Seg::Index(i) => Json::from(*i),
                })
                .collect(),
        )
    }

    /// CollectFields: group the selected fields by response key, in order, keeping
    /// those whose conditions hold and whose type condition the object satisfies.
    fn collect(&self, set: &'a SelectionSet, runtime_type: &str) -> Vec<(&'a Name, Group<'a>)> {
        let mut out: Vec<(&Name, Group)> = Vec::with_capacity(set.0.len());
        self.collect_into(set, runtime_type, &mut out);
        out
    }

    fn collect_into(
        &self,
        set: &'a SelectionSet,
        runtime_type: &str,
        out: &mut Vec<(&'a Name, Group<'a>)>,
    ) {
        for item in &set.0 {
            match item {
                Selection::Field(f) => {
                    if !f.conditions.included(self.variables) {
                        continue;
                    }
                    match out.iter_mut().find(|(k, _)| *k == &f.key) {
                        Some((_, group)) => group.push(f),
                        None => out.push((&f.key, smallvec![f])),
                    }
                }
                Selection::Fragment(frag) => {
                    if !frag.conditions.included(self.variables)
                        || (self.skip_deferred && frag.defer.is_some())
                    {
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

    fn seg_matches(seg: &Seg, json: &Json) -> bool {
        match seg {
            Seg::Key(k) => json.as_str() == Some(k.as_str()),
            Seg::Index(i) => json.as_u64() == Some(*i as u64),
        }
    }

    /// Whether an error already explains a null at the current path.
    fn covered(&self) -> bool {
        let path = &self.path;
        let by_error = self.errors.iter().any(|e| {
            e.get("path").and_then(Json::as_array).is_some_and(|p| {
                p.len() <= path.len() && p.iter().zip(path).all(|(a, b)| Self::seg_matches(b, a))
            })
        });
        by_error
            || self.failed.iter().any(|pattern| {
                pattern.len() <= path.len()
                    && pattern
                        .iter()
                        .zip(path)
                        .all(|(elem, seg)| match (elem, seg) {
                            (PathElem::Key(k), Seg::Key(s)) => k == *s,
                            (PathElem::List, Seg::Index(_)) => true,
                            _ => false,
                        })
            })
    }

    fn null_error(&mut self, message: String) {
        if !self.covered() {
            let path = self.path_json();
            self.errors.push(json!({
                "message": message,
                "path": path,
                "extensions": { "code": "NULL_VALUE_IN_NON_NULL_FIELD" },
            }));
        }
    }

    /// Write a completed value; a null in a non-null position becomes a [`Bubble`]
    /// that the nearest nullable position turns into `null`.
    fn complete(
        &mut self,
        value: Option<&Value>,
        ty: &'a Type,
        def: Option<&'a ExtendedType>,
        fields: &[&'a Field],
    ) -> Result<(), Bubble> {
        let start = self.out.len();
        match ty {
            Type::NonNullNamed(_) | Type::NonNullList(_) => {
                let wrote_null = self.complete_nullable(value, ty, def, fields)?;
                if wrote_null {
                    self.out.truncate(start);
                    let name = fields.first().map(|f| f.name.as_str()).unwrap_or("");
                    self.null_error(format!("Cannot return null for non-nullable field {name}"));
                    return Err(Bubble);
                }
                Ok(())
            }
            _ => {
                if self.complete_nullable(value, ty, def, fields).is_err() {
                    self.out.truncate(start);
                    self.out.extend_from_slice(b"null");
                }
                Ok(())
            }
        }
    }

    /// Write a value ignoring the outer non-null wrapper (the caller handles it);
    /// `Ok(true)` when it wrote `null`.
    fn complete_nullable(
        &mut self,
        value: Option<&Value>,
        ty: &'a Type,
        def: Option<&'a ExtendedType>,
        fields: &[&'a Field],
    ) -> Result<bool, Bubble> {
        match ty {
            Type::List(inner) | Type::NonNullList(inner) => match value {
                Some(Value::Array(items)) => {
                    self.out.push(b'[');
                    for (i, item) in items.iter().enumerate() {
                        if i > 0 {
                            self.out.push(b',');
                        }
                        self.path.push(Seg::Index(i));
                        let r = self.complete(Some(item), inner, def, fields);
                        self.path.pop();
                        r?;
                    }
                    self.out.push(b']');
                    Ok(false)
                }
                _ => {
                    self.out.extend_from_slice(b"null");
                    Ok(true)
                }
            },
            Type::Named(name) | Type::NonNullNamed(name) => match value {
                None | Some(Value::Null) => {
                    self.out.extend_from_slice(b"null");
                    Ok(true)
                }
                Some(v) => self.complete_named(v, name, def, fields),
            },
        }
    }

    fn complete_named(
        &mut self,
        value: &Value,
        type_name: &Name,
        def: Option<&'a ExtendedType>,
        fields: &[&'a Field],
    ) -> Result<bool, Bubble> {
        match def {
            Some(ExtendedType::Scalar(_)) => {
                value.write_json(&mut self.out);
                Ok(false)
            }
            Some(ExtendedType::Enum(e)) => match value.as_str() {
                Some(s) if e.values.contains_key(s) => {
                    self.write_str(s);
                    Ok(false)
                }
                _ => {
                    let path = self.path_json();
                    self.errors.push(json!({
                        "message": format!("Invalid value for enum {type_name}"),
                        "path": path,
                        "extensions": { "code": "INVALID_UPSTREAM_VALUE" },
                    }));
                    self.out.extend_from_slice(b"null");
                    Ok(true)
                }
            },
            Some(ExtendedType::Object(_) | ExtendedType::Interface(_) | ExtendedType::Union(_)) => {
                let Value::Object(object) = value else {
                    self.out.extend_from_slice(b"null");
                    return Ok(true);
                };
                let runtime = object.typename().unwrap_or(type_name.as_str());
                // A runtime type the API schema hides must not leak to the client.
                let Some((runtime, _)) = self.schema.api.types.get_key_value(runtime) else {
                    self.out.extend_from_slice(b"null");
                    return Ok(true);
                };
                self.complete_object(object, runtime, fields)?;
                Ok(false)
            }
            _ => {
                self.out.extend_from_slice(b"null");
                Ok(true)
            }
        }
    }

    /// CollectFields for one field's selection on one runtime type, computed once per
    /// response: lists of objects repeat the same selection many times.
    fn collected(&mut self, field: &'a Field, runtime: &'a Name) -> Collected<'a> {
        let key = (
            std::ptr::from_ref(&field.selection) as usize,
            runtime.as_str().as_ptr() as usize,
        );
        if let Some((_, collected)) = self.memo.iter().find(|(k, _)| *k == key) {
            return collected.clone();
        }
        let collected = self.entries(self.collect(&field.selection, runtime));
        if self.memo.len() < MEMO_ENTRIES {
            self.memo.push((key, collected.clone()));
        }
        collected
    }

    fn complete_object(
        &mut self,
        object: &Object,
        runtime: &'a Name,
        fields: &[&'a Field],
    ) -> Result<(), Bubble> {
        let collected = match fields {
            [field] => self.collected(field, runtime),
            // Several fields under one key (from different fragments) select the union
            // of their selections: collected one after the other into one list.
            _ => {
                let mut all = Vec::new();
                for field in fields {
                    self.collect_into(&field.selection, runtime, &mut all);
                }
                self.entries(all)
            }
        };
        self.write_object(object, runtime, &collected)
    }

    fn write_object(
        &mut self,
        object: &Object,
        runtime: &'a Name,
        collected: &Collected<'a>,
    ) -> Result<(), Bubble> {
        self.out.push(b'{');
        for (i, entry) in collected.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            self.write_key(entry.key);
            let field = entry.group[0];
            if field.name == "__typename" {
                let name = self.type_names.and_then(|n| n.get(runtime));
                self.write_str(name.unwrap_or(runtime));
                continue;
            }
            if let Some(Derived::Computed(computed)) = field.derived.as_deref() {
                self.write_computed(computed, &entry.computed_keys, object);
                continue;
            }
            let mut value = object
                .find(&entry.tree_key, entry.hint.get())
                .and_then(|at| {
                    entry.hint.set(at);
                    object.value_at(at)
                });
            // A flattened field was fetched nested under its key: walk down to the end.
            if let Some(Derived::Flatten(path)) = field.derived.as_deref() {
                value = path
                    .iter()
                    .skip(1)
                    .fold(value, |v, step| v?.get(&step.name));
            }
            self.path.push(Seg::Key(entry.key));
            let r = self.complete(value, &field.ty, entry.def, &entry.group);
            self.path.pop();
            r?;
        }
        self.out.push(b'}');
        Ok(())
    }
}

/// One deferred fragment's payloads: for every object at the fragment's path (each
/// list element, in order) that the fragment applies to, its concrete path and the
/// fragment's fields as JSON text. Nested deferred fragments are left out.
pub fn project_deferred<'a>(
    schema: &'a SchemaSnapshot,
    site: &'a DeferSite,
    data: &Value,
    variables: &'a Map<String, Json>,
    errors: &'a mut Vec<Json>,
    failed: &'a [Vec<PathElem>],
    type_names: Option<&'a std::collections::HashMap<Name, Name>>,
) -> Vec<(Json, Vec<u8>)> {
    let mut p = Projector {
        schema,
        variables,
        errors,
        failed,
        path: Vec::new(),
        memo: Vec::new(),
        out: Vec::new(),
        skip_deferred: true,
        type_names,
    };
    let mut out = Vec::new();
    p.deferred_at(site, &site.path, data, &mut out);
    out
}

impl<'a> Projector<'a> {
    fn deferred_at(
        &mut self,
        site: &'a DeferSite,
        rest: &'a [PathElem],
        value: &Value,
        out: &mut Vec<(Json, Vec<u8>)>,
    ) {
        match (rest.split_first(), value) {
            (None, Value::Object(object)) => {
                let runtime = object.typename().unwrap_or(site.parent_type.as_str());
                let Some((runtime, _)) = self.schema.api.types.get_key_value(runtime) else {
                    return;
                };
                let collected = self.entries(self.collect(&site.selection, runtime));
                if collected.is_empty() {
                    return;
                }
                self.out.clear();
                if self.write_object(object, runtime, &collected).is_err() {
                    self.out.clear();
                    self.out.extend_from_slice(b"null");
                }
                out.push((self.path_json(), std::mem::take(&mut self.out)));
            }
            (Some((PathElem::Key(key), rest)), Value::Object(object)) => {
                if let Some(child) = object.get(key.as_str()) {
                    self.path.push(Seg::Key(key));
                    self.deferred_at(site, rest, child, out);
                    self.path.pop();
                }
            }
            (Some((PathElem::List, rest)), Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    self.path.push(Seg::Index(i));
                    self.deferred_at(site, rest, item, out);
                    self.path.pop();
                }
            }
            // A null parent (or one that failed): nothing to deliver there.
            _ => {}
        }
    }
}
