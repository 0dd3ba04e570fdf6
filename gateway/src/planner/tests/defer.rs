//! `@defer`: deferred fragments get fetches of their own, after the primary part or
//! beside it when they need nothing from it; fields the primary fetch can select
//! anyway stay in it.

use super::{BENCH, plan};

#[test]
fn a_deferred_jump_runs_after_the_primary_part() {
    let out = plan(
        BENCH,
        r#"{ topProducts { name ... @defer(label: "reviews") { reviews { body author { name } } } } }"#,
    );
    insta::assert_snapshot!(out, @r#"
QueryPlan {
  Fetch(service: "products") {
    topProducts {
      __typename
      name
      upc
    }
  },
  Deferred(step 1) {
    Flatten(path: "topProducts.@") Fetch(service: "reviews") {
      { ... on Product { __typename upc } } => {
        ... on Product {
          reviews {
            body
            author {
              __typename
              id
            }
          }
        }
      }
    },
  },
  Deferred(step 2) {
    Flatten(path: "topProducts.@.reviews.@.author") Fetch(service: "accounts") {
      { ... on User { __typename id } } => {
        ... on User {
          name
        }
      }
    },
  },
  Defer(id: 0, label: "reviews", path: "topProducts.@", after step: 2),
}
"#);
}

#[test]
fn a_deferred_root_field_runs_beside_the_primary_part() {
    let out = plan(
        BENCH,
        r#"{ topProducts(first: 1) { upc } ... @defer { me { name } } }"#,
    );
    assert!(out.contains("Deferred(beside the primary part)"), "{out}");
    assert!(out.contains("after step: 0"), "{out}");
}

#[test]
fn deferred_fields_of_the_same_fetch_stay_in_it() {
    let out = plan(BENCH, r#"{ topProducts { upc ... @defer { name } } }"#);
    assert!(!out.contains("Deferred("), "{out}");
    // Delivered in a payload of its own right after the primary one.
    assert!(
        out.contains("Defer(id: 0, label: \"\", path: \"topProducts.@\", after step: 0)"),
        "{out}"
    );
}

#[test]
fn defer_if_false_changes_nothing() {
    let out = plan(
        BENCH,
        r#"{ topProducts { upc ... @defer(if: false) { reviews { body } } } }"#,
    );
    assert!(!out.contains("Defer"), "{out}");
}
