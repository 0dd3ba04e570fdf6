//! Serving one connection like the mocks do: hyper (HTTP/1.1 with keep-alive, and HTTP/2
//! with prior knowledge on the same port) with an axum router; a handler or the
//! subgraph's `down` flag can drop the socket at once.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpStream;
use tokio::sync::{Notify, watch};
use tracing::debug;

/// How long shutdown waits for in-flight requests before closing connections.
pub(crate) const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Lets a handler close the connection its request arrived on (inserted into every request's
/// extensions by the connection task, see [`serve_connection`]).
#[derive(Clone, Debug)]
pub(crate) struct ConnHandle(pub Arc<Notify>);

impl ConnHandle {
    pub(crate) fn kill(&self) {
        self.0.notify_one();
    }
}

/// Serves one connection until the peer closes it, a handler asks to drop it ([`ConnHandle`]),
/// the subgraph goes down (separate mode: `down` is `Some`), or shutdown (graceful).
/// Serve `router` on `listener` like the mocks (HTTP/1.1, and HTTP/2 with prior
/// knowledge, which gRPC clients use) until the task is dropped.
pub async fn serve_router(listener: tokio::net::TcpListener, router: Router) {
    // Never signalled: held here so that connections are not told to shut down.
    let (_keep, shutdown) = watch::channel(false);
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve_connection(
                    stream,
                    router.clone(),
                    shutdown.clone(),
                    None,
                ));
            }
            Err(e) => {
                debug!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

pub(crate) async fn serve_connection(
    stream: TcpStream,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
    down: Option<watch::Receiver<bool>>,
) {
    let _ = stream.set_nodelay(true);
    let kill = Arc::new(Notify::new());
    let handle = ConnHandle(kill.clone());
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(handle.clone());
        tower::ServiceExt::oneshot(router.clone(), req)
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    // With upgrades: `reviews` serves subscriptions over WebSocket.
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    let down = async move {
        match down {
            Some(mut rx) => {
                let _ = rx.wait_for(|d| *d).await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(e) = res {
                debug!(error = %e, "connection error");
            }
            return;
        }
        () = kill.notified() => return,
        () = down => return,
        () = async { let _ = shutdown.wait_for(|s| *s).await; } => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, conn).await;
}
