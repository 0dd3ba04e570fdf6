//! Incremental delivery of `@defer` (the format Apollo Router and Hive use: a first
//! payload with `data` and `hasNext`, then payloads of `incremental` items, each
//! `{data, path, label}`). The primary part runs beside the deferred fetches that need
//! nothing from it and is sent as soon as it is done; then the deferred steps run, and
//! each fragment is sent once the steps it needs are done.

use std::sync::Arc;

use apollo_compiler::response::ExecutionResponse;
use futures::future::{Either, select};
use serde_json::{Map, Value as Json};
use tokio::sync::mpsc;

use super::stream::ResponseStream;
use super::{Execution, Response, response, store};
use crate::planner::DeferredPlan;
use crate::request::{Prepared, RequestContext};
use crate::schema::SchemaSnapshot;
use crate::sources::Sources;
use crate::telemetry::Metrics;

/// Payloads computed ahead of a slow client.
const BUFFERED_PAYLOADS: usize = 4;

/// One query with deferred fragments, owned for the task that delivers it.
pub struct Incremental {
    pub schema: Arc<SchemaSnapshot>,
    pub sources: Sources,
    pub metrics: Arc<Metrics>,
    pub prepared: Arc<Prepared>,
    pub variables: Map<String, Json>,
    pub introspection: Option<ExecutionResponse>,
    pub context: RequestContext,
}

/// The payloads, in order; the last has `hasNext: false`.
pub fn execute_incremental(run: Incremental) -> ResponseStream {
    let (payloads, receiver) = mpsc::channel(BUFFERED_PAYLOADS);
    tokio::spawn(async move { run.deliver(payloads).await });
    Box::pin(futures::stream::unfold(
        receiver,
        |mut receiver| async move { receiver.recv().await.map(|payload| (payload, receiver)) },
    ))
}

impl Incremental {
    fn execution(&self) -> Execution<'_> {
        Execution::new(&self.sources, &self.metrics, &self.context, &self.variables)
    }

    async fn deliver(mut self, payloads: mpsc::Sender<Response>) {
        let prepared = self.prepared.clone();
        let Some(deferred) = &prepared.plan.deferred else {
            return;
        };
        let introspection = self.introspection.take();
        let mut main = self.execution();
        let mut beside = self.execution();
        let root = &prepared.plan.root;
        let primary = Box::pin(async move {
            if let Some(root) = root {
                main.run(root).await;
            }
            main
        });
        let alongside = Box::pin(async move {
            if let Some(node) = &deferred.beside {
                beside.run(node).await;
            }
            beside
        });
        let (mut main, mut beside) = match select(primary, alongside).await {
            Either::Left((mut main, alongside)) => {
                if !self.first(&mut main, introspection, &payloads).await {
                    return;
                }
                (main, alongside.await)
            }
            Either::Right((beside, primary)) => {
                let mut main = primary.await;
                if !self.first(&mut main, introspection, &payloads).await {
                    return;
                }
                (main, beside)
            }
        };
        store::deep_merge(&mut main.data, &beside.data, false);
        main.errors.append(&mut beside.errors);
        main.failed.append(&mut beside.failed);
        let last = deferred.ready_after.iter().copied().max().unwrap_or(0);
        for step in 0..=last {
            if step > 0
                && let Some(node) = deferred.after.get(step - 1)
            {
                main.run(node).await;
            }
            let ready: Vec<usize> = (0..deferred.ready_after.len())
                .filter(|&id| deferred.ready_after[id] == step)
                .collect();
            if ready.is_empty() && step < last {
                continue;
            }
            let mut payload = self.payload(&main, deferred, &ready, step < last);
            // Fetch failures of this step.
            payload.errors.append(&mut main.errors);
            if payloads.send(payload).await.is_err() {
                return;
            }
        }
    }

    /// Send the primary part; `false` when the client is gone.
    async fn first(
        &self,
        main: &mut Execution<'_>,
        introspection: Option<ExecutionResponse>,
        payloads: &mpsc::Sender<Response>,
    ) -> bool {
        let mut first = main.respond(&self.schema, &self.prepared, introspection, true);
        first.has_next = Some(true);
        payloads.send(first).await.is_ok()
    }

    /// The `incremental` items of the fragments in `ready`; errors the projection
    /// finds go with the first item.
    fn payload(
        &self,
        main: &Execution<'_>,
        deferred: &DeferredPlan,
        ready: &[usize],
        has_next: bool,
    ) -> Response {
        let mut items: Vec<u8> = vec![b'['];
        let mut errors = Vec::new();
        for site in deferred
            .sites
            .iter()
            .filter(|s| ready.contains(&s.defer.id))
        {
            let found = response::project_deferred(
                &self.schema,
                site,
                &main.data,
                &self.variables,
                &mut errors,
                &main.failed,
                self.prepared.operation.client_type_names.as_deref(),
            );
            for (path, data) in found {
                if items.len() > 1 {
                    items.push(b',');
                }
                items.extend_from_slice(b"{\"data\":");
                items.extend_from_slice(&data);
                items.extend_from_slice(b",\"path\":");
                let _ = serde_json::to_writer(&mut items, &path);
                if let Some(label) = &site.defer.label {
                    items.extend_from_slice(b",\"label\":");
                    let _ = serde_json::to_writer(&mut items, label);
                }
                if !errors.is_empty() {
                    items.extend_from_slice(b",\"errors\":");
                    let _ = serde_json::to_writer(&mut items, &std::mem::take(&mut errors));
                }
                items.push(b'}');
            }
        }
        items.push(b']');
        Response {
            errors,
            incremental: (items.len() > 2).then_some(items),
            has_next: Some(has_next),
            ..Response::default()
        }
    }
}
