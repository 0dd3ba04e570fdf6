//! Partial failure and upstream garbage, with scripted subgraphs on real sockets:
//! non-null propagation, error paths mapped from `_entities`, malformed responses,
//! abstract types across subgraphs, and mutations.

use e2e_tests::scripted::ScriptedSubgraph;
use e2e_tests::{client, error_messages, gateway_for, post_json, send};
use gateway::schema::compose::{SubgraphInput, compose};
use serde_json::{Value, json};

const ITEMS_A: &str = r#"
extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
type Query { items: [Item!] }
type Item @key(fields: "id") { id: ID! }
"#;

const ITEMS_B: &str = r#"
extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
type Item @key(fields: "id") { id: ID! name: String! note: String }
"#;

fn supergraph(subgraphs: &[(&str, &str)]) -> String {
    let inputs: Vec<SubgraphInput> = subgraphs
        .iter()
        .map(|(name, sdl)| SubgraphInput {
            name: name.to_string(),
            url: format!("http://127.0.0.1:9/{name}"),
            sdl: sdl.to_string(),
        })
        .collect();
    compose(&inputs).expect("fixture composes")
}

async fn items_a() -> ScriptedSubgraph {
    ScriptedSubgraph::start(|_| {
        (
            200,
            json!({"data": {"items": [{"__typename": "Item", "id": "1"}, {"__typename": "Item", "id": "2"}, {"__typename": "Item", "id": "1"}]}})
                .to_string(),
        )
    })
    .await
}

async fn query(url: &str, q: &str) -> Value {
    let r = post_json(&client(), url, &json!({"query": q})).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.body
}

#[tokio::test]
async fn null_in_a_non_null_field_bubbles_to_the_nearest_nullable_parent() {
    let a = items_a().await;
    let b = ScriptedSubgraph::start(|req| {
        let reps = req["variables"]["representations"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let entities: Vec<Value> = reps
            .iter()
            .map(|r| match r["id"].as_str() {
                Some("1") => json!({"name": "one", "note": "n1"}),
                _ => json!({"name": null, "note": "n2"}),
            })
            .collect();
        (200, json!({"data": {"_entities": entities}}).to_string())
    })
    .await;
    let sdl = supergraph(&[("a", ITEMS_A), ("b", ITEMS_B)]);
    let gw = gateway_for(&sdl, &[("a", a.url.clone()), ("b", b.url.clone())]).await;

    // Item 2 has a null `name: String!`, so the `Item!` element is null, so the list
    // (`[Item!]`, nullable) is null.
    let body = query(&gw.url(), "{ items { id name } }").await;
    assert_eq!(body["data"], json!({"items": null}), "{body}");
    let errors = body["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{body}");
    assert_eq!(errors[0]["path"], json!(["items", 1, "name"]));

    // Without the non-null field, everything else is returned.
    let body = query(&gw.url(), "{ items { id note } }").await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["data"]["items"][1], json!({"id": "2", "note": "n2"}));

    // Representations were de-duplicated: item 1 appears twice but was sent once.
    let last = b.received().pop().expect("b was called");
    assert_eq!(
        last["variables"]["representations"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn entity_error_paths_are_mapped_to_client_paths() {
    let a = items_a().await;
    let b = ScriptedSubgraph::start(|_| {
        (
            200,
            json!({
                "data": {"_entities": [{"note": "n1"}, {"note": null}]},
                "errors": [{"message": "note unavailable", "path": ["_entities", 1, "note"], "extensions": {"code": "NOPE"}}]
            })
            .to_string(),
        )
    })
    .await;
    let sdl = supergraph(&[("a", ITEMS_A), ("b", ITEMS_B)]);
    let gw = gateway_for(&sdl, &[("a", a.url.clone()), ("b", b.url.clone())]).await;
    let body = query(&gw.url(), "{ items { id note } }").await;
    assert_eq!(body["data"]["items"][0]["note"], "n1");
    assert!(body["data"]["items"][1]["note"].is_null());
    let error = &body["errors"][0];
    assert_eq!(error["message"], "note unavailable");
    assert_eq!(error["path"], json!(["items", 1, "note"]));
    assert_eq!(error["extensions"]["code"], "NOPE");
    assert_eq!(error["extensions"]["service"], "b");
    gw.shutdown().await;
}

#[tokio::test]
async fn garbage_from_a_backend_is_an_error_not_a_crash() {
    let a = items_a().await;
    let cases: Vec<(u16, &str, &str)> = vec![
        (200, "this is not json", "UPSTREAM_BAD_RESPONSE"),
        (
            200,
            "{\"data\": {\"_entities\": [{\"note\": \"x\"}]}}",
            "UPSTREAM_BAD_RESPONSE",
        ),
        (200, "{\"data\": 7}", "UPSTREAM_BAD_RESPONSE"),
        (200, "{}", "UPSTREAM_BAD_RESPONSE"),
        (502, "<html>bad gateway</html>", "UPSTREAM_HTTP_502"),
        (404, "", "UPSTREAM_HTTP_404"),
    ];
    for (status, text, code) in cases {
        let owned = text.to_string();
        let b = ScriptedSubgraph::start(move |_| (status, owned.clone())).await;
        let sdl = supergraph(&[("a", ITEMS_A), ("b", ITEMS_B)]);
        let gw = gateway_for(&sdl, &[("a", a.url.clone()), ("b", b.url.clone())]).await;
        let body = query(&gw.url(), "{ items { id note } }").await;
        assert_eq!(body["data"]["items"][0]["id"], "1", "{text}: {body}");
        assert!(body["data"]["items"][0]["note"].is_null(), "{text}: {body}");
        let errors = body["errors"].as_array().expect("errors");
        assert_eq!(errors[0]["extensions"]["code"], code, "{text}: {body}");
        assert_eq!(errors[0]["extensions"]["service"], "b");
        // One error per field the fetch was to fill, at its path: `note` of each item
        // sent (items 0 and 2 share one representation; each place is listed).
        let paths: Vec<&Value> = errors.iter().map(|e| &e["path"]).collect();
        assert_eq!(
            paths,
            [
                &json!(["items", 0, "note"]),
                &json!(["items", 1, "note"]),
                &json!(["items", 2, "note"])
            ],
            "{text}: {body}"
        );
        // Counted as the failure it is, not as `ok`.
        let metrics = e2e_tests::metrics_text(gw.addr).await;
        let counted = format!("source=\"b\",outcome=\"{code}\"}} 1");
        assert!(
            metrics.contains(&counted),
            "{text}: {counted} in\n{metrics}"
        );
        gw.shutdown().await;
    }
}

const MEDIA: &str = r#"
extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
type Query { media: [Media] search: [Result] }
type Mutation { addBook(title: String!): Book rename(id: ID!, title: String!): Book }
interface Media { id: ID! title: String }
type Book implements Media @key(fields: "id") { id: ID! title: String }
type Movie implements Media @key(fields: "id") { id: ID! title: String }
union Result = Book | Movie
"#;

const PAGES: &str = r#"
extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
type Book @key(fields: "id") { id: ID! pages: Int }
type Mutation { rate(id: ID!): Int }
"#;

#[tokio::test]
async fn abstract_types_across_subgraphs() {
    let media = ScriptedSubgraph::start(|_| {
        (
            200,
            json!({"data": {
                "media": [
                    {"__typename": "Book", "id": "b1", "title": "Dune"},
                    {"__typename": "Movie", "id": "m1", "title": "Alien"}
                ],
                "search": [
                    {"__typename": "Movie", "id": "m1", "title": "Alien"},
                    {"__typename": "Book", "id": "b1", "title": "Dune"}
                ]
            }})
            .to_string(),
        )
    })
    .await;
    let pages = ScriptedSubgraph::start(|req| {
        let n = req["variables"]["representations"]
            .as_array()
            .map_or(0, Vec::len);
        (
            200,
            json!({"data": {"_entities": vec![json!({"pages": 412}); n]}}).to_string(),
        )
    })
    .await;
    let sdl = supergraph(&[("media", MEDIA), ("pages", PAGES)]);
    let gw = gateway_for(
        &sdl,
        &[("media", media.url.clone()), ("pages", pages.url.clone())],
    )
    .await;

    let body = query(
        &gw.url(),
        "{ media { __typename title ... on Book { pages } } search { ... on Movie { kind: __typename title } ... on Book { id pages } } }",
    )
    .await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(
        body["data"],
        json!({
            "media": [
                {"__typename": "Book", "title": "Dune", "pages": 412},
                {"__typename": "Movie", "title": "Alien"}
            ],
            "search": [
                {"kind": "Movie", "title": "Alien"},
                {"id": "b1", "pages": 412}
            ]
        })
    );
    // The gateway asked the media subgraph for the runtime type.
    let sent = media.received()[0]["query"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(sent.contains("__typename"), "{sent}");
    // And asked `pages` only for books, once each.
    let reps = pages.received()[0]["variables"]["representations"].clone();
    assert_eq!(reps, json!([{"__typename": "Book", "id": "b1"}]));
    gw.shutdown().await;
}

#[tokio::test]
async fn mutations_run_serially_in_document_order_and_not_over_get() {
    let media = ScriptedSubgraph::start(|req| {
        let q = req["query"].as_str().unwrap_or("");
        let mut data = serde_json::Map::new();
        if q.contains("addBook") {
            data.insert(
                "a".into(),
                json!({"__typename": "Book", "id": "b9", "title": "New"}),
            );
        }
        if q.contains("rename") {
            data.insert(
                "b".into(),
                json!({"__typename": "Book", "id": "b9", "title": "Renamed"}),
            );
        }
        (200, json!({"data": data}).to_string())
    })
    .await;
    let pages = ScriptedSubgraph::start(|req| {
        let q = req["query"].as_str().unwrap_or("");
        let data = if q.contains("rate") {
            json!({"p": 5})
        } else {
            json!({"_entities": [{"pages": 1}]})
        };
        (200, json!({"data": data}).to_string())
    })
    .await;
    let sdl = supergraph(&[("media", MEDIA), ("pages", PAGES)]);
    let gw = gateway_for(
        &sdl,
        &[("media", media.url.clone()), ("pages", pages.url.clone())],
    )
    .await;
    let body = query(
        &gw.url(),
        r#"mutation { a: addBook(title: "New") { title pages } b: rename(id: "b9", title: "Renamed") { title } }"#,
    )
    .await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["data"]["a"], json!({"title": "New", "pages": 1}));
    assert_eq!(body["data"]["b"], json!({"title": "Renamed"}));
    // Consecutive fields of one subgraph go in one request, in document order (the
    // subgraph runs them serially).
    let sent: Vec<String> = media
        .received()
        .iter()
        .map(|r| r["query"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let (add, rename) = (sent[0].find("addBook"), sent[0].find("rename"));
    assert!(add.is_some() && add < rename, "{sent:?}");

    // A mutation field of another subgraph in between splits the sequence, in order.
    let body = query(
        &gw.url(),
        r#"mutation { a: addBook(title: "New") { title } p: rate(id: "b9") b: rename(id: "b9", title: "Renamed") { title } }"#,
    )
    .await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(
        body["data"],
        json!({"a": {"title": "New"}, "p": 5, "b": {"title": "Renamed"}})
    );
    let sent: Vec<String> = media
        .received()
        .iter()
        .skip(1)
        .map(|r| r["query"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(
        sent[0].contains("addBook") && !sent[0].contains("rename"),
        "{sent:?}"
    );
    assert!(sent[1].contains("rename"), "{sent:?}");

    // Over GET, a mutation is refused with 405 before anything is sent.
    let before = media.received().len();
    let r = send(
        client()
            .get(gw.url())
            .header("accept", "application/graphql-response+json")
            .query(&[("query", "mutation { addBook(title: \"x\") { id } }")]),
    )
    .await;
    assert_eq!(r.status, 405, "{r:?}");
    assert_eq!(
        r.headers.get("allow").and_then(|v| v.to_str().ok()),
        Some("POST")
    );
    assert!(error_messages(&r.body)[0].contains("POST"));
    assert_eq!(media.received().len(), before);
    gw.shutdown().await;
}

#[tokio::test]
async fn an_answer_over_the_sources_size_limit_is_refused_unbuffered() {
    let big = format!(
        r#"{{"data":{{"hello":"{}"}}}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    let a = ScriptedSubgraph::start(move |_| (200, big.clone())).await;
    let sdl = supergraph(&[("a", "type Query { hello: String }")]);
    // Within the default (16 MiB): served.
    let gw = gateway_for(&sdl, &[("a", a.url.clone())]).await;
    let body = query(&gw.url(), "{ hello }").await;
    assert_eq!(
        body["data"]["hello"].as_str().map(str::len),
        Some(2 * 1024 * 1024)
    );
    gw.shutdown().await;
    // Over this source's own limit: a bad response, said with the limit.
    let gw = e2e_tests::gateway_with_config(
        &sdl,
        &[("a", a.url.clone())],
        "upstream:\n  sources:\n    a: { max_response_bytes: 1048576 }",
    )
    .await;
    let body = query(&gw.url(), "{ hello }").await;
    assert!(body["data"]["hello"].is_null(), "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "UPSTREAM_BAD_RESPONSE"
    );
    assert!(
        error_messages(&body)[0].contains("larger than 1048576 bytes"),
        "{body}"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn a_failed_entity_fetch_lists_at_most_a_hundred_fields() {
    let items: Vec<Value> = (0..150)
        .map(|i| json!({"__typename": "Item", "id": i.to_string()}))
        .collect();
    let answer = json!({"data": {"items": items}}).to_string();
    let a = ScriptedSubgraph::start(move |_| (200, answer.clone())).await;
    let b = ScriptedSubgraph::start(|_| (503, "down".into())).await;
    let sdl = supergraph(&[("a", ITEMS_A), ("b", ITEMS_B)]);
    let gw = gateway_for(&sdl, &[("a", a.url.clone()), ("b", b.url.clone())]).await;
    let body = query(&gw.url(), "{ items { id note } }").await;
    let errors = body["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 101, "{:?}", errors.last());
    assert_eq!(errors[99]["path"], json!(["items", 99, "note"]));
    assert!(errors[100].get("path").is_none());
    assert!(
        error_messages(&body)[100].ends_with("(50 more fields not listed)"),
        "{:?}",
        errors.last()
    );
    gw.shutdown().await;
}
