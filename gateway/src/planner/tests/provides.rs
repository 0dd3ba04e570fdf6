//! `@provides`: fields provided on a path are read from the providing graph without
//! an entity jump; nested, on interfaces, on unions.

use super::{fed2, plan, supergraph};

fn schema() -> String {
    let a = fed2(
        r#"
        type Query {
          reviews: [Review]
          top: User @provides(fields: "name address { city }")
          feed: [Item] @provides(fields: "... on Post { title } ... on Video { length }")
          pinned: Node @provides(fields: "title")
        }
        type Review { id: ID! author: User @provides(fields: "name") }
        type User @key(fields: "id") { id: ID! name: String @external address: Address @external }
        type Address { city: String @external }
        union Item = Post | Video
        interface Node { id: ID! title: String }
        type Post implements Node @key(fields: "id") { id: ID! title: String @external }
        type Video @key(fields: "id") { id: ID! length: Int @external }
        "#,
    );
    let b = fed2(
        r#"
        type User @key(fields: "id") { id: ID! name: String @shareable address: Address @shareable email: String }
        type Address { city: String @shareable zip: String }
        interface Node { id: ID! title: String }
        type Post implements Node @key(fields: "id") { id: ID! title: String @shareable body: String }
        type Video @key(fields: "id") { id: ID! length: Int @shareable }
        "#,
    );
    supergraph(&[("a", &a), ("b", &b)])
}

#[test]
fn provided_field_stays_local() {
    insta::assert_snapshot!(plan(&schema(), "{ reviews { author { name } } }"), @r#"
QueryPlan {
  Fetch(service: "a") {
    reviews {
      author {
        name
      }
    }
  },
}
"#);
}

#[test]
fn not_provided_field_jumps() {
    insta::assert_snapshot!(plan(&schema(), "{ reviews { author { name email } } }"), @r#"
QueryPlan {
  Sequence {
    Fetch(service: "a") {
      reviews {
        author {
          __typename
          name
          id
        }
      }
    },
    Flatten(path: "reviews.@.author") Fetch(service: "b") {
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
fn nested_provides() {
    insta::assert_snapshot!(plan(&schema(), "{ top { name address { city } } }"), @r#"
QueryPlan {
  Fetch(service: "a") {
    top {
      name
      address {
        city
      }
    }
  },
}
"#);
}

#[test]
fn nested_provides_partial() {
    // `a` provides `city` on this path; only `zip` goes through the key.
    insta::assert_snapshot!(plan(&schema(), "{ top { address { city zip } } }"), @r#"
QueryPlan {
  Sequence {
    Fetch(service: "a") {
      top {
        __typename
        address {
          city
        }
        id
      }
    },
    Flatten(path: "top") Fetch(service: "b") {
      { ... on User { __typename id } } => {
        ... on User {
          address {
            zip
          }
        }
      }
    },
  },
}
"#);
}

#[test]
fn provides_on_union() {
    insta::assert_snapshot!(plan(&schema(), "{ feed { ... on Post { title body } ... on Video { length } } }"), @r#"
QueryPlan {
  Sequence {
    Fetch(service: "a") {
      feed {
        __typename
        ... on Post {
          __typename
          title
          id
        }
        ... on Video {
          length
        }
      }
    },
    Flatten(path: "feed.@") Fetch(service: "b") {
      { ... on Post { __typename id } } => {
        ... on Post {
          body
        }
      }
    },
  },
}
"#);
}

#[test]
fn provides_on_interface() {
    insta::assert_snapshot!(plan(&schema(), "{ pinned { id title ... on Post { body } } }"), @r#"
QueryPlan {
  Sequence {
    Fetch(service: "a") {
      pinned {
        __typename
        id
        title
        ... on Post {
          __typename
          id
        }
      }
    },
    Flatten(path: "pinned") Fetch(service: "b") {
      { ... on Post { __typename id } } => {
        ... on Post {
          body
        }
      }
    },
  },
}
"#);
}
