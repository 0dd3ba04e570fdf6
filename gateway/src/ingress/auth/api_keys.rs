//! API keys: a header value looked up by its SHA-256 digest, in the config's key list
//! and (in distributed mode) in Redis. Configured digests are compared in constant time
//! and all of them are compared, so timing says nothing about which key came close.

use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;
use subtle::ConstantTimeEq;

use crate::common::config::parse_duration;
use crate::common::digest::{hex, parse_sha256_hex, sha256};
use crate::common::principal::QuotaConfig;
use crate::redis_store::RedisStore;

use super::config::ApiKeysConfig;
use super::error::AuthError;

/// A known key (never the key itself, only its digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEntry {
    pub name: String,
    /// `None`: the configured `auth.default_tier`.
    pub tier: Option<String>,
    pub quota: Option<QuotaConfig>,
}

pub struct ApiKeyStore {
    pub header: HeaderName,
    configured: Vec<([u8; 32], Arc<KeyEntry>)>,
    redis: Option<RedisStore>,
    /// Redis answers (found or not), for `cache_ttl`.
    remembered: moka::sync::Cache<[u8; 32], Option<Arc<KeyEntry>>>,
}

impl ApiKeyStore {
    pub fn compile(config: &ApiKeysConfig, redis: Option<&RedisStore>) -> Result<Self, String> {
        let header = HeaderName::from_bytes(config.header.as_bytes()).map_err(|_| {
            format!(
                "auth.api_keys.header {:?} is not a header name",
                config.header
            )
        })?;
        let mut configured = Vec::new();
        for key in &config.keys {
            let digest = match (&key.key, &key.sha256) {
                (Some(k), _) => sha256(k.as_bytes()),
                (None, Some(d)) => parse_sha256_hex(d)
                    .ok_or_else(|| format!("auth.api_keys ({}): bad sha256", key.name))?,
                (None, None) => return Err(format!("auth.api_keys ({}): no key", key.name)),
            };
            configured.push((
                digest,
                Arc::new(KeyEntry {
                    name: key.name.clone(),
                    tier: key.tier.clone(),
                    quota: key.quota,
                }),
            ));
        }
        Ok(ApiKeyStore {
            header,
            configured,
            redis: if config.redis { redis.cloned() } else { None },
            remembered: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(config.cache_ttl.max(Duration::from_millis(1)))
                .build(),
        })
    }

    /// The entry of a presented key, or why there is none.
    pub async fn lookup(&self, presented: &[u8]) -> Result<Arc<KeyEntry>, AuthError> {
        let digest = sha256(presented);
        let mut found = None;
        for (known, entry) in &self.configured {
            // No early exit: every configured digest is compared.
            if bool::from(known.ct_eq(&digest)) && found.is_none() {
                found = Some(entry.clone());
            }
        }
        if let Some(entry) = found {
            return Ok(entry);
        }
        let Some(redis) = &self.redis else {
            return Err(AuthError::invalid("the API key is not valid"));
        };
        if let Some(remembered) = self.remembered.get(&digest) {
            return remembered.ok_or_else(|| AuthError::invalid("the API key is not valid"));
        }
        let key = redis.key(&format!("apikey:{}", hex(&digest)));
        let fields: Vec<(String, String)> = redis
            .call("api key lookup", |mut c| async move {
                redis::cmd("HGETALL").arg(&key).query_async(&mut c).await
            })
            .await
            .map_err(|_| AuthError::Unavailable("the API key store is unavailable".into()))?;
        let entry = entry_from_hash(&fields).map(Arc::new);
        self.remembered.insert(digest, entry.clone());
        entry.ok_or_else(|| AuthError::invalid("the API key is not valid"))
    }
}

/// A key's Redis hash: `name` (required), `tier`, `quota_requests` + `quota_per`.
fn entry_from_hash(fields: &[(String, String)]) -> Option<KeyEntry> {
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let name = get("name").filter(|n| !n.is_empty())?;
    let quota = match (get("quota_requests"), get("quota_per")) {
        (Some(requests), Some(per)) => Some(QuotaConfig {
            requests: requests.parse().ok().filter(|r| *r > 0)?,
            per: parse_duration(per).ok().filter(|d| !d.is_zero())?,
        }),
        _ => None,
    };
    Some(KeyEntry {
        name: name.to_string(),
        tier: get("tier").map(str::to_string),
        quota,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingress::auth::config::ApiKeyConfig;

    fn config() -> ApiKeysConfig {
        ApiKeysConfig {
            header: "x-api-key".into(),
            keys: vec![
                ApiKeyConfig {
                    name: "alpha".into(),
                    key: Some("alpha-secret-key".into()),
                    sha256: None,
                    tier: Some("pro".into()),
                    quota: None,
                },
                ApiKeyConfig {
                    name: "beta".into(),
                    key: None,
                    sha256: Some(hex(&sha256(b"beta-secret-key"))),
                    tier: None,
                    quota: Some(QuotaConfig {
                        requests: 5,
                        per: Duration::from_secs(60),
                    }),
                },
            ],
            redis: false,
            cache_ttl: Duration::from_secs(30),
        }
    }

    #[tokio::test]
    async fn keys_are_found_by_digest_and_unknown_keys_refused() {
        let store = ApiKeyStore::compile(&config(), None).expect("compiles");
        let alpha = store.lookup(b"alpha-secret-key").await.expect("alpha");
        assert_eq!(alpha.name, "alpha");
        assert_eq!(alpha.tier.as_deref(), Some("pro"));
        let beta = store.lookup(b"beta-secret-key").await.expect("beta");
        assert_eq!(beta.quota.map(|q| q.requests), Some(5));
        assert!(store.lookup(b"alpha-secret-kez").await.is_err());
        assert!(store.lookup(b"").await.is_err());
    }

    #[test]
    fn redis_hashes_become_entries() {
        let fields = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let entry = entry_from_hash(&fields(&[
            ("name", "acme"),
            ("tier", "basic"),
            ("quota_requests", "10"),
            ("quota_per", "1h"),
        ]))
        .expect("entry");
        assert_eq!(entry.tier.as_deref(), Some("basic"));
        assert_eq!(entry.quota.map(|q| q.per), Some(Duration::from_secs(3600)));
        assert!(entry_from_hash(&fields(&[("tier", "basic")])).is_none());
        assert!(entry_from_hash(&[]).is_none());
    }
}
