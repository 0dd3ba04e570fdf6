//! Start-up and serving: build the engine from a [`GatewaySpec`], bind, serve (plain
//! HTTP or TLS) until shut down, and keep it current ([`reload`]). The top of the
//! house: it wires every stage together and no stage imports it.

pub mod check;
pub mod registry;
pub mod reload;
mod spec;

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;

use crate::ingress::{self, AppState};
use crate::telemetry::Metrics;
pub use spec::{GatewaySpec, SourceSpec, StartupError, compose_subgraphs};

/// A gateway serving on a socket; dropping the handle does not stop it, `shutdown` does.
pub struct RunningGateway {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    tls: bool,
    drain: ingress::listen::ShutdownConfig,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningGateway {
    /// `https://…` when the listener terminates TLS.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}/graphql", self.addr)
    }

    /// Stop now: close the listener, end streams, wait for requests in flight.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = self.task.await;
    }

    /// Leave the load balancer, then stop (`edge.shutdown`): readiness turns false,
    /// requests are still served for `readiness_delay`, then the listener closes and
    /// requests in flight get `grace_period` to finish; what is left is dropped.
    pub async fn drain(mut self) {
        let settings = self.drain.clone();
        self.state
            .draining
            .store(true, std::sync::atomic::Ordering::Release);
        tracing::info!(
            readiness_delay = ?settings.readiness_delay,
            grace_period = ?settings.grace_period,
            "draining: readiness is false"
        );
        tokio::time::sleep(settings.readiness_delay).await;
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        tracing::info!("draining: listener closed, waiting for requests in flight");
        match tokio::time::timeout(settings.grace_period, &mut self.task).await {
            Ok(_) => tracing::info!("drained"),
            Err(_) => {
                self.task.abort();
                tracing::warn!(
                    grace_period = ?settings.grace_period,
                    "grace period over: dropping the connections still open"
                );
            }
        }
    }
}

/// Bind and serve in the background.
pub async fn start(spec: &GatewaySpec) -> Result<RunningGateway, StartupError> {
    let metrics = Arc::new(Metrics::new());
    let engine = spec.engine_with(metrics.clone())?;
    let access =
        ingress::auth::Access::compile(&spec.access, &metrics).map_err(StartupError::Access)?;
    access.warm_up().await;
    let tls = spec
        .tls
        .as_ref()
        .map(ingress::tls::acceptor)
        .transpose()
        .map_err(StartupError::Tls)?;
    let listener =
        TcpListener::bind(&spec.listen)
            .await
            .map_err(|source| StartupError::Listen {
                addr: spec.listen.clone(),
                source,
            })?;
    let addr = listener
        .local_addr()
        .map_err(|source| StartupError::Listen {
            addr: spec.listen.clone(),
            source,
        })?;
    let state = Arc::new(AppState {
        engine: ArcSwap::from_pointee(engine),
        metrics,
        allow_plan_header: spec.expose_query_plan,
        access: ArcSwap::from_pointee(access),
        access_config: std::sync::Mutex::new(format!("{:?}", spec.access)),
        dedupe: Default::default(),
        streaming: spec.edge.streaming.clone(),
        closing: tokio::sync::watch::Sender::new(false),
        draining: Default::default(),
        streams: Default::default(),
        cache_status: spec.edge.cache_status,
        uploads: spec.edge.uploads.clone(),
        max_body_bytes: spec.limits.max_body_bytes,
    });
    let app = ingress::router(state.clone(), spec.limits.max_body_bytes, &spec.edge);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let serves_tls = tls.is_some();
    let connections = spec.edge.connections.clone();
    let closing = state.clone();
    let task = tokio::spawn(async move {
        let stop = async move {
            let _ = rx.await;
            // Streams end now (with a message), so the graceful shutdown can finish.
            closing.closing.send_replace(true);
        };
        // Connect info: the client IP is the rate-limit key of anonymous clients.
        ingress::listen::serve(listener, tls, app, stop, connections).await;
    });
    Ok(RunningGateway {
        addr,
        state,
        tls: serves_tls,
        drain: spec.edge.shutdown.clone(),
        shutdown: Some(tx),
        task,
    })
}
