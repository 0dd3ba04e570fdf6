//! Root fields: shared root fields resolvable in several graphs, mutations run one by
//! one in document order, `@skip`/`@include`, `@inaccessible` elements, and a
//! `node(id:)`-style interface field whose implementations live in other graphs.

use super::{fed2, plan, supergraph};

fn schema() -> String {
    let a = fed2(
        r#"
        type Query { product: Product @shareable node(id: ID!): Node }
        type Mutation { addProduct(name: String!): Product delete(id: ID!): Boolean }
        interface Node { id: ID! }
        type Product implements Node @key(fields: "id") { id: ID! name: String @shareable secret: String @inaccessible }
        type Category implements Node @key(fields: "id") { id: ID! }
        "#,
    );
    let b = fed2(
        r#"
        type Query { product: Product @shareable }
        type Mutation { rename(id: ID!, name: String!): Product }
        type Product @key(fields: "id") { id: ID! name: String @shareable price: Int }
        "#,
    );
    let c = fed2(
        r#"
        type Category @key(fields: "id") { id: ID! title: String }
        type Product @key(fields: "id") { id: ID! stock: Int }
        "#,
    );
    supergraph(&[("a", &a), ("b", &b), ("c", &c)])
}

#[test]
fn shared_root_field_picks_the_graph_with_most_fields() {
    insta::assert_snapshot!(plan(&schema(), "{ product { id price } }"), @r#"
QueryPlan {
  Fetch(service: "b") {
    product {
      id
      price
    }
  },
}
"#);
}

#[test]
fn shared_root_field_other_graph() {
    insta::assert_snapshot!(plan(&schema(), "{ product { id name } }"), @r#"
QueryPlan {
  Fetch(service: "a") {
    product {
      id
      name
    }
  },
}
"#);
}

#[test]
fn mutations_run_in_order() {
    insta::assert_snapshot!(plan(&schema(), "mutation { first: addProduct(name: \"x\") { id stock } rename(id: \"1\", name: \"y\") { price } delete(id: \"1\") }"), @r#"
QueryPlan {
  Sequence {
    Sequence {
      Fetch(service: "a") {
        first: addProduct(name: "x") {
          __typename
          id
        }
      },
      Flatten(path: "first") Fetch(service: "c") {
        { ... on Product { __typename id } } => {
          ... on Product {
            stock
          }
        }
      },
    },
    Fetch(service: "b") {
      rename(id: "1", name: "y") {
        price
      }
    },
    Fetch(service: "a") {
      delete(id: "1")
    },
  },
}
"#);
}

#[test]
fn skip_and_include() {
    insta::assert_snapshot!(plan(&schema(), "query($s: Boolean!, $i: Boolean!) { product { id @skip(if: $s) price @include(if: $i) stock @include(if: $i) } }"), @r#"
QueryPlan {
  Sequence {
    Fetch(service: "b") {
      product {
        __typename
        id@skip(if:$s)
        price@include(if:$i)
        id
      }
    },
    Flatten(path: "product") Fetch(service: "c") {
      { ... on Product { __typename id } } => {
        ... on Product {
          stock@include(if:$i)
        }
      }
    },
  },
}
"#);
}

#[test]
fn include_on_fragment() {
    insta::assert_snapshot!(plan(&schema(), "query($i: Boolean!) { product { ... @include(if: $i) { price stock } } }"), @r#"
QueryPlan {
  Sequence {
    Fetch(service: "b") {
      product {
        ...@include(if:$i) {
          __typename
          price
          id
        }
      }
    },
    Flatten(path: "product") Fetch(service: "c") {
      { ... on Product { __typename id } } => {
        ... on Product {
          stock
        }
      }
    },
  },
}
"#);
}

#[test]
fn inaccessible_field_is_rejected() {
    insta::assert_snapshot!(plan(&schema(), "{ product { id secret } }"), @r#"
error: Cannot query field "secret" on type "Product".
"#);
}

#[test]
fn node_interface_implementations_elsewhere() {
    insta::assert_snapshot!(plan(&schema(), "{ node(id: \"1\") { id ... on Product { name price stock } ... on Category { title } } }"), @r#"
QueryPlan {
  Sequence {
    Fetch(service: "a") {
      node(id: "1") {
        __typename
        id
        ... on Product {
          __typename
          name
          id
        }
        ... on Category {
          __typename
          id
        }
      }
    },
    Parallel {
      Flatten(path: "node") Fetch(service: "b") {
        { ... on Product { __typename id } } => {
          ... on Product {
            price
          }
        }
      },
      Flatten(path: "node") Fetch(service: "c") {
        { ... on Product { __typename id } ... on Category { __typename id } } => {
          ... on Product {
            stock
          }
          ... on Category {
            title
          }
        }
      },
    },
  },
}
"#);
}

#[test]
fn typename_everywhere() {
    insta::assert_snapshot!(plan(&schema(), "{ __typename product { __typename } node(id: \"1\") { __typename } }"), @r#"
QueryPlan {
  Fetch(service: "a") {
    product {
      __typename
    }
    node(id: "1") {
      __typename
    }
  },
}
"#);
}

#[test]
fn variables_are_forwarded() {
    insta::assert_snapshot!(plan(&schema(), "query($id: ID!) { node(id: $id) { ... on Category { title } } }"), @r#"
QueryPlan {
  Sequence {
    Fetch(service: "a") {
      node(id: $id) {
        __typename
        ... on Category {
          __typename
          id
        }
      }
    },
    Flatten(path: "node") Fetch(service: "c") {
      { ... on Category { __typename id } } => {
        ... on Category {
          title
        }
      }
    },
  },
}
"#);
}
