//! Query planning: a validated operation in, a [`QueryPlan`] out. Pure functions over
//! the supergraph model: no I/O, no clock, no async, so plans are easy to test, print
//! and cache.

mod builder;
pub mod computed;
mod error;
pub mod mapping;
pub mod operation;
pub mod plan;

pub use builder::{ALIAS_MARK, build_plan};
pub use error::PlanError;
pub use mapping::ViewMapping;
pub use operation::Operation;
pub use plan::{DeferredPlan, FetchKind, FetchNode, PathElem, PlanNode, QueryPlan};

#[cfg(test)]
mod tests;
