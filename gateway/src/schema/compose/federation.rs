//! How a subgraph spells the federation directives (Federation 2 `@link` imports,
//! renames, `federation__` prefixes, or Federation 1 conventions), and the definitions
//! injected into a subgraph SDL that uses them without defining them.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use apollo_compiler::ast::{self, OperationType};

/// How a subgraph spells the federation directives (imports, renames, `federation__` prefix).
pub(super) struct FedNames {
    pub(super) fed2: bool,
    pub(super) prefix: String,
    pub(super) imports: HashMap<String, String>,
}

impl FedNames {
    pub(super) fn from_document(doc: &ast::Document) -> Self {
        let mut names = FedNames {
            fed2: false,
            prefix: "federation".into(),
            imports: HashMap::new(),
        };
        for definition in &doc.definitions {
            let directives = match definition {
                ast::Definition::SchemaDefinition(def) => &def.directives,
                ast::Definition::SchemaExtension(ext) => &ext.directives,
                _ => continue,
            };
            for link in directives.get_all("link") {
                let Some(url) = link
                    .specified_argument_by_name("url")
                    .and_then(|v| v.as_str())
                else {
                    continue;
                };
                if !url.contains("specs.apollo.dev/federation/v2") {
                    continue;
                }
                names.fed2 = true;
                if let Some(prefix) = link
                    .specified_argument_by_name("as")
                    .and_then(|v| v.as_str())
                {
                    names.prefix = prefix.trim_start_matches('@').to_owned();
                }
                let imports = link
                    .specified_argument_by_name("import")
                    .and_then(|v| v.as_list())
                    .unwrap_or_default();
                for import in imports {
                    let (name, alias) = if let Some(name) = import.as_str() {
                        (name, name)
                    } else if let Some(object) = import.as_object() {
                        let field = |key: &str| {
                            object
                                .iter()
                                .find(|(k, _)| k == key)
                                .and_then(|(_, v)| v.as_str())
                        };
                        let Some(name) = field("name") else { continue };
                        (name, field("as").unwrap_or(name))
                    } else {
                        continue;
                    };
                    if let Some(name) = name.strip_prefix('@') {
                        names
                            .imports
                            .insert(name.to_owned(), alias.trim_start_matches('@').to_owned());
                    }
                }
            }
        }
        names
    }

    /// The local name of a federation directive given its canonical (spec) name.
    pub(super) fn local(&self, canonical: &str) -> String {
        if !self.fed2 {
            return canonical.to_owned();
        }
        match self.imports.get(canonical) {
            Some(alias) => alias.clone(),
            None => format!("{}__{canonical}", self.prefix),
        }
    }
}

/// Federation 2 directive definitions, injected when a subgraph uses them without defining
/// them. Arguments are typed loosely (`String`) so that SDLs which define `FieldSet`
/// themselves, or not at all, validate alike; `{}` is replaced with the local name.
pub(super) const FED2_DIRECTIVES: &[(&str, &str)] = &[
    (
        "key",
        "directive @{}(fields: String!, resolvable: Boolean = true) repeatable on OBJECT | INTERFACE",
    ),
    (
        "requires",
        "directive @{}(fields: String!) on FIELD_DEFINITION",
    ),
    (
        "provides",
        "directive @{}(fields: String!) on FIELD_DEFINITION",
    ),
    (
        "external",
        "directive @{}(reason: String) on OBJECT | FIELD_DEFINITION",
    ),
    ("extends", "directive @{} on OBJECT | INTERFACE"),
    (
        "shareable",
        "directive @{} repeatable on OBJECT | FIELD_DEFINITION",
    ),
    (
        "override",
        "directive @{}(from: String!, label: String) on FIELD_DEFINITION",
    ),
    ("interfaceObject", "directive @{} on OBJECT"),
    (
        "inaccessible",
        "directive @{} on FIELD_DEFINITION | OBJECT | INTERFACE | UNION | ARGUMENT_DEFINITION | SCALAR | ENUM | ENUM_VALUE | INPUT_OBJECT | INPUT_FIELD_DEFINITION",
    ),
    (
        "tag",
        "directive @{}(name: String!) repeatable on FIELD_DEFINITION | OBJECT | INTERFACE | UNION | ARGUMENT_DEFINITION | SCALAR | ENUM | ENUM_VALUE | INPUT_OBJECT | INPUT_FIELD_DEFINITION | SCHEMA",
    ),
    (
        "composeDirective",
        "directive @{}(name: String!) repeatable on SCHEMA",
    ),
    (
        "authenticated",
        "directive @{} on FIELD_DEFINITION | OBJECT | INTERFACE | SCALAR | ENUM",
    ),
    (
        "requiresScopes",
        "directive @{}(scopes: [[String!]!]!) on FIELD_DEFINITION | OBJECT | INTERFACE | SCALAR | ENUM",
    ),
    (
        "policy",
        "directive @{}(policies: [[String!]!]!) on FIELD_DEFINITION | OBJECT | INTERFACE | SCALAR | ENUM",
    ),
    (
        "context",
        "directive @{}(name: String!) repeatable on INTERFACE | OBJECT | UNION",
    ),
    (
        "fromContext",
        "directive @{}(field: String) on ARGUMENT_DEFINITION",
    ),
    (
        "cost",
        "directive @{}(weight: Int!) on ARGUMENT_DEFINITION | ENUM | FIELD_DEFINITION | INPUT_FIELD_DEFINITION | OBJECT | SCALAR",
    ),
    (
        "listSize",
        "directive @{}(assumedSize: Int, slicingArguments: [String!], sizedFields: [String!], requireOneSlicingArgument: Boolean = true) on FIELD_DEFINITION",
    ),
];

/// The directives a Federation 1 subgraph may use (unprefixed, never imported).
pub(super) const FED1_DIRECTIVES: &[&str] = &[
    "key",
    "requires",
    "provides",
    "external",
    "extends",
    "inaccessible",
    "tag",
];

/// Support definitions injected when missing; all of them are stripped from the supergraph.
pub(super) const SUPPORT_TYPES: &[(&str, &str)] = &[
    ("_Any", "scalar _Any"),
    ("_FieldSet", "scalar _FieldSet"),
    ("FieldSet", "scalar FieldSet"),
    ("federation__FieldSet", "scalar federation__FieldSet"),
    ("federation__Scope", "scalar federation__Scope"),
    ("federation__Policy", "scalar federation__Policy"),
    ("link__Import", "scalar link__Import"),
    ("link__Purpose", "enum link__Purpose { SECURITY EXECUTION }"),
    ("_Service", "type _Service { sdl: String }"),
];

/// Names of federation plumbing types that never appear in the supergraph.
pub(super) fn is_federation_internal_type(name: &str) -> bool {
    matches!(name, "_Any" | "_Entity" | "_Service" | "_FieldSet")
        || name.starts_with("link__")
        || name.starts_with("federation__")
        || name.starts_with("join__")
}

/// Builds the SDL with every federation definition the subgraph uses but does not define,
/// plus a placeholder `Query` (as Apollo's `_service` field) when the subgraph has none,
/// because a schema without a query root does not validate.
pub(super) fn injected_definitions(doc: &ast::Document, names: &FedNames) -> String {
    let mut defined_directives = HashSet::new();
    let mut defined_types = HashSet::new();
    let mut query_root = None;
    let mut has_explicit_roots = false;
    for definition in &doc.definitions {
        match definition {
            ast::Definition::DirectiveDefinition(def) => {
                defined_directives.insert(def.name.as_str());
            }
            ast::Definition::SchemaDefinition(def) => {
                for op in &def.root_operations {
                    has_explicit_roots = true;
                    if op.0 == OperationType::Query {
                        query_root = Some(op.1.as_str());
                    }
                }
            }
            ast::Definition::SchemaExtension(ext) => {
                for op in &ext.root_operations {
                    has_explicit_roots = true;
                    if op.0 == OperationType::Query {
                        query_root = Some(op.1.as_str());
                    }
                }
            }
            other => {
                if let Some(name) = other.name() {
                    defined_types.insert(name.as_str());
                }
            }
        }
    }
    let mut out = String::new();
    if names.fed2 {
        for (canonical, template) in FED2_DIRECTIVES {
            let local = names.local(canonical);
            if !defined_directives.contains(local.as_str()) {
                out.push_str(&template.replace("{}", &local));
                out.push('\n');
            }
        }
    } else {
        for canonical in FED1_DIRECTIVES {
            if defined_directives.contains(canonical) {
                continue;
            }
            if let Some((_, template)) = FED2_DIRECTIVES.iter().find(|(n, _)| n == canonical) {
                out.push_str(&template.replace("{}", canonical));
                out.push('\n');
            }
        }
    }
    if !defined_directives.contains("link") {
        out.push_str(
            "directive @link(url: String, as: String, for: link__Purpose, import: [link__Import]) repeatable on SCHEMA\n",
        );
    }
    for (name, definition) in SUPPORT_TYPES {
        if !defined_types.contains(name) {
            out.push_str(definition);
            out.push('\n');
        }
    }
    let query_root = query_root.unwrap_or("Query");
    if !defined_types.contains(query_root) {
        let _ = writeln!(out, "type {query_root} {{ _service: _Service! }}");
        if has_explicit_roots {
            let _ = writeln!(out, "extend schema {{ query: {query_root} }}");
        }
    }
    out
}
