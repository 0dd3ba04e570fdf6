//! The mocks' integration tests in one binary (one link, not five), one module per area.

#![allow(clippy::unwrap_used)]

mod common;
mod faults;
mod sdl;
mod services;
mod subgraphs;
mod throughput;
