//! The checked-in subgraph SDL files (`schemas/subgraphs/*.graphql`) against (a) what each
//! running server answers to `{ _service { sdl } }` and (b) the subgraph projection of the
//! benchmark supergraph. Compared structurally: object types, `@key`s, fields with their types
//! and arguments, and `@external`/`@requires`/`@provides`, never the text.

use std::collections::{BTreeMap, BTreeSet};

use crate::common::data;
use async_graphql::Value as ConstValue;
use async_graphql::parser::parse_schema;
use async_graphql::parser::types::{
    ConstDirective, FieldDefinition, TypeDefinition, TypeKind, TypeSystemDefinition,
};
use serde_json::json;
use subgraph_mocks::{MockSubgraphs, SUBGRAPHS, subgraphs};

const SUPERGRAPH: &str =
    include_str!("../../../gateway/tests/fixtures/benchmark-supergraph.graphql");

#[derive(Debug, Default, PartialEq, Eq)]
struct Field {
    ty: String,
    /// (name, type, default)
    args: Vec<(String, String, Option<String>)>,
    external: bool,
    requires: Option<String>,
    provides: Option<String>,
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Object {
    keys: BTreeSet<String>,
    fields: BTreeMap<String, Field>,
}

/// Object types by name (types without fields, like an empty `Query`, are left out).
type Model = BTreeMap<String, Object>;

fn arg<'a>(d: &'a ConstDirective, name: &str) -> Option<&'a ConstValue> {
    d.get_argument(name).map(|v| &v.node)
}

fn string_arg(d: &ConstDirective, name: &str) -> Option<String> {
    match arg(d, name) {
        Some(ConstValue::String(s)) => Some(s.clone()),
        _ => None,
    }
}

fn field_shape(f: &FieldDefinition) -> Field {
    Field {
        ty: f.ty.node.to_string(),
        args: f
            .arguments
            .iter()
            .map(|a| {
                (
                    a.node.name.node.to_string(),
                    a.node.ty.node.to_string(),
                    a.node.default_value.as_ref().map(|v| v.node.to_string()),
                )
            })
            .collect(),
        ..Field::default()
    }
}

fn objects(sdl: &str) -> impl Iterator<Item = TypeDefinition> {
    parse_schema(sdl)
        .unwrap()
        .definitions
        .into_iter()
        .filter_map(|d| match d {
            TypeSystemDefinition::Type(t) if matches!(t.node.kind, TypeKind::Object(_)) => {
                Some(t.node)
            }
            _ => None,
        })
        .filter(|t| !t.name.node.starts_with("join__") && !t.name.node.starts_with("link__"))
}

/// A subgraph SDL (file or served) as a [`Model`].
fn subgraph_model(sdl: &str) -> Model {
    let mut model = Model::new();
    for t in objects(sdl) {
        let TypeKind::Object(obj) = &t.kind else {
            unreachable!()
        };
        let mut o = Object::default();
        for d in &t.directives {
            if d.node.name.node == "key" {
                o.keys.insert(string_arg(&d.node, "fields").unwrap());
            }
        }
        for f in &obj.fields {
            let mut field = field_shape(&f.node);
            for d in &f.node.directives {
                match d.node.name.node.as_str() {
                    "external" => field.external = true,
                    "requires" => field.requires = string_arg(&d.node, "fields"),
                    "provides" => field.provides = string_arg(&d.node, "fields"),
                    _ => {}
                }
            }
            o.fields.insert(f.node.name.node.to_string(), field);
        }
        if !o.fields.is_empty() {
            model
                .entry(t.name.node.to_string())
                .or_default()
                .fields
                .extend(o.fields);
            model
                .entry(t.name.node.to_string())
                .or_default()
                .keys
                .extend(o.keys);
        }
    }
    model
}

/// The part of the supergraph that belongs to `graph` (e.g. `ACCOUNTS`), per the `@join__type`
/// and `@join__field` directives.
fn supergraph_projection(graph: &str) -> Model {
    let is_graph = |d: &ConstDirective| matches!(arg(d, "graph"), Some(ConstValue::Enum(g)) if g.as_str() == graph);
    let mut model = Model::new();
    for t in objects(SUPERGRAPH) {
        let TypeKind::Object(obj) = &t.kind else {
            unreachable!()
        };
        let joins: Vec<&ConstDirective> = t
            .directives
            .iter()
            .map(|d| &d.node)
            .filter(|d| d.name.node == "join__type" && is_graph(d))
            .collect();
        if joins.is_empty() {
            continue;
        }
        let mut o = Object::default();
        o.keys
            .extend(joins.iter().filter_map(|d| string_arg(d, "key")));
        for f in &obj.fields {
            let join_fields: Vec<&ConstDirective> = f
                .node
                .directives
                .iter()
                .map(|d| &d.node)
                .filter(|d| d.name.node == "join__field")
                .collect();
            let mut field = field_shape(&f.node);
            if !join_fields.is_empty() {
                let Some(mine) = join_fields.iter().find(|d| is_graph(d)) else {
                    continue;
                };
                field.external = matches!(arg(mine, "external"), Some(ConstValue::Boolean(true)));
                field.requires = string_arg(mine, "requires");
                field.provides = string_arg(mine, "provides");
            }
            o.fields.insert(f.node.name.node.to_string(), field);
        }
        if !o.fields.is_empty() {
            model.insert(t.name.node.to_string(), o);
        }
    }
    model
}

fn file_sdl(name: &str) -> String {
    let path = format!(
        "{}/../schemas/subgraphs/{name}.graphql",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn files_match_the_supergraph() {
    for name in SUBGRAPHS {
        let mut file = subgraph_model(&file_sdl(name));
        // The example graph streams `reviewAdded`; the benchmark has no subscriptions.
        file.remove("Subscription");
        let projection = supergraph_projection(&name.to_uppercase());
        assert!(!projection.is_empty(), "{name}");
        assert_eq!(
            file, projection,
            "schemas/subgraphs/{name}.graphql vs supergraph"
        );
    }
}

#[test]
fn projection_sees_federation_directives() {
    let inventory = supergraph_projection("INVENTORY");
    assert_eq!(inventory.keys().collect::<Vec<_>>(), ["Product"]);
    let product = &inventory["Product"];
    assert_eq!(product.keys, BTreeSet::from(["upc".to_owned()]));
    assert!(product.fields["price"].external && product.fields["weight"].external);
    assert_eq!(
        product.fields["shippingEstimate"].requires.as_deref(),
        Some("price weight")
    );
    let reviews = supergraph_projection("REVIEWS");
    assert_eq!(
        reviews["Review"].fields["author"].provides.as_deref(),
        Some("username")
    );
    assert!(reviews["User"].fields["username"].external);
    assert!(!reviews["User"].fields.contains_key("name"));
    let products = supergraph_projection("PRODUCTS");
    let top = &products["Query"].fields["topProducts"];
    assert_eq!(
        (top.ty.as_str(), top.args.clone()),
        (
            "[Product]",
            vec![("first".into(), "Int".into(), Some("5".into()))]
        )
    );
}

#[test]
fn supergraph_copy_is_current() {
    if let Ok(shared) = std::fs::read_to_string("/work/shared/bench/federation-supergraph.graphql")
    {
        assert_eq!(shared, SUPERGRAPH);
    }
}

#[tokio::test]
async fn served_sdl_matches_the_files() {
    let mocks = MockSubgraphs::start("127.0.0.1:0").await.unwrap();
    let c = reqwest::Client::new();
    for name in SUBGRAPHS {
        let d = data(&c, &mocks.url(name), "{ _service { sdl } }", json!({})).await;
        let served = d["_service"]["sdl"].as_str().unwrap();
        assert_eq!(served, subgraphs::sdl(name).unwrap());
        assert!(served.contains("https://specs.apollo.dev/federation/v2"));
        let served = subgraph_model(served);
        assert!(!served.is_empty());
        assert_eq!(
            served,
            subgraph_model(&file_sdl(name)),
            "{name}: served SDL vs file"
        );
    }
}
