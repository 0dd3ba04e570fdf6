//! Supergraphs composed from valid subgraphs: merged types, fields, join data and
//! directives, compared with the reference composition where one exists.

use super::*;

#[test]
fn composes_benchmark_subgraphs_like_the_reference() {
    let sdl = compose_ok(&bench_subgraphs());
    assert_eq!(normalize(&sdl), normalize(BENCH_SUPERGRAPH));
    assert_eq!(sdl, BENCH_SUPERGRAPH, "layout differs from the reference");
}

#[test]
fn merges_interfaces_and_unions_across_subgraphs() {
    let a = fed2(
        "\"@key\"",
        r#"
        type Query { node(id: ID!): Node media: [Media] }
        interface Node { id: ID! }
        type Book implements Node @key(fields: "id") { id: ID! title: String }
        union Media = Book
        "#,
    );
    let b = fed2(
        "\"@key\"",
        r#"
        type Query { movies: [Movie] }
        interface Node { id: ID! }
        type Movie implements Node @key(fields: "id") { id: ID! director: String }
        union Media = Movie
        "#,
    );
    let n = normalize(&compose_ok(&[subgraph("a", &a), subgraph("b", &b)]));
    assert_entry(
        &n,
        "Node",
        &[
            "kind Interface",
            "@join__type(graph: A)",
            "@join__type(graph: B)",
        ],
    );
    assert_entry(&n, "Node.id", &["type ID!"]);
    assert_entry(
        &n,
        "Book",
        &[
            "kind Object",
            "implements Node",
            "@join__type(graph: A, key: \"id\")",
            "@join__implements(graph: A, interface: \"Node\")",
        ],
    );
    assert_entry(
        &n,
        "Media",
        &[
            "kind Union",
            "member Book",
            "member Movie",
            "@join__type(graph: A)",
            "@join__type(graph: B)",
            "@join__unionMember(graph: A, member: \"Book\")",
            "@join__unionMember(graph: B, member: \"Movie\")",
        ],
    );
    assert_entry(&n, "Movie.director", &["type String"]);
}

#[test]
fn widens_output_field_to_a_common_supertype() {
    let a = fed2(
        "\"@key\", \"@shareable\"",
        r#"
        type Query { t: T }
        interface I { a: Int }
        type A implements I @shareable { a: Int }
        type T @key(fields: "id") { id: ID! f: I @shareable }
        "#,
    );
    let b = fed2(
        "\"@key\", \"@shareable\"",
        r#"
        type A @shareable { a: Int }
        type T @key(fields: "id") { id: ID! f: A! @shareable }
        "#,
    );
    let n = normalize(&compose_ok(&[subgraph("a", &a), subgraph("b", &b)]));
    assert_entry(
        &n,
        "T.f",
        &[
            "type I",
            "@join__field(graph: A)",
            "@join__field(graph: B, type: \"A!\")",
        ],
    );
}

#[test]
fn entity_interface_and_interface_object() {
    let a = fed2(
        "\"@key\"",
        r#"
        type Query { media: [Media] }
        interface Media @key(fields: "id") { id: ID! title: String }
        type Book implements Media @key(fields: "id") { id: ID! title: String }
        "#,
    );
    let b = fed2(
        "\"@key\", \"@interfaceObject\"",
        r#"
        type Query { topMedia: Media }
        type Media @key(fields: "id") @interfaceObject { id: ID! reviews: [String] }
        "#,
    );
    let n = normalize(&compose_ok(&[subgraph("a", &a), subgraph("b", &b)]));
    assert_entry(
        &n,
        "Media",
        &[
            "kind Interface",
            "@join__type(graph: A, key: \"id\")",
            "@join__type(graph: B, key: \"id\", isInterfaceObject: true)",
        ],
    );
    assert_entry(&n, "Media.id", &["type ID!"]);
    assert_entry(
        &n,
        "Media.title",
        &["type String", "@join__field(graph: A)"],
    );
    assert_entry(
        &n,
        "Media.reviews",
        &["type [String]", "@join__field(graph: B)"],
    );
    // Implementations get the interface object's fields, resolvable through it only.
    assert_entry(&n, "Book.reviews", &["type [String]", "@join__field"]);
    assert_entry(
        &n,
        "Query.topMedia",
        &["type Media", "@join__field(graph: B)"],
    );
}

#[test]
fn interface_object_without_interface_is_an_error() {
    let b = fed2(
        "\"@key\", \"@interfaceObject\"",
        r#"
        type Query { topMedia: Media }
        type Media @key(fields: "id") @interfaceObject { id: ID! }
        "#,
    );
    let errors = compose_err(&[subgraph("b", &b)]);
    assert_has_error(
        &errors,
        "INTERFACE_OBJECT_USAGE_ERROR",
        Some("b"),
        Some("Media"),
    );
}

#[test]
fn merges_enums_by_usage() {
    let a = fed2(
        "",
        r#"
        type Query { status: Status items(sort: Sort): [String] }
        enum Status { ACTIVE INACTIVE }
        enum Sort { ASC DESC }
        "#,
    );
    let b = fed2(
        "",
        r#"
        type Query { otherStatus: Status others(sort: Sort): [String] }
        enum Status { ACTIVE DELETED }
        enum Sort { ASC }
        "#,
    );
    let n = normalize(&compose_ok(&[subgraph("a", &a), subgraph("b", &b)]));
    // Output-only: union of values.
    assert_entry(
        &n,
        "Status.ACTIVE",
        &["@join__enumValue(graph: A)", "@join__enumValue(graph: B)"],
    );
    assert_entry(&n, "Status.INACTIVE", &["@join__enumValue(graph: A)"]);
    assert_entry(&n, "Status.DELETED", &["@join__enumValue(graph: B)"]);
    // Input-only: intersection.
    assert_entry(
        &n,
        "Sort.ASC",
        &["@join__enumValue(graph: A)", "@join__enumValue(graph: B)"],
    );
    assert!(!n.contains_key("Sort.DESC"));
}

#[test]
fn enum_used_as_input_and_output_must_match() {
    let a = fed2(
        "",
        "type Query { status(filter: Status): Status } enum Status { ACTIVE INACTIVE }",
    );
    let b = fed2("", "type Query { other: Status } enum Status { ACTIVE }");
    let errors = compose_err(&[subgraph("a", &a), subgraph("b", &b)]);
    assert_has_error(&errors, "ENUM_VALUE_MISMATCH", Some("b"), Some("Status"));
}

#[test]
fn merges_input_objects_by_intersection() {
    let a = fed2(
        "",
        r#"
        type Query { search(filter: Filter): [String] }
        input Filter { name: String limit: Int = 10 }
        "#,
    );
    let b = fed2(
        "",
        r#"
        type Query { find(filter: Filter): [String] }
        input Filter { name: String! }
        "#,
    );
    let n = normalize(&compose_ok(&[subgraph("a", &a), subgraph("b", &b)]));
    assert_entry(
        &n,
        "Filter.name",
        &[
            "type String! = None",
            "@join__field(graph: A, type: \"String\")",
            "@join__field(graph: B)",
        ],
    );
    assert!(!n.contains_key("Filter.limit"));
}

#[test]
fn required_input_field_missing_in_a_subgraph_is_an_error() {
    let a = fed2(
        "",
        "type Query { search(filter: Filter): [String] } input Filter { name: String }",
    );
    let b = fed2(
        "",
        "type Query { find(filter: Filter): [String] } input Filter { name: String tag: String! }",
    );
    let errors = compose_err(&[subgraph("a", &a), subgraph("b", &b)]);
    assert_has_error(
        &errors,
        "REQUIRED_INPUT_FIELD_MISSING_IN_SOME_SUBGRAPH",
        Some("a"),
        Some("Filter.tag"),
    );
}

#[test]
fn merges_arguments_by_intersection_with_most_restrictive_type() {
    let a = fed2(
        "\"@shareable\"",
        "type Query { items(first: Int, after: String): [String] @shareable }",
    );
    let b = fed2(
        "\"@shareable\"",
        "type Query { items(first: Int!): [String] @shareable }",
    );
    let n = normalize(&compose_ok(&[subgraph("a", &a), subgraph("b", &b)]));
    assert_entry(
        &n,
        "Query.items",
        &["type [String]", "arg first: Int! = None"],
    );
}

#[test]
fn shareable_fields_merge_nullability() {
    let a = fed2(
        "\"@key\", \"@shareable\"",
        r#"
        type Query { product: Product }
        type Money @shareable { amount: Int currency: String }
        type Product @key(fields: "id") { id: ID! price: Money! @shareable }
        "#,
    );
    let b = fed2(
        "\"@key\", \"@shareable\"",
        r#"
        type Money @shareable { amount: Int currency: String }
        type Product @key(fields: "id") { id: ID! price: Money @shareable }
        "#,
    );
    let n = normalize(&compose_ok(&[subgraph("a", &a), subgraph("b", &b)]));
    assert_entry(&n, "Money.amount", &["type Int"]);
    assert_entry(
        &n,
        "Product.price",
        &[
            "type Money",
            "@join__field(graph: A, type: \"Money!\")",
            "@join__field(graph: B)",
        ],
    );
}

#[test]
fn non_shareable_field_in_two_subgraphs_is_an_error() {
    let a = fed2("", "type Query { hello: String }");
    let b = fed2("\"@shareable\"", "type Query { hello: String @shareable }");
    let errors = compose_err(&[subgraph("a", &a), subgraph("b", &b)]);
    assert_has_error(
        &errors,
        "INVALID_FIELD_SHARING",
        Some("a"),
        Some("Query.hello"),
    );
    assert!(errors[0].message.contains("@shareable"));
}

#[test]
fn override_drops_the_unused_overridden_field() {
    let a = fed2(
        "\"@key\"",
        r#"type Query { product: Product } type Product @key(fields: "id") { id: ID! price: Int }"#,
    );
    let b = fed2(
        "\"@key\", \"@override\"",
        r#"type Product @key(fields: "id") { id: ID! price: Int @override(from: "a") }"#,
    );
    let n = normalize(&compose_ok(&[subgraph("a", &a), subgraph("b", &b)]));
    assert_entry(
        &n,
        "Product.price",
        &["type Int", "@join__field(graph: B, override: \"a\")"],
    );
}

#[test]
fn override_keeps_a_field_still_used_as_key_as_used_overridden() {
    let a = fed2(
        "\"@key\"",
        r#"
        type Query { product: Product }
        type Product @key(fields: "id") @key(fields: "sku price") { id: ID! sku: String price: Int }
        "#,
    );
    let b = fed2(
        "\"@key\", \"@override\"",
        r#"type Product @key(fields: "id") { id: ID! price: Int @override(from: "a") }"#,
    );
    let n = normalize(&compose_ok(&[subgraph("a", &a), subgraph("b", &b)]));
    assert_entry(
        &n,
        "Product.price",
        &[
            "type Int",
            "@join__field(graph: A, usedOverridden: true)",
            "@join__field(graph: B, override: \"a\")",
        ],
    );
}

#[test]
fn inaccessible_and_tag_are_propagated_with_their_definitions() {
    let a = fed2(
        "\"@key\", \"@inaccessible\", \"@tag\"",
        r#"
        type Query {
            secret: String @inaccessible
            user(id: ID! @tag(name: "arg")): User @tag(name: "public")
        }
        type User @key(fields: "id") @tag(name: "team-a") { id: ID! internal: Int @inaccessible }
        enum Role { ADMIN @inaccessible USER }
        "#,
    );
    let sdl = compose_ok(&[subgraph("a", &a)]);
    assert!(
        sdl.contains("@link(url: \"https://specs.apollo.dev/inaccessible/v0.2\", for: SECURITY)")
    );
    assert!(sdl.contains("@link(url: \"https://specs.apollo.dev/tag/v0.3\")"));
    let n = normalize(&sdl);
    assert!(n.contains_key("@inaccessible") && n.contains_key("@tag"));
    // A single subgraph defines Query, so no @join__field is needed.
    assert_entry(&n, "Query.secret", &["type String", "@inaccessible"]);
    assert_entry(
        &n,
        "Query.user",
        &[
            "type User",
            "@tag(name: \"public\")",
            "arg id: ID! = None @tag(name: \"arg\")",
        ],
    );
    assert!(entry(&n, "User").contains("@tag(name: \"team-a\")"));
    assert!(entry(&n, "Role.ADMIN").contains("@inaccessible"));
}

#[test]
fn authorization_directives_are_carried_into_the_supergraph() {
    let a = fed2(
        "\"@key\", \"@shareable\", \"@authenticated\", \"@requiresScopes\"",
        r#"
        type Query {
            me: User @authenticated
            audit: String @requiresScopes(scopes: [["audit:read"], ["admin"]])
        }
        type User @key(fields: "id") { id: ID! email: String @shareable @requiresScopes(scopes: [["email"]]) }
        "#,
    );
    let b = fed2(
        "\"@key\", \"@shareable\", \"@requiresScopes\"",
        r#"
        type User @key(fields: "id") { id: ID! email: String @shareable @requiresScopes(scopes: [["pii"]]) }
        "#,
    );
    let sdl = compose_ok(&[subgraph("a", &a), subgraph("b", &b)]);
    for link in ["authenticated/v0.1", "requiresScopes/v0.1"] {
        assert!(
            sdl.contains(&format!(
                "@link(url: \"https://specs.apollo.dev/{link}\", for: SECURITY)"
            )),
            "{sdl}"
        );
    }
    let n = normalize(&sdl);
    assert!(entry(&n, "Query.me").contains("@authenticated"));
    assert!(
        entry(&n, "Query.audit")
            .contains("@requiresScopes(scopes: [[\"audit:read\"], [\"admin\"]])")
    );
    // Both subgraphs' requirements hold: (email AND pii).
    assert!(
        entry(&n, "User.email").contains("@requiresScopes(scopes: [[\"email\", \"pii\"]])"),
        "{:?}",
        entry(&n, "User.email")
    );
    // ... and the API schema hides them.
    let snapshot = crate::schema::SchemaSnapshot::from_supergraph_sdl(&sdl).expect("valid");
    let api = snapshot.api.serialize().to_string();
    assert!(
        !api.contains("authenticated") && !api.contains("requiresScopes"),
        "{api}"
    );
}

#[test]
fn no_inaccessible_or_tag_definitions_when_unused() {
    let sdl = compose_ok(&bench_subgraphs());
    assert!(!sdl.contains("@inaccessible") && !sdl.contains("@tag"));
}

#[test]
fn multiple_compound_nested_and_unresolvable_keys() {
    let a = fed2(
        "\"@key\"",
        r#"
        type Query { product: Product }
        type Organization { id: ID! }
        type Product @key(fields: "id") @key(fields: "sku package") @key(fields: "id organization { id }") {
            id: ID! sku: String! package: String! organization: Organization! name: String
        }
        "#,
    );
    let b = fed2(
        "\"@key\"",
        r#"
        type Review { product: Product }
        type Query { reviews: [Review] }
        type Product @key(fields: "id", resolvable: false) { id: ID! }
        "#,
    );
    let n = normalize(&compose_ok(&[subgraph("a", &a), subgraph("b", &b)]));
    assert_entry(
        &n,
        "Product",
        &[
            "kind Object",
            "@join__type(graph: A, key: \"id\")",
            "@join__type(graph: A, key: \"sku package\")",
            "@join__type(graph: A, key: \"id organization { id }\")",
            "@join__type(graph: B, key: \"id\", resolvable: false)",
        ],
    );
    assert_entry(&n, "Product.id", &["type ID!"]);
    assert_entry(
        &n,
        "Product.sku",
        &["type String!", "@join__field(graph: A)"],
    );
}

#[test]
fn federation1_subgraphs_with_type_extensions() {
    let accounts = r#"
        extend type Query { me: User }
        type User @key(fields: "id") { id: ID! name: String }
        type Money { amount: Int }
    "#;
    let reviews = r#"
        type Query { topReviews: [Review] }
        type Review { body: String author: User cost: Money }
        extend type User @key(fields: "id") {
            id: ID! @external
            username: String @external
            reviews: [Review] @requires(fields: "username")
        }
        type Money { amount: Int }
    "#;
    let n = normalize(&compose_ok(&[
        subgraph("accounts", accounts),
        subgraph("reviews", reviews),
    ]));
    assert_entry(
        &n,
        "User",
        &[
            "kind Object",
            "@join__type(graph: ACCOUNTS, key: \"id\")",
            "@join__type(graph: REVIEWS, key: \"id\", extension: true)",
        ],
    );
    // The key field is not external: Federation 1 needed @external on it in extensions.
    assert_entry(&n, "User.id", &["type ID!"]);
    assert_entry(
        &n,
        "User.reviews",
        &[
            "type [Review]",
            "@join__field(graph: REVIEWS, requires: \"username\")",
        ],
    );
    // Value types are implicitly shareable in Federation 1.
    assert_entry(&n, "Money.amount", &["type Int"]);
    assert_entry(
        &n,
        "Query",
        &[
            "kind Object",
            "@join__type(graph: ACCOUNTS)",
            "@join__type(graph: REVIEWS)",
        ],
    );
}

#[test]
fn federation1_extends_directive_and_subscriptions() {
    let a = r#"
        type Query { me: User }
        type Subscription { userChanged: User }
        type User @key(fields: "id") { id: ID! name: String }
    "#;
    let b = r#"
        type Query { reviews: [String] }
        type User @key(fields: "id") @extends { id: ID! @external nickname: String }
    "#;
    let sdl = compose_ok(&[subgraph("a", a), subgraph("b", b)]);
    assert!(sdl.contains("    subscription: Subscription\n"), "{sdl}");
    let n = normalize(&sdl);
    assert!(entry(&n, "User").contains("@join__type(graph: B, key: \"id\", extension: true)"));
    assert_entry(&n, "User.id", &["type ID!"]);
    assert_entry(&n, "Subscription.userChanged", &["type User"]);
}

#[test]
fn type_named_like_a_root_but_not_a_root_is_an_error() {
    let a = fed2(
        "",
        "schema { query: RootQuery } type RootQuery { a: Query } type Query { b: Int }",
    );
    let errors = compose_err(&[subgraph("a", &a)]);
    assert_has_error(&errors, "ROOT_TYPE_USED", Some("a"), Some("Query"));
}

#[test]
fn renamed_root_types_and_imports() {
    let a = r#"
        extend schema @link(url: "https://specs.apollo.dev/federation/v2.3",
                            import: [{ name: "@key", as: "@primaryKey" }])
        schema { query: RootQuery mutation: RootMutation }
        type RootQuery { me: User }
        type RootMutation { rename(name: String!): User }
        type User @primaryKey(fields: "id") { id: ID! name: String @federation__shareable }
    "#;
    let b = fed2(
        "\"@key\", \"@shareable\"",
        r#"type User @key(fields: "id") { id: ID! name: String @shareable }"#,
    );
    let sdl = compose_ok(&[subgraph("a", a), subgraph("b", &b)]);
    assert!(sdl.contains("mutation: Mutation"));
    let n = normalize(&sdl);
    assert_entry(&n, "Query.me", &["type User", "@join__field(graph: A)"]);
    assert_entry(&n, "Mutation", &["kind Object", "@join__type(graph: A)"]);
    assert_entry(
        &n,
        "Mutation.rename",
        &["type User", "arg name: String! = None"],
    );
    assert!(entry(&n, "User").contains("@join__type(graph: A, key: \"id\")"));
    assert_entry(&n, "User.name", &["type String"]);
    assert!(!n.contains_key("RootQuery"));
}

#[test]
fn strips_federation_internals_from_service_sdl() {
    // What async-graphql and similar frameworks return from `_service { sdl }`.
    let a = r#"
        extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key", "FieldSet"])
        directive @key(fields: FieldSet!, resolvable: Boolean = true) repeatable on OBJECT | INTERFACE
        scalar FieldSet
        scalar _Any
        type _Service { sdl: String }
        union _Entity = User
        type Query {
            me: User
            _service: _Service!
            _entities(representations: [_Any!]!): [_Entity]!
        }
        type User @key(fields: "id") { id: ID! }
    "#;
    let sdl = compose_ok(&[subgraph("a", a)]);
    for internal in [
        "_Service",
        "_Entity",
        "_Any",
        "FieldSet!",
        "_entities",
        "_service",
    ] {
        assert!(!sdl.contains(internal), "{internal} leaked into:\n{sdl}");
    }
}

#[test]
fn prints_descriptions_and_default_values() {
    let a = fed2(
        "",
        r#"
        "The root"
        type Query {
            "Greets"
            hello(
                "Who to greet"
                name: String = "world"
            ): String @deprecated(reason: "use hi")
        }
        """
        Multi-line
        description
        """
        enum Color { "The red one" RED GREEN }
        "#,
    );
    let sdl = compose_ok(&[subgraph("a", &a)]);
    assert!(sdl.contains("\"\"\"The root\"\"\"\ntype Query"), "{sdl}");
    assert!(
        sdl.contains("\"\"\"Who to greet\"\"\"\n        name: String = \"world\""),
        "{sdl}"
    );
    assert!(sdl.contains("@deprecated(reason: \"use hi\")"), "{sdl}");
    assert!(
        sdl.contains("\"\"\"\nMulti-line\ndescription\n\"\"\"\nenum Color"),
        "{sdl}"
    );
    assert!(
        sdl.contains("    \"\"\"The red one\"\"\"\n    RED @join__enumValue(graph: A)"),
        "{sdl}"
    );
}

#[test]
fn output_does_not_depend_on_subgraph_order() {
    let mut reversed = bench_subgraphs();
    reversed.reverse();
    assert_eq!(compose_ok(&reversed), compose_ok(&bench_subgraphs()));
}

#[test]
fn graph_enum_values_are_sanitized_and_unique() {
    let a = fed2("\"@shareable\"", "type Query { a: String @shareable }");
    let sdl = compose_ok(&[
        subgraph("my-api", &a),
        subgraph("my_api", &a),
        subgraph("1st", &a),
    ]);
    assert!(sdl.contains("_1ST @join__graph(name: \"1st\""), "{sdl}");
    assert!(
        sdl.contains("MY_API @join__graph(name: \"my-api\""),
        "{sdl}"
    );
    assert!(
        sdl.contains("MY_API_1 @join__graph(name: \"my_api\""),
        "{sdl}"
    );
}

// --- errors ---------------------------------------------------------------------------
