//! CORS settings of a GraphQL endpoint: the gateway's `edge.cors` and a BFF file's own
//! `cors:` share them; the ingress turns them into a layer.

use std::time::Duration;

use serde::Deserialize;

use super::config::duration_opt;

/// CORS for browser clients. Off (no CORS headers) unless origins are listed.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CorsConfig {
    /// Exact origins (`https://app.example.com`), or `"*"` for any origin.
    #[serde(default)]
    pub allow_origins: Vec<String>,
    /// Request headers browsers may send (besides the CORS-safelisted ones).
    #[serde(default = "default_cors_headers")]
    pub allow_headers: Vec<String>,
    #[serde(default)]
    pub allow_credentials: bool,
    #[schemars(with = "Option<crate::common::config::DurationText>")]
    #[serde(default, with = "duration_opt")]
    pub max_age: Option<Duration>,
}

fn default_cors_headers() -> Vec<String> {
    ["content-type", "authorization", "x-api-key", "x-request-id"]
        .map(String::from)
        .to_vec()
}
