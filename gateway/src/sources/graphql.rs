//! GraphQL subgraphs over HTTP: POST a JSON GraphQL request on a pooled keep-alive
//! client, read a GraphQL JSON response. Subscriptions go over WebSocket (`ws.rs`) or,
//! configured per subgraph, over server-sent events (`graphql-sse`, distinct
//! connections mode: one POST per subscription, answered with `next` events and a
//! `complete`).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;

use super::sse::{self, ReadError};
use super::ws::{self, WsUpstream};
use super::{EventStream, FetchError, Source, SourceRequest, SourceResponse, root_cause};

/// Responses larger than this are refused rather than buffered, unless the source's
/// policy sets its own `max_response_bytes` (whose default this is).
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// At most this much is allocated up front for a declared `Content-Length`: an
/// upstream that declares a large body and sends little does not cost the whole of it.
const PREALLOCATE_BYTES: usize = 1024 * 1024;

/// Streamed events larger than this end the subscription rather than being buffered.
const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// Timeouts, retries and the rest are the policy stack's business.
pub struct GraphqlSource {
    url: reqwest::Url,
    client: reqwest::Client,
    subscriptions: Option<Arc<Subscriptions>>,
    max_response_bytes: usize,
}

/// Where and how a subgraph is subscribed to.
pub enum Subscriptions {
    WebSocket(WsUpstream),
    /// `graphql-sse` at this URL.
    Sse(reqwest::Url),
}

impl GraphqlSource {
    pub fn new(url: reqwest::Url, client: reqwest::Client) -> Self {
        GraphqlSource {
            url,
            client,
            subscriptions: None,
            max_response_bytes: MAX_RESPONSE_BYTES,
        }
    }

    /// Refuse answers larger than `bytes`.
    pub fn with_max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// Serve subscriptions through `upstream`.
    pub fn with_subscriptions(mut self, upstream: Subscriptions) -> Self {
        self.subscriptions = Some(Arc::new(upstream));
        self
    }

    /// A client tuned for many small requests to few hosts; HTTPS trusts the system
    /// roots.
    pub fn default_client() -> reqwest::Client {
        Self::client_builder().build().unwrap_or_default()
    }

    /// The settings of [`GraphqlSource::default_client`], for clients with their own
    /// TLS settings (`crate::sources::tls::upstream_client`).
    pub fn client_builder() -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5))
    }
}

impl Source for GraphqlSource {
    fn fetch(
        &self,
        request: SourceRequest,
    ) -> BoxFuture<'static, Result<SourceResponse, FetchError>> {
        tracing::Span::current().record("kind", "graphql");
        let call = self.client.post(self.url.clone()).header(
            http::header::ACCEPT,
            "application/graphql-response+json, application/json",
        );
        let call = match &request.uploads {
            None => call
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(request_body(&request, request.variables.as_bytes())),
            Some(uploads) => {
                match uploads.request_body(&request.variables, |v| request_body(&request, v)) {
                    // Subgraphs with CSRF prevention (Apollo Server's) want this header
                    // on multipart requests, as the gateway wants it from clients.
                    Ok((content_type, body)) => call
                        .header(http::header::CONTENT_TYPE, content_type)
                        .header("apollo-require-preflight", "true")
                        .body(body),
                    Err(e) => return Box::pin(async move { Err(e) }),
                }
            }
        };
        let call = call.headers(request.headers).send();
        let limit = self.max_response_bytes;
        Box::pin(async move {
            {
                let response = call
                    .await
                    .map_err(|e| FetchError::Connect(root_cause(&e)))?;
                let status = response.status();
                let max_age = response
                    .headers()
                    .get(http::header::CACHE_CONTROL)
                    .and_then(|v| v.to_str().ok())
                    .and_then(max_age);
                let is_graphql_response = response
                    .headers()
                    .get(http::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.starts_with("application/graphql-response+json"));
                let body = read_body(response, limit).await?;
                // A non-2xx answer is an HTTP failure, except a 4xx GraphQL response with
                // the newer media type, which carries request errors worth forwarding.
                let usable =
                    status.is_success() || (status.is_client_error() && is_graphql_response);
                if !usable {
                    return Err(FetchError::Http(status.as_u16()));
                }
                let mut parsed = SourceResponse::from_json(&body).map_err(|e| {
                    if status.is_success() {
                        FetchError::BadResponse(format!("not a GraphQL JSON response ({e})"))
                    } else {
                        FetchError::Http(status.as_u16())
                    }
                })?;
                if parsed.data.is_none() && parsed.errors.is_none() {
                    return Err(FetchError::BadResponse(
                        "neither `data` nor `errors` in the response".into(),
                    ));
                }
                parsed.max_age = max_age;
                Ok(parsed)
            }
        })
    }

    fn subscribe(
        &self,
        request: SourceRequest,
    ) -> BoxFuture<'static, Result<EventStream, FetchError>> {
        tracing::Span::current().record("kind", "graphql");
        let upstream = self.subscriptions.clone();
        let client = self.client.clone();
        let limit = self.max_response_bytes;
        Box::pin(async move {
            match upstream.as_deref() {
                Some(Subscriptions::WebSocket(upstream)) => ws::subscribe(upstream, request).await,
                Some(Subscriptions::Sse(url)) => subscribe_sse(&client, url, request, limit).await,
                None => Err(FetchError::Upstream {
                    code: "SUBSCRIPTION_NOT_SUPPORTED".into(),
                    message: "subscriptions are not configured for this subgraph".into(),
                    retryable: false,
                }),
            }
        })
    }
}

/// Reads a whole response body, in chunks so that one without `Content-Length` is
/// bounded too; a declared length (up to a cap) is allocated once.
async fn read_body(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, FetchError> {
    let too_large = || FetchError::BadResponse(format!("response larger than {limit} bytes"));
    let declared = response.content_length().unwrap_or(0);
    if declared > limit as u64 {
        return Err(too_large());
    }
    let mut body = Vec::with_capacity((declared as usize).min(PREALLOCATE_BYTES));
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| FetchError::Connect(root_cause(&e)))?
    {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Opens a `graphql-sse` subscription; resolves with the response head. A subgraph
/// that refuses the operation answers one GraphQL response instead of a stream: that
/// is the only event.
async fn subscribe_sse(
    client: &reqwest::Client,
    url: &reqwest::Url,
    request: SourceRequest,
    limit: usize,
) -> Result<EventStream, FetchError> {
    let response = client
        .post(url.clone())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "text/event-stream")
        .headers(request.headers.clone())
        .body(request_body(&request, request.variables.as_bytes()))
        .send()
        .await
        .map_err(|e| FetchError::Connect(root_cause(&e)))?;
    let status = response.status();
    let is_stream = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if !(status.is_success() && is_stream) {
        let body = read_body(response, limit).await?;
        return match SourceResponse::event_from_json(&body) {
            Ok(answer) if status.is_success() || status.is_client_error() => {
                Ok(futures::stream::once(async move { Ok(answer) }).boxed())
            }
            _ if status.is_success() => Err(FetchError::BadResponse(
                "neither an event stream nor a GraphQL response".into(),
            )),
            _ => Err(FetchError::Http(status.as_u16())),
        };
    }
    let events = sse::read(response, MAX_EVENT_BYTES);
    // `true` once the stream ended with an error: nothing follows it.
    Ok(
        futures::stream::unfold((events, false), |(mut events, ended)| async move {
            if ended {
                return None;
            }
            loop {
                let failure = match events.next().await {
                    Some(Ok(e)) if e.event == "next" => {
                        return Some(match SourceResponse::event_from_json(e.data.as_bytes()) {
                            Ok(event) => (Ok(event), (events, false)),
                            Err(bad) => (Err(bad), (events, true)),
                        });
                    }
                    Some(Ok(e)) if e.event == "complete" => return None,
                    // Other events (heartbeats of some servers) carry nothing for us.
                    Some(Ok(_)) => continue,
                    Some(Err(ReadError::TooLarge(limit))) => {
                        FetchError::BadResponse(format!("an event larger than {limit} bytes"))
                    }
                    Some(Err(ReadError::Broken(cause))) => FetchError::Connect(cause),
                    None => FetchError::Connect("the event stream ended without `complete`".into()),
                };
                return Some((Err(failure), (events, true)));
            }
        })
        .boxed(),
    )
}

/// Freshness from `Cache-Control`: `max-age=N`, or zero when the response must not be
/// stored or shared.
fn max_age(value: &str) -> Option<Duration> {
    let mut age = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if matches!(lower.as_str(), "no-store" | "no-cache" | "private") {
            return Some(Duration::ZERO);
        }
        if let Some(n) = lower.strip_prefix("max-age=") {
            age = n
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    age
}

/// `{"query":…,"operationName":…,"variables":…}`, the variables copied as written.
fn request_body(request: &SourceRequest, variables: &[u8]) -> Vec<u8> {
    use crate::sources::value::write_json_string;
    let mut body = Vec::with_capacity(request.operation.len() + variables.len() + 64);
    body.extend_from_slice(b"{\"query\":");
    write_json_string(&mut body, request.operation.as_bytes());
    body.extend_from_slice(b",\"operationName\":");
    write_json_string(&mut body, request.operation_name.as_bytes());
    body.extend_from_slice(b",\"variables\":");
    body.extend_from_slice(variables);
    body.push(b'}');
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_request_body_with_variables_as_given() -> Result<(), serde_json::Error> {
        let mut variables = crate::sources::VariablesWriter::new();
        variables.value("id", &serde_json::json!("a \"quoted\"\nid"));
        variables
            .entry("representations")
            .extend_from_slice(br#"[{"__typename":"User","id":"1"}]"#);
        let request = SourceRequest {
            operation: "query Q($id: ID) {\n  a(s: \"x\")\n}".into(),
            operation_name: "Q".into(),
            variables: variables.finish(),
            is_mutation: false,
            uploads: None,
            headers: Default::default(),
            client_headers: Default::default(),
            principal: None,
            deadline: None,
        };
        let body: serde_json::Value =
            serde_json::from_slice(&request_body(&request, request.variables.as_bytes()))?;
        assert_eq!(
            body,
            serde_json::json!({
                "query": "query Q($id: ID) {\n  a(s: \"x\")\n}",
                "operationName": "Q",
                "variables": {
                    "id": "a \"quoted\"\nid",
                    "representations": [{"__typename": "User", "id": "1"}],
                },
            })
        );
        assert_eq!(
            request.variables.to_map(),
            body["variables"].as_object().cloned().unwrap_or_default()
        );
        Ok(())
    }

    #[test]
    fn reads_cache_control() {
        assert_eq!(max_age("public, max-age=60"), Some(Duration::from_secs(60)));
        assert_eq!(max_age("max-age=60, private"), Some(Duration::ZERO));
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("public"), None);
    }
}
