//! OpenTelemetry: spans reach an in-process OTLP receiver with the right parent/child
//! structure, continuing the client's W3C trace, and the upstream sees a `traceparent`
//! in the same trace. (Its own test binary: it installs the global subscriber.)

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use e2e_tests::scripted::ScriptedSubgraph;
use e2e_tests::{client, gateway_for, send};
use gateway::config::{LogConfig, OtlpConfig, OtlpProtocol};
use gateway::schema::compose::{SubgraphInput, compose};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::json;

type Received = Arc<Mutex<Vec<Span>>>;

async fn receiver() -> (String, Received) {
    let spans: Received = Arc::default();
    let app = axum::Router::new()
        .route(
            "/v1/traces",
            post(|State(spans): State<Received>, body: Bytes| async move {
                if let Ok(request) = ExportTraceServiceRequest::decode(body) {
                    let mut all = spans.lock().expect("lock");
                    for rs in request.resource_spans {
                        for ss in rs.scope_spans {
                            all.extend(ss.spans);
                        }
                    }
                }
                ""
            }),
        )
        .with_state(spans.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), spans)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_continue_the_client_trace_and_reach_the_upstream() {
    let (endpoint, spans) = receiver().await;
    let guard = gateway::telemetry::tracing::init(
        &LogConfig::default(),
        Some(&OtlpConfig {
            enabled: true,
            endpoint,
            protocol: OtlpProtocol::Http,
            ..OtlpConfig::default()
        }),
    )
    .expect("tracing");

    let a = ScriptedSubgraph::start(|_| (200, json!({"data": {"hello": "hi"}}).to_string())).await;
    let supergraph = compose(&[SubgraphInput {
        name: "a".into(),
        url: "http://127.0.0.1:9/a".into(),
        sdl: "type Query { hello: String }".into(),
    }])
    .expect("composes");
    let gw = gateway_for(&supergraph, &[("a", a.url.clone())]).await;

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    let reply = send(
        client()
            .post(gw.url())
            .header("content-type", "application/json")
            .header("traceparent", format!("00-{trace_id}-{client_span}-01"))
            .body(json!({"query": "query Hello { hello }"}).to_string()),
    )
    .await;
    assert_eq!(reply.body, json!({"data": {"hello": "hi"}}));

    // The upstream got a traceparent in the same trace.
    let upstream = a.received_headers().pop().expect("called");
    let traceparent = upstream["traceparent"].to_str().expect("ascii").to_string();
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts[1], trace_id, "{traceparent}");
    assert_ne!(parts[2], client_span);

    // Export and wait (bounded) for the three spans.
    let guard = Arc::new(guard);
    let mut found = Vec::new();
    for _ in 0..100 {
        let g = guard.clone();
        tokio::task::spawn_blocking(move || g.flush())
            .await
            .expect("flush");
        found = spans.lock().expect("lock").clone();
        if ["request", "prepare", "fetch"]
            .iter()
            .all(|n| found.iter().any(|s| s.name == *n))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let by_name = |name: &str| {
        found
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no {name} span in {found:?}"))
            .clone()
    };
    let request = by_name("request");
    let prepare = by_name("prepare");
    let fetch = by_name("fetch");
    for s in [&request, &prepare, &fetch] {
        assert_eq!(hex(&s.trace_id), trace_id, "{}", s.name);
    }
    assert_eq!(hex(&request.parent_span_id), client_span);
    assert_eq!(prepare.parent_span_id, request.span_id);
    assert_eq!(fetch.parent_span_id, request.span_id);
    let kind = fetch
        .attributes
        .iter()
        .find(|a| a.key == "kind")
        .and_then(|a| a.value.as_ref())
        .map(|v| format!("{:?}", v.value));
    assert!(
        kind.as_deref().is_some_and(|k| k.contains("graphql")),
        "fetch span kind: {kind:?}"
    );
    for attribute in ["breaker", "attempts", "outcome"] {
        assert!(
            fetch.attributes.iter().any(|a| a.key == attribute),
            "the fetch span has no `{attribute}`: {:?}",
            fetch.attributes
        );
    }
    // The upstream's parent is the fetch span.
    assert_eq!(parts[2], hex(&fetch.span_id));
    gw.shutdown().await;
}
