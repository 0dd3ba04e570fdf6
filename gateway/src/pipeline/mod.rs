//! The request pipeline between HTTP and the upstreams: parse and validate against the
//! API schema, normalize and plan (cached per schema version), coerce variables, run
//! introspection locally, execute the plan, and project the response.
//!
//! Plain async functions, no tower: this is the per-request hot path.

pub mod authz;
#[cfg(test)]
mod fuzz;

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use apollo_compiler::ast::OperationType;
use apollo_compiler::response::ExecutionResponse;
use futures::StreamExt;
use moka::sync::Cache;
use serde_json::{Map, Value as Json};

use crate::bff::{self, Bff};
use crate::common::json::to_serde_json;
use crate::common::principal::Principal;
use crate::executor::defer::{self, Incremental};
use crate::executor::stream::{self, ResponseStream, Subscription};
use crate::executor::{self, Response};
use crate::planner;
use crate::request::{Prepared, Request, RequestContext, RequestError, prepare_with};
use crate::schema::SchemaSnapshot;
use crate::sources::Sources;
use crate::telemetry::Metrics;
use authz::AuthzRules;

/// One schema version with its plan cache; swapped as a whole on reload. Metrics are
/// shared between versions.
pub struct Engine {
    pub schema: Arc<SchemaSnapshot>,
    pub sources: Sources,
    pub metrics: Arc<Metrics>,
    /// The BFF views of this schema version, by client name.
    pub bffs: HashMap<String, Arc<Bff>>,
    cache: Cache<u64, Arc<Prepared>>,
    /// `@authenticated` / `@requiresScopes` of this schema version, if it has any.
    authz: Option<AuthzRules>,
    /// The same for the BFFs with graphs of their own, by name.
    own_authz: HashMap<String, AuthzRules>,
    /// The unified endpoint's operation limits (BFFs have their own).
    pub limits: Option<bff::config::QueryLimits>,
    /// Every request's deadline unless its endpoint sets one; zero: none.
    pub deadline: std::time::Duration,
}

impl Engine {
    pub fn new(schema: Arc<SchemaSnapshot>, sources: Sources) -> Self {
        Engine {
            authz: AuthzRules::from_supergraph(&schema.supergraph),
            schema,
            sources,
            metrics: Arc::new(Metrics::new()),
            bffs: HashMap::new(),
            own_authz: HashMap::new(),
            cache: Cache::new(2_048),
            limits: None,
            deadline: std::time::Duration::ZERO,
        }
    }

    /// With these BFFs (built against this schema version).
    pub fn with_bffs(mut self, bffs: HashMap<String, Arc<Bff>>) -> Self {
        self.own_authz = bffs
            .iter()
            .filter_map(|(name, bff)| {
                let own = bff.own.as_ref()?;
                Some((
                    name.clone(),
                    AuthzRules::from_supergraph(&own.schema.supergraph)?,
                ))
            })
            .collect();
        self.bffs = bffs;
        self
    }

    /// What a request on `view` plans and fetches on: the BFF's own graph when it has
    /// sources of its own, else the shared one.
    fn graph<'v>(
        &'v self,
        view: Option<&'v Bff>,
    ) -> (&'v Arc<SchemaSnapshot>, &'v Sources, Option<&'v AuthzRules>) {
        match view.and_then(|bff| Some((bff, bff.own.as_ref()?))) {
            Some((bff, own)) => (&own.schema, &own.sources, self.own_authz.get(bff.name())),
            None => (&self.schema, &self.sources, self.authz.as_ref()),
        }
    }

    /// The operation limits of `view` (a BFF; `None`: the unified endpoint).
    fn limits_of<'v>(&'v self, view: Option<&'v Bff>) -> Option<&'v bff::config::QueryLimits> {
        match view {
            Some(bff) => Some(&bff.config.limits),
            None => self.limits.as_ref(),
        }
    }

    /// How long a request on `view` (a BFF; `None`: the unified endpoint) may take.
    pub fn deadline(&self, view: Option<&Bff>) -> Option<std::time::Duration> {
        let deadline = self
            .limits_of(view)
            .and_then(|l| l.deadline)
            .map_or(self.deadline, |d| d.0);
        (!deadline.is_zero()).then_some(deadline)
    }

    /// [`Engine::prepare`], then, when the schema has authorization directives, the
    /// operation without what `principal` may not see, planned and cached by the
    /// operation and the set of removed fields.
    pub fn prepare_as(
        &self,
        view: Option<&Bff>,
        query: &str,
        operation_name: Option<&str>,
        principal: &Principal,
    ) -> Result<Arc<Prepared>, RequestError> {
        let full = self.prepare_in(view, query, operation_name)?;
        let (schema, _, authz) = self.graph(view);
        let Some(rules) = authz else {
            return Ok(full);
        };
        let Some(filtered) = rules.filter(&full.operation, principal) else {
            return Ok(full);
        };
        let mut hasher = rustc_hash::FxHasher::default();
        view.map(Bff::name).hash(&mut hasher);
        query.hash(&mut hasher);
        operation_name.hash(&mut hasher);
        filtered.removed.hash(&mut hasher);
        let key = hasher.finish();
        if let Some(hit) = self.cache.get(&key) {
            self.metrics.cache("plan", true);
            return Ok(hit);
        }
        self.metrics.cache("plan", false);
        let plan = planner::build_plan(&schema.supergraph, &filtered.operation)?;
        let prepared = Arc::new(Prepared {
            document: full.document.clone(),
            operation: full.operation.clone(),
            plan,
            introspection: full.introspection,
            unauthorized: filtered.removed,
            data_size: Default::default(),
        });
        self.cache.insert(key, prepared.clone());
        Ok(prepared)
    }

    /// Parse, validate, normalize and plan — or take the cached result.
    pub fn prepare(
        &self,
        query: &str,
        operation_name: Option<&str>,
    ) -> Result<Arc<Prepared>, RequestError> {
        self.prepare_in(None, query, operation_name)
    }

    /// The kind of an operation whose plan is already cached, without touching the
    /// cache metrics (for the inbound de-duplication check).
    pub fn cached_kind(
        &self,
        view: Option<&Bff>,
        query: &str,
        operation_name: Option<&str>,
    ) -> Option<OperationType> {
        let mut hasher = rustc_hash::FxHasher::default();
        view.map(Bff::name).hash(&mut hasher);
        query.hash(&mut hasher);
        operation_name.hash(&mut hasher);
        self.cache.get(&hasher.finish()).map(|p| p.operation.kind)
    }

    /// [`Engine::prepare`] on a BFF's view (validated against its schema; cached per
    /// BFF).
    pub fn prepare_in(
        &self,
        view: Option<&Bff>,
        query: &str,
        operation_name: Option<&str>,
    ) -> Result<Arc<Prepared>, RequestError> {
        let mut hasher = rustc_hash::FxHasher::default();
        view.map(Bff::name).hash(&mut hasher);
        query.hash(&mut hasher);
        operation_name.hash(&mut hasher);
        let key = hasher.finish();
        let span = tracing::info_span!("prepare", plan_cache_hit = tracing::field::Empty);
        let _entered = span.enter();
        if let Some(hit) = self.cache.get(&key) {
            self.metrics.cache("plan", true);
            span.record("plan_cache_hit", true);
            return Ok(hit);
        }
        self.metrics.cache("plan", false);
        span.record("plan_cache_hit", false);
        let api = view.map_or(&self.schema.api, |v| &v.api);
        let mapping = view.map(|v| &v.mapping);
        let prepared = Arc::new(prepare_with(
            self.graph(view).0,
            api,
            mapping,
            query,
            operation_name,
        )?);
        self.cache.insert(key, prepared.clone());
        Ok(prepared)
    }

    /// Execute on the unified endpoint as an anonymous client.
    pub async fn execute(
        &self,
        request: &Request,
        over_get: bool,
        context: &RequestContext,
    ) -> Result<Response, RequestError> {
        self.execute_as(None, request, over_get, context, &Principal::anonymous())
            .await
    }

    /// The request's document, prepared for `principal`.
    fn prepare_request<'r>(
        &self,
        view: Option<&Bff>,
        request: &'r Request,
        principal: &Principal,
    ) -> Result<(Cow<'r, str>, Arc<Prepared>), RequestError> {
        let query = match view {
            Some(bff) => bff::resolve_document(bff, request)?,
            None => unified_document(request)?,
        };
        let prepared =
            self.prepare_as(view, &query, request.operation_name.as_deref(), principal)?;
        Ok((query, prepared))
    }

    /// The request's variables, coerced by the operation's definitions, and the answer
    /// to its introspection fields, if it has any, once the operation is within the
    /// endpoint's limits with these variables.
    fn coerce(
        &self,
        view: Option<&Bff>,
        prepared: &Prepared,
        request: &Request,
    ) -> Result<(Map<String, Json>, Option<ExecutionResponse>), RequestError> {
        let operation = prepared
            .document
            .operations
            .get(request.operation_name.as_deref())
            .map_err(|e| RequestError::UnknownOperation(e.message().to_string()))?;
        let raw: serde_json_bytes::Map<serde_json_bytes::ByteString, serde_json_bytes::Value> =
            request
                .variables
                .iter()
                .map(|(k, v)| (k.as_str().into(), v.clone().into()))
                .collect();
        let api = view.map_or(&self.schema.api, |v| &v.api);
        let coerced = apollo_compiler::request::coerce_variable_values(api, operation, &raw)
            .map_err(|e| {
                RequestError::Variables(Box::new(e.to_graphql_error(&prepared.document.sources)))
            })?;
        if let Some(limits) = self.limits_of(view) {
            bff::limits::enforce(limits, prepared, &coerced)?;
        }
        let introspection = if prepared.introspection {
            Some(
                apollo_compiler::introspection::partial_execute(
                    api,
                    view.map_or(&self.schema.implementers, |v| &v.implementers),
                    &prepared.document,
                    operation,
                    &coerced,
                )
                .map_err(|e| {
                    RequestError::Variables(Box::new(
                        e.to_graphql_error(&prepared.document.sources),
                    ))
                })?,
            )
        } else {
            None
        };
        let variables: Map<String, Json> = coerced
            .into_inner()
            .into_iter()
            .map(|(k, v)| (k.as_str().to_string(), to_serde_json(v)))
            .collect();
        Ok((variables, introspection))
    }

    /// A request over a streaming transport (WebSocket, SSE, multipart): a
    /// subscription's events; with `incremental`, a query's `@defer` payloads; else
    /// the one response of a query or mutation.
    pub async fn stream_as(
        &self,
        view: Option<&Bff>,
        request: &Request,
        over_get: bool,
        incremental: bool,
        context: &RequestContext,
        principal: &Principal,
    ) -> Result<ResponseStream, RequestError> {
        let (query, prepared) = self.prepare_request(view, request, principal)?;
        let deferred = prepared.plan.deferred.as_ref();
        if incremental
            && let Some(deferred) = deferred
            && prepared.unauthorized.is_empty()
        {
            let (variables, introspection) = self.coerce(view, &prepared, request)?;
            // `@defer(if: false)` anywhere: one whole response, as the spec allows.
            if deferred.sites.iter().all(|s| s.defer.active(&variables)) {
                let (schema, sources, _) = self.graph(view);
                return Ok(defer::execute_incremental(Incremental {
                    schema: schema.clone(),
                    sources: sources.clone(),
                    metrics: self.metrics.clone(),
                    prepared: prepared.clone(),
                    variables,
                    introspection,
                    context: context.clone(),
                }));
            }
        }
        if prepared.operation.kind != OperationType::Subscription {
            let response = self
                .execute_prepared(
                    view, request, over_get, context, principal, &query, prepared,
                )
                .await?;
            return Ok(Box::pin(futures::stream::once(async { response })));
        }
        let (variables, _) = self.coerce(view, &prepared, request)?;
        let (schema, sources, _) = self.graph(view);
        let events = stream::subscribe(Subscription {
            schema: schema.clone(),
            sources: sources.clone(),
            metrics: self.metrics.clone(),
            prepared: prepared.clone(),
            variables,
            context: context.clone(),
        });
        if prepared.unauthorized.is_empty() {
            return Ok(events);
        }
        Ok(Box::pin(events.map(move |mut response| {
            let data = response.data_value();
            authz::report(&prepared.unauthorized, data.as_ref(), &mut response.errors);
            response
        })))
    }

    /// Execute on `view` (a BFF; `None`: the unified endpoint) for `principal`: fields
    /// it may not see are never fetched and come back as null with `UNAUTHORIZED`
    /// errors.
    pub async fn execute_as(
        &self,
        view: Option<&Bff>,
        request: &Request,
        over_get: bool,
        context: &RequestContext,
        principal: &Principal,
    ) -> Result<Response, RequestError> {
        let (query, prepared) = self.prepare_request(view, request, principal)?;
        self.execute_prepared(
            view, request, over_get, context, principal, &query, prepared,
        )
        .await
    }

    /// [`Engine::execute_as`] once the document is prepared.
    #[allow(clippy::too_many_arguments)]
    async fn execute_prepared(
        &self,
        view: Option<&Bff>,
        request: &Request,
        over_get: bool,
        context: &RequestContext,
        principal: &Principal,
        query: &str,
        prepared: Arc<Prepared>,
    ) -> Result<Response, RequestError> {
        match prepared.operation.kind {
            OperationType::Mutation if over_get => return Err(RequestError::MutationOverGet),
            OperationType::Subscription => return Err(RequestError::Subscription),
            _ => {}
        }
        let (variables, introspection) = self.coerce(view, &prepared, request)?;
        // A BFF's response cache, for operations its rules cover.
        let cached = view.and_then(|bff| {
            let ttl = bff::cache_ttl(bff, &prepared)?;
            let mut hasher = rustc_hash::FxHasher::default();
            query.hash(&mut hasher);
            request.operation_name.hash(&mut hasher);
            serde_json::to_string(&variables)
                .unwrap_or_default()
                .hash(&mut hasher);
            principal.subject.hash(&mut hasher);
            Some((bff, ttl, hasher.finish()))
        });
        if let Some((bff, _, key)) = &cached
            && let Some(entry) = bff.responses.get(key)
            && std::time::Instant::now() < entry.1
        {
            self.metrics.cache(&format!("bff:{}", bff.name()), true);
            return Ok(Response {
                data: Some(entry.0.clone()),
                operation_name: prepared.operation.name.as_ref().map(|n| n.to_string()),
                cache_hit: Some(true),
                ..Response::default()
            });
        }
        let (schema, sources, _) = self.graph(view);
        let mut response = executor::execute(
            schema,
            sources,
            &self.metrics,
            &prepared,
            variables,
            introspection,
            context,
        )
        .await;
        if let Some((bff, ttl, key)) = cached {
            self.metrics.cache(&format!("bff:{}", bff.name()), false);
            response.cache_hit = Some(false);
            if response.errors.is_empty()
                && prepared.unauthorized.is_empty()
                && let Some(data) = &response.data
            {
                bff.responses.insert(
                    key,
                    Arc::new((data.clone(), std::time::Instant::now() + ttl)),
                );
            }
        }
        if !prepared.unauthorized.is_empty() {
            let data = response.data_value();
            authz::report(&prepared.unauthorized, data.as_ref(), &mut response.errors);
        }
        if context.expose_plan {
            response
                .extensions
                .insert("queryPlan".into(), Json::String(prepared.plan.to_string()));
        }
        Ok(response)
    }
}

/// The document of a request to the unified endpoint (no persisted operations there).
fn unified_document(request: &Request) -> Result<Cow<'_, str>, RequestError> {
    if request.extensions.contains_key("persistedQuery") {
        return Err(RequestError::PersistedQueryNotSupported);
    }
    if request.query.is_empty() {
        return Err(RequestError::MissingQuery);
    }
    Ok(Cow::Borrowed(&request.query))
}
