//! A scripted upstream on a real socket: each received GraphQL request (as JSON) goes to
//! a closure that decides the HTTP status and the raw body, so tests can make a backend
//! answer anything, including garbage. Every request is recorded.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use serde_json::Value;

type Script = dyn Fn(&Value, &HeaderMap) -> (u16, String) + Send + Sync;

struct Shared {
    script: Box<Script>,
    /// Wait this long before answering (a slow backend).
    delay: std::time::Duration,
    received: Mutex<Vec<Value>>,
    headers: Mutex<Vec<HeaderMap>>,
}

pub struct ScriptedSubgraph {
    pub url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl ScriptedSubgraph {
    pub async fn start(script: impl Fn(&Value) -> (u16, String) + Send + Sync + 'static) -> Self {
        Self::start_with_delay(std::time::Duration::ZERO, script).await
    }

    pub async fn start_with_delay(
        delay: std::time::Duration,
        script: impl Fn(&Value) -> (u16, String) + Send + Sync + 'static,
    ) -> Self {
        Self::start_full(delay, move |body, _| script(body)).await
    }

    /// A script that also sees the request headers.
    pub async fn start_full(
        delay: std::time::Duration,
        script: impl Fn(&Value, &HeaderMap) -> (u16, String) + Send + Sync + 'static,
    ) -> Self {
        Self::start_on(delay, script, None).await
    }

    /// Served over HTTPS with these TLS settings (`url` is `https://127.0.0.1:…`).
    pub async fn start_tls(
        tls: Arc<rustls::ServerConfig>,
        script: impl Fn(&Value) -> (u16, String) + Send + Sync + 'static,
    ) -> Self {
        Self::start_on(
            std::time::Duration::ZERO,
            move |body, _| script(body),
            Some(tls),
        )
        .await
    }

    async fn start_on(
        delay: std::time::Duration,
        script: impl Fn(&Value, &HeaderMap) -> (u16, String) + Send + Sync + 'static,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Self {
        let shared = Arc::new(Shared {
            script: Box::new(script),
            delay,
            received: Mutex::new(Vec::new()),
            headers: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/graphql", post(handle))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let scheme = if tls.is_some() { "https" } else { "http" };
        let task = tokio::spawn(async move {
            let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
            gateway::ingress::listen::serve(
                listener,
                acceptor,
                app,
                std::future::pending(),
                Default::default(),
            )
            .await;
        });
        ScriptedSubgraph {
            url: format!("{scheme}://{addr}/graphql"),
            shared,
            task,
        }
    }

    /// The request headers received so far.
    pub fn received_headers(&self) -> Vec<HeaderMap> {
        self.shared
            .headers
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// The request bodies received so far.
    pub fn received(&self) -> Vec<Value> {
        self.shared
            .received
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }
}

impl Drop for ScriptedSubgraph {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    if let Ok(mut h) = shared.headers.lock() {
        h.push(headers.clone());
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if let Ok(mut r) = shared.received.lock() {
        r.push(request.clone());
    }
    if !shared.delay.is_zero() {
        tokio::time::sleep(shared.delay).await;
    }
    let (status, body) = (shared.script)(&request, &headers);
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [("content-type", "application/json")],
        body,
    )
}
