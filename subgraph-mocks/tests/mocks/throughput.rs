//! Rough throughput of the mocks for a benchmark-like `_entities` request (ignored by default;
//! run `cargo test --release -p subgraph-mocks --test mocks throughput -- --ignored --nocapture`).
//! Prints requests/s for repeated identical requests (response cache hits) and for unique
//! request bodies (full GraphQL execution). Asserts nothing about timing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use subgraph_mocks::MockSubgraphs;

const SELECTION: &str = "... on Product { reviews { id body author { id username reviews { id body product { upc } } } } }";

async fn run(url: String, unique: bool, concurrency: usize, duration: Duration) -> (f64, f64) {
    let client = reqwest::Client::new();
    let done = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let (client, url, done, bytes) = (client.clone(), url.clone(), done.clone(), bytes.clone());
        tasks.push(tokio::spawn(async move {
            let reps: Vec<_> = (1..=10).map(|i| json!({"__typename": "Product", "upc": i.to_string()})).collect();
            let mut n = 0u64;
            while started.elapsed() < duration {
                n += 1;
                let mut body = json!({
                    "query": format!("query($representations: [_Any!]!) {{ _entities(representations: $representations) {{ {SELECTION} }} }}"),
                    "variables": { "representations": reps },
                });
                if unique {
                    body["extensions"] = json!({ "nonce": format!("{worker}-{n}") });
                }
                let resp = client.post(&url).json(&body).send().await.unwrap();
                assert_eq!(resp.status(), 200);
                let b = resp.bytes().await.unwrap();
                bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed) as f64;
    (n / secs, bytes.load(Ordering::Relaxed) as f64 / n)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "measurement, not a test"]
async fn entity_throughput() {
    let mocks = MockSubgraphs::start("127.0.0.1:0").await.unwrap();
    let url = mocks.url("reviews");
    for unique in [false, true] {
        let (rps, size) = run(url.clone(), unique, 32, Duration::from_secs(3)).await;
        println!(
            "reviews _entities x10 products ({}): {rps:.0} req/s, {size:.0} bytes/response",
            if unique {
                "unique bodies, executed"
            } else {
                "identical bodies, cached"
            }
        );
    }
    println!("{:?}", mocks.stats("reviews"));
}
