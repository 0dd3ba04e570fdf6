//! Criterion benchmarks of the gateway's per-request CPU stages on the standard federation
//! benchmark scenario (`gateway/tests/fixtures/benchmark-{supergraph,query}.graphql`):
//!
//! - `parse_validate_plan/cold`: parse, validate, normalize and plan from scratch;
//! - `parse_validate_plan/cached`: `Engine::prepare` on a warm plan cache (the hit path);
//! - `execute/benchmark_query`: `Engine::execute` end to end against the four subgraph
//!   mocks served in-process over real loopback HTTP (the response is checked against
//!   `subgraph_mocks::reference::benchmark_response()` before timing).
//!
//! Run with `cargo bench -p benches --bench pipeline` (about a minute once built).

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use criterion::{Criterion, criterion_group, criterion_main};
use gateway::pipeline::Engine;
use gateway::request::{Request, RequestContext};
use gateway::schema::SchemaSnapshot;
use gateway::server::GatewaySpec;
use gateway::sources::Sources;
use subgraph_mocks::MockSubgraphs;

/// The gateway binary's allocator, so that the figures match what it does in production.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SUPERGRAPH: &str = include_str!("../gateway/tests/fixtures/benchmark-supergraph.graphql");
const QUERY: &str = include_str!("../gateway/tests/fixtures/benchmark-query.graphql");
const SUPERGRAPH_FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../gateway/tests/fixtures/benchmark-supergraph.graphql"
);

fn parse_validate_plan(c: &mut Criterion) {
    let schema = SchemaSnapshot::from_supergraph_sdl(SUPERGRAPH).expect("benchmark supergraph");
    let engine = Engine::new(schema.clone(), Sources(vec![]));
    engine.prepare(QUERY, None).expect("benchmark query plans");

    let mut group = c.benchmark_group("parse_validate_plan");
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    group.bench_function("cold", |b| {
        b.iter(|| gateway::request::prepare(&schema, black_box(QUERY), None).expect("plans"))
    });
    group.bench_function("cached", |b| {
        b.iter(|| engine.prepare(black_box(QUERY), None).expect("plans"))
    });
    group.finish();
}

/// The engine of a gateway whose subgraph URLs point at `mocks`.
fn engine_for(mocks: &MockSubgraphs) -> anyhow::Result<Engine> {
    let mut spec = GatewaySpec::from_supergraph_file(Path::new(SUPERGRAPH_FILE))?;
    spec.urls = subgraph_mocks::SUBGRAPHS
        .iter()
        .map(|name| (name.to_string(), mocks.url(name)))
        .collect();
    Ok(spec.engine()?)
}

/// One execution must give exactly the reference answer, fields in query order included.
async fn check_response(
    engine: &Engine,
    request: &Request,
    context: &RequestContext,
) -> anyhow::Result<()> {
    let response = engine
        .execute(request, false, context)
        .await
        .map_err(|e| anyhow::anyhow!("request error: {e}"))?;
    ensure!(
        response.errors.is_empty(),
        "the benchmark query returned errors: {}",
        serde_json::to_string(&response.errors)?
    );
    let reference = subgraph_mocks::reference::benchmark_response();
    let expected = reference.get("data").context("reference has no `data`")?;
    let Some(raw) = &response.data else {
        bail!("the benchmark query returned no data");
    };
    let data: serde_json::Value = serde_json::from_slice(raw)?;
    ensure!(
        &data == expected,
        "the benchmark query's data differs from subgraph_mocks::reference::benchmark_response()"
    );
    ensure!(
        raw.as_slice() == serde_json::to_string(expected)?.as_bytes(),
        "the benchmark query's data has the reference's values but not its field order"
    );
    Ok(())
}

fn execute(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mocks = runtime
        .block_on(MockSubgraphs::start("127.0.0.1:0"))
        .expect("start the subgraph mocks");
    let engine = runtime
        .block_on(async { engine_for(&mocks) })
        .expect("build the engine");
    let request = Request {
        query: QUERY.to_string(),
        ..Request::default()
    };
    let context = RequestContext {
        request_id: http::HeaderValue::from_static("pipeline-bench"),
        expose_plan: false,
        client_headers: Arc::new(http::HeaderMap::new()),
        principal: None,
        deadline: None,
        uploads: None,
    };
    runtime
        .block_on(check_response(&engine, &request, &context))
        .expect("correct answer to the benchmark query");

    let mut group = c.benchmark_group("execute");
    group.warm_up_time(Duration::from_secs(2));
    group.measurement_time(Duration::from_secs(8));
    group.sample_size(50);
    group.bench_function("benchmark_query", |b| {
        b.iter(|| {
            runtime
                .block_on(engine.execute(black_box(&request), false, &context))
                .expect("executes")
        })
    });
    group.finish();
    drop(engine);
    runtime.block_on(mocks.shutdown());
}

criterion_group!(benches, parse_validate_plan, execute);
criterion_main!(benches);
