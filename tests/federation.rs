//! End to end over real sockets: the four benchmark subgraphs, the gateway composed from
//! `schemas/gateway.yaml`, and the benchmark query.

use e2e_tests::{TestEnv, benchmark_query, error_messages};
use serde_json::{Value, json};
use subgraph_mocks::{Fault, reference};

#[tokio::test]
async fn benchmark_query_returns_the_complete_data_with_batched_entity_fetches() {
    let env = TestEnv::start().await;
    env.mocks.reset_stats();
    let body = env.query(&benchmark_query(), json!({})).await;
    assert!(body.get("errors").is_none(), "unexpected errors: {body}");
    assert_eq!(body, reference::benchmark_response());

    // One request per subgraph per plan step; every entity step is one `_entities` call.
    let stats = |name| env.mocks.stats(name);
    assert_eq!(
        (
            stats("accounts").root_requests,
            stats("accounts").entity_requests
        ),
        (1, 1)
    );
    assert_eq!(
        (
            stats("products").root_requests,
            stats("products").entity_requests
        ),
        (1, 1)
    );
    assert_eq!(
        (
            stats("inventory").root_requests,
            stats("inventory").entity_requests
        ),
        (0, 2)
    );
    assert_eq!(
        (
            stats("reviews").root_requests,
            stats("reviews").entity_requests
        ),
        (0, 1)
    );
    // Users and top products go to `reviews` in one request, each entity once.
    let users = body["data"]["users"].as_array().map_or(0, Vec::len) as u64;
    let top = body["data"]["topProducts"].as_array().map_or(0, Vec::len) as u64;
    assert_eq!(stats("reviews").representations, users + top);
    env.shutdown().await;
}

#[tokio::test]
async fn the_plan_cache_serves_repeated_queries_with_the_same_result() {
    let env = TestEnv::start().await;
    let first = env.query(&benchmark_query(), json!({})).await;
    let second = env.query(&benchmark_query(), json!({})).await;
    assert_eq!(first, second);
    env.shutdown().await;
}

#[tokio::test]
async fn requires_and_provides() {
    let env = TestEnv::start().await;
    let reference = reference::benchmark_response()["data"].clone();

    // `shippingEstimate` requires `price weight` from `products`.
    env.mocks.reset_stats();
    let body = env
        .query("{ topProducts { upc shippingEstimate } }", json!({}))
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let expected: Vec<Value> = reference["topProducts"]
        .as_array()
        .expect("list")
        .iter()
        .map(|p| json!({"upc": p["upc"], "shippingEstimate": p["shippingEstimate"]}))
        .collect();
    assert_eq!(body["data"]["topProducts"], Value::Array(expected));
    let inventory = env.mocks.stats("inventory");
    assert_eq!(inventory.entity_requests, 1);

    // `Review.author` provides `username`: no trip to `accounts` for it.
    env.mocks.reset_stats();
    let body = env
        .query(
            "{ topProducts { reviews { author { username } } } }",
            json!({}),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(env.mocks.stats("accounts").requests, 0);
    let first_author = &body["data"]["topProducts"][0]["reviews"][0]["author"];
    assert_eq!(
        first_author["username"],
        reference["topProducts"][0]["reviews"][0]["author"]["username"]
    );

    // ... but `name` is not provided, so it comes from `accounts` in one batch.
    env.mocks.reset_stats();
    let body = env
        .query(
            "{ topProducts { reviews { author { username name } } } }",
            json!({}),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(env.mocks.stats("accounts").entity_requests, 1);
    assert_eq!(
        body["data"]["topProducts"][0]["reviews"][0]["author"]["name"],
        reference["topProducts"][0]["reviews"][0]["author"]["name"]
    );
    env.shutdown().await;
}

#[tokio::test]
async fn aliases_fragments_variables_skip_include_and_typename() {
    let env = TestEnv::start().await;
    let reference = reference::benchmark_response()["data"].clone();
    let query = r#"
        query Q($first: Int, $withReviews: Boolean!, $skipPrice: Boolean!) {
          kind: __typename
          top: topProducts(first: $first) {
            ...P
            cost: price @skip(if: $skipPrice)
            ... on Product @include(if: $withReviews) {
              reviews { by: author { login: username } }
            }
            t: __typename
          }
        }
        fragment P on Product { upc name }
    "#;
    let body = env
        .query(
            query,
            json!({"first": 2, "withReviews": true, "skipPrice": false}),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["data"]["kind"], "Query");
    let top = body["data"]["top"].as_array().expect("list");
    assert_eq!(top.len(), 2);
    let keys: Vec<&str> = top[0]
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["upc", "name", "cost", "reviews", "t"]);
    assert_eq!(top[0]["upc"], reference["topProducts"][0]["upc"]);
    assert_eq!(top[0]["cost"], reference["topProducts"][0]["price"]);
    assert_eq!(top[0]["t"], "Product");
    assert_eq!(
        top[0]["reviews"][0]["by"]["login"],
        reference["topProducts"][0]["reviews"][0]["author"]["username"]
    );

    // The same (cached) operation with the conditions flipped.
    let body = env
        .query(
            query,
            json!({"first": 1, "withReviews": false, "skipPrice": true}),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let first = body["data"]["top"][0].as_object().expect("object");
    let keys: Vec<&str> = first.keys().map(String::as_str).collect();
    assert_eq!(keys, ["upc", "name", "t"]);
    env.shutdown().await;
}

#[tokio::test]
async fn one_subgraph_refusing_connections_nulls_only_its_fields() {
    let env = TestEnv::start_separate().await;
    env.mocks.set_fault("inventory", Fault::down());
    let body = env
        .query("{ topProducts { name inStock } users { name } }", json!({}))
        .await;
    let products = body["data"]["topProducts"]
        .as_array()
        .expect("products still returned");
    assert!(!products.is_empty());
    for p in products {
        assert!(p["name"].is_string(), "{p}");
        assert!(p["inStock"].is_null(), "{p}");
    }
    assert!(body["data"]["users"][0]["name"].is_string());
    // One error per field the failed fetch was to fill, at that field's path.
    let errors = body["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), products.len(), "{body}");
    for (i, error) in errors.iter().enumerate() {
        assert_eq!(error["extensions"]["service"], "inventory");
        assert_eq!(error["extensions"]["code"], "UPSTREAM_UNAVAILABLE");
        assert_eq!(error["path"], json!(["topProducts", i, "inStock"]));
    }

    // It comes back.
    env.mocks.set_fault("inventory", Fault::default());
    let body = env.query("{ topProducts { inStock } }", json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
    env.shutdown().await;
}

#[tokio::test]
async fn root_subgraph_failures_keep_sibling_root_fields() {
    let env = TestEnv::start().await;
    env.mocks.set_fault(
        "accounts",
        Fault {
            http_500_rate: 1.0,
            ..Fault::default()
        },
    );
    let body = env
        .query("{ users { name } topProducts { upc } }", json!({}))
        .await;
    assert!(body["data"]["users"].is_null(), "{body}");
    assert_eq!(body["errors"].as_array().map(Vec::len), Some(1), "{body}");
    assert!(
        body["data"]["topProducts"]
            .as_array()
            .is_some_and(|l| !l.is_empty())
    );
    let errors = body["errors"].as_array().expect("errors");
    assert_eq!(errors[0]["path"], json!(["users"]));
    assert_eq!(errors[0]["extensions"]["code"], "UPSTREAM_HTTP_500");
    assert_eq!(errors[0]["extensions"]["service"], "accounts");
    env.shutdown().await;
}

#[tokio::test]
async fn graphql_errors_from_a_subgraph_are_forwarded_with_the_service() {
    let env = TestEnv::start().await;
    env.mocks.set_fault(
        "reviews",
        Fault {
            graphql_error_rate: 1.0,
            ..Fault::default()
        },
    );
    let body = env
        .query("{ users { name reviews { id } } }", json!({}))
        .await;
    let users = body["data"]["users"]
        .as_array()
        .expect("users still returned");
    assert!(
        users
            .iter()
            .all(|u| u["name"].is_string() && u["reviews"].is_null())
    );
    let errors = body["errors"].as_array().expect("errors");
    assert!(
        errors
            .iter()
            .all(|e| e["extensions"]["service"] == "reviews"),
        "{body}"
    );
    env.shutdown().await;
}

#[tokio::test]
async fn a_slow_subgraph_times_out_without_holding_the_rest() {
    let mocks = subgraph_mocks::MockSubgraphs::start("127.0.0.1:0")
        .await
        .expect("mocks");
    mocks.set_fault("products", Fault::latency(3_000));
    let env = TestEnv::with_mocks(mocks, |spec| {
        spec.upstream
            .sources
            .entry("products".into())
            .or_default()
            .timeout = Some(std::time::Duration::from_millis(200));
    })
    .await;
    let body = env
        .query("{ users { id } topProducts { upc } }", json!({}))
        .await;
    assert!(
        body["data"]["users"]
            .as_array()
            .is_some_and(|l| !l.is_empty())
    );
    assert!(body["data"]["topProducts"].is_null());
    let errors = body["errors"].as_array().expect("errors");
    assert_eq!(
        errors[0]["extensions"]["code"], "UPSTREAM_TIMEOUT",
        "{body}"
    );
    assert_eq!(errors[0]["extensions"]["service"], "products");
    env.shutdown().await;
}

#[tokio::test]
async fn introspection_shows_the_api_schema_only() {
    let env = TestEnv::start().await;
    let body = env
        .query(
            "{ __schema { queryType { name } mutationType { name } types { name } directives { name } } \
               q: __type(name: \"Query\") { fields { name } } }",
            json!({}),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let types: Vec<&str> = body["data"]["__schema"]["types"]
        .as_array()
        .expect("types")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    for expected in ["Query", "User", "Product", "Review", "__Schema"] {
        assert!(
            types.contains(&expected),
            "{expected} missing from {types:?}"
        );
    }
    for hidden in [
        "join__Graph",
        "join__FieldSet",
        "link__Purpose",
        "_Any",
        "_Entity",
        "_Service",
    ] {
        assert!(!types.contains(&hidden), "{hidden} leaked: {types:?}");
    }
    let directives = body["data"]["__schema"]["directives"].to_string();
    assert!(
        !directives.contains("join__") && !directives.contains("\"link\""),
        "{directives}"
    );
    let fields: Vec<&str> = body["data"]["q"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(fields, ["me", "user", "users", "topProducts"]);
    assert!(body["data"]["__schema"]["mutationType"].is_null());

    // Federation internals cannot be queried either.
    let body = env.query("{ _service { sdl } }", json!({})).await;
    assert!(error_messages(&body)[0].contains("_service"), "{body}");
    env.shutdown().await;
}

#[tokio::test]
async fn mixed_introspection_and_data() {
    let env = TestEnv::start().await;
    let body = env
        .query(
            "{ __type(name: \"User\") { name kind } me { id } }",
            json!({}),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(
        body["data"]["__type"],
        json!({"name": "User", "kind": "OBJECT"})
    );
    assert_eq!(body["data"]["me"]["id"], "1");
    env.shutdown().await;
}
