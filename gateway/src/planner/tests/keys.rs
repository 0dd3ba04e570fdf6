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
    insta::assert_snapshot!(plan(&schema(), "{ topProducts { id name price } }"), @r#"
QueryPlan {
  Sequence {
    Fetch(service: "a") {
      topProducts {
        __typename
        id
      }
    },
    Flatten(path: "topProducts.@") Fetch(service: "b") {
      { ... on Product { __typename id } } => {
        ... on Product {
          name
          sku
        }
      }
    },
    Flatten(path: "topProducts.@") Fetch(service: "c") {
      { ... on Product { __typename sku } } => {
        ... on Product {
          price
        }
      }
    },
  },
}
"#);
}

#[test]
fn parent_entity_call() {
    insta::assert_snapshot!(plan(&schema(), "{ topProducts { category { mainProduct { name price } } } }"), @r#"
QueryPlan {
  Sequence {
    Fetch(service: "a") {
      topProducts {
        category {
          __typename
          id
        }
      }
    },
    Flatten(path: "topProducts.@.category") Fetch(service: "b") {
      { ... on Category { __typename id } } => {
        ... on Category {
          mainProduct {
            __typename
            name
            sku
          }
        }
      }
    },
    Flatten(path: "topProducts.@.category.mainProduct") Fetch(service: "c") {
      { ... on Product { __typename sku } } => {
        ... on Product {
          price
        }
      }
    },
  },
}
"#);
}

#[test]
fn nested_compound_key() {
    insta::assert_snapshot!(plan(&compound(), "{ accounts { balance org { name } } }"), @r#"
QueryPlan {
  Sequence {
    Fetch(service: "a") {
      accounts {
        __typename
        id
        org {
          id
          __typename
        }
      }
    },
    Flatten(path: "accounts.@", "accounts.@.org") Fetch(service: "b") {
      { ... on Account { __typename id org { id } } } => {
        ... on Account {
          balance
        }
      }
      { ... on Org { __typename id } } => {
        ... on Org {
          name
        }
      }
    },
  },
}
"#);
}

#[test]
fn key_fields_fetched_through_another_graph() {
    insta::assert_snapshot!(plan(&compound(), "{ accounts { owner } }"), @r#"
QueryPlan {
  Sequence {
    Fetch(service: "a") {
      accounts {
        __typename
        id
        org {
          id
        }
      }
    },
    Flatten(path: "accounts.@") Fetch(service: "c") {
      { ... on Account { __typename id org { id } } } => {
        ... on Account {
          number
          region
        }
      }
    },
    Flatten(path: "accounts.@") Fetch(service: "d") {
      { ... on Account { __typename number region } } => {
        ... on Account {
          owner
        }
      }
    },
  },
}
"#);
}

#[test]
fn root_in_a_graph_with_two_keys() {
    insta::assert_snapshot!(plan(&compound(), "{ byNumber(number: 1) { balance owner } }"), @r#"
QueryPlan {
  Sequence {
    Fetch(service: "c") {
      byNumber(number: 1) {
        __typename
        id
        org {
          id
        }
        number
        region
      }
    },
    Parallel {
      Flatten(path: "byNumber") Fetch(service: "b") {
        { ... on Account { __typename id org { id } } } => {
          ... on Account {
            balance
          }
        }
      },
      Flatten(path: "byNumber") Fetch(service: "d") {
        { ... on Account { __typename number region } } => {
          ... on Account {
            owner
          }
        }
      },
    },
  },
}
"#);
}
