//! The gateway config file (YAML): which subgraphs make up the graph, where to listen,
//! request limits. Read once, `${ENV}`-expanded, validated with clear messages, then
//! compiled into runtime types; the request path never reads raw config.
//!
//! This room only assembles: each section's type is owned by the stage it configures
//! (`auth` by the ingress, `upstream` by the policy stack, `redis` by the Redis store,
//! ...), and the helpers every section shares sit in [`crate::common::config`].

mod registry;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::bff::config::QueryLimits;
pub use crate::common::config::ConfigError;
use crate::common::config::duration_opt;
use crate::ingress::EdgeConfig;
use crate::ingress::auth::AuthConfig;
use crate::ingress::ratelimit::RateLimitConfig;
use crate::ingress::tls::TlsConfig;
use crate::policy::UpstreamConfig;
use crate::policy::balance::{self, VersionConfig};
use crate::redis_store::RedisConfig;
pub use crate::sources::SchemaSource;
use crate::sources::SourceKind;
use crate::telemetry::config::TelemetryConfig;
pub use registry::RegistryConfig;

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to serve on, e.g. `127.0.0.1:4000`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// TLS termination on the listener (HTTPS, optionally mTLS); plain HTTP without it.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// A precomposed Federation 2 supergraph SDL file (instead of `subgraphs`).
    #[serde(default)]
    pub supergraph: Option<PathBuf>,
    /// Subgraphs to compose into the supergraph.
    #[serde(default)]
    pub subgraphs: Vec<SubgraphConfig>,
    /// The supergraph from a schema registry, polled (instead of `supergraph` or
    /// `subgraphs`).
    #[serde(default)]
    pub registry: Option<RegistryConfig>,
    #[serde(default)]
    pub limits: Limits,
    /// The policy stack of every upstream fetch: defaults and per-source overrides.
    #[serde(default)]
    pub upstream: UpstreamConfig,
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// HTTP edge settings of the GraphQL endpoints: CORS and response compression.
    #[serde(default)]
    pub edge: EdgeConfig,
    /// BFF definition files (`bffs/mobile.yaml`), relative to this file.
    #[serde(default)]
    pub bffs: Vec<PathBuf>,
    /// Client authentication: JWTs, API keys, token introspection (`docs/auth.md`).
    #[serde(default)]
    pub auth: AuthConfig,
    /// Client rate limits by tier.
    #[serde(default)]
    pub rate_limit: RateLimitConfig,
    /// Distributed mode: rate limits, API keys and the response cache shared through
    /// Redis by every instance.
    #[serde(default)]
    pub redis: Option<RedisConfig>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubgraphConfig {
    pub name: String,
    /// GraphQL endpoint, REST base URL (`http://host:port[/prefix]`), or gRPC endpoint
    /// (`http://host:port` plaintext HTTP/2, or `https://host:port` with the source's
    /// `upstream` TLS settings). Exactly one of `url`, `urls`,
    /// `versions`.
    #[serde(default)]
    pub url: Option<String>,
    /// Several instances of a GraphQL subgraph, load balanced
    /// (`upstream.load_balancing`, `upstream.passive_health`).
    #[serde(default)]
    pub urls: Option<Vec<String>>,
    /// Versions of a GraphQL subgraph sharing its traffic by weight (canary releases).
    #[serde(default)]
    pub versions: Option<Vec<VersionConfig>>,
    /// A client header naming the version a request must go to (`x-canary-version`).
    #[serde(default)]
    pub version_header: Option<String>,
    /// `graphql` (default), `rest` or `grpc`: see `docs/sources.md`.
    #[serde(default)]
    pub kind: SourceKind,
    pub schema: SchemaSource,
    /// `.proto` files of a gRPC source, relative to the config file.
    #[serde(default)]
    pub protos: Vec<PathBuf>,
    /// Shorthand for `upstream.sources.<name>.timeout`, e.g. `"5s"`.
    #[schemars(with = "Option<crate::common::config::DurationText>")]
    #[serde(default, with = "duration_opt")]
    pub timeout: Option<Duration>,
}

impl SubgraphConfig {
    /// The URL composition records (`join__graph`) and introspection uses: `url`, or
    /// the first instance of `urls` / `versions`.
    pub fn primary_url(&self) -> &str {
        let versions = self.versions.iter().flatten();
        self.url
            .iter()
            .chain(self.urls.iter().flatten())
            .chain(versions.flat_map(|v| v.url.iter().chain(v.urls.iter().flatten())))
            .next()
            .map_or("", String::as_str)
    }
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest accepted request body in bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// The longest one request may take, on every endpoint, retries and every plan
    /// step included: each attempt's `upstream.timeout` is cut to what is left, and
    /// no retry starts that could not finish in time. A BFF's `limits.deadline`
    /// overrides it; `0s` turns it off. Subscriptions have none.
    #[schemars(with = "crate::common::config::DurationText")]
    #[serde(default = "default_deadline", with = "crate::common::config::duration")]
    pub deadline: Duration,
    /// The unified endpoint's operation limits, with the keys of a BFF's `limits:`.
    /// A `graphql:` section replaces the defaults (keys it leaves out are off);
    /// `graphql: null` turns them all off.
    #[serde(default = "default_graphql_limits")]
    pub graphql: Option<QueryLimits>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: default_max_body(),
            deadline: default_deadline(),
            graphql: default_graphql_limits(),
        }
    }
}

fn default_deadline() -> Duration {
    Duration::from_secs(30)
}

/// What the gateway refuses before any upstream sees it, like production routers: a
/// depth a real client never needs (introspection is exempt: it is answered here),
/// alias floods, and costs far above the example graph's richest query.
fn default_graphql_limits() -> Option<QueryLimits> {
    Some(QueryLimits {
        max_depth: Some(32),
        max_aliases: Some(100),
        max_cost: Some(1_000_000),
        ..QueryLimits::default()
    })
}

fn default_listen() -> String {
    "127.0.0.1:4000".into()
}
fn default_max_body() -> usize {
    2 * 1024 * 1024
}

impl Config {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_with(path, |name| std::env::var(name).ok())
    }

    /// [`Config::load`] with `${VAR}` values from `env` instead of the process
    /// environment.
    pub fn load_with(
        path: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Self::parse(&text, env).map_err(|message| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        })?;
        // Files named in the config are relative to the config file.
        let base = path.parent().unwrap_or(Path::new("."));
        if let Some(s) = &mut config.supergraph {
            *s = base.join(&*s);
        }
        if let Some(cache) = config.registry.as_mut().and_then(|r| r.cache_file.as_mut()) {
            *cache = base.join(&*cache);
        }
        for b in &mut config.bffs {
            *b = base.join(&*b);
        }
        for subgraph in &mut config.subgraphs {
            if let Some(file) = &mut subgraph.schema.file {
                *file = base.join(&*file);
            }
            for proto in &mut subgraph.protos {
                *proto = base.join(&*proto);
            }
        }
        config.auth.resolve_paths(base);
        if let Some(tls) = &mut config.tls {
            tls.cert_file = base.join(&tls.cert_file);
            tls.key_file = base.join(&tls.key_file);
            if let Some(ca) = &mut tls.client_ca_file {
                *ca = base.join(&*ca);
            }
        }
        config.upstream.resolve_paths(base);
        if let Some(redis) = &mut config.redis {
            redis.resolve_paths(base);
        }
        Ok(config)
    }

    /// Parse YAML text after `${VAR}` expansion; errors are human-readable.
    pub fn parse(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let expanded = expand_env(text, env)?;
        let config: Config = serde_norway::from_str(&expanded).map_err(|e| e.to_string())?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        let origins = [
            self.supergraph.is_some(),
            !self.subgraphs.is_empty(),
            self.registry.is_some(),
        ];
        match origins.iter().filter(|set| **set).count() {
            0 => {
                return Err(
                    "no schema: set `supergraph` (a precomposed SDL file), list `subgraphs`, or set `registry`"
                        .into(),
                );
            }
            1 => {}
            _ => {
                return Err(
                    "set one of `supergraph`, `subgraphs` and `registry`, not several".into(),
                );
            }
        }
        if let Some(registry) = &self.registry {
            registry.validate()?;
        }
        for (i, s) in self.subgraphs.iter().enumerate() {
            if s.name.is_empty() {
                return Err(format!("subgraphs[{i}]: `name` is empty"));
            }
            if self.subgraphs[..i].iter().any(|o| o.name == s.name) {
                return Err(format!(
                    "subgraphs[{i}]: the name `{}` is used twice",
                    s.name
                ));
            }
            let entry = format!("subgraphs[{i}] ({})", s.name);
            let targets = [s.url.is_some(), s.urls.is_some(), s.versions.is_some()];
            if targets.iter().filter(|given| **given).count() != 1 {
                return Err(format!(
                    "{entry}: set exactly one of `url`, `urls` (several instances) or `versions` (weighted versions)"
                ));
            }
            if s.kind != SourceKind::Graphql && s.url.is_none() {
                return Err(format!(
                    "{entry}: `urls` and `versions` are for GraphQL subgraphs; a {} source has one `url`",
                    s.kind
                ));
            }
            balance::validate(
                &entry,
                s.urls.as_ref(),
                s.versions.as_ref(),
                s.version_header.as_ref(),
            )?;
            crate::sources::check_entry(&entry, s.kind, s.primary_url(), &s.schema, &s.protos)?;
        }
        let names: Vec<&str> = self.subgraphs.iter().map(|s| s.name.as_str()).collect();
        if !names.is_empty() {
            self.upstream.validate(&names)?;
        }
        if self.edge.cors.allow_credentials && self.edge.cors.allow_origins.iter().any(|o| o == "*")
        {
            return Err("edge.cors: `allow_credentials` cannot be used with the `*` origin; list the origins".into());
        }
        self.upstream.validate_tls()?;
        if let Some(tls) = &self.tls
            && tls.client_auth.is_some()
            && tls.client_ca_file.is_none()
        {
            return Err(
                "tls: `client_auth` needs `client_ca_file` (the CA client certificates chain to)"
                    .into(),
            );
        }
        if self.limits.max_body_bytes == 0 {
            return Err("limits.max_body_bytes must be positive".into());
        }
        if let Some(redis) = &self.redis {
            redis.validate()?;
        }
        self.auth.validate(self.redis.is_some())?;
        self.rate_limit.validate(&self.auth.named_tiers())?;
        Ok(())
    }
}

/// The JSON Schemas of the config files, by the name they are checked in under in
/// `schemas/` (`gateway.schema.json` for this file, `bff.schema.json` for BFF files), so
/// that editors complete and check them (`# yaml-language-server: $schema=...`).
pub fn json_schemas() -> Vec<(&'static str, String)> {
    let pretty = |schema: schemars::Schema| {
        let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
        text.push('\n');
        text
    };
    vec![
        ("gateway.schema.json", pretty(schemars::schema_for!(Config))),
        (
            "bff.schema.json",
            pretty(schemars::schema_for!(crate::bff::BffConfig)),
        ),
    ]
}

/// Replace `${NAME}` and `${NAME:-default}`; a missing variable without default is
/// an error rather than an empty string.
pub fn expand_env(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "unterminated `${` in config".to_string())?;
        let expr = &after[..end];
        let (name, default) = match expr.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (expr, None),
        };
        match (env(name), default) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => return Err(format!("environment variable `{name}` is not set")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn parses_subgraphs() {
        let config = Config::parse(
            "subgraphs:\n  - name: a\n    url: http://127.0.0.1:1/a\n    schema: { file: a.graphql }\n    timeout: 250ms\n",
            no_env,
        )
        .expect("valid");
        assert_eq!(
            config.subgraphs[0].timeout,
            Some(Duration::from_millis(250))
        );
        assert_eq!(config.listen, "127.0.0.1:4000");
    }

    #[test]
    fn rejects_bad_configs_with_clear_messages() {
        let cases = [
            ("listen: x\n", "no schema"),
            (
                "supergraph: s.graphql\nregistry: { url: \"http://r/supergraph\" }\n",
                "not several",
            ),
            ("registry: { url: \"ftp://r/s\" }\n", "must be http(s)"),
            (
                "registry: { url: \"http://r/s\", key: k }\n",
                "both `key_header` and `key`",
            ),
            (
                "registry: { url: \"http://r/s\", poll_interval: 1s, jitter: 2s }\n",
                "jitter must be shorter",
            ),
            (
                "supergraph: s.graphql\nredis: { url: \"redis://h\", cluster: [\"redis://h:1\"] }\n",
                "not both",
            ),
            (
                "subgraphs:\n  - name: a\n    url: nope\n    schema: { file: a }\n",
                "invalid url",
            ),
            (
                "subgraphs:\n  - name: a\n    url: http://x/\n    schema: { file: a }\n    retries: 3\n",
                "unknown field `retries`",
            ),
            (
                "subgraphs:\n  - name: a\n    url: http://x/\n    schema: { file: a }\n  - name: a\n    url: http://x/\n    schema: { file: a }\n",
                "used twice",
            ),
            (
                "subgraphs:\n  - name: a\n    url: http://x/\n    schema: { file: a }\n    timeout: 5\n",
                "needs a unit",
            ),
            ("supergraph: ${MISSING}\n", "`MISSING` is not set"),
            (
                "subgraphs:\n  - name: a\n    url: http://x/\n    kind: soap\n    schema: { file: a }\n",
                "unknown variant `soap`",
            ),
            (
                "subgraphs:\n  - name: a\n    url: http://x/\n    kind: grpc\n    schema: { file: a }\n",
                "needs `protos",
            ),
            (
                "subgraphs:\n  - name: a\n    url: http://x/\n    kind: rest\n    schema: { file: a }\n    protos: [a.proto]\n",
                "`protos` is for `kind: grpc` only",
            ),
            (
                "subgraphs:\n  - name: a\n    url: http://x/\n    kind: rest\n    schema: { introspect: true }\n",
                "cannot be introspected",
            ),
            (
                "supergraph: s\ntls: { cert_file: c, key_file: k, client_auth: required }\n",
                "`client_auth` needs `client_ca_file`",
            ),
            (
                "supergraph: s\ntls: { cert_file: c, key_file: k, client_auth: maybe }\n",
                "unknown variant `maybe`",
            ),
            (
                "supergraph: s\nupstream:\n  tls: { cert_file: c }\n",
                "`cert_file` and `key_file` go together",
            ),
        ];
        for (text, expected) in cases {
            let err = Config::parse(text, no_env).expect_err(text);
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn expands_env() {
        let env = |n: &str| (n == "HOST").then(|| "example".to_string());
        assert_eq!(
            expand_env("a ${HOST} ${PORT:-80}", env).expect("ok"),
            "a example 80"
        );
    }

    /// The access sections (`auth`, `rate_limit`, `redis`) parse in a whole config,
    /// with `supergraph` set so that only they are under test.
    fn parse_access(yaml: &str) -> Result<Config, String> {
        Config::parse(&format!("supergraph: s.graphql\n{yaml}"), no_env)
    }

    #[test]
    fn access_sections_parse_with_defaults() {
        let config = parse_access(
            "auth:\n  jwt:\n    keys: [{ kid: a, algorithm: HS256, secret: 0123456789abcdef }]\nrate_limit: { enabled: true, algorithm: sliding_window }\nredis: { url: \"redis://127.0.0.1:6379\" }\n",
        )
        .expect("valid");
        assert!(config.auth.allow_anonymous);
        assert_eq!(config.auth.default_tier, "free");
        let jwt = config.auth.jwt.expect("jwt");
        assert_eq!(jwt.leeway.as_secs(), 30);
        assert_eq!(
            config.rate_limit.effective_tiers()["enterprise"].requests,
            100_000
        );
        let redis = config.redis.expect("redis");
        assert_eq!(redis.prefix, "gateway:");
        assert_eq!(redis.on_error, crate::redis_store::RedisFallback::Local);
    }

    #[test]
    fn bad_access_configs_are_refused_with_clear_messages() {
        let cases = [
            ("auth:\n  jwt: {}\n", "give `keys` or `jwks`"),
            (
                "auth:\n  jwt:\n    keys: [{ secret: 0123456789abcdef }]\n",
                "`algorithm` is required",
            ),
            (
                "auth:\n  jwt:\n    keys: [{ algorithm: HS256, secret: short }]\n",
                "too short",
            ),
            (
                "auth:\n  jwt:\n    keys: [{ algorithm: none, secret: 0123456789abcdef }]\n",
                "unknown variant `none`",
            ),
            (
                "auth:\n  jwt:\n    jwks: [{ url: \"ftp://x\" }]\n",
                "url must be http or https",
            ),
            (
                "auth:\n  api_keys:\n    keys: [{ name: a, key: k, sha256: ab }]\n",
                "exactly one of `key` or `sha256`",
            ),
            (
                "auth:\n  api_keys:\n    keys: [{ name: a, sha256: abc }]\n",
                "64 hex digits",
            ),
            (
                "auth:\n  api_keys: { redis: true }\n",
                "needs a `redis:` section",
            ),
            (
                "auth:\n  api_keys:\n    keys: [{ name: a, key: k, tier: gold }]\nrate_limit: { enabled: true }\n",
                "unknown rate-limit tier `gold`",
            ),
            (
                "rate_limit:\n  tiers: { free: { requests: 0, per: 1h } }\n",
                "positive `requests`",
            ),
            (
                "rate_limit:\n  trusted_proxies: [10.0.0.0/40]\n",
                "`10.0.0.0/40` is not an IP address or CIDR range",
            ),
            (
                "redis: { url: \"nope://\" }\n",
                "redis URL \"nope://\" is invalid",
            ),
            (
                "redis: { url: \"redis://x\", on_error: maybe }\n",
                "unknown variant `maybe`",
            ),
        ];
        for (yaml, expected) in cases {
            let err = parse_access(yaml).expect_err(yaml);
            assert!(err.contains(expected), "{yaml}: {err}");
        }
    }

    /// The checked-in schemas are what the config types say; `UPDATE_SCHEMAS=1` rewrites
    /// them.
    #[test]
    fn json_schemas_are_in_sync_with_the_config_types() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
        for (name, schema) in super::json_schemas() {
            let path = dir.join(name);
            if std::env::var("UPDATE_SCHEMAS").is_ok_and(|v| v == "1") {
                std::fs::write(&path, &schema).expect("write the schema");
            }
            let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                checked_in == schema,
                "schemas/{name} is out of date: run `UPDATE_SCHEMAS=1 cargo test -p gateway --lib json_schemas`"
            );
        }
    }
}
