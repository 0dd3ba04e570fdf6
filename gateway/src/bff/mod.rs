//! Per-client BFF endpoints: named views of the composed graph (`/bff/<client>/…`),
//! each with its own schema view, limits, auth mode and persisted operations. Every BFF
//! shares the one planner, executor and plan cache (keyed per BFF) of its engine.

pub mod config;
pub mod limits;
pub mod openapi;
pub mod persisted;
pub mod transform;
pub mod view;

use std::collections::HashMap;
use std::sync::Arc;

use apollo_compiler::collections::HashMap as ApolloMap;
use apollo_compiler::schema::Implementers;
use apollo_compiler::validation::Valid;
use apollo_compiler::{Name, Schema};

pub use config::BffConfig;
use persisted::Persisted;

use std::borrow::Cow;

use crate::common::principal::{Principal, PrincipalKind};
use crate::request::{Prepared, Request, RequestError, prepare_with};
use crate::schema::SchemaSnapshot;
use config::{AuthMode, Verifiers};

pub struct Bff {
    pub config: BffConfig,
    /// Cached responses (`cache.ttl`), with their expiry.
    pub responses: moka::sync::Cache<u64, Arc<(Vec<u8>, std::time::Instant)>>,
    /// The view's API schema: validation and introspection on this BFF use it.
    pub api: Valid<Schema>,
    pub implementers: ApolloMap<Name, Implementers>,
    pub persisted: Persisted,
    /// The BFF's names and argument rules, mapped back onto the graph's before planning.
    pub mapping: crate::planner::ViewMapping,
    /// This BFF's own graph when it has sources of its own; else it plans and fetches
    /// on the shared graph.
    pub own: Option<OwnGraph>,
}

/// A BFF's composed graph: the shared subgraphs and its own sources.
pub struct OwnGraph {
    pub schema: Arc<SchemaSnapshot>,
    /// The shared subgraphs' sources (the same policy stacks) and its own, in the
    /// order of `schema`'s graphs.
    pub sources: crate::sources::Sources,
}

impl std::fmt::Debug for Bff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bff")
            .field("name", &self.config.name)
            .finish()
    }
}

impl Bff {
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Whether the BFF's auth mode lets `principal` in; if not, what it asks for
    /// (`"a bearer token"`, `"an API key"`, `"credentials"`). `sent_authorization`: the
    /// request carried an `Authorization` header; one the client-auth layer did not turn
    /// into a principal (another scheme, an empty token) is refused on a `jwt` or
    /// `api_key` BFF, not run as anonymous.
    pub fn admits(
        &self,
        principal: Option<&Principal>,
        sent_authorization: bool,
    ) -> Result<(), &'static str> {
        let auth = &self.config.auth;
        let kind = principal.map_or(PrincipalKind::Anonymous, |p| p.kind);
        if kind == PrincipalKind::Anonymous && sent_authorization {
            match auth.mode {
                AuthMode::Jwt => {
                    return Err(
                        "a bearer token, and the Authorization header holds none it can verify",
                    );
                }
                AuthMode::ApiKey => {
                    return Err("an API key, and the Authorization header is not one");
                }
                AuthMode::Any | AuthMode::None => {}
            }
        }
        let ok = match (kind, auth.mode) {
            (PrincipalKind::Anonymous, _) => auth.allow_anonymous,
            (_, AuthMode::Any | AuthMode::None) => true,
            (PrincipalKind::Jwt | PrincipalKind::Introspection, AuthMode::Jwt) => true,
            (PrincipalKind::ApiKey, AuthMode::ApiKey) => true,
            _ => false,
        };
        if ok {
            return Ok(());
        }
        Err(match auth.mode {
            AuthMode::Jwt => "a bearer token",
            AuthMode::ApiKey => "an API key",
            _ => "credentials",
        })
    }
}

/// Build every BFF against one schema version. Persisted operations are validated
/// against their view here, and auth modes against the credentials the gateway can
/// verify, so a broken BFF stops start-up (or a reload).
/// `own`: the graphs of the BFFs with sources of their own, by name.
pub fn build(
    shared: &SchemaSnapshot,
    mut own: HashMap<String, OwnGraph>,
    configs: &[BffConfig],
    verifiers: Verifiers,
) -> Result<HashMap<String, Arc<Bff>>, String> {
    let mut out = HashMap::new();
    for config in configs {
        let name = config.name.clone();
        let fail = |message: String| format!("BFF `{name}`: {message}");
        if out.contains_key(&name) {
            return Err(fail("defined twice".into()));
        }
        let own = own.remove(&name);
        let own_schema = own.as_ref().map(|g| g.schema.clone());
        let schema: &SchemaSnapshot = own_schema.as_deref().unwrap_or(shared);
        config.auth.check(verifiers).map_err(fail)?;
        let api = view::view_schema(&schema.api, &schema.supergraph.schema, &config.view)
            .map_err(fail)?;
        let persisted =
            Persisted::load(config.persisted.dir.as_deref(), config.persisted.apq).map_err(fail)?;
        for coordinate in config.cache.ttl.keys() {
            let known = match coordinate.split_once('.') {
                Some((ty, field)) => api.type_field(ty, field).is_ok(),
                None => api.types.contains_key(coordinate.as_str()),
            };
            if !known {
                return Err(fail(format!(
                    "cache.ttl: `{coordinate}` is not in this view"
                )));
            }
        }
        // Cache rules name the shared graph's types and fields, as the planned operation
        // does: they are checked before the BFF's own names apply.
        let (api, mapping) =
            transform::apply(api, &schema.api, &config.transforms).map_err(fail)?;
        let implementers = api.implementers_map();
        let bff = Bff {
            responses: moka::sync::Cache::new(config.cache.max_entries),
            config: config.clone(),
            api,
            implementers,
            persisted,
            mapping,
            own,
        };
        for op in bff.persisted.operations() {
            prepare_with(schema, &bff.api, Some(&bff.mapping), &op.document, None).map_err(
                |e| {
                    fail(format!(
                        "persisted operation `{}` is invalid for this view: {e}",
                        op.name
                    ))
                },
            )?;
        }
        for (endpoint, shape) in &config.persisted.endpoints {
            let op = bff.persisted.by_name(endpoint).ok_or_else(|| {
                fail(format!(
                    "persisted.endpoints: no persisted operation `{endpoint}`"
                ))
            })?;
            if let Some(path) = &shape.body
                && !openapi::selects_path(&bff, &op.document, path)
            {
                return Err(fail(format!(
                    "persisted.endpoints.{endpoint}.body: `{path}` is not a path of response keys the operation selects"
                )));
            }
        }
        out.insert(name, Arc::new(bff));
    }
    Ok(out)
}

/// The document a BFF request runs: a trusted document or APQ by hash, or the query
/// text (registered as an APQ when it carries a hash), subject to persisted-only mode.
pub fn resolve_document<'r>(bff: &Bff, request: &'r Request) -> Result<Cow<'r, str>, RequestError> {
    let hash = request
        .extensions
        .get("persistedQuery")
        .and_then(|p| p.get("sha256Hash"))
        .and_then(|h| h.as_str());
    let persisted = &bff.persisted;
    let settings = &bff.config.persisted;
    match (request.query.is_empty(), hash) {
        (true, None) => Err(RequestError::MissingQuery),
        (true, Some(hash)) => {
            if !settings.apq && settings.dir.is_none() {
                return Err(RequestError::PersistedQueryNotSupported);
            }
            persisted
                .by_hash(hash)
                .map(Cow::Owned)
                .ok_or(RequestError::PersistedQueryNotFound)
        }
        (false, Some(hash)) => {
            if crate::common::digest::sha256_hex(&request.query) != hash.to_ascii_lowercase() {
                return Err(RequestError::PersistedQueryHashMismatch);
            }
            if persisted.is_trusted(&request.query) {
                return Ok(Cow::Borrowed(&request.query));
            }
            if settings.only {
                return Err(RequestError::PersistedQueryRequired);
            }
            if !persisted.accepts_apq() {
                return Err(RequestError::PersistedQueryNotSupported);
            }
            persisted.register(hash, &request.query);
            Ok(Cow::Borrowed(&request.query))
        }
        (false, None) => {
            if settings.only && !persisted.is_trusted(&request.query) {
                return Err(RequestError::PersistedQueryRequired);
            }
            Ok(Cow::Borrowed(&request.query))
        }
    }
}

/// How long a response to this operation may be cached on this BFF, if at all.
pub fn cache_ttl(bff: &Bff, prepared: &Prepared) -> Option<std::time::Duration> {
    use crate::planner::operation::{Selection, SelectionSet};
    let rules = &bff.config.cache.ttl;
    if rules.is_empty() || prepared.operation.kind != apollo_compiler::ast::OperationType::Query {
        return None;
    }
    let root = prepared.operation.root_type.as_str();
    fn nested(
        set: &SelectionSet,
        rules: &std::collections::BTreeMap<String, crate::common::config::DurationString>,
        min: &mut Option<std::time::Duration>,
    ) {
        for item in &set.0 {
            match item {
                Selection::Field(f) => {
                    if let Some(t) = rules.get(f.ty.inner_named_type().as_str()) {
                        *min = Some(min.map_or(t.0, |m| m.min(t.0)));
                    }
                    nested(&f.selection, rules, min);
                }
                Selection::Fragment(fr) => nested(&fr.selection, rules, min),
            }
        }
    }
    let mut min: Option<std::time::Duration> = None;
    let mut roots = Vec::new();
    fn collect<'a>(set: &'a SelectionSet, out: &mut Vec<&'a crate::planner::operation::Field>) {
        for item in &set.0 {
            match item {
                Selection::Field(f) => out.push(f),
                Selection::Fragment(fr) => collect(&fr.selection, out),
            }
        }
    }
    collect(&prepared.operation.selection, &mut roots);
    for field in roots {
        if field.name.starts_with("__") {
            continue;
        }
        let rule = rules
            .get(&format!("{root}.{}", field.name))
            .or_else(|| rules.get(field.ty.inner_named_type().as_str()))?;
        min = Some(min.map_or(rule.0, |m| m.min(rule.0)));
    }
    nested(&prepared.operation.selection, rules, &mut min);
    min.filter(|t| !t.is_zero())
}
