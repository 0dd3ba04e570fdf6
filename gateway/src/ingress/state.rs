//! The state every handler and middleware of the HTTP edge shares.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::bff::Bff;
use crate::common::principal::Principal;
use crate::pipeline::Engine;
use crate::request::RequestContext;
use crate::telemetry::Metrics;

use super::auth;
use super::dedupe;
use super::http::PLAN_HEADER;
use super::streaming::{PrincipalStreams, StreamSlot, StreamingConfig};

/// Shared state of the HTTP server. The engine (schema version + plan cache) is
/// swapped atomically on reload; requests in flight keep the version they started with.
pub struct AppState {
    pub engine: ArcSwap<Engine>,
    pub metrics: Arc<Metrics>,
    /// Whether clients may ask for the query plan (`x-gateway-plan: true`).
    pub allow_plan_header: bool,
    /// Client authentication and rate limits, compiled from config; swapped on reload
    /// when their config changes.
    pub access: ArcSwap<auth::Access>,
    /// The config the running `access` was compiled from (to see whether a reload
    /// changed it; recompiling resets local rate-limit counters).
    pub access_config: std::sync::Mutex<String>,
    /// Concurrent identical queries share one execution.
    pub dedupe: dedupe::InboundDedupe,
    /// Limits of subscriptions and other streams to clients.
    pub streaming: StreamingConfig,
    /// Set when the server stops: open streams end with a message instead of holding
    /// the shutdown up.
    pub closing: tokio::sync::watch::Sender<bool>,
    /// Set when a drain starts: readiness answers 503 while requests are still served.
    pub draining: std::sync::atomic::AtomicBool,
    /// Streams running per authenticated client.
    pub streams: PrincipalStreams,
    /// Say in a `Cache-Status` header whether a response cache answered.
    pub cache_status: bool,
    /// Multipart requests with files.
    pub uploads: super::UploadConfig,
    /// The largest JSON body (and `operations` or `map` part of a multipart one).
    pub max_body_bytes: usize,
}

/// Where a client's streams on `bff` are counted: apart, under the BFF's name, when it
/// sets its own per-client limit; else gateway-wide (`None`).
pub(super) fn stream_scope(bff: Option<&Bff>) -> Option<&str> {
    bff.filter(|b| b.config.streaming.max_streams_per_principal.is_some())
        .map(Bff::name)
}

impl AppState {
    /// The stream limits of the unified endpoint (`None`) or a BFF.
    pub(super) fn streaming_of(&self, bff: Option<&Bff>) -> StreamingConfig {
        match bff {
            Some(bff) => self.streaming.with(&bff.config.streaming),
            None => self.streaming.clone(),
        }
    }

    /// A place among the client's running streams, counted in `scope` (see
    /// [`stream_scope`]) against `limits`, or the refusal as a GraphQL error.
    pub(super) fn take_stream(
        &self,
        principal: &Principal,
        limits: &StreamingConfig,
        scope: Option<&str>,
    ) -> Result<Option<StreamSlot>, serde_json::Value> {
        let subject = principal
            .is_authenticated()
            .then_some(principal.subject.as_deref())
            .flatten();
        let limit = limits.max_streams_per_principal;
        self.streams.take(subject, scope, limit).map_err(|limit| {
            serde_json::json!({
                "message": format!("at most {limit} streams may run for one client"),
                "extensions": { "code": "SUBSCRIPTION_LIMIT" },
            })
        })
    }

    /// What execution needs to know about an HTTP request: its id, whether it may see
    /// its plan (`x-gateway-plan: true`, when allowed), its headers, who it acts for,
    /// and how long it may take (counted from now).
    pub(super) fn context(
        &self,
        headers: http::HeaderMap,
        request_id: http::HeaderValue,
        principal: &Arc<Principal>,
        deadline: Option<std::time::Duration>,
    ) -> RequestContext {
        RequestContext {
            request_id,
            expose_plan: self.allow_plan_header
                && headers
                    .get(PLAN_HEADER)
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true")),
            client_headers: Arc::new(headers),
            principal: principal.is_authenticated().then(|| principal.clone()),
            deadline: deadline.map(|d| tokio::time::Instant::now() + d),
            uploads: None,
        }
    }
}
