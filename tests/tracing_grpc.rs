//! OpenTelemetry over OTLP/gRPC (tonic): spans reach an in-process gRPC collector, in the
//! client's trace. (Its own test binary: it installs the global subscriber.)

use e2e_tests::otlp::{Traced, exported, grpc_receiver, hex};
use gateway::telemetry::config::OtlpProtocol;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_an_otlp_grpc_collector() {
    let (endpoint, spans) = grpc_receiver().await;
    let traced = Traced::start(endpoint, OtlpProtocol::Grpc).await;
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    traced
        .ask("{ hello }", &format!("00-{trace_id}-b7ad6b7169203331-01"))
        .await;

    let found = exported(traced.guard, &spans, &["request", "fetch"]).await;
    for name in ["request", "fetch"] {
        let span = found
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no {name} span over gRPC in {found:?}"));
        assert_eq!(hex(&span.trace_id), trace_id, "{name}");
    }
    traced.gateway.shutdown().await;
}
