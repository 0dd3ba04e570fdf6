//! Client access at the HTTP edge: who is calling ([`Authenticator`]: API keys, bearer
//! JWTs, OAuth2 token introspection) and how much they may call ([`RateLimiter`]), in
//! one middleware (`ingress/guard.rs`) in front of the GraphQL endpoints. Field-level
//! authorization from schema directives is enforced later, before planning
//! ([`crate::pipeline::authz`]), with the [`Principal`] this stage produces.
//!
//! The runtime is compiled once at start-up from the `auth:`, `rate_limit:` and
//! `redis:` config sections ([`Access::compile`]); a config reload swaps the schema,
//! not these.

mod api_keys;
mod error;
pub use error::AuthError;
pub mod config;
mod introspection;
mod jwt;

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::http::HeaderMap;
use axum::http::HeaderValue;
use axum::http::header;
use serde_json::Map;
use serde_json::Value as Json;

use crate::common::principal::{Principal, PrincipalKind};
pub use config::AuthConfig;

use super::ratelimit::{RateLimitConfig, RateLimiter};
use crate::redis_store::{RedisConfig, RedisStore};
use crate::telemetry::Metrics;
use api_keys::ApiKeyStore;
use introspection::Introspector;
use jwt::JwtVerifier;

/// The config sections the edge runtime is built from.
#[derive(Debug, Clone, Default)]
pub struct AccessConfig {
    pub auth: AuthConfig,
    pub rate_limit: RateLimitConfig,
    pub redis: Option<RedisConfig>,
}

/// Credentials in, principal out.
pub struct Authenticator {
    allow_anonymous: bool,
    default_tier: String,
    jwt: Option<JwtVerifier>,
    api_keys: Option<ApiKeyStore>,
    introspection: Option<Introspector>,
}

impl Authenticator {
    /// The header API keys are read from (the default name when none are configured).
    pub fn api_key_header(&self) -> &str {
        self.api_keys
            .as_ref()
            .map_or("x-api-key", |keys| keys.header.as_str())
    }

    pub fn compile(config: &AuthConfig, redis: Option<&RedisStore>) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .build()
            .map_err(|e| format!("cannot build the auth HTTP client: {e}"))?;
        Ok(Authenticator {
            allow_anonymous: config.allow_anonymous,
            default_tier: config.default_tier.clone(),
            jwt: config
                .jwt
                .as_ref()
                .map(|c| JwtVerifier::compile(c, &client))
                .transpose()?,
            api_keys: config
                .api_keys
                .as_ref()
                .map(|c| ApiKeyStore::compile(c, redis))
                .transpose()?,
            introspection: config
                .introspection
                .as_ref()
                .map(|c| Introspector::compile(c, &client)),
        })
    }

    fn is_noop(&self) -> bool {
        self.allow_anonymous
            && self.jwt.is_none()
            && self.api_keys.is_none()
            && self.introspection.is_none()
    }

    /// The request's principal. An API key header wins over a bearer token; a bearer
    /// token is verified as a JWT when it looks like one (and JWTs are configured),
    /// else introspected. With neither configured the `Authorization` header is left
    /// alone (it may be meant for an upstream).
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        if let Some(store) = &self.api_keys
            && let Some(value) = headers.get(&store.header)
        {
            let entry = store.lookup(value.as_bytes()).await?;
            return Ok(Principal {
                kind: PrincipalKind::ApiKey,
                subject: Some(entry.name.clone()),
                tier: entry
                    .tier
                    .clone()
                    .unwrap_or_else(|| self.default_tier.clone()),
                scopes: BTreeSet::new(),
                claims: Map::new(),
                quota: entry.quota,
            });
        }
        let bearer = (self.jwt.is_some() || self.introspection.is_some())
            .then(|| bearer_token(headers))
            .flatten();
        if let Some(token) = bearer {
            let looks_like_jwt = token.split('.').count() == 3;
            return match (&self.jwt, &self.introspection) {
                (Some(jwt), intro) if looks_like_jwt || intro.is_none() => {
                    let claims = jwt.verify(token).await?;
                    Ok(self.principal(
                        PrincipalKind::Jwt,
                        claims,
                        &jwt.tier_claim,
                        &jwt.scopes_claim,
                    ))
                }
                (_, Some(intro)) => {
                    let claims = intro.introspect(token).await?;
                    Ok(self.principal(
                        PrincipalKind::Introspection,
                        claims,
                        &intro.tier_claim,
                        "scope",
                    ))
                }
                _ => Err(AuthError::Missing),
            };
        }
        if self.allow_anonymous {
            Ok(Principal::anonymous())
        } else {
            Err(AuthError::Missing)
        }
    }

    fn principal(
        &self,
        kind: PrincipalKind,
        claims: Map<String, Json>,
        tier_claim: &str,
        scopes_claim: &str,
    ) -> Principal {
        let subject = claims
            .get("sub")
            .or_else(|| claims.get("username"))
            .or_else(|| claims.get("client_id"))
            .and_then(Json::as_str)
            .map(str::to_string);
        let tier = claims
            .get(tier_claim)
            .and_then(Json::as_str)
            .map_or_else(|| self.default_tier.clone(), str::to_string);
        let mut scopes = BTreeSet::new();
        for claim in [scopes_claim, "scp"] {
            match claims.get(claim) {
                Some(Json::String(s)) => scopes.extend(s.split_whitespace().map(str::to_string)),
                Some(Json::Array(items)) => {
                    scopes.extend(items.iter().filter_map(Json::as_str).map(str::to_string))
                }
                _ => {}
            }
        }
        Principal {
            kind,
            subject,
            tier,
            scopes,
            claims,
            quota: None,
        }
    }

    /// `WWW-Authenticate` challenges for a refusal (RFC 6750 for bearer tokens).
    pub fn challenges(&self, error: &AuthError) -> Vec<HeaderValue> {
        let mut out = Vec::new();
        if self.jwt.is_some() || self.introspection.is_some() || self.api_keys.is_none() {
            let value = match error {
                AuthError::Invalid(description) => format!(
                    "Bearer realm=\"gateway\", error=\"invalid_token\", error_description=\"{}\"",
                    quoted(description)
                ),
                _ => "Bearer realm=\"gateway\"".to_string(),
            };
            out.extend(HeaderValue::from_str(&value).ok());
        }
        if let Some(store) = &self.api_keys {
            out.extend(
                HeaderValue::from_str(&format!(
                    "ApiKey realm=\"gateway\", header=\"{}\"",
                    store.header
                ))
                .ok(),
            );
        }
        out
    }
}

/// Text safe inside a quoted-string of a header.
fn quoted(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            c if c.is_ascii_graphic() || c == ' ' => c,
            _ => '?',
        })
        .collect()
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The edge runtime: authentication and client rate limits.
pub struct Access {
    pub auth: Authenticator,
    pub limiter: Option<RateLimiter>,
    redis: Option<RedisStore>,
    /// Whether requests fail without Redis (`on_error: reject`, API keys kept in
    /// Redis), so that an instance that cannot reach it is not ready. With the local
    /// fallback it stays ready: a Redis outage must not take the whole fleet out of
    /// its load balancer.
    redis_required: bool,
}

impl Access {
    /// `metrics`: where Redis failures are counted.
    pub fn compile(config: &AccessConfig, metrics: &Arc<Metrics>) -> Result<Self, String> {
        let redis = config
            .redis
            .as_ref()
            .map(|r| RedisStore::shared(r, metrics))
            .transpose()?;
        let auth = Authenticator::compile(&config.auth, redis.as_ref())?;
        let shared = redis
            .as_ref()
            .zip(config.redis.as_ref().map(|c| c.on_error));
        let limiter = config
            .rate_limit
            .enabled
            .then(|| RateLimiter::compile(&config.rate_limit, &config.auth.default_tier, shared));
        let redis_required = config.redis.as_ref().is_some_and(|r| {
            (config.rate_limit.enabled && r.on_error == crate::redis_store::RedisFallback::Reject)
                || config.auth.api_keys.as_ref().is_some_and(|k| k.redis)
        });
        Ok(Access {
            auth,
            limiter,
            redis,
            redis_required,
        })
    }

    /// Nothing to do at the edge: every request is anonymous and unlimited.
    pub fn is_noop(&self) -> bool {
        self.auth.is_noop() && self.limiter.is_none()
    }

    /// The Redis that requests cannot do without, for readiness.
    pub fn required_redis(&self) -> Option<&RedisStore> {
        self.redis.as_ref().filter(|_| self.redis_required)
    }

    /// Make the Redis connection before the first request needs it; an unreachable
    /// Redis is logged, not fatal (the fallback applies until it is back).
    pub async fn warm_up(&self) {
        if let Some(redis) = &self.redis {
            match redis.ping().await {
                Ok(()) => tracing::info!(redis = ?redis, "redis connected"),
                Err(error) => {
                    tracing::warn!(redis = ?redis, %error, "redis unreachable at start-up")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_case_insensitively() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer abc"),
        );
        assert_eq!(bearer_token(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer_token(&headers), None);
    }

    #[tokio::test]
    async fn no_credentials_mean_anonymous_or_401() {
        let open = Authenticator::compile(&AuthConfig::default(), None).expect("compiles");
        let p = open
            .authenticate(&HeaderMap::new())
            .await
            .expect("anonymous");
        assert_eq!(p.kind, PrincipalKind::Anonymous);
        assert_eq!(p.tier, "anonymous");
        let closed = Authenticator::compile(
            &AuthConfig {
                allow_anonymous: false,
                ..AuthConfig::default()
            },
            None,
        )
        .expect("compiles");
        assert!(matches!(
            closed.authenticate(&HeaderMap::new()).await,
            Err(AuthError::Missing)
        ));
    }

    #[test]
    fn challenge_descriptions_are_header_safe() {
        assert_eq!(quoted("a \"b\"\n"), "a 'b'?");
    }
}
