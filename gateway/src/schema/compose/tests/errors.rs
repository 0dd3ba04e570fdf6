//! Invalid subgraphs and conflicting definitions: every error with its code, subgraph and
//! coordinate.

use super::*;

#[test]
fn syntax_error_reports_line_and_column() {
    let errors = compose_err(&[subgraph("a", "type Query {\n  hello: \n}")]);
    assert_has_error(&errors, "INVALID_GRAPHQL", Some("a"), None);
    assert!(
        errors[0].message.contains("line 3, column 1"),
        "{}",
        errors[0]
    );
}

#[test]
fn validation_error_in_subgraph() {
    let errors = compose_err(&[subgraph("a", "type Query { hello: Missing }")]);
    assert_has_error(&errors, "INVALID_GRAPHQL", Some("a"), None);
    assert!(errors[0].message.contains("Missing"), "{}", errors[0]);
}

#[test]
fn incompatible_field_types() {
    let a = fed2(
        "\"@key\", \"@shareable\"",
        r#"type Query { t: T } type T @key(fields: "id") { id: ID! f: String @shareable }"#,
    );
    let b = fed2(
        "\"@key\", \"@shareable\"",
        r#"type T @key(fields: "id") { id: ID! f: Int @shareable }"#,
    );
    let errors = compose_err(&[subgraph("a", &a), subgraph("b", &b)]);
    assert_has_error(&errors, "FIELD_TYPE_MISMATCH", Some("b"), Some("T.f"));
    let message = &errors[0].message;
    assert!(
        message.contains("\"String\" in subgraph \"a\"")
            && message.contains("\"Int\" in subgraph \"b\"")
    );
}

#[test]
fn incompatible_argument_types_and_defaults() {
    let a = fed2(
        "\"@shareable\"",
        "type Query { f(x: Int, y: Int = 1): Int @shareable }",
    );
    let b = fed2(
        "\"@shareable\"",
        "type Query { f(x: String, y: Int = 2): Int @shareable }",
    );
    let errors = compose_err(&[subgraph("a", &a), subgraph("b", &b)]);
    assert_has_error(
        &errors,
        "FIELD_ARGUMENT_TYPE_MISMATCH",
        Some("b"),
        Some("Query.f(x:)"),
    );
    assert_has_error(
        &errors,
        "FIELD_ARGUMENT_DEFAULT_MISMATCH",
        Some("b"),
        Some("Query.f(y:)"),
    );
}

#[test]
fn type_kind_mismatch() {
    let a = fed2("", "type Query { a: Thing } type Thing { x: Int }");
    let b = fed2("", "type Query { b: String } interface Thing { x: Int }");
    let errors = compose_err(&[subgraph("a", &a), subgraph("b", &b)]);
    assert_has_error(&errors, "TYPE_KIND_MISMATCH", Some("b"), Some("Thing"));
}

#[test]
fn requires_unknown_field() {
    let inventory = fed2(
        "\"@key\", \"@external\", \"@requires\"",
        r#"
        type Product @key(fields: "upc") {
            upc: String!
            weight: Int @external
            shippingEstimate: Int @requires(fields: "weight price")
        }
        "#,
    );
    let products = fed2(
        "\"@key\"",
        r#"type Query { p: Product } type Product @key(fields: "upc") { upc: String! }"#,
    );
    let errors = compose_err(&[
        subgraph("inventory", &inventory),
        subgraph("products", &products),
    ]);
    assert_has_error(
        &errors,
        "REQUIRES_INVALID_FIELDS",
        Some("inventory"),
        Some("Product.shippingEstimate"),
    );
    assert!(errors[0].message.contains("price"), "{}", errors[0]);
}

#[test]
fn requires_non_external_field() {
    let a = fed2(
        "\"@key\", \"@requires\"",
        r#"
        type Query { p: Product }
        type Product @key(fields: "upc") { upc: String! weight: Int estimate: Int @requires(fields: "weight") }
        "#,
    );
    let errors = compose_err(&[subgraph("a", &a)]);
    assert_has_error(
        &errors,
        "REQUIRES_FIELDS_MISSING_EXTERNAL",
        Some("a"),
        Some("Product.estimate"),
    );
}

#[test]
fn key_on_missing_field() {
    let a = fed2(
        "\"@key\"",
        r#"type Query { p: Product } type Product @key(fields: "sku") { upc: String! }"#,
    );
    let errors = compose_err(&[subgraph("a", &a)]);
    assert_has_error(&errors, "KEY_INVALID_FIELDS", Some("a"), Some("Product"));
}

#[test]
fn provides_errors() {
    let a = fed2(
        "\"@key\", \"@provides\", \"@external\"",
        r#"
        type Query {
            user: User @provides(fields: "nickname")
            name: String @provides(fields: "length")
            other: User @provides(fields: "email")
        }
        type User @key(fields: "id") { id: ID! email: String }
        "#,
    );
    let errors = compose_err(&[subgraph("a", &a)]);
    assert_has_error(
        &errors,
        "PROVIDES_INVALID_FIELDS",
        Some("a"),
        Some("Query.user"),
    );
    assert_has_error(
        &errors,
        "PROVIDES_ON_NON_OBJECT_FIELD",
        Some("a"),
        Some("Query.name"),
    );
    assert_has_error(
        &errors,
        "PROVIDES_FIELDS_MISSING_EXTERNAL",
        Some("a"),
        Some("Query.other"),
    );
}

#[test]
fn override_errors() {
    let a = fed2(
        "\"@key\", \"@override\"",
        r#"
        type Query { p: Product }
        type Product @key(fields: "id") {
            id: ID!
            price: Int @override(from: "a")
            name: String @override(from: "nowhere")
        }
        "#,
    );
    let errors = compose_err(&[subgraph("a", &a)]);
    assert_has_error(
        &errors,
        "OVERRIDE_FROM_SELF_ERROR",
        Some("a"),
        Some("Product.price"),
    );
    assert!(
        !errors
            .iter()
            .any(|e| e.code == "FROM_SUBGRAPH_DOES_NOT_EXIST"),
        "overriding from an unknown subgraph is not an error"
    );
}

#[test]
fn duplicate_and_empty_subgraph_lists() {
    let a = fed2("", "type Query { a: String }");
    let errors = compose_err(&[subgraph("a", &a), subgraph("a", &a)]);
    assert_has_error(&errors, "DUPLICATE_SUBGRAPH_NAME", Some("a"), None);
    let errors = compose_err(&[]);
    assert_has_error(&errors, "NO_SUBGRAPHS", None, None);
}

#[test]
fn no_query_type_anywhere() {
    let a = fed2("\"@key\"", r#"type Product @key(fields: "id") { id: ID! }"#);
    let errors = compose_err(&[subgraph("a", &a)]);
    assert_has_error(&errors, "NO_QUERIES", None, Some("Query"));
}

#[test]
fn reports_all_errors_at_once() {
    let a = fed2("", "type Query { hello: String }");
    let b = fed2("", "type Query { hello: String }");
    let c = "type Query { broken: Nope }";
    let errors = compose_err(&[subgraph("a", &a), subgraph("b", &b), subgraph("c", c)]);
    assert_has_error(&errors, "INVALID_GRAPHQL", Some("c"), None);
    let d = fed2(
        "\"@key\"",
        r#"type Query { x: X } type X @key(fields: "nope") { id: ID }"#,
    );
    let errors = compose_err(&[subgraph("a", &a), subgraph("b", &b), subgraph("d", &d)]);
    assert_has_error(&errors, "KEY_INVALID_FIELDS", Some("d"), Some("X"));
    let errors = compose_err(&[
        subgraph("a", &a),
        subgraph("b", &b),
        subgraph("e", &fed2("", "type Query { hello: Int }")),
    ]);
    assert_has_error(
        &errors,
        "FIELD_TYPE_MISMATCH",
        Some("e"),
        Some("Query.hello"),
    );
    assert_has_error(
        &errors,
        "INVALID_FIELD_SHARING",
        Some("a"),
        Some("Query.hello"),
    );
}

#[test]
fn error_display_is_one_line_per_error() {
    let errors = CompositionErrors(vec![
        CompositionError {
            subgraph: Some("products".into()),
            coordinate: Some("Product.price".into()),
            code: "FIELD_TYPE_MISMATCH",
            message: "types differ".into(),
        },
        CompositionError {
            subgraph: None,
            coordinate: None,
            code: "NO_SUBGRAPHS",
            message: "nothing to compose".into(),
        },
    ]);
    assert_eq!(
        errors.to_string(),
        "[products] Product.price: FIELD_TYPE_MISMATCH: types differ\nNO_SUBGRAPHS: nothing to compose"
    );
}
