//! Why an operation cannot be planned.

#[derive(Debug, Clone, thiserror::Error)]
pub enum PlanError {
    #[error("cannot plan {0}")]
    Unplannable(String),
    #[error("the operation is too large to plan")]
    TooLarge,
}
