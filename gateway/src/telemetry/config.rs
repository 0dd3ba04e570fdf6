//! The `telemetry:` section: query-plan exposure, logs and OpenTelemetry export.

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Let clients ask for the query plan and per-fetch timings in the response
    /// `extensions` with the `x-gateway-plan: true` header. Off by default: plans
    /// reveal the subgraph topology.
    #[serde(default)]
    pub expose_query_plan: bool,
    #[serde(default)]
    pub log: LogConfig,
    /// OpenTelemetry trace export; off by default.
    #[serde(default)]
    pub otlp: OtlpConfig,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OtlpConfig {
    #[serde(default)]
    pub enabled: bool,
    /// Collector base URL: `http://host:4318` for HTTP, `http://host:4317` for gRPC.
    #[serde(default = "default_otlp_endpoint")]
    pub endpoint: String,
    #[serde(default)]
    pub protocol: OtlpProtocol,
    #[serde(default = "default_service_name")]
    pub service_name: String,
    /// Fraction of new traces sampled (a client's sampled flag is followed).
    #[serde(default = "default_sample_ratio")]
    pub sample_ratio: f64,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        OtlpConfig {
            enabled: false,
            endpoint: default_otlp_endpoint(),
            protocol: OtlpProtocol::default(),
            service_name: default_service_name(),
            sample_ratio: default_sample_ratio(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OtlpProtocol {
    #[default]
    Http,
    Grpc,
}

fn default_otlp_endpoint() -> String {
    "http://127.0.0.1:4318".into()
}
fn default_service_name() -> String {
    "gateway".into()
}
fn default_sample_ratio() -> f64 {
    1.0
}

#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` (default) or `json` (one JSON object per line).
    #[serde(default)]
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `gateway=debug,info`; `RUST_LOG` wins.
    #[serde(default)]
    pub level: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}
