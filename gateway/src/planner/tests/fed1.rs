//! Federation 1 subgraphs: `extend type` with `@external` keys and fields.

use super::{plan, supergraph};

fn schema() -> String {
    let a = r#"
        type Query { products: [Product] }
        type Product @key(fields: "upc") { upc: String! name: String price: Int }
    "#;
    let b = r#"
        extend type Product @key(fields: "upc") {
          upc: String! @external
          price: Int @external
          tax: Int @requires(fields: "price")
          reviews: [Review]
        }
        type Review { body: String author: User @provides(fields: "username") }
        extend type User @key(fields: "id") { id: ID! @external username: String @external }
    "#;
    let c = r#"
        type User @key(fields: "id") { id: ID! username: String email: String }
        extend type Query { me: User }
    "#;
    supergraph(&[("a", a), ("b", b), ("c", c)])
}

#[test]
fn extends_with_external_key() {
    insta::assert_snapshot!(plan(&schema(), "{ products { name tax reviews { body author { username email } } } }"), @r#"
QueryPlan {
  Sequence {
    Fetch(service: "a") {
      products {
        __typename
        name
        upc
        price
      }
    },
    Flatten(path: "products.@") Fetch(service: "b") {
      { ... on Product { __typename upc price } } => {
        ... on Product {
          tax
          reviews {
            body
            author {
              __typename
              username
              id
            }
          }
        }
      }
    },
    Flatten(path: "products.@.reviews.@.author") Fetch(service: "c") {
      { ... on User { __typename id } } => {
        ... on User {
          email
        }
      }
    },
  },
}
"#);
}

#[test]
fn external_key_from_extension() {
    insta::assert_snapshot!(plan(&schema(), "{ me { username } }"), @r#"
QueryPlan {
  Fetch(service: "c") {
    me {
      username
    }
  },
}
"#);
}
