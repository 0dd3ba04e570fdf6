//! Planner snapshot tests: fixture supergraphs, readable plan printouts.

use crate::pipeline::prepare;
use crate::schema::SchemaSnapshot;

const BENCH: &str = include_str!("../../tests/fixtures/benchmark-supergraph.graphql");

fn plan(supergraph: &str, query: &str) -> String {
    let schema = SchemaSnapshot::from_supergraph_sdl(supergraph).expect("valid supergraph");
    match prepare(&schema, query, None) {
        Ok(p) => p.plan.to_string(),
        Err(e) => format!("error: {e}"),
    }
}

#[test]
fn benchmark_query() {
    let out = plan(
        BENCH,
        include_str!("../../tests/fixtures/benchmark-query.graphql"),
    );
    println!("{out}");
}
