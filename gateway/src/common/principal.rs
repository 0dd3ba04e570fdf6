//! Who a request acts for: made by client authentication at the edge, read by
//! field authorization, the rate limiter, and the policies that pass verified claims
//! to sources.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value as Json};

use super::config::duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    Anonymous,
    Jwt,
    ApiKey,
    Introspection,
}

/// Who a request acts for.
#[derive(Debug, Clone)]
pub struct Principal {
    pub kind: PrincipalKind,
    /// The token's `sub`, or the API key's name.
    pub subject: Option<String>,
    /// Rate-limit tier.
    pub tier: String,
    pub scopes: BTreeSet<String>,
    /// Verified claims (JWT payload, introspection answer); empty otherwise.
    pub claims: Map<String, Json>,
    /// An API key's own quota.
    pub quota: Option<QuotaConfig>,
}

impl Principal {
    pub fn anonymous() -> Self {
        Principal {
            kind: PrincipalKind::Anonymous,
            subject: None,
            tier: "anonymous".into(),
            scopes: BTreeSet::new(),
            claims: Map::new(),
            quota: None,
        }
    }

    pub fn is_authenticated(&self) -> bool {
        self.kind != PrincipalKind::Anonymous
    }
}

/// A per-key quota on top of the tier's rate limit: `requests` per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaConfig {
    pub requests: u64,
    #[schemars(with = "crate::common::config::DurationText")]
    #[serde(with = "duration")]
    pub per: Duration,
}
