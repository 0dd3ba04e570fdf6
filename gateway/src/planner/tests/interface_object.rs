//! `@interfaceObject`: graphs that know an entity interface as an object type return the
//! interface name as `__typename`; the real type comes from a graph with the
//! implementations.

use super::{fed2, plan, supergraph};

fn schema() -> String {
    let a = fed2(
        r#"
        type Query { users: [NodeWithName] }
        interface NodeWithName @key(fields: "id") { id: ID! name: String }
        type User implements NodeWithName @key(fields: "id") { id: ID! name: String age: Int }
        type Admin implements NodeWithName @key(fields: "id") { id: ID! name: String level: Int }
        "#,
    );
    let b = fed2(
        r#"
        type Query { anotherUsers: [NodeWithName] }
        type NodeWithName @key(fields: "id") @interfaceObject {
          id: ID!
          name: String @external
          username: String @requires(fields: "name")
        }
        "#,
    );
    let c = fed2(
        r#"
        type NodeWithName @key(fields: "id") @interfaceObject { id: ID! rating: Int }
        "#,
    );
    let d = fed2(
        r#"
        type Query { randomUser: NodeWithName }
        type NodeWithName @key(fields: "id", resolvable: false) @interfaceObject { id: ID! }
        "#,
    );
    supergraph(&[("a", &a), ("b", &b), ("c", &c), ("d", &d)])
}

#[test]
fn interface_fields_from_the_interface_object_graph() {
    insta::assert_snapshot!(plan(&schema(), "{ anotherUsers { id name username } }"), @r#"
QueryPlan {
  Sequence {
    Fetch(service: "b") {
      anotherUsers {
        __typename
        id
      }
    },
    Flatten(path: "anotherUsers.@") Fetch(service: "a") {
      { ... on NodeWithName { __typename id } } (as interface: Admin, User) => {
        ... on NodeWithName {
          name
        }
      }
    },
    Flatten(path: "anotherUsers.@") Fetch(service: "b") {
      { ... on NodeWithName { __typename id name } } (as interface: Admin, User) => {
        ... on NodeWithName {
          username
        }
      }
    },
  },
}
"#);
}

#[test]
fn requires_on_interface_object_from_implementation_graph() {
    insta::assert_snapshot!(plan(&schema(), "{ users { id name username } }"), @r#"
QueryPlan {
  Sequence {
    Fetch(service: "a") {
      users {
        __typename
        id
        name
      }
    },
    Flatten(path: "users.@") Fetch(service: "b") {
      { ... on NodeWithName { __typename id name } } (as interface: Admin, User) => {
        ... on NodeWithName {
          username
        }
      }
    },
  },
}
"#);
}

#[test]
fn type_condition_resolves_the_real_type() {
    insta::assert_snapshot!(plan(&schema(), "{ anotherUsers { ... on User { age } } }"), @r#"
QueryPlan {
  Sequence {
    Fetch(service: "b") {
      anotherUsers {
        __typename
        id
      }
    },
    Flatten(path: "anotherUsers.@") Fetch(service: "a") {
      { ... on NodeWithName { __typename id } } (as interface: Admin, User) => {
        ... on NodeWithName {
          __typename
          ... on User {
            age
          }
        }
      }
    },
  },
}
"#);
}

#[test]
fn typename_and_fragment_from_implementation_graph() {
    insta::assert_snapshot!(plan(&schema(), "{ users { __typename ... on User { age username } } }"), @r#"
QueryPlan {
  Sequence {
    Fetch(service: "a") {
      users {
        __typename
        ... on User {
          __typename
          age
          id
          name
        }
      }
    },
    Flatten(path: "users.@") Fetch(service: "b") {
      { ... on NodeWithName { __typename id name } } (as interface: Admin, User) => {
        ... on NodeWithName {
          username
        }
      }
    },
  },
}
"#);
}

#[test]
fn typename_from_interface_object_graph() {
    insta::assert_snapshot!(plan(&schema(), "{ anotherUsers { __typename id } }"), @r#"
QueryPlan {
  Sequence {
    Fetch(service: "b") {
      anotherUsers {
        __typename
        id
      }
    },
    Flatten(path: "anotherUsers.@") Fetch(service: "a") {
      { ... on NodeWithName { __typename id } } (as interface: Admin, User) => {
        ... on NodeWithName {
          __typename
        }
      }
    },
  },
}
"#);
}

#[test]
fn two_interface_object_graphs() {
    insta::assert_snapshot!(plan(&schema(), "{ anotherUsers { rating username } }"), @r#"
QueryPlan {
  Sequence {
    Fetch(service: "b") {
      anotherUsers {
        __typename
        id
      }
    },
    Parallel {
      Flatten(path: "anotherUsers.@") Fetch(service: "a") {
        { ... on NodeWithName { __typename id } } (as interface: Admin, User) => {
          ... on NodeWithName {
            name
          }
        }
      },
      Flatten(path: "anotherUsers.@") Fetch(service: "c") {
        { ... on NodeWithName { __typename id } } (as interface: Admin, User) => {
          ... on NodeWithName {
            rating
          }
        }
      },
    },
    Flatten(path: "anotherUsers.@") Fetch(service: "b") {
      { ... on NodeWithName { __typename id name } } (as interface: Admin, User) => {
        ... on NodeWithName {
          username
        }
      }
    },
  },
}
"#);
}

#[test]
fn interface_object_field_from_implementation_graph() {
    insta::assert_snapshot!(plan(&schema(), "{ users { rating } }"), @r#"
QueryPlan {
  Sequence {
    Fetch(service: "a") {
      users {
        __typename
        id
      }
    },
    Flatten(path: "users.@") Fetch(service: "c") {
      { ... on NodeWithName { __typename id } } (as interface: Admin, User) => {
        ... on NodeWithName {
          rating
        }
      }
    },
  },
}
"#);
}

#[test]
fn non_resolvable_interface_object() {
    insta::assert_snapshot!(plan(&schema(), "{ randomUser { id name ... on User { age } } }"), @r#"
QueryPlan {
  Sequence {
    Fetch(service: "d") {
      randomUser {
        __typename
        id
      }
    },
    Flatten(path: "randomUser") Fetch(service: "a") {
      { ... on NodeWithName { __typename id } } (as interface: Admin, User) => {
        ... on NodeWithName {
          name
          __typename
          ... on User {
            age
          }
        }
      }
    },
  },
}
"#);
}

#[test]
fn nested_type_conditions_after_requires() {
    insta::assert_snapshot!(plan(&schema(), "{ anotherUsers { ... on User { id name username age } ... on Admin { level } } }"), @r#"
QueryPlan {
  Sequence {
    Fetch(service: "b") {
      anotherUsers {
        __typename
        id
      }
    },
    Flatten(path: "anotherUsers.@") Fetch(service: "a") {
      { ... on NodeWithName { __typename id } } (as interface: Admin, User) => {
        ... on NodeWithName {
          __typename
          ... on User {
            __typename
            id
            name
            age
          }
          ... on Admin {
            level
          }
        }
      }
    },
    Flatten(path: "anotherUsers.@") Fetch(service: "b") {
      { ... on NodeWithName { __typename id name } } (as interface: Admin, User) => {
        ... on NodeWithName {
          username
        }
      }
    },
  },
}
"#);
}
