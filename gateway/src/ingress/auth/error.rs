//! Why a request is refused at authentication, and what the client is told.

/// Why a request is refused at authentication.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("authentication is required")]
    Missing,
    #[error("{0}")]
    Invalid(String),
    /// The credential could not be checked (introspection or key store down).
    #[error("{0}")]
    Unavailable(String),
}

impl AuthError {
    pub fn invalid(message: impl Into<String>) -> Self {
        AuthError::Invalid(message.into())
    }

    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing",
            AuthError::Invalid(_) => "invalid",
            AuthError::Unavailable(_) => "unavailable",
        }
    }
}
