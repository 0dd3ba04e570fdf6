//! Composition tests: subgraph SDLs in, supergraph SDL or located errors out. The
//! helpers are here; `merging` checks the supergraphs, `errors` the located errors.

mod errors;
mod merging;

use std::collections::{BTreeMap, BTreeSet};

use apollo_compiler::ast;
use apollo_compiler::schema::ExtendedType;

use super::errors::display_lines;
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
        let mut entry: BTreeSet<String> = ty.directives().iter().map(|d| d.to_string()).collect();
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
    include_str!("../../../../tests/fixtures/benchmark-supergraph.graphql");

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
