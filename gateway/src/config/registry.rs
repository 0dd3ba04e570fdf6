//! `registry:` in the config file: where a fleet gets its supergraph from.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::common::config::duration;

/// A supergraph published by a schema registry (Hive's CDN artifact endpoint, or any
/// HTTP server that serves the SDL), polled with `If-None-Match`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// The supergraph SDL's URL, e.g.
    /// `https://cdn.graphql-hive.com/artifacts/v1/<target>/supergraph`.
    pub url: String,
    /// A header sent with every poll, e.g. `X-Hive-CDN-Key`.
    #[serde(default)]
    pub key_header: Option<String>,
    /// Its value (use `${VAR}`, so that the key stays out of the file).
    #[serde(default)]
    pub key: Option<String>,
    /// How often to ask for a newer supergraph; each wait is shortened by a random part
    /// of up to `jitter` so that a fleet does not poll in step.
    #[schemars(with = "crate::common::config::DurationText")]
    #[serde(default = "ten_seconds", with = "duration")]
    pub poll_interval: Duration,
    #[schemars(with = "crate::common::config::DurationText")]
    #[serde(default = "two_seconds", with = "duration")]
    pub jitter: Duration,
    /// Bound of one poll, connecting included.
    #[schemars(with = "crate::common::config::DurationText")]
    #[serde(default = "ten_seconds", with = "duration")]
    pub timeout: Duration,
    /// The last good supergraph is kept here, so that an instance can start while the
    /// registry is unreachable (relative to the config file).
    #[serde(default)]
    pub cache_file: Option<PathBuf>,
}

fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}
fn two_seconds() -> Duration {
    Duration::from_secs(2)
}

impl RegistryConfig {
    /// `gateway run --supergraph-url URL`: the defaults, with a key from the
    /// environment when one is set.
    pub fn for_url(url: &str, key_header: &str, key: Option<String>) -> Self {
        RegistryConfig {
            url: url.to_string(),
            key_header: key.is_some().then(|| key_header.to_string()),
            key,
            poll_interval: ten_seconds(),
            jitter: two_seconds(),
            timeout: ten_seconds(),
            cache_file: None,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        let url = reqwest::Url::parse(&self.url)
            .map_err(|e| format!("registry.url {:?} is invalid: {e}", self.url))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("registry.url {:?} must be http(s)", self.url));
        }
        match (&self.key_header, &self.key) {
            (Some(name), Some(value)) => {
                http::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| format!("registry.key_header {name:?} is not a header name"))?;
                http::HeaderValue::from_str(value)
                    .map_err(|_| "registry.key is not a valid header value".to_string())?;
            }
            (None, None) => {}
            _ => return Err("registry: set both `key_header` and `key`, or neither".into()),
        }
        if self.poll_interval.is_zero() || self.timeout.is_zero() {
            return Err("registry.poll_interval and registry.timeout must be positive".into());
        }
        if self.jitter >= self.poll_interval {
            return Err("registry.jitter must be shorter than registry.poll_interval".into());
        }
        Ok(())
    }
}
