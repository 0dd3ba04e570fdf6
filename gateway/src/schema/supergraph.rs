//! Reading a Federation 2 supergraph: the `join__*` directives become a plain lookup
//! model (which graph knows which type, with which keys; which graph resolves which
//! field, with which `@requires`/`@provides`), built once per schema version so the
//! planner never looks at directives.

use std::sync::Arc;

use apollo_compiler::Name;
use apollo_compiler::Schema;
use apollo_compiler::ast::DirectiveList;
use apollo_compiler::ast::Value;
use apollo_compiler::schema::{ComponentName, ExtendedType};
use apollo_compiler::validation::Valid;
use rustc_hash::FxHashMap;

use super::fieldset::FieldSet;

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("invalid supergraph: {0}")]
    Invalid(String),
}

/// Index of a subgraph in [`Supergraph::graphs`].
pub type GraphId = usize;

#[derive(Debug, Clone)]
pub struct Graph {
    /// The subgraph's name (`accounts`).
    pub name: String,
    /// The `join__Graph` enum value (`ACCOUNTS`).
    pub enum_value: String,
    pub url: String,
}

/// A key of an entity type in one graph.
#[derive(Debug, Clone)]
pub struct Key {
    pub fields: FieldSet,
    /// `resolvable: false` keys can be used to reference the entity, not to fetch it.
    pub resolvable: bool,
}

/// What one graph knows about a type.
#[derive(Debug, Clone, Default)]
pub struct TypeInGraph {
    pub keys: Vec<Key>,
    pub is_interface_object: bool,
    /// The graph defines the type as an extension (`extend type`, `@extends`).
    pub extension: bool,
}

/// What one graph can do with a field.
#[derive(Debug, Clone, Default)]
pub struct FieldInGraph {
    /// The graph resolves the field (not external, not overridden away).
    pub resolvable: bool,
    pub requires: Option<FieldSet>,
    pub provides: Option<FieldSet>,
    /// The field's type in this graph when it differs from the supergraph's
    /// (`@join__field(type:)`, for example a nullability difference).
    pub ty: Option<apollo_compiler::ast::Type>,
}

#[derive(Debug, Clone, Default)]
pub struct FieldMeta {
    pub graphs: FxHashMap<GraphId, FieldInGraph>,
}

#[derive(Debug, Clone, Default)]
pub struct TypeMeta {
    pub graphs: FxHashMap<GraphId, TypeInGraph>,
    pub fields: FxHashMap<Name, FieldMeta>,
    /// For interfaces and unions: the object types each graph may return for it.
    pub possible_in: FxHashMap<GraphId, Vec<Name>>,
}

/// The supergraph as the planner sees it.
#[derive(Debug)]
pub struct Supergraph {
    /// The full supergraph schema (including `@inaccessible` elements, which the
    /// planner may still use, for example as key fields).
    pub schema: Valid<Schema>,
    pub graphs: Vec<Graph>,
    pub types: FxHashMap<Name, TypeMeta>,
    /// Supergraph-wide possible object types of each abstract type.
    pub possible_types: FxHashMap<Name, Vec<Name>>,
    /// The SDL text it was read from (printed by `gateway compose`).
    pub sdl: Arc<str>,
}

impl Supergraph {
    pub fn parse(sdl: &str) -> Result<Self, SchemaError> {
        if !sdl.contains("join__Graph") {
            return Err(not_a_supergraph());
        }
        let schema = Schema::parse_and_validate(sdl, "supergraph.graphql")
            .map_err(|e| SchemaError::Invalid(e.errors.to_string()))?;
        let graphs = read_graphs(&schema)?;
        let by_enum: FxHashMap<&str, GraphId> = graphs
            .iter()
            .enumerate()
            .map(|(i, g)| (g.enum_value.as_str(), i))
            .collect();
        let graph_of = |value: Option<&Value>, coordinate: &str| -> Result<GraphId, SchemaError> {
            let name = match value {
                Some(Value::Enum(name)) => name.as_str(),
                _ => {
                    return Err(SchemaError::Invalid(format!(
                        "{coordinate}: join directive without a `graph` argument"
                    )));
                }
            };
            by_enum.get(name).copied().ok_or_else(|| {
                SchemaError::Invalid(format!("{coordinate}: unknown join__Graph value `{name}`"))
            })
        };

        let mut types: FxHashMap<Name, TypeMeta> = FxHashMap::default();
        let mut uses_implements = false;
        for (name, ty) in &schema.types {
            if ty.is_built_in() || is_federation_type(name) {
                continue;
            }
            let mut meta = TypeMeta::default();
            for directive in ty.directives().get_all("join__type") {
                let graph = graph_of(
                    directive.specified_argument_by_name("graph").map(|v| &**v),
                    name,
                )?;
                let entry = meta.graphs.entry(graph).or_default();
                if let Some(key) = string_arg(&directive.arguments, "key") {
                    let fields = FieldSet::parse(key).map_err(|e| {
                        SchemaError::Invalid(format!("{name}: @join__type key: {e}"))
                    })?;
                    let resolvable = bool_arg(&directive.arguments, "resolvable").unwrap_or(true);
                    entry.keys.push(Key { fields, resolvable });
                }
                if bool_arg(&directive.arguments, "isInterfaceObject") == Some(true) {
                    entry.is_interface_object = true;
                }
                if bool_arg(&directive.arguments, "extension") == Some(true) {
                    entry.extension = true;
                }
            }
            // join v0.1: fields without `@join__field` belong to the owner graph only.
            let owner = match ty.directives().get("join__owner") {
                Some(d) => Some(graph_of(
                    d.specified_argument_by_name("graph").map(|v| &**v),
                    name,
                )?),
                None => None,
            };
            // Types without any join__type (old supergraphs, or built-in-like scalars)
            // exist in every graph.
            if meta.graphs.is_empty() {
                for g in 0..graphs.len() {
                    meta.graphs.insert(g, TypeInGraph::default());
                }
            }
            let fields: Vec<(&Name, &DirectiveList)> = match ty {
                ExtendedType::Object(o) => {
                    o.fields.iter().map(|(n, f)| (n, &f.directives)).collect()
                }
                ExtendedType::Interface(i) => {
                    i.fields.iter().map(|(n, f)| (n, &f.directives)).collect()
                }
                _ => Vec::new(),
            };
            for (field_name, directives) in fields {
                let coordinate = format!("{name}.{field_name}");
                let mut field = FieldMeta::default();
                let joins: Vec<_> = directives
                    .get_all("join__field")
                    .filter(|d| d.specified_argument_by_name("graph").is_some())
                    .collect();
                // A `@join__field` without a graph (fields an `@interfaceObject` adds
                // to implementations) means no graph resolves it on this type.
                let graphless = directives
                    .get_all("join__field")
                    .any(|d| d.specified_argument_by_name("graph").is_none());
                if joins.is_empty() && !graphless {
                    let graphs: Vec<GraphId> = match owner {
                        Some(o) => vec![o],
                        None => meta.graphs.keys().copied().collect(),
                    };
                    for g in graphs {
                        field.graphs.insert(
                            g,
                            FieldInGraph {
                                resolvable: true,
                                ..Default::default()
                            },
                        );
                    }
                } else {
                    for directive in joins {
                        let graph = graph_of(
                            directive.specified_argument_by_name("graph").map(|v| &**v),
                            &coordinate,
                        )?;
                        let args = &directive.arguments;
                        let external = bool_arg(args, "external") == Some(true);
                        let mut overridden = bool_arg(args, "usedOverridden") == Some(true);
                        // Progressive override (join v0.4+): both graphs carry the
                        // label; the overriding one resolves the field while the label
                        // is active, the other one while it is not.
                        if let Some(label) = string_arg(args, "overrideLabel") {
                            let overriding = string_arg(args, "override").is_some();
                            overridden |= overriding != label_active(label);
                        }
                        let parse = |arg: &str| -> Result<Option<FieldSet>, SchemaError> {
                            string_arg(args, arg)
                                .map(|s| {
                                    FieldSet::parse(s).map_err(|e| {
                                        SchemaError::Invalid(format!("{coordinate}: @{arg}: {e}"))
                                    })
                                })
                                .transpose()
                        };
                        field.graphs.insert(
                            graph,
                            FieldInGraph {
                                resolvable: !external && !overridden,
                                requires: parse("requires")?,
                                provides: parse("provides")?,
                                ty: string_arg(args, "type").and_then(|t| {
                                    apollo_compiler::ast::Type::parse(t, "join__field.graphql").ok()
                                }),
                            },
                        );
                    }
                }
                // The key fields of a type extension are readable from its graph even
                // when marked external (Federation 1 style `@external` keys: the graph
                // gets them in every representation). Elsewhere `@external` on a key
                // field means what it says: the graph cannot answer it, nor enter
                // another graph with that key. join v0.1 has no `external`: there every key is readable.
                for (&g, in_graph) in &meta.graphs {
                    if (in_graph.extension || owner.is_some())
                        && in_graph
                            .keys
                            .iter()
                            .any(|k| k.fields.field_names().any(|n| n == field_name.as_str()))
                    {
                        field.graphs.entry(g).or_default().resolvable = true;
                    }
                }
                meta.fields.insert(field_name.clone(), field);
            }
            if let ExtendedType::Object(o) = ty {
                uses_implements |= o.directives.get("join__implements").is_some();
            }
            types.insert(name.clone(), meta);
        }

        // Possible runtime types of abstract types, supergraph-wide and per graph.
        let mut possible_types: FxHashMap<Name, Vec<Name>> = FxHashMap::default();
        for (name, ty) in &schema.types {
            if let ExtendedType::Object(o) = ty {
                for interface in &o.implements_interfaces {
                    possible_types
                        .entry(interface.name.clone())
                        .or_default()
                        .push(name.clone());
                    // Object types only implement an interface in the graphs that
                    // say so (join v0.2+); older supergraphs imply every shared graph.
                    let graphs: Vec<GraphId> = if uses_implements {
                        o.directives
                            .get_all("join__implements")
                            .filter(|d| {
                                string_arg(&d.arguments, "interface")
                                    == Some(interface.name.as_str())
                            })
                            .filter_map(|d| {
                                graph_of(d.specified_argument_by_name("graph").map(|v| &**v), name)
                                    .ok()
                            })
                            .collect()
                    } else {
                        types
                            .get(name)
                            .map(|m| m.graphs.keys().copied().collect())
                            .unwrap_or_default()
                    };
                    if let Some(meta) = types.get_mut(&interface.name) {
                        for g in graphs {
                            meta.possible_in.entry(g).or_default().push(name.clone());
                        }
                    }
                }
            }
            if let ExtendedType::Union(u) = ty {
                let all: Vec<Name> = u.members.iter().map(|m| m.name.clone()).collect();
                possible_types.insert(name.clone(), all.clone());
                let members: Vec<(GraphId, Name)> = u
                    .directives
                    .get_all("join__unionMember")
                    .filter_map(|d| {
                        let g = graph_of(d.specified_argument_by_name("graph").map(|v| &**v), name)
                            .ok()?;
                        let member = string_arg(&d.arguments, "member")?;
                        Some((g, Name::new(member).ok()?))
                    })
                    .collect();
                if let Some(meta) = types.get_mut(name) {
                    if members.is_empty() {
                        let graphs: Vec<GraphId> = meta.graphs.keys().copied().collect();
                        for g in graphs {
                            meta.possible_in.insert(g, all.clone());
                        }
                    } else {
                        for (g, member) in members {
                            meta.possible_in.entry(g).or_default().push(member);
                        }
                    }
                }
            }
        }
        // A graph only returns object types it knows.
        let known: FxHashMap<Name, Vec<GraphId>> = types
            .iter()
            .map(|(n, m)| (n.clone(), m.graphs.keys().copied().collect()))
            .collect();
        for meta in types.values_mut() {
            for (g, list) in meta.possible_in.iter_mut() {
                list.retain(|t| known.get(t).is_some_and(|gs| gs.contains(g)));
                list.sort();
                list.dedup();
            }
        }

        Ok(Supergraph {
            schema,
            graphs,
            types,
            possible_types,
            sdl: Arc::from(sdl),
        })
    }

    pub fn graph_by_name(&self, name: &str) -> Option<GraphId> {
        self.graphs.iter().position(|g| g.name == name)
    }

    pub fn type_meta(&self, type_name: &str) -> Option<&TypeMeta> {
        self.types.get(type_name)
    }

    pub fn field_in_graph(
        &self,
        type_name: &str,
        field: &str,
        graph: GraphId,
    ) -> Option<&FieldInGraph> {
        self.types
            .get(type_name)?
            .fields
            .get(field)?
            .graphs
            .get(&graph)
    }

    /// Whether `graph` resolves `type_name.field` by itself.
    pub fn resolves(&self, type_name: &str, field: &str, graph: GraphId) -> bool {
        self.field_in_graph(type_name, field, graph)
            .is_some_and(|f| f.resolvable)
    }

    /// Whether the type is known to `graph`.
    pub fn type_in_graph(&self, type_name: &str, graph: GraphId) -> Option<&TypeInGraph> {
        self.types.get(type_name)?.graphs.get(&graph)
    }

    pub fn is_abstract(&self, type_name: &str) -> bool {
        matches!(
            self.schema.types.get(type_name),
            Some(ExtendedType::Interface(_) | ExtendedType::Union(_))
        )
    }

    /// Object types `graph` may return where `type_name` (abstract) is expected.
    pub fn possible_in_graph(&self, type_name: &str, graph: GraphId) -> &[Name] {
        self.types
            .get(type_name)
            .and_then(|m| m.possible_in.get(&graph))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Whether an object of type `object` satisfies a type condition on `condition`.
    pub fn satisfies(&self, object: &str, condition: &str) -> bool {
        object == condition
            || self
                .possible_types
                .get(condition)
                .is_some_and(|list| list.iter().any(|t| t == object))
    }
}

/// Federation machinery that is not part of any client-visible type.
pub fn is_federation_type(name: &str) -> bool {
    name.starts_with("join__")
        || name.starts_with("link__")
        || name.starts_with("requiresScopes__")
        || name.starts_with("policy__")
        || matches!(
            name,
            "_Any" | "_Entity" | "_Service" | "_FieldSet" | "FieldSet"
        )
}

fn not_a_supergraph() -> SchemaError {
    SchemaError::Invalid(
        "not a supergraph: the `join__Graph` enum is missing (is this a subgraph SDL? \
         register subgraphs in a config file instead)"
            .into(),
    )
}

fn read_graphs(schema: &Schema) -> Result<Vec<Graph>, SchemaError> {
    let Some(ExtendedType::Enum(graph_enum)) = schema.types.get("join__Graph") else {
        return Err(not_a_supergraph());
    };
    let mut graphs = Vec::new();
    for (value, def) in &graph_enum.values {
        let directive = def.directives.get("join__graph").ok_or_else(|| {
            SchemaError::Invalid(format!("join__Graph.{value}: missing @join__graph"))
        })?;
        let name = string_arg(&directive.arguments, "name")
            .map(str::to_string)
            .unwrap_or_else(|| value.as_str().to_ascii_lowercase());
        let url = string_arg(&directive.arguments, "url")
            .unwrap_or_default()
            .to_string();
        graphs.push(Graph {
            name,
            enum_value: value.to_string(),
            url,
        });
    }
    Ok(graphs)
}

/// Whether a progressive override label is active. Plans are cached and must be
/// deterministic, so `percent(N)` is active from 50 up (`percent(0)` never,
/// `percent(100)` always); other labels (feature flags) are inactive.
fn label_active(label: &str) -> bool {
    label
        .strip_prefix("percent(")
        .and_then(|rest| rest.strip_suffix(')'))
        .and_then(|n| n.trim().parse::<f64>().ok())
        .is_some_and(|n| n >= 50.0)
}

fn string_arg<'a>(
    args: &'a [apollo_compiler::Node<apollo_compiler::ast::Argument>],
    name: &str,
) -> Option<&'a str> {
    args.iter()
        .find(|a| a.name == name)
        .and_then(|a| a.value.as_str())
}

fn bool_arg(
    args: &[apollo_compiler::Node<apollo_compiler::ast::Argument>],
    name: &str,
) -> Option<bool> {
    args.iter()
        .find(|a| a.name == name)
        .and_then(|a| a.value.to_bool())
}

/// Names of the interfaces of an object type, for callers that only hold the schema.
pub fn interfaces_of(schema: &Schema, object: &str) -> Vec<ComponentName> {
    schema
        .get_object(object)
        .map(|o| o.implements_interfaces.iter().cloned().collect())
        .unwrap_or_default()
}
