//! Running a plan: each step's fetches go out in parallel; their answers are merged
//! into one response tree; entity fetches read their representations from that tree
//! (de-duplicated) and write results back where each representation came from. At the
//! end the client's selection is projected from the tree (`response`), which applies
//! aliases, field order, `@skip`/`@include` and null propagation.

pub mod defer;
mod response;
mod store;
pub mod stream;

use apollo_compiler::response::ExecutionResponse;
use futures::future::{BoxFuture, join_all};
use serde_json::{Map, Value as Json, json};

use std::time::Instant;

use crate::planner::plan::{EntityPart, SubItem, SubSelection};
use crate::planner::{FetchKind, FetchNode, PathElem, PlanNode};
use crate::request::{Prepared, RequestContext};
use crate::schema::SchemaSnapshot;
use crate::sources::{FetchError, SourceRequest, SourceResponse, Sources, VariablesWriter};
use tracing::Instrument;

use crate::sources::value::{Object, Value};
use crate::telemetry::{self, Metrics, REQUEST_ID};
use store::Slots;

/// The result of an execution: `data` (absent only for request errors) and errors.
#[derive(Debug, Default)]
pub struct Response {
    pub errors: Vec<Json>,
    /// The response `data` as JSON text, written directly by the projection.
    pub data: Option<Vec<u8>>,
    pub extensions: Map<String, Json>,
    /// How many upstream requests were made (for logs).
    pub upstream_requests: usize,
    /// The executed operation's name (for logs and metrics).
    pub operation_name: Option<String>,
    /// `@defer` payloads after the first: the `incremental` items, as a JSON array.
    pub incremental: Option<Vec<u8>>,
    /// `@defer` payloads: whether more follow.
    pub has_next: Option<bool>,
    /// Whether a response cache answered: `Some(true)` when every fetch (or the BFF's
    /// whole-response cache) did, `Some(false)` when one was asked and missed, `None`
    /// when no cache was involved.
    pub cache_hit: Option<bool>,
}

impl Response {
    /// The GraphQL response body: errors first (as the spec suggests, so they are seen
    /// in long responses), then data, then extensions. The `data` buffer becomes the
    /// body, the envelope written around it: no second copy of a large response.
    pub fn into_bytes(self) -> Vec<u8> {
        let mut head = vec![b'{'];
        if !self.errors.is_empty() {
            head.extend_from_slice(b"\"errors\":");
            // Writing into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut head, &self.errors);
        }
        let mut body = match self.data {
            Some(mut data) => {
                if head.len() > 1 {
                    head.push(b',');
                }
                head.extend_from_slice(b"\"data\":");
                data.splice(0..0, head);
                data
            }
            None => head,
        };
        if !self.extensions.is_empty() {
            if body.len() > 1 {
                body.push(b',');
            }
            body.extend_from_slice(b"\"extensions\":");
            let _ = serde_json::to_writer(&mut body, &self.extensions);
        }
        if let Some(items) = self.incremental {
            if body.len() > 1 {
                body.push(b',');
            }
            body.extend_from_slice(b"\"incremental\":");
            body.extend_from_slice(&items);
        }
        if let Some(has_next) = self.has_next {
            if body.len() > 1 {
                body.push(b',');
            }
            body.extend_from_slice(if has_next {
                b"\"hasNext\":true"
            } else {
                b"\"hasNext\":false"
            });
        }
        body.push(b'}');
        body
    }

    /// `data` as a JSON value, for the rare consumers that need to look inside.
    pub fn data_value(&self) -> Option<Json> {
        self.data
            .as_ref()
            .and_then(|d| serde_json::from_slice(d).ok())
    }
}

struct Execution<'a> {
    sources: &'a Sources,
    metrics: &'a Metrics,
    context: &'a RequestContext,
    variables: &'a Map<String, Json>,
    /// Per-fetch timings, when the client asked for them.
    timings: Vec<Json>,
    upstream_requests: usize,
    /// Fetches a cache was asked for, and how many it answered.
    cache_lookups: (usize, usize),
    data: Value,
    errors: Vec<Json>,
    /// Entity paths whose fetch failed as a whole: their missing fields are explained.
    failed: Vec<Vec<PathElem>>,
    /// Field errors written for failed entity fetches so far (at most
    /// [`MAX_FIELD_ERRORS`] per request).
    failed_fields: usize,
}

/// Field errors listed for failed entity fetches in one response; past it, one more
/// error per fetch says how many fields it leaves out.
const MAX_FIELD_ERRORS: usize = 100;

/// A fetch ready to go out: its request, and how to map the answer back.
struct PendingFetch<'p> {
    node: &'p FetchNode,
    /// Per entity part: which representation each visited object uses.
    slots: Vec<Slots>,
    request: Option<SourceRequest>,
}

impl<'p> PendingFetch<'p> {
    /// A root fetch whose answer came another way (a subscription event).
    fn answered(node: &'p FetchNode) -> Self {
        PendingFetch {
            node,
            slots: Vec::new(),
            request: None,
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub async fn execute(
    schema: &SchemaSnapshot,
    sources: &Sources,
    metrics: &Metrics,
    prepared: &Prepared,
    variables: Map<String, Json>,
    introspection: Option<ExecutionResponse>,
    context: &RequestContext,
) -> Response {
    let mut exec = Execution::new(sources, metrics, context, &variables);
    if let Some(root) = &prepared.plan.root {
        exec.run(root).await;
    }
    // One whole response: deferred fragments are fetched and delivered inline.
    if let Some(deferred) = &prepared.plan.deferred {
        for node in deferred.beside.iter().chain(&deferred.after) {
            exec.run(node).await;
        }
    }
    exec.finish(schema, prepared, introspection, false)
}

impl<'a> Execution<'a> {
    fn new(
        sources: &'a Sources,
        metrics: &'a Metrics,
        context: &'a RequestContext,
        variables: &'a Map<String, Json>,
    ) -> Self {
        Execution {
            sources,
            metrics,
            context,
            variables,
            timings: Vec::new(),
            upstream_requests: 0,
            cache_lookups: (0, 0),
            data: Value::Object(Object::new()),
            errors: Vec::new(),
            failed: Vec::new(),
            failed_fields: 0,
        }
    }

    /// Project the client's response from the tree.
    fn finish(
        mut self,
        schema: &SchemaSnapshot,
        prepared: &Prepared,
        introspection: Option<ExecutionResponse>,
        skip_deferred: bool,
    ) -> Response {
        self.respond(schema, prepared, introspection, skip_deferred)
    }

    /// Project the client's response from the tree as it is now; the errors and
    /// timings so far go with it (later payloads carry only newer ones).
    fn respond(
        &mut self,
        schema: &SchemaSnapshot,
        prepared: &Prepared,
        introspection: Option<ExecutionResponse>,
        skip_deferred: bool,
    ) -> Response {
        let mut errors = std::mem::take(&mut self.errors);
        let timings = std::mem::take(&mut self.timings);
        let upstream_requests = std::mem::replace(&mut self.upstream_requests, 0);
        let (asked, answered) = std::mem::take(&mut self.cache_lookups);
        let cache_hit = (asked > 0).then_some(answered == upstream_requests);
        let (data, failed, variables, context) =
            (&self.data, &self.failed, self.variables, self.context);
        let mut intro = Map::new();
        if let Some(introspection) = introspection {
            for e in introspection.errors {
                errors.push(serde_json::to_value(e).unwrap_or(Json::Null));
            }
            if let Some(d) = introspection.data {
                intro = d
                    .into_iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().to_string(),
                            crate::common::json::to_serde_json(v),
                        )
                    })
                    .collect();
            }
        }
        let size_hint = prepared
            .data_size
            .load(std::sync::atomic::Ordering::Relaxed);
        let data = response::project(
            schema,
            &prepared.operation,
            data,
            &intro,
            variables,
            &mut errors,
            failed,
            size_hint,
            skip_deferred,
        );
        prepared
            .data_size
            .store(data.len(), std::sync::atomic::Ordering::Relaxed);
        let mut extensions = Map::new();
        if context.expose_plan {
            extensions.insert("fetches".into(), Json::Array(timings));
        }
        Response {
            data: Some(data),
            errors,
            extensions,
            upstream_requests,
            operation_name: prepared.operation.name.as_ref().map(|n| n.to_string()),
            incremental: None,
            has_next: None,
            cache_hit,
        }
    }
}

impl<'a> Execution<'a> {
    fn run<'s>(&'s mut self, node: &'s PlanNode) -> BoxFuture<'s, ()> {
        Box::pin(async move {
            match node {
                PlanNode::Sequence(nodes) => {
                    for n in nodes {
                        self.run(n).await;
                    }
                }
                PlanNode::Fetch(f) => self.step(&[f]).await,
                PlanNode::Parallel(nodes) => {
                    let fetches: Vec<&FetchNode> = nodes
                        .iter()
                        .filter_map(|n| match n {
                            PlanNode::Fetch(f) => Some(&**f),
                            _ => None,
                        })
                        .collect();
                    if fetches.len() == nodes.len() {
                        self.step(&fetches).await;
                    } else {
                        // Mixed parallel nodes are not produced by the planner; run
                        // them one by one, which is correct if slower.
                        for n in nodes {
                            self.run(n).await;
                        }
                    }
                }
            }
        })
    }

    /// One step: prepare every fetch from the current tree, send them all at once,
    /// then merge the answers in plan order.
    async fn step(&mut self, fetches: &[&FetchNode]) {
        let mut prepared: Vec<PendingFetch<'_>> = fetches.iter().map(|f| self.prepare(f)).collect();
        let calls = prepared.iter_mut().map(|p| {
            let source = self.sources.get(p.node.graph).cloned();
            let span = tracing::info_span!(
                "fetch",
                otel.kind = "client",
                source = %p.node.service,
                kind = tracing::field::Empty,
                operation = %p.node.operation_name,
                outcome = tracing::field::Empty,
                cache_hit = tracing::field::Empty,
                breaker = tracing::field::Empty,
                attempts = tracing::field::Empty,
            );
            // Sent once: the request moves to the source (merging needs only the slots).
            let request = p.request.take().map(|mut r| {
                telemetry::tracing::upstream_trace_headers(
                    &span,
                    &self.context.client_headers,
                    &mut r.headers,
                );
                r
            });
            async move {
                let started = Instant::now();
                let result = match (source, request) {
                    (Some(source), Some(request)) => Some(source.fetch(request).await),
                    (None, Some(_)) => {
                        Some(Err(FetchError::Connect("no source registered".into())))
                    }
                    (_, None) => None,
                };
                if let Some(r) = &result {
                    let outcome = match r {
                        Ok(_) => "ok".to_string(),
                        Err(e) => e.code(),
                    };
                    tracing::Span::current().record("outcome", outcome.as_str());
                }
                (result, started.elapsed())
            }
            .instrument(span)
        });
        let results = join_all(calls).await;
        for (p, (result, elapsed)) in prepared.into_iter().zip(results) {
            if let Some(result) = result {
                self.upstream_requests += 1;
                let node = p.node;
                let cache_hit = result.as_ref().ok().and_then(|r| r.cache_hit);
                if let Some(hit) = cache_hit {
                    self.cache_lookups.0 += 1;
                    self.cache_lookups.1 += usize::from(hit);
                }
                let mut outcome = match &result {
                    Ok(r) if r.errors.as_ref().is_some_and(|e| !e.is_empty()) => {
                        "graphql_error".to_string()
                    }
                    Ok(_) => "ok".to_string(),
                    Err(e) => e.code(),
                };
                // An answer that could not be used is a failure, whatever its status.
                if let Some(code) = self.merge(p, result) {
                    outcome = code.to_string();
                }
                self.metrics.upstream(&node.service, &outcome, elapsed);
                if self.context.expose_plan {
                    let mut timing = json!({
                        "service": node.service,
                        "operationName": node.operation_name,
                        "outcome": outcome,
                        "durationMs": elapsed.as_secs_f64() * 1000.0,
                    });
                    // Only sources with a response cache say whether it answered.
                    if let Some(hit) = cache_hit {
                        timing["cacheHit"] = Json::Bool(hit);
                    }
                    self.timings.push(timing);
                }
            }
        }
    }

    /// Headers every upstream request carries.
    fn upstream_headers(&self) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert(REQUEST_ID, self.context.request_id.clone());
        headers
    }

    fn prepare<'p>(&self, node: &'p FetchNode) -> PendingFetch<'p> {
        let mut variables = VariablesWriter::new();
        for name in &node.variables {
            if let Some(v) = self.variables.get(name.as_str()) {
                variables.value(name, v);
            }
        }
        let mut slots = Vec::new();
        if let FetchKind::Entities(parts) = &node.kind {
            let mut any = false;
            for part in parts {
                let out = variables.entry(&part.variable);
                // Everything this part selects is skipped for these variables.
                if part.is_excluded(self.variables) {
                    out.extend_from_slice(b"[]");
                    slots.push(Vec::new());
                    continue;
                }
                let (count, part_slots) = store::representations(&self.data, part, out);
                any |= count > 0;
                slots.push(part_slots);
            }
            if !any {
                return PendingFetch {
                    node,
                    slots,
                    request: None,
                };
            }
        }
        let request = Some(SourceRequest {
            operation: node.operation.clone(),
            operation_name: node.operation_name.clone(),
            variables: variables.finish(),
            is_mutation: node.operation.starts_with("mutation"),
            uploads: self
                .context
                .uploads
                .as_ref()
                .filter(|u| u.used_by(&node.variables))
                .cloned(),
            headers: self.upstream_headers(),
            client_headers: self.context.client_headers.clone(),
            principal: self.context.principal.clone(),
            deadline: self.context.deadline,
        });
        PendingFetch {
            node,
            slots,
            request,
        }
    }

    /// Merge one fetch's answer; `Some(code)` when the answer was unusable.
    fn merge(
        &mut self,
        p: PendingFetch<'_>,
        result: Result<SourceResponse, FetchError>,
    ) -> Option<&'static str> {
        const BAD: &str = "UPSTREAM_BAD_RESPONSE";
        let node = p.node;
        let response = match result {
            Ok(r) => r,
            Err(e) => {
                self.fail(node, &e.code(), &format!("{e}"), &p.slots);
                return None;
            }
        };
        match &node.kind {
            FetchKind::Root { .. } => {
                for error in response.errors.iter().flatten() {
                    self.errors.push(upstream_error(error, &node.service, None));
                }
                match response.data.as_deref() {
                    Some(data @ Value::Object(_)) => {
                        store::deep_merge(&mut self.data, data, node.aliased)
                    }
                    Some(Value::Null) | None => {}
                    Some(_) => {
                        self.fail(node, BAD, "`data` is not an object", &p.slots);
                        return Some(BAD);
                    }
                }
            }
            FetchKind::Entities(parts) => {
                let data = match response.data.as_deref() {
                    Some(Value::Object(map)) => Some(map),
                    Some(Value::Null) | None => None,
                    Some(_) => {
                        self.fail(node, BAD, "`data` is not an object", &p.slots);
                        return Some(BAD);
                    }
                };
                let mut lists = Vec::with_capacity(parts.len());
                for (part, slots) in parts.iter().zip(&p.slots) {
                    let expected = slots.iter().flatten().flatten().max().map_or(0, |m| m + 1);
                    match data.and_then(|d| d.get(&part.response_key)) {
                        Some(Value::Array(list)) if list.len() == expected => {
                            lists.push(Some(list))
                        }
                        Some(Value::Array(list)) => {
                            let message = format!(
                                "`{}` returned {} entities for {expected} representations",
                                part.response_key,
                                list.len()
                            );
                            self.fail(node, BAD, &message, &p.slots);
                            return Some(BAD);
                        }
                        _ => lists.push(None),
                    }
                }
                for error in response.errors.iter().flatten() {
                    let mapped = self.map_entity_error_path(error, parts, &p.slots);
                    self.errors
                        .push(upstream_error(error, &node.service, Some(mapped)));
                }
                for ((part, slots), list) in parts.iter().zip(&p.slots).zip(lists) {
                    match list {
                        Some(list) => store::merge_entities(
                            &mut self.data,
                            &part.paths,
                            slots,
                            list,
                            node.aliased,
                        ),
                        None => self.failed.extend(part.paths.iter().cloned()),
                    }
                }
            }
        }
        None
    }

    /// Translate `["_entities", i, ...rest]` into the client path of entity `i`.
    fn map_entity_error_path(
        &self,
        error: &Json,
        parts: &[EntityPart],
        slots: &[Slots],
    ) -> Option<Vec<Json>> {
        let path = error.get("path")?.as_array()?;
        let key = path.first()?.as_str()?;
        let index = path.get(1)?.as_u64()? as usize;
        let (part, part_slots) = parts
            .iter()
            .zip(slots)
            .find(|(p, _)| p.response_key == key)?;
        let mut client = store::entity_path(&self.data, &part.paths, part_slots, Some(index))?;
        client.extend(path.iter().skip(2).cloned());
        Some(client)
    }

    /// A fetch failed as a whole: the fields it owned stay missing (so they become
    /// null, with non-null propagation), and one error explains why.
    fn fail(&mut self, node: &FetchNode, code: &str, message: &str, slots: &[Slots]) {
        let message = format!("request to subgraph \"{}\" failed: {message}", node.service);
        match &node.kind {
            FetchKind::Root { selection } => {
                for key in top_level_keys(selection) {
                    self.errors.push(json!({
                        "message": message,
                        "path": [key],
                        "extensions": { "code": code, "service": node.service },
                    }));
                }
            }
            // One error per field the fetch was to fill, at that field's path (as
            // Apollo Router reports them), up to a cap; one more counts the rest.
            FetchKind::Entities(parts) => {
                let mut unlisted = 0usize;
                for (part, part_slots) in parts.iter().zip(slots) {
                    self.failed.extend(part.paths.iter().cloned());
                    let mut keys = top_level_keys(&part.selection);
                    keys.sort();
                    keys.dedup();
                    for (path, path_slots) in part.paths.iter().zip(part_slots) {
                        let sent = path_slots.iter().enumerate().filter(|(_, s)| s.is_some());
                        for (ordinal, _) in sent {
                            let room = MAX_FIELD_ERRORS.saturating_sub(self.failed_fields);
                            let listed = keys.len().min(room);
                            unlisted += keys.len() - listed;
                            if listed == 0 {
                                continue;
                            }
                            let Some(at) = store::concrete_path(&self.data, path, ordinal) else {
                                continue;
                            };
                            for key in &keys[..listed] {
                                let mut field = at.clone();
                                field.push(Json::String(key.clone()));
                                self.errors.push(json!({
                                    "message": message,
                                    "path": field,
                                    "extensions": { "code": code, "service": node.service },
                                }));
                            }
                            self.failed_fields += listed;
                        }
                    }
                }
                if unlisted > 0 {
                    self.errors.push(json!({
                        "message": format!("{message} ({unlisted} more fields not listed)"),
                        "extensions": { "code": code, "service": node.service },
                    }));
                }
            }
        }
    }
}

fn top_level_keys(selection: &SubSelection) -> Vec<String> {
    let mut keys = Vec::new();
    for item in &selection.0 {
        match item {
            SubItem::Field { key, .. } if key != "__typename" => keys.push(key.to_string()),
            SubItem::Fragment { selection, .. } => keys.extend(top_level_keys(selection)),
            _ => {}
        }
    }
    keys
}

/// A subgraph's GraphQL error, re-pathed for the client and tagged with the service.
fn upstream_error(error: &Json, service: &str, path: Option<Option<Vec<Json>>>) -> Json {
    let mut out = Map::new();
    let message = error
        .get("message")
        .and_then(Json::as_str)
        .unwrap_or("subgraph error without a message")
        .to_string();
    out.insert("message".into(), Json::String(message));
    match path {
        None => {
            if let Some(p) = error.get("path").filter(|p| p.is_array()) {
                out.insert("path".into(), p.clone());
            }
        }
        Some(Some(p)) => {
            out.insert("path".into(), Json::Array(p));
        }
        Some(None) => {}
    }
    let mut extensions = error
        .get("extensions")
        .and_then(Json::as_object)
        .cloned()
        .unwrap_or_default();
    extensions
        .entry("code")
        .or_insert_with(|| Json::String("DOWNSTREAM_SERVICE_ERROR".into()));
    extensions.insert("service".into(), Json::String(service.to_string()));
    out.insert("extensions".into(), Json::Object(extensions));
    Json::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_puts_errors_first_and_omits_empty_members() -> Result<(), serde_json::Error> {
        let body = |errors: Vec<Json>, data: Option<&str>, extensions: Json| {
            let response = Response {
                errors,
                data: data.map(|d| d.as_bytes().to_vec()),
                extensions: extensions.as_object().cloned().unwrap_or_default(),
                ..Response::default()
            };
            String::from_utf8(response.into_bytes()).unwrap_or_default()
        };
        let error = json!({"message": "m"});
        assert_eq!(
            body(vec![], Some("{\"a\":1}"), json!({})),
            r#"{"data":{"a":1}}"#
        );
        assert_eq!(
            body(vec![error.clone()], Some("null"), json!({"x": 1})),
            r#"{"errors":[{"message":"m"}],"data":null,"extensions":{"x":1}}"#
        );
        assert_eq!(
            body(vec![error], None, json!({"x": 1})),
            r#"{"errors":[{"message":"m"}],"extensions":{"x":1}}"#
        );
        assert_eq!(
            body(vec![], None, json!({"x": 1})),
            r#"{"extensions":{"x":1}}"#
        );
        assert_eq!(body(vec![], None, json!({})), "{}");
        // Every variant is JSON.
        let parsed: Json = serde_json::from_str(&body(vec![], Some("[1]"), json!({"y": 2})))?;
        assert_eq!(parsed, json!({"data": [1], "extensions": {"y": 2}}));
        Ok(())
    }
}
