//! The state every handler and middleware of the HTTP edge shares.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::pipeline::Engine;
use crate::telemetry::Metrics;

use super::auth;
use super::dedupe;
use super::ws::config::StreamingConfig;

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
}
