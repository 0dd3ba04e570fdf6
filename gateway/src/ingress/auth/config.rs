//! `auth:` in the config file: how clients prove who they are. These types only
//! describe; [`super::Authenticator::compile`] turns them into the runtime once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jsonwebtoken::Algorithm;
use serde::Deserialize;

use crate::bff::config::Verifiers;
use crate::common::config::duration;
use crate::common::digest::parse_sha256_hex;
use crate::common::principal::QuotaConfig;

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Serve requests that carry no credentials, as the anonymous principal (tier
    /// `anonymous`). When false they get `401`. Invalid credentials are always `401`.
    #[serde(default = "yes")]
    pub allow_anonymous: bool,
    /// Rate-limit tier of authenticated clients that do not name one.
    #[serde(default = "free")]
    pub default_tier: String,
    #[serde(default)]
    pub jwt: Option<JwtConfig>,
    #[serde(default)]
    pub api_keys: Option<ApiKeysConfig>,
    #[serde(default)]
    pub introspection: Option<IntrospectionConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            allow_anonymous: true,
            default_tier: free(),
            jwt: None,
            api_keys: None,
            introspection: None,
        }
    }
}

/// Bearer JWTs, verified with configured keys and/or keys from JWKS endpoints.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// Accepted `iss` values; when set, tokens must carry one of them.
    #[serde(default)]
    pub issuers: Vec<String>,
    /// Accepted `aud` values; when set, tokens must carry one of them.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf`.
    #[schemars(with = "crate::common::config::DurationText")]
    #[serde(default = "s30", with = "duration")]
    pub leeway: Duration,
    #[serde(default)]
    pub keys: Vec<JwtKeyConfig>,
    #[serde(default)]
    pub jwks: Vec<JwksConfig>,
    /// Claim naming the rate-limit tier.
    #[serde(default = "tier")]
    pub tier_claim: String,
    /// Claim with the scopes: a space-separated string (`scope`) or a list (`scp`).
    #[serde(default = "scope")]
    pub scopes_claim: String,
}

/// One verification key. Its algorithm is fixed here (or by the JWK); a token's `alg`
/// header only selects among keys, it never chooses how a key is used.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JwtKeyConfig {
    /// Matched against the token's `kid` header.
    #[serde(default)]
    pub kid: Option<String>,
    /// `HS256`, `RS256`, `ES256`, `EdDSA`, ...; required for `secret` and `pem_file`,
    /// taken from the JWK otherwise.
    #[serde(default)]
    #[schemars(with = "Option<AlgorithmName>")]
    pub algorithm: Option<Algorithm>,
    /// HMAC secret (use `${ENV}` expansion).
    #[serde(default)]
    pub secret: Option<String>,
    /// A PEM public key file, relative to the config file.
    #[serde(default)]
    pub pem_file: Option<PathBuf>,
    /// A JWK, inline.
    #[serde(default)]
    pub jwk: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JwksConfig {
    pub url: String,
    /// Keys are fetched again when older than this.
    #[schemars(with = "crate::common::config::DurationText")]
    #[serde(default = "m10", with = "duration")]
    pub max_age: Duration,
    /// At most one fetch per this interval, whatever unknown `kid`s clients send.
    #[schemars(with = "crate::common::config::DurationText")]
    #[serde(default = "s30", with = "duration")]
    pub min_refetch_interval: Duration,
    #[schemars(with = "crate::common::config::DurationText")]
    #[serde(default = "s2", with = "duration")]
    pub timeout: Duration,
}

/// API keys in a header, looked up by their SHA-256 digest.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeysConfig {
    #[serde(default = "api_key_header")]
    pub header: String,
    #[serde(default)]
    pub keys: Vec<ApiKeyConfig>,
    /// Also look keys up in Redis (`<prefix>apikey:<sha256 hex>`, a hash with `name`,
    /// `tier` and optionally `quota_requests` / `quota_per`); needs `redis:`.
    #[serde(default)]
    pub redis: bool,
    /// How long a Redis lookup (found or not) is remembered.
    #[schemars(with = "crate::common::config::DurationText")]
    #[serde(default = "s30", with = "duration")]
    pub cache_ttl: Duration,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    pub name: String,
    /// The key itself (use `${ENV}` expansion) ...
    #[serde(default)]
    pub key: Option<String>,
    /// ... or its SHA-256 digest in hex, so the config holds no secret.
    #[serde(default)]
    pub sha256: Option<String>,
    /// Rate-limit tier; `auth.default_tier` when absent.
    #[serde(default)]
    pub tier: Option<String>,
    #[serde(default)]
    pub quota: Option<QuotaConfig>,
}

/// OAuth2 token introspection (RFC 7662) of opaque bearer tokens.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntrospectionConfig {
    pub url: String,
    pub client_id: String,
    pub client_secret: String,
    /// Results are remembered this long (never past the token's `exp`).
    #[schemars(with = "crate::common::config::DurationText")]
    #[serde(default = "s30", with = "duration")]
    pub cache_ttl: Duration,
    #[schemars(with = "crate::common::config::DurationText")]
    #[serde(default = "s2", with = "duration")]
    pub timeout: Duration,
    #[serde(default = "tier")]
    pub tier_claim: String,
}

impl AuthConfig {
    /// What the configured verifiers accept, for the BFFs' auth modes.
    pub fn verifiers(&self) -> Verifiers {
        Verifiers {
            bearer: self.jwt.is_some() || self.introspection.is_some(),
            api_key: self.api_keys.is_some(),
        }
    }

    /// Point every JWKS whose URL has `path` at `url` instead: how the dev setup and
    /// tests aim the example config at the mocks' issuer on an ephemeral port.
    pub fn redirect_jwks(&mut self, path: &str, url: &str) {
        let Some(jwt) = &mut self.jwt else { return };
        for jwks in &mut jwt.jwks {
            if reqwest::Url::parse(&jwks.url).is_ok_and(|u| u.path() == path) {
                jwks.url = url.to_string();
            }
        }
    }

    /// Files named in the config are relative to the config file.
    pub fn resolve_paths(&mut self, base: &Path) {
        if let Some(jwt) = &mut self.jwt {
            for key in &mut jwt.keys {
                if let Some(file) = &mut key.pem_file {
                    *file = base.join(&*file);
                }
            }
        }
    }

    /// Checks that need no I/O; key material is checked when the runtime is built.
    pub fn validate(&self, has_redis: bool) -> Result<(), String> {
        if let Some(jwt) = &self.jwt {
            if jwt.keys.is_empty() && jwt.jwks.is_empty() {
                return Err("auth.jwt: give `keys` or `jwks` (or both)".into());
            }
            for (i, key) in jwt.keys.iter().enumerate() {
                let given = [
                    key.secret.is_some(),
                    key.pem_file.is_some(),
                    key.jwk.is_some(),
                ];
                if given.iter().filter(|g| **g).count() != 1 {
                    return Err(format!(
                        "auth.jwt.keys[{i}]: give exactly one of `secret`, `pem_file` or `jwk`"
                    ));
                }
                if (key.secret.is_some() || key.pem_file.is_some()) && key.algorithm.is_none() {
                    return Err(format!(
                        "auth.jwt.keys[{i}]: `algorithm` is required with `secret` and `pem_file` (for example HS256, RS256, ES256, EdDSA)"
                    ));
                }
                if key.secret.as_ref().is_some_and(|s| s.len() < 16) {
                    return Err(format!(
                        "auth.jwt.keys[{i}]: the HMAC secret is too short (at least 16 bytes)"
                    ));
                }
            }
            for (i, jwks) in jwt.jwks.iter().enumerate() {
                let url = reqwest::Url::parse(&jwks.url)
                    .map_err(|e| format!("auth.jwt.jwks[{i}]: invalid url {:?}: {e}", jwks.url))?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(format!("auth.jwt.jwks[{i}]: url must be http or https"));
                }
            }
        }
        if let Some(api) = &self.api_keys {
            http::HeaderName::from_bytes(api.header.as_bytes()).map_err(|_| {
                format!("auth.api_keys.header {:?} is not a header name", api.header)
            })?;
            if api.redis && !has_redis {
                return Err("auth.api_keys.redis needs a `redis:` section".into());
            }
            for (i, key) in api.keys.iter().enumerate() {
                if key.name.is_empty() {
                    return Err(format!("auth.api_keys.keys[{i}]: `name` is empty"));
                }
                if api.keys[..i].iter().any(|k| k.name == key.name) {
                    return Err(format!(
                        "auth.api_keys.keys[{i}]: the name `{}` is used twice",
                        key.name
                    ));
                }
                match (&key.key, &key.sha256) {
                    (Some(k), None) if !k.is_empty() => {}
                    (None, Some(d)) if parse_sha256_hex(d).is_some() => {}
                    (None, Some(_)) => {
                        return Err(format!(
                            "auth.api_keys.keys[{i}] ({}): `sha256` must be 64 hex digits",
                            key.name
                        ));
                    }
                    _ => {
                        return Err(format!(
                            "auth.api_keys.keys[{i}] ({}): give exactly one of `key` or `sha256`",
                            key.name
                        ));
                    }
                }
                if let Some(q) = &key.quota
                    && (q.requests == 0 || q.per.is_zero())
                {
                    return Err(format!(
                        "auth.api_keys.keys[{i}] ({}): quota needs positive `requests` and `per`",
                        key.name
                    ));
                }
            }
        }
        if let Some(intro) = &self.introspection {
            reqwest::Url::parse(&intro.url)
                .map_err(|e| format!("auth.introspection: invalid url {:?}: {e}", intro.url))?;
        }
        Ok(())
    }

    /// The tiers named by configured API keys (checked against `rate_limit.tiers`).
    pub fn named_tiers(&self) -> Vec<(String, String)> {
        let mut out = vec![("auth.default_tier".to_string(), self.default_tier.clone())];
        if let Some(api) = &self.api_keys {
            for key in &api.keys {
                if let Some(tier) = &key.tier {
                    out.push((format!("auth.api_keys ({})", key.name), tier.clone()));
                }
            }
        }
        out
    }
}

fn yes() -> bool {
    true
}
fn free() -> String {
    "free".into()
}
fn tier() -> String {
    "tier".into()
}
fn scope() -> String {
    "scope".into()
}
fn api_key_header() -> String {
    "x-api-key".into()
}
fn s2() -> Duration {
    Duration::from_secs(2)
}
fn s30() -> Duration {
    Duration::from_secs(30)
}
fn m10() -> Duration {
    Duration::from_secs(600)
}

#[cfg(test)]
mod tests {
    #[test]
    fn unreadable_or_wrong_keys_fail_at_start_up() {
        let auth: super::AuthConfig = serde_norway::from_str(
            "jwt:\n  keys: [{ algorithm: RS256, pem_file: /nonexistent/key.pem }]\n",
        )
        .expect("valid section");
        let access = crate::ingress::auth::AccessConfig {
            auth,
            ..Default::default()
        };
        let err = crate::ingress::auth::Access::compile(&access, &Default::default())
            .err()
            .expect("missing file");
        assert!(err.contains("cannot read /nonexistent/key.pem"), "{err}");
    }
}

/// The JSON Schema of a key's `algorithm`: the names `jsonwebtoken::Algorithm` reads.
#[derive(schemars::JsonSchema)]
#[allow(dead_code, clippy::upper_case_acronyms)]
enum AlgorithmName {
    HS256,
    HS384,
    HS512,
    ES256,
    ES384,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    EdDSA,
}
