//! Interfaces and unions spread over subgraphs: type conditions expanded per graph,
//! fragments on types a graph does not know dropped, `__typename` requested where the
//! runtime type matters.

use super::{fed2, plan, supergraph};

fn schema() -> String {
    let products = fed2(
        r#"
        type Query { products: [Product] product(id: ID!): Product }
        interface Product { id: ID! title: String }
        type Book implements Product @key(fields: "id") { id: ID! title: String author: String }
        type Magazine implements Product @key(fields: "id") { id: ID! title: String @shareable issue: Int }
        union Media = Book | Magazine
        "#,
    );
    let inventory = fed2(
        r#"
        interface Product { id: ID! stock: Int }
        type Book implements Product @key(fields: "id") { id: ID! stock: Int }
        type Magazine implements Product @key(fields: "id") { id: ID! stock: Int }
        type Video implements Product @key(fields: "id") { id: ID! stock: Int title: String @shareable }
        type Query { videos: [Video] }
        "#,
    );
    let reviews = fed2(
        r#"
        type Query { media: [Media] similar(id: ID!): [Product] }
        union Media = Book | Movie
        interface Product { id: ID! reviewCount: Int }
        type Book implements Product @key(fields: "id") { id: ID! reviewCount: Int }
        type Magazine implements Product @key(fields: "id") { id: ID! reviewCount: Int }
        type Video @key(fields: "id") { id: ID! reviewCount: Int }
        type Movie @key(fields: "id") { id: ID! rating: Int }
        "#,
    );
    supergraph(&[
        ("products", &products),
        ("inventory", &inventory),
        ("reviews", &reviews),
    ])
}

#[test]
fn interface_field_spread_over_graphs() {
    insta::assert_snapshot!(plan(&schema(), "{ products { id title stock } }"), @r#"
QueryPlan {
  Sequence {
    Fetch(service: "products") {
      products {
        __typename
        id
        title
        ... on Book {
          __typename
          id
        }
        ... on Magazine {
          __typename
          id
        }
      }
    },
    Flatten(path: "products.@") Fetch(service: "inventory") {
      { ... on Book { __typename id } ... on Magazine { __typename id } } => {
        ... on Book {
          stock
        }
        ... on Magazine {
          stock
        }
      }
    },
  },
}
"#);
}

#[test]
fn type_conditions_and_typename() {
    insta::assert_snapshot!(plan(&schema(), "{ products { __typename ... on Book { author stock } ... on Magazine { issue } } }"), @r#"
QueryPlan {
  Sequence {
    Fetch(service: "products") {
      products {
        __typename
        ... on Book {
          __typename
          author
          id
        }
        ... on Magazine {
          issue
        }
      }
    },
    Flatten(path: "products.@") Fetch(service: "inventory") {
      { ... on Book { __typename id } } => {
        ... on Book {
          stock
        }
      }
    },
  },
}
"#);
}

#[test]
fn interface_fragment_on_interface() {
    insta::assert_snapshot!(plan(&schema(), "{ products { ... on Product { id } } }"), @r#"
QueryPlan {
  Fetch(service: "products") {
    products {
      __typename
      id
    }
  },
}
"#);
}

#[test]
fn union_members_differ_per_graph() {
    insta::assert_snapshot!(plan(&schema(), "{ media { __typename ... on Book { title reviewCount } ... on Movie { rating } } }"), @r#"
QueryPlan {
  Sequence {
    Fetch(service: "reviews") {
      media {
        __typename
        ... on Book {
          __typename
          id
          reviewCount
        }
        ... on Movie {
          rating
        }
      }
    },
    Flatten(path: "media.@") Fetch(service: "products") {
      { ... on Book { __typename id } } => {
        ... on Book {
          title
        }
      }
    },
  },
}
"#);
}

#[test]
fn interface_field_not_known_by_source_graph() {
    insta::assert_snapshot!(plan(&schema(), "{ similar(id: \"1\") { id title reviewCount } }"), @r#"
QueryPlan {
  Sequence {
    Fetch(service: "reviews") {
      similar(id: "1") {
        __typename
        id
        ... on Book {
          __typename
          id
        }
        ... on Magazine {
          __typename
          id
        }
        reviewCount
      }
    },
    Flatten(path: "similar.@") Fetch(service: "products") {
      { ... on Book { __typename id } ... on Magazine { __typename id } } => {
        ... on Book {
          title
        }
        ... on Magazine {
          title
        }
      }
    },
  },
}
"#);
}

#[test]
fn typename_only() {
    insta::assert_snapshot!(plan(&schema(), "{ products { __typename } media { __typename } }"), @r#"
QueryPlan {
  Parallel {
    Fetch(service: "products") {
      products {
        __typename
      }
    },
    Fetch(service: "reviews") {
      media {
        __typename
      }
    },
  },
}
"#);
}
