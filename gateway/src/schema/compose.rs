//! Apollo Federation v2 composition: subgraph SDLs in, supergraph SDL (join v0.3) out.
//!
//! Each subgraph SDL is parsed and validated with `apollo-compiler` (federation directive
//! definitions are injected when the SDL does not define them), its federation directives
//! are read (`@key`, `@shareable`, `@external`, `@requires`, `@provides`, `@override`,
//! `@inaccessible`, `@tag`, `@interfaceObject`, `@extends`, with Federation 2 `@link` imports,
//! renames and `federation__` prefixes, or Federation 1 conventions), and the types are merged
//! following Apollo's rules: output field types widen, argument and input field types narrow,
//! input objects and input-only enums intersect, other enums and unions take the union, and a
//! field resolved by several subgraphs must be shareable. The result is printed in the format
//! Apollo/Hive composition emits (`@join__type`, `@join__field`, `@join__implements`,
//! `@join__unionMember`, `@join__enumValue`, `@join__graph`) and re-validated before returning.
//!
//! Not (yet) done: the satisfiability check (whether every field is reachable from the
//! roots through keys), `@composeDirective` and custom/executable directive propagation,
//! `@context`/`@fromContext`, progressive override labels, `@policy`/`@cost` propagation
//! (they are accepted and dropped), join v0.4+ features, and
//! hints (non-fatal warnings). `@external` fields that are only used by `@provides` do not
//! need the owning field to be `@shareable` here (Apollo is stricter).

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use apollo_compiler::ast::{self, OperationType, Type};
use apollo_compiler::executable::{self, FieldSet};
use apollo_compiler::schema::{Component, ExtendedType};
use apollo_compiler::validation::{DiagnosticList, Valid};
use apollo_compiler::{Name, Node, Schema};
use indexmap::{IndexMap, IndexSet};

/// One subgraph to compose.
#[derive(Debug, Clone)]
pub struct SubgraphInput {
    /// Subgraph name, as referenced by `@override(from:)` and printed in `@join__graph`.
    pub name: String,
    /// Routing URL printed in `@join__graph(url:)`.
    pub url: String,
    /// The subgraph schema (Federation 1 or 2 SDL).
    pub sdl: String,
}

/// All errors found while composing; `Display` prints one error per line.
#[derive(Debug, thiserror::Error)]
#[error("{}", display_lines(.0))]
pub struct CompositionErrors(pub Vec<CompositionError>);

/// One composition error, located by subgraph and schema coordinate where possible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{code}: {message}", location_prefix(.subgraph.as_deref(), .coordinate.as_deref()))]
pub struct CompositionError {
    /// The subgraph the problem is in (or the first one involved), if it is local to one.
    pub subgraph: Option<String>,
    /// Schema coordinate such as `Product.price` or `Query.user(id:)`.
    pub coordinate: Option<String>,
    /// Stable machine-readable code, named after Apollo's composition error codes.
    pub code: &'static str,
    /// What is wrong and what to change.
    pub message: String,
}

fn display_lines(errors: &[CompositionError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

fn location_prefix(subgraph: Option<&str>, coordinate: Option<&str>) -> String {
    let mut prefix = String::new();
    if let Some(subgraph) = subgraph {
        let _ = write!(prefix, "[{subgraph}] ");
    }
    if let Some(coordinate) = coordinate {
        let _ = write!(prefix, "{coordinate}: ");
    }
    prefix
}

/// Composes the subgraphs into a Federation 2 supergraph SDL (join v0.3).
///
/// Subgraphs are processed in name order so the output does not depend on input order.
/// Returns every error found rather than stopping at the first one.
pub fn compose(subgraphs: &[SubgraphInput]) -> Result<String, CompositionErrors> {
    let mut errors = Vec::new();
    if subgraphs.is_empty() {
        errors.push(error(
            None,
            None,
            "NO_SUBGRAPHS",
            "no subgraphs to compose: provide at least one subgraph".into(),
        ));
        return Err(CompositionErrors(errors));
    }
    let mut inputs: Vec<&SubgraphInput> = subgraphs.iter().collect();
    inputs.sort_by(|a, b| a.name.cmp(&b.name));
    let mut seen = HashSet::new();
    for input in &inputs {
        if input.name.is_empty() {
            errors.push(error(
                None,
                None,
                "INVALID_SUBGRAPH_NAME",
                "a subgraph has an empty name: give every subgraph a unique, non-empty name".into(),
            ));
        } else if !seen.insert(input.name.as_str()) {
            errors.push(error(
                Some(&input.name),
                None,
                "DUPLICATE_SUBGRAPH_NAME",
                format!(
                    "subgraph name \"{}\" is used more than once: subgraph names must be unique",
                    input.name
                ),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(CompositionErrors(errors));
    }

    let graph_names = graph_enum_values(&inputs);
    let loaded: Vec<Subgraph> = inputs
        .iter()
        .zip(graph_names)
        .filter_map(|(input, graph)| load_subgraph(input, graph, &mut errors))
        .collect();
    if loaded.len() != inputs.len() {
        // Merging partially loaded subgraphs would only produce misleading follow-up errors.
        return Err(CompositionErrors(errors));
    }

    let mut merger = Merger::new(&loaded);
    let types = merger.merge();
    errors.append(&mut merger.errors);
    if !errors.is_empty() {
        return Err(CompositionErrors(errors));
    }

    let sdl = print_supergraph(&loaded, &types);
    if let Err(invalid) = Schema::parse_and_validate(&sdl, "supergraph.graphql") {
        // A guard against merge rules this module does not check yet: never hand out a
        // supergraph that the gateway itself would reject.
        errors.push(error(
            None,
            None,
            "INVALID_SUPERGRAPH",
            format!(
                "the composed supergraph is not a valid schema: {}",
                diagnostics_text(&invalid.errors)
            ),
        ));
        return Err(CompositionErrors(errors));
    }
    Ok(sdl)
}

fn error(
    subgraph: Option<&str>,
    coordinate: Option<String>,
    code: &'static str,
    message: String,
) -> CompositionError {
    CompositionError {
        subgraph: subgraph.map(str::to_owned),
        coordinate,
        code,
        message,
    }
}

fn diagnostics_text(diagnostics: &DiagnosticList) -> String {
    diagnostics
        .iter()
        .map(|diagnostic| match diagnostic.line_column_range() {
            Some(range) => format!(
                "{} (line {}, column {})",
                diagnostic.error, range.start.line, range.start.column
            ),
            None => diagnostic.error.to_string(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// `join__Graph` value names: the subgraph name uppercased, non-alphanumerics replaced by
/// `_`, made unique with a numeric suffix (like Apollo) so `a-b` and `a_b` can coexist.
fn graph_enum_values(inputs: &[&SubgraphInput]) -> Vec<String> {
    let mut used = HashSet::new();
    inputs
        .iter()
        .map(|input| {
            let mut base: String = input
                .name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect();
            if base.starts_with(|c: char| c.is_ascii_digit()) {
                base.insert(0, '_');
            }
            let mut candidate = base.clone();
            let mut suffix = 1;
            while !used.insert(candidate.clone()) {
                candidate = format!("{base}_{suffix}");
                suffix += 1;
            }
            candidate
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Subgraph model
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TypeKind {
    Scalar,
    Object,
    Interface,
    Union,
    Enum,
    InputObject,
}

impl TypeKind {
    fn describe(self) -> &'static str {
        match self {
            TypeKind::Scalar => "Scalar Type",
            TypeKind::Object => "Object Type",
            TypeKind::Interface => "Interface Type",
            TypeKind::Union => "Union Type",
            TypeKind::Enum => "Enum Type",
            TypeKind::InputObject => "Input Object Type",
        }
    }
}

/// Directives that survive composition on any element: `@inaccessible`, `@tag`, the
/// authorization directives `@authenticated` / `@requiresScopes`, and the built-in
/// `@deprecated` / `@specifiedBy` (other subgraph directives are dropped).
#[derive(Debug, Clone, Default)]
struct Applied {
    inaccessible: bool,
    tags: Vec<String>,
    authenticated: bool,
    /// `@requiresScopes`: alternatives (OR) of scope sets (AND).
    scopes: Option<Vec<Vec<String>>>,
    kept: Vec<Node<ast::Directive>>,
}

/// Two subgraphs' scope requirements on one element must both hold: every pair of
/// alternatives becomes one alternative needing both sets.
fn and_scopes(a: &[Vec<String>], b: &[Vec<String>]) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = Vec::new();
    for x in a {
        for y in b {
            let mut set = x.clone();
            for s in y {
                if !set.contains(s) {
                    set.push(s.clone());
                }
            }
            set.sort();
            if !out.contains(&set) {
                out.push(set);
            }
        }
    }
    out
}

impl Applied {
    fn merge(&mut self, other: &Applied) {
        self.inaccessible |= other.inaccessible;
        self.authenticated |= other.authenticated;
        self.scopes = match (self.scopes.take(), &other.scopes) {
            (Some(mine), Some(theirs)) if mine != *theirs => Some(and_scopes(&mine, theirs)),
            (Some(mine), _) => Some(mine),
            (None, theirs) => theirs.clone(),
        };
        for tag in &other.tags {
            if !self.tags.contains(tag) {
                self.tags.push(tag.clone());
            }
        }
        for directive in &other.kept {
            if !self.kept.iter().any(|kept| kept.name == directive.name) {
                self.kept.push(directive.clone());
            }
        }
    }

    fn render(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .kept
            .iter()
            .map(|d| d.serialize().no_indent().to_string())
            .collect();
        if self.inaccessible {
            out.push("@inaccessible".into());
        }
        out.extend(
            self.tags
                .iter()
                .map(|tag| format!("@tag(name: {})", quote(tag))),
        );
        if self.authenticated {
            out.push("@authenticated".into());
        }
        if let Some(scopes) = &self.scopes {
            let sets: Vec<String> = scopes
                .iter()
                .map(|set| {
                    let items: Vec<String> = set.iter().map(|s| quote(s)).collect();
                    format!("[{}]", items.join(", "))
                })
                .collect();
            out.push(format!("@requiresScopes(scopes: [{}])", sets.join(", ")));
        }
        out
    }
}

#[derive(Debug, Clone)]
struct KeyDef {
    fields: String,
    resolvable: bool,
}

#[derive(Debug, Clone)]
struct SubInputValue {
    description: Option<String>,
    ty: Type,
    default: Option<Node<ast::Value>>,
    applied: Applied,
}

impl SubInputValue {
    fn is_required(&self) -> bool {
        self.ty.is_non_null() && self.default.is_none()
    }
}

#[derive(Debug, Clone)]
struct SubField {
    description: Option<String>,
    ty: Type,
    args: IndexMap<String, SubInputValue>,
    external: bool,
    shareable: bool,
    requires: Option<String>,
    provides: Option<String>,
    override_from: Option<String>,
    applied: Applied,
}

#[derive(Debug, Clone)]
struct SubEnumValue {
    description: Option<String>,
    applied: Applied,
}

#[derive(Debug, Clone)]
struct SubType {
    kind: TypeKind,
    description: Option<String>,
    extension: bool,
    interface_object: bool,
    keys: Vec<KeyDef>,
    implements: Vec<String>,
    fields: IndexMap<String, SubField>,
    input_fields: IndexMap<String, SubInputValue>,
    members: Vec<String>,
    values: IndexMap<String, SubEnumValue>,
    applied: Applied,
}

impl SubType {
    fn empty(kind: TypeKind) -> Self {
        SubType {
            kind,
            description: None,
            extension: false,
            interface_object: false,
            keys: Vec::new(),
            implements: Vec::new(),
            fields: IndexMap::new(),
            input_fields: IndexMap::new(),
            members: Vec::new(),
            values: IndexMap::new(),
            applied: Applied::default(),
        }
    }
}

/// A subgraph reduced to what composition needs, with root types renamed to
/// `Query`/`Mutation`/`Subscription` and federation internals removed.
#[derive(Debug)]
struct Subgraph {
    name: String,
    url: String,
    graph: String,
    fed2: bool,
    types: IndexMap<String, SubType>,
    /// `(type, field)` selected by some `@key` (also nested): implicitly shareable.
    key_fields: HashSet<(String, String)>,
    /// `(type, field)` used by `@key` or `@requires`: kept as `usedOverridden` when overridden.
    used_fields: HashSet<(String, String)>,
}

/// How a subgraph spells the federation directives (imports, renames, `federation__` prefix).
struct FedNames {
    fed2: bool,
    prefix: String,
    imports: HashMap<String, String>,
}

impl FedNames {
    fn from_document(doc: &ast::Document) -> Self {
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
    fn local(&self, canonical: &str) -> String {
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
const FED2_DIRECTIVES: &[(&str, &str)] = &[
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
const FED1_DIRECTIVES: &[&str] = &[
    "key",
    "requires",
    "provides",
    "external",
    "extends",
    "inaccessible",
    "tag",
];

/// Support definitions injected when missing; all of them are stripped from the supergraph.
const SUPPORT_TYPES: &[(&str, &str)] = &[
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
fn is_federation_internal_type(name: &str) -> bool {
    matches!(name, "_Any" | "_Entity" | "_Service" | "_FieldSet")
        || name.starts_with("link__")
        || name.starts_with("federation__")
        || name.starts_with("join__")
}

/// Parses, validates and extracts one subgraph; reports problems into `errors`.
fn load_subgraph(
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

fn push_invalid_graphql(errors: &mut Vec<CompositionError>, subgraph: &str, list: &DiagnosticList) {
    for diagnostic in list.iter() {
        let location = diagnostic
            .line_column_range()
            .map(|range| format!("line {}, column {}: ", range.start.line, range.start.column))
            .unwrap_or_default();
        errors.push(error(
            Some(subgraph),
            None,
            "INVALID_GRAPHQL",
            format!(
                "{location}{} (fix the subgraph SDL so it is a valid GraphQL schema)",
                diagnostic.error
            ),
        ));
    }
}

/// Builds the SDL with every federation definition the subgraph uses but does not define,
/// plus a placeholder `Query` (as Apollo's `_service` field) when the subgraph has none,
/// because a schema without a query root does not validate.
fn injected_definitions(doc: &ast::Document, names: &FedNames) -> String {
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

/// Borrowed view of a directive list, whatever `apollo-compiler` container it came from.
struct Dirs<'a>(Vec<&'a ast::Directive>);

impl<'a> Dirs<'a> {
    fn of_type(list: &'a apollo_compiler::schema::DirectiveList) -> Self {
        Dirs(list.iter().map(|d| -> &ast::Directive { d }).collect())
    }

    fn of_ast(list: &'a ast::DirectiveList) -> Self {
        Dirs(list.iter().map(|d| -> &ast::Directive { d }).collect())
    }

    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|d| d.name == name)
    }

    fn all(&self, name: &'a str) -> impl Iterator<Item = &'a ast::Directive> + '_ {
        self.0.iter().copied().filter(move |d| d.name == name)
    }

    fn string_arg(&self, name: &str, arg: &str) -> Option<String> {
        self.0
            .iter()
            .find(|d| d.name == name)
            .and_then(|d| d.specified_argument_by_name(arg))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    }
}

/// Local names of the directives composition interprets, resolved once per subgraph.
struct Local {
    key: String,
    requires: String,
    provides: String,
    external: String,
    extends: String,
    shareable: String,
    override_: String,
    interface_object: String,
    inaccessible: String,
    tag: String,
    authenticated: String,
    requires_scopes: String,
}

struct Loader<'a> {
    input: &'a SubgraphInput,
    schema: &'a Valid<Schema>,
    names: FedNames,
    local: Local,
    /// Types with a real (non-`extend`) definition in the SDL.
    defined: HashSet<String>,
    /// Root type renames, e.g. `RootQuery` -> `Query`.
    renames: HashMap<String, String>,
    errors: &'a mut Vec<CompositionError>,
    key_fields: HashSet<(String, String)>,
    used_fields: HashSet<(String, String)>,
}

impl<'a> Loader<'a> {
    fn new(
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

    fn err(&mut self, coordinate: String, code: &'static str, message: String) {
        self.errors.push(error(
            Some(&self.input.name),
            Some(coordinate),
            code,
            message,
        ));
    }

    fn rename<'n>(&'n self, name: &'n str) -> &'n str {
        self.renames.get(name).map_or(name, String::as_str)
    }

    fn rename_type(&self, ty: &Type) -> Type {
        match ty {
            Type::Named(n) => Type::Named(self.renamed_name(n)),
            Type::NonNullNamed(n) => Type::NonNullNamed(self.renamed_name(n)),
            Type::List(inner) => Type::List(Box::new(self.rename_type(inner))),
            Type::NonNullList(inner) => Type::NonNullList(Box::new(self.rename_type(inner))),
        }
    }

    fn renamed_name(&self, name: &ast::NamedType) -> ast::NamedType {
        match self.renames.get(name.as_str()) {
            // Canonical root names are valid GraphQL names, so this cannot fail.
            Some(renamed) => Name::new(renamed).unwrap_or_else(|_| name.clone()),
            None => name.clone(),
        }
    }

    fn applied(&self, dirs: &Dirs) -> Applied {
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

    fn extract_types(&mut self) -> IndexMap<String, SubType> {
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
    fn is_referenced(&self, name: &str) -> bool {
        self.schema.types.values().any(|ty| match ty {
            ExtendedType::Object(o) => o.fields.values().any(|f| field_mentions(f, name)),
            ExtendedType::Interface(i) => i.fields.values().any(|f| field_mentions(f, name)),
            ExtendedType::InputObject(i) => {
                i.fields.values().any(|f| f.ty.inner_named_type() == name)
            }
            _ => false,
        })
    }

    fn extract_type(&mut self, name: &str, ty: &ExtendedType, is_query: bool) -> Option<SubType> {
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

    fn input_value(&self, def: &ast::InputValueDefinition) -> SubInputValue {
        SubInputValue {
            description: def.description.as_ref().map(|d| d.to_string()),
            ty: self.rename_type(&def.ty),
            default: def.default_value.clone(),
            applied: self.applied(&Dirs::of_ast(&def.directives)),
        }
    }

    /// Reads and validates the `@key`s of a type, recording the fields they select.
    fn extract_keys(&mut self, name: &str, renamed: &str, dirs: &Dirs) -> Vec<KeyDef> {
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

    fn parse_field_set(&self, type_name: &str, fields: &str) -> Result<Valid<FieldSet>, String> {
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

    fn field_is_external(&self, type_name: &str, field: &str) -> bool {
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

    fn extract_fields(
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

    fn check_requires(&mut self, name: &str, renamed: &str, coordinate: &str, fields: &str) {
        match self.parse_field_set(name, fields) {
            Ok(set) => {
                let mut selected = Vec::new();
                collect_selected(&set.selection_set, &mut selected);
                for (ty, field) in selected {
                    self.used_fields
                        .insert((self.rename(&ty).to_owned(), field));
                }
                if self.names.fed2 {
                    // Only leaves must be external: a local field on the way to
                    // external ones (`author { name }`) is fine, as in Apollo.
                    let missing: Vec<String> = top_level_leaf_fields(&set.selection_set)
                        .into_iter()
                        .filter(|f| !self.field_is_external(name, f))
                        .collect();
                    if !missing.is_empty() {
                        self.err(
                            coordinate.to_owned(),
                            "REQUIRES_FIELDS_MISSING_EXTERNAL",
                            format!(
                                "@requires(fields: {}) on \"{coordinate}\" uses {} which {} not \
                                 marked @external: declare the required fields on \"{renamed}\" \
                                 with @external in this subgraph",
                                quote(fields),
                                quoted_list(&missing),
                                if missing.len() == 1 { "is" } else { "are" }
                            ),
                        );
                    }
                }
            }
            Err(message) => self.err(
                coordinate.to_owned(),
                "REQUIRES_INVALID_FIELDS",
                format!(
                    "@requires(fields: {}) on \"{coordinate}\" is invalid: {message}. If the \
                     field is defined in another subgraph, add it to \"{renamed}\" in this \
                     subgraph with @external",
                    quote(fields)
                ),
            ),
        }
    }

    fn check_provides(&mut self, coordinate: &str, ty: &Type, fields: &str) {
        let target = ty.inner_named_type();
        let composite = matches!(
            self.schema.types.get(target.as_str()),
            Some(ExtendedType::Object(_) | ExtendedType::Interface(_) | ExtendedType::Union(_))
        );
        if !composite {
            self.err(
                coordinate.to_owned(),
                "PROVIDES_ON_NON_OBJECT_FIELD",
                format!(
                    "@provides(fields: {}) on \"{coordinate}\" is invalid: the field returns \
                     \"{target}\", which is not an object, interface or union type. Remove \
                     @provides from this field",
                    quote(fields)
                ),
            );
            return;
        }
        match self.parse_field_set(target, fields) {
            Ok(set) => {
                if self.names.fed2 && self.schema.get_object(target.as_str()).is_some() {
                    // Only leaves must be external: a local field on the way to
                    // external ones (`author { name }`) is fine, as in Apollo.
                    let missing: Vec<String> = top_level_leaf_fields(&set.selection_set)
                        .into_iter()
                        .filter(|f| !self.field_is_external(target, f))
                        .collect();
                    if !missing.is_empty() {
                        self.err(
                            coordinate.to_owned(),
                            "PROVIDES_FIELDS_MISSING_EXTERNAL",
                            format!(
                                "@provides(fields: {}) on \"{coordinate}\" provides {} of \
                                 \"{target}\" which {} not marked @external: mark the provided \
                                 fields @external in this subgraph",
                                quote(fields),
                                quoted_list(&missing),
                                if missing.len() == 1 { "is" } else { "are" }
                            ),
                        );
                    }
                }
            }
            Err(message) => self.err(
                coordinate.to_owned(),
                "PROVIDES_INVALID_FIELDS",
                format!(
                    "@provides(fields: {}) on \"{coordinate}\" is invalid: {message}. Provided \
                     fields must exist on \"{target}\" in this subgraph (with @external)",
                    quote(fields)
                ),
            ),
        }
    }
}

fn field_mentions(field: &ast::FieldDefinition, name: &str) -> bool {
    field.ty.inner_named_type() == name
        || field
            .arguments
            .iter()
            .any(|arg| arg.ty.inner_named_type() == name)
}

/// Every `(parent type, field)` a field set selects, at any depth.
fn collect_selected(set: &executable::SelectionSet, out: &mut Vec<(String, String)>) {
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

/// The leaf fields (no subselection) a field set selects directly on its parent type.
fn top_level_leaf_fields(set: &executable::SelectionSet) -> Vec<String> {
    set.selections
        .iter()
        .filter_map(|selection| match selection {
            executable::Selection::Field(field)
                if !field.name.starts_with("__") && field.selection_set.selections.is_empty() =>
            {
                Some(field.name.to_string())
            }
            _ => None,
        })
        .collect()
}

fn has_arguments(set: &executable::SelectionSet) -> bool {
    set.selections.iter().any(|selection| match selection {
        executable::Selection::Field(field) => {
            !field.arguments.is_empty() || has_arguments(&field.selection_set)
        }
        executable::Selection::InlineFragment(fragment) => has_arguments(&fragment.selection_set),
        executable::Selection::FragmentSpread(_) => false,
    })
}

// ---------------------------------------------------------------------------------------------
// Merged model
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct JoinType {
    graph: usize,
    key: Option<String>,
    extension: bool,
    resolvable: bool,
    interface_object: bool,
}

/// One `@join__field`; `graph: None` marks a field added to an implementation because an
/// `@interfaceObject` provides it (no subgraph knows it on the concrete type).
#[derive(Debug, Clone, Default)]
struct JoinField {
    graph: Option<usize>,
    requires: Option<String>,
    provides: Option<String>,
    ty: Option<String>,
    external: bool,
    override_from: Option<String>,
    used_overridden: bool,
}

#[derive(Debug, Clone)]
struct MInputValue {
    description: Option<String>,
    ty: Type,
    default: Option<Node<ast::Value>>,
    applied: Applied,
    join_fields: Option<Vec<JoinField>>,
}

#[derive(Debug, Clone)]
struct MField {
    description: Option<String>,
    ty: Type,
    args: IndexMap<String, MInputValue>,
    join_fields: Option<Vec<JoinField>>,
    applied: Applied,
    from_interface_object: bool,
}

#[derive(Debug, Clone)]
struct MEnumValue {
    description: Option<String>,
    graphs: Vec<usize>,
    applied: Applied,
}

#[derive(Debug, Clone)]
struct MType {
    kind: TypeKind,
    description: Option<String>,
    join_types: Vec<JoinType>,
    implements: IndexMap<String, Vec<usize>>,
    fields: IndexMap<String, MField>,
    input_fields: IndexMap<String, MInputValue>,
    members: IndexMap<String, Vec<usize>>,
    values: IndexMap<String, MEnumValue>,
    applied: Applied,
}

/// Whether arguments/input fields are being merged (only changes error codes and wording).
#[derive(Clone, Copy, PartialEq, Eq)]
enum InputPosition {
    Argument,
    InputField,
}

struct Merger<'a> {
    subgraphs: &'a [Subgraph],
    errors: Vec<CompositionError>,
    /// Object/interface name -> interfaces and unions it belongs to in some subgraph.
    supertypes: HashMap<String, HashSet<String>>,
    enum_input_usage: HashMap<String, String>,
    enum_output_usage: HashMap<String, String>,
}

impl<'a> Merger<'a> {
    fn new(subgraphs: &'a [Subgraph]) -> Self {
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

    fn err(
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

    fn name(&self, graph: usize) -> &'a str {
        &self.subgraphs[graph].name
    }

    fn is_subtype(&self, sub: &str, sup: &str) -> bool {
        self.supertypes
            .get(sub)
            .is_some_and(|supers| supers.contains(sup))
    }

    fn merge(&mut self) -> IndexMap<String, MType> {
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

    fn merge_type(&mut self, name: &str, defs: &[(usize, &'a SubType)]) -> Option<MType> {
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

    fn merged_kind(&mut self, name: &str, defs: &[(usize, &SubType)]) -> Option<TypeKind> {
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

    fn merge_fields(&mut self, type_name: &str, merged: &mut MType, defs: &[(usize, &'a SubType)]) {
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

    fn merge_field(
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
    fn resolve_overrides(
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

    fn check_sharing(
        &mut self,
        coordinate: &str,
        type_name: &str,
        field_name: &str,
        type_defs: &[(usize, &SubType)],
        defs: &[(usize, &SubField)],
        overridden: &HashMap<usize, bool>,
    ) {
        let resolving: Vec<usize> = defs
            .iter()
            .filter(|(g, f)| !f.external && !overridden.contains_key(g))
            .map(|(g, _)| *g)
            .collect();
        if resolving.len() < 2 {
            return;
        }
        let key = (type_name.to_owned(), field_name.to_owned());
        let non_shareable: Vec<usize> = defs
            .iter()
            .filter(|(g, f)| {
                let subgraph = &self.subgraphs[*g];
                resolving.contains(g)
                    && subgraph.fed2
                    && !f.shareable
                    && !subgraph.key_fields.contains(&key)
                    && !type_defs
                        .iter()
                        .any(|(tg, t)| tg == g && t.interface_object)
            })
            .map(|(g, _)| *g)
            .collect();
        if let Some(&first) = non_shareable.first() {
            let resolved_in: Vec<String> =
                resolving.iter().map(|g| self.name(*g).to_owned()).collect();
            let non_shareable_in: Vec<String> = non_shareable
                .iter()
                .map(|g| self.name(*g).to_owned())
                .collect();
            self.err(
                Some(first),
                coordinate,
                "INVALID_FIELD_SHARING",
                format!(
                    "non-shareable field \"{coordinate}\" is resolved from multiple subgraphs: it \
                     is resolved from subgraphs {} and defined as non-shareable in {}. Mark it \
                     @shareable in every subgraph that resolves it, or resolve it in one subgraph \
                     only (@external, @override)",
                    quoted_list(&resolved_in),
                    subgraph_list(&non_shareable_in),
                ),
            );
        }
    }

    /// Merges arguments or input fields: intersection, most restrictive type, equal defaults.
    fn merge_input_values(
        &mut self,
        parent: &str,
        sources: &[(usize, &'a IndexMap<String, SubInputValue>)],
        position: InputPosition,
    ) -> IndexMap<String, MInputValue> {
        let mut names: IndexSet<&str> = IndexSet::new();
        for (_, values) in sources {
            names.extend(values.keys().map(String::as_str));
        }
        let mut merged = IndexMap::new();
        for name in names {
            let coordinate = match position {
                InputPosition::Argument => format!("{parent}({name}:)"),
                InputPosition::InputField => format!("{parent}.{name}"),
            };
            let present: Vec<(usize, &SubInputValue)> = sources
                .iter()
                .filter_map(|(g, values)| values.get(name).map(|v| (*g, v)))
                .collect();
            if present.len() < sources.len() {
                if let Some((required_in, _)) = present.iter().find(|(_, v)| v.is_required()) {
                    let missing = sources
                        .iter()
                        .find(|(g, values)| !values.contains_key(name) && g != required_in)
                        .map(|(g, _)| *g);
                    let (code, what) = match position {
                        InputPosition::Argument => {
                            ("REQUIRED_ARGUMENT_MISSING_IN_SOME_SUBGRAPH", "argument")
                        }
                        InputPosition::InputField => (
                            "REQUIRED_INPUT_FIELD_MISSING_IN_SOME_SUBGRAPH",
                            "input field",
                        ),
                    };
                    let missing_name = missing.map(|g| self.name(g)).unwrap_or_default();
                    self.err(
                        missing,
                        coordinate.clone(),
                        code,
                        format!(
                            "{what} \"{coordinate}\" is required in subgraph \"{}\" but missing in \
                             subgraph \"{missing_name}\": add it to every subgraph or make it \
                             optional",
                            self.name(*required_in)
                        ),
                    );
                }
                // Otherwise silently dropped: only values every subgraph accepts survive.
                continue;
            }
            let (first_graph, first) = present[0];
            let mut ty = first.ty.clone();
            let mut default = first.default.clone();
            let mut default_graph = first_graph;
            let mut ok = true;
            for &(graph, value) in &present[1..] {
                match merge_input_type(&ty, &value.ty) {
                    Some(narrowed) => ty = narrowed,
                    None => {
                        let (code, what) = match position {
                            InputPosition::Argument => ("FIELD_ARGUMENT_TYPE_MISMATCH", "argument"),
                            InputPosition::InputField => ("FIELD_TYPE_MISMATCH", "field"),
                        };
                        self.err(
                            Some(graph),
                            coordinate.clone(),
                            code,
                            format!(
                                "type of {what} \"{coordinate}\" is incompatible across \
                                 subgraphs: it has type \"{}\" in subgraph \"{}\" but type \
                                 \"{}\" in subgraph \"{}\". Use the same type in every subgraph",
                                first.ty,
                                self.name(first_graph),
                                value.ty,
                                self.name(graph)
                            ),
                        );
                        ok = false;
                        break;
                    }
                }
                match (&default, &value.default) {
                    (Some(a), Some(b)) if a != b => {
                        let (code, what) = match position {
                            InputPosition::Argument => {
                                ("FIELD_ARGUMENT_DEFAULT_MISMATCH", "argument")
                            }
                            InputPosition::InputField => {
                                ("INPUT_FIELD_DEFAULT_MISMATCH", "input field")
                            }
                        };
                        self.err(
                            Some(graph),
                            coordinate.clone(),
                            code,
                            format!(
                                "{what} \"{coordinate}\" has incompatible default values across \
                                 subgraphs: it has default value {} in subgraph \"{}\" but \
                                 default value {} in subgraph \"{}\". Use the same default",
                                a.serialize().no_indent(),
                                self.name(default_graph),
                                b.serialize().no_indent(),
                                self.name(graph)
                            ),
                        );
                        ok = false;
                        break;
                    }
                    (None, Some(b)) => {
                        default = Some(b.clone());
                        default_graph = graph;
                    }
                    _ => {}
                }
            }
            if !ok {
                continue;
            }
            let mut applied = Applied::default();
            for (_, value) in &present {
                applied.merge(&value.applied);
            }
            let join_fields = (position == InputPosition::InputField
                && present.iter().any(|(_, v)| v.ty != ty))
            .then(|| {
                present
                    .iter()
                    .map(|(graph, value)| JoinField {
                        graph: Some(*graph),
                        ty: (value.ty != ty).then(|| value.ty.to_string()),
                        ..JoinField::default()
                    })
                    .collect()
            });
            merged.insert(
                name.to_owned(),
                MInputValue {
                    description: present.iter().find_map(|(_, v)| non_empty(&v.description)),
                    ty,
                    default,
                    applied,
                    join_fields,
                },
            );
        }
        merged
    }

    fn merge_input_object(
        &mut self,
        name: &str,
        merged: &mut MType,
        defs: &[(usize, &'a SubType)],
    ) {
        let sources: Vec<(usize, &IndexMap<String, SubInputValue>)> =
            defs.iter().map(|(g, d)| (*g, &d.input_fields)).collect();
        merged.input_fields = self.merge_input_values(name, &sources, InputPosition::InputField);
        if merged.input_fields.is_empty() {
            self.err(
                defs.first().map(|(g, _)| *g),
                name,
                "EMPTY_MERGED_INPUT_TYPE",
                format!(
                    "none of the fields of input type \"{name}\" are defined in all the \
                     subgraphs defining it: input types merge by intersection, so define at \
                     least one common field"
                ),
            );
        }
    }

    fn merge_enum(&mut self, name: &str, merged: &mut MType, defs: &[(usize, &'a SubType)]) {
        let mut all_values: IndexMap<&str, Vec<(usize, &SubEnumValue)>> = IndexMap::new();
        for &(graph, def) in defs {
            for (value, def) in &def.values {
                all_values.entry(value).or_default().push((graph, def));
            }
        }
        // Apollo's rule: output-only enums take the union of values, input-only enums the
        // intersection, and enums used both ways must agree everywhere.
        let used_as_input = self.enum_input_usage.contains_key(name);
        let used_as_output = self.enum_output_usage.contains_key(name);
        for (value, present) in all_values {
            if present.len() < defs.len() && used_as_input {
                let missing = defs
                    .iter()
                    .find(|(g, _)| !present.iter().any(|(pg, _)| pg == g))
                    .map(|(g, _)| *g);
                if used_as_output {
                    let input_at = self.enum_input_usage.get(name).cloned().unwrap_or_default();
                    let output_at = self
                        .enum_output_usage
                        .get(name)
                        .cloned()
                        .unwrap_or_default();
                    let missing_name = missing.map(|g| self.name(g)).unwrap_or_default();
                    self.err(
                        missing,
                        name,
                        "ENUM_VALUE_MISMATCH",
                        format!(
                            "enum type \"{name}\" is used as both input type (for example, as \
                             type of \"{input_at}\") and output type (for example, as type of \
                             \"{output_at}\"), but value \"{value}\" is not defined in all the \
                             subgraphs defining \"{name}\": it is missing in subgraph \
                             \"{missing_name}\". Define the same values everywhere"
                        ),
                    );
                }
                // Input-only enums keep only the values every subgraph accepts.
                continue;
            }
            let mut applied = Applied::default();
            for (_, v) in &present {
                applied.merge(&v.applied);
            }
            merged.values.insert(
                value.to_owned(),
                MEnumValue {
                    description: present.iter().find_map(|(_, v)| non_empty(&v.description)),
                    graphs: present.iter().map(|(g, _)| *g).collect(),
                    applied,
                },
            );
        }
        if merged.values.is_empty() {
            self.err(
                defs.first().map(|(g, _)| *g),
                name,
                "EMPTY_MERGED_ENUM_TYPE",
                format!(
                    "none of the values of enum \"{name}\" (used as an input type) are defined \
                     in all the subgraphs defining it: define at least one common value"
                ),
            );
        }
    }

    /// Fields an `@interfaceObject` contributes to an interface must also exist on the
    /// interface's implementations; they get a graph-less `@join__field` like Apollo's.
    fn add_interface_object_fields(&mut self, merged: &mut IndexMap<String, MType>) {
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

fn non_empty(description: &Option<String>) -> Option<String> {
    description.clone().filter(|d| !d.trim().is_empty())
}

/// Least restrictive common type for an output field (the supertype of both), if any.
fn merge_output_type(a: &Type, b: &Type, is_subtype: &dyn Fn(&str, &str) -> bool) -> Option<Type> {
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
fn merge_input_type(a: &Type, b: &Type) -> Option<Type> {
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

// ---------------------------------------------------------------------------------------------
// Printing
// ---------------------------------------------------------------------------------------------

/// Line width of the prettier-style layout used by Apollo/Hive supergraph outputs.
const MAX_WIDTH: usize = 80;
const INDENT: &str = "    ";

const JOIN_DIRECTIVES: &str = r#"directive @join__enumValue(graph: join__Graph!) repeatable on ENUM_VALUE

directive @join__field(
    graph: join__Graph
    requires: join__FieldSet
    provides: join__FieldSet
    type: String
    external: Boolean
    override: String
    usedOverridden: Boolean
) repeatable on FIELD_DEFINITION | INPUT_FIELD_DEFINITION

directive @join__graph(name: String!, url: String!) on ENUM_VALUE

directive @join__implements(
    graph: join__Graph!
    interface: String!
) repeatable on OBJECT | INTERFACE

directive @join__type(
    graph: join__Graph!
    key: join__FieldSet
    extension: Boolean! = false
    resolvable: Boolean! = true
    isInterfaceObject: Boolean! = false
) repeatable on OBJECT | INTERFACE | UNION | ENUM | INPUT_OBJECT | SCALAR

directive @join__unionMember(
    graph: join__Graph!
    member: String!
) repeatable on UNION

directive @link(
    url: String
    as: String
    for: link__Purpose
    import: [link__Import]
) repeatable on SCHEMA
"#;

const INACCESSIBLE_DIRECTIVE: &str = "directive @inaccessible on FIELD_DEFINITION | OBJECT | INTERFACE | UNION | ARGUMENT_DEFINITION | SCALAR | ENUM | ENUM_VALUE | INPUT_OBJECT | INPUT_FIELD_DEFINITION\n";

const TAG_DIRECTIVE: &str = "directive @tag(\n    name: String!\n) repeatable on FIELD_DEFINITION | OBJECT | INTERFACE | UNION | ARGUMENT_DEFINITION | SCALAR | ENUM | ENUM_VALUE | INPUT_OBJECT | INPUT_FIELD_DEFINITION | SCHEMA\n";

const AUTHENTICATED_DIRECTIVE: &str =
    "directive @authenticated on FIELD_DEFINITION | OBJECT | INTERFACE | SCALAR | ENUM\n";

const REQUIRES_SCOPES_DIRECTIVE: &str = "directive @requiresScopes(scopes: [[requiresScopes__Scope!]!]!) on FIELD_DEFINITION | OBJECT | INTERFACE | SCALAR | ENUM\n";

/// `[[String!]!]!` as nested vectors (a single list or string is coerced, as GraphQL
/// input coercion would).
fn scope_sets(value: &ast::Value) -> Vec<Vec<String>> {
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

const LINK_PURPOSE: &str = r#"enum link__Purpose {
    """
    `SECURITY` features provide metadata necessary to securely resolve fields.
    """
    SECURITY

    """
    `EXECUTION` features provide metadata necessary for operation execution.
    """
    EXECUTION
}
"#;

fn print_supergraph(subgraphs: &[Subgraph], types: &IndexMap<String, MType>) -> String {
    let applied = || {
        types.values().flat_map(|t| {
            std::iter::once(&t.applied)
                .chain(t.fields.values().flat_map(|f| {
                    std::iter::once(&f.applied).chain(f.args.values().map(|a| &a.applied))
                }))
                .chain(t.input_fields.values().map(|f| &f.applied))
                .chain(t.values.values().map(|v| &v.applied))
        })
    };
    let uses_inaccessible = applied().any(|a| a.inaccessible);
    let uses_tag = applied().any(|a| !a.tags.is_empty());
    let uses_authenticated = applied().any(|a| a.authenticated);
    let uses_scopes = applied().any(|a| a.scopes.is_some());

    let mut out = String::new();
    let mut links = vec![
        "@link(url: \"https://specs.apollo.dev/link/v1.0\")".to_owned(),
        "@link(url: \"https://specs.apollo.dev/join/v0.3\", for: EXECUTION)".to_owned(),
    ];
    if uses_tag {
        links.push("@link(url: \"https://specs.apollo.dev/tag/v0.3\")".to_owned());
    }
    if uses_inaccessible {
        links.push(
            "@link(url: \"https://specs.apollo.dev/inaccessible/v0.2\", for: SECURITY)".to_owned(),
        );
    }
    if uses_authenticated {
        links.push(
            "@link(url: \"https://specs.apollo.dev/authenticated/v0.1\", for: SECURITY)".to_owned(),
        );
    }
    if uses_scopes {
        links.push(
            "@link(url: \"https://specs.apollo.dev/requiresScopes/v0.1\", for: SECURITY)"
                .to_owned(),
        );
    }
    push_with_directives(&mut out, "", "schema", &links, " {");
    for (op, name) in [
        ("query", "Query"),
        ("mutation", "Mutation"),
        ("subscription", "Subscription"),
    ] {
        if types.contains_key(name) {
            let _ = writeln!(out, "{INDENT}{op}: {name}");
        }
    }
    out.push_str("}\n\n");

    if uses_inaccessible {
        out.push_str(INACCESSIBLE_DIRECTIVE);
        out.push('\n');
    }
    out.push_str(JOIN_DIRECTIVES);
    if uses_tag {
        out.push('\n');
        out.push_str(TAG_DIRECTIVE);
    }
    if uses_authenticated {
        out.push('\n');
        out.push_str(AUTHENTICATED_DIRECTIVE);
    }
    if uses_scopes {
        out.push('\n');
        out.push_str(REQUIRES_SCOPES_DIRECTIVE);
    }

    let mut graph_enum = String::from("enum join__Graph {\n");
    for subgraph in subgraphs {
        let directive = format!(
            "@join__graph(name: {}, url: {})",
            quote(&subgraph.name),
            quote(&subgraph.url)
        );
        push_with_directives(&mut graph_enum, INDENT, &subgraph.graph, &[directive], "");
    }
    graph_enum.push_str("}\n");

    let mut blocks: Vec<(String, String)> = vec![
        ("join__FieldSet".into(), "scalar join__FieldSet\n".into()),
        ("join__Graph".into(), graph_enum),
        ("link__Import".into(), "scalar link__Import\n".into()),
        ("link__Purpose".into(), LINK_PURPOSE.into()),
    ];
    if uses_scopes {
        blocks.push((
            "requiresScopes__Scope".into(),
            "scalar requiresScopes__Scope\n".into(),
        ));
    }
    for (name, ty) in types {
        blocks.push((name.clone(), print_type(subgraphs, name, ty)));
    }
    blocks.sort_by(|(a, _), (b, _)| {
        a.to_lowercase()
            .cmp(&b.to_lowercase())
            .then_with(|| a.cmp(b))
    });
    for (_, block) in blocks {
        out.push('\n');
        out.push_str(&block);
    }
    out
}

fn print_type(subgraphs: &[Subgraph], name: &str, ty: &MType) -> String {
    let graph = |g: usize| subgraphs[g].graph.as_str();
    let mut out = String::new();
    print_description(&mut out, "", ty.description.as_deref());
    let mut directives: Vec<String> = ty
        .join_types
        .iter()
        .map(|join| {
            let mut args = format!("graph: {}", graph(join.graph));
            if let Some(key) = &join.key {
                let _ = write!(args, ", key: {}", quote(key));
            }
            if join.extension {
                args.push_str(", extension: true");
            }
            if !join.resolvable {
                args.push_str(", resolvable: false");
            }
            if join.interface_object {
                args.push_str(", isInterfaceObject: true");
            }
            format!("@join__type({args})")
        })
        .collect();
    for (interface, graphs) in &ty.implements {
        for g in graphs {
            directives.push(format!(
                "@join__implements(graph: {}, interface: {})",
                graph(*g),
                quote(interface)
            ));
        }
    }
    for (member, graphs) in &ty.members {
        for g in graphs {
            directives.push(format!(
                "@join__unionMember(graph: {}, member: {})",
                graph(*g),
                quote(member)
            ));
        }
    }
    directives.extend(ty.applied.render());

    let keyword = match ty.kind {
        TypeKind::Scalar => "scalar",
        TypeKind::Object => "type",
        TypeKind::Interface => "interface",
        TypeKind::Union => "union",
        TypeKind::Enum => "enum",
        TypeKind::InputObject => "input",
    };
    let mut head = format!("{keyword} {name}");
    if !ty.implements.is_empty() {
        let interfaces: Vec<&str> = ty.implements.keys().map(String::as_str).collect();
        let _ = write!(head, " implements {}", interfaces.join(" & "));
    }
    match ty.kind {
        TypeKind::Scalar => push_with_directives(&mut out, "", &head, &directives, ""),
        TypeKind::Union => {
            let members: Vec<&str> = ty.members.keys().map(String::as_str).collect();
            let tail = format!(" = {}", members.join(" | "));
            push_with_directives(&mut out, "", &head, &directives, &tail);
        }
        TypeKind::Object | TypeKind::Interface => {
            push_with_directives(&mut out, "", &head, &directives, " {");
            for (field_name, field) in &ty.fields {
                print_field(&mut out, subgraphs, field_name, field);
            }
            out.push_str("}\n");
        }
        TypeKind::InputObject => {
            push_with_directives(&mut out, "", &head, &directives, " {");
            for (field_name, field) in &ty.input_fields {
                print_description(&mut out, INDENT, field.description.as_deref());
                let mut directives = join_field_directives(subgraphs, field.join_fields.as_deref());
                directives.extend(field.applied.render());
                push_with_directives(
                    &mut out,
                    INDENT,
                    &input_value(field_name, field),
                    &directives,
                    "",
                );
            }
            out.push_str("}\n");
        }
        TypeKind::Enum => {
            push_with_directives(&mut out, "", &head, &directives, " {");
            for (index, (value_name, value)) in ty.values.iter().enumerate() {
                if index > 0 && value.description.is_some() {
                    out.push('\n');
                }
                print_description(&mut out, INDENT, value.description.as_deref());
                let mut directives: Vec<String> = value
                    .graphs
                    .iter()
                    .map(|g| format!("@join__enumValue(graph: {})", graph(*g)))
                    .collect();
                directives.extend(value.applied.render());
                push_with_directives(&mut out, INDENT, value_name, &directives, "");
            }
            out.push_str("}\n");
        }
    }
    out
}

fn print_field(out: &mut String, subgraphs: &[Subgraph], name: &str, field: &MField) {
    print_description(out, INDENT, field.description.as_deref());
    let args: Vec<String> = field
        .args
        .iter()
        .map(|(arg_name, arg)| {
            let mut text = input_value(arg_name, arg);
            for directive in arg.applied.render() {
                text.push(' ');
                text.push_str(&directive);
            }
            text
        })
        .collect();
    let inline = if args.is_empty() {
        String::new()
    } else {
        format!("({})", args.join(", "))
    };
    let mut directives = join_field_directives(subgraphs, field.join_fields.as_deref());
    directives.extend(field.applied.render());
    let multiline_args = field.args.values().any(|a| a.description.is_some())
        || INDENT.len() + name.len() + inline.len() + 2 + field.ty.to_string().len() > MAX_WIDTH;
    if !multiline_args {
        let head = format!("{name}{inline}: {}", field.ty);
        push_with_directives(out, INDENT, &head, &directives, "");
        return;
    }
    let _ = writeln!(out, "{INDENT}{name}(");
    let nested = format!("{INDENT}{INDENT}");
    for ((_, arg), text) in field.args.iter().zip(&args) {
        print_description(out, &nested, arg.description.as_deref());
        let _ = writeln!(out, "{nested}{text}");
    }
    let head = format!("): {}", field.ty);
    push_with_directives(out, INDENT, &head, &directives, "");
}

fn input_value(name: &str, value: &MInputValue) -> String {
    match &value.default {
        Some(default) => format!("{name}: {} = {}", value.ty, default.serialize().no_indent()),
        None => format!("{name}: {}", value.ty),
    }
}

fn join_field_directives(subgraphs: &[Subgraph], joins: Option<&[JoinField]>) -> Vec<String> {
    joins
        .unwrap_or_default()
        .iter()
        .map(|join| {
            let mut args = Vec::new();
            if let Some(g) = join.graph {
                args.push(format!("graph: {}", subgraphs[g].graph));
            }
            if let Some(requires) = &join.requires {
                args.push(format!("requires: {}", quote(requires)));
            }
            if let Some(provides) = &join.provides {
                args.push(format!("provides: {}", quote(provides)));
            }
            if let Some(ty) = &join.ty {
                args.push(format!("type: {}", quote(ty)));
            }
            if join.external {
                args.push("external: true".into());
            }
            if let Some(from) = &join.override_from {
                args.push(format!("override: {}", quote(from)));
            }
            if join.used_overridden {
                args.push("usedOverridden: true".into());
            }
            if args.is_empty() {
                "@join__field".to_owned()
            } else {
                format!("@join__field({})", args.join(", "))
            }
        })
        .collect()
}

/// Prints `head` and its directives on one line when it fits, otherwise one directive per
/// line (prettier's layout, which the reference supergraphs use); `tail` ends the last line.
fn push_with_directives(
    out: &mut String,
    indent: &str,
    head: &str,
    directives: &[String],
    tail: &str,
) {
    let flat_len = indent.len()
        + head.len()
        + directives.iter().map(|d| d.len() + 1).sum::<usize>()
        + tail.len();
    if directives.is_empty() || flat_len <= MAX_WIDTH {
        out.push_str(indent);
        out.push_str(head);
        for directive in directives {
            out.push(' ');
            out.push_str(directive);
        }
        out.push_str(tail);
        out.push('\n');
        return;
    }
    let _ = writeln!(out, "{indent}{head}");
    for (index, directive) in directives.iter().enumerate() {
        let end = if index + 1 == directives.len() {
            tail
        } else {
            ""
        };
        let _ = writeln!(out, "{indent}{INDENT}{directive}{end}");
    }
}

/// Prints a description the way graphql-js does: `"""text"""` when short and single-line,
/// otherwise a block string on its own lines.
fn print_description(out: &mut String, indent: &str, description: Option<&str>) {
    let Some(description) = description.filter(|d| !d.is_empty()) else {
        return;
    };
    let escaped = description.replace("\"\"\"", "\\\"\"\"");
    let multiline = escaped.contains('\n')
        || escaped.len() > 70
        || escaped.ends_with('"')
        || escaped.ends_with('\\');
    if multiline {
        let _ = writeln!(out, "{indent}\"\"\"");
        for line in escaped.lines() {
            if line.is_empty() {
                out.push('\n');
            } else {
                let _ = writeln!(out, "{indent}{line}");
            }
        }
        let _ = writeln!(out, "{indent}\"\"\"");
    } else {
        let _ = writeln!(out, "{indent}\"\"\"{escaped}\"\"\"");
    }
}

/// A GraphQL string literal.
fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn quoted_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("\"{i}\"")).collect();
    match quoted.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn subgraph_list(names: &[String]) -> String {
    if names.len() == 1 {
        format!("subgraph {}", quoted_list(names))
    } else {
        format!("subgraphs {}", quoted_list(names))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    fn subgraph(name: &str, sdl: &str) -> SubgraphInput {
        SubgraphInput {
            name: name.into(),
            url: format!("http://0.0.0.0:4200/{name}"),
            sdl: sdl.into(),
        }
    }

    fn fed2(imports: &str, body: &str) -> String {
        format!(
            "extend schema @link(url: \"https://specs.apollo.dev/federation/v2.3\", import: [{imports}])\n{body}"
        )
    }

    fn compose_ok(subgraphs: &[SubgraphInput]) -> String {
        let sdl = compose(subgraphs).unwrap_or_else(|e| panic!("composition failed:\n{e}"));
        if let Err(e) = Schema::parse_and_validate(&sdl, "supergraph.graphql") {
            panic!("invalid supergraph: {}\n{sdl}", e.errors);
        }
        sdl
    }

    fn compose_err(subgraphs: &[SubgraphInput]) -> Vec<CompositionError> {
        match compose(subgraphs) {
            Ok(sdl) => panic!("expected composition errors, got:\n{sdl}"),
            Err(errors) => errors.0,
        }
    }

    #[track_caller]
    fn assert_has_error(
        errors: &[CompositionError],
        code: &str,
        subgraph: Option<&str>,
        coordinate: Option<&str>,
    ) {
        assert!(
            errors.iter().any(|e| e.code == code
                && e.subgraph.as_deref() == subgraph
                && e.coordinate.as_deref() == coordinate),
            "no {code} error for {subgraph:?} at {coordinate:?} in:\n{}",
            display_lines(errors)
        );
    }

    /// Order-insensitive view of a supergraph: for each type, field, argument, enum value
    /// and input field, its signature and the set of directives applied to it.
    fn normalize(sdl: &str) -> BTreeMap<String, BTreeSet<String>> {
        let schema = match Schema::parse(sdl, "supergraph.graphql") {
            Ok(schema) => schema,
            Err(e) => panic!("does not parse: {}", e.errors),
        };
        let directives = |list: &ast::DirectiveList| -> BTreeSet<String> {
            list.iter().map(|d| d.to_string()).collect()
        };
        let mut out = BTreeMap::new();
        let mut schema_entry: BTreeSet<String> = schema
            .schema_definition
            .directives
            .iter()
            .map(|d| d.to_string())
            .collect();
        for (op, name) in schema.schema_definition.iter_root_operations() {
            schema_entry.insert(format!("{op}: {name}"));
        }
        out.insert("schema".to_owned(), schema_entry);
        for (name, def) in &schema.directive_definitions {
            if !def.is_built_in() {
                out.insert(format!("@{name}"), BTreeSet::from([def.to_string()]));
            }
        }
        let mut type_entries = BTreeMap::new();
        for (name, ty) in &schema.types {
            if ty.is_built_in() {
                continue;
            }
            let mut entry: BTreeSet<String> =
                ty.directives().iter().map(|d| d.to_string()).collect();
            let kind = match ty {
                ExtendedType::Scalar(_) => "Scalar",
                ExtendedType::Object(_) => "Object",
                ExtendedType::Interface(_) => "Interface",
                ExtendedType::Union(_) => "Union",
                ExtendedType::Enum(_) => "Enum",
                ExtendedType::InputObject(_) => "InputObject",
            };
            entry.insert(format!("kind {kind}"));
            match ty {
                ExtendedType::Object(o) => {
                    entry.extend(
                        o.implements_interfaces
                            .iter()
                            .map(|i| format!("implements {}", i.name)),
                    );
                    for (field_name, field) in &o.fields {
                        type_entries.insert(format!("{name}.{field_name}"), field_entry(field));
                    }
                }
                ExtendedType::Interface(i) => {
                    entry.extend(
                        i.implements_interfaces
                            .iter()
                            .map(|i| format!("implements {}", i.name)),
                    );
                    for (field_name, field) in &i.fields {
                        type_entries.insert(format!("{name}.{field_name}"), field_entry(field));
                    }
                }
                ExtendedType::Union(u) => {
                    entry.extend(u.members.iter().map(|m| format!("member {}", m.name)));
                }
                ExtendedType::Enum(e) => {
                    for (value, def) in &e.values {
                        type_entries.insert(format!("{name}.{value}"), directives(&def.directives));
                    }
                }
                ExtendedType::InputObject(i) => {
                    for (field_name, def) in &i.fields {
                        let mut field_entry = directives(&def.directives);
                        field_entry.insert(format!(
                            "type {} = {:?}",
                            def.ty,
                            def.default_value.as_ref().map(|v| v.to_string())
                        ));
                        type_entries.insert(format!("{name}.{field_name}"), field_entry);
                    }
                }
                ExtendedType::Scalar(_) => {}
            }
            type_entries.insert(name.to_string(), entry);
        }
        out.extend(type_entries);
        out
    }

    fn field_entry(field: &ast::FieldDefinition) -> BTreeSet<String> {
        let mut entry: BTreeSet<String> = field.directives.iter().map(|d| d.to_string()).collect();
        entry.insert(format!("type {}", field.ty));
        for arg in &field.arguments {
            entry.insert(format!(
                "arg {}: {} = {:?}{}",
                arg.name,
                arg.ty,
                arg.default_value.as_ref().map(|v| v.to_string()),
                arg.directives
            ));
        }
        entry
    }

    #[track_caller]
    fn entry<'m>(
        normalized: &'m BTreeMap<String, BTreeSet<String>>,
        key: &str,
    ) -> &'m BTreeSet<String> {
        normalized
            .get(key)
            .unwrap_or_else(|| panic!("{key} missing from supergraph: {:#?}", normalized.keys()))
    }

    #[track_caller]
    fn assert_entry(normalized: &BTreeMap<String, BTreeSet<String>>, key: &str, expected: &[&str]) {
        let expected: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
        assert_eq!(entry(normalized, key), &expected, "at {key}");
    }

    /// Copy of the benchmark's reference supergraph (shared/bench/federation-supergraph.graphql),
    /// as produced by Apollo/Hive composition.
    const BENCH_SUPERGRAPH: &str =
        include_str!("../../tests/fixtures/benchmark-supergraph.graphql");

    fn bench_subgraphs() -> Vec<SubgraphInput> {
        vec![
            subgraph(
                "accounts",
                &fed2(
                    "\"@key\"",
                    r#"
                    type Query {
                        me: User
                        user(id: ID!): User
                        users: [User]
                    }
                    type User @key(fields: "id") {
                        id: ID!
                        name: String
                        username: String
                        birthday: Int
                    }
                    "#,
                ),
            ),
            subgraph(
                "inventory",
                &fed2(
                    "\"@key\", \"@external\", \"@requires\"",
                    r#"
                    type Product @key(fields: "upc") {
                        upc: String!
                        weight: Int @external
                        price: Int @external
                        inStock: Boolean
                        shippingEstimate: Int @requires(fields: "price weight")
                    }
                    "#,
                ),
            ),
            subgraph(
                "products",
                &fed2(
                    "\"@key\"",
                    r#"
                    type Query {
                        topProducts(first: Int = 5): [Product]
                    }
                    type Product @key(fields: "upc") {
                        upc: String!
                        name: String
                        price: Int
                        weight: Int
                    }
                    "#,
                ),
            ),
            subgraph(
                "reviews",
                &fed2(
                    "\"@key\", \"@external\", \"@provides\"",
                    r#"
                    type Review @key(fields: "id") {
                        id: ID!
                        body: String
                        product: Product
                        author: User @provides(fields: "username")
                    }
                    type User @key(fields: "id") {
                        id: ID!
                        username: String @external
                        reviews: [Review]
                    }
                    type Product @key(fields: "upc") {
                        upc: String!
                        reviews: [Review]
                    }
                    "#,
                ),
            ),
        ]
    }

    #[test]
    fn composes_benchmark_subgraphs_like_the_reference() {
        let sdl = compose_ok(&bench_subgraphs());
        assert_eq!(normalize(&sdl), normalize(BENCH_SUPERGRAPH));
        assert_eq!(sdl, BENCH_SUPERGRAPH, "layout differs from the reference");
    }

    #[test]
    fn merges_interfaces_and_unions_across_subgraphs() {
        let a = fed2(
            "\"@key\"",
            r#"
            type Query { node(id: ID!): Node media: [Media] }
            interface Node { id: ID! }
            type Book implements Node @key(fields: "id") { id: ID! title: String }
            union Media = Book
            "#,
        );
        let b = fed2(
            "\"@key\"",
            r#"
            type Query { movies: [Movie] }
            interface Node { id: ID! }
            type Movie implements Node @key(fields: "id") { id: ID! director: String }
            union Media = Movie
            "#,
        );
        let n = normalize(&compose_ok(&[subgraph("a", &a), subgraph("b", &b)]));
        assert_entry(
            &n,
            "Node",
            &[
                "kind Interface",
                "@join__type(graph: A)",
                "@join__type(graph: B)",
            ],
        );
        assert_entry(&n, "Node.id", &["type ID!"]);
        assert_entry(
            &n,
            "Book",
            &[
                "kind Object",
                "implements Node",
                "@join__type(graph: A, key: \"id\")",
                "@join__implements(graph: A, interface: \"Node\")",
            ],
        );
        assert_entry(
            &n,
            "Media",
            &[
                "kind Union",
                "member Book",
                "member Movie",
                "@join__type(graph: A)",
                "@join__type(graph: B)",
                "@join__unionMember(graph: A, member: \"Book\")",
                "@join__unionMember(graph: B, member: \"Movie\")",
            ],
        );
        assert_entry(&n, "Movie.director", &["type String"]);
    }

    #[test]
    fn widens_output_field_to_a_common_supertype() {
        let a = fed2(
            "\"@key\", \"@shareable\"",
            r#"
            type Query { t: T }
            interface I { a: Int }
            type A implements I @shareable { a: Int }
            type T @key(fields: "id") { id: ID! f: I @shareable }
            "#,
        );
        let b = fed2(
            "\"@key\", \"@shareable\"",
            r#"
            type A @shareable { a: Int }
            type T @key(fields: "id") { id: ID! f: A! @shareable }
            "#,
        );
        let n = normalize(&compose_ok(&[subgraph("a", &a), subgraph("b", &b)]));
        assert_entry(
            &n,
            "T.f",
            &[
                "type I",
                "@join__field(graph: A)",
                "@join__field(graph: B, type: \"A!\")",
            ],
        );
    }

    #[test]
    fn entity_interface_and_interface_object() {
        let a = fed2(
            "\"@key\"",
            r#"
            type Query { media: [Media] }
            interface Media @key(fields: "id") { id: ID! title: String }
            type Book implements Media @key(fields: "id") { id: ID! title: String }
            "#,
        );
        let b = fed2(
            "\"@key\", \"@interfaceObject\"",
            r#"
            type Query { topMedia: Media }
            type Media @key(fields: "id") @interfaceObject { id: ID! reviews: [String] }
            "#,
        );
        let n = normalize(&compose_ok(&[subgraph("a", &a), subgraph("b", &b)]));
        assert_entry(
            &n,
            "Media",
            &[
                "kind Interface",
                "@join__type(graph: A, key: \"id\")",
                "@join__type(graph: B, key: \"id\", isInterfaceObject: true)",
            ],
        );
        assert_entry(&n, "Media.id", &["type ID!"]);
        assert_entry(
            &n,
            "Media.title",
            &["type String", "@join__field(graph: A)"],
        );
        assert_entry(
            &n,
            "Media.reviews",
            &["type [String]", "@join__field(graph: B)"],
        );
        // Implementations get the interface object's fields, resolvable through it only.
        assert_entry(&n, "Book.reviews", &["type [String]", "@join__field"]);
        assert_entry(
            &n,
            "Query.topMedia",
            &["type Media", "@join__field(graph: B)"],
        );
    }

    #[test]
    fn interface_object_without_interface_is_an_error() {
        let b = fed2(
            "\"@key\", \"@interfaceObject\"",
            r#"
            type Query { topMedia: Media }
            type Media @key(fields: "id") @interfaceObject { id: ID! }
            "#,
        );
        let errors = compose_err(&[subgraph("b", &b)]);
        assert_has_error(
            &errors,
            "INTERFACE_OBJECT_USAGE_ERROR",
            Some("b"),
            Some("Media"),
        );
    }

    #[test]
    fn merges_enums_by_usage() {
        let a = fed2(
            "",
            r#"
            type Query { status: Status items(sort: Sort): [String] }
            enum Status { ACTIVE INACTIVE }
            enum Sort { ASC DESC }
            "#,
        );
        let b = fed2(
            "",
            r#"
            type Query { otherStatus: Status others(sort: Sort): [String] }
            enum Status { ACTIVE DELETED }
            enum Sort { ASC }
            "#,
        );
        let n = normalize(&compose_ok(&[subgraph("a", &a), subgraph("b", &b)]));
        // Output-only: union of values.
        assert_entry(
            &n,
            "Status.ACTIVE",
            &["@join__enumValue(graph: A)", "@join__enumValue(graph: B)"],
        );
        assert_entry(&n, "Status.INACTIVE", &["@join__enumValue(graph: A)"]);
        assert_entry(&n, "Status.DELETED", &["@join__enumValue(graph: B)"]);
        // Input-only: intersection.
        assert_entry(
            &n,
            "Sort.ASC",
            &["@join__enumValue(graph: A)", "@join__enumValue(graph: B)"],
        );
        assert!(!n.contains_key("Sort.DESC"));
    }

    #[test]
    fn enum_used_as_input_and_output_must_match() {
        let a = fed2(
            "",
            "type Query { status(filter: Status): Status } enum Status { ACTIVE INACTIVE }",
        );
        let b = fed2("", "type Query { other: Status } enum Status { ACTIVE }");
        let errors = compose_err(&[subgraph("a", &a), subgraph("b", &b)]);
        assert_has_error(&errors, "ENUM_VALUE_MISMATCH", Some("b"), Some("Status"));
    }

    #[test]
    fn merges_input_objects_by_intersection() {
        let a = fed2(
            "",
            r#"
            type Query { search(filter: Filter): [String] }
            input Filter { name: String limit: Int = 10 }
            "#,
        );
        let b = fed2(
            "",
            r#"
            type Query { find(filter: Filter): [String] }
            input Filter { name: String! }
            "#,
        );
        let n = normalize(&compose_ok(&[subgraph("a", &a), subgraph("b", &b)]));
        assert_entry(
            &n,
            "Filter.name",
            &[
                "type String! = None",
                "@join__field(graph: A, type: \"String\")",
                "@join__field(graph: B)",
            ],
        );
        assert!(!n.contains_key("Filter.limit"));
    }

    #[test]
    fn required_input_field_missing_in_a_subgraph_is_an_error() {
        let a = fed2(
            "",
            "type Query { search(filter: Filter): [String] } input Filter { name: String }",
        );
        let b = fed2(
            "",
            "type Query { find(filter: Filter): [String] } input Filter { name: String tag: String! }",
        );
        let errors = compose_err(&[subgraph("a", &a), subgraph("b", &b)]);
        assert_has_error(
            &errors,
            "REQUIRED_INPUT_FIELD_MISSING_IN_SOME_SUBGRAPH",
            Some("a"),
            Some("Filter.tag"),
        );
    }

    #[test]
    fn merges_arguments_by_intersection_with_most_restrictive_type() {
        let a = fed2(
            "\"@shareable\"",
            "type Query { items(first: Int, after: String): [String] @shareable }",
        );
        let b = fed2(
            "\"@shareable\"",
            "type Query { items(first: Int!): [String] @shareable }",
        );
        let n = normalize(&compose_ok(&[subgraph("a", &a), subgraph("b", &b)]));
        assert_entry(
            &n,
            "Query.items",
            &["type [String]", "arg first: Int! = None"],
        );
    }

    #[test]
    fn shareable_fields_merge_nullability() {
        let a = fed2(
            "\"@key\", \"@shareable\"",
            r#"
            type Query { product: Product }
            type Money @shareable { amount: Int currency: String }
            type Product @key(fields: "id") { id: ID! price: Money! @shareable }
            "#,
        );
        let b = fed2(
            "\"@key\", \"@shareable\"",
            r#"
            type Money @shareable { amount: Int currency: String }
            type Product @key(fields: "id") { id: ID! price: Money @shareable }
            "#,
        );
        let n = normalize(&compose_ok(&[subgraph("a", &a), subgraph("b", &b)]));
        assert_entry(&n, "Money.amount", &["type Int"]);
        assert_entry(
            &n,
            "Product.price",
            &[
                "type Money",
                "@join__field(graph: A, type: \"Money!\")",
                "@join__field(graph: B)",
            ],
        );
    }

    #[test]
    fn non_shareable_field_in_two_subgraphs_is_an_error() {
        let a = fed2("", "type Query { hello: String }");
        let b = fed2("\"@shareable\"", "type Query { hello: String @shareable }");
        let errors = compose_err(&[subgraph("a", &a), subgraph("b", &b)]);
        assert_has_error(
            &errors,
            "INVALID_FIELD_SHARING",
            Some("a"),
            Some("Query.hello"),
        );
        assert!(errors[0].message.contains("@shareable"));
    }

    #[test]
    fn override_drops_the_unused_overridden_field() {
        let a = fed2(
            "\"@key\"",
            r#"type Query { product: Product } type Product @key(fields: "id") { id: ID! price: Int }"#,
        );
        let b = fed2(
            "\"@key\", \"@override\"",
            r#"type Product @key(fields: "id") { id: ID! price: Int @override(from: "a") }"#,
        );
        let n = normalize(&compose_ok(&[subgraph("a", &a), subgraph("b", &b)]));
        assert_entry(
            &n,
            "Product.price",
            &["type Int", "@join__field(graph: B, override: \"a\")"],
        );
    }

    #[test]
    fn override_keeps_a_field_still_used_as_key_as_used_overridden() {
        let a = fed2(
            "\"@key\"",
            r#"
            type Query { product: Product }
            type Product @key(fields: "id") @key(fields: "sku price") { id: ID! sku: String price: Int }
            "#,
        );
        let b = fed2(
            "\"@key\", \"@override\"",
            r#"type Product @key(fields: "id") { id: ID! price: Int @override(from: "a") }"#,
        );
        let n = normalize(&compose_ok(&[subgraph("a", &a), subgraph("b", &b)]));
        assert_entry(
            &n,
            "Product.price",
            &[
                "type Int",
                "@join__field(graph: A, usedOverridden: true)",
                "@join__field(graph: B, override: \"a\")",
            ],
        );
    }

    #[test]
    fn inaccessible_and_tag_are_propagated_with_their_definitions() {
        let a = fed2(
            "\"@key\", \"@inaccessible\", \"@tag\"",
            r#"
            type Query {
                secret: String @inaccessible
                user(id: ID! @tag(name: "arg")): User @tag(name: "public")
            }
            type User @key(fields: "id") @tag(name: "team-a") { id: ID! internal: Int @inaccessible }
            enum Role { ADMIN @inaccessible USER }
            "#,
        );
        let sdl = compose_ok(&[subgraph("a", &a)]);
        assert!(
            sdl.contains(
                "@link(url: \"https://specs.apollo.dev/inaccessible/v0.2\", for: SECURITY)"
            )
        );
        assert!(sdl.contains("@link(url: \"https://specs.apollo.dev/tag/v0.3\")"));
        let n = normalize(&sdl);
        assert!(n.contains_key("@inaccessible") && n.contains_key("@tag"));
        // A single subgraph defines Query, so no @join__field is needed.
        assert_entry(&n, "Query.secret", &["type String", "@inaccessible"]);
        assert_entry(
            &n,
            "Query.user",
            &[
                "type User",
                "@tag(name: \"public\")",
                "arg id: ID! = None @tag(name: \"arg\")",
            ],
        );
        assert!(entry(&n, "User").contains("@tag(name: \"team-a\")"));
        assert!(entry(&n, "Role.ADMIN").contains("@inaccessible"));
    }

    #[test]
    fn authorization_directives_are_carried_into_the_supergraph() {
        let a = fed2(
            "\"@key\", \"@shareable\", \"@authenticated\", \"@requiresScopes\"",
            r#"
            type Query {
                me: User @authenticated
                audit: String @requiresScopes(scopes: [["audit:read"], ["admin"]])
            }
            type User @key(fields: "id") { id: ID! email: String @shareable @requiresScopes(scopes: [["email"]]) }
            "#,
        );
        let b = fed2(
            "\"@key\", \"@shareable\", \"@requiresScopes\"",
            r#"
            type User @key(fields: "id") { id: ID! email: String @shareable @requiresScopes(scopes: [["pii"]]) }
            "#,
        );
        let sdl = compose_ok(&[subgraph("a", &a), subgraph("b", &b)]);
        for link in ["authenticated/v0.1", "requiresScopes/v0.1"] {
            assert!(
                sdl.contains(&format!(
                    "@link(url: \"https://specs.apollo.dev/{link}\", for: SECURITY)"
                )),
                "{sdl}"
            );
        }
        let n = normalize(&sdl);
        assert!(entry(&n, "Query.me").contains("@authenticated"));
        assert!(
            entry(&n, "Query.audit")
                .contains("@requiresScopes(scopes: [[\"audit:read\"], [\"admin\"]])")
        );
        // Both subgraphs' requirements hold: (email AND pii).
        assert!(
            entry(&n, "User.email").contains("@requiresScopes(scopes: [[\"email\", \"pii\"]])"),
            "{:?}",
            entry(&n, "User.email")
        );
        // ... and the API schema hides them.
        let snapshot = crate::schema::SchemaSnapshot::from_supergraph_sdl(&sdl).expect("valid");
        let api = snapshot.api.serialize().to_string();
        assert!(
            !api.contains("authenticated") && !api.contains("requiresScopes"),
            "{api}"
        );
    }

    #[test]
    fn no_inaccessible_or_tag_definitions_when_unused() {
        let sdl = compose_ok(&bench_subgraphs());
        assert!(!sdl.contains("@inaccessible") && !sdl.contains("@tag"));
    }

    #[test]
    fn multiple_compound_nested_and_unresolvable_keys() {
        let a = fed2(
            "\"@key\"",
            r#"
            type Query { product: Product }
            type Organization { id: ID! }
            type Product @key(fields: "id") @key(fields: "sku package") @key(fields: "id organization { id }") {
                id: ID! sku: String! package: String! organization: Organization! name: String
            }
            "#,
        );
        let b = fed2(
            "\"@key\"",
            r#"
            type Review { product: Product }
            type Query { reviews: [Review] }
            type Product @key(fields: "id", resolvable: false) { id: ID! }
            "#,
        );
        let n = normalize(&compose_ok(&[subgraph("a", &a), subgraph("b", &b)]));
        assert_entry(
            &n,
            "Product",
            &[
                "kind Object",
                "@join__type(graph: A, key: \"id\")",
                "@join__type(graph: A, key: \"sku package\")",
                "@join__type(graph: A, key: \"id organization { id }\")",
                "@join__type(graph: B, key: \"id\", resolvable: false)",
            ],
        );
        assert_entry(&n, "Product.id", &["type ID!"]);
        assert_entry(
            &n,
            "Product.sku",
            &["type String!", "@join__field(graph: A)"],
        );
    }

    #[test]
    fn federation1_subgraphs_with_type_extensions() {
        let accounts = r#"
            extend type Query { me: User }
            type User @key(fields: "id") { id: ID! name: String }
            type Money { amount: Int }
        "#;
        let reviews = r#"
            type Query { topReviews: [Review] }
            type Review { body: String author: User cost: Money }
            extend type User @key(fields: "id") {
                id: ID! @external
                username: String @external
                reviews: [Review] @requires(fields: "username")
            }
            type Money { amount: Int }
        "#;
        let n = normalize(&compose_ok(&[
            subgraph("accounts", accounts),
            subgraph("reviews", reviews),
        ]));
        assert_entry(
            &n,
            "User",
            &[
                "kind Object",
                "@join__type(graph: ACCOUNTS, key: \"id\")",
                "@join__type(graph: REVIEWS, key: \"id\", extension: true)",
            ],
        );
        // The key field is not external: Federation 1 needed @external on it in extensions.
        assert_entry(&n, "User.id", &["type ID!"]);
        assert_entry(
            &n,
            "User.reviews",
            &[
                "type [Review]",
                "@join__field(graph: REVIEWS, requires: \"username\")",
            ],
        );
        // Value types are implicitly shareable in Federation 1.
        assert_entry(&n, "Money.amount", &["type Int"]);
        assert_entry(
            &n,
            "Query",
            &[
                "kind Object",
                "@join__type(graph: ACCOUNTS)",
                "@join__type(graph: REVIEWS)",
            ],
        );
    }

    #[test]
    fn federation1_extends_directive_and_subscriptions() {
        let a = r#"
            type Query { me: User }
            type Subscription { userChanged: User }
            type User @key(fields: "id") { id: ID! name: String }
        "#;
        let b = r#"
            type Query { reviews: [String] }
            type User @key(fields: "id") @extends { id: ID! @external nickname: String }
        "#;
        let sdl = compose_ok(&[subgraph("a", a), subgraph("b", b)]);
        assert!(sdl.contains("    subscription: Subscription\n"), "{sdl}");
        let n = normalize(&sdl);
        assert!(entry(&n, "User").contains("@join__type(graph: B, key: \"id\", extension: true)"));
        assert_entry(&n, "User.id", &["type ID!"]);
        assert_entry(&n, "Subscription.userChanged", &["type User"]);
    }

    #[test]
    fn type_named_like_a_root_but_not_a_root_is_an_error() {
        let a = fed2(
            "",
            "schema { query: RootQuery } type RootQuery { a: Query } type Query { b: Int }",
        );
        let errors = compose_err(&[subgraph("a", &a)]);
        assert_has_error(&errors, "ROOT_TYPE_USED", Some("a"), Some("Query"));
    }

    #[test]
    fn renamed_root_types_and_imports() {
        let a = r#"
            extend schema @link(url: "https://specs.apollo.dev/federation/v2.3",
                                import: [{ name: "@key", as: "@primaryKey" }])
            schema { query: RootQuery mutation: RootMutation }
            type RootQuery { me: User }
            type RootMutation { rename(name: String!): User }
            type User @primaryKey(fields: "id") { id: ID! name: String @federation__shareable }
        "#;
        let b = fed2(
            "\"@key\", \"@shareable\"",
            r#"type User @key(fields: "id") { id: ID! name: String @shareable }"#,
        );
        let sdl = compose_ok(&[subgraph("a", a), subgraph("b", &b)]);
        assert!(sdl.contains("mutation: Mutation"));
        let n = normalize(&sdl);
        assert_entry(&n, "Query.me", &["type User", "@join__field(graph: A)"]);
        assert_entry(&n, "Mutation", &["kind Object", "@join__type(graph: A)"]);
        assert_entry(
            &n,
            "Mutation.rename",
            &["type User", "arg name: String! = None"],
        );
        assert!(entry(&n, "User").contains("@join__type(graph: A, key: \"id\")"));
        assert_entry(&n, "User.name", &["type String"]);
        assert!(!n.contains_key("RootQuery"));
    }

    #[test]
    fn strips_federation_internals_from_service_sdl() {
        // What async-graphql and similar frameworks return from `_service { sdl }`.
        let a = r#"
            extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key", "FieldSet"])
            directive @key(fields: FieldSet!, resolvable: Boolean = true) repeatable on OBJECT | INTERFACE
            scalar FieldSet
            scalar _Any
            type _Service { sdl: String }
            union _Entity = User
            type Query {
                me: User
                _service: _Service!
                _entities(representations: [_Any!]!): [_Entity]!
            }
            type User @key(fields: "id") { id: ID! }
        "#;
        let sdl = compose_ok(&[subgraph("a", a)]);
        for internal in [
            "_Service",
            "_Entity",
            "_Any",
            "FieldSet!",
            "_entities",
            "_service",
        ] {
            assert!(!sdl.contains(internal), "{internal} leaked into:\n{sdl}");
        }
    }

    #[test]
    fn prints_descriptions_and_default_values() {
        let a = fed2(
            "",
            r#"
            "The root"
            type Query {
                "Greets"
                hello(
                    "Who to greet"
                    name: String = "world"
                ): String @deprecated(reason: "use hi")
            }
            """
            Multi-line
            description
            """
            enum Color { "The red one" RED GREEN }
            "#,
        );
        let sdl = compose_ok(&[subgraph("a", &a)]);
        assert!(sdl.contains("\"\"\"The root\"\"\"\ntype Query"), "{sdl}");
        assert!(
            sdl.contains("\"\"\"Who to greet\"\"\"\n        name: String = \"world\""),
            "{sdl}"
        );
        assert!(sdl.contains("@deprecated(reason: \"use hi\")"), "{sdl}");
        assert!(
            sdl.contains("\"\"\"\nMulti-line\ndescription\n\"\"\"\nenum Color"),
            "{sdl}"
        );
        assert!(
            sdl.contains("    \"\"\"The red one\"\"\"\n    RED @join__enumValue(graph: A)"),
            "{sdl}"
        );
    }

    #[test]
    fn output_does_not_depend_on_subgraph_order() {
        let mut reversed = bench_subgraphs();
        reversed.reverse();
        assert_eq!(compose_ok(&reversed), compose_ok(&bench_subgraphs()));
    }

    #[test]
    fn graph_enum_values_are_sanitized_and_unique() {
        let a = fed2("\"@shareable\"", "type Query { a: String @shareable }");
        let sdl = compose_ok(&[
            subgraph("my-api", &a),
            subgraph("my_api", &a),
            subgraph("1st", &a),
        ]);
        assert!(sdl.contains("_1ST @join__graph(name: \"1st\""), "{sdl}");
        assert!(
            sdl.contains("MY_API @join__graph(name: \"my-api\""),
            "{sdl}"
        );
        assert!(
            sdl.contains("MY_API_1 @join__graph(name: \"my_api\""),
            "{sdl}"
        );
    }

    // --- errors ---------------------------------------------------------------------------

    #[test]
    fn syntax_error_reports_line_and_column() {
        let errors = compose_err(&[subgraph("a", "type Query {\n  hello: \n}")]);
        assert_has_error(&errors, "INVALID_GRAPHQL", Some("a"), None);
        assert!(
            errors[0].message.contains("line 3, column 1"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn validation_error_in_subgraph() {
        let errors = compose_err(&[subgraph("a", "type Query { hello: Missing }")]);
        assert_has_error(&errors, "INVALID_GRAPHQL", Some("a"), None);
        assert!(errors[0].message.contains("Missing"), "{}", errors[0]);
    }

    #[test]
    fn incompatible_field_types() {
        let a = fed2(
            "\"@key\", \"@shareable\"",
            r#"type Query { t: T } type T @key(fields: "id") { id: ID! f: String @shareable }"#,
        );
        let b = fed2(
            "\"@key\", \"@shareable\"",
            r#"type T @key(fields: "id") { id: ID! f: Int @shareable }"#,
        );
        let errors = compose_err(&[subgraph("a", &a), subgraph("b", &b)]);
        assert_has_error(&errors, "FIELD_TYPE_MISMATCH", Some("b"), Some("T.f"));
        let message = &errors[0].message;
        assert!(
            message.contains("\"String\" in subgraph \"a\"")
                && message.contains("\"Int\" in subgraph \"b\"")
        );
    }

    #[test]
    fn incompatible_argument_types_and_defaults() {
        let a = fed2(
            "\"@shareable\"",
            "type Query { f(x: Int, y: Int = 1): Int @shareable }",
        );
        let b = fed2(
            "\"@shareable\"",
            "type Query { f(x: String, y: Int = 2): Int @shareable }",
        );
        let errors = compose_err(&[subgraph("a", &a), subgraph("b", &b)]);
        assert_has_error(
            &errors,
            "FIELD_ARGUMENT_TYPE_MISMATCH",
            Some("b"),
            Some("Query.f(x:)"),
        );
        assert_has_error(
            &errors,
            "FIELD_ARGUMENT_DEFAULT_MISMATCH",
            Some("b"),
            Some("Query.f(y:)"),
        );
    }

    #[test]
    fn type_kind_mismatch() {
        let a = fed2("", "type Query { a: Thing } type Thing { x: Int }");
        let b = fed2("", "type Query { b: String } interface Thing { x: Int }");
        let errors = compose_err(&[subgraph("a", &a), subgraph("b", &b)]);
        assert_has_error(&errors, "TYPE_KIND_MISMATCH", Some("b"), Some("Thing"));
    }

    #[test]
    fn requires_unknown_field() {
        let inventory = fed2(
            "\"@key\", \"@external\", \"@requires\"",
            r#"
            type Product @key(fields: "upc") {
                upc: String!
                weight: Int @external
                shippingEstimate: Int @requires(fields: "weight price")
            }
            "#,
        );
        let products = fed2(
            "\"@key\"",
            r#"type Query { p: Product } type Product @key(fields: "upc") { upc: String! }"#,
        );
        let errors = compose_err(&[
            subgraph("inventory", &inventory),
            subgraph("products", &products),
        ]);
        assert_has_error(
            &errors,
            "REQUIRES_INVALID_FIELDS",
            Some("inventory"),
            Some("Product.shippingEstimate"),
        );
        assert!(errors[0].message.contains("price"), "{}", errors[0]);
    }

    #[test]
    fn requires_non_external_field() {
        let a = fed2(
            "\"@key\", \"@requires\"",
            r#"
            type Query { p: Product }
            type Product @key(fields: "upc") { upc: String! weight: Int estimate: Int @requires(fields: "weight") }
            "#,
        );
        let errors = compose_err(&[subgraph("a", &a)]);
        assert_has_error(
            &errors,
            "REQUIRES_FIELDS_MISSING_EXTERNAL",
            Some("a"),
            Some("Product.estimate"),
        );
    }

    #[test]
    fn key_on_missing_field() {
        let a = fed2(
            "\"@key\"",
            r#"type Query { p: Product } type Product @key(fields: "sku") { upc: String! }"#,
        );
        let errors = compose_err(&[subgraph("a", &a)]);
        assert_has_error(&errors, "KEY_INVALID_FIELDS", Some("a"), Some("Product"));
    }

    #[test]
    fn provides_errors() {
        let a = fed2(
            "\"@key\", \"@provides\", \"@external\"",
            r#"
            type Query {
                user: User @provides(fields: "nickname")
                name: String @provides(fields: "length")
                other: User @provides(fields: "email")
            }
            type User @key(fields: "id") { id: ID! email: String }
            "#,
        );
        let errors = compose_err(&[subgraph("a", &a)]);
        assert_has_error(
            &errors,
            "PROVIDES_INVALID_FIELDS",
            Some("a"),
            Some("Query.user"),
        );
        assert_has_error(
            &errors,
            "PROVIDES_ON_NON_OBJECT_FIELD",
            Some("a"),
            Some("Query.name"),
        );
        assert_has_error(
            &errors,
            "PROVIDES_FIELDS_MISSING_EXTERNAL",
            Some("a"),
            Some("Query.other"),
        );
    }

    #[test]
    fn override_errors() {
        let a = fed2(
            "\"@key\", \"@override\"",
            r#"
            type Query { p: Product }
            type Product @key(fields: "id") {
                id: ID!
                price: Int @override(from: "a")
                name: String @override(from: "nowhere")
            }
            "#,
        );
        let errors = compose_err(&[subgraph("a", &a)]);
        assert_has_error(
            &errors,
            "OVERRIDE_FROM_SELF_ERROR",
            Some("a"),
            Some("Product.price"),
        );
        assert!(
            !errors
                .iter()
                .any(|e| e.code == "FROM_SUBGRAPH_DOES_NOT_EXIST"),
            "overriding from an unknown subgraph is not an error"
        );
    }

    #[test]
    fn duplicate_and_empty_subgraph_lists() {
        let a = fed2("", "type Query { a: String }");
        let errors = compose_err(&[subgraph("a", &a), subgraph("a", &a)]);
        assert_has_error(&errors, "DUPLICATE_SUBGRAPH_NAME", Some("a"), None);
        let errors = compose_err(&[]);
        assert_has_error(&errors, "NO_SUBGRAPHS", None, None);
    }

    #[test]
    fn no_query_type_anywhere() {
        let a = fed2("\"@key\"", r#"type Product @key(fields: "id") { id: ID! }"#);
        let errors = compose_err(&[subgraph("a", &a)]);
        assert_has_error(&errors, "NO_QUERIES", None, Some("Query"));
    }

    #[test]
    fn reports_all_errors_at_once() {
        let a = fed2("", "type Query { hello: String }");
        let b = fed2("", "type Query { hello: String }");
        let c = "type Query { broken: Nope }";
        let errors = compose_err(&[subgraph("a", &a), subgraph("b", &b), subgraph("c", c)]);
        assert_has_error(&errors, "INVALID_GRAPHQL", Some("c"), None);
        let d = fed2(
            "\"@key\"",
            r#"type Query { x: X } type X @key(fields: "nope") { id: ID }"#,
        );
        let errors = compose_err(&[subgraph("a", &a), subgraph("b", &b), subgraph("d", &d)]);
        assert_has_error(&errors, "KEY_INVALID_FIELDS", Some("d"), Some("X"));
        let errors = compose_err(&[
            subgraph("a", &a),
            subgraph("b", &b),
            subgraph("e", &fed2("", "type Query { hello: Int }")),
        ]);
        assert_has_error(
            &errors,
            "FIELD_TYPE_MISMATCH",
            Some("e"),
            Some("Query.hello"),
        );
        assert_has_error(
            &errors,
            "INVALID_FIELD_SHARING",
            Some("a"),
            Some("Query.hello"),
        );
    }

    #[test]
    fn error_display_is_one_line_per_error() {
        let errors = CompositionErrors(vec![
            CompositionError {
                subgraph: Some("products".into()),
                coordinate: Some("Product.price".into()),
                code: "FIELD_TYPE_MISMATCH",
                message: "types differ".into(),
            },
            CompositionError {
                subgraph: None,
                coordinate: None,
                code: "NO_SUBGRAPHS",
                message: "nothing to compose".into(),
            },
        ]);
        assert_eq!(
            errors.to_string(),
            "[products] Product.price: FIELD_TYPE_MISMATCH: types differ\nNO_SUBGRAPHS: nothing to compose"
        );
    }
}
