//! A source's SDL with its field mappings and call bindings, built once at start-up.

use std::collections::HashMap;
use std::sync::Arc;

use apollo_compiler::Name;
use apollo_compiler::Node;
use apollo_compiler::Schema;
use apollo_compiler::ast;
use apollo_compiler::ast::Value as AstValue;
use apollo_compiler::schema::{ExtendedType, FieldDefinition};

use crate::sources::mapping::FieldMap;

use super::binding::{Binding, Bound, Site, StreamConnector};

/// A source's SDL with its field mappings and bindings, built once at start-up.
pub struct LocalSchema {
    pub subgraph: Arc<str>,
    pub sdl: String,
    pub schema: Schema,
    pub(super) query_type: Name,
    pub(super) mutation_type: Name,
    pub(super) subscription_type: Name,
    pub(super) maps: HashMap<(Name, Name), FieldMap>,
    pub(super) bindings: HashMap<(Name, Name), Arc<Binding>>,
    pub(super) entity_bindings: HashMap<Name, Arc<Binding>>,
    /// Subscription fields, by name.
    pub(super) streams: HashMap<Name, Arc<dyn StreamConnector>>,
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
        mut make: impl FnMut(&Site<'_>, &ast::Directive) -> Result<Bound, Vec<String>>,
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
        let subscription_type = schema
            .schema_definition
            .subscription
            .as_ref()
            .map(|n| n.name.clone())
            .unwrap_or_else(|| Name::new_static_unchecked("Subscription"));
        let mut errors = Vec::new();
        let mut maps = HashMap::new();
        let mut bindings = HashMap::new();
        let mut entity_bindings = HashMap::new();
        let mut streams = HashMap::new();
        for (type_name, ty) in &schema.types {
            let ExtendedType::Object(object) = ty else {
                continue;
            };
            if ty.is_built_in() || type_name.starts_with('_') {
                continue;
            }
            let is_subscription = *type_name == subscription_type;
            let is_root =
                *type_name == query_type || *type_name == mutation_type || is_subscription;
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
                    is_subscription: false,
                    representation_fields: keys.clone(),
                    coordinate: coordinate.clone(),
                };
                match make(&site, d) {
                    Ok(Bound::Call(b)) => {
                        entity_bindings.insert(type_name.clone(), Arc::new(b));
                    }
                    Ok(Bound::Stream(_)) => {
                        errors.push(format!("{coordinate}: a type cannot be bound to a stream"))
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
                    is_subscription,
                    representation_fields,
                    coordinate: coordinate.clone(),
                };
                match make(&site, d) {
                    Ok(Bound::Call(_)) if is_subscription => errors.push(format!(
                        "{coordinate} @{directive}: a subscription field needs a streaming call"
                    )),
                    Ok(Bound::Call(b)) => {
                        bindings.insert((type_name.clone(), field_name.clone()), Arc::new(b));
                    }
                    Ok(Bound::Stream(s)) if is_subscription => {
                        streams.insert(field_name.clone(), Arc::from(s));
                    }
                    Ok(Bound::Stream(_)) => errors.push(format!(
                        "{coordinate} @{directive}: only subscription fields stream"
                    )),
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
            subscription_type,
            maps,
            bindings,
            entity_bindings,
            streams,
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

    pub(super) fn field_def(&self, type_name: &str, field: &str) -> Option<&Node<FieldDefinition>> {
        match self.schema.types.get(type_name)? {
            ExtendedType::Object(o) => o.fields.get(field).map(|c| &c.node),
            ExtendedType::Interface(i) => i.fields.get(field).map(|c| &c.node),
            _ => None,
        }
    }

    pub(super) fn binding(&self, type_name: &str, field: &str) -> Option<&Arc<Binding>> {
        self.bindings
            .get(&(Name::new(type_name).ok()?, Name::new(field).ok()?))
    }

    pub(super) fn field_map(&self, type_name: &Name, field: &Name) -> Option<&FieldMap> {
        self.maps.get(&(type_name.clone(), field.clone()))
    }

    /// Whether `object` is `condition` or implements / belongs to it.
    pub(super) fn applies(&self, condition: &str, object: &str) -> bool {
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
pub(super) fn key_fields<'a>(
    directives: impl IntoIterator<Item = &'a ast::Directive>,
) -> Vec<String> {
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
