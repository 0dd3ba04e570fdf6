//! GraphQL-over-HTTP at the edge: methods, media types, status codes, bad input; and the
//! GraphiQL page in a real browser (Chromium driven by `puppeteer-core`) with every
//! other host blocked.

use e2e_tests::{Reply, TestEnv, error_messages, post_json, send};
use serde_json::json;

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

async fn post_raw(
    env: &TestEnv,
    content_type: &str,
    accept: &str,
    body: impl Into<reqwest::Body>,
) -> Reply {
    send(
        env.client
            .post(env.gateway.url())
            .header("content-type", content_type)
            .header("accept", accept)
            .body(body),
    )
    .await
}

#[tokio::test]
async fn bad_requests_get_clear_errors_and_the_right_status() {
    let env = TestEnv::start().await;
    env.mocks.reset_stats();

    // Not JSON.
    let r = post_raw(&env, "application/json", GRAPHQL_RESPONSE, "{\"query\": ").await;
    assert_eq!(r.status, 400);
    assert!(
        error_messages(&r.body)[0].contains("not valid JSON"),
        "{r:?}"
    );

    // JSON, but no query / wrong types.
    for (body, expected) in [
        (json!({"variables": {}}), "no `query`"),
        (json!({"query": 42}), "`query` must be a string"),
        (
            json!({"query": "{ me { id } }", "variables": [1]}),
            "`variables` must be a JSON object",
        ),
        (
            json!({"query": "{ me { id } }", "operationName": 3}),
            "`operationName` must be a string",
        ),
        (json!([1, 2]), "JSON object"),
        (
            json!({"query": "{ me { id } }", "extensions": "x"}),
            "`extensions` must be a JSON object",
        ),
    ] {
        let r = post_raw(&env, "application/json", GRAPHQL_RESPONSE, body.to_string()).await;
        assert_eq!(r.status, 400, "{body}: {r:?}");
        assert!(
            error_messages(&r.body)[0].contains(expected),
            "{body}: {r:?}"
        );
    }

    // Syntax error: 400 with a location, under the new media type.
    let r = post_raw(
        &env,
        "application/json",
        GRAPHQL_RESPONSE,
        json!({"query": "{ me { id }"}).to_string(),
    )
    .await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.content_type.starts_with(GRAPHQL_RESPONSE));
    assert!(r.body.get("data").is_none());
    assert_eq!(
        r.body["errors"][0]["extensions"]["code"],
        "GRAPHQL_PARSE_FAILED"
    );
    assert!(
        r.body["errors"][0]["locations"][0]["line"].is_number(),
        "{r:?}"
    );

    // Unknown field: a validation error naming the field.
    let r = post_raw(
        &env,
        "application/json",
        GRAPHQL_RESPONSE,
        json!({"query": "{ me { id secret } }"}).to_string(),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body["errors"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
    assert!(error_messages(&r.body)[0].contains("secret"), "{r:?}");

    // ... which legacy `application/json` clients get with status 200.
    let r = post_raw(
        &env,
        "application/json",
        "application/json",
        json!({"query": "{ me { id secret } }"}).to_string(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.content_type.starts_with("application/json"));
    assert!(r.body.get("data").is_none());

    // Wrong variable type.
    let body = json!({"query": "query($id: ID!) { user(id: $id) { name } }", "variables": {"id": {"x": 1}}});
    let r = post_raw(&env, "application/json", GRAPHQL_RESPONSE, body.to_string()).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    // Missing required variable.
    let body = json!({"query": "query($id: ID!) { user(id: $id) { name } }"});
    let r = post_raw(&env, "application/json", GRAPHQL_RESPONSE, body.to_string()).await;
    assert_eq!(r.status, 400, "{r:?}");

    // Unknown operation name, and several operations without a name.
    let doc = "query A { me { id } } query B { users { id } }";
    let r = post_raw(
        &env,
        "application/json",
        GRAPHQL_RESPONSE,
        json!({"query": doc, "operationName": "C"}).to_string(),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body["errors"][0]["extensions"]["code"],
        "GRAPHQL_UNKNOWN_OPERATION_NAME"
    );
    let r = post_raw(
        &env,
        "application/json",
        GRAPHQL_RESPONSE,
        json!({"query": doc}).to_string(),
    )
    .await;
    assert_eq!(r.status, 400);
    let r = post_raw(
        &env,
        "application/json",
        GRAPHQL_RESPONSE,
        json!({"query": doc, "operationName": "B"}).to_string(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.body["data"]["users"].is_array());

    // Wrong content type, unacceptable Accept.
    let r = post_raw(&env, "text/plain", GRAPHQL_RESPONSE, "{ me { id } }").await;
    assert_eq!(r.status, 415);
    let r = post_raw(
        &env,
        "application/json",
        "text/csv",
        json!({"query": "{ me { id } }"}).to_string(),
    )
    .await;
    assert_eq!(r.status, 406);

    // A body over the limit (2 MiB in schemas/gateway.yaml) is refused whole.
    let huge = format!(
        "{{\"query\": \"{{ me {{ id }} }}\", \"pad\": \"{}\"}}",
        "x".repeat(3 * 1024 * 1024)
    );
    let r = post_raw(&env, "application/json", GRAPHQL_RESPONSE, huge).await;
    assert_eq!(r.status, 413);

    // A deeply nested document is refused by the parser's limits, not a stack overflow.
    let deep = format!("{}{}", "{ me ".repeat(5_000), "}".repeat(5_000));
    let r = post_raw(
        &env,
        "application/json",
        GRAPHQL_RESPONSE,
        json!({"query": deep}).to_string(),
    )
    .await;
    assert_eq!(r.status, 400);

    // None of that reached a subgraph (except the valid `B` operation).
    let upstream: u64 = subgraph_mocks::SUBGRAPHS
        .iter()
        .map(|s| env.mocks.stats(s).requests)
        .sum();
    assert_eq!(upstream, 1);
    env.shutdown().await;
}

#[tokio::test]
async fn get_requests_and_graphiql() {
    let env = TestEnv::start().await;
    let url = env.gateway.url();
    let r = send(env.client.get(&url).query(&[
        ("query", "query($id: ID!) { user(id: $id) { id name } }"),
        ("variables", "{\"id\":\"2\"}"),
    ]))
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["data"]["user"]["id"], "2");

    let r = send(env.client.get(&url).query(&[("variables", "{nope")])).await;
    assert_eq!(r.status, 400);
    let r = send(env.client.get(&url).header("accept", GRAPHQL_RESPONSE)).await;
    assert_eq!(r.status, 400, "{r:?}");

    // A browser gets GraphiQL.
    let html = env
        .client
        .get(&url)
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .expect("graphiql");
    assert_eq!(html.status(), 200);
    assert!(html.text().await.expect("body").contains("graphiql"));

    let health = send(
        env.client
            .get(format!("http://{}/health", env.gateway.addr)),
    )
    .await;
    assert_eq!(health.status, 200);
    env.shutdown().await;
}

#[tokio::test]
async fn responses_use_the_negotiated_media_type() {
    let env = TestEnv::start().await;
    let body = json!({"query": "{ me { id } }"});
    let r = post_json(&env.client, &env.gateway.url(), &body).await;
    assert!(r.content_type.starts_with("application/json"), "{r:?}");
    let r = post_raw(
        &env,
        "application/json; charset=utf-8",
        "application/graphql-response+json, application/json;q=0.9",
        body.to_string(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.content_type.starts_with(GRAPHQL_RESPONSE), "{r:?}");
    assert_eq!(r.body, json!({"data": {"me": {"id": "1"}}}));
    env.shutdown().await;
}

#[tokio::test]
async fn cors_and_compression() {
    let mocks = subgraph_mocks::MockSubgraphs::start("127.0.0.1:0")
        .await
        .expect("mocks");
    let env = TestEnv::with_mocks(mocks, |spec| {
        spec.edge.cors.allow_origins = vec!["https://app.example".into()];
    })
    .await;
    let url = env.gateway.url();

    // Preflight from an allowed origin.
    let r = env
        .client
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .expect("preflight");
    assert!(r.status().is_success());
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    // Another origin gets no CORS grant.
    let r = env
        .client
        .post(&url)
        .header("origin", "https://evil.example")
        .header("content-type", "application/json")
        .body(json!({"query": "{ me { id } }"}).to_string())
        .send()
        .await
        .expect("post");
    assert!(r.headers().get("access-control-allow-origin").is_none());

    // A large response is compressed for clients that accept it.
    let body = json!({"query": e2e_tests::benchmark_query()}).to_string();
    for encoding in ["gzip", "br"] {
        let r = env
            .client
            .post(&url)
            .header("content-type", "application/json")
            .header("accept-encoding", encoding)
            .body(body.clone())
            .send()
            .await
            .expect("post");
        assert_eq!(r.headers()["content-encoding"], encoding);
        let compressed = r.bytes().await.expect("body").len();
        assert!(compressed < 40_000, "{encoding}: {compressed} bytes");
    }
    // ... and not for those that do not.
    let r = env
        .client
        .post(&url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("post");
    assert!(r.headers().get("content-encoding").is_none());
    env.shutdown().await;
}

#[tokio::test]
async fn the_unified_endpoint_refuses_by_default_what_no_subgraph_should_see() {
    let env = TestEnv::start().await;
    env.mocks.reset_stats();
    let ask = |query: String| {
        post_raw(
            &env,
            "application/json",
            GRAPHQL_RESPONSE,
            json!({ "query": query }).to_string(),
        )
    };
    let code = |r: &Reply| r.body["errors"][0]["extensions"]["code"].clone();

    // 41 levels deep: valid, within the parser's limits, past the default depth.
    let deep = format!(
        "{{ me {{ {}id{} }} }}",
        "reviews { author { ".repeat(20),
        " } }".repeat(20)
    );
    let r = ask(deep).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(code(&r), "MAX_DEPTH_EXCEEDED", "{r:?}");

    // An alias flood.
    let aliases: String = (0..10_000).map(|i| format!("a{i}: __typename ")).collect();
    let r = ask(format!("{{ {aliases} }}")).await;
    assert_eq!(r.status, 400);
    assert_eq!(code(&r), "MAX_ALIASES_EXCEEDED", "{r:?}");

    // 10k repeated directives: the error list is capped, not 10k entries long.
    let repeated = "@include(if: true) ".repeat(10_000);
    let r = ask(format!("{{ me {repeated} {{ id }} }}")).await;
    assert_eq!(r.status, 400);
    let errors = r.body["errors"].as_array().cloned().unwrap_or_default();
    assert_eq!(errors.len(), 101, "{:?}", errors.last());
    assert!(
        error_messages(&r.body)[100].starts_with("too many errors: "),
        "{:?}",
        errors.last()
    );

    // Fragments that double at every level: the client's document is too large to
    // plan, a 400 with its own code, not a server error.
    let mut doc = String::from("query { ...F0 }\n");
    for i in 0..40 {
        doc.push_str(&format!(
            "fragment F{i} on Query {{ ...F{n} ...F{n} }}\n",
            n = i + 1
        ));
    }
    doc.push_str("fragment F40 on Query { me { id } }\n");
    let r = ask(doc).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(code(&r), "OPERATION_TOO_LARGE", "{r:?}");

    let upstream: u64 = subgraph_mocks::SUBGRAPHS
        .iter()
        .map(|s| env.mocks.stats(s).requests)
        .sum();
    assert_eq!(upstream, 0, "nothing reached a subgraph");

    // A GraphiQL-sized introspection query is within the defaults.
    let r = ask(
        "{ __schema { types { name fields { name type { name ofType { name ofType { name ofType { name ofType { name } } } } } } } } }"
            .into(),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    env.shutdown().await;
}

/// One subgraph `a` with `Query.hello`.
fn hello_graph() -> String {
    gateway::schema::compose::compose(&[gateway::schema::compose::SubgraphInput {
        name: "a".into(),
        url: "http://127.0.0.1:9/a".into(),
        sdl: "type Query { hello: String }".into(),
    }])
    .expect("composes")
}

#[tokio::test]
async fn the_unified_endpoints_limits_can_be_set_and_turned_off() {
    use e2e_tests::scripted::ScriptedSubgraph;
    let supergraph = hello_graph();
    let a =
        ScriptedSubgraph::start(|_| (200, r#"{"data":{"a0":"hi","a1":"hi","a2":"hi"}}"#.into()))
            .await;
    let query = json!({"query": "{ a0: hello a1: hello a2: hello }"});
    for (limits, expected) in [
        (
            "limits:\n  graphql: { max_aliases: 2 }",
            Some("MAX_ALIASES_EXCEEDED"),
        ),
        ("limits:\n  graphql: null", None),
    ] {
        let gw = e2e_tests::gateway_with_config(&supergraph, &[("a", a.url.clone())], limits).await;
        let r = post_json(&e2e_tests::client(), &gw.url(), &query).await;
        match expected {
            Some(code) => assert_eq!(r.body["errors"][0]["extensions"]["code"], code, "{r:?}"),
            None => assert_eq!(r.body["data"]["a2"], "hi", "{r:?}"),
        }
        gw.shutdown().await;
    }
    assert_eq!(
        a.received().len(),
        1,
        "only the unlimited gateway called it"
    );
}

/// Whether the server ends the connection (EOF, reset, or an answer before the end of
/// the headers) within `rounds` × 200 ms while the client sends `drip` each round.
async fn cut_off(stream: &mut tokio::net::TcpStream, drip: &[u8], rounds: usize) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = [0u8; 512];
    for _ in 0..rounds {
        if !drip.is_empty() && stream.write_all(drip).await.is_err() {
            return true;
        }
        match tokio::time::timeout(std::time::Duration::from_millis(200), stream.read(&mut buf))
            .await
        {
            Ok(_) => return true,
            Err(_) => continue,
        }
    }
    false
}

#[tokio::test]
async fn slow_and_idle_clients_are_cut_off_and_connections_are_capped() {
    use e2e_tests::scripted::ScriptedSubgraph;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    let supergraph = hello_graph();
    let a = ScriptedSubgraph::start(|_| (200, r#"{"data":{"hello":"hi"}}"#.into())).await;
    let gw = e2e_tests::gateway_with_config(
        &supergraph,
        &[("a", a.url.clone())],
        "edge:\n  connections: { header_read_timeout: 600ms }",
    )
    .await;

    // Headers a line at a time (slowloris), nothing at all, idle after a request: each
    // connection is closed soon after the header-read deadline (25 rounds: 5 s).
    let mut slow = TcpStream::connect(gw.addr).await.expect("connect");
    slow.write_all(b"POST /graphql HTTP/1.1\r\nhost: gw\r\n")
        .await
        .expect("write");
    assert!(
        cut_off(&mut slow, b"x-slow: 1\r\n", 25).await,
        "slow headers kept open"
    );
    let mut silent = TcpStream::connect(gw.addr).await.expect("connect");
    assert!(
        cut_off(&mut silent, b"", 25).await,
        "a silent connection kept open"
    );
    let mut idle = TcpStream::connect(gw.addr).await.expect("connect");
    let body = r#"{"query":"{ hello }"}"#;
    let request = format!(
        "POST /graphql HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    idle.write_all(request.as_bytes()).await.expect("write");
    let mut answer = vec![0u8; 4096];
    let n = idle.read(&mut answer).await.expect("answer");
    assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200"));
    assert!(
        cut_off(&mut idle, b"", 25).await,
        "an idle keep-alive connection kept open"
    );
    gw.shutdown().await;

    // At most two connections: a third gets a 503; once one closes, requests pass.
    let gw = e2e_tests::gateway_with_config(
        &supergraph,
        &[("a", a.url.clone())],
        "edge:\n  connections: { max: 2 }",
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = TcpStream::connect(gw.addr).await.expect("connect");
        c.write_all(b"POST /graphql HTTP/1.1\r\n")
            .await
            .expect("write");
        held.push(c);
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let mut third = TcpStream::connect(gw.addr).await.expect("connect");
    let _ = third.write_all(request.as_bytes()).await;
    let mut refused = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        third.read_to_end(&mut refused),
    )
    .await;
    let refused = String::from_utf8_lossy(&refused).to_string();
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused:?}");
    drop(held.pop());
    let mut passed = false;
    for _ in 0..50 {
        let r = post_json(
            &e2e_tests::client(),
            &gw.url(),
            &json!({"query": "{ hello }"}),
        )
        .await;
        if r.status == 200 && r.body["data"]["hello"] == "hi" {
            passed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(passed, "a freed place was never reused");
    drop(held);
    gw.shutdown().await;
}

/// Debian's Chromium, which `.ci/run` installs; `None` (with a note) outside CI when it
/// is missing.
fn chromium() -> Option<String> {
    let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    match found {
        Some(path) => Some(path.to_string()),
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("chromium is not installed in CI: .ci/run installs it")
        }
        None => {
            eprintln!("note: chromium is not installed, skipping the browser test");
            None
        }
    }
}

#[tokio::test]
async fn graphiql_runs_queries_in_a_browser_that_may_reach_no_other_host() {
    let Some(chromium) = chromium() else { return };
    let env = TestEnv::start().await;
    let unified = env.gateway.url();
    let web = format!("http://{}/bff/web/graphql", env.gateway.addr);
    let cases = [
        (unified.clone(), None, "data"),
        (web.clone(), None, "data"),
        // The headers a user sets in the editor are sent: a bearer token that is not a
        // JWT is refused on the web BFF.
        (
            web,
            Some(json!({"Authorization": "Bearer not-a-jwt"})),
            "errors",
        ),
    ];
    for (url, headers, expect) in cases {
        let plan = json!({
            "url": url,
            "query": "{ topProducts { name } }",
            "headers": headers,
            "chromium": chromium,
        });
        let mut browser = e2e_tests::node::NodeClient::start("graphiql-browser.mjs", &plan);
        let outcome = browser.line().await;
        assert_eq!(outcome["ok"], true, "{url}: {outcome}");
        assert_eq!(
            outcome["offsite"],
            json!([]),
            "{url}: requests to other hosts"
        );
        assert_eq!(
            outcome["explorer"], true,
            "{url}: the explorer plugin is there"
        );
        let response = &outcome["response"];
        if expect == "data" {
            assert_eq!(
                response["data"]["topProducts"][0]["name"], "Table",
                "{url}: {response}"
            );
        } else {
            assert_eq!(
                response["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
                "{response}"
            );
        }
        assert_eq!(browser.finish().await, Some(0));
    }
}

/// A BFF's REST endpoints page (`/bff/partner/docs`) in a browser that may reach no
/// other host: with the API key typed in, it lists the persisted endpoints from the
/// OpenAPI document and calls one with the parameters filled in.
#[tokio::test]
async fn the_bff_endpoints_page_lists_and_calls_them_in_a_browser() {
    let Some(chromium) = chromium() else { return };
    let env = TestEnv::start().await;
    let plan = json!({
        "url": format!("http://{}/bff/partner/docs", env.gateway.addr),
        "apiKey": "demo-pro-key",
        "operation": "catalog",
        "parameters": {"first": 2},
        "chromium": chromium,
    });
    let mut browser = e2e_tests::node::NodeClient::start("bff-docs-browser.mjs", &plan);
    let outcome = browser.line().await;
    assert_eq!(outcome["ok"], true, "{outcome}");
    assert_eq!(outcome["offsite"], json!([]), "requests to other hosts");
    assert_eq!(
        outcome["endpoints"],
        json!(["catalog", "prices"]),
        "{outcome}"
    );
    assert_eq!(outcome["status"], "200 OK", "{outcome}");
    let items = &outcome["body"]["data"]["topProducts"];
    assert_eq!(items.as_array().map(Vec::len), Some(2), "{outcome}");
    assert_eq!(items[0]["name"], "Table", "{outcome}");
    assert_eq!(browser.finish().await, Some(0));
    // The page of a BFF that does not exist is a 404.
    let missing = env
        .client
        .get(format!("http://{}/bff/nobody/docs", env.gateway.addr))
        .send()
        .await
        .expect("request");
    assert_eq!(missing.status(), 404);
    env.shutdown().await;
}
