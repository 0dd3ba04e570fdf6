//! Reading subgraphs: parse and validate each SDL, then extract its types, fields, keys
//! and directive applications into the subgraph model.

use std::collections::{HashMap, HashSet};

use apollo_compiler::ast::{self, Type};
use apollo_compiler::executable::{self, FieldSet};
use apollo_compiler::schema::{Component, ExtendedType};
use apollo_compiler::validation::Valid;
use apollo_compiler::{Name, Node, Schema};
use indexmap::IndexMap;

use super::errors::{CompositionError, error, push_invalid_graphql};
use super::federation::{FedNames, injected_definitions, is_federation_internal_type};
use super::subgraph::{
    Applied, KeyDef, SubEnumValue, SubField, SubInputValue, SubType, TypeKind, and_scopes,
};
use super::subgraph::{Subgraph, SubgraphInput};
use super::text::quote;

/// Parses, validates and extracts one subgraph; reports problems into `errors`.
pub(super) fn load_subgraph(
    input: &SubgraphInput,
    graph: String,
    errors: &mut Vec<CompositionError>,
) -> Option<Subgraph> {
    let path = format!("{}.graphql", input.name);
    let doc = match ast::Document::parse(input.sdl.as_str(), &path) {
        Ok(doc) => doc,
        Err(invalid) => {
            push_invalid_graphql(errors, &input.name, &invalid.errors);
            return None;
        }
    };
    let names = FedNames::from_document(&doc);
    let injected = injected_definitions(&doc, &names);
    let schema = Schema::builder()
        .adopt_orphan_extensions()
        .add_ast(&doc)
        .parse(injected, "federation-definitions.graphql")
        .build()
        .and_then(Schema::validate);
    let schema = match schema {
        Ok(schema) => schema,
        Err(invalid) => {
            push_invalid_graphql(errors, &input.name, &invalid.errors);
            return None;
        }
    };
    let error_count = errors.len();
    let mut loader = Loader::new(input, &doc, &schema, names, errors);
    let types = loader.extract_types();
    let subgraph = Subgraph {
        name: input.name.clone(),
        url: input.url.clone(),
        graph,
        fed2: loader.names.fed2,
        types,
        key_fields: loader.key_fields,
        used_fields: loader.used_fields,
    };
    (errors.len() == error_count).then_some(subgraph)
}

/// Borrowed view of a directive list, whatever `apollo-compiler` container it came from.
pub(super) struct Dirs<'a>(Vec<&'a ast::Directive>);

impl<'a> Dirs<'a> {
    pub(super) fn of_type(list: &'a apollo_compiler::schema::DirectiveList) -> Self {
        Dirs(list.iter().map(|d| -> &ast::Directive { d }).collect())
    }

    pub(super) fn of_ast(list: &'a ast::DirectiveList) -> Self {
        Dirs(list.iter().map(|d| -> &ast::Directive { d }).collect())
    }

    pub(super) fn has(&self, name: &str) -> bool {
        self.0.iter().any(|d| d.name == name)
    }

    pub(super) fn all(&self, name: &'a str) -> impl Iterator<Item = &'a ast::Directive> + '_ {
        self.0.iter().copied().filter(move |d| d.name == name)
    }

    pub(super) fn string_arg(&self, name: &str, arg: &str) -> Option<String> {
        self.0
            .iter()
            .find(|d| d.name == name)
            .and_then(|d| d.specified_argument_by_name(arg))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    }
}

/// Local names of the directives composition interprets, resolved once per subgraph.
pub(super) struct Local {
    pub(super) key: String,
    pub(super) requires: String,
    pub(super) provides: String,
    pub(super) external: String,
    pub(super) extends: String,
    pub(super) shareable: String,
    pub(super) override_: String,
    pub(super) interface_object: String,
    pub(super) inaccessible: String,
    pub(super) tag: String,
    pub(super) authenticated: String,
    pub(super) requires_scopes: String,
}

pub(super) struct Loader<'a> {
    pub(super) input: &'a SubgraphInput,
    pub(super) schema: &'a Valid<Schema>,
    pub(super) names: FedNames,
    pub(super) local: Local,
    /// Types with a real (non-`extend`) definition in the SDL.
    pub(super) defined: HashSet<String>,
    /// Root type renames, e.g. `RootQuery` -> `Query`.
    pub(super) renames: HashMap<String, String>,
    pub(super) errors: &'a mut Vec<CompositionError>,
    pub(super) key_fields: HashSet<(String, String)>,
    pub(super) used_fields: HashSet<(String, String)>,
}

impl<'a> Loader<'a> {
    pub(super) fn new(
        input: &'a SubgraphInput,
        doc: &ast::Document,
        schema: &'a Valid<Schema>,
        names: FedNames,
        errors: &'a mut Vec<CompositionError>,
    ) -> Self {
        let local = Local {
            key: names.local("key"),
            requires: names.local("requires"),
            provides: names.local("provides"),
            external: names.local("external"),
            extends: names.local("extends"),
            shareable: names.local("shareable"),
            override_: names.local("override"),
            interface_object: names.local("interfaceObject"),
            inaccessible: names.local("inaccessible"),
            tag: names.local("tag"),
            authenticated: names.local("authenticated"),
            requires_scopes: names.local("requiresScopes"),
        };
        let defined = doc
            .definitions
            .iter()
            .filter(|d| !d.is_extension_definition())
            .filter_map(|d| d.name().map(|n| n.to_string()))
            .collect();
        let mut renames = HashMap::new();
        let roots = &schema.schema_definition;
        for (root, canonical) in [
            (&roots.query, "Query"),
            (&roots.mutation, "Mutation"),
            (&roots.subscription, "Subscription"),
        ] {
            if let Some(root) = root
                && root.name != canonical
            {
                renames.insert(root.name.to_string(), canonical.to_owned());
            }
        }
        Loader {
            input,
            schema,
            names,
            local,
            defined,
            renames,
            errors,
            key_fields: HashSet::new(),
            used_fields: HashSet::new(),
        }
    }

    pub(super) fn err(&mut self, coordinate: String, code: &'static str, message: String) {
        self.errors.push(error(
            Some(&self.input.name),
            Some(coordinate),
            code,
            message,
        ));
    }

    pub(super) fn rename<'n>(&'n self, name: &'n str) -> &'n str {
        self.renames.get(name).map_or(name, String::as_str)
    }

    pub(super) fn rename_type(&self, ty: &Type) -> Type {
        match ty {
            Type::Named(n) => Type::Named(self.renamed_name(n)),
            Type::NonNullNamed(n) => Type::NonNullNamed(self.renamed_name(n)),
            Type::List(inner) => Type::List(Box::new(self.rename_type(inner))),
            Type::NonNullList(inner) => Type::NonNullList(Box::new(self.rename_type(inner))),
        }
    }

    pub(super) fn renamed_name(&self, name: &ast::NamedType) -> ast::NamedType {
        match self.renames.get(name.as_str()) {
            // Canonical root names are valid GraphQL names, so this cannot fail.
            Some(renamed) => Name::new(renamed).unwrap_or_else(|_| name.clone()),
            None => name.clone(),
        }
    }

    pub(super) fn applied(&self, dirs: &Dirs) -> Applied {
        Applied {
            inaccessible: dirs.has(&self.local.inaccessible),
            authenticated: dirs.has(&self.local.authenticated),
            scopes: dirs
                .all(&self.local.requires_scopes)
                .filter_map(|d| d.specified_argument_by_name("scopes"))
                .map(|v| scope_sets(v))
                .reduce(|a, b| and_scopes(&a, &b)),
            tags: dirs
                .all(&self.local.tag)
                .filter_map(|d| d.specified_argument_by_name("name"))
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            kept: dirs
                .0
                .iter()
                .filter(|d| d.name == "deprecated" || d.name == "specifiedBy")
                .map(|d| Node::new((*d).clone()))
                .collect(),
        }
    }

    pub(super) fn extract_types(&mut self) -> IndexMap<String, SubType> {
        let schema = self.schema;
        for canonical in ["Query", "Mutation", "Subscription"] {
            let is_root = schema
                .schema_definition
                .iter_root_operations()
                .any(|(_, name)| name.as_str() == canonical);
            if !is_root && schema.types.contains_key(canonical) {
                self.err(
                    canonical.to_owned(),
                    "ROOT_TYPE_USED",
                    format!(
                        "type \"{canonical}\" is not the {} root type of this subgraph, but the \
                         supergraph uses that name for the root type: rename it",
                        canonical.to_lowercase()
                    ),
                );
            }
        }
        let query_root = schema
            .schema_definition
            .query
            .as_ref()
            .map(|q| q.name.to_string());
        let mut types = IndexMap::new();
        for (name, ty) in &schema.types {
            if ty.is_built_in() || is_federation_internal_type(name) {
                continue;
            }
            if name == "FieldSet" && !self.is_referenced(name) {
                // Federation 2's field-set scalar, when the SDL defines it itself.
                continue;
            }
            let is_query = query_root.as_deref() == Some(name.as_str());
            if let Some(sub) = self.extract_type(name, ty, is_query) {
                types.insert(self.rename(name).to_owned(), sub);
            }
        }
        // Apollo gives every subgraph a query root (for `_entities`/`_service`), so every
        // subgraph gets a `@join__type` on `Query`.
        types
            .entry("Query".to_owned())
            .or_insert_with(|| SubType::empty(TypeKind::Object));
        types
    }

    /// Whether a type is used by any field, argument or input field of the subgraph.
    pub(super) fn is_referenced(&self, name: &str) -> bool {
        self.schema.types.values().any(|ty| match ty {
            ExtendedType::Object(o) => o.fields.values().any(|f| field_mentions(f, name)),
            ExtendedType::Interface(i) => i.fields.values().any(|f| field_mentions(f, name)),
            ExtendedType::InputObject(i) => {
                i.fields.values().any(|f| f.ty.inner_named_type() == name)
            }
            _ => false,
        })
    }

    pub(super) fn extract_type(
        &mut self,
        name: &str,
        ty: &ExtendedType,
        is_query: bool,
    ) -> Option<SubType> {
        let dirs = Dirs::of_type(ty.directives());
        let renamed = self.rename(name).to_owned();
        let is_root = renamed != name || matches!(name, "Query" | "Mutation" | "Subscription");
        let mut sub = SubType::empty(match ty {
            ExtendedType::Scalar(_) => TypeKind::Scalar,
            ExtendedType::Object(_) => TypeKind::Object,
            ExtendedType::Interface(_) => TypeKind::Interface,
            ExtendedType::Union(_) => TypeKind::Union,
            ExtendedType::Enum(_) => TypeKind::Enum,
            ExtendedType::InputObject(_) => TypeKind::InputObject,
        });
        sub.description = ty.description().map(|d| d.to_string());
        sub.extension = !is_root && (!self.defined.contains(name) || dirs.has(&self.local.extends));
        sub.applied = self.applied(&dirs);
        match ty {
            ExtendedType::Object(object) => {
                sub.interface_object = self.names.fed2 && dirs.has(&self.local.interface_object);
                sub.keys = self.extract_keys(name, &renamed, &dirs);
                sub.implements = object
                    .implements_interfaces
                    .iter()
                    .map(|i| i.name.to_string())
                    .collect();
                sub.fields =
                    self.extract_fields(name, &renamed, &sub, &dirs, &object.fields, is_query);
            }
            ExtendedType::Interface(interface) => {
                sub.keys = self.extract_keys(name, &renamed, &dirs);
                sub.implements = interface
                    .implements_interfaces
                    .iter()
                    .map(|i| i.name.to_string())
                    .collect();
                sub.fields =
                    self.extract_fields(name, &renamed, &sub, &dirs, &interface.fields, false);
            }
            ExtendedType::Union(union) => {
                sub.members = union
                    .members
                    .iter()
                    .filter(|m| !is_federation_internal_type(&m.name))
                    .map(|m| self.rename(&m.name).to_owned())
                    .collect();
            }
            ExtendedType::Enum(enum_) => {
                for (value, def) in &enum_.values {
                    let value_dirs = Dirs::of_ast(&def.directives);
                    sub.values.insert(
                        value.to_string(),
                        SubEnumValue {
                            description: def.description.as_ref().map(|d| d.to_string()),
                            applied: self.applied(&value_dirs),
                        },
                    );
                }
            }
            ExtendedType::InputObject(input) => {
                for (field_name, def) in &input.fields {
                    sub.input_fields
                        .insert(field_name.to_string(), self.input_value(def));
                }
            }
            ExtendedType::Scalar(_) => {}
        }
        Some(sub)
    }

    pub(super) fn input_value(&self, def: &ast::InputValueDefinition) -> SubInputValue {
        SubInputValue {
            description: def.description.as_ref().map(|d| d.to_string()),
            ty: self.rename_type(&def.ty),
            default: def.default_value.clone(),
            applied: self.applied(&Dirs::of_ast(&def.directives)),
        }
    }

    /// Reads and validates the `@key`s of a type, recording the fields they select.
    pub(super) fn extract_keys(&mut self, name: &str, renamed: &str, dirs: &Dirs) -> Vec<KeyDef> {
        let mut keys = Vec::new();
        let key_directive = self.local.key.clone();
        for directive in dirs.all(&key_directive) {
            let Some(fields) = directive
                .specified_argument_by_name("fields")
                .and_then(|v| v.as_str())
            else {
                continue;
            };
            let resolvable = directive
                .specified_argument_by_name("resolvable")
                .and_then(|v| v.to_bool())
                .unwrap_or(true);
            match self.parse_field_set(name, fields) {
                Ok(set) => {
                    let mut selected = Vec::new();
                    collect_selected(&set.selection_set, &mut selected);
                    for (ty, field) in selected {
                        let pair = (self.rename(&ty).to_owned(), field);
                        self.key_fields.insert(pair.clone());
                        self.used_fields.insert(pair);
                    }
                    if has_arguments(&set.selection_set) {
                        self.err(
                            renamed.to_owned(),
                            "KEY_FIELDS_HAS_ARGS",
                            format!(
                                "@key(fields: {}) on \"{renamed}\" selects a field with arguments: \
                                 key fields cannot take arguments",
                                quote(fields)
                            ),
                        );
                    }
                }
                Err(message) => self.err(
                    renamed.to_owned(),
                    "KEY_INVALID_FIELDS",
                    format!(
                        "@key(fields: {}) on \"{renamed}\" is invalid: {message}. Key fields \
                         must be fields of \"{renamed}\" defined in this subgraph",
                        quote(fields)
                    ),
                ),
            }
            keys.push(KeyDef {
                fields: fields.to_owned(),
                resolvable,
            });
        }
        keys
    }

    pub(super) fn parse_field_set(
        &self,
        type_name: &str,
        fields: &str,
    ) -> Result<Valid<FieldSet>, String> {
        let name = Name::new(type_name).map_err(|e| e.to_string())?;
        FieldSet::parse_and_validate(self.schema, name, fields, "field-set.graphql").map_err(
            |invalid| {
                invalid
                    .errors
                    .iter()
                    .map(|d| d.error.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            },
        )
    }

    pub(super) fn field_is_external(&self, type_name: &str, field: &str) -> bool {
        let external = &self.local.external;
        let (type_dirs, fields) = match self.schema.types.get(type_name) {
            Some(ExtendedType::Object(o)) => (&o.directives, &o.fields),
            Some(ExtendedType::Interface(i)) => (&i.directives, &i.fields),
            _ => return false,
        };
        Dirs::of_type(type_dirs).has(external)
            || fields
                .get(field)
                .is_some_and(|f| f.directives.has(external))
    }

    pub(super) fn extract_fields(
        &mut self,
        name: &str,
        renamed: &str,
        parent: &SubType,
        type_dirs: &Dirs,
        fields: &apollo_compiler::collections::IndexMap<Name, Component<ast::FieldDefinition>>,
        is_query: bool,
    ) -> IndexMap<String, SubField> {
        let type_shareable = type_dirs.has(&self.local.shareable);
        let type_external = type_dirs.has(&self.local.external);
        let mut out = IndexMap::new();
        for (field_name, def) in fields {
            if is_query && matches!(field_name.as_str(), "_service" | "_entities") {
                continue;
            }
            let coordinate = format!("{renamed}.{field_name}");
            let dirs = Dirs::of_ast(&def.directives);
            let is_key_field = self
                .key_fields
                .contains(&(renamed.to_owned(), field_name.to_string()));
            // `@external` on the key fields of a type extension only says "this field is
            // defined elsewhere" (Federation 1 style); the subgraph still receives it in
            // every representation, so it is not treated as external.
            let external = (type_external || dirs.has(&self.local.external))
                && !(parent.extension && is_key_field);
            let requires = dirs.string_arg(&self.local.requires, "fields");
            if let Some(fields) = &requires {
                self.check_requires(name, renamed, &coordinate, fields);
            }
            let provides = dirs.string_arg(&self.local.provides, "fields");
            if let Some(fields) = &provides {
                self.check_provides(&coordinate, &def.ty, fields);
            }
            let override_from = if self.names.fed2 {
                dirs.string_arg(&self.local.override_, "from")
            } else {
                None
            };
            out.insert(
                field_name.to_string(),
                SubField {
                    description: def.description.as_ref().map(|d| d.to_string()),
                    ty: self.rename_type(&def.ty),
                    args: def
                        .arguments
                        .iter()
                        .map(|arg| (arg.name.to_string(), self.input_value(arg)))
                        .collect(),
                    external,
                    shareable: type_shareable || dirs.has(&self.local.shareable),
                    requires,
                    provides,
                    override_from,
                    applied: self.applied(&dirs),
                },
            );
        }
        out
    }
}

/// `[[String!]!]!` as nested vectors (a single list or string is coerced, as GraphQL
/// input coercion would).
pub(super) fn scope_sets(value: &ast::Value) -> Vec<Vec<String>> {
    let strings = |v: &ast::Value| -> Vec<String> {
        match v {
            ast::Value::List(items) => items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect(),
            ast::Value::String(s) => vec![s.clone()],
            _ => Vec::new(),
        }
    };
    match value {
        ast::Value::List(items) => items.iter().map(|i| strings(i)).collect(),
        other => vec![strings(other)],
    }
}

pub(super) fn field_mentions(field: &ast::FieldDefinition, name: &str) -> bool {
    field.ty.inner_named_type() == name
        || field
            .arguments
            .iter()
            .any(|arg| arg.ty.inner_named_type() == name)
}

/// Every `(parent type, field)` a field set selects, at any depth.
pub(super) fn collect_selected(set: &executable::SelectionSet, out: &mut Vec<(String, String)>) {
    for selection in &set.selections {
        match selection {
            executable::Selection::Field(field) => {
                if !field.name.starts_with("__") {
                    out.push((set.ty.to_string(), field.name.to_string()));
                }
                collect_selected(&field.selection_set, out);
            }
            executable::Selection::InlineFragment(fragment) => {
                collect_selected(&fragment.selection_set, out)
            }
            executable::Selection::FragmentSpread(_) => {}
        }
    }
}

pub(super) fn has_arguments(set: &executable::SelectionSet) -> bool {
    set.selections.iter().any(|selection| match selection {
        executable::Selection::Field(field) => {
            !field.arguments.is_empty() || has_arguments(&field.selection_set)
        }
        executable::Selection::InlineFragment(fragment) => has_arguments(&fragment.selection_set),
        executable::Selection::FragmentSpread(_) => false,
    })
}
