//! Planner snapshot tests: fixture supergraphs, readable plan printouts. Each module
//! covers one federation feature with subgraph SDLs composed by `schema::compose`.

use crate::request::prepare;
use crate::schema::SchemaSnapshot;
use crate::schema::compose::{SubgraphInput, compose};

mod abstract_types;
mod defer;
mod fed1;
mod interface_object;
mod keys;
mod r#override;
mod provides;
mod requires;
mod root_fields;

const BENCH: &str = include_str!("../../../tests/fixtures/benchmark-supergraph.graphql");

/// A Federation 2 subgraph SDL with the usual imports.
pub(super) fn fed2(body: &str) -> String {
    format!(
        "extend schema @link(url: \"https://specs.apollo.dev/federation/v2.3\", import: \
         [\"@key\", \"@shareable\", \"@external\", \"@requires\", \"@provides\", \"@override\", \
         \"@inaccessible\", \"@interfaceObject\", \"@tag\"])\n{body}"
    )
}

/// Compose `(name, sdl)` subgraphs into a supergraph SDL.
pub(super) fn supergraph(subgraphs: &[(&str, &str)]) -> String {
    let inputs: Vec<SubgraphInput> = subgraphs
        .iter()
        .map(|(name, sdl)| SubgraphInput {
            name: (*name).to_string(),
            url: format!("http://127.0.0.1:4200/{name}"),
            sdl: (*sdl).to_string(),
        })
        .collect();
    compose(&inputs).unwrap_or_else(|e| panic!("composition failed:\n{e}"))
}

/// The printed plan of `query` against a supergraph SDL, or the error.
pub(super) fn plan(supergraph: &str, query: &str) -> String {
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
        include_str!("../../../tests/fixtures/benchmark-query.graphql"),
    );
    assert!(out.contains("Fetch(service: \"accounts\")"), "{out}");
}
