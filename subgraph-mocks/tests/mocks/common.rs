//! Helpers shared by the integration tests: a tiny GraphQL-over-HTTP client on reqwest.

#![allow(dead_code)]

use serde_json::{Value, json};

/// POSTs `{query, variables}` and returns (status, JSON body).
pub async fn post(
    client: &reqwest::Client,
    url: &str,
    query: &str,
    variables: Value,
) -> (u16, Value) {
    let resp = client
        .post(url)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.json::<Value>().await.unwrap();
    (status, body)
}

/// POSTs and returns `data`, asserting HTTP 200 and no `errors`.
pub async fn data(client: &reqwest::Client, url: &str, query: &str, variables: Value) -> Value {
    let (status, body) = post(client, url, query, variables).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    body["data"].clone()
}

/// `_entities` query for a list of representations.
pub async fn entities(
    client: &reqwest::Client,
    url: &str,
    selection: &str,
    reps: Value,
) -> Vec<Value> {
    let query = format!(
        "query($representations: [_Any!]!) {{ _entities(representations: $representations) {{ {selection} }} }}"
    );
    let d = data(client, url, &query, json!({ "representations": reps })).await;
    d["_entities"].as_array().unwrap().clone()
}
