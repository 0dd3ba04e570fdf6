//! Real Apollo Federation v2 subgraph servers for dev, tests and benchmarks: the four
//! subgraphs (`accounts`, `inventory`, `products`, `reviews`) of the standard federation
//! benchmark, whose composed supergraph is `/work/shared/bench/federation-supergraph.graphql`.
//!
//! They are async-graphql schemas with federation enabled (`_service { sdl }`, `_entities`,
//! `@key`, `@external`, `@requires`, `@provides`), answering from one deterministic, immutable
//! [data set](data), served over real HTTP with request counters, deterministic fault injection
//! and a control API. Start them with [`MockSubgraphs::start`] (one listener, paths
//! `/accounts`, `/inventory`, `/products`, `/reviews`) or [`MockSubgraphs::start_separate`]
//! (one listener per subgraph); the `subgraph-mocks` binary serves them standalone.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use subgraph_mocks::{Fault, MockSubgraphs};
//! let mocks = MockSubgraphs::start("127.0.0.1:0").await?;
//! let products_url = mocks.url("products"); // http://127.0.0.1:PORT/products
//! mocks.set_fault("inventory", Fault::latency(20));
//! // ... run the gateway against the URLs ...
//! assert_eq!(mocks.stats("inventory").entity_requests, 1);
//! mocks.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Next to them, [`MockServices`] runs the example graph's non-GraphQL backends: the REST
//! [`orders`] service (axum) and the gRPC [`notifications`] service (tonic,
//! `schemas/protos/notifications.proto`), with the same counters and faults, per-endpoint
//! call counts, and a [`Gate`] (also on [`MockSubgraphs`]) that holds requests until several
//! backends have one in flight, which proves parallel fan-out without timing thresholds.
//!
//! The SDL each subgraph serves is checked in at `schemas/subgraphs/<name>.graphql` (see
//! [`subgraphs::sdl`]), and [`reference::benchmark_response`] is the exact answer a gateway
//! must give to the benchmark query over these subgraphs.

mod conn;
pub mod data;
mod events;
pub mod fault;
pub mod gate;
mod http;
pub mod issuer;
pub mod notifications;
pub mod orders;
pub mod pricing;
pub mod reference;
mod server;
mod service_state;
mod services;
mod state;
pub mod subgraphs;

pub use conn::serve_router;
pub use fault::{Fault, FaultParseError, Stats};
pub use gate::Gate;
pub use server::MockSubgraphs;
pub use services::{MockServices, SERVICES};
pub use subgraphs::SUBGRAPHS;
