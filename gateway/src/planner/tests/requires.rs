//! `@requires`: required fields are fetched first and sent in the representation;
//! chained requires, requires with fragments, on interfaces, with arguments.

use super::{fed2, plan, supergraph};

fn schema() -> String {
    let a = fed2(
        r#"
        type Query { products: [Product] }
        type Product @key(fields: "id") { id: ID! price: Int weight: Int }
        "#,
    );
    let b = fed2(
        r#"
        type Product @key(fields: "id") {
          id: ID!
          price: Int @external
          weight: Int @external
          shipping(zip: String): Int @requires(fields: "price weight")
          isExpensive: Boolean @requires(fields: "price")
        }
        "#,
    );
    let c = fed2(
        r#"
        type Product @key(fields: "id") {
          id: ID!
          isExpensive: Boolean @external
          shipping(zip: String): Int @external
          label: String @requires(fields: "isExpensive")
        }
        "#,
    );
    supergraph(&[("a", &a), ("b", &b), ("c", &c)])
}

fn fragments() -> String {
    let a = fed2(
        r#"
        type Query { user: User }
        type User @key(fields: "id") { id: ID! profile: Profile }
        interface Profile { name: String }
        type Person implements Profile { name: String @shareable age: Int @shareable }
        type Robot implements Profile { name: String @shareable model: String @shareable }
        "#,
    );
    let b = fed2(
        r#"
        type User @key(fields: "id") {
          id: ID!
          profile: Profile @external
          greeting: String @requires(fields: "profile { name ... on Person { age } ... on Robot { model } }")
        }
        interface Profile { name: String }
        type Person implements Profile { name: String @shareable age: Int @shareable }
        type Robot implements Profile { name: String @shareable model: String @shareable }
        "#,
    );
    supergraph(&[("a", &a), ("b", &b)])
}

fn circular() -> String {
    let a = fed2(
        r#"
        type Query { post: Post }
        type Post @key(fields: "id") { id: ID! title: String author: Author @external wordCount: Int @requires(fields: "author { name }") }
        type Author @key(fields: "id") { id: ID! name: String @external }
        "#,
    );
    let b = fed2(
        r#"
        type Post @key(fields: "id") { id: ID! author: Author title: String @external titleUpper: String @requires(fields: "title") }
        type Author @key(fields: "id") { id: ID! name: String }
        "#,
    );
    supergraph(&[("a", &a), ("b", &b)])
}

#[test]
fn requires_from_another_graph() {
    insta::assert_snapshot!(plan(&schema(), "{ products { id shipping(zip: \"123\") } }"), @r#"
QueryPlan {
  Sequence {
    Fetch(service: "a") {
      products {
        __typename
        id
        price
        weight
      }
    },
    Flatten(path: "products.@") Fetch(service: "b") {
      { ... on Product { __typename id price weight } } => {
        ... on Product {
          shipping(zip: "123")
        }
      }
    },
  },
}
"#);
}

#[test]
fn chained_requires() {
    insta::assert_snapshot!(plan(&schema(), "{ products { label } }"), @r#"
QueryPlan {
  Sequence {
    Fetch(service: "a") {
      products {
        __typename
        id
        price
      }
    },
    Flatten(path: "products.@") Fetch(service: "b") {
      { ... on Product { __typename id price } } => {
        ... on Product {
          isExpensive
        }
      }
    },
    Flatten(path: "products.@") Fetch(service: "c") {
      { ... on Product { __typename id isExpensive } } => {
        ... on Product {
          label
        }
      }
    },
  },
}
"#);
}

#[test]
fn requires_and_plain_field_share_a_fetch() {
    insta::assert_snapshot!(plan(&schema(), "{ products { isExpensive shipping } }"), @r#"
QueryPlan {
  Sequence {
    Fetch(service: "a") {
      products {
        __typename
        id
        price
        weight
      }
    },
    Flatten(path: "products.@") Fetch(service: "b") {
      { ... on Product { __typename id price weight } } => {
        ... on Product {
          isExpensive
          shipping
        }
      }
    },
  },
}
"#);
}

#[test]
fn requires_with_fragments() {
    insta::assert_snapshot!(plan(&fragments(), "{ user { greeting } }"), @r#"
QueryPlan {
  Sequence {
    Fetch(service: "a") {
      user {
        __typename
        id
        profile {
          __typename
          name
          ... on Person {
            age
          }
          ... on Robot {
            model
          }
        }
      }
    },
    Flatten(path: "user") Fetch(service: "b") {
      { ... on User { __typename id profile { __typename name ... on Person { age } ... on Robot { model } } } } => {
        ... on User {
          greeting
        }
      }
    },
  },
}
"#);
}

#[test]
fn requires_across_entities() {
    insta::assert_snapshot!(plan(&circular(), "{ post { wordCount titleUpper } }"), @r#"
QueryPlan {
  Sequence {
    Fetch(service: "a") {
      post {
        __typename
        id
        title
      }
    },
    Flatten(path: "post") Fetch(service: "b") {
      { ... on Post { __typename id title } } => {
        ... on Post {
          author {
            name
          }
          titleUpper
        }
      }
    },
    Flatten(path: "post") Fetch(service: "a") {
      { ... on Post { __typename id author { name } } } => {
        ... on Post {
          wordCount
        }
      }
    },
  },
}
"#);
}

fn on_interface() -> String {
    let a = fed2(
        r#"
        type Query { items: [Item] }
        interface Item { id: ID! name: String }
        type Foo implements Item @key(fields: "id") { id: ID! name: String }
        type Bar implements Item @key(fields: "id") { id: ID! name: String }
        "#,
    );
    let b = fed2(
        r#"
        interface Item { id: ID! label: String }
        type Foo implements Item @key(fields: "id") { id: ID! name: String @external label: String @requires(fields: "name") }
        type Bar implements Item @key(fields: "id") { id: ID! label: String }
        "#,
    );
    supergraph(&[("a", &a), ("b", &b)])
}

#[test]
fn requires_on_interface_implementation() {
    insta::assert_snapshot!(plan(&on_interface(), "{ items { id label } }"), @r#"
QueryPlan {
  Sequence {
    Fetch(service: "a") {
      items {
        __typename
        id
        ... on Bar {
          __typename
          id
        }
        ... on Foo {
          __typename
          id
          name
        }
      }
    },
    Flatten(path: "items.@") Fetch(service: "b") {
      { ... on Bar { __typename id } ... on Foo { __typename id name } } => {
        ... on Bar {
          label
        }
        ... on Foo {
          label
        }
      }
    },
  },
}
"#);
}
