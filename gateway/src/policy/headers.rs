//! Credentials for a source: the client's `Authorization` (only when configured), a
//! static bearer token or API key, named client headers, and verified claims of an
//! authenticated client as headers. Nothing of the client's is forwarded unless the
//! source's config says so.

use std::sync::Arc;

use futures::future::BoxFuture;
use http::{HeaderName, HeaderValue};

use serde_json::Value as Json;

use super::config::AuthPropagation;
use crate::sources::{EventStream, FetchError, Source, SourceRequest, SourceResponse};

pub struct Propagate {
    inner: Arc<dyn Source>,
    forward_authorization: bool,
    forward: Vec<HeaderName>,
    /// Claim name → header name.
    claims: Vec<(String, HeaderName)>,
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
            claims: config
                .claims_as_headers
                .iter()
                .filter_map(|(claim, header)| {
                    let header = HeaderName::from_bytes(header.as_bytes()).ok()?;
                    Some((claim.clone(), header))
                })
                .collect(),
            fixed,
        }
    }
}

impl Propagate {
    fn apply(&self, request: &mut SourceRequest) {
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
        // Claim headers come from verified claims only: whatever a client sent under
        // the same name is dropped, and an anonymous request sends none.
        let principal = request.principal.as_ref().filter(|p| p.is_authenticated());
        for (claim, header) in &self.claims {
            request.headers.remove(header);
            if let Some(value) = principal.and_then(|p| claim_value(p.claims.get(claim)?)) {
                request.headers.insert(header.clone(), value);
            }
        }
        // Configured credentials win over anything forwarded.
        for (name, value) in &self.fixed {
            request.headers.insert(name.clone(), value.clone());
        }
    }
}

impl Source for Propagate {
    fn fetch(
        &self,
        mut request: SourceRequest,
    ) -> BoxFuture<'static, Result<SourceResponse, FetchError>> {
        self.apply(&mut request);
        self.inner.fetch(request)
    }

    fn subscribe(
        &self,
        mut request: SourceRequest,
    ) -> BoxFuture<'static, Result<EventStream, FetchError>> {
        self.apply(&mut request);
        self.inner.subscribe(request)
    }
}

/// A claim as a header value: strings as they are, numbers and booleans printed, lists
/// of those comma-separated, objects as JSON. Values that cannot be a header are left
/// out.
fn claim_value(claim: &Json) -> Option<HeaderValue> {
    let text = match claim {
        Json::Null => return None,
        Json::String(s) => s.clone(),
        Json::Number(_) | Json::Bool(_) => claim.to_string(),
        Json::Array(items) => items
            .iter()
            .map(|item| match item {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(","),
        Json::Object(_) => claim.to_string(),
    };
    HeaderValue::from_str(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claims_become_header_values() {
        let value = |j: Json| claim_value(&j).map(|v| v.to_str().unwrap_or("?").to_string());
        assert_eq!(value(json!("u-1")), Some("u-1".into()));
        assert_eq!(value(json!(42)), Some("42".into()));
        assert_eq!(value(json!(true)), Some("true".into()));
        assert_eq!(value(json!(["a", "b", 3])), Some("a,b,3".into()));
        assert_eq!(value(json!({"k": "v"})), Some(r#"{"k":"v"}"#.into()));
        assert_eq!(value(json!(null)), None);
        assert_eq!(value(json!("line\nbreak")), None);
    }
}
