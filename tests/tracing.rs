//! OpenTelemetry: spans reach an in-process OTLP receiver with the right parent/child
//! structure, continuing the client's W3C trace, and the upstream sees a `traceparent`
//! in the same trace. (Its own test binary: it installs the global subscriber.)

use e2e_tests::otlp::{Traced, exported, hex, http_receiver};
use gateway::telemetry::config::OtlpProtocol;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_continue_the_client_trace_and_reach_the_upstream() {
    let (endpoint, spans) = http_receiver().await;
    let traced = Traced::start(endpoint, OtlpProtocol::Http).await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    traced
        .ask(
            "query Hello { hello }",
            &format!("00-{trace_id}-{client_span}-01"),
        )
        .await;

    // The upstream got a traceparent in the same trace.
    let upstream = traced.upstream.received_headers().pop().expect("called");
    let traceparent = upstream["traceparent"].to_str().expect("ascii").to_string();
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts[1], trace_id, "{traceparent}");
    assert_ne!(parts[2], client_span);

    // Export and wait (bounded) for the three spans.
    let found = exported(traced.guard, &spans, &["request", "prepare", "fetch"]).await;
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
    traced.gateway.shutdown().await;
}
