//! Start-up failures are reported clearly and stop the gateway: composition errors name
//! the subgraph and the coordinate, bad config files say what to fix.

use std::path::PathBuf;

use gateway::config::Config;
use gateway::server::GatewaySpec;

/// A fresh folder under the system temp dir for this test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gateway-startup-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

async fn compose_error(files: &[(&str, &str)]) -> String {
    let dir = scratch(files[0].0);
    let mut config = String::from("subgraphs:\n");
    for (name, sdl) in files {
        std::fs::write(dir.join(format!("{name}.graphql")), sdl).expect("write sdl");
        config.push_str(&format!(
            "  - name: {name}\n    url: http://127.0.0.1:9/{name}\n    schema: {{ file: {name}.graphql }}\n"
        ));
    }
    std::fs::write(dir.join("gateway.yaml"), config).expect("write config");
    let config = Config::load(&dir.join("gateway.yaml")).expect("config is valid");
    match GatewaySpec::from_config(&config).await {
        Ok(_) => panic!("composition should fail"),
        Err(e) => e.to_string(),
    }
}

const FED2: &str = "extend schema @link(url: \"https://specs.apollo.dev/federation/v2.3\", import: [\"@key\", \"@shareable\", \"@requires\", \"@external\"])\n";

#[tokio::test]
async fn conflicting_field_types_name_both_subgraphs() {
    let a = format!(
        "{FED2}type Query {{ a: Int }} type T @key(fields: \"id\") {{ id: ID! size: Int @shareable }}"
    );
    let b = format!(
        "{FED2}type Query {{ b: Int }} type T @key(fields: \"id\") {{ id: ID! size: String @shareable }}"
    );
    let message = compose_error(&[("alpha", &a), ("beta", &b)]).await;
    assert!(message.contains("composition failed"), "{message}");
    assert!(message.contains("T.size"), "{message}");
    assert!(
        message.contains("alpha") && message.contains("beta"),
        "{message}"
    );
}

#[tokio::test]
async fn non_shareable_field_in_two_subgraphs() {
    let a = format!(
        "{FED2}type Query {{ a: Int }} type T @key(fields: \"id\") {{ id: ID! name: String }}"
    );
    let b = format!(
        "{FED2}type Query {{ b: Int }} type T @key(fields: \"id\") {{ id: ID! name: String }}"
    );
    let message = compose_error(&[("one", &a), ("two", &b)]).await;
    assert!(message.contains("INVALID_FIELD_SHARING"), "{message}");
    assert!(message.contains("T.name"), "{message}");
}

#[tokio::test]
async fn requires_and_key_on_missing_fields() {
    let a =
        format!("{FED2}type Query {{ a: T }} type T @key(fields: \"id\") {{ id: ID! price: Int }}");
    let b = format!(
        "{FED2}type T @key(fields: \"id\") {{ id: ID! price: Int @external tax: Int @requires(fields: \"cost\") }}"
    );
    let message = compose_error(&[("shop", &a), ("tax", &b)]).await;
    assert!(message.contains("REQUIRES_INVALID_FIELDS"), "{message}");
    assert!(
        message.contains("[tax]") && message.contains("T.tax"),
        "{message}"
    );

    let c = format!("{FED2}type Query {{ c: U }} type U @key(fields: \"uuid\") {{ id: ID! }}");
    let message = compose_error(&[("keys", &c)]).await;
    assert!(
        message.contains("KEY_INVALID_FIELDS") && message.contains("[keys]"),
        "{message}"
    );
}

#[tokio::test]
async fn syntax_errors_point_at_the_line() {
    let message = compose_error(&[("broken", "type Query { a: Int ")]).await;
    assert!(message.contains("[broken]"), "{message}");
    assert!(message.contains("line 1"), "{message}");
}

#[tokio::test]
async fn a_missing_schema_file_is_named() {
    let dir = scratch("missing");
    std::fs::write(
        dir.join("gateway.yaml"),
        "subgraphs:\n  - name: a\n    url: http://127.0.0.1:9/a\n    schema: { file: nope.graphql }\n",
    )
    .expect("write");
    let config = Config::load(&dir.join("gateway.yaml")).expect("valid config");
    let message = match GatewaySpec::from_config(&config).await {
        Ok(_) => panic!("should fail"),
        Err(e) => e.to_string(),
    };
    assert!(message.contains("nope.graphql"), "{message}");
}

#[tokio::test]
async fn a_precomposed_supergraph_is_accepted_and_a_subgraph_sdl_is_not() {
    let root = e2e_tests::workspace_root();
    let spec = GatewaySpec::from_supergraph_file(
        &root.join("gateway/tests/fixtures/benchmark-supergraph.graphql"),
    )
    .expect("reads");
    assert!(spec.engine().is_ok());
    let spec = GatewaySpec::from_supergraph_file(&root.join("schemas/subgraphs/products.graphql"))
        .expect("reads");
    let message = spec
        .engine()
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(message.contains("not a supergraph"), "{message}");
}

#[tokio::test]
async fn subgraph_schemas_can_be_fetched_from_running_subgraphs() {
    let mocks = subgraph_mocks::MockSubgraphs::start("127.0.0.1:0")
        .await
        .expect("mocks");
    let mut text = String::from("subgraphs:\n");
    for name in subgraph_mocks::SUBGRAPHS {
        text.push_str(&format!(
            "  - name: {name}\n    url: {}\n    schema: {{ introspect: true }}\n",
            mocks.url(name)
        ));
    }
    let config = Config::parse(&text, |_| None).expect("valid config");
    let mut spec = GatewaySpec::from_config(&config)
        .await
        .expect("composes from _service { sdl }");
    spec.listen = "127.0.0.1:0".into();
    let gateway = gateway::server::start(&spec).await.expect("starts");
    let body = e2e_tests::post_json(
        &e2e_tests::client(),
        &gateway.url(),
        &serde_json::json!({"query": "{ topProducts(first: 1) { name shippingEstimate reviews { author { name } } } }"}),
    )
    .await
    .body;
    assert!(body.get("errors").is_none(), "{body}");
    assert!(
        body["data"]["topProducts"][0]["reviews"][0]["author"]["name"].is_string(),
        "{body}"
    );
    gateway.shutdown().await;

    // A subgraph that is not there is named in the error.
    let config = Config::parse(
        "subgraphs:\n  - name: ghost\n    url: http://127.0.0.1:9/graphql\n    schema: { introspect: true }\n",
        |_| None,
    )
    .expect("valid config");
    let message = GatewaySpec::from_config(&config)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        message.contains("ghost") && message.contains("http://127.0.0.1:9/graphql"),
        "{message}"
    );
    mocks.shutdown().await;
}

/// A config of the benchmark supergraph with one BFF file.
async fn bff_error(bff_yaml: &str, operations: &[(&str, &str)]) -> String {
    let dir = scratch(&format!("bff-{}", bff_yaml.len()));
    let supergraph =
        e2e_tests::workspace_root().join("gateway/tests/fixtures/benchmark-supergraph.graphql");
    std::fs::create_dir_all(dir.join("ops")).expect("ops dir");
    for (name, text) in operations {
        std::fs::write(dir.join("ops").join(format!("{name}.graphql")), text).expect("op");
    }
    std::fs::write(dir.join("b.yaml"), bff_yaml).expect("bff");
    std::fs::write(
        dir.join("gateway.yaml"),
        format!("supergraph: {}\nbffs: [b.yaml]\n", supergraph.display()),
    )
    .expect("config");
    let config = Config::load(&dir.join("gateway.yaml")).expect("valid config");
    let result = match GatewaySpec::from_config(&config).await {
        Ok(spec) => spec.engine().map(|_| ()).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    result
        .err()
        .unwrap_or_else(|| panic!("{bff_yaml} should be rejected"))
}

#[tokio::test]
async fn bff_config_errors_stop_start_up_clearly() {
    let message = bff_error("name: b\nview: { hide: [Shop] }\n", &[]).await;
    assert!(
        message.contains("BFF `b`") && message.contains("unknown type `Shop`"),
        "{message}"
    );
    let message = bff_error("name: b\nview: { root_fields: [Query.nope] }\n", &[]).await;
    assert!(
        message.contains("unknown root field `Query.nope`"),
        "{message}"
    );
    let message = bff_error(
        "name: b\nview: { hide: [User.birthday] }\npersisted: { dir: ops }\n",
        &[("bday", "query bday { me { birthday } }")],
    )
    .await;
    assert!(
        message.contains("persisted operation `bday`") && message.contains("birthday"),
        "{message}"
    );
    let message = bff_error("name: b c\n", &[]).await;
    assert!(message.contains("URL-safe"), "{message}");
    // An auth mode the gateway has no verifier for would ignore every credential.
    let message = bff_error("name: b\nauth: { mode: jwt }\n", &[]).await;
    assert!(
        message.contains("BFF `b`")
            && message.contains("`auth.mode: jwt`")
            && message.contains("neither `jwt` nor `introspection`"),
        "{message}"
    );
    let message = bff_error("name: b\nauth: { mode: api_key }\n", &[]).await;
    assert!(message.contains("no `api_keys`"), "{message}");
}
