//! The merged response tree: walking it along plan paths (`users.@.reviews.@`),
//! reading entity representations out of it and writing entity results back.

use rustc_hash::FxHashMap;
use serde_json::Value as Json;

use crate::planner::PathElem;
use crate::planner::plan::EntityPart;
use crate::schema::fieldset::{FieldSet, FieldSetItem, response_key};
use crate::sources::value::{Object, Str, Value, write_json_string};

/// A plan path (`users.@.reviews.@`) ready for walking the tree: keys as tree strings,
/// and per key where it was found last, looked at first (objects in a list share
/// their shape, so the hint nearly always hits).
struct Walk {
    steps: Vec<Step>,
}

enum Step {
    Key(Str, usize),
    List,
}

impl Walk {
    fn new(path: &[PathElem]) -> Self {
        let steps = path
            .iter()
            .map(|elem| match elem {
                PathElem::Key(k) => Step::Key(Str::new(k.as_str()), 0),
                PathElem::List => Step::List,
            })
            .collect();
        Walk { steps }
    }

    /// Visit every object at the path, in a stable order.
    fn visit<'a>(&mut self, value: &'a Value, f: &mut impl FnMut(&'a Object)) {
        fn go<'a>(value: &'a Value, steps: &mut [Step], f: &mut impl FnMut(&'a Object)) {
            match (steps.split_first_mut(), value) {
                (None, Value::Object(map)) => f(map),
                (None, _) => {}
                (Some((Step::Key(k, hint), rest)), Value::Object(map)) => {
                    if let Some(i) = map.find(k, *hint) {
                        *hint = i;
                        if let Some(v) = map.value_at(i) {
                            go(v, rest, f);
                        }
                    }
                }
                (Some((Step::List, rest)), Value::Array(items)) => {
                    for item in items {
                        go(item, rest, f);
                    }
                }
                _ => {}
            }
        }
        go(value, &mut self.steps, f)
    }

    /// [`Walk::visit`], with each object writable.
    fn visit_mut(&mut self, value: &mut Value, f: &mut impl FnMut(&mut Object)) {
        fn go(value: &mut Value, steps: &mut [Step], f: &mut impl FnMut(&mut Object)) {
            match (steps.split_first_mut(), value) {
                (None, Value::Object(map)) => f(map),
                (None, _) => {}
                (Some((Step::Key(k, hint), rest)), Value::Object(map)) => {
                    if let Some(i) = map.find(k, *hint) {
                        *hint = i;
                        if let Some(v) = map.value_at_mut(i) {
                            go(v, rest, f);
                        }
                    }
                }
                (Some((Step::List, rest)), Value::Array(items)) => {
                    for item in items {
                        go(item, rest, f);
                    }
                }
                _ => {}
            }
        }
        go(value, &mut self.steps, f)
    }
}

/// For each path of a part, for each object visited there, the index of its
/// representation (`None`: not an entity of this fetch).
pub type Slots = Vec<Vec<Option<usize>>>;

/// Write the representations of the entities at the part's paths, de-duplicated, as a
/// JSON list into `out`; returns how many there are.
pub fn representations(data: &Value, part: &EntityPart, out: &mut Vec<u8>) -> (usize, Slots) {
    // Each representation is first written as JSON text, its identity: only the first
    // of equal ones goes into the list.
    let mut seen: FxHashMap<Vec<u8>, usize> = FxHashMap::default();
    let mut text = Vec::with_capacity(128);
    let mut all_slots = Vec::with_capacity(part.paths.len());
    for path in &part.paths {
        let mut slots = Vec::new();
        Walk::new(path).visit(data, &mut |object| {
            // An object whose type the subgraph only knows through an interface is
            // sent as that interface.
            let typename = object.typename().map(|t| {
                part.typename_rewrites
                    .iter()
                    .find(|(from, _)| from == t)
                    .map_or(t, |(_, to)| to.as_str())
            });
            let found = match typename {
                Some(t) => part.representation.iter().find(|(ty, _)| ty == t),
                None if part.representation.len() == 1 => part.representation.first(),
                None => None,
            };
            let Some((typename, fields)) = found else {
                slots.push(None);
                return;
            };
            // No entity can be found by a null key: leave the object as it is.
            let null_key = part
                .keys
                .iter()
                .filter(|(t, _)| t == typename)
                .any(|(_, key)| {
                    key.field_names()
                        .any(|k| object.get(k).is_none_or(Value::is_null))
                });
            if null_key {
                slots.push(None);
                return;
            }
            text.clear();
            text.extend_from_slice(b"{\"__typename\":");
            write_json_string(&mut text, typename.as_bytes());
            if !write_fields(object, fields, typename, &mut text) {
                // Key fields missing (for example the parent was nulled): skip it.
                slots.push(None);
                return;
            }
            text.push(b'}');
            let index = match seen.get(text.as_slice()) {
                Some(index) => *index,
                None => {
                    let index = seen.len();
                    out.push(if index == 0 { b'[' } else { b',' });
                    out.extend_from_slice(&text);
                    seen.insert(text.clone(), index);
                    index
                }
            };
            slots.push(Some(index));
        });
        all_slots.push(slots);
    }
    if seen.is_empty() {
        out.push(b'[');
    }
    out.push(b']');
    (seen.len(), all_slots)
}

/// Append `,"field":value` for each of the field set's fields in `object`; false when a
/// field is missing.
fn write_fields(object: &Object, fields: &FieldSet, typename: &str, out: &mut Vec<u8>) -> bool {
    for item in &fields.0 {
        match item {
            FieldSetItem::Field {
                name,
                arguments,
                children,
            } => {
                // A field with arguments was fetched under a derived alias.
                let value = if arguments.is_empty() {
                    object.get(name)
                } else {
                    object.get(&response_key(name, arguments))
                };
                let Some(value) = value else {
                    return false;
                };
                out.push(b',');
                write_json_string(out, name.as_bytes());
                out.push(b':');
                if children.is_empty() {
                    value.write_json(out);
                } else {
                    write_projected(value, children, out);
                }
            }
            FieldSetItem::Fragment {
                type_condition,
                children,
            } => {
                if type_condition == typename && !write_fields(object, children, typename, out) {
                    return false;
                }
            }
        }
    }
    true
}

/// A nested key value: only the field set's fields of its objects.
fn write_projected(value: &Value, fields: &FieldSet, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let typename = map.typename().unwrap_or("");
            let start = out.len();
            out.push(b'{');
            write_fields(map, fields, typename, out);
            // `write_fields` starts each field with a comma; the first one goes.
            if out.get(start + 1) == Some(&b',') {
                out.remove(start + 1);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_projected(item, fields, out);
            }
            out.push(b']');
        }
        other => other.write_json(out),
    }
}

/// Write each entity result into every object that asked for it.
pub fn merge_entities(
    data: &mut Value,
    paths: &[Vec<PathElem>],
    slots: &Slots,
    entities: &[Value],
    aliased: bool,
) {
    for (path, path_slots) in paths.iter().zip(slots) {
        let mut ordinal = 0;
        Walk::new(path).visit_mut(data, &mut |object| {
            let slot = path_slots.get(ordinal).copied().flatten();
            ordinal += 1;
            if let Some(Value::Object(fields)) = slot.and_then(|i| entities.get(i)) {
                merge_map(object, fields, aliased);
            }
        });
    }
}

/// The client path of the first object that used representation `index`.
pub fn entity_path(
    data: &Value,
    paths: &[Vec<PathElem>],
    slots: &Slots,
    index: Option<usize>,
) -> Option<Vec<Json>> {
    for (path, path_slots) in paths.iter().zip(slots) {
        let ordinal = match index {
            Some(i) => path_slots.iter().position(|s| *s == Some(i)),
            None => path_slots.iter().position(Option::is_some),
        };
        if let Some(ordinal) = ordinal {
            return concrete_path(data, path, ordinal);
        }
    }
    None
}

/// The concrete path (`["users", 0, "reviews", 2]`) of the `ordinal`-th object at `path`.
pub fn concrete_path(data: &Value, path: &[PathElem], ordinal: usize) -> Option<Vec<Json>> {
    fn walk(
        value: &Value,
        path: &[PathElem],
        current: &mut Vec<Json>,
        counter: &mut usize,
        target: usize,
    ) -> bool {
        match (path.first(), value) {
            (None, Value::Object(_)) => {
                if *counter == target {
                    return true;
                }
                *counter += 1;
                false
            }
            (Some(PathElem::Key(k)), Value::Object(map)) => match map.get(k.as_str()) {
                Some(v) => {
                    current.push(Json::String(k.to_string()));
                    if walk(v, &path[1..], current, counter, target) {
                        return true;
                    }
                    current.pop();
                    false
                }
                None => false,
            },
            (Some(PathElem::List), Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    current.push(Json::from(i));
                    if walk(item, &path[1..], current, counter, target) {
                        return true;
                    }
                    current.pop();
                }
                false
            }
            _ => false,
        }
    }
    let mut current = Vec::new();
    let mut counter = 0;
    walk(data, path, &mut current, &mut counter, ordinal).then_some(current)
}

/// Merge `src` into `dst`: objects field by field, lists element by element.
/// `aliased`: the subgraph query used planner aliases (`id__gwa3`) that must be
/// mapped back to response keys; when it did not, keys are taken as they are.
pub fn deep_merge(dst: &mut Value, src: &Value, aliased: bool) {
    match (dst, src) {
        (Value::Object(d), Value::Object(s)) => merge_map(d, s, aliased),
        (Value::Array(d), Value::Array(s)) if d.len() == s.len() => {
            for (d, s) in d.iter_mut().zip(s) {
                deep_merge(d, s, aliased);
            }
        }
        (d, s) => {
            if !s.is_null() || !d.is_object() {
                *d = s.clone();
                if aliased {
                    strip_aliases(d);
                }
            }
        }
    }
}

/// A key the planner aliased to avoid a field conflict (`id__gwa3`), back to its
/// response key (`id`).
fn unalias(key: &Str) -> Str {
    let text = key.as_str();
    if let Some(i) = text.rfind(crate::planner::ALIAS_MARK) {
        let digits = &text[i + crate::planner::ALIAS_MARK.len()..];
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            return Str::new(&text[..i]);
        }
    }
    key.clone()
}

/// Un-alias every planner alias in a value that is inserted as a whole.
fn strip_aliases(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map
                .keys()
                .any(|k| k.as_str().contains(crate::planner::ALIAS_MARK))
            {
                let old = std::mem::take(map);
                map.merge_from(&old, unalias, |d, s| deep_merge(d, s, true), |_| {});
            }
            map.values_mut().for_each(strip_aliases);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_aliases),
        _ => {}
    }
}

fn merge_map(dst: &mut Object, src: &Object, aliased: bool) {
    if aliased {
        dst.merge_from(src, unalias, |d, s| deep_merge(d, s, true), strip_aliases);
    } else {
        dst.merge_from(src, Str::clone, |d, s| deep_merge(d, s, false), |_| {});
    }
}
