//! Per-client BFF endpoints of the example config (`bffs/`): views, limits, persisted
//! operations (trusted documents, APQ, GET endpoints) and auth modes.

use e2e_tests::{Reply, TestEnv, send};
use serde_json::{Value, json};
use subgraph_mocks::Fault;

const PARTNER_KEY: &str = "demo-free-key";
const PARTNER_PRO_KEY: &str = "demo-pro-key";

async fn post(env: &TestEnv, path: &str, body: Value, api_key: Option<&str>) -> Reply {
    post_with(
        env,
        path,
        &body,
        api_key.map(|key| ("x-api-key", key.to_string())),
    )
    .await
}

/// A JSON POST with one extra header.
async fn post_with(
    env: &TestEnv,
    path: &str,
    body: &Value,
    header: Option<(&str, String)>,
) -> Reply {
    let mut request = env
        .client
        .post(format!("http://{}{path}", env.gateway.addr))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some((name, value)) = header {
        request = request.header(name, value);
    }
    send(request).await
}

async fn get(env: &TestEnv, path_and_query: &str, api_key: Option<&str>) -> Reply {
    let mut request = env
        .client
        .get(format!("http://{}{path_and_query}", env.gateway.addr));
    if let Some(key) = api_key {
        request = request.header("x-api-key", key);
    }
    send(request).await
}

fn code(reply: &Reply) -> String {
    reply.body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn upstream_requests(env: &TestEnv) -> u64 {
    subgraph_mocks::SUBGRAPHS
        .iter()
        .map(|s| env.mocks.stats(s).requests)
        .sum()
}

fn sha256(text: &str) -> String {
    gateway::common::digest::sha256_hex(text)
}

#[tokio::test]
async fn each_view_shows_and_validates_only_its_part_of_the_graph() {
    let env = TestEnv::start().await;
    let introspect = json!({"query": "{ __schema { queryType { fields { name } } } u: __type(name: \"User\") { fields { name } } }"});
    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|l| {
                l.iter()
                    .filter_map(|f| f["name"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };

    let partner = post(
        &env,
        "/bff/partner/graphql",
        introspect.clone(),
        Some(PARTNER_KEY),
    )
    .await;
    assert!(partner.body.get("errors").is_none(), "{:?}", partner.body);
    assert_eq!(
        names(&partner.body["data"]["__schema"]["queryType"]["fields"]),
        ["user", "topProducts"]
    );
    let user_fields = names(&partner.body["data"]["u"]["fields"]);
    assert!(
        !user_fields.contains(&"birthday".to_string()),
        "{user_fields:?}"
    );
    assert!(
        !user_fields.contains(&"username".to_string()),
        "{user_fields:?}"
    );

    let web = post(&env, "/bff/web/graphql", introspect, None).await;
    let user_fields = names(&web.body["data"]["u"]["fields"]);
    assert!(
        user_fields.contains(&"birthday".to_string()),
        "{user_fields:?}"
    );

    // A hidden field fails validation on the partner BFF, works on the unified endpoint.
    let hidden = json!({"query": "{ user(id: \"1\") { name birthday } }"});
    let r = post(
        &env,
        "/bff/partner/graphql",
        hidden.clone(),
        Some(PARTNER_KEY),
    )
    .await;
    assert_eq!(code(&r), "GRAPHQL_VALIDATION_FAILED", "{:?}", r.body);
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("birthday")
    );
    let r = post(&env, "/graphql", hidden, None).await;
    assert!(
        r.body["data"]["user"]["birthday"].is_number(),
        "{:?}",
        r.body
    );

    // Mobile has introspection off.
    let r = post(
        &env,
        "/bff/mobile/graphql",
        json!({"query": "{ __typename }"}),
        None,
    )
    .await;
    assert_eq!(code(&r), "PERSISTED_QUERY_REQUIRED");
    env.shutdown().await;
}

#[tokio::test]
async fn limits_reject_abusive_queries_before_any_fetch() {
    let env = TestEnv::start().await;
    env.mocks.reset_stats();
    let cases = [
        (
            "{ a: topProducts { upc } b: topProducts { upc } c: topProducts { upc } }",
            "MAX_ALIASES_EXCEEDED",
        ),
        (
            "{ topProducts { reviews { author { reviews { product { reviews { id } } } } } } }",
            "MAX_DEPTH_EXCEEDED",
        ),
        (
            "{ topProducts(first: 100) { reviews { product { name } author { name } } } }",
            "MAX_COST_EXCEEDED",
        ),
        (
            "{ p: topProducts { upc } topProducts { name } user(id: \"1\") { name } }",
            "MAX_ROOT_FIELDS_EXCEEDED",
        ),
    ];
    for (query, expected) in cases {
        let r = post(
            &env,
            "/bff/partner/graphql",
            json!({"query": query}),
            Some(PARTNER_PRO_KEY),
        )
        .await;
        assert_eq!(code(&r), expected, "{query}: {:?}", r.body);
        assert!(r.body.get("data").is_none());
    }
    // A list size given through a variable, or its default, is priced like a literal.
    let by_variable = "query($n: Int) { topProducts(first: $n) { reviews { author { name } } } }";
    let by_default =
        "query($n: Int = 100000) { topProducts(first: $n) { reviews { author { name } } } }";
    for body in [
        json!({"query": by_variable, "variables": {"n": 100000}}),
        json!({"query": by_default}),
    ] {
        let r = post(
            &env,
            "/bff/partner/graphql",
            body.clone(),
            Some(PARTNER_PRO_KEY),
        )
        .await;
        assert_eq!(code(&r), "MAX_COST_EXCEEDED", "{body}: {:?}", r.body);
    }
    assert_eq!(upstream_requests(&env), 0, "nothing reached a subgraph");
    let r = post(
        &env,
        "/bff/partner/graphql",
        json!({"query": by_variable, "variables": {"n": 2}}),
        Some(PARTNER_PRO_KEY),
    )
    .await;
    assert!(r.body.get("errors").is_none(), "{:?}", r.body);
    // A reasonable query passes.
    let r = post(
        &env,
        "/bff/partner/graphql",
        json!({"query": "{ topProducts { upc name } }"}),
        Some(PARTNER_PRO_KEY),
    )
    .await;
    assert!(r.body.get("errors").is_none(), "{:?}", r.body);
    env.shutdown().await;
}

#[tokio::test]
async fn mobile_serves_only_trusted_documents() {
    let env = TestEnv::start().await;
    let dashboard = std::fs::read_to_string(
        e2e_tests::workspace_root().join("bffs/mobile/operations/dashboard.graphql"),
    )
    .expect("fixture");

    // Ad-hoc: rejected, nothing fetched.
    env.mocks.reset_stats();
    let r = post(
        &env,
        "/bff/mobile/graphql",
        json!({"query": "{ me { id } }"}),
        None,
    )
    .await;
    assert_eq!(code(&r), "PERSISTED_QUERY_REQUIRED", "{:?}", r.body);
    assert_eq!(upstream_requests(&env), 0);

    // By hash, and as the exact trusted text.
    let by_hash = post(
        &env,
        "/bff/mobile/graphql",
        json!({"variables": {"userId": "2"}, "extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256(&dashboard)}}}),
        None,
    )
    .await;
    assert!(by_hash.body.get("errors").is_none(), "{:?}", by_hash.body);
    assert_eq!(by_hash.body["data"]["user"]["id"], "2");
    let by_text = post(
        &env,
        "/bff/mobile/graphql",
        json!({"query": dashboard, "variables": {"userId": "2"}}),
        None,
    )
    .await;
    assert_eq!(by_text.body, by_hash.body);

    // The same operation as a GET endpoint returns the same data.
    let rest = get(&env, "/bff/mobile/dashboard?userId=2", None).await;
    assert_eq!(rest.status, 200);
    assert_eq!(rest.body, by_hash.body);

    // An unknown hash.
    let r = post(
        &env,
        "/bff/mobile/graphql",
        json!({"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256("{ me { id } }")}}}),
        None,
    )
    .await;
    assert_eq!(code(&r), "PERSISTED_QUERY_NOT_FOUND");
    env.shutdown().await;
}

#[tokio::test]
async fn automatic_persisted_queries_register_then_hash() {
    let env = TestEnv::start().await;
    let query = "{ topProducts(first: 2) { upc name } }";
    let hash = sha256(query);
    let apq = json!({"persistedQuery": {"version": 1, "sha256Hash": hash}});

    let r = post(&env, "/bff/web/graphql", json!({"extensions": apq}), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(code(&r), "PERSISTED_QUERY_NOT_FOUND");
    let r = post(
        &env,
        "/bff/web/graphql",
        json!({"query": query, "extensions": apq}),
        None,
    )
    .await;
    assert!(r.body.get("errors").is_none(), "{:?}", r.body);
    let first = r.body.clone();
    let r = post(&env, "/bff/web/graphql", json!({"extensions": apq}), None).await;
    assert_eq!(r.body, first);

    // A hash that does not match the query is refused.
    let wrong = json!({"persistedQuery": {"version": 1, "sha256Hash": sha256("{ me { id } }")}});
    let r = post(
        &env,
        "/bff/web/graphql",
        json!({"query": query, "extensions": wrong}),
        None,
    )
    .await;
    assert_eq!(code(&r), "PERSISTED_QUERY_HASH_MISMATCH");
    // The unified endpoint does not take persisted queries.
    let r = post(&env, "/graphql", json!({"extensions": apq}), None).await;
    assert_eq!(code(&r), "PERSISTED_QUERY_NOT_SUPPORTED");
    env.shutdown().await;
}

#[tokio::test]
async fn persisted_get_endpoints_type_their_parameters() {
    let env = TestEnv::start().await;
    let r = get(&env, "/bff/partner/catalog?first=2", Some(PARTNER_KEY)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        r.body["data"]["topProducts"].as_array().map(Vec::len),
        Some(2)
    );
    let graphql = post(
        &env,
        "/bff/partner/graphql",
        json!({"query": std::fs::read_to_string(e2e_tests::workspace_root().join("bffs/partner/operations/catalog.graphql")).expect("op"), "variables": {"first": 2}}),
        Some(PARTNER_KEY),
    )
    .await;
    assert_eq!(r.body, graphql.body);

    for (query, expected) in [
        ("first=two", "parameter `first` must be an Int"),
        ("first=2&extra=1", "unknown parameter `extra`"),
    ] {
        let r = get(
            &env,
            &format!("/bff/partner/catalog?{query}"),
            Some(PARTNER_KEY),
        )
        .await;
        assert_eq!(r.status, 400, "{query}");
        let message = r.body["errors"][0]["message"].as_str().unwrap_or("");
        assert!(message.contains(expected), "{query}: {message}");
    }
    let r = get(&env, "/bff/mobile/dashboard", None).await;
    assert_eq!(r.status, 400);
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("missing required parameter `userId`")
    );
    let r = get(&env, "/bff/partner/nope", Some(PARTNER_KEY)).await;
    assert_eq!(r.status, 404);
    let r = get(&env, "/bff/nobody/graphql?query=%7B__typename%7D", None).await;
    assert_eq!(r.status, 404);
    env.shutdown().await;
}

#[tokio::test]
async fn partner_needs_an_api_key_and_tiers_get_their_limits() {
    let env = TestEnv::start().await;
    let query = json!({"query": "{ topProducts { upc } }"});
    let r = post(&env, "/bff/partner/graphql", query.clone(), None).await;
    assert_eq!(r.status, 401, "{:?}", r.body);
    assert_eq!(code(&r), "UNAUTHENTICATED");

    let free = post(
        &env,
        "/bff/partner/graphql",
        query.clone(),
        Some(PARTNER_KEY),
    )
    .await;
    let pro = post(&env, "/bff/partner/graphql", query, Some(PARTNER_PRO_KEY)).await;
    assert_eq!(free.status, 200);
    assert_eq!(pro.status, 200);
    assert_eq!(free.headers["ratelimit-limit"], "100");
    assert_eq!(pro.headers["ratelimit-limit"], "10000");
    env.shutdown().await;
}

#[tokio::test]
async fn cors_is_set_per_endpoint() {
    let env = TestEnv::start().await;
    let preflight = |path: &'static str| {
        env.client
            .request(
                reqwest::Method::OPTIONS,
                format!("http://{}{path}", env.gateway.addr),
            )
            .header("origin", "https://shop.example")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let web = preflight("/bff/web/graphql").await.expect("preflight");
    assert_eq!(
        web.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    assert_eq!(web.headers()["access-control-allow-credentials"], "true");
    for other in ["/graphql", "/bff/partner/graphql"] {
        let r = preflight(other).await.expect("preflight");
        assert!(
            r.headers().get("access-control-allow-origin").is_none(),
            "{other}"
        );
    }
    // An actual request from the web origin carries the grant too.
    let r = env
        .client
        .post(format!("http://{}/bff/web/graphql", env.gateway.addr))
        .header("origin", "https://shop.example")
        .header("content-type", "application/json")
        .body(json!({"query": "{ topProducts(first: 1) { upc } }"}).to_string())
        .send()
        .await
        .expect("post");
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    env.shutdown().await;
}

#[tokio::test]
async fn requests_the_edge_turns_away_are_counted_under_their_bff() {
    let env = TestEnv::start().await;
    let query = json!({"query": "{ topProducts { upc } }"});
    let reply = post(
        &env,
        "/bff/partner/graphql",
        query.clone(),
        Some("no-such-key"),
    )
    .await;
    assert_eq!(reply.status, 401, "{:?}", reply.body);
    let reply = post(&env, "/graphql", query.clone(), Some("no-such-key")).await;
    assert_eq!(reply.status, 401, "{:?}", reply.body);
    // A BFF name that does not exist never becomes a label.
    let reply = post(&env, "/bff/nobody/graphql", query, Some("no-such-key")).await;
    assert_eq!(reply.status, 401, "{:?}", reply.body);
    let metrics = e2e_tests::metrics_text(env.gateway.addr).await;
    let rejected = |client: &str| {
        metrics
            .lines()
            .find(|l| {
                l.starts_with("gateway_http_requests_total{")
                    && l.contains(&format!("client=\"{client}\""))
                    && l.contains("outcome=\"rejected\"")
            })
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
    };
    assert_eq!(rejected("partner"), Some(1.0), "{metrics}");
    assert_eq!(rejected("unified"), Some(2.0), "{metrics}");
    assert_eq!(rejected("nobody"), None, "{metrics}");
}

/// A token from the mocks' development issuer, fetched as a client would.
async fn dev_token(env: &TestEnv, query: &str) -> String {
    let reply = send(env.client.get(format!("{}?{query}", env.mocks.token_url()))).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["token_type"], "Bearer");
    reply.body["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

#[tokio::test]
async fn web_verifies_bearer_tokens_from_the_dev_issuer() {
    let env = TestEnv::start().await;
    let query = json!({"query": "{ topProducts(first: 1) { name } }"});
    let web = |authorization: Option<String>| {
        post_with(
            &env,
            "/bff/web/graphql",
            &query,
            authorization.map(|value| ("authorization", value)),
        )
    };

    // A verified token runs as its subject, in the tier its claim names.
    let token = dev_token(&env, "sub=alice&tier=pro").await;
    let ok = web(Some(format!("Bearer {token}"))).await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    assert_eq!(ok.body["data"]["topProducts"][0]["name"], "Table");
    assert_eq!(ok.headers["ratelimit-limit"], "10000", "the pro tier");
    let anonymous = web(None).await;
    assert_eq!(anonymous.status, 200);
    assert_eq!(anonymous.headers["ratelimit-limit"], "100000");

    // Garbage, a forged payload (another subject under alice's signature) and a scheme
    // that is not a bearer token are all refused, never run as anonymous.
    let (head, rest) = token.split_once('.').expect("a JWT");
    let signature = rest.rsplit_once('.').expect("a JWT").1;
    let forged_claims = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        json!({"iss": "gateway-dev-issuer", "sub": "mallory", "exp": 4_102_444_800u64}).to_string(),
    );
    let before = upstream_requests(&env);
    for (authorization, says) in [
        ("Bearer garbage".to_string(), "invalid_token"),
        (
            format!("Bearer {head}.{forged_claims}.{signature}"),
            "invalid_token",
        ),
        ("Basic YWxpY2U6cHc=".to_string(), "invalid_token"),
        ("Bearer ".to_string(), "invalid_token"),
    ] {
        let refused = web(Some(authorization.clone())).await;
        assert_eq!(refused.status, 401, "{authorization}: {:?}", refused.body);
        assert_eq!(code(&refused), "UNAUTHENTICATED");
        let challenge = refused.headers["www-authenticate"].to_str().unwrap_or("");
        assert!(challenge.contains(says), "{authorization}: {challenge}");
    }
    assert_eq!(
        upstream_requests(&env),
        before,
        "nothing reached a subgraph"
    );

    // The same over WebSocket, where credentials come in `connection_init`.
    let url = format!("http://{}/bff/web/graphql", env.gateway.addr);
    let mut ws = e2e_tests::ws::WsClient::connect(&url).await;
    ws.send(json!({"type": "connection_init", "payload": {"Authorization": "Basic YWxpY2U6cHc="}}))
        .await;
    match ws.recv().await {
        e2e_tests::ws::Received::Closed(4403, reason) => {
            assert!(reason.contains("bearer token"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    let mut ws =
        e2e_tests::ws::WsClient::init(&url, json!({"Authorization": format!("Bearer {token}")}))
            .await;
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.message().await, json!({"type": "pong"}));
    env.shutdown().await;
}

/// The persisted endpoints' OpenAPI 3.1 document: generated from the view, behind the
/// BFF's auth, valid for `openapi-spec-validator` (PyPI), and the endpoints' real answers
/// (success and bad parameters) validate against its response schemas.
#[tokio::test]
async fn persisted_endpoints_are_described_by_an_openapi_document() {
    let env = TestEnv::start().await;
    let anonymous = get(&env, "/bff/partner/openapi.json", None).await;
    assert_eq!(anonymous.status, 401, "{:?}", anonymous.body);
    let doc = get(&env, "/bff/partner/openapi.json", Some(PARTNER_KEY)).await;
    assert_eq!(doc.status, 200, "{:?}", doc.body);
    assert_eq!(doc.content_type, "application/json");
    let doc = doc.body;
    assert_eq!(doc["openapi"], "3.1.0");
    let catalog = &doc["paths"]["/bff/partner/catalog"]["get"];
    assert_eq!(
        catalog["parameters"],
        json!([{
            "name": "first", "in": "query", "required": false,
            "schema": {"type": ["integer", "null"], "format": "int32", "description": "Default: 5"}
        }])
    );
    let products = &catalog["responses"]["200"]["content"]["application/json"]["schema"]["properties"]
        ["data"]["properties"]["topProducts"];
    assert_eq!(products["type"], json!(["array", "null"]), "{products}");
    let product = &products["items"];
    assert_eq!(product["type"], json!(["object", "null"]), "{product}");
    // `upc: String!` is never null, `name: String` may be.
    assert_eq!(product["properties"]["upc"], json!({"type": "string"}));
    assert_eq!(
        product["properties"]["name"],
        json!({"type": ["string", "null"]})
    );
    assert_eq!(
        product["required"],
        json!(["upc", "name", "price", "available"])
    );
    assert_eq!(
        doc["components"]["securitySchemes"],
        json!({"ApiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}})
    );
    assert_eq!(doc["security"], json!([{"ApiKey": []}]));

    // The mobile BFF: bearer tokens, anonymous allowed; its subscription streams.
    let mobile = get(&env, "/bff/mobile/openapi.json", None).await.body;
    assert_eq!(mobile["security"], json!([{"Bearer": []}, {}]));
    let sse = &mobile["paths"]["/bff/mobile/reviewAdded"]["get"]["responses"]["200"]["content"];
    assert!(sse.get("text/event-stream").is_some(), "{sse}");

    // An independent validator, and real answers against the documented schemas.
    let dir = std::env::temp_dir().join(format!("openapi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let write = |name: &str, value: &Value| {
        let path = dir.join(name);
        std::fs::write(&path, value.to_string()).expect("write");
        path
    };
    let ok = get(&env, "/bff/partner/catalog?first=2", Some(PARTNER_KEY)).await;
    let bad = get(&env, "/bff/partner/catalog?first=two", Some(PARTNER_KEY)).await;
    assert_eq!((ok.status, bad.status), (200, 400));
    let mut args = vec![write("partner.json", &doc)];
    for (status, reply, name) in [("200", &ok, "ok.json"), ("400", &bad, "bad.json")] {
        args.push("/bff/partner/catalog".into());
        args.push(status.into());
        args.push(write(name, &reply.body));
    }
    let mobile_doc = write("mobile.json", &mobile);
    for (document, rest) in [(&args[0], &args[1..]), (&mobile_doc, &[][..])] {
        let Some(report) = python_openapi_check(document, rest) else {
            break;
        };
        assert_eq!(
            report["spec"],
            json!([]),
            "{}: {report}",
            document.display()
        );
        for response in report["responses"].as_array().into_iter().flatten() {
            assert_eq!(response["errors"], json!([]), "{report}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    env.shutdown().await;
}

/// `tests/python/check_openapi.py`'s report (`None` when it could not run outside CI).
fn python_openapi_check(document: &std::path::Path, rest: &[std::path::PathBuf]) -> Option<Value> {
    let mut args = vec![document.as_os_str()];
    args.extend(rest.iter().map(|a| a.as_os_str()));
    let stdout = e2e_tests::python_check("check_openapi.py", "openapi-spec-validator", &args)?;
    serde_json::from_slice(&stdout).ok()
}

/// `persisted.endpoints.<op>.body`: the endpoint answers with that part of `data`, as its
/// OpenAPI document says; a path the operation does not select stops the load.
#[tokio::test]
async fn a_persisted_endpoint_can_answer_with_part_of_the_data() {
    let env = TestEnv::start().await;
    let r = get(&env, "/bff/mobile/product?first=2", None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let products = r.body.as_array().expect("the product list itself");
    assert_eq!(products.len(), 2);
    assert!(products[0]["upc"].is_string(), "{:?}", r.body);
    let doc = get(&env, "/bff/mobile/openapi.json", None).await.body;
    let ok = &doc["paths"]["/bff/mobile/product"]["get"]["responses"]["200"]["content"]["application/json"]
        ["schema"]["anyOf"];
    assert_eq!(ok[0]["type"], json!(["array", "null"]), "{ok}");
    let dir = std::env::temp_dir().join(format!("openapi-body-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (doc_file, answer) = (dir.join("mobile.json"), dir.join("product.json"));
    std::fs::write(&doc_file, doc.to_string()).expect("write");
    std::fs::write(&answer, r.body.to_string()).expect("write");
    if let Some(report) = python_openapi_check(
        &doc_file,
        &["/bff/mobile/product".into(), "200".into(), answer],
    ) {
        assert_eq!(report["spec"], json!([]), "{report}");
        assert_eq!(report["responses"][0]["errors"], json!([]), "{report}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    env.shutdown().await;

    // A body path that is not in the operation.
    let root = e2e_tests::workspace_root();
    let bff = std::fs::read_to_string(root.join("bffs/mobile.yaml"))
        .expect("mobile.yaml")
        .replace("body: topProducts", "body: topProducts.name");
    let error = load_error("mobile", &bff).await;
    assert!(
        error.contains("persisted.endpoints.product.body: `topProducts.name`"),
        "{error}"
    );
}

/// The partner BFF's transforms (`bffs/partner.yaml`): `Product` is `CatalogItem`,
/// `inStock` is `available`, `User.orders` always filters on `DELIVERED` and lists two
/// unless asked, `label` and `grossPrice` are computed. Its schema shows its names; the
/// planner sends the shared graph's.
#[tokio::test]
async fn transforms_rename_types_and_fields_and_set_arguments() {
    let (env, services) = with_services().await;
    let partner = |query: &str| {
        post(
            &env,
            "/bff/partner/graphql",
            json!({ "query": query }),
            Some(PARTNER_PRO_KEY),
        )
    };
    let item = partner(r#"{ __type(name: "CatalogItem") { fields { name } } }"#).await;
    let product = partner(r#"{ __type(name: "Product") { name } }"#).await;
    let user =
        partner(r#"{ __type(name: "User") { fields { name args { name defaultValue } } } }"#).await;
    let fields: Vec<&str> = item.body["data"]["__type"]["fields"]
        .as_array()
        .map(|f| f.iter().filter_map(|f| f["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        fields.contains(&"available") && !fields.contains(&"inStock"),
        "{}",
        item.body
    );
    assert_eq!(
        product.body["data"]["__type"],
        Value::Null,
        "{}",
        product.body
    );
    let orders = user.body["data"]["__type"]["fields"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["name"] == "orders"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        orders["args"],
        json!([{"name": "first", "defaultValue": "2"}]),
        "{orders}"
    );

    // Same data as the unified endpoint asked in the shared graph's names.
    let ours = partner(
        r#"{ topProducts(first: 3) { __typename upc available ... on CatalogItem { name } }
             user(id: "1") { orders { id status } } }"#,
    )
    .await;
    let unified = env
        .query(
            r#"{ topProducts(first: 3) { upc inStock name }
                 user(id: "1") { orders(first: 2, status: DELIVERED) { id status } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(ours.status, 200, "{}", ours.body);
    let expected: Vec<Value> = unified["data"]["topProducts"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|p| {
                    json!({"__typename": "CatalogItem", "upc": p["upc"], "available": p["inStock"], "name": p["name"]})
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        ours.body["data"]["topProducts"],
        json!(expected),
        "{}",
        ours.body
    );
    assert_eq!(
        ours.body["data"]["user"], unified["data"]["user"],
        "{}",
        ours.body
    );
    let statuses = ours.body["data"]["user"]["orders"]
        .as_array()
        .map(|o| o.iter().all(|o| o["status"] == "DELIVERED"))
        .unwrap_or(false);
    assert!(statuses, "{}", ours.body);
    // Computed fields, beside a sibling they read and under an alias.
    let computed = partner("{ topProducts(first: 3) { name label gross: grossPrice } }").await;
    let unified = env
        .query("{ topProducts(first: 3) { name upc price } }", json!({}))
        .await;
    let expected: Vec<Value> = unified["data"]["topProducts"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|p| {
                    let label = format!(
                        "{} (#{})",
                        p["name"].as_str().unwrap_or("?"),
                        p["upc"].as_str().unwrap_or("?")
                    );
                    let gross = p["price"].as_i64().map(|price| price * 119 / 100);
                    json!({"name": p["name"], "label": label, "gross": gross})
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        computed.body,
        json!({"data": {"topProducts": expected}}),
        "{}",
        computed.body
    );
    // The partner's own default gives way to what the client asks.
    let more = partner(r#"{ user(id: "1") { orders(first: 5) { id } } }"#).await;
    let all = env
        .query(
            r#"{ user(id: "1") { orders(first: 5, status: DELIVERED) { id } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(more.body["data"], all["data"], "{}", more.body);

    // The shared graph's names and the fixed argument are not the partner's schema.
    for (query, message) in [
        ("{ topProducts { inStock } }", "inStock"),
        ("{ topProducts { ... on Product { upc } } }", "Product"),
        (
            r#"{ user(id: "1") { orders(status: PAID) { id } } }"#,
            "status",
        ),
    ] {
        let reply = partner(query).await;
        assert_eq!(
            code(&reply),
            "GRAPHQL_VALIDATION_FAILED",
            "{query}: {}",
            reply.body
        );
        assert!(
            reply.body.to_string().contains(message),
            "{query}: {}",
            reply.body
        );
    }
    env.shutdown().await;
    services.shutdown().await;
}

/// A BFF's response cache answers a covered query again without any upstream call,
/// keyed by its variables; a query it does not cover is fetched every time.
#[tokio::test]
async fn the_bff_response_cache_answers_covered_queries_without_upstream_calls() {
    let mocks = subgraph_mocks::MockSubgraphs::start("127.0.0.1:0")
        .await
        .expect("start mocks");
    let env = TestEnv::with_mocks(mocks, |spec| {
        let ttl = serde_json::from_value(json!("60s")).expect("duration");
        for bff in spec.bffs.iter_mut().filter(|b| b.name == "web") {
            bff.cache.ttl.insert("Query.topProducts".into(), ttl);
        }
    })
    .await;
    let web = |query: &str| post(&env, "/bff/web/graphql", json!({ "query": query }), None);
    let covered = "{ topProducts(first: 2) { upc name } }";
    let first = web(covered).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let fetched = upstream_requests(&env);
    assert!(fetched > 0);
    let again = web(covered).await;
    assert_eq!(again.body, first.body);
    assert_eq!(upstream_requests(&env), fetched, "answered from the cache");
    // Other variables (here an argument) are another entry.
    let three = web("{ topProducts(first: 3) { upc name } }").await;
    assert_eq!(
        three.body["data"]["topProducts"].as_array().map(Vec::len),
        Some(3)
    );
    assert!(upstream_requests(&env) > fetched);
    // `user` has no rule: never cached.
    let uncovered = r#"{ user(id: "1") { name } }"#;
    let before = upstream_requests(&env);
    web(uncovered).await;
    let once = upstream_requests(&env);
    web(uncovered).await;
    assert!(once > before && upstream_requests(&env) > once);
    env.shutdown().await;
}

/// The mobile BFF lifts `author.name` into `Review.authorName` and hides `author`: the
/// persisted `reviews` operation answers what the unified endpoint answers for
/// `author { name }`, in one fetch per subgraph as there, and with the accounts
/// subgraph down the names are null with an error while the reviews stay.
#[tokio::test]
async fn a_flattened_field_lifts_a_nested_field_into_its_parent() {
    let env = TestEnv::start().await;
    let unified = env
        .query(
            "{ topProducts(first: 3) { upc name reviews { id body author { name } } } }",
            json!({}),
        )
        .await;
    let expected: Vec<Value> = unified["data"]["topProducts"]
        .as_array()
        .map(|products| {
            products
                .iter()
                .map(|p| {
                    let reviews: Vec<Value> = p["reviews"]
                        .as_array()
                        .map(|r| {
                            r.iter()
                                .map(|r| json!({"id": r["id"], "body": r["body"], "authorName": r["author"]["name"]}))
                                .collect()
                        })
                        .unwrap_or_default();
                    json!({"upc": p["upc"], "name": p["name"], "reviews": reviews})
                })
                .collect()
        })
        .unwrap_or_default();
    let names = expected
        .iter()
        .flat_map(|p| p["reviews"].as_array().cloned().unwrap_or_default())
        .filter(|r| r["authorName"].is_string())
        .count();
    assert!(names > 0, "the example has reviews with authors: {unified}");
    env.mocks.reset_stats();
    let reply = get(&env, "/bff/mobile/reviews", None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({"data": {"topProducts": expected}}),
        "{}",
        reply.body
    );
    assert_eq!(
        env.mocks.stats("accounts").requests,
        1,
        "all authors in one entity fetch"
    );

    env.mocks.set_fault("accounts", Fault::down());
    let reply = get(&env, "/bff/mobile/reviews?first=1", None).await;
    env.mocks.set_fault("accounts", Fault::default());
    let reviews = &reply.body["data"]["topProducts"][0]["reviews"];
    let kept = reviews.as_array().is_some_and(|r| {
        !r.is_empty()
            && r.iter()
                .all(|r| r["id"].is_string() && r["authorName"].is_null())
    });
    assert!(kept, "{}", reply.body);
    let errors = reply.body["errors"].as_array().cloned().unwrap_or_default();
    // Each error at the client's path: no key of the flattened path inside it.
    let paths: Vec<&Value> = errors.iter().map(|e| &e["path"]).collect();
    let expected: Vec<Value> = (0..paths.len())
        .map(|i| json!(["topProducts", 0, "reviews", i, "authorName"]))
        .collect();
    assert!(
        !errors.is_empty()
            && errors
                .iter()
                .all(|e| e["extensions"]["service"] == "accounts"),
        "{}",
        reply.body
    );
    assert_eq!(paths, expected.iter().collect::<Vec<_>>(), "{}", reply.body);
    env.shutdown().await;
}

/// The partner BFF's own REST source (`bffs/partner/pricing.graphql`) extends the
/// shared `Product` for that BFF alone: one batch call per request, computed fields
/// over its values, a persisted GET endpoint using it, partial data with the source
/// named when it fails, and neither the unified endpoint nor another BFF sees it.
#[tokio::test]
async fn a_bff_source_extends_shared_entities_for_that_bff_alone() {
    let (env, services) = with_services().await;
    let query = "{ topProducts(first: 3) { upc price partnerPrice partnerDiscount savings } }";
    let partner = post(
        &env,
        "/bff/partner/graphql",
        json!({ "query": query }),
        Some(PARTNER_PRO_KEY),
    )
    .await;
    assert_eq!(partner.status, 200, "{}", partner.body);
    let unified = env
        .query("{ topProducts(first: 3) { upc price } }", json!({}))
        .await;
    let expected: Vec<Value> = unified["data"]["topProducts"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|p| {
                    let upc = p["upc"].as_str().unwrap_or("?");
                    let price = p["price"].as_i64().unwrap_or(0);
                    let discount = subgraph_mocks::pricing::discount_percent(upc);
                    let net = price * (100 - discount);
                    json!({"upc": upc, "price": price, "partnerPrice": net,
                           "partnerDiscount": discount, "savings": price * 100 - net})
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(expected.len(), 3, "{unified}");
    assert_eq!(
        partner.body,
        json!({"data": {"topProducts": expected}}),
        "{}",
        partner.body
    );
    assert_eq!(
        services.calls("partner-pricing"),
        [("GET /prices?upcs".to_string(), 1)].into_iter().collect(),
        "three products, one batch call"
    );
    // Its persisted operation as a GET endpoint.
    let prices = get(&env, "/bff/partner/prices?first=3", Some(PARTNER_PRO_KEY)).await;
    assert_eq!(prices.status, 200, "{}", prices.body);
    assert_eq!(
        prices.body["data"]["topProducts"][2]["savings"], expected[2]["savings"],
        "{}",
        prices.body
    );

    // Nobody else has the fields.
    for path in ["/graphql", "/bff/web/graphql"] {
        let reply = post(
            &env,
            path,
            json!({"query": "{ topProducts { partnerPrice } }"}),
            None,
        )
        .await;
        assert_eq!(code(&reply), "GRAPHQL_VALIDATION_FAILED", "{path}");
    }

    // The source fails: the rest of the answer stays, its fields' errors name it.
    services.set_fault(
        "partner-pricing",
        subgraph_mocks::Fault {
            http_500_rate: 1.0,
            ..Default::default()
        },
    );
    let failed = post(
        &env,
        "/bff/partner/graphql",
        json!({"query": "{ topProducts(first: 2) { upc partnerDiscount } user(id: \"1\") { id } }"}),
        Some(PARTNER_PRO_KEY),
    )
    .await;
    assert_eq!(
        failed.body["data"]["user"],
        json!({"id": "1"}),
        "{}",
        failed.body
    );
    let errors = failed.body["errors"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        !errors.is_empty()
            && errors
                .iter()
                .all(|e| e["extensions"]["service"] == "partner-pricing"),
        "{}",
        failed.body
    );
    env.shutdown().await;
    services.shutdown().await;
}

/// A BFF's sources must compose with the shared graph, have names of their own, and
/// need the shared graph's subgraphs to compose with.
#[tokio::test]
async fn bff_sources_that_do_not_compose_are_refused_at_load() {
    let root = e2e_tests::workspace_root();
    let original = std::fs::read_to_string(root.join("bffs/partner.yaml")).expect("partner.yaml");
    assert_eq!(
        load_error("partner", &original).await,
        "",
        "the example loads"
    );
    let dir = std::env::temp_dir().join(format!("bff-sources-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    // `price` is an Int in the shared graph.
    let clash = dir.join("clash.graphql");
    let sdl = std::fs::read_to_string(root.join("bffs/partner/pricing.graphql"))
        .expect("pricing.graphql")
        .replace("partnerDiscount: Int!", "price: String");
    std::fs::write(&clash, sdl).expect("write");
    let cases = [
        (
            "file: partner/pricing.graphql".to_string(),
            format!("file: {}", clash.display()),
            "its sources do not compose with the shared graph",
        ),
        (
            "name: partner-pricing".to_string(),
            "name: orders".to_string(),
            "the name `orders` is already used",
        ),
        (
            "file: partner/pricing.graphql".to_string(),
            format!("file: {}", dir.join("missing.graphql").display()),
            "missing.graphql",
        ),
    ];
    for (from, to, expected) in &cases {
        let error = load_error("partner", &original.replace(from, to)).await;
        assert!(error.contains(expected), "{to}: {error}");
    }
    let composition = load_error("partner", &original.replace(&cases[0].0, &cases[0].1)).await;
    assert!(composition.contains("Product.price"), "{composition}");
    let _ = std::fs::remove_dir_all(&dir);

    // A precomposed supergraph has no subgraph SDLs to compose with.
    let supergraph = gateway::server::compose_subgraphs(
        &gateway::config::Config::load(&root.join("schemas/gateway.yaml")).expect("config"),
    )
    .await
    .expect("composes");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let supergraph_file = dir.join("supergraph.graphql");
    std::fs::write(&supergraph_file, supergraph).expect("write");
    let config = gateway::config::Config::parse(
        &format!(
            "supergraph: {}\nbffs: [{}]\n",
            supergraph_file.display(),
            root.join("bffs/partner.yaml").display()
        ),
        |_| None,
    )
    .expect("config parses");
    let error = gateway::server::GatewaySpec::from_config(&config)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        error.contains("BFF `partner`: `sources` compose with the shared graph's subgraphs"),
        "{error}"
    );
}

/// A transform that names something the view lacks, or takes a name the shared graph
/// uses, stops the BFF from loading, saying which entry.
#[tokio::test]
async fn bad_transforms_are_refused_at_load() {
    let root = e2e_tests::workspace_root();
    let original = std::fs::read_to_string(root.join("bffs/partner.yaml")).expect("partner.yaml");
    let cases = [
        (
            "rename_types: { Product: CatalogItem }",
            "rename_types: { Product: User }",
            "transforms.rename_types.Product: `User` is already a type of the shared graph",
        ),
        (
            "rename_types: { Product: CatalogItem }",
            "rename_types: { Gadget: CatalogItem }",
            "transforms.rename_types.Gadget: no such type in this BFF's view",
        ),
        (
            "rename_fields: { Product.inStock: available }",
            "rename_fields: { Product.stock: available }",
            "transforms.rename_fields.Product.stock: no field `Product.stock` in this BFF's view",
        ),
        (
            "rename_fields: { Product.inStock: available }",
            "rename_fields: { Product.inStock: upc }",
            "`Product` already has a field `upc` in the shared graph",
        ),
        (
            "rename_fields: { Product.inStock: available }",
            "rename_fields: { User.birthday: born }",
            "no field `User.birthday` in this BFF's view",
        ),
        (
            "User.orders.status: { fixed: DELIVERED }",
            "User.orders.status: { fixed: LOST }",
            "transforms.arguments.User.orders.status: \"LOST\" is not a value of type OrderStatus",
        ),
        (
            "User.orders.first: { default: 2 }",
            "User.orders.first: { default: two }",
            "\"two\" is not a value of type Int",
        ),
        (
            "User.orders.first: { default: 2 }",
            "User.orders.limit: { default: 2 }",
            "`User.orders` has no argument `limit`",
        ),
        (
            "template: \"{name} (#{upc})\"",
            "template: \"{name} ({reviews})\"",
            "transforms.computed.Product.label: no sibling field `reviews` of a scalar type",
        ),
        (
            "expression: \"price * 119 / 100\"",
            "expression: \"name * 2\"",
            "transforms.computed.Product.grossPrice: `name` is String, not a number",
        ),
        (
            "Product.label: { type: String,",
            "Product.upc: { type: String,",
            "transforms.computed.Product.upc: `Product` already has a field `upc`",
        ),
        (
            "  computed:\n",
            "  flatten: { Review.authorName: author.nick }\n  computed:\n",
            "transforms.flatten.Review.authorName: no field `User.nick` in the shared graph",
        ),
        (
            "  computed:\n",
            "  flatten: { User.orderIds: orders.id }\n  computed:\n",
            "`User.orders` is [Order!]: only the last step may be other than one object",
        ),
        (
            "  computed:\n",
            "  flatten: { Review.who: author }\n  computed:\n",
            "`author` is one field",
        ),
        (
            "  computed:\n",
            "  flatten: { Review.body: author.name }\n  computed:\n",
            "transforms.flatten.Review.body: `Review` already has a field `body`",
        ),
        (
            "Product.grossPrice: { type: Int,",
            "Product.grossPrice: { type: String,",
            "a `String` has a `template`",
        ),
    ];
    for (from, to, expected) in cases {
        assert!(original.contains(from), "{from}");
        let error = load_error("partner", &original.replace(from, to)).await;
        assert!(
            error.starts_with("BFF `partner`: ") && error.contains(expected),
            "{to}: {error}"
        );
    }
}

/// The example gateway with the REST and gRPC mock services too (the orders service,
/// the partner's pricing service).
async fn with_services() -> (TestEnv, subgraph_mocks::MockServices) {
    let mocks = subgraph_mocks::MockSubgraphs::start("127.0.0.1:0")
        .await
        .expect("start mocks");
    let services = subgraph_mocks::MockServices::start("127.0.0.1")
        .await
        .expect("start services");
    let env = TestEnv::with_mocks(mocks, |spec| {
        for name in subgraph_mocks::SERVICES {
            spec.urls.insert(name.into(), services.url(name));
        }
    })
    .await;
    (env, services)
}

/// Why the example gateway does not load with `bff` (the text of a file of `bffs/`
/// named `name`, written elsewhere) as its only BFF; empty when it loads.
async fn load_error(name: &str, bff: &str) -> String {
    let root = e2e_tests::workspace_root();
    let dir = std::env::temp_dir().join(format!(
        "bff-{name}-{}-{}",
        std::process::id(),
        e2e_tests::free_port()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    // Files the BFF names stay where they are.
    let bffs = root.join("bffs");
    let bff = bff
        .replace(
            &format!("dir: {name}/"),
            &format!("dir: {}/{name}/", bffs.display()),
        )
        .replace(
            &format!("file: {name}/"),
            &format!("file: {}/{name}/", bffs.display()),
        );
    let file = dir.join(format!("{name}.yaml"));
    std::fs::write(&file, bff).expect("write");
    let mut config =
        gateway::config::Config::load(&root.join("schemas/gateway.yaml")).expect("config");
    config.bffs = vec![file];
    let loaded = match gateway::server::GatewaySpec::from_config(&config).await {
        Ok(spec) => spec.engine().map(|_| ()),
        Err(e) => Err(e),
    };
    let _ = std::fs::remove_dir_all(&dir);
    loaded.err().map(|e| e.to_string()).unwrap_or_default()
}
