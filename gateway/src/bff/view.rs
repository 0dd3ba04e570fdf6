//! A BFF's view of the API schema: the same types minus what the view hides, so
//! validation and introspection on that BFF see only its part of the graph.

use std::collections::{HashSet, VecDeque};

use apollo_compiler::ast::DirectiveList as AstDirectives;
use apollo_compiler::schema::{DirectiveList, ExtendedType};
use apollo_compiler::validation::Valid;
use apollo_compiler::{Name, Schema};

use super::config::ViewConfig;

fn tags_ast(d: &AstDirectives) -> impl Iterator<Item = &str> {
    d.iter().filter(|d| d.name == "tag").filter_map(|d| {
        d.specified_argument_by_name("name")
            .and_then(|v| v.as_str())
    })
}

fn tags(d: &DirectiveList) -> impl Iterator<Item = &str> {
    d.iter().filter(|d| d.name == "tag").filter_map(|d| {
        d.specified_argument_by_name("name")
            .and_then(|v| v.as_str())
    })
}

/// Tags on a type, and on `Type.field`, in the supergraph (the API schema has none).
struct Tags<'a>(&'a Schema);

impl Tags<'_> {
    fn of_type(&self, ty: &str) -> Vec<&str> {
        self.0
            .types
            .get(ty)
            .map(|t| tags(t.directives()).collect())
            .unwrap_or_default()
    }

    fn of_field(&self, ty: &str, field: &str) -> Vec<&str> {
        match self.0.types.get(ty) {
            Some(ExtendedType::Object(o)) => o
                .fields
                .get(field)
                .map(|f| tags_ast(&f.directives).collect()),
            Some(ExtendedType::Interface(i)) => i
                .fields
                .get(field)
                .map(|f| tags_ast(&f.directives).collect()),
            Some(ExtendedType::InputObject(i)) => i
                .fields
                .get(field)
                .map(|f| tags_ast(&f.directives).collect()),
            Some(ExtendedType::Enum(e)) => e
                .values
                .get(field)
                .map(|v| tags_ast(&v.directives).collect()),
            _ => None,
        }
        .unwrap_or_default()
    }

    fn of_argument(&self, ty: &str, field: &str, arg: &str) -> Vec<&str> {
        let def = match self.0.types.get(ty) {
            Some(ExtendedType::Object(o)) => o.fields.get(field).map(|f| &f.arguments),
            Some(ExtendedType::Interface(i)) => i.fields.get(field).map(|f| &f.arguments),
            _ => None,
        };
        def.and_then(|args| args.iter().find(|a| a.name == arg))
            .map(|a| tags_ast(&a.directives).collect())
            .unwrap_or_default()
    }
}

/// Build the view. Errors name the offending entry of the view config.
pub fn view_schema(
    api: &Valid<Schema>,
    supergraph: &Schema,
    view: &ViewConfig,
) -> Result<Valid<Schema>, String> {
    let tags = Tags(supergraph);
    let excluded = |t: &[&str]| t.iter().any(|t| view.exclude_tags.iter().any(|e| e == t));
    let mut schema = api.clone().into_inner();
    let roots: Vec<Name> = [
        schema.schema_definition.query.clone(),
        schema.schema_definition.mutation.clone(),
        schema.schema_definition.subscription.clone(),
    ]
    .into_iter()
    .flatten()
    .map(|c| c.name)
    .collect();

    // Explicitly hidden types and fields must exist: a typo would silently expose.
    let mut hidden_types: HashSet<Name> = HashSet::new();
    let mut hidden_fields: HashSet<(String, String)> = HashSet::new();
    for entry in &view.hide {
        match entry.split_once('.') {
            None => {
                let name = schema
                    .types
                    .get_key_value(entry.as_str())
                    .map(|(n, _)| n.clone())
                    .ok_or_else(|| format!("view.hide: unknown type `{entry}`"))?;
                hidden_types.insert(name);
            }
            Some((ty, field)) => {
                if schema.type_field(ty, field).is_err() {
                    return Err(format!("view.hide: unknown field `{entry}`"));
                }
                hidden_fields.insert((ty.to_string(), field.to_string()));
            }
        }
    }
    let allowed_roots: Option<HashSet<(String, String)>> = match &view.root_fields {
        None => None,
        Some(list) => {
            let mut set = HashSet::new();
            for entry in list {
                let (ty, field) = entry.split_once('.').ok_or_else(|| {
                    format!("view.root_fields: `{entry}` must be `Query.field` (or Mutation.)")
                })?;
                if !roots.iter().any(|r| r == ty) || schema.type_field(ty, field).is_err() {
                    return Err(format!("view.root_fields: unknown root field `{entry}`"));
                }
                set.insert((ty.to_string(), field.to_string()));
            }
            Some(set)
        }
    };
    for name in schema.types.keys() {
        if excluded(&tags.of_type(name)) {
            hidden_types.insert(name.clone());
        }
    }

    // Fields: explicit hides, excluded tags, root-field selection.
    for (type_name, ty) in schema.types.iter_mut() {
        let is_root = roots.contains(type_name);
        let keep = |field: &str| {
            let key = (type_name.to_string(), field.to_string());
            if hidden_fields.contains(&key) || excluded(&tags.of_field(type_name, field)) {
                return false;
            }
            if is_root {
                if let Some(allowed) = &allowed_roots
                    && !allowed.contains(&key)
                {
                    return false;
                }
                if !view.include_tags.is_empty()
                    && !tags
                        .of_field(type_name, field)
                        .iter()
                        .any(|t| view.include_tags.iter().any(|i| i == t))
                {
                    return false;
                }
            }
            true
        };
        match ty {
            ExtendedType::Object(o) => o.make_mut().fields.retain(|f, _| keep(f)),
            ExtendedType::Interface(i) => i.make_mut().fields.retain(|f, _| keep(f)),
            ExtendedType::InputObject(i) => i.make_mut().fields.retain(|f, _| keep(f)),
            ExtendedType::Enum(e) => e.make_mut().values.retain(|v, _| keep(v)),
            _ => {}
        }
    }

    // Remove what refers to hidden types, until nothing changes.
    loop {
        let before = hidden_types.len();
        for (type_name, ty) in schema.types.iter_mut() {
            if hidden_types.contains(type_name) {
                continue;
            }
            let mut empty = false;
            match ty {
                ExtendedType::Object(o) => {
                    let o = o.make_mut();
                    empty = strip_fields(
                        &tags,
                        &excluded,
                        &hidden_types,
                        type_name,
                        &mut o.fields,
                        &mut o.implements_interfaces,
                    )?;
                }
                ExtendedType::Interface(i) => {
                    let i = i.make_mut();
                    empty = strip_fields(
                        &tags,
                        &excluded,
                        &hidden_types,
                        type_name,
                        &mut i.fields,
                        &mut i.implements_interfaces,
                    )?;
                }
                ExtendedType::Union(u) => {
                    let u = u.make_mut();
                    u.members.retain(|m| !hidden_types.contains(&m.name));
                    empty = u.members.is_empty();
                }
                ExtendedType::InputObject(io) => {
                    let io = io.make_mut();
                    for (fname, f) in &io.fields {
                        if hidden_types.contains(f.ty.inner_named_type())
                            && f.ty.is_non_null()
                            && f.default_value.is_none()
                        {
                            return Err(format!(
                                "the view hides `{}` but the required input field `{type_name}.{fname}` uses it",
                                f.ty.inner_named_type()
                            ));
                        }
                    }
                    io.fields
                        .retain(|_, f| !hidden_types.contains(f.ty.inner_named_type()));
                    empty = io.fields.is_empty();
                }
                ExtendedType::Enum(e) => empty = e.values.is_empty(),
                ExtendedType::Scalar(_) => {}
            }
            if empty && !roots.contains(type_name) {
                hidden_types.insert(type_name.clone());
            }
        }
        if hidden_types.len() == before {
            break;
        }
    }
    schema.types.retain(|name, _| !hidden_types.contains(name));

    // Root types left without fields disappear from the schema definition.
    let def = schema.schema_definition.make_mut();
    for root in [&mut def.mutation, &mut def.subscription] {
        if let Some(name) = root.as_ref().map(|c| c.name.clone()) {
            let empty = match schema.types.get(&name) {
                Some(ExtendedType::Object(o)) => o.fields.is_empty(),
                _ => true,
            };
            if empty {
                *root = None;
                schema.types.shift_remove(&name);
            }
        }
    }
    let query_has_fields = schema
        .schema_definition
        .query
        .as_ref()
        .and_then(|q| schema.get_object(&q.name))
        .is_some_and(|o| !o.fields.is_empty());
    if !query_has_fields {
        return Err("the view exposes no Query field".into());
    }
    remove_unreachable(&mut schema);
    schema
        .validate()
        .map_err(|e| format!("the view's schema is invalid: {}", e.errors))
}

/// Drop the fields (and arguments, and implemented interfaces) of an object or
/// interface that refer to hidden types; true when no field is left.
fn strip_fields(
    tags: &Tags<'_>,
    excluded: &impl Fn(&[&str]) -> bool,
    hidden: &HashSet<Name>,
    type_name: &str,
    fields: &mut apollo_compiler::collections::IndexMap<
        Name,
        apollo_compiler::schema::Component<apollo_compiler::ast::FieldDefinition>,
    >,
    implements: &mut apollo_compiler::collections::IndexSet<apollo_compiler::schema::ComponentName>,
) -> Result<bool, String> {
    fields.retain(|_, f| !hidden.contains(f.ty.inner_named_type()));
    implements.retain(|i| !hidden.contains(&i.name));
    for (name, f) in fields.iter_mut() {
        strip_arguments(tags, excluded, hidden, type_name, name, f.make_mut())?;
    }
    Ok(fields.is_empty())
}

fn strip_arguments(
    tags: &Tags<'_>,
    excluded: &impl Fn(&[&str]) -> bool,
    hidden: &HashSet<Name>,
    type_name: &str,
    field: &str,
    def: &mut apollo_compiler::ast::FieldDefinition,
) -> Result<(), String> {
    for a in &def.arguments {
        let gone = hidden.contains(a.ty.inner_named_type())
            || excluded(&tags.of_argument(type_name, field, &a.name));
        if gone && a.ty.is_non_null() && a.default_value.is_none() {
            return Err(format!(
                "the view hides the required argument `{type_name}.{field}({}:)`; hide the field instead",
                a.name
            ));
        }
    }
    def.arguments.retain(|a| {
        !hidden.contains(a.ty.inner_named_type())
            && !excluded(&tags.of_argument(type_name, field, &a.name))
    });
    Ok(())
}

/// Drop types that no root reaches any more (through fields, arguments, input
/// fields, union members and interface implementations).
fn remove_unreachable(schema: &mut Schema) {
    let mut seen: HashSet<Name> = HashSet::new();
    let mut queue: VecDeque<Name> = VecDeque::new();
    let def = &schema.schema_definition;
    for root in [&def.query, &def.mutation, &def.subscription]
        .into_iter()
        .flatten()
    {
        queue.push_back(root.name.clone());
    }
    let implementers = schema.implementers_map();
    while let Some(name) = queue.pop_front() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let mut next: Vec<Name> = Vec::new();
        match schema.types.get(&name) {
            Some(ExtendedType::Object(o)) => {
                next.extend(o.implements_interfaces.iter().map(|i| i.name.clone()));
                for f in o.fields.values() {
                    next.push(f.ty.inner_named_type().clone());
                    next.extend(f.arguments.iter().map(|a| a.ty.inner_named_type().clone()));
                }
            }
            Some(ExtendedType::Interface(i)) => {
                next.extend(i.implements_interfaces.iter().map(|n| n.name.clone()));
                for f in i.fields.values() {
                    next.push(f.ty.inner_named_type().clone());
                    next.extend(f.arguments.iter().map(|a| a.ty.inner_named_type().clone()));
                }
                if let Some(imp) = implementers.get(&name) {
                    next.extend(imp.iter().cloned());
                }
            }
            Some(ExtendedType::Union(u)) => next.extend(u.members.iter().map(|m| m.name.clone())),
            Some(ExtendedType::InputObject(io)) => {
                next.extend(io.fields.values().map(|f| f.ty.inner_named_type().clone()))
            }
            _ => {}
        }
        queue.extend(next);
    }
    schema
        .types
        .retain(|name, ty| seen.contains(name) || ty.is_built_in() || name.starts_with("__"));
}
