//! Credentials for a source: the client's `Authorization` (only when configured), a
//! static bearer token or API key, and named client headers. Nothing of the client's
//! is forwarded unless the source's config says so.

use std::sync::Arc;

use futures::future::BoxFuture;
use http::{HeaderName, HeaderValue};

use super::config::AuthPropagation;
use crate::sources::{FetchError, Source, SourceRequest, SourceResponse};

pub struct Propagate {
    inner: Arc<dyn Source>,
    forward_authorization: bool,
    forward: Vec<HeaderName>,
    fixed: Vec<(HeaderName, HeaderValue)>,
}

impl Propagate {
    pub fn new(inner: Arc<dyn Source>, config: &AuthPropagation) -> Self {
        let mut fixed = Vec::new();
        if let Some(token) = &config.bearer_token
            && let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}"))
        {
            fixed.push((http::header::AUTHORIZATION, value));
        }
        if let Some(key) = &config.api_key
            && let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(key.header.as_bytes()),
                HeaderValue::from_str(&key.value),
            )
        {
            fixed.push((name, value));
        }
        Propagate {
            inner,
            forward_authorization: config.forward_authorization,
            forward: config
                .forward_headers
                .iter()
                .filter_map(|h| HeaderName::from_bytes(h.as_bytes()).ok())
                .collect(),
            fixed,
        }
    }
}

impl Source for Propagate {
    fn fetch(
        &self,
        mut request: SourceRequest,
    ) -> BoxFuture<'static, Result<SourceResponse, FetchError>> {
        if self.forward_authorization
            && let Some(auth) = request.client_headers.get(http::header::AUTHORIZATION)
        {
            request
                .headers
                .insert(http::header::AUTHORIZATION, auth.clone());
        }
        for name in &self.forward {
            if let Some(value) = request.client_headers.get(name) {
                request.headers.insert(name.clone(), value.clone());
            }
        }
        // Configured credentials win over anything forwarded.
        for (name, value) in &self.fixed {
            request.headers.insert(name.clone(), value.clone());
        }
        self.inner.fetch(request)
    }
}
