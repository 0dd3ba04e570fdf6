//! Logs and traces: the `tracing` subscriber (text or JSON lines), optionally with an
//! OpenTelemetry layer exporting spans over OTLP (HTTP/protobuf or gRPC), and W3C
//! trace-context propagation from the client to every upstream.

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use super::config::{LogConfig, LogFormat, OtlpConfig, OtlpProtocol};

/// Whether an OpenTelemetry layer is installed (spans then carry trace context).
static OTEL: OnceLock<()> = OnceLock::new();

/// Flushes and shuts the exporter down when dropped (at process exit).
pub struct TracingGuard {
    provider: Option<SdkTracerProvider>,
}

impl TracingGuard {
    /// Export every finished span now.
    pub fn flush(&self) {
        if let Some(p) = &self.provider {
            let _ = p.force_flush();
        }
    }
}

impl Drop for TracingGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
    }
}

/// Install the global subscriber. Must run inside a tokio runtime when OTLP is on
/// (the exporter runs on it).
pub fn init(log: &LogConfig, otlp: Option<&OtlpConfig>) -> Result<TracingGuard, String> {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(log.level.as_deref().unwrap_or("info")));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match log.format {
        LogFormat::Json => fmt.json().flatten_event(true).boxed(),
        LogFormat::Text => fmt.boxed(),
    };
    let (otel, provider) = match otlp.filter(|o| o.enabled) {
        Some(config) => {
            let provider = provider(config)?;
            let tracer = provider.tracer("gateway");
            let layer = tracing_opentelemetry::layer().with_tracer(tracer).boxed();
            opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
            let _ = OTEL.set(());
            (Some(layer), Some(provider))
        }
        None => (None, None),
    };
    tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(otel)
        .try_init()
        .map_err(|e| format!("cannot install the log subscriber: {e}"))?;
    Ok(TracingGuard { provider })
}

fn provider(config: &OtlpConfig) -> Result<SdkTracerProvider, String> {
    let exporter = match config.protocol {
        OtlpProtocol::Http => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(OtlpHttpClient(
                reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .map_err(|e| e.to_string())?,
            ))
            .with_endpoint(format!(
                "{}/v1/traces",
                config.endpoint.trim_end_matches('/')
            ))
            .build(),
        OtlpProtocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(config.endpoint.clone())
            .build(),
    }
    .map_err(|e| format!("cannot build the OTLP exporter: {e}"))?;
    let processor =
        opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
            exporter,
            opentelemetry_sdk::runtime::Tokio,
        )
        .build();
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(config.service_name.clone())
        .build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_sampler(opentelemetry_sdk::trace::Sampler::ParentBased(Box::new(
            opentelemetry_sdk::trace::Sampler::TraceIdRatioBased(config.sample_ratio),
        )))
        .with_resource(resource)
        .build())
}

/// OTLP over our own pooled reqwest client (one HTTP stack in the binary).
#[derive(Debug)]
struct OtlpHttpClient(reqwest::Client);

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for OtlpHttpClient {
    async fn send_bytes(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, opentelemetry_http::HttpError> {
        let (parts, body) = request.into_parts();
        let response = self
            .0
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body)
            .send()
            .await?;
        let status = response.status();
        let body = response.bytes().await?;
        let mut out = http::Response::new(body);
        *out.status_mut() = status;
        Ok(out)
    }
}

/// Continue the client's trace: the span's parent becomes the `traceparent` context.
pub fn continue_trace(span: &tracing::Span, headers: &HeaderMap) {
    if OTEL.get().is_none() {
        return;
    }
    let cx = TraceContextPropagator::new().extract(&opentelemetry_http::HeaderExtractor(headers));
    let _ = span.set_parent(cx);
}

/// The trace-context headers for an upstream call made within `span`: a child of
/// the gateway's span when tracing is on, otherwise the client's own headers passed
/// through unchanged.
pub fn upstream_trace_headers(span: &tracing::Span, client: &HeaderMap, out: &mut HeaderMap) {
    if OTEL.get().is_some() {
        TraceContextPropagator::new().inject_context(
            &span.context(),
            &mut opentelemetry_http::HeaderInjector(out),
        );
        return;
    }
    for name in ["traceparent", "tracestate"] {
        if let Some(v) = client.get(name) {
            out.insert(name, v.clone());
        }
    }
}
