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
    supergraph(&[("a", &a), ("b", &b), ("c", &c)])
}

#[test]
fn dump() {
    let s = schema();
    println!("{s}");
    for q in [
        "{ anotherUsers { id name username } }",
        "{ users { id name username } }",
        "{ anotherUsers { ... on User { age } } }",
        "{ users { __typename ... on User { age username } } }",
        "{ anotherUsers { __typename id } }",
        "{ anotherUsers { rating username } }",
        "{ users { rating } }",
    ] {
        println!("{q}\n{}", plan(&s, q));
    }
}
