//! Subscriptions: the plan's first fetch is the subscription to the subgraph that owns
//! the root field. Each event it sends is merged as that fetch's answer, completed by
//! the rest of the plan (entity fetches through the same policy stack as any query),
//! projected, and yielded as one response. An upstream failure ends the stream with
//! one last response that carries the error.

use std::sync::Arc;

use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::{Map, Value as Json};
use tracing::Instrument;

use super::{Execution, PendingFetch, Response};
use crate::planner::{FetchKind, FetchNode, PlanNode};
use crate::request::{Prepared, RequestContext};
use crate::schema::SchemaSnapshot;
use crate::sources::{EventStream, FetchError, SourceResponse, Sources};
use crate::telemetry::Metrics;

/// The client's responses, one per upstream event.
pub type ResponseStream = BoxStream<'static, Response>;

/// Everything one subscription needs for its whole life: it keeps the schema version
/// it started on, whatever reloads happen meanwhile.
pub struct Subscription {
    pub schema: Arc<SchemaSnapshot>,
    pub sources: Sources,
    pub metrics: Arc<Metrics>,
    pub prepared: Arc<Prepared>,
    pub variables: Map<String, Json>,
    pub context: RequestContext,
}

enum State {
    Opening(Arc<Subscription>),
    Streaming(Arc<Subscription>, EventStream),
    Done,
}

/// Open the upstream subscription and turn its events into client responses.
pub fn subscribe(mut subscription: Subscription) -> ResponseStream {
    // Events come for as long as the client stays; each event's fetches still have
    // their own timeouts.
    subscription.context.deadline = None;
    let start = State::Opening(Arc::new(subscription));
    Box::pin(futures::stream::unfold(start, |state| async move {
        match state {
            State::Opening(run) => match run.open().await {
                Ok(events) => run.next(events).await,
                Err(error) => Some((run.failure(&error), State::Done)),
            },
            State::Streaming(run, events) => run.next(events).await,
            State::Done => None,
        }
    }))
}

impl Subscription {
    /// The subscription fetch and the steps that complete each event.
    fn split(&self) -> Option<(&FetchNode, &[PlanNode])> {
        let (first, rest) = match self.prepared.plan.root.as_ref()? {
            PlanNode::Sequence(nodes) => (nodes.first()?, &nodes[1..]),
            node => (node, &[][..]),
        };
        match first {
            PlanNode::Fetch(f) if matches!(f.kind, FetchKind::Root { .. }) => Some((f, rest)),
            _ => None,
        }
    }

    fn execution(&self) -> Execution<'_> {
        Execution::new(&self.sources, &self.metrics, &self.context, &self.variables)
    }

    async fn open(&self) -> Result<EventStream, FetchError> {
        let Some((root, _)) = self.split() else {
            return Err(FetchError::BadResponse(
                "the subscription has no single subscription fetch".into(),
            ));
        };
        let Some(source) = self.sources.get(root.graph).cloned() else {
            return Err(FetchError::Connect("no source registered".into()));
        };
        let pending = self.execution().prepare(root);
        let Some(request) = pending.request else {
            return Err(FetchError::BadResponse("nothing to subscribe to".into()));
        };
        let span = tracing::info_span!(
            "subscribe",
            otel.kind = "client",
            source = %root.service,
            kind = tracing::field::Empty,
            operation = %root.operation_name,
            breaker = tracing::field::Empty,
        );
        let opened = source.subscribe(request).instrument(span).await;
        let outcome = match &opened {
            Ok(_) => "ok".to_string(),
            Err(e) => e.code(),
        };
        self.metrics.subscription_opened(&root.service, &outcome);
        opened
    }

    async fn next(self: Arc<Self>, mut events: EventStream) -> Option<(Response, State)> {
        match events.next().await? {
            Ok(event) => {
                let response = self.complete(event).await;
                Some((response, State::Streaming(self, events)))
            }
            Err(error) => Some((self.failure(&error), State::Done)),
        }
    }

    /// One event through the rest of the plan.
    async fn complete(&self, event: SourceResponse) -> Response {
        let Some((root, rest)) = self.split() else {
            return Response::default();
        };
        self.metrics.subscription_event(&root.service);
        let span = tracing::info_span!("event", source = %root.service);
        async {
            let mut exec = self.execution();
            exec.merge(PendingFetch::answered(root), Ok(event));
            for node in rest {
                exec.run(node).await;
            }
            exec.finish(&self.schema, &self.prepared, None, false)
        }
        .instrument(span)
        .await
    }

    /// The last response: the subscription's field is null, with why.
    fn failure(&self, error: &FetchError) -> Response {
        let mut exec = self.execution();
        if let Some((root, _)) = self.split() {
            exec.fail(root, &error.code(), &error.to_string(), &[]);
        } else {
            exec.errors.push(serde_json::json!({
                "message": error.to_string(),
                "extensions": { "code": error.code() },
            }));
        }
        exec.finish(&self.schema, &self.prepared, None, false)
    }
}
