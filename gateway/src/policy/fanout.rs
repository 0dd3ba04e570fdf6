//! One upstream subscription for many identical client subscriptions: keyed like the
//! fetch de-duplication (operation, variables, the headers the source would see, the
//! vary headers), so only requests the source could not tell apart share a feed. The
//! first subscriber opens it; every event goes to all current subscribers; when the
//! last one leaves, the upstream subscription is closed.
//!
//! Each subscriber reads from a bounded broadcast buffer: one that falls behind by
//! more than it holds loses its subscription with an error event, never holds memory
//! or slows the others.

use std::sync::{Arc, Mutex, Weak};

use futures::future::{BoxFuture, Shared};
use futures::{FutureExt, StreamExt};
use rustc_hash::FxHashMap;
use tokio::sync::{broadcast, oneshot};

use crate::sources::{EventStream, FetchError, Source, SourceRequest, SourceResponse};

/// Events buffered per feed for its slowest subscriber.
const BUFFERED_EVENTS: usize = 256;

type Event = Result<SourceResponse, FetchError>;
type Opened = Shared<BoxFuture<'static, Result<(), FetchError>>>;

/// The feeds of one source, by request key.
#[derive(Default)]
pub(super) struct Fanout {
    feeds: Mutex<FxHashMap<u64, Weak<Feed>>>,
}

/// One upstream subscription and its subscribers (each holds an `Arc`).
struct Feed {
    /// Weak: when the pump ends (upstream complete or failed), receivers see the end.
    events: broadcast::WeakSender<Event>,
    opened: Opened,
    /// Dropped with the last subscriber: tells the pump to close the upstream.
    _stop: oneshot::Sender<()>,
}

impl Fanout {
    pub(super) fn subscribe(
        &self,
        inner: &Arc<dyn Source>,
        request: SourceRequest,
        key: u64,
    ) -> BoxFuture<'static, Result<EventStream, FetchError>> {
        let Ok(mut feeds) = self.feeds.lock() else {
            return inner.subscribe(request);
        };
        // Subscribe before waiting, so no event after the open is missed.
        let live = feeds.get(&key).and_then(Weak::upgrade).and_then(|feed| {
            let receiver = feed.events.upgrade()?.subscribe();
            Some((feed, receiver))
        });
        let (feed, receiver) = match live {
            Some(live) => live,
            None => {
                let (feed, receiver) = open(inner, request);
                feeds.retain(|_, f| f.strong_count() > 0);
                feeds.insert(key, Arc::downgrade(&feed));
                (feed, receiver)
            }
        };
        drop(feeds);
        Box::pin(async move {
            feed.opened.clone().await?;
            Ok(events(feed, receiver))
        })
    }
}

/// Start the upstream subscription in its own task; the first subscriber's receiver.
fn open(
    inner: &Arc<dyn Source>,
    request: SourceRequest,
) -> (Arc<Feed>, broadcast::Receiver<Event>) {
    let (events, receiver) = broadcast::channel(BUFFERED_EVENTS);
    let (stop, stopped) = oneshot::channel::<()>();
    let (done, opened) = oneshot::channel::<Result<(), FetchError>>();
    let subscribe = inner.subscribe(request);
    let weak = events.downgrade();
    let sender = events;
    tokio::spawn(async move {
        let mut upstream = match subscribe.await {
            Ok(upstream) => {
                let _ = done.send(Ok(()));
                upstream
            }
            Err(error) => {
                let _ = done.send(Err(error));
                return;
            }
        };
        let mut stopped = stopped;
        loop {
            tokio::select! {
                next = upstream.next() => match next {
                    Some(event) => {
                        let last = event.is_err();
                        // No receiver right now is fine: the feed may be between
                        // subscribers until its last one drops it.
                        let _ = sender.send(event);
                        if last {
                            return;
                        }
                    }
                    None => return,
                },
                _ = &mut stopped => return,
            }
        }
    });
    let opened = async move {
        opened.await.unwrap_or_else(|_| {
            Err(FetchError::Connect(
                "the subscription task ended before opening".into(),
            ))
        })
    }
    .boxed()
    .shared();
    let feed = Arc::new(Feed {
        events: weak,
        opened,
        _stop: stop,
    });
    (feed, receiver)
}

/// A subscriber's events; it keeps the feed alive while it reads.
fn events(feed: Arc<Feed>, receiver: broadcast::Receiver<Event>) -> EventStream {
    Box::pin(futures::stream::unfold(
        Some((feed, receiver)),
        |state| async move {
            let (feed, mut receiver) = state?;
            match receiver.recv().await {
                Ok(Ok(event)) => Some((Ok(event), Some((feed, receiver)))),
                Ok(Err(error)) => Some((Err(error), None)),
                Err(broadcast::error::RecvError::Closed) => None,
                Err(broadcast::error::RecvError::Lagged(missed)) => Some((
                    Err(FetchError::Upstream {
                        code: "SUBSCRIPTION_LAGGED".into(),
                        message: format!(
                            "the subscriber fell {missed} events behind the upstream and was dropped"
                        ),
                        retryable: false,
                    }),
                    None,
                )),
            }
        },
    ))
}
