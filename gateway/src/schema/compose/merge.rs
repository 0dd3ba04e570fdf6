//! Merging the subgraphs' types into the supergraph's: kinds, fields with their join
//! data, `@override`, `@interfaceObject` fields, and the type rules (output types widen,
//! input types narrow).

use std::collections::{HashMap, HashSet};

use apollo_compiler::Node;
use apollo_compiler::ast::{self, Type};
use indexmap::{IndexMap, IndexSet};

use super::errors::{CompositionError, error};
use super::subgraph::Subgraph;
use super::subgraph::{Applied, SubField, SubInputValue, SubType, TypeKind};

#[derive(Debug, Clone)]
pub(super) struct JoinType {
    pub(super) graph: usize,
    pub(super) key: Option<String>,
    pub(super) extension: bool,
    pub(super) resolvable: bool,
    pub(super) interface_object: bool,
}

/// One `@join__field`; `graph: None` marks a field added to an implementation because an
/// `@interfaceObject` provides it (no subgraph knows it on the concrete type).
#[derive(Debug, Clone, Default)]
pub(super) struct JoinField {
    pub(super) graph: Option<usize>,
    pub(super) requires: Option<String>,
    pub(super) provides: Option<String>,
    pub(super) ty: Option<String>,
    pub(super) external: bool,
    pub(super) override_from: Option<String>,
    pub(super) used_overridden: bool,
}

#[derive(Debug, Clone)]
pub(super) struct MInputValue {
    pub(super) description: Option<String>,
    pub(super) ty: Type,
    pub(super) default: Option<Node<ast::Value>>,
    pub(super) applied: Applied,
    pub(super) join_fields: Option<Vec<JoinField>>,
}

#[derive(Debug, Clone)]
pub(super) struct MField {
    pub(super) description: Option<String>,
    pub(super) ty: Type,
    pub(super) args: IndexMap<String, MInputValue>,
    pub(super) join_fields: Option<Vec<JoinField>>,
    pub(super) applied: Applied,
    pub(super) from_interface_object: bool,
}

#[derive(Debug, Clone)]
pub(super) struct MEnumValue {
    pub(super) description: Option<String>,
    pub(super) graphs: Vec<usize>,
    pub(super) applied: Applied,
}

#[derive(Debug, Clone)]
pub(super) struct MType {
    pub(super) kind: TypeKind,
    pub(super) description: Option<String>,
    pub(super) join_types: Vec<JoinType>,
    pub(super) implements: IndexMap<String, Vec<usize>>,
    pub(super) fields: IndexMap<String, MField>,
    pub(super) input_fields: IndexMap<String, MInputValue>,
    pub(super) members: IndexMap<String, Vec<usize>>,
    pub(super) values: IndexMap<String, MEnumValue>,
    pub(super) applied: Applied,
}

/// Whether arguments/input fields are being merged (only changes error codes and wording).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum InputPosition {
    Argument,
    InputField,
}

pub(super) struct Merger<'a> {
    pub(super) subgraphs: &'a [Subgraph],
    pub(super) errors: Vec<CompositionError>,
    /// Object/interface name -> interfaces and unions it belongs to in some subgraph.
    pub(super) supertypes: HashMap<String, HashSet<String>>,
    pub(super) enum_input_usage: HashMap<String, String>,
    pub(super) enum_output_usage: HashMap<String, String>,
}

impl<'a> Merger<'a> {
    pub(super) fn new(subgraphs: &'a [Subgraph]) -> Self {
        let mut supertypes: HashMap<String, HashSet<String>> = HashMap::new();
        let mut enum_input_usage = HashMap::new();
        let mut enum_output_usage = HashMap::new();
        for subgraph in subgraphs {
            for (name, ty) in &subgraph.types {
                for interface in &ty.implements {
                    supertypes
                        .entry(name.clone())
                        .or_default()
                        .insert(interface.clone());
                }
                for member in &ty.members {
                    supertypes
                        .entry(member.clone())
                        .or_default()
                        .insert(name.clone());
                }
                for (field_name, field) in &ty.fields {
                    enum_output_usage
                        .entry(field.ty.inner_named_type().to_string())
                        .or_insert_with(|| format!("{name}.{field_name}"));
                    for (arg_name, arg) in &field.args {
                        enum_input_usage
                            .entry(arg.ty.inner_named_type().to_string())
                            .or_insert_with(|| format!("{name}.{field_name}({arg_name}:)"));
                    }
                }
                for (field_name, field) in &ty.input_fields {
                    enum_input_usage
                        .entry(field.ty.inner_named_type().to_string())
                        .or_insert_with(|| format!("{name}.{field_name}"));
                }
            }
        }
        // Interfaces implementing interfaces: close the relation transitively.
        loop {
            let mut changed = false;
            let snapshot = supertypes.clone();
            for supers in supertypes.values_mut() {
                for parent in supers.clone() {
                    if let Some(grand) = snapshot.get(&parent) {
                        for g in grand {
                            changed |= supers.insert(g.clone());
                        }
                    }
                }
            }
            if !changed {
                break;
            }
        }
        Merger {
            subgraphs,
            errors: Vec::new(),
            supertypes,
            enum_input_usage,
            enum_output_usage,
        }
    }

    pub(super) fn err(
        &mut self,
        subgraph: Option<usize>,
        coordinate: impl Into<String>,
        code: &'static str,
        message: String,
    ) {
        let subgraph = subgraph.map(|i| self.subgraphs[i].name.as_str());
        self.errors
            .push(error(subgraph, Some(coordinate.into()), code, message));
    }

    pub(super) fn name(&self, graph: usize) -> &'a str {
        &self.subgraphs[graph].name
    }

    pub(super) fn is_subtype(&self, sub: &str, sup: &str) -> bool {
        self.supertypes
            .get(sub)
            .is_some_and(|supers| supers.contains(sup))
    }

    pub(super) fn merge(&mut self) -> IndexMap<String, MType> {
        let subgraphs = self.subgraphs;
        let mut names: IndexSet<&str> = IndexSet::new();
        for subgraph in subgraphs {
            names.extend(subgraph.types.keys().map(String::as_str));
        }
        let mut merged = IndexMap::new();
        for name in names {
            let defs: Vec<(usize, &'a SubType)> = subgraphs
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.types.get(name).map(|t| (i, t)))
                .collect();
            if let Some(ty) = self.merge_type(name, &defs) {
                merged.insert(name.to_owned(), ty);
            }
        }
        self.add_interface_object_fields(&mut merged);
        let has_queries = merged
            .get("Query")
            .is_some_and(|query| !query.fields.is_empty());
        if !has_queries {
            self.errors.push(error(
                None,
                Some("Query".into()),
                "NO_QUERIES",
                "no subgraph defines a query field: a supergraph needs at least one field on \
                 the query root type"
                    .into(),
            ));
        }
        merged
    }

    pub(super) fn merge_type(
        &mut self,
        name: &str,
        defs: &[(usize, &'a SubType)],
    ) -> Option<MType> {
        let kind = self.merged_kind(name, defs)?;
        let mut merged = MType {
            kind,
            description: defs.iter().find_map(|(_, d)| non_empty(&d.description)),
            join_types: Vec::new(),
            implements: IndexMap::new(),
            fields: IndexMap::new(),
            input_fields: IndexMap::new(),
            members: IndexMap::new(),
            values: IndexMap::new(),
            applied: Applied::default(),
        };
        for &(graph, def) in defs {
            merged.applied.merge(&def.applied);
            let mut join = JoinType {
                graph,
                key: None,
                extension: def.extension,
                resolvable: true,
                interface_object: def.interface_object,
            };
            if def.keys.is_empty() {
                merged.join_types.push(join.clone());
            }
            for key in &def.keys {
                join.key = Some(key.fields.clone());
                join.resolvable = key.resolvable;
                merged.join_types.push(join.clone());
            }
            for interface in &def.implements {
                merged
                    .implements
                    .entry(interface.clone())
                    .or_default()
                    .push(graph);
            }
            for member in &def.members {
                merged
                    .members
                    .entry(member.clone())
                    .or_default()
                    .push(graph);
            }
        }
        match kind {
            TypeKind::Object | TypeKind::Interface => self.merge_fields(name, &mut merged, defs),
            TypeKind::InputObject => self.merge_input_object(name, &mut merged, defs),
            TypeKind::Enum => self.merge_enum(name, &mut merged, defs),
            TypeKind::Union | TypeKind::Scalar => {}
        }
        Some(merged)
    }

    pub(super) fn merged_kind(
        &mut self,
        name: &str,
        defs: &[(usize, &SubType)],
    ) -> Option<TypeKind> {
        let any_interface = defs.iter().any(|(_, d)| d.kind == TypeKind::Interface);
        let effective = |d: &SubType| {
            if d.interface_object && any_interface {
                TypeKind::Interface
            } else {
                d.kind
            }
        };
        let (first_graph, first) = defs.first().map(|&(g, d)| (g, effective(d)))?;
        if let Some(&(graph, def)) = defs.iter().find(|(_, d)| effective(d) != first) {
            self.err(
                Some(graph),
                name,
                "TYPE_KIND_MISMATCH",
                format!(
                    "type \"{name}\" has mismatched kind: it is defined as {} in subgraph \"{}\" \
                     but {} in subgraph \"{}\". Define it with the same kind everywhere",
                    first.describe(),
                    self.name(first_graph),
                    effective(def).describe(),
                    self.name(graph)
                ),
            );
            return None;
        }
        if first == TypeKind::Object
            && let Some(&(graph, _)) = defs.iter().find(|(_, d)| d.interface_object)
        {
            self.err(
                Some(graph),
                name,
                "INTERFACE_OBJECT_USAGE_ERROR",
                format!(
                    "type \"{name}\" is declared with @interfaceObject in subgraph \"{}\" but no \
                     subgraph defines an interface \"{name}\": define the interface (with @key) \
                     in the subgraph that owns its implementations",
                    self.name(graph)
                ),
            );
        }
        Some(first)
    }

    pub(super) fn merge_fields(
        &mut self,
        type_name: &str,
        merged: &mut MType,
        defs: &[(usize, &'a SubType)],
    ) {
        let mut field_names: IndexSet<&str> = IndexSet::new();
        for (_, def) in defs {
            field_names.extend(def.fields.keys().map(String::as_str));
        }
        for field_name in field_names {
            let field_defs: Vec<(usize, &'a SubField)> = defs
                .iter()
                .filter_map(|&(g, d)| d.fields.get(field_name).map(|f| (g, f)))
                .collect();
            if let Some(field) =
                self.merge_field(type_name, merged.kind, defs, field_name, &field_defs)
            {
                merged.fields.insert(field_name.to_owned(), field);
            }
        }
    }

    pub(super) fn merge_field(
        &mut self,
        type_name: &str,
        kind: TypeKind,
        type_defs: &[(usize, &'a SubType)],
        field_name: &str,
        defs: &[(usize, &'a SubField)],
    ) -> Option<MField> {
        let coordinate = format!("{type_name}.{field_name}");
        let overridden = self.resolve_overrides(&coordinate, type_name, field_name, defs);
        let used_overridden = |g: &usize| overridden.get(g).copied();
        // Sources that still count: overridden definitions disappear unless still used.
        let live: Vec<(usize, &SubField)> = defs
            .iter()
            .copied()
            .filter(|(g, _)| used_overridden(g) != Some(false))
            .collect();
        let (first_graph, first) = *live.first()?;
        let mut ty = first.ty.clone();
        for &(graph, field) in &live[1..] {
            match merge_output_type(&ty, &field.ty, &|a, b| self.is_subtype(a, b)) {
                Some(widened) => ty = widened,
                // Keep the field (with the first type) so that later checks still run.
                None => {
                    self.err(
                        Some(graph),
                        coordinate.clone(),
                        "FIELD_TYPE_MISMATCH",
                        format!(
                            "type of field \"{coordinate}\" is incompatible across subgraphs: it \
                             has type \"{}\" in subgraph \"{}\" but type \"{}\" in subgraph \
                             \"{}\". Use the same type (nullability may differ) in every subgraph",
                            first.ty,
                            self.name(first_graph),
                            field.ty,
                            self.name(graph)
                        ),
                    );
                }
            }
        }
        if kind == TypeKind::Object {
            self.check_sharing(
                &coordinate,
                type_name,
                field_name,
                type_defs,
                defs,
                &overridden,
            );
        }
        let resolving: Vec<(usize, &IndexMap<String, SubInputValue>)> = live
            .iter()
            .filter(|(_, f)| !f.external)
            .map(|(g, f)| (*g, &f.args))
            .collect();
        let arg_sources = if resolving.is_empty() {
            live.iter().map(|(g, f)| (*g, &f.args)).collect()
        } else {
            resolving
        };
        let args = self.merge_input_values(&coordinate, &arg_sources, InputPosition::Argument);

        let needs_join_field = !overridden.is_empty()
            || defs.iter().any(|(_, f)| {
                f.ty != ty
                    || f.external
                    || f.requires.is_some()
                    || f.provides.is_some()
                    || f.override_from.is_some()
            })
            || type_defs
                .iter()
                .any(|(g, _)| !defs.iter().any(|(fg, _)| fg == g));
        let join_fields = needs_join_field.then(|| {
            defs.iter()
                .filter_map(|&(graph, field)| match used_overridden(&graph) {
                    Some(false) => None,
                    Some(true) => Some(JoinField {
                        graph: Some(graph),
                        ty: (field.ty != ty).then(|| field.ty.to_string()),
                        used_overridden: true,
                        ..JoinField::default()
                    }),
                    None => Some(JoinField {
                        graph: Some(graph),
                        requires: field.requires.clone(),
                        provides: field.provides.clone(),
                        ty: (field.ty != ty).then(|| field.ty.to_string()),
                        external: field.external,
                        override_from: field.override_from.clone(),
                        used_overridden: false,
                    }),
                })
                .collect()
        });
        let mut applied = Applied::default();
        for (_, field) in defs {
            applied.merge(&field.applied);
        }
        let from_interface_object = defs.iter().any(|(g, f)| {
            !f.external
                && type_defs
                    .iter()
                    .any(|(tg, t)| tg == g && t.interface_object)
        });
        Some(MField {
            description: defs.iter().find_map(|(_, f)| non_empty(&f.description)),
            ty,
            args,
            join_fields,
            applied,
            from_interface_object,
        })
    }

    /// Validates `@override`s on one field; returns the overridden subgraphs, mapped to
    /// whether they still use the field (key/requires), which keeps it as `usedOverridden`.
    pub(super) fn resolve_overrides(
        &mut self,
        coordinate: &str,
        type_name: &str,
        field_name: &str,
        defs: &[(usize, &SubField)],
    ) -> HashMap<usize, bool> {
        let mut overridden = HashMap::new();
        for &(graph, field) in defs {
            let Some(from) = &field.override_from else {
                continue;
            };
            let name = self.name(graph);
            if from == name {
                self.err(
                    Some(graph),
                    coordinate,
                    "OVERRIDE_FROM_SELF_ERROR",
                    format!(
                        "source and destination subgraphs \"{from}\" are the same for overridden \
                         field \"{coordinate}\": @override(from:) must name the subgraph the \
                         field moves away from"
                    ),
                );
                continue;
            }
            // Overriding from a subgraph that is not (or no longer) composed is allowed,
            // as Apollo composition allows it (a hint, not an error): the field simply
            // belongs to this subgraph. It is how a field outlives a removed subgraph.
            let Some(source) = self.subgraphs.iter().position(|s| &s.name == from) else {
                continue;
            };
            if field.external {
                self.err(
                    Some(graph),
                    coordinate,
                    "OVERRIDE_COLLISION_WITH_ANOTHER_DIRECTIVE",
                    format!(
                        "\"{coordinate}\" is both @external and @override in subgraph \"{name}\": \
                         an overriding field must be resolved by its subgraph"
                    ),
                );
                continue;
            }
            if let Some((_, source_field)) = defs.iter().find(|(g, _)| *g == source) {
                if source_field.override_from.is_some() {
                    self.err(
                        Some(graph),
                        coordinate,
                        "OVERRIDE_SOURCE_HAS_OVERRIDE",
                        format!(
                            "\"{coordinate}\" is overridden from subgraph \"{from}\" which itself \
                             overrides it: keep @override in one subgraph only"
                        ),
                    );
                    continue;
                }
                let used = self.subgraphs[source]
                    .used_fields
                    .contains(&(type_name.to_owned(), field_name.to_owned()));
                overridden.insert(source, used);
            }
        }
        overridden
    }

    /// Fields an `@interfaceObject` contributes to an interface must also exist on the
    /// interface's implementations; they get a graph-less `@join__field` like Apollo's.
    pub(super) fn add_interface_object_fields(&mut self, merged: &mut IndexMap<String, MType>) {
        let mut additions: Vec<(String, String, MField)> = Vec::new();
        for (name, ty) in merged.iter() {
            if ty.kind != TypeKind::Object {
                continue;
            }
            for interface in ty.implements.keys() {
                let Some(itf) = merged.get(interface) else {
                    continue;
                };
                for (field_name, field) in &itf.fields {
                    if ty.fields.contains_key(field_name) || !field.from_interface_object {
                        continue;
                    }
                    let mut added = field.clone();
                    added.join_fields = Some(vec![JoinField::default()]);
                    additions.push((name.clone(), field_name.clone(), added));
                }
            }
        }
        for (name, field_name, field) in additions {
            if let Some(ty) = merged.get_mut(&name) {
                ty.fields.entry(field_name).or_insert(field);
            }
        }
    }
}

pub(super) fn non_empty(description: &Option<String>) -> Option<String> {
    description.clone().filter(|d| !d.trim().is_empty())
}

/// Least restrictive common type for an output field (the supertype of both), if any.
pub(super) fn merge_output_type(
    a: &Type,
    b: &Type,
    is_subtype: &dyn Fn(&str, &str) -> bool,
) -> Option<Type> {
    let inner = match (a, b) {
        (Type::Named(x) | Type::NonNullNamed(x), Type::Named(y) | Type::NonNullNamed(y)) => {
            if x == y || is_subtype(x, y) {
                Type::Named(y.clone())
            } else if is_subtype(y, x) {
                Type::Named(x.clone())
            } else {
                return None;
            }
        }
        (Type::List(x) | Type::NonNullList(x), Type::List(y) | Type::NonNullList(y)) => {
            Type::List(Box::new(merge_output_type(x, y, is_subtype)?))
        }
        _ => return None,
    };
    Some(if a.is_non_null() && b.is_non_null() {
        inner.non_null()
    } else {
        inner
    })
}

/// Most restrictive common type for an argument or input field, if any.
pub(super) fn merge_input_type(a: &Type, b: &Type) -> Option<Type> {
    let inner = match (a, b) {
        (Type::Named(x) | Type::NonNullNamed(x), Type::Named(y) | Type::NonNullNamed(y))
            if x == y =>
        {
            Type::Named(x.clone())
        }
        (Type::List(x) | Type::NonNullList(x), Type::List(y) | Type::NonNullList(y)) => {
            Type::List(Box::new(merge_input_type(x, y)?))
        }
        _ => return None,
    };
    Some(if a.is_non_null() || b.is_non_null() {
        inner.non_null()
    } else {
        inner
    })
}
