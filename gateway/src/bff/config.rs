//! A BFF definition file (`bffs/<client>.yaml`).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::common::config::{ConfigError, DurationString};
use crate::common::cors::CorsConfig;

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BffConfig {
    /// The client name: served at `/bff/<name>/graphql`.
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub view: ViewConfig,
    /// This BFF's own names and argument rules over its view (`docs/bff.md`).
    #[serde(default)]
    pub transforms: super::transform::TransformConfig,
    #[serde(default)]
    pub auth: BffAuth,
    #[serde(default)]
    pub limits: QueryLimits,
    #[serde(default)]
    pub persisted: PersistedConfig,
    #[serde(default)]
    pub cache: BffCache,
    /// CORS for this endpoint (default: the gateway's `edge.cors`).
    #[serde(default)]
    pub cors: Option<CorsConfig>,
    #[serde(default)]
    pub streaming: BffStreaming,
    /// Backends of this BFF alone (`docs/bff.md`, "Sources of its own"): composed with
    /// the shared graph's subgraphs into this BFF's graph; the unified endpoint and the
    /// other BFFs never see them.
    #[serde(default)]
    pub sources: Vec<BffSource>,
}

/// A REST, gRPC or GraphQL backend of one BFF, written like an entry of the gateway's
/// `subgraphs:` with one `url`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BffSource {
    /// Unique across the gateway: metrics, traces and errors name the source by it.
    pub name: String,
    pub url: String,
    /// `graphql` (default), `rest` or `grpc`: see `docs/sources.md`.
    #[serde(default)]
    pub kind: crate::sources::SourceKind,
    /// The SDL, with the same directives as a shared subgraph's; files are relative to
    /// the BFF file.
    pub schema: crate::sources::SchemaSource,
    /// `.proto` files of a gRPC source, relative to the BFF file.
    #[serde(default)]
    pub protos: Vec<PathBuf>,
    /// Every fetch's timeout (otherwise the gateway's `upstream` defaults apply).
    #[schemars(with = "Option<crate::common::config::DurationText>")]
    #[serde(default, with = "crate::common::config::duration_opt")]
    pub timeout: Option<std::time::Duration>,
}

/// This BFF's own limits for subscriptions and other streams, on top of the gateway's
/// `edge.streaming` (keys left out keep the gateway's values).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BffStreaming {
    /// Running operations per WebSocket connection.
    #[serde(default)]
    pub max_subscriptions: Option<usize>,
    /// Running streams per authenticated client on this BFF, counted apart from the
    /// gateway-wide count (which then does not apply here).
    #[serde(default)]
    pub max_streams_per_principal: Option<usize>,
    #[schemars(with = "Option<crate::common::config::DurationText>")]
    #[serde(default, with = "crate::common::config::duration_opt")]
    pub init_timeout: Option<std::time::Duration>,
    #[schemars(with = "Option<crate::common::config::DurationText>")]
    #[serde(default, with = "crate::common::config::duration_opt")]
    pub idle_timeout: Option<std::time::Duration>,
    /// Largest message accepted from a client.
    #[serde(default)]
    pub max_message_bytes: Option<usize>,
}

/// Whole-response caching for this client. An operation is cached only when every
/// root field it selects has a TTL (its own `Query.field` rule, or a rule for its
/// return type); the shortest TTL of the root fields and of every ruled type in the
/// selection applies. Never mutations, never responses with errors; entries are
/// keyed by the operation, its variables and the caller (JWT subject or API key).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BffCache {
    /// `Query.topProducts: 30s`, `Product: 60s`.
    #[serde(default)]
    pub ttl: std::collections::BTreeMap<String, DurationString>,
    #[serde(default = "entries")]
    pub max_entries: u64,
}

fn entries() -> u64 {
    10_000
}

/// A BFF file without `cache:` gets the same room as one that names only TTLs.
impl Default for BffCache {
    fn default() -> Self {
        BffCache {
            ttl: Default::default(),
            max_entries: entries(),
        }
    }
}

/// Which part of the composed graph the client sees. Applied to the API schema:
/// 1. `root_fields` (when set) keeps only those root fields (`Query.me`);
/// 2. `include_tags` (when set) keeps only root fields tagged with one of them;
/// 3. `exclude_tags` removes every type, field, argument and enum value tagged
///    with one of them; `hide` removes the named types and `Type.field`s;
/// 4. fields whose type is removed go too, and types no longer reachable from the
///    roots disappear, so introspection shows exactly the view.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ViewConfig {
    #[serde(default)]
    pub root_fields: Option<Vec<String>>,
    #[serde(default)]
    pub include_tags: Vec<String>,
    #[serde(default)]
    pub exclude_tags: Vec<String>,
    #[serde(default)]
    pub hide: Vec<String>,
}

/// How clients of this BFF authenticate (enforced by the client-auth runtime).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BffAuth {
    #[serde(default)]
    pub mode: AuthMode,
    /// Serve requests without credentials (as the anonymous tier).
    #[serde(default = "yes")]
    pub allow_anonymous: bool,
}

impl BffAuth {
    /// A mode that names a credential the gateway cannot verify would let every such
    /// credential through unchecked (or refuse them all), so it stops the load.
    pub fn check(&self, verifiers: Verifiers) -> Result<(), String> {
        match self.mode {
            AuthMode::Jwt if !verifiers.bearer => Err(
                "`auth.mode: jwt`, but the gateway's `auth:` section configures neither `jwt` nor `introspection`, so no bearer token could be verified"
                    .into(),
            ),
            AuthMode::ApiKey if !verifiers.api_key => Err(
                "`auth.mode: api_key`, but the gateway's `auth:` section configures no `api_keys`"
                    .into(),
            ),
            _ => Ok(()),
        }
    }
}

/// Which client credentials the gateway's `auth:` section can verify.
#[derive(Debug, Clone, Copy, Default)]
pub struct Verifiers {
    /// Bearer tokens: JWT keys or token introspection.
    pub bearer: bool,
    pub api_key: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// Whatever the gateway's client auth accepts.
    #[default]
    Any,
    Jwt,
    ApiKey,
    None,
}

/// Limits checked before any upstream fetch. Cost model: every field costs 1; a list
/// field multiplies the cost of its selection by its size, read from a `first`,
/// `last`, `limit` or `size` argument (a literal, or the variable's value or default),
/// else `default_list_size`. Introspection (`__schema`, `__type`) is answered by the
/// gateway and bounded by its own depth check, so it counts for neither depth nor cost.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryLimits {
    /// This endpoint's request deadline (default: the gateway's `limits.deadline`).
    #[serde(default)]
    pub deadline: Option<DurationString>,
    #[serde(default)]
    pub max_depth: Option<u32>,
    #[serde(default)]
    pub max_aliases: Option<u32>,
    #[serde(default)]
    pub max_root_fields: Option<u32>,
    #[serde(default)]
    pub max_cost: Option<u64>,
    #[serde(default = "ten")]
    pub default_list_size: u64,
    /// Whether `__schema`/`__type` may be queried (and GraphiQL served).
    #[serde(default = "yes")]
    pub introspection: bool,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            deadline: None,
            max_depth: None,
            max_aliases: None,
            max_root_fields: None,
            max_cost: None,
            default_list_size: ten(),
            introspection: true,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PersistedConfig {
    /// A folder of `.graphql` files, one named operation each (the file stem is the
    /// operation's endpoint name), relative to the BFF file.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// Accept only persisted operations (trusted documents).
    #[serde(default)]
    pub only: bool,
    /// Accept automatic persisted queries (`extensions.persistedQuery.sha256Hash`
    /// registered on first use).
    #[serde(default)]
    pub apq: bool,
    /// How `GET /bff/<name>/<operation>` answers, per operation name.
    #[serde(default)]
    pub endpoints: std::collections::BTreeMap<String, EndpointConfig>,
}

/// The REST shape of one persisted operation's endpoint.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// Answer with the value at this dot path of `data` (response keys, e.g.
    /// `user.orders`) as the whole body instead of `{data, errors}`, when there are no
    /// errors; with errors the GraphQL response is sent as it is.
    #[serde(default)]
    pub body: Option<String>,
}

fn yes() -> bool {
    true
}
fn ten() -> u64 {
    10
}

impl BffConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config: BffConfig =
            serde_norway::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        if config.name.is_empty()
            || !config
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(invalid(format!(
                "`name` must be a non-empty URL-safe name (letters, digits, - and _), got {:?}",
                config.name
            )));
        }
        if config.persisted.only && config.persisted.dir.is_none() {
            return Err(invalid("`persisted.only` needs `persisted.dir`".into()));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        if let Some(dir) = &mut config.persisted.dir {
            *dir = base.join(&*dir);
        }
        for (i, source) in config.sources.iter_mut().enumerate() {
            let entry = format!("sources[{i}] ({})", source.name);
            if source.name.is_empty() {
                return Err(invalid(format!("sources[{i}]: `name` is empty")));
            }
            crate::sources::check_entry(
                &entry,
                source.kind,
                &source.url,
                &source.schema,
                &source.protos,
            )
            .map_err(invalid)?;
            if let Some(file) = &mut source.schema.file {
                *file = base.join(&*file);
            }
            for proto in &mut source.protos {
                *proto = base.join(&*proto);
            }
        }
        Ok(config)
    }
}
