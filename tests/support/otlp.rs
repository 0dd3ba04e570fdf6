//! In-process OTLP trace receivers, over HTTP (protobuf) and gRPC, that keep every span
//! they are sent.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::routing::post;
use gateway::telemetry::tracing::TracingGuard;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

pub type Received = Arc<Mutex<Vec<Span>>>;

fn keep(spans: &Received, request: ExportTraceServiceRequest) {
    let mut all = spans.lock().expect("lock");
    for rs in request.resource_spans {
        for ss in rs.scope_spans {
            all.extend(ss.spans);
        }
    }
}

/// OTLP/HTTP: `POST {endpoint}/v1/traces`.
pub async fn http_receiver() -> (String, Received) {
    let spans: Received = Arc::default();
    let app = axum::Router::new()
        .route(
            "/v1/traces",
            post(|State(spans): State<Received>, body: Bytes| async move {
                if let Ok(request) = ExportTraceServiceRequest::decode(body) {
                    keep(&spans, request);
                }
                ""
            }),
        )
        .with_state(spans.clone());
    let (addr, _) = crate::serve_router(app).await;
    (format!("http://{addr}"), spans)
}

/// OTLP/gRPC: the collector's `TraceService/Export`, over HTTP/2 with prior knowledge.
pub async fn grpc_receiver() -> (String, Received) {
    let spans: Received = Arc::default();
    let app = axum::Router::new()
        .route(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            post(
                |State(spans): State<Received>, request: Request| async move {
                    subgraph_mocks::notifications::unary_with(
                        request,
                        move |r: ExportTraceServiceRequest| {
                            keep(&spans, r);
                            ExportTraceServiceResponse::default()
                        },
                    )
                    .await
                },
            ),
        )
        .with_state(spans.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(subgraph_mocks::serve_router(listener, app));
    (format!("http://{addr}"), spans)
}

/// Export (bounded wait) until spans with all of `names` arrived; what arrived.
pub async fn exported(guard: TracingGuard, spans: &Received, names: &[&str]) -> Vec<Span> {
    let guard = Arc::new(guard);
    let mut found = Vec::new();
    for _ in 0..100 {
        let g = guard.clone();
        tokio::task::spawn_blocking(move || g.flush())
            .await
            .expect("flush");
        found = spans.lock().expect("lock").clone();
        if names.iter().all(|n| found.iter().any(|s| s.name == *n)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    found
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a traced test runs against: tracing installed (exporting to a receiver), a
/// subgraph `a` answering `{ hello }`, and a gateway over it.
pub struct Traced {
    pub guard: TracingGuard,
    pub upstream: crate::scripted::ScriptedSubgraph,
    pub gateway: gateway::server::RunningGateway,
}

impl Traced {
    pub async fn start(
        endpoint: String,
        protocol: gateway::telemetry::config::OtlpProtocol,
    ) -> Self {
        let guard = gateway::telemetry::tracing::init(
            &gateway::telemetry::config::LogConfig::default(),
            Some(&gateway::telemetry::config::OtlpConfig {
                enabled: true,
                endpoint,
                protocol,
                ..gateway::telemetry::config::OtlpConfig::default()
            }),
        )
        .expect("tracing");
        let upstream = crate::scripted::ScriptedSubgraph::start(|_| {
            (
                200,
                serde_json::json!({"data": {"hello": "hi"}}).to_string(),
            )
        })
        .await;
        let supergraph =
            gateway::schema::compose::compose(&[gateway::schema::compose::SubgraphInput {
                name: "a".into(),
                url: "http://127.0.0.1:9/a".into(),
                sdl: "type Query { hello: String }".into(),
            }])
            .expect("composes");
        let gateway = crate::gateway_for(&supergraph, &[("a", upstream.url.clone())]).await;
        Traced {
            guard,
            upstream,
            gateway,
        }
    }

    /// `query` sent with a W3C `traceparent`; asserts the answer.
    pub async fn ask(&self, query: &str, traceparent: &str) {
        let reply = crate::send(
            crate::client()
                .post(self.gateway.url())
                .header("content-type", "application/json")
                .header("traceparent", traceparent)
                .body(serde_json::json!({ "query": query }).to_string()),
        )
        .await;
        assert_eq!(reply.body, serde_json::json!({"data": {"hello": "hi"}}));
    }
}
