//! Query planning: a validated operation in, a [`QueryPlan`] out. Pure functions over
//! the supergraph model: no I/O, no clock, no async, so plans are easy to test, print
//! and cache.

mod builder;
pub mod operation;
pub mod plan;

pub use builder::{ALIAS_MARK, build_plan};
pub use operation::Operation;
pub use plan::{FetchKind, FetchNode, PathElem, PlanNode, QueryPlan};

#[derive(Debug, Clone, thiserror::Error)]
pub enum PlanError {
    #[error("cannot plan {0}")]
    Unplannable(String),
    #[error("the operation is too large to plan")]
    TooLarge,
}

#[cfg(test)]
mod tests;
