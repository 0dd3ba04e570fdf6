//! Bearer JWT verification: keys from the config and from JWKS endpoints.
//!
//! The token's header only *selects* keys (by `kid`, else every key); each key carries
//! its own algorithm, and a token whose `alg` differs from its key's is rejected. So
//! `alg: none` and algorithm confusion (an RS256 public key used as an HS256 secret)
//! cannot verify. `exp` is required; `nbf`, `iss` and `aud` are checked with leeway.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use base64::Engine as _;
use jsonwebtoken::Algorithm;
use jsonwebtoken::DecodingKey;
use jsonwebtoken::Validation;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use serde_json::Map;
use serde_json::Value as Json;

use super::config::{JwksConfig, JwtConfig, JwtKeyConfig};
use super::error::AuthError;

/// How long a verified token is remembered.
const VERIFIED_TTL: Duration = Duration::from_secs(60);
/// How many verified tokens are remembered.
const VERIFIED_ENTRIES: u64 = 10_000;

struct Verified {
    claims: Map<String, Json>,
    /// `exp`, in seconds since the epoch.
    exp: u64,
    kid: Option<String>,
    key: Arc<VerifyKey>,
}

/// A key ready to verify with, bound to one algorithm.
pub struct VerifyKey {
    pub kid: Option<String>,
    pub algorithm: Algorithm,
    key: DecodingKey,
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish()
    }
}

pub struct JwtVerifier {
    keys: Vec<Arc<VerifyKey>>,
    jwks: Vec<Jwks>,
    validation: Validation,
    /// Tokens that verified, by their whole text, with their claims: a client sends
    /// the same token with every request, and an RSA signature check costs more than
    /// the rest of the request's auth. Kept [`VERIFIED_TTL`] at most, never past the
    /// token's `exp`, and only while the key that verified it is still known (a key
    /// rotated out of the JWKS stops admitting its tokens at once).
    verified: moka::sync::Cache<Box<str>, Arc<Verified>>,
    leeway: u64,
    pub tier_claim: String,
    pub scopes_claim: String,
}

impl JwtVerifier {
    pub fn compile(config: &JwtConfig, client: &reqwest::Client) -> Result<Self, String> {
        let mut keys = Vec::new();
        for (i, key) in config.keys.iter().enumerate() {
            keys.push(Arc::new(
                static_key(key).map_err(|e| format!("auth.jwt.keys[{i}]: {e}"))?,
            ));
        }
        let jwks = config
            .jwks
            .iter()
            .map(|c| Jwks::new(c, client.clone()))
            .collect();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = config.leeway.as_secs();
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        if !config.issuers.is_empty() {
            validation.set_issuer(&config.issuers);
            required.push("iss");
        }
        if config.audiences.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&config.audiences);
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        Ok(JwtVerifier {
            keys,
            jwks,
            validation,
            verified: moka::sync::Cache::builder()
                .max_capacity(VERIFIED_ENTRIES)
                .time_to_live(VERIFIED_TTL)
                .build(),
            leeway: config.leeway.as_secs(),
            tier_claim: config.tier_claim.clone(),
            scopes_claim: config.scopes_claim.clone(),
        })
    }

    /// Verify a compact JWS and return its claims.
    pub async fn verify(&self, token: &str) -> Result<Map<String, Json>, AuthError> {
        let now = jsonwebtoken::get_current_timestamp();
        if let Some(known) = self.verified.get(token) {
            let current = self.candidates(known.kid.as_deref()).await;
            if known.exp.saturating_add(self.leeway) > now
                && current.iter().any(|k| Arc::ptr_eq(k, &known.key))
            {
                return Ok(known.claims.clone());
            }
            self.verified.invalidate(token);
        }
        let (alg, kid) = read_header(token)?;
        let (claims, key) = self.verify_signed(token, alg, kid.as_deref()).await?;
        // `exp` is required, so a verified token has one.
        if let Some(exp) = claims.get("exp").and_then(Json::as_u64) {
            let known = Verified {
                claims: claims.clone(),
                exp,
                kid,
                key,
            };
            self.verified.insert(token.into(), Arc::new(known));
        }
        Ok(claims)
    }

    /// The claims of a token and the key whose signature they carry.
    async fn verify_signed(
        &self,
        token: &str,
        alg: Algorithm,
        kid: Option<&str>,
    ) -> Result<(Map<String, Json>, Arc<VerifyKey>), AuthError> {
        let candidates = self.candidates(kid).await;
        if candidates.is_empty() {
            return Err(AuthError::invalid(match kid {
                Some(kid) => format!("no key with id `{kid}` is known"),
                None => "no verification key is known".into(),
            }));
        }
        let mut last = None;
        for key in candidates.iter().filter(|k| k.algorithm == alg) {
            let mut validation = self.validation.clone();
            validation.algorithms = vec![key.algorithm];
            match jsonwebtoken::decode::<Map<String, Json>>(token, &key.key, &validation) {
                Ok(data) => return Ok((data.claims, key.clone())),
                // Without a `kid` several keys may fit; try the next one.
                Err(e) if *e.kind() == ErrorKind::InvalidSignature => last = Some(e),
                Err(e) => return Err(AuthError::invalid(describe(e.kind()))),
            }
        }
        Err(match last {
            Some(e) => AuthError::invalid(describe(e.kind())),
            None => AuthError::invalid(format!(
                "the token's algorithm {alg:?} does not match its key's ({})",
                candidates
                    .iter()
                    .map(|k| format!("{:?}", k.algorithm))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        })
    }

    /// Keys that may have signed a token: those with its `kid` (the JWKS is fetched
    /// again, rate-limited, when no key has it), or every key when it has none.
    async fn candidates(&self, kid: Option<&str>) -> Vec<Arc<VerifyKey>> {
        // A configured key without a `kid` fits any token.
        let mut out: Vec<Arc<VerifyKey>> = self
            .keys
            .iter()
            .filter(|k| kid.is_none() || k.kid.is_none() || k.kid.as_deref() == kid)
            .cloned()
            .collect();
        let named = kid.is_some() && out.iter().any(|k| k.kid.as_deref() == kid);
        let mut from_jwks = Vec::new();
        for jwks in &self.jwks {
            from_jwks.extend(jwks.keys(kid).await);
        }
        if from_jwks.is_empty() && kid.is_some() && !named {
            for jwks in &self.jwks {
                jwks.refresh().await;
                from_jwks.extend(jwks.cached(kid));
            }
        }
        out.extend(from_jwks);
        out
    }
}

/// The header's `alg` and `kid`. `alg: none` (any case) is refused outright, before
/// any key is looked at.
fn read_header(token: &str) -> Result<(Algorithm, Option<String>), AuthError> {
    let malformed = || AuthError::invalid("the token is not a well-formed JWT");
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .map_err(|_| malformed())?;
    let header: Json = serde_json::from_slice(&bytes).map_err(|_| malformed())?;
    let alg = header
        .get("alg")
        .and_then(Json::as_str)
        .ok_or_else(malformed)?;
    if alg.eq_ignore_ascii_case("none") {
        return Err(AuthError::invalid(
            "unsigned tokens (`alg: none`) are not accepted",
        ));
    }
    let alg: Algorithm = alg.parse().map_err(|_| {
        AuthError::invalid(format!("the token's algorithm {alg:?} is not supported"))
    })?;
    let kid = header.get("kid").and_then(Json::as_str).map(str::to_string);
    Ok((alg, kid))
}

fn describe(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "the token has expired".into(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (`nbf`)".into(),
        ErrorKind::InvalidAudience => "the token's audience is not accepted".into(),
        ErrorKind::InvalidIssuer => "the token's issuer is not accepted".into(),
        ErrorKind::InvalidSignature => "the token's signature is invalid".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("the token has no `{claim}` claim"),
        ErrorKind::InvalidClaimFormat(claim) => format!("the token's `{claim}` claim is malformed"),
        ErrorKind::InvalidAlgorithm => "the token's algorithm does not match its key".into(),
        _ => "the token is malformed".into(),
    }
}

fn static_key(config: &JwtKeyConfig) -> Result<VerifyKey, String> {
    if let Some(secret) = &config.secret {
        let algorithm = config.algorithm.ok_or("`algorithm` is required")?;
        if !matches!(
            algorithm,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
        ) {
            return Err(format!(
                "a `secret` is for HS256/HS384/HS512, not {algorithm:?}"
            ));
        }
        let key = DecodingKey::from_secret(secret.as_bytes()).map_err(|e| e.to_string())?;
        return Ok(VerifyKey {
            kid: config.kid.clone(),
            algorithm,
            key,
        });
    }
    if let Some(path) = &config.pem_file {
        let algorithm = config.algorithm.ok_or("`algorithm` is required")?;
        let pem =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let key = match algorithm {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => DecodingKey::from_rsa_pem(&pem),
            Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(&pem),
            Algorithm::EdDSA => DecodingKey::from_ed_pem(&pem),
            other => return Err(format!("{other:?} keys are secrets, not PEM files")),
        }
        .map_err(|e| format!("{} is not a {algorithm:?} public key: {e}", path.display()))?;
        return Ok(VerifyKey {
            kid: config.kid.clone(),
            algorithm,
            key,
        });
    }
    if let Some(value) = &config.jwk {
        let jwk: Jwk =
            serde_json::from_value(value.clone()).map_err(|e| format!("invalid JWK: {e}"))?;
        let mut key = from_jwk(&jwk)?;
        if let Some(algorithm) = config.algorithm {
            if jwk.common.key_algorithm.is_some() && key.algorithm != algorithm {
                return Err(format!(
                    "`algorithm: {algorithm:?}` contradicts the JWK's `alg` ({:?})",
                    key.algorithm
                ));
            }
            key.algorithm = algorithm;
        }
        if config.kid.is_some() {
            key.kid = config.kid.clone();
        }
        return Ok(key);
    }
    Err("no key material".into())
}

/// A JWK's verification key; its algorithm from `alg`, else from the key type.
fn from_jwk(jwk: &Jwk) -> Result<VerifyKey, String> {
    let algorithm = match jwk.common.key_algorithm {
        // `KeyAlgorithm` and `Algorithm` share their JOSE names.
        Some(alg) => serde_json::to_value(alg)
            .ok()
            .and_then(|name| serde_json::from_value::<Algorithm>(name).ok())
            .ok_or_else(|| format!("unsupported JWK algorithm {alg:?}"))?,
        None => match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Algorithm::RS256,
            AlgorithmParameters::EllipticCurve(p) => match p.curve {
                EllipticCurve::P256 => Algorithm::ES256,
                EllipticCurve::P384 => Algorithm::ES384,
                _ => return Err("unsupported EC curve".into()),
            },
            AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
                Algorithm::EdDSA
            }
            _ => return Err("the JWK needs an `alg`".into()),
        },
    };
    // The key type must fit the algorithm (an `oct` key claiming RS256 is refused).
    let fits = matches!(
        (&jwk.algorithm, algorithm),
        (
            AlgorithmParameters::OctetKey(_),
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
        ) | (
            AlgorithmParameters::RSA(_),
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
        ) | (
            AlgorithmParameters::EllipticCurve(_),
            Algorithm::ES256 | Algorithm::ES384
        ) | (AlgorithmParameters::OctetKeyPair(_), Algorithm::EdDSA)
    );
    if !fits {
        return Err(format!("the JWK's key type does not fit {algorithm:?}"));
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("invalid JWK: {e}"))?;
    Ok(VerifyKey {
        kid: jwk.common.key_id.clone(),
        algorithm,
        key,
    })
}

/// One JWKS endpoint's keys, cached. Fetches are single-flight (concurrent misses wait
/// for one fetch) and rate-limited (at most one per `min_refetch_interval`), so clients
/// sending unknown `kid`s cannot make the gateway hammer the identity provider.
struct Jwks {
    url: String,
    client: reqwest::Client,
    max_age: Duration,
    min_interval: Duration,
    timeout: Duration,
    keys: ArcSwap<Vec<Arc<VerifyKey>>>,
    /// Bumped after every fetch attempt; waiters compare it to see they were served.
    generation: AtomicU64,
    state: tokio::sync::Mutex<FetchState>,
    /// When the current keys were fetched (none yet: `None`).
    fetched_at: std::sync::Mutex<Option<Instant>>,
}

#[derive(Default)]
struct FetchState {
    last_attempt: Option<Instant>,
}

impl Jwks {
    fn new(config: &JwksConfig, client: reqwest::Client) -> Self {
        Jwks {
            url: config.url.clone(),
            client,
            max_age: config.max_age,
            min_interval: config.min_refetch_interval,
            timeout: config.timeout,
            keys: ArcSwap::from_pointee(Vec::new()),
            generation: AtomicU64::new(0),
            state: tokio::sync::Mutex::new(FetchState::default()),
            fetched_at: std::sync::Mutex::new(None),
        }
    }

    fn cached(&self, kid: Option<&str>) -> Vec<Arc<VerifyKey>> {
        self.keys
            .load()
            .iter()
            .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
            .cloned()
            .collect()
    }

    /// The cached keys, fetched first when there are none yet or they are stale.
    async fn keys(&self, kid: Option<&str>) -> Vec<Arc<VerifyKey>> {
        let stale = self
            .fetched_at
            .lock()
            .map(|t| t.is_none_or(|t| t.elapsed() >= self.max_age))
            .unwrap_or(true);
        if stale {
            self.refresh().await;
        }
        self.cached(kid)
    }

    /// Fetch the key set unless a fetch finished while waiting for the lock, or the
    /// last attempt is more recent than `min_refetch_interval`.
    async fn refresh(&self) {
        let seen = self.generation.load(Ordering::Acquire);
        let mut state = self.state.lock().await;
        if self.generation.load(Ordering::Acquire) != seen {
            return;
        }
        if state
            .last_attempt
            .is_some_and(|t| t.elapsed() < self.min_interval)
        {
            return;
        }
        state.last_attempt = Some(Instant::now());
        match self.fetch().await {
            Ok(keys) => {
                tracing::info!(jwks = %self.url, keys = keys.len(), "JWKS fetched");
                self.keys.store(Arc::new(keys));
                if let Ok(mut t) = self.fetched_at.lock() {
                    *t = Some(Instant::now());
                }
            }
            Err(error) => {
                // Keep serving the keys we have.
                tracing::warn!(jwks = %self.url, %error, "JWKS fetch failed");
            }
        }
        self.generation.fetch_add(1, Ordering::Release);
    }

    async fn fetch(&self) -> Result<Vec<Arc<VerifyKey>>, String> {
        let response = self
            .client
            .get(&self.url)
            .header(http::header::ACCEPT, "application/json")
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status()));
        }
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        let set: Json = serde_json::from_slice(&body).map_err(|e| format!("not JSON: {e}"))?;
        let entries = set
            .get("keys")
            .and_then(Json::as_array)
            .ok_or("no `keys` array")?;
        let mut keys = Vec::new();
        for entry in entries {
            let Ok(jwk) = serde_json::from_value::<Jwk>(entry.clone()) else {
                continue;
            };
            // Encryption keys and symmetric keys have no business in a public JWKS.
            if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption))
                || matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_))
            {
                continue;
            }
            match from_jwk(&jwk) {
                Ok(key) => keys.push(Arc::new(key)),
                Err(e) => tracing::debug!(jwks = %self.url, error = %e, "JWK skipped"),
            }
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(value: &Json) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
    }

    #[test]
    fn alg_none_is_refused_before_any_key() {
        let token = format!(
            "{}.{}.",
            b64(&serde_json::json!({"alg": "none", "typ": "JWT"})),
            b64(&serde_json::json!({"sub": "x", "exp": 9999999999u64}))
        );
        let err = read_header(&token).expect_err("none");
        assert!(err.to_string().contains("alg: none"), "{err}");
        let token = format!("{}.e30.", b64(&serde_json::json!({"alg": "NoNe"})));
        assert!(read_header(&token).is_err());
        assert!(read_header("not-a-token").is_err());
    }

    #[test]
    fn an_rsa_jwk_cannot_claim_an_hmac_algorithm() {
        let jwk: Jwk = serde_json::from_value(serde_json::json!({
            "kty": "RSA", "alg": "HS256", "n": "AQAB", "e": "AQAB"
        }))
        .expect("jwk");
        assert!(from_jwk(&jwk).is_err());
    }
}
