//! The non-GraphQL backends of the example graph: [`MockServices`] runs the REST `orders`
//! service ([`crate::orders`], axum) and the gRPC `notifications` service
//! ([`crate::notifications`], tonic), each on its own ephemeral listener, with the same
//! request counters ([`Stats`]) and fault injection ([`Fault`]) as the GraphQL subgraphs,
//! plus per-endpoint call counts and an optional [`Gate`].
//!
//! How the [`Stats`] fields read for these services: `requests` counts every call,
//! `entity_requests` the batch calls (many entities in one call), `representations` the
//! keys sent in batch calls, `root_requests` every other call. Faults: `latency_ms` delays
//! each answer; `down` closes the connection without an answer (REST) or answers
//! `UNAVAILABLE` (gRPC); `http_500_rate` answers HTTP 500 (REST) or `INTERNAL` (gRPC);
//! `graphql_error_rate` answers a malformed body: HTTP 200 with broken JSON (REST), or a
//! message that is not valid protobuf (gRPC).
//!
//! Control routes on the REST listener: `GET /control/stats` (`{"orders": Stats,
//! "notifications": Stats, "calls": {...}}`), `POST /control/reset`, and
//! `POST /control/fault/{orders|notifications}` with a JSON [`Fault`] body, and the live
//! event sources ([`crate::events`]) at `GET|POST /control/subscriptions/{orders|notifications}`:
//! `emit` takes an order id (streamed to `GET /users/{id}/order-events` of its user) or a
//! notification id (to `StreamNotifications` of its user).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tracing::info;

use crate::events::{Command, Controls};
use crate::fault::{Fault, Stats};
use crate::gate::Gate;
use crate::notifications::NotificationEvents;
use crate::orders::OrderEvents;
use crate::service_state::{ServiceState, ServicesShared};

/// The services' names: the REST orders service, the gRPC notifications service, and
/// the REST partner-pricing service (of the partner BFF alone; it shares the orders
/// service's listener, under `/partner-pricing`).
pub const SERVICES: [&str; 3] = ["orders", "notifications", "partner-pricing"];

/// Handle to the running REST and gRPC mock services. Methods taking a service name panic
/// on a name not in [`SERVICES`]. Dropping the handle aborts the servers; prefer
/// [`MockServices::shutdown`].
pub struct MockServices {
    shared: Arc<ServicesShared>,
    live: Arc<Live>,
    rest_addr: SocketAddr,
    grpc_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for MockServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockServices")
            .field("rest_addr", &self.rest_addr)
            .field("grpc_addr", &self.grpc_addr)
            .finish_non_exhaustive()
    }
}

impl MockServices {
    /// Starts both services on ephemeral ports of `host` (e.g. `"127.0.0.1"`).
    pub async fn start(host: &str) -> anyhow::Result<Self> {
        Self::start_on(&format!("{host}:0"), &format!("{host}:0")).await
    }

    /// Starts the REST service on `rest_addr` and the gRPC service on `grpc_addr`.
    pub async fn start_on(rest_addr: &str, grpc_addr: &str) -> anyhow::Result<Self> {
        let shared = Arc::new(ServicesShared::default());
        let (shutdown, _) = watch::channel(false);
        let rest = TcpListener::bind(rest_addr)
            .await
            .with_context(|| format!("cannot listen on {rest_addr}"))?;
        let grpc = TcpListener::bind(grpc_addr)
            .await
            .with_context(|| format!("cannot listen on {grpc_addr}"))?;
        let rest_addr = rest.local_addr()?;
        let grpc_addr = grpc.local_addr()?;
        let live = Arc::new(Live {
            orders: Arc::new(crate::orders::order_events_source()),
            notifications: Arc::new(crate::notifications::notification_events_source()),
        });
        let rest_router = crate::orders::router(shared.clone(), live.orders.clone())
            .merge(crate::pricing::router(shared.clone()))
            .merge(control(shared.clone(), live.clone()));
        let grpc_router = crate::notifications::router(shared.clone(), live.notifications.clone());
        let tasks = vec![
            tokio::spawn(accept_loop(rest, rest_router, shutdown.subscribe())),
            tokio::spawn(accept_loop(grpc, grpc_router, shutdown.subscribe())),
        ];
        info!(rest = %rest_addr, grpc = %grpc_addr, "mock services listening");
        Ok(Self {
            shared,
            live,
            rest_addr,
            grpc_addr,
            shutdown,
            tasks,
        })
    }

    fn state(&self, service: &str) -> &ServiceState {
        self.shared
            .get(service)
            .unwrap_or_else(|| panic!("unknown service `{service}`, expected one of {SERVICES:?}"))
    }

    /// The service's base URL: `http://127.0.0.1:PORT` (REST base URL, or gRPC endpoint).
    pub fn url(&self, service: &str) -> String {
        let (addr, prefix) = match service {
            "orders" => (self.rest_addr, ""),
            "partner-pricing" => (self.rest_addr, "/partner-pricing"),
            "notifications" => (self.grpc_addr, ""),
            _ => panic!("unknown service `{service}`, expected one of {SERVICES:?}"),
        };
        let ip = if addr.ip().is_unspecified() {
            std::net::IpAddr::from([127, 0, 0, 1])
        } else {
            addr.ip()
        };
        format!("http://{}{prefix}", SocketAddr::new(ip, addr.port()))
    }

    /// A snapshot of the service's counters.
    pub fn stats(&self, service: &str) -> Stats {
        self.state(service).counters.snapshot()
    }

    /// Calls per endpoint (`"GET /users/{id}/orders"`, `"ListNotifications"`, ...).
    pub fn calls(&self, service: &str) -> BTreeMap<String, u64> {
        self.state(service).calls()
    }

    /// Zeroes counters and call counts (faults stay).
    pub fn reset_stats(&self) {
        self.shared.orders.reset();
        self.shared.notifications.reset();
        self.shared.pricing.reset();
    }

    /// Sets the service's fault, effective for the next call.
    pub fn set_fault(&self, service: &str, fault: Fault) {
        self.state(service).fault.set(fault);
    }

    /// Makes the service's calls wait at `gate` (`None` removes it).
    pub fn set_gate(&self, service: &str, gate: Option<Arc<Gate>>) {
        self.state(service).gate.set(gate);
    }

    fn live(&self, service: &str) -> &dyn Controls {
        self.live
            .get(service)
            .unwrap_or_else(|| panic!("unknown service `{service}`, expected one of {SERVICES:?}"))
    }

    /// Live events: send the order (`orders`) or notification (`notifications`) with this
    /// id to the open streams of its user; how many streams (of any user) received it.
    /// Panics on an unknown id.
    pub fn emit(&self, service: &str, id: &str) -> usize {
        self.live(service)
            .apply(Command::Emit(id))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A failure on every open stream of the service: an `error` event (orders, the
    /// stream goes on) or the end of the call with `INTERNAL` (notifications).
    pub fn fail_streams(&self, service: &str, message: &str) -> usize {
        self.live(service)
            .apply(Command::Fail(message))
            .unwrap_or(0)
    }

    /// End every open stream of the service normally.
    pub fn complete_streams(&self, service: &str) -> usize {
        self.live(service).apply(Command::Complete).unwrap_or(0)
    }

    /// Drop the connections of every open stream of the service, mid-stream.
    pub fn disconnect_streams(&self, service: &str) {
        let _ = self.live(service).apply(Command::Disconnect);
    }

    /// Wait (bounded by `timeout`) until exactly `n` streams of the service are open.
    pub async fn wait_for_streams(&self, service: &str, n: usize, timeout: Duration) -> bool {
        crate::events::wait_for_streams(self.live(service), n, timeout).await
    }

    /// Stops accepting, lets in-flight calls finish (at most 5 s), closes everything.
    pub async fn shutdown(mut self) {
        self.shutdown.send_replace(true);
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

impl Drop for MockServices {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn accept_loop(listener: TcpListener, router: Router, shutdown: watch::Receiver<bool>) {
    let mut stop = shutdown.clone();
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            () = async { let _ = stop.wait_for(|s| *s).await; } => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    conns.spawn(crate::conn::serve_connection(stream, router.clone(), shutdown.clone(), None));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while conns.join_next().await.is_some() {}
    })
    .await;
}

/// The services' live event sources.
struct Live {
    orders: Arc<OrderEvents>,
    notifications: Arc<NotificationEvents>,
}

impl Live {
    fn get(&self, service: &str) -> Option<&dyn Controls> {
        match service {
            "orders" => Some(&*self.orders),
            "notifications" => Some(&*self.notifications),
            _ => None,
        }
    }
}

fn control(shared: Arc<ServicesShared>, live: Arc<Live>) -> Router {
    Router::new()
        .route("/control/stats", get(control_stats))
        .route("/control/reset", post(control_reset))
        .route("/control/fault/{service}", post(control_fault))
        .with_state(shared)
        .merge(
            Router::new()
                .route(
                    "/control/subscriptions/{service}",
                    get(control_get_events).post(control_events),
                )
                .with_state(live),
        )
}

async fn control_stats(State(s): State<Arc<ServicesShared>>) -> Response {
    let mut map = Map::new();
    let mut calls = Map::new();
    for name in SERVICES {
        if let Some(state) = s.get(name) {
            map.insert(name.into(), json!(state.counters.snapshot()));
            calls.insert(name.into(), json!(state.calls()));
        }
    }
    map.insert("calls".into(), Value::Object(calls));
    axum::Json(Value::Object(map)).into_response()
}

async fn control_reset(State(s): State<Arc<ServicesShared>>) -> StatusCode {
    s.orders.reset();
    s.notifications.reset();
    s.pricing.reset();
    StatusCode::NO_CONTENT
}

fn unknown(service: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        format!("unknown service `{service}` (expected one of {SERVICES:?})"),
    )
        .into_response()
}

async fn control_get_events(
    State(live): State<Arc<Live>>,
    Path(service): Path<String>,
) -> Response {
    match live.get(&service) {
        Some(live) => axum::Json(live.status()).into_response(),
        None => unknown(&service),
    }
}

async fn control_events(
    State(live): State<Arc<Live>>,
    Path(service): Path<String>,
    body: Bytes,
) -> Response {
    match live.get(&service) {
        Some(live) => crate::events::control(live, &body),
        None => unknown(&service),
    }
}

async fn control_fault(
    State(s): State<Arc<ServicesShared>>,
    Path(service): Path<String>,
    body: Bytes,
) -> Response {
    let Some(state) = s.get(&service) else {
        return unknown(&service);
    };
    let fault: Fault = if body.iter().all(u8::is_ascii_whitespace) {
        Fault::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(f) => f,
            Err(e) => {
                return (StatusCode::BAD_REQUEST, format!("invalid fault: {e}")).into_response();
            }
        }
    };
    state.fault.set(fault);
    axum::Json(fault.normalized()).into_response()
}
