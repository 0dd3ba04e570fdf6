//! The four subgraphs over real HTTP on 127.0.0.1:0: root fields, `_entities` (including
//! `@requires` and `@provides`), counters, and a hand-written "query plan" for the benchmark
//! query whose assembled result must equal [`subgraph_mocks::reference::benchmark_response`].

use std::collections::HashMap;

use crate::common::{data, entities, post};
use serde_json::{Map, Value, json};
use subgraph_mocks::{MockSubgraphs, Stats, reference};

#[tokio::test]
async fn root_queries() {
    let mocks = MockSubgraphs::start("127.0.0.1:0").await.unwrap();
    let c = reqwest::Client::new();

    let d = data(&c, &mocks.url("accounts"), "{ me { id name username birthday } user(id: \"3\") { username } nobody: user(id: \"99\") { id } users { id } }", json!({})).await;
    assert_eq!(d["me"]["id"], "1");
    assert_eq!(d["me"]["name"], "Ada Lovelace");
    assert!(d["me"]["birthday"].is_i64());
    assert_eq!(d["user"]["username"], "grace");
    assert!(d["nobody"].is_null());
    assert_eq!(d["users"].as_array().unwrap().len(), 10);

    let d = data(
        &c,
        &mocks.url("products"),
        "{ topProducts { upc name price weight } three: topProducts(first: 3) { upc } }",
        json!({}),
    )
    .await;
    assert_eq!(d["topProducts"].as_array().unwrap().len(), 5);
    assert_eq!(
        d["topProducts"][0],
        json!({"upc": "1", "name": "Table", "price": 899, "weight": 100})
    );
    assert_eq!(d["three"].as_array().unwrap().len(), 3);

    // inventory and reviews have no root fields of their own: __typename / _service only.
    for name in ["inventory", "reviews"] {
        let d = data(&c, &mocks.url(name), "{ __typename }", json!({})).await;
        assert_eq!(d["__typename"], "Query");
    }
    let (status, body) = post(
        &c,
        &mocks.url("inventory"),
        "{ topProducts { upc } }",
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(body["errors"].is_array(), "{body}");

    // GET is supported too (async-graphql-axum extractor).
    let resp = c
        .get(format!("{}?query=%7Bme%7Bid%7D%7D", mocks.url("accounts")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["data"]["me"]["id"], "1");
    mocks.shutdown().await;
}

#[tokio::test]
async fn inventory_requires_price_and_weight() {
    let mocks = MockSubgraphs::start("127.0.0.1:0").await.unwrap();
    let c = reqwest::Client::new();
    let reps = json!([
        {"__typename": "Product", "upc": "1", "price": 899, "weight": 100},
        {"__typename": "Product", "upc": "2", "price": 1299, "weight": 1000},
        {"__typename": "Product", "upc": "3", "price": 10, "weight": 7},
        {"__typename": "Product", "upc": "42", "price": 1, "weight": 1},
        {"__typename": "Product", "upc": "4"},
    ]);
    let got = entities(
        &c,
        &mocks.url("inventory"),
        "... on Product { upc inStock shippingEstimate price weight }",
        reps,
    )
    .await;
    assert_eq!(
        got[0],
        json!({"upc": "1", "inStock": true, "shippingEstimate": 50, "price": 899, "weight": 100})
    );
    assert_eq!(got[1]["shippingEstimate"], 0);
    // Computed from the representation's values, not from local data.
    assert_eq!(got[2]["shippingEstimate"], 3);
    assert_eq!(got[2]["inStock"], false);
    // Unknown key: null.
    assert!(got[3].is_null());
    // Without the required fields the estimate is null.
    assert!(got[4]["shippingEstimate"].is_null());
    assert_eq!(got[4]["inStock"], true);

    let stats = mocks.stats("inventory");
    assert_eq!(
        (
            stats.requests,
            stats.entity_requests,
            stats.representations,
            stats.root_requests
        ),
        (1, 1, 5, 0)
    );
}

#[tokio::test]
async fn reviews_entities() {
    let mocks = MockSubgraphs::start("127.0.0.1:0").await.unwrap();
    let c = reqwest::Client::new();
    let url = mocks.url("reviews");
    let got = entities(
        &c,
        &url,
        "... on User { id reviews { id product { upc } author { id username } } }",
        json!([{"__typename": "User", "id": "1"}, {"__typename": "User", "id": "77"}]),
    )
    .await;
    let reviews = got[0]["reviews"].as_array().unwrap();
    assert!(reviews.len() >= 2);
    for r in reviews {
        // @provides: the author's username comes from reviews itself.
        assert_eq!(r["author"], json!({"id": "1", "username": "ada"}));
        assert!(r["product"]["upc"].is_string());
    }
    assert!(got[1].is_null());

    let got = entities(
        &c,
        &url,
        "... on Product { upc reviews { id body } } ... on Review { id body author { username } }",
        json!([{"__typename": "Product", "upc": "10"}, {"__typename": "Review", "id": "5"}]),
    )
    .await;
    assert!(got[0]["reviews"].as_array().unwrap().len() >= 2);
    assert!(got[0]["reviews"][0]["body"].as_str().unwrap().len() > 300);
    assert_eq!(got[1]["id"], "5");
    assert_eq!(got[1]["author"]["username"], "barbara");

    // accounts and products entities.
    let got = entities(
        &c,
        &mocks.url("accounts"),
        "... on User { id name username birthday }",
        json!([{"__typename": "User", "id": "10"}, {"__typename": "User", "id": "0"}]),
    )
    .await;
    assert_eq!(got[0]["username"], "ken");
    assert!(got[1].is_null());
    let got = entities(
        &c,
        &mocks.url("products"),
        "... on Product { upc name price weight }",
        json!([{"__typename": "Product", "upc": "9"}, {"__typename": "Product", "upc": "x"}]),
    )
    .await;
    assert_eq!(
        got[0],
        json!({"upc": "9", "name": "Bed", "price": 1599, "weight": 2000})
    );
    assert!(got[1].is_null());
}

#[tokio::test]
async fn counters_distinguish_entity_and_root_requests() {
    let mocks = MockSubgraphs::start("127.0.0.1:0").await.unwrap();
    let c = reqwest::Client::new();
    let url = mocks.url("products");
    data(&c, &url, "{ topProducts { upc } }", json!({})).await;
    let reps: Vec<Value> = (1..=7)
        .map(|i| json!({"__typename": "Product", "upc": i.to_string()}))
        .collect();
    entities(&c, &url, "... on Product { name }", json!(reps)).await;
    // Identical request again: answered from the cache, still counted.
    entities(&c, &url, "... on Product { name }", json!(reps)).await;
    // A JSON-array batch of two operations.
    let batch = json!([{ "query": "{ topProducts { upc } }" }, { "query": "{ topProducts(first: 1) { upc } }" }]);
    let resp: Value = c
        .post(&url)
        .json(&batch)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resp.as_array().unwrap().len(), 2);
    // Malformed.
    let resp = c.post(&url).body("not json").send().await.unwrap();
    assert_eq!(resp.status(), 400);

    let s = mocks.stats("products");
    assert_eq!(
        s,
        Stats {
            requests: 5,
            entity_requests: 2,
            representations: 14,
            root_requests: 3,
            bad_requests: 1,
            cache_hits: 1,
            ..Stats::default()
        }
    );
    assert_eq!(mocks.stats("accounts"), Stats::default());
    mocks.reset_stats();
    assert_eq!(mocks.stats("products"), Stats::default());
}

#[tokio::test]
async fn http2_prior_knowledge_is_served() {
    let mocks = MockSubgraphs::start("127.0.0.1:0").await.unwrap();
    let c = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let resp = c
        .post(mocks.url("accounts"))
        .json(&json!({"query": "{ me { id } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.json::<Value>().await.unwrap()["data"]["me"]["id"], "1");
}

/// Fetches everything the benchmark query needs the way a gateway would (one batched
/// `_entities` request per subgraph and kind), assembles the response, and compares it with
/// the reference answer computed straight from the data.
#[tokio::test]
async fn hand_planned_benchmark_query_matches_reference() {
    let mocks = MockSubgraphs::start_separate("127.0.0.1").await.unwrap();
    let c = reqwest::Client::new();

    let users = data(
        &c,
        &mocks.url("accounts"),
        "{ users { id username name } }",
        json!({}),
    )
    .await;
    let users = users["users"].as_array().unwrap().clone();
    let top = data(
        &c,
        &mocks.url("products"),
        "{ topProducts { upc } }",
        json!({}),
    )
    .await;
    let top_upcs: Vec<String> = top["topProducts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["upc"].as_str().unwrap().to_owned())
        .collect();

    // All users / products / reviews ids (the data is small; a real plan fetches subsets).
    let user_ids: Vec<String> = users
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect();
    let upcs: Vec<String> = (1..=10).map(|i| i.to_string()).collect();
    let user_reps: Vec<Value> = user_ids
        .iter()
        .map(|id| json!({"__typename": "User", "id": id}))
        .collect();
    let product_reps: Vec<Value> = upcs
        .iter()
        .map(|u| json!({"__typename": "Product", "upc": u}))
        .collect();

    let user_reviews = entities(
        &c,
        &mocks.url("reviews"),
        "... on User { reviews { id } }",
        json!(user_reps),
    )
    .await;
    let product_reviews = entities(
        &c,
        &mocks.url("reviews"),
        "... on Product { reviews { id } }",
        json!(product_reps),
    )
    .await;
    let review_ids: Vec<String> = product_reviews
        .iter()
        .flat_map(|p| {
            p["reviews"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_owned())
        })
        .collect();
    let review_reps: Vec<Value> = review_ids
        .iter()
        .map(|id| json!({"__typename": "Review", "id": id}))
        .collect();
    let reviews = entities(
        &c,
        &mocks.url("reviews"),
        "... on Review { id body product { upc } author { id username } }",
        json!(review_reps),
    )
    .await;
    let names = entities(
        &c,
        &mocks.url("accounts"),
        "... on User { id name username }",
        json!(user_reps),
    )
    .await;
    let products = entities(
        &c,
        &mocks.url("products"),
        "... on Product { upc name price weight }",
        json!(product_reps),
    )
    .await;
    let inventory_reps: Vec<Value> = products
        .iter()
        .map(|p| json!({"__typename": "Product", "upc": p["upc"], "price": p["price"], "weight": p["weight"]}))
        .collect();
    let inventory = entities(
        &c,
        &mocks.url("inventory"),
        "... on Product { inStock shippingEstimate }",
        json!(inventory_reps),
    )
    .await;

    let by = |list: &[Value], key: &str| -> HashMap<String, Value> {
        list.iter()
            .map(|v| (v[key].as_str().unwrap().to_owned(), v.clone()))
            .collect()
    };
    let ids = |v: &Value| -> Vec<String> {
        v["reviews"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let reviews_by_id = by(&reviews, "id");
    let names_by_id = by(&names, "id");
    let products_by_upc = by(&products, "upc");
    let inventory_by_upc: HashMap<String, Value> = upcs
        .iter()
        .cloned()
        .zip(inventory.iter().cloned())
        .collect();
    let user_reviews_by_id: HashMap<String, Vec<String>> = user_ids
        .iter()
        .cloned()
        .zip(user_reviews.iter().map(ids))
        .collect();
    let product_reviews_by_upc: HashMap<String, Vec<String>> = upcs
        .iter()
        .cloned()
        .zip(product_reviews.iter().map(ids))
        .collect();

    let product = |upc: &str| -> Map<String, Value> {
        let p = &products_by_upc[upc];
        let i = &inventory_by_upc[upc];
        let mut o = Map::new();
        for (k, v) in [
            ("inStock", &i["inStock"]),
            ("name", &p["name"]),
            ("price", &p["price"]),
            ("shippingEstimate", &i["shippingEstimate"]),
            ("upc", &p["upc"]),
            ("weight", &p["weight"]),
        ] {
            o.insert(k.into(), v.clone());
        }
        o
    };
    let review = |id: &str| -> Map<String, Value> {
        let r = &reviews_by_id[id];
        let mut o = Map::new();
        o.insert("id".into(), r["id"].clone());
        o.insert("body".into(), r["body"].clone());
        o
    };
    let user = |id: &str| -> Map<String, Value> {
        let mut o = Map::new();
        // username as provided by reviews must agree with accounts.
        o.insert("id".into(), json!(id));
        o.insert("username".into(), names_by_id[id]["username"].clone());
        o.insert("name".into(), names_by_id[id]["name"].clone());
        o
    };
    let author = |review_id: &str| -> Value {
        let a = &reviews_by_id[review_id]["author"];
        let id = a["id"].as_str().unwrap();
        assert_eq!(a["username"], names_by_id[id]["username"]);
        let mut o = user(id);
        let rs: Vec<Value> = user_reviews_by_id[id]
            .iter()
            .map(|rid| {
                let mut r = review(rid);
                let upc = reviews_by_id[rid.as_str()]["product"]["upc"]
                    .as_str()
                    .unwrap();
                r.insert("product".into(), Value::Object(product(upc)));
                Value::Object(r)
            })
            .collect();
        o.insert("reviews".into(), Value::Array(rs));
        Value::Object(o)
    };
    let product_with_reviews = |upc: &str| -> Value {
        let mut o = product(upc);
        let rs: Vec<Value> = product_reviews_by_upc[upc]
            .iter()
            .map(|rid| {
                let mut r = review(rid);
                r.insert("author".into(), author(rid));
                Value::Object(r)
            })
            .collect();
        o.insert("reviews".into(), Value::Array(rs));
        Value::Object(o)
    };
    let users_out: Vec<Value> = users
        .iter()
        .map(|u| {
            let id = u["id"].as_str().unwrap();
            let mut o = user(id);
            assert_eq!(Value::Object(o.clone()), *u);
            let rs: Vec<Value> = user_reviews_by_id[id]
                .iter()
                .map(|rid| {
                    let mut r = review(rid);
                    let upc = reviews_by_id[rid.as_str()]["product"]["upc"]
                        .as_str()
                        .unwrap();
                    r.insert("product".into(), product_with_reviews(upc));
                    Value::Object(r)
                })
                .collect();
            o.insert("reviews".into(), Value::Array(rs));
            Value::Object(o)
        })
        .collect();
    let top_out: Vec<Value> = top_upcs.iter().map(|u| product_with_reviews(u)).collect();
    let assembled = json!({ "data": { "users": users_out, "topProducts": top_out } });
    assert!(
        assembled == reference::benchmark_response(),
        "assembled response differs from the reference"
    );

    let s = mocks.stats("reviews");
    assert_eq!((s.entity_requests, s.root_requests), (3, 0));
    assert_eq!(s.representations, 10 + 10 + review_ids.len() as u64);
    mocks.shutdown().await;
}
