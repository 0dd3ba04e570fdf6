//! Inbound de-duplication: concurrent requests that are identical in everything that
//! can change the answer share one execution and one serialized response.
//!
//! "Everything" is conservative: the endpoint (unified or BFF), document, operation
//! name, variables, extensions, method, the caller (principal) and every request
//! header except a short list that cannot change the result (request and trace ids,
//! user agent, transport headers). A header the gateway does not know about, such as a
//! cookie or a header forwarded to a source, therefore keeps requests apart. Only
//! queries are shared; mutations always execute on their own.

use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use rustc_hash::FxHashMap;
use rustc_hash::FxHasher;

use crate::common::principal::Principal;
use crate::request::Request;

/// Headers that never change a response.
const IGNORED: [&str; 10] = [
    "x-request-id",
    "traceparent",
    "tracestate",
    "user-agent",
    "accept-encoding",
    "connection",
    "keep-alive",
    "content-length",
    "host",
    "te",
];

/// A finished response, shareable between identical requests.
#[derive(Debug)]
pub struct Outcome {
    pub status: StatusCode,
    pub body: bytes::Bytes,
    pub outcome: &'static str,
    pub upstream_requests: usize,
    pub operation: Option<String>,
    pub allow_post: bool,
    /// Whether a response cache answered (see `executor::Response::cache_hit`).
    pub cache_hit: Option<bool>,
}

type SharedOutcome = Shared<BoxFuture<'static, Arc<Outcome>>>;

#[derive(Default)]
pub struct InboundDedupe {
    in_flight: Mutex<FxHashMap<u64, SharedOutcome>>,
}

/// The identity of a request for sharing purposes.
pub fn key(
    view: Option<&str>,
    request: &Request,
    over_get: bool,
    media: u8,
    headers: &HeaderMap,
    principal: &Principal,
) -> u64 {
    let mut h = FxHasher::default();
    view.hash(&mut h);
    request.query.hash(&mut h);
    request.operation_name.hash(&mut h);
    serde_json::to_string(&request.variables)
        .unwrap_or_default()
        .hash(&mut h);
    serde_json::to_string(&request.extensions)
        .unwrap_or_default()
        .hash(&mut h);
    over_get.hash(&mut h);
    media.hash(&mut h);
    let mut kept: Vec<(&str, &[u8])> = headers
        .iter()
        .filter(|(n, _)| !IGNORED.contains(&n.as_str()))
        .map(|(n, v)| (n.as_str(), v.as_bytes()))
        .collect();
    kept.sort_unstable();
    kept.hash(&mut h);
    (principal.kind as u8).hash(&mut h);
    principal.subject.hash(&mut h);
    principal.tier.hash(&mut h);
    principal.scopes.hash(&mut h);
    h.finish()
}

impl InboundDedupe {
    /// Run `work` once for all concurrent callers with the same key.
    pub async fn run(&self, key: u64, work: BoxFuture<'static, Arc<Outcome>>) -> Arc<Outcome> {
        let shared = {
            let Ok(mut map) = self.in_flight.lock() else {
                return work.await;
            };
            match map.get(&key) {
                Some(existing) => existing.clone(),
                None => {
                    let shared = work.shared();
                    map.insert(key, shared.clone());
                    shared
                }
            }
        };
        let outcome = shared.clone().await;
        // The first caller to finish removes the entry; later identical requests
        // execute afresh.
        if let Ok(mut map) = self.in_flight.lock()
            && map.get(&key).is_some_and(|s| s.ptr_eq(&shared))
        {
            map.remove(&key);
        }
        outcome
    }
}
