//! A development JWT issuer, so the example gateway verifies real bearer tokens (the
//! `web` and `mobile` BFFs use `auth.mode: jwt`) without an identity provider: one
//! Ed25519 key, published as a JWKS at [`JWKS_PATH`], and a token endpoint at
//! [`TOKEN_PATH`] (`GET ?sub=alice&tier=pro&scope=a%20b&ttl=3600`). [`mint`] signs the
//! same tokens in-process (`gateway dev-token`).
//!
//! The private key is written in this file, so anyone can mint tokens it verifies:
//! trust it only on a developer's machine, never in a deployed config.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `iss` claim of every token, and what the example config accepts.
pub const ISSUER: &str = "gateway-dev-issuer";
/// The `kid` of the one key.
pub const KEY_ID: &str = "gateway-dev-ed25519";
pub const JWKS_PATH: &str = "/dev-issuer/jwks.json";
pub const TOKEN_PATH: &str = "/dev-issuer/token";
/// Longest lifetime a dev token may ask for: 30 days.
pub const MAX_TTL_SECS: u64 = 30 * 24 * 3600;

/// The key's 32-byte Ed25519 seed (RFC 8032): public on purpose.
const SEED: &[u8; 32] = b"gateway-dev-issuer-not-a-secret!";
/// PKCS#8 v1 wrapping of an Ed25519 private key (RFC 8410), which precedes the seed.
const PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

fn key() -> EncodingKey {
    let mut der = PKCS8_PREFIX.to_vec();
    der.extend_from_slice(SEED);
    EncodingKey::from_ed_der(&der)
}

/// What a dev token says about its holder.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevToken {
    pub sub: String,
    /// The rate-limit tier claim (`tier`).
    #[serde(default)]
    pub tier: Option<String>,
    /// Space-separated scopes (`scope`), for `@requiresScopes`.
    #[serde(default)]
    pub scope: Option<String>,
    /// Lifetime in seconds (default one hour, at most [`MAX_TTL_SECS`]).
    #[serde(default = "hour")]
    pub ttl: u64,
}

fn hour() -> u64 {
    3600
}

/// Why a token was not minted.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error("`sub` must not be empty")]
    EmptySubject,
    #[error("`ttl` must be between 1 and {MAX_TTL_SECS} seconds")]
    Ttl,
    #[error("signing failed: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

/// A signed token for `token`, valid from now for its `ttl`.
pub fn mint(token: &DevToken) -> Result<String, MintError> {
    if token.sub.trim().is_empty() {
        return Err(MintError::EmptySubject);
    }
    if token.ttl == 0 || token.ttl > MAX_TTL_SECS {
        return Err(MintError::Ttl);
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut claims = json!({
        "iss": ISSUER,
        "sub": token.sub,
        "iat": now,
        "exp": now + token.ttl,
    });
    if let Some(tier) = &token.tier {
        claims["tier"] = tier.as_str().into();
    }
    if let Some(scope) = &token.scope {
        claims["scope"] = scope.as_str().into();
    }
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(KEY_ID.into());
    Ok(jsonwebtoken::encode(&header, &claims, &key())?)
}

/// The issuer's JWKS: its one public key.
pub fn jwks() -> Result<Value, MintError> {
    let mut jwk = Jwk::from_encoding_key(&key(), Algorithm::EdDSA)?;
    jwk.common.key_id = Some(KEY_ID.into());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    Ok(json!({ "keys": [jwk] }))
}

/// The JWKS and token routes.
pub(crate) fn router() -> Router {
    Router::new()
        .route(JWKS_PATH, get(serve_jwks))
        .route(TOKEN_PATH, get(serve_token))
}

async fn serve_jwks() -> Response {
    match jwks() {
        Ok(set) => axum::Json(set).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// An OAuth2-style token response (RFC 6749 §5.1); bad parameters are a 400.
async fn serve_token(Query(token): Query<DevToken>) -> Response {
    match mint(&token) {
        Ok(access_token) => axum::Json(json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": token.ttl,
        }))
        .into_response(),
        Err(e @ MintError::Sign(_)) => {
            (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
        }
        Err(e) => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_request", "error_description": e.to_string()})),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    #[test]
    fn minted_tokens_verify_with_the_published_key() {
        let token = mint(&DevToken {
            sub: "alice".into(),
            tier: Some("pro".into()),
            scope: Some("read:orders".into()),
            ttl: 60,
        })
        .expect("mint");
        let set: jsonwebtoken::jwk::JwkSet =
            serde_json::from_value(jwks().expect("jwks")).expect("a JWKS");
        let jwk = set.find(KEY_ID).expect("the key");
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        let claims = jsonwebtoken::decode::<Value>(
            &token,
            &DecodingKey::from_jwk(jwk).expect("key"),
            &validation,
        )
        .expect("verifies")
        .claims;
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["tier"], "pro");
        assert_eq!(claims["scope"], "read:orders");
    }

    #[test]
    fn bad_requests_are_refused() {
        let ask = |sub: &str, ttl| {
            mint(&DevToken {
                sub: sub.into(),
                tier: None,
                scope: None,
                ttl,
            })
        };
        assert!(matches!(ask(" ", 60), Err(MintError::EmptySubject)));
        assert!(matches!(ask("a", 0), Err(MintError::Ttl)));
        assert!(matches!(ask("a", MAX_TTL_SECS + 1), Err(MintError::Ttl)));
    }
}
