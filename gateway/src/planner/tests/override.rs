//! `@override`: fields move between graphs; the overridden graph keeps them only for
//! keys and `@requires`.

use super::{fed2, plan, supergraph};

fn schema() -> String {
    let a = fed2(
        r#"
        type Query { feed: [Post] }
        type Post @key(fields: "id") { id: ID! createdAt: String title: String @shareable }
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
        type Post @key(fields: "id") { id: ID! body: String }
        "#,
    );
    // Composition rejects `@override(from:)` naming an unknown subgraph (Apollo only
    // hints), so the supergraph is patched the way Apollo composes it.
    let sdl = supergraph(&[("a", &a), ("b", &b), ("c", &c)]);
    let patched = sdl.replace(
        "body: String @join__field(graph: C)",
        "body: String @join__field(graph: C, override: \"gone\")",
    );
    assert_ne!(sdl, patched, "fixture patch applied");
    patched
}

#[test]
fn overridden_field_goes_to_new_owner() {
    insta::assert_snapshot!(plan(&schema(), "{ feed { id createdAt } }"), @r#"
QueryPlan {
  Sequence {
    Fetch(service: "a") {
      feed {
        __typename
        id
      }
    },
    Flatten(path: "feed.@") Fetch(service: "b") {
      { ... on Post { __typename id } } => {
        ... on Post {
          createdAt
        }
      }
    },
  },
}
"#);
}

#[test]
fn override_from_unknown_graph() {
    insta::assert_snapshot!(plan(&schema(), "{ feed { title body } }"), @r#"
QueryPlan {
  Sequence {
    Fetch(service: "a") {
      feed {
        __typename
        title
        id
      }
    },
    Flatten(path: "feed.@") Fetch(service: "c") {
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
fn override_with_requires() {
    insta::assert_snapshot!(plan(&schema(), "{ feed { createdAt summary } }"), @r#"
QueryPlan {
  Sequence {
    Fetch(service: "a") {
      feed {
        __typename
        id
        title
      }
    },
    Flatten(path: "feed.@") Fetch(service: "b") {
      { ... on Post { __typename id title } } => {
        ... on Post {
          createdAt
          summary
        }
      }
    },
  },
}
"#);
}
