//! OAuth2 token introspection (RFC 7662): opaque bearer tokens are checked with the
//! authorization server, which the gateway authenticates to with HTTP Basic client
//! credentials. Answers are remembered briefly (by the token's SHA-256, never past its
//! `exp`) so a busy client does not cost one introspection call per request.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Map;
use serde_json::Value as Json;

use crate::common::digest::sha256;

use super::config::IntrospectionConfig;
use super::error::AuthError;

pub struct Introspector {
    url: String,
    client_id: String,
    client_secret: String,
    timeout: Duration,
    ttl: Duration,
    pub tier_claim: String,
    client: reqwest::Client,
    /// Token digest → answer.
    remembered: moka::sync::Cache<[u8; 32], Arc<Remembered>>,
}

/// The active token's claims (`None`: inactive), and until when to trust that.
type Remembered = (Option<Map<String, Json>>, Instant);

impl Introspector {
    pub fn compile(config: &IntrospectionConfig, client: &reqwest::Client) -> Self {
        Introspector {
            url: config.url.clone(),
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            timeout: config.timeout,
            ttl: config.cache_ttl,
            tier_claim: config.tier_claim.clone(),
            client: client.clone(),
            remembered: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(config.cache_ttl.max(Duration::from_millis(1)))
                .build(),
        }
    }

    /// The claims of an active token.
    pub async fn introspect(&self, token: &str) -> Result<Map<String, Json>, AuthError> {
        let key = sha256(token.as_bytes());
        if let Some(entry) = self.remembered.get(&key) {
            if Instant::now() < entry.1 {
                return entry.0.clone().ok_or_else(inactive);
            }
            self.remembered.invalidate(&key);
        }
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token)
            .append_pair("token_type_hint", "access_token")
            .finish();
        let unavailable = |e: String| {
            tracing::warn!(url = %self.url, error = %e, "token introspection failed");
            AuthError::Unavailable("the token could not be checked".into())
        };
        let response = self
            .client
            .post(&self.url)
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(http::header::ACCEPT, "application/json")
            .body(body)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        if !response.status().is_success() {
            return Err(unavailable(format!("HTTP {}", response.status())));
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let answer: Map<String, Json> =
            serde_json::from_slice(&bytes).map_err(|e| unavailable(format!("not JSON: {e}")))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let exp = answer.get("exp").and_then(Json::as_u64);
        let active = answer.get("active").and_then(Json::as_bool) == Some(true)
            && exp.is_none_or(|exp| exp > now);
        let mut until = Instant::now() + self.ttl;
        if let Some(exp) = exp.filter(|_| active) {
            until = until.min(Instant::now() + Duration::from_secs(exp.saturating_sub(now)));
        }
        let claims = active.then_some(answer);
        self.remembered
            .insert(key, Arc::new((claims.clone(), until)));
        claims.ok_or_else(inactive)
    }
}

fn inactive() -> AuthError {
    AuthError::invalid("the token is not active")
}
