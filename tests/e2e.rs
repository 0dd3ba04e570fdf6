//! The end-to-end suite: the gateway and the mocks over real sockets, one module per
//! area. Run one area with `cargo test -p e2e-tests --test e2e <area>::`.

mod auth;
mod bff;
mod compat;
mod federation;
mod http;
mod partial;
mod policy;
mod ratelimit;
mod reload;
mod routing;
mod sources;
mod startup;
mod streaming;
mod telemetry;
mod tls;
mod uploads;
