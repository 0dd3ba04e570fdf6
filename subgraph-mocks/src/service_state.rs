//! Runtime state of the REST and gRPC mock services: counters, faults, the gate and
//! per-endpoint call counts, shared by their handlers and [`crate::services::MockServices`].

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::conn::ConnHandle;
use crate::fault::{Counters, FaultState};
use crate::gate::GateSlot;

/// Runtime state of one service.
#[derive(Default)]
pub(crate) struct ServiceState {
    pub counters: Counters,
    pub fault: FaultState,
    pub gate: GateSlot,
    calls: Mutex<BTreeMap<String, u64>>,
}

/// What a guarded call should do after counters, gate and faults were applied.
pub(crate) enum Verdict {
    /// Answer normally.
    Serve,
    /// Close the connection without an answer (or, for gRPC, answer `UNAVAILABLE`).
    Down,
    /// The gate timed out: calls did not arrive together.
    GateTimeout,
    /// Answer a server error.
    Error,
    /// Answer a malformed body.
    Garbage,
}

impl ServiceState {
    /// Counts a call to `endpoint` (`keys` = entities in a batch call, `None` for a single
    /// call), waits at the gate, then applies the fault.
    pub async fn guard(&self, endpoint: &str, keys: Option<usize>) -> Verdict {
        let c = &self.counters;
        Counters::add(&c.requests, 1);
        match keys {
            Some(n) => {
                Counters::add(&c.entity_requests, 1);
                Counters::add(&c.representations, n as u64);
            }
            None => Counters::add(&c.root_requests, 1),
        }
        if let Ok(mut calls) = self.calls.lock() {
            *calls.entry(endpoint.to_string()).or_default() += 1;
        }
        if !self.gate.pass().await {
            return Verdict::GateTimeout;
        }
        let fault = self.fault.get();
        if fault.down {
            Counters::add(&c.dropped, 1);
            return Verdict::Down;
        }
        if fault.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(fault.latency_ms)).await;
        }
        if self.fault.next_is_500(&fault) {
            Counters::add(&c.injected_http_500, 1);
            return Verdict::Error;
        }
        if self.fault.next_is_graphql_error(&fault) {
            Counters::add(&c.injected_graphql_errors, 1);
            return Verdict::Garbage;
        }
        Verdict::Serve
    }

    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    pub fn reset(&self) {
        self.counters.reset();
        self.fault.restart_sequences();
        if let Ok(mut calls) = self.calls.lock() {
            calls.clear();
        }
    }
}

/// State shared by both services' handlers and [`MockServices`].
#[derive(Default)]
pub(crate) struct ServicesShared {
    pub orders: ServiceState,
    pub notifications: ServiceState,
    pub pricing: ServiceState,
}

impl ServicesShared {
    pub fn get(&self, service: &str) -> Option<&ServiceState> {
        match service {
            "orders" => Some(&self.orders),
            "notifications" => Some(&self.notifications),
            "partner-pricing" => Some(&self.pricing),
            _ => None,
        }
    }
}

/// A REST handler's guard: applies `state`'s counters, gate and faults; `Err` is the
/// response to send instead (a closed connection when the service is down).
pub(crate) async fn rest_guard(
    state: &ServiceState,
    service: &str,
    conn: Option<ConnHandle>,
    endpoint: &str,
    keys: Option<usize>,
) -> Result<(), Response> {
    match state.guard(endpoint, keys).await {
        Verdict::Serve => Ok(()),
        Verdict::Down => match conn {
            Some(conn) => {
                conn.kill();
                std::future::pending().await
            }
            None => Err(StatusCode::SERVICE_UNAVAILABLE.into_response()),
        },
        Verdict::GateTimeout => Err((
            StatusCode::GATEWAY_TIMEOUT,
            axum::Json(json!({"error": "gate timed out: the calls did not arrive together"})),
        )
            .into_response()),
        Verdict::Error => Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({"error": format!("injected HTTP 500 ({service})")})),
        )
            .into_response()),
        Verdict::Garbage => Err((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "{\"results\": [{\"id\": \"1001\", <html>garbage",
        )
            .into_response()),
    }
}

/// The connection a request came on, to drop it when the service is down.
pub(crate) fn conn_of(req: &Request) -> Option<ConnHandle> {
    req.extensions().get::<ConnHandle>().cloned()
}
