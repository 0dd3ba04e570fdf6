//! Runtime state of the mock subgraphs, shared by the HTTP handlers, the accept loops
//! and [`crate::server::MockSubgraphs`]: counters, faults, the up/down flags, the gate, and each
//! subgraph's response cache.
//!
//! Since the data never changes, a subgraph's answer is a pure function of the POST body; the
//! serialized answer is kept in a bounded per-subgraph cache keyed by the exact body bytes, so
//! the repeated queries of a load benchmark cost a hash lookup (counters and faults still apply
//! to every request).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::events::ReviewEvents;
use crate::fault::{Counters, Fault, FaultState, Stats};
use crate::gate::GateSlot;
use crate::subgraphs::{self, AnySchema, SUBGRAPHS};

/// How long [`Shared::wait_applied`] waits for a listener to close or re-open.
const APPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// Per-subgraph response cache bounds.
const CACHE_MAX_ENTRIES: usize = 4096;
const CACHE_MAX_BYTES: usize = 64 << 20;

/// Runtime state of one subgraph.
pub(crate) struct SubgraphState {
    pub name: &'static str,
    pub schema: &'static AnySchema,
    pub counters: Counters,
    pub fault: FaultState,
    /// Mirrors `fault.down`; wakes the accept loop and the connections.
    pub down: watch::Sender<bool>,
    /// Separate mode: whether the subgraph's listener is currently bound.
    pub listening: watch::Sender<bool>,
    pub cache: ResponseCache,
    pub gate: GateSlot,
}

/// State shared by the handlers, the accept loops and [`MockSubgraphs`].
pub(crate) struct Shared {
    pub subgraphs: [SubgraphState; 4],
    pub separate: bool,
    /// The source of `reviewAdded` events.
    pub events: Arc<ReviewEvents>,
}

impl Shared {
    pub fn new(separate: bool) -> Arc<Self> {
        Arc::new(Self {
            subgraphs: std::array::from_fn(|i| SubgraphState {
                name: SUBGRAPHS[i],
                schema: &subgraphs::schemas()[i],
                counters: Counters::default(),
                fault: FaultState::default(),
                down: watch::Sender::new(false),
                listening: watch::Sender::new(false),
                cache: ResponseCache::default(),
                gate: GateSlot::default(),
            }),
            separate,
            events: Arc::new(ReviewEvents::new(|id| crate::data::data().review(id))),
        })
    }

    pub fn all_stats(&self) -> Vec<(&'static str, Stats)> {
        self.subgraphs
            .iter()
            .map(|s| (s.name, s.counters.snapshot()))
            .collect()
    }

    pub fn reset_stats(&self) {
        for s in &self.subgraphs {
            s.counters.reset();
            s.fault.restart_sequences();
        }
    }

    pub fn set_fault(&self, index: usize, fault: Fault) {
        let sg = &self.subgraphs[index];
        let fault = fault.normalized();
        sg.fault.set(fault);
        sg.down.send_replace(fault.down);
        if fault == Fault::default() {
            info!(subgraph = sg.name, "fault cleared");
        } else {
            info!(subgraph = sg.name, ?fault, "fault set");
        }
    }

    /// In separate mode, waits (bounded) until the listener state matches the `down` flag.
    pub async fn wait_applied(&self, index: usize) {
        if !self.separate {
            return;
        }
        let sg = &self.subgraphs[index];
        let want_listening = !sg.fault.is_down();
        let mut rx = sg.listening.subscribe();
        let waited = tokio::time::timeout(APPLY_TIMEOUT, async {
            rx.wait_for(|l| *l == want_listening).await.is_ok()
        })
        .await;
        if !matches!(waited, Ok(true)) {
            warn!(
                subgraph = sg.name,
                want_listening, "listener did not reach the requested state in time"
            );
        }
    }
}

/// A cached answer plus the classification of the request that produced it.
#[derive(Clone)]
pub(crate) struct Cached {
    pub body: Bytes,
    pub ops: OpCounts,
}

#[derive(Clone, Copy, Default)]
pub(crate) struct OpCounts {
    /// The request was a JSON array (answers must be arrays too).
    pub batched: bool,
    pub entity: u64,
    pub root: u64,
    pub representations: u64,
}

/// Bounded map from exact POST body to serialized answer.
#[derive(Default)]
pub(crate) struct ResponseCache {
    map: RwLock<HashMap<Bytes, Cached>>,
    bytes: AtomicUsize,
}

impl ResponseCache {
    pub fn get(&self, key: &[u8]) -> Option<Cached> {
        self.map.read().ok()?.get(key).cloned()
    }

    pub fn insert(&self, key: &[u8], value: Cached) {
        let size = key.len() + value.body.len();
        if self.bytes.load(Relaxed) + size > CACHE_MAX_BYTES {
            return;
        }
        if let Ok(mut map) = self.map.write()
            && map.len() < CACHE_MAX_ENTRIES
            && !map.contains_key(key)
        {
            map.insert(Bytes::copy_from_slice(key), value);
            self.bytes.fetch_add(size, Relaxed);
        }
    }
}
