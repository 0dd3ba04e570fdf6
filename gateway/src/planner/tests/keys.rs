//! Entity calls: through parent entities, multiple and compound keys, nested keys,
//! keys only some graphs can resolve.

use super::{fed2, plan, supergraph};

fn schema() -> String {
    let a = fed2(
        r#"
        type Query { topProducts: [Product] }
        type Product @key(fields: "id") { id: ID! category: Category }
        type Category @key(fields: "id") { id: ID! }
        "#,
    );
    let b = fed2(
        r#"
        type Product @key(fields: "id") @key(fields: "sku") { id: ID! sku: String! name: String }
        type Category @key(fields: "id") { id: ID! mainProduct: Product }
        "#,
    );
    let c = fed2(
        r#"
        type Product @key(fields: "sku") { sku: String! price: Int }
        type Category @key(fields: "id", resolvable: false) { id: ID! }
        "#,
    );
    supergraph(&[("a", &a), ("b", &b), ("c", &c)])
}

fn compound() -> String {
    let a = fed2(
        r#"
        type Query { accounts: [Account] }
        type Account @key(fields: "id org { id }") { id: ID! org: Org! }
        type Org @key(fields: "id") { id: ID! }
        "#,
    );
    let b = fed2(
        r#"
        type Account @key(fields: "id org { id }") { id: ID! org: Org! balance: Int }
        type Org @key(fields: "id") { id: ID! name: String }
        "#,
    );
    let c = fed2(
        r#"
        type Account @key(fields: "id org { id }") @key(fields: "number region") {
          id: ID! org: Org! number: Int! region: String!
        }
        type Org @key(fields: "id") { id: ID! }
        type Query { byNumber(number: Int!): Account }
        "#,
    );
    let d = fed2(
        r#"
        type Account @key(fields: "number region") { number: Int! region: String! owner: String }
        "#,
    );
    supergraph(&[("a", &a), ("b", &b), ("c", &c), ("d", &d)])
}

#[test]
fn key_from_another_graph() {
    insta::assert_snapshot!(plan(&schema(), "{ topProducts { id name price } }"), @"");
}

#[test]
fn parent_entity_call() {
    insta::assert_snapshot!(plan(&schema(), "{ topProducts { category { mainProduct { name price } } } }"), @"");
}

#[test]
fn nested_compound_key() {
    insta::assert_snapshot!(plan(&compound(), "{ accounts { balance org { name } } }"), @"");
}

#[test]
fn key_fields_fetched_through_another_graph() {
    insta::assert_snapshot!(plan(&compound(), "{ accounts { owner } }"), @"");
}

#[test]
fn root_in_a_graph_with_two_keys() {
    insta::assert_snapshot!(plan(&compound(), "{ byNumber(number: 1) { balance owner } }"), @"");
}
