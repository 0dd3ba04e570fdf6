//! A GraphQL federation gateway and BFF composer.
//!
//! One request's journey, in module order: [`ingress`] (HTTP, GraphQL-over-HTTP) →
//! [`pipeline`] (parse, validate, plan with a cache, execute) → [`planner`] (pure) →
//! [`executor`] (parallel fetches, merging, null propagation) → [`sources`] (the
//! upstream subgraphs). [`schema`] holds the supergraph model and API schema and
//! [`config`] the configuration they are built from.

pub mod bff;
pub mod config;
pub mod distributed;
pub mod executor;
pub mod ingress;
pub mod pipeline;
pub mod planner;
pub mod policy;
pub mod reload;
pub mod schema;
pub mod server;
pub mod sources;
pub mod telemetry;
pub mod tls;
pub mod value;
