//! The gateway config file (YAML): which subgraphs make up the graph, where to listen,
//! request limits. Read once, `${ENV}`-expanded, validated with clear messages, then
//! compiled into runtime types; the request path never reads raw config.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Clone, Deserialize)]
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
    #[serde(default)]
    pub limits: Limits,
    /// The policy stack of every upstream fetch: defaults and per-source overrides.
    #[serde(default)]
    pub upstream: crate::policy::UpstreamConfig,
    #[serde(default)]
    pub telemetry: Telemetry,
    /// HTTP edge settings of the GraphQL endpoints: CORS and response compression.
    #[serde(default)]
    pub edge: EdgeConfig,
    /// BFF definition files (`bffs/mobile.yaml`), relative to this file.
    #[serde(default)]
    pub bffs: Vec<PathBuf>,
    /// Client authentication: JWTs, API keys, token introspection (`docs/auth.md`).
    #[serde(default)]
    pub auth: crate::ingress::auth::AuthConfig,
    /// Client rate limits by tier.
    #[serde(default)]
    pub rate_limit: crate::ingress::ratelimit::RateLimitConfig,
    /// Distributed mode: rate limits, API keys and the response cache shared through
    /// Redis by every instance.
    #[serde(default)]
    pub redis: Option<crate::distributed::RedisConfig>,
}

/// `tls:` of the listener: PEM files, relative to the config file (`docs/auth.md`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The server certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// CA certificates that client certificates must chain to; enables mTLS.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// `required` (the default with `client_ca_file`): no valid client certificate, no
    /// handshake; `optional`: clients without a certificate are served, invalid ones
    /// are refused.
    #[serde(default)]
    pub client_auth: Option<ClientAuth>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    Optional,
    Required,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeConfig {
    /// Compress responses (gzip, br) for clients that accept it.
    #[serde(default = "yes")]
    pub compression: bool,
    #[serde(default)]
    pub cors: CorsConfig,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            compression: true,
            cors: CorsConfig::default(),
        }
    }
}

/// CORS for browser clients. Off (no CORS headers) unless origins are listed.
#[derive(Debug, Clone, Default, Deserialize)]
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
    #[serde(default, with = "duration_opt")]
    pub max_age: Option<Duration>,
}

fn yes() -> bool {
    true
}

fn default_cors_headers() -> Vec<String> {
    ["content-type", "authorization", "x-api-key", "x-request-id"]
        .map(String::from)
        .to_vec()
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Telemetry {
    /// Let clients ask for the query plan and per-fetch timings in the response
    /// `extensions` with the `x-gateway-plan: true` header. Off by default: plans
    /// reveal the subgraph topology.
    #[serde(default)]
    pub expose_query_plan: bool,
    #[serde(default)]
    pub log: LogConfig,
    /// OpenTelemetry trace export; off by default.
    #[serde(default)]
    pub otlp: OtlpConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpConfig {
    #[serde(default)]
    pub enabled: bool,
    /// Collector base URL: `http://host:4318` for HTTP, `http://host:4317` for gRPC.
    #[serde(default = "default_otlp_endpoint")]
    pub endpoint: String,
    #[serde(default)]
    pub protocol: OtlpProtocol,
    #[serde(default = "default_service_name")]
    pub service_name: String,
    /// Fraction of new traces sampled (a client's sampled flag is followed).
    #[serde(default = "default_sample_ratio")]
    pub sample_ratio: f64,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        OtlpConfig {
            enabled: false,
            endpoint: default_otlp_endpoint(),
            protocol: OtlpProtocol::default(),
            service_name: default_service_name(),
            sample_ratio: default_sample_ratio(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OtlpProtocol {
    #[default]
    Http,
    Grpc,
}

fn default_otlp_endpoint() -> String {
    "http://127.0.0.1:4318".into()
}
fn default_service_name() -> String {
    "gateway".into()
}
fn default_sample_ratio() -> f64 {
    1.0
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` (default) or `json` (one JSON object per line).
    #[serde(default)]
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `gateway=debug,info`; `RUST_LOG` wins.
    #[serde(default)]
    pub level: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
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
    pub versions: Option<Vec<crate::policy::balance::VersionConfig>>,
    /// A client header naming the version a request must go to (`x-canary-version`).
    #[serde(default)]
    pub version_header: Option<String>,
    /// `graphql` (default), `rest` or `grpc`: see `docs/sources.md`.
    #[serde(default)]
    pub kind: crate::sources::SourceKind,
    pub schema: SchemaSource,
    /// `.proto` files of a gRPC source, relative to the config file.
    #[serde(default)]
    pub protos: Vec<PathBuf>,
    /// Shorthand for `upstream.sources.<name>.timeout`, e.g. `"5s"`.
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

/// Where a subgraph's SDL comes from: exactly one of the two.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaSource {
    /// An SDL file, relative to the config file.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Ask the running subgraph at start-up: `{ _service { sdl } }`.
    #[serde(default)]
    pub introspect: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest accepted request body in bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: default_max_body(),
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:4000".into()
}
fn default_max_body() -> usize {
    2 * 1024 * 1024
}

impl Config {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config =
            Self::parse(&text, |name| std::env::var(name).ok()).map_err(|message| {
                ConfigError::Invalid {
                    path: path.to_path_buf(),
                    message,
                }
            })?;
        // Files named in the config are relative to the config file.
        let base = path.parent().unwrap_or(Path::new("."));
        if let Some(s) = &mut config.supergraph {
            *s = base.join(&*s);
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
        if self.supergraph.is_some() && !self.subgraphs.is_empty() {
            return Err("set either `supergraph` or `subgraphs`, not both".into());
        }
        if self.supergraph.is_none() && self.subgraphs.is_empty() {
            return Err(
                "no schema: set `supergraph` (a precomposed SDL file) or list `subgraphs`".into(),
            );
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
            if s.kind != crate::sources::SourceKind::Graphql && s.url.is_none() {
                return Err(format!(
                    "{entry}: `urls` and `versions` are for GraphQL subgraphs; a {} source has one `url`",
                    s.kind
                ));
            }
            crate::policy::balance::validate(
                &entry,
                s.urls.as_ref(),
                s.versions.as_ref(),
                s.version_header.as_ref(),
            )?;
            let url = reqwest::Url::parse(s.primary_url())
                .map_err(|e| format!("{entry}: invalid url {:?}: {e}", s.primary_url()))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(format!(
                    "subgraphs[{i}] ({}): url must be http or https",
                    s.name
                ));
            }
            use crate::sources::SourceKind;
            match s.kind {
                SourceKind::Graphql | SourceKind::Rest if !s.protos.is_empty() => {
                    return Err(format!(
                        "subgraphs[{i}] ({}): `protos` is for `kind: grpc` only",
                        s.name
                    ));
                }
                SourceKind::Grpc if s.protos.is_empty() => {
                    return Err(format!(
                        "subgraphs[{i}] ({}): a gRPC source needs `protos: [file.proto, ...]`",
                        s.name
                    ));
                }
                SourceKind::Rest | SourceKind::Grpc if s.schema.introspect => {
                    return Err(format!(
                        "subgraphs[{i}] ({}): a {} source cannot be introspected; give its SDL with `schema: {{ file: PATH }}`",
                        s.name, s.kind
                    ));
                }
                _ => {}
            }
            if s.schema.file.is_some() == s.schema.introspect {
                return Err(format!(
                    "subgraphs[{i}] ({}): `schema` needs exactly one of `file: PATH` or `introspect: true`",
                    s.name
                ));
            }
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

/// Durations as strings: `"250ms"`, `"5s"`, `"2m"`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .ok_or_else(|| format!("duration {s:?} needs a unit (ms, s, m, h)"))?;
    let (number, unit) = s.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("invalid duration unit in {s:?} (use ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("invalid duration {s:?}"))
}

pub(crate) mod duration {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

pub(crate) mod duration_opt {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| super::parse_duration(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
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
}
