//! `@override`: fields move between graphs; the overridden graph keeps them only for
//! keys and `@requires`.

use super::{fed2, plan, supergraph};

fn schema() -> String {
    let a = fed2(
        r#"
        type Query { feed: [Post] }
        type Post @key(fields: "id") { id: ID! createdAt: String title: String }
        "#,
    );
    let b = fed2(
        r#"
        type Post @key(fields: "id") {
          id: ID!
          createdAt: String @override(from: "a")
          title: String @external
          summary: String @requires(fields: "title")
        }
        "#,
    );
    let c = fed2(
        r#"
        type Post @key(fields: "id") { id: ID! title: String @override(from: "gone") }
        "#,
    );
    supergraph(&[("a", &a), ("b", &b), ("c", &c)])
}

#[test]
fn overridden_field_goes_to_new_owner() {
    insta::assert_snapshot!(plan(&schema(), "{ feed { id createdAt } }"), @"");
}

#[test]
fn override_from_unknown_graph() {
    insta::assert_snapshot!(plan(&schema(), "{ feed { title } }"), @"");
}

#[test]
fn override_with_requires() {
    insta::assert_snapshot!(plan(&schema(), "{ feed { createdAt summary } }"), @"");
}
