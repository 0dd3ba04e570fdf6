//! A GraphQL federation gateway and BFF composer.
//!
//! The rooms in the order of one request, each importing only the rooms after it:
//! [`server`] (start-up, serving, hot reload) assembles [`config`] and serves the
//! [`ingress`] (HTTP, GraphQL-over-HTTP, TLS, client auth and rate limits), which hands
//! a [`request`] to the [`pipeline`] (parse, validate, authorize, plan with a cache);
//! the [`bff`] views check it, the [`executor`] runs its plan ([`planner`], pure) by
//! fetches through the [`policy`] stack to the [`sources`] (GraphQL, REST, gRPC).
//! Below them: [`telemetry`], the shared [`redis_store`], the [`schema`] model, and the
//! [`common`] leaf helpers that import nothing else of ours.

pub mod server;

pub mod config;

pub mod ingress;

pub mod pipeline;

pub mod bff;

pub mod executor;

pub mod request;

pub mod planner;

pub mod policy;

pub mod sources;

pub mod telemetry;

pub mod redis_store;

pub mod schema;

pub mod common;
