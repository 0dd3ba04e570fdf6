//! REST services as sources: the source's SDL maps fields to HTTP calls with `@rest`
//! and backend JSON to fields with `@map` (see `docs/sources.md`); operations run
//! locally ([`crate::sources::local_exec`]). A subscription field streams from a
//! server-sent events endpoint ([`crate::sources::sse`]): each `message` event's JSON
//! data is one event of the field, an `error` event carries an error (the stream goes
//! on), a `complete` event or the end of the body ends it.
//!
//! URLs are built from the registered base URL: template values are percent-encoded
//! into path segments and query parameters, so no value can change the scheme, host or
//! port, add path segments, or climb with `..`.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use http::{HeaderName, HeaderValue, Method};
use serde_json::Value as Json;

use super::local_exec::{
    Batch, Binding, Bound, Connector, Event, Events, FieldError, LocalExecutor, LocalSchema,
    Prepared, Site, StreamConnector,
};
use super::mapping::{
    CallInput, Mapping, Root, Template, encode_segment, lookup, parse_path, string_arg,
    string_list_arg,
};
use super::sse::{self, ReadError, SseEvent};
use super::{
    CallLimits, EventStream, FetchError, Source, SourceRequest, SourceResponse, root_cause,
};

/// Definitions of the REST mapping directives, added to a REST subgraph's SDL before
/// composition when the SDL does not define them itself.
pub const DIRECTIVES: &str = r#"directive @rest(method: String = "GET", path: String!, query: [String!], headers: [String!], body: String, result: String, batch: String, batchKey: String, batchResult: String, batchValue: String) on FIELD_DEFINITION | OBJECT
directive @map(path: String, default: String, fields: String) on FIELD_DEFINITION
"#;

/// Streamed events larger than this end the stream rather than being buffered.
const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// What every call of one source shares.
struct Backend {
    base: reqwest::Url,
    client: reqwest::Client,
    limits: CallLimits,
}

pub struct RestSource {
    exec: LocalExecutor,
}

impl RestSource {
    /// Reads the mapping directives of `sdl`; every problem is reported, with its
    /// coordinate.
    pub fn new(
        subgraph: &str,
        base_url: &str,
        sdl: &str,
        client: reqwest::Client,
        limits: CallLimits,
    ) -> Result<Self, Vec<String>> {
        let base = reqwest::Url::parse(base_url)
            .map_err(|e| vec![format!("invalid base URL {base_url:?}: {e}")])?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(vec![format!(
                "base URL {base_url:?} must be http(s)://host[:port][/prefix]"
            )]);
        }
        let backend = Arc::new(Backend {
            base,
            client,
            limits,
        });
        let (schema, errors) = LocalSchema::build(subgraph, sdl, "rest", |site, directive| {
            binding(&backend, site, directive)
        });
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(RestSource {
            exec: LocalExecutor::new(schema),
        })
    }
}

impl Source for RestSource {
    fn fetch(
        &self,
        request: SourceRequest,
    ) -> BoxFuture<'static, Result<SourceResponse, FetchError>> {
        tracing::Span::current().record("kind", "rest");
        self.exec.fetch(request)
    }

    fn subscribe(
        &self,
        request: SourceRequest,
    ) -> BoxFuture<'static, Result<EventStream, FetchError>> {
        tracing::Span::current().record("kind", "rest");
        self.exec.subscribe(request)
    }
}

fn binding(
    backend: &Arc<Backend>,
    site: &Site<'_>,
    d: &apollo_compiler::ast::Directive,
) -> Result<Bound, Vec<String>> {
    let mut errors = Vec::new();
    let mut note = |r: Result<(), String>| {
        if let Err(e) = r {
            errors.push(e);
        }
    };
    let arg = |name: &str| string_arg(d, name);
    let method = match arg("method") {
        Ok(m) => {
            let m = m.unwrap_or_else(|| "GET".into()).to_ascii_uppercase();
            match m.as_str() {
                "GET" | "POST" | "PUT" | "PATCH" | "DELETE" => {
                    Method::from_bytes(m.as_bytes()).unwrap_or(Method::GET)
                }
                _ => {
                    note(Err(format!(
                        "method {m:?} is not one of GET, POST, PUT, PATCH, DELETE"
                    )));
                    Method::GET
                }
            }
        }
        Err(e) => {
            note(Err(e));
            Method::GET
        }
    };
    let mut call = RestCall {
        backend: backend.clone(),
        method: method.clone(),
        segments: Vec::new(),
        query: Vec::new(),
        headers: Vec::new(),
        body: None,
        result: None,
    };
    match arg("path") {
        Ok(Some(path)) => match parse_target(&path) {
            Ok((segments, query)) => {
                call.segments = segments;
                call.query = query;
            }
            Err(e) => note(Err(format!("path: {e}"))),
        },
        Ok(None) => note(Err("`path` is required".into())),
        Err(e) => note(Err(e)),
    }
    match string_list_arg(d, "query") {
        Ok(entries) => {
            for entry in entries {
                match parse_query_entry(&entry) {
                    Ok(q) => call.query.push(q),
                    Err(e) => note(Err(format!("query: {e}"))),
                }
            }
        }
        Err(e) => note(Err(e)),
    }
    match string_list_arg(d, "headers") {
        Ok(entries) => {
            for entry in entries {
                match parse_header(&entry) {
                    Ok(h) => call.headers.push(h),
                    Err(e) => note(Err(format!("headers: {e}"))),
                }
            }
        }
        Err(e) => note(Err(e)),
    }
    match arg("body") {
        Ok(Some(body)) if method == Method::GET => {
            let _ = body;
            note(Err("a GET call cannot have a body".into()));
        }
        Ok(Some(body)) => match Mapping::parse(&body) {
            Ok(m) => call.body = Some(m),
            Err(e) => note(Err(format!("body: {e}"))),
        },
        Ok(None) => {}
        Err(e) => note(Err(e)),
    }
    match arg("result").and_then(|r| r.map(|r| parse_path(&r)).transpose()) {
        Ok(r) => call.result = r,
        Err(e) => note(Err(format!("result: {e}"))),
    }
    errors.extend(site.check_vars(call.vars(), false));
    if site.is_subscription {
        return Bound::stream(d, errors, RestStream(call));
    }

    let batch = match arg("batch") {
        Ok(Some(batch)) => match batch_of(backend, site, d, &batch) {
            Ok(b) => Some(b),
            Err(list) => {
                errors.extend(list);
                None
            }
        },
        Ok(None) => {
            for extra in ["batchKey", "batchResult", "batchValue"] {
                if d.specified_argument_by_name(extra).is_some() {
                    errors.push(format!("`{extra}` needs `batch`"));
                }
            }
            None
        }
        Err(e) => {
            errors.push(e);
            None
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Binding {
        single: Box::new(call),
        batch,
    }
    .into())
}

fn batch_of(
    backend: &Arc<Backend>,
    site: &Site<'_>,
    d: &apollo_compiler::ast::Directive,
    template: &str,
) -> Result<Batch, Vec<String>> {
    let mut errors = Vec::new();
    if site.representation_fields.is_empty() {
        errors.push(
            "`batch` serves entity fields and entity types only (the type needs @key)".into(),
        );
    }
    let (segments, query) = parse_target(template).map_err(|e| vec![format!("batch: {e}")])?;
    let call = RestCall {
        backend: backend.clone(),
        method: Method::GET,
        segments,
        query,
        headers: Vec::new(),
        body: None,
        result: None,
    };
    let path_arg = |name: &str| -> Result<Option<Vec<String>>, String> {
        string_arg(d, name)?
            .map(|p| parse_path(&p).map_err(|e| format!("{name}: {e}")))
            .transpose()
    };
    let item_key = path_arg("batchKey");
    let result = path_arg("batchResult");
    let item_value = path_arg("batchValue");
    let this_path = batch_var(call.vars(), &mut errors);
    errors.extend(site.check_vars(call.vars().filter(|v| v.root != Root::This), true));
    if call.vars().any(|v| v.root == Root::This) {
        errors.push("batch: a batch call serves many entities; use $batch.FIELD, not $this".into());
    }
    let (item_key, result, item_value) = match (item_key, result, item_value) {
        (Ok(Some(k)), Ok(r), Ok(v)) => (k, r, v),
        (Ok(None), _, _) => {
            errors.push("`batch` needs `batchKey`: the field of each returned item that holds the entity key".into());
            return Err(errors);
        }
        (k, r, v) => {
            for e in [k.err(), r.err(), v.err()].into_iter().flatten() {
                errors.push(e);
            }
            return Err(errors);
        }
    };
    let Some(this_path) = this_path else {
        return Err(errors);
    };
    errors.extend(site.check_vars(
        [&super::mapping::VarRef {
            root: Root::This,
            path: this_path.clone(),
        }],
        false,
    ));
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Batch {
        connector: Box::new(RestCall { result, ..call }),
        this_path,
        item_key,
        item_value,
    })
}

/// The one `$batch.FIELD` a batch call may use (its values are the keys).
pub(crate) fn batch_var<'v>(
    vars: impl Iterator<Item = &'v super::mapping::VarRef>,
    errors: &mut Vec<String>,
) -> Option<Vec<String>> {
    let mut found: Option<Vec<String>> = None;
    for var in vars.filter(|v| v.root == Root::Batch) {
        match &found {
            Some(p) if *p != var.path => {
                errors.push("batch: use one $batch.FIELD (the entity key)".into());
                return None;
            }
            _ => found = Some(var.path.clone()),
        }
    }
    if found.is_none() {
        errors.push("batch: the batch call must send the keys with $batch.FIELD".into());
    }
    found
}

/// `/users/{$args.id}/orders?limit={$args.first}`: path segment templates and query
/// parameters.
#[allow(clippy::type_complexity)]
fn parse_target(text: &str) -> Result<(Vec<Template>, Vec<(String, Template)>), String> {
    let (path, query) = match text.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (text, None),
    };
    if !path.starts_with('/') {
        return Err(format!(
            "`{text}` must start with `/` (it is appended to the source's base URL)"
        ));
    }
    let segments = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(Template::parse)
        .collect::<Result<Vec<_>, _>>()?;
    let mut params = Vec::new();
    if let Some(query) = query {
        for entry in query.split('&').filter(|e| !e.is_empty()) {
            params.push(parse_query_entry(entry)?);
        }
    }
    Ok((segments, params))
}

fn parse_query_entry(entry: &str) -> Result<(String, Template), String> {
    let (name, value) = entry
        .split_once('=')
        .ok_or_else(|| format!("`{entry}` should be `name={{$args.x}}`"))?;
    if name.is_empty() || name.contains(['{', '}']) {
        return Err(format!(
            "`{entry}`: the parameter name must be literal text"
        ));
    }
    Ok((name.to_string(), Template::parse(value)?))
}

fn parse_header(entry: &str) -> Result<(HeaderName, Template), String> {
    let (name, value) = entry
        .split_once(':')
        .ok_or_else(|| format!("`{entry}` should be `name: value`"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| format!("`{}` is not a header name", name.trim()))?;
    Ok((name, Template::parse(value.trim())?))
}

/// One HTTP call described by a `@rest` directive.
struct RestCall {
    backend: Arc<Backend>,
    method: Method,
    segments: Vec<Template>,
    query: Vec<(String, Template)>,
    headers: Vec<(HeaderName, Template)>,
    body: Option<Mapping>,
    result: Option<Vec<String>>,
}

impl RestCall {
    fn vars(&self) -> impl Iterator<Item = &super::mapping::VarRef> {
        self.segments
            .iter()
            .flat_map(|t| t.vars())
            .chain(self.query.iter().flat_map(|(_, t)| t.vars()))
            .chain(self.headers.iter().flat_map(|(_, t)| t.vars()))
            .chain(self.body.iter().flat_map(|m| m.vars()))
    }

    fn url(&self, input: &CallInput<'_>) -> Result<reqwest::Url, FieldError> {
        let mut url = self.backend.base.clone();
        let mut path = url.path().trim_end_matches('/').to_string();
        for segment in &self.segments {
            let text = segment
                .render(input)
                .map_err(FieldError::invalid_request)?
                .ok_or_else(|| {
                    FieldError::invalid_request("a path segment has no value (null or missing)")
                })?;
            // URL parsers treat `.`, `..` and their encodings as dot segments.
            if text == "." || text == ".." {
                return Err(FieldError::invalid_request(format!(
                    "`{text}` cannot be a path segment"
                )));
            }
            path.push('/');
            path.push_str(&encode_segment(&text));
        }
        url.set_path(&path);
        let mut params = Vec::new();
        for (name, template) in &self.query {
            if let Some(value) = template
                .render(input)
                .map_err(FieldError::invalid_request)?
            {
                params.push((name, value));
            }
        }
        if !params.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in params {
                pairs.append_pair(name, &value);
            }
        }
        Ok(url)
    }
}

/// A request built from a call's templates.
struct Built {
    /// Identifies the call for deduplication within one operation.
    key: String,
    /// `GET /users/7/orders`, for error messages.
    target: String,
    request: reqwest::RequestBuilder,
}

impl RestCall {
    fn build(
        &self,
        input: &CallInput<'_>,
        upstream_headers: &http::HeaderMap,
        accept: &'static str,
    ) -> Result<Built, FieldError> {
        let url = self.url(input)?;
        // The request's upstream headers first; the directive's own headers win.
        let mut headers = upstream_headers.clone();
        for (name, template) in &self.headers {
            if let Some(value) = template
                .render(input)
                .map_err(FieldError::invalid_request)?
            {
                let value = HeaderValue::from_str(&value).map_err(|_| {
                    FieldError::invalid_request(format!("invalid value for header `{name}`"))
                })?;
                headers.insert(name.clone(), value);
            }
        }
        let body = self
            .body
            .as_ref()
            .map(|m| m.build(input).unwrap_or(Json::Null).to_string());
        let key = format!("{} {} {}", self.method, url, body.as_deref().unwrap_or(""));
        let target = format!("{} {}", self.method, url.path());
        let mut request = self
            .backend
            .client
            .request(self.method.clone(), url)
            .headers(headers)
            .header(http::header::ACCEPT, accept);
        if let Some(body) = body {
            request = request
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        Ok(Built {
            key,
            target,
            request,
        })
    }
}

/// Sends the request; a successful status gives the response, whose body is still
/// to be read.
async fn send(
    request: reqwest::RequestBuilder,
    target: &str,
) -> Result<reqwest::Response, FieldError> {
    let response = request.send().await.map_err(|e| {
        if e.is_timeout() {
            FieldError::new("UPSTREAM_TIMEOUT", format!("{target} timed out"))
        } else {
            FieldError::new(
                "UPSTREAM_UNAVAILABLE",
                format!("{target}: could not connect ({})", root_cause(&e)),
            )
        }
    })?;
    let status = response.status();
    if !status.is_success() {
        return Err(FieldError::new(
            format!("UPSTREAM_HTTP_{}", status.as_u16()),
            format!("{target} answered HTTP {}", status.as_u16()),
        ));
    }
    Ok(response)
}

/// The next piece of a response body.
async fn chunk(
    response: &mut reqwest::Response,
    target: &str,
) -> Result<Option<bytes::Bytes>, FieldError> {
    response.chunk().await.map_err(|e| {
        FieldError::new(
            "UPSTREAM_UNAVAILABLE",
            format!("{target}: the response broke off ({})", root_cause(&e)),
        )
    })
}

/// What `result` selects of a backend answer.
fn select(json: Json, result: &Option<Vec<String>>, target: &str) -> Result<Json, FieldError> {
    match result {
        None => Ok(json),
        Some(path) => lookup(&json, path).cloned().ok_or_else(|| {
            FieldError::bad_response(format!(
                "{target}: the response has no `{}`",
                path.join(".")
            ))
        }),
    }
}

/// Runs `work` within the source's timeout.
async fn within<T>(
    timeout: Duration,
    target: &str,
    work: impl Future<Output = Result<T, FieldError>>,
) -> Result<T, FieldError> {
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or_else(|_| {
            Err(FieldError::new(
                "UPSTREAM_TIMEOUT",
                format!("{target} timed out after {timeout:?}"),
            ))
        })
}

impl Connector for RestCall {
    fn prepare(
        &self,
        input: &CallInput<'_>,
        upstream_headers: &http::HeaderMap,
    ) -> Result<Prepared, FieldError> {
        let Built {
            key,
            target,
            request,
        } = self.build(input, upstream_headers, "application/json")?;
        let timeout = self.backend.limits.timeout;
        let max_bytes = self.backend.limits.max_response_bytes;
        let result = self.result.clone();
        let future = async move {
            let work = async {
                let mut response = send(request, &target).await?;
                let mut body = Vec::new();
                while let Some(chunk) = chunk(&mut response, &target).await? {
                    if body.len() + chunk.len() > max_bytes {
                        return Err(FieldError::bad_response(format!(
                            "{target}: response larger than {max_bytes} bytes"
                        )));
                    }
                    body.extend_from_slice(&chunk);
                }
                if body.iter().all(u8::is_ascii_whitespace) {
                    return Ok(Json::Null);
                }
                let json: Json = serde_json::from_slice(&body).map_err(|e| {
                    FieldError::bad_response(format!("{target}: the response is not JSON ({e})"))
                })?;
                select(json, &result, &target)
            };
            within(timeout, &target, work).await
        };
        Ok(Prepared {
            key,
            future: Box::pin(future),
        })
    }
}

/// A subscription field read from a server-sent events endpoint. The source's timeout
/// bounds the wait for the response head, not the stream's life.
struct RestStream(RestCall);

impl StreamConnector for RestStream {
    fn open(
        &self,
        input: &CallInput<'_>,
        headers: &http::HeaderMap,
    ) -> BoxFuture<'static, Result<Events, FieldError>> {
        let built = self.0.build(input, headers, "text/event-stream");
        let timeout = self.0.backend.limits.timeout;
        let result = self.0.result.clone();
        Box::pin(async move {
            let Built {
                target, request, ..
            } = built?;
            let response = within(timeout, &target, send(request, &target)).await?;
            let events = sse::read(response, MAX_EVENT_BYTES)
                .take_while(|item| {
                    std::future::ready(!matches!(item, Ok(e) if e.event == "complete"))
                })
                .map(move |item| event_of(item, &result, &target));
            Ok(events.boxed())
        })
    }
}

/// One event of the field from one server-sent event.
fn event_of(
    item: Result<SseEvent, ReadError>,
    result: &Option<Vec<String>>,
    target: &str,
) -> Result<Event, FieldError> {
    let sse = match item {
        Ok(sse) => sse,
        Err(ReadError::TooLarge(limit)) => {
            return Err(FieldError::bad_response(format!(
                "{target}: an event is larger than {limit} bytes"
            )));
        }
        Err(ReadError::Broken(cause)) => {
            return Err(FieldError::new(
                "UPSTREAM_UNAVAILABLE",
                format!("{target}: the event stream broke off ({cause})"),
            ));
        }
    };
    if sse.event == "error" {
        return Ok(Event::Error(error_event(&sse.data)));
    }
    Ok(match serde_json::from_str(&sse.data) {
        Ok(json) => match select(json, result, target) {
            Ok(value) => Event::Value(value),
            Err(e) => Event::Error(e),
        },
        Err(e) => Event::Error(FieldError::bad_response(format!(
            "{target}: an event is not JSON ({e})"
        ))),
    })
}

/// The error an `error` event carries: its JSON `message` (and `code`), or its text.
fn error_event(data: &str) -> FieldError {
    let json: Option<Json> = serde_json::from_str(data).ok();
    let field = |name: &str| {
        json.as_ref()
            .and_then(|j| j.get(name))
            .and_then(Json::as_str)
            .map(str::to_string)
    };
    FieldError::new(
        field("code").unwrap_or_else(|| "UPSTREAM_EVENT_ERROR".into()),
        field("message").unwrap_or_else(|| data.to_string()),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn source(sdl: &str) -> Result<RestSource, String> {
        RestSource::new(
            "orders",
            "http://127.0.0.1:9/api/",
            sdl,
            reqwest::Client::new(),
            CallLimits {
                timeout: Duration::from_secs(1),
                max_response_bytes: 1024,
            },
        )
        .map_err(|e| e.join("\n"))
    }

    #[test]
    fn urls_keep_the_base_and_encode_values() {
        let backend = Arc::new(Backend {
            base: reqwest::Url::parse("http://127.0.0.1:9/api/").unwrap(),
            client: reqwest::Client::new(),
            limits: CallLimits {
                timeout: Duration::from_secs(1),
                max_response_bytes: 1024,
            },
        });
        let (segments, query) =
            parse_target("/users/{$args.id}/orders?limit={$args.first}&tag={$args.tag}").unwrap();
        let call = RestCall {
            backend,
            method: Method::GET,
            segments,
            query,
            headers: Vec::new(),
            body: None,
            result: None,
        };
        let args = json!({"id": "../../admin@evil.com:81/x?y#z", "first": 2, "tag": "a&b=c"});
        let input = CallInput {
            args: args.as_object().unwrap(),
            this: &Json::Null,
            batch: None,
        };
        let url = call.url(&input).unwrap();
        assert_eq!(url.host_str(), Some("127.0.0.1"));
        assert_eq!(url.port(), Some(9));
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9/api/users/..%2F..%2Fadmin%40evil.com%3A81%2Fx%3Fy%23z/orders?limit=2&tag=a%26b%3Dc"
        );
        let args = json!({"id": ".."});
        let input = CallInput {
            args: args.as_object().unwrap(),
            this: &Json::Null,
            batch: None,
        };
        assert!(call.url(&input).is_err());
        let args = json!({});
        let input = CallInput {
            args: args.as_object().unwrap(),
            this: &Json::Null,
            batch: None,
        };
        assert!(call.url(&input).is_err());
    }

    #[test]
    fn mapping_errors_are_reported_with_coordinates() {
        let sdl = r#"
            type Query {
              a(id: ID!): Int @rest(path: "/a/{$args.idd}")
              b: Int @rest(path: "a", method: "FETCH")
              c(id: ID): Int @rest(path: "/c/{$this.id}", body: "x")
              d: Int
            }
            type User @key(fields: "id") {
              id: ID!
              orders: [Int] @rest(path: "/u/{$this.name}/orders", batch: "/orders?ids={$batch.id}")
              other: [Int] @rest(path: "/u/{$this.id}", batch: "/orders?ids={$this.id}", batchKey: "userId")
            }
        "#;
        let Err(message) = source(sdl) else {
            panic!("should fail")
        };
        for expected in [
            "Query.a @rest: `$args.idd`: Query.a has no argument `idd` (arguments: id)",
            "Query.b @rest: method \"FETCH\" is not one of",
            "Query.b @rest: path: `a` must start with `/`",
            "Query.c @rest: a GET call cannot have a body",
            "Query.c @rest: `$this.id`: root fields have no parent object",
            "Query.d: a root field of this source needs @rest",
            "User.orders @rest: `$this.name`: representations of User carry only id",
            "User.orders @rest: `batch` needs `batchKey`",
            "User.other @rest: batch: a batch call serves many entities; use $batch.FIELD, not $this",
        ] {
            assert!(
                message.contains(expected),
                "missing {expected:?} in:\n{message}"
            );
        }
    }

    #[test]
    fn a_valid_mapping_builds() {
        let sdl = r#"
            type Query { order(id: ID!): Order @rest(path: "/orders/{$args.id}") }
            type Order @key(fields: "id") @rest(path: "/orders/{$this.id}", batch: "/orders?ids={$batch.id}", batchKey: "id", batchResult: "results") {
              id: ID!
              total: Int @map(path: "total.cents")
            }
            type User @key(fields: "id") {
              id: ID!
              orders(first: Int = 5): [Order] @rest(path: "/users/{$this.id}/orders", query: ["limit={$args.first}"], headers: ["x-user: {$this.id}"], batch: "/orders?userIds={$batch.id}&limit={$args.first}", batchKey: "userId", batchResult: "results")
            }
        "#;
        source(sdl).unwrap();
    }
}
